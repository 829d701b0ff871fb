/* SPDX-License-Identifier: MIT */
/*
 * Spin-then-sleep waiting for a peer's index to move, and the matching
 * wake-up.  The protocol (docs/design.md, "Wake-ups") is a Dekker pair:
 *
 *   sleeper                              waker
 *   [W1] sleeping |= SLEEPING seq_cst    [P2]/[C2] store(watched word) release
 *        fence_heavy() (membarrier)           fence_waker() (compiler / full)
 *   [W2] seq = load(word)    seq_cst     [P3]/[C3] load(sleeping)
 *   [W3] load(watch) == seen seq_cst     if set: xchg(sleeping, 0); [W4] word++ ;
 *                                             FUTEX_WAKE
 *        futex_wait(word, seq)
 *
 * Either the waker's load of `sleeping` comes after [W1] is visible (it
 * bumps the word and wakes; if that happens before futex_wait, the kernel
 * sees word != seq and returns at once), or its store was visible before
 * [W3] (the sleeper sees it and does not sleep): the membarrier puts a full
 * barrier in the waker's instruction stream either before its store (then
 * its load sees [W1]) or after its load (then its store is visible to
 * [W3]); without membarrier, the waker's seq_cst fence and the sleeper's
 * seq_cst accesses give the same two cases in C11's total order S.  So no
 * wake-up is lost, and the waker makes a system call only when the flag
 * says somebody is, or is about to be, asleep.
 *
 * The membarrier makes the kernel interrupt every CPU that runs a
 * registered process, and waits for each: cheap when the peer is idle,
 * an inter-processor interrupt (several microseconds, tens in a virtual
 * machine) when the peer is running -- which is when a request/response
 * pair arms: right after sending.  So a waker that has just woken
 * somebody switches to the symmetric form for a while:
 *
 *   [F1] the waking exchange leaves WAIT_FENCED up: from now on this
 *        waker puts a full fence between every publish and its [P3]/[C3]
 *   [F2] after WAIT_QUIET_MAX publishes in a row that found nobody, a
 *        seq_cst fetch_and takes WAIT_FENCED down; if it finds a sleeper
 *        or poller bit it wakes that one (it may have skipped its
 *        membarrier), and the light fence is used again
 *
 * A sleeper whose [W1] (a poller's [B1]) RMW returns WAIT_FENCED skips the
 * membarrier: every publish that can race with its last look is then
 * fenced (it follows [F1], precedes [F2] in this waker's program order),
 * and [F2], being later than [W1] in the word's modification order, sees
 * its bit.  A sleeper whose RMW does not see the bit comes after [F2] (or
 * before any [F1]) and pays the membarrier as above.  The bit belongs to
 * the waker role: an attaching waker adopts it as it finds it.  A garbled
 * bit written by a peer can only cost the writer's own peer wake-ups that
 * peer could have withheld anyway.
 */
#ifndef SHMRING_SYNC_WAIT_H
#define SHMRING_SYNC_WAIT_H

#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "shmring/inline.h"
#include "fence.h"
#include "futex.h"

/* Longest single futex sleep: every wait on another process is bounded, so a
 * sleeper re-examines the world (dead peers, shutdown) at least this often. */
#define WAIT_SLICE_NS (100u * 1000u * 1000u)
/* ... and when the kernel refused the sleeper's membarrier (sync/fence.h) */
#define WAIT_SLICE_UNFENCED_NS (1000u * 1000u)
#define WAIT_SPIN_DEFAULT_NS 20000u

/* The bits of a side's `sleeping` word: a thread about to sleep on the
 * futex, and a poller whose doorbell wants ringing (sync/bell.h); and the
 * waker's, WAIT_FENCED ([F1], [F2] above). */
#define WAIT_SLEEPING 1u
#define WAIT_POLLING  2u
#define WAIT_FENCED   4u
#define WAIT_WAITERS  (WAIT_SLEEPING | WAIT_POLLING)
/* fenced publishes that found nobody before the waker goes light again */
#define WAIT_QUIET_MAX 64u

/* The waker's side of the fence (private to the handle): struct
 * shmring_inl_fence of the installed inline header, whose hot path reads
 * it -- light: fence_register() said it may go light at all; on:
 * WAIT_FENCED is up, fence every publish; quiet: fenced publishes in a row
 * for nobody. */

/* The waker's fence state on attach: the bit as the last holder of the
 * role left it (we hold the role now: nobody else changes it). */
static inline struct shmring_inl_fence wait_fence_adopt(_Atomic uint32_t *sleeping, bool light)
{
	/* relaxed: only the waker role writes the bit, and that is us */
	uint32_t s = atomic_load_explicit(sleeping, memory_order_relaxed);
	return (struct shmring_inl_fence){ .light = light, .on = (s & WAIT_FENCED) != 0 };
}

/* [F2], out of line: go light again.  True when somebody must be woken. */
__attribute__((visibility("hidden")))
bool wait_unfence(struct shmring_inl_fence *f, _Atomic uint32_t *sleeping);

/*
 * The waker's look after its publish ([P3]/[C3]): true when somebody
 * sleeps or polls and must be woken (wait_wake).
 */
static inline bool wait_look(struct shmring_inl_fence *f, _Atomic uint32_t *sleeping)
{
	if (!f->on)   /* light or full fence, then the load: the inline header's */
		return shmring__look(f, (uint32_t *)(void *)sleeping);
	fence_full();
	/* relaxed, after the fence: the load half of the Dekker pair with
	 * [W1]/[B1] */
	uint32_t s = atomic_load_explicit(sleeping, memory_order_relaxed);
	if (__builtin_expect((s & WAIT_WAITERS) != 0, 0))
		return true;
	if (++f->quiet >= WAIT_QUIET_MAX)
		return wait_unfence(f, sleeping);
	return false;
}

struct waiter {
	_Atomic uint64_t *watch;     /* the peer's index we wait to see move */
	_Atomic uint32_t *shut;      /* stream-ended flag, or NULL */
	_Atomic uint32_t *sleeping;  /* our "about to sleep" flag (read by the waker) */
	_Atomic uint32_t *word;      /* futex word we sleep on */
	_Atomic uint64_t *sleeps;    /* counter of futex sleeps (single writer: us) */
	uint64_t spin_until;         /* CLOCK_MONOTONIC ns; spin, don't sleep, before it */
};

/*
 * Wait until *watch differs from `seen`, the shutdown flag is set, a bounded
 * sleep slice ends, or the deadline passes.  Returns 0 (look again) or
 * -ETIMEDOUT.  A return of 0 does not promise progress: callers re-check.
 */
__attribute__((visibility("hidden")))
int wait_change(struct waiter *w, uint64_t seen, uint64_t deadline);

/*
 * The waker's half, after its index store told it somebody may sleep or
 * poll.  Taking the flag down ourselves means one wake-up per sleep (or
 * arming), not one per message while the other side is still waking up.
 * sleeping == NULL: wake the futex unconditionally (shutdown; f unused).
 * f == NULL: the side has several wakers (broadcast subscribers), and the
 * bit would not say that every one of them fences: never set it.
 * Returns the bits taken down: the caller rings the doorbell on
 * WAIT_POLLING.
 */
static inline uint32_t wait_wake(_Atomic uint32_t *sleeping, _Atomic uint32_t *word,
				 _Atomic uint64_t *wakes, struct shmring_inl_fence *f)
{
	uint32_t was = WAIT_SLEEPING;
	if (sleeping) {
		uint32_t keep = 0;
		if (f) {
			/* this waker fences its publishes from here on */
			f->on = true;
			f->quiet = 0;
			keep = WAIT_FENCED;
		}
		/* [F1] seq_cst RMW: only one waker claims a sleep or an
		 * arming ([W1], [B1]); the other side looks at the ring again
		 * after any wake-up, so nothing is missed.  WAIT_FENCED goes
		 * up with it when f says so. */
		was = atomic_exchange_explicit(sleeping, keep, memory_order_seq_cst);
	}
	if (!(was & WAIT_SLEEPING))
		return was;
	/* [W4] seq_cst: changes the futex word so that a sleeper between
	 * [W2] and futex_wait returns at once (pairs with [W2]). */
	atomic_fetch_add_explicit(word, 1, memory_order_seq_cst);
	futex_wake(word, INT_MAX);
	/* relaxed: counter with one writer per role, only displayed */
	atomic_store_explicit(wakes, atomic_load_explicit(wakes, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	return was;
}

/*
 * MPMC waiting (ring/mpmc.h): many sleepers per side, so a bitmap with one
 * bit per participant replaces the single flag, and each participant sleeps
 * on its own futex word, so that a waker wakes one participant per message
 * rather than all of them:
 *
 *   sleeper                                waker
 *   [K1] fetch_or(mask, bit)  seq_cst      [M3]/[M6] CAS of a slot word, seq_cst
 *   [K5] seq = load(word)     seq_cst      [K2] load(mask)             seq_cst
 *   [K3] load(slot word) == seen seq_cst   if a bit: [K4] fetch_and(mask, ~bit)
 *        futex_wait(word, seq)                 [K6] word++ ; FUTEX_WAKE(word)
 *
 * Both sides are seq_cst read-modify-writes or loads, so in C11's total
 * order S either [K2] sees [K1] (the waker takes the bit, bumps the word
 * with [K6]: futex_wait, which compares it with [K5]'s value, returns at
 * once or is woken) or [K3] sees the CAS (no sleep).  Only a waker clears
 * a bit, and it always wakes what it cleared, so threads sharing one
 * handle (one bit) cannot strand each other.
 */
struct slot_waiter {
	_Atomic uint64_t *watch;     /* the slot word we wait to see change */
	uint64_t seen;
	_Atomic uint32_t *shut;      /* stream-ended flag */
	_Atomic uint64_t *mask;      /* our side's sleeper bitmap */
	uint32_t bit;                /* our participant slot */
	_Atomic uint32_t *word;      /* our futex word */
	_Atomic uint64_t *sleeps;    /* counter (relaxed add) */
	uint64_t spin_until;         /* CLOCK_MONOTONIC ns */
	bool heavy;                  /* the waker may use the light fence (broadcast
					rings): pay the heavy half after [K1] */
};

/* Wait until the slot word differs from `seen`, shutdown, or `until`
 * (CLOCK_MONOTONIC ns) passes.  Returns 0 (look again) or -ETIMEDOUT. */
__attribute__((visibility("hidden")))
int wait_slot(struct slot_waiter *w, uint64_t until);

#endif /* SHMRING_SYNC_WAIT_H */
