/* SPDX-License-Identifier: MIT */
/*
 * Suite `fallback`: what only the pipe: and mq: backends have — their
 * faults and their limits: a writer killed in the middle of a frame, a
 * reader gone (SIGPIPE), FIFOs that are not ours, frames larger than the
 * pipe, producers and consumers the backend refuses, the system limits of
 * POSIX queues, and the end of stream seen by every consumer.  The common
 * behaviour of every backend is in test_conformance.c.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "shmring.h"

#define MS (1000ll * 1000)

/* ---- names, removed after every test (t_cleanup), also one that failed -- */

static const char *pipe_uri(const char *tag)
{
	char u[300];
	snprintf(u, sizeof(u), "pipe:/tmp/%s.fifo", t_name(tag));
	return t_remember(u);
}

static const char *mq_uri(const char *tag)
{
	char u[300];
	snprintf(u, sizeof(u), "mq:%s", t_name(tag));
	return t_remember(u);
}

TestSuite(fallback, .fini = t_cleanup);

/* ---- helpers ----------------------------------------------------------- */

static void expect_rc(long got, long want, const char *what)
{
	cr_assert_eq(got, want, "%s: got %ld (%s), want %ld (%s)", what, got,
		     got < 0 ? shmring_strerror((int)got) : "ok", want,
		     want < 0 ? shmring_strerror((int)want) : "ok");
}

static uint8_t big[2][1 << 20];

static void send_key(struct shmring *r, size_t len, uint64_t key, int64_t timeout)
{
	t_fill(big[0], len, key);
	expect_rc(shmring_send(r, big[0], len, timeout), 0, "send");
}

static void recv_key(struct shmring *r, size_t len, uint64_t key, int64_t timeout)
{
	ssize_t n = shmring_recv(r, big[1], sizeof(big[1]), timeout);
	cr_assert_eq(n, (ssize_t)len, "recv key %llu: got %zd (%s), want %zu",
		     (unsigned long long)key, n, n < 0 ? shmring_strerror((int)n) : "ok", len);
	cr_assert(t_check(big[1], len, key), "recv key %llu: content differs",
		  (unsigned long long)key);
}

struct box {
	char uri[320];
	struct shmring_opts o;
	_Atomic int ready;
	_Atomic int rc[4];
	uint8_t frame[200000];
	size_t frame_len, cut;
	uint64_t n;
};

static struct box *box_new(const char *uri, const struct shmring_opts *o)
{
	struct box *x = t_shared(sizeof(*x));
	memset(x, 0, sizeof(*x));
	snprintf(x->uri, sizeof(x->uri), "%s", uri);
	if (o)
		x->o = *o;
	return x;
}

static void wait_ready(struct box *x, int v)
{
	for (int i = 0; i < 20000 && atomic_load(&x->ready) < v; i++)
		t_sleep_ms(1);
	cr_assert_geq(atomic_load(&x->ready), v, "a child never got ready");
}

/* ======================================================================= */
/* pipe: a writer killed in the middle of a frame                           */
/* ======================================================================= */

/*
 * The bytes of a genuine frame, as a producer puts them into the FIFO: a
 * producer of the library sends one message to a FIFO whose only reader is
 * this test's raw descriptor.  The test never needs to know the format.
 */
static size_t capture_frame(uint8_t *out, size_t cap, size_t len, uint64_t key,
			    const struct shmring_opts *o)
{
	const char *uri = pipe_uri("capture");
	struct shmring_opts co = *o;
	co.capacity = 1 << 20;          /* the whole frame fits at once */
	struct shmring *c = t_open_opts(uri, SHMRING_CREATE | SHMRING_EXCL, &co);
	int rd = open(uri + 5, O_RDONLY | O_NONBLOCK);
	cr_assert_geq(rd, 0);
	struct shmring *p = t_open_opts(uri, SHMRING_PRODUCER, &co);
	send_key(p, len, key, 0);
	size_t got = 0;
	for (;;) {
		ssize_t n = read(rd, out + got, cap - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	cr_assert_gt(got, len, "a frame is longer than its payload");
	shmring_close(p);
	shmring_close(c);
	close(rd);
	expect_rc(shmring_unlink(uri), 0, "unlink");
	return got;
}

/* Writes the first x->cut bytes of x->frame into the FIFO, and dies. */
static int half_writer(void *arg)
{
	struct box *x = arg;
	int fd = open(x->uri + 5, O_WRONLY | O_NONBLOCK);
	if (fd < 0)
		return 10;
	size_t off = 0;
	while (off < x->cut) {
		ssize_t n = write(fd, x->frame + off, x->cut - off);
		if (n < 0 && errno != EINTR && errno != EAGAIN)
			return 11;
		if (n > 0)
			off += (size_t)n;
	}
	raise(SIGKILL);
	return 12;
}

Test(fallback, pipe_half_frame_then_end_of_file_is_never_delivered, .timeout = 30)
{
	struct shmring_opts o = { .capacity = 65536, .max_msg = 4000 };
	const char *uri = pipe_uri("halfeof");
	struct box *x = box_new(uri, &o);
	x->frame_len = capture_frame(x->frame, sizeof(x->frame), 2000, 5, &o);
	x->cut = x->frame_len / 2;
	struct shmring *c = t_open_opts(uri, SHMRING_CREATE | SHMRING_EXCL, &o);
	struct shmring *q = t_open_opts(uri, SHMRING_CONSUMER, &o);
	cr_assert_eq(t_wait(t_spawn(half_writer, x)), 128 + SIGKILL);
	/* its only writer died: end of file, with half a frame before it */
	uint8_t buf[4000];
	expect_rc(shmring_recv(q, buf, sizeof(buf), 2000 * MS), -EPIPE, "recv after the writer died");
	cr_assert_eq(t_stats(q).msgs_dropped, 1, "the cut frame is counted");
	cr_assert_eq(t_stats(q).msgs_recv, 0);

	/* the same cut, whole-frame writes by the library around it */
	shmring_close(q);
	q = t_open_opts(uri, SHMRING_CONSUMER, &o);
	struct shmring *p = t_open_opts(uri, SHMRING_PRODUCER, &o);
	send_key(p, 100, 1, 0);
	cr_assert_eq(t_wait(t_spawn(half_writer, x)), 128 + SIGKILL);
	for (uint64_t k = 2; k < 6; k++)
		send_key(p, 1500, k, 0);
	expect_rc(shmring_shutdown(p), 0, "shutdown");
	recv_key(q, 100, 1, 0);
	for (uint64_t k = 2; k < 6; k++)
		recv_key(q, 1500, k, 0);
	expect_rc(shmring_recv(q, buf, sizeof(buf), 0), -EPIPE, "then the end");
	cr_assert_geq(t_stats(q).msgs_dropped, 1, "the cut frame is counted");
	shmring_close(p);
	shmring_close(q);
	shmring_close(c);
	t_unshared(x, sizeof(*x));
}

Test(fallback, pipe_large_frame_cut_by_a_killed_writer_is_skipped, .timeout = 30)
{
	/* frames above PIPE_BUF: one producer, whose writes can be cut */
	struct shmring_opts o = { .capacity = 1 << 20, .max_msg = 65536 };
	const char *uri = pipe_uri("halfbig");
	struct box *x = box_new(uri, &o);
	x->frame_len = capture_frame(x->frame, sizeof(x->frame), 30000, 9, &o);
	x->cut = 10000;
	struct shmring *c = t_open_opts(uri, SHMRING_CREATE | SHMRING_EXCL, &o);
	struct shmring *q = t_open_opts(uri, SHMRING_CONSUMER, &o);
	struct shmring *p = t_open_opts(uri, SHMRING_PRODUCER, &o);
	cr_assert_eq(t_wait(t_spawn(half_writer, x)), 128 + SIGKILL);
	for (uint64_t k = 1; k < 4; k++)
		send_key(p, 20000, k, 0);
	expect_rc(shmring_shutdown(p), 0, "shutdown");
	for (uint64_t k = 1; k < 4; k++)
		recv_key(q, 20000, k, 2000 * MS);
	uint8_t buf[16];
	expect_rc(shmring_recv(q, buf, sizeof(buf), 0), -EPIPE, "then the end");
	cr_assert_geq(t_stats(q).msgs_dropped, 1);
	shmring_close(p);
	shmring_close(q);
	shmring_close(c);
	t_unshared(x, sizeof(*x));
}

Test(fallback, pipe_new_consumer_starts_at_the_next_whole_frame, .timeout = 30)
{
	/* a consumer that read half a frame and died: the next one must
	 * neither deliver the other half nor lose the frames after it */
	struct shmring_opts o = { .capacity = 65536, .max_msg = 4000 };
	const char *uri = pipe_uri("resync");
	struct shmring *c = t_open_opts(uri, SHMRING_CREATE | SHMRING_EXCL, &o);
	struct shmring *q = t_open_opts(uri, SHMRING_CONSUMER, &o);
	struct shmring *p = t_open_opts(uri, SHMRING_PRODUCER, &o);
	int raw = open(uri + 5, O_RDONLY | O_NONBLOCK);  /* keeps the pipe's reader */
	cr_assert_geq(raw, 0);
	shmring_close(q);
	send_key(p, 3000, 1, 0);
	send_key(p, 3000, 2, 0);
	uint8_t half[1500];
	cr_assert_eq(read(raw, half, sizeof(half)), (ssize_t)sizeof(half));
	q = t_open_opts(uri, SHMRING_CONSUMER, &o);
	close(raw);
	recv_key(q, 3000, 2, 2000 * MS);
	cr_assert_eq(t_stats(q).msgs_dropped, 1, "one stretch skipped");
	shmring_close(p);
	shmring_close(q);
	shmring_close(c);
}

/* ======================================================================= */
/* pipe: a reader gone                                                     */
/* ======================================================================= */

/* A consumer in a process of its own (a forked producer must not inherit
 * the consumer's read end, or the reader would never be gone): it opens,
 * says so in x->ready, and leaves when x->rc[1] says so. */
static int lone_consumer(void *arg)
{
	struct box *x = arg;
	struct shmring *q = NULL;
	if (shmring_open(x->uri, SHMRING_CONSUMER, &x->o, &q))
		return 10;
	atomic_store(&x->ready, 1);
	while (!atomic_load(&x->rc[1]))
		t_sleep_ms(1);
	shmring_close(q);
	return 0;
}

static _Atomic int handler_calls;

static void on_sigpipe(int sig)
{
	(void)sig;
	atomic_fetch_add(&handler_calls, 1);
}

/* x->rc[0] chooses the caller's SIGPIPE setting: 0 default, 1 blocked with
 * one already pending (it must stay pending), 2 a handler (never called). */
static int epipe_child(void *arg)
{
	struct box *x = arg;
	int how = x->rc[0];
	sigset_t pipe_only;
	sigemptyset(&pipe_only);
	sigaddset(&pipe_only, SIGPIPE);
	if (how == 0)
		signal(SIGPIPE, SIG_DFL);
	if (how == 1) {
		signal(SIGPIPE, SIG_DFL);
		sigprocmask(SIG_BLOCK, &pipe_only, NULL);
		raise(SIGPIPE);
	}
	if (how == 2)
		signal(SIGPIPE, on_sigpipe);
	struct shmring *p = NULL;
	if (shmring_open(x->uri, SHMRING_PRODUCER, &x->o, &p))
		return 10;
	uint8_t buf[100] = { 0 };
	if (shmring_send(p, buf, sizeof(buf), 0))
		return 11;
	atomic_store(&x->ready, 2);
	while (atomic_load(&x->ready) != 3)
		t_sleep_ms(1);
	/* the consumer is gone: no end of the stream, the frames wait in the
	 * pipe for the next consumer until it is full */
	if (shmring_send(p, buf, sizeof(buf), SHMRING_FOREVER) != 0)
		return 12;
	struct shmring_msg m;
	if (shmring_reserve(p, 10, &m, 0) != 0 || shmring_commit(p, &m) != 0)
		return 14;
	struct iovec v = { buf, 10 };
	if (shmring_send_batch(p, &v, 1, 0) != 1)
		return 15;
	int rc;
	for (int i = 0; i < 10000 && (rc = shmring_send(p, buf, sizeof(buf), 0)) == 0; i++)
		;
	if (rc != -EAGAIN || shmring_send(p, buf, sizeof(buf), 20 * MS) != -ETIMEDOUT)
		return 13;
	if (shmring_shutdown(p) != 0)
		return 16;
	shmring_close(p);
	if (how == 1) {
		sigset_t pend;
		sigpending(&pend);
		if (!sigismember(&pend, SIGPIPE))
			return 17;      /* the caller's own pending signal was taken */
	}
	if (how == 2 && atomic_load(&handler_calls) != 0)
		return 18;
	return 0;
}

Test(fallback, pipe_reader_gone_is_no_end_and_never_sigpipe, .timeout = 30)
{
	struct shmring_opts o = { .capacity = 65536, .max_msg = 1000 };
	for (int how = 0; how < 3; how++) {
		const char *uri = pipe_uri("epipe");
		struct shmring *c = t_open_opts(uri, SHMRING_CREATE | SHMRING_EXCL, &o);
		struct box *x = box_new(uri, &o);
		x->rc[0] = how;
		pid_t cons = t_spawn(lone_consumer, x);
		wait_ready(x, 1);
		pid_t pid = t_spawn(epipe_child, x);
		wait_ready(x, 2);
		atomic_store(&x->rc[1], 1);
		cr_assert_eq(t_wait(cons), 0, "consumer");
		atomic_store(&x->ready, 3);
		int ex = t_wait(pid);
		cr_assert_eq(ex, 0, "SIGPIPE setting %d: the producer died or erred (%d)", how, ex);
		/* the pipe's bytes went with the last process that had it open;
		 * the end of the stream stays: a late consumer never hangs */
		struct shmring *q = t_open_opts(uri, SHMRING_CONSUMER, &o);
		uint8_t buf[100];
		expect_rc(shmring_recv(q, buf, sizeof(buf), SHMRING_FOREVER), -EPIPE, "late consumer");
		shmring_close(q);
		shmring_close(c);
		t_unshared(x, sizeof(*x));
	}
}

static int pending_big_frame(void *arg)
{
	struct box *x = arg;
	struct shmring *p = NULL;
	if (shmring_open(x->uri, SHMRING_PRODUCER, &x->o, &p))
		return 10;
	t_fill(big[0], 1 << 20, 1);
	/* larger than the pipe: accepted with its rest waiting in the handle */
	if (shmring_send(p, big[0], 1 << 20, 0))
		return 11;
	atomic_store(&x->ready, 2);
	while (atomic_load(&x->ready) != 3)
		t_sleep_ms(1);
	/* the consumer is gone, the rest of the frame still waits */
	if (shmring_send(p, big[0], 10, 100 * MS) != -ETIMEDOUT)
		return 12;
	uint64_t t0 = t_now_ns();
	shmring_close(p);
	return t_now_ns() - t0 < 100 * MS ? 0 : 13;
}

Test(fallback, pipe_reader_gone_with_a_frame_half_sent, .timeout = 30)
{
	struct shmring_opts o = { .capacity = 65536, .max_msg = 1 << 20 };
	const char *uri = pipe_uri("pendgone");
	struct shmring *c = t_open_opts(uri, SHMRING_CREATE | SHMRING_EXCL, &o);
	struct box *x = box_new(uri, &o);
	pid_t cons = t_spawn(lone_consumer, x);
	wait_ready(x, 1);
	pid_t pid = t_spawn(pending_big_frame, x);
	wait_ready(x, 2);
	atomic_store(&x->rc[1], 1);
	cr_assert_eq(t_wait(cons), 0, "consumer");
	atomic_store(&x->ready, 3);
	int ex = t_wait(pid);
	cr_assert_eq(ex, 0, "producer: %d", ex);
	shmring_close(c);
	t_unshared(x, sizeof(*x));
}

/* ======================================================================= */
/* pipe: roles, paths, streams                                             */
/* ======================================================================= */

Test(fallback, pipe_roles_by_frame_size, .timeout = 30)
{
	struct shmring_opts small = { .capacity = 65536, .max_msg = 4096 - 24 };
	struct shmring_opts large = { .capacity = 65536, .max_msg = 4096 - 23 };
	struct shmring_caps cp;

	/* frames that fit PIPE_BUF: several producers */
	const char *uri = pipe_uri("roles");
	struct shmring *c = t_open_opts(uri, SHMRING_CREATE | SHMRING_EXCL, &small);
	struct shmring *q = t_open_opts(uri, SHMRING_CONSUMER, &small);
	struct shmring *p1 = t_open_opts(uri, SHMRING_PRODUCER, &small);
	struct shmring *p2 = t_open_opts(uri, SHMRING_PRODUCER, &small);
	expect_rc(shmring_caps(p1, &cp), 0, "caps");
	cr_assert_eq(cp.flags, SHMRING_CAP_BLOCKING | SHMRING_CAP_POLL, "a pipe is neither zero-copy nor MPMC");
	cr_assert_eq(cp.max_producers, 64);
	cr_assert_eq(cp.max_consumers, 1);
	cr_assert_eq(cp.max_msg, 4096 - 24);
	cr_assert_eq(cp.capacity, 65536);
	expect_rc(t_try_open(uri, SHMRING_CONSUMER, &small), -ENOTSUP, "a second consumer");
	/* a producer that wants larger frames is refused beside them */
	expect_rc(t_try_open(uri, SHMRING_PRODUCER, &large), -ENOTSUP, "a large-frame producer");
	struct shmring_stats st = t_stats(c);
	cr_assert_eq(st.producers, 2);
	cr_assert_eq(st.consumers, 1);
	send_key(p1, 4072, 1, 0);
	send_key(p2, 4072, 2, 0);
	recv_key(q, 4072, 1, 0);
	recv_key(q, 4072, 2, 0);
	shmring_close(p1);
	shmring_close(p2);
	shmring_close(q);
	shmring_close(c);

	/* frames above PIPE_BUF: one producer */
	uri = pipe_uri("roles1");
	c = t_open_opts(uri, SHMRING_CREATE | SHMRING_EXCL, &large);
	q = t_open_opts(uri, SHMRING_CONSUMER, &large);
	p1 = t_open_opts(uri, SHMRING_PRODUCER, &large);
	expect_rc(shmring_caps(p1, &cp), 0, "caps");
	cr_assert_eq(cp.max_producers, 1);
	expect_rc(t_try_open(uri, SHMRING_PRODUCER, &large), -ENOTSUP, "a second producer");
	expect_rc(t_try_open(uri, SHMRING_PRODUCER, &small), -ENOTSUP, "a small-frame producer");
	shmring_close(p1);
	/* its role is free again once it is closed */
	p1 = t_open_opts(uri, SHMRING_PRODUCER, &large);
	shmring_close(p1);
	shmring_close(q);
	shmring_close(c);

	/* a pipe has one consumer: no MPMC kind */
	struct shmring_opts mpmc = { .kind = SHMRING_MPMC };
	expect_rc(t_try_open(pipe_uri("mpmc"), SHMRING_CREATE, &mpmc), -ENOTSUP, "kind MPMC");
}

Test(fallback, pipe_paths_that_are_not_fifos_are_left_alone, .timeout = 30)
{
	char dir[] = "/tmp/shmring-fb-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char path[256], uri[300];
	struct shmring *r = NULL;

	/* a regular file */
	snprintf(path, sizeof(path), "%s/notes.txt", dir);
	snprintf(uri, sizeof(uri), "pipe:%s", path);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("not a fifo\n", f);
	fclose(f);
	expect_rc(t_try_open(uri, SHMRING_CONSUMER, NULL), -EPROTO, "a regular file");
	expect_rc(t_try_open(uri, SHMRING_CREATE | SHMRING_PRODUCER, NULL), -EPROTO, "with CREATE");
	expect_rc(t_try_open(uri, SHMRING_CREATE | SHMRING_EXCL, NULL), -EEXIST, "with EXCL");
	expect_rc(shmring_unlink(uri), -EPROTO, "unlink of a regular file");
	struct stat st;
	cr_assert_eq(stat(path, &st), 0, "the file is still there");
	cr_assert_eq(st.st_size, 11, "and untouched");

	/* a symbolic link, to a FIFO or to a file */
	char fifo[256], link[256], luri[300];
	snprintf(fifo, sizeof(fifo), "%s/real.fifo", dir);
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	snprintf(link, sizeof(link), "%s/link.fifo", dir);
	cr_assert_eq(symlink(fifo, link), 0);
	snprintf(luri, sizeof(luri), "pipe:%s", link);
	expect_rc(t_try_open(luri, SHMRING_CONSUMER, NULL), -EACCES, "a symlink to a FIFO");
	expect_rc(t_try_open(luri, SHMRING_CREATE | SHMRING_PRODUCER, NULL), -EACCES, "with CREATE");
	expect_rc(shmring_unlink(luri), -EACCES, "unlink does not follow it");
	cr_assert_eq(lstat(fifo, &st), 0, "the FIFO is still there");

	/* a directory */
	snprintf(uri, sizeof(uri), "pipe:%s", dir);
	expect_rc(t_try_open(uri, SHMRING_CONSUMER, NULL), -EISDIR, "a directory");
	expect_rc(shmring_unlink(uri), -EISDIR, "unlink of a directory");

	/* missing */
	snprintf(uri, sizeof(uri), "pipe:%s/none/x.fifo", dir);
	expect_rc(t_try_open(uri, SHMRING_CREATE, NULL), -ENOENT, "a missing directory");

	/* the mode is exact, whatever the umask */
	snprintf(path, sizeof(path), "%s/mode.fifo", dir);
	snprintf(uri, sizeof(uri), "pipe:%s", path);
	mode_t old = umask(0077);
	struct shmring_opts o = { .mode = 0640 };
	cr_assert_eq(shmring_open(uri, SHMRING_CREATE | SHMRING_EXCL, &o, &r), 0);
	umask(old);
	shmring_close(r);
	cr_assert_eq(lstat(path, &st), 0);
	cr_assert(S_ISFIFO(st.st_mode));
	cr_assert_eq(st.st_mode & 07777, 0640, "mode %o", st.st_mode & 07777);
	expect_rc(shmring_unlink(uri), 0, "unlink");
	cr_assert_eq(shmring_open(uri, SHMRING_CREATE | SHMRING_EXCL, NULL, &r), 0);
	shmring_close(r);
	cr_assert_eq(lstat(path, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600, "default mode %o", st.st_mode & 07777);
	expect_rc(shmring_unlink(uri), 0, "unlink");

	unlink(link);
	unlink(fifo);
	snprintf(path, sizeof(path), "%s/notes.txt", dir);
	unlink(path);
	cr_assert_eq(rmdir(dir), 0, "nothing else was left in %s", dir);
}

/* A FIFO's name is removed through its directory's descriptor: not in a
 * directory that others may write without the sticky bit (anybody could
 * swap the name between the check and the unlink), nor through a symlinked
 * directory. */
Test(fallback, pipe_unlink_refuses_directories_others_can_rename_in, .timeout = 30)
{
	char dir[] = "/tmp/shmring-fbww-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char path[256], uri[300], link[256], luri[300];
	snprintf(path, sizeof(path), "%s/x.fifo", dir);
	snprintf(uri, sizeof(uri), "pipe:%s", path);
	cr_assert_eq(mkfifo(path, 0600), 0);
	cr_assert_eq(chmod(dir, 0777), 0);
	int rc = shmring_unlink(uri);
	struct stat st;
	cr_assert_eq(rc, -EACCES, "world-writable, not sticky: %s", shmring_strerror(rc));
	cr_assert_eq(lstat(path, &st), 0, "the FIFO is still there");
	cr_assert_eq(chmod(dir, 01777), 0);
	expect_rc(shmring_unlink(uri), 0, "sticky");
	cr_assert_eq(lstat(path, &st), -1);

	cr_assert_eq(chmod(dir, 0700), 0);
	cr_assert_eq(mkfifo(path, 0600), 0);
	snprintf(link, sizeof(link), "%s.lnk", dir);
	cr_assert_eq(symlink(dir, link), 0);
	snprintf(luri, sizeof(luri), "pipe:%s/x.fifo", link);
	rc = shmring_unlink(luri);
	unlink(link);
	cr_assert_eq(rc, -EACCES, "through a symlinked directory: %s", shmring_strerror(rc));
	cr_assert_eq(lstat(path, &st), 0, "the FIFO is still there");
	expect_rc(shmring_unlink(uri), 0, "unlink");
	cr_assert_eq(rmdir(dir), 0);
}

/* A child that keeps the inherited write end of its parent's producer. */
static int holder(void *arg)
{
	struct box *x = arg;
	atomic_store(&x->ready, 1);
	while (atomic_load(&x->ready) != 2)
		t_sleep_ms(1);
	return 0;
}

Test(fallback, pipe_end_of_file_and_end_of_stream_frame, .timeout = 30)
{
	struct shmring_opts o = { .capacity = 65536, .max_msg = 1000 };
	uint8_t buf[1000];

	/* the last writer gone ends the stream */
	const char *uri = pipe_uri("eof");
	struct shmring *c = t_open_opts(uri, SHMRING_CREATE | SHMRING_EXCL, &o);
	struct shmring *q = t_open_opts(uri, SHMRING_CONSUMER, &o);
	struct shmring *p = t_open_opts(uri, SHMRING_PRODUCER, &o);
	send_key(p, 10, 1, 0);
	send_key(p, 20, 2, 0);
	shmring_close(p);
	recv_key(q, 10, 1, 0);
	recv_key(q, 20, 2, 0);
	expect_rc(shmring_recv(q, buf, sizeof(buf), SHMRING_FOREVER), -EPIPE, "end of file");
	cr_assert_eq(t_stats(q).shut_down, 1);
	shmring_close(q);

	/* a forked child keeps a write end: end of file never comes, the
	 * end-of-stream frame does */
	q = t_open_opts(uri, SHMRING_CONSUMER, &o);
	p = t_open_opts(uri, SHMRING_PRODUCER, &o);
	struct box *x = box_new(uri, &o);
	pid_t pid = t_spawn(holder, x);
	wait_ready(x, 1);
	send_key(p, 30, 3, 0);
	shmring_close(p);
	recv_key(q, 30, 3, 0);
	expect_rc(shmring_recv(q, buf, sizeof(buf), 100 * MS), -ETIMEDOUT, "no end of file");
	p = t_open_opts(uri, SHMRING_PRODUCER, &o);
	send_key(p, 40, 4, 0);
	expect_rc(shmring_shutdown(p), 0, "shutdown");
	shmring_close(p);
	recv_key(q, 40, 4, 0);
	expect_rc(shmring_recv(q, buf, sizeof(buf), SHMRING_FOREVER), -EPIPE, "end of stream");
	atomic_store(&x->ready, 2);
	cr_assert_eq(t_wait(pid), 0);
	shmring_close(q);
	shmring_close(c);
	t_unshared(x, sizeof(*x));
}

Test(fallback, pipe_producer_before_the_consumer, .timeout = 30)
{
	struct shmring_opts o = { .capacity = 65536, .max_msg = 1000 };
	const char *uri = pipe_uri("early");
	struct shmring *p = t_open_opts(uri, SHMRING_CREATE | SHMRING_EXCL | SHMRING_PRODUCER, &o);
	/* nobody reads yet: the messages wait in the pipe */
	for (uint64_t k = 0; k < 5; k++)
		send_key(p, 100, k, 0);
	expect_rc(shmring_shutdown(p), 0, "shutdown");
	struct shmring *q = t_open_opts(uri, SHMRING_CONSUMER, &o);
	for (uint64_t k = 0; k < 5; k++)
		recv_key(q, 100, k, 0);
	uint8_t buf[100];
	expect_rc(shmring_recv(q, buf, sizeof(buf), 0), -EPIPE, "end");
	shmring_close(q);
	shmring_close(p);
}

/* Frames of 0 bytes to 1 MiB through a 64 KiB pipe, copied and in place,
 * with a consumer that sometimes pauses: frames larger than the pipe go in
 * pieces, and vmsplice'd pages must never be written again while the pipe
 * still holds them. */
#define LARGE_N 600

static size_t large_len(uint64_t i)
{
	static const size_t edge[] = { 0, 1, 4095, 4096, 4097, 16383, 16384, 16385,
				       65536, 100000, 1 << 20 };
	if (i % 7 == 0)
		return edge[i / 7 % (sizeof(edge) / sizeof(edge[0]))];
	return 16384 + (size_t)(i * 7919 % 50000);
}

static int large_producer(void *arg)
{
	struct box *x = arg;
	struct shmring *p = NULL;
	if (shmring_open(x->uri, SHMRING_PRODUCER, &x->o, &p))
		return 10;
	for (uint64_t i = 0; i < LARGE_N; i++) {
		size_t len = large_len(i);
		if (i % 2) {
			struct shmring_msg m;
			if (shmring_reserve(p, len, &m, SHMRING_FOREVER))
				return 11;
			t_fill(m.data, len, i);
			if (shmring_commit(p, &m))
				return 12;
		} else {
			t_fill(big[0], len, i);
			if (shmring_send(p, big[0], len, SHMRING_FOREVER))
				return 13;
			/* the caller may reuse its buffer at once */
			memset(big[0], 0xee, len);
		}
	}
	if (shmring_shutdown(p))
		return 14;
	shmring_close(p);
	return 0;
}

Test(fallback, pipe_frames_larger_than_the_pipe, .timeout = 60)
{
	struct shmring_opts o = { .capacity = 65536, .max_msg = 1 << 20 };
	const char *uri = pipe_uri("large");
	struct shmring *q = t_open_opts(uri, SHMRING_CREATE | SHMRING_EXCL | SHMRING_CONSUMER, &o);
	struct box *x = box_new(uri, &o);
	pid_t pid = t_spawn(large_producer, x);
	for (uint64_t i = 0; i < LARGE_N; i++) {
		size_t len = large_len(i);
		if (i % 50 == 3)
			t_sleep_ms(5);    /* the pipe runs full */
		if (i % 3) {
			recv_key(q, len, i, 5000 * MS);
		} else {
			struct shmring_msg m;
			expect_rc(shmring_acquire(q, &m, 5000 * MS), 0, "acquire");
			cr_assert_eq(m.len, len, "frame %llu", (unsigned long long)i);
			cr_assert(t_check(m.data, len, i), "frame %llu torn", (unsigned long long)i);
			expect_rc(shmring_release(q, &m), 0, "release");
		}
	}
	uint8_t buf[16];
	expect_rc(shmring_recv(q, buf, sizeof(buf), 5000 * MS), -EPIPE, "end");
	cr_assert_eq(t_wait(pid), 0, "producer");
	cr_assert_eq(t_stats(q).msgs_dropped, 0);
	shmring_close(q);
	t_unshared(x, sizeof(*x));
}

Test(fallback, pipe_shutdown_and_close_are_bounded_when_nobody_reads, .timeout = 30)
{
	struct shmring_opts o = { .capacity = 65536, .max_msg = 1 << 20 };
	const char *uri = pipe_uri("noread");
	struct shmring *q = t_open_opts(uri, SHMRING_CREATE | SHMRING_EXCL | SHMRING_CONSUMER, &o);
	struct shmring *p = t_open_opts(uri, SHMRING_PRODUCER, &o);
	/* a frame larger than the pipe: begun, it is written on while the
	 * consumer reads; after 1 s of a consumer that reads nothing the call
	 * returns and the rest waits in the handle */
	t_fill(big[0], 300000, 1);
	uint64_t t0 = t_now_ns();
	expect_rc(shmring_send(p, big[0], 300000, 0), 0, "send 300000 bytes");
	uint64_t dt = t_now_ns() - t0;
	cr_assert(dt >= 900 * MS && dt < 3000 * MS, "the frame was given up after %llu ms",
		  (unsigned long long)(dt / MS));
	/* nothing more goes while that rest waits */
	expect_rc(shmring_send(p, big[0], 10, 0), -EAGAIN, "send behind it");
	t0 = t_now_ns();
	expect_rc(shmring_send(p, big[0], 10, 50 * MS), -ETIMEDOUT, "send behind it, 50 ms");
	cr_assert_geq(t_now_ns() - t0, 50 * MS);
	t0 = t_now_ns();
	expect_rc(shmring_shutdown(p), -ETIMEDOUT, "shutdown on a pipe nobody reads");
	dt = t_now_ns() - t0;
	cr_assert(dt >= 900 * MS && dt < 3000 * MS, "shutdown gave up after %llu ms",
		  (unsigned long long)(dt / MS));
	t0 = t_now_ns();
	shmring_close(p);
	dt = t_now_ns() - t0;
	cr_assert_lt(dt, 3000 * MS, "close took %llu ms", (unsigned long long)(dt / MS));
	/* the cut frame is never delivered: the writer is gone */
	uint8_t buf[16];
	expect_rc(shmring_recv(q, buf, sizeof(buf), 1000 * MS), -EPIPE, "the end");
	cr_assert_eq(t_stats(q).msgs_dropped, 1);
	shmring_close(q);
}

/* ======================================================================= */
/* mq:                                                                     */
/* ======================================================================= */

static int mq_in_a_small_rlimit(void *arg)
{
	struct box *x = arg;
	struct rlimit rl = { 4096, 4096 };
	if (setrlimit(RLIMIT_MSGQUEUE, &rl))
		return 99;
	struct shmring *r = NULL;
	int rc = shmring_open(x->uri, SHMRING_CREATE | SHMRING_EXCL, &x->o, &r);
	if (rc == 0)
		shmring_close(r);
	return -rc;
}

Test(fallback, mq_system_limits_give_clear_errors, .timeout = 30)
{
	uint64_t msgsize_max = t_sysctl_u64("/proc/sys/fs/mqueue/msgsize_max", 8192);
	uint64_t msg_max = t_sysctl_u64("/proc/sys/fs/mqueue/msg_max", 10);
	struct shmring_caps cp;
	struct shmring *r = NULL;

	/* max_msg above fs.mqueue.msgsize_max */
	struct shmring_opts o = { .max_msg = (uint32_t)msgsize_max + 1,
				  .capacity = msgsize_max + 1 };
	const char *uri = mq_uri("limsize");
	int rc = shmring_open(uri, SHMRING_CREATE | SHMRING_EXCL, &o, &r);
	if (rc == 0) {
		/* CAP_SYS_RESOURCE goes past the sysctl: then it is exact */
		expect_rc(shmring_caps(r, &cp), 0, "caps");
		cr_assert_eq(cp.max_msg, msgsize_max + 1);
		shmring_close(r);
	} else {
		expect_rc(rc, -EMSGSIZE, "max_msg above fs.mqueue.msgsize_max");
	}
	/* a depth above fs.mqueue.msg_max */
	o = (struct shmring_opts){ .max_msg = 100, .capacity = 100 * (msg_max + 1) };
	uri = mq_uri("limdepth");
	rc = shmring_open(uri, SHMRING_CREATE | SHMRING_EXCL, &o, &r);
	if (rc == 0) {
		expect_rc(shmring_caps(r, &cp), 0, "caps");
		cr_assert_eq(cp.capacity, 100 * (msg_max + 1));
		shmring_close(r);
	} else {
		expect_rc(rc, -EINVAL, "depth above fs.mqueue.msg_max");
	}
	/* RLIMIT_MSGQUEUE */
	o = (struct shmring_opts){ .max_msg = 1000, .capacity = 10000 };
	uri = mq_uri("limrl");
	struct box *x = box_new(uri, &o);
	cr_assert_eq(t_wait(t_spawn(mq_in_a_small_rlimit, x)), EMFILE, "RLIMIT_MSGQUEUE: -EMFILE");
	t_unshared(x, sizeof(*x));
	/* all defaults: what the system allows */
	uri = mq_uri("limdef");
	cr_assert_eq(shmring_open(uri, SHMRING_CREATE | SHMRING_EXCL, NULL, &r), 0);
	expect_rc(shmring_caps(r, &cp), 0, "caps");
	uint64_t want = msgsize_max < 262144 ? msgsize_max : 262144;
	cr_assert_eq(cp.max_msg, want, "default max_msg %u", cp.max_msg);
	cr_assert_leq(cp.capacity / cp.max_msg, msg_max, "default depth");
	cr_assert_eq(cp.flags, SHMRING_CAP_MPMC | SHMRING_CAP_BLOCKING | SHMRING_CAP_PERSISTENT |
			       SHMRING_CAP_POLL);
	shmring_close(r);
	/* the kind is a hint: SPSC and MPMC both make a queue; others are invalid */
	o = (struct shmring_opts){ .kind = SHMRING_MPMC, .max_msg = 100, .capacity = 500 };
	expect_rc(t_try_open(mq_uri("kind"), SHMRING_CREATE | SHMRING_EXCL, &o), 0, "kind MPMC");
	o.kind = (enum shmring_kind)7;
	expect_rc(t_try_open(mq_uri("kind7"), SHMRING_CREATE | SHMRING_EXCL, &o), -EINVAL, "kind 7");
}

Test(fallback, mq_existing_queue_keeps_its_geometry, .timeout = 30)
{
	const char *uri = mq_uri("geom");
	struct shmring_opts o = { .max_msg = 100, .capacity = 500 };
	struct shmring *c = t_open_opts(uri, SHMRING_CREATE | SHMRING_EXCL, &o);
	struct shmring_opts other = { .max_msg = 200, .capacity = 2000 };
	struct shmring *q = t_open_opts(uri, SHMRING_CREATE | SHMRING_CONSUMER, &other);
	struct shmring *p = t_open_opts(uri, SHMRING_PRODUCER, NULL);
	struct shmring_caps cp;
	expect_rc(shmring_caps(q, &cp), 0, "caps");
	cr_assert_eq(cp.max_msg, 100);
	cr_assert_eq(cp.capacity, 500);
	struct shmring_stats st = t_stats(p);
	cr_assert_eq(st.kind, SHMRING_MPMC);
	cr_assert_eq(st.max_msg, 100);
	shmring_close(p);
	shmring_close(q);
	shmring_close(c);
}

Test(fallback, mq_end_of_stream_for_every_consumer_now_and_later, .timeout = 30)
{
	const char *uri = mq_uri("eos");
	struct shmring_opts o = { .max_msg = 100, .capacity = 500 };
	struct shmring *c = t_open_opts(uri, SHMRING_CREATE | SHMRING_EXCL, &o);
	struct shmring *q[3];
	for (int i = 0; i < 3; i++)
		q[i] = t_open_opts(uri, SHMRING_CONSUMER, NULL);
	struct shmring *p = t_open_opts(uri, SHMRING_PRODUCER, NULL);
	for (uint64_t k = 0; k < 5; k++)
		send_key(p, 50, k, 0);
	uint8_t buf[100];
	expect_rc(shmring_send(p, buf, 50, 0), -EAGAIN, "full");
	/* the end needs no room in a full queue */
	uint64_t t0 = t_now_ns();
	expect_rc(shmring_shutdown(p), 0, "shutdown on a full queue");
	cr_assert_lt(t_now_ns() - t0, 500 * MS, "the shutdown waited");
	cr_assert_eq(t_stats(c).shut_down, 1, "every handle sees it");
	/* everything sent before it is received, by someone, then the end */
	recv_key(q[0], 50, 0, 0);
	recv_key(q[1], 50, 1, 0);
	recv_key(q[0], 50, 2, 0);
	recv_key(q[2], 50, 3, 0);
	recv_key(q[1], 50, 4, 0);
	for (int i = 0; i < 3; i++) {
		expect_rc(shmring_recv(q[i], buf, sizeof(buf), SHMRING_FOREVER), -EPIPE, "end");
		expect_rc(shmring_recv(q[i], buf, sizeof(buf), 0), -EPIPE, "and again");
	}
	struct shmring *late = t_open_opts(uri, SHMRING_CONSUMER, NULL);
	expect_rc(shmring_recv(late, buf, sizeof(buf), 0), -EPIPE, "a consumer that comes later");
	struct shmring *p2 = t_open_opts(uri, SHMRING_PRODUCER, NULL);
	expect_rc(shmring_send(p2, buf, 10, 0), -EPIPE, "a producer that comes later");
	shmring_close(p2);
	shmring_close(late);
	for (int i = 0; i < 3; i++)
		shmring_close(q[i]);
	shmring_close(p);
	shmring_close(c);
	/* a ring made again under the name is a new stream */
	expect_rc(shmring_unlink(uri), 0, "unlink");
	c = t_open_opts(uri, SHMRING_CREATE | SHMRING_EXCL | SHMRING_PRODUCER | SHMRING_CONSUMER, &o);
	send_key(c, 20, 9, 0);
	recv_key(c, 20, 9, 0);
	cr_assert_eq(t_stats(c).shut_down, 0);
	shmring_close(c);
}

static int blocked_producer(void *arg)
{
	struct box *x = arg;
	struct shmring *p = NULL;
	if (shmring_open(x->uri, SHMRING_PRODUCER, NULL, &p))
		return 10;
	atomic_store(&x->ready, 1);
	uint8_t buf[10] = { 0 };
	int rc = shmring_send(p, buf, sizeof(buf), SHMRING_FOREVER);
	shmring_close(p);
	return rc == -EPIPE ? 0 : 11;
}

Test(fallback, mq_other_producers_learn_of_the_shutdown, .timeout = 30)
{
	const char *uri = mq_uri("others");
	struct shmring_opts o = { .max_msg = 100, .capacity = 300 };
	struct shmring *c = t_open_opts(uri, SHMRING_CREATE | SHMRING_EXCL, &o);
	struct shmring *a = t_open_opts(uri, SHMRING_PRODUCER, NULL);
	struct shmring *bb = t_open_opts(uri, SHMRING_PRODUCER, NULL);
	send_key(a, 10, 1, 0);
	send_key(bb, 10, 2, 0);
	send_key(a, 10, 3, 0);
	/* one asleep on the full queue, in another process */
	struct box *x = box_new(uri, NULL);
	pid_t pid = t_spawn(blocked_producer, x);
	wait_ready(x, 1);
	t_sleep_ms(50);
	expect_rc(shmring_shutdown(a), 0, "shutdown");
	cr_assert_eq(t_wait(pid), 0, "the sleeping producer was not told");
	t_sleep_ms(2);
	uint8_t buf[10];
	expect_rc(shmring_send(bb, buf, sizeof(buf), 0), -EPIPE, "another producer, later");
	shmring_close(bb);
	shmring_close(a);
	shmring_close(c);
	t_unshared(x, sizeof(*x));
}

static int close_inherited(void *arg)
{
	struct shmring *p = arg;
	/* the parent's handle, inherited: closing it writes nothing and
	 * unmaps nothing of ours */
	void *mine = malloc(1 << 20);
	if (!mine)
		return 10;
	memset(mine, 0x5a, 1 << 20);
	shmring_close(p);
	for (size_t i = 0; i < (1 << 20); i += 4096)
		if (((uint8_t *)mine)[i] != 0x5a)
			return 11;
	free(mine);
	return 0;
}

Test(fallback, pipe_forked_child_closing_its_copy_is_harmless, .timeout = 30)
{
	struct shmring_opts o = { .capacity = 1 << 20, .max_msg = 1 << 18 };
	const char *uri = pipe_uri("fork");
	struct shmring *q = t_open_opts(uri, SHMRING_CREATE | SHMRING_EXCL | SHMRING_CONSUMER, &o);
	struct shmring *p = t_open_opts(uri, SHMRING_PRODUCER, &o);
	for (uint64_t k = 0; k < 4; k++) {
		send_key(p, 100000, k, 0);      /* through the vmsplice pool */
		recv_key(q, 100000, k, 0);
	}
	cr_assert_eq(t_wait(t_spawn(close_inherited, p)), 0, "the child");
	for (uint64_t k = 4; k < 12; k++) {
		send_key(p, 100000, k, 0);
		recv_key(q, 100000, k, 0);
	}
	struct shmring_stats st = t_stats(p);
	cr_assert_eq(st.producers, 1);
	cr_assert_eq(st.consumers, 1);
	shmring_close(p);
	shmring_close(q);
}

Test(fallback, pipe_stats_count_roles_once, .timeout = 30)
{
	struct shmring_opts o = { .capacity = 65536, .max_msg = 1000 };
	const char *uri = pipe_uri("count");
	struct shmring *c = t_open_opts(uri, SHMRING_CREATE | SHMRING_EXCL, &o);
	struct shmring *both = t_open_opts(uri, SHMRING_PRODUCER | SHMRING_CONSUMER, &o);
	struct shmring *p = t_open_opts(uri, SHMRING_PRODUCER, &o);
	struct shmring *hs[] = { c, both, p };
	for (int i = 0; i < 3; i++) {
		struct shmring_stats st = t_stats(hs[i]);
		cr_assert_eq(st.producers, 2, "handle %d: %u producers", i, st.producers);
		cr_assert_eq(st.consumers, 1, "handle %d: %u consumers", i, st.consumers);
	}
	shmring_close(p);
	shmring_close(both);
	shmring_close(c);
}

static int batch_producer(void *arg)
{
	struct box *x = arg;
	struct shmring *p = NULL;
	if (shmring_open(x->uri, SHMRING_PRODUCER, &x->o, &p))
		return 10;
	static uint8_t data[64][300];
	struct iovec v[64];
	uint64_t seq = 0;
	while (seq < x->n) {
		unsigned k = 0;
		for (; k < 64 && seq + k < x->n; k++) {
			size_t len = (size_t)((seq + k) * 31 % 300);
			t_fill(data[k], len, seq + k);
			v[k] = (struct iovec){ data[k], len };
		}
		int rc = shmring_send_batch(p, v, k, 0);  /* never waits to begin */
		if (rc == -EAGAIN) {
			t_sleep_ms(1);
			continue;
		}
		if (rc <= 0)
			return 11;
		seq += (uint64_t)rc;
	}
	if (shmring_shutdown(p))
		return 12;
	shmring_close(p);
	return 0;
}

Test(fallback, pipe_batches_with_one_producer, .timeout = 60)
{
	/* frames may exceed PIPE_BUF: one producer, whose batches go in
	 * writes as large as the pipe has room for */
	struct shmring_opts o = { .capacity = 65536, .max_msg = 65536 };
	const char *uri = pipe_uri("batch1");
	struct shmring *q = t_open_opts(uri, SHMRING_CREATE | SHMRING_EXCL | SHMRING_CONSUMER, &o);
	struct box *x = box_new(uri, &o);
	x->n = 200000;
	pid_t pid = t_spawn(batch_producer, x);
	for (uint64_t i = 0; i < x->n; i++) {
		if (i % 20000 == 7)
			t_sleep_ms(3);    /* the pipe runs full */
		recv_key(q, (size_t)(i * 31 % 300), i, 5000 * MS);
	}
	uint8_t buf[16];
	expect_rc(shmring_recv(q, buf, sizeof(buf), 5000 * MS), -EPIPE, "end");
	cr_assert_eq(t_wait(pid), 0, "producer");
	cr_assert_eq(t_stats(q).msgs_dropped, 0);
	shmring_close(q);
	t_unshared(x, sizeof(*x));
}
