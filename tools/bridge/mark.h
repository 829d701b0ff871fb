/* SPDX-License-Identifier: MIT */
/*
 * A bridge's record kept beside its ring (a small file), so that a bridge
 * started after a kill -9 knows exactly where the one before it stopped.
 * Two slots written in turn; each carries a generation and a check word,
 * so a write cut short by a kill leaves the other slot valid.  The file is
 * read once at start, validated, and never trusted further than its check.
 */
#ifndef SHMRING_BRIDGE_MARK_H
#define SHMRING_BRIDGE_MARK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MARK_VALS 12            /* 64-bit words of one record; their meaning is the caller's */

struct mark {
	int fd;
	void *map;                 /* the file's two slots (shared with the next bridge) */
	uint64_t gen;
};

/* The file for `ring` ("shm:NAME"/"NAME" -> /dev/shm/.shmring-bridge-TAG.NAME,
 * "file:PATH" -> DIR/.BASE.bridge-TAG); -ENOTSUP for pipe: and mq:. */
int mark_path(const char *ring, const char *tag, char *buf, size_t cap);
/* The ring's file identity (inode), 0 if it has none. */
uint64_t mark_ring_id(const char *ring);
/* Open or create; *found says whether a valid record was there (then
 * vals holds it).  0 or -errno. */
int mark_open(struct mark *m, const char *path, uint64_t vals[MARK_VALS], bool *found);
void mark_write(struct mark *m, const uint64_t vals[MARK_VALS]);
void mark_close(struct mark *m);

uint64_t mark_hash(const void *p, size_t n, uint64_t seed);

#endif
