/* SPDX-License-Identifier: MIT */
#include "common.h"

#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>

void fb_held_push(struct fb_heldq *q, void *data, size_t len, struct shmring_msg *m)
{
	struct fb_held *e = &q->e[fb_held_tail(q)];
	*e = (struct fb_held){ ++q->serial, data, len };
	q->count++;
	m->data = data;
	m->len = len;
	m->priv[0] = e->serial;
	m->priv[1] = 0;
}

int fb_held_pop(struct fb_heldq *q, struct shmring_msg *m, struct shmring_stats *st)
{
	const struct fb_held *e = &q->e[q->head];
	if (!q->count || m->priv[0] != e->serial || m->data != e->data || m->len != e->len)
		return -EINVAL;         /* only the oldest held message, as it was handed out */
	q->head = (q->head + 1) % q->cap;
	q->count--;
	fb_count_recv(st, e->len);
	m->data = NULL;
	return 0;
}

void fb_resv_open(struct fb_resv *r, void *data, size_t len, uint64_t deadline,
		  struct shmring_msg *m)
{
	r->open = true;
	r->data = data;
	r->len = len;
	r->deadline = deadline;
	m->data = data;
	m->len = len;
	m->priv[0] = ++r->serial;
	m->priv[1] = len;
}

int fb_resv_check(const struct fb_resv *r, const struct shmring_msg *m)
{
	if (!r->open || m->priv[0] != r->serial || m->priv[1] != r->len ||
	    m->len > m->priv[1] || m->data != r->data)
		return -EINVAL;
	return 0;
}

ssize_t fb_recv(struct fb_handle *h, const struct fb_heldq *q, struct shmring_stats *st,
		fb_take_fn *take, void *buf, size_t cap, int64_t timeout_ns)
{
	if (q->count)
		return -EINPROGRESS;
	bool waited = false;
	ssize_t n = take(h, buf, cap, fb_deadline(timeout_ns), &waited);
	if (n >= 0)
		fb_count_recv(st, (size_t)n);
	return n;
}

int fb_recv_batch(struct fb_handle *h, const struct fb_heldq *q, struct shmring_stats *st,
		  fb_take_fn *take, struct iovec *bufs, unsigned n, int64_t timeout_ns)
{
	if (q->count)
		return -EINPROGRESS;
	uint64_t dl = fb_deadline(timeout_ns);  /* only the first message waits */
	bool waited = false;
	ssize_t rc = 0;
	unsigned i;
	for (i = 0; i < n; i++) {
		if (!bufs[i].iov_base && bufs[i].iov_len) {
			rc = -EINVAL;
			break;
		}
		if ((rc = take(h, bufs[i].iov_base, bufs[i].iov_len, dl, &waited)) < 0)
			break;
		bufs[i].iov_len = (size_t)rc;
		fb_count_recv(st, (size_t)rc);
		dl = FB_NOWAIT;
	}
	return i ? (int)i : (int)rc;
}

int fb_poll_fd(struct shmring *r, const struct fb_watch *w, unsigned n)
{
	int *epfd = &fb_base_of(r)->epfd;
	if (*epfd >= 0)
		return *epfd;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		return -errno;
	for (unsigned i = 0; i < n; i++) {
		if (w[i].fd < 0)
			continue;
		struct epoll_event ev = { .events = w[i].events | EPOLLET };
		if (epoll_ctl(ep, EPOLL_CTL_ADD, w[i].fd, &ev) < 0) {
			int rc = -errno;
			close(ep);
			return rc;
		}
	}
	*epfd = ep;
	return ep;
}

bool fb_rearm(struct shmring *r)
{
	int epfd = fb_base_of(r)->epfd;
	struct epoll_event ev[8];
	bool any = false;
	int n;
	if (epfd < 0)
		return false;           /* nobody asked for a descriptor */
	while ((n = epoll_wait(epfd, ev, 8, 0)) > 0) {
		any = true;
		if (n < 8)
			break;
	}
	return any;
}
