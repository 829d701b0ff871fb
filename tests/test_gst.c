/* SPDX-License-Identifier: MIT */
/*
 * The GStreamer elements (gst/), loaded from the build tree as GStreamer
 * loads plugins (dlopen), driven with gst-check's GstHarness: the sink in
 * one process, the source in another.  Each frame's bytes derive from a key
 * carried in its offset field, so a torn or mixed frame fails its check.
 * SHMRING_GST_FRAMES sets the frames of the 1080p run (default 60; the
 * issue's full run is 1000).
 */
#include <criterion/criterion.h>
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/common.h"

TestSuite(gst, .fini = t_cleanup);

#define FRAME_NS (GST_SECOND / 60)

/* gst_init, and the plugin of this build loaded from its file */
static void gst_up(void)
{
	const char *b = getenv("SHMRING_TEST_BUILD");
	char path[4096];
	GstPlugin *p;
	GError *err = NULL;

	gst_init(NULL, NULL);
	snprintf(path, sizeof(path), "%s/gst/libgstshmring.so", b ? b : "build");
	p = gst_plugin_load_file(path, &err);
	cr_assert(p, "loading %s: %s", path, err ? err->message : "?");
	gst_object_unref(p);
}

static char *caps_of(int w, int h)
{
	return g_strdup_printf("video/x-raw,format=RGBA,width=%d,height=%d,framerate=60/1,"
		"pixel-aspect-ratio=1/1,interlace-mode=progressive", w, h);
}

struct feed {
	const char *uri;
	int w, h;
	unsigned frames;                /* 0: until killed */
	uint64_t key0;                  /* keys key0, key0+1, ... */
	guint max_msg;                  /* the sink's max-msg (0: its default) */
	gboolean plain;                 /* never the sink's pool */
	const char *kind;               /* the sink's kind (NULL: its default) */
	guint readers;                  /* the sink's wait-readers */
};

/* The sink's process: frames, then EOS.  Every other frame from the
 * sink's pool (rendered in place), the others copied. */
static int feed_run(void *arg)
{
	const struct feed *f = arg;
	gsize size = (gsize)f->w * f->h * 4;
	char *caps = caps_of(f->w, f->h);
	GstHarness *h;
	unsigned i;

	gst_up();
	h = gst_harness_new("shmringsink");
	g_object_set(h->element, "uri", f->uri, "max-msg", f->max_msg,
		     "wait-readers", f->readers, NULL);
	if (f->kind)
		gst_util_set_object_arg(G_OBJECT(h->element), "kind", f->kind);
	gst_harness_set_src_caps_str(h, caps);
	for (i = 0; f->frames == 0 || i < f->frames; i++) {
		GstBuffer *b = (i % 2 || f->plain) ? gst_buffer_new_allocate(NULL, size, NULL)
						   : gst_harness_create_buffer(h, size);
		GstMapInfo m;

		if (!gst_buffer_map(b, &m, GST_MAP_WRITE))
			return 3;
		t_fill(m.data, m.size, f->key0 + i);
		gst_buffer_unmap(b, &m);
		GST_BUFFER_PTS(b) = i * FRAME_NS;
		GST_BUFFER_DURATION(b) = FRAME_NS;
		GST_BUFFER_OFFSET(b) = f->key0 + i;
		if (gst_harness_push(h, b) != GST_FLOW_OK)
			return 4;
	}
	if (!gst_harness_push_event(h, gst_event_new_eos()))
		return 5;
	gst_harness_teardown(h);
	g_free(caps);
	return 0;
}

/* The frame is whole and is frame `i` of the feed's keys (pts from i). */
static void check_frame(GstBuffer *b, gsize size, uint64_t key, guint64 pts)
{
	GstMapInfo m;

	cr_assert_eq(GST_BUFFER_OFFSET(b), key);
	cr_assert_eq(GST_BUFFER_PTS(b), pts);
	cr_assert_eq(GST_BUFFER_DURATION(b), FRAME_NS);
	cr_assert(gst_buffer_map(b, &m, GST_MAP_READ));
	cr_assert_eq(m.size, size);
	cr_assert(t_check(m.data, m.size, key), "frame %llu torn", (unsigned long long)key);
	gst_buffer_unmap(b, &m);
}

/* Pull events until EOS (the stream-start, caps and segment come first). */
static void expect_eos(GstHarness *h)
{
	GstEvent *ev;

	while ((ev = gst_harness_pull_event(h))) {
		GstEventType t = GST_EVENT_TYPE(ev);

		gst_event_unref(ev);
		if (t == GST_EVENT_EOS)
			return;
	}
	cr_assert_fail("no EOS");
}

static GstHarness *src_harness(const char *uri, guint max_msg)
{
	GstHarness *h = gst_harness_new("shmringsrc");

	g_object_set(h->element, "uri", uri, NULL);
	if (max_msg)
		g_object_set(h->element, "max-msg", max_msg, NULL);
	gst_harness_play(h);
	return h;
}

static void stream(const char *uri, int w, int hgt, unsigned frames, guint max_msg)
{
	struct feed f = { .uri = uri, .w = w, .h = hgt, .frames = frames, .key0 = 1000,
			  .max_msg = max_msg };
	gsize size = (gsize)w * hgt * 4;
	pid_t pid = t_spawn(feed_run, &f);      /* before any thread here */
	GstHarness *h;
	GstCaps *caps, *want;
	char *cs = caps_of(w, hgt);
	unsigned i;

	gst_up();
	h = src_harness(uri, max_msg);
	for (i = 0; i < frames; i++) {
		GstBuffer *b = gst_harness_pull(h);

		cr_assert(b, "frame %u never came", i);
		check_frame(b, size, f.key0 + i, i * FRAME_NS);
		gst_buffer_unref(b);
	}
	expect_eos(h);
	caps = gst_pad_get_current_caps(h->sinkpad);
	want = gst_caps_from_string(cs);
	cr_assert(caps && gst_caps_is_equal(caps, want), "caps %s", caps ? gst_caps_to_string(caps) : "none");
	gst_caps_unref(caps);
	gst_caps_unref(want);
	cr_assert_eq(t_wait(pid), 0);
	gst_harness_teardown(h);
	g_free(cs);
}

Test(gst, frames_1080p_two_processes, .timeout = 120)
{
	const char *n = getenv("SHMRING_GST_FRAMES");

	stream(t_ring_uri("gst"), 1920, 1080, n ? (unsigned)atoi(n) : 60, 0);
}

Test(gst, pipe_fallback_copies, .timeout = 60)
{
	char path[256];

	snprintf(path, sizeof(path), "pipe:/tmp/%s", t_name("gstpipe"));
	t_remember(path);
	stream(path, 320, 240, 30, 320 * 240 * 4 + 4096);
}

/* SIGKILL the sink's process mid-stream, start another: the source goes
 * on with whole frames only, marks the jump DISCONT, and ends at its EOS. */
Test(gst, sink_killed_and_restarted, .timeout = 120)
{
	const char *uri = t_ring_uri("gstkill");
	struct feed a = { .uri = uri, .w = 640, .h = 480, .frames = 0, .key0 = 1 << 20 };
	struct feed b = { .uri = uri, .w = 640, .h = 480, .frames = 20, .key0 = 2 << 20 };
	gsize size = 640 * 480 * 4;
	pid_t pa = t_spawn(feed_run, &a), pb;
	GstHarness *h;
	GstBuffer *buf;
	unsigned i, from_b = 0;
	uint64_t next;

	gst_up();
	h = src_harness(uri, 0);
	for (i = 0; i < 30; i++) {
		buf = gst_harness_pull(h);
		cr_assert(buf);
		check_frame(buf, size, a.key0 + i, i * FRAME_NS);
		gst_buffer_unref(buf);
	}
	cr_assert_eq(kill(pa, SIGKILL), 0);
	cr_assert_eq(t_wait(pa), 128 + SIGKILL);
	pb = t_spawn(feed_run, &b);
	/* what the first one committed before it died, then the second's */
	next = a.key0 + i;
	while (from_b < b.frames) {
		buf = gst_harness_pull(h);
		cr_assert(buf, "the stream did not go on");
		if (GST_BUFFER_OFFSET(buf) < b.key0) {
			cr_assert_eq(GST_BUFFER_OFFSET(buf), next);
			check_frame(buf, size, next, (next - a.key0) * FRAME_NS);
			next++;
		} else {
			if (from_b == 0)
				cr_assert(GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_DISCONT));
			check_frame(buf, size, b.key0 + from_b, from_b * FRAME_NS);
			from_b++;
		}
		gst_buffer_unref(buf);
	}
	expect_eos(h);
	cr_assert_eq(t_wait(pb), 0);
	gst_harness_teardown(h);
}

/* A bus on the harnessed element: its error messages land there. */
static GstBus *bus_on(GstHarness *h)
{
	GstBus *bus = gst_bus_new();

	gst_element_set_bus(h->element, bus);
	return bus;
}

static void expect_error(GstBus *bus, const char *part)
{
	GstMessage *msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
	GError *err = NULL;

	cr_assert(msg, "no error on the bus");
	gst_message_parse_error(msg, &err, NULL);
	cr_assert(strstr(err->message, part), "error: %s", err->message);
	g_error_free(err);
	gst_message_unref(msg);
}

Test(gst, frame_too_big_is_an_error, .timeout = 60)
{
	const char *uri = t_ring_uri("gstbig");
	GstHarness *h;
	GstBus *bus;

	gst_up();
	h = gst_harness_new("shmringsink");
	bus = bus_on(h);
	g_object_set(h->element, "uri", uri, "max-msg", 65536, NULL);
	/* no frame size in the caps: the first buffer finds out */
	gst_harness_set_src_caps_str(h, "application/x-test");
	cr_assert_eq(gst_harness_push(h, gst_buffer_new_allocate(NULL, 60000, NULL)), GST_FLOW_OK);
	cr_assert_eq(gst_harness_push(h, gst_buffer_new_allocate(NULL, 70000, NULL)), GST_FLOW_ERROR);
	expect_error(bus, "does not fit");
	gst_harness_teardown(h);
	gst_object_unref(bus);
}

Test(gst, ring_of_wrong_geometry_is_an_error, .timeout = 60)
{
	const char *uri = t_ring_uri("gstgeo");
	struct shmring *r = t_create(uri, 1 << 20, 65536);
	GstHarness *h;
	GstBus *bus;
	char *caps = caps_of(640, 480);

	gst_up();
	h = gst_harness_new("shmringsink");
	bus = bus_on(h);
	g_object_set(h->element, "uri", uri, NULL);
	gst_harness_set_src_caps_str(h, caps);
	cr_assert_neq(gst_harness_push(h, gst_buffer_new_allocate(NULL, 640 * 480 * 4, NULL)),
		      GST_FLOW_OK);
	expect_error(bus, "do not fit");
	gst_harness_teardown(h);
	gst_object_unref(bus);
	shmring_close(r);
	g_free(caps);
}

/* The caps change between frames: the source sets the new caps before
 * the first frame that has them.  One process, two handles. */
Test(gst, caps_change_renegotiates, .timeout = 60)
{
	const char *uri = t_ring_uri("gstcaps");
	int dims[2][2] = { { 320, 240 }, { 640, 480 } };
	GstHarness *tx, *rx;
	GstBuffer *b;
	int k;

	gst_up();
	tx = gst_harness_new("shmringsink");
	g_object_set(tx->element, "uri", uri, "max-msg", 640 * 480 * 4 + 4096, NULL);
	rx = src_harness(uri, 0);
	for (k = 0; k < 2; k++) {
		char *cs = caps_of(dims[k][0], dims[k][1]);
		gsize size = (gsize)dims[k][0] * dims[k][1] * 4;
		GstCaps *caps, *want = gst_caps_from_string(cs);

		gst_harness_set_src_caps_str(tx, cs);
		b = gst_buffer_new_allocate(NULL, size, NULL);
		GST_BUFFER_OFFSET(b) = (guint64)k;
		cr_assert_eq(gst_harness_push(tx, b), GST_FLOW_OK);
		b = gst_harness_pull(rx);
		cr_assert(b);
		cr_assert_eq(gst_buffer_get_size(b), size);
		caps = gst_pad_get_current_caps(rx->sinkpad);
		cr_assert(gst_caps_is_equal(caps, want), "caps %s", gst_caps_to_string(caps));
		gst_caps_unref(caps);
		gst_caps_unref(want);
		gst_buffer_unref(b);
		g_free(cs);
	}
	cr_assert(gst_harness_push_event(tx, gst_event_new_eos()));
	expect_eos(rx);
	gst_harness_teardown(tx);
	gst_harness_teardown(rx);
}

/* No ring yet: the source waits, and says so on the bus every timeout. */
Test(gst, src_timeout_posts_a_message, .timeout = 60)
{
	const char *uri = t_ring_uri("gstwait");
	GstHarness *h;
	GstBus *bus;
	GstMessage *msg;
	int n;

	gst_up();
	h = gst_harness_new("shmringsrc");
	bus = bus_on(h);
	g_object_set(h->element, "uri", uri, "timeout", (guint64)(50 * GST_MSECOND), NULL);
	gst_harness_play(h);
	for (n = 0; n < 2; n++) {
		msg = gst_bus_timed_pop_filtered(bus, 10 * GST_SECOND, GST_MESSAGE_ELEMENT);
		cr_assert(msg, "no timeout message");
		cr_assert(gst_message_has_name(msg, "GstShmringSrcTimeout"));
		gst_message_unref(msg);
	}
	gst_harness_teardown(h);
	gst_object_unref(bus);
}

/* ---- broadcast: every reader gets every frame -------------------------- */

struct reader {
	const char *uri;
	int w, h;
	unsigned frames;
	uint64_t key0;
	unsigned stop_after;            /* >0: stop pulling after so many, raise `stopped` */
	_Atomic int *stopped;           /* shared with the test */
};

/* A reader's process (no Criterion asserts here): every frame whole and in
 * order with its timestamps, the caps, then EOS.  0, or which check failed. */
static int reader_run(void *arg)
{
	const struct reader *r = arg;
	gsize size = (gsize)r->w * r->h * 4;
	char *cs = caps_of(r->w, r->h);
	GstCaps *want = NULL, *caps;
	GstHarness *h;
	GstEvent *ev;
	unsigned i;
	int rc = 0;

	gst_up();
	h = src_harness(r->uri, 0);
	for (i = 0; i < r->frames && rc == 0; i++) {
		GstBuffer *b = gst_harness_pull(h);
		GstMapInfo m;

		if (r->stop_after && i == r->stop_after) {
			atomic_store(r->stopped, 1);
			for (;;)
				pause();        /* holding its frames until killed */
		}
		if (!b)
			return 10;
		if (GST_BUFFER_OFFSET(b) != r->key0 + i || GST_BUFFER_PTS(b) != i * FRAME_NS ||
		    GST_BUFFER_DURATION(b) != FRAME_NS) {
			fprintf(stderr, "reader %d: frame %u is %" G_GUINT64_FORMAT "\n",
				(int)getpid(), i, GST_BUFFER_OFFSET(b));
			rc = 11;
		} else if (!gst_buffer_map(b, &m, GST_MAP_READ)) {
			rc = 12;
		} else {
			if (m.size != size || !t_check(m.data, m.size, r->key0 + i))
				rc = 13;
			gst_buffer_unmap(b, &m);
		}
		gst_buffer_unref(b);
	}
	while (rc == 0 && (ev = gst_harness_pull_event(h))) {
		GstEventType t = GST_EVENT_TYPE(ev);

		gst_event_unref(ev);
		if (t == GST_EVENT_EOS)
			break;
	}
	if (rc == 0 && !ev)
		rc = 14;
	caps = gst_pad_get_current_caps(h->sinkpad);
	want = gst_caps_from_string(cs);
	if (rc == 0 && (!caps || !gst_caps_is_equal(caps, want)))
		rc = 15;
	if (caps)
		gst_caps_unref(caps);
	gst_caps_unref(want);
	gst_harness_teardown(h);
	g_free(cs);
	return rc;
}

/* A broadcast ring, readers started before the sink: the sink waits for
 * all of them, each gets every frame.  With `stop`, the last reader stops
 * mid-stream and is killed; the others go on to the end. */
static void bcast(unsigned nreaders, gboolean stop)
{
	const char *uri = t_ring_uri("gstbc");
	struct feed f = { .uri = uri, .w = 1280, .h = 720, .frames = 60, .key0 = 5000,
			  .kind = "bcast", .readers = nreaders };
	_Atomic int *stopped = t_shared(sizeof(*stopped));
	struct reader rd[3];
	pid_t pr[3], ps;
	unsigned i;

	cr_assert(nreaders <= 3);
	for (i = 0; i < nreaders; i++) {
		rd[i] = (struct reader){ .uri = uri, .w = f.w, .h = f.h, .frames = f.frames,
					 .key0 = f.key0, .stopped = stopped };
		if (stop && i == nreaders - 1)
			rd[i].stop_after = 10;
		pr[i] = t_spawn(reader_run, &rd[i]);
	}
	ps = t_spawn(feed_run, &f);
	if (stop) {
		cr_assert(t_wait_flag(stopped, 1, 60000), "the reader to kill never got its frames");
		cr_assert_eq(kill(pr[nreaders - 1], SIGKILL), 0);
		cr_assert_eq(t_wait(pr[nreaders - 1]), 128 + SIGKILL);
	}
	for (i = 0; i < nreaders - (stop ? 1 : 0); i++)
		cr_assert_eq(t_wait(pr[i]), 0, "reader %u", i);
	cr_assert_eq(t_wait(ps), 0);
	t_unshared(stopped, sizeof(*stopped));
}

Test(gst, bcast_every_reader_gets_every_frame, .timeout = 120)
{
	bcast(3, FALSE);
}

Test(gst, bcast_reader_killed_midstream, .timeout = 120)
{
	bcast(3, TRUE);
}

/* ---- mq: small frames travel; large ones are a clear error ------------- */

Test(gst, mq_fallback_small_frames, .timeout = 60)
{
	char u[128];
	const char *uri;

	snprintf(u, sizeof(u), "mq:%s", t_name("gstmq"));
	uri = t_remember(u);
	/* 32x24 RGBA and its header fit the system's default 8 KiB messages */
	stream(uri, 32, 24, 30, 0);
}

Test(gst, mq_frame_above_the_system_limit_is_an_error, .timeout = 60)
{
	char u[128];
	const char *uri;
	GstHarness *h;
	GstBus *bus;
	char *caps = caps_of(3840, 2160);       /* 31.6 MiB: above any mq limit */

	snprintf(u, sizeof(u), "mq:%s", t_name("gstmqbig"));
	uri = t_remember(u);
	gst_up();
	h = gst_harness_new("shmringsink");
	bus = bus_on(h);
	g_object_set(h->element, "uri", uri, NULL);
	gst_harness_set_src_caps_str(h, caps);
	cr_assert_neq(gst_harness_push(h, gst_buffer_new_allocate(NULL, 64, NULL)), GST_FLOW_OK);
	expect_error(bus, "msgsize_max");
	gst_harness_teardown(h);
	gst_object_unref(bus);
	g_free(caps);
}
