/* SPDX-License-Identifier: MIT */
/*
 * What the pipe: and mq: backends share: deadlines, waiting on descriptors,
 * and the kernel limits they read.
 */
#ifndef SHMRING_FALLBACK_FBUTIL_H
#define SHMRING_FALLBACK_FBUTIL_H

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../sync/clock.h"

#define FB_HIDDEN __attribute__((visibility("hidden")))

/* A deadline of FB_NOWAIT means timeout 0: a wait is -EAGAIN at once.
 * UINT64_MAX means SHMRING_FOREVER.  Anything else is an absolute
 * CLOCK_MONOTONIC time in nanoseconds, after which a wait is -ETIMEDOUT. */
#define FB_NOWAIT 0u

static inline uint64_t fb_deadline(int64_t timeout_ns)
{
	if (timeout_ns == 0)
		return FB_NOWAIT;
	uint64_t d = clock_deadline(timeout_ns);
	return d == FB_NOWAIT ? 1 : d;
}

/*
 * Wait until fd reports one of `events` (or an error/hang-up condition),
 * never past the deadline: 0 with *revents set, -EAGAIN (FB_NOWAIT),
 * -ETIMEDOUT (never before the deadline), or another -errno.  Signals do
 * not end the wait.
 */
FB_HIDDEN int fb_wait_fd(int fd, short events, uint64_t deadline, short *revents);
/* The same for n descriptors: 0 when one of them is ready (see p[].revents). */
FB_HIDDEN int fb_wait_fds(struct pollfd *p, unsigned n, uint64_t deadline);

/* An unsigned number from a /proc/sys file, or dflt if it cannot be read. */
FB_HIDDEN uint64_t fb_sysctl(const char *path, uint64_t dflt);

#endif
