/* SPDX-License-Identifier: MIT */
/*
 * Process-local registry of mapped segments, keyed by (device, inode): two
 * handles on one ring in one process share one mapping.  Lookups run under
 * RCU (liburcu-bp, which registers threads by itself, as a library must)
 * in a lock-free cds_lfht; the entry is reference-counted and the last
 * release unmaps it only after a grace period, so a thread that found the
 * entry while another closed it never touches unmapped memory.
 */
#ifndef SHMRING_SHM_REGISTRY_H
#define SHMRING_SHM_REGISTRY_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "segment.h"

struct seg_map {
	dev_t dev;
	ino_t ino;
	_Atomic long refs;        /* handles using the mapping; 0 = being torn down */
	int fd;                   /* the segment's descriptor: liveness checks, reopen */
	uint8_t *base;            /* the mapping */
	struct seg_geom geom;     /* validated copy; never re-read from the segment */
	void *node_space[4];      /* struct cds_lfht_node, kept opaque here */
};

/* Find a live entry for (dev, ino) and take a reference; NULL if none. */
__attribute__((visibility("hidden"))) struct seg_map *reg_get(dev_t dev, ino_t ino);

/*
 * Publish a new, fully built entry (this sets refs to 1).  If another thread published one
 * for the same file first, returns that one with a reference taken and the
 * caller disposes of its own; otherwise returns m.  NULL on error.
 */
__attribute__((visibility("hidden"))) struct seg_map *reg_put_new(struct seg_map *m);

/* Drop a reference; the last one unpublishes, waits a grace period, and
 * unmaps, closes and frees. */
__attribute__((visibility("hidden"))) void reg_release(struct seg_map *m);

/* Free an entry that was never published. */
__attribute__((visibility("hidden"))) void reg_discard(struct seg_map *m);

/* Call once per process before anything else here (fork handlers). */
__attribute__((visibility("hidden"))) int reg_init(void);

#endif
