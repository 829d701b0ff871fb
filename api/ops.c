/* SPDX-License-Identifier: MIT */
/*
 * The data path: send/recv, reserve/commit, acquire/release, batches and
 * shutdown.  The ring work is the inline code of ring/spsc.h; what is here
 * is argument checking, waiting (sync/wait) and counting.  No system call
 * and no allocation unless a side has to sleep or wake a sleeper.
 */
#include <errno.h>
#include <string.h>

#include "handle.h"
#include "../sync/clock.h"
#include "../sync/wait.h"

static inline bool is_shut(struct shmring *r, memory_order mo)
{
	return atomic_load_explicit(&r->sh->shutdown, mo) != 0;
}

/* A peer that answers at once: look again for a few polls before reading
 * any clock (the waiter below reads it three times, tens of nanoseconds
 * each on a VM, which a round trip would pay).  Not with a spin time of 0:
 * that asks to sleep at once. */
#define PRE_SPIN_POLLS 64u

static inline bool pre_spin(struct shmring *r, _Atomic uint64_t *watch, uint64_t seen)
{
	if (r->spin_ns == 0)
		return false;
	for (unsigned i = 0; i < PRE_SPIN_POLLS; i++) {
		/* relaxed: a hint to look again; the ring re-reads with acquire */
		if (atomic_load_explicit(watch, memory_order_relaxed) != seen ||
		    atomic_load_explicit(&r->sh->shutdown, memory_order_relaxed))
			return true;
		cpu_relax();
	}
	return false;
}

/* ---- producer ---------------------------------------------------------- */

static inline int prod_try(struct shmring *r, size_t len, void **out)
{
	/* relaxed: only stops further sends; nothing is read through it */
	if (unlikely(is_shut(r, memory_order_relaxed)))
		return -EPIPE;
	return spsc_reserve(&r->prod, len, out);
}

/* The ring was full and the caller may wait: out of the fast path's way. */
static __attribute__((noinline, cold)) int prod_wait(struct shmring *r, size_t len, void **out,
						     int64_t timeout_ns)
{
	int rc;
	spsc_count(&r->sh->waits_full, 1);
	if (pre_spin(r, &r->sh->cons_head, r->prod.cons_cache) &&
	    (rc = prod_try(r, len, out)) != -EAGAIN)
		return rc;
	struct waiter w = {
		.watch = &r->sh->cons_head, .shut = &r->sh->shutdown,
		.sleeping = &r->sh->prod_sleeping, .word = &r->sh->prod_wake,
		.sleeps = &r->sh->prod_sleeps,
		.spin_until = clock_mono_ns() + r->spin_ns,
	};
	uint64_t deadline = clock_deadline(timeout_ns);
	for (;;) {
		if ((rc = wait_change(&w, r->prod.cons_cache, deadline)) < 0)
			return rc;
		if ((rc = prod_try(r, len, out)) != -EAGAIN)
			return rc;
	}
}

static inline int prod_room(struct shmring *r, size_t len, void **out, int64_t timeout_ns)
{
	int rc = prod_try(r, len, out);
	if (likely(rc != -EAGAIN) || timeout_ns == 0)
		return rc;
	return prod_wait(r, len, out, timeout_ns);
}

/* After commits: count, and wake the consumer if it sleeps. */
static inline void prod_published(struct shmring *r, uint64_t msgs, uint64_t bytes)
{
	spsc_count(&r->sh->msgs_sent, msgs);
	spsc_count(&r->sh->bytes_sent, bytes);
	if (spsc_published(&r->prod))
		wait_wake(&r->sh->cons_sleeping, &r->sh->cons_wake, &r->sh->prod_wakes);
}

static inline int prod_check(struct shmring *r)
{
	if (unlikely(!r))
		return -EINVAL;
	if (unlikely(!(r->roles & ROLE_PRODUCER)))
		return -EPERM;
	if (unlikely(r->prod.resv_open))
		return -EINPROGRESS;
	return 0;
}

int shmring_send(struct shmring *r, const void *msg, size_t len, int64_t timeout_ns)
{
	void *at;
	int rc = prod_check(r);
	if (unlikely(rc < 0))
		return rc;
	if (unlikely(!msg && len))
		return -EINVAL;
	if (unlikely(r->fb != NULL))
		return r->fb->send(r->fbh, msg, len, timeout_ns);
	/* a short message that fits the room already known: copy it, write
	 * its header; no reservation state (relaxed shutdown load: as in
	 * prod_try, it only stops further sends) */
	if (likely(!is_shut(r, memory_order_relaxed) && spsc_send_short(&r->prod, msg, len))) {
		prod_published(r, 1, len);
		return 0;
	}
	if (unlikely((rc = prod_room(r, len, &at, timeout_ns)) < 0))
		return rc;
	ring_copy(at, msg, len);
	spsc_commit(&r->prod, (uint32_t)len);
	prod_published(r, 1, len);
	return 0;
}

int shmring_reserve(struct shmring *r, size_t len, struct shmring_msg *m, int64_t timeout_ns)
{
	void *at;
	int rc = prod_check(r);
	if (unlikely(rc < 0))
		return rc;
	if (unlikely(!m))
		return -EINVAL;
	if (unlikely(r->fb != NULL))
		return r->fb->reserve(r->fbh, len, m, timeout_ns);
	if (unlikely((rc = prod_room(r, len, &at, timeout_ns)) < 0))
		return rc;
	m->data = at;
	m->len = len;
	m->priv[0] = r->prod.tail;       /* where the group starts: ties commit to it */
	m->priv[1] = len;                /* the most commit may publish */
	return 0;
}

int shmring_commit(struct shmring *r, struct shmring_msg *m)
{
	if (unlikely(!r || !m))
		return -EINVAL;
	if (unlikely(!(r->roles & ROLE_PRODUCER)))
		return -EPERM;
	if (unlikely(r->fb != NULL))
		return r->fb->commit(r->fbh, m);
	/* the payload pointer too: another ring's reservation may carry the
	 * same position and length */
	if (unlikely(!r->prod.resv_open || m->priv[0] != r->prod.tail ||
		     m->len > m->priv[1] || m->priv[1] != r->prod.resv_len ||
		     m->data != spsc_resv_data(&r->prod)))
		return -EINVAL;
	if (unlikely(is_shut(r, memory_order_relaxed))) {
		/* the stream ended while the frame was being written: drop it
		 * rather than let it appear after consumers saw -EPIPE */
		r->prod.resv_open = false;
		/* relaxed: a counter, displayed only */
		atomic_fetch_add_explicit(&r->ctl->dropped, 1, memory_order_relaxed);
		return -EPIPE;
	}
	spsc_commit(&r->prod, (uint32_t)m->len);
	prod_published(r, 1, m->len);
	m->data = NULL;
	return 0;
}

int shmring_send_batch(struct shmring *r, const struct iovec *msgs, unsigned n,
		       int64_t timeout_ns)
{
	uint64_t bytes = 0;
	void *at;
	int rc = prod_check(r);
	if (unlikely(rc < 0))
		return rc;
	if (unlikely(!msgs || n == 0))
		return -EINVAL;
	if (unlikely(r->fb != NULL))
		return r->fb->send_batch(r->fbh, msgs, n, timeout_ns);
	/* relaxed: only stops further sends; nothing is read through it */
	if (unlikely(is_shut(r, memory_order_relaxed)))
		return -EPIPE;
	/* every message that fits, published at once */
	rc = spsc_send_many(&r->prod, msgs, n, &bytes);
	if (likely(rc > 0)) {
		prod_published(r, (unsigned)rc, bytes);   /* one fence and wake check */
		return rc;
	}
	if (rc < 0)
		return rc;
	if (timeout_ns == 0)
		return -EAGAIN;
	/* full: wait for room for the first message only, then add what fits */
	size_t len = msgs[0].iov_len;
	if ((rc = prod_wait(r, len, &at, timeout_ns)) < 0)
		return rc;
	ring_copy(at, msgs[0].iov_base, len);
	spsc_commit(&r->prod, (uint32_t)len);
	bytes = len;
	rc = 1;
	if (n > 1) {
		uint64_t more = 0;
		int k = spsc_send_many(&r->prod, msgs + 1, n - 1, &more);
		if (k > 0) {
			rc += k;
			bytes += more;
		}
	}
	prod_published(r, (unsigned)rc, bytes);
	return rc;
}

int shmring_shutdown(struct shmring *r)
{
	if (!r)
		return -EINVAL;
	if (!(r->roles & ROLE_PRODUCER))
		return -EPERM;
	if (r->fb)
		return r->fb->shutdown(r->fbh);
	/* [S1] seq_cst: after every publish of ours ([P2] is sequenced
	 * before); pairs with the consumer's [S2] acquire */
	atomic_store_explicit(&r->sh->shutdown, 1, memory_order_seq_cst);
	/* unconditional: a consumer asleep must learn the stream is over */
	wait_wake(NULL, &r->sh->cons_wake, &r->sh->prod_wakes);
	return 0;
}

/* ---- consumer ---------------------------------------------------------- */

static inline int cons_try(struct shmring *r, void **data, uint32_t *len, uint64_t *end)
{
	int rc = spsc_peek(&r->cons, data, len, end);
	/* [S2] acquire: pairs with [S1]; every message published before the
	 * shutdown is then visible to the second look */
	if (unlikely(rc == -EAGAIN) && is_shut(r, memory_order_acquire)) {
		rc = spsc_peek(&r->cons, data, len, end);
		if (rc == -EAGAIN)
			rc = -EPIPE;
	}
	return rc;
}

/* The ring was empty and the caller may wait: out of the fast path's way. */
static __attribute__((noinline, cold)) int cons_wait(struct shmring *r, void **data,
						     uint32_t *len, uint64_t *end,
						     int64_t timeout_ns)
{
	int rc;
	spsc_count(&r->sh->waits_empty, 1);
	if (pre_spin(r, spsc_cons_watch(&r->cons), 0) &&
	    (rc = cons_try(r, data, len, end)) != -EAGAIN)
		return rc;
	/* an empty ring is a zero header word at our position: wait for it
	 * to change (the position does not move while we wait) */
	struct waiter w = {
		.watch = spsc_cons_watch(&r->cons), .shut = &r->sh->shutdown,
		.sleeping = &r->sh->cons_sleeping, .word = &r->sh->cons_wake,
		.sleeps = &r->sh->cons_sleeps,
		.spin_until = clock_mono_ns() + r->spin_ns,
	};
	uint64_t deadline = clock_deadline(timeout_ns);
	for (;;) {
		if ((rc = wait_change(&w, 0, deadline)) < 0)
			return rc;
		if ((rc = cons_try(r, data, len, end)) != -EAGAIN)
			return rc;
	}
}

static inline int cons_next(struct shmring *r, void **data, uint32_t *len, uint64_t *end,
			    int64_t timeout_ns)
{
	int rc = cons_try(r, data, len, end);
	if (likely(rc != -EAGAIN) || timeout_ns == 0)
		return rc;
	return cons_wait(r, data, len, end, timeout_ns);
}

static inline void cons_release(struct shmring *r, uint64_t end, uint64_t msgs, uint64_t bytes)
{
	spsc_count(&r->sh->msgs_recv, msgs);
	spsc_count(&r->sh->bytes_recv, bytes);
	if (spsc_release_to(&r->cons, end))
		wait_wake(&r->sh->prod_sleeping, &r->sh->prod_wake, &r->sh->cons_wakes);
}

static inline int cons_check(struct shmring *r)
{
	if (unlikely(!r))
		return -EINVAL;
	if (unlikely(!(r->roles & ROLE_CONSUMER)))
		return -EPERM;
	return 0;
}

ssize_t shmring_recv(struct shmring *r, void *buf, size_t cap, int64_t timeout_ns)
{
	void *data;
	uint32_t len;
	uint64_t end;
	int rc = cons_check(r);
	if (unlikely(rc < 0))
		return rc;
	if (unlikely(!buf && cap))
		return -EINVAL;
	if (unlikely(r->fb != NULL))
		return r->fb->recv(r->fbh, buf, cap, timeout_ns);
	if (unlikely(r->cons.read != r->cons.head))
		return -EINPROGRESS;   /* release acquired messages first */
	if (unlikely((rc = cons_next(r, &data, &len, &end, timeout_ns)) < 0))
		return rc;
	if (unlikely(len > cap))
		return -EMSGSIZE;      /* the message stays at the head */
	spsc_take(&r->cons, end);      /* a crash from here on counts as a redelivery */
	ring_copy(buf, data, len);
	cons_release(r, end, 1, len);
	return len;
}

int shmring_acquire(struct shmring *r, struct shmring_msg *m, int64_t timeout_ns)
{
	void *data;
	uint32_t len;
	uint64_t end;
	int rc = cons_check(r);
	if (unlikely(rc < 0))
		return rc;
	if (unlikely(!m))
		return -EINVAL;
	if (unlikely(r->fb != NULL))
		return r->fb->acquire(r->fbh, m, timeout_ns);
	uint64_t start = r->cons.read;
	if (unlikely((rc = cons_next(r, &data, &len, &end, timeout_ns)) < 0))
		return rc;
	spsc_take(&r->cons, end);
	m->data = data;
	m->len = len;
	m->priv[0] = start;    /* release must come in acquisition order */
	m->priv[1] = end;
	return 0;
}

int shmring_release(struct shmring *r, struct shmring_msg *m)
{
	int rc = cons_check(r);
	if (unlikely(rc < 0))
		return rc;
	if (unlikely(m && r->fb != NULL))
		return r->fb->release(r->fbh, m);
	if (unlikely(!m || m->priv[0] != r->cons.head || m->priv[1] <= m->priv[0] ||
		     m->priv[1] > r->cons.read || m->len > m->priv[1] - m->priv[0]))
		return -EINVAL;
	/* priv[1] must be the end of the oldest acquired message, not any
	 * position: a forged end would leave cons_head inside a record */
	void *data;
	uint32_t len;
	uint64_t end;
	/* acquire parsed this record; if it no longer parses, someone wrote
	 * over a published header: the ring is damaged, not the argument */
	if (unlikely(spsc_parse(&r->cons.g, r->cons.head, &data, &len, &end) < 0))
		return -EPROTO;
	if (unlikely(end != m->priv[1] || m->len != len || m->data != data))
		return -EINVAL;
	cons_release(r, m->priv[1], 1, m->len);
	m->data = NULL;
	return 0;
}

int shmring_recv_batch(struct shmring *r, struct iovec *bufs, unsigned n, int64_t timeout_ns)
{
	void *data;
	uint32_t len;
	uint64_t end;
	int rc = cons_check(r);
	if (unlikely(rc < 0))
		return rc;
	if (unlikely(!bufs || n == 0))
		return -EINVAL;
	if (unlikely(r->fb != NULL))
		return r->fb->recv_batch(r->fbh, bufs, n, timeout_ns);
	if (unlikely(r->cons.read != r->cons.head))
		return -EINPROGRESS;
	if (unlikely(!bufs[0].iov_base && bufs[0].iov_len))
		return -EINVAL;
	/* wait only for the first message; the rest are those already there */
	if (unlikely((rc = cons_next(r, &data, &len, &end, timeout_ns)) < 0))
		return rc;
	if (unlikely(len > bufs[0].iov_len))
		return -EMSGSIZE;      /* the message stays at the head */
	ring_copy(bufs[0].iov_base, data, len);
	bufs[0].iov_len = len;
	uint64_t bytes = len;
	unsigned k = 1;
	if (n > 1)
		k += (unsigned)spsc_recv_more(&r->cons, &end, bufs + 1, n - 1, &bytes);
	/* taken and released together, after the copies: a consumer killed
	 * before this point has handed out nothing, and the next one starts
	 * at the same first message */
	spsc_take(&r->cons, end);
	cons_release(r, end, k, bytes);
	return (int)k;
}
