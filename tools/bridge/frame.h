/* SPDX-License-Identifier: MIT */
/*
 * What one NATS message of the bridge carries (little-endian):
 *
 *   header  u32 magic "SRB1" | u8 version | u8 flags | u16 count
 *           u64 pub_id   (random per outbound run: whose sequence this is)
 *           u64 seq      (index of the first message inside, per pub_id)
 *   batch   count x ( u32 len | len bytes )                 flags 0
 *   piece   u32 total | u32 offset | bytes                  flags FR_PIECE
 *   end     nothing                                         flags FR_END
 *
 * A message larger than one publish travels as pieces of one seq, in
 * order, one after the other on the subject; a reader drops a message
 * whose pieces do not follow each other (another publisher, a loss).
 * Nothing here is trusted on receipt: fr_parse() checks every length.
 */
#ifndef SHMRING_BRIDGE_FRAME_H
#define SHMRING_BRIDGE_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define FR_MAGIC   0x31425253u  /* "SRB1" */
#define FR_VERSION 1
#define FR_PIECE   0x01u
#define FR_END     0x02u
#define FR_HDR     24u
#define FR_REC     4u           /* length word before each batched message */
#define FR_PIECE_HDR 8u         /* total + offset */

struct fr_hdr {
	uint8_t flags;
	uint16_t count;
	uint64_t pub_id, seq;
};

static inline void fr_put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}
static inline void fr_put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}
static inline uint32_t fr_get32(const unsigned char *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}
static inline uint64_t fr_get64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static inline void fr_put_hdr(unsigned char *p, const struct fr_hdr *h)
{
	fr_put32(p, FR_MAGIC);
	p[4] = FR_VERSION;
	p[5] = h->flags;
	p[6] = (unsigned char)h->count;
	p[7] = (unsigned char)(h->count >> 8);
	fr_put64(p + 8, h->pub_id);
	fr_put64(p + 16, h->seq);
}

/* One record of a parsed NATS message. */
struct fr_rec {
	const unsigned char *data;
	uint32_t len;
};

/* Check a received payload: 0 and *h filled, or -1 (not ours, or its
 * lengths do not add up).  For a batch, recs[0..count) (count <= max_recs);
 * for a piece, *total and *offset, and recs[0] the piece's bytes. */
int fr_parse(const unsigned char *p, size_t n, struct fr_hdr *h, struct fr_rec *recs,
	     unsigned max_recs, uint32_t *total, uint32_t *offset);

#endif
