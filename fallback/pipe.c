/* SPDX-License-Identifier: MIT */
/* pipe:PATH — a named FIFO with framed messages.  Not in this version yet. */
#include <errno.h>

#include "fallback.h"

int fb_pipe_open(const char *path, int oflags, const struct shmring_opts *opts,
		 struct fb_handle **h, const struct fb_ops **ops)
{
	(void)path, (void)oflags, (void)opts, (void)h, (void)ops;
	return -ENOTSUP;
}

int fb_pipe_unlink(const char *path)
{
	(void)path;
	return -ENOTSUP;
}
