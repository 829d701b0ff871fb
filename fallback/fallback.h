/* SPDX-License-Identifier: MIT */
/*
 * The slower drop-in backends behind the same API: pipe:PATH (a named FIFO)
 * and mq:NAME (a POSIX message queue).  api/ checks arguments and roles
 * (-EINVAL, -EPERM) before it calls in here, exactly as for shared-memory
 * rings; a backend does the rest and returns 0/count or -errno.
 *
 * The zero-copy and batch calls work through a per-handle buffer (from the
 * library's allocator): they cost a copy but keep programs portable.
 */
#ifndef SHMRING_FALLBACK_H
#define SHMRING_FALLBACK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "shmring.h"

struct fb_handle;      /* backend-private */

struct fb_ops {
	int (*send)(struct fb_handle *h, const void *msg, size_t len, int64_t timeout_ns);
	ssize_t (*recv)(struct fb_handle *h, void *buf, size_t cap, int64_t timeout_ns);
	int (*reserve)(struct fb_handle *h, size_t len, struct shmring_msg *m, int64_t timeout_ns);
	int (*commit)(struct fb_handle *h, struct shmring_msg *m);
	int (*acquire)(struct fb_handle *h, struct shmring_msg *m, int64_t timeout_ns);
	int (*release)(struct fb_handle *h, struct shmring_msg *m);
	int (*send_batch)(struct fb_handle *h, const struct iovec *msgs, unsigned n, int64_t timeout_ns);
	int (*recv_batch)(struct fb_handle *h, struct iovec *bufs, unsigned n, int64_t timeout_ns);
	int (*shutdown)(struct fb_handle *h);
	int (*stats)(struct fb_handle *h, struct shmring_stats *st);
	int (*caps)(struct fb_handle *h, struct shmring_caps *caps);
	int (*close)(struct fb_handle *h);   /* frees h */
};

/*
 * Open (with SHMRING_CREATE: create) the backend object.  `roles` is
 * oflags & (SHMRING_PRODUCER | SHMRING_CONSUMER), already checked;
 * `opts` may be NULL.  On success *h and *ops are set.
 */
__attribute__((visibility("hidden")))
int fb_pipe_open(const char *path, int oflags, const struct shmring_opts *opts,
		 struct fb_handle **h, const struct fb_ops **ops);
__attribute__((visibility("hidden")))
int fb_mq_open(const char *name, int oflags, const struct shmring_opts *opts,
	       struct fb_handle **h, const struct fb_ops **ops);

__attribute__((visibility("hidden"))) int fb_pipe_unlink(const char *path);
__attribute__((visibility("hidden"))) int fb_mq_unlink(const char *name);

#endif
