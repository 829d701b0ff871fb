/* SPDX-License-Identifier: MIT */
/*
 * video_frames: a camera process writes video frames straight into a
 * shmring ring and a vision process reads them where they lie -- no copy
 * on either side.
 *
 *   video_frames [--format 1080p|4k|both] [--frames N] [--fps F]
 *
 * The camera asks the ring for a frame-sized region (shmring_reserve),
 * renders the frame into it, and publishes it (shmring_commit).  The
 * consumer gets a pointer to the same memory (shmring_acquire), analyses
 * the frame in place and gives the space back (shmring_release).  Frames
 * are 8-bit RGBA: 1080p is 7.9 MiB, 4K (3840x2160) is 31.6 MiB.  The ring
 * holds four frames, so the camera can run ahead of a consumer that
 * hiccups.
 *
 * Printed per format: frames per second, GB/s through the ring, the CPU
 * each process used (percent of one core), and the capture-to-analysis
 * latency (median).  --fps paces the camera (0: as fast as it can).
 *
 * Build: cc -O2 video_frames.c -lshmring
 * Exit status: 0 ok, 1 failure (a lost, reordered or damaged frame, a
 * library error), 2 bad arguments.
 */
#include <shmring.h>

#include <errno.h>
#include <inttypes.h>
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

/* what the consumer reports back through a shared page */
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

static int run(const struct format *f, uint64_t frames, unsigned fps)
{
	char uri[64];
	struct shmring *r;
	struct shmring_opts o = {
		.kind = SHMRING_SPSC,
		.capacity = 4 * (frame_bytes(f) + 4096),
		.max_msg = (uint32_t)frame_bytes(f),
		.flags = SHMRING_PREFAULT,
	};
	struct report *rep = mmap(NULL, sizeof(*rep), PROT_READ | PROT_WRITE,
				  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int rc, st;

	if (rep == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	snprintf(uri, sizeof(uri), "shm:video-frames-%ld", (long)getpid());
	rc = shmring_open(uri, SHMRING_CREATE | SHMRING_EXCL | SHMRING_CONSUMER, &o, &r);
	if (rc < 0) {
		fprintf(stderr, "video_frames: create %s: %s\n", uri, shmring_strerror(rc));
		return 1;
	}
	fflush(stdout);
	pid_t cam = fork();
	if (cam < 0) {
		perror("fork");
		return 1;
	}
	if (cam == 0)
		_exit(camera(uri, f, frames, fps));

	uint64_t t0 = now_ns();
	double c0 = cpu_seconds();
	analyse(r, f, rep);                     /* this process is the consumer */
	double secs = (double)(now_ns() - t0) / 1e9, vision_cpu = cpu_seconds() - c0;
	struct rusage ru;
	if (wait4(cam, &st, 0, &ru) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		rep->failed = 1;
	double cam_cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
			 (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
	shmring_close(r);
	shmring_unlink(uri);

	uint64_t n = rep->frames < 4096 ? rep->frames : 4096;
	qsort(rep->lat_ns, n, sizeof(uint64_t), cmp_u64);
	printf("%-5s %ux%u RGBA, %.1f MiB/frame: %" PRIu64 " frames in %.2f s, %.1f fps, "
	       "%.2f GB/s, CPU camera %.0f %% vision %.0f %%, capture-to-analysis p50 %.2f ms%s\n",
	       f->name, f->width, f->height, (double)frame_bytes(f) / (1 << 20), rep->frames,
	       secs, (double)rep->frames / secs, (double)rep->frames * (double)frame_bytes(f) / secs / 1e9,
	       100 * cam_cpu / secs, 100 * vision_cpu / secs,
	       n ? (double)rep->lat_ns[n / 2] / 1e6 : 0.0,
	       rep->failed || rep->frames != frames ? "; FAILED" : "");
	rc = rep->failed || rep->frames != frames;
	munmap(rep, sizeof(*rep));
	return rc;
}

static int usage(const char *why)
{
	fprintf(stderr, "video_frames: %s\n"
		"usage: video_frames [--format 1080p|4k|both] [--frames N] [--fps F]\n", why);
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
	uint64_t frames = 300, fps = 0;
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
		} else if (strcmp(opt, "--fps") == 0) {
			if (!parse_u64(val, 0, 10000, &fps))
				return usage("--fps wants 0 (as fast as possible) to 10000");
		} else {
			return usage("unknown argument");
		}
	}
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
		if (strcmp(which, "both") == 0 || strcmp(which, formats[i].name) == 0)
			status |= run(&formats[i], frames, (unsigned)fps);
	return status;
}
