/* SPDX-License-Identifier: MIT */
/*
 * shmringsrc: rebuilds the buffers shmringsink sent (caps, timestamps,
 * flags) around the ring's own memory (shmring_acquire): each buffer's
 * memory is released to the ring when downstream frees it.  Backends that
 * cannot hand out their memory (pipe:, mq:) are copied.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "shmringsrc.h"
#include "wire.h"

GST_DEBUG_CATEGORY_STATIC(src_debug);
#define GST_CAT_DEFAULT src_debug

enum {
	PROP_0,
	PROP_URI,
	PROP_IS_LIVE,
	PROP_TIMEOUT,
	PROP_CAPACITY,
	PROP_MAX_MSG,
};

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE("src",
	GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

G_DEFINE_TYPE(GstShmringSrc, gst_shmring_src, GST_TYPE_PUSH_SRC);
GST_ELEMENT_REGISTER_DEFINE(shmringsrc, "shmringsrc", GST_RANK_NONE, GST_TYPE_SHMRING_SRC);

#define OPEN_RETRY_MS 100               /* the ring is not there yet */

static void src_set_property(GObject *obj, guint id, const GValue *v, GParamSpec *ps)
{
	GstShmringSrc *s = GST_SHMRING_SRC(obj);

	switch (id) {
	case PROP_URI:
		GST_OBJECT_LOCK(s);
		g_free(s->uri);
		s->uri = g_value_dup_string(v);
		GST_OBJECT_UNLOCK(s);
		break;
	case PROP_IS_LIVE:
		gst_base_src_set_live(GST_BASE_SRC(s), g_value_get_boolean(v));
		break;
	case PROP_TIMEOUT:
		GST_OBJECT_LOCK(s);
		s->timeout = g_value_get_uint64(v);
		GST_OBJECT_UNLOCK(s);
		break;
	case PROP_CAPACITY:
		GST_OBJECT_LOCK(s);
		s->capacity = g_value_get_uint64(v);
		GST_OBJECT_UNLOCK(s);
		break;
	case PROP_MAX_MSG:
		GST_OBJECT_LOCK(s);
		s->max_msg = g_value_get_uint(v);
		GST_OBJECT_UNLOCK(s);
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(obj, id, ps);
	}
}

static void src_get_property(GObject *obj, guint id, GValue *v, GParamSpec *ps)
{
	GstShmringSrc *s = GST_SHMRING_SRC(obj);

	switch (id) {
	case PROP_URI:
		GST_OBJECT_LOCK(s);
		g_value_set_string(v, s->uri);
		GST_OBJECT_UNLOCK(s);
		break;
	case PROP_IS_LIVE:
		g_value_set_boolean(v, gst_base_src_is_live(GST_BASE_SRC(s)));
		break;
	case PROP_TIMEOUT:
		GST_OBJECT_LOCK(s);
		g_value_set_uint64(v, s->timeout);
		GST_OBJECT_UNLOCK(s);
		break;
	case PROP_CAPACITY:
		GST_OBJECT_LOCK(s);
		g_value_set_uint64(v, s->capacity);
		GST_OBJECT_UNLOCK(s);
		break;
	case PROP_MAX_MSG:
		GST_OBJECT_LOCK(s);
		g_value_set_uint(v, s->max_msg);
		GST_OBJECT_UNLOCK(s);
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(obj, id, ps);
	}
}

/* ---- messages held by buffers ------------------------------------------ */

struct held {
	struct gstring *g;              /* a reference */
	struct shmring_msg m;
	gboolean freed;
};

/* Release, in the order they were acquired, the messages whose buffers
 * are gone (SPSC rings release in order).  Lock held. */
static void release_freed(struct gstring *g)
{
	struct held *h;

	while ((h = g_queue_peek_head(&g->held)) && h->freed) {
		g_queue_pop_head(&g->held);
		gstring_release(g, &h->m);
		g_free(h);
	}
}

static void held_free(gpointer data)
{
	struct held *h = data;
	struct gstring *g = h->g;

	g_mutex_lock(&g->lock);
	h->g = NULL;
	h->freed = TRUE;
	release_freed(g);
	g_mutex_unlock(&g->lock);
	gstring_unref(g);
}

/* ---- the ring ----------------------------------------------------------- */

/* Open the ring as consumer: 0, -ENOENT (not there yet: wait), or an
 * error posted and -errno. */
static int src_open(GstShmringSrc *s)
{
	struct shmring_opts o = { 0 };
	struct shmring *r;
	gchar *uri;
	int rc, fd;

	GST_OBJECT_LOCK(s);
	uri = g_strdup(s->uri);
	/* pipe: stores no geometry: the sink's, by the sink's rule */
	o.max_msg = s->max_msg;
	o.capacity = s->capacity ? s->capacity : (guint64)s->max_msg * 4;
	GST_OBJECT_UNLOCK(s);
	if (!uri) {
		GST_ELEMENT_ERROR(s, RESOURCE, SETTINGS, ("No uri set."), (NULL));
		return -EINVAL;
	}
	/* a broadcast ring: from the oldest frame still in it, as a reader of
	 * any other ring gets what waits there (ignored on other kinds); a
	 * reader attached before the first frame gets the first frame */
	rc = shmring_open(uri, SHMRING_CONSUMER | SHMRING_OLDEST, o.max_msg ? &o : NULL, &r);
	if (rc == -ENOENT) {
		g_free(uri);
		return rc;
	}
	if (rc < 0) {
		GST_ELEMENT_ERROR(s, RESOURCE, OPEN_READ,
			("Could not open ring %s as consumer: %s.", uri, shmring_strerror(rc)),
			("shmring_open: %d", rc));
		g_free(uri);
		return rc;
	}
	fd = shmring_fd(r);
	if (fd < 0) {
		GST_ELEMENT_ERROR(s, RESOURCE, OPEN_READ,
			("Could not wait on ring %s: %s.", uri, shmring_strerror(fd)), (NULL));
		shmring_close(r);
		g_free(uri);
		return fd;
	}
	GST_INFO_OBJECT(s, "%s open", uri);
	g_free(uri);
	s->ring = gstring_new(r);
	s->ring_fd = fd;
	return 0;
}

/* Sleep until the ring (or, with ring_fd < 0, nothing) is readable, unlock()
 * or `ms`: FALSE when flushing. */
static gboolean src_wait(GstShmringSrc *s, int ms)
{
	struct pollfd p[2] = {
		{ .fd = s->wake_fd, .events = POLLIN },
		{ .fd = s->ring ? s->ring_fd : -1, .events = POLLIN },
	};

	if (g_atomic_int_get(&s->flushing))
		return FALSE;
	(void)poll(p, 2, ms);
	return !g_atomic_int_get(&s->flushing);
}

/* A frame's caps: set downstream when they changed.  FALSE: not
 * negotiated (posted). */
static gboolean src_caps(GstShmringSrc *s, const char *str, size_t len)
{
	GstCaps *caps;
	gchar *copy;

	if (s->caps_str && strlen(s->caps_str) == len && memcmp(s->caps_str, str, len) == 0)
		return TRUE;
	copy = g_strndup(str, len);
	caps = gst_caps_from_string(copy);
	if (!caps || !gst_caps_is_fixed(caps)) {
		GST_ELEMENT_ERROR(s, STREAM, FORMAT, ("A frame came with unusable caps."),
			("caps: %s", copy));
		g_free(copy);
		if (caps)
			gst_caps_unref(caps);
		return FALSE;
	}
	GST_DEBUG_OBJECT(s, "caps %s", copy);
	GST_OBJECT_LOCK(s);
	g_free(s->caps_str);
	s->caps_str = copy;
	gst_caps_replace(&s->caps, caps);
	GST_OBJECT_UNLOCK(s);
	if (!gst_base_src_set_caps(GST_BASE_SRC(s), caps)) {
		gst_caps_unref(caps);
		GST_ELEMENT_ERROR(s, CORE, NEGOTIATION,
			("Downstream does not accept the frames' caps."), (NULL));
		return FALSE;
	}
	gst_caps_unref(caps);
	return TRUE;
}

/* The buffer for an acquired frame (lock not held; m stays acquired until
 * the buffer lets go of it, or is released here when copied). */
static GstBuffer *src_buffer(GstShmringSrc *s, const struct gstwire_hdr *h,
			     struct shmring_msg *m)
{
	struct gstring *g = s->ring;
	const char *payload = (const char *)m->data + h->hdr_len;
	GstBuffer *buf;

	if (g->zerocopy) {
		struct held *e = g_new0(struct held, 1);

		e->g = gstring_ref(g);
		e->m = *m;
		g_mutex_lock(&g->lock);
		g_queue_push_tail(&g->held, e);
		g_mutex_unlock(&g->lock);
		buf = gst_buffer_new();
		gst_buffer_append_memory(buf, gst_memory_new_wrapped(GST_MEMORY_FLAG_READONLY,
			(gpointer)payload, h->payload_len, 0, h->payload_len, e, held_free));
	} else {
		buf = gst_buffer_new_allocate(NULL, h->payload_len, NULL);
		gst_buffer_fill(buf, 0, payload, h->payload_len);
		g_mutex_lock(&g->lock);
		gstring_release(g, m);
		g_mutex_unlock(&g->lock);
	}
	GST_BUFFER_PTS(buf) = h->pts;
	GST_BUFFER_DTS(buf) = h->dts;
	GST_BUFFER_DURATION(buf) = h->duration;
	GST_BUFFER_OFFSET(buf) = h->offset;
	GST_BUFFER_OFFSET_END(buf) = h->offset_end;
	GST_BUFFER_FLAGS(buf) = h->flags & GSTWIRE_FLAGS;
	if (s->have_seq && h->seq != s->next_seq) {
		GST_INFO_OBJECT(s, "frames %" G_GUINT64_FORMAT " to %" G_GUINT64_FORMAT
			" missing (the producer restarted?)", s->next_seq, h->seq);
		GST_BUFFER_FLAG_SET(buf, GST_BUFFER_FLAG_DISCONT);
	}
	s->have_seq = TRUE;
	s->next_seq = h->seq + 1;
	return buf;
}

static void post_timeout(GstShmringSrc *s, guint64 timeout)
{
	gst_element_post_message(GST_ELEMENT(s), gst_message_new_element(GST_OBJECT(s),
		gst_structure_new("GstShmringSrcTimeout", "timeout", G_TYPE_UINT64, timeout,
				  NULL)));
}

static GstFlowReturn src_create(GstPushSrc *ps, GstBuffer **out)
{
	GstShmringSrc *s = GST_SHMRING_SRC(ps);
	struct gstwire_hdr h;
	struct shmring_msg m;
	guint64 timeout;
	gint64 since = g_get_monotonic_time();
	int rc;

	GST_OBJECT_LOCK(s);
	timeout = s->timeout;
	GST_OBJECT_UNLOCK(s);
	for (;;) {
		if (timeout && (guint64)(g_get_monotonic_time() - since) * 1000 >= timeout) {
			post_timeout(s, timeout);
			since = g_get_monotonic_time();
		}
		if (!s->ring) {
			rc = src_open(s);
			if (rc == -ENOENT) {
				if (!src_wait(s, OPEN_RETRY_MS))
					return GST_FLOW_FLUSHING;
				continue;
			}
			if (rc < 0)
				return GST_FLOW_ERROR;
		}
		g_mutex_lock(&s->ring->lock);
		rc = shmring_acquire(s->ring->r, &m, 0);
		g_mutex_unlock(&s->ring->lock);
		if (rc == -EAGAIN) {
			/* the wake-up sets the pace; the slice only bounds the
			 * timeout message's lateness */
			if (!src_wait(s, timeout ? (int)MIN(timeout / GST_MSECOND + 1, 1000) : 1000))
				return GST_FLOW_FLUSHING;
			continue;
		}
		if (rc == -EPIPE) {
			GST_INFO_OBJECT(s, "end of stream");
			return GST_FLOW_EOS;
		}
		if (rc == -EOVERFLOW) {
			/* broadcast: this reader kept the sink waiting past the
			 * ring's stall time and was dropped, or was lapped; it
			 * goes on from the oldest frame (marked DISCONT) */
			GST_WARNING_OBJECT(s, "frames lost: this reader fell a ring behind");
			continue;
		}
		if (rc < 0) {
			GST_ELEMENT_ERROR(s, RESOURCE, READ,
				("Could not read a frame: %s.", shmring_strerror(rc)), ("%d", rc));
			return GST_FLOW_ERROR;
		}
		rc = gstwire_parse(m.data, m.len, &h);
		if (rc == 0 && !src_caps(s, (const char *)m.data + sizeof(h), h.caps_len))
			rc = -EBADMSG;
		if (rc < 0) {
			g_mutex_lock(&s->ring->lock);
			gstring_release(s->ring, &m);
			g_mutex_unlock(&s->ring->lock);
			if (rc == -EINVAL)
				continue;       /* a reservation the sink never filled */
			if (rc == -EBADMSG)
				return GST_FLOW_NOT_NEGOTIATED;
			GST_ELEMENT_ERROR(s, STREAM, DECODE,
				("A message in the ring is not a frame of shmringsink."),
				("%zu bytes", m.len));
			return GST_FLOW_ERROR;
		}
		*out = src_buffer(s, &h, &m);
		return GST_FLOW_OK;
	}
}

static GstCaps *src_get_caps(GstBaseSrc *bs, GstCaps *filter)
{
	GstShmringSrc *s = GST_SHMRING_SRC(bs);
	GstCaps *caps = NULL;

	GST_OBJECT_LOCK(s);
	if (s->caps)
		caps = gst_caps_ref(s->caps);
	GST_OBJECT_UNLOCK(s);
	if (!caps)      /* ANY until the first frame says */
		return GST_BASE_SRC_CLASS(gst_shmring_src_parent_class)->get_caps(bs, filter);
	if (filter) {
		GstCaps *c = gst_caps_intersect_full(filter, caps, GST_CAPS_INTERSECT_FIRST);

		gst_caps_unref(caps);
		caps = c;
	}
	return caps;
}

static gboolean src_unlock(GstBaseSrc *bs)
{
	GstShmringSrc *s = GST_SHMRING_SRC(bs);
	uint64_t one = 1;

	g_atomic_int_set(&s->flushing, 1);
	if (s->wake_fd >= 0 && write(s->wake_fd, &one, sizeof(one)) < 0)
		GST_WARNING_OBJECT(s, "eventfd write failed");
	return TRUE;
}

static gboolean src_unlock_stop(GstBaseSrc *bs)
{
	GstShmringSrc *s = GST_SHMRING_SRC(bs);
	uint64_t n;

	if (s->wake_fd >= 0 && read(s->wake_fd, &n, sizeof(n)) < 0)
		GST_LOG_OBJECT(s, "eventfd was not set");
	g_atomic_int_set(&s->flushing, 0);
	return TRUE;
}

static gboolean src_start(GstBaseSrc *bs)
{
	GstShmringSrc *s = GST_SHMRING_SRC(bs);

	s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->wake_fd < 0) {
		GST_ELEMENT_ERROR(s, RESOURCE, OPEN_READ, ("No eventfd."), GST_ERROR_SYSTEM);
		return FALSE;
	}
	g_atomic_int_set(&s->flushing, 0);
	s->have_seq = FALSE;
	return TRUE;
}

static gboolean src_stop(GstBaseSrc *bs)
{
	GstShmringSrc *s = GST_SHMRING_SRC(bs);

	gstring_unref(s->ring);         /* buffers still out keep the mapping */
	s->ring = NULL;
	s->ring_fd = -1;
	if (s->wake_fd >= 0)
		close(s->wake_fd);
	s->wake_fd = -1;
	GST_OBJECT_LOCK(s);
	g_clear_pointer(&s->caps_str, g_free);
	gst_caps_replace(&s->caps, NULL);
	GST_OBJECT_UNLOCK(s);
	return TRUE;
}

static void src_finalize(GObject *obj)
{
	GstShmringSrc *s = GST_SHMRING_SRC(obj);

	g_free(s->uri);
	g_free(s->caps_str);
	gst_caps_replace(&s->caps, NULL);
	gstring_unref(s->ring);
	G_OBJECT_CLASS(gst_shmring_src_parent_class)->finalize(obj);
}

static void gst_shmring_src_class_init(GstShmringSrcClass *klass)
{
	GObjectClass *oc = G_OBJECT_CLASS(klass);
	GstElementClass *ec = GST_ELEMENT_CLASS(klass);
	GstBaseSrcClass *bc = GST_BASE_SRC_CLASS(klass);
	GstPushSrcClass *pc = GST_PUSH_SRC_CLASS(klass);
	const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
		GST_PARAM_MUTABLE_READY;

	GST_DEBUG_CATEGORY_INIT(src_debug, "shmringsrc", 0, "shmring source");
	oc->set_property = src_set_property;
	oc->get_property = src_get_property;
	oc->finalize = src_finalize;

	g_object_class_install_property(oc, PROP_URI, g_param_spec_string("uri", "URI",
		"The ring a shmringsink writes: shm:NAME (or NAME), file:PATH, pipe:PATH or "
		"mq:NAME. Waited for while it does not exist", NULL, rw));
	g_object_class_install_property(oc, PROP_IS_LIVE, g_param_spec_boolean("is-live",
		"Is live", "Act as a live source (frames come at the producer's pace; with "
		"do-timestamp, stamped with the running time on arrival)", FALSE, rw));
	g_object_class_install_property(oc, PROP_TIMEOUT, g_param_spec_uint64("timeout",
		"Timeout", "After this many nanoseconds without a frame, post an element "
		"message GstShmringSrcTimeout (and again after each further period) and keep "
		"waiting; 0: never", 0, G_MAXUINT64, 0, rw));
	g_object_class_install_property(oc, PROP_CAPACITY, g_param_spec_uint64("capacity",
		"Capacity", "pipe: rings only (they store no geometry): the sink's capacity; "
		"0: 4 x max-msg", 0, G_MAXUINT64, 0, rw));
	g_object_class_install_property(oc, PROP_MAX_MSG, g_param_spec_uint("max-msg",
		"Largest message", "pipe: rings only: the sink's max-msg; 0: the library's "
		"default. Other rings tell their own", 0, G_MAXUINT32, 0, rw));

	gst_element_class_add_static_pad_template(ec, &src_template);
	gst_element_class_set_static_metadata(ec, "shmring source", "Source/Network",
		"Receives the buffers of a shmringsink in another process, in place in the "
		"ring's shared memory", "shmring");

	bc->get_caps = GST_DEBUG_FUNCPTR(src_get_caps);
	bc->unlock = GST_DEBUG_FUNCPTR(src_unlock);
	bc->unlock_stop = GST_DEBUG_FUNCPTR(src_unlock_stop);
	bc->start = GST_DEBUG_FUNCPTR(src_start);
	bc->stop = GST_DEBUG_FUNCPTR(src_stop);
	pc->create = GST_DEBUG_FUNCPTR(src_create);
}

static void gst_shmring_src_init(GstShmringSrc *s)
{
	s->ring_fd = -1;
	s->wake_fd = -1;
	gst_base_src_set_format(GST_BASE_SRC(s), GST_FORMAT_TIME);
}
