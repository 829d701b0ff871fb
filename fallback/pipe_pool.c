/* SPDX-License-Identifier: MIT */
/*
 * pipe: the pool of pages that large frames are built in for vmsplice().
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

/* ---- the pool of pages for vmsplice ------------------------------------ */

static int pool_make(struct fb_handle *h)
{
	long pg = sysconf(_SC_PAGESIZE);
	size_t page = pg > 0 ? (size_t)pg : 4096;
	int psz = fcntl(h->wfd, F_GETPIPE_SZ);
	h->slot_size = (h->frame_max + page - 1) / page * page;
	/* enough slots to fill the pipe and write the next frame meanwhile */
	size_t n = (psz > 0 ? (size_t)psz : FB_DEFAULT_CAP) / h->slot_size + 2;
	if (n > 64)
		n = 64;
	/* mmap, not the allocator: pages lent to the pipe must never be given
	 * to anything else while the pipe holds them; after munmap the pipe
	 * keeps its own reference to the pages */
	void *p = mmap(NULL, n * h->slot_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -ENOMEM;
	h->slot_end = sr_zalloc(n * sizeof(*h->slot_end));
	if (!h->slot_end) {
		munmap(p, n * h->slot_size);
		return -ENOMEM;
	}
	/* a forked child must not share pages the parent writes again */
	(void)madvise(p, n * h->slot_size, MADV_DONTFORK);
	h->pool = p;
	h->pool_len = n * h->slot_size;
	h->nslots = (unsigned)n;
	return 0;
}

/*
 * A slot to build a large frame in, for vmsplice, or -1 (copy instead).
 * The pipe refers to the pages of a spliced frame until the consumer has
 * read them: a slot is written again only when every byte of its last frame
 * has left the pipe.  FIONREAD says how many bytes are still in the pipe —
 * the newest ones, FIFO — so the slot is free once at least that many bytes
 * went in after it.  (Bytes of other writers only make the test stricter.)
 */
int pipe_pool_take(struct fb_handle *h)
{
	if (!h->pool && pool_make(h) < 0)
		return -1;
	unsigned s = h->next_slot;
	if (h->slot_end[s]) {
		int unread;
		if (ioctl(h->wfd, FIONREAD, &unread) < 0 || unread < 0 ||
		    h->pushed - h->slot_end[s] < (uint64_t)unread)
			return -1;
	}
	h->next_slot = (s + 1) % h->nslots;
	return (int)s;
}
