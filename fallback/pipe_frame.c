/* SPDX-License-Identifier: MIT */
/*
 * pipe: framing: a frame's header and trailer, made and checked (pipe.h).
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

/* ---- frames ------------------------------------------------------------ */

static inline uint32_t mix32(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x85ebca6bu;
	x ^= x >> 13;
	x *= 0xc2b2ae35u;
	x ^= x >> 16;
	return x;
}

static inline uint32_t fr_check(uint32_t magic, uint32_t len, uint32_t tag)
{
	return mix32(magic ^ mix32(len ^ mix32(tag + 0x9e3779b9u)));
}

void pipe_frame_make(struct fb_handle *h, uint32_t magic, uint32_t len, struct fr_hdr *hd,
		    struct fr_tail *t)
{
	uint32_t tag = h->nonce + h->seq++ * 0x9e3779b9u;
	*hd = (struct fr_hdr){ magic, len, tag, fr_check(magic, len, tag) };
	*t = (struct fr_tail){ tag, ~hd->check };
}

/* Header and trailer around len payload bytes at p + FR_HDR. */
void pipe_frame_seal(struct fb_handle *h, uint8_t *p, uint32_t magic, uint32_t len)
{
	struct fr_hdr hd;
	struct fr_tail t;
	pipe_frame_make(h, magic, len, &hd, &t);
	memcpy(p, &hd, sizeof(hd));
	memcpy(p + FR_HDR + len, &t, sizeof(t));
}

/* 1: a whole valid frame at off; 0: perhaps one, more bytes needed;
 * -1: no frame starts at off. */
int pipe_frame_at(const struct fb_handle *h, size_t off, struct fr_hdr *out)
{
	const uint8_t *p = h->rbuf + off;
	size_t avail = h->rend - off;
	if (avail < FR_HDR) {
		uint32_t md = FR_MAGIC_DATA, me = FR_MAGIC_EOS;
		size_t k = avail < 4 ? avail : 4;
		return memcmp(p, &md, k) == 0 || memcmp(p, &me, k) == 0 ? 0 : -1;
	}
	struct fr_hdr hd;
	memcpy(&hd, p, sizeof(hd));
	if (hd.magic != FR_MAGIC_DATA && hd.magic != FR_MAGIC_EOS)
		return -1;
	if (hd.check != fr_check(hd.magic, hd.len, hd.tag) || hd.len > h->max_msg ||
	    (hd.magic == FR_MAGIC_EOS && hd.len != 0))
		return -1;
	if (avail < FR_OVERHEAD + (size_t)hd.len)
		return 0;
	struct fr_tail t;
	memcpy(&t, p + FR_HDR + hd.len, sizeof(t));
	if (t.tag != hd.tag || t.ncheck != ~hd.check)
		return -1;
	*out = hd;
	return 1;
}


uint32_t pipe_nonce(void)
{
	uint32_t v;
	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) == (ssize_t)sizeof(v))
		return v;
	return mix32((uint32_t)clock_mono_ns() ^ (uint32_t)getpid() * 0x9e3779b1u);
}
