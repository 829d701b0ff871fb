/* SPDX-License-Identifier: MIT */
/* The MPMC ring kind's handle (backend/mpmc.c). */
#ifndef SHMRING_BACKEND_MPMC_H
#define SHMRING_BACKEND_MPMC_H

#include "seg.h"
#include "../ring/mpmc.h"

/* An MPMC ring's handle. */
struct mpmc_handle {
	struct seg_handle seg;
	struct mpmc_h mp;          /* ring/mpmc.h: geometry, our participant id */
	uint64_t stall_ns;         /* the ring's stall timeout */
	struct ctl_sweep sweep;    /* repairs free what dead participants held */
	unsigned range_max;        /* slots a batch claims or takes at once: 1 on a
				      ring made without SEG_HF_RANGES */
	/* stall clock per side (0 producer, 1 consumer): the blocking word
	 * last seen, since when, and the last liveness test of its holder */
	_Atomic uint64_t mp_watch[2], mp_since[2], mp_checked[2];
};

static inline struct mpmc_handle *mph_of(struct shmring *r)
{
	return (struct mpmc_handle *)(void *)r;
}

#endif
