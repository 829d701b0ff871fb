/* SPDX-License-Identifier: MIT */
/* The private handle behind struct shmring. */
#ifndef SHMRING_API_HANDLE_H
#define SHMRING_API_HANDLE_H

#include <stdbool.h>
#include <stdint.h>

#include "../ring/mpmc.h"
#include "../ring/spsc.h"
#include "../shm/ctl.h"
#include "../shm/registry.h"
#include "../fallback/fallback.h"
#include "shmring.h"

struct shmring {
	/* per-message state first: one handle serves one thread at a time */
	uint32_t roles;            /* ROLE_* this handle may use; 0 in a forked child */
	uint32_t spin_ns;
	struct spsc_prod prod;     /* valid with ROLE_PRODUCER */
	struct spsc_cons cons;     /* valid with ROLE_CONSUMER */
	struct spsc_shared *sh;    /* ring state in the mapping */

	/* control plane */
	struct ctl_shared *ctl;
	struct seg_map *map;
	int lock_fd;               /* our own open file description: the liveness
				      and control locks */
	/* With lock_fd's OFD lock, the control lock (sync/ctl.h): threads that
	 * share this handle share its open file description, which the kernel
	 * does not tell apart.  Per handle, like lock_fd: a forked child never
	 * takes a handle's control lock (its handles are disowned), so a
	 * mutex inherited locked at fork() is never waited on. */
	pthread_mutex_t ctl_local;
	int slot;                  /* participant slot, -1 without a role */
	int forked;                /* inherited across fork(): shared state is not ours */
	bool is_file;              /* file: ring: shmring_flush() has work to do */
	const struct fb_ops *fb;   /* pipe:/mq: backend, NULL for shm:/file: */
	struct fb_handle *fbh;
	uint64_t flushed;          /* producer: records before it are durable */
	struct shmring *next, *prev;

	/* MPMC rings (api/mpmc.c); the calls go through fb = &mpmc_ops */
	bool is_mpmc;
	struct mpmc_h mp;
	uint64_t stall_ns;
	struct ctl_sweep sweep;    /* repairs free what dead participants held */
	/* stall clock per side (0 producer, 1 consumer): the blocking word
	 * last seen, since when, and the last liveness test of its holder */
	_Atomic uint64_t mp_watch[2], mp_since[2], mp_checked[2];
};

#endif
