/* SPDX-License-Identifier: MIT */
/*
 * The frame header that shmringsink writes in front of every buffer and
 * shmringsrc reads back: one ring message per buffer,
 *
 *   [struct gstwire_hdr][caps string, no NUL][padding to hdr_len][payload]
 *
 * hdr_len is a multiple of 64, so the payload keeps the 64-byte alignment
 * shmring_reserve() gives.  Both ends run on one machine: host byte order.
 * The reader trusts nothing: gstwire_parse() checks every field against the
 * message length before anything is used.
 */
#ifndef SHMRING_GST_WIRE_H
#define SHMRING_GST_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define GSTWIRE_MAGIC   0x46475253u     /* "SRGF" */
#define GSTWIRE_VERSION 1u
#define GSTWIRE_ALIGN   64u
#define GSTWIRE_CAPS_MAX 65536u         /* longest caps string carried */
#define GSTWIRE_NONE    UINT64_MAX      /* GST_CLOCK_TIME_NONE, GST_BUFFER_OFFSET_NONE */

struct gstwire_hdr {
	uint32_t magic;
	uint32_t version;
	uint32_t hdr_len;       /* bytes before the payload */
	uint32_t caps_len;      /* bytes of the caps string after this struct */
	uint32_t flags;         /* GstBufferFlags, the subset GSTWIRE_FLAGS */
	uint32_t pad;
	uint64_t seq;           /* 0, 1, 2... per sink start */
	uint64_t pts, dts, duration;
	uint64_t offset, offset_end;
	uint64_t payload_len;
};
_Static_assert(sizeof(struct gstwire_hdr) == 80, "wire header size");

/* hdr_len for a caps string of caps_len bytes */
static inline uint32_t gstwire_hdr_len(uint32_t caps_len)
{
	uint32_t n = (uint32_t)sizeof(struct gstwire_hdr) + caps_len;

	return (n + GSTWIRE_ALIGN - 1) & ~(GSTWIRE_ALIGN - 1);
}

/* Copy the header out of msg (len bytes, possibly shared memory) into *h
 * and check it: 0, or -EPROTO when it is not a frame, or -EINVAL for an
 * empty message (a cancelled reservation: skip it). */
int gstwire_parse(const void *msg, size_t len, struct gstwire_hdr *h);

#endif
