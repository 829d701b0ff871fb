/* SPDX-License-Identifier: MIT */
/*
 * shmringsink: every buffer becomes one ring message, a frame header
 * (wire.h: caps, timestamps, flags, sequence) followed by the bytes.
 * Written in place (shmring_reserve/commit); upstream elements that take
 * the sink's buffer pool render straight into the reservation (pool.c).
 */
#include <errno.h>
#include <string.h>
#include <sys/resource.h>

#include <gst/video/video.h>

#include "pool.h"
#include "shmringsink.h"
#include "wire.h"

GST_DEBUG_CATEGORY_STATIC(sink_debug);
#define GST_CAT_DEFAULT sink_debug

enum {
	PROP_0,
	PROP_URI,
	PROP_KIND,
	PROP_CAPACITY,
	PROP_MAX_MSG,
	PROP_TIMEOUT,
	PROP_UNLINK,
	PROP_WAIT_READERS,
};

#define DEFAULT_TIMEOUT (-1)
#define DEFAULT_FRAMES  4               /* capacity = frames x max-msg */
#define DEFAULT_MAX_MSG (4u << 20)      /* caps without a known frame size */
#define CAPS_ROOM       4096u           /* header and caps beside a frame */
#define READERS_POLL_US 2000            /* wait-readers: how often to look */

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE("sink",
	GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

G_DEFINE_TYPE(GstShmringSink, gst_shmring_sink, GST_TYPE_BASE_SINK);
GST_ELEMENT_REGISTER_DEFINE(shmringsink, "shmringsink", GST_RANK_NONE, GST_TYPE_SHMRING_SINK);

static void sink_set_property(GObject *obj, guint id, const GValue *v, GParamSpec *ps)
{
	GstShmringSink *s = GST_SHMRING_SINK(obj);

	GST_OBJECT_LOCK(s);
	switch (id) {
	case PROP_URI:
		g_free(s->uri);
		s->uri = g_value_dup_string(v);
		break;
	case PROP_KIND:
		s->kind = g_value_get_enum(v);
		break;
	case PROP_CAPACITY:
		s->capacity = g_value_get_uint64(v);
		break;
	case PROP_MAX_MSG:
		s->max_msg = g_value_get_uint(v);
		break;
	case PROP_TIMEOUT:
		s->timeout = g_value_get_int64(v);
		break;
	case PROP_UNLINK:
		s->unlink = g_value_get_boolean(v);
		break;
	case PROP_WAIT_READERS:
		s->wait_readers = g_value_get_uint(v);
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(obj, id, ps);
	}
	GST_OBJECT_UNLOCK(s);
}

static void sink_get_property(GObject *obj, guint id, GValue *v, GParamSpec *ps)
{
	GstShmringSink *s = GST_SHMRING_SINK(obj);

	GST_OBJECT_LOCK(s);
	switch (id) {
	case PROP_URI:
		g_value_set_string(v, s->uri);
		break;
	case PROP_KIND:
		g_value_set_enum(v, s->kind);
		break;
	case PROP_CAPACITY:
		g_value_set_uint64(v, s->capacity);
		break;
	case PROP_MAX_MSG:
		g_value_set_uint(v, s->max_msg);
		break;
	case PROP_TIMEOUT:
		g_value_set_int64(v, s->timeout);
		break;
	case PROP_UNLINK:
		g_value_set_boolean(v, s->unlink);
		break;
	case PROP_WAIT_READERS:
		g_value_set_uint(v, s->wait_readers);
		break;
	default:
		G_OBJECT_WARN_INVALID_PROPERTY_ID(obj, id, ps);
	}
	GST_OBJECT_UNLOCK(s);
}

/* A /proc/sys number, or dflt. */
static guint64 sysctl_u64(const char *path, guint64 dflt)
{
	gchar *txt = NULL;
	guint64 v = dflt;

	if (g_file_get_contents(path, &txt, NULL, NULL))
		v = g_ascii_strtoull(txt, NULL, 10);
	g_free(txt);
	return v ? v : dflt;
}

#define MQ_MSGSIZE_MAX "/proc/sys/fs/mqueue/msgsize_max"

/* mq: queues carry messages up to a system limit (8 KiB by default): the
 * default room beside a frame shrinks to what its header needs when that
 * makes the frame fit. */
static guint64 mq_max_msg(guint64 max, gsize frame, guint32 caps_len)
{
	guint64 lim = sysctl_u64(MQ_MSGSIZE_MAX, 8192);
	guint64 tight = (guint64)gstwire_hdr_len(caps_len) + frame;

	return max > lim && tight <= lim ? lim : max;
}

/* The open of an mq: ring failed: say which limits a frame runs into. */
static void mq_open_error(GstShmringSink *s, const gchar *uri, guint64 max, int rc)
{
	struct rlimit rl = { 0 };

	(void)getrlimit(RLIMIT_MSGQUEUE, &rl);
	GST_ELEMENT_ERROR(s, RESOURCE, OPEN_WRITE,
		("Could not make message queue %s for messages of %" G_GUINT64_FORMAT " bytes "
		 "(a frame and its header): %s. The system allows %" G_GUINT64_FORMAT " bytes a "
		 "message (/proc/sys/fs/mqueue/msgsize_max; privileged processes up to 16 MiB) and "
		 "%llu bytes of queues per user (RLIMIT_MSGQUEUE, ulimit -q). Use shm: or pipe: "
		 "for larger frames, or raise those limits.", uri, max, shmring_strerror(rc),
		 sysctl_u64(MQ_MSGSIZE_MAX, 8192), (unsigned long long)rl.rlim_cur),
		("shmring_open: %d", rc));
}

/* Open (create, or take over after a dead producer) the ring, sized for
 * frames of `frame` bytes (0: unknown) with caps of caps_len bytes.
 * FALSE with an error posted. */
static gboolean sink_open(GstShmringSink *s, gsize frame, guint32 caps_len)
{
	struct shmring_opts o = { 0 };
	struct shmring_stats st;
	struct shmring *r = NULL;
	gchar *uri;
	guint64 max;
	int rc, tries;

	GST_OBJECT_LOCK(s);
	uri = g_strdup(s->uri);
	o.kind = (enum shmring_kind)s->kind;
	o.flags = SHMRING_PREFAULT;     /* frames are large: no page fault per frame */
	max = s->max_msg ? s->max_msg : frame ? frame + CAPS_ROOM : DEFAULT_MAX_MSG;
	if (!s->max_msg && frame && uri && g_str_has_prefix(uri, "mq:"))
		max = mq_max_msg(max, frame, caps_len);
	o.capacity = s->capacity ? s->capacity : max * DEFAULT_FRAMES;
	GST_OBJECT_UNLOCK(s);
	if (!uri) {
		GST_ELEMENT_ERROR(s, RESOURCE, SETTINGS, ("No uri set."), (NULL));
		return FALSE;
	}
	if (max > UINT32_MAX) {
		GST_ELEMENT_ERROR(s, RESOURCE, SETTINGS,
			("A frame of %" G_GSIZE_FORMAT " bytes is too large for a ring.", frame), (NULL));
		g_free(uri);
		return FALSE;
	}
	o.max_msg = (uint32_t)max;
	/* a ring left shut down by an earlier stream is replaced, once */
	for (tries = 0; tries < 2; tries++) {
		rc = shmring_open(uri, SHMRING_CREATE | SHMRING_PRODUCER, &o, &r);
		if (rc < 0)
			break;
		if (shmring_stats(r, &st) == 0 && st.shut_down && tries == 0) {
			GST_INFO_OBJECT(s, "%s was shut down: making a new one", uri);
			shmring_close(r);
			r = NULL;
			if (shmring_unlink(uri) < 0)
				GST_DEBUG_OBJECT(s, "%s already removed", uri);
			continue;
		}
		break;
	}
	if (rc < 0) {
		if (g_str_has_prefix(uri, "mq:") && rc != -EBUSY && rc != -EACCES)
			mq_open_error(s, uri, max, rc);
		else
			GST_ELEMENT_ERROR(s, RESOURCE, OPEN_WRITE,
				("Could not open ring %s as producer: %s.", uri,
				 shmring_strerror(rc)), ("shmring_open: %d", rc));
		g_free(uri);
		return FALSE;
	}
	GST_OBJECT_LOCK(s);             /* the pool reads it from upstream's thread */
	s->ring = gstring_new(r);
	GST_OBJECT_UNLOCK(s);
	GST_INFO_OBJECT(s, "%s: max message %u, zero-copy %d", uri, s->ring->max_msg,
		s->ring->zerocopy);
	g_free(uri);
	return TRUE;
}

static gboolean sink_set_caps(GstBaseSink *bs, GstCaps *caps)
{
	GstShmringSink *s = GST_SHMRING_SINK(bs);
	GstVideoInfo vi;
	gsize frame = 0;
	gchar *str = gst_caps_to_string(caps);
	size_t len = strlen(str);

	if (len > GSTWIRE_CAPS_MAX) {
		GST_ELEMENT_ERROR(s, STREAM, FORMAT,
			("Caps of %zu bytes: at most %u travel with a frame.", len, GSTWIRE_CAPS_MAX),
			(NULL));
		g_free(str);
		return FALSE;
	}
	if (gst_video_info_from_caps(&vi, caps))
		frame = GST_VIDEO_INFO_SIZE(&vi);
	if (!s->ring && !sink_open(s, frame, (guint32)len)) {
		g_free(str);
		return FALSE;
	}
	if (frame && gstwire_hdr_len((uint32_t)len) + frame > s->ring->max_msg) {
		GST_ELEMENT_ERROR(s, RESOURCE, SETTINGS,
			("Frames of %" G_GSIZE_FORMAT " bytes do not fit the ring (largest message "
			 "%u bytes).", frame, s->ring->max_msg),
			("remove the ring or give another uri; max-msg sets the size of a new ring"));
		g_free(str);
		return FALSE;
	}
	GST_DEBUG_OBJECT(s, "caps %s", str);
	GST_OBJECT_LOCK(s);             /* the pool reads caps_len */
	g_free(s->caps_str);
	s->caps_str = str;
	s->caps_len = (guint32)len;
	GST_OBJECT_UNLOCK(s);
	return TRUE;
}

static void wire_fill(GstShmringSink *s, GstBuffer *buf, void *dst, gsize size)
{
	struct gstwire_hdr h = {
		.magic = GSTWIRE_MAGIC,
		.version = GSTWIRE_VERSION,
		.hdr_len = gstwire_hdr_len(s->caps_len),
		.caps_len = s->caps_len,
		.flags = GST_BUFFER_FLAGS(buf) & GSTWIRE_FLAGS,
		.seq = s->seq++,
		.pts = GST_BUFFER_PTS(buf),
		.dts = GST_BUFFER_DTS(buf),
		.duration = GST_BUFFER_DURATION(buf),
		.offset = GST_BUFFER_OFFSET(buf),
		.offset_end = GST_BUFFER_OFFSET_END(buf),
		.payload_len = size,
	};

	memcpy(dst, &h, sizeof(h));
	memcpy((char *)dst + sizeof(h), s->caps_str, s->caps_len);
}

/* Wait (lock held) until no reservation is open, in slices that see
 * unlock(); FALSE when flushing or after `deadline` (monotonic, -1 never). */
static gboolean wait_no_reservation(GstShmringSink *s, gint64 deadline)
{
	while (s->ring->res_open) {
		gint64 until = g_get_monotonic_time() + GSTRING_SLICE_NS / 1000;

		if (g_atomic_int_get(&s->flushing))
			return FALSE;
		if (deadline >= 0 && until > deadline)
			until = deadline;
		if (!g_cond_wait_until(&s->ring->cond, &s->ring->lock, until) &&
		    deadline >= 0 && g_get_monotonic_time() >= deadline)
			return FALSE;
	}
	return TRUE;
}

int gst_shmring_sink_reserve(GstShmringSink *s, size_t len, struct shmring_msg *m,
			     gint64 deadline)
{
	int rc;

	/* [lock held] */
	for (;;) {
		gint64 left = GSTRING_SLICE_NS;

		if (deadline >= 0) {
			left = MIN(left, (deadline - g_get_monotonic_time()) * 1000);
			if (left < 0)
				left = 0;
		}
		rc = shmring_reserve(s->ring->r, len, m, left);
		if (rc != -ETIMEDOUT && rc != -EAGAIN)
			return rc;
		if (left == 0 || (deadline >= 0 && g_get_monotonic_time() >= deadline))
			return -ETIMEDOUT;
		if (g_atomic_int_get(&s->flushing))
			return -EINTR;
	}
}

gint64 gst_shmring_sink_deadline(GstShmringSink *s)
{
	gint64 t;

	GST_OBJECT_LOCK(s);
	t = s->timeout;
	GST_OBJECT_UNLOCK(s);
	return t < 0 ? -1 : g_get_monotonic_time() + t / 1000;
}

/* The buffer's bytes are the open reservation's (upstream rendered into
 * the pool's memory): the payload moved to its place if upstream trimmed
 * the front, TRUE.  Lock held. */
static gboolean render_in_place(GstShmringSink *s, GstBuffer *buf, gsize *size)
{
	struct gstring *g = s->ring;
	GstMemory *mem;
	gsize off, msize;

	if (!g->res_open || gst_buffer_n_memory(buf) != 1)
		return FALSE;
	mem = gst_buffer_peek_memory(buf, 0);
	if (mem != g->res_mem && mem->parent != g->res_mem)
		return FALSE;
	if (g->res_hdr_len != gstwire_hdr_len(s->caps_len))
		return FALSE;           /* caps changed since: copied below */
	msize = gst_memory_get_sizes(mem, &off, NULL);
	if (mem->parent == g->res_mem)
		off += mem->offset;
	else
		off = mem->offset;
	if (off)
		memmove((char *)g->res.data + g->res_hdr_len,
			(char *)g->res.data + g->res_hdr_len + off, msize);
	*size = msize;
	return TRUE;
}

/* wait-readers: before the first frame, until that many readers have the
 * ring open.  FALSE when flushing. */
static gboolean wait_for_readers(GstShmringSink *s)
{
	struct gstring *g = s->ring;
	struct shmring_stats st;
	guint want;
	gboolean mq;
	int rc;

	if (s->readers_came)
		return TRUE;
	GST_OBJECT_LOCK(s);
	want = s->wait_readers;
	mq = s->uri && g_str_has_prefix(s->uri, "mq:");
	GST_OBJECT_UNLOCK(s);
	if (want && mq) {
		/* a queue does not tell its producer who else has it open */
		GST_WARNING_OBJECT(s, "wait-readers does nothing on mq: rings");
		want = 0;
	}
	while (want) {
		g_mutex_lock(&g->lock);
		rc = shmring_stats(g->r, &st);
		g_mutex_unlock(&g->lock);
		if (rc < 0 || st.consumers >= want) {
			GST_INFO_OBJECT(s, "%u readers", rc < 0 ? 0 : st.consumers);
			break;
		}
		if (g_atomic_int_get(&s->flushing))
			return FALSE;
		g_usleep(READERS_POLL_US);
	}
	s->readers_came = TRUE;
	return TRUE;
}

static GstFlowReturn sink_render(GstBaseSink *bs, GstBuffer *buf)
{
	GstShmringSink *s = GST_SHMRING_SINK(bs);
	struct gstring *g = s->ring;
	gsize size = gst_buffer_get_size(buf);
	size_t need;
	GstBuffer *copy = NULL;
	gint64 deadline = gst_shmring_sink_deadline(s);
	int rc;

	if (!g || !s->caps_str) {
		GST_ELEMENT_ERROR(s, CORE, NEGOTIATION, ("Data before caps."), (NULL));
		return GST_FLOW_NOT_NEGOTIATED;
	}
	need = gstwire_hdr_len(s->caps_len) + size;
	if (need > g->max_msg) {
		GST_ELEMENT_ERROR(s, RESOURCE, WRITE,
			("A frame of %" G_GSIZE_FORMAT " bytes does not fit the ring (largest "
			 "message %u bytes with its header).", size, g->max_msg), (NULL));
		return GST_FLOW_ERROR;
	}
	if (!wait_for_readers(s))
		return GST_FLOW_FLUSHING;
	g_mutex_lock(&g->lock);
	if (render_in_place(s, buf, &size)) {
		GST_LOG_OBJECT(s, "frame %" G_GUINT64_FORMAT " rendered in place", s->seq);
		wire_fill(s, buf, g->res.data, size);
		g->res.len = g->res_hdr_len + size;
		rc = shmring_commit(g->r, &g->res);
		g->res_open = FALSE;
		g->res_mem = NULL;
		g_cond_broadcast(&g->cond);
		goto done;
	}
	if (g->res_open) {
		/* a pool buffer is out, not this one: its bytes must stay where
		 * they are, and SPSC rings have one reservation at a time */
		gboolean mine = FALSE;
		guint i;

		for (i = 0; i < gst_buffer_n_memory(buf); i++) {
			GstMemory *m = gst_buffer_peek_memory(buf, i);

			mine |= m == g->res_mem || m->parent == g->res_mem;
		}
		if (mine) {
			/* the reservation's bytes in a buffer of several pieces:
			 * copy them out, close the reservation empty */
			copy = gst_buffer_copy_deep(buf);
			gstring_discard(g);
			buf = copy;
		} else if (!wait_no_reservation(s, deadline)) {
			rc = g_atomic_int_get(&s->flushing) ? -EINTR : -ETIMEDOUT;
			goto done;
		}
	}
	{
		struct shmring_msg m;

		rc = gst_shmring_sink_reserve(s, need, &m, deadline);
		if (rc == 0) {
			wire_fill(s, buf, m.data, size);
			gst_buffer_extract(buf, 0, (char *)m.data + gstwire_hdr_len(s->caps_len), size);
			rc = shmring_commit(g->r, &m);
		}
	}
done:
	g_mutex_unlock(&g->lock);
	if (copy)
		gst_buffer_unref(copy);
	switch (rc) {
	case 0:
		return GST_FLOW_OK;
	case -EINTR:
		return GST_FLOW_FLUSHING;
	case -ETIMEDOUT:
		GST_WARNING_OBJECT(s, "no room in the ring within timeout: frame dropped");
		return GST_FLOW_OK;
	case -EPIPE:
		GST_ELEMENT_ERROR(s, RESOURCE, WRITE, ("The ring was shut down."), (NULL));
		return GST_FLOW_ERROR;
	default:
		GST_ELEMENT_ERROR(s, RESOURCE, WRITE,
			("Could not write a frame: %s.", shmring_strerror(rc)), ("%d", rc));
		return GST_FLOW_ERROR;
	}
}

static gboolean sink_propose_allocation(GstBaseSink *bs, GstQuery *query)
{
	GstShmringSink *s = GST_SHMRING_SINK(bs);
	GstCaps *caps;
	gboolean need_pool;
	GstVideoInfo vi;
	GstStructure *config;
	GstBufferPool *pool;

	gst_query_parse_allocation(query, &caps, &need_pool);
	/* ring memory only where it is the ring's own (shm:, file:) and for
	 * frames of a known size that fit */
	if (!caps || !s->ring || !s->ring->zerocopy || !gst_video_info_from_caps(&vi, caps))
		return TRUE;
	if (s->caps_str && gstwire_hdr_len(s->caps_len) + vi.size > s->ring->max_msg)
		return TRUE;
	pool = gst_shmring_pool_new(s);
	config = gst_buffer_pool_get_config(pool);
	gst_buffer_pool_config_set_params(config, caps, (guint)vi.size, 0, 0);
	if (!gst_buffer_pool_set_config(pool, config)) {
		gst_object_unref(pool);
		return TRUE;
	}
	gst_query_add_allocation_pool(query, pool, (guint)vi.size, 0, 0);
	gst_object_unref(pool);
	return TRUE;
}

static gboolean sink_unlock(GstBaseSink *bs)
{
	GstShmringSink *s = GST_SHMRING_SINK(bs);

	g_atomic_int_set(&s->flushing, 1);
	return TRUE;
}

static gboolean sink_unlock_stop(GstBaseSink *bs)
{
	GstShmringSink *s = GST_SHMRING_SINK(bs);

	g_atomic_int_set(&s->flushing, 0);
	return TRUE;
}

/* End of stream for the readers, and the name freed for the next one. */
static void sink_shutdown(GstShmringSink *s)
{
	gboolean unlink;
	gchar *uri;

	if (!s->ring || s->shut_down)
		return;
	g_mutex_lock(&s->ring->lock);
	if (shmring_shutdown(s->ring->r) < 0)
		GST_DEBUG_OBJECT(s, "already shut down");
	g_mutex_unlock(&s->ring->lock);
	s->shut_down = TRUE;
	GST_OBJECT_LOCK(s);
	unlink = s->unlink;
	uri = g_strdup(s->uri);
	GST_OBJECT_UNLOCK(s);
	if (unlink && uri)
		if (shmring_unlink(uri) < 0)
			GST_DEBUG_OBJECT(s, "%s already removed", uri);
	g_free(uri);
}

static gboolean sink_event(GstBaseSink *bs, GstEvent *ev)
{
	GstShmringSink *s = GST_SHMRING_SINK(bs);

	if (GST_EVENT_TYPE(ev) == GST_EVENT_EOS)
		sink_shutdown(s);
	return GST_BASE_SINK_CLASS(gst_shmring_sink_parent_class)->event(bs, ev);
}

static gboolean sink_start(GstBaseSink *bs)
{
	GstShmringSink *s = GST_SHMRING_SINK(bs);

	s->seq = 0;
	s->shut_down = FALSE;
	s->readers_came = FALSE;
	g_atomic_int_set(&s->flushing, 0);
	return TRUE;
}

static gboolean sink_stop(GstBaseSink *bs)
{
	GstShmringSink *s = GST_SHMRING_SINK(bs);

	struct gstring *g;

	sink_shutdown(s);
	GST_OBJECT_LOCK(s);
	g = s->ring;
	s->ring = NULL;
	GST_OBJECT_UNLOCK(s);
	gstring_unref(g);               /* buffers still out keep the mapping */
	g_clear_pointer(&s->caps_str, g_free);
	return TRUE;
}

static void sink_finalize(GObject *obj)
{
	GstShmringSink *s = GST_SHMRING_SINK(obj);

	g_free(s->uri);
	g_free(s->caps_str);
	gstring_unref(s->ring);
	G_OBJECT_CLASS(gst_shmring_sink_parent_class)->finalize(obj);
}

static void gst_shmring_sink_class_init(GstShmringSinkClass *klass)
{
	GObjectClass *oc = G_OBJECT_CLASS(klass);
	GstElementClass *ec = GST_ELEMENT_CLASS(klass);
	GstBaseSinkClass *bc = GST_BASE_SINK_CLASS(klass);
	const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
		GST_PARAM_MUTABLE_READY;

	GST_DEBUG_CATEGORY_INIT(sink_debug, "shmringsink", 0, "shmring sink");
	oc->set_property = sink_set_property;
	oc->get_property = sink_get_property;
	oc->finalize = sink_finalize;

	g_object_class_install_property(oc, PROP_URI, g_param_spec_string("uri", "URI",
		"The ring: shm:NAME (or NAME), file:PATH, pipe:PATH or mq:NAME. Created if "
		"missing; a ring left by a producer that died is taken over", NULL, rw));
	g_object_class_install_property(oc, PROP_KIND, g_param_spec_enum("kind", "Kind",
		"Kind of ring to create (an existing ring keeps its own)",
		GST_TYPE_SHMRING_KIND, SHMRING_SPSC, rw));
	g_object_class_install_property(oc, PROP_CAPACITY, g_param_spec_uint64("capacity",
		"Capacity", "Data bytes of a ring created here; 0: room for 4 of the largest "
		"messages", 0, G_MAXUINT64, 0, rw));
	g_object_class_install_property(oc, PROP_MAX_MSG, g_param_spec_uint("max-msg",
		"Largest message", "Largest message, in bytes, of a ring created here: a frame "
		"plus its header (caps, timestamps); 0: the first caps' frame size plus 4096 "
		"(4 MiB when the caps give no frame size)", 0, G_MAXUINT32, 0, rw));
	g_object_class_install_property(oc, PROP_TIMEOUT, g_param_spec_int64("timeout",
		"Timeout", "How long a frame waits for room in the ring, in nanoseconds, "
		"before it is dropped; -1: wait as long as it takes (the reader paces the "
		"pipeline)", -1, G_MAXINT64, DEFAULT_TIMEOUT, rw));
	g_object_class_install_property(oc, PROP_UNLINK, g_param_spec_boolean("unlink",
		"Unlink", "At the end of the stream (EOS, or the element stopped), remove the "
		"ring's name after shutting it down, so that the next sink makes a fresh one",
		TRUE, rw));
	g_object_class_install_property(oc, PROP_WAIT_READERS, g_param_spec_uint(
		"wait-readers", "Wait for readers", "Before the first frame, wait until this many "
		"readers (shmringsrc) have the ring open (not on mq: rings): with kind=bcast, "
		"each of them then gets every frame; 0: do not wait", 0, 64, 0, rw));

	gst_element_class_add_static_pad_template(ec, &sink_template);
	gst_element_class_set_static_metadata(ec, "shmring sink", "Sink/Network",
		"Sends buffers, their caps and timestamps to other processes through a "
		"shmring ring, written in place", "shmring");

	bc->set_caps = GST_DEBUG_FUNCPTR(sink_set_caps);
	bc->render = GST_DEBUG_FUNCPTR(sink_render);
	bc->propose_allocation = GST_DEBUG_FUNCPTR(sink_propose_allocation);
	bc->unlock = GST_DEBUG_FUNCPTR(sink_unlock);
	bc->unlock_stop = GST_DEBUG_FUNCPTR(sink_unlock_stop);
	bc->event = GST_DEBUG_FUNCPTR(sink_event);
	bc->start = GST_DEBUG_FUNCPTR(sink_start);
	bc->stop = GST_DEBUG_FUNCPTR(sink_stop);
	gst_type_mark_as_plugin_api(GST_TYPE_SHMRING_KIND, 0);
}

static void gst_shmring_sink_init(GstShmringSink *s)
{
	s->kind = SHMRING_SPSC;
	s->timeout = DEFAULT_TIMEOUT;
	s->unlink = TRUE;
	gst_base_sink_set_sync(GST_BASE_SINK(s), FALSE);
}
