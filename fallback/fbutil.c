/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "fbutil.h"

int fb_wait_fds(struct pollfd *p, unsigned n, uint64_t deadline)
{
	for (;;) {
		struct timespec ts, *tp = NULL;
		if (deadline == FB_NOWAIT)
			return -EAGAIN;
		if (deadline != UINT64_MAX) {
			uint64_t now = clock_mono_ns();
			if (now >= deadline)
				return -ETIMEDOUT;
			ts = clock_ts(deadline - now);
			tp = &ts;
		}
		int k = ppoll(p, n, tp, NULL);
		if (k > 0)
			return 0;
		if (k < 0 && errno != EINTR)
			return -errno;
		/* a signal (it never ends a wait), or a timer that fired a
		 * little early: the clock above decides, never before the
		 * deadline */
	}
}

int fb_wait_fd(int fd, short events, uint64_t deadline, short *revents)
{
	struct pollfd p = { .fd = fd, .events = events };
	int rc = fb_wait_fds(&p, 1, deadline);
	*revents = p.revents;
	return rc;
}

uint64_t fb_sysctl(const char *path, uint64_t dflt)
{
	char buf[32];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return dflt;
	ssize_t n;
	do
		n = read(fd, buf, sizeof(buf) - 1);
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n <= 0)
		return dflt;
	buf[n] = 0;
	char *end;
	unsigned long long v = strtoull(buf, &end, 10);
	if (end == buf || (*end != '\n' && *end != 0))
		return dflt;
	return v;
}
