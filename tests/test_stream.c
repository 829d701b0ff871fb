/* SPDX-License-Identifier: MIT */
/*
 * Two processes, millions of messages of random length 0..max_msg through
 * every API (copying, zero-copy, batch) with busy-poll and blocking waits.
 * The consumer regenerates the producer's random stream, so it knows the
 * length and every byte each message must have (sequence number first,
 * then bytes derived from it): a lost, duplicated, reordered or torn
 * message fails at once, at its sequence number.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <unistd.h>

#include "common.h"

enum api { API_COPY, API_ZC, API_BATCH };

struct stream {
	const char *uri;
	enum api api;
	int blocking;
	uint64_t n;
	uint32_t max_msg;
	uint64_t seed;
};

#define BATCH 32
#define PAUSE_EVERY 65536   /* blocking runs: a side pauses so the other sleeps */

static uint32_t next_len(uint64_t *rnd, uint32_t max_msg)
{
	/* the edges often: empty, shorter than the sequence number, max_msg */
	uint64_t r = t_rand(rnd);
	switch (r & 15) {
	case 0: return 0;
	case 1: return (uint32_t)(r >> 8) % 9;
	case 2: return max_msg;
	default: return (uint32_t)((r >> 8) % (max_msg + 1ull));
	}
}

static void make_msg(uint8_t *buf, uint32_t len, uint64_t seq)
{
	t_fill(buf, len, seq);
	memcpy(buf, &seq, len < 8 ? len : 8);
}

static void pause_us(unsigned us)
{
	usleep(us);
}

/* A busy-polling side that finds nothing to do gives the CPU away now and
 * then: with more spinning processes than cores (parallel suites, a busy
 * CI machine) pure spinning can starve the peer for whole time slices. */
static void backoff(unsigned *spins)
{
	if ((++*spins & 63u) == 0)
		sched_yield();
}

static int producer(void *arg)
{
	const struct stream *s = arg;
	struct shmring *r = NULL;
	int rc = shmring_open(s->uri, SHMRING_PRODUCER, NULL, &r);
	if (rc)
		return 10;
	int64_t to = s->blocking ? SHMRING_FOREVER : 0;
	uint64_t rnd = s->seed;
	uint8_t *bufs = malloc((size_t)BATCH * s->max_msg + 1);
	struct iovec iov[BATCH];
	uint64_t seq = 0;
	unsigned spins = 0;
	while (seq < s->n) {
		if (s->blocking && seq % PAUSE_EVERY == PAUSE_EVERY / 2)
			pause_us(300);          /* let the consumer find it empty */
		if (s->api == API_BATCH) {
			unsigned k = 0;
			uint64_t save = rnd;
			for (; k < BATCH && seq + k < s->n; k++) {
				uint32_t len = next_len(&rnd, s->max_msg);
				iov[k].iov_base = bufs + (size_t)k * s->max_msg;
				iov[k].iov_len = len;
				make_msg(iov[k].iov_base, len, seq + k);
			}
			rc = shmring_send_batch(r, iov, k, to);
			if (rc == -EAGAIN) {
				backoff(&spins);
				rnd = save;
				continue;
			}
			if (rc <= 0)
				return 11;
			/* replay the generator for what was not taken */
			rnd = save;
			for (int i = 0; i < rc; i++)
				next_len(&rnd, s->max_msg);
			seq += (uint64_t)rc;
			continue;
		}
		uint64_t save = rnd;
		uint32_t len = next_len(&rnd, s->max_msg);
		if (s->api == API_ZC) {
			struct shmring_msg m;
			rc = shmring_reserve(r, len, &m, to);
			if (rc == 0) {
				make_msg(m.data, len, seq);
				rc = shmring_commit(r, &m);
			}
		} else {
			make_msg(bufs, len, seq);
			rc = shmring_send(r, bufs, len, to);
		}
		if (rc == -EAGAIN) {
			backoff(&spins);
			rnd = save;
			continue;
		}
		if (rc)
			return 12;
		seq++;
	}
	if (shmring_shutdown(r))
		return 13;
	free(bufs);
	shmring_close(r);
	return 0;
}

static void consume(const struct stream *s)
{
	struct shmring *r = t_open(s->uri, SHMRING_CONSUMER);
	int64_t to = s->blocking ? SHMRING_FOREVER : 0;
	uint64_t rnd = s->seed;
	uint8_t *want = malloc(s->max_msg + 1);
	uint8_t *bufs = malloc((size_t)BATCH * s->max_msg + 1);
	struct iovec iov[BATCH];
	uint64_t seq = 0;
	unsigned spins = 0;
	for (;;) {
		if (s->blocking && seq % PAUSE_EVERY == 0 && seq)
			pause_us(300);          /* let the producer find it full */
		const uint8_t *got[BATCH];
		size_t got_len[BATCH];
		struct shmring_msg m;
		int k, rc;
		if (s->api == API_BATCH) {
			for (int i = 0; i < BATCH; i++)
				iov[i] = (struct iovec){ bufs + (size_t)i * s->max_msg, s->max_msg };
			rc = k = shmring_recv_batch(r, iov, BATCH, to);
			for (int i = 0; i < k; i++) {
				got[i] = iov[i].iov_base;
				got_len[i] = iov[i].iov_len;
			}
		} else if (s->api == API_ZC) {
			rc = shmring_acquire(r, &m, to);
			k = rc == 0;
			got[0] = m.data;
			got_len[0] = m.len;
		} else {
			ssize_t n = shmring_recv(r, bufs, s->max_msg, to);
			rc = n < 0 ? (int)n : 0;
			k = n >= 0;
			got[0] = bufs;
			got_len[0] = (size_t)n;
		}
		if (rc == -EAGAIN) {
			backoff(&spins);
			continue;
		}
		if (rc == -EPIPE)
			break;
		cr_assert_geq(rc, 0, "receive at seq %lu: %s", (unsigned long)seq,
			      shmring_strerror(rc));
		for (int i = 0; i < k; i++, seq++) {
			uint32_t len = next_len(&rnd, s->max_msg);
			make_msg(want, len, seq);
			cr_assert(got_len[i] == len && memcmp(got[i], want, len) == 0,
				  "message %lu: length %zu (want %u) or bytes differ",
				  (unsigned long)seq, got_len[i], len);
		}
		if (s->api == API_ZC)
			cr_assert_eq(shmring_release(r, &m), 0);
	}
	cr_assert_eq(seq, s->n, "got %lu of %lu messages", (unsigned long)seq,
		     (unsigned long)s->n);
	struct shmring_stats st;
	cr_assert_eq(shmring_stats(r, &st), 0);
	cr_assert_eq(st.msgs_sent, s->n);
	cr_assert_eq(st.msgs_recv, s->n);
	cr_assert_eq(st.bytes_sent, st.bytes_recv);
	cr_assert_eq(st.used, 0);
	if (s->blocking)
		cr_assert_gt(st.futex_sleeps, 0, "the blocking run never slept");
	free(want);
	free(bufs);
	shmring_close(r);
}

static uint64_t stream_msgs(void)
{
	const char *b = getenv("SHMRING_TEST_BUILD");
	const char *n = getenv("SHMRING_STREAM_MSGS");
	if (n)
		return strtoull(n, NULL, 10);
	/* the sanitizer build checks the same paths with fewer messages */
	return b && strstr(b, "address") ? 2000000 : 10000000;
}

static void run(enum api api, int blocking, uint64_t n, uint64_t cap, uint32_t max_msg)
{
	struct stream s = {
		.uri = t_uri("stream"), .api = api, .blocking = blocking, .n = n,
		.max_msg = max_msg, .seed = 0x5eed0000u + (unsigned)api * 2 + (unsigned)blocking,
	};
	struct shmring *own = t_create(s.uri, cap, max_msg);
	pid_t p = t_spawn(producer, &s);
	consume(&s);
	cr_assert_eq(t_wait(p), 0, "producer failed");
	shmring_close(own);
	cr_assert_eq(shmring_unlink(s.uri), 0);
}

Test(stream, copy_busy_poll, .timeout = 240) { run(API_COPY, 0, stream_msgs(), 65536, 256); }
Test(stream, copy_blocking, .timeout = 240) { run(API_COPY, 1, stream_msgs(), 65536, 256); }
Test(stream, zero_copy_busy_poll, .timeout = 240) { run(API_ZC, 0, stream_msgs(), 65536, 256); }
Test(stream, zero_copy_blocking, .timeout = 240) { run(API_ZC, 1, stream_msgs(), 65536, 256); }
Test(stream, batch_busy_poll, .timeout = 240) { run(API_BATCH, 0, stream_msgs(), 65536, 256); }
Test(stream, batch_blocking, .timeout = 240) { run(API_BATCH, 1, stream_msgs(), 65536, 256); }

/* Video-sized frames: contiguous reservations up to 1 MiB, read in place. */
Test(stream, large_frames_zero_copy, .timeout = 240) { run(API_ZC, 1, 3000, 4u << 20, 1u << 20); }
Test(stream, large_frames_copy, .timeout = 240) { run(API_COPY, 0, 3000, 4u << 20, 1u << 20); }
