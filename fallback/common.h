/* SPDX-License-Identifier: MIT */
/*
 * The parts of a fallback backend that pipe: and mq: share above the
 * descriptors: the queue of acquired (held) messages, the producer's open
 * reservation, the per-handle counters, and the loops of recv and
 * recv_batch around a backend's own "take one message".
 *
 * Capacity defaults and bounds are those of shm: rings (shm/segment.h):
 * the same options mean the same on every backend.
 */
#ifndef SHMRING_FALLBACK_COMMON_H
#define SHMRING_FALLBACK_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "fallback.h"
#include "fbutil.h"
#include "../shm/segment.h"

#define FB_DEFAULT_CAP SEG_DEFAULT_CAP
#define FB_MIN_CAP SEG_MIN_CAP
#define FB_MAX_CAP SEG_MAX_CAP

#define FB_HELD_MAX 64          /* the most any backend lets a consumer hold */

/* Acquired messages, released oldest first, exactly as handed out. */
struct fb_held { uint64_t serial; void *data; size_t len; };
struct fb_heldq {
	struct fb_held e[FB_HELD_MAX];
	unsigned cap;           /* this backend's limit, <= FB_HELD_MAX */
	unsigned head, count;
	uint64_t serial;        /* of the last message handed out */
};

/* Where the next acquired message goes (its index in e[]). */
static inline unsigned fb_held_tail(const struct fb_heldq *q)
{
	return (q->head + q->count) % q->cap;
}

/* Hand out data/len as the next held message. */
FB_HIDDEN void fb_held_push(struct fb_heldq *q, void *data, size_t len, struct shmring_msg *m);
/* Release m, which must be the oldest held message as handed out: 0 (it
 * counts as received in st) or -EINVAL. */
FB_HIDDEN int fb_held_pop(struct fb_heldq *q, struct shmring_msg *m, struct shmring_stats *st);

/* The producer's one open reservation. */
struct fb_resv {
	bool open;
	uint64_t serial;
	const void *data;       /* what m->data was set to */
	size_t len;
	uint64_t deadline;      /* a commit waits for room until then */
};

FB_HIDDEN void fb_resv_open(struct fb_resv *r, void *data, size_t len, uint64_t deadline,
			    struct shmring_msg *m);
/* 0 if m is the open reservation as handed out (len not grown), else -EINVAL. */
FB_HIDDEN int fb_resv_check(const struct fb_resv *r, const struct shmring_msg *m);

static inline void fb_count_sent(struct shmring_stats *st, size_t len)
{
	st->msgs_sent++;
	st->bytes_sent += len;
}

static inline void fb_count_recv(struct shmring_stats *st, size_t len)
{
	st->msgs_recv++;
	st->bytes_recv += len;
}

/* A backend's "take one message into buf of cap bytes": its length, or
 * -EMSGSIZE (the message stays for a call with room), -EPIPE, -EAGAIN,
 * -ETIMEDOUT, -errno.  The first wait it counts sets *waited. */
typedef ssize_t fb_take_fn(struct fb_handle *h, void *buf, size_t cap, uint64_t deadline,
			   bool *waited);

/* recv and recv_batch over take: -EINPROGRESS while messages are held;
 * only the first message of a batch waits. */
FB_HIDDEN ssize_t fb_recv(struct fb_handle *h, const struct fb_heldq *q, struct shmring_stats *st,
			  fb_take_fn *take, void *buf, size_t cap, int64_t timeout_ns);
FB_HIDDEN int fb_recv_batch(struct fb_handle *h, const struct fb_heldq *q,
			    struct shmring_stats *st, fb_take_fn *take,
			    struct iovec *bufs, unsigned n, int64_t timeout_ns);

/*
 * shmring_fd() of a fallback backend: an epoll instance watching the
 * backend's own descriptors, edge-triggered.  An epoll descriptor is
 * itself readable while events wait in it, so it is what the user polls.
 * A call that ends in -EAGAIN takes the waiting events out (fb_poll_rearm,
 * through the rearm op) and is made once more: what came before that is
 * seen by the second call, what comes after makes a new edge.
 */
struct fb_watch { int fd; uint32_t events; };

/* The descriptor of r, made on the first call watching the n descriptors
 * of w (EPOLLET added).  The descriptor or -errno. */
FB_HIDDEN int fb_poll_fd(struct shmring *r, const struct fb_watch *w, unsigned n);
/* The rearm op of every fallback: take the waiting events out; true if
 * there were any (call again), false without a descriptor. */
FB_HIDDEN bool fb_rearm(struct shmring *r);

#endif
