/* SPDX-License-Identifier: MIT */
/* The ring holder shared by the elements and their buffers. */
#include "common.h"

struct gstring *gstring_new(struct shmring *r)
{
	struct gstring *g = g_new0(struct gstring, 1);
	struct shmring_caps caps;

	g->refs = 1;
	g_mutex_init(&g->lock);
	g_cond_init(&g->cond);
	g->r = r;
	g_queue_init(&g->held);
	if (shmring_caps(r, &caps) == 0) {
		g->zerocopy = (caps.flags & SHMRING_CAP_ZEROCOPY) != 0;
		g->max_msg = caps.max_msg;
	}
	return g;
}

struct gstring *gstring_ref(struct gstring *g)
{
	g_atomic_int_inc(&g->refs);
	return g;
}

void gstring_unref(struct gstring *g)
{
	if (!g || !g_atomic_int_dec_and_test(&g->refs))
		return;
	/* the last user: no buffer wraps the mapping any more */
	shmring_close(g->r);
	g_queue_clear(&g->held);
	g_cond_clear(&g->cond);
	g_mutex_clear(&g->lock);
	g_free(g);
}

void gstring_discard(struct gstring *g)
{
	int rc;

	g->res.len = 0;
	rc = shmring_commit(g->r, &g->res);
	if (rc < 0)
		GST_DEBUG("discarding a reservation: %s", shmring_strerror(rc));
	g->res_open = FALSE;
	g->res_mem = NULL;
	g_cond_broadcast(&g->cond);
}

void gstring_release(struct gstring *g, struct shmring_msg *m)
{
	int rc = shmring_release(g->r, m);

	if (rc < 0)
		GST_DEBUG("release: %s", shmring_strerror(rc));
}

GType gst_shmring_kind_get_type(void)
{
	static gsize id;
	static const GEnumValue values[] = {
		{ SHMRING_SPSC, "one producer, one consumer", "spsc" },
		{ SHMRING_MPMC, "several producers and consumers, each frame to one", "mpmc" },
		{ 3, "broadcast: every consumer gets every frame (needs a library "
		     "that has SHMRING_BCAST)", "bcast" },
		{ 0, NULL, NULL },
	};

	if (g_once_init_enter(&id)) {
		GType t = g_enum_register_static("GstShmringKind", values);

		g_once_init_leave(&id, t);
	}
	return (GType)id;
}
