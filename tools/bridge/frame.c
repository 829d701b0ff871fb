/* SPDX-License-Identifier: MIT */
/* Parsing what arrives from NATS: every length checked before use. */
#include "frame.h"

int fr_parse(const unsigned char *p, size_t n, struct fr_hdr *h, struct fr_rec *recs,
	     unsigned max_recs, uint32_t *total, uint32_t *offset)
{
	if (n < FR_HDR || fr_get32(p) != FR_MAGIC || p[4] != FR_VERSION)
		return -1;
	h->flags = p[5];
	h->count = (uint16_t)(p[6] | (p[7] << 8));
	h->pub_id = fr_get64(p + 8);
	h->seq = fr_get64(p + 16);
	const unsigned char *q = p + FR_HDR, *end = p + n;
	if (h->flags & ~(FR_PIECE | FR_END))
		return -1;
	if (h->flags & FR_END)
		return (h->count == 0 && q == end) ? 0 : -1;
	if (h->flags & FR_PIECE) {
		if ((size_t)(end - q) < FR_PIECE_HDR || h->count != 1)
			return -1;
		*total = fr_get32(q);
		*offset = fr_get32(q + 4);
		q += FR_PIECE_HDR;
		size_t len = (size_t)(end - q);
		if (*offset > *total || len > *total - *offset)
			return -1;
		recs[0].data = q;
		recs[0].len = (uint32_t)len;
		return 0;
	}
	if (h->count == 0 || h->count > max_recs)
		return -1;
	for (unsigned i = 0; i < h->count; i++) {
		if ((size_t)(end - q) < FR_REC)
			return -1;
		uint32_t len = fr_get32(q);
		q += FR_REC;
		if ((size_t)(end - q) < len)
			return -1;
		recs[i].data = q;
		recs[i].len = len;
		q += len;
	}
	return q == end ? 0 : -1;
}
