/* SPDX-License-Identifier: MIT */
/*
 * <shmring/inline.h> once more, with its marker empty: every inline
 * function of the installed header is also an exported symbol of the
 * library (shmring.map), for FFI and for programs that do not include
 * the header.  Beside them, what the inline functions call: the
 * versioned open and the out-of-line wake-up.
 */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#define SHMRING_INLINE SHMRING_API
#include "shmring/inline.h"
#pragma GCC diagnostic pop

#include <errno.h>

#include "../backend/backend.h"
#include "../backend/spsc.h"

int shmring_open_layout(const char *uri, int oflags, const struct shmring_opts *opts,
			struct shmring **out, unsigned layout)
{
	if (layout != SHMRING_LAYOUT_VERSION) {
		/* built against another layout: its inline code must never run
		 * on ours */
		if (out)
			*out = NULL;
		return -EPROTO;
	}
	int rc = shmring_open(uri, oflags, opts, out);
	if (rc < 0)
		return rc;
	struct shmring *r = *out;
	/* an SPSC ring in a segment: its roles take the inline fast path */
	if (r->roles & HANDLE_SPSC)
		r->inl.fast = r->roles & HANDLE_ROLES;
	return 0;
}

void shmring__spsc_wake(struct shmring *r, int role)
{
	/* the inline code calls this only for a fast role; anything else is
	 * not an SPSC handle's and has nothing to wake */
	if (!r || !(r->inl.fast & (uint32_t)role) || !(r->roles & HANDLE_SPSC))
		return;
	if (role == SHMRING_PRODUCER)
		sph_wake_cons(sph_of(r));
	else if (role == SHMRING_CONSUMER)
		sph_wake_prod(sph_of(r));
}
