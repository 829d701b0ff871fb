/* SPDX-License-Identifier: MIT */
/*
 * The slower drop-in backends behind the same API: pipe:PATH (a named FIFO,
 * fallback/pipe*.c) and mq:NAME (a POSIX message queue, fallback/mq.c).
 * Each fills the backend interface (backend/backend.h): its handle, struct
 * fb_handle (private to each backend), starts with the common head.
 *
 * The zero-copy and batch calls work through a per-handle buffer (from the
 * library's allocator): they cost a copy but keep programs portable.
 */
#ifndef SHMRING_FALLBACK_H
#define SHMRING_FALLBACK_H

#include "../backend/backend.h"

/* What every fallback handle starts with. */
struct fb_base {
	struct shmring head;
	int epfd;              /* shmring_fd(): fallback/common.h; -1 until asked for */
};

struct fb_handle;      /* backend-private; starts with struct fb_base */

static inline struct fb_handle *fb_of(struct shmring *r)
{
	return (struct fb_handle *)(void *)r;
}

static inline struct fb_base *fb_base_of(struct shmring *r)
{
	return (struct fb_base *)(void *)r;
}

/* A fallback backend's ops table: its calls are named P_send, P_recv, ...
 * (P = the prefix given) and it re-arms its descriptor with fb_rearm. */
#define FB_OPS(name_, P)                                                       \
	{                                                                      \
		.name = name_, .send = P##_send, .recv = P##_recv,             \
		.reserve = P##_reserve, .commit = P##_commit,                  \
		.acquire = P##_acquire, .release = P##_release,                \
		.send_batch = P##_send_batch, .recv_batch = P##_recv_batch,    \
		.shutdown = P##_shutdown, .stats = P##_stats, .caps = P##_caps, \
		.fd = P##_fd, .rearm = fb_rearm, .close = P##_close,           \
	}

#endif
