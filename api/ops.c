/* SPDX-License-Identifier: MIT */
/*
 * The data path's public functions: check the handle, its role and the
 * arguments, then hand the call to the handle's backend.  An SPSC ring's
 * per-message calls are made here directly, inline (backend/spsc.h): they
 * cost a few nanoseconds, which an indirect call would add to.  A
 * broadcast ring's copying send and receive are called directly too
 * (backend/bcast.h), for the same reason.
 */
#include <errno.h>

#include "../backend/backend.h"
#include "../backend/bcast.h"
#include "../backend/spsc.h"

/* 0 if r may make a call of `role`, -EINVAL or -EPERM. */
static inline int may(const struct shmring *r, uint32_t role)
{
	if (!r)
		return -EINVAL;
	return r->roles & role ? 0 : -EPERM;
}

/* An SPSC handle holding `role`: one load and one test of its roles
 * word, which carries HANDLE_SPSC while the handle holds a role of an
 * SPSC ring (backend/backend.h).  Every other case, and every bad
 * argument, takes the checked way through the ops table. */
static inline bool spsc_as(const struct shmring *r, uint32_t role)
{
	return likely(r != NULL) && likely((r->roles & (HANDLE_SPSC | role)) == (HANDLE_SPSC | role));
}

/* The same test for a broadcast ring's handle holding `role`. */
static inline bool bcast_as(const struct shmring *r, uint32_t role)
{
	return likely(r != NULL) && likely((r->roles & (HANDLE_BCAST | role)) == (HANDLE_BCAST | role));
}

/* A call of a backend whose descriptor is re-armed apart from its calls
 * (rearm) ended in -EAGAIN: re-arm, and say whether to call once more
 * (something happened before the re-arm that the call may not have seen;
 * what comes after it makes the descriptor readable).  Twice at most. */
static inline bool again_after_rearm(struct shmring *r, long rc, unsigned *laps)
{
	return unlikely(rc == -EAGAIN) && r->ops->rearm && (*laps)++ < 2 && r->ops->rearm(r);
}

/* by_op_NAME(r, args): the checked way: role (and `valid`, the call's
 * argument test) first, then the op -- a tail call, or for a backend that
 * re-arms its descriptor apart from its calls, rearm_NAME: the op,
 * re-armed and called again as above. */
#define BY_OP(type, fn, role, valid, params, args)                             \
	static __attribute__((noinline)) type rearm_##fn params                \
	{                                                                      \
		unsigned laps = 0;                                             \
		type rc;                                                       \
		do                                                             \
			rc = r->ops->fn args;                                  \
		while (again_after_rearm(r, rc, &laps));                       \
		return rc;                                                     \
	}                                                                      \
	static __attribute__((noinline)) type by_op_##fn params                \
	{                                                                      \
		int rc = may(r, role);                                         \
		if (rc < 0)                                                    \
			return rc;                                             \
		if (!(valid))                                                  \
			return -EINVAL;                                        \
		return r->ops->rearm ? rearm_##fn args : r->ops->fn args;      \
	}

BY_OP(int, send, SHMRING_PRODUCER, msg || !len,
      (struct shmring *r, const void *msg, size_t len, int64_t t), (r, msg, len, t))
BY_OP(int, reserve, SHMRING_PRODUCER, m, (struct shmring *r, size_t len, struct shmring_msg *m,
      int64_t t), (r, len, m, t))
BY_OP(int, commit, SHMRING_PRODUCER, 1, (struct shmring *r, struct shmring_msg *m), (r, m))
BY_OP(int, send_batch, SHMRING_PRODUCER, v && n, (struct shmring *r, const struct iovec *v,
      unsigned n, int64_t t), (r, v, n, t))
BY_OP(ssize_t, recv, SHMRING_CONSUMER, buf || !cap,
      (struct shmring *r, void *buf, size_t cap, int64_t t), (r, buf, cap, t))
BY_OP(int, acquire, SHMRING_CONSUMER, m, (struct shmring *r, struct shmring_msg *m, int64_t t),
      (r, m, t))
BY_OP(int, release, SHMRING_CONSUMER, m, (struct shmring *r, struct shmring_msg *m), (r, m))
BY_OP(int, recv_batch, SHMRING_CONSUMER, v && n, (struct shmring *r, struct iovec *v,
      unsigned n, int64_t t), (r, v, n, t))

/* The SPSC copying calls in functions of their own: their inlined ring
 * code needs a stack frame and saved registers, which the public function
 * would otherwise set up for every kind before it tests which one it has
 * (a tail call each way instead). */
static __attribute__((noinline)) int spsc_send(struct shmring *r, const void *msg, size_t len,
					       int64_t timeout_ns)
{
	return sph_send(sph_of(r), msg, len, timeout_ns);
}

static __attribute__((noinline)) ssize_t spsc_recv(struct shmring *r, void *buf, size_t cap,
						   int64_t timeout_ns)
{
	return sph_recv(sph_of(r), buf, cap, timeout_ns);
}

int shmring_send(struct shmring *r, const void *msg, size_t len, int64_t timeout_ns)
{
	if (spsc_as(r, SHMRING_PRODUCER) && likely(msg || !len))
		return spsc_send(r, msg, len, timeout_ns);
	if (bcast_as(r, SHMRING_PRODUCER) && likely(msg || !len))
		return bch_send(r, msg, len, timeout_ns);
	return by_op_send(r, msg, len, timeout_ns);
}

int shmring_reserve(struct shmring *r, size_t len, struct shmring_msg *m, int64_t timeout_ns)
{
	if (spsc_as(r, SHMRING_PRODUCER) && likely(m != NULL))
		return sph_reserve(sph_of(r), len, m, timeout_ns);
	return by_op_reserve(r, len, m, timeout_ns);
}

int shmring_commit(struct shmring *r, struct shmring_msg *m)
{
	if (unlikely(!m))
		return -EINVAL;         /* before the role: as it always was */
	if (spsc_as(r, SHMRING_PRODUCER))
		return sph_commit(sph_of(r), m);
	return by_op_commit(r, m);
}

int shmring_send_batch(struct shmring *r, const struct iovec *msgs, unsigned n,
		       int64_t timeout_ns)
{
	return by_op_send_batch(r, msgs, n, timeout_ns);
}

int shmring_shutdown(struct shmring *r)
{
	int rc = may(r, SHMRING_PRODUCER);
	return rc < 0 ? rc : r->ops->shutdown(r);
}

ssize_t shmring_recv(struct shmring *r, void *buf, size_t cap, int64_t timeout_ns)
{
	if (spsc_as(r, SHMRING_CONSUMER) && likely(buf || !cap))
		return spsc_recv(r, buf, cap, timeout_ns);
	if (bcast_as(r, SHMRING_CONSUMER) && likely(buf || !cap))
		return bch_recv(r, buf, cap, timeout_ns);
	return by_op_recv(r, buf, cap, timeout_ns);
}

int shmring_acquire(struct shmring *r, struct shmring_msg *m, int64_t timeout_ns)
{
	if (spsc_as(r, SHMRING_CONSUMER) && likely(m != NULL))
		return sph_acquire(sph_of(r), m, timeout_ns);
	return by_op_acquire(r, m, timeout_ns);
}

int shmring_release(struct shmring *r, struct shmring_msg *m)
{
	if (spsc_as(r, SHMRING_CONSUMER) && likely(m != NULL))
		return sph_release(sph_of(r), m);
	return by_op_release(r, m);
}

int shmring_recv_batch(struct shmring *r, struct iovec *bufs, unsigned n, int64_t timeout_ns)
{
	return by_op_recv_batch(r, bufs, n, timeout_ns);
}
