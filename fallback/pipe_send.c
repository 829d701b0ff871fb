/* SPDX-License-Identifier: MIT */
/*
 * pipe: the producer: frames into the pipe, reservations, shutdown.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "pipe.h"

/* ---- producer ---------------------------------------------------------- */

static ssize_t write_once(int fd, const struct iovec *iov, int cnt, bool splice)
{
	ssize_t n;
	do
		n = splice ? vmsplice(fd, iov, (unsigned long)cnt, SPLICE_F_NONBLOCK)
			   : writev(fd, iov, cnt);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

/* Whether the stream was shut down: the FIFO's sticky bit (set by
 * pipe_mark_end).  -1 when the test failed (nothing is known). */
int pipe_end_marked(int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -1;
	return (st.st_mode & S_ISVTX) != 0;
}

/* Set the end-of-stream bit on the FIFO: 0, or -errno (EPERM: not the
 * FIFO's owner; the EOS frame alone then tells the consumer). */
int pipe_mark_end(struct fb_handle *h)
{
	struct stat st;
	if (fstat(h->wfd, &st) < 0)
		return -errno;
	if (!(st.st_mode & S_ISVTX) && fchmod(h->wfd, (st.st_mode & 07777) | S_ISVTX) < 0)
		return -errno;
	h->marked = true;
	return 0;
}

/* Did another producer shut the stream down?  Looked at now if `now`, else
 * at most every SHUT_CHECK_NS (a clock read is no system call).  Sets
 * h->shut: further sends are -EPIPE.  A consumer that comes or goes changes
 * nothing here: frames wait in the pipe for the next one. */
void pipe_check_shut(struct fb_handle *h, bool now)
{
	if (h->shut)
		return;
	uint64_t t = clock_mono_ns();
	if (!now && t < h->next_check)
		return;
	h->next_check = t + SHUT_CHECK_NS;
	if (pipe_end_marked(h->wfd) > 0)
		h->shut = true;
}

/* Wait for room, in slices, looking between them for a shutdown by
 * another producer (this handle's own frames after its own shutdown — the
 * rest of a frame, the EOS frame — still go).  0 (look again), -EPIPE,
 * -EAGAIN (timeout 0), -ETIMEDOUT. */
static int wait_writable(struct fb_handle *h, uint64_t deadline)
{
	bool was = h->shut;
	pipe_check_shut(h, true);
	if (h->shut && !was)
		return -EPIPE;
	if (deadline == FB_NOWAIT)
		return -EAGAIN;
	uint64_t slice = clock_mono_ns() + WAIT_SLICE_NS;
	short ev;
	int rc = fb_wait_fd(h->wfd, POLLOUT, deadline < slice ? deadline : slice, &ev);
	if (rc == -ETIMEDOUT && deadline > slice)
		return 0;               /* a slice is over, not the wait */
	return rc;
}

static void count_wait(struct fb_handle *h, uint64_t deadline, bool *waited)
{
	if (!*waited && deadline != FB_NOWAIT) {
		h->st.waits_full++;
		*waited = true;
	}
}

/* Put bytes into the pipe, waiting for room until the deadline: the count
 * written (>= 1), or -EAGAIN/-ETIMEDOUT (nothing written), -EPIPE, -errno. */
static ssize_t push(struct fb_handle *h, const struct iovec *iov, int cnt, bool splice,
		    uint64_t deadline, bool *waited)
{
	for (;;) {
		if (h->broken)
			return -EPIPE;
		ssize_t n = write_once(h->wfd, iov, cnt, splice);
		if (n > 0) {
			h->pushed += (uint64_t)n;
			return n;
		}
		if (n == -EPIPE) {      /* cannot happen while we hold a read end */
			h->broken = true;
			return -EPIPE;
		}
		if (n != -EAGAIN && n != 0)
			return n;
		if (deadline != FB_NOWAIT)
			count_wait(h, deadline, waited);
		int rc = wait_writable(h, deadline);
		if (rc < 0)
			return rc;
	}
}

/* Finish the frame written in part. */
static int flush_pending(struct fb_handle *h, uint64_t deadline, bool *waited)
{
	while (h->pend_len) {
		struct iovec v = { (void *)h->pend, h->pend_len };
		ssize_t n = push(h, &v, 1, h->pend_slot >= 0, deadline, waited);
		if (n < 0) {
			if (n == -EPIPE) {
				h->pend_len = 0;        /* the consumer is gone: lost */
				h->pend_slot = -1;
				h->st.msgs_dropped++;
			}
			return (int)n;
		}
		h->pend += n;
		h->pend_len -= (size_t)n;
	}
	if (h->pend_slot >= 0) {
		h->slot_end[h->pend_slot] = h->pushed;
		h->pend_slot = -1;
	}
	return 0;
}

/* The bytes of iov after the first `skip` become the pending rest. */
static void keep_rest(struct fb_handle *h, const struct iovec *iov, int cnt, size_t skip, int slot)
{
	if (slot >= 0) {
		/* a spliced frame is one region of its slot */
		h->pend = (const uint8_t *)iov[0].iov_base + skip;
		h->pend_len = iov[0].iov_len - skip;
		h->pend_slot = slot;
		return;
	}
	size_t out = 0;
	for (int i = 0; i < cnt; i++) {
		size_t l = iov[i].iov_len;
		if (skip >= l) {
			skip -= l;
			continue;
		}
		/* memmove: a frame built in wbuf moves down within it */
		memmove(h->wbuf + out, (const uint8_t *)iov[i].iov_base + skip, l - skip);
		out += l - skip;
		skip = 0;
	}
	h->pend = h->wbuf;
	h->pend_len = out;
	h->pend_slot = -1;
}

/*
 * Finish the frame begun, whatever the deadline, as long as the consumer
 * reads: a frame left half written would hold back every frame after it,
 * and a caller that now waits for an answer to it would wait for ever.
 * Only a consumer that reads nothing for IDLE_NS (or the caller's later
 * deadline) stops it: the rest then waits in the handle, and the next call
 * of the handle, or its close, writes it first.  SHMRING_FOREVER waits for
 * ever, as asked.
 */
int pipe_flush_idle(struct fb_handle *h, uint64_t deadline, bool *waited)
{
	if (deadline == UINT64_MAX)
		return flush_pending(h, UINT64_MAX, waited);
	for (;;) {
		size_t before = h->pend_len;
		uint64_t d = clock_mono_ns() + IDLE_NS;
		if (deadline != FB_NOWAIT && deadline > d)
			d = deadline;
		int rc = flush_pending(h, d, waited);
		if (rc != -ETIMEDOUT || h->pend_len == before)
			return rc;
	}
}

/* Room in the pipe now, by FIONREAD, less a page for the pipe's slot
 * rounding; SIZE_MAX when unknown. */
static size_t room_now(struct fb_handle *h, size_t *pipe_size)
{
	int size = fcntl(h->wfd, F_GETPIPE_SZ), unread;
	*pipe_size = size > 0 ? (size_t)size : SIZE_MAX;
	if (size <= 0 || ioctl(h->wfd, FIONREAD, &unread) < 0 || unread < 0)
		return SIZE_MAX;
	return (size_t)size > (size_t)unread + 4096 ? (size_t)size - (size_t)unread - 4096 : 0;
}

/* Whether a frame of `total` bytes larger than PIPE_BUF would go in whole
 * now, so that timeout 0 can say -EAGAIN rather than begin it (a frame
 * begun is finished, see pipe_flush_idle); a frame larger than the pipe begins
 * only in an empty one.  When in doubt, yes. */
static bool room_for(struct fb_handle *h, size_t total)
{
	size_t size, room = room_now(h, &size);
	if (room == SIZE_MAX)
		return true;
	if (total + 4096 >= size)
		return room + 4096 >= size;     /* empty */
	return room >= total;
}

/*
 * Write one whole frame.  0: it is in the pipe (or, after IDLE_NS of a
 * consumer that reads nothing, its rest waits in the handle, see
 * pipe_flush_idle).  -EAGAIN/-ETIMEDOUT: nothing was written.
 */
static int send_frame(struct fb_handle *h, const struct iovec *iov, int cnt, size_t total,
		      int slot, uint64_t deadline, bool *waited)
{
	if (deadline == FB_NOWAIT && total > PIPE_BUF && !room_for(h, total))
		return -EAGAIN;
	ssize_t n = push(h, iov, cnt, slot >= 0, deadline, waited);
	if (n < 0)
		return (int)n;
	if ((size_t)n < total) {
		keep_rest(h, iov, cnt, (size_t)n, slot);
		int rc = pipe_flush_idle(h, deadline, waited);
		if (rc == -EPIPE)
			return rc;
	} else if (slot >= 0) {
		h->slot_end[slot] = h->pushed;
	}
	return 0;
}

static int put_msg(struct fb_handle *h, const void *msg, size_t len, uint64_t deadline,
		   bool *waited)
{
	size_t total = FR_OVERHEAD + len;
	int slot = !h->multi && total >= VMSPLICE_MIN ? pipe_pool_take(h) : -1;
	if (slot >= 0 || total <= SMALL_FRAME) {
		uint8_t *p = slot >= 0 ? slot_ptr(h, slot) : h->wbuf;
		if (len)
			memcpy(p + FR_HDR, msg, len);
		pipe_frame_seal(h, p, FR_MAGIC_DATA, (uint32_t)len);
		struct iovec v = { p, total };
		return send_frame(h, &v, 1, total, slot, deadline, waited);
	}
	/* large, copied by the kernel: gather, no copy of ours */
	struct fr_hdr hd;
	struct fr_tail t;
	pipe_frame_make(h, FR_MAGIC_DATA, (uint32_t)len, &hd, &t);
	struct iovec v[3] = {
		{ &hd, sizeof(hd) }, { (void *)msg, len }, { &t, sizeof(t) },
	};
	return send_frame(h, v, 3, total, -1, deadline, waited);
}

static int prod_ready(struct fb_handle *h)
{
	if (h->resv.open)
		return -EINPROGRESS;
	pipe_check_shut(h, false);
	if (h->shut || h->broken)
		return -EPIPE;
	return 0;
}

/* What send and reserve check and do first: the producer may send, len
 * fits, and the rest of an earlier frame is in the pipe. */
static int send_begin(struct fb_handle *h, size_t len, uint64_t deadline, bool *waited)
{
	int rc = prod_ready(h);
	if (rc < 0)
		return rc;
	if (len > h->max_msg)
		return -EMSGSIZE;
	return flush_pending(h, deadline, waited);
}

int pipe_op_send(struct shmring *r, const void *msg, size_t len, int64_t timeout_ns)
{
	struct fb_handle *h = fb_of(r);
	uint64_t deadline = fb_deadline(timeout_ns);
	bool waited = false;
	int rc = send_begin(h, len, deadline, &waited);
	if (rc == 0 && (rc = put_msg(h, msg, len, deadline, &waited)) == 0)
		fb_count_sent(&h->st, len);
	return rc;
}

/* Wait until a write would not block. */
static int wait_room(struct fb_handle *h, uint64_t deadline, bool *waited)
{
	for (;;) {
		if (h->broken)
			return -EPIPE;
		struct pollfd p = { .fd = h->wfd, .events = POLLOUT };
		int n = poll(&p, 1, 0);
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0)
			return 0;
		if (deadline != FB_NOWAIT)
			count_wait(h, deadline, waited);
		int rc = wait_writable(h, deadline);
		if (rc < 0)
			return rc;
	}
}

int pipe_op_reserve(struct shmring *r, size_t len, struct shmring_msg *m, int64_t timeout_ns)
{
	struct fb_handle *h = fb_of(r);
	uint64_t deadline = fb_deadline(timeout_ns);
	bool waited = false;
	int rc = send_begin(h, len, deadline, &waited);
	if (rc == 0)
		rc = wait_room(h, deadline, &waited);
	if (rc < 0)
		return rc;
	size_t total = FR_OVERHEAD + len;
	if (deadline == FB_NOWAIT && total > PIPE_BUF && !room_for(h, total))
		return -EAGAIN;
	int slot = !h->multi && total >= VMSPLICE_MIN ? pipe_pool_take(h) : -1;
	h->resv_buf = slot >= 0 ? slot_ptr(h, slot) : h->wbuf;
	h->resv_slot = slot;
	fb_resv_open(&h->resv, h->resv_buf + FR_HDR, len, deadline, m);
	return 0;
}

int pipe_op_commit(struct shmring *r, struct shmring_msg *m)
{
	struct fb_handle *h = fb_of(r);
	if (fb_resv_check(&h->resv, m) < 0)
		return -EINVAL;
	if (h->shut || h->broken) {
		/* the stream ended while the frame was being written */
		h->resv.open = false;
		h->st.msgs_dropped++;
		return -EPIPE;
	}
	size_t len = m->len, total = FR_OVERHEAD + len;
	pipe_frame_seal(h, h->resv_buf, FR_MAGIC_DATA, (uint32_t)len);
	struct iovec v = { h->resv_buf, total };
	bool waited = false;
	/* With several producers another may have taken the room reserve saw:
	 * then wait as the reserve's timeout allowed, and if that is over keep
	 * the reservation open for another commit. */
	int rc = send_frame(h, &v, 1, total, h->resv_slot, h->resv.deadline, &waited);
	if (rc == -EAGAIN || rc == -ETIMEDOUT)
		return rc;
	h->resv.open = false;
	if (rc < 0) {
		h->st.msgs_dropped++;   /* the consumer is gone */
		return rc;
	}
	fb_count_sent(&h->st, len);
	m->data = NULL;
	return 0;
}

static size_t frame_total(const struct iovec *v)
{
	return FR_OVERHEAD + v->iov_len;
}

/* Frames of msgs[from], msgs[from + 1], ... built one after another in
 * wbuf while each is valid and small and they fit in lim bytes: the index
 * after the last one built; *used, their bytes. */
static unsigned pack_small(struct fb_handle *h, const struct iovec *msgs, unsigned from,
			   unsigned n, size_t lim, size_t *used)
{
	unsigned j = from;
	size_t u = 0;
	while (j < n && (msgs[j].iov_base || !msgs[j].iov_len) &&
	       msgs[j].iov_len <= h->max_msg && frame_total(&msgs[j]) <= SMALL_FRAME &&
	       u + frame_total(&msgs[j]) <= lim) {
		if (msgs[j].iov_len)
			memcpy(h->wbuf + u + FR_HDR, msgs[j].iov_base, msgs[j].iov_len);
		pipe_frame_seal(h, h->wbuf + u, FR_MAGIC_DATA, (uint32_t)msgs[j].iov_len);
		u += frame_total(&msgs[j]);
		j++;
	}
	*used = u;
	return j;
}

int pipe_op_send_batch(struct shmring *r, const struct iovec *msgs, unsigned n, int64_t timeout_ns)
{
	struct fb_handle *h = fb_of(r);
	uint64_t dl = fb_deadline(timeout_ns);   /* only the first message waits */
	bool waited = false;
	int rc = prod_ready(h);
	if (rc == 0)
		rc = flush_pending(h, dl, &waited);
	if (rc < 0)
		return rc;
	unsigned done = 0;
	while (done < n) {
		const struct iovec *v = &msgs[done];
		if (!v->iov_base && v->iov_len) {
			rc = -EINVAL;
			break;
		}
		if (v->iov_len > h->max_msg) {
			rc = -EMSGSIZE;
			break;
		}
		if (frame_total(v) > SMALL_FRAME) {
			if ((rc = put_msg(h, v->iov_base, v->iov_len, dl, &waited)) < 0)
				break;
			fb_count_sent(&h->st, v->iov_len);
			done++;
			dl = FB_NOWAIT;
			if (h->pend_len)
				break;          /* the pipe is full */
			continue;
		}
		/* small frames: as many as fit in one write (PIPE_BUF with
		 * several producers, so that each write stays atomic) */
		size_t lim = h->multi ? PIPE_BUF : h->wcap, used;
		if (!h->multi && dl == FB_NOWAIT) {
			/* not more than fits now: what is begun must be finished */
			size_t size, room = room_now(h, &size);
			if (room < lim)
				lim = room > frame_total(v) ? room : frame_total(v);
		}
		unsigned j = pack_small(h, msgs, done, n, lim, &used);
		struct iovec c = { h->wbuf, used };
		ssize_t w = push(h, &c, 1, false, dl, &waited);
		if (w < 0) {
			rc = (int)w;
			break;
		}
		size_t off = 0;
		unsigned k = done;
		while (k < j && off + frame_total(&msgs[k]) <= (size_t)w)
			off += frame_total(&msgs[k++]);
		if (off < (size_t)w) {
			/* one frame went in part: the rest must follow */
			size_t rest = off + frame_total(&msgs[k]) - (size_t)w;
			memmove(h->wbuf, h->wbuf + w, rest);
			h->pend = h->wbuf;
			h->pend_len = rest;
			h->pend_slot = -1;
			k++;
		}
		for (unsigned i = done; i < k; i++)
			fb_count_sent(&h->st, msgs[i].iov_len);
		done = k;
		dl = FB_NOWAIT;
		if (h->pend_len && pipe_flush_idle(h, FB_NOWAIT, &waited) < 0)
			break;
		if (k < j)
			break;                  /* the pipe is full */
	}
	return done ? (int)done : rc;
}

/* The EOS frame, waiting for room until the deadline: 0 or -errno. */
int pipe_put_eos(struct fb_handle *h, uint64_t deadline)
{
	uint8_t eos[FR_OVERHEAD];
	pipe_frame_seal(h, eos, FR_MAGIC_EOS, 0);
	struct iovec v = { eos, sizeof(eos) };
	bool waited = true;             /* not counted: no send waits here */
	ssize_t n = push(h, &v, 1, false, deadline, &waited);
	if (n < 0)
		return (int)n;
	h->eos_sent = true;             /* 24 bytes < PIPE_BUF: all or nothing */
	return 0;
}

int pipe_op_shutdown(struct shmring *r)
{
	struct fb_handle *h = fb_of(r);
	h->shut = true;
	if (h->eos_sent || h->broken)
		return 0;
	/* the rest of a frame first: the bit says that everything sent is in
	 * the pipe */
	bool waited = true;
	int rc = pipe_flush_idle(h, FB_NOWAIT, &waited);
	if (rc == 0 && (h->marked || pipe_mark_end(h) == 0)) {
		/* The frame only wakes a consumer asleep on an empty pipe; on a
		 * full one nobody sleeps, and the consumer that drains it finds
		 * the bit.  Close tries the frame once more. */
		rc = pipe_put_eos(h, FB_NOWAIT);
		return rc == -EAGAIN ? 0 : rc;
	}
	if (rc == 0)
		rc = pipe_put_eos(h, clock_mono_ns() + IDLE_NS);     /* the frame is all there is */
	return rc == -EPIPE ? 0 : rc;   /* -EPIPE: our own consumer ended the stream */
}
