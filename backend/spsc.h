/* SPDX-License-Identifier: MIT */
/*
 * The SPSC ring kind's handle and its data path: send/recv,
 * reserve/commit, acquire/release, batches and shutdown.  The ring work is
 * the inline code of ring/spsc.h; what is here is waiting (sync/wait) and
 * counting.  No system call and no allocation unless a side has to sleep
 * or wake a sleeper.
 *
 * All static inline: api/ops.c calls these directly for an SPSC handle
 * (the one kind whose per-message cost is a few nanoseconds, where an
 * indirect call through the ops table would show); the ops table
 * (backend/spsc.c) wraps the same functions.  Arguments and role are
 * checked by the caller, as for every op.
 */
#ifndef SHMRING_BACKEND_SPSC_H
#define SHMRING_BACKEND_SPSC_H

#include <errno.h>

#include "seg.h"
#include "../ring/spsc.h"
#include "../sync/clock.h"
#include "../sync/wait.h"

struct spsc_handle {
	struct seg_handle seg;
	struct spsc_prod prod;     /* valid with SHMRING_PRODUCER */
	struct spsc_cons cons;     /* valid with SHMRING_CONSUMER */
	struct spsc_shared *sh;    /* ring state in the mapping */
	uint64_t flushed;          /* producer of a file: ring: records before it are durable */
};

BACKEND_HIDDEN extern const struct shmring_backend_ops sph_ops;

static inline struct spsc_handle *sph_of(struct shmring *r)
{
	return (struct spsc_handle *)(void *)r;
}

/* The full and empty waits: out of the fast path's way (backend/spsc.c). */
BACKEND_HIDDEN int sph_prod_wait(struct spsc_handle *h, size_t len, void **out,
				 int64_t timeout_ns);
BACKEND_HIDDEN int sph_cons_wait(struct spsc_handle *h, void **data, uint32_t *len,
				 uint64_t *end, int64_t timeout_ns);
/* The same for a handle with a doorbell (shmring_fd) and timeout 0: arm
 * it, look once more; -EAGAIN or the call's result. */
BACKEND_HIDDEN int sph_prod_poll(struct spsc_handle *h, size_t len, void **out);
BACKEND_HIDDEN int sph_cons_poll(struct spsc_handle *h, void **data, uint32_t *len,
				 uint64_t *end);

static inline bool sph_shut(const struct spsc_handle *h, memory_order mo)
{
	return atomic_load_explicit(&h->sh->shutdown, mo) != 0;
}

/* ---- producer ---------------------------------------------------------- */

static inline int sph_prod_try(struct spsc_handle *h, size_t len, void **out)
{
	/* relaxed: only stops further sends; nothing is read through it */
	if (unlikely(sph_shut(h, memory_order_relaxed)))
		return -EPIPE;
	return spsc_reserve(&h->prod, len, out);
}

/* Room for len bytes.  Always inlined, as sph_published(): left to itself
 * the compiler makes a call of it in reserve, which costs the fast path more
 * than the waits it would keep out of line (those are calls already). */
static inline __attribute__((always_inline)) int sph_room(struct spsc_handle *h, size_t len,
							   void **out, int64_t timeout_ns)
{
	int rc = sph_prod_try(h, len, out);
	if (likely(rc != -EAGAIN))
		return rc;
	if (timeout_ns == 0)
		return !segh_polls(&h->seg) ? rc : sph_prod_poll(h, len, out);
	return sph_prod_wait(h, len, out, timeout_ns);
}

/* `sleeping` said somebody sleeps or polls: wake it, and ring the
 * doorbell of `owner`'s participant (control block: slot + 1) if it polls. */
static inline void sph_wake(struct spsc_handle *h, _Atomic uint32_t *sleeping,
			    _Atomic uint32_t *word, _Atomic uint64_t *wakes,
			    const uint32_t *owner, _Atomic uint64_t *rung, struct wait_fence *f)
{
	if (unlikely(wait_wake(sleeping, word, wakes, f) & WAIT_POLLING))
		/* relaxed: written under the control lock at attach; a stale
		 * owner names a doorbell nobody listens to (checked there) */
		segh_ring(&h->seg, __atomic_load_n(owner, __ATOMIC_RELAXED), rung);
}

/* After commits: count, and wake the consumer if it sleeps or polls. */
static inline __attribute__((always_inline)) void sph_published(struct spsc_handle *h)
{
	/* relaxed: one writer (this role); the totals were counted before
	 * the publish (spsc_pend), so a takeover can finish this for us */
	atomic_store_explicit(&h->sh->msgs_sent, h->prod.sent_msgs, memory_order_relaxed);
	atomic_store_explicit(&h->sh->bytes_sent, h->prod.sent_bytes, memory_order_relaxed);
	if (spsc_published(&h->prod))
		sph_wake(h, &h->sh->cons_sleeping, &h->sh->cons_wake, &h->sh->prod_wakes,
			 &h->seg.ctl->cons_owner, &h->sh->prod_bells, &h->prod.wf);
}

static inline int sph_send(struct spsc_handle *h, const void *msg, size_t len,
			   int64_t timeout_ns)
{
	void *at;
	int rc;
	if (unlikely(h->prod.resv_open))
		return -EINPROGRESS;
	/* a short message that fits the room already known: copy it, write
	 * its header; no reservation state (relaxed shutdown load: as in
	 * sph_prod_try, it only stops further sends) */
	if (likely(!sph_shut(h, memory_order_relaxed) && spsc_send_short(&h->prod, msg, len))) {
		sph_published(h);
		return 0;
	}
	if (unlikely((rc = sph_room(h, len, &at, timeout_ns)) < 0))
		return rc;
	ring_copy(at, msg, len);
	spsc_commit(&h->prod, (uint32_t)len);
	sph_published(h);
	return 0;
}

static inline int sph_reserve(struct spsc_handle *h, size_t len, struct shmring_msg *m,
			      int64_t timeout_ns)
{
	void *at;
	int rc;
	if (unlikely(h->prod.resv_open))
		return -EINPROGRESS;
	if (unlikely((rc = sph_room(h, len, &at, timeout_ns)) < 0))
		return rc;
	m->data = at;
	m->len = len;
	m->priv[0] = h->prod.tail;       /* where the group starts: ties commit to it */
	m->priv[1] = len;                /* the most commit may publish */
	return 0;
}

static inline int sph_commit(struct spsc_handle *h, struct shmring_msg *m)
{
	/* the payload pointer too: another ring's reservation may carry the
	 * same position and length */
	if (unlikely(!h->prod.resv_open || m->priv[0] != h->prod.tail ||
		     m->len > m->priv[1] || m->priv[1] != h->prod.resv_len ||
		     m->data != spsc_resv_data(&h->prod)))
		return -EINVAL;
	if (unlikely(sph_shut(h, memory_order_relaxed))) {
		/* the stream ended while the frame was being written: drop it
		 * rather than let it appear after consumers saw -EPIPE */
		h->prod.resv_open = false;
		/* relaxed: a counter, displayed only */
		atomic_fetch_add_explicit(&h->seg.ctl->dropped, 1, memory_order_relaxed);
		return -EPIPE;
	}
	spsc_commit(&h->prod, (uint32_t)m->len);
	sph_published(h);
	m->data = NULL;
	return 0;
}

/* ---- consumer ---------------------------------------------------------- */

static inline int sph_cons_try(struct spsc_handle *h, void **data, uint32_t *len, uint64_t *end)
{
	int rc = spsc_peek(&h->cons, data, len, end);
	/* [S2] acquire: pairs with [S1]; every message published before the
	 * shutdown is then visible to the second look */
	if (unlikely(rc == -EAGAIN) && sph_shut(h, memory_order_acquire)) {
		rc = spsc_peek(&h->cons, data, len, end);
		if (rc == -EAGAIN)
			rc = -EPIPE;
	}
	return rc;
}

static inline int sph_next(struct spsc_handle *h, void **data, uint32_t *len, uint64_t *end,
			   int64_t timeout_ns)
{
	int rc = sph_cons_try(h, data, len, end);
	if (likely(rc != -EAGAIN))
		return rc;
	if (timeout_ns == 0)
		return !segh_polls(&h->seg) ? rc : sph_cons_poll(h, data, len, end);
	return sph_cons_wait(h, data, len, end, timeout_ns);
}

static inline __attribute__((always_inline)) void sph_release_to(struct spsc_handle *h, uint64_t end, uint64_t msgs,
				  uint64_t bytes)
{
	bool wake = spsc_release_to(&h->cons, end, msgs, bytes);
	/* relaxed: one writer (this role); counted before the release, so
	 * that a takeover can finish this for us */
	atomic_store_explicit(&h->sh->msgs_recv, h->cons.recv_msgs, memory_order_relaxed);
	atomic_store_explicit(&h->sh->bytes_recv, h->cons.recv_bytes, memory_order_relaxed);
	if (wake)
		sph_wake(h, &h->sh->prod_sleeping, &h->sh->prod_wake, &h->sh->cons_wakes,
			 &h->seg.ctl->prod_owner, &h->sh->cons_bells, &h->cons.wf);
}

static inline ssize_t sph_recv(struct spsc_handle *h, void *buf, size_t cap, int64_t timeout_ns)
{
	void *data;
	uint32_t len;
	uint64_t end;
	int rc;
	if (unlikely(h->cons.read != h->cons.head))
		return -EINPROGRESS;   /* release acquired messages first */
	if (unlikely((rc = sph_next(h, &data, &len, &end, timeout_ns)) < 0))
		return rc;
	if (unlikely(len > cap))
		return -EMSGSIZE;      /* the message stays at the head */
	spsc_take(&h->cons, end);      /* a crash from here on counts as a redelivery */
	ring_copy(buf, data, len);
	sph_release_to(h, end, 1, len);
	return len;
}

static inline int sph_acquire(struct spsc_handle *h, struct shmring_msg *m, int64_t timeout_ns)
{
	void *data;
	uint32_t len;
	uint64_t end;
	int rc;
	uint64_t start = h->cons.read;
	if (unlikely((rc = sph_next(h, &data, &len, &end, timeout_ns)) < 0))
		return rc;
	spsc_take(&h->cons, end);
	uint64_t at = end - spsc_rec_size(len);
	if (unlikely(at - start >= 64) && start == h->cons.head) {
		/* more than an alignment filler (56 bytes at most): an end
		 * filler, maybe an early one (spsc_rewind).  Hand its bytes back
		 * now, not with the record, so that the producer has the whole
		 * ring again while this frame is in our hands. */
		sph_release_to(h, at, 0, 0);
		start = at;
	}
	m->data = data;
	m->len = len;
	m->priv[0] = start;    /* release must come in acquisition order */
	m->priv[1] = end;
	return 0;
}

static inline int sph_release(struct spsc_handle *h, struct shmring_msg *m)
{
	if (unlikely(m->priv[0] != h->cons.head || m->priv[1] <= m->priv[0] ||
		     m->priv[1] > h->cons.read || m->len > m->priv[1] - m->priv[0]))
		return -EINVAL;
	/* priv[1] must be the end of the oldest acquired message, not any
	 * position: a forged end would leave cons_head inside a record */
	void *data;
	uint32_t len;
	uint64_t end;
	/* acquire parsed this record; if it no longer parses, someone wrote
	 * over a published header: the ring is damaged, not the argument */
	if (unlikely(spsc_parse(&h->cons.g, h->cons.head, &data, &len, &end) < 0))
		return -EPROTO;
	if (unlikely(end != m->priv[1] || m->len != len || m->data != data))
		return -EINVAL;
	sph_release_to(h, m->priv[1], 1, m->len);
	m->data = NULL;
	return 0;
}

#endif
