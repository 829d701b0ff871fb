/* SPDX-License-Identifier: MIT */
#include "wait.h"

#include "clock.h"
#include "fence.h"

static bool moved(struct waiter *w, uint64_t seen, memory_order mo)
{
	if (atomic_load_explicit(w->watch, mo) != seen)
		return true;
	return w->shut && atomic_load_explicit(w->shut, mo) != 0;
}

int wait_change(struct waiter *w, uint64_t seen, uint64_t deadline)
{
	uint64_t now = clock_mono_ns();

	/* Spin first: a peer that answers within microseconds costs no
	 * system call on either side.  The clock is read every 64 polls. */
	while (now < w->spin_until && now < deadline) {
		for (int i = 0; i < 64; i++) {
			/* relaxed: only a hint to stop spinning; the caller
			 * re-reads the index with acquire ([P1]/[C1]) */
			if (moved(w, seen, memory_order_relaxed))
				return 0;
			cpu_relax();
		}
		now = clock_mono_ns();
	}
	if (now >= deadline)
		return -ETIMEDOUT;

	/* [W1] seq_cst RMW: announce the sleep before the last look (a
	 * poller's bit, WAIT_POLLING, stays as it is) */
	uint32_t was = atomic_fetch_or_explicit(w->sleeping, WAIT_SLEEPING, memory_order_seq_cst);
	/* The heavy half of the asymmetric fence (sync/fence.h): every waker
	 * that skipped its full fence has passed a barrier by now -- unless
	 * the waker fences every publish for now ([F1]).  Without either, a
	 * waker's store->load may still be reordered: sleep briefly. */
	bool fenced = (was & WAIT_FENCED) || fence_heavy();
	uint64_t slice = fenced ? WAIT_SLICE_NS : WAIT_SLICE_UNFENCED_NS;
	/* [W2] seq_cst: the word's value the kernel compares against */
	uint32_t seq = atomic_load_explicit(w->word, memory_order_seq_cst);
	/* [W3] seq_cst: the last look, ordered after [W1] in S */
	if (!moved(w, seen, memory_order_seq_cst)) {
		uint64_t until = deadline - now > slice ? now + slice : deadline;
		struct timespec ts = clock_ts(until);
		/* 0, -EAGAIN (word moved), -EINTR, -ETIMEDOUT: all mean "look again";
		 * the caller's deadline check decides about the real timeout. */
		(void)futex_wait_until(w->word, seq, &ts);
		/* relaxed: single writer (this role), display only */
		atomic_store_explicit(w->sleeps,
				      atomic_load_explicit(w->sleeps, memory_order_relaxed) + 1,
				      memory_order_relaxed);
	}
	/* relaxed: a stale bit seen by the waker costs one spurious
	 * FUTEX_WAKE; an RMW, so that a poller's arming is not taken down */
	atomic_fetch_and_explicit(w->sleeping, ~WAIT_SLEEPING, memory_order_relaxed);
	if (clock_mono_ns() >= deadline && !moved(w, seen, memory_order_acquire))
		return -ETIMEDOUT;
	return 0;
}

bool wait_unfence(struct shmring_inl_fence *f, _Atomic uint32_t *sleeping)
{
	f->on = false;
	f->quiet = 0;
	/* [F2] seq_cst RMW: later publishes use the light fence; a sleeper
	 * or poller whose [W1]/[B1] came before this in the word's order saw
	 * WAIT_FENCED and may have skipped its membarrier: its bit is here,
	 * and it is woken (the caller's wait_wake) */
	return (atomic_fetch_and_explicit(sleeping, ~WAIT_FENCED, memory_order_seq_cst) &
		WAIT_WAITERS) != 0;
}

static bool slot_moved(struct slot_waiter *w, memory_order mo)
{
	if (atomic_load_explicit(w->watch, mo) != w->seen)
		return true;
	return atomic_load_explicit(w->shut, mo) != 0;
}

int wait_slot(struct slot_waiter *w, uint64_t until)
{
	uint64_t now = clock_mono_ns();
	while (now < w->spin_until && now < until) {
		for (int i = 0; i < 64; i++) {
			/* relaxed: a hint to stop spinning; the ring re-reads with acquire */
			if (slot_moved(w, memory_order_relaxed))
				return 0;
			cpu_relax();
		}
		now = clock_mono_ns();
	}
	if (now >= until)
		return -ETIMEDOUT;

	_Atomic uint64_t *mw = &w->mask[w->bit / 64];
	uint64_t bit = 1ull << (w->bit % 64);
	/* [K1] seq_cst RMW: announce the sleep before the last look */
	atomic_fetch_or_explicit(mw, bit, memory_order_seq_cst);
	uint64_t slice = WAIT_SLICE_NS;
	/* a waker that publishes with fence_waker() (sync/fence.h): the
	 * sleeper's heavy fence, or short slices if the kernel refuses it */
	if (w->heavy && !fence_heavy())
		slice = WAIT_SLICE_UNFENCED_NS;
	/* [K5] seq_cst: the value the kernel compares against; a waker's [K6]
	 * bump after it makes futex_wait return at once */
	uint32_t seq = atomic_load_explicit(w->word, memory_order_seq_cst);
	/* [K3] seq_cst: the last look, after [K1] in S */
	if (!slot_moved(w, memory_order_seq_cst)) {
		uint64_t end = until - now > slice ? now + slice : until;
		struct timespec ts = clock_ts(end);
		(void)futex_wait_until(w->word, seq, &ts);   /* any return: look again */
		atomic_fetch_add_explicit(w->sleeps, 1, memory_order_relaxed);
	}
	/* The bit stays: only a waker takes it down (and then wakes us).  A
	 * bit left up by a sleeper that woke by itself costs one spurious wake. */
	if (clock_mono_ns() >= until && !slot_moved(w, memory_order_acquire))
		return -ETIMEDOUT;
	return 0;
}
