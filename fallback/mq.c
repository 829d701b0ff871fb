/* SPDX-License-Identifier: MIT */
/*
 * mq:NAME — a POSIX message queue "/NAME".  The kernel keeps the
 * boundaries and lets any number of processes send and receive: MPMC.
 *
 * The end of the stream lives beside the queue, in a companion queue
 * "/NAME:eos:INO" of depth 1, where INO is the queue's inode number (a colon
 * cannot occur in NAME, so it never names another ring, and a queue made
 * again under the same name has another inode: a flag left over from the
 * old one, say after its queue was removed by hand, is never taken for the
 * new one's).  shmring_shutdown puts one empty message in it and
 * nobody takes it out.  It is a flag that every handle can read with
 * mq_getattr and wait for with poll, like the shutdown word of a shm: ring:
 * a consumer that finds the queue empty looks at it, then at the queue once
 * more (everything sent before the shutdown is in the queue by then), and
 * returns -EPIPE; every consumer, and any that comes later, sees it; a
 * producer sees it at open, on a full queue, while it waits, and at least
 * every millisecond while it sends.  The shutdown never needs room in the
 * data queue, so it cannot fail or wait on a full one, and the data queue
 * carries nothing but data for programs that read it without shmring.
 *
 * The descriptor is non-blocking; waits are poll() on it (an mqueue
 * descriptor is pollable) against CLOCK_MONOTONIC deadlines, so that a
 * change of the wall clock cannot shorten or stretch a timeout.
 *
 * mq_receive() wants a buffer of the queue's full message size: a caller's
 * buffer that large is received into directly, a smaller one through the
 * handle's buffer, where a message too large for the caller stays
 * (-EMSGSIZE) until a call with room takes it.
 */
#include <errno.h>
#include <sys/epoll.h>
#include <fcntl.h>
#include <limits.h>
#include <mqueue.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "../mem/alloc.h"
#include "../fs/trust.h"

#define PRIO_DATA 0u
#define SHUT_CHECK_NS 1000000ull        /* a sender looks at the flag every 1 ms */
#define HELD_MAX 16                     /* acquired and not yet released */
#define MSG_MAX_DEFAULT 10              /* the kernel's defaults, if /proc says nothing */
#define MSGSIZE_MAX_DEFAULT 8192

struct fb_handle {
	struct fb_base base;         /* first: fallback/fallback.h */
	mqd_t q;
	mqd_t ctl;                  /* "/NAME:eos:INO": one message once the stream is over */
	bool shut_seen;             /* the flag was up: it never comes down */
	size_t msgsize;
	long maxmsg;

	/* producer */
	uint8_t *wbuf;              /* reserve hands this out */
	bool shut;                  /* this handle's sends are over (ours or another's shutdown) */
	uint64_t next_check;        /* when a sender looks at the flag again */
	struct fb_resv resv;

	/* consumer */
	bool ended;
	uint8_t *pbuf;              /* a message received for a too small buffer */
	size_t plen;
	bool pending;
	uint8_t *slot[HELD_MAX];    /* buffers of acquired messages, made when needed */
	struct fb_heldq held;

	struct shmring_stats st;    /* this handle's counters */
};

static uint8_t *buf_get(struct fb_handle *h, uint8_t **b)
{
	if (!*b)
		*b = sr_zalloc(h->msgsize);
	return *b;
}

/* ---- the end-of-stream flag -------------------------------------------- */

static bool flag_up(struct fb_handle *h)
{
	struct mq_attr a;
	if (!h->shut_seen && mq_getattr(h->ctl, &a) == 0 && a.mq_curmsgs > 0)
		h->shut_seen = true;
	return h->shut_seen;
}

/* Wait for `events` on the queue, or for the flag to go up: 0 (look
 * again), -EAGAIN (timeout 0), -ETIMEDOUT, -errno. */
static int wait_queue(struct fb_handle *h, short events, uint64_t deadline)
{
	struct pollfd p[2] = { { .fd = h->q, .events = events },
			       { .fd = h->ctl, .events = POLLIN } };
	/* once up, the flag stays readable: poll it no more */
	return fb_wait_fds(p, h->shut_seen ? 1 : 2, deadline);
}

/* ---- sending ----------------------------------------------------------- */

static int put(struct fb_handle *h, const void *msg, size_t len, uint64_t deadline, bool *waited)
{
	for (;;) {
		if (mq_send(h->q, msg, len, PRIO_DATA) == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return errno == EBADF ? -EPERM : -errno;
		/* full: a stream that is over would stay so */
		if (flag_up(h)) {
			h->shut = true;
			return -EPIPE;
		}
		if (waited && !*waited && deadline != FB_NOWAIT) {
			h->st.waits_full++;
			*waited = true;
		}
		int rc = wait_queue(h, POLLOUT, deadline);
		if (rc < 0)
			return rc;
	}
}

static int prod_ready(struct fb_handle *h)
{
	if (h->resv.open)
		return -EINPROGRESS;
	if (!h->shut) {
		/* another producer's shutdown ends our sends too: look at the
		 * flag now and then (a clock read is no system call) */
		uint64_t now = clock_mono_ns();
		if (now >= h->next_check) {
			h->next_check = now + SHUT_CHECK_NS;
			h->shut = flag_up(h);
		}
	}
	return h->shut ? -EPIPE : 0;
}

/* A message of len may be sent now (or waited for). */
static int msg_ready(struct fb_handle *h, size_t len)
{
	int rc = prod_ready(h);
	if (rc == 0 && len > h->msgsize)
		rc = -EMSGSIZE;
	return rc;
}

static int mq_op_send(struct shmring *r, const void *msg, size_t len, int64_t timeout_ns)
{
	struct fb_handle *h = fb_of(r);
	int rc = msg_ready(h, len);
	if (rc < 0)
		return rc;
	bool waited = false;
	if ((rc = put(h, msg, len, fb_deadline(timeout_ns), &waited)) < 0)
		return rc;
	fb_count_sent(&h->st, len);
	return 0;
}

static int mq_op_reserve(struct shmring *r, size_t len, struct shmring_msg *m, int64_t timeout_ns)
{
	struct fb_handle *h = fb_of(r);
	int rc = msg_ready(h, len);
	if (rc < 0)
		return rc;
	/* room now, so that commit does not wait: certain with one producer;
	 * with several, another may take it first (see mq_op_commit) */
	uint64_t deadline = fb_deadline(timeout_ns);
	bool waited = false;
	for (;;) {
		struct pollfd p = { .fd = h->q, .events = POLLOUT };
		int n = poll(&p, 1, 0);
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0)
			break;
		if (flag_up(h)) {
			h->shut = true;
			return -EPIPE;
		}
		if (!waited && deadline != FB_NOWAIT) {
			h->st.waits_full++;
			waited = true;
		}
		if ((rc = wait_queue(h, POLLOUT, deadline)) < 0)
			return rc;
	}
	fb_resv_open(&h->resv, h->wbuf, len, deadline, m);
	return 0;
}

static int mq_op_commit(struct shmring *r, struct shmring_msg *m)
{
	struct fb_handle *h = fb_of(r);
	if (fb_resv_check(&h->resv, m) < 0)
		return -EINVAL;
	if (h->shut) {
		h->resv.open = false;
		h->st.msgs_dropped++;
		return -EPIPE;
	}
	/* Another producer filled the queue since reserve: wait as long as the
	 * reserve's timeout allowed; past it the reservation stays open for
	 * another commit. */
	int rc = put(h, h->wbuf, m->len, h->resv.deadline, NULL);
	if (rc == -EAGAIN || rc == -ETIMEDOUT)
		return rc;
	h->resv.open = false;
	if (rc < 0) {
		if (rc == -EPIPE)
			h->st.msgs_dropped++;
		return rc;
	}
	fb_count_sent(&h->st, m->len);
	m->data = NULL;
	return 0;
}

static int mq_op_send_batch(struct shmring *r, const struct iovec *msgs, unsigned n, int64_t timeout_ns)
{
	struct fb_handle *h = fb_of(r);
	int rc = prod_ready(h);
	if (rc < 0)
		return rc;
	uint64_t dl = fb_deadline(timeout_ns);  /* only the first message waits */
	bool waited = false;
	unsigned i;
	for (i = 0; i < n; i++) {
		if (!msgs[i].iov_base && msgs[i].iov_len) {
			rc = -EINVAL;
			break;
		}
		if (msgs[i].iov_len > h->msgsize) {
			rc = -EMSGSIZE;
			break;
		}
		if ((rc = put(h, msgs[i].iov_base, msgs[i].iov_len, dl, &waited)) < 0)
			break;
		fb_count_sent(&h->st, msgs[i].iov_len);
		dl = FB_NOWAIT;
	}
	return i ? (int)i : rc;
}

static int mq_op_shutdown(struct shmring *r)
{
	struct fb_handle *h = fb_of(r);
	h->shut = true;
	if (flag_up(h))
		return 0;               /* already over: harmless */
	/* the flag's queue has room for exactly this message: no wait */
	while (mq_send(h->ctl, "", 0, 0) < 0) {
		if (errno == EAGAIN)
			break;          /* another producer raised it meanwhile */
		if (errno != EINTR)
			return errno == EBADF ? -EPERM : -errno;
	}
	h->shut_seen = true;
	return 0;
}

/* ---- receiving --------------------------------------------------------- */

/* One message into buf (msgsize bytes): its length, or -EPIPE once the
 * queue is empty and the stream over, -EAGAIN, -ETIMEDOUT, -errno. */
static ssize_t take(struct fb_handle *h, uint8_t *buf, uint64_t deadline, bool *waited)
{
	for (bool last = false;; ) {
		unsigned prio;
		ssize_t n = mq_receive(h->q, (char *)buf, h->msgsize, &prio);
		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return errno == EBADF ? -EPERM : -errno;
		if (last) {
			h->ended = true;        /* empty after the flag was up */
			return -EPIPE;
		}
		if (flag_up(h)) {
			/* every message sent before the shutdown is in the
			 * queue by now: one more look, then the end */
			last = true;
			continue;
		}
		if (!*waited && deadline != FB_NOWAIT) {
			h->st.waits_empty++;
			*waited = true;
		}
		int rc = wait_queue(h, POLLIN, deadline);
		if (rc < 0)
			return rc;
	}
}

/* The next message into buf of cap bytes (NULL: use the handle's buffer):
 * its length, -EMSGSIZE (it then waits in the handle), or -errno. */
static ssize_t next_msg(struct fb_handle *h, void *buf, size_t cap, uint64_t deadline, bool *waited)
{
	if (h->pending) {
		if (h->plen > cap)
			return -EMSGSIZE;
		if (h->plen)
			memcpy(buf, h->pbuf, h->plen);
		h->pending = false;
		return (ssize_t)h->plen;
	}
	if (h->ended)
		return -EPIPE;
	bool direct = buf && cap >= h->msgsize;
	uint8_t *into = direct ? buf : buf_get(h, &h->pbuf);
	if (!into)
		return -ENOMEM;
	ssize_t n = take(h, into, deadline, waited);
	if (n < 0 || direct)
		return n;
	if ((size_t)n > cap) {
		h->pending = true;
		h->plen = (size_t)n;
		return -EMSGSIZE;
	}
	if (n)
		memcpy(buf, h->pbuf, (size_t)n);
	return n;
}

static ssize_t mq_op_recv(struct shmring *r, void *buf, size_t cap, int64_t timeout_ns)
{
	struct fb_handle *h = fb_of(r);
	return fb_recv(h, &h->held, &h->st, next_msg, buf, cap, timeout_ns);
}

static int mq_op_acquire(struct shmring *r, struct shmring_msg *m, int64_t timeout_ns)
{
	struct fb_handle *h = fb_of(r);
	if (h->held.count == h->held.cap)
		return -EINPROGRESS;
	unsigned i = fb_held_tail(&h->held);
	size_t len;
	if (h->pending) {
		/* the message kept after -EMSGSIZE: its buffer becomes the slot's */
		uint8_t *t = h->slot[i];
		h->slot[i] = h->pbuf;
		h->pbuf = t;
		len = h->plen;
		h->pending = false;
	} else {
		if (h->ended)
			return -EPIPE;
		if (!buf_get(h, &h->slot[i]))
			return -ENOMEM;
		bool waited = false;
		ssize_t n = take(h, h->slot[i], fb_deadline(timeout_ns), &waited);
		if (n < 0)
			return (int)n;
		len = (size_t)n;
	}
	fb_held_push(&h->held, h->slot[i], len, m);
	return 0;
}

static int mq_op_release(struct shmring *r, struct shmring_msg *m)
{
	struct fb_handle *h = fb_of(r);
	return fb_held_pop(&h->held, m, &h->st);
}

static int mq_op_recv_batch(struct shmring *r, struct iovec *bufs, unsigned n, int64_t timeout_ns)
{
	struct fb_handle *h = fb_of(r);
	return fb_recv_batch(h, &h->held, &h->st, next_msg, bufs, n, timeout_ns);
}

/* ---- stats, caps, close ------------------------------------------------ */

static int mq_op_stats(struct shmring *r, struct shmring_stats *st)
{
	struct fb_handle *h = fb_of(r);
	*st = h->st;
	struct mq_attr a;
	st->kind = SHMRING_MPMC;
	st->max_msg = (uint32_t)h->msgsize;
	st->capacity = (uint64_t)h->maxmsg * h->msgsize;
	/* the kernel counts messages, not bytes: queued messages x max_msg,
	 * in the unit of capacity */
	if (mq_getattr(h->q, &a) == 0 && a.mq_curmsgs > 0)
		st->used = (uint64_t)a.mq_curmsgs * h->msgsize;
	/* the kernel does not say who has the queue open: our own roles */
	st->producers = (h->base.head.roles & SHMRING_PRODUCER) != 0;
	st->consumers = (h->base.head.roles & SHMRING_CONSUMER) != 0;
	st->shut_down = flag_up(h);             /* the ring's, not only this handle's */
	struct stat s;
	st->unlinked = fstat(h->q, &s) == 0 && s.st_nlink == 0;
	return 0;
}

static int mq_op_caps(struct shmring *r, struct shmring_caps *caps)
{
	struct fb_handle *h = fb_of(r);
	/* messages stay in the kernel after every process has closed the
	 * queue, until mq_unlink or a reboot */
	caps->flags = SHMRING_CAP_MPMC | SHMRING_CAP_BLOCKING | SHMRING_CAP_PERSISTENT |
		      SHMRING_CAP_POLL;
	caps->max_producers = UINT32_MAX;       /* no limit */
	caps->max_consumers = UINT32_MAX;
	caps->max_msg = (uint32_t)h->msgsize;
	caps->capacity = (uint64_t)h->maxmsg * h->msgsize;
	return 0;
}

static void handle_free(struct fb_handle *h)
{
	if (h->q != (mqd_t)-1)
		mq_close(h->q);
	if (h->ctl != (mqd_t)-1)
		mq_close(h->ctl);
	if (h->base.epfd >= 0)
		close(h->base.epfd);
	sr_free(h->wbuf);
	sr_free(h->pbuf);
	for (int i = 0; i < HELD_MAX; i++)
		sr_free(h->slot[i]);
	sr_free(h);
}

static int mq_op_close(struct shmring *r)
{
	struct fb_handle *h = fb_of(r);
	/* nothing waits in the handle: a commit either sent its message or
	 * failed; what is in the queue stays there */
	handle_free(h);
	return 0;
}

/* Readable: a message (consumer), room (producer), or the stream's end
 * flag (a message in the ctl queue). */
static int mq_op_fd(struct shmring *r)
{
	struct fb_handle *h = fb_of(r);
	uint32_t ev = ((r->roles & SHMRING_CONSUMER) ? EPOLLIN : 0) |
		      ((r->roles & SHMRING_PRODUCER) ? EPOLLOUT : 0);
	const struct fb_watch w[] = { { h->q, ev }, { h->ctl, EPOLLIN } };
	return fb_poll_fd(r, w, 2);
}

static const struct shmring_backend_ops mq_ops = FB_OPS("mq", mq_op);

/* ---- open, unlink ------------------------------------------------------ */

struct plan {
	struct mq_attr attr;
	uint32_t mode;
	uint64_t msgsize_max;
};

static int plan_opts(const struct shmring_opts *o, struct plan *p)
{
	static const struct shmring_opts zero;
	if (!o)
		o = &zero;
	if (o->kind == SHMRING_BCAST || (o->flags & SHMRING_OVERWRITE))
		return -ENOTSUP;        /* a message goes to one receiver */
	if (o->flags & SHMRING_FIXED)
		return -ENOTSUP;        /* a segment format */
	/* natively MPMC: SPSC (the default) is a special case of it */
	if (o->kind != 0 && o->kind != SHMRING_SPSC && o->kind != SHMRING_MPMC)
		return -EINVAL;
	/* read and write bits only, as for shm: and file: rings */
	if ((o->mode & ~0666u) || o->capacity > FB_MAX_CAP)
		return -EINVAL;
	p->mode = o->mode ? o->mode : 0600;
	uint64_t msg_max = fb_sysctl("/proc/sys/fs/mqueue/msg_max", MSG_MAX_DEFAULT);
	p->msgsize_max = fb_sysctl("/proc/sys/fs/mqueue/msgsize_max", MSGSIZE_MAX_DEFAULT);
	/* What is asked for is never cut down (too much is -EMSGSIZE or
	 * -EINVAL, from the kernel); what is left 0 takes a default the
	 * system allows. */
	uint64_t mm = o->max_msg;
	if (!mm) {
		mm = (o->capacity ? o->capacity : FB_DEFAULT_CAP) / 4;
		if (mm > p->msgsize_max)
			mm = p->msgsize_max;
		if (!mm)
			mm = 1;
	}
	uint64_t depth;
	if (o->capacity) {
		depth = (o->capacity + mm - 1) / mm;
	} else {
		depth = (FB_DEFAULT_CAP + mm - 1) / mm;
		if (depth > msg_max)
			depth = msg_max;
	}
	if (!depth)
		depth = 1;
	if (depth > LONG_MAX)
		depth = LONG_MAX;
	p->attr = (struct mq_attr){ .mq_maxmsg = (long)depth, .mq_msgsize = (long)mm };
	return 0;
}

static int ctl_name(char *cn, size_t size, const char *qn, mqd_t q, struct stat *st)
{
	if (fstat(q, st) < 0)
		return -errno;
	snprintf(cn, size, "%s:eos:%llu", qn, (unsigned long long)st->st_ino);
	return 0;
}

/* The end-of-stream flag of queue q: opened, or made with the queue's mode
 * if missing (its creator is still between the two, or was killed there). */
static int ctl_open(const char *qn, mqd_t q, mqd_t *out)
{
	char cn[300];
	struct stat st;
	int rc = ctl_name(cn, sizeof(cn), qn, q, &st);
	if (rc < 0)
		return rc;
	struct mq_attr one = { .mq_maxmsg = 1, .mq_msgsize = 1 };
	int acc = O_RDWR;       /* a producer raises it; anybody may read it */
	for (int lap = 0; lap < 100; lap++) {
		mqd_t c = mq_open(cn, acc | O_NONBLOCK | O_CREAT | O_EXCL, 0600, &one);
		if (c != (mqd_t)-1) {
			if (fchmod(c, st.st_mode & 0666) < 0) {
				rc = -errno;
				mq_close(c);
				mq_unlink(cn);
				return rc;
			}
			*out = c;
			return 0;
		}
		if (errno != EEXIST && errno != EACCES)
			return -errno;
		c = mq_open(cn, acc | O_NONBLOCK);
		if (c != (mqd_t)-1) {
			/* a flag made by a user we do not trust could end
			 * our stream whenever it liked */
			rc = trust_check_fd(c);
			if (rc < 0) {
				mq_close(c);
				return rc;
			}
			*out = c;
			return 0;
		}
		if (errno == EACCES && acc == O_RDWR)
			acc = O_RDONLY; /* may see the end, not cause it */
		else if (errno != ENOENT)
			return -errno;
	}
	return -EAGAIN;
}

static int mq_unlink_ring(const char *name);

/* About 80 lines, kept whole: the create-or-open race loop and the
 * checks after it share one cleanup, which removes a queue we made (and
 * its flag) on any failure; split, each part would repeat it. */
static int mq_open_ring(const char *name, int oflags, const struct shmring_opts *opts,
			struct shmring **out)
{
	struct plan p = { .mode = 0600 };
	int rc = (oflags & SHMRING_CREATE) ? plan_opts(opts, &p) : 0;
	if (rc < 0)
		return rc;
	char qn[256];
	snprintf(qn, sizeof(qn), "/%s", name);   /* NAME: 1-200 of [A-Za-z0-9._-] */
	uint32_t roles = (uint32_t)oflags & (SHMRING_PRODUCER | SHMRING_CONSUMER);
	int acc = roles == (SHMRING_PRODUCER | SHMRING_CONSUMER) ? O_RDWR
		  : roles == SHMRING_PRODUCER ? O_WRONLY : O_RDONLY;
	bool created = false;
	mqd_t q = (mqd_t)-1;
	for (int lap = 0; lap < 100 && q == (mqd_t)-1; lap++) {
		if (oflags & SHMRING_CREATE) {
			/* 0600 (less the umask) until the mode is set exactly */
			q = mq_open(qn, acc | O_NONBLOCK | O_CREAT | O_EXCL, 0600, &p.attr);
			if (q != (mqd_t)-1) {
				created = true;
				break;
			}
			if (errno == EINVAL)
				/* above fs.mqueue.msgsize_max (-EMSGSIZE) or
				 * fs.mqueue.msg_max (-EINVAL) */
				return (uint64_t)p.attr.mq_msgsize > p.msgsize_max ? -EMSGSIZE : -EINVAL;
			if (errno != EEXIST)
				return -errno;
			if (oflags & SHMRING_EXCL)
				return -EEXIST;
		}
		q = mq_open(qn, acc | O_NONBLOCK);
		if (q == (mqd_t)-1 && (errno != ENOENT || !(oflags & SHMRING_CREATE)))
			return -errno;
		/* ENOENT: removed between the two calls, again */
	}
	if (q == (mqd_t)-1)
		return -EAGAIN;
	struct mq_attr a;
	struct fb_handle *h = sr_zalloc(sizeof(*h));
	if (!h) {
		rc = -ENOMEM;
		mq_close(q);
	} else {
		h->q = q;
		h->ctl = (mqd_t)-1;
		h->base.epfd = -1;
		backend_head_init(&h->base.head, &mq_ops, roles, 0);
		h->held.cap = HELD_MAX;
		/* another user's queue: its messages are theirs to forge */
		if (!created)
			rc = trust_check_fd(q);
		else if (fchmod(q, p.mode) < 0)
			rc = -errno;
		if (rc == 0 && mq_getattr(q, &a) < 0)
			rc = -errno;
		else if (rc == 0 && (a.mq_msgsize <= 0 || a.mq_maxmsg <= 0))
			rc = -EPROTO;
		else if (rc == 0)
			rc = ctl_open(qn, q, &h->ctl);
		if (rc == 0) {
			h->msgsize = (size_t)a.mq_msgsize;
			h->maxmsg = a.mq_maxmsg;
			if ((roles & SHMRING_PRODUCER) && !buf_get(h, &h->wbuf))
				rc = -ENOMEM;
			if ((roles & SHMRING_CONSUMER) && !buf_get(h, &h->pbuf))
				rc = -ENOMEM;
		}
		if (rc < 0)
			handle_free(h);
	}
	if (rc < 0) {
		if (created)
			(void)mq_unlink_ring(name);       /* and its flag, if made */
		return rc;
	}
	/* a producer that opens a stream already over gets -EPIPE */
	if ((roles & SHMRING_PRODUCER) && flag_up(h))
		h->shut = true;
	*out = &h->base.head;
	return 0;
}

static int mq_unlink_ring(const char *name)
{
	char qn[256], cn[300];
	struct stat st;
	snprintf(qn, sizeof(qn), "/%s", name);
	/* the flag goes with the queue: find its name first (a queue that we
	 * may not open leaves its flag behind, a few bytes) */
	mqd_t q = mq_open(qn, O_RDONLY | O_NONBLOCK);
	bool have = q != (mqd_t)-1 && ctl_name(cn, sizeof(cn), qn, q, &st) == 0;
	if (q != (mqd_t)-1)
		mq_close(q);
	int rc = mq_unlink(qn) < 0 ? -errno : 0;
	if (rc == 0 && have)
		(void)mq_unlink(cn);
	return rc;
}

const struct shmring_backend backend_mq = {
	.scheme = "mq", .open = mq_open_ring, .unlink = mq_unlink_ring,
};
