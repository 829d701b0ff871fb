/* SPDX-License-Identifier: MIT */
/*
 * Suite `fixed`: SPSC rings of fixed-size messages (SHMRING_FIXED),
 * through the public API, with real processes: the stream contract by
 * every way in and out, the one length, takeover after SIGKILL with exact
 * counters, garbage in the shared counters, shutdown, file: persistence.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common.h"
#include "shmring.h"

#define MS (1000ll * 1000)
#define SIZE 24u                 /* every message: seq, generation, checksum */
#define RING_OFF 16384           /* struct fixed_shared in the segment */
#define PROD_TAIL_OFF (RING_OFF + 0)
#define CONS_HEAD_OFF (RING_OFF + 128)
#define CONS_READ_OFF (RING_OFF + 136)

TestSuite(fixed, .fini = t_cleanup);

/* ---- messages ----------------------------------------------------------- */

struct fmsg {
	uint64_t gen, seq, sum;
};
_Static_assert(sizeof(struct fmsg) == SIZE, "message size");

static uint64_t sum_of(uint64_t gen, uint64_t seq)
{
	return (gen * 0x9e3779b97f4a7c15ull) ^ (seq * 0xc2b2ae3d27d4eb4full) ^ 0x5bd1e995u;
}

static struct fmsg make(uint64_t gen, uint64_t seq)
{
	return (struct fmsg){ gen, seq, sum_of(gen, seq) };
}

static struct shmring *open_fixed(const char *uri, int oflags, uint64_t cap)
{
	struct shmring_opts o = { .max_msg = SIZE, .capacity = cap, .flags = SHMRING_FIXED };
	return t_open_opts(uri, oflags | SHMRING_CREATE, &o);
}

/* ---- the stream, every way in and out ----------------------------------- */

#define STREAM_N 20000u

static const char *stream_uri;

/* Sends 0..STREAM_N-1 by send, send_batch and reserve/commit in turn, then
 * shuts down. */
static int stream_producer(void *arg)
{
	(void)arg;
	struct shmring *r = NULL;
	if (shmring_open(stream_uri, SHMRING_PRODUCER, NULL, &r) < 0)
		return 10;
	uint64_t seq = 0;
	for (unsigned lap = 0; seq < STREAM_N; lap++) {
		int rc;
		if (lap % 3 == 0) {
			struct fmsg m = make(0, seq);
			if ((rc = shmring_send(r, &m, sizeof(m), SHMRING_FOREVER)) < 0)
				return 11;
			seq++;
		} else if (lap % 3 == 1) {
			struct fmsg m[7];
			struct iovec v[7];
			unsigned n = 0;
			for (; n < 7 && seq + n < STREAM_N; n++) {
				m[n] = make(0, seq + n);
				v[n] = (struct iovec){ &m[n], sizeof(m[n]) };
			}
			if ((rc = shmring_send_batch(r, v, n, SHMRING_FOREVER)) < 1)
				return 12;
			seq += (unsigned)rc;
		} else {
			struct shmring_msg z;
			if (shmring_reserve(r, SIZE, &z, SHMRING_FOREVER) < 0)
				return 13;
			struct fmsg m = make(0, seq);
			memcpy(z.data, &m, sizeof(m));
			if (shmring_commit(r, &z) < 0)
				return 14;
			seq++;
		}
	}
	if (shmring_shutdown(r) < 0)
		return 15;
	shmring_close(r);
	return 0;
}

static void expect(const struct fmsg *m, uint64_t gen, uint64_t seq)
{
	cr_assert_eq(m->gen, gen, "gen %llu, expected %llu", (unsigned long long)m->gen,
		     (unsigned long long)gen);
	cr_assert_eq(m->seq, seq, "seq %llu, expected %llu", (unsigned long long)m->seq,
		     (unsigned long long)seq);
	cr_assert_eq(m->sum, sum_of(gen, seq), "torn message at seq %llu", (unsigned long long)seq);
}

Test(fixed, stream_across_processes_every_way, .timeout = 60)
{
	stream_uri = t_ring_uri("fxstream");
	struct shmring *c = open_fixed(stream_uri, SHMRING_CONSUMER, 4096);
	pid_t pid = t_spawn(stream_producer, NULL);
	uint64_t seq = 0;
	for (unsigned lap = 0;; lap++) {
		if (lap % 3 == 0) {
			struct fmsg m;
			ssize_t n = shmring_recv(c, &m, sizeof(m), SHMRING_FOREVER);
			if (n == -EPIPE)
				break;
			cr_assert_eq(n, SIZE, "recv: %zd", n);
			expect(&m, 0, seq++);
		} else if (lap % 3 == 1) {
			struct fmsg m[5];
			struct iovec v[5];
			for (unsigned i = 0; i < 5; i++)
				v[i] = (struct iovec){ &m[i], sizeof(m[i]) };
			int n = shmring_recv_batch(c, v, 5, SHMRING_FOREVER);
			if (n == -EPIPE)
				break;
			cr_assert(n >= 1 && n <= 5, "recv_batch: %d", n);
			for (int i = 0; i < n; i++) {
				cr_assert_eq(v[i].iov_len, SIZE);
				expect(&m[i], 0, seq++);
			}
		} else {
			struct shmring_msg a, b;
			int rc = shmring_acquire(c, &a, SHMRING_FOREVER);
			if (rc == -EPIPE)
				break;
			cr_assert_eq(rc, 0, "acquire: %s", shmring_strerror(rc));
			cr_assert_eq(a.len, SIZE);
			expect(a.data, 0, seq++);
			/* a second one held at once, released in order */
			rc = shmring_acquire(c, &b, 0);
			if (rc == 0) {
				expect(b.data, 0, seq++);
				cr_assert_eq(shmring_release(c, &b), -EINVAL, "out of order");
				cr_assert_eq(shmring_release(c, &a), 0);
				cr_assert_eq(shmring_release(c, &b), 0);
			} else {
				cr_assert(rc == -EAGAIN || rc == -EPIPE, "acquire: %d", rc);
				cr_assert_eq(shmring_release(c, &a), 0);
			}
		}
	}
	cr_assert_eq(seq, STREAM_N);
	cr_assert_eq(t_wait(pid), 0);
	struct shmring_stats st = t_stats(c);
	cr_assert_eq(st.msgs_sent, STREAM_N);
	cr_assert_eq(st.msgs_recv, STREAM_N);
	cr_assert_eq(st.bytes_sent, (uint64_t)STREAM_N * SIZE);
	cr_assert_eq(st.bytes_recv, (uint64_t)STREAM_N * SIZE);
	cr_assert_eq(st.used, 0);
	cr_assert_eq(st.shut_down, 1);
	shmring_close(c);
}

/* ---- the format and the one length -------------------------------------- */

Test(fixed, every_message_has_the_one_length)
{
	const char *uri = t_ring_uri("fxlen");
	struct shmring *p = open_fixed(uri, SHMRING_PRODUCER, 4096);
	struct shmring *c = t_open(uri, SHMRING_CONSUMER);
	struct fmsg m = make(0, 0), got[2];
	char big[64] = { 0 };
	cr_assert_eq(shmring_send(p, &m, SIZE - 1, 0), -EMSGSIZE);
	cr_assert_eq(shmring_send(p, big, SIZE + 1, 0), -EMSGSIZE);
	cr_assert_eq(shmring_send(p, NULL, 0, 0), -EMSGSIZE);
	struct shmring_msg z;
	cr_assert_eq(shmring_reserve(p, SIZE - 8, &z, 0), -EMSGSIZE);
	cr_assert_eq(shmring_reserve(p, SIZE, &z, 0), 0);
	cr_assert_eq(shmring_send(p, &m, SIZE, 0), -EINPROGRESS);
	z.len = SIZE - 8;
	cr_assert_eq(shmring_commit(p, &z), -EMSGSIZE, "a shorter commit");
	z.len = SIZE;
	memcpy(z.data, &m, SIZE);
	cr_assert_eq(shmring_commit(p, &z), 0);
	struct iovec v[2] = { { &m, SIZE }, { big, SIZE - 4 } };
	cr_assert_eq(shmring_send_batch(p, v + 1, 1, 0), -EMSGSIZE);
	m = make(0, 1);
	cr_assert_eq(shmring_send_batch(p, v, 2, 0), 1, "stops at the wrong length");
	cr_assert_eq(shmring_recv(c, got, SIZE - 1, 0), -EMSGSIZE);
	cr_assert_eq(shmring_recv(c, got, sizeof(got), 0), SIZE, "a larger buffer: max_msg");
	expect(&got[0], 0, 0);
	struct iovec w[1] = { { got, SIZE - 1 } };
	cr_assert_eq(shmring_recv_batch(c, w, 1, 0), -EMSGSIZE);
	cr_assert_eq(shmring_recv(c, got, SIZE, 0), SIZE);
	expect(&got[0], 0, 1);
	cr_assert_eq(shmring_recv(c, got, SIZE, 0), -EAGAIN);
	shmring_close(p);
	shmring_close(c);
}

Test(fixed, openers_learn_the_format)
{
	const char *uri = t_ring_uri("fxfmt");
	struct shmring *p = open_fixed(uri, SHMRING_PRODUCER, 1 << 16);
	struct shmring *c = t_open(uri, SHMRING_CONSUMER);
	struct shmring_caps caps;
	cr_assert_eq(shmring_caps(c, &caps), 0);
	cr_assert(caps.flags & SHMRING_CAP_FIXED);
	cr_assert_eq(caps.max_msg, SIZE);
	/* slots of 24 bytes, a power of two of them: 4096 x 24 for 64 KiB */
	cr_assert_eq(caps.capacity, 4096u * SIZE);
	struct shmring_stats st = t_stats(c);
	cr_assert_eq(st.kind, SHMRING_SPSC);
	cr_assert_eq(st.max_msg, SIZE);
	shmring_close(p);
	shmring_close(c);
	/* an existing ring keeps its own format, as its own geometry */
	const char *var = t_ring_uri("fxvar");
	struct shmring *v = t_create(var, 1 << 16, 256);
	struct shmring_opts o = { .max_msg = SIZE, .flags = SHMRING_FIXED };
	struct shmring *q = t_open_opts(var, SHMRING_CREATE | SHMRING_PRODUCER, &o);
	cr_assert_eq(shmring_caps(q, &caps), 0);
	cr_assert_not(caps.flags & SHMRING_CAP_FIXED);
	cr_assert_eq(shmring_send(q, "abc", 3, 0), 0);
	shmring_close(q);
	shmring_close(v);
	/* what the option does not apply to */
	struct shmring_opts b = { .kind = SHMRING_BCAST, .max_msg = 8, .flags = SHMRING_FIXED };
	cr_assert_eq(t_try_open(t_ring_uri("fxb"), SHMRING_CREATE, &b), -ENOTSUP);
	struct shmring_opts mp = { .kind = SHMRING_MPMC, .max_msg = 8, .flags = SHMRING_FIXED };
	cr_assert_eq(t_try_open(t_ring_uri("fxm"), SHMRING_CREATE, &mp), -EINVAL);
	struct shmring_opts zero = { .flags = SHMRING_FIXED };
	cr_assert_eq(t_try_open(t_ring_uri("fxz"), SHMRING_CREATE, &zero), -EINVAL);
	struct shmring_opts pf = { .max_msg = 8, .flags = SHMRING_FIXED };
	char pipe[160];
	snprintf(pipe, sizeof(pipe), "pipe:/tmp/%s.fifo", t_name("fxp"));
	cr_assert_eq(t_try_open(t_remember(pipe), SHMRING_CREATE | SHMRING_PRODUCER, &pf),
		     -ENOTSUP);
}

Test(fixed, full_and_empty_and_odd_sizes)
{
	/* 5-byte messages in 8-byte slots; 4096 bytes: 512 slots */
	const char *uri = t_ring_uri("fxfull");
	struct shmring_opts o = { .max_msg = 5, .capacity = 4096, .flags = SHMRING_FIXED };
	struct shmring *p = t_open_opts(uri, SHMRING_CREATE | SHMRING_PRODUCER, &o);
	struct shmring *c = t_open(uri, SHMRING_CONSUMER);
	char b[8];
	unsigned n = 0;
	for (; n < 10000; n++) {
		snprintf(b, sizeof(b), "%04u", n % 10000);
		if (shmring_send(p, b, 5, 0) == -EAGAIN)
			break;
	}
	cr_assert_eq(n, 512);
	cr_assert_eq(shmring_send(p, b, 5, MS), -ETIMEDOUT);
	for (unsigned i = 0; i < n; i++) {
		char want[8];
		snprintf(want, sizeof(want), "%04u", i);
		cr_assert_eq(shmring_recv(c, b, sizeof(b), 0), 5);
		cr_assert_str_eq(b, want);
	}
	cr_assert_eq(shmring_recv(c, b, sizeof(b), MS), -ETIMEDOUT);
	struct shmring_stats st = t_stats(p);
	cr_assert_eq(st.msgs_recv, 512);
	cr_assert_eq(st.bytes_recv, 512u * 5);
	cr_assert(st.waits_full >= 1 && st.waits_empty >= 1);
	shmring_close(p);
	shmring_close(c);
}

/* ---- SIGKILL of either side --------------------------------------------- */

struct kill_ledger {
	_Atomic uint64_t confirmed[64];   /* per generation: sends that returned 0 */
	_Atomic int started;
};

static struct kill_ledger *KL;
static const char *kill_uri;

static int kill_producer(void *arg)
{
	uint64_t gen = (uint64_t)(uintptr_t)arg;
	struct shmring *r = NULL;
	if (shmring_open(kill_uri, SHMRING_PRODUCER, NULL, &r) < 0)
		return 10;
	atomic_store(&KL->started, 1);
	for (uint64_t seq = 0;; ) {
		if (seq % 5 == 4) {
			struct shmring_msg z;
			if (shmring_reserve(r, SIZE, &z, SHMRING_FOREVER) < 0)
				return 11;
			struct fmsg m = make(gen, seq);
			memcpy(z.data, &m, SIZE);
			if (shmring_commit(r, &z) < 0)
				return 12;
			atomic_store(&KL->confirmed[gen], ++seq);
			continue;
		}
		struct fmsg m[3] = { make(gen, seq), make(gen, seq + 1), make(gen, seq + 2) };
		struct iovec v[3] = { { &m[0], SIZE }, { &m[1], SIZE }, { &m[2], SIZE } };
		unsigned want = seq % 2 ? 3 : 1;
		if (seq % 5 + want > 4)
			want = 1;
		int rc = want == 1 ? (shmring_send(r, &m[0], SIZE, SHMRING_FOREVER) == 0 ? 1 : -1)
				   : shmring_send_batch(r, v, want, SHMRING_FOREVER);
		if (rc < 1)
			return 13;
		seq += (unsigned)rc;
		atomic_store(&KL->confirmed[gen], seq);
	}
}

Test(fixed, sigkill_producer_mid_stream_takeover_exact, .timeout = 120)
{
	KL = t_shared(sizeof(*KL));
	kill_uri = t_ring_uri("fxkillp");
	struct shmring *c = open_fixed(kill_uri, SHMRING_CONSUMER, 2048);
	uint64_t rnd = 12345, gen = 0, seq = 0, total = 0;
	const uint64_t gens = 12;
	pid_t pid = t_spawn(kill_producer, (void *)(uintptr_t)gen);
	uint64_t kill_at = 100 + t_rand(&rnd) % 3000;
	for (;;) {
		struct fmsg m;
		ssize_t n = shmring_recv(c, &m, sizeof(m), 50 * MS);
		if (n == -ETIMEDOUT) {
			cr_assert_lt(gen, gens, "a live producer stalled");
			continue;
		}
		cr_assert_eq(n, SIZE, "recv: %zd", n);
		if (m.gen != gen) {
			/* the previous generation ended: all it confirmed, at
			 * most one more (its send in flight when killed) */
			uint64_t conf = atomic_load(&KL->confirmed[gen]);
			cr_assert(seq >= conf && seq <= conf + 3, "gen %llu: got %llu, confirmed %llu",
				  (unsigned long long)gen, (unsigned long long)seq,
				  (unsigned long long)conf);
			gen++;
			seq = 0;
		}
		expect(&m, gen, seq++);
		total++;
		if (seq == kill_at && gen < gens) {
			if (gen + 1 < gens) {
				kill(pid, SIGKILL);
				cr_assert_eq(t_wait(pid), 128 + SIGKILL);
			} else {
				break;
			}
			atomic_store(&KL->started, 0);
			pid = t_spawn(kill_producer, (void *)(uintptr_t)(gen + 1));
			kill_at = 100 + t_rand(&rnd) % 3000;
		}
	}
	kill(pid, SIGKILL);
	cr_assert_eq(t_wait(pid), 128 + SIGKILL);
	/* drain the last generation */
	struct fmsg m;
	while (shmring_recv(c, &m, sizeof(m), 0) == SIZE) {
		expect(&m, gen, seq++);
		total++;
	}
	struct shmring_stats st = t_stats(c);
	cr_assert_eq(st.msgs_sent, total, "sent %llu, received %llu",
		     (unsigned long long)st.msgs_sent, (unsigned long long)total);
	cr_assert_eq(st.msgs_recv, total);
	cr_assert_eq(st.bytes_recv, total * SIZE);
	cr_assert_eq(st.msgs_redelivered, 0);
	cr_assert_eq(gen, gens - 1);
	shmring_close(c);
	t_unshared(KL, sizeof(*KL));
}

static const char *cons_uri;

/* Acquires three, releases one, receives nothing more; killed holding two. */
static int holding_consumer(void *arg)
{
	_Atomic int *flag = arg;
	struct shmring *r = NULL;
	if (shmring_open(cons_uri, SHMRING_CONSUMER, NULL, &r) < 0)
		return 10;
	struct shmring_msg m[3];
	for (int i = 0; i < 3; i++)
		if (shmring_acquire(r, &m[i], SHMRING_FOREVER) < 0)
			return 11;
	if (shmring_release(r, &m[0]) < 0)
		return 12;
	atomic_store(flag, 1);
	for (;;)
		pause();
}

/* Ten messages queued on a new ring, a consumer child (fn) run until it
 * sets its flag, then SIGKILLed: the producer in *prod, and a consumer
 * that took over. */
static struct shmring *kill_consumer(const char *tag, int (*fn)(void *), struct shmring **prod)
{
	cons_uri = t_ring_uri(tag);
	*prod = open_fixed(cons_uri, SHMRING_PRODUCER, 4096);
	for (uint64_t i = 0; i < 10; i++) {
		struct fmsg m = make(0, i);
		cr_assert_eq(shmring_send(*prod, &m, SIZE, 0), 0);
	}
	_Atomic int *flag = t_shared(sizeof(*flag));
	pid_t pid = t_spawn(fn, (void *)flag);
	cr_assert(t_wait_flag(flag, 1, 10000));
	cr_assert_eq(shmring_open(cons_uri, SHMRING_CONSUMER, NULL, &(struct shmring *){ NULL }),
		     -EBUSY, "the holder is alive");
	kill(pid, SIGKILL);
	cr_assert_eq(t_wait(pid), 128 + SIGKILL);
	t_unshared(flag, sizeof(*flag));
	return t_open(cons_uri, SHMRING_CONSUMER);
}

/* The rest of the ten, in order, from `from`; then the totals. */
static void drain_ten(struct shmring *c, uint64_t from)
{
	for (uint64_t i = from; i < 10; i++) {
		struct fmsg m;
		cr_assert_eq(shmring_recv(c, &m, sizeof(m), 0), SIZE);
		expect(&m, 0, i);
	}
	struct shmring_stats st = t_stats(c);
	cr_assert_eq(st.msgs_recv, 10);
	cr_assert_eq(st.msgs_sent, 10);
	cr_assert_eq(st.takeovers, 1);
}

Test(fixed, sigkill_consumer_redelivers_what_it_held, .timeout = 30)
{
	struct shmring *p;
	struct shmring *c = kill_consumer("fxkillc", holding_consumer, &p);
	struct shmring_stats st = t_stats(c);
	cr_assert_eq(st.msgs_redelivered, 2);
	cr_assert_eq(st.msgs_recv, 1);
	drain_ten(c, 1);
	shmring_close(c);
	shmring_close(p);
}

/* Receives three by copy and one batch of two, then waits to be killed. */
static int copying_consumer(void *arg)
{
	_Atomic int *flag = arg;
	struct shmring *r = NULL;
	if (shmring_open(cons_uri, SHMRING_CONSUMER, NULL, &r) < 0)
		return 10;
	struct fmsg m[2];
	for (int i = 0; i < 3; i++)
		if (shmring_recv(r, &m[0], SIZE, SHMRING_FOREVER) != SIZE)
			return 11;
	struct iovec v[2] = { { &m[0], SIZE }, { &m[1], SIZE } };
	if (shmring_recv_batch(r, v, 2, SHMRING_FOREVER) != 2)
		return 12;
	atomic_store(flag, 1);
	for (;;)
		pause();
}

Test(fixed, sigkill_copying_consumer_takeover_goes_on, .timeout = 30)
{
	struct shmring *p;
	struct shmring *c = kill_consumer("fxkillcc", copying_consumer, &p);
	struct shmring_stats st = t_stats(c);
	cr_assert_eq(st.msgs_redelivered, 0, "nothing was held");
	cr_assert_eq(st.msgs_recv, 5);
	drain_ten(c, 5);
	shmring_close(c);
	shmring_close(p);
}

/* ---- garbage in the shared counters ------------------------------------- */

static void poke(const char *uri, off_t off, uint64_t v)
{
	t_patch(t_path_of(uri), off, &v, sizeof(v));
}

Test(fixed, garbage_counters_are_eproto)
{
	const char *uri = t_ring_uri("fxgarb");
	struct shmring *p = open_fixed(uri, SHMRING_PRODUCER, 4096);
	struct shmring *c = t_open(uri, SHMRING_CONSUMER);
	struct fmsg m = make(0, 0);
	cr_assert_eq(shmring_send(p, &m, SIZE, 0), 0);
	cr_assert_eq(shmring_recv(c, &m, SIZE, 0), SIZE);
	/* the producer more than a ring ahead, then behind the consumer */
	poke(uri, PROD_TAIL_OFF, 1u << 20);
	cr_assert_eq(shmring_recv(c, &m, SIZE, 0), -EPROTO);
	struct shmring_msg z;
	cr_assert_eq(shmring_acquire(c, &z, 0), -EPROTO);
	poke(uri, PROD_TAIL_OFF, UINT64_MAX);
	cr_assert_eq(shmring_recv(c, &m, SIZE, 0), -EPROTO);
	poke(uri, PROD_TAIL_OFF, 1);
	cr_assert_eq(shmring_recv(c, &m, SIZE, 0), -EAGAIN, "sane again");
	/* fill, then the consumer's counter past the producer's */
	int sent = 0;
	while (shmring_send(p, &m, SIZE, 0) == 0)
		sent++;
	cr_assert_eq(sent, 256);
	poke(uri, CONS_HEAD_OFF, 1u << 30);
	cr_assert_eq(shmring_send(p, &m, SIZE, 0), -EPROTO);
	cr_assert_eq(shmring_reserve(p, SIZE, &z, 0), -EPROTO);
	struct iovec v = { &m, SIZE };
	cr_assert_eq(shmring_send_batch(p, &v, 1, 0), -EPROTO);
	struct shmring_stats st = t_stats(p);   /* whatever it says, no crash */
	(void)st;
	shmring_close(p);
	shmring_close(c);
	/* a takeover of garbage refuses the role */
	cr_assert_eq(t_try_open(uri, SHMRING_PRODUCER, NULL), -EPROTO);
	poke(uri, CONS_HEAD_OFF, 1);
	poke(uri, CONS_READ_OFF, 1u << 30);
	cr_assert_eq(t_try_open(uri, SHMRING_CONSUMER, NULL), -EPROTO);
	poke(uri, CONS_READ_OFF, 1);
	cr_assert_eq(t_try_open(uri, SHMRING_CONSUMER | SHMRING_PRODUCER, NULL), 0);
}

/* ---- shutdown ----------------------------------------------------------- */

static const char *shut_uri;

static int blocked_consumer(void *arg)
{
	(void)arg;
	struct shmring *r = NULL;
	if (shmring_open(shut_uri, SHMRING_CONSUMER, NULL, &r) < 0)
		return 10;
	struct fmsg m;
	for (uint64_t i = 0; i < 3; i++)
		if (shmring_recv(r, &m, sizeof(m), SHMRING_FOREVER) != SIZE || m.seq != i)
			return 11;
	/* asleep until the producer shuts the stream down */
	ssize_t n = shmring_recv(r, &m, sizeof(m), SHMRING_FOREVER);
	shmring_close(r);
	return n == -EPIPE ? 0 : 12;
}

Test(fixed, shutdown_wakes_and_ends_the_stream, .timeout = 30)
{
	shut_uri = t_ring_uri("fxshut");
	struct shmring *p = open_fixed(shut_uri, SHMRING_PRODUCER, 4096);
	pid_t pid = t_spawn(blocked_consumer, NULL);
	for (uint64_t i = 0; i < 3; i++) {
		struct fmsg m = make(0, i);
		cr_assert_eq(shmring_send(p, &m, SIZE, 0), 0);
	}
	t_sleep_ms(100);
	struct shmring_msg z;
	cr_assert_eq(shmring_reserve(p, SIZE, &z, 0), 0);
	cr_assert_eq(shmring_shutdown(p), 0);
	cr_assert_eq(shmring_commit(p, &z), -EPIPE, "a frame written past the end is dropped");
	cr_assert_eq(t_wait(pid), 0);
	struct fmsg m = make(0, 3);
	cr_assert_eq(shmring_send(p, &m, SIZE, 0), -EPIPE);
	struct shmring_stats st = t_stats(p);
	cr_assert_eq(st.shut_down, 1);
	cr_assert_eq(st.msgs_dropped, 1);
	cr_assert_eq(st.msgs_recv, 3);
	shmring_close(p);
}

/* ---- file: rings -------------------------------------------------------- */

Test(fixed, file_ring_persists_and_recovers_what_was_flushed, .timeout = 30)
{
	char u[200];
	snprintf(u, sizeof(u), "file:/tmp/%s.ring", t_name("fxfile"));
	const char *uri = t_remember(u);
	struct shmring *p = open_fixed(uri, SHMRING_PRODUCER, 4096);
	for (uint64_t i = 0; i < 5; i++) {
		struct fmsg m = make(0, i);
		cr_assert_eq(shmring_send(p, &m, SIZE, 0), 0);
	}
	cr_assert_eq(shmring_flush(p), 0);
	for (uint64_t i = 5; i < 8; i++) {
		struct fmsg m = make(0, i);
		cr_assert_eq(shmring_send(p, &m, SIZE, 0), 0);
	}
	shmring_close(p);
	/* every process gone: all 8 are there */
	struct shmring *c = t_open(uri, SHMRING_CONSUMER);
	struct fmsg m;
	cr_assert_eq(shmring_recv(c, &m, sizeof(m), 0), SIZE);
	expect(&m, 0, 0);
	cr_assert_eq(shmring_flush(c), 0);
	shmring_close(c);
	/* a reboot: only the flushed five were on the disk */
	t_fake_reboot(t_path_of(uri));
	c = t_open(uri, SHMRING_CONSUMER);
	for (uint64_t i = 1; i < 5; i++) {
		cr_assert_eq(shmring_recv(c, &m, sizeof(m), 0), SIZE);
		expect(&m, 0, i);
	}
	cr_assert_eq(shmring_recv(c, &m, sizeof(m), 0), -EAGAIN);
	struct shmring_stats st = t_stats(c);
	cr_assert_eq(st.msgs_dropped, 3);
	cr_assert_eq(st.msgs_sent, 5);
	shmring_close(c);
	p = t_open(uri, SHMRING_PRODUCER);
	m = make(0, 5);
	cr_assert_eq(shmring_send(p, &m, SIZE, 0), 0, "the producer goes on after it");
	shmring_close(p);
}

/* ---- threads (ThreadSanitizer sees one process) ------------------------- */

#define THREAD_N 200000u

static void *thread_producer(void *arg)
{
	struct shmring *p = arg;
	uint64_t seq = 0;
	while (seq < THREAD_N) {
		struct fmsg m[32];
		struct iovec v[32];
		unsigned n = 0;
		for (; n < 32 && seq + n < THREAD_N; n++) {
			m[n] = make(1, seq + n);
			v[n] = (struct iovec){ &m[n], SIZE };
		}
		int rc = seq % 3 ? shmring_send_batch(p, v, n, SHMRING_FOREVER)
				 : (shmring_send(p, &m[0], SIZE, SHMRING_FOREVER) == 0 ? 1 : -1);
		if (rc < 1)
			return (void *)1;
		seq += (unsigned)rc;
	}
	return NULL;
}

Test(fixed, threads_batches_and_singles, .timeout = 120)
{
	const char *uri = t_ring_uri("fxthr");
	struct shmring *p = open_fixed(uri, SHMRING_PRODUCER, 4096);
	struct shmring *c = t_open(uri, SHMRING_CONSUMER);
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, thread_producer, p), 0);
	uint64_t seq = 0;
	while (seq < THREAD_N) {
		struct fmsg m[32];
		struct iovec v[32];
		for (unsigned i = 0; i < 32; i++)
			v[i] = (struct iovec){ &m[i], SIZE };
		int n = seq % 2 ? shmring_recv_batch(c, v, 32, SHMRING_FOREVER)
				: (shmring_recv(c, &m[0], SIZE, SHMRING_FOREVER) == SIZE ? 1 : -1);
		cr_assert(n >= 1, "recv: %d", n);
		for (int i = 0; i < n; i++)
			expect(&m[i], 1, seq++);
	}
	void *ret;
	pthread_join(t, &ret);
	cr_assert_null(ret);
	shmring_close(p);
	shmring_close(c);
}

/* ---- a hostile peer ------------------------------------------------------ */

static const char *host_uri;
static _Atomic int *host_ready;     /* sides that hold their role */

/* One side for about a second, with short timeouts, while the parent
 * writes garbage into the counters: only documented results, no crash,
 * no hang.  Exit 0, or 20 + the side for an unexpected result. */
static bool host_rc_ok(long rc)
{
	return rc >= 0 || rc == -EAGAIN || rc == -ETIMEDOUT || rc == -EPROTO || rc == -EPIPE ||
	       rc == -EINPROGRESS || rc == -EINVAL;
}

static int host_side(void *arg)
{
	bool prod = arg != NULL;
	struct shmring *r = NULL;
	if (shmring_open(host_uri, prod ? SHMRING_PRODUCER : SHMRING_CONSUMER, NULL, &r) < 0)
		return 10;
	atomic_fetch_add(host_ready, 1);
	uint64_t end = t_now_ns() + 1000ull * MS, seq = 0;
	while (t_now_ns() < end) {
		struct fmsg m[4] = { make(0, seq), make(0, seq + 1), make(0, seq + 2), make(0, seq + 3) };
		struct iovec v[4] = { { &m[0], SIZE }, { &m[1], SIZE }, { &m[2], SIZE }, { &m[3], SIZE } };
		struct shmring_msg z;
		long rc;
		switch (seq++ % 3) {
		case 0:
			rc = prod ? shmring_send(r, &m[0], SIZE, MS) : shmring_recv(r, &m[0], SIZE, MS);
			break;
		case 1:
			rc = prod ? shmring_send_batch(r, v, 4, MS) : shmring_recv_batch(r, v, 4, MS);
			break;
		default:
			rc = prod ? shmring_reserve(r, SIZE, &z, MS) : shmring_acquire(r, &z, MS);
			if (rc == 0) {
				/* in place, within the slot handed out */
				if (prod)
					memcpy(z.data, &m[0], SIZE);
				else
					memcpy(&m[0], z.data, SIZE);
				rc = prod ? shmring_commit(r, &z) : shmring_release(r, &z);
			}
		}
		if (!host_rc_ok(rc))
			return 20 + prod;
	}
	struct shmring_stats st;
	if (shmring_stats(r, &st) < 0)
		return 30;
	shmring_close(r);
	return 0;
}

Test(fixed, garbage_written_while_traffic_runs, .timeout = 60)
{
	host_uri = t_ring_uri("fxhost");
	struct shmring *c = open_fixed(host_uri, 0, 4096);
	host_ready = t_shared(sizeof(*host_ready));
	pid_t prod = t_spawn(host_side, (void *)1);
	pid_t cons = t_spawn(host_side, NULL);
	cr_assert(t_wait_flag(host_ready, 2, 10000), "both sides attached");
	uint64_t rnd = 99, end = t_now_ns() + 1000ull * MS;
	const off_t at[] = { PROD_TAIL_OFF, CONS_HEAD_OFF, CONS_READ_OFF };
	while (t_now_ns() < end) {
		uint64_t v = t_rand(&rnd);
		/* near the true values as often as wild ones */
		if (v & 1)
			v = (v >> 1) % 600;
		poke(host_uri, at[t_rand(&rnd) % 3], v);
		t_sleep_ms(1);
	}
	int ps = t_wait(prod), cs = t_wait(cons);
	cr_assert_eq(ps, 0, "producer: %d", ps);
	cr_assert_eq(cs, 0, "consumer: %d", cs);
	struct shmring_stats st = t_stats(c);   /* whatever it says, no crash */
	(void)st;
	shmring_close(c);
	t_unshared(host_ready, sizeof(*host_ready));
}

/* ---- shmring_fd --------------------------------------------------------- */

static const char *poll_uri;
#define POLL_N 3000u

/* The other side, with SHMRING_FOREVER, now and then after a pause, so
 * that the event loop finds the ring empty (or full) and sleeps in
 * poll(2).  The producer shuts the stream down at the end; the consumer
 * checks every message.  arg: non-NULL for the producer. */
static int poll_peer(void *arg)
{
	bool prod = arg != NULL;
	struct shmring *r = NULL;
	if (shmring_open(poll_uri, prod ? SHMRING_PRODUCER : SHMRING_CONSUMER, NULL, &r) < 0)
		return 10;
	for (uint64_t i = 0; i < POLL_N; i++) {
		if (i % 97 == 0)
			t_sleep_ms(1);
		struct fmsg m = make(0, i);
		if (prod ? shmring_send(r, &m, SIZE, SHMRING_FOREVER) < 0
			 : shmring_recv(r, &m, SIZE, SHMRING_FOREVER) != SIZE ||
			   m.seq != i || m.sum != sum_of(0, i))
			return 11;
	}
	if (prod && shmring_shutdown(r) < 0)
		return 12;
	shmring_close(r);
	return 0;
}

/* An event loop on shmring_fd: calls with timeout 0 until -EAGAIN, then
 * poll(2); 64 slots, so that a producer finds the ring full as well. */
static void event_loop(bool prod)
{
	poll_uri = t_ring_uri(prod ? "fxpollp" : "fxpollc");
	struct shmring_opts o = { .max_msg = SIZE, .capacity = 64 * SIZE, .flags = SHMRING_FIXED };
	struct shmring *r = t_open_opts(poll_uri, SHMRING_CREATE | (prod ? SHMRING_PRODUCER
									  : SHMRING_CONSUMER), &o);
	int fd = shmring_fd(r);
	cr_assert_geq(fd, 0, "shmring_fd: %s", shmring_strerror(fd));
	pid_t pid = t_spawn(poll_peer, prod ? NULL : (void *)1);
	uint64_t seq = 0;
	unsigned sleeps = 0;
	while (seq < POLL_N) {
		struct fmsg m = make(0, seq);
		long n = prod ? shmring_send(r, &m, SIZE, 0) : shmring_recv(r, &m, sizeof(m), 0);
		if (n == -EAGAIN) {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			cr_assert_eq(poll(&p, 1, 10000), 1, "no wake-up within 10 s at %llu",
				     (unsigned long long)seq);
			sleeps++;
			continue;
		}
		cr_assert_eq(n, prod ? 0 : SIZE, "call: %ld", n);
		if (!prod)
			expect(&m, 0, seq);
		seq++;
	}
	struct fmsg m;
	if (prod)
		cr_assert_eq(shmring_shutdown(r), 0);
	else
		cr_assert_eq(shmring_recv(r, &m, sizeof(m), SHMRING_FOREVER), -EPIPE);
	cr_assert_eq(t_wait(pid), 0);
	cr_assert_gt(sleeps, 0, "the loop never slept");
	cr_assert_eq(t_stats(r).msgs_recv, POLL_N);
	shmring_close(r);
}

Test(fixed, event_loop_consumer_on_shmring_fd_misses_nothing, .timeout = 60)
{
	event_loop(false);
}

Test(fixed, event_loop_producer_on_shmring_fd_misses_nothing, .timeout = 60)
{
	event_loop(true);
}
