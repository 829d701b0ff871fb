/* SPDX-License-Identifier: MIT */
/*
 * Broadcast rings (SHMRING_BCAST): every subscriber receives every
 * message, in order, once; a slow subscriber either holds the producer
 * back (blocking rings: until it is evicted or dies) or loses the oldest
 * messages (SHMRING_OVERWRITE) and is told so by -EOVERFLOW; nothing torn
 * is ever handed out.  Real processes, real SIGKILL and SIGSTOP; the
 * threaded cases are the ones ThreadSanitizer checks (make check
 * SAN=thread).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "backend/bcast.h"
#include "ring/bcast.h"
#include "shm/segment.h"

TestSuite(bcast, .fini = t_cleanup, .timeout = 240);

#define MS (1000 * 1000ll)
#define KEY 0x9e3779b97f4a7c15ull

/* ---- messages: a sequence number and a checksummed payload -------------- */

static size_t msg_make(uint8_t *buf, uint64_t seq, uint64_t *rng, size_t max)
{
	size_t len = 8 + (size_t)(t_rand(rng) % (max - 7));
	memcpy(buf, &seq, 8);
	t_fill(buf + 8, len - 8, seq * KEY);
	return len;
}

/* The message's sequence number, or UINT64_MAX if it is torn. */
static uint64_t msg_seq(const uint8_t *buf, size_t len)
{
	uint64_t seq;
	if (len < 8)
		return UINT64_MAX;
	memcpy(&seq, buf, 8);
	return t_check(buf + 8, len - 8, seq * KEY) ? seq : UINT64_MAX;
}

static struct shmring_opts bc_opts(uint64_t cap, uint32_t max_msg, uint32_t flags)
{
	return (struct shmring_opts){ .kind = SHMRING_BCAST, .capacity = cap, .max_msg = max_msg,
				      .flags = flags };
}

static struct shmring *bc_open(const char *uri, int oflags, const struct shmring_opts *o)
{
	struct shmring *r = NULL;
	int rc = shmring_open(uri, oflags, o, &r);
	cr_assert_eq(rc, 0, "open %s 0x%x: %s", uri, oflags, shmring_strerror(rc));
	return r;
}

/* What the processes of a test share. */
#define MAX_SUBS 64
struct box {
	char uri[256];
	struct shmring_opts o;
	_Atomic int ready, go;
	uint64_t msgs;                  /* the producer sends seq 0 .. msgs-1 */
	int slow;                       /* subscribers below it sleep now and then */
	_Atomic uint64_t got[MAX_SUBS], gaps[MAX_SUBS], lost[MAX_SUBS], overflows[MAX_SUBS];
	_Atomic int me;
	int err[MAX_SUBS];
};

static struct box *box_new(const char *uri, const struct shmring_opts *o)
{
	struct box *x = t_shared(sizeof(*x));
	memset(x, 0, sizeof(*x));
	snprintf(x->uri, sizeof(x->uri), "%s", uri);
	x->o = *o;
	return x;
}

/* A subscriber process joins: its index in *me, its handle (NULL if the
 * open failed); counted in ready. */
static struct shmring *join(struct box *x, int *me)
{
	*me = atomic_fetch_add(&x->me, 1);
	struct shmring *q = NULL;
	if (shmring_open(x->uri, SHMRING_CONSUMER, &x->o, &q))
		return NULL;
	atomic_fetch_add(&x->ready, 1);
	return q;
}

/*
 * A subscriber: joins, says so, receives until -EPIPE.  Every message is
 * whole (checksum) and follows the last one; a gap only right after an
 * -EOVERFLOW, and the stats count every gap exactly.  Returns 0 or a code.
 */
static int subscriber(void *arg)
{
	struct box *x = arg;
	int me;
	struct shmring *q = join(x, &me);
	if (!q)
		return 10;
	uint8_t buf[4096];
	uint64_t next = 0, gaps = 0, n = 0, calls = 0;
	bool announced = false;
	for (;;) {
		ssize_t len = shmring_recv(q, buf, sizeof(buf), 30000 * MS);
		if (len == -EPIPE)
			break;
		if (len == -EOVERFLOW) {
			/* (twice in a row: lapped again before it read one) */
			announced = true;
			atomic_fetch_add(&x->overflows[me], 1);
			continue;
		}
		if (len < 0) {
			x->err[me] = (int)len;
			return 12;
		}
		uint64_t seq = msg_seq(buf, (size_t)len);
		if (seq == UINT64_MAX)
			return 13;              /* torn */
		if (seq < next)
			return 14;              /* twice, or out of order */
		if (seq > next && !announced)
			return 15;              /* a gap nobody announced */
		gaps += seq - next;
		announced = false;
		next = seq + 1;
		n++;
		if (me < x->slow && ++calls % 64 == 0)
			t_sleep_ms(1);
	}
	struct shmring_stats st;
	if (shmring_stats(q, &st))
		return 16;
	atomic_store(&x->got[me], n);
	atomic_store(&x->gaps[me], gaps);
	atomic_store(&x->lost[me], st.msgs_lost);
	shmring_close(q);
	return 0;
}

/* The producer of a box: seq 0 .. msgs-1, random sizes up to max, then
 * shutdown.  timeout_ns for each send. */
static void produce(struct box *x, struct shmring *p, size_t max, int64_t timeout_ns)
{
	uint8_t buf[4096];
	uint64_t rng = 42;
	for (uint64_t s = 0; s < x->msgs; s++) {
		size_t len = msg_make(buf, s, &rng, max);
		int rc = shmring_send(p, buf, len, timeout_ns);
		cr_assert_eq(rc, 0, "send %llu: %s", (unsigned long long)s, shmring_strerror(rc));
	}
	cr_assert_eq(shmring_shutdown(p), 0);
}

/* ---- fan-out: every subscriber gets every message ------------------------ */

static void fanout(unsigned subs, uint64_t msgs, uint32_t flags, int slow)
{
	const char *uri = t_ring_uri("fan");
	struct shmring_opts o = bc_opts(1 << 16, 1024, flags);
	struct shmring *p = bc_open(uri, SHMRING_CREATE | SHMRING_EXCL | SHMRING_PRODUCER, &o);
	struct box *x = box_new(uri, &o);
	x->msgs = msgs;
	x->slow = slow;
	pid_t pid[MAX_SUBS];
	for (unsigned i = 0; i < subs; i++)
		pid[i] = t_spawn(subscriber, x);
	cr_assert(t_wait_flag(&x->ready, (int)subs, 60000), "subscribers joined");
	produce(x, p, 1024, SHMRING_FOREVER);
	for (unsigned i = 0; i < subs; i++) {
		int ex = t_wait(pid[i]);
		cr_assert_eq(ex, 0, "subscriber %u: exit %d (rc %d)", i, ex, x->err[i]);
	}
	for (unsigned i = 0; i < subs; i++) {
		uint64_t got = atomic_load(&x->got[i]), gaps = atomic_load(&x->gaps[i]);
		cr_assert_eq(got + gaps, msgs, "subscriber %u: %llu + %llu gaps", i,
			     (unsigned long long)got, (unsigned long long)gaps);
		cr_assert_eq(atomic_load(&x->lost[i]), gaps, "subscriber %u: stats count the gaps",
			     i);
		if (!(flags & SHMRING_OVERWRITE))
			cr_assert_eq(gaps, 0, "subscriber %u: a blocking ring loses nothing", i);
	}
	shmring_close(p);
	t_unshared(x, sizeof(*x));
}

/* Messages per fan-out test: the short form's, or SHMRING_BCAST_MSGS (make
 * torture: 2 million each; with 64 subscribers on 2 CPUs that takes 11 to
 * 13 minutes, mostly futex wake-ups of the subscribers that slept). */
static uint64_t fan_msgs(uint64_t short_form)
{
	const char *n = getenv("SHMRING_BCAST_MSGS");
	return n ? strtoull(n, NULL, 10) : short_form;
}

/* (the timeouts are the long form's) */
Test(bcast, one_subscriber_gets_every_message_in_order, .timeout = 1800)
{
	fanout(1, fan_msgs(40000), 0, 0);
}

Test(bcast, four_subscribers_get_every_message_in_order, .timeout = 1800)
{
	fanout(4, fan_msgs(20000), 0, 0);
}

Test(bcast, sixteen_subscribers_get_every_message_in_order, .timeout = 1800)
{
	fanout(16, fan_msgs(6000), 0, 0);
}

Test(bcast, sixty_four_subscribers_get_every_message_in_order, .timeout = 3600)
{
	fanout(64, fan_msgs(1500), 0, 0);
}

Test(bcast, overwrite_gaps_are_announced_and_counted, .timeout = 1800)
{
	/* two slow subscribers of four: they lose messages, each gap after
	 * one -EOVERFLOW, counted exactly; the fast ones may lose some too */
	fanout(4, fan_msgs(30000), SHMRING_OVERWRITE, 2);
}

/* ---- joining ----------------------------------------------------------- */

static void send_seq(struct shmring *p, uint64_t seq, size_t len)
{
	uint8_t buf[4096];
	memcpy(buf, &seq, 8);
	t_fill(buf + 8, len - 8, seq * KEY);
	int rc = shmring_send(p, buf, len, 10000 * MS);
	cr_assert_eq(rc, 0, "send %llu: %s", (unsigned long long)seq, shmring_strerror(rc));
}

static void recv_seq(struct shmring *q, uint64_t seq)
{
	uint8_t buf[4096];
	ssize_t n = shmring_recv(q, buf, sizeof(buf), 5000 * MS);
	cr_assert_gt(n, 0, "recv %llu: %s", (unsigned long long)seq,
		     shmring_strerror((int)n));
	cr_assert_eq(msg_seq(buf, (size_t)n), seq, "want %llu", (unsigned long long)seq);
}

Test(bcast, late_join_and_oldest, .timeout = 30)
{
	const char *uri = t_ring_uri("late");
	struct shmring_opts o = bc_opts(1 << 16, 512, 0);
	struct shmring *p = bc_open(uri, SHMRING_CREATE | SHMRING_PRODUCER, &o);
	for (uint64_t s = 0; s < 5; s++)
		send_seq(p, s, 40);
	struct shmring *a = bc_open(uri, SHMRING_CONSUMER, &o);
	struct shmring *b = bc_open(uri, SHMRING_CONSUMER | SHMRING_OLDEST, &o);
	uint8_t buf[64];
	cr_assert_eq(shmring_recv(a, buf, sizeof(buf), 0), -EAGAIN, "after it joined only");
	send_seq(p, 5, 40);
	recv_seq(a, 5);
	for (uint64_t s = 0; s < 6; s++)
		recv_seq(b, s);
	struct shmring_caps caps;
	cr_assert_eq(shmring_caps(a, &caps), 0);
	cr_assert(caps.flags & SHMRING_CAP_BCAST);
	cr_assert_eq(caps.max_producers, 1);
	cr_assert_eq(caps.max_consumers, 64);
	shmring_close(a);
	shmring_close(b);
	shmring_close(p);
}

/* The producer moves tail to boundaries it knows (head, or its marks)
 * when that leaves room, and checks the slowest position itself when
 * room is short: on a full ring, k messages received by every subscriber
 * are room for exactly k more, and received by one subscriber alone, none.
 * Records of 64 and 128 bytes tile the ring (no fillers), so "full" and
 * "room for one" are exact; the marks are 256 bytes apart. */
Test(bcast, a_full_ring_has_room_as_soon_as_every_subscriber_received_one, .timeout = 60)
{
	const size_t lens[] = { 48, 112 };     /* + the 16-byte header: 64, 128 */
	for (int l = 0; l < 2; l++) {
		const char *uri = t_ring_uri(l ? "exactroom128" : "exactroom64");
		struct shmring_opts o = bc_opts(1 << 14, 1024, 0);
		o.stall_ms = 3600000;
		struct shmring *p = bc_open(uri, SHMRING_CREATE | SHMRING_PRODUCER, &o);
		struct shmring *a = bc_open(uri, SHMRING_CONSUMER, &o);
		struct shmring *b = bc_open(uri, SHMRING_CONSUMER, &o);
		uint8_t buf[1024] = { 0 };
		uint64_t sent = 0, got = 0;
		const size_t len = lens[l];
		for (int round = 0; round < 300; round++) {
			int rc;
			for (;;) {
				memcpy(buf, &sent, 8);
				if ((rc = shmring_send(p, buf, len, 0)) == -EAGAIN)
					break;
				cr_assert_eq(rc, 0, "send: %s", shmring_strerror(rc));
				sent++;
			}
			/* full: the record, the next header word */
			cr_assert_eq((sent - got + 1) * (16 + len), 1u << 14, "%llu in the ring",
				     (unsigned long long)(sent - got));
			/* take 1 + round % 9 from a first: no room; then from
			 * b: room for exactly as many */
			int k = 1 + round % 9;
			for (int i = 0; i < k; i++)
				cr_assert_eq(shmring_recv(a, buf, sizeof(buf), 0), (ssize_t)len);
			cr_assert_eq(shmring_send(p, buf, len, 0), -EAGAIN, "round %d", round);
			for (int i = 0; i < k; i++) {
				uint64_t seq;
				cr_assert_eq(shmring_recv(b, buf, sizeof(buf), 0), (ssize_t)len);
				memcpy(&seq, buf, 8);
				cr_assert_eq(seq, got + (uint64_t)i);
			}
			got += (uint64_t)k;
			for (int i = 0; i < k; i++, sent++) {
				memcpy(buf, &sent, 8);
				rc = shmring_send(p, buf, len, 0);
				cr_assert_eq(rc, 0, "round %d, %d of %d: %s", round, i, k,
					     shmring_strerror(rc));
			}
			cr_assert_eq(shmring_send(p, buf, len, 0), -EAGAIN, "round %d: too much room", round);
		}
		shmring_close(a);
		shmring_close(b);
		shmring_close(p);
	}
}

/* The producer writes its hints (head, next sequence number) once per
 * publishing call, after the call's records: a subscriber that joins in
 * between reads hints from before records already committed.  It must
 * start after them all the same -- here the hints are set back by hand to
 * where a producer between a batch's commits and its hints leaves them. */
Test(bcast, a_joiner_skips_what_was_committed_before_the_hints_moved, .timeout = 30)
{
	const char *uri = t_ring_uri("hints");
	struct shmring_opts o = bc_opts(1 << 16, 512, 0);
	struct shmring *p = bc_open(uri, SHMRING_CREATE | SHMRING_PRODUCER, &o);
	struct bcast_handle *h = (struct bcast_handle *)(void *)p;
	uint64_t head, seq;
	cr_assert(bc_hints(h->sh, &head, &seq));
	for (uint64_t s = 0; s < 3; s++)
		send_seq(p, s, 40);
	bc_set_hints(h->sh, &h->prod.hint_ver, head, seq);   /* 0..2 not in them yet */
	struct shmring *a = bc_open(uri, SHMRING_CONSUMER, &o);
	struct shmring *b = bc_open(uri, SHMRING_CONSUMER | SHMRING_OLDEST, &o);
	uint8_t buf[64];
	cr_assert_eq(shmring_recv(a, buf, sizeof(buf), 0), -EAGAIN,
		     "nothing committed before the join is delivered");
	send_seq(p, 3, 40);
	recv_seq(a, 3);
	for (uint64_t s = 0; s < 4; s++)
		recv_seq(b, s);        /* the oldest: all of it, stale hints or not */
	struct shmring_stats st;
	cr_assert_eq(shmring_stats(a, &st), 0);
	cr_assert_eq(st.msgs_lost, 0, "no gap announced: it joined after 2");
	shmring_close(a);
	shmring_close(b);
	shmring_close(p);
}

Test(bcast, one_producer_and_64_subscribers, .timeout = 60)
{
	const char *uri = t_ring_uri("limits");
	struct shmring_opts o = bc_opts(1 << 16, 512, 0);
	struct shmring *p = bc_open(uri, SHMRING_CREATE | SHMRING_PRODUCER, &o);
	struct shmring *r = NULL;
	cr_assert_eq(shmring_open(uri, SHMRING_PRODUCER, &o, &r), -EBUSY, "a second producer");
	struct shmring *q[64];
	for (int i = 0; i < 64; i++)
		q[i] = bc_open(uri, SHMRING_CONSUMER, &o);
	cr_assert_eq(shmring_open(uri, SHMRING_CONSUMER, &o, &r), -EBUSY, "a 65th subscriber");
	send_seq(p, 7, 100);
	for (int i = 0; i < 64; i++)
		recv_seq(q[i], 7);
	shmring_close(q[10]);
	q[10] = bc_open(uri, SHMRING_CONSUMER, &o);       /* a line free again */
	for (int i = 0; i < 64; i++)
		shmring_close(q[i]);
	shmring_close(p);
}

Test(bcast, pipe_and_mq_refuse_the_kind)
{
	struct shmring_opts o = bc_opts(1 << 16, 512, 0);
	char u[300];
	snprintf(u, sizeof(u), "pipe:/tmp/%s.fifo", t_name("bcpipe"));
	struct shmring *r = NULL;
	cr_assert_eq(shmring_open(t_remember(u), SHMRING_CREATE, &o, &r), -ENOTSUP);
	snprintf(u, sizeof(u), "mq:%s", t_name("bcmq"));
	cr_assert_eq(shmring_open(t_remember(u), SHMRING_CREATE, &o, &r), -ENOTSUP);
	/* SHMRING_OVERWRITE is a broadcast ring's */
	o.kind = SHMRING_SPSC;
	o.flags = SHMRING_OVERWRITE;
	cr_assert_eq(shmring_open(t_ring_uri("bcspsc"), SHMRING_CREATE, &o, &r), -EINVAL);
}

/* ---- in place: -ESTALE ----------------------------------------------------- */

/*
 * q holds message 0 in place while p sends 1 .. 99, more than the ring
 * holds (an overwrite ring laps q; a blocking one evicts it after its
 * stall): release is -ESTALE, the next receive -EOVERFLOW once, then the
 * oldest message in the ring and the rest in order; the stats count the
 * stale one and the gap.  Returns the first sequence number after it.
 */
static uint64_t stale_then_oldest(struct shmring *p, struct shmring *q)
{
	send_seq(p, 0, 200);
	struct shmring_msg m;
	cr_assert_eq(shmring_acquire(q, &m, 0), 0);
	cr_assert_eq(msg_seq(m.data, m.len), 0);
	for (uint64_t s = 1; s < 100; s++)
		send_seq(p, s, 200);
	cr_assert_eq(shmring_release(q, &m), -ESTALE);
	uint8_t buf[512];
	cr_assert_eq(shmring_recv(q, buf, sizeof(buf), 0), -EOVERFLOW, "the loss, once");
	ssize_t n = shmring_recv(q, buf, sizeof(buf), 0);
	cr_assert_gt(n, 0, "then the oldest in the ring: %s", shmring_strerror((int)n));
	uint64_t first = msg_seq(buf, (size_t)n);
	cr_assert(first > 1 && first < 100, "seq %llu", (unsigned long long)first);
	struct shmring_stats st = t_stats(q);
	cr_assert_eq(st.msgs_lost, first, "the stale one and the %llu before the oldest",
		     (unsigned long long)first - 1);
	for (uint64_t s = first + 1; s < 100; s++)
		recv_seq(q, s);
	return first;
}

Test(bcast, overwritten_while_acquired_is_stale, .timeout = 30)
{
	const char *uri = t_ring_uri("stale");
	struct shmring_opts o = bc_opts(4096, 256, SHMRING_OVERWRITE);
	struct shmring *p = bc_open(uri, SHMRING_CREATE | SHMRING_PRODUCER, &o);
	struct shmring *q = bc_open(uri, SHMRING_CONSUMER, &o);
	(void)stale_then_oldest(p, q);     /* the producer never waits: it laps q */
	shmring_close(q);
	shmring_close(p);
}

/* ---- shutdown --------------------------------------------------------------- */

Test(bcast, shutdown_drains_then_epipe_for_all, .timeout = 30)
{
	const char *uri = t_ring_uri("shut");
	struct shmring_opts o = bc_opts(1 << 16, 512, 0);
	struct shmring *p = bc_open(uri, SHMRING_CREATE | SHMRING_PRODUCER, &o);
	struct shmring *q[3];
	for (int i = 0; i < 3; i++)
		q[i] = bc_open(uri, SHMRING_CONSUMER, &o);
	for (uint64_t s = 0; s < 10; s++)
		send_seq(p, s, 64);
	cr_assert_eq(shmring_shutdown(p), 0);
	cr_assert_eq(shmring_send(p, "x", 1, 0), -EPIPE);
	for (int i = 0; i < 3; i++) {
		for (uint64_t s = 0; s < 10; s++)
			recv_seq(q[i], s);
		uint8_t buf[64];
		struct shmring_msg m;
		cr_assert_eq(shmring_recv(q[i], buf, sizeof(buf), SHMRING_FOREVER), -EPIPE);
		cr_assert_eq(shmring_acquire(q[i], &m, 0), -EPIPE);
		shmring_close(q[i]);
	}
	shmring_close(p);
}

/* ---- dead, stopped and hostile subscribers ---------------------------------- */

/* Joins, says so, waits for `go`, then receives: -EOVERFLOW first (it was
 * evicted or written off meanwhile), then messages to -EPIPE. */
static int parked_subscriber(void *arg)
{
	struct box *x = arg;
	struct shmring *q = NULL;
	if (shmring_open(x->uri, SHMRING_CONSUMER, &x->o, &q))
		return 20;
	atomic_fetch_add(&x->ready, 1);
	while (!atomic_load(&x->go))
		t_sleep_ms(1);
	uint8_t buf[4096];
	ssize_t n = shmring_recv(q, buf, sizeof(buf), 5000 * MS);
	if (n != -EOVERFLOW) {
		x->err[0] = (int)n;
		return 21;
	}
	uint64_t got = 0, last = 0;
	for (;;) {
		n = shmring_recv(q, buf, sizeof(buf), 5000 * MS);
		if (n == -EPIPE)
			break;
		if (n < 0) {
			x->err[0] = (int)n;
			return 22;
		}
		uint64_t seq = msg_seq(buf, (size_t)n);
		if (seq == UINT64_MAX || (got && seq != last + 1))
			return 23;
		last = seq;
		got++;
	}
	struct shmring_stats st;
	if (shmring_stats(q, &st) || st.evictions < 1 || st.msgs_lost < 1)
		return 24;
	atomic_store(&x->got[0], got);
	shmring_close(q);
	return got ? 0 : 25;
}

Test(bcast, a_stopped_subscriber_is_evicted_after_stall_ms, .timeout = 60)
{
	const char *uri = t_ring_uri("stop");
	struct shmring_opts o = bc_opts(4096, 256, 0);
	o.stall_ms = 100;
	struct shmring *p = bc_open(uri, SHMRING_CREATE | SHMRING_PRODUCER, &o);
	struct box *x = box_new(uri, &o);
	pid_t pid = t_spawn(parked_subscriber, x);
	cr_assert(t_wait_flag(&x->ready, 1, 10000));
	cr_assert_eq(kill(pid, SIGSTOP), 0);
	atomic_store(&x->go, 1);
	/* far more than the ring holds: blocks until the eviction */
	for (uint64_t s = 0; s < 200; s++)
		send_seq(p, s, 200);
	cr_assert_eq(kill(pid, SIGCONT), 0);
	t_sleep_ms(50);
	for (uint64_t s = 200; s < 210; s++)
		send_seq(p, s, 200);
	cr_assert_eq(shmring_shutdown(p), 0);
	int ex = t_wait(pid);
	cr_assert_eq(ex, 0, "the subscriber learnt it by -EOVERFLOW (exit %d, rc %d)", ex, x->err[0]);
	struct shmring_stats st = t_stats(p);
	cr_assert_geq(st.evictions, 1);
	shmring_close(p);
	t_unshared(x, sizeof(*x));
}

/* A subscriber that sleeps in every receive: the number of each message
 * it gets, plus one, in got[me]; 0 at -EPIPE. */
static int sleeper(void *arg)
{
	struct box *x = arg;
	int me;
	struct shmring *q = join(x, &me);
	if (!q)
		return 10;
	for (;;) {
		uint8_t buf[256];
		ssize_t n = shmring_recv(q, buf, sizeof(buf), SHMRING_FOREVER);
		if (n == -EPIPE)
			break;
		uint64_t seq = n < 0 ? UINT64_MAX : msg_seq(buf, (size_t)n);
		if (seq == UINT64_MAX) {
			x->err[me] = (int)n;
			return 11;
		}
		atomic_store(&x->got[me], seq + 1);
	}
	shmring_close(q);
	return 0;
}

/* Several subscribers asleep: the producer wakes one and leaves the rest
 * to it ([K7]).  One message wakes all of them: a sleeper nobody woke
 * would look again only after its wait slice (100 ms), so a round that
 * takes that long is a sleeper left asleep.  A loaded machine may delay
 * a round now and then; a lost wake-up delays every round. */
Test(bcast, one_publish_wakes_every_sleeper, .timeout = 120)
{
	enum { SUBS = 6, ROUNDS = 100 };
	const char *uri = t_ring_uri("relay");
	struct shmring_opts o = bc_opts(4096, 256, 0);
	struct shmring *p = bc_open(uri, SHMRING_CREATE | SHMRING_PRODUCER, &o);
	struct box *x = box_new(uri, &o);
	pid_t pid[SUBS];
	for (int i = 0; i < SUBS; i++)
		pid[i] = t_spawn(sleeper, x);
	cr_assert(t_wait_flag(&x->ready, SUBS, 10000));
	unsigned slow = 0;
	uint64_t rng = 7;
	for (uint64_t r = 0; r < ROUNDS; r++) {
		t_sleep_ms(3);          /* far past the spin: every one is asleep */
		uint8_t buf[256];
		size_t len = msg_make(buf, r, &rng, 64);
		cr_assert_eq(shmring_send(p, buf, len, SHMRING_FOREVER), 0);
		uint64_t t0 = t_now_ns();
		for (int i = 0; i < SUBS; i++)
			while (atomic_load(&x->got[i]) < r + 1) {
				cr_assert_lt(t_now_ns() - t0, 10000 * MS, "round %lu: subscriber %d "
					     "never woke", (unsigned long)r, i);
				usleep(100);
			}
		slow += t_now_ns() - t0 >= 90 * MS;
	}
	cr_assert_eq(shmring_shutdown(p), 0);
	for (int i = 0; i < SUBS; i++)
		cr_assert_eq(t_wait(pid[i]), 0, "subscriber exit (rc %d)", x->err[i]);
	cr_assert_leq(slow, ROUNDS / 10, "%u of %d rounds waited for a wait slice: a sleeper "
		      "was left asleep", slow, ROUNDS);
	shmring_close(p);
	t_unshared(x, sizeof(*x));
}

/* A blocking ring's subscriber that holds a message in place while it is
 * evicted: once the producer stops counting it, what it read is checked
 * against tail, so the message written over is -ESTALE at release and the
 * eviction is announced once; then it is counted again and loses nothing. */
Test(bcast, evicted_while_acquired_is_stale, .timeout = 30)
{
	const char *uri = t_ring_uri("evstale");
	struct shmring_opts o = bc_opts(4096, 256, 0);
	o.stall_ms = 50;
	struct shmring *p = bc_open(uri, SHMRING_CREATE | SHMRING_PRODUCER, &o);
	struct shmring *q = bc_open(uri, SHMRING_CONSUMER, &o);
	uint64_t first = stale_then_oldest(p, q);    /* blocked on q until its eviction */
	cr_assert_geq(t_stats(q).evictions, 1);
	/* counted again: the producer waits for it (timeout 0: -EAGAIN), and
	 * it keeps up without losing anything */
	for (uint64_t s = 100; s < 300; s++) {
		send_seq(p, s, 200);
		recv_seq(q, s);
	}
	uint8_t buf[200] = { 0 };
	for (uint64_t s = 300; shmring_send(p, buf, sizeof(buf), 0) == 0; s++)
		cr_assert(s < 400, "a full ring waits for the subscriber it counts");
	cr_assert_eq(t_stats(q).msgs_lost, first);
	shmring_close(q);
	shmring_close(p);
}

static int joined_then_waits(void *arg)
{
	struct box *x = arg;
	struct shmring *q = NULL;
	if (shmring_open(x->uri, SHMRING_CONSUMER, &x->o, &q))
		return 30;
	atomic_fetch_add(&x->ready, 1);
	for (;;)
		pause();
}

Test(bcast, a_killed_subscriber_never_holds_the_producer, .timeout = 60)
{
	const char *uri = t_ring_uri("kill");
	struct shmring_opts o = bc_opts(4096, 256, 0);
	o.stall_ms = 3600000;       /* never an eviction: only its death frees us */
	struct shmring *p = bc_open(uri, SHMRING_CREATE | SHMRING_PRODUCER, &o);
	struct shmring *q = bc_open(uri, SHMRING_CONSUMER, &o);
	struct box *x = box_new(uri, &o);
	pid_t pid = t_spawn(joined_then_waits, x);
	cr_assert(t_wait_flag(&x->ready, 1, 10000));
	cr_assert_eq(kill(pid, SIGKILL), 0);
	cr_assert_eq(t_wait(pid), 128 + SIGKILL);
	/* the live one keeps up; the dead one is written off */
	for (uint64_t s = 0; s < 500; s++) {
		send_seq(p, s, 200);
		recv_seq(q, s);
	}
	struct shmring_stats st = t_stats(p);
	cr_assert_eq(st.consumers, 1, "the dead one is not counted");
	shmring_close(q);
	shmring_close(p);
	t_unshared(x, sizeof(*x));
}

/* A producer that sends seq 0 .. 99, says so, and waits to be killed. */
static int doomed_producer(void *arg)
{
	struct box *x = arg;
	struct shmring *p = NULL;
	if (shmring_open(x->uri, SHMRING_PRODUCER, &x->o, &p))
		return 40;
	uint8_t buf[256];
	for (uint64_t s = 0; s < 100; s++) {
		memcpy(buf, &s, 8);
		t_fill(buf + 8, 56, s * KEY);
		if (shmring_send(p, buf, 64, 5000 * MS))
			return 41;
	}
	atomic_store(&x->ready, 1);
	for (;;)
		pause();
}

Test(bcast, a_killed_producer_is_taken_over, .timeout = 60)
{
	const char *uri = t_ring_uri("takeover");
	struct shmring_opts o = bc_opts(1 << 16, 256, 0);
	struct shmring *q = bc_open(uri, SHMRING_CREATE | SHMRING_CONSUMER, &o);
	struct box *x = box_new(uri, &o);
	pid_t pid = t_spawn(doomed_producer, x);
	cr_assert(t_wait_flag(&x->ready, 1, 10000));
	struct shmring *p = NULL;
	cr_assert_eq(shmring_open(uri, SHMRING_PRODUCER, &o, &p), -EBUSY, "while it lives");
	cr_assert_eq(kill(pid, SIGKILL), 0);
	cr_assert_eq(t_wait(pid), 128 + SIGKILL);
	p = bc_open(uri, SHMRING_PRODUCER, &o);
	for (uint64_t s = 100; s < 200; s++)
		send_seq(p, s, 64);
	for (uint64_t s = 0; s < 200; s++)
		recv_seq(q, s);
	struct shmring_stats st = t_stats(q);
	cr_assert_eq(st.msgs_lost, 0);
	shmring_close(p);
	shmring_close(q);
	t_unshared(x, sizeof(*x));
}

/* The line of subscriber i in the segment file. */
static off_t line_off(uint32_t i)
{
	return (off_t)(SEG_RING_OFF + offsetof(struct bcast_shared, subs) +
		       i * sizeof(struct bc_sub));
}

Test(bcast, a_hostile_subscriber_only_fails_itself, .timeout = 60)
{
	const char *uri = t_ring_uri("hostile");
	const char *path = t_path_of(uri);
	struct shmring_opts o = bc_opts(4096, 256, 0);
	o.stall_ms = 3600000;       /* nonsense is evicted at once, not after a stall */
	struct shmring *p = bc_open(uri, SHMRING_CREATE | SHMRING_PRODUCER, &o);
	struct shmring *a = bc_open(uri, SHMRING_CONSUMER, &o);     /* line 0 */
	struct shmring *h = bc_open(uri, SHMRING_CONSUMER, &o);     /* line 1 */
	struct shmring *b = bc_open(uri, SHMRING_CONSUMER, &o);     /* line 2 */
	uint64_t s = 0;
	/* three kinds of garbage in its line: a position inside a record
	 * (the rest of the line intact, so only the position can give it
	 * away), then a misaligned one and one ahead of the producer, with
	 * the rest of the line garbage too */
	uint64_t bad[3] = { 0, 0xdeadbeef, 1ull << 40 };
	for (int round = 0; round < 3; round++) {
		if (round == 0) {
			/* h read everything, so the next record starts at its
			 * position (at or past tail): 8 bytes into it */
			uint64_t at;
			t_peek(path, line_off(1), &at, 8);
			bad[0] = at + 8;
			send_seq(p, s, 200);
			recv_seq(a, s);
			recv_seq(b, s);
			s++;
		}
		uint8_t junk[sizeof(struct bc_sub)];
		memset(junk, 0xa5, sizeof(junk));
		memcpy(junk, &bad[round], 8);
		t_patch(path, line_off(1), junk, round == 0 ? 8 : sizeof(junk));
		/* more than the ring holds: the producer must not wait on it */
		for (int k = 0; k < 100; k++, s++) {
			send_seq(p, s, 200);
			recv_seq(a, s);
			recv_seq(b, s);
		}
		if (round == 0)
			cr_assert_eq(t_stats(p).evictions, 1, "inside a record, not evicted");
		/* tail stayed a record boundary: a subscriber that starts at
		 * the oldest message reads whole messages, in sequence */
		struct shmring *old = bc_open(uri, SHMRING_CONSUMER | SHMRING_OLDEST, &o);
		uint8_t ob[512];
		ssize_t on;
		uint64_t first = UINT64_MAX, k = 0;
		while ((on = shmring_recv(old, ob, sizeof(ob), 0)) > 0) {
			cr_assert_eq(on, 200, "round %d: a torn record", round);
			if (first == UINT64_MAX)
				first = msg_seq(ob, 200);
			cr_assert_eq(msg_seq(ob, 200), first + k, "round %d", round);
			k++;
		}
		cr_assert_eq(on, -EAGAIN, "round %d: %s", round, shmring_strerror((int)on));
		cr_assert_eq(first + k, s, "round %d: the oldest reader ends at the newest", round);
		shmring_close(old);
		/* it fails alone, and in no worse way than an error */
		uint8_t buf[512];
		ssize_t n = shmring_recv(h, buf, sizeof(buf), 0);
		cr_assert(n == -EOVERFLOW || n == -EPROTO || n == -EAGAIN || n > 0,
			  "round %d: %s", round, shmring_strerror((int)n));
		while (n > 0 || n == -EOVERFLOW)
			n = shmring_recv(h, buf, sizeof(buf), 0);
	}
	struct shmring_stats st = t_stats(p);
	cr_assert_geq(st.evictions, 1);
	shmring_close(h);
	/* the others go on, and so does a new subscriber */
	h = bc_open(uri, SHMRING_CONSUMER, &o);
	send_seq(p, s, 64);
	recv_seq(h, s);
	recv_seq(a, s);
	recv_seq(b, s);
	shmring_close(h);
	shmring_close(a);
	shmring_close(b);
	shmring_close(p);
}

/* ---- the whole API ---------------------------------------------------------- */

Test(bcast, zero_copy_batches_and_doorbells, .timeout = 30)
{
	const char *uri = t_ring_uri("api");
	struct shmring_opts o = bc_opts(1 << 16, 4096, 0);
	struct shmring *p = bc_open(uri, SHMRING_CREATE | SHMRING_PRODUCER, &o);
	struct shmring *q[2] = { bc_open(uri, SHMRING_CONSUMER, &o),
				 bc_open(uri, SHMRING_CONSUMER, &o) };
	int fd = shmring_fd(q[1]);
	cr_assert_geq(fd, 0);
	/* reserve/commit: a frame written once */
	struct shmring_msg m;
	cr_assert_eq(shmring_reserve(p, 3000, &m, 0), 0);
	uint64_t seq = 0;
	memcpy(m.data, &seq, 8);
	t_fill((uint8_t *)m.data + 8, 2992, 0);
	cr_assert_eq(shmring_commit(p, &m), 0);
	/* a batch */
	uint8_t bufs[3][64];
	struct iovec v[3];
	for (int i = 0; i < 3; i++) {
		uint64_t s = (uint64_t)i + 1;
		memcpy(bufs[i], &s, 8);
		t_fill(bufs[i] + 8, 56, s * KEY);
		v[i] = (struct iovec){ bufs[i], 64 };
	}
	cr_assert_eq(shmring_send_batch(p, v, 3, 0), 3);
	for (int k = 0; k < 2; k++) {
		/* read in place by every subscriber */
		cr_assert_eq(shmring_acquire(q[k], &m, 0), 0);
		cr_assert_eq(m.len, 3000);
		cr_assert(t_check((uint8_t *)m.data + 8, 2992, 0));
		cr_assert_eq(shmring_release(q[k], &m), 0);
		uint8_t out[3][64];
		struct iovec w[3] = { { out[0], 64 }, { out[1], 64 }, { out[2], 64 } };
		cr_assert_eq(shmring_recv_batch(q[k], w, 3, 0), 3);
		for (int i = 0; i < 3; i++)
			cr_assert_eq(msg_seq(out[i], w[i].iov_len), (uint64_t)i + 1);
		uint8_t buf[64];
		cr_assert_eq(shmring_recv(q[k], buf, sizeof(buf), 0), -EAGAIN);
	}
	struct shmring_stats st = t_stats(q[0]);
	cr_assert_eq(st.msgs_recv, 4);
	cr_assert_eq(st.lag_msgs, 0);
	cr_assert_eq(st.lag_bytes, 0);
	for (int k = 0; k < 2; k++)
		shmring_close(q[k]);
	shmring_close(p);
}

Test(bcast, file_rings_broadcast_too, .timeout = 30)
{
	char u[300];
	snprintf(u, sizeof(u), "file:/tmp/%s.ring", t_name("bcfile"));
	const char *uri = t_remember(u);
	struct shmring_opts o = bc_opts(1 << 16, 512, 0);
	struct shmring *p = bc_open(uri, SHMRING_CREATE | SHMRING_PRODUCER, &o);
	struct shmring *q[2] = { bc_open(uri, SHMRING_CONSUMER, &o),
				 bc_open(uri, SHMRING_CONSUMER, &o) };
	for (uint64_t s = 0; s < 10; s++)
		send_seq(p, s, 100);
	cr_assert_eq(shmring_flush(p), 0);
	for (int k = 0; k < 2; k++) {
		for (uint64_t s = 0; s < 10; s++)
			recv_seq(q[k], s);
		cr_assert_eq(shmring_flush(q[k]), 0);
		shmring_close(q[k]);
	}
	shmring_close(p);
	/* the records stay for a subscriber that asks for the oldest */
	struct shmring *r = bc_open(uri, SHMRING_CONSUMER | SHMRING_OLDEST, &o);
	recv_seq(r, 0);
	shmring_close(r);
}

/* ---- threads sharing one mapping (what ThreadSanitizer checks) -------------- */

struct th {
	const char *uri;
	struct shmring_opts o;
	uint64_t msgs;
	_Atomic int ready;
	int rc[2];
	uint64_t overflows[2];
};

static void *th_sub(void *arg)
{
	struct th *t = arg;
	struct shmring *q = NULL;
	int me = atomic_load(&t->ready);
	if (shmring_open(t->uri, SHMRING_CONSUMER, &t->o, &q)) {
		t->rc[me] = 1;
		return NULL;
	}
	atomic_fetch_add(&t->ready, 1);
	uint8_t buf[1024];
	uint64_t next = 0;
	bool announced = false;
	for (;;) {
		ssize_t n = shmring_recv(q, buf, sizeof(buf), 30000 * MS);
		if (n == -EPIPE)
			break;
		if (n == -EOVERFLOW) {
			announced = true;
			t->overflows[me]++;
			continue;
		}
		uint64_t seq = n > 0 ? msg_seq(buf, (size_t)n) : UINT64_MAX;
		if (seq == UINT64_MAX || seq < next || (seq > next && !announced)) {
			t->rc[me] = 2;
			break;
		}
		announced = false;
		next = seq + 1;
	}
	shmring_close(q);
	return NULL;
}

Test(bcast, threads_overwrite_nothing_torn, .timeout = 120)
{
	struct th t = { .uri = t_ring_uri("threads"), .o = bc_opts(4096, 512, SHMRING_OVERWRITE),
			.msgs = 20000 };
	struct shmring *p = bc_open(t.uri, SHMRING_CREATE | SHMRING_PRODUCER, &t.o);
	pthread_t th[2];
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(pthread_create(&th[i], NULL, th_sub, &t), 0);
		while (atomic_load(&t.ready) <= i)
			t_sleep_ms(1);
	}
	uint8_t buf[1024];
	uint64_t rng = 7;
	for (uint64_t s = 0; s < t.msgs; s++) {
		size_t len = msg_make(buf, s, &rng, 512);
		cr_assert_eq(shmring_send(p, buf, len, 0), 0, "an overwrite ring never waits");
	}
	cr_assert_eq(shmring_shutdown(p), 0);
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(t.rc[i], 0, "subscriber %d", i);
		cr_log_info("subscriber %d lapped %llu times", i,
			    (unsigned long long)t.overflows[i]);
	}
	shmring_close(p);
}

/* ---- file: rings: named subscribers -------------------------------------- */

static int named_then_killed(void *arg)
{
	struct box *x = arg;
	struct shmring *q = NULL;
	char u[300];
	snprintf(u, sizeof(u), "%s#carol", x->uri);
	if (shmring_open(u, SHMRING_CONSUMER, &x->o, &q))
		return 50;
	atomic_store(&x->ready, 1);
	while (!atomic_load(&x->go))
		t_sleep_ms(1);
	uint8_t buf[256];
	for (int i = 0; i < 3; i++)
		if (shmring_recv(q, buf, sizeof(buf), 5000 * MS) <= 0)
			return 51;
	atomic_store(&x->ready, 2);
	for (;;)
		pause();
}

Test(bcast, named_subscribers_resume_where_they_stopped, .timeout = 60)
{
	char u[300], named[320];
	snprintf(u, sizeof(u), "file:/tmp/%s.ring", t_name("bcnamed"));
	const char *uri = t_remember(u);
	struct shmring_opts o = bc_opts(4096, 256, 0);
	struct shmring *p = bc_open(uri, SHMRING_CREATE | SHMRING_PRODUCER, &o);
	snprintf(named, sizeof(named), "%s#alice", uri);
	struct shmring *q = bc_open(named, SHMRING_CONSUMER, &o);
	struct shmring *r = NULL;
	cr_assert_eq(shmring_open(named, SHMRING_CONSUMER, &o, &r), -EBUSY, "alice is open");
	for (uint64_t s = 0; s < 10; s++)
		send_seq(p, s, 100);
	for (uint64_t s = 0; s < 4; s++)
		recv_seq(q, s);
	shmring_close(q);
	/* gone: the producer does not wait for her, the ring keeps her place */
	for (uint64_t s = 10; s < 12; s++)
		send_seq(p, s, 100);
	q = bc_open(named, SHMRING_CONSUMER, &o);
	for (uint64_t s = 4; s < 12; s++)
		recv_seq(q, s);
	shmring_close(q);
	/* an unnamed subscriber starts fresh */
	q = bc_open(uri, SHMRING_CONSUMER, &o);
	uint8_t buf[256];
	cr_assert_eq(shmring_recv(q, buf, sizeof(buf), 0), -EAGAIN);
	shmring_close(q);
	/* away for longer than the ring holds: the loss is announced, counted */
	for (uint64_t s = 12; s < 100; s++)
		send_seq(p, s, 100);
	q = bc_open(named, SHMRING_CONSUMER, &o);
	cr_assert_eq(shmring_recv(q, buf, sizeof(buf), 0), -EOVERFLOW);
	ssize_t n = shmring_recv(q, buf, sizeof(buf), 0);
	cr_assert_gt(n, 0);
	uint64_t first = msg_seq(buf, (size_t)n);
	cr_assert_gt(first, 12);
	cr_assert_eq(t_stats(q).msgs_lost, first - 12);
	shmring_close(q);
	/* killed: the next open under its name goes on after what it released */
	struct box *x = box_new(uri, &o);
	pid_t pid = t_spawn(named_then_killed, x);
	struct shmring *c = NULL;
	snprintf(named, sizeof(named), "%s#carol", uri);
	cr_assert(t_wait_flag(&x->ready, 1, 10000));
	for (uint64_t s = 100; s < 105; s++)
		send_seq(p, s, 100);
	atomic_store(&x->go, 1);
	cr_assert(t_wait_flag(&x->ready, 2, 10000));
	cr_assert_eq(kill(pid, SIGKILL), 0);
	cr_assert_eq(t_wait(pid), 128 + SIGKILL);
	c = bc_open(named, SHMRING_CONSUMER, &o);
	recv_seq(c, 103);
	shmring_close(c);
	/* names: a shm: name's characters; only broadcast rings have them */
	snprintf(named, sizeof(named), "%s#no/slash", uri);
	cr_assert_eq(shmring_open(named, SHMRING_CONSUMER, &o, &r), -EINVAL);
	snprintf(named, sizeof(named), "%s#", uri);
	cr_assert_eq(shmring_open(named, SHMRING_CONSUMER, &o, &r), -EINVAL);
	shmring_close(p);
	snprintf(u, sizeof(u), "file:/tmp/%s.ring", t_name("bcnamedspsc"));
	uri = t_remember(u);
	struct shmring_opts so = { .capacity = 4096 };
	struct shmring *sp = bc_open(uri, SHMRING_CREATE, &so);
	snprintf(named, sizeof(named), "%s#bob", uri);
	cr_assert_eq(shmring_open(named, SHMRING_CONSUMER, &so, &r), -EINVAL);
	shmring_close(sp);
	t_unshared(x, sizeof(*x));
}

/* ---- joining and leaving while the producer streams ---------------------- */

/* Joins, receives a few messages (consecutive from wherever it started:
 * the producer must count it from its first one), leaves; again until the
 * stream ends. */
static int churner(void *arg)
{
	struct box *x = arg;
	int me = atomic_fetch_add(&x->me, 1);
	uint64_t rng = 1000 + (uint64_t)me;
	uint8_t buf[4096];
	for (int round = 0;; round++) {
		struct shmring *q = NULL;
		if (shmring_open(x->uri, SHMRING_CONSUMER, &x->o, &q))
			return 60;
		if (round == 0)
			atomic_fetch_add(&x->ready, 1);
		uint64_t want = 1 + t_rand(&rng) % 300, next = UINT64_MAX;
		for (uint64_t i = 0; i < want; i++) {
			ssize_t n = shmring_recv(q, buf, sizeof(buf), 30000 * MS);
			if (n == -EPIPE) {
				shmring_close(q);
				return 0;
			}
			if (n < 0) {
				x->err[me] = (int)n;
				return 61;      /* -EOVERFLOW included: blocking, and alive */
			}
			uint64_t seq = msg_seq(buf, (size_t)n);
			if (seq == UINT64_MAX || (next != UINT64_MAX && seq != next))
				return 62;      /* torn, or a gap since it joined */
			next = seq + 1;
			atomic_fetch_add(&x->got[me], 1);
		}
		shmring_close(q);
	}
}

Test(bcast, subscribers_join_and_leave_while_the_producer_streams, .timeout = 240)
{
	const char *uri = t_ring_uri("churn");
	struct shmring_opts o = bc_opts(8192, 1024, 0);
	o.stall_ms = 3600000;       /* nobody is evicted: a gap is a protocol error */
	struct shmring *p = bc_open(uri, SHMRING_CREATE | SHMRING_EXCL | SHMRING_PRODUCER, &o);
	struct box *x = box_new(uri, &o);
	x->msgs = 30000;
	pid_t pid[4];
	for (int i = 0; i < 4; i++)
		pid[i] = t_spawn(churner, x);
	cr_assert(t_wait_flag(&x->ready, 4, 60000), "subscribers joined");
	produce(x, p, 1024, SHMRING_FOREVER);
	for (int i = 0; i < 4; i++) {
		int ex = t_wait(pid[i]);
		cr_assert_eq(ex, 0, "subscriber %d: exit %d (rc %d)", i, ex, x->err[i]);
	}
	for (int i = 0; i < 4; i++)
		cr_assert_gt(atomic_load(&x->got[i]), 0);
	cr_assert_eq(t_stats(p).evictions, 0);
	shmring_close(p);
	t_unshared(x, sizeof(*x));
}

/* The producer decides to stop counting a subscriber (dead, stalled,
 * nonsense) from what it saw of its line; if that holder leaves and a
 * newcomer takes the same line before the decision is carried out, the
 * newcomer stays counted: the producer waits for it, and it loses nothing.
 * (The churn test above meets this by chance; here it is made to happen.) */
Test(bcast, a_decision_about_a_line_spares_its_next_holder, .timeout = 30)
{
	const char *uri = t_ring_uri("linegen");
	struct shmring_opts o = bc_opts(4096, 256, 0);
	o.stall_ms = 3600000;
	struct shmring *p = bc_open(uri, SHMRING_CREATE | SHMRING_PRODUCER, &o);
	struct bcast_handle *ph = (struct bcast_handle *)(void *)p;
	struct shmring *a = bc_open(uri, SHMRING_CONSUMER, &o);
	cr_assert_eq(((struct bcast_handle *)(void *)a)->cons.idx, 0);
	uint64_t s = 0;
	uint8_t buf[512] = { 0 };
	for (;; s++) {
		memcpy(buf, &s, 8);
		if (shmring_send(p, buf, 200, 0) == -EAGAIN)
			break;
	}
	/* the decision: a holds the producer back */
	struct bc_scan sc;
	cr_assert_eq(bc_make_room(&ph->prod, 256, &sc), -EAGAIN);
	cr_assert_eq(sc.holders, 1u, "a, on line 0, holds it back");
	/* a leaves, b takes line 0 */
	shmring_close(a);
	struct shmring *b = bc_open(uri, SHMRING_CONSUMER, &o);
	struct bcast_handle *bh = (struct bcast_handle *)(void *)b;
	cr_assert_eq(bh->cons.idx, 0, "b has a's line");
	/* the decision carried out now: b is not its subject */
	cr_assert_eq(bc_uncount(&ph->prod, sc.holders, true), 0);
	cr_assert(bc_counted(&bh->cons), "b is still counted");
	/* b holds the producer back as soon as the ring is full again, and
	 * receives every message sent since it joined */
	uint64_t first = s, sent = 0;
	for (;; s++, sent++) {
		memcpy(buf, &s, 8);
		int rc = shmring_send(p, buf, 200, 0);
		if (rc == -EAGAIN)
			break;
		cr_assert_eq(rc, 0, "send: %s", shmring_strerror(rc));
		cr_assert_lt(sent, 4096 / 216, "the producer went past b");
	}
	cr_assert_gt(sent, 0);
	for (uint64_t k = 0; k < sent; k++) {
		ssize_t n = shmring_recv(b, buf, sizeof(buf), 0);
		cr_assert_eq(n, 200, "recv %llu: %s", (unsigned long long)k,
			     shmring_strerror((int)n));
		uint64_t seq;
		memcpy(&seq, buf, 8);
		cr_assert_eq(seq, first + k);
	}
	struct shmring_stats st;
	cr_assert_eq(shmring_stats(b, &st), 0);
	cr_assert_eq(st.msgs_lost, 0);
	cr_assert_eq(st.evictions, 0);
	cr_assert_eq(t_stats(p).evictions, 0);
	shmring_close(b);
	shmring_close(p);
}

/* A reboot, simulated on a closed file: another boot id, the old boot's
 * producer and subscriber still marked, records after the last flush. */
Test(bcast, a_reboot_keeps_the_flushed_records_and_named_places, .timeout = 30)
{
	char u[300], named[320];
	snprintf(u, sizeof(u), "file:/tmp/%s.ring", t_name("bcboot"));
	const char *uri = t_remember(u);
	snprintf(named, sizeof(named), "%s#dora", uri);
	struct shmring_opts o = bc_opts(65536, 512, 0);
	struct shmring *p = bc_open(uri, SHMRING_CREATE | SHMRING_PRODUCER, &o);
	struct shmring *q = bc_open(named, SHMRING_CONSUMER, &o);
	for (uint64_t s = 0; s < 20; s++)
		send_seq(p, s, 100);
	cr_assert_eq(shmring_flush(p), 0);
	for (uint64_t s = 0; s < 5; s++)
		recv_seq(q, s);
	cr_assert_eq(shmring_flush(q), 0);
	for (uint64_t s = 20; s < 30; s++)
		send_seq(p, s, 100);       /* never flushed */
	shmring_close(q);
	shmring_close(p);

	t_fake_reboot(t_path_of(uri));
	/* and a subscriber of the old boot */
	uint32_t active = BC_ACTIVE, owner = 2;
	t_patch(t_path_of(uri), line_off(1) + (off_t)offsetof(struct bc_sub, state), &active, 4);
	t_patch(t_path_of(uri), line_off(1) + (off_t)offsetof(struct bc_sub, owner), &owner, 4);

	/* dora goes on after what she released; the cut records are gone */
	q = bc_open(named, SHMRING_CONSUMER, &o);
	/* a new subscriber before any producer: it learns where the ring
	 * goes on from the recovered hints */
	struct shmring *n = bc_open(uri, SHMRING_CONSUMER, &o);
	p = bc_open(uri, SHMRING_PRODUCER, &o);
	for (uint64_t s = 5; s < 20; s++)
		recv_seq(q, s);
	uint8_t buf[512];
	cr_assert_eq(shmring_recv(q, buf, sizeof(buf), 0), -EAGAIN);
	struct shmring_stats st = t_stats(q);
	cr_assert_eq(st.msgs_dropped, 10, "the cut records are counted");
	/* the new subscriber and dora both get what comes next, in sequence */
	send_seq(p, 100, 100);
	recv_seq(q, 100);
	recv_seq(n, 100);
	cr_assert_eq(t_stats(q).msgs_lost, 0);
	shmring_close(n);
	shmring_close(q);
	shmring_close(p);
}

/* ---- crash torture: subscribers and producers killed and replaced -------- */

/* A message's word: the producer's generation above, its own count below. */
#define GEN_SHIFT 40

struct mayhem {
	struct box box;
	_Atomic int stop;               /* the producer shuts the ring down and exits */
	_Atomic int gen;                /* the next producer's generation */
	_Atomic int prod_ready;
};

/* A producer of generation gen: takes the role over (the last one was
 * killed), sends gen:0, gen:1, ... until told to stop, then shuts down. */
static int mayhem_producer(void *arg)
{
	struct mayhem *m = arg;
	uint64_t gen = (uint64_t)atomic_fetch_add(&m->gen, 1) + 1, rng = gen;
	struct shmring *p = NULL;
	int rc;
	/* the killed one may still be on its way out */
	for (int i = 0; (rc = shmring_open(m->box.uri, SHMRING_PRODUCER, &m->box.o, &p)) == -EBUSY &&
			i < 5000; i++)
		t_sleep_ms(2);
	if (rc)
		return 70;
	atomic_store(&m->prod_ready, 1);
	uint8_t buf[1024];
	for (uint64_t s = 0; !atomic_load(&m->stop); s++) {
		size_t len = msg_make(buf, gen << GEN_SHIFT | s, &rng, sizeof(buf));
		/* a dead subscriber is written off within the liveness check,
		 * a stopped one evicted after stall_ms: never this long */
		if ((rc = shmring_send(p, buf, len, 20000 * MS)) != 0)
			return 71;
	}
	return shmring_shutdown(p) ? 72 : 0;
}

/* A subscriber: every message whole; within a generation consecutive
 * unless an -EOVERFLOW (eviction) came first; generations only go up. */
static int mayhem_subscriber(void *arg)
{
	struct mayhem *m = arg;
	struct shmring *q = NULL;
	if (shmring_open(m->box.uri, SHMRING_CONSUMER, &m->box.o, &q))
		return 80;
	atomic_fetch_add(&m->box.ready, 1);
	uint8_t buf[1024];
	uint64_t last = 0;
	bool any = false, announced = false;
	for (;;) {
		ssize_t n = shmring_recv(q, buf, sizeof(buf), 60000 * MS);
		if (n == -EPIPE)
			break;
		if (n == -EOVERFLOW) {
			announced = true;
			continue;
		}
		if (n < 0)
			return 81;
		uint64_t w = msg_seq(buf, (size_t)n);
		if (w == UINT64_MAX)
			return 82;              /* torn */
		uint64_t g = w >> GEN_SHIFT, pg = last >> GEN_SHIFT;
		if (any && (g < pg || (g == pg && w <= last)))
			return 83;              /* twice, or out of order */
		if (any && g == pg && w != last + 1 && !announced)
			return 84;              /* a gap nobody announced */
		last = w;
		any = true;
		announced = false;
	}
	shmring_close(q);
	return 0;
}

static unsigned bcast_kills(void)
{
	const char *n = getenv("SHMRING_BCAST_KILLS");
	return n ? (unsigned)strtoul(n, NULL, 10) : 40;
}

/*
 * Subscribers SIGKILLed and restarted at random, the producer SIGKILLed and
 * replaced, now and then a subscriber SIGSTOPped past stall_ms (evicted: it
 * learns it by -EOVERFLOW after SIGCONT).  The producer never waits on the
 * dead; nothing torn, twice, or lost without a word is ever delivered.
 * make check runs 40 rounds, make torture SHMRING_BCAST_KILLS of them.
 */
Test(bcast, subscribers_and_producers_killed_and_replaced_at_random, .timeout = 3600)
{
	enum { SUBS = 4 };
	const char *uri = t_ring_uri("mayhem");
	struct shmring_opts o = bc_opts(1 << 14, 1024, 0);
	o.stall_ms = 200;
	struct shmring *own = bc_open(uri, SHMRING_CREATE | SHMRING_EXCL, &o);
	struct mayhem *m = t_shared(sizeof(*m));
	memset(m, 0, sizeof(*m));
	snprintf(m->box.uri, sizeof(m->box.uri), "%s", uri);
	m->box.o = o;
	pid_t sub[SUBS], prod;
	for (int i = 0; i < SUBS; i++)
		sub[i] = t_spawn(mayhem_subscriber, m);
	cr_assert(t_wait_flag(&m->box.ready, SUBS, 60000), "subscribers joined");
	prod = t_spawn(mayhem_producer, m);
	cr_assert(t_wait_flag(&m->prod_ready, 1, 60000), "the producer started");
	uint64_t rng = 777;
	unsigned kills = bcast_kills(), stops = 0;
	for (unsigned k = 0; k < kills; k++) {
		t_sleep_ms((long)(t_rand(&rng) % 20));
		unsigned what = (unsigned)(t_rand(&rng) % 8);
		if (what == 0) {
			/* the producer, mid-send or not */
			cr_assert_eq(kill(prod, SIGKILL), 0);
			cr_assert_eq(t_wait(prod), 128 + SIGKILL, "producer: killed, not failed");
			atomic_store(&m->prod_ready, 0);
			prod = t_spawn(mayhem_producer, m);
			cr_assert(t_wait_flag(&m->prod_ready, 1, 60000), "a new producer took over");
			continue;
		}
		int i = (int)(t_rand(&rng) % SUBS);
		if (what == 1 && stops < 3 + kills / 50) {
			/* evicted after stall_ms */
			stops++;
			cr_assert_eq(kill(sub[i], SIGSTOP), 0);
			t_sleep_ms(o.stall_ms + 200);
			cr_assert_eq(kill(sub[i], SIGCONT), 0);
			continue;
		}
		cr_assert_eq(kill(sub[i], SIGKILL), 0);
		int ex = t_wait(sub[i]);
		cr_assert_eq(ex, 128 + SIGKILL, "subscriber %d: killed, not failed (exit %d)", i, ex);
		int ready = atomic_load(&m->box.ready);
		sub[i] = t_spawn(mayhem_subscriber, m);
		cr_assert(t_wait_flag(&m->box.ready, ready + 1, 60000), "a new subscriber joined");
	}
	atomic_store(&m->stop, 1);
	cr_assert_eq(t_wait(prod), 0, "the last producer shut the ring down");
	for (int i = 0; i < SUBS; i++) {
		int ex = t_wait(sub[i]);
		cr_assert_eq(ex, 0, "subscriber %d: exit %d", i, ex);
	}
	if (stops)
		cr_assert_geq(t_stats(own).evictions, 1, "a stopped subscriber was evicted");
	shmring_close(own);
	t_unshared(m, sizeof(*m));
}
