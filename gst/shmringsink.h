/* SPDX-License-Identifier: MIT */
#ifndef SHMRING_GST_SINK_H
#define SHMRING_GST_SINK_H

#include <gst/base/gstbasesink.h>

#include "common.h"

G_BEGIN_DECLS

#define GST_TYPE_SHMRING_SINK (gst_shmring_sink_get_type())
G_DECLARE_FINAL_TYPE(GstShmringSink, gst_shmring_sink, GST, SHMRING_SINK, GstBaseSink)

struct _GstShmringSink {
	GstBaseSink parent;
	/* properties (object lock) */
	gchar *uri;
	gint kind;
	guint64 capacity;
	guint max_msg;
	gint64 timeout;
	gboolean unlink;
	guint wait_readers;
	/* streaming state */
	struct gstring *ring;           /* NULL until the first caps */
	gchar *caps_str;                /* written into every frame */
	guint32 caps_len;
	guint64 seq;
	gint flushing;                  /* unlock() in progress (atomic) */
	gboolean shut_down;
	gboolean readers_came;          /* wait-readers is behind us */
};

GST_ELEMENT_REGISTER_DECLARE(shmringsink);

/* For the pool, ring lock held: shmring_reserve() in slices that see
 * unlock(), until `deadline` (g_get_monotonic_time() microseconds, -1
 * never): 0, -EINTR (flushing), -ETIMEDOUT or the library's error. */
int gst_shmring_sink_reserve(GstShmringSink *s, size_t len, struct shmring_msg *m,
			     gint64 deadline);
/* The deadline of a wait that starts now, from the timeout property. */
gint64 gst_shmring_sink_deadline(GstShmringSink *s);

G_END_DECLS
#endif
