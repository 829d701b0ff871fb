/* SPDX-License-Identifier: MIT */
/*
 * MPMC rings: the calls of shmring.h on ring/mpmc.h.  The ring code never
 * blocks; here is what decides and waits:
 *
 *  - waiting: spin, then sleep on this participant's futex word with its
 *    bit up in the side's sleeper mask (sync/wait.h, wait_slot);
 *  - recovery: when an attempt is blocked by a slot that a participant
 *    holds (a producer's WRITING claim for a consumer; a claim or an
 *    acquired message one lap back for a producer), the holder's liveness
 *    lock is tested every DEAD_CHECK_NS (dead: its slot is freed at once,
 *    counted as a hole or a dropped message) and, once the same word has
 *    stood for the ring's stall timeout, the holder is skipped although
 *    alive (ORPHAN / STUCK, counted as a stall; its late commit fails with
 *    -ECANCELED).  The stall clock lives in the handle, so callers that
 *    poll with timeout 0 recover holes as well as sleepers do.
 *
 * The calls reach here through the ops table (backend/backend.h), after
 * api/ops.c checked the arguments and the handle's role.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mpmc.h"
#include "../shm/inspect.h"
#include "../sync/clock.h"
#include "../sync/crash.h"
#include "../sync/futex.h"
#include "../sync/wait.h"

/* How often a blocked caller tests a blocking holder's liveness lock. */
#define DEAD_CHECK_NS (1000u * 1000u)
/* Polls of the same holder's word before the stall clock starts. */
#define POLLS_BEFORE_CLOCK 64u
/* Probing rounds (MPMC_PROBES tickets each, the hint raised after each)
 * before a ring whose words say "taken" without end is called corrupt: a
 * real stale hint is behind by what others did in one preemption. */
#define BUSY_ROUNDS 1024u
/* unblock()'s "look again after a short slice" */
#define NEXT_SOON 1u
/* How long a call with timeout 0 may go on trying again without waiting
 * (a holder freed or skipped, another participant faster, words changing
 * under it) before it answers -EAGAIN: a few such rounds in practice. */
#define NOWAIT_BUDGET_NS (1000u * 1000u)
/* ... and a call that may wait pauses this long every RETRY_BURST of them */
#define RETRY_BURST 64u
#define RETRY_PAUSE_NS (1000u * 1000u)

enum { SIDE_PROD = 0, SIDE_CONS = 1 };


/* A participant's own counter: no locked instruction per message.  Exact
 * while one thread uses the handle; threads sharing an MPMC handle may
 * lose a count now and then (never corrupt one). */
static inline void part_count(_Atomic uint64_t *ctr, uint64_t n)
{
	/* relaxed: statistics, read by monitors only */
	atomic_store_explicit(ctr, atomic_load_explicit(ctr, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

/* ---- wake-ups ------------------------------------------------------------ */

/* Take up to n bits of mask down and wake their owners: a sleeper through
 * its futex word, a poller (pollers) through its doorbell.  Returns how
 * many of n are left. */
static unsigned wake_bits(struct mpmc_handle *r, _Atomic uint64_t *mask, unsigned n,
			  bool pollers)
{
	struct mpmc_shared *sh = r->mp.sh;
	_Atomic uint64_t *counter = pollers ? &sh->parts[0].bells : &sh->parts[0].wakes;
	if (r->mp.part)
		counter = pollers ? &r->mp.part->bells : &r->mp.part->wakes;
	for (unsigned k = 0; k < MPMC_MASK_WORDS && n; k++) {
		uint64_t m = atomic_load_explicit(&mask[k], memory_order_seq_cst);
		while (m && n) {
			uint64_t bit = m & -m;
			m &= m - 1;
			/* [K4] seq_cst RMW: one waker takes a bit, and wakes */
			if (!(atomic_fetch_and_explicit(&mask[k], ~bit, memory_order_seq_cst) & bit))
				continue;
			unsigned idx = k * 64 + (unsigned)__builtin_ctzll(bit);
			if (idx >= CTL_MAX_PARTS)
				continue;
			n--;
			if (pollers) {
				segh_ring(&r->seg, idx + 1, counter);
				continue;
			}
			_Atomic uint32_t *word = &sh->parts[idx].wake;
			/* [K6] seq_cst: a sleeper between [K5] and futex_wait
			 * returns at once (pairs with [K5]) */
			atomic_fetch_add_explicit(word, 1, memory_order_seq_cst);
			futex_wake(word, INT_MAX);
			if (r->mp.part)
				mpmc_count(counter, 1);
		}
	}
	return n;
}

static __attribute__((noinline)) void wake_slow(struct mpmc_handle *r, int side, unsigned n)
{
	struct mpmc_shared *sh = r->mp.sh;
	/* Up to n of each: a sleeper's bit may be stale (it timed out and
	 * left), and a sleeper looks again within its slice anyway, but a
	 * poller has no slice -- it must not go without its ring because a
	 * stale sleeper bit took the wake-up. */
	(void)wake_bits(r, side == SIDE_CONS ? sh->cons_sleepers : sh->prod_sleepers, n, false);
	(void)wake_bits(r, side == SIDE_CONS ? sh->cons_pollers : sh->prod_pollers, n, true);
}

/* After a publish (side = consumers) or a free (producers): wake up to n
 * sleeping or polling participants.  Costs six loads of read-mostly words
 * when nobody waits (one per mask word). */
static inline void wake(struct mpmc_handle *r, int side, unsigned n)
{
	struct mpmc_shared *sh = r->mp.sh;
	_Atomic uint64_t *s = side == SIDE_CONS ? sh->cons_sleepers : sh->prod_sleepers;
	_Atomic uint64_t *p = side == SIDE_CONS ? sh->cons_pollers : sh->prod_pollers;
	/* [K2] seq_cst: after our slot CAS [M3]/[M6] in S; pairs with [K1]
	 * (sleepers) and [B1] (pollers) */
	uint64_t any = 0;
	for (unsigned k = 0; k < MPMC_MASK_WORDS; k++)
		any |= atomic_load_explicit(&s[k], memory_order_seq_cst) |
		       atomic_load_explicit(&p[k], memory_order_seq_cst);
	if (unlikely(any))
		wake_slow(r, side, n);
}

static void wake_everyone(struct mpmc_handle *r)
{
	wake_slow(r, SIDE_CONS, UINT_MAX);
	wake_slow(r, SIDE_PROD, UINT_MAX);
}

/* ---- recovery decisions ----------------------------------------------------- */

/* Is the word at p a participant's hold that keeps this side waiting? */
static bool holder_blocks(const struct mpmc_handle *r, const struct mpmc_pos *p, int side)
{
	unsigned st = mw_state(p->w);
	int64_t d = mw_diff(p->w, p->t);
	if (side == SIDE_CONS)
		return d == 0 && st == MS_WRITING;
	return d == -(int64_t)r->mp.g.nslots && st != MS_READY;
}

/* Already skipped once: its holder stalled past the timeout before. */
static bool skipped_before(uint64_t w)
{
	return mw_state(w) == MS_ORPHAN || mw_state(w) == MS_STUCK;
}

/*
 * An attempt was blocked at p.  Returns true if it freed or skipped the
 * blocking slot (try again now); otherwise *next is when it wants to look
 * again (UINT64_MAX: only when the slot changes).
 */
static bool unblock(struct mpmc_handle *r, int side, const struct mpmc_pos *p, uint64_t *next,
		    bool waited)
{
	*next = UINT64_MAX;
	/* relaxed throughout: a per-handle stall clock, shared only by
	 * threads of this handle; a race costs a late or early check */
	if (!holder_blocks(r, p, side))
		return false;
	if (skipped_before(p->w)) {
		/* its holder was already found stalled: free it if it died
		 * since, else skip this lap at once */
		if (!ctl_owner_alive(r->seg.ctl, r->seg.map->fd, mw_owner(p->w)))
			(void)mpmc_recover_dead(&r->mp, p);
		else
			(void)mpmc_skip_stalled(&r->mp, p);
		return true;
	}
	/* A holder usually finishes within a few polls (a consumer meets the
	 * producer's claim while it copies): start the clock only when the
	 * same word has been seen POLLS_BEFORE_CLOCK times in a row. */
	if (atomic_load_explicit(&r->mp_watch[side], memory_order_relaxed) != p->w) {
		atomic_store_explicit(&r->mp_watch[side], p->w, memory_order_relaxed);
		atomic_store_explicit(&r->mp_since[side], 0, memory_order_relaxed);
		atomic_store_explicit(&r->mp_checked[side], 0, memory_order_relaxed);
		*next = NEXT_SOON;
		return false;
	}
	uint64_t polls = atomic_load_explicit(&r->mp_since[side], memory_order_relaxed);
	if (waited && polls < POLLS_BEFORE_CLOCK)
		polls = POLLS_BEFORE_CLOCK;     /* a wait already spun: start now */
	if (polls < POLLS_BEFORE_CLOCK) {
		atomic_store_explicit(&r->mp_since[side], polls + 1, memory_order_relaxed);
		*next = NEXT_SOON;
		return false;
	}
	uint64_t now = clock_mono_ns();
	if (polls == POLLS_BEFORE_CLOCK) {
		/* mp_since holds the poll count, then the time of the first
		 * clock read: times are far above POLLS_BEFORE_CLOCK */
		atomic_store_explicit(&r->mp_since[side], now, memory_order_relaxed);
		atomic_store_explicit(&r->mp_checked[side], now, memory_order_relaxed);
		*next = now + DEAD_CHECK_NS;
		return false;
	}
	uint64_t since = atomic_load_explicit(&r->mp_since[side], memory_order_relaxed);
	uint64_t checked = atomic_load_explicit(&r->mp_checked[side], memory_order_relaxed);
	if (now - checked >= DEAD_CHECK_NS) {
		checked = now;
		atomic_store_explicit(&r->mp_checked[side], now, memory_order_relaxed);
		if (!ctl_owner_alive(r->seg.ctl, r->seg.map->fd, mw_owner(p->w))) {
			if (mpmc_recover_dead(&r->mp, p))
				wake_everyone(r);
			return true;
		}
	}
	if (now - since >= r->stall_ns) {
		if (mpmc_skip_stalled(&r->mp, p))
			wake_everyone(r);
		return true;
	}
	uint64_t a = checked + DEAD_CHECK_NS, b = since + r->stall_ns;
	*next = a < b ? a : b;
	return false;
}

/*
 * One call's time: its timeout, the deadline (fixed when first needed)
 * and the spin window.  Every path that tries again goes through again()
 * or a wait, so no call outlives its timeout, whatever the segment's
 * words do meanwhile (a peer may rewrite them without end).
 */
struct call {
	int64_t timeout_ns;
	uint64_t deadline;      /* 0 until first needed */
	uint64_t spin_until;    /* 0 until the first wait */
	unsigned retries;       /* immediate retries so far */
	bool waited;            /* a wait was counted */
	struct seg_handle *seg; /* the caller's handle; NULL: never ring it */
};

static uint64_t call_deadline(struct call *c)
{
	if (c->deadline == 0)
		c->deadline = c->timeout_ns == 0 ? clock_deadline(NOWAIT_BUDGET_NS)
						  : clock_deadline(c->timeout_ns);
	return c->deadline;
}

/* About to try again at once: 0, or the call's answer once its time is up
 * (-EAGAIN for timeout 0, -ETIMEDOUT otherwise).  A call that may wait
 * pauses RETRY_PAUSE_NS (within its deadline) every RETRY_BURST retries:
 * holders skipped lap after lap, or words rewritten without end, do not
 * keep it spinning. */
static int again(struct call *c)
{
	uint64_t now = clock_mono_ns();
	uint64_t deadline = c->timeout_ns < 0 ? UINT64_MAX : call_deadline(c);
	if (now >= deadline && c->timeout_ns != 0)
		return -ETIMEDOUT;
	if (now >= deadline) {
		/* Out of tries, not blocked where a waker would look: a
		 * poller's doorbell is not armed.  Ring it ourselves, so that
		 * its loop comes back (spurious, but never stuck). */
		if (c->seg && segh_polls(c->seg))
			segh_ring_self(c->seg);
		return -EAGAIN;
	}
	if (c->timeout_ns != 0 && ++c->retries % RETRY_BURST == 0) {
		uint64_t until = deadline - now > RETRY_PAUSE_NS ? now + RETRY_PAUSE_NS : deadline;
		struct timespec ts = clock_ts(until);
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
	}
	return 0;
}

/* Sleep (after a bounded spin) until the slot word at p changes, `until`
 * passes, or the stream ends.  0 or -ETIMEDOUT when the caller's own
 * deadline passed. */
static int wait_at(struct mpmc_handle *r, int side, const struct mpmc_pos *p, uint64_t deadline,
		   uint64_t next, uint64_t *spin_until)
{
	struct mpmc_shared *sh = r->mp.sh;
	if (*spin_until == 0)
		*spin_until = clock_mono_ns() + r->seg.head.spin_ns;
	struct slot_waiter w = {
		.watch = &mpmc_slot(&r->mp.g, p->t)->word,
		.seen = p->w,
		.shut = &sh->shutdown,
		.mask = side == SIDE_CONS ? sh->cons_sleepers : sh->prod_sleepers,
		.bit = r->mp.me - 1,
		.word = &r->mp.part->wake,
		.sleeps = &r->mp.part->sleeps,
		.spin_until = *spin_until,
	};
	if (next == NEXT_SOON)
		next = clock_mono_ns() + DEAD_CHECK_NS;
	uint64_t until = next < deadline ? next : deadline;
	int rc = wait_slot(&w, until);
	if (rc == -ETIMEDOUT && until == deadline)
		return -ETIMEDOUT;
	return 0;
}

/* Messages this participant moved: a wake-up after which it moved none
 * was spurious. */
static uint64_t own_done(const struct mpmc_handle *r)
{
	/* relaxed: our own counters */
	return atomic_load_explicit(&r->mp.part->msgs_sent, memory_order_relaxed) +
	       atomic_load_explicit(&r->mp.part->msgs_recv, memory_order_relaxed);
}

/* A polling handle's call with timeout 0 is blocked at p: arm its
 * doorbell for this side and look once more.  -EAGAIN, or 0: try again. */
static int poll_arm(struct mpmc_handle *r, int side, const struct mpmc_pos *p)
{
	struct mpmc_shared *sh = r->mp.sh;
	segh_arm_prepare(&r->seg, own_done(r), &r->mp.part->spurious);
	uint32_t bit = r->mp.me - 1;
	_Atomic uint64_t *mask = side == SIDE_CONS ? sh->cons_pollers : sh->prod_pollers;
	/* [B1] seq_cst RMW: announce the poller before the last look; pairs
	 * with the waker's [K2] load and [K4] exchange of the bit */
	atomic_fetch_or_explicit(&mask[bit / 64], 1ull << (bit % 64), memory_order_seq_cst);
	/* [B3] seq_cst: the last look, after [B1] in S: either the waker's
	 * [K2] sees our bit, or we see its slot CAS ([M3]/[M6]) here */
	if (atomic_load_explicit(&mpmc_slot(&r->mp.g, p->t)->word, memory_order_seq_cst) == p->w &&
	    !atomic_load_explicit(&sh->shutdown, memory_order_seq_cst))
		return -EAGAIN;
	/* the call goes on and arms again at its next -EAGAIN: take the bit
	 * down, so that no waker rings for nobody (relaxed: ours; a waker
	 * that took it first rang, and the next arming drains that) */
	atomic_fetch_and_explicit(&mask[bit / 64], ~(1ull << (bit % 64)), memory_order_relaxed);
	return 0;
}

/*
 * An attempt of this side was blocked at p: recover or skip a dead or
 * stalled holder, or wait (the first wait counts).  0: try again;
 * -EAGAIN (timeout 0), -ETIMEDOUT.
 */
static int blocked(struct mpmc_handle *r, int side, const struct mpmc_pos *p, struct call *c)
{
	uint64_t next;
	if (unblock(r, side, p, &next, c->waited))
		return again(c);
	if (c->timeout_ns == 0)
		return !segh_polls(&r->seg) ? -EAGAIN : poll_arm(r, side, p);
	if (!c->waited) {
		c->waited = true;
		mpmc_count(side == SIDE_PROD ? &r->mp.part->waits_full : &r->mp.part->waits_empty, 1);
	}
	return wait_at(r, side, p, call_deadline(c), next, &c->spin_until);
}

/* ---- producer ------------------------------------------------------------------ */

/* Right after a claim CAS of the k tickets from t: k, or -EPIPE with the
 * claim given back.  [X1] seq_cst, after the claim CAS [M2] in S: a
 * consumer that saw the shutdown and then no claim here ([X2]) has
 * answered -EPIPE. */
static inline int claimed(struct mpmc_handle *r, uint64_t t, int k)
{
	if (unlikely(atomic_load_explicit(&r->mp.sh->shutdown, memory_order_seq_cst))) {
		if (k > 1)
			mpmc_cancel_range(&r->mp, t, (uint64_t)k);
		else
			mpmc_cancel(&r->mp, t);
		return -EPIPE;
	}
	return k;
}

/* Claim a slot for a message of len bytes, or a range of up to kmax
 * slots, waiting as timeout_ns says: how many, or -errno. */
static inline __attribute__((always_inline)) int produce_begin(struct mpmc_handle *r, size_t len, struct mpmc_pos *p,
				int64_t timeout_ns, uint64_t kmax)
{
	struct mpmc_shared *sh = r->mp.sh;
	struct call c = { .timeout_ns = timeout_ns, .seg = &r->seg };
	unsigned busy = 0;
	if (unlikely(len > r->mp.g.max_msg))
		return -EMSGSIZE;
	for (;;) {
		/* relaxed: only stops further sends; checked again below */
		if (unlikely(atomic_load_explicit(&sh->shutdown, memory_order_relaxed)))
			return -EPIPE;
		int rc = mpmc_claim_n(&r->mp, p, kmax);
		if (likely(rc > 0))
			return claimed(r, p->t, rc);
		if (rc == -EBUSY) {
			if (++busy > BUSY_ROUNDS)
				return -EPROTO;
			if ((rc = again(&c)) < 0)
				return rc;
			continue;
		}
		if (rc != -EAGAIN)
			return rc;
		if ((rc = blocked(r, SIDE_PROD, p, &c)) < 0)
			return rc;
	}
}

static int publish(struct mpmc_handle *r, uint64_t t, size_t len)
{
	CRASH_POINT("mpmc.before_commit");
	int rc = mpmc_commit(&r->mp, t, (uint32_t)len);
	if (rc < 0)
		return rc;
	CRASH_POINT("mpmc.committed");
	part_count(&r->mp.part->msgs_sent, 1);
	part_count(&r->mp.part->bytes_sent, len);
	return 0;
}

static int mp_send(struct shmring *sr, const void *msg, size_t len, int64_t timeout_ns)
{
	struct mpmc_handle *r = mph_of(sr);
	struct mpmc_pos p;
	int rc = produce_begin(r, len, &p, timeout_ns, 1);
	if (unlikely(rc < 0))
		return rc;
	uint8_t *at = mpmc_payload(&r->mp.g, p.t);
#ifdef SHMRING_CRASH_POINTS
	size_t half = len / 2;            /* the crash tests die half-way */
	memcpy(at, msg, half);
	CRASH_POINT("mpmc.mid_copy");
	memcpy(at + half, (const uint8_t *)msg + half, len - half);
#else
	ring_copy(at, msg, len);
#endif
	if ((rc = publish(r, p.t, len)) < 0)
		return rc;
	wake(r, SIDE_CONS, 1);
	return 0;
}

static int mp_reserve(struct shmring *sr, size_t len, struct shmring_msg *m, int64_t timeout_ns)
{
	struct mpmc_handle *r = mph_of(sr);
	struct mpmc_pos p;
	int rc = produce_begin(r, len, &p, timeout_ns, 1);
	if (unlikely(rc < 0))
		return rc;
	m->data = mpmc_payload(&r->mp.g, p.t);
	m->len = len;
	m->priv[0] = p.t;      /* the ticket: commit's CAS proves it is still ours */
	m->priv[1] = len;      /* the most commit may publish */
	return 0;
}

static int mp_commit(struct shmring *sr, struct shmring_msg *m)
{
	struct mpmc_handle *r = mph_of(sr);
	if (unlikely(m->len > m->priv[1] || m->priv[1] > r->mp.g.max_msg ||
		     m->data != mpmc_payload(&r->mp.g, m->priv[0])))
		return -EINVAL;
	/* relaxed: as in produce_begin; a shutdown during the write drops the
	 * frame rather than let it appear after consumers saw -EPIPE */
	if (unlikely(atomic_load_explicit(&r->mp.sh->shutdown, memory_order_relaxed))) {
		uint64_t w = mw_make(m->priv[0], MS_WRITING, r->mp.me);
		if (atomic_load_explicit(&mpmc_slot(&r->mp.g, m->priv[0])->word,
					 memory_order_relaxed) != w)
			return -EINVAL;
		mpmc_cancel(&r->mp, m->priv[0]);
		atomic_fetch_add_explicit(&r->seg.ctl->dropped, 1, memory_order_relaxed);
		m->data = NULL;
		return -EPIPE;
	}
	int rc = publish(r, m->priv[0], m->len);
	if (rc == 0 || rc == -ECANCELED)
		m->data = NULL;       /* either way the reservation is over */
	if (rc == 0)
		wake(r, SIDE_CONS, 1);
	return rc;
}

/* How many of the messages from msgs[0] (n of them) one range may carry:
 * each valid and fitting, at most range_max. */
static unsigned range_fit(const struct mpmc_handle *r, const struct iovec *msgs, unsigned n)
{
	unsigned m = 0;
	while (m < n && m < r->range_max && (msgs[m].iov_base || !msgs[m].iov_len) &&
	       msgs[m].iov_len <= r->mp.g.max_msg)
		m++;
	return m;
}

/*
 * A batch goes in ranges: one claim CAS for up to MPMC_RANGE_MAX slots
 * that stand FREE one after the other (mpmc_claim_n), the copies, and one
 * commit CAS (mpmc_commit_range).  Wait only for the first range.
 */
static int mp_send_batch(struct shmring *sr, const struct iovec *msgs, unsigned n,
			 int64_t timeout_ns)
{
	struct mpmc_handle *r = mph_of(sr);
	struct mpmc_pos p = { 0, 0 };
	unsigned i = 0;
	int rc = 0;
	while (i < n) {
		unsigned m = range_fit(r, msgs + i, n - i);
		if (m == 0) {
			rc = !msgs[i].iov_base && msgs[i].iov_len ? -EINVAL : -EMSGSIZE;
			break;
		}
		rc = produce_begin(r, msgs[i].iov_len, &p, i == 0 ? timeout_ns : 0, m);
		if (rc < 0)
			break;
		unsigned k = (unsigned)rc;
		if (k == 1) {
			ring_copy(mpmc_payload(&r->mp.g, p.t), msgs[i].iov_base, msgs[i].iov_len);
			if ((rc = publish(r, p.t, msgs[i].iov_len)) < 0)
				break;
			i++;
			continue;
		}
		uint64_t bytes = 0;
		const uint8_t *end = mpmc_data_end(&r->mp.g);
		struct mpmc_slot *s = mpmc_slot(&r->mp.g, p.t);
		for (unsigned j = 0; j < k; j++) {
			size_t len = msgs[i + j].iov_len;
			ring_copy((uint8_t *)s + r->mp.g.hdr, msgs[i + j].iov_base, len);
			/* relaxed: published by [M11] / [M3] */
			atomic_store_explicit(&s->len, (uint32_t)len, memory_order_relaxed);
			bytes += len;
			s = mpmc_slot_after(&r->mp.g, s, end);
			CRASH_POINT("mpmc.range_copy");
		}
		if ((rc = mpmc_commit_range(&r->mp, p.t, k)) < 0)
			break;
		CRASH_POINT("mpmc.committed");
		part_count(&r->mp.part->msgs_sent, k);
		part_count(&r->mp.part->bytes_sent, bytes);
		i += k;
	}
	if (i == 0)
		return rc;
	wake(r, SIDE_CONS, i);
	return (int)i;
}

static int mp_shutdown(struct shmring *sr)
{
	struct mpmc_handle *r = mph_of(sr);
	/* [X0] seq_cst: pairs with [X1] and [X2] */
	atomic_store_explicit(&r->mp.sh->shutdown, 1, memory_order_seq_cst);
	wake_everyone(r);
	return 0;
}

/* ---- consumer ------------------------------------------------------------------ */

/* Find a READY message, waiting as timeout_ns says; -EPIPE once the stream
 * is shut down and nothing is left or being written. */
static int consume_begin(struct mpmc_handle *r, struct mpmc_pos *p, struct call *c)
{
	struct mpmc_shared *sh = r->mp.sh;
	unsigned busy = 0;
	for (;;) {
		int rc = mpmc_peek(&r->mp, p);
		if (likely(rc == 0))
			return 0;
		if (rc == -EBUSY) {
			if (++busy > BUSY_ROUNDS)
				return -EPROTO;
			if ((rc = again(c)) < 0)
				return rc;
			continue;
		}
		if (rc != -EAGAIN)
			return rc;
		/* [X2] seq_cst loads: the shutdown flag, then the slot again.
		 * A producer whose claim is not visible here will see the flag
		 * at [X1] and give its claim back. */
		if (atomic_load_explicit(&sh->shutdown, memory_order_seq_cst)) {
			uint64_t w = atomic_load_explicit(&mpmc_slot(&r->mp.g, p->t)->word,
							  memory_order_seq_cst);
			if (w != p->w) {
				if ((rc = again(c)) < 0)
					return rc;
				continue;
			}
			if (mw_state(w) != MS_WRITING || mw_diff(w, p->t) != 0)
				return -EPIPE;
		}
		if ((rc = blocked(r, SIDE_CONS, p, c)) < 0)
			return rc;
	}
}

static void consumed(struct mpmc_handle *r, unsigned n, uint64_t bytes)
{
	part_count(&r->mp.part->msgs_recv, n);
	part_count(&r->mp.part->bytes_recv, bytes);
	wake(r, SIDE_PROD, n);
}

/*
 * Copy the READY message at p into buf and make it ours.  The copy comes
 * first and the CAS that frees the slot decides (mpmc_consume): a consumer
 * killed mid-copy loses nothing.  Returns the length, -EAGAIN when another
 * consumer had it (look again), -EMSGSIZE (it stays) or -EPROTO.
 */
static ssize_t copy_out(struct mpmc_handle *r, struct mpmc_pos *p, void *buf, size_t cap)
{
	int64_t len = mpmc_len(&r->mp, p);
	if (len < 0)
		return len;
	if ((size_t)len > cap) {
		/* acquire: the length belongs to this word, else look again */
		if (atomic_load_explicit(&mpmc_slot(&r->mp.g, p->t)->word,
					 memory_order_acquire) != p->w)
			return -EAGAIN;
		return -EMSGSIZE;
	}
#if defined(__SANITIZE_THREAD__)
	/* ThreadSanitizer would report the optimistic copy's race with a
	 * producer of a later lap (whose result the CAS then discards):
	 * under it, hold the slot while copying. */
	if (mpmc_take(&r->mp, p) < 0)
		return -EAGAIN;
	memcpy(buf, mpmc_payload(&r->mp.g, p->t), (size_t)len);
	if (mpmc_release(&r->mp, p->t) < 0)
		return -EPROTO;
#else
	ring_copy_out(buf, mpmc_payload(&r->mp.g, p->t), (size_t)len);
	CRASH_POINT("mpmc.mid_read");
	if (mpmc_consume(&r->mp, p) < 0)
		return -EAGAIN;       /* another consumer had it: the copy is void */
#endif
	return len;
}

/* The next message, waiting as timeout_ns says, copied into buf; *p tells
 * which ticket it was.  Returns the length, or -errno. */
static ssize_t take_copy(struct mpmc_handle *r, struct mpmc_pos *p, void *buf, size_t cap,
			 struct call *c)
{
	for (;;) {
		int rc = consume_begin(r, p, c);
		if (rc < 0)
			return rc;
		ssize_t len = copy_out(r, p, buf, cap);
		if (len != -EAGAIN)
			return len;
		if ((rc = again(c)) < 0)       /* another consumer had it */
			return rc;
	}
}

static ssize_t mp_recv(struct shmring *sr, void *buf, size_t cap, int64_t timeout_ns)
{
	struct mpmc_handle *r = mph_of(sr);
	struct call c = { .timeout_ns = timeout_ns, .seg = &r->seg };
	struct mpmc_pos p;
	ssize_t len = take_copy(r, &p, buf, cap, &c);
	if (len >= 0)
		consumed(r, 1, (uint64_t)len);
	return len;
}

/* How many buffers from bufs[0] (n of them) one range may fill: each
 * valid, at most range_max. */
static unsigned bufs_fit(const struct mpmc_handle *r, const struct iovec *bufs, unsigned n)
{
	unsigned m = 0;
	while (m < n && m < r->range_max && (bufs[m].iov_base || !bufs[m].iov_len))
		m++;
	return m;
}

/*
 * The READY message at p and those standing READY right after it, up to
 * m of them, each fitting its buffer, copied into bufs and taken in one
 * CAS (mpmc_take_range), their slots freed.  Returns how many (each
 * buffer's iov_len set, *bytes grown), 0 when fewer than two qualify (the
 * caller takes one alone), or -EAGAIN when another consumer had the first.
 */
static int take_range(struct mpmc_handle *r, struct mpmc_pos *p, struct iovec *bufs, unsigned m,
		      uint64_t *bytes)
{
	const struct mpmc_geom *g = &r->mp.g;
	uint64_t run = mpmc_run_of(g, p->t, m, MS_READY), k;
	uint32_t lens[MPMC_RANGE_MAX];
	const uint8_t *end = mpmc_data_end(g);
	struct mpmc_slot *s = mpmc_slot(g, p->t);
	for (k = 0; k < run; k++) {
		/* relaxed: after the [M4] loads that saw the words READY; a
		 * later lap's value is voided by the take CAS failing */
		lens[k] = atomic_load_explicit(&s->len, memory_order_relaxed);
		if (lens[k] > g->max_msg || lens[k] > bufs[k].iov_len)
			break;           /* the range ends before it; alone, it is told */
#if !defined(__SANITIZE_THREAD__)
		ring_copy_out(bufs[k].iov_base, (uint8_t *)s + g->hdr, lens[k]);
#endif
		s = mpmc_slot_after(g, s, end);
	}
	if (k < 2)
		return 0;
#if defined(__SANITIZE_THREAD__)
	/* as in copy_out(): under ThreadSanitizer, take first, then copy */
	if (mpmc_take_range(&r->mp, p, k) < 0)
		return -EAGAIN;
	for (uint64_t j = 0; j < k; j++)
		memcpy(bufs[j].iov_base, mpmc_payload(g, p->t + j), lens[j]);
#else
	CRASH_POINT("mpmc.mid_read");
	if (mpmc_take_range(&r->mp, p, k) < 0)
		return -EAGAIN;       /* another consumer had it: the copies are void */
#endif
	mpmc_free_range(&r->mp, p->t, k);
	for (uint64_t j = 0; j < k; j++) {
		bufs[j].iov_len = lens[j];
		*bytes += lens[j];
	}
	p->t += k - 1;                /* the last one taken: mpmc_peek_after() goes on */
	return (int)k;
}

static int mp_recv_batch(struct shmring *sr, struct iovec *bufs, unsigned n, int64_t timeout_ns)
{
	struct mpmc_handle *r = mph_of(sr);
	struct mpmc_pos p = { 0, 0 };
	/* wait only for the first message */
	/* the rest of a batch ends it at -EAGAIN: the call has an answer,
	 * and rings nothing */
	struct call first = { .timeout_ns = timeout_ns, .seg = &r->seg };
	struct call rest = { .timeout_ns = 0 };
	uint64_t bytes = 0;
	unsigned i = 0;
	ssize_t rc = 0;
	bool took = false;            /* p.t is the last ticket we took */
	while (i < n) {
		unsigned m = bufs_fit(r, bufs + i, n - i);
		if (unlikely(m == 0)) {
			rc = -EINVAL;
			break;
		}
		struct call *c = i == 0 ? &first : &rest;
		/* Right after a ticket we took, the very next one if it is
		 * READY.  Only then: after a ticket another consumer took,
		 * the next one may be a READY word of its range, which its
		 * first word covers (mpmc_run_of()); the scan of
		 * consume_begin() passes such a range whole. */
		if ((!took || mpmc_peek_after(&r->mp, &p) < 0) && (rc = consume_begin(r, &p, c)) < 0)
			break;
		took = false;
		rc = m > 1 ? take_range(r, &p, bufs + i, m, &bytes) : 0;
		if (rc > 0) {
			i += (unsigned)rc;
			took = true;
			continue;
		}
		if (rc == 0)
			rc = copy_out(r, &p, bufs[i].iov_base, bufs[i].iov_len);
		if (rc == -EAGAIN) {          /* another consumer had it */
			if ((rc = again(c)) < 0)
				break;
			continue;
		}
		if (rc < 0)
			break;
		bufs[i].iov_len = (size_t)rc;
		bytes += (uint64_t)rc;
		i++;
		took = true;
	}
	if (i == 0)
		return (int)rc;
	consumed(r, i, bytes);
	return (int)i;
}

static int mp_acquire(struct shmring *sr, struct shmring_msg *m, int64_t timeout_ns)
{
	struct mpmc_handle *r = mph_of(sr);
	struct call c = { .timeout_ns = timeout_ns, .seg = &r->seg };
	for (;;) {
		struct mpmc_pos p;
		int rc = consume_begin(r, &p, &c);
		if (rc < 0)
			return rc;
		if (mpmc_take(&r->mp, &p) < 0) {
			if ((rc = again(&c)) < 0)    /* another consumer was faster */
				return rc;
			continue;
		}
		/* relaxed: ours now, after [M5] */
		uint32_t len = atomic_load_explicit(&mpmc_slot(&r->mp.g, p.t)->len,
						    memory_order_relaxed);
		if (len > r->mp.g.max_msg) {
			(void)mpmc_release(&r->mp, p.t);
			return -EPROTO;
		}
		m->data = mpmc_payload(&r->mp.g, p.t);
		m->len = len;
		m->priv[0] = p.t;
		m->priv[1] = len;
		return 0;
	}
}

static int mp_release(struct shmring *sr, struct shmring_msg *m)
{
	struct mpmc_handle *r = mph_of(sr);
	if (m->len > m->priv[1] || m->data != mpmc_payload(&r->mp.g, m->priv[0]))
		return -EINVAL;
	int rc = mpmc_release(&r->mp, m->priv[0]);
	if (rc < 0)
		return rc;
	CRASH_POINT("mpmc.released");
	m->data = NULL;
	consumed(r, 1, m->priv[1]);
	return 0;
}

/* ---- the rest of the table ---------------------------------------------------------- */

static int mp_caps(struct shmring *sr, struct shmring_caps *caps)
{
	struct mpmc_handle *r = mph_of(sr);
	caps->flags = SHMRING_CAP_ZEROCOPY | SHMRING_CAP_MPMC | SHMRING_CAP_RECOVERY |
		      SHMRING_CAP_BLOCKING | SHMRING_CAP_PERSISTENT | SHMRING_CAP_POLL;
	caps->max_producers = MPMC_MAX_ROLE;
	caps->max_consumers = MPMC_MAX_ROLE;
	caps->max_msg = r->mp.g.max_msg;
	caps->capacity = r->seg.map->geom.capacity;
	return 0;
}

static const struct shmring_backend_ops mph_ops = {
	.fd = segh_fd,
	.name = "mpmc",
	.send = mp_send, .recv = mp_recv,
	.reserve = mp_reserve, .commit = mp_commit,
	.acquire = mp_acquire, .release = mp_release,
	.send_batch = mp_send_batch, .recv_batch = mp_recv_batch,
	.shutdown = mp_shutdown, .stats = segh_stats, .caps = mp_caps,
	.fork_child = segh_fork_child, .close = segh_close,
};

/* ---- attach and detach ------------------------------------------------------------- */

static void sweep_cb(void *arg, const uint64_t dead[CTL_MASK_WORDS])
{
	struct mpmc_handle *r = arg;
	uint64_t gone[CTL_MASK_WORDS];
	unsigned n = 0;
	for (unsigned k = 0; k < CTL_MASK_WORDS; k++) {
		gone[k] = dead[k];
		n += (unsigned)__builtin_popcountll(dead[k]);
	}
	/* With the control lock held nobody is joining, so a word naming a free table
	 * slot is a leftover too (a sweep that gave up on a busy word). */
	for (uint32_t i = 0; i < CTL_MAX_PARTS; i++)
		/* relaxed: under the control lock */
		if (atomic_load_explicit(&r->seg.ctl->parts[i].state, memory_order_relaxed) == PART_FREE)
			gone[i / 64] |= 1ull << (i % 64);
	mpmc_sweep(r->mp.sh, &r->mp.g, gone);
	/* relaxed: a counter.  Each dead participant's roles are freed here:
	 * MPMC's takeover (a crash during the repair may count one twice). */
	atomic_fetch_add_explicit(&r->seg.ctl->takeovers, n, memory_order_relaxed);
}

static int kind_init(struct seg_handle *s)
{
	struct mpmc_handle *r = (struct mpmc_handle *)s;
	const struct seg_geom *g = &r->seg.map->geom;
	struct mpmc_shared *sh = (struct mpmc_shared *)(r->seg.map->base + g->ring_off);
	/* relaxed: written once by the creator before the version was
	 * published (seg_map's acquire); copied, then validated */
	uint32_t stall_ms = sh->stall_ms;
	if (!seg_stall_valid(stall_ms))
		return -EPROTO;
	r->mp.sh = sh;
	seg_mpmc_geom(g, r->seg.map->base + g->data_off, &r->mp.g);
	r->stall_ns = (uint64_t)stall_ms * 1000000u;
	r->range_max = (g->flags & SEG_HF_RANGES) ? MPMC_RANGE_MAX : 1;
	r->sweep.fn = sweep_cb;
	r->sweep.arg = r;
	return 0;
}

static int kind_attach(struct seg_handle *s, uint32_t roles)
{
	struct mpmc_handle *r = (struct mpmc_handle *)s;
	int rc = segh_lock(&r->seg, &r->sweep);
	if (rc < 0)
		return rc;
	ctl_repair(r->seg.ctl, r->seg.map->fd, &r->sweep);
	uint32_t np, nc;
	ctl_count(r->seg.ctl, r->seg.map->fd, &np, &nc);
	if (((roles & ROLE_PRODUCER) && np >= MPMC_MAX_ROLE) ||
	    ((roles & ROLE_CONSUMER) && nc >= MPMC_MAX_ROLE)) {
		rc = -EUSERS;
		goto out;
	}
	rc = ctl_join(r->seg.ctl, r->seg.lock_fd, roles);
	if (rc < 0)
		goto out;
	r->seg.slot = rc;
	r->mp.me = (uint32_t)rc + 1;
	r->mp.part = &r->mp.sh->parts[rc];
	r->seg.head.roles = roles;
	rc = 0;
out:
	segh_unlock(&r->seg);
	return rc;
}

static void kind_detach(struct seg_handle *s)
{
	struct mpmc_handle *r = (struct mpmc_handle *)s;
	if (segh_lock(&r->seg, &r->sweep) < 0)
		return;     /* closing lock_fd still proves us gone; the next repair sweeps */
	/* Whatever this handle still holds (an open reservation, acquired
	 * messages) is given up now, as if we had died. */
	uint64_t me[MPMC_MASK_WORDS] = { 0 };
	me[r->seg.slot / 64] = 1ull << (r->seg.slot % 64);
	mpmc_sweep(r->mp.sh, &r->mp.g, me);
	ctl_leave(r->seg.ctl, r->seg.lock_fd, (uint32_t)r->seg.slot);
	segh_unlock(&r->seg);
	wake_everyone(r);
}

const struct segh_kind segh_kind_mpmc = {
	.kind = SHMRING_MPMC,
	.handle_size = sizeof(struct mpmc_handle),
	.in_files = false,          /* its reboot recovery does not exist */
	.ops = &mph_ops,
	.init = kind_init,
	.attach = kind_attach,
	.detach = kind_detach,
};
