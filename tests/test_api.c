/* SPDX-License-Identifier: MIT */
/*
 * Suite `api`: the public behaviour of shmring on shm: rings — URIs and
 * names, create/open/unlink, permissions, roles, timeouts, sizes, zero-copy,
 * batches, shutdown, statistics and wrap-around.  Black-box: only
 * <shmring.h> and the helpers of tests/common.h.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "shmring.h"
#include "shmring/inline.h"

#define MS (1000ll * 1000)
#define NOBODY 65534

/* every ring a test names (t_ring_uri, t_remember) is removed after it */
TestSuite(api, .fini = t_cleanup);

/* ---- small helpers ----------------------------------------------------- */

static void unlink_ok(const char *uri)
{
	int rc = shmring_unlink(uri);
	cr_assert_eq(rc, 0, "unlink %s: %s", uri, shmring_strerror(rc));
}

static void send_key(struct shmring *r, size_t len, uint64_t key, int64_t timeout)
{
	uint8_t buf[65536];
	cr_assert_leq(len, sizeof(buf));
	t_fill(buf, len, key);
	int rc = shmring_send(r, buf, len, timeout);
	cr_assert_eq(rc, 0, "send len %zu key %llu: %s", len, (unsigned long long)key,
		     shmring_strerror(rc));
}

static void recv_key(struct shmring *r, size_t len, uint64_t key, int64_t timeout)
{
	uint8_t buf[65536];
	ssize_t n = shmring_recv(r, buf, sizeof(buf), timeout);
	cr_assert_eq(n, (ssize_t)len, "recv key %llu: got %zd (%s), want %zu",
		     (unsigned long long)key, n, n < 0 ? shmring_strerror((int)n) : "ok", len);
	cr_assert(t_check(buf, len, key), "recv key %llu: content differs",
		  (unsigned long long)key);
}

static void expect_empty(struct shmring *r)
{
	uint8_t buf[16];
	ssize_t n = shmring_recv(r, buf, sizeof(buf), 0);
	cr_assert_eq(n, -EAGAIN, "ring should be empty: %zd (%s)", n,
		     n < 0 ? shmring_strerror((int)n) : "got a message");
}

/* Shared between a test and its forked children.  Children never call
 * cr_assert: they report through this box and their exit status. */
struct box {
	char uri[128];
	_Atomic int ready, go;
	int rc[8];
	int64_t val[8];
	uint32_t spin;
	int count;
};

static struct box *box_new(const char *uri)
{
	struct box *b = t_shared(sizeof(*b));
	memset(b, 0, sizeof(*b));
	snprintf(b->uri, sizeof(b->uri), "%s", uri);
	return b;
}

static void box_free(struct box *b)
{
	t_unshared(b, sizeof(*b));
}

/* In a child: a hung test must not leave processes behind. */
static void child_guard(void)
{
	alarm(20);
}

/* ======================================================================= */
/* URIs and names                                                          */
/* ======================================================================= */

Test(api, bare_name_and_shm_prefix_are_the_same_ring, .timeout = 10)
{
	const char *name = t_ring_name("bare");
	char uri[128];
	snprintf(uri, sizeof(uri), "shm:%s", name);

	struct shmring *c = t_create(name, 4096, 256);
	int rc = t_try_open(uri, SHMRING_CREATE | SHMRING_EXCL, NULL);
	cr_assert_eq(rc, -EEXIST, "shm:NAME after NAME was created: %s", shmring_strerror(rc));

	struct shmring *p = t_open(name, SHMRING_PRODUCER);
	struct shmring *q = t_open(uri, SHMRING_CONSUMER);
	send_key(p, 100, 1, 0);
	recv_key(q, 100, 1, 0);
	shmring_close(p);
	shmring_close(q);
	shmring_close(c);

	unlink_ok(uri);
	rc = t_try_open(name, 0, NULL);
	cr_assert_eq(rc, -ENOENT, "NAME after unlinking shm:NAME: %s", shmring_strerror(rc));
}

Test(api, invalid_names_are_einval, .timeout = 10)
{
	const char *bad[] = {
		"", "shm:", ".hidden", "shm:.hidden", "..", "shm:..", "a/b", "shm:a/b",
		"/abs", "a b", "shm:a b", "tab\there", "star*", "dollar$", "q?", "semi;",
		"back\\slash", "nl\n", "utf8-\xc3\xa9", "brace{}", "plus+", "at@",
		"shm:shm:x",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct shmring *r = NULL;
		int rc = shmring_open(bad[i], SHMRING_CREATE | SHMRING_EXCL, NULL, &r);
		if (rc == 0) {
			shmring_close(r);
			(void)shmring_unlink(bad[i]);
		}
		cr_assert_eq(rc, -EINVAL, "open \"%s\": %s", bad[i], shmring_strerror(rc));
		cr_assert_null(r, "no handle on failure for \"%s\"", bad[i]);
		rc = shmring_unlink(bad[i]);
		cr_assert_eq(rc, -EINVAL, "unlink \"%s\": %s", bad[i], shmring_strerror(rc));
	}
}

Test(api, name_length_limit_is_200, .timeout = 10)
{
	char name[256];
	/* unique prefix, padded to the length under test */
	snprintf(name, sizeof(name), "%s", t_ring_name("len"));
	size_t n = strlen(name);
	memset(name + n, 'x', 200 - n);
	name[200] = 0;
	t_remember(name);
	struct shmring *r = NULL;
	int rc = shmring_open(name, SHMRING_CREATE | SHMRING_EXCL, NULL, &r);
	cr_assert_eq(rc, 0, "200-char name: %s", shmring_strerror(rc));
	shmring_close(r);
	cr_assert(t_exists(t_path_of(name)), "segment of the 200-char name exists");
	unlink_ok(name);

	char uri[300];
	snprintf(uri, sizeof(uri), "shm:%s", name);
	rc = t_try_open(uri, SHMRING_CREATE | SHMRING_EXCL, NULL);
	cr_assert_eq(rc, 0, "shm: + 200-char name: %s", shmring_strerror(rc));
	unlink_ok(uri);

	name[200] = 'y';
	name[201] = 0;
	t_remember(name);
	rc = t_try_open(name, SHMRING_CREATE | SHMRING_EXCL, NULL);
	cr_assert_eq(rc, -EINVAL, "201-char name: %s", shmring_strerror(rc));
	cr_assert(!t_exists(t_path_of(name)), "nothing created for a 201-char name");
	snprintf(uri, sizeof(uri), "shm:%s", name);
	rc = t_try_open(uri, SHMRING_CREATE | SHMRING_EXCL, NULL);
	cr_assert_eq(rc, -EINVAL, "shm: + 201-char name: %s", shmring_strerror(rc));
}

Test(api, unknown_scheme_null_uri_null_out_are_einval, .timeout = 10)
{
	struct shmring *r = NULL;
	int rc;
	const char *schemes[] = { "foo:x", "SHM:x", "shmx:y", "http://x", ":x", "tcp:1" };
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		rc = shmring_open(schemes[i], SHMRING_CREATE | SHMRING_EXCL, NULL, &r);
		cr_assert_eq(rc, -EINVAL, "open %s: %s", schemes[i], shmring_strerror(rc));
		rc = shmring_unlink(schemes[i]);
		cr_assert_eq(rc, -EINVAL, "unlink %s: %s", schemes[i], shmring_strerror(rc));
	}
	rc = shmring_open(NULL, SHMRING_CREATE, NULL, &r);
	cr_assert_eq(rc, -EINVAL, "NULL uri: %s", shmring_strerror(rc));
	rc = shmring_unlink(NULL);
	cr_assert_eq(rc, -EINVAL, "unlink NULL: %s", shmring_strerror(rc));

	const char *uri = t_ring_uri("nullout");
	rc = shmring_open(uri, SHMRING_CREATE | SHMRING_EXCL, NULL, NULL);
	cr_assert_eq(rc, -EINVAL, "NULL out: %s", shmring_strerror(rc));
	cr_assert(!t_exists(t_path_of(uri)), "NULL out must not create the ring");
}

Test(api, bad_oflags_are_einval, .timeout = 10)
{
	const char *uri = t_ring_uri("oflags");
	int rc = t_try_open(uri, SHMRING_EXCL, NULL);
	cr_assert_eq(rc, -EINVAL, "EXCL without CREATE: %s", shmring_strerror(rc));
	rc = t_try_open(uri, SHMRING_EXCL | SHMRING_PRODUCER, NULL);
	cr_assert_eq(rc, -EINVAL, "EXCL|PRODUCER without CREATE: %s", shmring_strerror(rc));
	/* (0x40 is SHMRING_OLDEST: a broadcast subscriber's, ignored by other rings) */
	const int unknown[] = { 0x04, 0x08, 0x80, 0x100, 0x200, 0x10000, INT_MIN, -1 };
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		rc = t_try_open(uri, SHMRING_CREATE | unknown[i], NULL);
		cr_assert_eq(rc, -EINVAL, "oflags CREATE|0x%x: %s", (unsigned)unknown[i],
			     shmring_strerror(rc));
	}
	cr_assert(!t_exists(t_path_of(uri)), "refused opens must not create the ring");

	/* and the same bits on an existing ring */
	struct shmring *c = t_create(uri, 4096, 0);
	rc = t_try_open(uri, SHMRING_PRODUCER | 0x80, NULL);
	cr_assert_eq(rc, -EINVAL, "unknown bit on open: %s", shmring_strerror(rc));
	rc = t_try_open(uri, SHMRING_EXCL, NULL);
	cr_assert_eq(rc, -EINVAL, "EXCL alone on existing: %s", shmring_strerror(rc));
	shmring_close(c);
	unlink_ok(uri);
}

Test(api, pipe_and_mq_uris_reach_their_backends, .timeout = 10)
{
	/* file: rings have their suite (tests/test_file.c); pipe: and mq: have
	 * tests/test_fallback.c, and tests/test_conformance.c runs all four */
	char ppath[128], mq[128];
	snprintf(ppath, sizeof(ppath), "pipe:/tmp/%s", t_name("pipe"));
	snprintf(mq, sizeof(mq), "mq:%s", t_name("mq"));
	const char *uris[] = { ppath, mq };
	for (size_t i = 0; i < 2; i++) {
		int rc = t_try_open(uris[i], SHMRING_CONSUMER, NULL);
		cr_assert_eq(rc, -ENOENT, "open missing %s: %s", uris[i], shmring_strerror(rc));
		rc = t_try_open(uris[i], SHMRING_CREATE | SHMRING_EXCL | SHMRING_PRODUCER, NULL);
		cr_assert_eq(rc, 0, "create %s: %s", uris[i], shmring_strerror(rc));
		struct shmring *r = t_open(uris[i], SHMRING_CONSUMER);
		struct shmring_caps caps;
		rc = shmring_caps(r, &caps);
		cr_assert_eq(rc, 0, "caps %s: %s", uris[i], shmring_strerror(rc));
		cr_assert(!(caps.flags & SHMRING_CAP_ZEROCOPY), "%s copies", uris[i]);
		shmring_close(r);
		rc = shmring_unlink(uris[i]);
		cr_assert_eq(rc, 0, "unlink %s: %s", uris[i], shmring_strerror(rc));
		rc = shmring_unlink(uris[i]);
		cr_assert_eq(rc, -ENOENT, "unlink %s again: %s", uris[i], shmring_strerror(rc));
	}
	cr_assert(!t_exists(ppath + 5), "pipe: removed its FIFO %s", ppath + 5);
}

Test(api, kind_mpmc_ok_invalid_kind_einval, .timeout = 10)
{
	const char *uri = t_ring_uri("kind");
	struct shmring_opts o = { .kind = SHMRING_MPMC, .capacity = 65536 };
	struct shmring *m = t_open_opts(uri, SHMRING_CREATE | SHMRING_EXCL, &o);
	cr_assert_eq(t_stats(m).kind, SHMRING_MPMC);
	shmring_close(m);
	unlink_ok(uri);
	o.kind = (enum shmring_kind)7;
	int rc;
	rc = t_try_open(uri, SHMRING_CREATE | SHMRING_EXCL, &o);
	cr_assert_eq(rc, -EINVAL, "kind 7: %s", shmring_strerror(rc));
	o.kind = (enum shmring_kind)-1;
	rc = t_try_open(uri, SHMRING_CREATE, &o);
	cr_assert_eq(rc, -EINVAL, "kind -1: %s", shmring_strerror(rc));
	cr_assert(!t_exists(t_path_of(uri)), "a refused kind must not create the ring");

	/* explicit SPSC is the default kind */
	o.kind = SHMRING_SPSC;
	struct shmring *r = t_open_opts(uri, SHMRING_CREATE | SHMRING_EXCL, &o);
	cr_assert_eq(t_stats(r).kind, SHMRING_SPSC);
	shmring_close(r);
	unlink_ok(uri);
}

/* ======================================================================= */
/* create / open / unlink                                                  */
/* ======================================================================= */

Test(api, create_excl_existing_is_eexist, .timeout = 10)
{
	const char *uri = t_ring_uri("excl");
	struct shmring *c = t_create(uri, 4096, 0);
	int rc = t_try_open(uri, SHMRING_CREATE | SHMRING_EXCL, NULL);
	cr_assert_eq(rc, -EEXIST, "while open: %s", shmring_strerror(rc));
	shmring_close(c);
	rc = t_try_open(uri, SHMRING_CREATE | SHMRING_EXCL | SHMRING_PRODUCER, NULL);
	cr_assert_eq(rc, -EEXIST, "after close: %s", shmring_strerror(rc));
	unlink_ok(uri);
}

Test(api, create_without_excl_opens_existing, .timeout = 10)
{
	const char *uri = t_ring_uri("noexcl");
	struct shmring *c = t_create(uri, 8192, 512);
	/* opts of a later CREATE are ignored: the ring keeps its geometry */
	struct shmring_opts o = { .capacity = 1 << 20, .max_msg = 4096, .mode = 0644 };
	struct shmring *p = t_open_opts(uri, SHMRING_CREATE | SHMRING_PRODUCER, &o);
	struct shmring_stats st = t_stats(p);
	cr_assert_eq(st.capacity, 8192, "capacity %llu", (unsigned long long)st.capacity);
	cr_assert_eq(st.max_msg, 512, "max_msg %u", st.max_msg);
	struct stat sb;
	cr_assert_eq(stat(t_path_of(uri), &sb), 0);
	cr_assert_eq(sb.st_mode & 07777, 0600, "mode %o", sb.st_mode & 07777);

	struct shmring *q = t_open(uri, SHMRING_CONSUMER);
	send_key(p, 300, 7, 0);
	recv_key(q, 300, 7, 0);
	shmring_close(q);
	shmring_close(p);
	shmring_close(c);
	unlink_ok(uri);
}

Test(api, create_without_excl_creates_missing, .timeout = 10)
{
	const char *uri = t_ring_uri("create");
	struct shmring_opts o = { .capacity = 16384 };
	struct shmring *p = t_open_opts(uri, SHMRING_CREATE | SHMRING_PRODUCER, &o);
	cr_assert_eq(t_stats(p).capacity, 16384);
	shmring_close(p);
	unlink_ok(uri);
}

Test(api, unlink_keeps_handles_new_ring_is_distinct, .timeout = 10)
{
	const char *uri = t_ring_uri("relink");
	struct shmring *c = t_create(uri, 4096, 0);
	struct shmring *p = t_open(uri, SHMRING_PRODUCER);
	struct shmring *q = t_open(uri, SHMRING_CONSUMER);
	send_key(p, 50, 1, 0);
	unlink_ok(uri);
	cr_assert(!t_exists(t_path_of(uri)), "name gone after unlink");

	/* the old handles still work */
	send_key(p, 60, 2, 0);
	recv_key(q, 50, 1, 0);
	recv_key(q, 60, 2, 0);

	/* a new ring under the same name is another ring */
	struct shmring_opts o = { .capacity = 8192 };
	struct shmring *c2 = t_open_opts(uri, SHMRING_CREATE | SHMRING_EXCL, &o);
	struct shmring *p2 = t_open(uri, SHMRING_PRODUCER);   /* no -EBUSY: new ring */
	struct shmring *q2 = t_open(uri, SHMRING_CONSUMER);
	cr_assert_eq(t_stats(q2).capacity, 8192);
	cr_assert_eq(t_stats(q).capacity, 4096);
	send_key(p, 70, 3, 0);
	expect_empty(q2);
	send_key(p2, 80, 4, 0);
	recv_key(q, 70, 3, 0);
	expect_empty(q);
	recv_key(q2, 80, 4, 0);
	cr_assert_eq(t_stats(q2).msgs_sent, 1);
	cr_assert_eq(t_stats(q).msgs_sent, 3);

	shmring_close(p);
	shmring_close(q);
	shmring_close(c);
	shmring_close(p2);
	shmring_close(q2);
	shmring_close(c2);
	unlink_ok(uri);
}

/* ======================================================================= */
/* permissions                                                             */
/* ======================================================================= */

static int drop_to_nobody(void)
{
	if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
		return -1;
	return geteuid() == NOBODY && getegid() == NOBODY ? 0 : -1;
}

/* rc[0]: role-less open, rc[1]: producer open, rc[2]: send; with count
 * set, after shmring_trust_owner(count - 1) */
static int child_open_as_nobody(void *arg)
{
	struct box *b = arg;
	child_guard();
	if (drop_to_nobody() < 0)
		return 100;
	if (b->count && shmring_trust_owner((uid_t)(b->count - 1)) != 0)
		return 101;
	struct shmring *r = NULL;
	b->rc[0] = shmring_open(b->uri, 0, NULL, &r);
	if (b->rc[0] == 0)
		shmring_close(r);
	r = NULL;
	b->rc[1] = shmring_open(b->uri, SHMRING_PRODUCER, NULL, &r);
	if (b->rc[1] == 0) {
		b->rc[2] = shmring_send(r, "nobody", 6, 0);
		shmring_close(r);
	}
	return 0;
}

Test(api, mode_0600_refuses_other_user_eacces, .timeout = 15)
{
	cr_assert_eq(geteuid(), 0, "this test runs as root");
	const char *uri = t_ring_uri("eacces");
	struct shmring *c = t_create(uri, 4096, 0);
	shmring_close(c);
	struct box *b = box_new(uri);
	int st = t_wait(t_spawn(child_open_as_nobody, b));
	cr_assert_eq(st, 0, "child status %d (100: could not drop privileges)", st);
	cr_assert_eq(b->rc[0], -EACCES, "nobody opens 0600 ring: %s", shmring_strerror(b->rc[0]));
	cr_assert_eq(b->rc[1], -EACCES, "nobody opens 0600 ring as producer: %s",
		     shmring_strerror(b->rc[1]));
	box_free(b);
	unlink_ok(uri);
}

Test(api, mode_0666_lets_other_user_open_if_it_trusts_the_owner, .timeout = 15)
{
	const char *uri = t_ring_uri("e0666");
	struct shmring_opts o = { .capacity = 4096, .mode = 0666 };
	struct shmring *c = t_open_opts(uri, SHMRING_CREATE | SHMRING_EXCL, &o);
	shmring_close(c);
	struct box *b = box_new(uri);
	int st = t_wait(t_spawn(child_open_as_nobody, b));
	cr_assert_eq(st, 0, "child status %d (100: could not drop privileges)", st);
	cr_assert_eq(b->rc[0], -EACCES, "nobody opens root's ring without trusting root: %s",
		     shmring_strerror(b->rc[0]));
	cr_assert_eq(b->rc[1], -EACCES, "nobody opens root's ring as producer: %s",
		     shmring_strerror(b->rc[1]));
	b->count = 1;           /* trust root */
	st = t_wait(t_spawn(child_open_as_nobody, b));
	cr_assert_eq(st, 0, "child status %d (100: could not drop privileges)", st);
	cr_assert_eq(b->rc[0], 0, "nobody opens 0666 ring: %s", shmring_strerror(b->rc[0]));
	cr_assert_eq(b->rc[1], 0, "nobody opens 0666 ring as producer: %s",
		     shmring_strerror(b->rc[1]));
	cr_assert_eq(b->rc[2], 0, "nobody sends: %s", shmring_strerror(b->rc[2]));
	struct shmring *q = t_open(uri, SHMRING_CONSUMER);
	char buf[16];
	ssize_t n = shmring_recv(q, buf, sizeof(buf), 0);
	cr_assert_eq(n, 6, "recv: %zd", n);
	cr_assert_eq(memcmp(buf, "nobody", 6), 0);
	shmring_close(q);
	box_free(b);
	unlink_ok(uri);
}

Test(api, file_mode_is_exact_despite_umask, .timeout = 10)
{
	mode_t old = umask(077);
	struct { uint32_t ask, want; } cases[] = {
		{ 0, 0600 }, { 0600, 0600 }, { 0640, 0640 }, { 0666, 0666 }, { 0604, 0604 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *uri = t_ring_uri("mode");
		struct shmring_opts o = { .capacity = 4096, .mode = cases[i].ask };
		struct shmring *r = NULL;
		int rc = shmring_open(uri, SHMRING_CREATE | SHMRING_EXCL, &o, &r);
		struct stat sb;
		int src = stat(t_path_of(uri), &sb);
		if (rc == 0)
			shmring_close(r);
		if (rc != 0 || src != 0 || (sb.st_mode & 07777) != cases[i].want)
			umask(old);
		cr_assert_eq(rc, 0, "create mode %o: %s", cases[i].ask, shmring_strerror(rc));
		cr_assert_eq(src, 0, "stat");
		cr_assert_eq(sb.st_mode & 07777, cases[i].want, "asked %o, umask 077: got %o",
			     cases[i].ask, sb.st_mode & 07777);
		cr_assert(S_ISREG(sb.st_mode));
		unlink_ok(uri);
	}
	umask(old);
}

/* ======================================================================= */
/* roles                                                                   */
/* ======================================================================= */

static void expect_no_produce(struct shmring *r, const char *what)
{
	struct shmring_msg m = { 0 };
	struct iovec iov = { .iov_base = "x", .iov_len = 1 };
	int rc = shmring_send(r, "x", 1, 0);
	cr_assert_eq(rc, -EPERM, "%s send: %s", what, shmring_strerror(rc));
	rc = shmring_reserve(r, 1, &m, 0);
	cr_assert_eq(rc, -EPERM, "%s reserve: %s", what, shmring_strerror(rc));
	rc = shmring_commit(r, &m);
	cr_assert_eq(rc, -EPERM, "%s commit: %s", what, shmring_strerror(rc));
	rc = shmring_send_batch(r, &iov, 1, 0);
	cr_assert_eq(rc, -EPERM, "%s send_batch: %s", what, shmring_strerror(rc));
	rc = shmring_shutdown(r);
	cr_assert_eq(rc, -EPERM, "%s shutdown: %s", what, shmring_strerror(rc));
}

static void expect_no_consume(struct shmring *r, const char *what)
{
	char buf[8];
	struct shmring_msg m = { 0 };
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	ssize_t n = shmring_recv(r, buf, sizeof(buf), 0);
	cr_assert_eq(n, -EPERM, "%s recv: %zd", what, n);
	int rc = shmring_acquire(r, &m, 0);
	cr_assert_eq(rc, -EPERM, "%s acquire: %s", what, shmring_strerror(rc));
	rc = shmring_release(r, &m);
	cr_assert_eq(rc, -EPERM, "%s release: %s", what, shmring_strerror(rc));
	rc = shmring_recv_batch(r, &iov, 1, 0);
	cr_assert_eq(rc, -EPERM, "%s recv_batch: %s", what, shmring_strerror(rc));
}

Test(api, roles_are_enforced_eperm, .timeout = 10)
{
	const char *uri = t_ring_uri("roles");
	struct shmring *none = t_create(uri, 4096, 0);
	struct shmring *p = t_open(uri, SHMRING_PRODUCER);
	struct shmring *q = t_open(uri, SHMRING_CONSUMER);
	/* something queued, so that a missing role check would succeed */
	send_key(p, 10, 1, 0);

	expect_no_produce(none, "role-less");
	expect_no_consume(none, "role-less");
	expect_no_produce(q, "consumer");
	expect_no_consume(p, "producer");
	/* nothing moved */
	struct shmring_stats st = t_stats(none);
	cr_assert_eq(st.msgs_sent, 1);
	cr_assert_eq(st.msgs_recv, 0);
	cr_assert_eq(st.shut_down, 0);
	recv_key(q, 10, 1, 0);

	shmring_close(p);
	shmring_close(q);
	shmring_close(none);
	unlink_ok(uri);
}

static int child_try_roles(void *arg)
{
	struct box *b = arg;
	child_guard();
	b->rc[0] = t_try_open(b->uri, SHMRING_PRODUCER, NULL);
	b->rc[1] = t_try_open(b->uri, SHMRING_CONSUMER, NULL);
	b->rc[2] = t_try_open(b->uri, 0, NULL);
	return 0;
}

Test(api, second_producer_or_consumer_is_ebusy, .timeout = 15)
{
	const char *uri = t_ring_uri("busy");
	struct shmring *c = t_create(uri, 4096, 0);
	struct shmring *p = t_open(uri, SHMRING_PRODUCER);
	struct shmring *q = t_open(uri, SHMRING_CONSUMER);

	int rc = t_try_open(uri, SHMRING_PRODUCER, NULL);
	cr_assert_eq(rc, -EBUSY, "second producer: %s", shmring_strerror(rc));
	rc = t_try_open(uri, SHMRING_CONSUMER, NULL);
	cr_assert_eq(rc, -EBUSY, "second consumer: %s", shmring_strerror(rc));
	rc = t_try_open(uri, SHMRING_PRODUCER | SHMRING_CONSUMER, NULL);
	cr_assert_eq(rc, -EBUSY, "both roles: %s", shmring_strerror(rc));
	rc = t_try_open(uri, SHMRING_CREATE | SHMRING_PRODUCER, NULL);
	cr_assert_eq(rc, -EBUSY, "CREATE|PRODUCER on existing: %s", shmring_strerror(rc));

	/* from another process */
	struct box *b = box_new(uri);
	int st = t_wait(t_spawn(child_try_roles, b));
	cr_assert_eq(st, 0, "child status %d", st);
	cr_assert_eq(b->rc[0], -EBUSY, "child producer: %s", shmring_strerror(b->rc[0]));
	cr_assert_eq(b->rc[1], -EBUSY, "child consumer: %s", shmring_strerror(b->rc[1]));
	cr_assert_eq(b->rc[2], 0, "child role-less: %s", shmring_strerror(b->rc[2]));

	/* the failed attempts did not disturb the holders */
	send_key(p, 20, 1, 0);
	recv_key(q, 20, 1, 0);
	struct shmring_stats s = t_stats(c);
	cr_assert_eq(s.producers, 1);
	cr_assert_eq(s.consumers, 1);
	cr_assert_eq(s.takeovers, 0);

	/* after the holder closes, the role is free again */
	shmring_close(p);
	p = t_open(uri, SHMRING_PRODUCER);
	shmring_close(q);
	q = t_open(uri, SHMRING_CONSUMER);
	send_key(p, 30, 2, 0);
	recv_key(q, 30, 2, 0);

	/* and free for another process too */
	shmring_close(p);
	shmring_close(q);
	memset(b->rc, 0x7f, sizeof(b->rc));
	st = t_wait(t_spawn(child_try_roles, b));
	cr_assert_eq(st, 0, "child status %d", st);
	cr_assert_eq(b->rc[0], 0, "child producer after close: %s", shmring_strerror(b->rc[0]));
	cr_assert_eq(b->rc[1], 0, "child consumer after close: %s", shmring_strerror(b->rc[1]));
	s = t_stats(c);
	cr_assert_eq(s.producers, 0);
	cr_assert_eq(s.consumers, 0);
	cr_assert_eq(s.takeovers, 0, "clean closes are no takeovers: %llu",
		     (unsigned long long)s.takeovers);
	box_free(b);
	shmring_close(c);
	unlink_ok(uri);
}

Test(api, handle_with_both_roles_sends_to_itself, .timeout = 10)
{
	const char *uri = t_ring_uri("self");
	struct shmring *c = t_create(uri, 4096, 0);
	struct shmring *pq = t_open(uri, SHMRING_PRODUCER | SHMRING_CONSUMER);
	for (uint64_t k = 0; k < 100; k++) {
		send_key(pq, (size_t)(k * 7 % 500), k, 0);
		recv_key(pq, (size_t)(k * 7 % 500), k, 0);
	}
	struct shmring_stats st = t_stats(c);
	cr_assert_eq(st.producers, 1);
	cr_assert_eq(st.consumers, 1);
	int rc = t_try_open(uri, SHMRING_PRODUCER, NULL);
	cr_assert_eq(rc, -EBUSY, "producer while a both-roles handle lives: %s",
		     shmring_strerror(rc));
	rc = t_try_open(uri, SHMRING_CONSUMER, NULL);
	cr_assert_eq(rc, -EBUSY, "consumer while a both-roles handle lives: %s",
		     shmring_strerror(rc));
	shmring_close(pq);
	shmring_close(c);
	unlink_ok(uri);
}

Test(api, stats_on_roleless_handle, .timeout = 10)
{
	const char *uri = t_ring_uri("mon");
	struct shmring *c = t_create(uri, 8192, 0);
	struct shmring *mon = t_open(uri, 0);
	struct shmring_stats st;
	int rc = shmring_stats(mon, &st);
	cr_assert_eq(rc, 0, "stats: %s", shmring_strerror(rc));
	cr_assert_eq(st.capacity, 8192);
	cr_assert_eq(st.max_msg, 2048);
	cr_assert_eq(st.kind, SHMRING_SPSC);
	struct shmring *p = t_open(uri, SHMRING_PRODUCER);
	send_key(p, 100, 1, 0);
	st = t_stats(mon);
	cr_assert_eq(st.msgs_sent, 1);
	cr_assert_eq(st.bytes_sent, 100);
	cr_assert_eq(st.producers, 1);
	cr_assert_eq(st.consumers, 0);
	rc = shmring_stats(mon, NULL);
	cr_assert_eq(rc, -EINVAL, "NULL stats: %s", shmring_strerror(rc));
	rc = shmring_stats(NULL, &st);
	cr_assert_eq(rc, -EINVAL, "NULL handle: %s", shmring_strerror(rc));
	shmring_close(p);
	shmring_close(mon);
	shmring_close(c);
	unlink_ok(uri);
}

/* ======================================================================= */
/* timeouts                                                                */
/* ======================================================================= */

/* Fill a ring with messages of len bytes (keys from 0); returns the count. */
static int fill_ring(struct shmring *p, size_t len)
{
	int k = 0;
	uint8_t buf[4096];
	for (;;) {
		t_fill(buf, len, (uint64_t)k);
		int rc = shmring_send(p, buf, len, 0);
		if (rc == -EAGAIN)
			return k;
		cr_assert_eq(rc, 0, "fill: %s", shmring_strerror(rc));
		k++;
		cr_assert_lt(k, 100000, "ring never fills");
	}
}

Test(api, timeout_zero_is_eagain_at_once, .timeout = 10)
{
	const char *uri = t_ring_uri("t0");
	struct shmring *c = t_create(uri, 4096, 1000);
	struct shmring *p = t_open(uri, SHMRING_PRODUCER);
	struct shmring *q = t_open(uri, SHMRING_CONSUMER);
	char buf[1000];
	struct shmring_msg m;
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };

	uint64_t t0 = t_now_ns();
	ssize_t n = shmring_recv(q, buf, sizeof(buf), 0);
	uint64_t el = t_now_ns() - t0;
	cr_assert_eq(n, -EAGAIN, "recv empty: %zd", n);
	cr_assert_lt(el, 50 * MS, "recv timeout 0 took %llu ns", (unsigned long long)el);
	t0 = t_now_ns();
	int rc = shmring_acquire(q, &m, 0);
	el = t_now_ns() - t0;
	cr_assert_eq(rc, -EAGAIN, "acquire empty: %s", shmring_strerror(rc));
	cr_assert_lt(el, 50 * MS);
	rc = shmring_recv_batch(q, &iov, 1, 0);
	cr_assert_eq(rc, -EAGAIN, "recv_batch empty: %s", shmring_strerror(rc));

	int k = fill_ring(p, 500);
	cr_assert_gt(k, 0);
	t0 = t_now_ns();
	rc = shmring_send(p, buf, 500, 0);
	el = t_now_ns() - t0;
	cr_assert_eq(rc, -EAGAIN, "send full: %s", shmring_strerror(rc));
	cr_assert_lt(el, 50 * MS, "send timeout 0 took %llu ns", (unsigned long long)el);
	t0 = t_now_ns();
	rc = shmring_reserve(p, 500, &m, 0);
	el = t_now_ns() - t0;
	cr_assert_eq(rc, -EAGAIN, "reserve full: %s", shmring_strerror(rc));
	cr_assert_lt(el, 50 * MS);
	iov.iov_len = 500;
	rc = shmring_send_batch(p, &iov, 1, 0);
	cr_assert_eq(rc, -EAGAIN, "send_batch full: %s", shmring_strerror(rc));

	/* timeout 0 is not a wait */
	struct shmring_stats st = t_stats(c);
	cr_assert_eq(st.waits_empty, 0);
	cr_assert_eq(st.waits_full, 0);
	for (int i = 0; i < k; i++)
		recv_key(q, 500, (uint64_t)i, 0);
	shmring_close(p);
	shmring_close(q);
	shmring_close(c);
	unlink_ok(uri);
}

Test(api, positive_timeout_is_etimedout_not_early, .timeout = 20)
{
	const char *uri = t_ring_uri("tpos");
	struct shmring *c = t_create(uri, 4096, 1000);
	struct shmring *p = t_open(uri, SHMRING_PRODUCER);
	struct shmring *q = t_open(uri, SHMRING_CONSUMER);
	char buf[1000] = { 0 };
	struct shmring_msg m;
	const int64_t tmo[] = { 1, 1000, 30 * MS, 30 * MS + 1, 100 * MS };

	for (size_t i = 0; i < sizeof(tmo) / sizeof(tmo[0]); i++) {
		uint64_t t0 = t_now_ns();
		ssize_t n = shmring_recv(q, buf, sizeof(buf), tmo[i]);
		uint64_t el = t_now_ns() - t0;
		cr_assert_eq(n, -ETIMEDOUT, "recv %lld ns: %zd", (long long)tmo[i], n);
		cr_assert_geq(el, (uint64_t)tmo[i], "recv returned after %llu < %lld ns",
			      (unsigned long long)el, (long long)tmo[i]);
		cr_assert_lt(el, 2000 * MS, "recv %lld ns took %llu ns", (long long)tmo[i],
			     (unsigned long long)el);
	}
	uint64_t t0 = t_now_ns();
	int rc = shmring_acquire(q, &m, 30 * MS);
	uint64_t el = t_now_ns() - t0;
	cr_assert_eq(rc, -ETIMEDOUT, "acquire: %s", shmring_strerror(rc));
	cr_assert_geq(el, 30 * MS);
	cr_assert_lt(el, 2000 * MS);

	shmring_set_spin(q, 0);
	t0 = t_now_ns();
	ssize_t n = shmring_recv(q, buf, sizeof(buf), 30 * MS);
	el = t_now_ns() - t0;
	cr_assert_eq(n, -ETIMEDOUT, "recv spin 0: %zd", n);
	cr_assert_geq(el, 30 * MS);
	cr_assert_lt(el, 2000 * MS);

	int k = fill_ring(p, 500);
	for (size_t i = 0; i < sizeof(tmo) / sizeof(tmo[0]); i++) {
		t0 = t_now_ns();
		rc = shmring_send(p, buf, 500, tmo[i]);
		el = t_now_ns() - t0;
		cr_assert_eq(rc, -ETIMEDOUT, "send %lld ns: %s", (long long)tmo[i],
			     shmring_strerror(rc));
		cr_assert_geq(el, (uint64_t)tmo[i], "send returned after %llu < %lld ns",
			      (unsigned long long)el, (long long)tmo[i]);
		cr_assert_lt(el, 2000 * MS);
	}
	t0 = t_now_ns();
	rc = shmring_reserve(p, 500, &m, 30 * MS);
	el = t_now_ns() - t0;
	cr_assert_eq(rc, -ETIMEDOUT, "reserve: %s", shmring_strerror(rc));
	cr_assert_geq(el, 30 * MS);
	cr_assert_lt(el, 2000 * MS);

	struct shmring_stats st = t_stats(c);
	cr_assert_geq(st.waits_empty, 7, "waits_empty %llu", (unsigned long long)st.waits_empty);
	cr_assert_geq(st.waits_full, 6, "waits_full %llu", (unsigned long long)st.waits_full);
	/* the timed-out sends left nothing behind */
	cr_assert_eq(st.msgs_sent, (uint64_t)k);
	for (int i = 0; i < k; i++)
		recv_key(q, 500, (uint64_t)i, 0);
	expect_empty(q);
	shmring_close(p);
	shmring_close(q);
	shmring_close(c);
	unlink_ok(uri);
}

/* Producer child: waits until the parent's receive is waiting, then sends. */
static int child_send_later(void *arg)
{
	struct box *b = arg;
	child_guard();
	struct shmring *p = NULL;
	if ((b->rc[0] = shmring_open(b->uri, SHMRING_PRODUCER, NULL, &p)) < 0)
		return 1;
	struct shmring_stats st;
	for (int i = 0; i < 10000; i++) {
		if (shmring_stats(p, &st) == 0 && st.waits_empty >= 1)
			break;
		t_sleep_ms(1);
	}
	t_sleep_ms(50);
	uint8_t buf[777];
	t_fill(buf, sizeof(buf), 4242);
	b->rc[1] = shmring_send(p, buf, sizeof(buf), 5000 * MS);
	shmring_close(p);
	return b->rc[1] == 0 ? 0 : 2;
}

static void forever_recv_case(const char *tag, int spin0)
{
	const char *uri = t_ring_uri(tag);
	struct shmring *c = t_create(uri, 4096, 1000);
	struct shmring *q = t_open(uri, SHMRING_CONSUMER);
	if (spin0)
		cr_assert_eq(shmring_set_spin(q, 0), 0);
	struct box *b = box_new(uri);
	pid_t pid = t_spawn(child_send_later, b);
	uint8_t buf[1000];
	ssize_t n = shmring_recv(q, buf, sizeof(buf), SHMRING_FOREVER);
	int st = t_wait(pid);
	cr_assert_eq(st, 0, "producer child status %d: open %s send %s", st,
		     shmring_strerror(b->rc[0]), shmring_strerror(b->rc[1]));
	cr_assert_eq(n, 777, "FOREVER recv: %zd", n);
	cr_assert(t_check(buf, 777, 4242), "content");
	struct shmring_stats s = t_stats(c);
	cr_assert_eq(s.waits_empty, 1);
	cr_assert_geq(s.futex_sleeps, 1, "a 50 ms wait must have slept on the futex");
	cr_assert_geq(s.futex_wakes, 1, "the producer must have woken the sleeper");
	box_free(b);
	shmring_close(q);
	shmring_close(c);
	unlink_ok(uri);
}

Test(api, forever_recv_woken_by_producer_process, .timeout = 20)
{
	forever_recv_case("frecv", 0);
}

Test(api, forever_recv_woken_by_producer_process_spin0, .timeout = 20)
{
	forever_recv_case("frecv0", 1);
}

/* Consumer child: waits until the parent's send is waiting, drains. */
static int child_drain_later(void *arg)
{
	struct box *b = arg;
	child_guard();
	struct shmring *q = NULL;
	if ((b->rc[0] = shmring_open(b->uri, SHMRING_CONSUMER, NULL, &q)) < 0)
		return 1;
	struct shmring_stats st;
	for (int i = 0; i < 10000; i++) {
		if (shmring_stats(q, &st) == 0 && st.waits_full >= 1)
			break;
		t_sleep_ms(1);
	}
	t_sleep_ms(50);
	uint8_t buf[1000];
	for (int i = 0; i < b->count; i++) {
		ssize_t n = shmring_recv(q, buf, sizeof(buf), 5000 * MS);
		if (n != 500 || !t_check(buf, 500, (uint64_t)i)) {
			b->rc[1] = (int)n;
			return 3;
		}
	}
	shmring_close(q);
	return 0;
}

static void forever_send_case(const char *tag, int spin0)
{
	const char *uri = t_ring_uri(tag);
	struct shmring *c = t_create(uri, 4096, 1000);
	struct shmring *p = t_open(uri, SHMRING_PRODUCER);
	if (spin0)
		cr_assert_eq(shmring_set_spin(p, 0), 0);
	int k = fill_ring(p, 500);
	cr_assert_gt(k, 0);
	struct box *b = box_new(uri);
	b->count = k;
	pid_t pid = t_spawn(child_drain_later, b);
	uint8_t buf[500];
	t_fill(buf, 500, (uint64_t)k);
	int rc = shmring_send(p, buf, 500, SHMRING_FOREVER);
	int st = t_wait(pid);
	cr_assert_eq(rc, 0, "FOREVER send: %s", shmring_strerror(rc));
	cr_assert_eq(st, 0, "consumer child status %d: open %s recv %d", st,
		     shmring_strerror(b->rc[0]), b->rc[1]);
	struct shmring_stats s = t_stats(c);
	cr_assert_eq(s.waits_full, 1);
	cr_assert_geq(s.futex_sleeps, 1, "a 50 ms wait must have slept on the futex");
	/* the message that waited arrives, after the drained ones */
	struct shmring *q = t_open(uri, SHMRING_CONSUMER);
	recv_key(q, 500, (uint64_t)k, 0);
	expect_empty(q);
	box_free(b);
	shmring_close(q);
	shmring_close(p);
	shmring_close(c);
	unlink_ok(uri);
}

Test(api, forever_send_woken_by_consumer_process, .timeout = 20)
{
	forever_send_case("fsend", 0);
}

Test(api, forever_send_woken_by_consumer_process_spin0, .timeout = 20)
{
	forever_send_case("fsend0", 1);
}

Test(api, set_spin_validates, .timeout = 10)
{
	const char *uri = t_ring_uri("spin");
	struct shmring *c = t_create(uri, 4096, 0);
	cr_assert_eq(shmring_set_spin(c, 0), 0);
	cr_assert_eq(shmring_set_spin(c, 1000000000u), 0);
	cr_assert_eq(shmring_set_spin(c, 1000000001u), -EINVAL);
	cr_assert_eq(shmring_set_spin(NULL, 10), -EINVAL);
	shmring_close(c);
	unlink_ok(uri);
}

/* ======================================================================= */
/* sizes                                                                   */
/* ======================================================================= */

Test(api, zero_and_max_size_messages_pass_intact, .timeout = 10)
{
	const char *uri = t_ring_uri("sizes");
	struct shmring *c = t_create(uri, 4096, 1000);
	struct shmring *p = t_open(uri, SHMRING_PRODUCER);
	struct shmring *q = t_open(uri, SHMRING_CONSUMER);
	uint8_t buf[1024];

	int rc = shmring_send(p, NULL, 0, 0);
	cr_assert_eq(rc, 0, "send NULL,0: %s", shmring_strerror(rc));
	rc = shmring_send(p, buf, 0, 0);
	cr_assert_eq(rc, 0, "send buf,0: %s", shmring_strerror(rc));
	send_key(p, 1000, 99, 0);
	send_key(p, 1, 98, 0);

	memset(buf, 0xaa, sizeof(buf));
	ssize_t n = shmring_recv(q, buf, sizeof(buf), 0);
	cr_assert_eq(n, 0, "recv of an empty message: %zd", n);
	cr_assert_eq(buf[0], 0xaa, "an empty message writes nothing");
	n = shmring_recv(q, buf, 0, 0);
	cr_assert_eq(n, 0, "recv cap 0 of an empty message: %zd", n);
	recv_key(q, 1000, 99, 0);
	recv_key(q, 1, 98, 0);

	/* zero-copy of the same sizes */
	struct shmring_msg m;
	rc = shmring_reserve(p, 0, &m, 0);
	cr_assert_eq(rc, 0, "reserve 0: %s", shmring_strerror(rc));
	cr_assert_eq(shmring_commit(p, &m), 0);
	rc = shmring_reserve(p, 1000, &m, 0);
	cr_assert_eq(rc, 0, "reserve max: %s", shmring_strerror(rc));
	t_fill(m.data, 1000, 5);
	cr_assert_eq(shmring_commit(p, &m), 0);
	rc = shmring_acquire(q, &m, 0);
	cr_assert_eq(rc, 0, "acquire: %s", shmring_strerror(rc));
	cr_assert_eq(m.len, 0);
	cr_assert_eq(shmring_release(q, &m), 0);
	rc = shmring_acquire(q, &m, 0);
	cr_assert_eq(rc, 0);
	cr_assert_eq(m.len, 1000);
	cr_assert(t_check(m.data, 1000, 5));
	cr_assert_eq(shmring_release(q, &m), 0);

	struct shmring_stats st = t_stats(c);
	cr_assert_eq(st.msgs_sent, 6);
	cr_assert_eq(st.bytes_sent, 2001);
	cr_assert_eq(st.msgs_recv, 6);
	cr_assert_eq(st.bytes_recv, 2001);
	shmring_close(p);
	shmring_close(q);
	shmring_close(c);
	unlink_ok(uri);
}

Test(api, oversize_is_emsgsize, .timeout = 10)
{
	const char *uri = t_ring_uri("big");
	struct shmring *c = t_create(uri, 4096, 1000);
	struct shmring *p = t_open(uri, SHMRING_PRODUCER);
	struct shmring *q = t_open(uri, SHMRING_CONSUMER);
	uint8_t buf[2048] = { 0 };
	struct shmring_msg m;
	struct iovec iov[2] = { { buf, 1001 }, { buf, 10 } };

	int rc = shmring_send(p, buf, 1001, 0);
	cr_assert_eq(rc, -EMSGSIZE, "send max+1: %s", shmring_strerror(rc));
	rc = shmring_send(p, buf, 1001, 100 * MS);
	cr_assert_eq(rc, -EMSGSIZE, "send max+1 with timeout: %s", shmring_strerror(rc));
	rc = shmring_send(p, buf, SIZE_MAX / 2, 0);
	cr_assert_eq(rc, -EMSGSIZE, "send huge: %s", shmring_strerror(rc));
	rc = shmring_reserve(p, 1001, &m, 0);
	cr_assert_eq(rc, -EMSGSIZE, "reserve max+1: %s", shmring_strerror(rc));
	rc = shmring_reserve(p, (size_t)UINT32_MAX + 1, &m, 0);
	cr_assert_eq(rc, -EMSGSIZE, "reserve 4 GiB: %s", shmring_strerror(rc));
	rc = shmring_send_batch(p, iov, 2, 0);
	cr_assert_eq(rc, -EMSGSIZE, "send_batch first max+1: %s", shmring_strerror(rc));
	/* a later oversized message ends the batch after what fits */
	iov[0].iov_len = 10;
	iov[1].iov_len = 1001;
	rc = shmring_send_batch(p, iov, 2, 0);
	cr_assert_eq(rc, 1, "send_batch second max+1: %d (%s)", rc,
		     rc < 0 ? shmring_strerror(rc) : "count");

	struct shmring_stats st = t_stats(c);
	cr_assert_eq(st.msgs_sent, 1);
	cr_assert_eq(st.used, 24, "only the 10-byte record queued, used %llu",
		     (unsigned long long)st.used);
	ssize_t n = shmring_recv(q, buf, sizeof(buf), 0);
	cr_assert_eq(n, 10);
	expect_empty(q);
	/* still usable */
	send_key(p, 1000, 1, 0);
	recv_key(q, 1000, 1, 0);
	shmring_close(p);
	shmring_close(q);
	shmring_close(c);
	unlink_ok(uri);
}

Test(api, recv_buffer_too_small_keeps_message, .timeout = 10)
{
	const char *uri = t_ring_uri("small");
	struct shmring *c = t_create(uri, 4096, 1000);
	struct shmring *p = t_open(uri, SHMRING_PRODUCER);
	struct shmring *q = t_open(uri, SHMRING_CONSUMER);
	uint8_t buf[1000];

	send_key(p, 1000, 11, 0);
	send_key(p, 1, 12, 0);
	memset(buf, 0x5a, sizeof(buf));
	ssize_t n = shmring_recv(q, buf, 999, 0);
	cr_assert_eq(n, -EMSGSIZE, "recv cap 999 of 1000: %zd", n);
	n = shmring_recv(q, buf, 999, 50 * MS);
	cr_assert_eq(n, -EMSGSIZE, "again, with a timeout: %zd", n);
	n = shmring_recv(q, NULL, 0, 0);
	cr_assert_eq(n, -EMSGSIZE, "recv cap 0: %zd", n);
	cr_assert_eq(buf[0], 0x5a, "nothing copied on -EMSGSIZE");
	struct shmring_stats st = t_stats(c);
	cr_assert_eq(st.msgs_recv, 0, "not counted as received");
	recv_key(q, 1000, 11, 0);

	n = shmring_recv(q, buf, 0, 0);
	cr_assert_eq(n, -EMSGSIZE, "1-byte message, cap 0: %zd", n);
	recv_key(q, 1, 12, 0);
	expect_empty(q);
	shmring_close(p);
	shmring_close(q);
	shmring_close(c);
	unlink_ok(uri);
}

Test(api, recv_batch_buffer_too_small, .timeout = 10)
{
	const char *uri = t_ring_uri("bsmall");
	struct shmring *c = t_create(uri, 4096, 1000);
	struct shmring *p = t_open(uri, SHMRING_PRODUCER);
	struct shmring *q = t_open(uri, SHMRING_CONSUMER);
	uint8_t b0[100], b1[100], b2[100];
	struct iovec iov[3];

	/* first buffer too small */
	send_key(p, 100, 1, 0);
	iov[0] = (struct iovec){ b0, 99 };
	iov[1] = (struct iovec){ b1, 100 };
	int rc = shmring_recv_batch(q, iov, 2, 0);
	cr_assert_eq(rc, -EMSGSIZE, "first too small: %d (%s)", rc,
		     rc < 0 ? shmring_strerror(rc) : "count");
	cr_assert_eq(t_stats(c).msgs_recv, 0);
	recv_key(q, 100, 1, 0);

	/* a later buffer too small: the count before it, the big one stays */
	send_key(p, 10, 2, 0);
	send_key(p, 20, 3, 0);
	send_key(p, 500, 4, 0);
	send_key(p, 5, 5, 0);
	iov[0] = (struct iovec){ b0, sizeof(b0) };
	iov[1] = (struct iovec){ b1, sizeof(b1) };
	iov[2] = (struct iovec){ b2, sizeof(b2) };
	rc = shmring_recv_batch(q, iov, 3, 0);
	cr_assert_eq(rc, 2, "later too small: %d (%s)", rc, rc < 0 ? shmring_strerror(rc) : "");
	cr_assert_eq(iov[0].iov_len, 10);
	cr_assert_eq(iov[1].iov_len, 20);
	cr_assert(t_check(b0, 10, 2));
	cr_assert(t_check(b1, 20, 3));
	cr_assert_eq(t_stats(c).msgs_recv, 3);
	recv_key(q, 500, 4, 0);
	recv_key(q, 5, 5, 0);
	expect_empty(q);
	shmring_close(p);
	shmring_close(q);
	shmring_close(c);
	unlink_ok(uri);
}

/* ======================================================================= */
/* zero-copy                                                               */
/* ======================================================================= */

Test(api, reserve_write_in_place_commit_delivers, .timeout = 10)
{
	const char *uri = t_ring_uri("zc");
	struct shmring *c = t_create(uri, 4096, 1000);
	struct shmring *p = t_open(uri, SHMRING_PRODUCER);
	struct shmring *q = t_open(uri, SHMRING_CONSUMER);
	struct shmring_msg m;
	for (uint64_t k = 0; k < 50; k++) {
		size_t len = (size_t)(k * 37 % 1001);
		int rc = shmring_reserve(p, len, &m, 0);
		cr_assert_eq(rc, 0, "reserve %zu: %s", len, shmring_strerror(rc));
		cr_assert_not_null(m.data);
		cr_assert_eq(m.len, len);
		t_fill(m.data, len, k);
		/* not visible before commit */
		expect_empty(q);
		rc = shmring_commit(p, &m);
		cr_assert_eq(rc, 0, "commit: %s", shmring_strerror(rc));
		recv_key(q, len, k, 0);
	}
	shmring_close(p);
	shmring_close(q);
	shmring_close(c);
	unlink_ok(uri);
}

Test(api, commit_with_shrunk_len_delivers_shorter, .timeout = 10)
{
	const char *uri = t_ring_uri("shrink");
	struct shmring *c = t_create(uri, 4096, 1000);
	struct shmring *p = t_open(uri, SHMRING_PRODUCER);
	struct shmring *q = t_open(uri, SHMRING_CONSUMER);
	struct shmring_msg m;
	for (uint64_t k = 0; k < 40; k++) {
		int rc = shmring_reserve(p, 1000, &m, 0);
		cr_assert_eq(rc, 0, "reserve: %s", shmring_strerror(rc));
		size_t len = (size_t)(k * 53 % 1000);
		t_fill(m.data, len, k);
		m.len = len;
		rc = shmring_commit(p, &m);
		cr_assert_eq(rc, 0, "commit shrunk to %zu: %s", len, shmring_strerror(rc));
		recv_key(q, len, k, 0);
	}
	struct shmring_stats st = t_stats(c);
	cr_assert_eq(st.used, 0);
	cr_assert_eq(st.bytes_sent, st.bytes_recv);
	shmring_close(p);
	shmring_close(q);
	shmring_close(c);
	unlink_ok(uri);
}

Test(api, bad_commits_are_einval, .timeout = 10)
{
	const char *uri = t_ring_uri("badcommit");
	struct shmring *c = t_create(uri, 4096, 1000);
	struct shmring *p = t_open(uri, SHMRING_PRODUCER);
	struct shmring *q = t_open(uri, SHMRING_CONSUMER);
	struct shmring_msg m, f;

	/* commit twice */
	cr_assert_eq(shmring_reserve(p, 100, &m, 0), 0);
	t_fill(m.data, 100, 1);
	struct shmring_msg copy = m;
	cr_assert_eq(shmring_commit(p, &m), 0);
	int rc = shmring_commit(p, &copy);
	cr_assert_eq(rc, -EINVAL, "second commit: %s", shmring_strerror(rc));
	rc = shmring_commit(p, &m);
	cr_assert_eq(rc, -EINVAL, "second commit of the same msg: %s", shmring_strerror(rc));
	recv_key(q, 100, 1, 0);
	expect_empty(q);

	/* commit without any reservation */
	memset(&f, 0, sizeof(f));
	rc = shmring_commit(p, &f);
	cr_assert_eq(rc, -EINVAL, "commit of nothing: %s", shmring_strerror(rc));
	rc = shmring_commit(p, NULL);
	cr_assert_eq(rc, -EINVAL, "commit NULL: %s", shmring_strerror(rc));

	/* forged priv, shrunk-then-grown len, while a reservation is open */
	cr_assert_eq(shmring_reserve(p, 100, &m, 0), 0);
	t_fill(m.data, 100, 2);
	f = m;
	f.priv[0] += 8;
	rc = shmring_commit(p, &f);
	cr_assert_eq(rc, -EINVAL, "forged priv[0]: %s", shmring_strerror(rc));
	f = m;
	f.priv[0] ^= 0xdead0000ull;
	rc = shmring_commit(p, &f);
	cr_assert_eq(rc, -EINVAL, "forged priv[0] (2): %s", shmring_strerror(rc));
	f = m;
	f.priv[1] = 2000;
	f.len = 2000;
	rc = shmring_commit(p, &f);
	cr_assert_eq(rc, -EINVAL, "forged priv[1] with grown len: %s", shmring_strerror(rc));
	f = m;
	f.priv[1] = 50;
	f.len = 50;
	rc = shmring_commit(p, &f);
	cr_assert_eq(rc, -EINVAL, "forged priv[1]: %s", shmring_strerror(rc));
	f = m;
	f.len = 50;     /* shrunk ... */
	f.len = 101;    /* ... then grown past what was reserved */
	rc = shmring_commit(p, &f);
	cr_assert_eq(rc, -EINVAL, "grown len: %s", shmring_strerror(rc));
	f.len = SIZE_MAX;
	rc = shmring_commit(p, &f);
	cr_assert_eq(rc, -EINVAL, "len SIZE_MAX: %s", shmring_strerror(rc));
	expect_empty(q);

	/* the reservation survived the refused commits */
	rc = shmring_send(p, "x", 1, 0);
	cr_assert_eq(rc, -EINPROGRESS, "reservation still open: %s", shmring_strerror(rc));
	rc = shmring_commit(p, &m);
	cr_assert_eq(rc, 0, "the genuine commit: %s", shmring_strerror(rc));
	recv_key(q, 100, 2, 0);
	expect_empty(q);
	cr_assert_eq(t_stats(c).msgs_sent, 2);
	shmring_close(p);
	shmring_close(q);
	shmring_close(c);
	unlink_ok(uri);
}

/* Two fresh rings hand out reservations at the same position and length;
 * only the payload pointer tells them apart. */
Test(api, commit_of_another_rings_reservation_is_einval, .timeout = 10)
{
	const char *ua = t_ring_uri("commitA"), *ub = t_ring_uri("commitB");
	struct shmring *a = t_create(ua, 4096, 1000), *b = t_create(ub, 4096, 1000);
	struct shmring *pa = t_open(ua, SHMRING_PRODUCER), *pb = t_open(ub, SHMRING_PRODUCER);
	struct shmring *qa = t_open(ua, SHMRING_CONSUMER), *qb = t_open(ub, SHMRING_CONSUMER);
	struct shmring_msg ma, mb;
	cr_assert_eq(shmring_reserve(pa, 100, &ma, 0), 0);
	cr_assert_eq(shmring_reserve(pb, 100, &mb, 0), 0);
	cr_assert_eq(ma.priv[0], mb.priv[0], "same position: the case under test");
	t_fill(ma.data, 100, 1);
	t_fill(mb.data, 100, 2);
	int rc = shmring_commit(pa, &mb);
	cr_assert_eq(rc, -EINVAL, "B's reservation on A: %s", shmring_strerror(rc));
	struct shmring_msg moved = ma;
	moved.data = (char *)ma.data + 8;
	rc = shmring_commit(pa, &moved);
	cr_assert_eq(rc, -EINVAL, "moved data: %s", shmring_strerror(rc));
	expect_empty(qa);
	cr_assert_eq(shmring_commit(pa, &ma), 0);
	cr_assert_eq(shmring_commit(pb, &mb), 0);
	recv_key(qa, 100, 1, 0);
	recv_key(qb, 100, 2, 0);
	struct shmring *all[] = { pa, pb, qa, qb, a, b };
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		shmring_close(all[i]);
	unlink_ok(ua);
	unlink_ok(ub);
}

/* max_msg is a 32-bit field and a filler before the largest record must
 * fit one too: past that limit an explicit max_msg is refused, whatever
 * the kind, rather than silently shrunk. */
Test(api, max_msg_past_the_32_bit_limit_is_einval, .timeout = 10)
{
	const char *uri = t_ring_uri("maxmsg");
	static const uint32_t bad[] = { UINT32_MAX, UINT32_MAX - 127 };
	for (int kind = SHMRING_SPSC; kind <= SHMRING_MPMC; kind++) {
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			struct shmring_opts o = { .kind = (enum shmring_kind)kind,
						  .max_msg = bad[i] };
			int rc = t_try_open(uri, SHMRING_CREATE | SHMRING_EXCL, &o);
			cr_assert_eq(rc, -EINVAL, "kind %d max_msg %u: %s", kind, bad[i],
				     shmring_strerror(rc));
			cr_assert(!t_exists(t_path_of(uri)), "a refused max_msg must not create");
		}
	}
}

Test(api, send_during_reservation_is_einprogress, .timeout = 10)
{
	const char *uri = t_ring_uri("inprog");
	struct shmring *c = t_create(uri, 4096, 1000);
	struct shmring *p = t_open(uri, SHMRING_PRODUCER);
	struct shmring *q = t_open(uri, SHMRING_CONSUMER);
	struct shmring_msg m, m2;
	struct iovec iov = { .iov_base = "abc", .iov_len = 3 };

	cr_assert_eq(shmring_reserve(p, 200, &m, 0), 0);
	int rc = shmring_send(p, "abc", 3, 0);
	cr_assert_eq(rc, -EINPROGRESS, "send: %s", shmring_strerror(rc));
	rc = shmring_reserve(p, 10, &m2, 0);
	cr_assert_eq(rc, -EINPROGRESS, "reserve: %s", shmring_strerror(rc));
	rc = shmring_send_batch(p, &iov, 1, 0);
	cr_assert_eq(rc, -EINPROGRESS, "send_batch: %s", shmring_strerror(rc));
	t_fill(m.data, 200, 9);
	cr_assert_eq(shmring_commit(p, &m), 0);
	cr_assert_eq(shmring_send(p, "abc", 3, 0), 0);
	recv_key(q, 200, 9, 0);
	char buf[8];
	cr_assert_eq(shmring_recv(q, buf, sizeof(buf), 0), 3);
	cr_assert_eq(memcmp(buf, "abc", 3), 0);
	shmring_close(p);
	shmring_close(q);
	shmring_close(c);
	unlink_ok(uri);
}

Test(api, acquire_release_in_order, .timeout = 10)
{
	const char *uri = t_ring_uri("acq");
	struct shmring *c = t_create(uri, 4096, 1000);
	struct shmring *p = t_open(uri, SHMRING_PRODUCER);
	struct shmring *q = t_open(uri, SHMRING_CONSUMER);
	struct shmring_msg m[5];
	size_t lens[5] = { 0, 1, 300, 1000, 64 };

	for (int round = 0; round < 20; round++) {
		for (int i = 0; i < 5; i++)
			send_key(p, lens[i], (uint64_t)(round * 5 + i), 0);
		for (int i = 0; i < 5; i++) {
			int rc = shmring_acquire(q, &m[i], 0);
			cr_assert_eq(rc, 0, "acquire %d: %s", i, shmring_strerror(rc));
			cr_assert_eq(m[i].len, lens[i]);
			cr_assert(t_check(m[i].data, lens[i], (uint64_t)(round * 5 + i)));
		}
		int rc = shmring_acquire(q, &m[0], 0);
		cr_assert_eq(rc, -EAGAIN, "nothing left to acquire");
		for (int i = 0; i < 5; i++) {
			/* still intact after the ones before were released */
			cr_assert(t_check(m[i].data, lens[i], (uint64_t)(round * 5 + i)));
			rc = shmring_release(q, &m[i]);
			cr_assert_eq(rc, 0, "release %d: %s", i, shmring_strerror(rc));
		}
	}
	struct shmring_stats st = t_stats(c);
	cr_assert_eq(st.msgs_recv, 100);
	cr_assert_eq(st.bytes_recv, 20 * (0 + 1 + 300 + 1000 + 64));
	cr_assert_eq(st.used, 0);
	shmring_close(p);
	shmring_close(q);
	shmring_close(c);
	unlink_ok(uri);
}

Test(api, release_out_of_order_is_einval, .timeout = 10)
{
	const char *uri = t_ring_uri("ooo");
	struct shmring *c = t_create(uri, 4096, 1000);
	struct shmring *p = t_open(uri, SHMRING_PRODUCER);
	struct shmring *q = t_open(uri, SHMRING_CONSUMER);
	struct shmring_msg m[3];
	for (int i = 0; i < 3; i++)
		send_key(p, 100, (uint64_t)i, 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(shmring_acquire(q, &m[i], 0), 0);

	int rc = shmring_release(q, &m[1]);
	cr_assert_eq(rc, -EINVAL, "release 2nd before 1st: %s", shmring_strerror(rc));
	rc = shmring_release(q, &m[2]);
	cr_assert_eq(rc, -EINVAL, "release 3rd before 1st: %s", shmring_strerror(rc));
	cr_assert_eq(t_stats(c).msgs_recv, 0, "a refused release frees nothing");
	cr_assert_eq(shmring_release(q, &m[0]), 0);
	rc = shmring_release(q, &m[0]);
	cr_assert_eq(rc, -EINVAL, "release twice: %s", shmring_strerror(rc));
	rc = shmring_release(q, &m[2]);
	cr_assert_eq(rc, -EINVAL, "release 3rd before 2nd: %s", shmring_strerror(rc));
	rc = shmring_release(q, NULL);
	cr_assert_eq(rc, -EINVAL, "release NULL: %s", shmring_strerror(rc));
	cr_assert_eq(shmring_release(q, &m[1]), 0);
	cr_assert_eq(shmring_release(q, &m[2]), 0);
	cr_assert_eq(t_stats(c).msgs_recv, 3);
	expect_empty(q);
	shmring_close(p);
	shmring_close(q);
	shmring_close(c);
	unlink_ok(uri);
}

/* A release whose end is not the end of an acquired message (here: 8 bytes
 * into the next acquired record) must be refused like any forged priv. */
Test(api, release_with_forged_end_is_einval, .timeout = 10)
{
	const char *uri = t_ring_uri("forgedrel");
	struct shmring *c = t_create(uri, 4096, 1000);
	struct shmring *p = t_open(uri, SHMRING_PRODUCER);
	struct shmring *q = t_open(uri, SHMRING_CONSUMER);
	struct shmring_msg m[2];
	for (int i = 0; i < 2; i++)
		send_key(p, 100, (uint64_t)i, 0);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(shmring_acquire(q, &m[i], 0), 0);
	struct shmring_msg f = m[0];
	f.priv[1] += 8;                 /* inside the second record */
	int rc = shmring_release(q, &f);
	cr_assert_eq(rc, -EINVAL, "release with a forged end: %s", shmring_strerror(rc));
	f = m[0];
	f.priv[1] -= 8;                 /* inside the first record */
	rc = shmring_release(q, &f);
	cr_assert_eq(rc, -EINVAL, "release with a short end: %s", shmring_strerror(rc));
	/* the genuine releases still work */
	cr_assert_eq(shmring_release(q, &m[0]), 0);
	cr_assert_eq(shmring_release(q, &m[1]), 0);
	cr_assert_eq(t_stats(c).msgs_recv, 2);
	cr_assert_eq(t_stats(c).used, 0);
	shmring_close(p);
	shmring_close(q);
	shmring_close(c);
	unlink_ok(uri);
}

Test(api, recv_while_acquired_is_einprogress, .timeout = 10)
{
	const char *uri = t_ring_uri("racq");
	struct shmring *c = t_create(uri, 4096, 1000);
	struct shmring *p = t_open(uri, SHMRING_PRODUCER);
	struct shmring *q = t_open(uri, SHMRING_CONSUMER);
	struct shmring_msg m;
	uint8_t buf[1000];
	struct iovec iov = { buf, sizeof(buf) };
	send_key(p, 10, 1, 0);
	send_key(p, 20, 2, 0);
	cr_assert_eq(shmring_acquire(q, &m, 0), 0);
	ssize_t n = shmring_recv(q, buf, sizeof(buf), 0);
	cr_assert_eq(n, -EINPROGRESS, "recv while acquired: %zd", n);
	int rc = shmring_recv_batch(q, &iov, 1, 0);
	cr_assert_eq(rc, -EINPROGRESS, "recv_batch while acquired: %s", shmring_strerror(rc));
	cr_assert_eq(shmring_release(q, &m), 0);
	recv_key(q, 20, 2, 0);
	shmring_close(p);
	shmring_close(q);
	shmring_close(c);
	unlink_ok(uri);
}

/* ======================================================================= */
/* batches                                                                 */
/* ======================================================================= */

Test(api, send_batch_partial_then_rest, .timeout = 10)
{
	const char *uri = t_ring_uri("sbatch");
	struct shmring *c = t_create(uri, 4096, 1000);
	struct shmring *p = t_open(uri, SHMRING_PRODUCER);
	struct shmring *q = t_open(uri, SHMRING_CONSUMER);
	static uint8_t data[32][200];
	struct iovec iov[32];
	for (int i = 0; i < 32; i++) {
		t_fill(data[i], 200, (uint64_t)i);
		iov[i] = (struct iovec){ data[i], 200 };
	}
	unsigned sent = 0, got = 0;
	int first = -1;
	while (sent < 32) {
		int n = shmring_send_batch(p, iov + sent, 32 - sent, 0);
		cr_assert_geq(n, 1, "send_batch: %d (%s)", n, n < 0 ? shmring_strerror(n) : "");
		cr_assert_leq((unsigned)n, 32 - sent);
		if (first < 0)
			first = n;
		sent += (unsigned)n;
		/* drain what is there */
		while (got < sent)
			recv_key(q, 200, got++, 0);
		expect_empty(q);
	}
	cr_assert_lt(first, 32, "all 32 fitted a 4096-byte ring (%d)", first);
	cr_assert_eq(first, 4096 / 208, "as many as fit: %d", first);
	struct shmring_stats st = t_stats(c);
	cr_assert_eq(st.msgs_sent, 32);
	cr_assert_eq(st.bytes_sent, 32 * 200);
	shmring_close(p);
	shmring_close(q);
	shmring_close(c);
	unlink_ok(uri);
}

Test(api, recv_batch_fills_lengths, .timeout = 10)
{
	const char *uri = t_ring_uri("rbatch");
	struct shmring *c = t_create(uri, 4096, 1000);
	struct shmring *p = t_open(uri, SHMRING_PRODUCER);
	struct shmring *q = t_open(uri, SHMRING_CONSUMER);
	size_t lens[6] = { 0, 1, 7, 8, 9, 100 };
	static uint8_t bufs[8][128];
	struct iovec iov[8];
	for (int i = 0; i < 6; i++)
		send_key(p, lens[i], 50 + (uint64_t)i, 0);
	for (int i = 0; i < 8; i++)
		iov[i] = (struct iovec){ bufs[i], sizeof(bufs[i]) };
	int n = shmring_recv_batch(q, iov, 8, 0);
	cr_assert_eq(n, 6, "recv_batch: %d (%s)", n, n < 0 ? shmring_strerror(n) : "");
	for (int i = 0; i < 6; i++) {
		cr_assert_eq(iov[i].iov_len, lens[i], "iov_len[%d] = %zu", i, iov[i].iov_len);
		cr_assert(t_check(bufs[i], lens[i], 50 + (uint64_t)i), "content %d", i);
	}
	cr_assert_eq(iov[6].iov_len, sizeof(bufs[6]), "unused iovecs untouched");
	cr_assert_eq(t_stats(c).msgs_recv, 6);
	cr_assert_eq(t_stats(c).bytes_recv, 125);

	/* a batch waits for its first message only */
	send_key(p, 33, 77, 0);
	for (int i = 0; i < 8; i++)
		iov[i] = (struct iovec){ bufs[i], sizeof(bufs[i]) };
	n = shmring_recv_batch(q, iov, 8, 1000 * MS);
	cr_assert_eq(n, 1, "recv_batch with one queued: %d", n);
	cr_assert_eq(iov[0].iov_len, 33);
	uint64_t t0 = t_now_ns();
	n = shmring_recv_batch(q, iov, 8, 20 * MS);
	cr_assert_eq(n, -ETIMEDOUT, "recv_batch on empty: %d", n);
	cr_assert_geq(t_now_ns() - t0, 20 * MS);
	shmring_close(p);
	shmring_close(q);
	shmring_close(c);
	unlink_ok(uri);
}

Test(api, batch_bad_arguments_are_einval, .timeout = 10)
{
	const char *uri = t_ring_uri("bbad");
	struct shmring *c = t_create(uri, 4096, 1000);
	struct shmring *p = t_open(uri, SHMRING_PRODUCER);
	struct shmring *q = t_open(uri, SHMRING_CONSUMER);
	uint8_t buf[16];
	struct iovec iov = { buf, sizeof(buf) };
	int rc = shmring_send_batch(p, &iov, 0, 0);
	cr_assert_eq(rc, -EINVAL, "send_batch n=0: %s", shmring_strerror(rc));
	rc = shmring_send_batch(p, NULL, 1, 0);
	cr_assert_eq(rc, -EINVAL, "send_batch NULL: %s", shmring_strerror(rc));
	rc = shmring_recv_batch(q, &iov, 0, 0);
	cr_assert_eq(rc, -EINVAL, "recv_batch n=0: %s", shmring_strerror(rc));
	rc = shmring_recv_batch(q, NULL, 1, 0);
	cr_assert_eq(rc, -EINVAL, "recv_batch NULL: %s", shmring_strerror(rc));
	struct iovec nul = { NULL, 5 };
	rc = shmring_send_batch(p, &nul, 1, 0);
	cr_assert_eq(rc, -EINVAL, "send_batch NULL base: %s", shmring_strerror(rc));
	cr_assert_eq(t_stats(c).msgs_sent, 0);
	rc = shmring_send(p, NULL, 5, 0);
	cr_assert_eq(rc, -EINVAL, "send NULL,5: %s", shmring_strerror(rc));
	shmring_close(p);
	shmring_close(q);
	shmring_close(c);
	unlink_ok(uri);
}

/* ======================================================================= */
/* shutdown                                                                */
/* ======================================================================= */

static void shutdown_case(const char *tag, int64_t drain_timeout)
{
	const char *uri = t_ring_uri(tag);
	struct shmring *c = t_create(uri, 4096, 1000);
	struct shmring *p = t_open(uri, SHMRING_PRODUCER);
	struct shmring *q = t_open(uri, SHMRING_CONSUMER);
	for (int i = 0; i < 5; i++)
		send_key(p, 100 + (size_t)i, (uint64_t)i, 0);
	struct shmring_msg m;
	cr_assert_eq(shmring_reserve(p, 50, &m, 0), 0);

	cr_assert_eq(shmring_shutdown(p), 0);
	cr_assert_eq(t_stats(c).shut_down, 1);
	/* the reservation open across the shutdown is dropped */
	int rc = shmring_commit(p, &m);
	cr_assert_eq(rc, -EPIPE, "commit after shutdown: %s", shmring_strerror(rc));
	rc = shmring_send(p, "x", 1, 0);
	cr_assert_eq(rc, -EPIPE, "send after shutdown: %s", shmring_strerror(rc));
	rc = shmring_send(p, "x", 1, SHMRING_FOREVER);
	cr_assert_eq(rc, -EPIPE, "FOREVER send after shutdown: %s", shmring_strerror(rc));
	rc = shmring_reserve(p, 1, &m, 0);
	cr_assert_eq(rc, -EPIPE, "reserve after shutdown: %s", shmring_strerror(rc));
	struct iovec iov = { "x", 1 };
	rc = shmring_send_batch(p, &iov, 1, 0);
	cr_assert_eq(rc, -EPIPE, "send_batch after shutdown: %s", shmring_strerror(rc));
	cr_assert_eq(shmring_shutdown(p), 0, "shutdown twice");

	/* every message sent before, then -EPIPE, whatever the timeout */
	for (int i = 0; i < 5; i++)
		recv_key(q, 100 + (size_t)i, (uint64_t)i, drain_timeout);
	char buf[256];
	uint64_t t0 = t_now_ns();
	ssize_t n = shmring_recv(q, buf, sizeof(buf), drain_timeout);
	cr_assert_eq(n, -EPIPE, "recv after drain: %zd", n);
	n = shmring_recv(q, buf, sizeof(buf), 0);
	cr_assert_eq(n, -EPIPE, "recv timeout 0: %zd", n);
	n = shmring_recv(q, buf, sizeof(buf), SHMRING_FOREVER);
	cr_assert_eq(n, -EPIPE, "recv FOREVER: %zd", n);
	n = shmring_recv(q, buf, sizeof(buf), 5000 * MS);
	cr_assert_eq(n, -EPIPE, "recv 5 s: %zd", n);
	cr_assert_lt(t_now_ns() - t0, 2000 * MS, "-EPIPE must not wait");
	rc = shmring_acquire(q, &m, SHMRING_FOREVER);
	cr_assert_eq(rc, -EPIPE, "acquire: %s", shmring_strerror(rc));
	struct iovec riov = { buf, sizeof(buf) };
	rc = shmring_recv_batch(q, &riov, 1, SHMRING_FOREVER);
	cr_assert_eq(rc, -EPIPE, "recv_batch: %s", shmring_strerror(rc));

	/* the stream is over for a new producer too */
	shmring_close(p);
	p = t_open(uri, SHMRING_PRODUCER);
	rc = shmring_send(p, "x", 1, 0);
	cr_assert_eq(rc, -EPIPE, "send by a new producer: %s", shmring_strerror(rc));
	n = shmring_recv(q, buf, sizeof(buf), 0);
	cr_assert_eq(n, -EPIPE, "recv after the new producer: %zd", n);
	struct shmring_stats st = t_stats(c);
	cr_assert_eq(st.msgs_sent, 5);
	cr_assert_eq(st.msgs_recv, 5);
	shmring_close(p);
	shmring_close(q);
	shmring_close(c);
	unlink_ok(uri);
}

Test(api, shutdown_drains_then_epipe_timeout0, .timeout = 15)
{
	shutdown_case("shut0", 0);
}

Test(api, shutdown_drains_then_epipe_forever, .timeout = 15)
{
	shutdown_case("shutf", SHMRING_FOREVER);
}

static int child_recv_forever(void *arg)
{
	struct box *b = arg;
	child_guard();
	struct shmring *q = NULL;
	if ((b->rc[0] = shmring_open(b->uri, SHMRING_CONSUMER, NULL, &q)) < 0)
		return 1;
	if (b->spin == 0)
		shmring_set_spin(q, 0);
	atomic_store(&b->ready, 1);
	char buf[64];
	b->rc[1] = (int)shmring_recv(q, buf, sizeof(buf), SHMRING_FOREVER);
	shmring_close(q);
	return 0;
}

Test(api, shutdown_wakes_consumer_sleeping_in_other_process, .timeout = 20)
{
	const char *uri = t_ring_uri("shutwake");
	struct shmring *c = t_create(uri, 4096, 0);
	struct shmring *p = t_open(uri, SHMRING_PRODUCER);
	struct box *b = box_new(uri);
	b->rc[1] = 12345;
	pid_t pid = t_spawn(child_recv_forever, b);
	cr_assert(t_wait_flag(&b->ready, 1, 10000), "child never got ready: %s",
		  shmring_strerror(b->rc[0]));
	/* wait until the consumer is actually waiting, then a little more so
	 * it is asleep on the futex */
	for (int i = 0; i < 10000 && t_stats(c).waits_empty == 0; i++)
		t_sleep_ms(1);
	cr_assert_eq(t_stats(c).waits_empty, 1, "consumer never waited");
	t_sleep_ms(50);
	cr_assert_eq(b->rc[1], 12345, "consumer returned before the shutdown: %d", b->rc[1]);
	cr_assert_eq(shmring_shutdown(p), 0);
	int st = t_wait(pid);
	cr_assert_eq(st, 0, "child status %d", st);
	cr_assert_eq(b->rc[1], -EPIPE, "sleeping consumer got %d (%s)", b->rc[1],
		     shmring_strerror(b->rc[1]));
	box_free(b);
	shmring_close(p);
	shmring_close(c);
	unlink_ok(uri);
}

Test(api, shutdown_by_consumer_is_eperm, .timeout = 10)
{
	const char *uri = t_ring_uri("shutperm");
	struct shmring *c = t_create(uri, 4096, 0);
	struct shmring *p = t_open(uri, SHMRING_PRODUCER);
	struct shmring *q = t_open(uri, SHMRING_CONSUMER);
	int rc = shmring_shutdown(q);
	cr_assert_eq(rc, -EPERM, "consumer shutdown: %s", shmring_strerror(rc));
	rc = shmring_shutdown(c);
	cr_assert_eq(rc, -EPERM, "role-less shutdown: %s", shmring_strerror(rc));
	rc = shmring_shutdown(NULL);
	cr_assert_eq(rc, -EINVAL, "NULL shutdown: %s", shmring_strerror(rc));
	cr_assert_eq(t_stats(c).shut_down, 0);
	send_key(p, 10, 1, 0);
	recv_key(q, 10, 1, 0);
	shmring_close(p);
	shmring_close(q);
	shmring_close(c);
	unlink_ok(uri);
}

/* ======================================================================= */
/* statistics                                                              */
/* ======================================================================= */

Test(api, stats_count_messages_and_bytes_exactly, .timeout = 10)
{
	const char *uri = t_ring_uri("stats");
	struct shmring *c = t_create(uri, 65536, 0);
	struct shmring *p = t_open(uri, SHMRING_PRODUCER);
	struct shmring *q = t_open(uri, SHMRING_CONSUMER);
	struct shmring_stats st = t_stats(c);
	cr_assert_eq(st.msgs_sent + st.bytes_sent + st.msgs_recv + st.bytes_recv, 0);
	cr_assert_eq(st.used, 0);

	uint64_t sent = 0, recvd = 0;
	const int N = 37, M = 15;
	for (int i = 0; i < N; i++) {
		send_key(p, (size_t)i * 13, (uint64_t)i, 0);
		sent += (uint64_t)i * 13;
	}
	for (int i = 0; i < M; i++) {
		recv_key(q, (size_t)i * 13, (uint64_t)i, 0);
		recvd += (uint64_t)i * 13;
	}
	st = t_stats(c);
	cr_assert_eq(st.msgs_sent, (uint64_t)N);
	cr_assert_eq(st.bytes_sent, sent);
	cr_assert_eq(st.msgs_recv, (uint64_t)M);
	cr_assert_eq(st.bytes_recv, recvd);
	/* records queued, plus at most one 8..56-byte alignment filler in
	 * front of each payload of 256 bytes or more */
	uint64_t queued = 0, fillers = 0;
	for (int i = M; i < N; i++) {
		queued += ((uint64_t)i * 13 + 8 + 7) & ~7ull;
		fillers += (uint64_t)i * 13 >= 256 ? 56 : 0;
	}
	cr_assert_gt(st.used, 0);
	cr_assert(st.used >= queued && st.used <= queued + fillers,
		  "used %llu, records queued %llu (+ up to %llu of fillers)",
		  (unsigned long long)st.used, (unsigned long long)queued,
		  (unsigned long long)fillers);

	/* the same seen from each handle */
	struct shmring_stats sp = t_stats(p), sq = t_stats(q);
	cr_assert_eq(sp.msgs_sent, st.msgs_sent);
	cr_assert_eq(sq.msgs_recv, st.msgs_recv);

	/* zero-copy and batches count too */
	struct shmring_msg m;
	cr_assert_eq(shmring_reserve(p, 100, &m, 0), 0);
	m.len = 40;
	cr_assert_eq(shmring_commit(p, &m), 0);
	uint8_t b0[1000], b1[1000];
	memset(b0, 1, sizeof(b0));
	memset(b1, 2, sizeof(b1));
	struct iovec iov[2] = { { b0, 64 }, { b1, 64 } };
	cr_assert_eq(shmring_send_batch(p, iov, 2, 0), 2);
	sent += 40 + 128;
	for (int i = M; i < N; i++) {
		cr_assert_eq(shmring_acquire(q, &m, 0), 0);
		cr_assert_eq(shmring_release(q, &m), 0);
		recvd += (uint64_t)i * 13;
	}
	uint8_t buf[128];
	cr_assert_eq(shmring_recv(q, buf, sizeof(buf), 0), 40);
	recvd += 40;
	iov[0].iov_len = iov[1].iov_len = sizeof(b0);
	cr_assert_eq(shmring_recv_batch(q, iov, 2, 0), 2);
	recvd += 128;
	st = t_stats(c);
	cr_assert_eq(st.msgs_sent, (uint64_t)N + 3);
	cr_assert_eq(st.bytes_sent, sent);
	cr_assert_eq(st.msgs_recv, (uint64_t)N + 3);
	cr_assert_eq(st.bytes_recv, recvd);
	cr_assert_eq(st.used, 0, "drained: used %llu", (unsigned long long)st.used);
	cr_assert_eq(st.shut_down, 0);
	cr_assert_eq(st.repairs + st.takeovers + st.msgs_redelivered + st.msgs_dropped +
		     st.holes_skipped, 0, "no recovery events on a healthy ring");
	shmring_close(p);
	shmring_close(q);
	shmring_close(c);
	unlink_ok(uri);
}

Test(api, stats_waits_empty_counts_waiting_receives, .timeout = 10)
{
	const char *uri = t_ring_uri("waits");
	struct shmring *c = t_create(uri, 4096, 0);
	struct shmring *p = t_open(uri, SHMRING_PRODUCER);
	struct shmring *q = t_open(uri, SHMRING_CONSUMER);
	char buf[64];
	cr_assert_eq(t_stats(c).waits_empty, 0);
	cr_assert_eq(shmring_recv(q, buf, sizeof(buf), 5 * MS), -ETIMEDOUT);
	cr_assert_eq(t_stats(c).waits_empty, 1);
	struct shmring_msg m;
	cr_assert_eq(shmring_acquire(q, &m, 5 * MS), -ETIMEDOUT);
	cr_assert_eq(t_stats(c).waits_empty, 2);
	/* a receive that finds a message does not wait */
	send_key(p, 10, 1, 0);
	recv_key(q, 10, 1, 5 * MS);
	cr_assert_eq(t_stats(c).waits_empty, 2);
	cr_assert_eq(t_stats(c).waits_full, 0);
	shmring_close(p);
	shmring_close(q);
	shmring_close(c);
	unlink_ok(uri);
}

Test(api, stats_live_participants, .timeout = 10)
{
	const char *uri = t_ring_uri("live");
	struct shmring *c = t_create(uri, 4096, 0);
	struct shmring_stats st = t_stats(c);
	cr_assert_eq(st.producers, 0);
	cr_assert_eq(st.consumers, 0);
	struct shmring *p = t_open(uri, SHMRING_PRODUCER);
	st = t_stats(c);
	cr_assert_eq(st.producers, 1);
	cr_assert_eq(st.consumers, 0);
	struct shmring *q = t_open(uri, SHMRING_CONSUMER);
	struct shmring *mon = t_open(uri, 0);
	st = t_stats(mon);
	cr_assert_eq(st.producers, 1, "producers %u", st.producers);
	cr_assert_eq(st.consumers, 1, "consumers %u", st.consumers);
	shmring_close(p);
	st = t_stats(mon);
	cr_assert_eq(st.producers, 0);
	cr_assert_eq(st.consumers, 1);
	shmring_close(q);
	st = t_stats(mon);
	cr_assert_eq(st.producers, 0);
	cr_assert_eq(st.consumers, 0);
	struct shmring *pq = t_open(uri, SHMRING_PRODUCER | SHMRING_CONSUMER);
	st = t_stats(mon);
	cr_assert_eq(st.producers, 1);
	cr_assert_eq(st.consumers, 1);
	shmring_close(pq);
	st = t_stats(c);
	cr_assert_eq(st.producers + st.consumers, 0);
	shmring_close(mon);
	shmring_close(c);
	unlink_ok(uri);
}

Test(api, stats_geometry_capacity_and_max_msg, .timeout = 15)
{
	struct { uint64_t ask; uint32_t max; uint64_t cap; uint32_t want_max; } cases[] = {
		{ 0, 0, 1 << 20, (1 << 20) / 4 },
		{ 1, 0, 4096, 1024 },
		{ 4096, 0, 4096, 1024 },
		{ 4097, 0, 8192, 2048 },
		{ 5000, 100, 8192, 100 },
		{ 100000, 0, 131072, 32768 },
		{ 65536, 1, 65536, 1 },
		{ 65536, 32640, 65536, 32640 },    /* the largest: capacity/2 - 128 */
		{ 65536, 32641, 131072, 32641 },
		{ (1 << 20) + 1, 4000, 1 << 21, 4000 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *uri = t_ring_uri("geom");
		struct shmring_opts o = { .capacity = cases[i].ask, .max_msg = cases[i].max };
		struct shmring *r = t_open_opts(uri, SHMRING_CREATE | SHMRING_EXCL, &o);
		struct shmring_stats st = t_stats(r);
		cr_assert_eq(st.capacity, cases[i].cap, "asked %llu: capacity %llu",
			     (unsigned long long)cases[i].ask, (unsigned long long)st.capacity);
		cr_assert_eq(st.capacity & (st.capacity - 1), 0, "power of two");
		cr_assert_geq(st.capacity, cases[i].ask);
		cr_assert_eq(st.max_msg, cases[i].want_max, "asked %llu/%u: max_msg %u",
			     (unsigned long long)cases[i].ask, cases[i].max, st.max_msg);
		cr_assert_eq(st.kind, SHMRING_SPSC);
		/* a reopen sees the same geometry */
		struct shmring *r2 = t_open(uri, 0);
		cr_assert_eq(t_stats(r2).capacity, st.capacity);
		cr_assert_eq(t_stats(r2).max_msg, st.max_msg);
		shmring_close(r2);
		shmring_close(r);
		unlink_ok(uri);
	}
}

Test(api, strerror_describes_every_error)
{
	const int errs[] = {
		0, -EAGAIN, -ETIMEDOUT, -EMSGSIZE, -EPIPE, -EBUSY, -EEXIST, -ENOENT, -EACCES,
		-ENOSPC, -EPROTO, -ENOTSUP, -EINVAL, -EPERM, -EINPROGRESS, -EUSERS, -ENOMEM,
		-ELOOP, -EISDIR, -ENOTRECOVERABLE, -EOWNERDEAD, -9999, 12345, 1, -1, INT_MAX,
		-100000,
	};
	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		const char *s = shmring_strerror(errs[i]);
		cr_assert_not_null(s, "strerror(%d) is NULL", errs[i]);
		cr_assert_gt(strlen(s), 0, "strerror(%d) is empty", errs[i]);
	}
	/* the errors callers rely on are told apart */
	cr_assert_str_neq(shmring_strerror(-EAGAIN), shmring_strerror(-ETIMEDOUT));
	cr_assert_str_neq(shmring_strerror(-EPIPE), shmring_strerror(-EPROTO));
	cr_assert_str_neq(shmring_strerror(-EBUSY), shmring_strerror(-EPERM));
}

Test(api, strerror_int_min_is_safe)
{
	/* -INT_MIN overflows: must still describe it without undefined behaviour */
	const char *s = shmring_strerror(INT_MIN);
	cr_assert_not_null(s);
	cr_assert_gt(strlen(s), 0);
}

/* ======================================================================= */
/* wrap-around                                                             */
/* ======================================================================= */

static size_t wrap_len(uint64_t k)
{
	uint64_t x = k * 0x9e3779b97f4a7c15ull;
	x ^= x >> 29;
	switch (x % 8) {
	case 0: return 1000;                     /* max: forces fillers */
	case 1: return 0;
	case 2: return (size_t)(x >> 8) % 16;    /* tiny */
	case 3: return 1000 - (size_t)((x >> 8) % 16);
	default: return (size_t)((x >> 8) % 1001);
	}
}

Test(api, wraparound_many_varied_messages, .timeout = 60)
{
	const char *uri = t_ring_uri("wrap");
	struct shmring *c = t_create(uri, 4096, 1000);
	struct shmring *p = t_open(uri, SHMRING_PRODUCER);
	struct shmring *q = t_open(uri, SHMRING_CONSUMER);
	const uint64_t total = 300000;
	uint64_t ks = 0, kr = 0, rnd = 0x1234567;
	uint64_t bytes = 0;
	uint8_t buf[1000];
	struct shmring_msg m;

	while (kr < total) {
		/* producer: a few messages, until full */
		unsigned burst = 1 + (unsigned)(t_rand(&rnd) % 6);
		for (unsigned i = 0; i < burst && ks < total; i++) {
			size_t len = wrap_len(ks);
			int rc;
			if (ks % 3 == 0) {
				rc = shmring_reserve(p, len, &m, 0);
				if (rc == -EAGAIN)
					break;
				cr_assert_eq(rc, 0, "reserve #%llu: %s", (unsigned long long)ks,
					     shmring_strerror(rc));
				t_fill(m.data, len, ks);
				rc = shmring_commit(p, &m);
				cr_assert_eq(rc, 0, "commit: %s", shmring_strerror(rc));
			} else {
				t_fill(buf, len, ks);
				rc = shmring_send(p, buf, len, 0);
				if (rc == -EAGAIN)
					break;
				cr_assert_eq(rc, 0, "send #%llu: %s", (unsigned long long)ks,
					     shmring_strerror(rc));
			}
			bytes += len;
			ks++;
		}
		/* consumer: a few messages, until empty */
		burst = 1 + (unsigned)(t_rand(&rnd) % 6);
		for (unsigned i = 0; i < burst && kr < ks; i++) {
			size_t len = wrap_len(kr);
			if (kr % 5 == 0) {
				int rc = shmring_acquire(q, &m, 0);
				cr_assert_eq(rc, 0, "acquire #%llu: %s", (unsigned long long)kr,
					     shmring_strerror(rc));
				if (m.len != len || !t_check(m.data, len, kr))
					cr_assert_fail("message #%llu torn: len %zu want %zu",
						       (unsigned long long)kr, m.len, len);
				cr_assert_eq(shmring_release(q, &m), 0);
			} else {
				ssize_t n = shmring_recv(q, buf, sizeof(buf), 0);
				if (n != (ssize_t)len || !t_check(buf, len, kr))
					cr_assert_fail("message #%llu: got %zd want %zu, or torn",
						       (unsigned long long)kr, n, len);
			}
			kr++;
		}
		if (kr == ks && ks < total) {
			/* empty now: the ring says so too */
			ssize_t n = shmring_recv(q, buf, sizeof(buf), 0);
			if (n != -EAGAIN)
				cr_assert_fail("ring should be empty after #%llu: %zd",
					       (unsigned long long)kr, n);
		}
	}
	expect_empty(q);
	struct shmring_stats st = t_stats(c);
	cr_assert_eq(st.msgs_sent, total);
	cr_assert_eq(st.msgs_recv, total);
	cr_assert_eq(st.bytes_sent, bytes);
	cr_assert_eq(st.bytes_recv, bytes);
	cr_assert_eq(st.used, 0);
	shmring_close(p);
	shmring_close(q);
	shmring_close(c);
	unlink_ok(uri);
}

/* ======================================================================= */
/* <shmring/inline.h>: the versioned open                                  */
/* ======================================================================= */

static uint32_t inline_roles(struct shmring *r)
{
	return ((const struct shmring_inl *)(const void *)r)->fast;
}

Test(api, inline_open_of_another_layout_is_eproto, .timeout = 10)
{
	const char *name = t_ring_name("inl-layout");
	const int flags = SHMRING_CREATE | SHMRING_EXCL | SHMRING_PRODUCER | SHMRING_CONSUMER;
	struct shmring *r = (struct shmring *)&r;
	int rc = shmring_open_layout(name, flags, NULL, &r, SHMRING_LAYOUT_VERSION + 1);
	cr_assert_eq(rc, -EPROTO, "another layout version: %s", shmring_strerror(rc));
	cr_assert_null(r);
	rc = shmring_open_layout(name, flags, NULL, &r, 0);
	cr_assert_eq(rc, -EPROTO, "layout 0: %s", shmring_strerror(rc));
	/* refused before anything was made */
	rc = t_try_open(name, 0, NULL);
	cr_assert_eq(rc, -ENOENT, "a refused open created the ring: %s", shmring_strerror(rc));
	/* this build's version opens, and the SPSC roles are inline */
	cr_assert_eq(shmring_inl_open(name, flags, NULL, &r), 0);
	cr_assert_eq(inline_roles(r), SHMRING_PRODUCER | SHMRING_CONSUMER);
	cr_assert_eq(((const struct shmring_inl *)(const void *)r)->layout, SHMRING_LAYOUT_VERSION);
	cr_assert_eq(shmring_inl_send(r, "abc", 3, 0), 0);
	char buf[8];
	cr_assert_eq(shmring_inl_recv(r, buf, sizeof(buf), 0), 3);
	cr_assert_eq(memcmp(buf, "abc", 3), 0);
	shmring_close(r);
}

/* Only an SPSC ring in a segment opened with shmring_inl_open() takes the
 * inline fast path; every other handle gets 0 and the library's way, with
 * the same results through the inline functions. */
Test(api, inline_fast_path_only_on_spsc_segments, .timeout = 10)
{
	const char *name = t_ring_name("inl-kinds");
	struct shmring *c = t_create(name, 4096, 256);
	struct shmring *p = t_open(name, SHMRING_PRODUCER);
	cr_assert_eq(inline_roles(p), 0, "plain shmring_open()");
	cr_assert_eq(inline_roles(c), 0);
	struct shmring *q;
	cr_assert_eq(shmring_inl_open(name, SHMRING_CONSUMER, NULL, &q), 0);
	cr_assert_eq(inline_roles(q), SHMRING_CONSUMER);
	cr_assert_eq(shmring_inl_send(p, "xy", 2, 0), 0, "inline call, library handle");
	char buf[4];
	cr_assert_eq(shmring_inl_recv(q, buf, sizeof(buf), 0), 2);
	cr_assert_eq(shmring_inl_recv(q, buf, sizeof(buf), 0), -EAGAIN);
	cr_assert_eq(shmring_inl_send(q, "xy", 2, 0), -EPERM, "a consumer's send");
	cr_assert_eq(shmring_inl_recv(NULL, buf, sizeof(buf), 0), -EINVAL);

	/* MPMC and pipe: 0, and the inline calls work through the library */
	const char *m = t_ring_name("inl-mpmc");
	struct shmring_opts o = { .kind = SHMRING_MPMC, .capacity = 4096 };
	struct shmring *x;
	cr_assert_eq(shmring_inl_open(m, SHMRING_CREATE | SHMRING_EXCL | SHMRING_PRODUCER |
				      SHMRING_CONSUMER, &o, &x), 0);
	cr_assert_eq(inline_roles(x), 0, "MPMC");
	cr_assert_eq(shmring_inl_send(x, "mp", 2, 0), 0);
	cr_assert_eq(shmring_inl_recv(x, buf, sizeof(buf), 0), 2);
	shmring_close(x);
	shmring_close(p);
	shmring_close(q);
	shmring_close(c);

	/* a forked child's inherited handle: no role, no inline path */
	cr_assert_eq(shmring_inl_open(name, SHMRING_PRODUCER, NULL, &p), 0);
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0)
		_exit(inline_roles(p) == 0 && shmring_inl_send(p, "k", 1, 0) == -EPERM ? 0 : 1);
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child's handle took the inline way");
	shmring_close(p);
}
