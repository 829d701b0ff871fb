/* SPDX-License-Identifier: MIT */
/*
 * A segment: the same byte layout whether it lives in POSIX shared memory
 * (/dev/shm) or in a regular file.
 *
 *   0      struct seg_hdr      immutable after creation; version written last
 *   4096   struct ctl_shared   busy word, participants, recovery counters
 *   16384  ring state          struct spsc_shared (SPSC) or struct mpmc_shared (MPMC)
 *   20480  data area (SPSC)    `capacity` bytes, power of two, page aligned
 *   40960  data area (MPMC)    `capacity` bytes: a power of two of slots
 *   20480  data area (SPSC with SHMRING_FIXED in flags): `capacity` bytes,
 *                              a power of two of slots (ring state: struct
 *                              fixed_shared at 16384)
 *   36864  data area (BCAST)   `capacity` bytes, power of two (ring state:
 *                              struct bcast_shared at 16384)
 *
 * Nothing read from a segment is trusted: seg_validate() checks a private
 * copy of the header field by field and derives every offset itself.
 */
#ifndef SHMRING_SHM_SEGMENT_H
#define SHMRING_SHM_SEGMENT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shmring.h"

#define SEG_MAGIC     0x31474e49524d4853ull   /* "SHMRING1" little-endian */
#define SEG_VERSION   2u       /* 2: no pthread mutex in the control block */
#define SEG_CTL_OFF   4096u
#define SEG_RING_OFF  16384u
#define SEG_DATA_OFF  20480u
#define SEG_MPMC_DATA_OFF 40960u
#define SEG_BCAST_DATA_OFF 36864u
#define SEG_MPMC_MAX_SLOTS (1ull << 24)   /* bounds the recovery sweep */
#define SEG_MIN_CAP   4096ull
#define SEG_MAX_CAP   (1ull << 40)
#define SEG_DEFAULT_CAP (1ull << 20)
#define SEG_SHM_DIR   "/dev/shm/"
#define SEG_PUBLISH_WAIT_NS (1000ull * 1000 * 1000)
/* Byte of the segment file its creator holds an OFD write lock on from
 * its exclusive create until the header is published: an unpublished
 * segment is waited for only while that lock is held (between
 * CTL_LOCK_OPEN and the participants' CTL_LOCK_BASE bytes). */
#define SEG_LOCK_CREATE 1002
/* A header flag (not an opts flag): the MPMC ring's slot words may carry
 * ranges (ring/mpmc.h, mw_count), set by the builds that write them.  A
 * build from before refuses a header with a flag it does not know, so it
 * never misreads a range; a ring made without the flag, by such a build,
 * is given single claims only, so the older processes that share it never
 * meet one. */
#define SEG_HF_RANGES 0x100u

struct seg_hdr {
	uint64_t magic;
	_Atomic uint32_t version;   /* 0 while being built; published last */
	uint32_t hdr_size;
	uint64_t stamp;             /* sizes and alignments of the shared types */
	uint32_t kind;
	uint32_t flags;             /* SHMRING_PREFAULT | SHMRING_MLOCK, creator's */
	uint64_t seg_size;
	uint64_t capacity;
	uint32_t max_msg;
	uint32_t spin_ns;
	uint64_t ctl_off, ring_off, data_off;
	uint32_t creator_uid;
	int32_t creator_pid;
	uint64_t created_ns;        /* CLOCK_REALTIME */
	uint32_t mode;
	uint32_t checksum;          /* FNV-1a of every byte before it */
};
_Static_assert(offsetof(struct seg_hdr, version) == 8, "version offset");
_Static_assert(offsetof(struct seg_hdr, checksum) == 100, "checksum offset");
_Static_assert(sizeof(struct seg_hdr) == 104, "seg_hdr size");

/* The validated geometry, copied into every handle. */
struct seg_geom {
	uint32_t kind, flags, max_msg, spin_ns, mode;
	uint32_t stall_ms;          /* MPMC, BCAST, creation only: the ring keeps its own */
	uint64_t capacity, size, ctl_off, ring_off, data_off;
	uint32_t creator_uid;
	int32_t creator_pid;
	uint64_t created_ns;
};

/* Why seg_check() refuses a header, in the order it checks; seg_explain()
 * says it in words. */
enum seg_fault {
	SEG_SOUND = 0,
	SEG_F_MAGIC,          /* not a shmring segment */
	SEG_F_UNPUBLISHED,    /* version 0: being created, or its creator died */
	SEG_F_VERSION,        /* another layout version */
	SEG_F_HDR_SIZE,
	SEG_F_CHECKSUM,
	SEG_F_STAMP,          /* made by a build with another layout */
	SEG_F_KIND,
	SEG_F_MAX_MSG,        /* MPMC: 0; FIXED: 0 or too large */
	SEG_F_CAPACITY,       /* SPSC, BCAST: not a power of two in range; MPMC: too large */
	SEG_F_SLOT_SIZE,      /* MPMC, FIXED: not a whole number of slots */
	SEG_F_SLOT_COUNT,     /* MPMC, FIXED: not a power of two of slots in range */
	SEG_F_SPSC_MAX_MSG,   /* SPSC, BCAST: out of range for the capacity */
	SEG_F_OFFSETS,
	SEG_F_SEG_SIZE,
	SEG_F_FLAGS,
	SEG_F_FILE_SIZE,      /* truncated or grown behind our back */
	SEG_F_OWNER,          /* chowned, or forged by another user */
};

/* Geometry for a new ring from user options (NULL: defaults). */
__attribute__((visibility("hidden")))
int seg_plan(const struct shmring_opts *o, struct seg_geom *g);

/* Check a private copy of a header against the file it came from:
 * SEG_SOUND, or the first check it fails. */
__attribute__((visibility("hidden")))
enum seg_fault seg_check(const struct seg_hdr *h, uint64_t file_size, uid_t file_uid);

/* seg_check(), then the geometry: 0, or -EPROTO. */
__attribute__((visibility("hidden")))
int seg_validate(const struct seg_hdr *h, uint64_t file_size, uid_t file_uid,
		 struct seg_geom *g);

/* What seg_check() found wrong with h, in words, into buf; returns buf. */
__attribute__((visibility("hidden")))
const char *seg_explain(enum seg_fault f, const struct seg_hdr *h, uint64_t file_size,
			uid_t file_uid, char *buf, size_t n);

/* The slot geometry of a validated MPMC segment whose data area is at data. */
struct mpmc_geom;
__attribute__((visibility("hidden")))
void seg_mpmc_geom(const struct seg_geom *g, uint8_t *data, struct mpmc_geom *mg);

/* Create path exclusively, size it, build the ring and publish it.
 * Returns an O_RDWR descriptor, -EEXIST, -ENOSPC, ... */
__attribute__((visibility("hidden")))
int seg_create(const char *path, const struct seg_geom *g, uint32_t mode);

/* Open an existing segment (no symlinks); -ENOENT, -EACCES, ... */
__attribute__((visibility("hidden"))) int seg_open(const char *path);

/* fstat + pread + validate, waiting (bounded) for a creator to publish. */
__attribute__((visibility("hidden"))) int seg_read(int fd, struct seg_geom *g);

/* Map a validated segment and re-check the published version. */
__attribute__((visibility("hidden")))
int seg_map(int fd, const struct seg_geom *g, uint32_t flags, void **base);

__attribute__((visibility("hidden"))) uint32_t seg_checksum(const struct seg_hdr *h);
__attribute__((visibility("hidden"))) uint64_t seg_stamp(void);

#endif /* SHMRING_SHM_SEGMENT_H */
