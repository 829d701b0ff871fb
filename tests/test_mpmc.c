/* SPDX-License-Identifier: MIT */
/*
 * MPMC rings: the API on one ring shared by many producers and consumers,
 * the streams of P x C processes (threads under ThreadSanitizer), and the
 * recovery paths built directly as memory states (as Aeron's tests do):
 * a claim left by a dead producer, a message held by a dead consumer, a
 * stopped holder, a dead owner whose pid now belongs to someone else.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "backend/mpmc.h"
#include "ring/mpmc.h"
#include "shm/ctl.h"
#include "shm/segment.h"

#define MS 1000000ll

/* every ring a test names (t_ring_uri) is removed after it */
TestSuite(mpmc, .fini = t_cleanup, .timeout = 240);

static struct shmring *mk_ring(const char *uri, uint64_t cap, uint32_t max_msg, uint32_t stall_ms)
{
	struct shmring_opts o = { .kind = SHMRING_MPMC, .capacity = cap, .max_msg = max_msg,
				  .stall_ms = stall_ms };
	return t_open_opts(uri, SHMRING_CREATE | SHMRING_EXCL, &o);
}

static struct shmring *open_as(const char *uri, int oflags)
{
	struct shmring *r = NULL;
	int rc = shmring_open(uri, oflags, NULL, &r);
	cr_assert_eq(rc, 0, "open %s: %s", uri, shmring_strerror(rc));
	return r;
}

/* ---- the API -------------------------------------------------------------- */

/* Batches take the next ticket straight away while they can; everything
 * else (full ring, a slot someone else took, a bad message, shutdown)
 * must still come out as the one-by-one path would. */
Test(mpmc, batches_at_the_edges)
{
	const char *uri = t_ring_uri("bedge");
	struct shmring *c = mk_ring(uri, 8192, 64, 0);     /* 64 slots */
	struct shmring *p = open_as(uri, SHMRING_PRODUCER);
	struct shmring *q = open_as(uri, SHMRING_CONSUMER);
	struct shmring *q2 = open_as(uri, SHMRING_CONSUMER);
	static char msg[100][64], out[100][64];
	struct iovec in[100], o[100];
	for (int i = 0; i < 100; i++) {
		snprintf(msg[i], sizeof(msg[i]), "m%d", i);
		in[i] = (struct iovec){ msg[i], 1 + (size_t)i % 64 };
	}
	/* round the ring a few times with odd batch sizes: every lap boundary
	 * falls inside some batch */
	for (int round = 0; round < 40; round++) {
		int b = round * 13 % 87;
		int k = shmring_send_batch(p, in + b, 13, 0);
		cr_assert_eq(k, 13, "round %d: %d", round, k);
		for (int i = 0; i < 13; i++)
			o[i] = (struct iovec){ out[i], 64 };
		int got = shmring_recv_batch(q, o, 13, 0);
		cr_assert_eq(got, 13);
		for (int i = 0; i < 13; i++) {
			cr_assert_eq(o[i].iov_len, in[b + i].iov_len);
			cr_assert_eq(memcmp(out[i], msg[b + i], o[i].iov_len), 0);
		}
	}
	/* a full ring ends a batch: as many as there are slots */
	cr_assert_eq(shmring_send_batch(p, in, 100, 0), 64);
	cr_assert_eq(shmring_send_batch(p, in, 1, 0), -EAGAIN);
	/* another consumer holds the third message: the batch goes past it */
	for (int i = 0; i < 2; i++)
		o[i] = (struct iovec){ out[i], 64 };
	cr_assert_eq(shmring_recv_batch(q, o, 2, 0), 2);
	struct shmring_msg held;
	cr_assert_eq(shmring_acquire(q2, &held, 0), 0);
	cr_assert_eq(memcmp(held.data, msg[2], held.len), 0);
	for (int i = 0; i < 100; i++)
		o[i] = (struct iovec){ out[i], 64 };
	cr_assert_eq(shmring_recv_batch(q, o, 100, 0), 61);
	cr_assert_eq(memcmp(out[0], msg[3], o[0].iov_len), 0);
	cr_assert_eq(memcmp(out[60], msg[63], o[60].iov_len), 0);
	cr_assert_eq(shmring_release(q2, &held), 0);
	/* a bad message ends a batch before it; alone, it is the error */
	struct iovec bad[3] = { { "ok", 2 }, { msg[0], 65 }, { "no", 2 } };
	cr_assert_eq(shmring_send_batch(p, bad, 3, 0), 1);
	cr_assert_eq(shmring_send_batch(p, bad + 1, 2, 0), -EMSGSIZE);
	struct iovec nul[2] = { { "ok", 2 }, { NULL, 5 } };
	cr_assert_eq(shmring_send_batch(p, nul, 2, 0), 1);
	cr_assert_eq(shmring_send_batch(p, nul + 1, 1, 0), -EINVAL);
	/* a short buffer ends a receive batch; the message stays */
	o[0] = (struct iovec){ out[0], 64 };
	o[1] = (struct iovec){ out[1], 1 };
	cr_assert_eq(shmring_recv_batch(q, o, 2, 0), 1);
	o[0] = (struct iovec){ out[0], 64 };
	cr_assert_eq(shmring_recv_batch(q, o, 2, 0), 1);
	cr_assert_eq(o[0].iov_len, 2);
	/* after a shutdown: -EPIPE for a batch, the rest drains, then -EPIPE */
	cr_assert_eq(shmring_send_batch(p, in, 5, 0), 5);
	cr_assert_eq(shmring_shutdown(p), 0);
	cr_assert_eq(shmring_send_batch(p, in, 5, 0), -EPIPE);
	for (int i = 0; i < 8; i++)
		o[i] = (struct iovec){ out[i], 64 };
	cr_assert_eq(shmring_recv_batch(q, o, 8, 0), 5);
	cr_assert_eq(shmring_recv_batch(q, o, 8, 0), -EPIPE);
	struct shmring_stats st = t_stats(c);
	cr_assert_eq(st.msgs_sent, 40 * 13 + 64 + 1 + 1 + 5);
	cr_assert_eq(st.msgs_recv, st.msgs_sent);
	shmring_close(q2);
	shmring_close(q);
	shmring_close(p);
	shmring_close(c);
}

Test(mpmc, geometry_and_caps)
{
	const char *uri = t_ring_uri("geo");
	struct shmring *c = mk_ring(uri, 64 * 1024, 100, 0);
	struct shmring_stats st = t_stats(c);
	cr_assert_eq(st.kind, SHMRING_MPMC);
	cr_assert_eq(st.max_msg, 100);
	/* slots of 100 + 16 bytes rounded to 128: a power of two of them */
	cr_assert_eq(st.capacity % 128, 0);
	uint64_t n = st.capacity / 128;
	cr_assert(n >= 2 && (n & (n - 1)) == 0, "slots %llu", (unsigned long long)n);
	cr_assert_geq(st.capacity, 64 * 1024);
	struct shmring_caps caps;
	cr_assert_eq(shmring_caps(c, &caps), 0);
	cr_assert(caps.flags & SHMRING_CAP_MPMC);
	cr_assert(caps.flags & SHMRING_CAP_ZEROCOPY);
	cr_assert_eq(caps.max_producers, 64);
	cr_assert_eq(caps.max_consumers, 64);
	cr_assert_eq(shmring_close(c), 0);

	/* bad options */
	struct shmring *r = NULL;
	struct shmring_opts o = { .kind = SHMRING_MPMC, .stall_ms = 3600001 };
	cr_assert_eq(shmring_open(t_ring_uri("geo2"), SHMRING_CREATE, &o, &r), -EINVAL);
	o = (struct shmring_opts){ .kind = 4 };
	cr_assert_eq(shmring_open(t_ring_uri("geo3"), SHMRING_CREATE, &o, &r), -EINVAL);
	char path[128];
	snprintf(path, sizeof(path), "file:/tmp/%s", t_name("geof"));
	o = (struct shmring_opts){ .kind = SHMRING_MPMC };
	cr_assert_eq(shmring_open(path, SHMRING_CREATE, &o, &r), -ENOTSUP);
	cr_assert_eq(access(path + 5, F_OK), -1, "nothing left behind");
}

/* A ring made by a build from before range claims (no SEG_HF_RANGES in
 * its header) may be shared with processes of that build, which do not
 * know range words: batches on it claim and take one slot at a time.
 * Rings made now carry the flag, which those builds refuse. */
Test(mpmc, a_ring_made_before_ranges_gets_single_claims)
{
	const char *uri = t_ring_uri("norange");
	struct shmring *c = mk_ring(uri, 8192, 64, 0);
	cr_assert_eq(mph_of(c)->range_max, MPMC_RANGE_MAX);
	struct seg_hdr *h = (struct seg_hdr *)(void *)segh_of(c)->map->base;
	cr_assert(h->flags & SEG_HF_RANGES, "a ring made now says it may hold ranges");
	h->flags &= ~SEG_HF_RANGES;      /* as an older build makes it */
	h->checksum = seg_checksum(h);
	cr_assert_eq(shmring_close(c), 0);
	c = open_as(uri, 0);             /* a mapping of its own: the header read again */
	struct shmring *p = open_as(uri, SHMRING_PRODUCER), *q = open_as(uri, SHMRING_CONSUMER);
	cr_assert_eq(mph_of(p)->range_max, 1);
	cr_assert_eq(mph_of(q)->range_max, 1);
	uint64_t v[32], w[32];
	struct iovec in[32], out[32];
	for (int round = 0; round < 10; round++) {
		for (int i = 0; i < 32; i++) {
			v[i] = (uint64_t)round * 32 + (uint64_t)i;
			in[i] = (struct iovec){ &v[i], sizeof(v[i]) };
			out[i] = (struct iovec){ &w[i], sizeof(w[i]) };
		}
		cr_assert_eq(shmring_send_batch(p, in, 32, 0), 32);
		cr_assert_eq(shmring_recv_batch(q, out, 32, 0), 32);
		for (int i = 0; i < 32; i++)
			cr_assert_eq(w[i], v[i]);
	}
	shmring_close(p);
	shmring_close(q);
	shmring_close(c);
}

Test(mpmc, send_recv_zero_copy_batch)
{
	const char *uri = t_ring_uri("api");
	struct shmring *c = mk_ring(uri, 8192, 64, 0);
	struct shmring *p = open_as(uri, SHMRING_PRODUCER);
	struct shmring *q = open_as(uri, SHMRING_CONSUMER);
	char buf[128];

	cr_assert_eq(shmring_recv(q, buf, sizeof(buf), 0), -EAGAIN);
	cr_assert_eq(shmring_send(p, "hello", 5, 0), 0);
	cr_assert_eq(shmring_send(p, "", 0, 0), 0);
	cr_assert_eq(shmring_send(p, buf, 65, 0), -EMSGSIZE);
	cr_assert_eq(shmring_recv(q, buf, 4, 0), -EMSGSIZE, "too small: the message stays");
	cr_assert_eq(shmring_recv(q, buf, sizeof(buf), 0), 5);
	cr_assert_eq(memcmp(buf, "hello", 5), 0);
	cr_assert_eq(shmring_recv(q, buf, sizeof(buf), 0), 0);

	/* zero-copy, shrinking on commit */
	struct shmring_msg m;
	cr_assert_eq(shmring_reserve(p, 64, &m, 0), 0);
	cr_assert_eq(m.len, 64);
	memcpy(m.data, "in place", 8);
	m.len = 8;
	cr_assert_eq(shmring_commit(p, &m), 0);
	cr_assert_eq(shmring_commit(p, &m), -EINVAL, "committed twice");
	struct shmring_msg a;
	cr_assert_eq(shmring_acquire(q, &a, 0), 0);
	cr_assert_eq(a.len, 8);
	cr_assert_eq(memcmp(a.data, "in place", 8), 0);
	cr_assert_eq(shmring_release(q, &a), 0);
	cr_assert_eq(shmring_release(q, &a), -EINVAL, "released twice");

	/* batches */
	struct iovec in[4] = { { "a", 1 }, { "bb", 2 }, { "ccc", 3 }, { "dddd", 4 } };
	cr_assert_eq(shmring_send_batch(p, in, 4, 0), 4);
	char b0[8], b1[8], b2[8];
	struct iovec out[3] = { { b0, 8 }, { b1, 8 }, { b2, 8 } };
	cr_assert_eq(shmring_recv_batch(q, out, 3, 0), 3);
	cr_assert_eq(out[0].iov_len, 1);
	cr_assert_eq(out[2].iov_len, 3);
	cr_assert_eq(memcmp(b2, "ccc", 3), 0);
	cr_assert_eq(shmring_recv(q, buf, sizeof(buf), 0), 4);

	/* full: 8192 bytes of 128-byte slots */
	int sent = 0;
	while (shmring_send(p, "x", 1, 0) == 0)
		sent++;
	cr_assert_eq(sent, 64);
	int64_t t0 = (int64_t)t_now_ns();
	cr_assert_eq(shmring_send(p, "x", 1, 20 * MS), -ETIMEDOUT);
	cr_assert_geq((int64_t)t_now_ns() - t0, 20 * MS);
	for (int i = 0; i < sent; i++)
		cr_assert_eq(shmring_recv(q, buf, sizeof(buf), 0), 1);
	t0 = (int64_t)t_now_ns();
	cr_assert_eq(shmring_recv(q, buf, sizeof(buf), 15 * MS), -ETIMEDOUT);
	cr_assert_geq((int64_t)t_now_ns() - t0, 15 * MS);

	/* roles */
	cr_assert_eq(shmring_send(q, "x", 1, 0), -EPERM);
	cr_assert_eq(shmring_recv(p, buf, sizeof(buf), 0), -EPERM);

	struct shmring_stats st = t_stats(c);
	cr_assert_eq(st.msgs_sent, 2 + 1 + 4 + 64);
	cr_assert_eq(st.msgs_recv, 2 + 1 + 4 + 64);
	cr_assert_eq(st.producers, 1);
	cr_assert_eq(st.consumers, 1);
	cr_assert_eq(st.used, 0);

	/* shutdown: the rest is delivered, then -EPIPE for everyone */
	cr_assert_eq(shmring_send(p, "last", 4, 0), 0);
	cr_assert_eq(shmring_reserve(p, 10, &m, 0), 0);
	cr_assert_eq(shmring_shutdown(p), 0);
	cr_assert_eq(shmring_commit(p, &m), -EPIPE);
	cr_assert_eq(shmring_send(p, "x", 1, 0), -EPIPE);
	cr_assert_eq(shmring_recv(q, buf, sizeof(buf), 0), 4);
	cr_assert_eq(shmring_recv(q, buf, sizeof(buf), SHMRING_FOREVER), -EPIPE);
	shmring_close(p);
	shmring_close(q);
	shmring_close(c);
}

Test(mpmc, many_handles_and_the_role_limit)
{
	const char *uri = t_ring_uri("lim");
	struct shmring *c = mk_ring(uri, 8192, 32, 0);
	struct shmring *ps[64];
	for (int i = 0; i < 64; i++)
		ps[i] = open_as(uri, SHMRING_PRODUCER);
	struct shmring *r = NULL;
	cr_assert_eq(shmring_open(uri, SHMRING_PRODUCER, NULL, &r), -EUSERS);
	struct shmring *q = open_as(uri, SHMRING_CONSUMER);
	for (int i = 0; i < 64; i++) {
		uint32_t v = (uint32_t)i;
		cr_assert_eq(shmring_send(ps[i], &v, 4, 0), 0);
	}
	for (uint32_t i = 0; i < 64; i++) {
		uint32_t v;
		cr_assert_eq(shmring_recv(q, &v, 4, 0), 4);
		cr_assert_eq(v, i, "one ticket order: FIFO across producers here");
	}
	shmring_close(ps[63]);
	ps[63] = open_as(uri, SHMRING_PRODUCER);
	for (int i = 0; i < 64; i++)
		shmring_close(ps[i]);
	shmring_close(q);
	shmring_close(c);
}

Test(mpmc, blocked_consumer_is_woken)
{
	const char *uri = t_ring_uri("wake");
	struct shmring *c = mk_ring(uri, 8192, 64, 0);
	pid_t kid = fork();
	cr_assert_geq(kid, 0);
	if (kid == 0) {
		struct shmring *p = NULL;
		if (shmring_open(uri, SHMRING_PRODUCER, NULL, &p))
			_exit(2);
		for (int i = 0; i < 1000; i++) {
			usleep(i % 100 == 0 ? 20000 : 50);
			if (shmring_send(p, &i, sizeof(i), SHMRING_FOREVER))
				_exit(3);
		}
		shmring_shutdown(p);
		_exit(0);
	}
	struct shmring *q = open_as(uri, SHMRING_CONSUMER);
	shmring_set_spin(q, 0);                 /* sleep at once */
	int v, n = 0;
	ssize_t rc;
	while ((rc = shmring_recv(q, &v, sizeof(v), SHMRING_FOREVER)) == sizeof(v))
		cr_assert_eq(v, n++);
	cr_assert_eq(rc, -EPIPE);
	cr_assert_eq(n, 1000);
	cr_assert_eq(t_wait(kid), 0);
	struct shmring_stats st;
	cr_assert_eq(shmring_stats(q, &st), 0);
	cr_assert_gt(st.futex_sleeps, 0);
	cr_assert_gt(st.futex_wakes, 0);
	shmring_close(q);
	shmring_close(c);
}

/* ---- streams: P producers x C consumers ---------------------------------------- */

#define S_MAXP 8
#define S_MSG_MAX 200
#define S_HDR 24             /* producer id, length, sequence, checksum */

struct stream {
	char uri[128];
	uint64_t per_prod;
	int64_t timeout_ns;                 /* of every call; 0: -EAGAIN, yield, again */
	_Atomic uint64_t received, bytes, errors, dups;
	_Atomic uint64_t by_api[3];
	char first_error[160];
	_Atomic int error_claimed;
	_Atomic uint8_t seen[S_MAXP][1];   /* followed by the bitmaps (see s_bitmap) */
};

static _Atomic uint8_t *s_bitmap(struct stream *s, unsigned p)
{
	uint8_t *base = (uint8_t *)(s + 1);
	return (_Atomic uint8_t *)(base + (size_t)p * ((s->per_prod + 7) / 8));
}

static void s_error(struct stream *s, const char *what, uint64_t a, uint64_t b)
{
	atomic_fetch_add(&s->errors, 1);
	int z = 0;
	if (atomic_compare_exchange_strong(&s->error_claimed, &z, 1))
		snprintf(s->first_error, sizeof(s->first_error), "%s (%llu, %llu)", what,
			 (unsigned long long)a, (unsigned long long)b);
}

static uint64_t s_sum(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

static size_t s_build(uint8_t *m, unsigned pid, uint64_t seq, uint64_t *rnd)
{
	size_t len = S_HDR + t_rand(rnd) % (S_MSG_MAX - S_HDR + 1);
	uint32_t id = pid, l = (uint32_t)len;
	memcpy(m, &id, 4);
	memcpy(m + 4, &l, 4);
	memcpy(m + 8, &seq, 8);
	t_fill(m + S_HDR, len - S_HDR, seq * 131 + pid);
	uint64_t sum = s_sum(m + S_HDR, len - S_HDR);
	memcpy(m + 16, &sum, 8);
	return len;
}

static void s_check(struct stream *s, const uint8_t *m, size_t len, uint64_t last[S_MAXP])
{
	uint32_t id, l;
	uint64_t seq, sum;
	if (len < S_HDR) {
		s_error(s, "short message", len, 0);
		return;
	}
	memcpy(&id, m, 4);
	memcpy(&l, m + 4, 4);
	memcpy(&seq, m + 8, 8);
	memcpy(&sum, m + 16, 8);
	if (id >= S_MAXP || l != len || seq >= s->per_prod ||
	    sum != s_sum(m + S_HDR, len - S_HDR) || !t_check(m + S_HDR, len - S_HDR, seq * 131 + id)) {
		s_error(s, "torn message", id, seq);
		return;
	}
	if (last[id] != UINT64_MAX && seq <= last[id])
		s_error(s, "per-producer order", last[id], seq);
	last[id] = seq;
	uint8_t bit = (uint8_t)(1u << (seq % 8));
	if (atomic_fetch_or(&s_bitmap(s, id)[seq / 8], bit) & bit)
		atomic_fetch_add(&s->dups, 1);
	atomic_fetch_add_explicit(&s->received, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->bytes, len, memory_order_relaxed);
}

struct s_worker {
	struct stream *s;
	unsigned id;
};

static int s_producer(void *arg)
{
	struct s_worker *w = arg;
	struct stream *s = w->s;
	struct shmring *r = NULL;
	int rc = shmring_open(s->uri, SHMRING_PRODUCER, NULL, &r);
	if (rc) {
		s_error(s, "producer open", (uint64_t)-rc, w->id);
		return 1;
	}
	uint64_t rnd = 0x9e3779b97f4a7c15ull * (w->id + 1);
	uint8_t m[8][S_MSG_MAX];
	for (uint64_t seq = 0; seq < s->per_prod;) {
		unsigned api = (unsigned)(t_rand(&rnd) % 3);
		if (api == 0) {
			size_t len = s_build(m[0], w->id, seq, &rnd);
			rc = shmring_send(r, m[0], len, s->timeout_ns);
			seq += rc == 0;
		} else if (api == 1) {
			struct shmring_msg z;
			rc = shmring_reserve(r, S_MSG_MAX, &z, s->timeout_ns);
			if (rc == 0) {
				z.len = s_build(z.data, w->id, seq, &rnd);
				rc = shmring_commit(r, &z);
				seq += rc == 0;
			}
		} else {
			struct iovec v[8];
			unsigned n = 1 + (unsigned)(t_rand(&rnd) % 8);
			if (n > s->per_prod - seq)
				n = (unsigned)(s->per_prod - seq);
			for (unsigned i = 0; i < n; i++)
				v[i] = (struct iovec){ m[i], s_build(m[i], w->id, seq + i, &rnd) };
			rc = shmring_send_batch(r, v, n, s->timeout_ns);
			if (rc > 0) {
				seq += (uint64_t)rc;
				rc = 0;
			}
		}
		if (rc == -EAGAIN) {            /* timeout 0: the ring was full */
			sched_yield();
			continue;
		}
		if (rc) {
			s_error(s, "send", (uint64_t)-rc, api);
			break;
		}
		atomic_fetch_add_explicit(&s->by_api[api], 1, memory_order_relaxed);
	}
	shmring_close(r);
	return 0;
}

static int s_consumer(void *arg)
{
	struct s_worker *w = arg;
	struct stream *s = w->s;
	struct shmring *r = NULL;
	int rc = shmring_open(s->uri, SHMRING_CONSUMER, NULL, &r);
	if (rc) {
		s_error(s, "consumer open", (uint64_t)-rc, w->id);
		return 1;
	}
	uint64_t last[S_MAXP], rnd = 77 + w->id;
	for (int i = 0; i < S_MAXP; i++)
		last[i] = UINT64_MAX;
	uint8_t m[8][S_MSG_MAX];
	for (;;) {
		if (rc == -EAGAIN)
			sched_yield();          /* timeout 0: the ring was empty */
		unsigned api = (unsigned)(t_rand(&rnd) % 3);
		if (api == 0) {
			ssize_t n = shmring_recv(r, m[0], S_MSG_MAX, s->timeout_ns);
			if ((rc = n < 0 ? (int)n : 0) == -EAGAIN)
				continue;
			if (n < 0)
				break;
			s_check(s, m[0], (size_t)n, last);
		} else if (api == 1) {
			struct shmring_msg z;
			if ((rc = shmring_acquire(r, &z, s->timeout_ns)) == -EAGAIN)
				continue;
			if (rc < 0)
				break;
			s_check(s, z.data, z.len, last);
			if ((rc = shmring_release(r, &z)) < 0)
				break;
		} else {
			struct iovec v[8];
			for (int i = 0; i < 8; i++)
				v[i] = (struct iovec){ m[i], S_MSG_MAX };
			if ((rc = shmring_recv_batch(r, v, 8, s->timeout_ns)) == -EAGAIN)
				continue;
			if (rc < 0)
				break;
			for (int i = 0; i < rc; i++)
				s_check(s, m[i], v[i].iov_len, last);
		}
	}
	if (rc != -EPIPE)
		s_error(s, "recv", (uint64_t)-rc, w->id);
	shmring_close(r);
	return 0;
}

static void *s_thread(void *arg)
{
	struct s_worker *w = arg;
	return (void *)(intptr_t)(w->id >= 100 ? s_consumer(w) : s_producer(w));
}

static void stream_run_t(const char *tag, unsigned np, unsigned nc, uint64_t total, bool threads,
			 int64_t timeout_ns)
{
	uint64_t per = total / np;
	size_t size = sizeof(struct stream) + np * ((per + 7) / 8) + 64;
	struct stream *s = t_shared(size);
	snprintf(s->uri, sizeof(s->uri), "%s", t_ring_uri(tag));
	s->per_prod = per;
	s->timeout_ns = timeout_ns;
	struct shmring *c = mk_ring(s->uri, 256 * 1024, S_MSG_MAX, 0);
	struct s_worker w[S_MAXP + S_MAXP];
	pid_t pids[S_MAXP + S_MAXP];
	pthread_t th[S_MAXP + S_MAXP];
	unsigned n = 0;
	for (unsigned i = 0; i < nc; i++, n++) {
		w[n] = (struct s_worker){ s, 100 + i };
		if (threads)
			cr_assert_eq(pthread_create(&th[n], NULL, s_thread, &w[n]), 0);
		else
			pids[n] = t_spawn(s_consumer, &w[n]);
	}
	for (unsigned i = 0; i < np; i++, n++) {
		w[n] = (struct s_worker){ s, i };
		if (threads)
			cr_assert_eq(pthread_create(&th[n], NULL, s_thread, &w[n]), 0);
		else
			pids[n] = t_spawn(s_producer, &w[n]);
	}
	for (unsigned i = nc; i < n; i++) {
		if (threads)
			pthread_join(th[i], NULL);
		else
			cr_assert_eq(t_wait(pids[i]), 0, "producer %u", i - nc);
	}
	struct shmring *p = open_as(s->uri, SHMRING_PRODUCER);
	cr_assert_eq(shmring_shutdown(p), 0);
	shmring_close(p);
	for (unsigned i = 0; i < nc; i++) {
		if (threads)
			pthread_join(th[i], NULL);
		else
			cr_assert_eq(t_wait(pids[i]), 0, "consumer %u", i);
	}
	cr_assert_eq(atomic_load(&s->errors), 0, "%llu errors, first: %s",
		     (unsigned long long)atomic_load(&s->errors), s->first_error);
	cr_assert_eq(atomic_load(&s->dups), 0, "duplicates");
	cr_assert_eq(atomic_load(&s->received), per * np, "received %llu of %llu",
		     (unsigned long long)atomic_load(&s->received), (unsigned long long)(per * np));
	for (unsigned i = 0; i < np; i++)
		for (uint64_t q = 0; q < per; q++)
			if (!(atomic_load(&s_bitmap(s, i)[q / 8]) & (1u << (q % 8))))
				cr_assert_fail("producer %u message %llu never delivered", i,
					       (unsigned long long)q);
	struct shmring_stats st = t_stats(c);
	cr_assert_eq(st.msgs_sent, per * np);
	cr_assert_eq(st.msgs_recv, per * np);
	cr_assert_eq(st.bytes_recv, atomic_load(&s->bytes));
	cr_assert_eq(st.holes_skipped + st.msgs_dropped + st.stalls_skipped, 0);
	cr_log_info("%s: %u x %u, %llu messages, sleeps %llu, wakes %llu", tag, np, nc,
		    (unsigned long long)st.msgs_recv, (unsigned long long)st.futex_sleeps,
		    (unsigned long long)st.futex_wakes);
	shmring_close(c);
	t_unshared(s, size);
}

static void stream_run(const char *tag, unsigned np, unsigned nc, uint64_t total, bool threads)
{
	stream_run_t(tag, np, nc, total, threads, SHMRING_FOREVER);
}

/* Messages per configuration: 2 million, the floor, under every
 * sanitizer too (about 100 s under ThreadSanitizer); SHMRING_MPMC_MSGS
 * overrides. */
static uint64_t stream_msgs(void)
{
	const char *e = getenv("SHMRING_MPMC_MSGS");
	return e ? strtoull(e, NULL, 10) : 2000000;
}

#if defined(__SANITIZE_THREAD__)
#define STREAM_THREADS true     /* TSan follows threads, not processes */
#else
#define STREAM_THREADS false
#endif

Test(mpmc, stream_1x1) { stream_run("s11", 1, 1, stream_msgs(), STREAM_THREADS); }
Test(mpmc, stream_2x2) { stream_run("s22", 2, 2, stream_msgs(), STREAM_THREADS); }
Test(mpmc, stream_4x4) { stream_run("s44", 4, 4, stream_msgs(), STREAM_THREADS); }
Test(mpmc, stream_8x2) { stream_run("s82", 8, 2, stream_msgs(), STREAM_THREADS); }
/* Timeout 0 everywhere, more processes than CPUs: calls that lose races
 * until their retry budget is spent answer -EAGAIN (batches too). */
Test(mpmc, stream_2x2_nowait) { stream_run_t("s22n", 2, 2, stream_msgs() / 2, STREAM_THREADS, 0); }
Test(mpmc, stream_4x4_nowait) { stream_run_t("s44n", 4, 4, stream_msgs() / 2, STREAM_THREADS, 0); }
#if !defined(__SANITIZE_THREAD__)
Test(mpmc, stream_4x4_threads) { stream_run("s44t", 4, 4, stream_msgs() / 4, true); }
#endif

/* ---- recovery, from memory states built by hand ---------------------------------- */

/* A ring of 16 slots (200-byte messages), and white-box access to it. */
static struct shmring *small_ring(const char *uri, uint32_t stall_ms)
{
	struct shmring *c = mk_ring(uri, 4096, 200, stall_ms);
	cr_assert_eq(mph_of(c)->mp.g.nslots, 16);
	return c;
}

static _Atomic uint64_t *word_of(struct shmring *c, uint64_t t)
{
	return &mpmc_slot(&mph_of(c)->mp.g, t)->word;
}

static void put_u64(struct shmring *p, uint64_t v)
{
	cr_assert_eq(shmring_send(p, &v, sizeof(v), 0), 0);
}

static uint64_t get_u64(struct shmring *q, int64_t timeout_ns)
{
	uint64_t v = 0;
	ssize_t n = shmring_recv(q, &v, sizeof(v), timeout_ns);
	cr_assert_eq(n, (ssize_t)sizeof(v), "recv: %s", shmring_strerror((int)n));
	return v;
}

struct trio {
	struct shmring *c, *p, *q;    /* creator (white-box access), producer, consumer */
};

static struct trio trio_open(const char *tag, uint32_t stall_ms)
{
	const char *uri = t_ring_uri(tag);
	struct trio t = { .c = small_ring(uri, stall_ms) };
	t.p = open_as(uri, SHMRING_PRODUCER);
	t.q = open_as(uri, SHMRING_CONSUMER);
	return t;
}

static void trio_close(struct trio *t)
{
	cr_assert_eq(shmring_close(t->p), 0);
	cr_assert_eq(shmring_close(t->q), 0);
	cr_assert_eq(shmring_close(t->c), 0);
}

static void put_range(struct shmring *p, uint64_t from, uint64_t to)
{
	for (uint64_t i = from; i < to; i++)
		cr_assert_eq(shmring_send(p, &i, sizeof(i), 2000 * MS), 0, "send %llu",
			     (unsigned long long)i);
}

static void get_range(struct shmring *q, uint64_t from, uint64_t to)
{
	for (uint64_t i = from; i < to; i++)
		cr_assert_eq(get_u64(q, 0), i);
}

/* Write a slot word by hand, and move a ticket hint past it. */
static void fabricate(struct shmring *c, uint64_t t, unsigned state, unsigned owner,
		      _Atomic uint64_t *hint)
{
	atomic_store(word_of(c, t), mw_make(t, state, owner));
	if (hint)
		atomic_store(hint, t + 1);
}

/* An owner id that names no live participant (its table slot is free). */
#define NOBODY 100u

static void fabricated_claim(const char *tag, uint32_t len, bool half_written)
{
	struct trio t = trio_open(tag, 60000);        /* stall timeout out of the way */
	struct shmring *c = t.c, *p = t.p, *q = t.q;
	put_u64(p, 1);                                   /* ticket 0 */
	/* ticket 1: claimed by a producer that died before committing */
	atomic_store(word_of(c, 1), mw_make(1, MS_WRITING, NOBODY));
	atomic_store(&mpmc_slot(&mph_of(c)->mp.g, 1)->len, len);
	if (half_written)
		memset(mpmc_payload(&mph_of(c)->mp.g, 1), 0xee, 24);
	put_u64(p, 2);                                   /* goes to ticket 2 */
	cr_assert_eq(get_u64(q, 0), 1);
	cr_assert_eq(get_u64(q, 2000 * MS), 2, "the hole is skipped, nothing else");
	uint64_t v;
	cr_assert_eq(shmring_recv(q, &v, sizeof(v), 0), -EAGAIN);
	struct shmring_stats st = t_stats(c);
	cr_assert_eq(st.holes_skipped, 1);
	cr_assert_eq(st.msgs_dropped + st.stalls_skipped + st.commits_cancelled, 0);
	cr_assert_eq(mw_state(atomic_load(word_of(c, 1))), MS_FREE, "freed for the next lap");
	/* and the ring goes on, lap after lap */
	for (uint64_t i = 0; i < 100; i++) {
		put_u64(p, 100 + i);
		cr_assert_eq(get_u64(q, 0), 100 + i);
	}
	trio_close(&t);
}

Test(mpmc, fabricated_dead_claim_nothing_written) { fabricated_claim("fab0", 0, false); }
Test(mpmc, fabricated_dead_claim_half_written) { fabricated_claim("fab1", 48, true); }
Test(mpmc, fabricated_dead_claim_garbage_length) { fabricated_claim("fab2", 0xffffffffu, true); }

Test(mpmc, fabricated_dead_claim_blocks_a_producer_a_lap_later)
{
	struct trio t = trio_open("fab3", 60000);
	struct shmring *c = t.c, *p = t.p, *q = t.q;
	/* a dead claim at ticket 0 that no consumer has reached yet: the
	 * producer coming round a lap later frees it itself */
	fabricate(c, 0, MS_WRITING, NOBODY, &mph_of(c)->mp.sh->prod_ticket);
	put_range(p, 1, 17);                 /* the last one needs slot 0 */
	get_range(q, 1, 17);
	struct shmring_stats st = t_stats(c);
	cr_assert_eq(st.holes_skipped, 1);
	trio_close(&t);
}

Test(mpmc, fabricated_message_held_by_a_dead_consumer_is_dropped)
{
	struct trio t = trio_open("fab4", 60000);
	struct shmring *c = t.c, *p = t.p, *q = t.q;
	put_range(p, 0, 16);
	/* ticket 0 acquired by a consumer that died holding it */
	fabricate(c, 0, MS_READING, NOBODY, &mph_of(c)->mp.sh->cons_ticket);
	get_range(q, 1, 16);
	put_range(p, 16, 17);                /* frees the dead consumer's slot */
	get_range(q, 16, 17);
	struct shmring_stats st = t_stats(c);
	cr_assert_eq(st.msgs_dropped, 1);
	cr_assert_eq(st.holes_skipped + st.msgs_redelivered, 0);
	trio_close(&t);
}

Test(mpmc, fabricated_orphan_of_a_dead_producer_is_freed)
{
	struct trio t = trio_open("fab5", 60000);
	struct shmring *c = t.c, *p = t.p, *q = t.q;
	/* skipped once while its producer was stopped; the producer died since */
	fabricate(c, 0, MS_ORPHAN, NOBODY, &mph_of(c)->mp.sh->prod_ticket);
	put_range(p, 1, 17);                 /* ticket 16 is slot 0's next lap */
	cr_assert_eq(atomic_load(word_of(c, 0)), mw_make(16, MS_READY, 0), "slot 0 in use again");
	get_range(q, 1, 17);
	struct shmring_stats st = t_stats(c);
	cr_assert_eq(st.stalls_skipped, 0);
	trio_close(&t);
}

Test(mpmc, corrupt_words_are_refused)
{
	struct trio t = trio_open("fab6", 60000);
	struct shmring *c = t.c, *p = t.p, *q = t.q;
	uint64_t v = 0;
	const uint64_t bad[] = {
		mw_make(0, 9, 0),                  /* no such state */
		mw_make(0, MS_WRITING, 200),       /* owner out of range */
		mw_make(0, MS_READY, 3),           /* READY with an owner */
		mw_make(5, MS_READY, 0),           /* another slot's ticket */
		mw_make((uint64_t)-32, MS_FREE, 0),/* two laps behind */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		atomic_store(word_of(c, 0), bad[i]);
		cr_assert_eq(shmring_recv(q, &v, 8, 0), -EPROTO, "word %zu", i);
		cr_assert_eq(shmring_send(p, &v, 8, 0), -EPROTO, "word %zu", i);
	}
	trio_close(&t);
}

Test(mpmc, every_slot_ahead_of_a_stale_hint_is_passed_in_one_lap)
{
	struct trio t = trio_open("fab7", 60000);
	struct shmring *c = t.c, *p = t.p, *q = t.q;
	/* Hints at 0 while every slot stands FREE far ahead: plausible words
	 * (a hint left behind by ages), to be passed with one lap of probes
	 * instead of a ticket at a time until the probing gives up. */
	const uint64_t lap = mph_of(c)->mp.g.nslots, far = lap << 36;
	for (uint64_t i = 0; i < lap; i++)
		atomic_store(word_of(c, i), mw_make(far + i, MS_FREE, 0));
	atomic_store(&mph_of(c)->mp.sh->prod_ticket, 0);
	atomic_store(&mph_of(c)->mp.sh->cons_ticket, 0);
	uint64_t v = 0;
	cr_assert_eq(shmring_recv(q, &v, sizeof(v), 0), -EAGAIN, "empty, not corrupt");
	put_u64(p, 42);
	cr_assert_eq(atomic_load(word_of(c, 0)), mw_make(far, MS_READY, 0), "the lowest ticket");
	cr_assert_eq(get_u64(q, 0), 42);
	for (uint64_t i = 0; i < 3; i++) {           /* and round the laps */
		put_range(p, i * lap, (i + 1) * lap);
		get_range(q, i * lap, (i + 1) * lap);
	}
	trio_close(&t);
}

Test(mpmc, slots_skipped_without_end_do_not_outlast_the_timeout, .timeout = 30)
{
	struct trio t = trio_open("fab8", 60000);
	struct shmring *c = t.c, *p = t.p, *q = t.q;
	/* Every slot holds a claim of a live participant that was skipped
	 * once (ORPHAN) a lap behind the producers: each attempt skips one
	 * more lap and tries again, which never fills a slot.  The call ends
	 * when its time is up. */
	const uint64_t lap = mph_of(c)->mp.g.nslots;
	for (uint64_t i = 0; i < lap; i++)
		atomic_store(word_of(c, i), mw_make(i, MS_ORPHAN, mph_of(q)->mp.me));
	atomic_store(&mph_of(c)->mp.sh->prod_ticket, lap);
	atomic_store(&mph_of(c)->mp.sh->cons_ticket, lap);
	uint64_t v = 7;
	cr_assert_eq(shmring_send(p, &v, sizeof(v), 0), -EAGAIN);
	cr_assert_eq(shmring_send(p, &v, sizeof(v), 20 * MS), -ETIMEDOUT);
	struct iovec iov = { &v, sizeof(v) };
	cr_assert_eq(shmring_send_batch(p, &iov, 1, 20 * MS), -ETIMEDOUT);
	struct shmring_msg m;
	cr_assert_eq(shmring_reserve(p, 8, &m, 0), -EAGAIN);
	trio_close(&t);
}

/* ---- range claims, from memory states built by hand ------------------------------- */

/* The k words of tickets from t on, one lap later and FREE? */
/* n messages from `from` on, each sent and received at once: the ring
 * goes round, lap after lap. */
static void go_round(struct shmring *p, struct shmring *q, uint64_t from, uint64_t n)
{
	for (uint64_t i = from; i < from + n; i++) {
		cr_assert_eq(shmring_send(p, &i, sizeof(i), 5000 * MS), 0, "send %llu",
			     (unsigned long long)i);
		cr_assert_eq(get_u64(q, 5000 * MS), i);
	}
}

static bool range_freed(struct shmring *c, uint64_t t, uint64_t k)
{
	uint64_t lap = mph_of(c)->mp.g.nslots;
	for (uint64_t i = 0; i < k; i++)
		if (atomic_load(word_of(c, t + i)) != mw_make(t + i + lap, MS_FREE, 0))
			return false;
	return true;
}

Test(mpmc, fabricated_range_of_a_dead_producer_is_skipped_whole)
{
	struct trio t = trio_open("rng0", 60000);
	struct shmring *c = t.c, *p = t.p, *q = t.q;
	put_u64(p, 1);                                   /* ticket 0 */
	/* tickets 1..5: one range claim of a producer that died while it
	 * committed: ticket 3's word already READY, with a garbage length */
	atomic_store(word_of(c, 1), mw_make_range(1, MS_WRITING, NOBODY, 5));
	atomic_store(word_of(c, 3), mw_make(3, MS_READY, 0));
	atomic_store(&mpmc_slot(&mph_of(c)->mp.g, 3)->len, 0xffffffffu);
	atomic_store(&mph_of(c)->mp.sh->prod_ticket, 6);
	put_u64(p, 2);                                   /* ticket 6 */
	cr_assert_eq(get_u64(q, 0), 1);
	cr_assert_eq(get_u64(q, 2000 * MS), 2, "the range is skipped, nothing of it delivered");
	uint64_t v;
	cr_assert_eq(shmring_recv(q, &v, sizeof(v), 0), -EAGAIN);
	cr_assert(range_freed(c, 1, 5), "every slot of the range freed for the next lap");
	struct shmring_stats st = t_stats(c);
	cr_assert_eq(st.holes_skipped, 5, "a hole per ticket: %llu",
		     (unsigned long long)st.holes_skipped);
	cr_assert_eq(st.msgs_dropped + st.stalls_skipped + st.commits_cancelled, 0);
	go_round(p, q, 100, 100);
	trio_close(&t);
}

Test(mpmc, fabricated_dead_range_blocks_a_producer_a_lap_later)
{
	struct trio t = trio_open("rng1", 60000);
	struct shmring *c = t.c, *p = t.p, *q = t.q;
	/* a dead range claim of tickets 0..3 no consumer has reached: the
	 * producer coming round to slot 0 frees it, whole */
	atomic_store(word_of(c, 0), mw_make_range(0, MS_WRITING, NOBODY, 4));
	atomic_store(&mph_of(c)->mp.sh->prod_ticket, 4);
	put_range(p, 4, 20);                 /* the last four need slots 0..3 */
	get_range(q, 4, 20);
	cr_assert_eq(t_stats(c).holes_skipped, 4);
	trio_close(&t);
}

Test(mpmc, fabricated_range_taken_by_a_dead_consumer_is_freed)
{
	struct trio t = trio_open("rng2", 60000);
	struct shmring *c = t.c, *p = t.p, *q = t.q;
	put_range(p, 0, 16);
	/* tickets 0..3 taken by one recv_batch of a consumer that died while
	 * it freed them: ticket 1's word already a lap on */
	atomic_store(word_of(c, 0), mw_make_range(0, MS_READING, NOBODY, 4));
	atomic_store(word_of(c, 1), mw_make(17, MS_FREE, 0));
	atomic_store(&mph_of(c)->mp.sh->cons_ticket, 4);
	get_range(q, 4, 16);
	put_range(p, 16, 24);                /* slot 0 again: the range is freed */
	get_range(q, 16, 24);
	uint64_t v;
	cr_assert_eq(shmring_recv(q, &v, sizeof(v), 0), -EAGAIN, "nothing redelivered");
	struct shmring_stats st = t_stats(c);
	cr_assert_eq(st.msgs_dropped + st.holes_skipped + st.msgs_redelivered, 0,
		     "copied out before it was taken: not dropped");
	trio_close(&t);
}

Test(mpmc, stalled_range_claim_is_skipped_and_its_late_commit_refused)
{
	struct trio t = trio_open("rng3", 100);
	struct shmring *c = t.c, *p = t.p, *q = t.q;
	struct mpmc_h *ph = &mph_of(p)->mp;
	put_u64(p, 0);                                   /* ticket 0 */
	/* tickets 1..4: a range claim of p's, which then stalls (p is live:
	 * its liveness lock is held) */
	atomic_store(word_of(c, 1), mw_make_range(1, MS_WRITING, ph->me, 4));
	atomic_store(&mph_of(c)->mp.sh->prod_ticket, 5);
	put_u64(p, 5);
	cr_assert_eq(get_u64(q, 0), 0);
	uint64_t t0 = t_now_ns();
	cr_assert_eq(get_u64(q, 5000 * MS), 5, "the range skipped after the stall timeout");
	cr_assert_geq(t_now_ns() - t0, 90 * MS);
	go_round(p, q, 0, 100);                          /* laps past the stalled range */
	/* the holder comes back and commits what it wrote meanwhile */
	for (uint64_t i = 1; i < 5; i++)
		atomic_store(&mpmc_slot(&ph->g, i)->len, 8);
	cr_assert_eq(mpmc_commit_range(ph, 1, 4), -ECANCELED);
	uint64_t v;
	cr_assert_eq(shmring_recv(q, &v, 8, 0), -EAGAIN, "nothing of the late range");
	go_round(p, q, 200, 40);                         /* its slots are back in use */
	struct shmring_stats st = t_stats(c);
	cr_assert_geq(st.stalls_skipped, 2, "the range, then every lap while stalled");
	cr_assert_eq(st.commits_cancelled, 4);
	cr_assert_eq(st.holes_skipped + st.msgs_dropped, 0);
	trio_close(&t);
}

Test(mpmc, stalled_range_take_is_skipped_and_freed_when_it_returns)
{
	struct trio t = trio_open("rng4", 100);
	struct shmring *c = t.c, *p = t.p, *q = t.q;
	put_range(p, 0, 16);
	/* tickets 0..3 taken by q's recv_batch, which stalls before it
	 * frees them */
	struct mpmc_h *qh = &mph_of(q)->mp;
	atomic_store(word_of(c, 0), mw_make_range(0, MS_READING, qh->me, 4));
	atomic_store(&mph_of(c)->mp.sh->cons_ticket, 4);
	get_range(q, 4, 16);
	go_round(p, q, 16, 100);                         /* producers go round it */
	mpmc_free_range(qh, 0, 4);                       /* it comes back */
	uint64_t lap = qh->g.nslots, w0 = atomic_load(word_of(c, 0));
	cr_assert_eq(mw_state(w0), MS_FREE, "freed");
	cr_assert(range_freed(c, (w0 >> MPMC_TSHIFT) - lap, 4), "at the lap it had reached");
	go_round(p, q, 200, 40);
	struct shmring_stats st = t_stats(c);
	cr_assert_geq(st.stalls_skipped, 1);
	cr_assert_eq(st.msgs_dropped + st.holes_skipped, 0);
	trio_close(&t);
}

Test(mpmc, forged_ranges_are_refused_or_bounded)
{
	struct trio t = trio_open("rng5", 60000);
	struct shmring *c = t.c, *p = t.p, *q = t.q;
	uint64_t v = 0;
	const uint64_t bad[] = {
		mw_make_range(0, MS_READY, 0, 4),           /* READY claims no range */
		mw_make_range(0, MS_FREE, 0, 2),            /* nor does FREE */
		mw_make_range(0, MS_WRITING, 3, MPMC_RANGE_MAX + 1), /* too long */
		mw_make_range(0, MS_WRITING, 3, 17),        /* longer than the ring */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		atomic_store(word_of(c, 0), bad[i]);
		cr_assert_eq(shmring_recv(q, &v, 8, 0), -EPROTO, "word %zu", i);
		cr_assert_eq(shmring_send(p, &v, 8, 0), -EPROTO, "word %zu", i);
	}
	/* A dead owner's range over the whole ring, whose words include a
	 * live consumer's held message: recovery frees what the range can
	 * cover and leaves the held slot to its holder. */
	struct mpmc_h *qh = &mph_of(q)->mp;
	for (uint64_t i = 0; i < 16; i++)
		atomic_store(word_of(c, i), mw_make(i, MS_FREE, 0));
	atomic_store(word_of(c, 0), mw_make_range(0, MS_WRITING, NOBODY, 16));
	atomic_store(word_of(c, 5), mw_make(5, MS_READING, qh->me));
	atomic_store(&mph_of(c)->mp.sh->prod_ticket, 16);
	atomic_store(&mph_of(c)->mp.sh->cons_ticket, 0);
	/* the consumer blocked at ticket 0 finds the owner dead (a slow
	 * build may need a few calls) */
	for (int i = 0; i < 250 && atomic_load(word_of(c, 0)) != mw_make(16, MS_FREE, 0); i++)
		cr_assert_eq(shmring_recv(q, &v, 8, 20 * MS), -ETIMEDOUT, "nothing to take");
	cr_assert_eq(atomic_load(word_of(c, 5)), mw_make(5, MS_READING, qh->me), "left alone");
	cr_assert_eq(atomic_load(word_of(c, 0)), mw_make(16, MS_FREE, 0), "the range freed");
	cr_assert_eq(mpmc_release(qh, 5), 0, "its holder still frees it");
	go_round(p, q, 100, 40);
	trio_close(&t);
}

Test(mpmc, dead_owner_whose_pid_was_reused_is_dead)
{
	const char *uri = t_ring_uri("pid");
	struct shmring *c = small_ring(uri, 60000);
	/* a participant entry that says "active, pid = a live process" (this
	 * one), but whose liveness lock nobody holds: its process died and
	 * the pid went to someone else */
	struct ctl_part *part = &segh_of(c)->ctl->parts[7];
	part->pid = (int32_t)getpid();
	part->start_ticks = 12345;
	atomic_store(&part->roles, ROLE_PRODUCER);
	atomic_store(&part->state, PART_ACTIVE);
	struct shmring_stats st = t_stats(c);
	cr_assert_eq(st.producers, 0, "not counted as live");
	atomic_store(word_of(c, 0), mw_make(0, MS_WRITING, 8));
	atomic_store(&mph_of(c)->mp.sh->prod_ticket, 1);
	struct shmring *p = open_as(uri, SHMRING_PRODUCER);   /* its repair frees slot 7 */
	cr_assert_eq(atomic_load(&part->state), PART_FREE);
	cr_assert_eq(mw_state(atomic_load(word_of(c, 0))), MS_FREE, "swept before reuse");
	struct shmring *q = open_as(uri, SHMRING_CONSUMER);
	put_u64(p, 42);
	cr_assert_eq(get_u64(q, 0), 42);
	cr_assert_eq(shmring_stats(c, &st), 0);
	cr_assert_eq(st.holes_skipped, 1);
	shmring_close(p);
	shmring_close(q);
	shmring_close(c);
}

/* ---- stopped is not dead ----------------------------------------------------------- */

struct stop_box {
	char uri[128];
	_Atomic int ready;
	_Atomic int rc;
	_Atomic int intact;
};

/* In a child: open the box's ring with oflags, or NULL. */
static struct shmring *box_open(struct stop_box *b, int oflags)
{
	struct shmring *r = NULL;
	return shmring_open(b->uri, oflags, NULL, &r) == 0 ? r : NULL;
}

static struct stop_box *box_new(const char *tag, uint32_t stall_ms, struct shmring **c)
{
	struct stop_box *b = t_shared(sizeof(*b));
	snprintf(b->uri, sizeof(b->uri), "%s", t_ring_uri(tag));
	*c = small_ring(b->uri, stall_ms);
	return b;
}

static void box_done(struct stop_box *b, struct trio t)
{
	trio_close(&t);
	t_unshared(b, sizeof(*b));
}

/* In a child: become a consumer and acquire one message; 0 or an exit code. */
static int box_acquire(struct stop_box *b, struct shmring **r, struct shmring_msg *m)
{
	if (!(*r = box_open(b, SHMRING_CONSUMER)))
		return 2;
	return shmring_acquire(*r, m, 5000 * MS) ? 3 : 0;
}

static int stopped_producer(void *arg)
{
	struct stop_box *b = arg;
	struct shmring *r = box_open(b, SHMRING_PRODUCER);
	if (!r)
		return 2;
	struct shmring_msg m;
	if (shmring_reserve(r, 48, &m, 0))
		return 3;
	memset(m.data, 0xab, 24);               /* half written ... */
	atomic_store(&b->ready, 1);
	raise(SIGSTOP);                         /* ... stopped past the timeout ... */
	memset((char *)m.data + 24, 0xab, 24);  /* ... resumed: finishes writing */
	atomic_store(&b->rc, shmring_commit(r, &m));
	shmring_close(r);
	return 0;
}

static void wait_stopped(pid_t kid, _Atomic int *ready)
{
	while (!atomic_load(ready))
		usleep(100);
	int st;
	cr_assert_eq(waitpid(kid, &st, WUNTRACED), kid);
	cr_assert(WIFSTOPPED(st));
}

Test(mpmc, stopped_producer_is_skipped_and_its_late_commit_refused)
{
	struct shmring *c;
	struct stop_box *b = box_new("stop", 100, &c);
	pid_t kid = t_spawn(stopped_producer, b);
	wait_stopped(kid, &b->ready);
	struct shmring *p = open_as(b->uri, SHMRING_PRODUCER);
	struct shmring *q = open_as(b->uri, SHMRING_CONSUMER);
	uint64_t next_in = 0, next_out = 0;
	for (int i = 0; i < 15; i++)
		put_u64(p, next_in++);
	uint64_t t0 = t_now_ns();
	cr_assert_eq(get_u64(q, 5000 * MS), next_out++, "skipped after the stall timeout");
	cr_assert_geq(t_now_ns() - t0, 90 * MS);
	/* many laps past the stopped producer's slot */
	for (int i = 0; i < 100; i++) {
		cr_assert_eq(shmring_send(p, &next_in, 8, 5000 * MS), 0);
		next_in++;
		cr_assert_eq(get_u64(q, 5000 * MS), next_out++);
	}
	kill(kid, SIGCONT);
	cr_assert_eq(t_wait(kid), 0);
	cr_assert_eq(atomic_load(&b->rc), -ECANCELED, "late commit: %s",
		     shmring_strerror(atomic_load(&b->rc)));
	while (next_out < next_in)
		cr_assert_eq(get_u64(q, 0), next_out++, "nothing of the late producer");
	uint64_t v;
	cr_assert_eq(shmring_recv(q, &v, 8, 0), -EAGAIN);
	/* its slot is back in use */
	for (int i = 0; i < 40; i++) {
		put_u64(p, next_in++);
		cr_assert_eq(get_u64(q, 0), next_out++);
	}
	struct shmring_stats st = t_stats(c);
	cr_assert_geq(st.stalls_skipped, 2, "the claim, then every lap while stopped");
	cr_assert_eq(st.commits_cancelled, 1);
	cr_assert_eq(st.holes_skipped + st.msgs_dropped, 0);
	box_done(b, (struct trio){ c, p, q });
}

static int stopped_consumer(void *arg)
{
	struct stop_box *b = arg;
	struct shmring *r;
	struct shmring_msg m;
	int rc = box_acquire(b, &r, &m);
	if (rc)
		return rc;
	uint8_t copy[48];
	if (m.len != sizeof(copy))
		return 4;
	memcpy(copy, m.data, sizeof(copy));
	atomic_store(&b->ready, 1);
	raise(SIGSTOP);
	/* resumed: what it holds must not have been written over */
	atomic_store(&b->intact, memcmp(copy, m.data, sizeof(copy)) == 0);
	atomic_store(&b->rc, shmring_release(r, &m));
	shmring_close(r);
	return 0;
}

Test(mpmc, stopped_consumer_keeps_its_message_while_producers_go_round)
{
	struct shmring *c;
	struct stop_box *b = box_new("stopc", 100, &c);
	struct shmring *p = open_as(b->uri, SHMRING_PRODUCER);
	uint8_t frame[48];
	memset(frame, 0x5a, sizeof(frame));
	cr_assert_eq(shmring_send(p, frame, sizeof(frame), 0), 0);
	pid_t kid = t_spawn(stopped_consumer, b);
	wait_stopped(kid, &b->ready);
	struct shmring *q = open_as(b->uri, SHMRING_CONSUMER);
	for (uint64_t i = 0; i < 100; i++) {
		cr_assert_eq(shmring_send(p, &i, 8, 5000 * MS), 0);
		cr_assert_eq(get_u64(q, 5000 * MS), i);
	}
	kill(kid, SIGCONT);
	cr_assert_eq(t_wait(kid), 0);
	cr_assert(atomic_load(&b->intact), "held message written over");
	cr_assert_eq(atomic_load(&b->rc), 0, "release after the stall: %s",
		     shmring_strerror(atomic_load(&b->rc)));
	for (uint64_t i = 0; i < 40; i++) {
		put_u64(p, i);
		cr_assert_eq(get_u64(q, 0), i);
	}
	struct shmring_stats st = t_stats(c);
	cr_assert_geq(st.stalls_skipped, 1);
	cr_assert_eq(st.msgs_dropped + st.holes_skipped, 0);
	cr_assert_eq(st.msgs_recv, 1 + 100 + 40);
	box_done(b, (struct trio){ c, p, q });
}

static int dying_consumer(void *arg)
{
	struct stop_box *b = arg;
	struct shmring *r;
	struct shmring_msg m;
	int rc = box_acquire(b, &r, &m);
	if (rc)
		return rc;
	raise(SIGKILL);
	return 4;
}

Test(mpmc, consumer_killed_holding_a_message)
{
	struct shmring *c;
	struct stop_box *b = box_new("killc", 60000, &c);
	struct shmring *p = open_as(b->uri, SHMRING_PRODUCER);
	put_u64(p, 999);
	pid_t kid = t_spawn(dying_consumer, b);
	cr_assert_eq(t_wait(kid), 128 + SIGKILL);
	struct shmring *q = open_as(b->uri, SHMRING_CONSUMER);
	for (uint64_t i = 0; i < 100; i++) {
		cr_assert_eq(shmring_send(p, &i, 8, 2000 * MS), 0);
		cr_assert_eq(get_u64(q, 0), i);
	}
	struct shmring_stats st = t_stats(c);
	cr_assert_eq(st.msgs_dropped, 1, "dropped, counted, not redelivered");
	cr_assert_eq(st.msgs_redelivered, 0);
	box_done(b, (struct trio){ c, p, q });
}

Test(mpmc, stale_commit_touches_nobody_elses_message)
{
	struct trio t = trio_open("stale", 60000);
	struct shmring *p = t.p, *q = t.q;
	struct shmring_msg m, a;
	cr_assert_eq(shmring_reserve(p, 8, &m, 0), 0);       /* ticket 0, slot 0 */
	memcpy(m.data, "aaaaaaaa", 8);
	struct shmring_msg stale = m;
	cr_assert_eq(shmring_commit(p, &m), 0);
	cr_assert_eq(shmring_acquire(q, &a, 0), 0);
	cr_assert_eq(shmring_release(q, &a), 0);
	put_range(p, 1, 17);                                   /* ticket 16 is slot 0 again */
	stale.len = 3;
	cr_assert_eq(shmring_commit(p, &stale), -EINVAL, "a commit of a finished reservation");
	get_range(q, 1, 17);                                   /* ticket 16 kept its 8 bytes */
	trio_close(&t);
}

/* ---- the control lock and threads ------------------------------------------ */

/* Threads that share a handle share its open file description, which an
 * OFD lock does not tell apart: the handle's own mutex makes them take
 * turns at the control lock.  (The library's own calls never take it
 * from two threads through one handle; a control-plane call that did
 * would be safe.) */
struct sharers {
	struct shmring *r;
	_Atomic int inside, overlaps, errors;
};

static void *share_lock(void *arg)
{
	struct sharers *s = arg;
	struct mpmc_handle *r = mph_of(s->r);
	for (int i = 0; i < 2000; i++) {
		if (segh_lock(&r->seg, &r->sweep) != 0) {
			atomic_fetch_add(&s->errors, 1);
			continue;
		}
		if (atomic_fetch_add(&s->inside, 1) != 0)
			atomic_fetch_add(&s->overlaps, 1);
		sched_yield();
		atomic_fetch_sub(&s->inside, 1);
		segh_unlock(&r->seg);
	}
	return NULL;
}

Test(mpmc, control_lock_excludes_threads_sharing_a_handle)
{
	const char *uri = t_ring_uri("ctlthr");
	struct shmring *c = mk_ring(uri, 4096, 64, 0);
	struct sharers s = { .r = open_as(uri, SHMRING_PRODUCER | SHMRING_CONSUMER) };
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, share_lock, &s), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	cr_assert_eq(atomic_load(&s.errors), 0);
	cr_assert_eq(atomic_load(&s.overlaps), 0, "two threads inside at once");
	cr_assert_eq(atomic_load(&segh_of(c)->ctl->busy), 0);
	cr_assert_eq(t_stats(c).repairs, 0, "no holder died, no repair");
	cr_assert_eq(shmring_close(s.r), 0);
	shmring_close(c);
}

/* Many threads, each opening and closing handles of its own on one ring:
 * the handles' control locks exclude each other through the kernel, so
 * roles stay consistent (SPSC: one producer, one consumer at a time) and
 * nothing is ever repaired. */
struct churn {
	const char *uri;
	int mpmc;
	_Atomic int holders[2], overlaps, errors, opens;
};

static void *churn_main(void *arg)
{
	struct churn *c = arg;
	for (int i = 0; i < 150; i++) {
		int side = i % 2;
		struct shmring *r = NULL;
		int rc = shmring_open(c->uri, side ? SHMRING_CONSUMER : SHMRING_PRODUCER, NULL, &r);
		if (rc == -EBUSY && !c->mpmc)
			continue;
		if (rc != 0) {
			atomic_fetch_add(&c->errors, 1);
			continue;
		}
		atomic_fetch_add(&c->opens, 1);
		if (atomic_fetch_add(&c->holders[side], 1) != 0 && !c->mpmc)
			atomic_fetch_add(&c->overlaps, 1);
		sched_yield();
		atomic_fetch_sub(&c->holders[side], 1);
		if (shmring_close(r) != 0)
			atomic_fetch_add(&c->errors, 1);
	}
	return NULL;
}

static void churn_run(int kind)
{
	const char *uri = t_ring_uri(kind == SHMRING_MPMC ? "churnm" : "churns");
	struct shmring_opts o = { .kind = kind, .capacity = 8192 };
	struct shmring *mon = NULL;
	cr_assert_eq(shmring_open(uri, SHMRING_CREATE | SHMRING_EXCL, &o, &mon), 0);
	struct churn c = { .uri = uri, .mpmc = kind == SHMRING_MPMC };
	pthread_t t[8];
	for (int i = 0; i < 8; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, churn_main, &c), 0);
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	cr_assert_eq(atomic_load(&c.errors), 0);
	cr_assert_eq(atomic_load(&c.overlaps), 0, "two holders of one SPSC role");
	cr_assert_gt(atomic_load(&c.opens), 0);
	struct shmring_stats s = t_stats(mon);
	cr_assert_eq(s.repairs, 0, "repairs %llu", (unsigned long long)s.repairs);
	cr_assert_eq(s.takeovers, 0);
	cr_assert_eq(s.producers + s.consumers, 0);
	shmring_close(mon);
}

Test(mpmc, control_lock_threads_churn_mpmc_roles) { churn_run(SHMRING_MPMC); }
/* SPSC too: this is the suite ThreadSanitizer runs */
Test(mpmc, control_lock_threads_churn_spsc_roles) { churn_run(SHMRING_SPSC); }
