/* SPDX-License-Identifier: MIT */
/* The sink's buffer pool: buffers that are ring reservations (pool.h). */
#include <errno.h>

#include "pool.h"
#include "wire.h"

GST_DEBUG_CATEGORY_STATIC(pool_debug);
#define GST_CAT_DEFAULT pool_debug

typedef struct {
	GstBufferPool parent;
	GstShmringSink *sink;           /* a reference */
	guint size;                     /* frame bytes, from the config */
} GstShmringPool;

typedef struct {
	GstBufferPoolClass parent_class;
} GstShmringPoolClass;

static GType gst_shmring_pool_get_type(void);
G_DEFINE_TYPE(GstShmringPool, gst_shmring_pool, GST_TYPE_BUFFER_POOL);

/* what a reservation's memory remembers, to close it when freed unused */
struct note {
	struct gstring *g;              /* a reference */
	guint64 gen;
};

static void note_free(gpointer data)
{
	struct note *n = data;
	struct gstring *g = n->g;

	g_mutex_lock(&g->lock);
	if (g->res_open && g->res_gen == n->gen) {
		/* never rendered: published empty, the reader skips it */
		gstring_discard(g);
	}
	g_mutex_unlock(&g->lock);
	gstring_unref(g);
	g_free(n);
}

static gboolean pool_set_config(GstBufferPool *bp, GstStructure *config)
{
	GstShmringPool *p = (GstShmringPool *)bp;
	GstCaps *caps;
	guint size, min, max;

	if (!gst_buffer_pool_config_get_params(config, &caps, &size, &min, &max) || !size)
		return FALSE;
	p->size = size;
	return GST_BUFFER_POOL_CLASS(gst_shmring_pool_parent_class)->set_config(bp, config);
}

static GstFlowReturn pool_acquire(GstBufferPool *bp, GstBuffer **out,
				  GstBufferPoolAcquireParams *params)
{
	GstShmringPool *p = (GstShmringPool *)bp;
	GstShmringSink *s = p->sink;
	struct gstring *g;
	struct shmring_msg m;
	struct note *n;
	GstMemory *mem;
	guint32 hdr;
	int rc;

	(void)params;
	GST_OBJECT_LOCK(s);
	g = s->ring ? gstring_ref(s->ring) : NULL;
	hdr = gstwire_hdr_len(s->caps_len);
	GST_OBJECT_UNLOCK(s);
	if (!g)
		goto plain;
	g_mutex_lock(&g->lock);
	if (g->res_open || (guint64)hdr + p->size > g->max_msg) {
		g_mutex_unlock(&g->lock);
		gstring_unref(g);
		goto plain;
	}
	rc = gst_shmring_sink_reserve(s, hdr + p->size, &m, gst_shmring_sink_deadline(s));
	if (rc < 0) {
		g_mutex_unlock(&g->lock);
		gstring_unref(g);
		if (rc == -EINTR)
			return GST_FLOW_FLUSHING;
		GST_DEBUG_OBJECT(p, "reserve: %s", shmring_strerror(rc));
		goto plain;     /* the sink reports it with the frame */
	}
	n = g_new(struct note, 1);
	n->g = g;               /* the reference taken above */
	n->gen = ++g->res_gen;
	g->res = m;
	g->res_open = TRUE;
	g->res_hdr_len = hdr;
	mem = gst_memory_new_wrapped(0, (char *)m.data + hdr, p->size, 0, p->size, n, note_free);
	g->res_mem = mem;
	g_mutex_unlock(&g->lock);
	*out = gst_buffer_new();
	gst_buffer_append_memory(*out, mem);
	return GST_FLOW_OK;
plain:
	*out = gst_buffer_new_allocate(NULL, p->size, NULL);
	return *out ? GST_FLOW_OK : GST_FLOW_ERROR;
}

/* never back into the pool: a reservation is used once */
static void pool_release(GstBufferPool *bp, GstBuffer *buf)
{
	(void)bp;
	gst_buffer_unref(buf);
}

static void pool_finalize(GObject *obj)
{
	GstShmringPool *p = (GstShmringPool *)obj;

	gst_object_unref(p->sink);
	G_OBJECT_CLASS(gst_shmring_pool_parent_class)->finalize(obj);
}

static void gst_shmring_pool_class_init(GstShmringPoolClass *klass)
{
	GObjectClass *oc = G_OBJECT_CLASS(klass);
	GstBufferPoolClass *pc = GST_BUFFER_POOL_CLASS(klass);

	GST_DEBUG_CATEGORY_INIT(pool_debug, "shmringpool", 0, "shmring sink's buffer pool");
	oc->finalize = pool_finalize;
	pc->set_config = pool_set_config;
	pc->acquire_buffer = pool_acquire;
	pc->release_buffer = pool_release;
}

static void gst_shmring_pool_init(GstShmringPool *p)
{
	(void)p;
}

GstBufferPool *gst_shmring_pool_new(GstShmringSink *sink)
{
	GstShmringPool *p = g_object_new(gst_shmring_pool_get_type(), NULL);

	gst_object_ref_sink(p);
	p->sink = gst_object_ref(sink);
	return GST_BUFFER_POOL(p);
}
