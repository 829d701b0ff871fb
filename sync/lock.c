/* SPDX-License-Identifier: MIT */
#include "lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

int lock_set(int fd, short type, off_t at)
{
	struct flock fl = {
		.l_type = type, .l_whence = SEEK_SET, .l_start = at, .l_len = 1,
		.l_pid = 0,      /* OFD locks require 0 */
	};
	if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
		return 0;
	return errno == EAGAIN || errno == EACCES ? -EAGAIN : -errno;
}

/* The pause doubles from 20 us to 1 ms: a short section is waited out
 * quickly, a long wait costs little CPU. */
int lock_set_until(int fd, short type, off_t at, uint64_t give_up)
{
	long pause_ns = 20000;
	for (;;) {
		int rc = lock_set(fd, type, at);
		if (rc != -EAGAIN)
			return rc;
		uint64_t now = clock_mono_ns();
		if (now >= give_up)
			return -ETIMEDOUT;
		if ((uint64_t)pause_ns > give_up - now)
			pause_ns = (long)(give_up - now);
		struct timespec ts = { 0, pause_ns };
		nanosleep(&ts, NULL);       /* EINTR: the deadline still bounds us */
		pause_ns = pause_ns < 500000 ? pause_ns * 2 : 1000000;
	}
}

off_t lock_held(int fd, off_t at, off_t len)
{
	struct flock fl = {
		.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = at, .l_len = len,
		.l_pid = 0,
	};
	if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
		return -2;
	return fl.l_type == F_UNLCK ? -1 : fl.l_start;
}

int lock_reopen(int fd, int flags)
{
	char self[64];
	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	int nfd;
	do
		nfd = open(self, flags | O_CLOEXEC);
	while (nfd < 0 && errno == EINTR);
	return nfd < 0 ? -errno : nfd;
}
