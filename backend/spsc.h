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
			    const uint32_t *owner, _Atomic uint64_t *rung, struct shmring_inl_fence *f)
{
	if (unlikely(wait_wake(sleeping, word, wakes, f) & WAIT_POLLING))
		/* relaxed: written under the control lock at attach; a stale
		 * owner names a doorbell nobody listens to (checked there) */
		segh_ring(&h->seg, __atomic_load_n(owner, __ATOMIC_RELAXED), rung);
}

/* sph_wake_cons (_prod): the inline header's look said the consumer (the
 * producer) may sleep or poll, or our fence is on: the full look, and the
 * wake-up. */
static inline void sph_wake_cons(struct spsc_handle *h)
{
	if (wait_look(&h->prod.f.wf, &h->sh->cons_sleeping))
		sph_wake(h, &h->sh->cons_sleeping, &h->sh->cons_wake, &h->sh->prod_wakes,
			 &h->seg.ctl->cons_owner, &h->sh->prod_bells, &h->prod.f.wf);
}

static inline void sph_wake_prod(struct spsc_handle *h)
{
	if (wait_look(&h->cons.f.wf, &h->sh->prod_sleeping))
		sph_wake(h, &h->sh->prod_sleeping, &h->sh->prod_wake, &h->sh->cons_wakes,
			 &h->seg.ctl->prod_owner, &h->sh->cons_bells, &h->cons.f.wf);
}

/* After commits: count, and wake the consumer if it sleeps or polls. */
static inline __attribute__((always_inline)) void sph_published(struct spsc_handle *h)
{
	/* the counters are stored there (relaxed, one writer: this role),
	 * counted before the publish (spsc_pend), so a takeover can finish
	 * this for us */
	if (shmring__spsc_published(&h->prod.f))
		sph_wake_cons(h);
}

static inline int sph_send(struct spsc_handle *h, const void *msg, size_t len,
			   int64_t timeout_ns)
{
	void *at;
	int rc;
	/* a short message that fits the room already known: copy it, write
	 * its header; no reservation state, no shutdown (the inline header's
	 * fast path, as shmring_inl_send's) */
	if (likely(shmring__spsc_send_fast(&h->prod.f, msg, len))) {
		sph_published(h);
		return 0;
	}
	if (unlikely(h->prod.f.resv_open))
		return -EINPROGRESS;
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
	/* room known, no filler, no shutdown: as shmring_inl_reserve */
	if (likely(shmring__spsc_reserve_fast(&h->prod.f, len, m)))
		return 0;
	if (unlikely(h->prod.f.resv_open))
		return -EINPROGRESS;
	if (unlikely((rc = sph_room(h, len, &at, timeout_ns)) < 0))
		return rc;
	m->data = at;
	m->len = len;
	m->priv[0] = h->prod.f.tail;     /* where the group starts: ties commit to it */
	m->priv[1] = len;                /* the most commit may publish */
	return 0;
}

static inline int sph_commit(struct spsc_handle *h, struct shmring_msg *m)
{
	if (unlikely(!shmring__spsc_commit_ok(&h->prod.f, m)))
		return -EINVAL;
	if (unlikely(sph_shut(h, memory_order_relaxed))) {
		/* the stream ended while the frame was being written: drop it
		 * rather than let it appear after consumers saw -EPIPE */
		h->prod.f.resv_open = false;
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
	/* msgs_recv and bytes_recv are stored there (relaxed, one writer:
	 * this role), counted before the release, so that a takeover can
	 * finish this for us */
	if (shmring__spsc_released(&h->cons.f, end, msgs, bytes))
		sph_wake_prod(h);
}

static inline ssize_t sph_recv(struct spsc_handle *h, void *buf, size_t cap, int64_t timeout_ns)
{
	void *data;
	uint32_t len;
	uint64_t end;
	int rc;
	bool wake;
	/* a published message that fits: as shmring_inl_recv */
	ssize_t n = shmring__spsc_recv_fast(&h->cons.f, buf, cap, &wake);
	if (likely(n >= 0)) {
		if (wake)
			sph_wake_prod(h);
		return n;
	}
	if (unlikely(h->cons.f.read != h->cons.f.head))
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
	/* no end filler in front: as shmring_inl_acquire */
	if (likely(shmring__spsc_acquire_fast(&h->cons.f, m)))
		return 0;
	uint64_t start = h->cons.f.read;
	if (unlikely((rc = sph_next(h, &data, &len, &end, timeout_ns)) < 0))
		return rc;
	spsc_take(&h->cons, end);
	uint64_t at = end - spsc_rec_size(len);
	if (unlikely(at - start >= 64) && start == h->cons.f.head) {
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
	int rc = shmring__spsc_release_check(&h->cons.f, m);
	if (unlikely(rc < 0))
		return rc;
	sph_release_to(h, m->priv[1], 1, m->len);
	m->data = NULL;
	return 0;
}

#endif
