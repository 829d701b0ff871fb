/* SPDX-License-Identifier: MIT */
/*
 * Suite `conformance`: one set of test bodies, run for every backend —
 * shm: SPSC, shm: MPMC, file:, pipe:, mq: — through the public API only.
 * What a backend cannot do is skipped by what shmring_caps() says, never by
 * its name; where the rule differs by kind (stats.kind), the test states
 * the rule of each kind.
 *
 * Each backend's row in `backends` gives only its geometry: a URI form, the
 * kind, and the capacity that its system limits allow (a POSIX queue holds
 * fs.mqueue.msg_max messages by default).  pipe: stores no geometry, so
 * every open passes the same opts (shm: and file: read them only when they
 * create).
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "shmring.h"

#define MS (1000ll * 1000)
#define NOBODY 65534

struct backend {
	char name[8];
};

static struct backend backends[] = { { "shm" }, { "mpmc" }, { "bcast" }, { "file" }, { "pipe" },
				     { "mq" } };
#define NBACKENDS (sizeof(backends) / sizeof(backends[0]))

/* The backend of the running test, for messages. */
static const char *BN = "?";

/* A broadcast ring: every consumer (subscriber) receives every message
 * sent after it joined (with SHMRING_OLDEST, also those still in the
 * ring), not one consumer each message. */
static bool bcast(void)
{
	return strcmp(BN, "bcast") == 0;
}

/* ---- names, removed after every test (t_cleanup), also one that failed -- */

static const char *uri_for(const struct backend *b, const char *tag)
{
	const char *n = t_name(tag);
	char u[320];
	if (strcmp(b->name, "shm") == 0 || strcmp(b->name, "mpmc") == 0 ||
	    strcmp(b->name, "bcast") == 0)
		snprintf(u, sizeof(u), "shm:%s", n);
	else if (strcmp(b->name, "file") == 0)
		snprintf(u, sizeof(u), "file:/tmp/%s.ring", n);
	else if (strcmp(b->name, "pipe") == 0)
		snprintf(u, sizeof(u), "pipe:/tmp/%s.fifo", n);
	else
		snprintf(u, sizeof(u), "mq:%s", n);
	return t_remember(u);
}

TestSuite(conformance, .fini = t_cleanup);

#define BACKEND_TEST(test, ...)                                                 \
	ParameterizedTestParameters(conformance, test)                          \
	{                                                                       \
		return cr_make_param_array(struct backend, backends, NBACKENDS); \
	}                                                                       \
	ParameterizedTest(struct backend *b, conformance, test, __VA_ARGS__)

/* ---- geometry ---------------------------------------------------------- */

/* The opts every open of a test passes: capacity for about `depth`
 * messages of max_msg (shm:/file:/pipe: get 64 KiB at least), within what
 * the system allows a POSIX queue. */
static struct shmring_opts opts_for(const struct backend *b, uint32_t max_msg)
{
	struct shmring_opts o = { .max_msg = max_msg, .capacity = 65536 };
	if (strcmp(b->name, "mpmc") == 0)
		o.kind = SHMRING_MPMC;
	if (strcmp(b->name, "bcast") == 0)
		o.kind = SHMRING_BCAST;
	if (strcmp(b->name, "mq") == 0) {
		uint64_t depth = t_sysctl_u64("/proc/sys/fs/mqueue/msg_max", 10);
		uint64_t size = t_sysctl_u64("/proc/sys/fs/mqueue/msgsize_max", 8192);
		if (depth > 64)
			depth = 64;
		if (o.max_msg > size)
			o.max_msg = (uint32_t)size;
		o.capacity = depth * o.max_msg;
	}
	return o;
}

struct rig {
	const struct backend *b;
	const char *uri;
	struct shmring_opts o;
	struct shmring *c, *p, *q;      /* creator (no role), producer, consumer */
	struct shmring_caps caps;
};

static struct shmring *open_or_die(struct rig *g, int oflags)
{
	struct shmring *r = NULL;
	int rc = shmring_open(g->uri, oflags, &g->o, &r);
	cr_assert_eq(rc, 0, "[%s] open %s 0x%x: %s", BN, g->uri, oflags, shmring_strerror(rc));
	return r;
}

/* The creator, then a consumer and a producer if `roles` asks for them.
 * (A test whose producer is another process opens none here: on a pipe the
 * last writer gone ends the stream, and on shm: the role is one.) */
static void rig_roles(struct rig *g, const struct backend *b, const char *tag, uint32_t max_msg,
		      int roles)
{
	memset(g, 0, sizeof(*g));
	BN = b->name;
	g->b = b;
	g->uri = uri_for(b, tag);
	g->o = opts_for(b, max_msg);
	g->c = open_or_die(g, SHMRING_CREATE | SHMRING_EXCL);
	if (roles & SHMRING_CONSUMER)
		g->q = open_or_die(g, SHMRING_CONSUMER);
	if (roles & SHMRING_PRODUCER)
		g->p = open_or_die(g, SHMRING_PRODUCER);
	int rc = shmring_caps(g->p ? g->p : g->q ? g->q : g->c, &g->caps);
	cr_assert_eq(rc, 0, "[%s] caps: %s", BN, shmring_strerror(rc));
	cr_assert(g->caps.flags & SHMRING_CAP_BLOCKING, "[%s] every backend blocks", BN);
	cr_assert(g->caps.flags & SHMRING_CAP_POLL, "[%s] every backend has shmring_fd", BN);
	cr_assert_geq(g->caps.max_msg, 1);
}

static void rig_open(struct rig *g, const struct backend *b, const char *tag, uint32_t max_msg)
{
	rig_roles(g, b, tag, max_msg, SHMRING_PRODUCER | SHMRING_CONSUMER);
}

static void rig_close(struct rig *g)
{
	if (g->p)
		shmring_close(g->p);
	if (g->q)
		shmring_close(g->q);
	if (g->c)
		shmring_close(g->c);
	int rc = shmring_unlink(g->uri);
	cr_assert_eq(rc, 0, "[%s] unlink %s: %s", BN, g->uri, shmring_strerror(rc));
}

/* ---- messages ---------------------------------------------------------- */

static void send_key(struct shmring *r, size_t len, uint64_t key, int64_t timeout)
{
	static uint8_t buf[1 << 20];
	cr_assert_leq(len, sizeof(buf));
	t_fill(buf, len, key);
	int rc = shmring_send(r, buf, len, timeout);
	cr_assert_eq(rc, 0, "[%s] send len %zu key %llu: %s", BN, len, (unsigned long long)key,
		     shmring_strerror(rc));
}

static void recv_key(struct shmring *r, size_t len, uint64_t key, int64_t timeout)
{
	static uint8_t buf[1 << 20];
	ssize_t n = shmring_recv(r, buf, sizeof(buf), timeout);
	cr_assert_eq(n, (ssize_t)len, "[%s] recv key %llu: got %zd (%s), want %zu", BN,
		     (unsigned long long)key, n, n < 0 ? shmring_strerror((int)n) : "ok", len);
	cr_assert(t_check(buf, len, key), "[%s] recv key %llu: content differs", BN,
		  (unsigned long long)key);
}

static void expect_rc(long got, long want, const char *what)
{
	cr_assert_eq(got, want, "[%s] %s: got %ld (%s), want %ld (%s)", BN, what, got,
		     got < 0 ? shmring_strerror((int)got) : "ok", want,
		     want < 0 ? shmring_strerror((int)want) : "ok");
}

/*
 * Open reservations and acquired messages, per kind.  An MPMC ring in
 * shared memory (kind MPMC, caps ZEROCOPY): a handle may have several open
 * at once, commit and release them in any order, and send or receive
 * meanwhile.  Every other kind (SPSC rings, pipe:, mq:): one reservation at
 * a time, acquired messages released oldest first, and no other send or
 * copying receive while one is open (-EINPROGRESS).
 */
static bool several_open(const struct rig *g)
{
	struct shmring_stats st;
	struct shmring *r = g->p ? g->p : g->q ? g->q : g->c;
	cr_assert_eq(shmring_stats(r, &st), 0);
	return st.kind == SHMRING_MPMC && (g->caps.flags & SHMRING_CAP_ZEROCOPY);
}

static void recv_text(struct shmring *r, const char *want)
{
	char buf[64];
	ssize_t n = shmring_recv(r, buf, sizeof(buf), 0);
	cr_assert(n == (ssize_t)strlen(want) && memcmp(buf, want, (size_t)n) == 0,
		  "[%s] recv: got %zd, want \"%s\"", BN, n, want);
}

static void expect_empty(struct shmring *r)
{
	uint8_t buf[16];
	expect_rc(shmring_recv(r, buf, sizeof(buf), 0), -EAGAIN, "recv on an empty ring");
}

/* Send messages of len until the ring is full; how many went. */
static unsigned fill(struct shmring *p, size_t len, uint64_t key0)
{
	static uint8_t buf[1 << 16];
	unsigned n = 0;
	for (;;) {
		t_fill(buf, len, key0 + n);
		int rc = shmring_send(p, buf, len, 0);
		if (rc == -EAGAIN)
			return n;
		cr_assert_eq(rc, 0, "[%s] send while filling: %s", BN, shmring_strerror(rc));
		cr_assert_lt(++n, 100000u, "[%s] the ring never filled", BN);
	}
}

/* Shared with forked children, which report through it and their exit
 * status, never with cr_assert. */
struct box {
	char uri[320];
	struct shmring_opts o;
	_Atomic int ready;
	uint64_t n, sum;
	int who;
	int trust;              /* open_as_nobody: first shmring_trust_owner(trust - 1) */
};

static struct box *box_new(const struct rig *g)
{
	struct box *x = t_shared(sizeof(*x));
	memset(x, 0, sizeof(*x));
	snprintf(x->uri, sizeof(x->uri), "%s", g->uri);
	x->o = g->o;
	return x;
}

/* ======================================================================= */
/* messages: order, boundaries, sizes                                      */
/* ======================================================================= */

BACKEND_TEST(order_and_boundaries_kept, .timeout = 30)
{
	struct rig g;
	rig_open(&g, b, "order", 1000);
	uint64_t sent = 0, got = 0;
	for (int round = 0; round < 40; round++) {
		/* as many as fit, of lengths that cover 0..max_msg */
		for (;;) {
			size_t len = (size_t)(sent * 131 % (g.caps.max_msg + 1));
			uint8_t buf[1000];
			t_fill(buf, len, sent);
			int rc = shmring_send(g.p, buf, len, 0);
			if (rc == -EAGAIN)
				break;
			expect_rc(rc, 0, "send");
			sent++;
		}
		while (got < sent) {
			recv_key(g.q, (size_t)(got * 131 % (g.caps.max_msg + 1)), got, 0);
			got++;
		}
		expect_empty(g.q);
	}
	cr_assert_gt(sent, 200u, "[%s] only %llu messages", BN, (unsigned long long)sent);
	rig_close(&g);
}

BACKEND_TEST(sizes_zero_and_max_msg_pass_intact, .timeout = 30)
{
	struct rig g;
	rig_open(&g, b, "sizes", 4000);
	size_t max = g.caps.max_msg;
	send_key(g.p, 0, 1, 0);
	send_key(g.p, max, 2, 0);
	send_key(g.p, 1, 3, 0);
	send_key(g.p, max - 1, 4, 0);
	/* an empty message fits a NULL buffer of capacity 0: the argument
	 * check refuses only a NULL buffer with a capacity */
	expect_rc(shmring_recv(g.q, NULL, 0, 0), 0, "empty message into NULL");
	recv_key(g.q, max, 2, 0);
	recv_key(g.q, 1, 3, 0);
	recv_key(g.q, max - 1, 4, 0);
	expect_empty(g.q);

	/* the zero-copy and batch APIs take both edges too */
	struct shmring_msg m;
	expect_rc(shmring_reserve(g.p, max, &m, 0), 0, "reserve max_msg");
	cr_assert_eq(m.len, max);
	t_fill(m.data, max, 5);
	expect_rc(shmring_commit(g.p, &m), 0, "commit max_msg");
	expect_rc(shmring_reserve(g.p, 0, &m, 0), 0, "reserve 0");
	expect_rc(shmring_commit(g.p, &m), 0, "commit 0");
	expect_rc(shmring_acquire(g.q, &m, 0), 0, "acquire max_msg");
	cr_assert_eq(m.len, max);
	cr_assert(t_check(m.data, max, 5), "[%s] acquired content", BN);
	expect_rc(shmring_release(g.q, &m), 0, "release");
	struct iovec v = { NULL, 0 };
	expect_rc(shmring_recv_batch(g.q, &v, 1, 0), 1, "empty message into a NULL iovec");
	cr_assert_eq(v.iov_len, 0);
	rig_close(&g);
}

BACKEND_TEST(oversize_and_small_buffers_are_emsgsize, .timeout = 30)
{
	struct rig g;
	rig_open(&g, b, "emsgsize", 1000);
	size_t max = g.caps.max_msg;
	static uint8_t big[1 << 16];
	struct shmring_msg m;
	expect_rc(shmring_send(g.p, big, max + 1, 0), -EMSGSIZE, "send max_msg + 1");
	expect_rc(shmring_reserve(g.p, max + 1, &m, 0), -EMSGSIZE, "reserve max_msg + 1");
	struct iovec v = { big, max + 1 };
	expect_rc(shmring_send_batch(g.p, &v, 1, 0), -EMSGSIZE, "send_batch max_msg + 1");
	expect_empty(g.q);

	/* a buffer too small: -EMSGSIZE, and the message stays */
	send_key(g.p, 300, 7, 0);
	uint8_t small[100];
	expect_rc(shmring_recv(g.q, small, sizeof(small), 0), -EMSGSIZE, "recv into 100 bytes");
	expect_rc(shmring_recv(g.q, small, sizeof(small), 0), -EMSGSIZE, "again");
	struct iovec sv = { small, sizeof(small) };
	expect_rc(shmring_recv_batch(g.q, &sv, 1, 0), -EMSGSIZE, "recv_batch into 100 bytes");
	recv_key(g.q, 300, 7, 0);
	/* and a batch stops before the message that does not fit */
	send_key(g.p, 50, 8, 0);
	send_key(g.p, 300, 9, 0);
	uint8_t b1[100], b2[100];
	struct iovec two[2] = { { b1, sizeof(b1) }, { b2, sizeof(b2) } };
	expect_rc(shmring_recv_batch(g.q, two, 2, 0), 1, "batch up to the big one");
	cr_assert_eq(two[0].iov_len, 50);
	cr_assert(t_check(b1, 50, 8));
	recv_key(g.q, 300, 9, 0);
	/* acquire hands out the message kept after -EMSGSIZE */
	send_key(g.p, 300, 10, 0);
	expect_rc(shmring_recv(g.q, small, sizeof(small), 0), -EMSGSIZE, "recv into 100 bytes");
	expect_rc(shmring_acquire(g.q, &m, 0), 0, "acquire the kept message");
	cr_assert_eq(m.len, 300);
	cr_assert(t_check(m.data, 300, 10), "[%s] kept message intact", BN);
	expect_rc(shmring_release(g.q, &m), 0, "release");
	expect_empty(g.q);
	rig_close(&g);
}

/* ======================================================================= */
/* timeouts                                                                */
/* ======================================================================= */

BACKEND_TEST(timeout_zero_is_eagain, .timeout = 30)
{
	struct rig g;
	rig_open(&g, b, "eagain", 1000);
	struct shmring_msg m;
	uint8_t buf[1000];
	struct iovec v = { buf, sizeof(buf) };
	expect_empty(g.q);
	expect_rc(shmring_acquire(g.q, &m, 0), -EAGAIN, "acquire on empty");
	expect_rc(shmring_recv_batch(g.q, &v, 1, 0), -EAGAIN, "recv_batch on empty");
	unsigned n = fill(g.p, 1000, 0);
	cr_assert_gt(n, 0u);
	expect_rc(shmring_send(g.p, buf, 1000, 0), -EAGAIN, "send on full");
	expect_rc(shmring_reserve(g.p, 1000, &m, 0), -EAGAIN, "reserve on full");
	expect_rc(shmring_send_batch(g.p, &v, 1, 0), -EAGAIN, "send_batch on full");
	for (unsigned i = 0; i < n; i++)
		recv_key(g.q, 1000, i, 0);
	expect_empty(g.q);
	rig_close(&g);
}

BACKEND_TEST(positive_timeout_is_etimedout_never_early, .timeout = 30)
{
	struct rig g;
	rig_open(&g, b, "etimedout", 1000);
	const int64_t to = 60 * MS;
	uint8_t buf[1000];
	struct shmring_msg m;
	struct iovec v = { buf, sizeof(buf) };
	uint64_t t0 = t_now_ns();
	expect_rc(shmring_recv(g.q, buf, sizeof(buf), to), -ETIMEDOUT, "recv on empty");
	uint64_t dt = t_now_ns() - t0;
	cr_assert_geq(dt, (uint64_t)to, "[%s] recv returned after %llu ns", BN, (unsigned long long)dt);
	cr_assert_lt(dt, 3000 * MS, "[%s] recv took %llu ns", BN, (unsigned long long)dt);
	t0 = t_now_ns();
	expect_rc(shmring_acquire(g.q, &m, to), -ETIMEDOUT, "acquire on empty");
	cr_assert_geq(t_now_ns() - t0, (uint64_t)to);
	t0 = t_now_ns();
	expect_rc(shmring_recv_batch(g.q, &v, 1, to), -ETIMEDOUT, "recv_batch on empty");
	cr_assert_geq(t_now_ns() - t0, (uint64_t)to);

	/* a consumer that never reads: the producer times out, never hangs */
	unsigned n = fill(g.p, 1000, 0);
	t0 = t_now_ns();
	expect_rc(shmring_send(g.p, buf, 1000, to), -ETIMEDOUT, "send on full");
	dt = t_now_ns() - t0;
	cr_assert_geq(dt, (uint64_t)to, "[%s] send returned after %llu ns", BN, (unsigned long long)dt);
	cr_assert_lt(dt, 3000 * MS);
	t0 = t_now_ns();
	expect_rc(shmring_reserve(g.p, 1000, &m, to), -ETIMEDOUT, "reserve on full");
	cr_assert_geq(t_now_ns() - t0, (uint64_t)to);
	t0 = t_now_ns();
	expect_rc(shmring_send_batch(g.p, &v, 1, to), -ETIMEDOUT, "send_batch on full");
	cr_assert_geq(t_now_ns() - t0, (uint64_t)to);
	for (unsigned i = 0; i < n; i++)
		recv_key(g.q, 1000, i, 0);
	rig_close(&g);
}

/* The consumer of the next test, in another process: first asleep on an
 * empty ring, then late to empty a full one. */
static int late_receiver(void *arg)
{
	struct box *x = arg;
	struct shmring *q = NULL;
	if (shmring_open(x->uri, SHMRING_CONSUMER, &x->o, &q))
		return 10;
	atomic_store(&x->ready, 1);
	uint8_t buf[1000];
	if (shmring_recv(q, buf, sizeof(buf), SHMRING_FOREVER) != 100 || !t_check(buf, 100, 77))
		return 11;
	atomic_store(&x->ready, 2);
	while (atomic_load(&x->ready) != 3)
		t_sleep_ms(1);
	t_sleep_ms(80);           /* the producer is asleep on the full ring by now */
	for (uint64_t i = 0; i < x->n; i++)
		if (shmring_recv(q, buf, sizeof(buf), SHMRING_FOREVER) != 1000)
			return 12;
	shmring_close(q);
	return 0;
}

BACKEND_TEST(forever_waits_are_woken_by_another_process, .timeout = 30)
{
	struct rig g;
	rig_open(&g, b, "forever", 1000);
	struct box *x = box_new(&g);
	shmring_close(g.q);
	g.q = NULL;
	pid_t pid = t_spawn(late_receiver, x);
	while (!atomic_load(&x->ready))
		t_sleep_ms(1);
	t_sleep_ms(80);           /* the consumer is asleep on the empty ring by now */
	send_key(g.p, 100, 77, 0);
	/* once its receive has returned */
	while (atomic_load(&x->ready) != 2)
		t_sleep_ms(1);
	unsigned n = fill(g.p, 1000, 0);
	x->n = n + 1;
	atomic_store(&x->ready, 3);
	uint64_t t0 = t_now_ns();
	send_key(g.p, 1000, 99, SHMRING_FOREVER);
	cr_assert_geq(t_now_ns() - t0, 40 * MS, "[%s] the send did not wait", BN);
	cr_assert_eq(t_wait(pid), 0, "[%s] the consumer", BN);
	t_unshared(x, sizeof(*x));
	rig_close(&g);
}

/* ======================================================================= */
/* zero-copy                                                               */
/* ======================================================================= */

BACKEND_TEST(reserve_commit_in_place, .timeout = 30)
{
	struct rig g;
	rig_open(&g, b, "zc", 1000);
	struct shmring_msg m, f;
	for (uint64_t k = 0; k < 50; k++) {
		size_t len = (size_t)(k * 37 % 1001);
		expect_rc(shmring_reserve(g.p, len, &m, 0), 0, "reserve");
		cr_assert_not_null(m.data);
		cr_assert_eq(m.len, len);
		t_fill(m.data, len, k);
		expect_empty(g.q);      /* nothing is visible before the commit */
		expect_rc(shmring_commit(g.p, &m), 0, "commit");
		recv_key(g.q, len, k, 0);
	}
	/* a commit may shrink the message */
	expect_rc(shmring_reserve(g.p, 1000, &m, 0), 0, "reserve 1000");
	t_fill(m.data, 300, 500);
	m.len = 300;
	expect_rc(shmring_commit(g.p, &m), 0, "commit shrunk to 300");
	recv_key(g.q, 300, 500, 0);

	/* while a reservation is open: per kind (several_open) */
	expect_rc(shmring_reserve(g.p, 100, &m, 0), 0, "reserve");
	struct iovec v = { "abc", 3 };
	bool several = several_open(&g);
	if (several) {
		/* MPMC: another reservation, committed first, and sends go on;
		 * they are delivered in the order of the reservations, after
		 * the first one's commit */
		expect_rc(shmring_reserve(g.p, 10, &f, 0), 0, "a second reservation");
		t_fill(f.data, 10, 601);
		expect_rc(shmring_commit(g.p, &f), 0, "the second committed first");
		expect_rc(shmring_send(g.p, "abc", 3, 0), 0, "send during a reservation");
		expect_rc(shmring_send_batch(g.p, &v, 1, 0), 1, "batch during a reservation");
		expect_empty(g.q);
	} else {
		/* one reservation at a time, and nothing else goes meanwhile */
		expect_rc(shmring_send(g.p, "abc", 3, 0), -EINPROGRESS, "send during reservation");
		expect_rc(shmring_reserve(g.p, 10, &f, 0), -EINPROGRESS, "reserve during reservation");
		expect_rc(shmring_send_batch(g.p, &v, 1, 0), -EINPROGRESS, "batch during reservation");
	}
	/* refused commits leave it open */
	f = m;
	f.len = 101;
	expect_rc(shmring_commit(g.p, &f), -EINVAL, "grown len");
	f = m;
	f.priv[0] ^= 0x5a5a;
	expect_rc(shmring_commit(g.p, &f), -EINVAL, "forged priv[0]");
	memset(&f, 0, sizeof(f));
	expect_rc(shmring_commit(g.p, &f), -EINVAL, "commit of nothing");
	t_fill(m.data, 100, 600);
	struct shmring_msg copy = m;
	expect_rc(shmring_commit(g.p, &m), 0, "the genuine commit");
	expect_rc(shmring_commit(g.p, &copy), -EINVAL, "second commit");
	recv_key(g.q, 100, 600, 0);
	if (several) {
		recv_key(g.q, 10, 601, 0);
		recv_text(g.q, "abc");
		recv_text(g.q, "abc");
	}
	expect_empty(g.q);
	rig_close(&g);
}

BACKEND_TEST(acquire_release_in_order, .timeout = 30)
{
	struct rig g;
	rig_open(&g, b, "acq", 1000);
	struct shmring_msg m[5], f;
	bool several = several_open(&g);
	size_t lens[5] = { 0, 1, 300, 1000, 64 };
	uint8_t buf[1000];
	struct iovec v = { buf, sizeof(buf) };
	unsigned depth = (unsigned)(g.caps.capacity / g.caps.max_msg);
	unsigned k = depth < 5 ? depth : 5;
	cr_assert_geq(k, 2u);
	for (int round = 0; round < 20; round++) {
		for (unsigned i = 0; i < k; i++)
			send_key(g.p, lens[i], (uint64_t)round * 5 + i, 0);
		for (unsigned i = 0; i < k; i++) {
			expect_rc(shmring_acquire(g.q, &m[i], 0), 0, "acquire");
			cr_assert_eq(m[i].len, lens[i]);
			cr_assert(t_check(m[i].data, lens[i], (uint64_t)round * 5 + i));
		}
		expect_rc(shmring_acquire(g.q, &f, 0), -EAGAIN, "nothing left to acquire");
		if (several) {
			/* MPMC: copying receives go on, releases in any order */
			send_key(g.p, 7, 999, 0);
			send_key(g.p, 8, 998, 0);
			recv_key(g.q, 7, 999, 0);
			expect_rc(shmring_recv_batch(g.q, &v, 1, 0), 1, "recv_batch while held");
			cr_assert(v.iov_len == 8 && t_check(buf, 8, 998));
			v.iov_len = sizeof(buf);
			expect_rc(shmring_release(g.q, &m[1]), 0, "release out of order");
		} else {
			/* oldest first, and no copying receive meanwhile */
			expect_rc(shmring_recv(g.q, buf, sizeof(buf), 0), -EINPROGRESS,
				  "recv while held");
			expect_rc(shmring_recv_batch(g.q, &v, 1, 0), -EINPROGRESS,
				  "recv_batch while held");
			expect_rc(shmring_release(g.q, &m[1]), -EINVAL, "release out of order");
		}
		for (unsigned i = 0; i < k; i++) {
			if (several && i == 1)
				continue;       /* released above */
			/* still intact after the ones before were released */
			cr_assert(t_check(m[i].data, lens[i], (uint64_t)round * 5 + i),
				  "[%s] held message %u changed", BN, i);
			expect_rc(shmring_release(g.q, &m[i]), 0, "release");
		}
		expect_rc(shmring_release(g.q, &m[0]), -EINVAL, "release twice");
	}
	expect_empty(g.q);
	rig_close(&g);
}

BACKEND_TEST(acquired_data_stays_valid_while_the_producer_fills, .timeout = 30)
{
	struct rig g;
	rig_open(&g, b, "stable", 1000);
	struct shmring_msg m;
	for (int round = 0; round < 10; round++) {
		send_key(g.p, 800, 1000 + (uint64_t)round, 0);
		expect_rc(shmring_acquire(g.q, &m, 0), 0, "acquire");
		void *at = m.data;
		unsigned n = fill(g.p, 200, 0);
		cr_assert_gt(n, 0u, "[%s] the producer could not send", BN);
		cr_assert_eq(m.data, at, "[%s] data pointer moved", BN);
		cr_assert_eq(m.len, 800);
		cr_assert(t_check(m.data, 800, 1000 + (uint64_t)round),
			  "[%s] acquired message overwritten before release", BN);
		expect_rc(shmring_release(g.q, &m), 0, "release");
		for (unsigned i = 0; i < n; i++)
			recv_key(g.q, 200, i, 0);
	}
	rig_close(&g);
}

/* ======================================================================= */
/* batches                                                                 */
/* ======================================================================= */

BACKEND_TEST(batches_move_what_fits_and_fill_lengths, .timeout = 30)
{
	struct rig g;
	rig_open(&g, b, "batch", 1000);
	enum { N = 200 };
	static uint8_t data[N][600];
	struct iovec out[N];
	for (unsigned i = 0; i < N; i++) {
		size_t len = (i * 53) % 600;
		t_fill(data[i], len, i);
		out[i] = (struct iovec){ data[i], len };
	}
	unsigned sent = 0, got = 0;
	while (got < N) {
		if (sent < N) {
			int rc = shmring_send_batch(g.p, out + sent, N - sent, 0);
			cr_assert(rc > 0 || (rc == -EAGAIN && got < sent),
				  "[%s] send_batch: %s", BN, rc < 0 ? shmring_strerror(rc) : "0");
			if (rc > 0)
				sent += (unsigned)rc;
		}
		static uint8_t in[32][1000];
		struct iovec iv[32];
		for (unsigned i = 0; i < 32; i++)
			iv[i] = (struct iovec){ in[i], sizeof(in[i]) };
		int rc = shmring_recv_batch(g.q, iv, 32, 0);
		cr_assert(rc > 0 || rc == -EAGAIN, "[%s] recv_batch: %s", BN,
			  rc < 0 ? shmring_strerror(rc) : "0");
		for (int i = 0; i < rc; i++, got++) {
			cr_assert_eq(iv[i].iov_len, (got * 53) % 600, "[%s] length of %u", BN, got);
			cr_assert(t_check(in[i], iv[i].iov_len, got), "[%s] content of %u", BN, got);
		}
	}
	cr_assert_eq(sent, N);
	expect_empty(g.q);

	/* bad arguments */
	struct iovec bad[2] = { { data[0], 10 }, { NULL, 5 } };
	expect_rc(shmring_send_batch(g.p, bad, 0, 0), -EINVAL, "send_batch of 0");
	expect_rc(shmring_send_batch(g.p, bad + 1, 1, 0), -EINVAL, "NULL base with a length");
	expect_rc(shmring_send_batch(g.p, bad, 2, 0), 1, "stops before the bad one");
	struct iovec rb[2] = { { data[1], 600 }, { NULL, 5 } };
	expect_rc(shmring_recv_batch(g.q, rb, 0, 0), -EINVAL, "recv_batch of 0");
	expect_rc(shmring_recv_batch(g.q, rb + 1, 1, 0), -EINVAL, "NULL base with a length");
	expect_rc(shmring_recv_batch(g.q, rb, 2, 0), 1, "stops before the bad one");
	cr_assert_eq(rb[0].iov_len, 10);
	rig_close(&g);
}

/* ======================================================================= */
/* shutdown                                                                */
/* ======================================================================= */

static void shutdown_case(const struct backend *b, int64_t last_timeout)
{
	struct rig g;
	rig_open(&g, b, "shut", 1000);
	send_key(g.p, 10, 1, 0);
	send_key(g.p, 20, 2, 0);
	send_key(g.p, 0, 3, 0);
	expect_rc(shmring_shutdown(g.q), -EPERM, "shutdown by a consumer");
	expect_rc(shmring_shutdown(g.p), 0, "shutdown");
	expect_rc(shmring_shutdown(g.p), 0, "shutdown again is harmless");
	struct shmring_msg m;
	uint8_t buf[100];
	struct iovec v = { buf, sizeof(buf) };
	expect_rc(shmring_send(g.p, buf, 5, 0), -EPIPE, "send after shutdown");
	expect_rc(shmring_reserve(g.p, 5, &m, 0), -EPIPE, "reserve after shutdown");
	expect_rc(shmring_send_batch(g.p, &v, 1, 0), -EPIPE, "send_batch after shutdown");
	recv_key(g.q, 10, 1, last_timeout);
	recv_key(g.q, 20, 2, last_timeout);
	recv_key(g.q, 0, 3, last_timeout);
	expect_rc(shmring_recv(g.q, buf, sizeof(buf), last_timeout), -EPIPE, "recv when drained");
	expect_rc(shmring_recv(g.q, buf, sizeof(buf), 0), -EPIPE, "and again");
	expect_rc(shmring_acquire(g.q, &m, last_timeout), -EPIPE, "acquire when drained");
	expect_rc(shmring_recv_batch(g.q, &v, 1, last_timeout), -EPIPE, "recv_batch when drained");
	struct shmring_stats st;
	expect_rc(shmring_stats(g.q, &st), 0, "stats");
	cr_assert_eq(st.shut_down, 1, "[%s] the consumer sees the shutdown", BN);
	rig_close(&g);
}

BACKEND_TEST(shutdown_drains_then_epipe_timeout0, .timeout = 30)
{
	shutdown_case(b, 0);
}

BACKEND_TEST(shutdown_drains_then_epipe_forever, .timeout = 30)
{
	shutdown_case(b, SHMRING_FOREVER);
}

BACKEND_TEST(shutdown_on_a_full_ring_and_open_reservation, .timeout = 30)
{
	struct rig g;
	rig_open(&g, b, "shutfull", 1000);
	unsigned n = fill(g.p, 1000, 0);
	uint8_t buf[1000];
	/* make room for one: three messages on a ring, even if it has to
	 * wrap; on a pipe, a page of it */
	unsigned took = 0;
	struct shmring_msg m;
	int rc;
	do {
		recv_key(g.q, 1000, took++, 0);
		rc = shmring_reserve(g.p, 1000, &m, 0);
	} while (rc == -EAGAIN && took < n);
	expect_rc(rc, 0, "reserve");
	t_fill(m.data, 1000, 99);
	uint64_t t0 = t_now_ns();
	rc = shmring_shutdown(g.p);
	expect_rc(rc, 0, "shutdown");
	cr_assert_lt(t_now_ns() - t0, 1500 * MS, "[%s] shutdown took too long", BN);
	/* the frame being written when the stream ended is dropped */
	expect_rc(shmring_commit(g.p, &m), -EPIPE, "commit after shutdown");
	for (unsigned i = took; i < n; i++)
		recv_key(g.q, 1000, i, 0);
	expect_rc(shmring_recv(g.q, buf, sizeof(buf), SHMRING_FOREVER), -EPIPE, "end");
	rig_close(&g);
}

static int wait_for_end(void *arg)
{
	struct box *x = arg;
	struct shmring *q = NULL;
	if (shmring_open(x->uri, SHMRING_CONSUMER, &x->o, &q))
		return 10;
	atomic_store(&x->ready, 1);
	uint8_t buf[100];
	ssize_t n = shmring_recv(q, buf, sizeof(buf), SHMRING_FOREVER);
	shmring_close(q);
	return n == -EPIPE ? 0 : 11;
}

BACKEND_TEST(shutdown_wakes_a_consumer_asleep_in_another_process, .timeout = 30)
{
	struct rig g;
	rig_open(&g, b, "shutwake", 1000);
	struct box *x = box_new(&g);
	shmring_close(g.q);
	g.q = NULL;
	pid_t pid = t_spawn(wait_for_end, x);
	while (!atomic_load(&x->ready))
		t_sleep_ms(1);
	t_sleep_ms(50);
	expect_rc(shmring_shutdown(g.p), 0, "shutdown");
	cr_assert_eq(t_wait(pid), 0, "[%s] the consumer did not see the end", BN);
	t_unshared(x, sizeof(*x));
	rig_close(&g);
}

/* ======================================================================= */
/* roles, names, permissions, statistics                                   */
/* ======================================================================= */

BACKEND_TEST(roles_are_enforced, .timeout = 30)
{
	struct rig g;
	rig_open(&g, b, "roles", 1000);
	uint8_t buf[10];
	struct shmring_msg m;
	struct iovec v = { buf, sizeof(buf) };
	expect_rc(shmring_send(g.q, buf, 1, 0), -EPERM, "send by a consumer");
	expect_rc(shmring_reserve(g.q, 1, &m, 0), -EPERM, "reserve by a consumer");
	expect_rc(shmring_send_batch(g.q, &v, 1, 0), -EPERM, "send_batch by a consumer");
	expect_rc(shmring_recv(g.p, buf, sizeof(buf), 0), -EPERM, "recv by a producer");
	expect_rc(shmring_acquire(g.p, &m, 0), -EPERM, "acquire by a producer");
	expect_rc(shmring_recv_batch(g.p, &v, 1, 0), -EPERM, "recv_batch by a producer");
	expect_rc(shmring_send(g.c, buf, 1, 0), -EPERM, "send without a role");
	expect_rc(shmring_recv(g.c, buf, sizeof(buf), 0), -EPERM, "recv without a role");
	struct shmring_stats st;
	expect_rc(shmring_stats(g.c, &st), 0, "stats without a role");
	struct shmring_caps cp;
	expect_rc(shmring_caps(g.c, &cp), 0, "caps without a role");
	cr_assert_eq(cp.flags, g.caps.flags, "[%s] caps are the backend's", BN);
	cr_assert_eq(cp.max_msg, g.caps.max_msg);

	/* one handle with both roles talks to itself */
	shmring_close(g.p);
	shmring_close(g.q);
	g.p = g.q = NULL;
	struct shmring *both = open_or_die(&g, SHMRING_PRODUCER | SHMRING_CONSUMER);
	send_key(both, 42, 5, 0);
	recv_key(both, 42, 5, 0);
	shmring_close(both);
	rig_close(&g);
}

BACKEND_TEST(extra_consumers_and_producers_follow_the_caps, .timeout = 30)
{
	struct rig g;
	rig_open(&g, b, "extra", 1000);
	struct shmring *r = NULL;
	int rc = shmring_open(g.uri, SHMRING_CONSUMER, &g.o, &r);
	if (g.caps.max_consumers > 1) {
		expect_rc(rc, 0, "a second consumer");
		shmring_close(r);
	} else {
		cr_assert(rc == -EBUSY || rc == -ENOTSUP, "[%s] a second consumer: %s", BN,
			  shmring_strerror(rc));
	}
	rc = shmring_open(g.uri, SHMRING_PRODUCER, &g.o, &r);
	if (g.caps.max_producers > 1) {
		expect_rc(rc, 0, "a second producer");
		shmring_close(r);
	} else {
		cr_assert(rc == -EBUSY || rc == -ENOTSUP, "[%s] a second producer: %s", BN,
			  shmring_strerror(rc));
	}
	/* the refused opens disturbed nothing */
	send_key(g.p, 10, 1, 0);
	recv_key(g.q, 10, 1, 0);
	rig_close(&g);
}

BACKEND_TEST(create_excl_missing_and_unlink, .timeout = 30)
{
	BN = b->name;
	const char *uri = uri_for(b, "names");
	struct shmring_opts o = opts_for(b, 1000);
	struct shmring *r = NULL, *r2 = NULL;
	expect_rc(shmring_open(uri, 0, &o, &r), -ENOENT, "open a missing ring");
	expect_rc(shmring_open(uri, SHMRING_PRODUCER, &o, &r), -ENOENT,
		  "open a missing ring as producer");
	expect_rc(shmring_open(uri, SHMRING_CONSUMER, &o, &r), -ENOENT,
		  "open a missing ring as consumer");
	/* and the failed opens made nothing */
	expect_rc(shmring_unlink(uri), -ENOENT, "unlink a missing ring");
	expect_rc(shmring_open(uri, SHMRING_CREATE | SHMRING_EXCL, &o, &r), 0, "create");
	expect_rc(shmring_open(uri, SHMRING_CREATE | SHMRING_EXCL, &o, &r2), -EEXIST, "create again");
	expect_rc(shmring_open(uri, SHMRING_CREATE | SHMRING_CONSUMER, &o, &r2), 0,
		  "CREATE without EXCL opens the existing one");
	/* handles outlive the name */
	struct shmring *p = NULL;
	expect_rc(shmring_open(uri, SHMRING_PRODUCER, &o, &p), 0, "producer");
	struct shmring_stats st;
	expect_rc(shmring_stats(p, &st), 0, "stats");
	cr_assert_eq(st.unlinked, 0, "[%s] stats tell that the name is there", BN);
	expect_rc(shmring_unlink(uri), 0, "unlink");
	expect_rc(shmring_unlink(uri), -ENOENT, "unlink twice");
	send_key(p, 33, 1, 0);
	recv_key(r2, 33, 1, 0);
	expect_rc(shmring_stats(p, &st), 0, "stats");
	cr_assert_eq(st.unlinked, 1, "[%s] stats tell that the name is gone", BN);
	shmring_close(p);
	shmring_close(r2);
	shmring_close(r);
	expect_rc(shmring_open(uri, SHMRING_CONSUMER, &o, &r), -ENOENT, "reopen after unlink");
	/* a new ring of that name is a new stream */
	expect_rc(shmring_open(uri, SHMRING_CREATE | SHMRING_CONSUMER, &o, &r), 0, "create anew");
	expect_empty(r);
	shmring_close(r);
	expect_rc(shmring_unlink(uri), 0, "unlink");
}

/* All three ids of both kinds, and no supplementary group: nothing of
 * root is left to open with. */
static int become_nobody(void)
{
	if (setgroups(0, NULL) || setresgid(NOBODY, NOBODY, NOBODY) ||
	    setresuid(NOBODY, NOBODY, NOBODY))
		return -1;
	return geteuid() == NOBODY ? 0 : -1;
}

/* Opens x->uri with x->who as nobody: 0, the errno, or 99 (setup). */
static int open_as_nobody(void *arg)
{
	struct box *x = arg;
	if (become_nobody() < 0)
		return 99;
	if (x->trust && shmring_trust_owner((uid_t)(x->trust - 1)) != 0)
		return 98;
	struct shmring *r = NULL;
	int rc = shmring_open(x->uri, x->who, &x->o, &r);
	if (rc == 0)
		shmring_close(r);
	return rc < 0 ? -rc : 0;
}

BACKEND_TEST(mode_is_exact_and_guards_other_users, .timeout = 30)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to act as another user");
	BN = b->name;
	const char *uri = uri_for(b, "mode");
	struct shmring_opts o = opts_for(b, 1000);
	struct shmring *r = NULL;
	mode_t old = umask(077);        /* must not cut the requested mode */
	o.mode = 0666;
	expect_rc(shmring_open(uri, SHMRING_CREATE | SHMRING_EXCL, &o, &r), 0, "create 0666");
	umask(old);
	struct rig g = { .b = b, .uri = uri, .o = o };
	struct box *x = box_new(&g);
	x->who = SHMRING_CONSUMER;
	x->trust = 1;           /* root, as the ring's owner */
	cr_assert_eq(t_wait(t_spawn(open_as_nobody, x)), 0, "[%s] 0666: another user opens", BN);
	x->trust = 0;
	shmring_close(r);
	expect_rc(shmring_unlink(uri), 0, "unlink");
	o.mode = 0600;
	x->o = o;
	expect_rc(shmring_open(uri, SHMRING_CREATE | SHMRING_EXCL, &o, &r), 0, "create 0600");
	cr_assert_eq(t_wait(t_spawn(open_as_nobody, x)), EACCES, "[%s] 0600: refused", BN);
	shmring_close(r);
	expect_rc(shmring_unlink(uri), 0, "unlink");
	o.mode = 010000;
	expect_rc(shmring_open(uri, SHMRING_CREATE | SHMRING_EXCL, &o, &r), -EINVAL, "mode 010000");
	t_unshared(x, sizeof(*x));
}

/* A ring another user made is memory (or a FIFO, a queue) that user
 * writes: nobody squats the name with mode 0666, and root's CREATE opens
 * it only once root names nobody as trusted.  The rule holds both ways. */
BACKEND_TEST(another_users_ring_is_refused_unless_trusted, .timeout = 30)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to act as another user");
	BN = b->name;
	struct shmring_opts o = opts_for(b, 100);
	o.mode = 0666;
	struct shmring *r = NULL;

	/* root's ring, nobody opens it */
	const char *mine = uri_for(b, "own");
	struct rig g = { .b = b, .uri = mine, .o = o };
	struct box *x = box_new(&g);
	expect_rc(shmring_open(mine, SHMRING_CREATE | SHMRING_EXCL, &o, &r), 0, "create 0666");
	shmring_close(r);
	x->who = SHMRING_CONSUMER;
	cr_assert_eq(t_wait(t_spawn(open_as_nobody, x)), EACCES,
		     "[%s] nobody opens root's ring without trusting root", BN);
	x->trust = 1;
	cr_assert_eq(t_wait(t_spawn(open_as_nobody, x)), 0,
		     "[%s] nobody opens root's ring, trusting root", BN);
	expect_rc(shmring_unlink(mine), 0, "unlink root's ring");

	/* nobody's ring, root opens it */
	const char *squat = uri_for(b, "squat");
	snprintf(x->uri, sizeof(x->uri), "%s", squat);
	x->who = SHMRING_CREATE | SHMRING_EXCL;
	x->trust = 0;
	cr_assert_eq(t_wait(t_spawn(open_as_nobody, x)), 0, "[%s] nobody creates", BN);
	expect_rc(shmring_open(squat, SHMRING_CREATE | SHMRING_PRODUCER, &o, &r), -EACCES,
		  "root's CREATE|PRODUCER on nobody's ring");
	expect_rc(shmring_open(squat, SHMRING_CONSUMER, &o, &r), -EACCES,
		  "root's CONSUMER on nobody's ring");
	expect_rc(shmring_open(squat, 0, &o, &r), -EACCES, "root's role-less open");
	expect_rc(shmring_trust_owner(NOBODY), 0, "trust nobody");
	expect_rc(shmring_trust_owner(NOBODY), 0, "trust nobody again");
	expect_rc(shmring_open(squat, SHMRING_CREATE | SHMRING_PRODUCER, &o, &r), 0,
		  "root's CREATE|PRODUCER, trusting nobody");
	expect_rc(shmring_send(r, "hi", 2, 0), 0, "send");
	shmring_close(r);
	expect_rc(shmring_unlink(squat), 0, "unlink nobody's ring");
	t_unshared(x, sizeof(*x));
}

/* Read and write bits only: setuid, setgid, sticky or any execute bit on a
 * ring another user can write would let that user run code as its owner. */
BACKEND_TEST(mode_takes_read_and_write_bits_only, .timeout = 30)
{
	BN = b->name;
	struct shmring_opts o = opts_for(b, 100);
	struct shmring *r = NULL;
	static const uint32_t bad[] = { 04777, 02666, 0777, 01666, 0700, 0766, 0611, 04600 };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *uri = uri_for(b, "xmode");
		o.mode = bad[i];
		int rc = shmring_open(uri, SHMRING_CREATE | SHMRING_EXCL | SHMRING_PRODUCER, &o, &r);
		if (rc == 0)
			shmring_close(r);
		cr_assert_eq(rc, -EINVAL, "[%s] mode %o: %s", BN, bad[i], shmring_strerror(rc));
		cr_assert_eq(shmring_unlink(uri), -ENOENT, "[%s] mode %o left a name", BN, bad[i]);
	}
	static const uint32_t good[] = { 0600, 0640, 0666, 0644 };
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		const char *uri = uri_for(b, "rwmode");
		o.mode = good[i];
		int rc = shmring_open(uri, SHMRING_CREATE | SHMRING_EXCL, &o, &r);
		cr_assert_eq(rc, 0, "[%s] mode %o: %s", BN, good[i], shmring_strerror(rc));
		shmring_close(r);
		expect_rc(shmring_unlink(uri), 0, "unlink");
	}
}

BACKEND_TEST(stats_count_this_handles_traffic, .timeout = 30)
{
	struct rig g;
	rig_open(&g, b, "stats", 1000);
	uint64_t bytes = 0;
	for (unsigned i = 0; i < 7; i++) {
		send_key(g.p, 10 * i, i, 0);
		bytes += 10 * i;
	}
	struct shmring_stats sp, sq;
	expect_rc(shmring_stats(g.p, &sp), 0, "stats");
	cr_assert_eq(sp.msgs_sent, 7, "[%s] msgs_sent", BN);
	cr_assert_eq(sp.bytes_sent, bytes, "[%s] bytes_sent", BN);
	cr_assert_gt(sp.used, 0, "[%s] something is queued", BN);
	cr_assert_eq(sp.max_msg, g.caps.max_msg);
	cr_assert_eq(sp.capacity, g.caps.capacity);
	cr_assert_eq(sp.shut_down, 0);
	cr_assert_eq(sp.unlinked, 0);
	for (unsigned i = 0; i < 7; i++)
		recv_key(g.q, 10 * i, i, 0);
	expect_rc(shmring_stats(g.q, &sq), 0, "stats");
	cr_assert_eq(sq.msgs_recv, 7, "[%s] msgs_recv", BN);
	cr_assert_eq(sq.bytes_recv, bytes, "[%s] bytes_recv", BN);
	cr_assert_eq(sq.used, 0, "[%s] nothing left", BN);
	cr_assert_geq(sq.producers + sq.consumers, 1, "[%s] at least this handle", BN);
	/* a wait that had to wait is counted */
	uint8_t buf[10];
	expect_rc(shmring_recv(g.q, buf, sizeof(buf), 5 * MS), -ETIMEDOUT, "recv");
	expect_rc(shmring_stats(g.q, &sq), 0, "stats");
	cr_assert_geq(sq.waits_empty, 1, "[%s] waits_empty", BN);
	rig_close(&g);
}

/* ======================================================================= */
/* several processes                                                        */
/* ======================================================================= */

#define STREAM_MSGS 1000000ull
#define STREAM_BATCH 16

/* Message seq: 8 to 64 bytes, its sequence number first, then bytes
 * derived from it; the checksum covers every byte. */
static size_t stream_len(uint64_t seq)
{
	return 8 + (size_t)(seq * 7 % 57);
}

static void stream_msg(uint8_t *p, uint64_t seq)
{
	size_t len = stream_len(seq);
	t_fill(p + 8, len - 8, seq);
	memcpy(p, &seq, 8);
}

static uint64_t mix(uint64_t sum, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		sum = (sum ^ p[i]) * 0x100000001b3ull;
	return sum;
}

static uint64_t stream_ready_sum(uint64_t n)
{
	uint8_t buf[64];
	uint64_t sum = 0xcbf29ce484222325ull;
	for (uint64_t s = 0; s < n; s++) {
		stream_msg(buf, s);
		sum = mix(sum, buf, stream_len(s));
	}
	return sum;
}

/* The producer: copying sends, in-place commits and batches in turn. */
static int stream_producer(void *arg)
{
	struct box *x = arg;
	struct shmring *p = NULL;
	if (shmring_open(x->uri, SHMRING_PRODUCER, &x->o, &p))
		return 10;
	uint8_t bufs[STREAM_BATCH][64];
	struct iovec v[STREAM_BATCH];
	uint64_t seq = 0, sum = 0xcbf29ce484222325ull;
	while (seq < x->n) {
		unsigned mode = (unsigned)(seq / 1000 % 3);
		if (mode == 0) {
			stream_msg(bufs[0], seq);
			if (shmring_send(p, bufs[0], stream_len(seq), SHMRING_FOREVER))
				return 11;
			sum = mix(sum, bufs[0], stream_len(seq));
			seq++;
		} else if (mode == 1) {
			struct shmring_msg m;
			if (shmring_reserve(p, stream_len(seq), &m, SHMRING_FOREVER))
				return 12;
			stream_msg(m.data, seq);
			sum = mix(sum, m.data, stream_len(seq));
			if (shmring_commit(p, &m))
				return 13;
			seq++;
		} else {
			unsigned k = 0;
			for (; k < STREAM_BATCH && seq + k < x->n; k++) {
				stream_msg(bufs[k], seq + k);
				v[k] = (struct iovec){ bufs[k], stream_len(seq + k) };
			}
			int rc = shmring_send_batch(p, v, k, SHMRING_FOREVER);
			if (rc <= 0)
				return 14;
			for (int i = 0; i < rc; i++)
				sum = mix(sum, bufs[i], v[i].iov_len);
			seq += (uint64_t)rc;
		}
	}
	x->sum = sum;
	if (shmring_shutdown(p))
		return 15;
	shmring_close(p);
	return 0;
}

static void stream_check(const uint8_t *p, size_t len, uint64_t want)
{
	uint64_t seq;
	cr_assert_eq(len, stream_len(want), "[%s] length of message %llu: %zu", BN,
		     (unsigned long long)want, len);
	memcpy(&seq, p, 8);
	cr_assert_eq(seq, want, "[%s] message %llu came as %llu", BN, (unsigned long long)want,
		     (unsigned long long)seq);
	cr_assert(t_check(p + 8, len - 8, seq), "[%s] message %llu torn", BN,
		  (unsigned long long)seq);
}

BACKEND_TEST(two_processes_a_million_messages_with_checksums, .timeout = 240)
{
	struct rig g;
	rig_roles(&g, b, "million", 64, SHMRING_CONSUMER);
	struct box *x = box_new(&g);
	x->n = STREAM_MSGS;
	/* fewer for a quick look, more for a soak */
	if (getenv("SHMRING_CONFORMANCE_MSGS"))
		x->n = strtoull(getenv("SHMRING_CONFORMANCE_MSGS"), NULL, 10);
	pid_t pid = t_spawn(stream_producer, x);
	uint64_t seq = 0, sum = 0xcbf29ce484222325ull;
	uint8_t bufs[STREAM_BATCH][64];
	struct iovec v[STREAM_BATCH];
	for (;;) {
		unsigned mode = (unsigned)(seq / 777 % 3);
		if (mode == 0) {
			ssize_t n = shmring_recv(g.q, bufs[0], 64, SHMRING_FOREVER);
			if (n == -EPIPE)
				break;
			cr_assert_geq(n, 0, "[%s] recv: %s", BN, shmring_strerror((int)n));
			stream_check(bufs[0], (size_t)n, seq++);
			sum = mix(sum, bufs[0], (size_t)n);
		} else if (mode == 1) {
			struct shmring_msg m;
			int rc = shmring_acquire(g.q, &m, SHMRING_FOREVER);
			if (rc == -EPIPE)
				break;
			expect_rc(rc, 0, "acquire");
			stream_check(m.data, m.len, seq++);
			sum = mix(sum, m.data, m.len);
			expect_rc(shmring_release(g.q, &m), 0, "release");
		} else {
			for (unsigned i = 0; i < STREAM_BATCH; i++)
				v[i] = (struct iovec){ bufs[i], 64 };
			int rc = shmring_recv_batch(g.q, v, STREAM_BATCH, SHMRING_FOREVER);
			if (rc == -EPIPE)
				break;
			cr_assert_gt(rc, 0, "[%s] recv_batch: %s", BN, shmring_strerror(rc));
			for (int i = 0; i < rc; i++) {
				stream_check(bufs[i], v[i].iov_len, seq++);
				sum = mix(sum, bufs[i], v[i].iov_len);
			}
		}
	}
	cr_assert_eq(t_wait(pid), 0, "[%s] producer", BN);
	cr_assert_eq(seq, x->n, "[%s] %llu of %llu messages", BN, (unsigned long long)seq,
		     (unsigned long long)x->n);
	cr_assert_eq(sum, x->sum, "[%s] checksums differ", BN);
	cr_assert_eq(sum, stream_ready_sum(x->n), "[%s] checksum of what was meant", BN);
	t_unshared(x, sizeof(*x));
	rig_close(&g);
}

/* Several producers and consumers at once, where the caps allow: every
 * message exactly once, in order per producer. */
#define MANY_MSGS 50000u
#define MANY_MAX 4

struct many {
	struct box box;
	_Atomic uint8_t seen[MANY_MAX][MANY_MSGS];
	_Atomic uint64_t got;
	int producers;
	int copies;              /* consumers that get each message: 1, or all (bcast) */
};

static int many_producer(void *arg)
{
	struct many *y = arg;
	struct box *x = &y->box;
	int me = atomic_fetch_add(&x->ready, 1);
	struct shmring *p = NULL;
	if (shmring_open(x->uri, SHMRING_PRODUCER, &x->o, &p))
		return 10;
	for (uint32_t i = 0; i < MANY_MSGS; i++) {
		uint32_t msg[4] = { (uint32_t)me, i, (uint32_t)me * 7919u + i, 0xabcdu };
		if (shmring_send(p, msg, sizeof(msg), SHMRING_FOREVER))
			return 11;
	}
	shmring_close(p);
	return 0;
}

static int many_consumer(void *arg)
{
	struct many *y = arg;
	struct box *x = &y->box;
	struct shmring *q = NULL;
	if (shmring_open(x->uri, SHMRING_CONSUMER, &x->o, &q))
		return 20;
	int64_t last[MANY_MAX];
	for (int i = 0; i < MANY_MAX; i++)
		last[i] = -1;
	for (;;) {
		uint32_t msg[4];
		ssize_t n = shmring_recv(q, msg, sizeof(msg), 20000 * MS);
		if (n == -EPIPE)
			break;
		if (n != (ssize_t)sizeof(msg))
			return 21;
		if (msg[0] >= (uint32_t)y->producers || msg[1] >= MANY_MSGS ||
		    msg[2] != msg[0] * 7919u + msg[1] || msg[3] != 0xabcdu)
			return 22;      /* torn */
		if ((int64_t)msg[1] <= last[msg[0]])
			return 23;      /* out of order for its producer */
		last[msg[0]] = msg[1];
		if (atomic_fetch_add(&y->seen[msg[0]][msg[1]], 1) >= y->copies)
			return 24;      /* twice */
		atomic_fetch_add(&y->got, 1);
	}
	shmring_close(q);
	return 0;
}

BACKEND_TEST(several_producers_and_consumers_where_allowed, .timeout = 120)
{
	struct rig g;
	rig_roles(&g, b, "many", 64, 0);
	unsigned np = g.caps.max_producers < 2 ? g.caps.max_producers : 2;
	unsigned nc = g.caps.max_consumers < 2 ? g.caps.max_consumers : 2;
	if (np < 2 && nc < 2) {
		rig_close(&g);
		cr_skip_test("[%s] one producer and one consumer at a time", BN);
	}
	struct many *y = t_shared(sizeof(*y));
	memset(y, 0, sizeof(*y));
	snprintf(y->box.uri, sizeof(y->box.uri), "%s", g.uri);
	y->box.o = g.o;
	y->producers = (int)np;
	y->copies = bcast() ? (int)nc : 1;
	pid_t cons[2], prod[2];
	for (unsigned i = 0; i < nc; i++)
		cons[i] = t_spawn(many_consumer, y);
	t_sleep_ms(50);           /* the consumers are there (a pipe keeps nothing after) */
	for (unsigned i = 0; i < np; i++)
		prod[i] = t_spawn(many_producer, y);
	for (unsigned i = 0; i < np; i++)
		cr_assert_eq(t_wait(prod[i]), 0, "[%s] producer %u", BN, i);
	struct shmring *p = open_or_die(&g, SHMRING_PRODUCER);
	expect_rc(shmring_shutdown(p), 0, "shutdown");
	for (unsigned i = 0; i < nc; i++)
		cr_assert_eq(t_wait(cons[i]), 0, "[%s] consumer %u", BN, i);
	shmring_close(p);
	cr_assert_eq(atomic_load(&y->got), (uint64_t)np * MANY_MSGS * (uint64_t)y->copies,
		     "[%s] every message once (to every consumer of a broadcast ring)", BN);
	t_unshared(y, sizeof(*y));
	rig_close(&g);
}

/* ======================================================================= */
/* consumer hand-over                                                      */
/* ======================================================================= */

/*
 * A consumer that leaves is not the end of the stream; only shmring_shutdown
 * is.  A producer streams (send, reserve/commit, send_batch) while a first
 * consumer receives a few messages — an -EAGAIN, a timed receive that times
 * out, an -EMSGSIZE then the same message into a large buffer, a zero-length
 * message, then the stream with every receive call — and closes; after a
 * gap, a new consumer in another process takes over and drains to -EPIPE.
 * Every message is delivered at most once and in order, nothing after
 * -EPIPE, and what is missing is what the stats count as dropped.
 *
 * SHMRING_HANDOVER_RUNS repeats each case (default 2; 100 for a soak).
 */
#define HO_MSGS 3000u           /* about 6 MB: several times a ring, under way at the hand-over */
#define HO_FIRST 200u           /* streamed messages the first consumer takes */
#define HO_BATCH 8u

struct ho {
	struct box box;
	_Atomic int go;                 /* 1: send the first two; 2: stream */
	int rc;                         /* the second consumer's verdict */
	uint64_t dropped_c2, dropped_p;
	uint64_t n2;
	uint64_t got[HO_MSGS];          /* what the second consumer received */
	_Atomic uint64_t n1;            /* the first consumer's, when it is killed */
	uint64_t got1[HO_MSGS];
};

static unsigned ho_runs(void)
{
	const char *e = getenv("SHMRING_HANDOVER_RUNS");
	unsigned long v = e ? strtoul(e, NULL, 10) : 2;
	return v ? (unsigned)v : 1;
}

/* Message seq: its sequence number, then bytes derived from it; the first
 * is 300 bytes (for -EMSGSIZE), the second empty, the others 8..4096. */
static size_t ho_len(uint64_t seq)
{
	return seq == 0 ? 300 : seq == 1 ? 0 : 8 + (size_t)(seq * 7919 % 4089);
}

static void ho_msg(uint8_t *p, uint64_t seq)
{
	size_t len = ho_len(seq);
	if (len) {
		memcpy(p, &seq, 8);
		t_fill(p + 8, len - 8, seq);
	}
}

/* The sequence number of a received message, or UINT64_MAX if torn. */
static uint64_t ho_seq(const uint8_t *p, size_t len, uint64_t empty_seq)
{
	if (len == 0)
		return empty_seq;
	uint64_t seq;
	if (len < 8)
		return UINT64_MAX;
	memcpy(&seq, p, 8);
	if (seq >= HO_MSGS || len != ho_len(seq) || !t_check(p + 8, len - 8, seq))
		return UINT64_MAX;
	return seq;
}

static int ho_producer(void *arg)
{
	struct ho *y = arg;
	struct shmring *p = NULL;
	const int64_t to = 20000 * MS;  /* a failure, never a hang */
	if (shmring_open(y->box.uri, SHMRING_PRODUCER, &y->box.o, &p))
		return 10;
	atomic_store(&y->box.ready, 1);
	while (atomic_load(&y->go) < 1)
		t_sleep_ms(1);
	static uint8_t bufs[HO_BATCH][4096];
	for (uint64_t s = 0; s < 2; s++) {
		ho_msg(bufs[0], s);
		if (shmring_send(p, bufs[0], ho_len(s), to))
			return 11;
	}
	while (atomic_load(&y->go) < 2)
		t_sleep_ms(1);
	uint64_t seq = 2;
	while (seq < HO_MSGS) {
		unsigned mode = (unsigned)(seq % 3);
		if (mode == 0) {
			ho_msg(bufs[0], seq);
			int rc = shmring_send(p, bufs[0], ho_len(seq), to);
			if (rc)
				return rc == -EPIPE ? 12 : 13;
			seq++;
		} else if (mode == 1) {
			struct shmring_msg m;
			int rc = shmring_reserve(p, ho_len(seq), &m, to);
			if (rc)
				return rc == -EPIPE ? 14 : 15;
			ho_msg(m.data, seq);
			if (shmring_commit(p, &m))
				return 16;
			seq++;
		} else {
			struct iovec v[HO_BATCH];
			unsigned k = 0;
			for (; k < HO_BATCH && seq + k < HO_MSGS; k++) {
				ho_msg(bufs[k], seq + k);
				v[k] = (struct iovec){ bufs[k], ho_len(seq + k) };
			}
			int rc = shmring_send_batch(p, v, k, to);
			if (rc <= 0)
				return rc == -EPIPE ? 17 : 18;
			seq += (uint64_t)rc;
		}
	}
	if (shmring_shutdown(p))
		return 19;
	struct shmring_stats st;
	if (shmring_stats(p, &st))
		return 20;
	y->dropped_p = st.msgs_dropped;
	shmring_close(p);
	return 0;
}

/* Up to `max` messages by recv (mode 0), acquire (1) or recv_batch (2):
 * their sequence numbers into seqs; the count, or -errno, or -EBADMSG for a
 * torn message.  `empty_seq` is the number an empty message stands for. */
static int ho_take(struct shmring *q, unsigned mode, uint64_t *seqs, unsigned max,
		   uint64_t empty_seq, int64_t timeout)
{
	static uint8_t bufs[HO_BATCH][4096];
	if (mode == 0) {
		ssize_t n = shmring_recv(q, bufs[0], sizeof(bufs[0]), timeout);
		if (n < 0)
			return (int)n;
		seqs[0] = ho_seq(bufs[0], (size_t)n, empty_seq);
		return seqs[0] == UINT64_MAX ? -EBADMSG : 1;
	}
	if (mode == 1) {
		struct shmring_msg m;
		int rc = shmring_acquire(q, &m, timeout);
		if (rc < 0)
			return rc;
		seqs[0] = ho_seq(m.data, m.len, empty_seq);
		if ((rc = shmring_release(q, &m)) < 0)
			return rc;
		return seqs[0] == UINT64_MAX ? -EBADMSG : 1;
	}
	struct iovec v[HO_BATCH];
	if (max > HO_BATCH)
		max = HO_BATCH;
	for (unsigned i = 0; i < max; i++)
		v[i] = (struct iovec){ bufs[i], sizeof(bufs[i]) };
	int rc = shmring_recv_batch(q, v, max, timeout);
	for (int i = 0; i < rc; i++)
		if ((seqs[i] = ho_seq(bufs[i], v[i].iov_len, empty_seq)) == UINT64_MAX)
			return -EBADMSG;
	return rc;
}

/* The second consumer: drains to -EPIPE, then every receive is -EPIPE. */
static int ho_second(void *arg)
{
	struct ho *y = arg;
	struct shmring *q = NULL;
	if (shmring_open(y->box.uri, SHMRING_CONSUMER, &y->box.o, &q))
		return 30;
	for (unsigned call = 0;; call++) {
		if (y->n2 >= HO_MSGS)
			return 31;
		int rc = ho_take(q, call % 3, y->got + y->n2, (unsigned)(HO_MSGS - y->n2), 1,
				 SHMRING_FOREVER);
		if (rc == -EPIPE)
			break;
		if (rc <= 0) {
			y->rc = rc;
			return rc == -EBADMSG ? 32 : 33;
		}
		y->n2 += (unsigned)rc;
	}
	uint8_t buf[16];
	struct shmring_msg m;
	struct iovec v = { buf, sizeof(buf) };
	if (shmring_recv(q, buf, sizeof(buf), SHMRING_FOREVER) != -EPIPE ||
	    shmring_acquire(q, &m, 0) != -EPIPE || shmring_recv_batch(q, &v, 1, 10 * MS) != -EPIPE)
		return 34;      /* something after -EPIPE */
	struct shmring_stats st;
	if (shmring_stats(q, &st))
		return 35;
	y->dropped_c2 = st.msgs_dropped;
	shmring_close(q);
	return 0;
}

static void ho_expect(const char *what, int got, int want)
{
	cr_assert_eq(got, want, "[%s] hand-over, %s: got %d (%s), want %d (%s)", BN, what, got,
		     got < 0 ? shmring_strerror(got) : "ok", want,
		     want < 0 ? shmring_strerror(want) : "ok");
}

/* The ring of a hand-over case (1 MiB, max_msg 4096, where the system
 * allows) and what its processes share. */
static struct ho *ho_begin(const struct backend *b, struct rig *g)
{
	BN = b->name;
	*g = (struct rig){ .b = b, .uri = uri_for(b, "handover"), .o = opts_for(b, 4096) };
	if (strcmp(b->name, "mq") != 0)
		g->o.capacity = 1 << 20;
	g->c = open_or_die(g, SHMRING_CREATE | SHMRING_EXCL);
	struct ho *y = t_shared(sizeof(*y));
	memset(y, 0, sizeof(*y));
	snprintf(y->box.uri, sizeof(y->box.uri), "%s", g->uri);
	y->box.o = g->o;
	return y;
}

/*
 * After the first consumer (its last message `last`, n1 messages, its
 * msgs_dropped): the producer and the second consumer end well, the second
 * one's messages come after the first one's, in order, and the losses are
 * what the stats count — the ring's (shm:, file:) or each handle's (pipe:,
 * mq:), so between the largest count and their sum — plus at most `slack`
 * (what a killed consumer took and the test never saw).
 */
static void ho_finish(struct rig *g, struct ho *y, pid_t prod, pid_t second, const char *what,
		      uint64_t last, uint64_t n1, uint64_t dropped_c1, uint64_t slack)
{
	int ex = t_wait(prod), ex2 = t_wait(second);
	cr_assert_eq(ex, 0, "[%s] %s: the producer (%d; consumer %d, rc %d after %llu)", BN, what,
		     ex, ex2, y->rc, (unsigned long long)y->n2);
	cr_assert_eq(ex2, 0, "[%s] %s: the second consumer (%d, rc %d after %llu messages)", BN,
		     what, ex2, y->rc, (unsigned long long)y->n2);
	for (uint64_t i = 0; i < y->n2; i++) {
		cr_assert_gt(y->got[i], last, "[%s] %s: %llu after %llu", BN, what,
			     (unsigned long long)y->got[i], (unsigned long long)last);
		last = y->got[i];
	}
	uint64_t lost = HO_MSGS - n1 - y->n2;
	uint64_t lo = dropped_c1, hi = dropped_c1 + y->dropped_c2 + y->dropped_p;
	lo = y->dropped_c2 > lo ? y->dropped_c2 : lo;
	lo = y->dropped_p > lo ? y->dropped_p : lo;
	if (bcast())
		/* a new subscriber starts at the next message sent: what was
		 * sent while nobody was subscribed is nobody's loss */
		lo = 0, hi = HO_MSGS;
	cr_assert(lost >= lo && lost <= hi + slack,
		  "[%s] %s: %llu messages lost, stats count %llu + %llu + %llu", BN, what,
		  (unsigned long long)lost, (unsigned long long)dropped_c1,
		  (unsigned long long)y->dropped_c2, (unsigned long long)y->dropped_p);
	t_unshared(y, sizeof(*y));
	shmring_close(g->c);
	ho_expect("unlink", shmring_unlink(g->uri), 0);
}

static void handover_once(const struct backend *b, long gap_ms)
{
	struct rig g;
	struct ho *y = ho_begin(b, &g);

	/* the first consumer, here, before the producer sends anything (and
	 * after the fork: a child's copy of a consumer's descriptor is that
	 * consumer still, on a pipe) */
	pid_t prod = t_spawn(ho_producer, y);
	while (!atomic_load(&y->box.ready))
		t_sleep_ms(1);
	struct shmring *q = open_or_die(&g, SHMRING_CONSUMER);
	uint8_t small[100], large[4096];
	ho_expect("recv on an empty ring", (int)shmring_recv(q, large, sizeof(large), 0), -EAGAIN);
	uint64_t t0 = t_now_ns();
	ho_expect("timed recv", (int)shmring_recv(q, large, sizeof(large), 10 * MS), -ETIMEDOUT);
	cr_assert_geq(t_now_ns() - t0, 10 * MS);
	atomic_store(&y->go, 1);
	ho_expect("recv into 100 bytes", (int)shmring_recv(q, small, sizeof(small), SHMRING_FOREVER),
		  -EMSGSIZE);
	ssize_t n = shmring_recv(q, large, sizeof(large), 0);
	ho_expect("the same message into 4096 bytes", (int)n, 300);
	cr_assert_eq(ho_seq(large, 300, 1), 0);
	ho_expect("the empty message", (int)shmring_recv(q, large, sizeof(large), SHMRING_FOREVER), 0);
	atomic_store(&y->go, 2);
	uint64_t last = 1, seqs[HO_BATCH];
	unsigned got1 = 2;
	for (unsigned call = 0; got1 < 2 + HO_FIRST; call++) {
		int rc = ho_take(q, call % 3, seqs, 2 + HO_FIRST - got1, 1, 20000 * MS);
		cr_assert_gt(rc, 0, "[%s] first consumer: %s", BN, shmring_strerror(rc));
		for (int i = 0; i < rc; i++, got1++) {
			cr_assert_gt(seqs[i], last, "[%s] %llu after %llu", BN,
				     (unsigned long long)seqs[i], (unsigned long long)last);
			last = seqs[i];
		}
	}
	struct shmring_stats st;
	ho_expect("stats", shmring_stats(q, &st), 0);
	shmring_close(q);

	t_sleep_ms(gap_ms);
	pid_t second = t_spawn(ho_second, y);
	char what[32];
	snprintf(what, sizeof(what), "gap %ld ms", gap_ms);
	ho_finish(&g, y, prod, second, what, last, got1, st.msgs_dropped, 0);
}

/* The first consumer of a killed hand-over: it receives with every call
 * and notes each message once the call has returned (and released it). */
static int ho_first(void *arg)
{
	struct ho *y = arg;
	struct shmring *q = NULL;
	/* it starts with the producer: on a broadcast ring, a subscriber that
	 * comes late gets only what is sent after it, unless it asks for
	 * what the ring still holds */
	int oldest = y->box.o.kind == SHMRING_BCAST ? SHMRING_OLDEST : 0;
	if (shmring_open(y->box.uri, SHMRING_CONSUMER | oldest, &y->box.o, &q))
		return 40;
	uint64_t seqs[HO_BATCH];
	for (unsigned call = 0;; call++) {
		uint64_t n1 = atomic_load(&y->n1);
		if (n1 + HO_BATCH > HO_MSGS)
			return 41;
		int rc = ho_take(q, call % 3, seqs, HO_BATCH, 1, 20000 * MS);
		if (rc <= 0) {
			y->rc = rc;
			return 42;
		}
		for (int i = 0; i < rc; i++)
			y->got1[n1 + (unsigned)i] = seqs[i];
		atomic_store(&y->n1, n1 + (unsigned)rc);
		if (n1 > 2 * HO_FIRST)
			t_sleep_ms(1);    /* the kill is late: leave messages for the next */
	}
}

/* The first consumer killed at a random point while it receives: what it
 * returned came once and in order, and the next consumer goes on after it;
 * what it took when it died is lost (counted where the backend can tell),
 * or delivered again to the next one (SPSC shm:/file:, counted). */
static void handover_killed_once(const struct backend *b, uint64_t *rng)
{
	struct rig g;
	struct ho *y = ho_begin(b, &g);
	atomic_store(&y->go, 2);
	pid_t prod = t_spawn(ho_producer, y);
	pid_t first = t_spawn(ho_first, y);
	uint64_t t0 = t_now_ns();
	uint64_t at = HO_FIRST / 2 + t_rand(rng) % HO_FIRST;
	while (atomic_load(&y->n1) < at) {
		cr_assert_lt(t_now_ns() - t0, 20000 * MS, "[%s] the first consumer stalled", BN);
		usleep((useconds_t)(t_rand(rng) % 300));
	}
	kill(first, SIGKILL);
	int ex = t_wait(first);
	cr_assert_eq(ex, 128 + SIGKILL, "[%s] the first consumer: %d", BN, ex);
	uint64_t n1 = atomic_load(&y->n1), last = 0;
	for (uint64_t i = 0; i < n1; i++) {
		cr_assert(i == 0 || y->got1[i] > last, "[%s] killed: %llu after %llu", BN,
			  (unsigned long long)y->got1[i], (unsigned long long)last);
		last = y->got1[i];
	}
	pid_t second = t_spawn(ho_second, y);
	ho_finish(&g, y, prod, second, "first consumer killed", last, n1, 0, HO_BATCH + 1);
}

static void handover_case(const struct backend *b, long gap_ms)
{
	unsigned runs = ho_runs();
	for (unsigned i = 0; i < runs; i++) {
		handover_once(b, gap_ms);
		t_cleanup();    /* the bookkeeping holds 64 names */
	}
}

BACKEND_TEST(handover_gap_0ms, .timeout = 600)
{
	handover_case(b, 0);
}

BACKEND_TEST(handover_gap_1ms, .timeout = 600)
{
	handover_case(b, 1);
}

BACKEND_TEST(handover_gap_5ms, .timeout = 600)
{
	handover_case(b, 5);
}

BACKEND_TEST(handover_gap_50ms, .timeout = 600)
{
	handover_case(b, 50);
}

BACKEND_TEST(handover_after_a_killed_consumer, .timeout = 600)
{
	uint64_t rng = t_now_ns() | 1;
	unsigned runs = ho_runs();
	for (unsigned i = 0; i < runs; i++) {
		handover_killed_once(b, &rng);
		t_cleanup();
	}
}

/* Consumers that come after the shutdown, while the producer lives and
 * after it is gone: they drain what is left, then -EPIPE; a receive that
 * would wait for ever returns. */
static void late_once(const struct backend *b)
{
	struct rig g;
	rig_open(&g, b, "late", 1000);
	for (uint64_t k = 0; k < 6; k++)
		send_key(g.p, 100, k, 0);
	expect_rc(shmring_shutdown(g.p), 0, "shutdown");
	recv_key(g.q, 100, 0, 0);
	recv_key(g.q, 100, 1, SHMRING_FOREVER);
	shmring_close(g.q);
	/* the rest is there for the next consumer (a broadcast ring: all of
	 * it, for a subscriber that asks for the oldest) */
	int late = SHMRING_CONSUMER | (bcast() ? SHMRING_OLDEST : 0);
	g.q = open_or_die(&g, late);
	for (uint64_t k = bcast() ? 0 : 2; k < 6; k++)
		recv_key(g.q, 100, k, SHMRING_FOREVER);
	uint8_t buf[100];
	expect_rc(shmring_recv(g.q, buf, sizeof(buf), SHMRING_FOREVER), -EPIPE, "drained");
	shmring_close(g.q);
	/* the end was taken: the next consumer still sees it */
	g.q = open_or_die(&g, SHMRING_CONSUMER);
	expect_rc(shmring_recv(g.q, buf, sizeof(buf), SHMRING_FOREVER), -EPIPE, "later");
	shmring_close(g.q);
	g.q = NULL;
	shmring_close(g.p);
	g.p = NULL;
	/* the producer gone too */
	struct shmring *q = open_or_die(&g, SHMRING_CONSUMER);
	expect_rc(shmring_recv(q, buf, sizeof(buf), SHMRING_FOREVER), -EPIPE, "producer gone");
	struct shmring_msg m;
	expect_rc(shmring_acquire(q, &m, SHMRING_FOREVER), -EPIPE, "acquire");
	shmring_close(q);

	/* shut down with messages queued, the producer gone before any
	 * consumer came: they are there where the backend keeps messages
	 * without a process (caps: PERSISTENT), and the end always is */
	struct shmring *p = open_or_die(&g, SHMRING_PRODUCER);
	expect_rc(shmring_send(p, buf, 5, 0), -EPIPE, "a producer after the shutdown");
	shmring_close(p);
	rig_close(&g);
	rig_roles(&g, b, "late2", 1000, SHMRING_PRODUCER);
	for (uint64_t k = 0; k < 4; k++)
		send_key(g.p, 100, k, 0);
	expect_rc(shmring_shutdown(g.p), 0, "shutdown");
	shmring_close(g.p);
	g.p = NULL;
	q = open_or_die(&g, SHMRING_CONSUMER | (bcast() ? SHMRING_OLDEST : 0));
	if (g.caps.flags & SHMRING_CAP_PERSISTENT)
		for (uint64_t k = 0; k < 4; k++)
			recv_key(q, 100, k, SHMRING_FOREVER);
	expect_rc(shmring_recv(q, buf, sizeof(buf), SHMRING_FOREVER), -EPIPE, "the end");
	shmring_close(q);
	rig_close(&g);
}

BACKEND_TEST(late_consumers_after_shutdown_drain_then_epipe, .timeout = 120)
{
	unsigned runs = ho_runs();
	for (unsigned i = 0; i < runs; i++) {
		late_once(b);
		t_cleanup();
	}
}
