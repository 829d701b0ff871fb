/* SPDX-License-Identifier: MIT */
/* mq:NAME — a POSIX message queue.  Not in this version yet. */
#include <errno.h>

#include "fallback.h"

int fb_mq_open(const char *name, int oflags, const struct shmring_opts *opts,
		 struct fb_handle **h, const struct fb_ops **ops)
{
	(void)name, (void)oflags, (void)opts, (void)h, (void)ops;
	return -ENOTSUP;
}

int fb_mq_unlink(const char *name)
{
	(void)name;
	return -ENOTSUP;
}
