/* SPDX-License-Identifier: MIT */
/*
 * shmring-gst-latency: capture-to-sink latency of 1080p RGBA frames at 60
 * frames/s (videotestsrc is-live=true) through shmringsink/shmringsrc or
 * GStreamer's shmsink/shmsrc, sender and receiver in two processes.  The
 * sender writes CLOCK_MONOTONIC into each frame's first bytes as it leaves
 * the source; the receiver's fakesink reads it on arrival.
 *
 *   shmring-gst-latency shmring|shm [FRAMES]       (default 600)
 *
 * Prints p50, p99 and the largest latency in microseconds.  Run with
 * GST_PLUGIN_PATH=build/gst.
 */
#include <gst/gst.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CAPS "video/x-raw,format=RGBA,width=1920,height=1080,framerate=60/1"

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static GstPadProbeReturn stamp(GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
	GstBuffer *b = GST_PAD_PROBE_INFO_BUFFER(info);
	uint64_t t = now_ns();

	(void)pad;
	(void)data;
	if (gst_buffer_fill(b, 0, &t, sizeof(t)) != sizeof(t))
		g_printerr("latency: a frame could not be stamped\n");
	return GST_PAD_PROBE_OK;
}

struct rx {
	uint64_t *lat;
	unsigned n, max;
};

static GstPadProbeReturn arrive(GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
	struct rx *rx = data;
	uint64_t t = now_ns(), s;

	(void)pad;
	if (gst_buffer_extract(GST_PAD_PROBE_INFO_BUFFER(info), 0, &s, sizeof(s)) == sizeof(s) &&
	    rx->n < rx->max && s <= t)
		rx->lat[rx->n++] = t - s;
	return GST_PAD_PROBE_OK;
}

/* Run `desc` until EOS or an error; the probe on element `name`'s pad. */
static int run(const char *desc, const char *name, const char *pad,
	       GstPadProbeCallback cb, gpointer data)
{
	GError *err = NULL;
	GstElement *p = gst_parse_launch(desc, &err);
	GstElement *e;
	GstPad *pd;
	GstBus *bus;
	GstMessage *m;

	if (!p || err) {        /* a partial pipeline comes with an error */
		g_printerr("latency: %s: %s (GST_PLUGIN_PATH=build/gst?)\n", desc,
			   err ? err->message : "?");
		return 1;
	}
	e = gst_bin_get_by_name(GST_BIN(p), name);
	pd = gst_element_get_static_pad(e, pad);
	gst_pad_add_probe(pd, GST_PAD_PROBE_TYPE_BUFFER, cb, data, NULL);
	gst_object_unref(pd);
	gst_object_unref(e);
	gst_element_set_state(p, GST_STATE_PLAYING);
	bus = gst_element_get_bus(p);
	m = gst_bus_timed_pop_filtered(bus, GST_CLOCK_TIME_NONE, GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
	gst_message_unref(m);
	gst_object_unref(bus);
	gst_element_set_state(p, GST_STATE_NULL);
	gst_object_unref(p);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int shm = argc > 1 && strcmp(argv[1], "shm") == 0;
	unsigned frames = argc > 2 ? (unsigned)atoi(argv[2]) : 600;
	char name[64], tx[1024], rx_desc[512];
	struct rx rx = { 0 };
	pid_t pid;
	int st, i;

	if (argc < 2 || (!shm && strcmp(argv[1], "shmring") != 0) || frames == 0) {
		fprintf(stderr, "usage: shmring-gst-latency shmring|shm [FRAMES]\n");
		return 2;
	}
	snprintf(name, sizeof(name), "%sgstlat-%d", shm ? "/tmp/" : "shm:", (int)getpid());
	snprintf(tx, sizeof(tx), "videotestsrc is-live=true pattern=solid-color num-buffers=%u "
		"! capsfilter name=stamp caps=%s ! %s", frames, CAPS, shm ?
		"shmsink wait-for-connection=true sync=false shm-size=33554432 socket-path=" :
		"shmringsink uri=");
	strncat(tx, name, sizeof(tx) - strlen(tx) - 1);
	if (shm)
		snprintf(rx_desc, sizeof(rx_desc), "shmsrc is-live=true socket-path=%s ! %s "
			"! fakesink name=out sync=false enable-last-sample=false", name, CAPS);
	else
		snprintf(rx_desc, sizeof(rx_desc), "shmringsrc uri=%s ! fakesink name=out sync=false enable-last-sample=false",
			 name);
	pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		gst_init(NULL, NULL);
		_exit(run(tx, "stamp", "src", stamp, NULL));
	}
	if (shm) {
		struct stat sb;

		for (i = 0; i < 200 && stat(name, &sb) != 0; i++)
			usleep(20000);
	}
	gst_init(&argc, &argv);
	rx.max = frames;
	rx.lat = calloc(frames, sizeof(*rx.lat));
	if (!rx.lat)
		return 1;
	run(rx_desc, "out", "sink", arrive, &rx);
	waitpid(pid, &st, 0);
	if (shm)
		unlink(name);
	if (rx.n == 0) {
		fprintf(stderr, "latency: no frame arrived\n");
		return 1;
	}
	qsort(rx.lat, rx.n, sizeof(*rx.lat), cmp_u64);
	printf("%-8s 1080p60 %u frames: latency p50 %.1f us  p99 %.1f us  max %.1f us\n",
	       shm ? "shm" : "shmring", rx.n, rx.lat[rx.n / 2] / 1e3,
	       rx.lat[(size_t)(rx.n * 0.99)] / 1e3, rx.lat[rx.n - 1] / 1e3);
	free(rx.lat);
	return 0;
}
