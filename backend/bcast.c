/* SPDX-License-Identifier: MIT */
/*
 * The broadcast ring kind (SHMRING_BCAST): the data path of the producer
 * and the subscribers, waiting and waking, eviction of a subscriber that
 * holds the producer back past the stall timeout, writing off dead ones,
 * and the roles.  The ring work is ring/bcast.h (docs/design.md,
 * "Broadcast rings").
 *
 * Who counts: the producer waits only for subscribers whose bit is set in
 * `active`.  It clears a bit ([E1]) for a subscriber whose position is
 * nonsense, whose holder is dead (liveness lock, shm/ctl.h), or who held
 * it back for longer than stall_ms; that subscriber finds tail past its
 * position, reports -EOVERFLOW once, and is counted again from tail.
 */
#include "bcast.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#include "../shm/inspect.h"
#include "../sync/clock.h"
#include "../sync/fence.h"
#include "../sync/wait.h"

/* How often a blocked producer looks whether the subscribers holding it
 * back are alive, and the longest it sleeps between two looks (a dead
 * subscriber never wakes it). */
#define LIVE_CHECK_NS (1000u * 1000u)
#define BLOCK_LOOK_NS (20u * 1000u * 1000u)
/* Publishes after which the producer wakes the sleepers it left to a
 * subscriber ([K7]) itself, if that subscriber has not (it was stopped or
 * killed as it woke).  A quiet stream needs no such bound: every sleeper
 * looks again after WAIT_SLICE_NS. */
#define RELAY_GRACE 65536u

static inline struct bcast_handle *bch_of(struct shmring *r)
{
	return (struct bcast_handle *)(void *)r;
}

static bool shut(const struct bcast_handle *h, memory_order mo)
{
	return atomic_load_explicit(&h->sh->shutdown, mo) != 0;
}

/* Counter bump by its single writer (a role, or a subscriber's line). */
static void count(_Atomic uint64_t *ctr, uint64_t add)
{
	spsc_count(ctr, add);
}

/* ---- waking ------------------------------------------------------------- */

/* Wake every sleeper on sub_wake if sleepers were left to a subscriber
 * that has not woken them yet ([K7]); *wakes counts the call. */
static void relay_take(struct bcast_shared *sh, _Atomic uint64_t *wakes)
{
	/* relaxed first look: the line is read on every receive anyway, and
	 * most looks find nothing to do */
	if (atomic_load_explicit(&sh->relay, memory_order_relaxed) &&
	    /* [K7] seq_cst RMW: one taker per relay */
	    atomic_exchange_explicit(&sh->relay, 0, memory_order_seq_cst)) {
		futex_wake(&sh->sub_wake, INT_MAX);
		count(wakes, 1);
	}
}

/*
 * After commits, when [P3] said a subscriber sleeps or polls: wake the
 * sleepers (one futex word for all of them) and ring the pollers.
 *
 * Waking n sleepers costs the waker n times the kernel's wake-up work (on
 * its own CPU), which would make the producer's cost grow with the
 * audience.  With two or more, it wakes one and leaves the rest to that
 * subscriber ([K7]): it sets `relay`, and the subscriber that wakes takes
 * it and wakes everyone still asleep (relay_take).  If it is stopped or
 * killed first, the rest sleep until the producer takes the relay back
 * after RELAY_GRACE publishes, or until their wait slice ends.
 */
static void wake_subs(struct bcast_handle *h)
{
	struct bcast_shared *sh = h->sh;
	/* seq_cst RMW: takes the bits of [K1] down, as [K4] does; every
	 * sleeper looks again after any wake-up */
	uint64_t sleepers = atomic_exchange_explicit(&sh->sub_sleeping, 0, memory_order_seq_cst);
	if (sleepers) {
		/* [K6] seq_cst: a sleeper between [K5] and futex_wait returns */
		atomic_fetch_add_explicit(&sh->sub_wake, 1, memory_order_seq_cst);
		if (sleepers & (sleepers - 1)) {
			/* [K7] seq_cst: before the wake, which the woken
			 * subscriber's exchange comes after */
			atomic_store_explicit(&sh->relay, 1, memory_order_seq_cst);
			h->relay_seq = h->prod.seq;   /* >= 1 */
			futex_wake(&sh->sub_wake, 1);
		} else {
			futex_wake(&sh->sub_wake, INT_MAX);
		}
		count(&sh->prod_wakes, 1);
	}
	/* seq_cst RMW: the pollers' [B1] bits */
	uint64_t pollers = atomic_exchange_explicit(&sh->sub_polling, 0, memory_order_seq_cst);
	for (uint32_t i = 0; pollers && i < BC_MAX_SUBS; i++)
		if (pollers & (1ull << i))
			/* relaxed: written under the control lock at attach; a
			 * stale owner names a doorbell nobody listens to */
			segh_ring(&h->seg, atomic_load_explicit(&sh->subs[i].owner,
								memory_order_relaxed),
				  &sh->prod_bells);
}

static inline __attribute__((always_inline)) void published(struct bcast_handle *h, uint64_t msgs,
							      uint64_t bytes)
{
	count(&h->sh->msgs_sent, msgs);
	count(&h->sh->bytes_sent, bytes);
	if (bc_published(&h->prod))
		wake_subs(h);
	else if (unlikely(h->relay_seq) && h->prod.seq - h->relay_seq >= RELAY_GRACE) {
		/* the relay was not taken in time: take it back */
		h->relay_seq = 0;
		relay_take(h->sh, &h->sh->prod_wakes);
	}
}

/* A subscriber released, and [C3] saw the producer sleeping or polling. */
static void wake_prod(struct bcast_handle *h, _Atomic uint64_t *wakes, _Atomic uint64_t *rung)
{
	/* no WAIT_FENCED: every subscriber wakes the producer, and one that
	 * fences says nothing of the others */
	if (wait_wake(&h->sh->prod_sleeping, &h->sh->prod_wake, wakes, NULL) & WAIT_POLLING)
		/* relaxed: as in wake_subs() */
		segh_ring(&h->seg, __atomic_load_n(&h->seg.ctl->prod_owner, __ATOMIC_RELAXED), rung);
}

/* ---- producer: room ------------------------------------------------------ */

/* The holders among `bits` whose participant is dead (or who name none):
 * the holders the last scan saw (p->lb_gen), not newcomers since. */
static uint64_t dead_of(struct bcast_handle *h, uint64_t bits)
{
	uint64_t dead = 0;
	for (; bits; bits &= bits - 1) {
		uint32_t i = (uint32_t)__builtin_ctzll(bits);
		struct bc_sub *u = &h->sh->subs[i];
		/* acquire: pairs with the release of gen in attach_sub(), so
		 * the owner loaded below is that holder's (or 0, gone) */
		if (atomic_load_explicit(&u->gen, memory_order_acquire) != h->prod.lb_gen[i])
			continue;
		/* relaxed: ordered by the acquire above; checked by
		 * ctl_owner_alive() */
		uint32_t owner = atomic_load_explicit(&u->owner, memory_order_relaxed);
		if (!ctl_owner_alive(h->seg.ctl, h->seg.map->fd, owner))
			dead |= 1ull << i;
	}
	return dead;
}

/*
 * Room for `need` bytes, moving tail as the rules allow: 0, -EAGAIN (held
 * back: *s names who), -EPIPE.  Counting stops for a subscriber whose
 * position is nonsense (at once), who is dead (looked at every
 * LIVE_CHECK_NS while blocked), or who kept us blocked for stall_ms.
 * Bounded: every lap but the last stops counting at least one subscriber.
 */
static int prod_room(struct bcast_handle *h, uint64_t need, struct bc_scan *s)
{
	/* relaxed: only stops further sends; nothing is read through it */
	if (shut(h, memory_order_relaxed))
		return -EPIPE;
	if (bc_fits(&h->prod, need)) {
		h->blocked_since = 0;
		return 0;
	}
	for (uint32_t lap = 0; lap <= 2 * BC_MAX_SUBS; lap++) {
		int rc = bc_make_room(&h->prod, need, s);
		if (rc == 1) {
			/* (a line whose holder changed meanwhile is left to
			 * the next look, as are its neighbours here) */
			bc_uncount(&h->prod, s->bad, true);
			continue;
		}
		if (rc == 0) {
			h->blocked_since = 0;
			return 0;
		}
		uint64_t now = clock_mono_ns();
		if (!s->holders)
			return -EAGAIN;
		if (now - h->live_checked >= LIVE_CHECK_NS) {
			h->live_checked = now;
			uint64_t dead = dead_of(h, s->holders);
			if (dead) {
				bc_uncount(&h->prod, dead, false);
				continue;
			}
		}
		if (!h->blocked_since) {
			h->blocked_since = now;
			return -EAGAIN;
		}
		if (now - h->blocked_since < h->stall_ns)
			return -EAGAIN;
		/* live, and holding us back for longer than stall_ms */
		bc_uncount(&h->prod, s->holders, true);
		h->blocked_since = now;
	}
	return -EAGAIN;
}

/* Messages this handle moved: a doorbell wake-up after which it moved
 * none was spurious. */
static uint64_t own_done(const struct bcast_handle *h)
{
	uint32_t roles = h->seg.head.roles;
	/* relaxed: our own counters */
	return ((roles & SHMRING_PRODUCER) ? atomic_load_explicit(&h->sh->msgs_sent,
								   memory_order_relaxed) : 0) +
	       ((roles & SHMRING_CONSUMER) ? atomic_load_explicit(&h->cons.me->msgs_recv,
								   memory_order_relaxed) : 0);
}

/* Held back, with a doorbell and no time to wait: arm it, look once more. */
static int prod_poll(struct bcast_handle *h, uint64_t need, struct bc_scan *s)
{
	for (int lap = 0; lap < 1000; lap++) {
		segh_arm_prepare(&h->seg, own_done(h), &h->sh->prod_spurious);
		/* [B1] seq_cst RMW: announce the poller before the last look;
		 * a subscriber's exchange in wait_wake() takes it down */
		atomic_fetch_or_explicit(&h->sh->prod_sleeping, WAIT_POLLING, memory_order_seq_cst);
		segh_arm_fence(&h->seg);
		/* [B3] seq_cst: the last look, after [B1]; pairs with the
		 * holder's [C2] store, [C3] load (Dekker, as [W3]) */
		uint64_t pos = atomic_load_explicit(&h->sh->subs[s->watch].pos, memory_order_seq_cst);
		if (pos == s->watch_seen && !shut(h, memory_order_seq_cst))
			return -EAGAIN;
		/* relaxed: our bit to take down (as backend/spsc.c's disarm) */
		atomic_fetch_and_explicit(&h->sh->prod_sleeping, ~WAIT_POLLING, memory_order_relaxed);
		int rc = prod_room(h, need, s);
		if (rc != -EAGAIN)
			return rc;
	}
	segh_ring_self(&h->seg);    /* churn: come back and look again */
	return -EAGAIN;
}

static int prod_wait(struct bcast_handle *h, uint64_t need, struct bc_scan *s,
		     int64_t timeout_ns)
{
	count(&h->sh->waits_full, 1);
	uint64_t deadline = clock_deadline(timeout_ns);
	uint64_t spin_until = clock_mono_ns() + h->seg.head.spin_ns;
	for (;;) {
		struct waiter w = {
			.watch = &h->sh->subs[s->watch].pos, .shut = &h->sh->shutdown,
			.sleeping = &h->sh->prod_sleeping, .word = &h->sh->prod_wake,
			.sleeps = &h->sh->prod_sleeps, .spin_until = spin_until,
		};
		uint64_t now = clock_mono_ns();
		uint64_t until = deadline - now > BLOCK_LOOK_NS ? now + BLOCK_LOOK_NS : deadline;
		int rc = wait_change(&w, s->watch_seen, until);
		if (rc == -ETIMEDOUT && clock_mono_ns() >= deadline)
			return -ETIMEDOUT;
		if ((rc = prod_room(h, need, s)) != -EAGAIN)
			return rc;
	}
}

/* Room for a message of len bytes at head: *fill and *skip for the group. */
static int prod_need(struct bcast_handle *h, size_t len, uint64_t *fill, uint64_t *skip,
		     int64_t timeout_ns)
{
	if (len > h->g.max_msg)
		return -EMSGSIZE;
	uint64_t need = bc_need(&h->prod, len, fill, skip);
	struct bc_scan s;
	int rc = prod_room(h, need, &s);
	if (rc != -EAGAIN)
		return rc;
	if (timeout_ns == 0)
		return segh_polls(&h->seg) ? prod_poll(h, need, &s) : rc;
	return prod_wait(h, need, &s, timeout_ns);
}

/* ---- producer: the calls ------------------------------------------------- */

/* Open a reservation of len bytes at head, waiting as timeout_ns says. */
static int prod_open(struct bcast_handle *h, size_t len, void **at, int64_t timeout_ns)
{
	uint64_t fill, skip;
	if (h->prod.resv_open)
		return -EINPROGRESS;
	int rc = prod_need(h, len, &fill, &skip, timeout_ns);
	if (rc < 0)
		return rc;
	*at = bc_reserve(&h->prod, len, fill, skip);
	return 0;
}

/* bch_send() when the room known is short (or the message too long, or
 * the stream shut down): a function of its own, so that the common case
 * does not set up this one's stack frame. */
static __attribute__((noinline)) int send_looking(struct bcast_handle *h, const void *msg,
						  size_t len, int64_t timeout_ns)
{
	uint64_t fill, skip;
	int rc = prod_need(h, len, &fill, &skip, timeout_ns);
	if (rc < 0)
		return rc;
	bc_send(&h->prod, fill, skip, msg, (uint32_t)len);
	published(h, 1, len);
	return 0;
}

int bch_send(struct shmring *r, const void *msg, size_t len, int64_t timeout_ns)
{
	struct bcast_handle *h = bch_of(r);
	uint64_t fill, skip;
	if (unlikely(h->prod.resv_open))
		return -EINPROGRESS;
	/* the common case, in the room already known: no look, no layers;
	 * relaxed load of the flag: only stops further sends */
	if (unlikely(len > h->g.max_msg ||
		     !bc_fits(&h->prod, bc_need(&h->prod, len, &fill, &skip)) ||
		     shut(h, memory_order_relaxed)))
		return send_looking(h, msg, len, timeout_ns);
	h->blocked_since = 0;
	bc_send(&h->prod, fill, skip, msg, (uint32_t)len);
	published(h, 1, len);
	return 0;
}

static int op_reserve(struct shmring *r, size_t len, struct shmring_msg *m, int64_t timeout_ns)
{
	struct bcast_handle *h = bch_of(r);
	int rc = prod_open(h, len, &m->data, timeout_ns);
	if (rc < 0)
		return rc;
	m->len = len;
	m->priv[0] = h->prod.head;      /* where the group starts: ties commit to it */
	m->priv[1] = len;
	return 0;
}

static int op_commit(struct shmring *r, struct shmring_msg *m)
{
	struct bcast_handle *h = bch_of(r);
	if (!h->prod.resv_open || m->priv[0] != h->prod.head || m->len > m->priv[1] ||
	    m->priv[1] != h->prod.resv_len || m->data != bc_resv_data(&h->prod))
		return -EINVAL;
	/* relaxed: only stops further sends */
	if (shut(h, memory_order_relaxed)) {
		/* ended while the frame was written: dropped, never after -EPIPE */
		h->prod.resv_open = false;
		/* relaxed: a counter, displayed only */
		atomic_fetch_add_explicit(&h->seg.ctl->dropped, 1, memory_order_relaxed);
		return -EPIPE;
	}
	bc_commit(&h->prod, (uint32_t)m->len);
	published(h, 1, m->len);
	m->data = NULL;
	return 0;
}

static int op_send_batch(struct shmring *r, const struct iovec *msgs, unsigned n,
			 int64_t timeout_ns)
{
	struct bcast_handle *h = bch_of(r);
	uint64_t bytes = 0;
	unsigned k;
	if (h->prod.resv_open)
		return -EINPROGRESS;
	for (k = 0; k < n; k++) {
		size_t len = msgs[k].iov_len;
		uint64_t fill, skip;
		if (!msgs[k].iov_base && len) {
			if (k == 0)
				return -EINVAL;
			break;
		}
		/* wait for the first message only; the rest go while they fit */
		int rc = prod_need(h, len, &fill, &skip, k == 0 ? timeout_ns : 0);
		if (rc < 0) {
			if (k == 0)
				return rc;
			break;
		}
		bc_send(&h->prod, fill, skip, msgs[k].iov_base, (uint32_t)len);
		bytes += len;
	}
	published(h, k, bytes);
	return (int)k;
}

static int op_shutdown(struct shmring *r)
{
	struct bcast_handle *h = bch_of(r);
	/* [S1] seq_cst: after every publish of ours; pairs with the
	 * subscribers' [S2] acquire */
	atomic_store_explicit(&h->sh->shutdown, 1, memory_order_seq_cst);
	wake_subs(h);
	/* unconditionally: a subscriber asleep must learn the stream is over */
	atomic_fetch_add_explicit(&h->sh->sub_wake, 1, memory_order_seq_cst);
	futex_wake(&h->sh->sub_wake, INT_MAX);
	return 0;
}

/* ---- subscriber ---------------------------------------------------------- */

/*
 * Tail passed our position: lapped (overwrite), evicted or written off.
 * What we held is stale, the next message is the oldest in the ring; the
 * number lost is counted when it arrives (its sequence number says).
 * Counted again from tail if the producer stopped counting us.
 */
static int sub_lapped(struct bcast_handle *h)
{
	struct bc_cons *c = &h->cons;
	bool counted = bc_counted(c);
	/* acquire: pairs with [P4]; tail is a record boundary */
	uint64_t t = atomic_load_explicit(&h->sh->tail, memory_order_acquire);
	/* relaxed: the producer bumps it before the [P4] that passed us,
	 * which the acquire load above read (or a later one) */
	uint32_t ev = atomic_load_explicit(&c->me->evict, memory_order_relaxed);
	if (ev != c->ack) {
		c->ack = ev;
		/* relaxed: ours; display only */
		atomic_store_explicit(&c->me->ack, ev, memory_order_relaxed);
	}
	if (c->read != c->pos) {
		h->stale_from = c->pos;
		h->stale_to = c->read;
	}
	if (counted) {
		c->pos = c->read = t;
		/* [C2] release, as in bc_release_to() */
		atomic_store_explicit(&c->me->pos, t, memory_order_release);
	} else {
		(void)bc_join(c, t);
	}
	return -EOVERFLOW;
}

/* The message at our read position, not yet copied: 0, -EAGAIN, -EPIPE,
 * -EOVERFLOW (lapped: moved on), -EPROTO. */
static int sub_look(struct bcast_handle *h, const uint8_t **data, uint32_t *len, uint64_t *seq,
		    uint64_t *end)
{
	struct bc_cons *c = &h->cons;
	if (h->overflow && c->read == c->pos) {
		h->overflow = false;
		return -EOVERFLOW;
	}
	int rc = bc_parse(&c->g, c->read, data, len, seq, end);
	/* a message found is checked after its use (sub_check(): a torn
	 * header is bounded by bc_parse(), and nothing of it is handed out
	 * before); nothing or nonsense may mean we were lapped */
	if (rc != 0 && !bc_cons_intact(c, c->read))
		return sub_lapped(h);
	/* [S2] acquire: pairs with [S1]; every message published before the
	 * shutdown is then visible to the second look */
	if (rc == -EAGAIN && shut(h, memory_order_acquire)) {
		rc = bc_parse(&c->g, c->read, data, len, seq, end);
		if (!bc_cons_intact(c, c->read))
			return sub_lapped(h);
		if (rc == -EAGAIN)
			rc = -EPIPE;
	}
	return rc;
}

/* A copy (or an in-place use) of what starts at pos is done: was it
 * intact, and in sequence?  0, -EOVERFLOW (lapped), -EPROTO. */
static inline __attribute__((always_inline)) int sub_check(struct bcast_handle *h, uint64_t pos,
							     uint64_t seq, unsigned msgs)
{
	struct bc_cons *c = &h->cons;
	if (!bc_cons_intact(c, pos))
		return sub_lapped(h);
	int64_t lost = bc_seen(c, seq);
	if (lost < 0)
		return -EPROTO;
	c->expect = seq + msgs;
	if (lost)
		count(&c->me->msgs_lost, (uint64_t)lost);
	return 0;
}

static inline __attribute__((always_inline)) void sub_released(struct bcast_handle *h, uint64_t end,
								  uint64_t msgs, uint64_t bytes)
{
	struct bc_sub *me = h->cons.me;
	count(&me->msgs_recv, msgs);
	count(&me->bytes_recv, bytes);
	if (bc_release_to(&h->cons, end))
		wake_prod(h, &me->wakes, &me->bells);
}

static int sub_poll(struct bcast_handle *h, const uint8_t **data, uint32_t *len, uint64_t *seq,
		    uint64_t *end)
{
	struct bc_cons *c = &h->cons;
	uint64_t bit = 1ull << c->idx;
	segh_arm_prepare(&h->seg, own_done(h), &c->me->spurious);
	/* [B1] seq_cst RMW: the producer's exchange in wake_subs() takes it */
	atomic_fetch_or_explicit(&h->sh->sub_polling, bit, memory_order_seq_cst);
	segh_arm_fence(&h->seg);
	/* [B3] seq_cst: the last look, after [B1]; pairs with the
	 * producer's [P2] store, [P3] load (Dekker, as [W3]) */
	if (atomic_load_explicit(spsc_word(&c->g, c->read), memory_order_seq_cst) == 0 &&
	    !shut(h, memory_order_seq_cst) && bc_intact(h->sh, c->read))
		return -EAGAIN;
	/* relaxed: our bit to take down */
	atomic_fetch_and_explicit(&h->sh->sub_polling, ~bit, memory_order_relaxed);
	return sub_look(h, data, len, seq, end);
}

static int sub_wait(struct bcast_handle *h, const uint8_t **data, uint32_t *len, uint64_t *seq,
		    uint64_t *end, int64_t timeout_ns)
{
	struct bc_cons *c = &h->cons;
	count(&c->me->waits_empty, 1);
	uint64_t deadline = clock_deadline(timeout_ns);
	/* an empty ring is a zero header word at our position; the wait
	 * ends when it changes (or after a slice: lapped, shutdown) */
	struct slot_waiter w = {
		.watch = spsc_word(&c->g, c->read), .seen = 0, .shut = &h->sh->shutdown,
		.mask = &h->sh->sub_sleeping, .bit = c->idx, .word = &h->sh->sub_wake,
		.sleeps = &c->me->sleeps, .spin_until = clock_mono_ns() + h->seg.head.spin_ns,
		.heavy = true,
	};
	for (;;) {
		int rc = wait_slot(&w, deadline);
		/* woken, maybe as the one the producer left the others to */
		relay_take(h->sh, &c->me->wakes);
		if (rc < 0)
			return rc;
		if ((rc = sub_look(h, data, len, seq, end)) != -EAGAIN)
			return rc;
		w.watch = spsc_word(&c->g, c->read);
	}
}

static int sub_next(struct bcast_handle *h, const uint8_t **data, uint32_t *len, uint64_t *seq,
		    uint64_t *end, int64_t timeout_ns)
{
	int rc = sub_look(h, data, len, seq, end);
	if (rc != -EAGAIN)
		return rc;
	if (timeout_ns == 0)
		return segh_polls(&h->seg) ? sub_poll(h, data, len, seq, end) : rc;
	return sub_wait(h, data, len, seq, end, timeout_ns);
}

static int op_recv_batch(struct shmring *r, struct iovec *bufs, unsigned n, int64_t timeout_ns)
{
	struct bcast_handle *h = bch_of(r);
	struct bc_cons *c = &h->cons;
	const uint8_t *data;
	uint32_t len;
	uint64_t seq, end;
	if (c->read != c->pos)
		return -EINPROGRESS;
	if (!bufs[0].iov_base && bufs[0].iov_len)
		return -EINVAL;
	int rc = sub_next(h, &data, &len, &seq, &end, timeout_ns);
	if (rc < 0)
		return rc;
	const uint64_t at = c->read, first = seq;
	if (len > bufs[0].iov_len)
		return bc_cons_intact(c, at) ? -EMSGSIZE : sub_lapped(h);
	uint64_t bytes = 0, stop;
	unsigned k = 0;
	/* wait only for the first; the rest are those already there, in
	 * sequence, that fit their buffers */
	for (;;) {
		bc_copy_out(bufs[k].iov_base, data, len);
		bufs[k].iov_len = len;
		bytes += len;
		k++;
		stop = end;
		if (k == n || bc_parse(&c->g, stop, &data, &len, &seq, &end) < 0 ||
		    seq != first + k || len > bufs[k].iov_len || (!bufs[k].iov_base && len))
			break;
	}
	if ((rc = sub_check(h, at, first, k)) < 0)
		return rc;
	c->read = stop;
	sub_released(h, stop, k, bytes);
	return (int)k;
}

ssize_t bch_recv(struct shmring *r, void *buf, size_t cap, int64_t timeout_ns)
{
	struct bcast_handle *h = bch_of(r);
	struct bc_cons *c = &h->cons;
	const uint8_t *data;
	uint32_t len;
	uint64_t seq, end;
	/* the common case, a message there that fits: op_recv_batch()'s
	 * steps for one, without its layers */
	if (likely(c->read == c->pos && !h->overflow && buf) &&
	    bc_parse(&c->g, c->read, &data, &len, &seq, &end) == 0 && len <= cap) {
		const uint64_t at = c->read;
		bc_copy_out(buf, data, len);
		int rc = sub_check(h, at, seq, 1);
		if (rc < 0)
			return rc;
		c->read = end;
		sub_released(h, end, 1, len);
		return (ssize_t)len;
	}
	struct iovec v = { buf, cap };
	int rc = op_recv_batch(r, &v, 1, timeout_ns);
	return rc < 0 ? rc : (ssize_t)v.iov_len;
}

static int op_acquire(struct shmring *r, struct shmring_msg *m, int64_t timeout_ns)
{
	struct bcast_handle *h = bch_of(r);
	struct bc_cons *c = &h->cons;
	const uint8_t *data;
	uint32_t len;
	uint64_t seq, end;
	int rc = sub_next(h, &data, &len, &seq, &end, timeout_ns);
	if (rc < 0)
		return rc;
	uint64_t at = c->read;
	/* the header and sequence number we believe must have been intact;
	 * the payload is checked again at release */
	if ((rc = sub_check(h, at, seq, 1)) < 0)
		return rc;
	c->read = end;
	m->data = (void *)(uintptr_t)data;
	m->len = len;
	m->priv[0] = at;       /* release must come in acquisition order */
	m->priv[1] = end;
	return 0;
}

static int op_release(struct shmring *r, struct shmring_msg *m)
{
	struct bcast_handle *h = bch_of(r);
	struct bc_cons *c = &h->cons;
	if (h->stale_from != h->stale_to && m->priv[0] == h->stale_from &&
	    m->priv[1] > m->priv[0] && m->priv[1] - h->stale_from <= h->stale_to - h->stale_from) {
		/* acquired before a lap we already reported */
		h->stale_from = m->priv[1];
		count(&c->me->msgs_lost, 1);
		return -ESTALE;
	}
	if (m->priv[0] != c->pos || m->priv[1] <= m->priv[0] || m->priv[1] - c->pos > c->read - c->pos ||
	    m->len > m->priv[1] - m->priv[0])
		return -EINVAL;
	if (!bc_cons_intact(c, c->pos)) {
		/* written over while in the caller's hands: what it read may
		 * be torn.  The next receive reports the lap. */
		c->pos = m->priv[1];
		count(&c->me->msgs_lost, 1);
		m->data = NULL;
		return -ESTALE;
	}
	const uint8_t *data;
	uint32_t len;
	uint64_t seq, end;
	/* priv[1] must be the end of the oldest acquired message */
	if (bc_parse(&c->g, c->pos, &data, &len, &seq, &end) < 0)
		return -EPROTO;
	if (end != m->priv[1] || m->len != len || m->data != data)
		return -EINVAL;
	sub_released(h, end, 1, len);
	m->data = NULL;
	return 0;
}

/* ---- stats, caps, flush -------------------------------------------------- */

/* A subscriber line's lag behind the producer (relaxed snapshot). */
static void own_lag(struct bcast_handle *h, struct shmring_stats *st)
{
	struct bc_cons *c = &h->cons;
	uint64_t head, hseq;
	(void)bc_hints(h->sh, &head, &hseq);     /* display only: a torn pair will do */
	st->lag_bytes = bc_lag(head, c->pos, h->g.cap);
	st->used = st->lag_bytes;
	uint64_t next = c->expect;
	if (!next && c->pos != head) {
		const uint8_t *d;
		uint32_t len;
		uint64_t seq, end;
		if (bc_parse(&c->g, c->pos, &d, &len, &seq, &end) == 0 &&
		    bc_intact(h->sh, c->pos))
			next = seq;
	}
	st->lag_msgs = next && hseq > next ? hseq - next : 0;
	st->msgs_lost = atomic_load_explicit(&c->me->msgs_lost, memory_order_relaxed);
	st->evictions = atomic_load_explicit(&c->me->evictions, memory_order_relaxed);
	st->msgs_recv = atomic_load_explicit(&c->me->msgs_recv, memory_order_relaxed);
	st->bytes_recv = atomic_load_explicit(&c->me->bytes_recv, memory_order_relaxed);
	st->waits_empty = atomic_load_explicit(&c->me->waits_empty, memory_order_relaxed);
}

static int op_stats(struct shmring *r, struct shmring_stats *st)
{
	int rc = segh_stats(r, st);
	if (rc == 0 && (r->roles & SHMRING_CONSUMER))
		own_lag(bch_of(r), st);
	return rc;
}

static int op_caps(struct shmring *r, struct shmring_caps *caps)
{
	const struct seg_handle *s = &bch_of(r)->seg;
	caps->flags = SHMRING_CAP_ZEROCOPY | SHMRING_CAP_RECOVERY | SHMRING_CAP_BLOCKING |
		      SHMRING_CAP_PERSISTENT | SHMRING_CAP_POLL | SHMRING_CAP_BCAST |
		      (s->is_file ? SHMRING_CAP_DURABLE : 0);
	caps->max_producers = 1;
	caps->max_consumers = BC_MAX_SUBS;
	caps->max_msg = s->map->geom.max_msg;
	caps->capacity = s->map->geom.capacity;
	return 0;
}

static int op_flush(struct shmring *r)
{
	struct bcast_handle *h = bch_of(r);
	return segh_flush(&h->seg, h->prod.resv_open, &h->flushed, h->prod.head);
}

const struct shmring_backend_ops bch_ops = {
	.name = "bcast",
	.send = bch_send, .recv = bch_recv,
	.reserve = op_reserve, .commit = op_commit,
	.acquire = op_acquire, .release = op_release,
	.send_batch = op_send_batch, .recv_batch = op_recv_batch,
	.shutdown = op_shutdown, .stats = op_stats, .caps = op_caps, .flush = op_flush,
	.fd = segh_fd, .fork_child = segh_fork_child, .close = segh_close,
};

/* ---- roles --------------------------------------------------------------- */

static int kind_init(struct seg_handle *s)
{
	struct bcast_handle *h = (struct bcast_handle *)s;
	const struct seg_geom *sg = &s->map->geom;
	h->sh = (struct bcast_shared *)(s->map->base + sg->ring_off);
	h->g = (struct spsc_geom){
		.data = s->map->base + sg->data_off, .cap = sg->capacity,
		.mask = sg->capacity - 1, .max_msg = sg->max_msg,
	};
	h->overwrite = (sg->flags & SHMRING_OVERWRITE) != 0;
	/* read once: the creator wrote it before publishing the header */
	uint32_t stall = h->sh->stall_ms;
	if (!seg_stall_valid(stall))
		return -EPROTO;
	h->stall_ns = (uint64_t)stall * 1000000u;
	return 0;
}

/* The lines of dead subscribers (or of none) go back to the pool, with
 * their bits; a named one keeps its position for its next open.  Run by
 * ctl_repair() under the control lock. */
static void sweep(void *arg, const uint64_t dead[CTL_MASK_WORDS])
{
	struct bcast_shared *sh = arg;
	for (uint32_t i = 0; i < BC_MAX_SUBS; i++) {
		struct bc_sub *u = &sh->subs[i];
		/* relaxed, here and below: under the control lock */
		if (atomic_load_explicit(&u->state, memory_order_relaxed) != BC_ACTIVE)
			continue;
		uint32_t owner = atomic_load_explicit(&u->owner, memory_order_relaxed);
		if (owner && owner <= CTL_MAX_PARTS &&
		    !(dead[(owner - 1) / 64] & (1ull << ((owner - 1) % 64))))
			continue;
		uint64_t bit = 1ull << i;
		/* seq_cst: as [E1] */
		atomic_fetch_and_explicit(&sh->active, ~bit, memory_order_seq_cst);
		atomic_fetch_and_explicit(&sh->sub_sleeping, ~bit, memory_order_relaxed);
		atomic_fetch_and_explicit(&sh->sub_polling, ~bit, memory_order_relaxed);
		atomic_store_explicit(&u->owner, 0, memory_order_relaxed);
		atomic_store_explicit(&u->state, u->name[0] ? BC_PARKED : BC_FREE,
				      memory_order_relaxed);
	}
}

static int lock_repaired(struct bcast_handle *h)
{
	struct ctl_sweep sw = { .fn = sweep, .arg = h->sh };
	int rc = segh_lock(&h->seg, &sw);
	if (rc < 0)
		return rc;
	ctl_repair(h->seg.ctl, h->seg.map->fd, &sw);
	return 0;
}

/* The line for a new subscriber: a free one.  -EBUSY: 64 subscribers. */
static int pick_line(struct bcast_handle *h)
{
	for (uint32_t i = 0; i < BC_MAX_SUBS; i++)
		/* relaxed: under the control lock */
		if (atomic_load_explicit(&h->sh->subs[i].state, memory_order_relaxed) == BC_FREE)
			return (int)i;
	return -EBUSY;
}

/* Where a new subscriber starts: the oldest message, or the next one;
 * *expect: the sequence number there (0: not known, learnt from the
 * first message). */
static uint64_t start_pos(struct bcast_handle *h, bool oldest, uint64_t *expect)
{
	/* seq_cst: [J2] checks it again after [J1] */
	uint64_t t = atomic_load_explicit(&h->sh->tail, memory_order_seq_cst), hd, hs;
	*expect = 0;
	/* the hints are checked: a record boundary after tail within a lap */
	if (!bc_hints(h->sh, &hd, &hs) || (hd & 7u) || hd - t > h->g.cap)
		return t;
	if (!oldest || t == hd) {
		/* The hints are written once per publishing call, after its
		 * records: walk past the records already published, so that a
		 * new subscriber gets nothing committed before it joined (one
		 * that asked for the oldest, in an empty ring by the hints,
		 * starts at tail and gets them).  The
		 * walk counts only if tail did not pass hd meanwhile ([C4]:
		 * nothing walked was written over, so its end is a record
		 * boundary). */
		uint64_t end = hd, last = 0;
		if (!oldest && bc_walk(&h->g, hd, &end, &last) == 0 && end != hd &&
		    bc_intact(h->sh, hd)) {
			*expect = last + 1;
			return end;
		}
		*expect = hs;
		return hd;
	}
	const uint8_t *d;
	uint32_t len;
	uint64_t seq, end;
	if (bc_parse(&h->g, t, &d, &len, &seq, &end) == 0 && bc_intact(h->sh, t))
		*expect = seq;
	return t;
}

_Static_assert(SEGH_NAME_MAX == BC_NAME_MAX, "a subscriber name fits its line");

/* The line of a named subscriber: 0..63, -ENOENT (none yet), -EBUSY (it
 * is open: after the repair, an active line's owner lives). */
static int find_named(struct bcast_handle *h, const char *name)
{
	for (uint32_t i = 0; i < BC_MAX_SUBS; i++) {
		struct bc_sub *u = &h->sh->subs[i];
		/* relaxed: under the control lock */
		uint32_t state = atomic_load_explicit(&u->state, memory_order_relaxed);
		char seen[BC_NAME_MAX];
		memcpy(seen, u->name, sizeof(seen));      /* read once, bounded */
		seen[sizeof(seen) - 1] = 0;
		if (state == BC_FREE || strcmp(seen, name) != 0)
			continue;
		return state == BC_PARKED ? (int)i : -EBUSY;
	}
	return -ENOENT;
}

/* A named subscriber back: where it stopped, if that is still a place in
 * the ring (else at tail, its loss reported by the first receive). */
static uint64_t resume_pos(struct bcast_handle *h, struct bc_sub *u, uint64_t *expect)
{
	/* relaxed: written by its last holder, now gone (control lock) */
	uint64_t pos = atomic_load_explicit(&u->pos, memory_order_relaxed);
	*expect = atomic_load_explicit(&u->next_seq, memory_order_relaxed);
	/* seq_cst: as in start_pos() */
	uint64_t t = atomic_load_explicit(&h->sh->tail, memory_order_seq_cst), hd, hs;
	bool hints = bc_hints(h->sh, &hd, &hs);
	if (!(pos & 7u) && hints && !(hd & 7u) && pos - t <= hd - t && hd - t <= h->g.cap &&
	    (!*expect || *expect <= hs))
		return pos;
	h->overflow = true;
	return t;
}

static int attach_sub(struct bcast_handle *h, bool light, bool oldest)
{
	struct seg_handle *s = &h->seg;
	const char *name = s->sub_name;
	int idx = name[0] ? find_named(h, name) : -ENOENT;
	bool resumed = idx >= 0;
	if (idx == -ENOENT)
		idx = pick_line(h);
	if (idx < 0)
		return idx;
	int slot = ctl_join(s->ctl, s->lock_fd, ROLE_CONSUMER);
	if (slot < 0)
		return slot;
	s->slot = slot;
	struct bc_sub *u = &h->sh->subs[idx];
	/* relaxed, here: under the control lock; nobody counts this line
	 * before its [J1] */
	uint32_t ev = atomic_load_explicit(&u->evict, memory_order_relaxed);
	atomic_store_explicit(&u->ack, ev, memory_order_relaxed);
	if (!resumed) {
		_Atomic uint64_t *ctrs[] = { &u->next_seq, &u->msgs_recv, &u->bytes_recv,
					     &u->msgs_lost, &u->waits_empty, &u->sleeps, &u->wakes,
					     &u->bells, &u->spurious, &u->evictions };
		for (size_t i = 0; i < sizeof(ctrs) / sizeof(ctrs[0]); i++)
			atomic_store_explicit(ctrs[i], 0, memory_order_relaxed);
		memset(u->name, 0, sizeof(u->name));
		memcpy(u->name, name, strlen(name));
	}
	atomic_store_explicit(&u->owner, (uint32_t)slot + 1, memory_order_relaxed);
	/* release: pairs with the acquire in dead_of(): the producer that
	 * sees this gen sees this owner */
	atomic_store_explicit(&u->gen, atomic_load_explicit(&u->gen, memory_order_relaxed) + 1,
			      memory_order_release);
	atomic_store_explicit(&u->state, BC_ACTIVE, memory_order_relaxed);
	h->cons = (struct bc_cons){ .sh = h->sh, .me = u, .g = h->g, .bit = 1ull << idx,
				    .ack = ev, .idx = (uint32_t)idx, .light = light,
				    .overwrite = h->overwrite };
	uint64_t expect;
	uint64_t start = resumed ? resume_pos(h, u, &expect) : start_pos(h, oldest, &expect);
	/* moved up past what the producer dropped meanwhile: a named
	 * subscriber lost it; a new one learns where it is from the first
	 * message */
	if (bc_join(&h->cons, start)) {
		h->overflow = resumed;
		if (!resumed)
			expect = 0;
	}
	h->cons.expect = expect;
	atomic_store_explicit(&u->next_seq, expect, memory_order_relaxed);
	return 0;
}

static int attach_prod(struct bcast_handle *h, bool light)
{
	struct seg_handle *s = &h->seg;
	if (s->ctl->prod_owner)
		return -EBUSY;        /* after repair, an owner is a live one */
	int rc = bc_prod_init(&h->prod, h->sh, &h->g, light, h->overwrite);
	if (rc < 0)
		return rc;
	h->flushed = h->prod.head;
	if (s->slot < 0) {
		if ((rc = ctl_join(s->ctl, s->lock_fd, ROLE_PRODUCER)) < 0)
			return rc;
		s->slot = rc;
	}
	s->ctl->prod_owner = (uint32_t)s->slot + 1;
	/* relaxed: under the lock; a stale flag costs one spurious wake */
	atomic_store_explicit(&h->sh->prod_sleeping, 0, memory_order_relaxed);
	/* a relay our predecessor left: whoever it was left to may be gone */
	h->relay_seq = 0;
	relay_take(h->sh, &h->sh->prod_wakes);
	return 0;
}

/* Leave the subscriber line: no longer counted; a named one parks. */
static void leave_sub(struct bcast_handle *h)
{
	struct bc_sub *u = h->cons.me;
	uint64_t bit = 1ull << h->cons.idx;
	/* seq_cst: as [E1] */
	atomic_fetch_and_explicit(&h->sh->active, ~bit, memory_order_seq_cst);
	/* relaxed, here: under the control lock */
	atomic_fetch_and_explicit(&h->sh->sub_sleeping, ~bit, memory_order_relaxed);
	atomic_fetch_and_explicit(&h->sh->sub_polling, ~bit, memory_order_relaxed);
	atomic_store_explicit(&u->owner, 0, memory_order_relaxed);
	atomic_store_explicit(&u->state, h->seg.sub_name[0] ? BC_PARKED : BC_FREE,
			      memory_order_relaxed);
}

static int kind_attach(struct seg_handle *s, uint32_t roles)
{
	struct bcast_handle *h = (struct bcast_handle *)s;
	int rc = lock_repaired(h);
	if (rc < 0)
		return rc;
	bool light = fence_register();
	bool oldest = (s->oflags & SHMRING_OLDEST) != 0;
	if (roles & ROLE_PRODUCER) {
		if (s->ctl->prod_owner)
			rc = -EBUSY;
		else if ((roles & ROLE_CONSUMER) && pick_line(h) < 0)
			rc = -EBUSY;
	}
	if (rc == 0 && (roles & ROLE_CONSUMER))
		rc = attach_sub(h, light, oldest);
	if (rc == 0 && (roles & ROLE_PRODUCER) && (rc = attach_prod(h, light)) < 0 &&
	    (roles & ROLE_CONSUMER))
		leave_sub(h);
	if (rc < 0 && s->slot >= 0) {
		ctl_leave(s->ctl, s->lock_fd, (uint32_t)s->slot);
		s->slot = -1;
	}
	if (rc == 0)
		s->head.roles = roles | HANDLE_BCAST;
	segh_unlock(s);
	return rc;
}

static void kind_detach(struct seg_handle *s)
{
	struct bcast_handle *h = (struct bcast_handle *)s;
	if (lock_repaired(h) < 0)
		return;
	uint32_t me = (uint32_t)s->slot + 1;
	if (s->ctl->prod_owner == me) {
		s->ctl->prod_owner = 0;
		/* relaxed: our arming goes with us */
		atomic_fetch_and_explicit(&h->sh->prod_sleeping, ~WAIT_POLLING, memory_order_relaxed);
	}
	if ((s->head.roles & SHMRING_CONSUMER) && h->cons.me) {
		leave_sub(h);
		/* a producer held back by us goes on at once */
		wake_prod(h, &h->cons.me->wakes, &h->cons.me->bells);
	}
	ctl_leave(s->ctl, s->lock_fd, (uint32_t)s->slot);
	segh_unlock(s);
}

const struct segh_kind segh_kind_bcast = {
	.kind = SHMRING_BCAST,
	.handle_size = sizeof(struct bcast_handle),
	.in_files = true,
	.ops = &bch_ops,
	.init = kind_init,
	.attach = kind_attach,
	.detach = kind_detach,
};
