/* SPDX-License-Identifier: MIT */
/*
 * A fuzz input and the ring file it stands for, shared by the fuzz targets
 * and the seed generator.  The interesting bytes of a segment are a few
 * KiB spread over 40 KiB and more, so an input holds only those, at fixed
 * places, and everything else in the file is zero:
 *
 *   input   0          control byte (what the target does, below)
 *           1..16      op script (fuzz_ring)
 *           17..144    -> file offset 0             the header (104 bytes used)
 *           145..1168  -> SEG_CTL_OFF               the control block's first 1 KiB
 *           1169..2192 -> SEG_RING_OFF              the ring state's first 1 KiB
 *           2193..     -> the data area (SEG_MPMC_DATA_OFF if the header says
 *                         MPMC, SEG_DATA_OFF otherwise)
 *
 * The file is as long as the header's seg_size says when that is at most
 * IMG_MAX_FILE (anything placed past it is cut), else as long as what was
 * placed.  With IMG_FIX_HDR the target makes the header pass its own
 * checks (magic, version, stamp, owner, checksum) so that mutations reach
 * the ring behind it; without, the header parser is fuzzed too.
 */
#ifndef SHMRING_TESTS_FUZZ_IMAGE_H
#define SHMRING_TESTS_FUZZ_IMAGE_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "shm/segment.h"

#define IMG_CTRL     0
#define IMG_OPS      1
#define IMG_NOPS     16
#define IMG_HDR      (IMG_OPS + IMG_NOPS)
#define IMG_HDR_LEN  128
#define IMG_CTL      (IMG_HDR + IMG_HDR_LEN)
#define IMG_CTL_LEN  1024
#define IMG_RING     (IMG_CTL + IMG_CTL_LEN)
#define IMG_RING_LEN 1024
#define IMG_DATA     (IMG_RING + IMG_RING_LEN)
#define IMG_MAX_FILE (16u << 20)

/* control byte */
#define IMG_ROLES    0x03u       /* fuzz_ring: 0 none, 1 producer, 2 consumer, 3 both */
#define IMG_FIX_HDR  0x04u
#define IMG_SHM      0x08u       /* shm: rather than file: */
#define IMG_ALL_ROLES 0x10u      /* fuzz_ring: open as every role in turn */

static inline void img_put(int fd, const uint8_t *in, size_t n, size_t at, size_t len,
			   uint64_t off, uint64_t size)
{
	if (n <= at || off >= size)
		return;
	size_t k = n - at < len ? n - at : len;
	if (k > size - off)
		k = (size_t)(size - off);
	if (pwrite(fd, in + at, k, (off_t)off) != (ssize_t)k)
		return;     /* a short file: the library refuses it, as it should */
}

/* Write the file that input in[0..n) stands for into fd (empty, fresh).
 * Returns 0, or -errno. */
static inline int img_write(int fd, const uint8_t *in, size_t n)
{
	struct seg_hdr h;
	memset(&h, 0, sizeof(h));
	if (n > IMG_HDR)
		memcpy(&h, in + IMG_HDR, n - IMG_HDR < sizeof(h) ? n - IMG_HDR : sizeof(h));
	if (n > IMG_CTRL && (in[IMG_CTRL] & IMG_FIX_HDR)) {
		h.magic = SEG_MAGIC;
		h.hdr_size = sizeof(h);
		atomic_store_explicit(&h.version, SEG_VERSION, memory_order_relaxed);
		h.stamp = seg_stamp();
		h.creator_uid = (uint32_t)geteuid();
		h.checksum = seg_checksum(&h);
	}
	uint64_t data_off = h.kind == SHMRING_MPMC ? SEG_MPMC_DATA_OFF : SEG_DATA_OFF;
	uint64_t placed = n > IMG_DATA ? data_off + (n - IMG_DATA)
			: n > IMG_RING ? SEG_RING_OFF + (n - IMG_RING)
			: n > IMG_CTL ? SEG_CTL_OFF + (n - IMG_CTL) : sizeof(h);
	uint64_t size = h.seg_size && h.seg_size <= IMG_MAX_FILE ? h.seg_size : placed;
	if (size > IMG_MAX_FILE)
		size = IMG_MAX_FILE;
	if (ftruncate(fd, (off_t)size) < 0)
		return -errno;
	/* the header as (maybe) fixed, then the rest of its 128 bytes as given */
	if (pwrite(fd, &h, size < sizeof(h) ? (size_t)size : sizeof(h), 0) < 0)
		return -errno;
	if (n > IMG_HDR + sizeof(h))
		img_put(fd, in, n, IMG_HDR + sizeof(h), IMG_HDR_LEN - sizeof(h), sizeof(h), size);
	img_put(fd, in, n, IMG_CTL, IMG_CTL_LEN, SEG_CTL_OFF, size);
	img_put(fd, in, n, IMG_RING, IMG_RING_LEN, SEG_RING_OFF, size);
	img_put(fd, in, n, IMG_DATA, SIZE_MAX, data_off, size);
	return 0;
}

#endif
