/* SPDX-License-Identifier: MIT */
/*
 * The SPSC ring algorithm on a raw memory region (ring/spsc.h), and the
 * ring driven by two threads through the public API on one shared mapping
 * (the part ThreadSanitizer can check: make check SAN=thread).
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "ring/spsc.h"

#define CAP 4096u

struct region {
	struct spsc_shared *sh;
	struct spsc_geom g;
	struct spsc_prod p;
	struct spsc_cons c;
};

static void region_init(struct region *r, uint64_t start, uint32_t max_msg)
{
	r->sh = aligned_alloc(SPSC_LINE, sizeof(*r->sh));
	cr_assert_not_null(r->sh);
	memset(r->sh, 0, sizeof(*r->sh));
	r->g.data = aligned_alloc(4096, CAP);
	cr_assert_not_null(r->g.data);
	memset(r->g.data, 0xee, CAP);
	r->g.cap = CAP;
	r->g.mask = CAP - 1;
	r->g.max_msg = max_msg;
	atomic_store(&r->sh->prod_tail, start);
	atomic_store(&r->sh->cons_head, start);
	atomic_store(&r->sh->cons_read, start);
	cr_assert_eq(spsc_prod_init(&r->p, r->sh, &r->g), 0);
	cr_assert_eq(spsc_cons_init(&r->c, r->sh, &r->g), 0);
}

static void region_free(struct region *r)
{
	free(r->g.data);
	free(r->sh);
}

static int put(struct region *r, const void *msg, uint32_t len)
{
	void *at;
	int rc = spsc_reserve(&r->p, len, &at);
	if (rc)
		return rc;
	memcpy(at, msg, len);
	spsc_stage(&r->p, len);
	spsc_publish(&r->p);
	return 0;
}

static int get(struct region *r, void *buf, uint32_t *len)
{
	void *data;
	uint64_t end;
	int rc = spsc_peek(&r->c, &data, len, &end);
	if (rc)
		return rc;
	memcpy(buf, data, *len);
	spsc_take(&r->c, end);
	spsc_release_to(&r->c, end);
	return 0;
}

Test(spsc, wraps_at_uint64_max)
{
	struct region r;
	/* start 3 KiB before the 64-bit counters wrap */
	region_init(&r, UINT64_MAX - 3071, 1000);
	uint8_t in[1000], out[1000];
	uint64_t rnd = 42;
	for (uint64_t i = 0; i < 20000; i++) {
		uint32_t len = (uint32_t)(t_rand(&rnd) % 1001);
		t_fill(in, len, i);
		cr_assert_eq(put(&r, in, len), 0, "put %lu", (unsigned long)i);
		uint32_t got;
		cr_assert_eq(get(&r, out, &got), 0);
		cr_assert_eq(got, len);
		cr_assert(t_check(out, got, i), "payload %lu", (unsigned long)i);
	}
	cr_assert_lt(atomic_load(&r.sh->prod_tail), UINT64_MAX - 3071, "counters wrapped");
	region_free(&r);
}

Test(spsc, filler_keeps_records_contiguous)
{
	struct region r;
	region_init(&r, 0, 1500);
	uint8_t buf[1500];
	uint32_t len;
	/* 3 records of 1000+8 -> 3024 bytes used; the 4th cannot fit in the
	 * remaining 1072 bytes before the end once the first two are freed. */
	for (int i = 0; i < 3; i++)
		cr_assert_eq(put(&r, buf, 1000), 0);
	cr_assert_eq(get(&r, buf, &len), 0);
	cr_assert_eq(get(&r, buf, &len), 0);
	void *at;
	cr_assert_eq(spsc_reserve(&r.p, 1400, &at), 0);
	cr_assert_eq((uint8_t *)at, r.g.data + SPSC_HDR, "wrapped to the start, not split");
	uint32_t h[2];
	memcpy(h, r.g.data + 3024, 8);
	cr_assert_eq(h[1], SPSC_TAG_PAD);
	cr_assert_eq(h[0], CAP - 3024);
	spsc_stage(&r.p, 1400);
	spsc_publish(&r.p);
	cr_assert_eq(get(&r, buf, &len), 0);
	cr_assert_eq(len, 1000);
	cr_assert_eq(get(&r, buf, &len), 0);
	cr_assert_eq(len, 1400, "filler skipped");
	cr_assert_eq(get(&r, buf, &len), -EAGAIN);
	region_free(&r);
}

Test(spsc, full_and_empty)
{
	struct region r;
	region_init(&r, 0, 1000);
	uint8_t buf[1000] = { 0 };
	uint32_t len;
	cr_assert_eq(get(&r, buf, &len), -EAGAIN);
	int n = 0;
	while (put(&r, buf, 100) == 0)
		n++;
	cr_assert_eq(n, CAP / 112, "exactly the records that fit");

	/* 64 bytes left: a 56-byte message (64-byte record) fits, 57 does not */
	cr_assert_eq(put(&r, buf, 57), -EAGAIN);
	cr_assert_eq(put(&r, buf, 56), 0);
	cr_assert_eq(put(&r, buf, 0), -EAGAIN);
	n++;
	void *at;
	cr_assert_eq(spsc_reserve(&r.p, 1001, &at), -EMSGSIZE);
	for (int i = 0; i < n; i++)
		cr_assert_eq(get(&r, buf, &len), 0);
	cr_assert_eq(get(&r, buf, &len), -EAGAIN);
	cr_assert_eq(spsc_max_msg_for(CAP), CAP / 2 - 8);
	region_free(&r);
}

Test(spsc, corrupt_indices_are_eproto)
{
	struct region r;
	region_init(&r, 64, 1000);
	uint8_t buf[1000];
	uint32_t len;
	void *at;
	atomic_store(&r.sh->prod_tail, 64 + CAP + 8);     /* more than a ring's worth */
	cr_assert_eq(get(&r, buf, &len), -EPROTO);
	atomic_store(&r.sh->prod_tail, 64 + 12);          /* misaligned */
	cr_assert_eq(get(&r, buf, &len), -EPROTO);
	atomic_store(&r.sh->prod_tail, 8);                /* behind the consumer */
	cr_assert_eq(get(&r, buf, &len), -EPROTO);
	atomic_store(&r.sh->prod_tail, 64);
	/* a consumer index ahead of the producer */
	r.p.cons_cache = r.p.tail - CAP + 8;   /* looks full: forces a reload */
	atomic_store(&r.sh->cons_head, 64 + CAP + 64);
	cr_assert_eq(spsc_reserve(&r.p, 1000, &at), -EPROTO);
	cr_assert_eq(spsc_prod_init(&r.p, r.sh, &r.g), -EPROTO);
	cr_assert_eq(spsc_cons_init(&r.c, r.sh, &r.g), -EPROTO);
	region_free(&r);
}

static void put_raw(struct region *r, uint64_t pos, uint32_t len, uint32_t tag, uint64_t tail)
{
	uint32_t h[2] = { len, tag };
	memcpy(r->g.data + (pos & r->g.mask), h, 8);
	atomic_store(&r->sh->prod_tail, tail);
}

Test(spsc, corrupt_records_are_eproto)
{
	uint8_t buf[1000];
	uint32_t len;
	struct {
		uint64_t start;
		uint32_t len, tag;
		uint64_t tail_add;
	} cases[] = {
		{ 0, 1001, SPSC_TAG_MSG, 1016 },       /* longer than max_msg */
		{ 0, 500, SPSC_TAG_MSG, 256 },         /* record beyond the tail */
		{ 0, 8, 0xdeadbeef, 16 },              /* unknown tag */
		{ 0, CAP, SPSC_TAG_PAD, 16 },          /* filler at offset 0 */
		{ 4000, 64, SPSC_TAG_PAD, 104 },       /* filler not to the end */
		{ 4000, 96, SPSC_TAG_PAD, 96 },        /* filler with nothing after it */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct region r;
		region_init(&r, cases[i].start, 1000);
		put_raw(&r, cases[i].start, cases[i].len, cases[i].tag,
			cases[i].start + cases[i].tail_add);
		cr_assert_eq(get(&r, buf, &len), -EPROTO, "case %zu", i);
		region_free(&r);
	}
	/* a record that would run past the end of the area */
	struct region r;
	region_init(&r, 4080, 1000);
	put_raw(&r, 4080, 100, SPSC_TAG_MSG, 4080 + 112);
	cr_assert_eq(get(&r, buf, &len), -EPROTO, "record crossing the end");
	region_free(&r);
}

Test(spsc, count_records)
{
	struct region r;
	region_init(&r, 0, 1500);
	uint8_t buf[1500] = { 0 };
	uint32_t len;
	for (int i = 0; i < 3; i++)
		cr_assert_eq(put(&r, buf, 1000), 0);
	cr_assert_eq(get(&r, buf, &len), 0);
	cr_assert_eq(get(&r, buf, &len), 0);
	cr_assert_eq(put(&r, buf, 1400), 0);   /* behind a filler */
	uint64_t head = atomic_load(&r.sh->cons_head);
	uint64_t tail = atomic_load(&r.sh->prod_tail);
	cr_assert_eq(spsc_count_records(&r.g, head, tail), 2);
	cr_assert_eq(spsc_count_records(&r.g, head, head), 0);
	cr_assert_eq(spsc_count_records(&r.g, head, tail + 8), -EPROTO);
	cr_assert_eq(spsc_count_records(&r.g, head + 4, tail), -EPROTO);
	region_free(&r);
}

/* ---- two threads, public API, one mapping ------------------------------- */

struct tctx {
	const char *uri;
	uint64_t n;
	int mode;          /* 0 busy-poll copy, 1 blocking copy, 2 zero-copy, 3 batch */
	uint64_t seed;
	int err;
};

static void *producer(void *arg)
{
	struct tctx *t = arg;
	struct shmring *r = t_open(t->uri, SHMRING_PRODUCER);
	uint8_t buf[256];
	uint64_t rnd = t->seed;
	int64_t to = t->mode == 0 ? 0 : SHMRING_FOREVER;
	for (uint64_t i = 0; i < t->n && !t->err;) {
		uint32_t len = 8 + (uint32_t)(t_rand(&rnd) % 249);
		memcpy(buf, &i, 8);
		t_fill(buf + 8, len - 8, i);
		int rc;
		if (t->mode == 2) {
			struct shmring_msg m;
			rc = shmring_reserve(r, len, &m, to);
			if (rc == 0) {
				memcpy(m.data, buf, len);
				rc = shmring_commit(r, &m);
			}
		} else {
			rc = shmring_send(r, buf, len, to);
		}
		if (rc == -EAGAIN)
			continue;
		if (rc) {
			t->err = rc;
			break;
		}
		i++;
	}
	cr_assert_eq(shmring_shutdown(r), 0);
	shmring_close(r);
	return NULL;
}

static int check_msg(const uint8_t *p, size_t len, uint64_t want)
{
	uint64_t seq;
	if (len < 8)
		return 0;
	memcpy(&seq, p, 8);
	return seq == want && t_check(p + 8, len - 8, seq);
}

static void run_threads(int mode, uint64_t n)
{
	const char *uri = t_uri("thr");
	struct shmring *c = t_create(uri, 16384, 256);
	shmring_close(c);
	struct shmring *cons = t_open(uri, SHMRING_CONSUMER);
	struct tctx t = { .uri = uri, .n = n, .mode = mode, .seed = 7 };
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, producer, &t), 0);
	uint64_t want = 0;
	uint8_t buf[256];
	struct iovec iov[32];
	uint8_t bufs[32][256];
	for (;;) {
		if (mode == 3) {
			for (int i = 0; i < 32; i++)
				iov[i] = (struct iovec){ bufs[i], sizeof(bufs[i]) };
			int k = shmring_recv_batch(cons, iov, 32, SHMRING_FOREVER);
			if (k == -EPIPE)
				break;
			cr_assert_gt(k, 0, "recv_batch: %s", shmring_strerror(k));
			for (int i = 0; i < k; i++, want++)
				cr_assert(check_msg(bufs[i], iov[i].iov_len, want), "msg %lu", (unsigned long)want);
		} else if (mode == 2) {
			struct shmring_msg m;
			int rc = shmring_acquire(cons, &m, SHMRING_FOREVER);
			if (rc == -EPIPE)
				break;
			cr_assert_eq(rc, 0, "acquire: %s", shmring_strerror(rc));
			cr_assert(check_msg(m.data, m.len, want), "msg %lu", (unsigned long)want);
			want++;
			cr_assert_eq(shmring_release(cons, &m), 0);
		} else {
			ssize_t k = shmring_recv(cons, buf, sizeof(buf), mode == 0 ? 0 : SHMRING_FOREVER);
			if (k == -EAGAIN)
				continue;
			if (k == -EPIPE)
				break;
			cr_assert_geq(k, 8, "recv: %s", shmring_strerror((int)k));
			cr_assert(check_msg(buf, (size_t)k, want), "msg %lu", (unsigned long)want);
			want++;
		}
	}
	pthread_join(th, NULL);
	cr_assert_eq(t.err, 0, "producer: %s", shmring_strerror(t.err));
	cr_assert_eq(want, n, "received %lu of %lu", (unsigned long)want, (unsigned long)n);
	struct shmring_stats st;
	cr_assert_eq(shmring_stats(cons, &st), 0);
	cr_assert_eq(st.msgs_sent, n);
	cr_assert_eq(st.msgs_recv, n);
	shmring_close(cons);
	shmring_unlink(uri);
}

static uint64_t thread_msgs(void)
{
	/* ThreadSanitizer runs about 10x slower */
	const char *b = getenv("SHMRING_TEST_BUILD");
	return b && strstr(b, "thread") ? 100000 : 1000000;
}

Test(spsc, threads_busy_poll, .timeout = 120) { run_threads(0, thread_msgs()); }
Test(spsc, threads_blocking, .timeout = 120) { run_threads(1, thread_msgs()); }
Test(spsc, threads_zero_copy, .timeout = 120) { run_threads(2, thread_msgs()); }
Test(spsc, threads_batch, .timeout = 120) { run_threads(3, thread_msgs()); }
