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

struct fb_handle;      /* backend-private; starts with struct shmring */

static inline struct fb_handle *fb_of(struct shmring *r)
{
	return (struct fb_handle *)(void *)r;
}

#endif
