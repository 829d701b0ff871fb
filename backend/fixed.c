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

_Static_assert(offsetof(struct fixed_shared, cons_sleeping) == SEGH_PAIR_CONS_SLEEPING &&
	       offsetof(struct fixed_shared, prod_sleeping) == SEGH_PAIR_PROD_SLEEPING,
	       "segh_pair_* find the sleeping words");

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
					       struct shmring_inl_fence *f)
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

/* Messages this handle moved: a wake-up after which it moved none was
 * spurious. */
static uint64_t own_done(const struct fixed_handle *h)
{
	uint32_t roles = h->seg.head.roles;
	return ((roles & SHMRING_PRODUCER) ? h->prod.tail : 0) +
	       ((roles & SHMRING_CONSUMER) ? h->cons.head : 0);
}

/* One side's waiting: the peer's counter it watches, its own words. */
struct fx_side {
	_Atomic uint64_t *watch;
	uint64_t seen;             /* the value that means "nothing new" */
	_Atomic uint32_t *sleeping, *wake;
	_Atomic uint64_t *sleeps, *waits, *spurious;
};

static struct fx_side side_of(struct fixed_handle *h, bool prod)
{
	struct fixed_shared *sh = h->sh;
	if (prod)
		return (struct fx_side){ &sh->cons_head, h->prod.cons_cache, &sh->prod_sleeping,
					 &sh->prod_wake, &sh->prod_sleeps, &sh->waits_full,
					 &sh->prod_spurious };
	return (struct fx_side){ &sh->prod_tail, h->cons.read, &sh->cons_sleeping, &sh->cons_wake,
				 &sh->cons_sleeps, &sh->waits_empty, &sh->cons_spurious };
}

static int64_t fxh_try(struct fixed_handle *h, bool prod)
{
	return prod ? fxh_prod_try(h) : fxh_cons_try(h);
}

/* The ring was full (prod) or empty: wait for the peer's counter to move.
 * A shmring_fd handle with timeout 0 arms its doorbell and looks once
 * more instead. */
static __attribute__((noinline, cold)) int64_t fxh_wait(struct fixed_handle *h, bool prod,
							int64_t timeout_ns)
{
	struct fx_side d = side_of(h, prod);
	int64_t rc;
	if (timeout_ns == 0) {
		if (!segh_polls(&h->seg))
			return -EAGAIN;
		segh_arm_prepare(&h->seg, own_done(h), d.spurious);
		/* [B1] seq_cst RMW: announce the poller before the last look;
		 * the peer's exchange in wait_wake() takes it down.  No
		 * membarrier while that waker fences every publish ([F1]). */
		if (!(atomic_fetch_or_explicit(d.sleeping, WAIT_POLLING, memory_order_seq_cst) &
		      WAIT_FENCED))
			segh_arm_fence(&h->seg);
		/* [B3] seq_cst: the last look, after [B1]; pairs with the
		 * peer's [X2]/[X4] store and its look (Dekker, as [W3]) */
		if (atomic_load_explicit(d.watch, memory_order_seq_cst) == d.seen &&
		    !fxh_shut(h, memory_order_seq_cst))
			return -EAGAIN;
		/* found work: the bit is ours to take down (relaxed); a waker
		 * that took it first rang, and the next arming drains that */
		atomic_fetch_and_explicit(d.sleeping, ~WAIT_POLLING, memory_order_relaxed);
		return fxh_try(h, prod);
	}
	/* relaxed: a counter of this role's, displayed only */
	atomic_fetch_add_explicit(d.waits, 1, memory_order_relaxed);
	if (segh_pre_spin(&h->seg, d.watch, d.seen, &h->sh->shutdown) &&
	    (rc = fxh_try(h, prod)) != -EAGAIN)
		return rc;
	struct waiter w = {
		.watch = d.watch, .shut = &h->sh->shutdown,
		.sleeping = d.sleeping, .word = d.wake, .sleeps = d.sleeps,
		.spin_until = clock_mono_ns() + h->seg.head.spin_ns,
	};
	uint64_t deadline = clock_deadline(timeout_ns);
	for (;;) {
		int wr = wait_change(&w, d.seen, deadline);
		if (wr < 0)
			return wr;
		if ((rc = fxh_try(h, prod)) != -EAGAIN)
			return rc;
	}
}

/* Free slots (>= 1) or -errno, waiting as the timeout says. */
static inline int64_t fxh_room(struct fixed_handle *h, int64_t timeout_ns)
{
	int64_t n = fxh_prod_try(h);
	return likely(n != -EAGAIN) ? n : fxh_wait(h, true, timeout_ns);
}

/* Messages to read (>= 1) or -errno, waiting as the timeout says. */
static inline int64_t fxh_ready(struct fixed_handle *h, int64_t timeout_ns)
{
	int64_t n = fxh_cons_try(h);
	return likely(n != -EAGAIN) ? n : fxh_wait(h, false, timeout_ns);
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
	segh_pair_shutdown(&h->seg, &h->sh->shutdown, &h->sh->cons_sleeping, &h->sh->cons_wake,
			   &h->sh->prod_wakes, &h->sh->prod_bells);
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
	/* copied, then taken and released: a consumer killed before has
	 * handed out nothing, and its successor starts at the same message */
	ring_copy_out(buf, fx_slot(&c->g, c->read), c->g.size);
	fx_take(c, 1);
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
	/* taken and released together, after the copies (as op_recv) */
	fx_take(c, i);
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

static int op_flush(struct shmring *r)
{
	struct fixed_handle *h = fxh_of(r);
	return segh_flush(&h->seg, h->prod.resv_open, &h->flushed, h->prod.tail);
}

static const struct shmring_backend_ops fxh_ops = {
	.name = "fixed",
	.send = op_send, .recv = op_recv,
	.reserve = op_reserve, .commit = op_commit,
	.acquire = op_acquire, .release = op_release,
	.send_batch = op_send_batch, .recv_batch = op_recv_batch,
	.shutdown = op_shutdown, .stats = segh_stats, .caps = segh_pair_caps, .flush = op_flush,
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
static int attach_locked(struct seg_handle *s, uint32_t roles)
{
	struct fixed_handle *h = (struct fixed_handle *)s;
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
	if ((rc = segh_pair_join(s, roles)) < 0)
		return rc;
	/* not HANDLE_SPSC: api/ops.c's inline way in is the header ring's */
	s->head.roles = roles;
	return 0;
}

const struct segh_kind segh_kind_fixed = {
	.kind = SHMRING_SPSC,
	.handle_size = sizeof(struct fixed_handle),
	.in_files = true,
	.ops = &fxh_ops,
	.init = kind_init,
	.attach = segh_pair_attach,
	.detach = segh_pair_detach,
	.attach_locked = attach_locked,
};
