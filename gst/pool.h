/* SPDX-License-Identifier: MIT */
/*
 * The sink's buffer pool: each buffer it hands upstream is a ring
 * reservation (the frame's place after its header), so an element that
 * renders into it writes the frame once, into the ring.  Rings have one
 * open reservation per producer: while one is out, the pool hands out
 * ordinary memory, which the sink copies.  A reservation whose buffer is
 * freed without being rendered is published empty (the reader skips it).
 */
#ifndef SHMRING_GST_POOL_H
#define SHMRING_GST_POOL_H

#include "shmringsink.h"

GstBufferPool *gst_shmring_pool_new(GstShmringSink *sink);

#endif
