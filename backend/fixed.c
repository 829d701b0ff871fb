/* SPDX-License-Identifier: MIT */
/*
 * SPSC rings of fixed-size messages (SHMRING_FIXED): the data path on the
 * index ring of ring/fixed.h, waiting and waking as the SPSC kind does
 * (sync/wait.h, doorbells), the roles (one producer, one consumer, taken
 * over from a dead holder at the shared counters), and the ops table.
 *
 * Every message is max_msg bytes: a send, reservation or commit of any
 * other length is -EMSGSIZE, a receive returns max_msg.
 */
#include <errno.h>

#include "seg.h"
#include "../mmapfile/mmapfile.h"
#include "../ring/fixed.h"
#include "../sync/clock.h"
#include "../sync/fence.h"
#include "../sync/wait.h"

struct fixed_handle {
	struct seg_handle seg;
	struct fixed_prod prod;    /* valid with SHMRING_PRODUCER */
	struct fixed_cons cons;    /* valid with SHMRING_CONSUMER */
	struct fixed_shared *sh;   /* ring state in the mapping */
	uint64_t flushed;          /* producer of a file: ring: slots before it are durable */
};

static inline struct fixed_handle *fxh_of(struct shmring *r)
{
	return (struct fixed_handle *)(void *)r;
}

static inline bool fxh_shut(const struct fixed_handle *h, memory_order mo)
{
	return atomic_load_explicit(&h->sh->shutdown, mo) != 0;
}

/* ---- waking ------------------------------------------------------------ */

/* `sleeping` said somebody sleeps or polls: wake it, and ring the doorbell
 * of `owner`'s participant (slot + 1) if it polls. */
static __attribute__((noinline)) void fxh_wake(struct fixed_handle *h, _Atomic uint32_t *sleeping,
					       _Atomic uint32_t *word, _Atomic uint64_t *wakes,
					       const uint32_t *owner, _Atomic uint64_t *rung,
					       struct wait_fence *f)
{
	if (wait_wake(sleeping, word, wakes, f) & WAIT_POLLING)
		/* relaxed: written under the control lock at attach; a stale
		 * owner names a doorbell nobody listens to (checked there) */
		segh_ring(&h->seg, __atomic_load_n(owner, __ATOMIC_RELAXED), rung);
}

/* After the producer's publish: wake the consumer if it sleeps or polls. */
static inline void fxh_published(struct fixed_handle *h)
{
	if (unlikely(fx_publish(&h->prod)))
		fxh_wake(h, &h->sh->cons_sleeping, &h->sh->cons_wake, &h->sh->prod_wakes,
			 &h->seg.ctl->cons_owner, &h->sh->prod_bells, &h->prod.wf);
}

/* After the consumer's release: wake the producer if it sleeps or polls. */
static inline void fxh_released(struct fixed_handle *h, uint64_t to)
{
	if (unlikely(fx_release_to(&h->cons, to)))
		fxh_wake(h, &h->sh->prod_sleeping, &h->sh->prod_wake, &h->sh->cons_wakes,
			 &h->seg.ctl->prod_owner, &h->sh->cons_bells, &h->cons.wf);
}

/* ---- looking once ------------------------------------------------------ */

/* Free slots (>= 1), -EAGAIN (full), -EPIPE or -EPROTO. */
static inline int64_t fxh_prod_try(struct fixed_handle *h)
{
	/* relaxed: only stops further sends; nothing is read through it */
	if (unlikely(fxh_shut(h, memory_order_relaxed)))
		return -EPIPE;
	int64_t n = fx_free(&h->prod, 1);
	return n == 0 ? -EAGAIN : n;
}

/* Messages to read (>= 1), -EAGAIN (empty), -EPIPE (empty and shut down)
 * or -EPROTO. */
static inline int64_t fxh_cons_try(struct fixed_handle *h)
{
	int64_t n = fx_avail(&h->cons);
	/* [S2] acquire: pairs with [S1]; every message published before the
	 * shutdown is then visible to the second look */
	if (unlikely(n == 0) && fxh_shut(h, memory_order_acquire)) {
		n = fx_avail(&h->cons);
		if (n == 0)
			return -EPIPE;
	}
	return n == 0 ? -EAGAIN : n;
}

/* ---- waiting ----------------------------------------------------------- */

/* A peer that answers at once: look again for a few polls before reading
 * any clock (as the SPSC kind does).  Not with a spin time of 0. */
#define PRE_SPIN_POLLS 64u

static bool pre_spin(struct fixed_handle *h, _Atomic uint64_t *watch, uint64_t seen)
{
	if (h->seg.head.spin_ns == 0)
		return false;
	for (unsigned i = 0; i < PRE_SPIN_POLLS; i++) {
		/* relaxed: a hint to look again; the ring re-reads with acquire */
		if (atomic_load_explicit(watch, memory_order_relaxed) != seen ||
		    atomic_load_explicit(&h->sh->shutdown, memory_order_relaxed))
			return true;
		cpu_relax();
	}
	return false;
}

/* Messages this handle moved: a wake-up after which it moved none was
 * spurious. */
static uint64_t own_done(const struct fixed_handle *h)
{
	uint32_t roles = h->seg.head.roles;
	return ((roles & SHMRING_PRODUCER) ? h->prod.tail : 0) +
	       ((roles & SHMRING_CONSUMER) ? h->cons.head : 0);
}

/* The last look found work: take our arming down (relaxed: the bit is
 * ours to take down; a waker that took it first rang the doorbell, which
 * the next arming drains). */
static void disarm(_Atomic uint32_t *word)
{
	atomic_fetch_and_explicit(word, ~WAIT_POLLING, memory_order_relaxed);
}

/* The ring was full: wait for a free slot (shmring_fd handles with timeout
 * 0: arm the doorbell and look once more). */
static __attribute__((noinline, cold)) int64_t fxh_prod_wait(struct fixed_handle *h,
							     int64_t timeout_ns)
{
	int64_t rc;
	if (timeout_ns == 0) {
		if (!segh_polls(&h->seg))
			return -EAGAIN;
		segh_arm_prepare(&h->seg, own_done(h), &h->sh->prod_spurious);
		/* [B1] seq_cst RMW: announce the poller before the last look;
		 * the consumer's exchange in wait_wake() takes it down */
		if (!(atomic_fetch_or_explicit(&h->sh->prod_sleeping, WAIT_POLLING,
					       memory_order_seq_cst) & WAIT_FENCED))
			segh_arm_fence(&h->seg);
		/* [B3] seq_cst: the last look, after [B1]; pairs with the
		 * consumer's [X4] store and its look (Dekker, as [W3]) */
		uint64_t head = atomic_load_explicit(&h->sh->cons_head, memory_order_seq_cst);
		if (head == h->prod.cons_cache && !fxh_shut(h, memory_order_seq_cst))
			return -EAGAIN;
		disarm(&h->sh->prod_sleeping);
		return fxh_prod_try(h);
	}
	fx_count(&h->sh->waits_full, 1);
	if (pre_spin(h, &h->sh->cons_head, h->prod.cons_cache) && (rc = fxh_prod_try(h)) != -EAGAIN)
		return rc;
	struct waiter w = {
		.watch = &h->sh->cons_head, .shut = &h->sh->shutdown,
		.sleeping = &h->sh->prod_sleeping, .word = &h->sh->prod_wake,
		.sleeps = &h->sh->prod_sleeps,
		.spin_until = clock_mono_ns() + h->seg.head.spin_ns,
	};
	uint64_t deadline = clock_deadline(timeout_ns);
	for (;;) {
		int wr = wait_change(&w, h->prod.cons_cache, deadline);
		if (wr < 0)
			return wr;
		if ((rc = fxh_prod_try(h)) != -EAGAIN)
			return rc;
	}
}

/* The ring was empty: wait for a message (or arm the doorbell, as above). */
static __attribute__((noinline, cold)) int64_t fxh_cons_wait(struct fixed_handle *h,
							     int64_t timeout_ns)
{
	int64_t rc;
	if (timeout_ns == 0) {
		if (!segh_polls(&h->seg))
			return -EAGAIN;
		segh_arm_prepare(&h->seg, own_done(h), &h->sh->cons_spurious);
		/* [B1] seq_cst RMW: as above; the producer's exchange takes it down */
		if (!(atomic_fetch_or_explicit(&h->sh->cons_sleeping, WAIT_POLLING,
					       memory_order_seq_cst) & WAIT_FENCED))
			segh_arm_fence(&h->seg);
		/* [B3] seq_cst: the last look, after [B1]; pairs with the
		 * producer's [X2] store and its look (Dekker, as [W3]) */
		uint64_t tail = atomic_load_explicit(&h->sh->prod_tail, memory_order_seq_cst);
		if (tail == h->cons.read && !fxh_shut(h, memory_order_seq_cst))
			return -EAGAIN;
		disarm(&h->sh->cons_sleeping);
		return fxh_cons_try(h);
	}
	fx_count(&h->sh->waits_empty, 1);
	if (pre_spin(h, &h->sh->prod_tail, h->cons.read) && (rc = fxh_cons_try(h)) != -EAGAIN)
		return rc;
	struct waiter w = {
		.watch = &h->sh->prod_tail, .shut = &h->sh->shutdown,
		.sleeping = &h->sh->cons_sleeping, .word = &h->sh->cons_wake,
		.sleeps = &h->sh->cons_sleeps,
		.spin_until = clock_mono_ns() + h->seg.head.spin_ns,
	};
	uint64_t deadline = clock_deadline(timeout_ns);
	for (;;) {
		int wr = wait_change(&w, h->cons.read, deadline);
		if (wr < 0)
			return wr;
		if ((rc = fxh_cons_try(h)) != -EAGAIN)
			return rc;
	}
}

/* Free slots (>= 1) or -errno, waiting as the timeout says. */
static inline int64_t fxh_room(struct fixed_handle *h, int64_t timeout_ns)
{
	int64_t n = fxh_prod_try(h);
	return likely(n != -EAGAIN) ? n : fxh_prod_wait(h, timeout_ns);
}

/* Messages to read (>= 1) or -errno, waiting as the timeout says. */
static inline int64_t fxh_ready(struct fixed_handle *h, int64_t timeout_ns)
{
	int64_t n = fxh_cons_try(h);
	return likely(n != -EAGAIN) ? n : fxh_cons_wait(h, timeout_ns);
}

/* ---- producer ---------------------------------------------------------- */

static int op_send(struct shmring *r, const void *msg, size_t len, int64_t timeout_ns)
{
	struct fixed_handle *h = fxh_of(r);
	struct fixed_prod *p = &h->prod;
	if (unlikely(p->resv_open))
		return -EINPROGRESS;
	if (unlikely(len != p->g.size))
		return -EMSGSIZE;
	int64_t n = fxh_room(h, timeout_ns);
	if (unlikely(n < 0))
		return (int)n;
	ring_copy(fx_slot(&p->g, p->tail), msg, len);
	p->tail++;
	fxh_published(h);
	return 0;
}

static int op_send_batch(struct shmring *r, const struct iovec *msgs, unsigned n,
			 int64_t timeout_ns)
{
	struct fixed_handle *h = fxh_of(r);
	struct fixed_prod *p = &h->prod;
	if (p->resv_open)
		return -EINPROGRESS;
	const size_t size = p->g.size;
	if (msgs[0].iov_len != size)
		return -EMSGSIZE;
	if (!msgs[0].iov_base)
		return -EINVAL;
	/* every message that fits, published at once; wait for the first only */
	int64_t room = fx_free(p, n);
	if (room == 0 || (room > 0 && fxh_shut(h, memory_order_relaxed)))
		room = fxh_room(h, timeout_ns);
	if (room < 0)
		return (int)room;
	unsigned k = n < (uint64_t)room ? n : (unsigned)room;
	const struct fixed_geom g = p->g;   /* private: the copies cannot alias it */
	uint64_t tail = p->tail;
	unsigned i;
	for (i = 0; i < k; i++) {
		if (msgs[i].iov_len != size || !msgs[i].iov_base)
			break;       /* the next call reports it */
		ring_copy(fx_slot(&g, tail + i), msgs[i].iov_base, size);
	}
	p->tail = tail + i;
	fxh_published(h);
	return (int)i;
}

static int op_reserve(struct shmring *r, size_t len, struct shmring_msg *m, int64_t timeout_ns)
{
	struct fixed_handle *h = fxh_of(r);
	struct fixed_prod *p = &h->prod;
	if (p->resv_open)
		return -EINPROGRESS;
	if (len != p->g.size)
		return -EMSGSIZE;
	int64_t n = fxh_room(h, timeout_ns);
	if (n < 0)
		return (int)n;
	p->resv_open = true;
	m->data = fx_slot(&p->g, p->tail);
	m->len = len;
	m->priv[0] = p->tail;    /* ties commit to this reservation */
	m->priv[1] = len;
	return 0;
}

static int op_commit(struct shmring *r, struct shmring_msg *m)
{
	struct fixed_handle *h = fxh_of(r);
	struct fixed_prod *p = &h->prod;
	/* the payload pointer too: another ring's reservation may carry the
	 * same position */
	if (!p->resv_open || m->priv[0] != p->tail || m->priv[1] != p->g.size ||
	    m->data != fx_slot(&p->g, p->tail))
		return -EINVAL;
	if (m->len != p->g.size)
		return -EMSGSIZE;    /* the reservation stays open */
	p->resv_open = false;
	if (fxh_shut(h, memory_order_relaxed)) {
		/* the stream ended while the message was being written: drop
		 * it rather than let it appear after consumers saw -EPIPE.
		 * relaxed: a counter, displayed only */
		atomic_fetch_add_explicit(&h->seg.ctl->dropped, 1, memory_order_relaxed);
		return -EPIPE;
	}
	p->tail++;
	fxh_published(h);
	m->data = NULL;
	return 0;
}

static int op_shutdown(struct shmring *r)
{
	struct fixed_handle *h = fxh_of(r);
	/* [S1] seq_cst: after every publish of ours ([X2] is sequenced
	 * before); pairs with the consumer's [S2] acquire */
	atomic_store_explicit(&h->sh->shutdown, 1, memory_order_seq_cst);
	/* a poller must learn it too: take its arming down and ring; then
	 * unconditionally: a consumer asleep must learn the stream is over */
	if (atomic_fetch_and_explicit(&h->sh->cons_sleeping, ~WAIT_WAITERS, memory_order_seq_cst) &
	    WAIT_POLLING)
		/* relaxed: as in fxh_wake() */
		segh_ring(&h->seg, __atomic_load_n(&h->seg.ctl->cons_owner, __ATOMIC_RELAXED),
			  &h->sh->prod_bells);
	wait_wake(NULL, &h->sh->cons_wake, &h->sh->prod_wakes, NULL);
	return 0;
}

/* ---- consumer ---------------------------------------------------------- */

static ssize_t op_recv(struct shmring *r, void *buf, size_t cap, int64_t timeout_ns)
{
	struct fixed_handle *h = fxh_of(r);
	struct fixed_cons *c = &h->cons;
	if (unlikely(c->read != c->head))
		return -EINPROGRESS;   /* release acquired messages first */
	if (unlikely(cap < c->g.size))
		return -EMSGSIZE;      /* the message stays at the head */
	int64_t n = fxh_ready(h, timeout_ns);
	if (unlikely(n < 0))
		return n;
	/* copied, then released: a consumer killed in between has handed
	 * out nothing, and its successor starts at the same message */
	ring_copy_out(buf, fx_slot(&c->g, c->read), c->g.size);
	c->read++;
	fxh_released(h, c->read);
	return c->g.size;
}

static int op_recv_batch(struct shmring *r, struct iovec *bufs, unsigned n, int64_t timeout_ns)
{
	struct fixed_handle *h = fxh_of(r);
	struct fixed_cons *c = &h->cons;
	if (c->read != c->head)
		return -EINPROGRESS;
	const size_t size = c->g.size;
	if (bufs[0].iov_len < size)
		return -EMSGSIZE;
	if (!bufs[0].iov_base)
		return -EINVAL;
	/* wait only for the first message; the rest are those already there */
	int64_t avail = fxh_ready(h, timeout_ns);
	if (avail < 0)
		return (int)avail;
	unsigned k = n < (uint64_t)avail ? n : (unsigned)avail;
	const struct fixed_geom g = c->g;
	uint64_t read = c->read;
	unsigned i;
	for (i = 0; i < k; i++) {
		if (bufs[i].iov_len < size || !bufs[i].iov_base)
			break;
		ring_copy_out(bufs[i].iov_base, fx_slot(&g, read + i), size);
		bufs[i].iov_len = size;
	}
	/* released together, after the copies (as op_recv) */
	c->read = read + i;
	fxh_released(h, c->read);
	return (int)i;
}

static int op_acquire(struct shmring *r, struct shmring_msg *m, int64_t timeout_ns)
{
	struct fixed_handle *h = fxh_of(r);
	struct fixed_cons *c = &h->cons;
	int64_t n = fxh_ready(h, timeout_ns);
	if (n < 0)
		return (int)n;
	m->data = fx_slot(&c->g, c->read);
	m->len = c->g.size;
	m->priv[0] = c->read;     /* release must come in acquisition order */
	m->priv[1] = c->read + 1;
	fx_take(c, 1);
	return 0;
}

static int op_release(struct shmring *r, struct shmring_msg *m)
{
	struct fixed_handle *h = fxh_of(r);
	struct fixed_cons *c = &h->cons;
	if (m->priv[0] != c->head || c->read == c->head || m->priv[1] != c->head + 1 ||
	    m->data != fx_slot(&c->g, c->head) || m->len != c->g.size)
		return -EINVAL;
	fxh_released(h, c->head + 1);
	m->data = NULL;
	return 0;
}

/* ---- the rest of the handle -------------------------------------------- */

static int op_caps(struct shmring *r, struct shmring_caps *caps)
{
	const struct seg_handle *s = &fxh_of(r)->seg;
	caps->flags = SHMRING_CAP_ZEROCOPY | SHMRING_CAP_RECOVERY | SHMRING_CAP_BLOCKING |
		      SHMRING_CAP_PERSISTENT | SHMRING_CAP_POLL | SHMRING_CAP_FIXED |
		      (s->is_file ? SHMRING_CAP_DURABLE : 0);
	caps->max_producers = 1;
	caps->max_consumers = 1;
	caps->max_msg = s->map->geom.max_msg;
	caps->capacity = s->map->geom.capacity;
	return 0;
}

static int op_flush(struct shmring *r)
{
	struct fixed_handle *h = fxh_of(r);
	struct seg_handle *s = &h->seg;
	if (!s->is_file)
		return 0;
	uint32_t roles = s->head.roles;
	int rc = 0;
	if (roles & SHMRING_PRODUCER) {
		if (h->prod.resv_open)
			return -EINPROGRESS;
		rc = mf_flush_slots(s->map->base, &s->map->geom, &h->flushed, h->prod.tail);
	}
	if (rc == 0 && (roles & SHMRING_CONSUMER))
		rc = mf_flush_position(s->map->base, &s->map->geom);
	if (rc == 0 && !roles)
		rc = mf_flush_all(s->map->base, &s->map->geom);
	return rc;
}

static const struct shmring_backend_ops fxh_ops = {
	.name = "fixed",
	.send = op_send, .recv = op_recv,
	.reserve = op_reserve, .commit = op_commit,
	.acquire = op_acquire, .release = op_release,
	.send_batch = op_send_batch, .recv_batch = op_recv_batch,
	.shutdown = op_shutdown, .stats = segh_stats, .caps = op_caps, .flush = op_flush,
	.fd = segh_fd, .fork_child = segh_fork_child, .close = segh_close,
};

/* ---- roles ------------------------------------------------------------- */

static struct fixed_geom geom_of(const struct seg_handle *s)
{
	const struct seg_geom *sg = &s->map->geom;
	return fx_geom_make(s->map->base + sg->data_off, sg->capacity, sg->max_msg);
}

static int kind_init(struct seg_handle *s)
{
	struct fixed_handle *h = (struct fixed_handle *)s;
	h->sh = (struct fixed_shared *)(s->map->base + s->map->geom.ring_off);
	return 0;
}

/* With the control lock held and the table repaired. */
static int attach_locked(struct fixed_handle *h, uint32_t roles)
{
	struct seg_handle *s = &h->seg;
	struct ctl_shared *c = s->ctl;
	if (((roles & ROLE_PRODUCER) && c->prod_owner) ||
	    ((roles & ROLE_CONSUMER) && c->cons_owner))
		return -EBUSY;       /* after repair, an owner is a live one */
	/* registered receivers of the sleeper's membarrier may skip the full
	 * fence on every publish (sync/fence.h) */
	bool light = fence_register();
	const struct fixed_geom g = geom_of(s);
	int rc;
	if (roles & ROLE_CONSUMER) {
		/* a new consumer takes over at the released position: what its
		 * predecessor had acquired but not released comes again */
		uint64_t again;
		if ((rc = fx_cons_init(&h->cons, h->sh, &g, light, &again)) < 0)
			return rc;
		/* relaxed: under the control lock; display only */
		atomic_fetch_add_explicit(&c->redelivered, again, memory_order_relaxed);
	}
	if ((roles & ROLE_PRODUCER) && (rc = fx_prod_init(&h->prod, h->sh, &g, light)) < 0)
		return rc;
	h->flushed = h->prod.tail;
	if ((rc = ctl_join(c, s->lock_fd, roles)) < 0)
		return rc;
	s->slot = rc;
	/* A predecessor killed while asleep left its flag up: the peer would
	 * make a FUTEX_WAKE per message for nobody.  relaxed: under the lock,
	 * and a stale value costs one spurious wake at most.  WAIT_FENCED is
	 * the peer's (its waker role): it stays. */
	if (roles & ROLE_PRODUCER) {
		c->prod_owner = (uint32_t)s->slot + 1;
		atomic_fetch_and_explicit(&h->sh->prod_sleeping, ~WAIT_WAITERS, memory_order_relaxed);
	}
	if (roles & ROLE_CONSUMER) {
		c->cons_owner = (uint32_t)s->slot + 1;
		atomic_fetch_and_explicit(&h->sh->cons_sleeping, ~WAIT_WAITERS, memory_order_relaxed);
	}
	/* not HANDLE_SPSC: api/ops.c's inline way in is the header ring's */
	s->head.roles = roles;
	return 0;
}

static int kind_attach(struct seg_handle *s, uint32_t roles)
{
	int rc = segh_lock(s, NULL);
	if (rc < 0)
		return rc;
	ctl_repair(s->ctl, s->map->fd, NULL);
	rc = attach_locked((struct fixed_handle *)s, roles);
	segh_unlock(s);
	return rc;
}

static void kind_detach(struct seg_handle *s)
{
	if (segh_lock(s, NULL) < 0)
		return;
	struct fixed_handle *h = (struct fixed_handle *)s;
	uint32_t me = (uint32_t)s->slot + 1;
	/* relaxed: our arming goes with us; a stale bit costs the peer one
	 * failed sendto */
	if (s->ctl->prod_owner == me) {
		s->ctl->prod_owner = 0;
		atomic_fetch_and_explicit(&h->sh->prod_sleeping, ~WAIT_POLLING, memory_order_relaxed);
	}
	if (s->ctl->cons_owner == me) {
		s->ctl->cons_owner = 0;
		atomic_fetch_and_explicit(&h->sh->cons_sleeping, ~WAIT_POLLING, memory_order_relaxed);
	}
	ctl_leave(s->ctl, s->lock_fd, (uint32_t)s->slot);
	segh_unlock(s);
}

const struct segh_kind segh_kind_fixed = {
	.kind = SHMRING_SPSC,
	.handle_size = sizeof(struct fixed_handle),
	.in_files = true,
	.ops = &fxh_ops,
	.init = kind_init,
	.attach = kind_attach,
	.detach = kind_detach,
};
