/* SPDX-License-Identifier: MIT */
/*
 * pipe: the consumer: frames out of the pipe, resynchronisation, held messages.
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

/* ---- consumer ---------------------------------------------------------- */

static void end_stream(struct fb_handle *h)
{
	h->ended = true;
	if (h->wfd >= 0)
		h->broken = true;       /* a handle with both roles: its sends go nowhere now */
	/* what follows the end (frames of producers that did not know) is
	 * not for us; give the read end back: another consumer may start a
	 * new stream on the FIFO after an end of file */
	h->rpos = h->rend;
	close_fd(&h->rfd);
}

/* Skip bytes that are no frame: up to the next place a frame may start. */
static void resync(struct fb_handle *h)
{
	if (!h->skipping) {
		h->skipping = true;     /* one loss per stretch of bad bytes */
		h->st.msgs_dropped++;
	}
	size_t off = h->rpos + 1;
	while (off < h->rend) {
		const uint8_t *s = memchr(h->rbuf + off, FR_MAGIC_DATA & 0xff, h->rend - off);
		if (!s) {
			off = h->rend;
			break;
		}
		off = (size_t)(s - h->rbuf);
		struct fr_hdr hd;
		int r = pipe_frame_at(h, off, &hd);
		if (r > 0 || (r == 0 && !h->eof))
			break;
		off++;
	}
	h->rpos = off;
}

/* How many bytes the frame at rpos still needs from the pipe (at least 1):
 * a header first, then the rest of the frame it announces, never more, so
 * that no byte of the next frame leaves the pipe. */
static size_t bytes_wanted(const struct fb_handle *h)
{
	size_t avail = h->rend - h->rpos;
	if (avail < FR_HDR)
		return FR_HDR - avail;
	struct fr_hdr hd;
	memcpy(&hd, h->rbuf + h->rpos, sizeof(hd));
	size_t total = FR_OVERHEAD + (size_t)(hd.len <= h->max_msg ? hd.len : 0);
	return total > avail ? total - avail : 1;
}

/* Read up to `want` bytes from the pipe: 1 got bytes, 0 none (h->eof tells
 * whether the stream is over), -EINPROGRESS if acquired messages fill the
 * buffer. */
static int fill(struct fb_handle *h, size_t want)
{
	if (h->held.count == 0) {
		if (h->rpos == h->rend) {
			h->rpos = h->rend = 0;
		} else if (h->rcap - h->rpos < h->frame_max) {
			memmove(h->rbuf, h->rbuf + h->rpos, h->rend - h->rpos);
			h->rend -= h->rpos;
			h->rpos = 0;
		}
	}
	if (h->rend == h->rcap)
		return -EINPROGRESS;
	if (want > h->rcap - h->rend)
		want = h->rcap - h->rend;
	bool marked = false;
	for (int round = 0; round < 3; round++) {
		ssize_t n;
		do
			n = read(h->rfd, h->rbuf + h->rend, want);
		while (n < 0 && errno == EINTR);
		if (n > 0) {
			h->rend += (size_t)n;
			return 1;
		}
		if (n < 0 && errno != EAGAIN)
			return -errno;
		if (n == 0) {
			/* No writer now.  poll() tells whether one came and
			 * went since we opened (POLLHUP: the end) or none came
			 * yet (keep waiting); POLLIN: one came and wrote
			 * meanwhile, read again. */
			struct pollfd p = { .fd = h->rfd, .events = POLLIN };
			int k;
			do
				k = poll(&p, 1, 0);
			while (k < 0 && errno == EINTR);
			if (k < 0)
				return -errno;
			if (p.revents & POLLIN)
				continue;
			if (p.revents & POLLHUP) {
				h->eof = true;
				return 0;
			}
		}
		/* Empty.  A shutdown marked on the FIFO comes after everything
		 * its producer sent: with the mark seen, one more read finds
		 * whatever was sent before it, and an empty pipe then is the
		 * end. */
		if (marked) {
			h->eof = true;
			return 0;
		}
		if (pipe_end_marked(h->rfd) <= 0)
			return 0;
		marked = true;
	}
	return 0;
}

/* The next whole frame at rpos (not consumed), or -EPIPE, -EAGAIN,
 * -ETIMEDOUT, -EINPROGRESS, -errno. */
static int next_frame(struct fb_handle *h, uint64_t deadline, struct fr_hdr *hd, bool *waited)
{
	for (;;) {
		if (h->ended)
			return -EPIPE;
		int r = pipe_frame_at(h, h->rpos, hd);
		if (r > 0) {
			h->skipping = false;
			if (hd->magic == FR_MAGIC_EOS) {
				h->rpos += FR_OVERHEAD;
				end_stream(h);
				return -EPIPE;
			}
			return 0;
		}
		if (r < 0 || (h->eof && h->rpos < h->rend)) {
			/* garbage, or a frame cut short by the end of the stream */
			resync(h);
			continue;
		}
		if (h->eof) {
			end_stream(h);
			return -EPIPE;
		}
		int rc = fill(h, bytes_wanted(h));
		if (rc < 0)
			return rc;
		if (rc > 0 || h->eof)
			continue;
		if (!*waited && deadline != FB_NOWAIT) {
			h->st.waits_empty++;
			*waited = true;
		}
		short ev;
		if ((rc = fb_wait_fd(h->rfd, POLLIN, deadline, &ev)) < 0)
			return rc;
	}
}

/* fb_take_fn: the next frame's payload into buf. */
static ssize_t p_take(struct fb_handle *h, void *buf, size_t cap, uint64_t deadline, bool *waited)
{
	struct fr_hdr hd;
	int rc = next_frame(h, deadline, &hd, waited);
	if (rc < 0)
		return rc;
	if (hd.len > cap)
		return -EMSGSIZE;       /* it stays at rpos for the next call */
	if (hd.len)
		memcpy(buf, h->rbuf + h->rpos + FR_HDR, hd.len);
	h->rpos += FR_OVERHEAD + hd.len;
	return (ssize_t)hd.len;
}

ssize_t pipe_op_recv(struct shmring *r, void *buf, size_t cap, int64_t timeout_ns)
{
	struct fb_handle *h = fb_of(r);
	return fb_recv(h, &h->held, &h->st, p_take, buf, cap, timeout_ns);
}

int pipe_op_acquire(struct shmring *r, struct shmring_msg *m, int64_t timeout_ns)
{
	struct fb_handle *h = fb_of(r);
	if (h->held.count == h->held.cap)
		return -EINPROGRESS;
	struct fr_hdr hd;
	bool waited = false;
	int rc = next_frame(h, fb_deadline(timeout_ns), &hd, &waited);
	if (rc < 0)
		return rc;
	/* the frame stays where it is in rbuf: nothing moves bytes while any
	 * message is held (fill compacts only when none is) */
	fb_held_push(&h->held, h->rbuf + h->rpos + FR_HDR, hd.len, m);
	h->rpos += FR_OVERHEAD + hd.len;
	return 0;
}

int pipe_op_release(struct shmring *r, struct shmring_msg *m)
{
	struct fb_handle *h = fb_of(r);
	return fb_held_pop(&h->held, m, &h->st);
}

int pipe_op_recv_batch(struct shmring *r, struct iovec *bufs, unsigned n, int64_t timeout_ns)
{
	struct fb_handle *h = fb_of(r);
	return fb_recv_batch(h, &h->held, &h->st, p_take, bufs, n, timeout_ns);
}
