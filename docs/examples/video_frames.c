/* SPDX-License-Identifier: MIT */
/*
 * video_frames: a camera process writes video frames straight into a
 * shmring broadcast ring and N viewer processes (an encoder, a display,
 * an analytics process...) each read every frame where it lies -- no copy
 * on any side, however many viewers.
 *
 *   video_frames [--format 1080p|4k|both] [--frames N] [--fps F] [--viewers N]
 *
 * The camera asks the ring for a frame-sized region (shmring_reserve),
 * renders the frame into it, and publishes it (shmring_commit).  Each
 * viewer -- a subscriber of the SHMRING_BCAST ring -- gets a pointer to the
 * same memory (shmring_acquire), analyses the frame in place and gives
 * its hold back (shmring_release); the camera reuses the space once the
 * slowest viewer has released it.  Frames are 8-bit RGBA: 1080p is 7.9
 * MiB, 4K (3840x2160) is 31.6 MiB.  The ring holds four frames, so the
 * camera can run ahead of a viewer that hiccups.  The viewers join before
 * the camera starts: a subscriber receives what is published after it
 * joined.
 *
 * Printed per format: frames per second, GB/s written through the ring,
 * the CPU the camera used and each viewer used on average (percent of one
 * core), and the capture-to-analysis latency (median over the viewers'
 * frames).  --fps paces the camera (0: as fast as it can); --viewers
 * (1-8, default 1) is the audience.
 *
 * Without broadcast rings, N viewers took N SPSC rings and the camera
 * copied every frame into each.  On a shared 2-core VM, 8 MiB frames to 3
 * viewers that read every line of every frame (shmring-bench,
 * shmring-bcast-zc-x3 against shmring-spsc-x3, three runs): the broadcast
 * ring moved 1.25-2.3x the frames per second with 0.22-0.27x the camera's
 * CPU per frame.  This program there, 300 1080p frames: 592 fps to 1
 * viewer, 333 fps to 3 (the camera still renders each frame once; the
 * viewers' own reading shares the 2 cores).
 *
 * Build: cc -O2 video_frames.c -lshmring
 * Exit status: 0 ok, 1 failure (a lost, reordered or damaged frame, a
 * library error), 2 bad arguments.
 */
#include <shmring.h>

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* What precedes the pixels in every frame. */
struct frame_hdr {
	uint64_t frame_no;      /* 1, 2, 3, ... */
	uint64_t capture_ns;    /* CLOCK_MONOTONIC when the camera started it */
	uint32_t width, height, stride;
	uint32_t checksum;      /* of the sampled pixels, see sample_sum() */
	uint8_t pad[32];        /* pixels start 64-byte aligned */
};
_Static_assert(sizeof(struct frame_hdr) == 64, "header is one cache line");

struct format {
	const char *name;
	uint32_t width, height;
};

static const struct format formats[] = {
	{ "1080p", 1920, 1080 },
	{ "4k", 3840, 2160 },
};

#define MAX_VIEWERS 8

/* what a viewer reports back through a shared page */
struct report {
	uint64_t frames;
	uint64_t lat_ns[4096];  /* capture-to-analysis, first frames */
	double cpu_s;
	int failed;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static size_t frame_bytes(const struct format *f)
{
	return sizeof(struct frame_hdr) + (size_t)f->width * f->height * 4;
}

/* The "analysis": one 32-bit word from every 64-byte line of every row,
 * so the consumer really reads the whole frame. */
static uint32_t sample_sum(const uint8_t *px, const struct frame_hdr *h)
{
	uint32_t sum = 0;

	for (uint32_t y = 0; y < h->height; y++) {
		const uint8_t *row = px + (size_t)y * h->stride;
		for (uint32_t x = 0; x + 4 <= h->stride; x += 64) {
			uint32_t w;
			memcpy(&w, row + x, sizeof(w));
			sum += w;
		}
	}
	return sum;
}

/* The "camera": every row a colour that moves with the frame number. */
static void render(uint8_t *px, const struct frame_hdr *h)
{
	for (uint32_t y = 0; y < h->height; y++)
		memset(px + (size_t)y * h->stride, (int)((h->frame_no + y) & 0xff), h->stride);
}

static int camera(const char *uri, const struct format *f, uint64_t frames, unsigned fps)
{
	struct shmring *r;
	int rc = shmring_open(uri, SHMRING_PRODUCER, NULL, &r);
	uint64_t start = now_ns(), period = fps ? 1000000000u / fps : 0;

	if (rc < 0) {
		fprintf(stderr, "camera: open: %s\n", shmring_strerror(rc));
		return 1;
	}
	for (uint64_t n = 1; n <= frames; n++) {
		struct shmring_msg m;

		if (period)
			while (now_ns() < start + (n - 1) * period)
				usleep(100);
		/* a region of the ring, one frame long, contiguous */
		rc = shmring_reserve(r, frame_bytes(f), &m, SHMRING_FOREVER);
		if (rc < 0) {
			fprintf(stderr, "camera: reserve: %s\n", shmring_strerror(rc));
			return 1;
		}
		struct frame_hdr *h = m.data;
		uint8_t *px = (uint8_t *)m.data + sizeof(*h);
		h->frame_no = n;
		h->capture_ns = now_ns();
		h->width = f->width;
		h->height = f->height;
		h->stride = f->width * 4;
		render(px, h);                  /* written in place, once */
		h->checksum = sample_sum(px, h);
		rc = shmring_commit(r, &m);     /* now the consumer may see it */
		if (rc < 0) {
			fprintf(stderr, "camera: commit: %s\n", shmring_strerror(rc));
			return 1;
		}
	}
	shmring_shutdown(r);                    /* end of stream */
	shmring_close(r);
	return 0;
}

static void analyse(struct shmring *r, const struct format *f, struct report *rep)
{
	struct shmring_msg m;
	int rc;

	while ((rc = shmring_acquire(r, &m, SHMRING_FOREVER)) == 0) {
		const struct frame_hdr *h = m.data;
		const uint8_t *px = (const uint8_t *)m.data + sizeof(*h);

		if (m.len != frame_bytes(f) || h->frame_no != rep->frames + 1 ||
		    h->width != f->width || h->height != f->height ||
		    sample_sum(px, h) != h->checksum) {
			fprintf(stderr, "vision: frame %" PRIu64 " damaged or out of order\n",
				rep->frames + 1);
			rep->failed = 1;
		}
		if (rep->frames < sizeof(rep->lat_ns) / sizeof(rep->lat_ns[0]))
			rep->lat_ns[rep->frames] = now_ns() - h->capture_ns;
		rep->frames++;
		rc = shmring_release(r, &m);    /* the camera may reuse the space */
		if (rc < 0)
			break;
	}
	if (rc != -EPIPE) {                     /* -EPIPE: shut down and drained */
		fprintf(stderr, "vision: %s\n", shmring_strerror(rc));
		rep->failed = 1;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* A viewer process: subscribe, say so, analyse until the end of stream. */
static int viewer(const char *uri, const struct format *f, struct report *rep,
		  _Atomic unsigned *joined)
{
	struct shmring *r;
	int rc = shmring_open(uri, SHMRING_CONSUMER, NULL, &r);

	if (rc < 0) {
		fprintf(stderr, "viewer: open: %s\n", shmring_strerror(rc));
		return 1;
	}
	atomic_fetch_add(joined, 1);
	double c0 = cpu_seconds();
	analyse(r, f, rep);
	rep->cpu_s = cpu_seconds() - c0;
	shmring_close(r);
	return rep->failed;
}

/* Shared with the viewers: their reports, and how many have joined. */
struct shared {
	_Atomic unsigned joined;
	struct report rep[MAX_VIEWERS];
};

static int run(const struct format *f, uint64_t frames, unsigned fps, unsigned viewers)
{
	char uri[64];
	struct shmring *r;
	struct shmring_opts o = {
		.kind = SHMRING_BCAST,
		.capacity = 4 * (frame_bytes(f) + 4096),
		.max_msg = (uint32_t)frame_bytes(f),
		.flags = SHMRING_PREFAULT,
	};
	struct shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t kids[MAX_VIEWERS];
	int rc, st, failed = 0;

	if (sh == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	snprintf(uri, sizeof(uri), "shm:video-frames-%ld", (long)getpid());
	/* created with no role: the camera and the viewers are children */
	rc = shmring_open(uri, SHMRING_CREATE | SHMRING_EXCL, &o, &r);
	if (rc < 0) {
		fprintf(stderr, "video_frames: create %s: %s\n", uri, shmring_strerror(rc));
		return 1;
	}
	fflush(stdout);
	for (unsigned v = 0; v < viewers; v++) {
		kids[v] = fork();
		if (kids[v] < 0) {
			perror("fork");
			return 1;
		}
		if (kids[v] == 0)
			_exit(viewer(uri, f, &sh->rep[v], &sh->joined));
	}
	/* every viewer subscribed (or one failed) before the first frame */
	while (atomic_load(&sh->joined) < viewers && waitpid(-1, &st, WNOHANG) == 0)
		usleep(1000);
	uint64_t t0 = now_ns();
	pid_t cam = atomic_load(&sh->joined) < viewers ? -1 : fork();
	if (cam == 0)
		_exit(camera(uri, f, frames, fps));
	if (cam < 0) {
		fprintf(stderr, "video_frames: %s\n", atomic_load(&sh->joined) < viewers ?
			"a viewer failed to subscribe" : "fork failed");
		for (unsigned v = 0; v < viewers; v++)
			kill(kids[v], SIGKILL);     /* no camera: they would wait forever */
		failed = 1;
	}
	struct rusage ru;
	memset(&ru, 0, sizeof(ru));
	if (cam > 0 && (wait4(cam, &st, 0, &ru) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0))
		failed = 1;
	for (unsigned v = 0; v < viewers; v++)
		if (waitpid(kids[v], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			failed = 1;
	double secs = (double)(now_ns() - t0) / 1e9;
	double cam_cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
			 (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
	shmring_close(r);
	shmring_unlink(uri);

	/* every viewer's latencies together; the slowest viewer's frame count */
	static uint64_t lat[MAX_VIEWERS * 4096];
	uint64_t n = 0, got = frames;
	double view_cpu = 0;
	for (unsigned v = 0; v < viewers; v++) {
		const struct report *rp = &sh->rep[v];
		uint64_t k = rp->frames < 4096 ? rp->frames : 4096;
		memcpy(lat + n, rp->lat_ns, k * sizeof(uint64_t));
		n += k;
		got = rp->frames < got ? rp->frames : got;
		failed |= rp->failed || rp->frames != frames;
		view_cpu += rp->cpu_s / viewers;
	}
	qsort(lat, n, sizeof(uint64_t), cmp_u64);
	printf("%-5s %ux%u RGBA, %.1f MiB/frame: %" PRIu64 " frames in %.2f s to %u viewer%s, "
	       "%.1f fps, %.2f GB/s, CPU camera %.0f %% viewers %.0f %% each, "
	       "capture-to-analysis p50 %.2f ms%s\n",
	       f->name, f->width, f->height, (double)frame_bytes(f) / (1 << 20), got,
	       secs, viewers, viewers == 1 ? "" : "s", (double)got / secs,
	       (double)got * (double)frame_bytes(f) / secs / 1e9, 100 * cam_cpu / secs,
	       100 * view_cpu / secs, n ? (double)lat[n / 2] / 1e6 : 0.0,
	       failed ? "; FAILED" : "");
	munmap(sh, sizeof(*sh));
	return failed;
}

static int usage(const char *why)
{
	fprintf(stderr, "video_frames: %s\n"
		"usage: video_frames [--format 1080p|4k|both] [--frames N] [--fps F] [--viewers N]\n",
		why);
	return 2;
}

static bool parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

int main(int argc, char **argv)
{
	const char *which = "both";
	uint64_t frames = 300, fps = 0, viewers = 1;
	int status = 0;

	for (int i = 1; i < argc; i++) {
		const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

		i++;                            /* every option takes a value */
		if (strcmp(opt, "--format") == 0) {
			if (!val || (strcmp(val, "1080p") && strcmp(val, "4k") && strcmp(val, "both")))
				return usage("--format wants 1080p, 4k or both");
			which = val;
		} else if (strcmp(opt, "--frames") == 0) {
			if (!parse_u64(val, 1, 1000000, &frames))
				return usage("--frames wants 1 to 1000000");
		} else if (strcmp(opt, "--viewers") == 0) {
			if (!parse_u64(val, 1, MAX_VIEWERS, &viewers))
				return usage("--viewers wants 1 to 8");
		} else if (strcmp(opt, "--fps") == 0) {
			if (!parse_u64(val, 0, 10000, &fps))
				return usage("--fps wants 0 (as fast as possible) to 10000");
		} else {
			return usage("unknown argument");
		}
	}
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
		if (strcmp(which, "both") == 0 || strcmp(which, formats[i].name) == 0)
			status |= run(&formats[i], frames, (unsigned)fps, (unsigned)viewers);
	return status;
}
