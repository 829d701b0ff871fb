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
#include <sys/mman.h>

#include "common.h"
#include "ring/spsc.h"

#define CAP 4096u

struct region {
	struct spsc_shared *sh;
	struct spsc_geom g;
	struct spsc_prod p;
	struct spsc_cons c;
};

/* A ring starting at position `start`.  The data area is garbage except
 * the word at the start: the protocol must never read a byte it did not
 * publish. */
static void region_init_cap(struct region *r, uint64_t start, uint32_t max_msg, uint64_t cap)
{
	r->sh = aligned_alloc(SPSC_LINE, sizeof(*r->sh));
	cr_assert_not_null(r->sh);
	memset(r->sh, 0, sizeof(*r->sh));
	r->g.data = aligned_alloc(4096, cap);
	cr_assert_not_null(r->g.data);
	memset(r->g.data, 0xee, cap);
	r->g.cap = cap;
	r->g.mask = cap - 1;
	r->g.max_msg = max_msg;
	atomic_store(spsc_word(&r->g, start), 0);
	atomic_store(&r->sh->prod_tail, start);
	atomic_store(&r->sh->cons_head, start);
	atomic_store(&r->sh->cons_read, start);
	cr_assert_eq(spsc_prod_init(&r->p, r->sh, &r->g, false), 0);
	cr_assert_eq(r->p.f.tail, start);
	cr_assert_eq(spsc_cons_init(&r->c, r->sh, &r->g, false), 0);
}

static void region_init(struct region *r, uint64_t start, uint32_t max_msg)
{
	region_init_cap(r, start, max_msg, CAP);
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
	spsc_commit(&r->p, len);
	spsc_published(&r->p);
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
	spsc_release_to(&r->c, end, 1, *len);
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
	cr_assert_lt(r.p.f.tail, UINT64_MAX - 3071, "counters wrapped");
	region_free(&r);
}

Test(spsc, large_payloads_are_64_byte_aligned)
{
	struct region r;
	region_init(&r, 8, 1500);
	uint8_t buf[1500];
	uint64_t rnd = 3;
	for (int i = 0; i < 5000; i++) {
		uint32_t len = (uint32_t)(t_rand(&rnd) % 1501);
		void *at;
		cr_assert_eq(spsc_reserve(&r.p, len, &at), 0);
		if (len >= SPSC_ALIGN_MIN)
			cr_assert_eq((uintptr_t)at & 63u, 0, "payload of %u bytes at %p", len, at);
		t_fill(at, len, (uint64_t)i);
		spsc_commit(&r.p, len);
		uint32_t got;
		cr_assert_eq(get(&r, buf, &got), 0);
		cr_assert_eq(got, len);
		cr_assert(t_check(buf, got, (uint64_t)i));
	}
	region_free(&r);
}

Test(spsc, filler_keeps_records_contiguous)
{
	struct region r;
	region_init(&r, 0, 1500);
	uint8_t buf[1500];
	uint32_t len;
	/* small records (no alignment) up to 3600 bytes, then free them */
	for (int i = 0; i < 30; i++)
		cr_assert_eq(put(&r, buf, 112), 0);
	for (int i = 0; i < 30; i++)
		cr_assert_eq(get(&r, buf, &len), 0);
	cr_assert_eq(r.p.f.tail, 30 * 120);
	/* 1400 bytes do not fit in the 496 left before the end: a filler
	 * takes the rest and the frame starts aligned near the start */
	void *at;
	cr_assert_eq(spsc_reserve(&r.p, 1400, &at), 0);
	cr_assert_eq((uint8_t *)at, r.g.data + 64, "wrapped whole, aligned, not split");
	spsc_commit(&r.p, 1400);
	uint64_t h = atomic_load(spsc_word(&r.g, 3600));
	cr_assert_eq(h >> 32, SPSC_TAG_PAD);
	cr_assert_eq((uint32_t)h, CAP - 3600);
	h = atomic_load(spsc_word(&r.g, 0));
	cr_assert_eq(h, spsc_hdr(56, SPSC_TAG_PAD), "alignment filler at 0");
	cr_assert_eq(get(&r, buf, &len), 0);
	cr_assert_eq(len, 1400, "fillers skipped");
	cr_assert_eq(get(&r, buf, &len), -EAGAIN);
	region_free(&r);
}

/* Reserve, fill with `seq`, commit; returns the payload's offset. */
static uint64_t put_seq(struct region *r, uint32_t len, uint64_t seq)
{
	void *at;
	int rc = spsc_reserve(&r->p, len, &at);
	cr_assert_eq(rc, 0, "message %lu: %d", (unsigned long)seq, rc);
	t_fill(at, len, seq);
	spsc_commit(&r->p, len);
	spsc_published(&r->p);
	return (uint64_t)((uint8_t *)at - r->g.data);
}

static void get_seq(struct region *r, uint32_t want, uint64_t seq)
{
	static uint8_t buf[16384];
	uint32_t len;
	cr_assert_eq(get(r, buf, &len), 0, "message %lu", (unsigned long)seq);
	cr_assert_eq(len, want);
	cr_assert(t_check(buf, len, seq), "message %lu intact", (unsigned long)seq);
}

/*
 * Warm placement (spsc_rewind): in a ring much larger than what is in
 * flight, records go back to the start of the area instead of walking the
 * whole of it -- but only while the consumer is nearly caught up, never
 * over bytes not yet released, and a producer taking over finds the true
 * end behind the early filler.
 */
Test(spsc, big_ring_reuses_warm_memory)
{
	const uint64_t cap = 4u << 20;                 /* spsc_warm(): 256 KiB */
	const uint32_t len = 16384;
	const uint64_t rec = spsc_rec_size(len) + 56, warm = spsc_warm(len, cap);
	struct region r;
	region_init_cap(&r, 0, len, cap);
	uint64_t seq = 0, oldest = 0, far = 0;
	cr_assert_eq(warm, SPSC_WARM);

	/* a consumer that keeps up, or has up to three records in flight:
	 * the area used stays near spsc_warm() */
	for (unsigned inflight = 0; inflight <= 3; inflight++) {
		while (seq - oldest < inflight)
			put_seq(&r, len, seq++);
		far = 0;
		for (int i = 0; i < 1000; i++) {
			uint64_t off = put_seq(&r, len, seq++);
			far = off > far ? off : far;
			get_seq(&r, len, oldest++);
		}
		cr_assert_lt(far, warm + (inflight + 1) * rec, "%u in flight: walked to %lu",
			     inflight, (unsigned long)far);
		while (oldest < seq)
			get_seq(&r, len, oldest++);
	}

	/* a consumer that lags by more than half of it: the producer
	 * goes on forward, the slack of the whole ring stays its own */
	for (int i = 0; i < 12; i++)
		put_seq(&r, len, seq++);
	far = 0;
	for (int i = 0; i < 200; i++) {
		uint64_t off = put_seq(&r, len, seq++);
		far = off > far ? off : far;
		get_seq(&r, len, oldest++);
	}
	cr_assert_gt(far, cap / 2, "a lagging consumer's ring rewound (walked to %lu)",
		     (unsigned long)far);
	uint64_t backlog = 0;
	void *at;
	while (spsc_reserve(&r.p, len, &at) == 0) {
		t_fill(at, len, seq++);
		spsc_commit(&r.p, len);
		backlog++;
	}
	cr_assert_geq((seq - oldest) * rec, cap - 2 * rec, "only %lu bytes of slack",
		      (unsigned long)((seq - oldest) * rec));

	/* a new producer walks the records, fillers included, to the true end */
	uint64_t tail = r.p.f.tail;
	cr_assert_eq(spsc_prod_init(&r.p, r.sh, &r.g, false), 0);
	cr_assert_eq(r.p.f.tail, tail);
	while (oldest < seq)
		get_seq(&r, len, oldest++);
	uint32_t n;
	cr_assert_eq(get(&r, &n, &n), -EAGAIN);
	region_free(&r);
}

/*
 * A producer killed between publishing a group and storing msgs_sent and
 * bytes_sent: the next one counts the group, from the counts stored before
 * the publish.  Killed before the publish: the pending counts are not
 * taken, because they belong to a group that is not in the ring.  The
 * same for a consumer and its release.
 */
Test(spsc, takeover_counts_what_a_dead_holder_did_not)
{
	struct region r;
	region_init(&r, 0, 1500);
	uint8_t msg[300] = {0};
	cr_assert_eq(put(&r, msg, 100), 0);
	cr_assert(spsc_send_short(&r.p, msg, 20));
	struct iovec iov[2] = { { msg, 300 }, { msg, 7 } };
	uint64_t bytes = 0;
	cr_assert_eq(spsc_send_many(&r.p, iov, 2, &bytes), 2);
	/* the caller "died" after the publish, before its counters: what a
	 * kill between [P2] and the counter stores leaves */
	atomic_store(&r.sh->msgs_sent, 0);
	atomic_store(&r.sh->bytes_sent, 0);
	uint64_t tail = r.p.f.tail;
	cr_assert_eq(spsc_prod_init(&r.p, r.sh, &r.g, false), 0);
	cr_assert_eq(r.p.f.tail, tail);
	cr_assert_eq(atomic_load(&r.sh->msgs_sent), 4);
	cr_assert_eq(atomic_load(&r.sh->bytes_sent), 427);
	cr_assert_eq(r.p.f.sent_msgs, 4);
	/* the counts of a group that was never published */
	atomic_store(&r.sh->pend_tail, tail + 64);
	atomic_store(&r.sh->pend_msgs, 5);
	atomic_store(&r.sh->pend_bytes, 500);
	cr_assert_eq(spsc_prod_init(&r.p, r.sh, &r.g, false), 0);
	cr_assert_eq(atomic_load(&r.sh->msgs_sent), 4, "an unpublished group counted");
	cr_assert_eq(atomic_load(&r.sh->bytes_sent), 427);
	cr_assert_eq(r.p.f.sent_bytes, 427);

	/* the same for a consumer killed between a release and its counters */
	uint8_t buf[300];
	uint32_t len;
	for (int i = 0; i < 4; i++)
		cr_assert_eq(get(&r, buf, &len), 0);
	atomic_store(&r.sh->msgs_recv, 0);      /* killed before its counters */
	atomic_store(&r.sh->bytes_recv, 0);
	cr_assert_eq(spsc_cons_init(&r.c, r.sh, &r.g, false), 0);
	cr_assert_eq(atomic_load(&r.sh->msgs_recv), 4);
	cr_assert_eq(atomic_load(&r.sh->bytes_recv), 427);
	atomic_store(&r.sh->pend_head, tail + 64);
	atomic_store(&r.sh->pend_recv, 9);
	cr_assert_eq(spsc_cons_init(&r.c, r.sh, &r.g, false), 0);
	cr_assert_eq(atomic_load(&r.sh->msgs_recv), 4, "a release not made counted");
	cr_assert_eq(r.c.f.recv_msgs, 4);
	region_free(&r);
}

/*
 * Through the API: a consumer holding the first frame after an early end
 * filler has handed the filler back, so the producer has the whole ring
 * again -- not only the start of the area.
 */
Test(spsc, held_frame_after_a_rewind_leaves_the_whole_ring)
{
	const uint64_t cap = 4u << 20;
	const uint32_t len = 65536;
	const char *uri = t_uri("warm");
	struct shmring *r = t_create(uri, cap, len);
	shmring_close(r);
	struct shmring *prod = t_open(uri, SHMRING_PRODUCER);
	struct shmring *cons = t_open(uri, SHMRING_CONSUMER);
	struct shmring_msg m, held = {0};
	uint8_t *lowest = NULL, *last = NULL;
	uint64_t seq = 0, got = 0;
	bool rewound = false;
	for (int i = 0; i < 200 && !rewound; i++) {
		cr_assert_eq(shmring_reserve(prod, len, &m, 0), 0);
		t_fill(m.data, len, seq++);
		cr_assert_eq(shmring_commit(prod, &m), 0);
		cr_assert_eq(shmring_acquire(cons, &held, 0), 0);
		cr_assert(t_check(held.data, held.len, got++));
		uint8_t *p = held.data;
		lowest = lowest && lowest < p ? lowest : p;
		rewound = last && p < last && p == lowest;
		last = p;
		if (!rewound)
			cr_assert_eq(shmring_release(cons, &held), 0);
	}
	cr_assert(rewound, "no frame went back to the start of the area");
	/* the rewound frame is in our hands: fill the ring behind it */
	uint64_t more = 0;
	while (shmring_reserve(prod, len, &m, 0) == 0) {
		t_fill(m.data, len, seq++);
		cr_assert_eq(shmring_commit(prod, &m), 0);
		more++;
	}
	cr_assert_geq((more + 1) * (len + 64), cap - 2 * (len + 64),
		      "%lu frames behind the held one in a %lu-byte ring", (unsigned long)more,
		      (unsigned long)cap);
	cr_assert_eq(shmring_release(cons, &held), 0);
	while (got < seq) {
		cr_assert_eq(shmring_acquire(cons, &m, 0), 0);
		cr_assert(t_check(m.data, m.len, got++));
		cr_assert_eq(shmring_release(cons, &m), 0);
	}
	cr_assert_eq(shmring_acquire(cons, &m, 0), -EAGAIN);
	struct shmring_stats st = t_stats(cons);
	cr_assert_eq(st.msgs_recv, seq, "the handed-back filler is not a message");
	shmring_close(prod);
	shmring_close(cons);
	cr_assert_eq(shmring_unlink(uri), 0);
}

/*
 * A batch is laid out byte for byte as the same messages committed one by
 * one (fillers and alignment included, across the end of the area, from
 * every starting offset), but published by one store: until the group's
 * first word is written the consumer sees nothing.
 */
Test(spsc, send_many_matches_single_commits)
{
	static uint8_t msg[16][700];
	struct iovec iov[16];
	uint64_t rnd = 7;
	for (uint64_t start = 0; start < CAP; start += 8) {
		struct region a, b;
		region_init(&a, start, 700);
		region_init(&b, start, 700);
		unsigned n = 1 + (unsigned)(t_rand(&rnd) % 16);
		for (unsigned i = 0; i < n; i++) {
			/* mostly small, some past SPSC_ALIGN_MIN (aligned payloads) */
			size_t len = t_rand(&rnd) % 4 ? t_rand(&rnd) % 80 : t_rand(&rnd) % 701;
			t_fill(msg[i], len, start + i);
			iov[i] = (struct iovec){ msg[i], len };
		}
		uint64_t bytes = 0, want = 0;
		int k = spsc_send_many(&a.p, iov, n, &bytes);
		cr_assert_geq(k, 1, "start %lu: %d", (unsigned long)start, k);
		for (int i = 0; i < k; i++) {
			cr_assert_eq(put(&b, iov[i].iov_base, (uint32_t)iov[i].iov_len), 0);
			want += iov[i].iov_len;
		}
		if ((unsigned)k < n)   /* stopped only because the next did not fit */
			cr_assert_eq(put(&b, iov[k].iov_base, (uint32_t)iov[k].iov_len), -EAGAIN);
		cr_assert_eq(bytes, want);
		cr_assert_eq(a.p.f.tail, b.p.f.tail, "start %lu: same end", (unsigned long)start);
		for (uint64_t pos = start; pos != a.p.f.tail + 8; pos += 8)
			cr_assert_eq(atomic_load(spsc_word(&a.g, pos)), atomic_load(spsc_word(&b.g, pos)),
				     "start %lu: word at %lu", (unsigned long)start, (unsigned long)pos);
		/* and the consumer's batch reads them all back */
		static uint8_t out[16][700];
		struct iovec rio[16];
		for (int i = 0; i < 16; i++)
			rio[i] = (struct iovec){ out[i], 700 };
		void *data;
		uint32_t len;
		uint64_t end;
		cr_assert_eq(spsc_peek(&a.c, &data, &len, &end), 0);
		cr_assert_eq(len, iov[0].iov_len);
		uint64_t got = 0;
		int more = spsc_recv_more(&a.c, &end, rio + 1, 15, &got);
		cr_assert_eq(more, k - 1, "start %lu: %d of %d", (unsigned long)start, more, k - 1);
		cr_assert_eq(end, a.p.f.tail);
		cr_assert_eq(got + len, want);
		for (int i = 1; i < k; i++) {
			cr_assert_eq(rio[i].iov_len, iov[i].iov_len);
			cr_assert(t_check(out[i], rio[i].iov_len, start + (uint64_t)i));
		}
		region_free(&a);
		region_free(&b);
	}
}

/* Every length 0..130 from 8 source offsets: exactly [0, n) written. */
static void check_copy(bool out)
{
	uint8_t src[160], dst[160];
	for (size_t n = 0; n <= 130; n++)
		for (size_t at = 0; at < 8; at++) {
			t_fill(src, sizeof(src), n);
			memset(dst, 0xa5, sizeof(dst));
			if (out)
				ring_copy_out(dst + 8 + at, src + at, n);
			else
				ring_copy(dst + 8 + at, src + at, n);
			for (size_t i = 0; i < sizeof(dst); i++) {
				bool inside = i >= 8 + at && i < 8 + at + n;
				uint8_t want = inside ? src[i - 8] : 0xa5;
				cr_assert_eq(dst[i], want, "%s, n %zu, offset %zu: byte %zu",
					     out ? "ring_copy_out" : "ring_copy", n, at, i);
			}
		}
}

Test(spsc, copy_is_exact_for_every_short_length)
{
	check_copy(false);
	check_copy(true);
}

Test(spsc, send_many_stops_at_a_bad_message)
{
	struct region r;
	region_init(&r, 0, 100);
	uint8_t m[200] = { 0 };
	uint64_t bytes = 0;
	struct iovec iov[3] = { { m, 10 }, { m, 101 }, { m, 10 } };
	cr_assert_eq(spsc_send_many(&r.p, iov, 3, &bytes), 1, "stops before the too-long one");
	cr_assert_eq(bytes, 10);
	cr_assert_eq(spsc_send_many(&r.p, iov + 1, 2, &bytes), -EMSGSIZE);
	struct iovec nul[2] = { { m, 5 }, { NULL, 5 } };
	cr_assert_eq(spsc_send_many(&r.p, nul, 2, &bytes), 1, "stops before the NULL one");
	cr_assert_eq(spsc_send_many(&r.p, nul + 1, 1, &bytes), -EINVAL);
	/* a full ring: 0, nothing written, the zero word still at the tail */
	uint64_t tail = r.p.f.tail;
	struct iovec big = { m, 100 };
	while (spsc_send_many(&r.p, &big, 1, &bytes) == 1)
		;
	tail = r.p.f.tail;
	cr_assert_eq(spsc_send_many(&r.p, &big, 1, &bytes), 0);
	cr_assert_eq(r.p.f.tail, tail);
	cr_assert_eq(atomic_load(spsc_word(&r.g, tail)), 0);
	/* a consumer index ahead of the producer: -EPROTO, nothing written */
	atomic_store(&r.sh->cons_head, tail + 64);
	cr_assert_eq(spsc_send_many(&r.p, &big, 1, &bytes), -EPROTO);
	cr_assert_eq(atomic_load(spsc_word(&r.g, tail)), 0);
	region_free(&r);
}

Test(spsc, recv_more_stops_at_small_buffer_and_corruption)
{
	struct region r;
	region_init(&r, 0, 100);
	uint8_t m[100], out[3][100];
	for (int i = 0; i < 4; i++)
		cr_assert_eq(put(&r, m, 40), 0);
	struct iovec rio[3] = { { out[0], 40 }, { out[1], 39 }, { out[2], 40 } };
	uint64_t pos = r.c.f.read, bytes = 0;
	cr_assert_eq(spsc_recv_more(&r.c, &pos, rio, 3, &bytes), 1, "stops at the short buffer");
	cr_assert_eq(pos, 48);
	cr_assert_eq(r.c.f.read, 0, "nothing shared moved");
	/* a corrupt header after two good records ends the batch there */
	atomic_store(spsc_word(&r.g, 96), spsc_hdr(5000, SPSC_TAG_MSG));
	struct iovec all[3] = { { out[0], 100 }, { out[1], 100 }, { out[2], 100 } };
	pos = 0;
	bytes = 0;
	cr_assert_eq(spsc_recv_more(&r.c, &pos, all, 3, &bytes), 2);
	cr_assert_eq(pos, 96);
	cr_assert_eq(bytes, 80);
	void *data;
	uint32_t len;
	uint64_t end;
	cr_assert_eq(spsc_parse(&r.g, pos, &data, &len, &end), -EPROTO, "left for the next call");
	region_free(&r);
}

Test(spsc, full_and_empty)
{
	struct region r;
	region_init(&r, 0, 1000);
	uint8_t buf[1000] = { 0 };
	uint32_t len;
	void *at;
	cr_assert_eq(get(&r, buf, &len), -EAGAIN);
	int n = 0;
	while (put(&r, buf, 100) == 0)
		n++;
	/* 112-byte records and always one free header word after them */
	cr_assert_eq(n, (CAP - 8) / 112, "exactly the records that fit");
	/* 64 bytes left: a 48-byte message (56 + 8) fits, 49 does not */
	cr_assert_eq(put(&r, buf, 49), -EAGAIN);
	cr_assert_eq(put(&r, buf, 48), 0);
	cr_assert_eq(put(&r, buf, 0), -EAGAIN);
	n++;
	cr_assert_eq(spsc_reserve(&r.p, 1001, &at), -EMSGSIZE);
	for (int i = 0; i < n; i++)
		cr_assert_eq(get(&r, buf, &len), 0);
	cr_assert_eq(get(&r, buf, &len), -EAGAIN);
	cr_assert_eq(spsc_max_msg_for(CAP), CAP / 2 - 128);
	region_free(&r);
}

Test(spsc, max_msg_always_fits_an_empty_ring)
{
	/* at every starting offset, the largest message fits an empty ring */
	for (uint64_t start = 0; start < CAP; start += 8) {
		struct region r;
		uint32_t max = (uint32_t)spsc_max_msg_for(CAP);
		region_init(&r, start, max);
		void *at;
		cr_assert_eq(spsc_reserve(&r.p, max, &at), 0, "start %lu", (unsigned long)start);
		region_free(&r);
	}
}

/* A message near 4 GiB behind an end filler nearly as long: the filler's
 * length must still fit its header's 32 bits.  The 16 GiB area is reserved
 * address space, never touched except for the header words. */
Test(spsc, largest_message_behind_largest_filler, .timeout = 30)
{
	const uint64_t cap = 1ull << 34;
	uint32_t max = (uint32_t)spsc_max_msg_for(cap);
	cr_assert_eq(max, SPSC_MAX_MSG, "the 32-bit limit, not cap/2 - 128");
	cr_assert_eq(spsc_max_msg_for(1ull << 40), SPSC_MAX_MSG);
	struct spsc_shared *sh = aligned_alloc(SPSC_LINE, sizeof(*sh));
	cr_assert_not_null(sh);
	void *area = mmap(NULL, cap, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	cr_assert_neq(area, MAP_FAILED);
	struct spsc_geom g = { .data = area, .cap = cap, .mask = cap - 1, .max_msg = max };
	uint64_t rec = spsc_rec_size(max);
	/* from a filler one word short of a record to one a cache line longer */
	for (uint64_t d = rec - 8; d <= rec + 64; d += 8) {
		uint64_t start = cap - d;
		memset(sh, 0, sizeof(*sh));
		atomic_store(spsc_word(&g, start), 0);
		atomic_store(&sh->prod_tail, start);
		atomic_store(&sh->cons_head, start);
		atomic_store(&sh->cons_read, start);
		struct spsc_prod p;
		struct spsc_cons c;
		cr_assert_eq(spsc_prod_init(&p, sh, &g, false), 0);
		cr_assert_eq(spsc_cons_init(&c, sh, &g, false), 0);
		void *at, *data;
		uint32_t len;
		uint64_t end;
		cr_assert_eq(spsc_reserve(&p, max, &at), 0, "filler %lu", (unsigned long)d);
		spsc_commit(&p, max);
		spsc_published(&p);
		cr_assert_eq(spsc_peek(&c, &data, &len, &end), 0, "filler %lu", (unsigned long)d);
		cr_assert_eq(len, max);
		cr_assert_eq(data, at);
		spsc_take(&c, end);
		spsc_release_to(&c, end, 1, 0);
		cr_assert_eq(end, p.f.tail);
		/* the next (empty) header word must read as empty */
		cr_assert_eq(spsc_peek(&c, &data, &len, &end), -EAGAIN);
		/* zero the words written, so the next round starts clean */
		cr_assert_eq(madvise(area, cap, MADV_DONTNEED), 0);
	}
	munmap(area, cap);
	free(sh);
}

Test(spsc, corrupt_indices_are_eproto)
{
	struct region r;
	region_init(&r, 64, 1000);
	void *at;
	/* a consumer index ahead of the producer */
	r.p.f.cons_cache = r.p.f.tail - CAP + 8;   /* looks full: forces a reload */
	atomic_store(&r.sh->cons_head, 64 + CAP + 64);
	cr_assert_eq(spsc_reserve(&r.p, 1000, &at), -EPROTO);
	/* misaligned indices */
	atomic_store(&r.sh->cons_head, 68);
	cr_assert_eq(spsc_prod_init(&r.p, r.sh, &r.g, false), -EPROTO);
	cr_assert_eq(spsc_cons_init(&r.c, r.sh, &r.g, false), -EPROTO);
	region_free(&r);
}

Test(spsc, producer_takeover_finds_the_published_end)
{
	struct region r;
	region_init(&r, 0, 1500);
	uint8_t buf[1500] = { 0 };
	uint32_t len;
	for (int i = 0; i < 5; i++)
		cr_assert_eq(put(&r, buf, (uint32_t)(300 * i)), 0);
	cr_assert_eq(get(&r, buf, &len), 0);
	uint64_t tail = r.p.f.tail;
	/* the dead producer's last hint was stale, and it left a half-made
	 * group (payload, next word zeroed, first word not yet stored) */
	atomic_store(&r.sh->prod_tail, 0);
	void *at;
	cr_assert_eq(spsc_reserve(&r.p, 500, &at), 0);
	memset(at, 0x55, 500);
	struct spsc_prod p2;
	cr_assert_eq(spsc_prod_init(&p2, r.sh, &r.g, false), 0);
	cr_assert_eq(p2.f.tail, tail, "continues after the last published record");
	/* a walk that would run past a whole ring is corruption */
	atomic_store(spsc_word(&r.g, tail), spsc_hdr(8, SPSC_TAG_MSG));
	for (uint64_t pos = tail + 16; pos != tail; pos = (pos + 16) % CAP)
		atomic_store(spsc_word(&r.g, pos), spsc_hdr(8, SPSC_TAG_MSG));
	cr_assert_eq(spsc_prod_init(&p2, r.sh, &r.g, false), -EPROTO);
	region_free(&r);
}

Test(spsc, corrupt_records_are_eproto)
{
	uint8_t buf[1500];
	uint32_t len;
	struct {
		uint64_t start;
		uint64_t word;
		uint64_t next_word;   /* the word after a filler */
	} cases[] = {
		{ 0, spsc_hdr(1001, SPSC_TAG_MSG), 0 },          /* longer than max_msg */
		{ 0, spsc_hdr(8, 0xdeadbeef), 0 },               /* unknown tag */
		{ 0, spsc_hdr(CAP, SPSC_TAG_PAD), 0 },           /* filler from offset 0 */
		{ 4000, spsc_hdr(64, SPSC_TAG_PAD), 0 },         /* filler neither to the end nor aligning */
		{ 4000, spsc_hdr(96, SPSC_TAG_PAD), 0 },         /* filler with nothing after it */
		{ 4000, spsc_hdr(96, SPSC_TAG_PAD), spsc_hdr(8, 7) },   /* ... or garbage */
		{ 4032, spsc_hdr(100, SPSC_TAG_MSG), 0 },        /* record running past the end */
		{ 64, spsc_hdr(300, SPSC_TAG_MSG), 0 },          /* large payload not aligned */
		{ 0, spsc_hdr(24, SPSC_TAG_PAD), 0 },            /* alignment filler to a wrong boundary */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct region r;
		region_init(&r, cases[i].start, 1000);
		atomic_store(spsc_word(&r.g, 0), cases[i].next_word);
		atomic_store(spsc_word(&r.g, cases[i].start), cases[i].word);
		cr_assert_eq(get(&r, buf, &len), -EPROTO, "case %zu", i);
		region_free(&r);
	}
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
	cr_assert_eq(put(&r, buf, 1400), 0);   /* behind fillers */
	uint64_t head = atomic_load(&r.sh->cons_head);
	uint64_t tail = r.p.f.tail;
	cr_assert_eq(spsc_count_records(&r.g, head, tail), 2);
	cr_assert_eq(spsc_count_records(&r.g, head, head), 0);
	cr_assert_eq(spsc_count_records(&r.g, head, tail + 8), -EPROTO);
	cr_assert_eq(spsc_count_records(&r.g, head + 8, tail), -EPROTO);
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

static void run_threads_cap(int mode, uint64_t n, uint64_t cap)
{
	const char *uri = t_uri("thr");
	struct shmring *c = t_create(uri, cap, 256);
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

static void run_threads(int mode, uint64_t n)
{
	run_threads_cap(mode, n, 16384);
}

static uint64_t thread_msgs(void)
{
	/* ThreadSanitizer runs about 10x slower */
	const char *b = getenv("SHMRING_TEST_BUILD");
	return b && strstr(b, "thread") ? 100000 : 1000000;
}

/* The waker's fence (sync/wait.h [F1], [F2]): after a wake-up it fences
 * every publish and says so in the sleeping word, so that the other
 * side's next arming needs no membarrier; WAIT_QUIET_MAX publishes for
 * nobody take it back. */
Test(spsc, waker_fences_after_a_wake_until_quiet)
{
	_Atomic uint32_t sleeping = 0, word = 0;
	_Atomic uint64_t wakes = 0;
	struct shmring_inl_fence f = wait_fence_adopt(&sleeping, true);
	cr_assert(!f.on);
	cr_assert(!wait_look(&f, &sleeping), "nobody waits");
	atomic_store(&sleeping, WAIT_POLLING);
	cr_assert(wait_look(&f, &sleeping));
	cr_assert_eq(wait_wake(&sleeping, &word, &wakes, &f), WAIT_POLLING);
	cr_assert(f.on);
	cr_assert_eq(atomic_load(&sleeping), WAIT_FENCED, "the bit the armer reads");
	for (unsigned i = 1; i < WAIT_QUIET_MAX; i++)
		cr_assert(!wait_look(&f, &sleeping));
	cr_assert(f.on, "still fenced after %u quiet publishes", WAIT_QUIET_MAX - 1);
	cr_assert(!wait_look(&f, &sleeping));
	cr_assert(!f.on);
	cr_assert_eq(atomic_load(&sleeping), 0, "light again, and the word says so");
	/* a sleeper's own bits never turn the fence on */
	atomic_store(&sleeping, WAIT_SLEEPING);
	cr_assert(wait_look(&f, &sleeping));
	cr_assert(!f.on);
}

/* Whoever armed while the bit was up may have skipped its membarrier:
 * taking the bit down finds it and wakes it. */
Test(spsc, going_light_wakes_who_armed_while_fenced)
{
	_Atomic uint32_t sleeping = WAIT_FENCED | WAIT_POLLING;
	struct shmring_inl_fence f = { .light = true, .on = true, .quiet = WAIT_QUIET_MAX - 1 };
	cr_assert(wait_unfence(&f, &sleeping), "the poller must be woken");
	cr_assert(!f.on);
	cr_assert_eq(atomic_load(&sleeping), WAIT_POLLING);
	atomic_store(&sleeping, WAIT_FENCED);
	f.on = true;
	cr_assert(!wait_unfence(&f, &sleeping), "nobody to wake");
}

/* A waker role taken over finds the bit its predecessor left, and keeps
 * fencing until it may take it down itself. */
Test(spsc, takeover_adopts_the_fence)
{
	struct region r;
	region_init(&r, 0, 64);
	cr_assert(!r.p.f.wf.on);
	cr_assert(!r.c.f.wf.on);
	atomic_store(&r.sh->cons_sleeping, WAIT_FENCED);
	atomic_store(&r.sh->prod_sleeping, WAIT_FENCED | WAIT_SLEEPING);
	cr_assert_eq(spsc_prod_init(&r.p, r.sh, &r.g, true), 0);
	cr_assert_eq(spsc_cons_init(&r.c, r.sh, &r.g, true), 0);
	cr_assert(r.p.f.wf.on);
	cr_assert(r.c.f.wf.on);
	region_free(&r);
}

Test(spsc, threads_busy_poll, .timeout = 120) { run_threads(0, thread_msgs()); }
Test(spsc, threads_blocking, .timeout = 120) { run_threads(1, thread_msgs()); }
/* a ring large enough for the producer to go back to its start early
 * (spsc_rewind), and for the consumer to hand early fillers back */
Test(spsc, threads_zero_copy_big_ring, .timeout = 120) { run_threads_cap(2, thread_msgs(), 4u << 20); }
Test(spsc, threads_zero_copy, .timeout = 120) { run_threads(2, thread_msgs()); }
Test(spsc, threads_batch, .timeout = 120) { run_threads(3, thread_msgs()); }
