/* SPDX-License-Identifier: MIT */
/*
 * What shmringsink and shmringsrc share: the ring handle behind a
 * reference count.  Buffers handed out by the elements wrap the ring's
 * memory and keep a reference, so the mapping outlives the element until
 * the last of them is freed.  The handle is used by one thread at a time
 * (an SPSC handle must be): every library call on it is made under lock.
 */
#ifndef SHMRING_GST_COMMON_H
#define SHMRING_GST_COMMON_H

#include <gst/gst.h>
#include <shmring.h>

G_BEGIN_DECLS

struct gstring {
	gint refs;
	GMutex lock;
	GCond cond;                     /* sink: the open reservation closed */
	struct shmring *r;              /* closed with the last reference */
	gboolean zerocopy;              /* SHMRING_CAP_ZEROCOPY */
	guint32 max_msg;
	/* sink: the one open reservation (SPSC rings allow one) */
	gboolean res_open;
	guint64 res_gen;                /* which reservation is open */
	struct shmring_msg res;
	GstMemory *res_mem;             /* compared only, never dereferenced */
	guint32 res_hdr_len;
	/* src: messages acquired in place, released in their order */
	GQueue held;
};

/* Take over r (opened): a holder with one reference, or NULL. */
struct gstring *gstring_new(struct shmring *r);
struct gstring *gstring_ref(struct gstring *g);
void gstring_unref(struct gstring *g);

/* Lock held.  Sink: publish the open reservation empty (the reader skips
 * it) and wake who waits for it.  Src: give an acquired message back.
 * A failure is logged: the stream has ended or the ring is gone. */
void gstring_discard(struct gstring *g);
void gstring_release(struct gstring *g, struct shmring_msg *m);

/* the `kind` property: enum shmring_kind, passed through to the library */
#define GST_TYPE_SHMRING_KIND (gst_shmring_kind_get_type())
GType gst_shmring_kind_get_type(void);

/* the buffer flags a frame carries (the others describe memory, not data) */
#define GSTWIRE_FLAGS (GST_BUFFER_FLAG_LIVE | GST_BUFFER_FLAG_DISCONT | \
	GST_BUFFER_FLAG_RESYNC | GST_BUFFER_FLAG_CORRUPTED | GST_BUFFER_FLAG_MARKER | \
	GST_BUFFER_FLAG_HEADER | GST_BUFFER_FLAG_GAP | GST_BUFFER_FLAG_DROPPABLE | \
	GST_BUFFER_FLAG_DELTA_UNIT | GST_BUFFER_FLAG_NON_DROPPABLE)

/* Longest single wait inside the library, so that unlock() is seen. */
#define GSTRING_SLICE_NS (20 * GST_MSECOND)

G_END_DECLS
#endif
