/* SPDX-License-Identifier: MIT */
/* The frame header: the reader's checks (see wire.h). */
#include <errno.h>
#include <string.h>

#include "wire.h"

int gstwire_parse(const void *msg, size_t len, struct gstwire_hdr *h)
{
	if (len == 0)
		return -EINVAL;
	if (len < sizeof(*h))
		return -EPROTO;
	/* one copy: the checks below and every later use read the copy */
	memcpy(h, msg, sizeof(*h));
	if (h->magic != GSTWIRE_MAGIC || h->version != GSTWIRE_VERSION)
		return -EPROTO;
	if (h->caps_len > GSTWIRE_CAPS_MAX || h->hdr_len % GSTWIRE_ALIGN != 0 ||
	    h->hdr_len < gstwire_hdr_len(h->caps_len) || h->hdr_len > len)
		return -EPROTO;
	if (h->payload_len != len - h->hdr_len)
		return -EPROTO;
	return 0;
}
