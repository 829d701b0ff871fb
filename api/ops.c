/* SPDX-License-Identifier: MIT */
/*
 * The data path's public functions: check the handle, its role and the
 * arguments, then hand the call to the handle's backend.  An SPSC ring's
 * per-message calls are made here directly, inline (backend/spsc.h): they
 * cost a few nanoseconds, which an indirect call would add to.
 */
#include <errno.h>

#include "../backend/backend.h"
#include "../backend/spsc.h"

/* 0 if r may make a call of `role` with arguments that are usable. */
static inline int may(const struct shmring *r, uint32_t role, bool args_ok)
{
	if (unlikely(!r))
		return -EINVAL;
	if (unlikely(!(r->roles & role)))
		return -EPERM;
	return likely(args_ok) ? 0 : -EINVAL;
}

/* A call of a backend whose descriptor is re-armed apart from its calls
 * (rearm) ended in -EAGAIN: re-arm, and say whether to call once more
 * (something happened before the re-arm that the call may not have seen;
 * what comes after it makes the descriptor readable).  Twice at most. */
static inline bool again_after_rearm(struct shmring *r, long rc, unsigned *laps)
{
	return unlikely(rc == -EAGAIN) && r->ops->rearm && (*laps)++ < 2 && r->ops->rearm(r);
}

/* The call `fn` of r's backend: inline for an SPSC ring, else its op. */
#define DISPATCH(r, fn, ...)                                                   \
	(likely((r)->ops == &sph_ops) ? sph_##fn(sph_of(r), __VA_ARGS__)       \
				      : by_op_##fn(r, __VA_ARGS__))

/* by_op_NAME(r, args): the op, re-armed and called again as above. */
#define BY_OP(type, fn, params, args)                                          \
	static type by_op_##fn params                                          \
	{                                                                      \
		unsigned laps = 0;                                             \
		type rc;                                                       \
		do                                                             \
			rc = r->ops->fn args;                                  \
		while (again_after_rearm(r, rc, &laps));                       \
		return rc;                                                     \
	}

BY_OP(int, send, (struct shmring *r, const void *msg, size_t len, int64_t t),
      (r, msg, len, t))
BY_OP(int, reserve, (struct shmring *r, size_t len, struct shmring_msg *m, int64_t t),
      (r, len, m, t))
BY_OP(int, commit, (struct shmring *r, struct shmring_msg *m), (r, m))
BY_OP(int, send_batch, (struct shmring *r, const struct iovec *v, unsigned n, int64_t t),
      (r, v, n, t))
BY_OP(ssize_t, recv, (struct shmring *r, void *buf, size_t cap, int64_t t), (r, buf, cap, t))
BY_OP(int, acquire, (struct shmring *r, struct shmring_msg *m, int64_t t), (r, m, t))
BY_OP(int, release, (struct shmring *r, struct shmring_msg *m), (r, m))
BY_OP(int, recv_batch, (struct shmring *r, struct iovec *v, unsigned n, int64_t t),
      (r, v, n, t))

int shmring_send(struct shmring *r, const void *msg, size_t len, int64_t timeout_ns)
{
	int rc = may(r, SHMRING_PRODUCER, msg || !len);
	return unlikely(rc < 0) ? rc : DISPATCH(r, send, msg, len, timeout_ns);
}

int shmring_reserve(struct shmring *r, size_t len, struct shmring_msg *m, int64_t timeout_ns)
{
	int rc = may(r, SHMRING_PRODUCER, m != NULL);
	return unlikely(rc < 0) ? rc : DISPATCH(r, reserve, len, m, timeout_ns);
}

int shmring_commit(struct shmring *r, struct shmring_msg *m)
{
	int rc = !r || !m ? -EINVAL : may(r, SHMRING_PRODUCER, true);
	return unlikely(rc < 0) ? rc : DISPATCH(r, commit, m);
}

int shmring_send_batch(struct shmring *r, const struct iovec *msgs, unsigned n,
		       int64_t timeout_ns)
{
	int rc = may(r, SHMRING_PRODUCER, msgs && n);
	return rc < 0 ? rc : by_op_send_batch(r, msgs, n, timeout_ns);
}

int shmring_shutdown(struct shmring *r)
{
	int rc = may(r, SHMRING_PRODUCER, true);
	return rc < 0 ? rc : r->ops->shutdown(r);
}

ssize_t shmring_recv(struct shmring *r, void *buf, size_t cap, int64_t timeout_ns)
{
	int rc = may(r, SHMRING_CONSUMER, buf || !cap);
	return unlikely(rc < 0) ? rc : DISPATCH(r, recv, buf, cap, timeout_ns);
}

int shmring_acquire(struct shmring *r, struct shmring_msg *m, int64_t timeout_ns)
{
	int rc = may(r, SHMRING_CONSUMER, m != NULL);
	return unlikely(rc < 0) ? rc : DISPATCH(r, acquire, m, timeout_ns);
}

int shmring_release(struct shmring *r, struct shmring_msg *m)
{
	int rc = may(r, SHMRING_CONSUMER, m != NULL);
	return unlikely(rc < 0) ? rc : DISPATCH(r, release, m);
}

int shmring_recv_batch(struct shmring *r, struct iovec *bufs, unsigned n, int64_t timeout_ns)
{
	int rc = may(r, SHMRING_CONSUMER, bufs && n);
	return rc < 0 ? rc : by_op_recv_batch(r, bufs, n, timeout_ns);
}
