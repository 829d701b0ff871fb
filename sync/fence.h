/* SPDX-License-Identifier: MIT */
/*
 * Asymmetric store->load fence for the wake-up protocol (sync/wait.h).
 *
 * The waker publishes on every message and must then look at the
 * sleeper's flag; a full barrier there (a locked instruction) would stall
 * every publish until the cache line is ours.  Instead the rare side, the
 * one going to sleep, pays: membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)
 * makes every running thread of every registered process execute a full
 * barrier before it returns.  The waker then needs only a compiler
 * barrier.  A process that could not register keeps the full barrier
 * (fence_light == false), and a sleeper that cannot issue the membarrier
 * sleeps in short slices instead of trusting the wake-up.
 */
#ifndef SHMRING_SYNC_FENCE_H
#define SHMRING_SYNC_FENCE_H

#include <stdatomic.h>
#include <stdbool.h>

/* Register this process as a receiver of global expedited membarriers.
 * Idempotent; returns true when wakers in this process may use the light
 * fence. */
__attribute__((visibility("hidden"))) bool fence_register(void);

/* The sleeper's heavy fence; false if the kernel refused it. */
__attribute__((visibility("hidden"))) bool fence_heavy(void);

#if defined(__SANITIZE_THREAD__)
/* gcc refuses atomic_thread_fence under -fsanitize=thread; a seq_cst
 * read-modify-write is a full barrier on the hardware we run on. */
extern _Atomic unsigned fence_tsan_word;
#define fence_full() ((void)atomic_fetch_add_explicit(&fence_tsan_word, 0, memory_order_seq_cst))
#else
#define fence_full() atomic_thread_fence(memory_order_seq_cst)
#endif

/* The waker's fence between its publishing store and its load of the
 * sleeper's flag. */
static inline void fence_waker(bool light)
{
	if (light)
		/* the heavy side's membarrier orders the hardware; only the
		 * compiler must keep the store before the load */
		atomic_signal_fence(memory_order_seq_cst);
	else
		fence_full();
}

#endif
