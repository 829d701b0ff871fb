/* SPDX-License-Identifier: MIT */
/*
 * shmring-bench only, never in the library: ring/mpmc.h's commit and
 * release without what recovery needs from the holder.  Each publishes
 * with a plain release store where the library CASes the word, so a
 * recoverer freeing the slot meanwhile could be overwritten.  Everything
 * else (claim, peek, consume, the slot words) is ring/mpmc.h as shipped:
 * mpmc_algo.h runs the same loop over both to show what crash safety costs.
 */
#ifndef SHMRING_BENCH_MPMC_NOSAFETY_H
#define SHMRING_BENCH_MPMC_NOSAFETY_H

#include "ring/mpmc.h"

/* mpmc_commit() with the publishing CAS turned into a store */
static inline int mpmc_commit_nosafety(struct mpmc_h *h, uint64_t t, uint32_t len)
{
	struct mpmc_slot *s = mpmc_slot(&h->g, t);
	uint64_t mine = mw_make(t, MS_WRITING, h->me);
	__builtin_prefetch(&s->word, 1);        /* as mpmc_commit() does */
	/* relaxed: our own claim's word, still checked as the library does */
	uint64_t now = atomic_load_explicit(&s->word, memory_order_relaxed);
	if (unlikely(now != mine))
		return mpmc_commit_lost(h, t, now);
	/* relaxed: ordered before the consumer's read by the store below */
	atomic_store_explicit(&s->len, len, memory_order_relaxed);
	/* release: publishes payload and len; pairs with [M4]/[M5] */
	atomic_store_explicit(&s->word, mw_make(t, MS_READY, 0), memory_order_release);
	return 0;
}

/* mpmc_release() with the freeing CAS turned into a store (no check that
 * the slot is still ours) */
static inline int mpmc_release_nosafety(struct mpmc_h *h, uint64_t t)
{
	uint64_t w = mw_make(t, MS_READING, h->me);
	/* release: our reads are done before a producer reuses the slot;
	 * pairs with [M1]/[M2] */
	atomic_store_explicit(&mpmc_slot(&h->g, t)->word, mw_next_free(w, h->g.nslots),
			      memory_order_release);
	return 0;
}

#endif /* SHMRING_BENCH_MPMC_NOSAFETY_H */
