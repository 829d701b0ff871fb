/* SPDX-License-Identifier: MIT */
#ifndef SHMRING_GST_SRC_H
#define SHMRING_GST_SRC_H

#include <gst/base/gstpushsrc.h>

#include "common.h"

G_BEGIN_DECLS

#define GST_TYPE_SHMRING_SRC (gst_shmring_src_get_type())
G_DECLARE_FINAL_TYPE(GstShmringSrc, gst_shmring_src, GST, SHMRING_SRC, GstPushSrc)

struct _GstShmringSrc {
	GstPushSrc parent;
	/* properties (object lock) */
	gchar *uri;
	guint64 timeout;
	guint64 capacity;               /* pipe: only */
	guint max_msg;
	/* streaming state */
	struct gstring *ring;           /* NULL until the ring is there */
	int ring_fd;                    /* shmring_fd(): readable when a frame comes */
	int wake_fd;                    /* eventfd: unlock() */
	gint flushing;                  /* atomic */
	gchar *caps_str;                /* of the frames now */
	GstCaps *caps;
	guint64 next_seq;
	gboolean have_seq;
};

GST_ELEMENT_REGISTER_DECLARE(shmringsrc);

G_END_DECLS
#endif
