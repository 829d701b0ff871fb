/* SPDX-License-Identifier: MIT */
/*
 * The SPSC ring kind: waiting when full or empty, batches, shutdown, the
 * roles (one producer, one consumer, taken over from a dead holder), and
 * the ops table.  The per-message calls are inline in backend/spsc.h.
 */
#include "spsc.h"

#include <errno.h>

#include "../sync/fence.h"

_Static_assert(offsetof(struct spsc_shared, cons_sleeping) == SEGH_PAIR_CONS_SLEEPING &&
	       offsetof(struct spsc_shared, prod_sleeping) == SEGH_PAIR_PROD_SLEEPING,
	       "segh_pair_* find the sleeping words");

/* ---- waiting ------------------------------------------------------------ */

/* A peer that answers at once: look again for a few polls before reading
 * any clock (segh_pre_spin). */
static bool pre_spin(struct spsc_handle *h, _Atomic uint64_t *watch, uint64_t seen)
{
	return segh_pre_spin(&h->seg, watch, seen, &h->sh->shutdown);
}

/* The ring was full and the caller may wait. */
__attribute__((noinline, cold))
int sph_prod_wait(struct spsc_handle *h, size_t len, void **out, int64_t timeout_ns)
{
	int rc;
	spsc_count(&h->sh->waits_full, 1);
	if (pre_spin(h, &h->sh->cons_head, h->prod.f.cons_cache) &&
	    (rc = sph_prod_try(h, len, out)) != -EAGAIN)
		return rc;
	struct waiter w = {
		.watch = &h->sh->cons_head, .shut = &h->sh->shutdown,
		.sleeping = &h->sh->prod_sleeping, .word = &h->sh->prod_wake,
		.sleeps = &h->sh->prod_sleeps,
		.spin_until = clock_mono_ns() + h->seg.head.spin_ns,
	};
	uint64_t deadline = clock_deadline(timeout_ns);
	for (;;) {
		if ((rc = wait_change(&w, h->prod.f.cons_cache, deadline)) < 0)
			return rc;
		if ((rc = sph_prod_try(h, len, out)) != -EAGAIN)
			return rc;
	}
}

/* The ring was empty and the caller may wait. */
__attribute__((noinline, cold))
int sph_cons_wait(struct spsc_handle *h, void **data, uint32_t *len, uint64_t *end,
		  int64_t timeout_ns)
{
	int rc;
	spsc_count(&h->sh->waits_empty, 1);
	if (pre_spin(h, spsc_cons_watch(&h->cons), 0) &&
	    (rc = sph_cons_try(h, data, len, end)) != -EAGAIN)
		return rc;
	/* an empty ring is a zero header word at our position: wait for it
	 * to change (the position does not move while we wait) */
	struct waiter w = {
		.watch = spsc_cons_watch(&h->cons), .shut = &h->sh->shutdown,
		.sleeping = &h->sh->cons_sleeping, .word = &h->sh->cons_wake,
		.sleeps = &h->sh->cons_sleeps,
		.spin_until = clock_mono_ns() + h->seg.head.spin_ns,
	};
	uint64_t deadline = clock_deadline(timeout_ns);
	for (;;) {
		if ((rc = wait_change(&w, 0, deadline)) < 0)
			return rc;
		if ((rc = sph_cons_try(h, data, len, end)) != -EAGAIN)
			return rc;
	}
}

/* ---- pollers (shmring_fd) ----------------------------------------------- */

/* Messages this handle moved: a wake-up after which it moved none was
 * spurious. */
static uint64_t own_done(const struct spsc_handle *h)
{
	uint32_t roles = h->seg.head.roles;
	/* relaxed: our own counters */
	return ((roles & SHMRING_PRODUCER) ? atomic_load_explicit(&h->sh->msgs_sent,
								   memory_order_relaxed) : 0) +
	       ((roles & SHMRING_CONSUMER) ? atomic_load_explicit(&h->sh->msgs_recv,
								   memory_order_relaxed) : 0);
}

/* The last look found work: the call goes on instead of waiting, and
 * will arm again at its next -EAGAIN; until then a ring would be for
 * nobody.  relaxed: the bit is ours to take down; if the waker took it
 * first, its ring waits in the doorbell and the next arming drains it. */
static void disarm(_Atomic uint32_t *word)
{
	atomic_fetch_and_explicit(word, ~WAIT_POLLING, memory_order_relaxed);
}

int sph_prod_poll(struct spsc_handle *h, size_t len, void **out)
{
	/* Bounded by the consumer: each lap needs a release since the last
	 * look, yet not room enough for len. */
	for (;;) {
		segh_arm_prepare(&h->seg, own_done(h), &h->sh->prod_spurious);
		/* [B1] seq_cst RMW: announce the poller before the last look;
		 * the consumer's exchange in wait_wake() takes it down.  No
		 * membarrier while that waker fences every publish ([F1]). */
		if (!(atomic_fetch_or_explicit(&h->sh->prod_sleeping, WAIT_POLLING,
					       memory_order_seq_cst) & WAIT_FENCED))
			segh_arm_fence(&h->seg);
		/* [B3] seq_cst: the last look, after [B1]; pairs with the
		 * consumer's [C2] store, [C3] load (Dekker, as [W3]) */
		uint64_t head = atomic_load_explicit(&h->sh->cons_head, memory_order_seq_cst);
		if (head == h->prod.f.cons_cache && !sph_shut(h, memory_order_seq_cst))
			return -EAGAIN;
		disarm(&h->sh->prod_sleeping);
		int rc = sph_prod_try(h, len, out);
		if (rc != -EAGAIN)
			return rc;
		/* some room, not enough: arm again before answering */
	}
}

int sph_cons_poll(struct spsc_handle *h, void **data, uint32_t *len, uint64_t *end)
{
	segh_arm_prepare(&h->seg, own_done(h), &h->sh->cons_spurious);
	/* [B1] seq_cst RMW: as above, the producer's exchange takes it down */
	if (!(atomic_fetch_or_explicit(&h->sh->cons_sleeping, WAIT_POLLING, memory_order_seq_cst) &
	      WAIT_FENCED))
		segh_arm_fence(&h->seg);
	/* [B3] seq_cst: the last look, after [B1]; pairs with the
	 * producer's [P2] store, [P3] load (Dekker, as [W3]) */
	if (atomic_load_explicit(spsc_cons_watch(&h->cons), memory_order_seq_cst) == 0 &&
	    !sph_shut(h, memory_order_seq_cst))
		return -EAGAIN;
	disarm(&h->sh->cons_sleeping);
	return sph_cons_try(h, data, len, end);
}

/* ---- batches and shutdown ---------------------------------------------- */

static int op_send_batch(struct shmring *r, const struct iovec *msgs, unsigned n,
			 int64_t timeout_ns)
{
	struct spsc_handle *h = sph_of(r);
	uint64_t bytes = 0;
	void *at;
	if (h->prod.f.resv_open)
		return -EINPROGRESS;
	/* relaxed: only stops further sends; nothing is read through it */
	if (sph_shut(h, memory_order_relaxed))
		return -EPIPE;
	/* every message that fits, published at once */
	int rc = spsc_send_many(&h->prod, msgs, n, &bytes);
	if (likely(rc > 0)) {
		sph_published(h);   /* one fence and wake check */
		return rc;
	}
	if (rc < 0)
		return rc;
	/* full: wait for room for the first message only, then add what fits */
	size_t len = msgs[0].iov_len;
	if ((rc = sph_room(h, len, &at, timeout_ns)) < 0)
		return rc;
	ring_copy(at, msgs[0].iov_base, len);
	spsc_commit(&h->prod, (uint32_t)len);
	rc = 1;
	if (n > 1) {
		int k = spsc_send_many(&h->prod, msgs + 1, n - 1, &bytes);
		if (k > 0)
			rc += k;
	}
	sph_published(h);
	return rc;
}

static int op_recv_batch(struct shmring *r, struct iovec *bufs, unsigned n, int64_t timeout_ns)
{
	struct spsc_handle *h = sph_of(r);
	void *data;
	uint32_t len;
	uint64_t end;
	if (h->cons.f.read != h->cons.f.head)
		return -EINPROGRESS;
	if (!bufs[0].iov_base && bufs[0].iov_len)
		return -EINVAL;
	/* wait only for the first message; the rest are those already there */
	int rc = sph_next(h, &data, &len, &end, timeout_ns);
	if (rc < 0)
		return rc;
	if (len > bufs[0].iov_len)
		return -EMSGSIZE;      /* the message stays at the head */
	ring_copy(bufs[0].iov_base, data, len);
	bufs[0].iov_len = len;
	uint64_t bytes = len;
	unsigned k = 1;
	if (n > 1)
		k += (unsigned)spsc_recv_more(&h->cons, &end, bufs + 1, n - 1, &bytes);
	/* taken and released together, after the copies: a consumer killed
	 * before this point has handed out nothing, and the next one starts
	 * at the same first message */
	spsc_take(&h->cons, end);
	sph_release_to(h, end, k, bytes);
	return (int)k;
}

static int op_shutdown(struct shmring *r)
{
	struct spsc_handle *h = sph_of(r);
	segh_pair_shutdown(&h->seg, &h->sh->shutdown, &h->sh->cons_sleeping, &h->sh->cons_wake,
			   &h->sh->prod_wakes, &h->sh->prod_bells);
	return 0;
}

/* ---- the per-message ops: the inline functions, for callers of the table */

static int op_send(struct shmring *r, const void *msg, size_t len, int64_t timeout_ns)
{
	return sph_send(sph_of(r), msg, len, timeout_ns);
}

static ssize_t op_recv(struct shmring *r, void *buf, size_t cap, int64_t timeout_ns)
{
	return sph_recv(sph_of(r), buf, cap, timeout_ns);
}

static int op_reserve(struct shmring *r, size_t len, struct shmring_msg *m, int64_t timeout_ns)
{
	return sph_reserve(sph_of(r), len, m, timeout_ns);
}

static int op_commit(struct shmring *r, struct shmring_msg *m)
{
	return sph_commit(sph_of(r), m);
}

static int op_acquire(struct shmring *r, struct shmring_msg *m, int64_t timeout_ns)
{
	return sph_acquire(sph_of(r), m, timeout_ns);
}

static int op_release(struct shmring *r, struct shmring_msg *m)
{
	return sph_release(sph_of(r), m);
}

/* ---- the rest of the handle -------------------------------------------- */

static int op_flush(struct shmring *r)
{
	struct spsc_handle *h = sph_of(r);
	return segh_flush(&h->seg, h->prod.f.resv_open, &h->flushed, h->prod.f.tail);
}

const struct shmring_backend_ops sph_ops = {
	.name = "spsc",
	.send = op_send, .recv = op_recv,
	.reserve = op_reserve, .commit = op_commit,
	.acquire = op_acquire, .release = op_release,
	.send_batch = op_send_batch, .recv_batch = op_recv_batch,
	.shutdown = op_shutdown, .stats = segh_stats, .caps = segh_pair_caps, .flush = op_flush,
	.fd = segh_fd, .fork_child = segh_fork_child, .close = segh_close,
};

/* ---- roles ------------------------------------------------------------- */

static int kind_init(struct seg_handle *s)
{
	struct spsc_handle *h = (struct spsc_handle *)s;
	h->sh = (struct spsc_shared *)(s->map->base + s->map->geom.ring_off);
	return 0;
}

/* A new consumer takes over at the released position: what its
 * predecessor had acquired but not released is delivered again. */
static int take_consumer(struct spsc_handle *h, const struct spsc_geom *g, bool light)
{
	/* relaxed: the previous consumer is gone (dead or closed) */
	uint64_t head = atomic_load_explicit(&h->sh->cons_head, memory_order_relaxed);
	uint64_t read = atomic_load_explicit(&h->sh->cons_read, memory_order_relaxed);
	if (read != head) {
		int64_t n = spsc_count_records(g, head, read);
		if (n < 0)
			return -EPROTO;
		/* relaxed: under the control lock; display only */
		atomic_fetch_add_explicit(&h->seg.ctl->redelivered, (uint64_t)n,
					  memory_order_relaxed);
	}
	return spsc_cons_init(&h->cons, h->sh, g, light);
}

/* With the control lock held and the table repaired. */
static int attach_locked(struct seg_handle *s, uint32_t roles)
{
	struct spsc_handle *h = (struct spsc_handle *)s;
	struct ctl_shared *c = s->ctl;
	if (((roles & ROLE_PRODUCER) && c->prod_owner) ||
	    ((roles & ROLE_CONSUMER) && c->cons_owner))
		return -EBUSY;       /* after repair, an owner is a live one */
	/* registered receivers of the sleeper's membarrier may skip the full
	 * fence on every publish (sync/fence.h) */
	bool light = fence_register();
	const struct seg_geom *sg = &s->map->geom;
	struct spsc_geom g = {
		.data = s->map->base + sg->data_off,
		.cap = sg->capacity,
		.mask = sg->capacity - 1,
		.max_msg = sg->max_msg,
	};
	int rc;
	if ((roles & ROLE_CONSUMER) && (rc = take_consumer(h, &g, light)) < 0)
		return rc;
	if ((roles & ROLE_PRODUCER) && (rc = spsc_prod_init(&h->prod, h->sh, &g, light)) < 0)
		return rc;
	h->flushed = h->prod.f.tail;
	if ((rc = segh_pair_join(s, roles)) < 0)
		return rc;
	s->head.roles = roles | HANDLE_SPSC;
	/* the state the inline header's fast path works on (switched on by
	 * shmring_open_layout, api/inline.c) */
	s->head.inl.prod = &h->prod.f;
	s->head.inl.cons = &h->cons.f;
	return 0;
}

const struct segh_kind segh_kind_spsc = {
	.kind = SHMRING_SPSC,
	.handle_size = sizeof(struct spsc_handle),
	.in_files = true,
	.ops = &sph_ops,
	.init = kind_init,
	.attach = segh_pair_attach,
	.detach = segh_pair_detach,
	.attach_locked = attach_locked,
};
