/* SPDX-License-Identifier: MIT */
/*
 * file: rings — the segment layout of shm/ in a regular file, so that the
 * queue and every position outlive the processes that use it.
 *
 * What is durable when:
 *  - a process crash (SIGKILL of everyone, any instruction): everything
 *    committed and not released is in the page cache, exactly as shared
 *    memory would have it; the next opener continues (same recovery as
 *    shm: dead roles are taken over, the producer finds the published end,
 *    the consumer resumes after its last release).
 *  - a reboot or power loss: only what shmring_flush() made durable.  The
 *    producer's flush writes the records back (msync, MS_SYNC) and only
 *    then advances persist.durable_tail and writes that back: payload
 *    before the index that vouches for it.  The consumer's flush writes
 *    back its released position.  The first process that opens the file
 *    alone after a reboot (a different boot id) cuts the ring back to
 *    durable_tail and re-initialises the control block.
 */
#ifndef SHMRING_MMAPFILE_H
#define SHMRING_MMAPFILE_H

#include <stdint.h>

#include "../shm/segment.h"

/*
 * Called by a process that holds the segment's "in use" lock exclusively
 * (nobody else maps it).  After a reboot: reset the control block's
 * `busy` word and the participant table (their owners belong to a previous
 * boot) and cut the ring back to what was flushed.  Returns 1 if it repaired, 0 if nothing was needed, -errno.
 */
__attribute__((visibility("hidden")))
int mf_recover_alone(uint8_t *base, const struct seg_geom *g);

/* Producer: make every record before `tail` durable, then the index
 * (a SHMRING_FIXED ring: every slot before the slot count `tail`).
 * *flushed is the producer's private "already durable up to". */
__attribute__((visibility("hidden")))
int mf_flush_records(uint8_t *base, const struct seg_geom *g, uint64_t *flushed, uint64_t tail);

/* Consumer: make its released position durable. */
__attribute__((visibility("hidden")))
int mf_flush_position(uint8_t *base, const struct seg_geom *g);

/* Everything (a handle without a role). */
__attribute__((visibility("hidden")))
int mf_flush_all(uint8_t *base, const struct seg_geom *g);

/* This boot's identity, 16 bytes; 0 or -errno. */
__attribute__((visibility("hidden"))) int mf_boot_id(uint8_t id[16]);

#endif
