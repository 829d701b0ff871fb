/* SPDX-License-Identifier: MIT */
/*
 * The examples that double as benchmarks (docs/examples/market_data.c and
 * video_frames.c, both on broadcast rings), run briefly: they must finish,
 * succeed, and print what they promise.  No timing is asserted -- the numbers are theirs to print.
 * docs/examples/event_loop.c, the epoll gateway, runs until it is sent
 * SIGTERM: it must then stop cleanly, having received every message.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <shmring.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *example(const char *name)
{
	static char p[8][512];
	static unsigned k;
	const char *b = getenv("SHMRING_TEST_BUILD");
	char *out = p[k++ % 8];

	snprintf(out, sizeof(p[0]), "%s/%s", b && *b ? b : "build", name);
	return out;
}

/* What a child printed so far (stdout and stderr together). */
struct output {
	char *buf;              /* NUL-terminated */
	size_t len, cap;
};

/* Start argv with its stdout and stderr on a pipe; *fd the read end. */
static pid_t start(char *const argv[], int *fd)
{
	int p[2];
	pid_t pid;

	cr_assert_eq(pipe(p), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		dup2(p[1], STDOUT_FILENO);
		dup2(p[1], STDERR_FILENO);
		close(p[0]);
		close(p[1]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	*fd = p[0];
	return pid;
}

/* Read what is there (waiting at most timeout_ms, -1: forever) into *o:
 * 1 read something (or interrupted), 0 nothing came in time, -1 end of
 * file. */
static int read_some(int fd, struct output *o, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	if (!o->buf) {
		o->cap = 4096;
		o->buf = calloc(1, o->cap);
		cr_assert_not_null(o->buf);
	}
	if (o->len + 1024 > o->cap) {
		o->cap *= 2;
		o->buf = realloc(o->buf, o->cap);
		cr_assert_not_null(o->buf);
	}
	int ready = poll(&pfd, 1, timeout_ms);
	if (ready < 0 && errno == EINTR)
		return 1;
	if (ready <= 0)
		return ready == 0 ? 0 : -1;
	ssize_t n = read(fd, o->buf + o->len, o->cap - o->len - 1);
	if (n < 0 && errno == EINTR)
		return 1;
	if (n <= 0)
		return -1;
	o->len += (size_t)n;
	o->buf[o->len] = '\0';
	return 1;
}

/* Wait for the child to exit: its status, 128 + signal if killed. */
static int finish(pid_t pid)
{
	int st;

	cr_assert_eq(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Run argv, return its exit status (128 + signal if killed); its stdout
 * and stderr together in *out (malloc'd, NUL-terminated). */
static int run(char *const argv[], char **out)
{
	struct output o = { 0 };
	int fd;
	pid_t pid = start(argv, &fd);

	while (read_some(fd, &o, -1) > 0)
		;
	close(fd);
	*out = o.buf;
	return finish(pid);
}

Test(examples, market_data_delivers_every_quote, .timeout = 60)
{
	char *argv[] = { (char *)example("market_data"), "--strategies", "2", "--quotes", "20000",
			 "--rate", "100000", NULL };
	char *out;
	int rc = run(argv, &out);

	cr_expect_eq(rc, 0, "market_data exited %d:\n%s", rc, out);
	cr_expect_not_null(strstr(out, "strategy 0: 20000 quotes, tick-to-strategy ns: p50"), "%s", out);
	cr_expect_not_null(strstr(out, "strategy 1: 20000 quotes"), "%s", out);
	cr_expect_not_null(strstr(out, "p99.99"), "%s", out);
	cr_expect_not_null(strstr(out, "(one broadcast ring)"), "%s", out);
	cr_expect_null(strstr(out, "FAILED"), "%s", out);
	free(out);
}

/* Run argv: it must exit 0, print every string of want (NULL-ended) and
 * never FAILED. */
static void expect_ok(char *const argv[], const char *const want[])
{
	char *out;
	int rc = run(argv, &out);

	cr_expect_eq(rc, 0, "%s exited %d:\n%s", argv[0], rc, out);
	for (unsigned i = 0; want[i]; i++)
		cr_expect_not_null(strstr(out, want[i]), "want \"%s\":\n%s", want[i], out);
	cr_expect_null(strstr(out, "FAILED"), "%s", out);
	free(out);
}

/* the comparison: one SPSC ring per strategy, every quote sent to each */
Test(examples, market_data_spsc_fanout, .timeout = 60)
{
	char *argv[] = { (char *)example("market_data"), "--strategies", "3", "--quotes", "20000",
			 "--rate", "0", "--spsc", NULL };
	const char *want[] = { "strategy 2: 20000 quotes", "(one SPSC ring each)", NULL };
	expect_ok(argv, want);
}

Test(examples, market_data_busy_poll_unpaced, .timeout = 60)
{
	char *argv[] = { (char *)example("market_data"), "--strategies", "1", "--quotes", "20000",
			 "--rate", "0", "--spin", NULL };
	char *out;
	int rc = run(argv, &out);

	cr_expect_eq(rc, 0, "market_data exited %d:\n%s", rc, out);
	cr_expect_not_null(strstr(out, "strategy 0: 20000 quotes"), "%s", out);
	free(out);
}

Test(examples, video_frames_1080p_and_4k_in_place, .timeout = 120)
{
	char *argv[] = { (char *)example("video_frames"), "--format", "both", "--frames", "12", NULL };
	char *out;
	int rc = run(argv, &out);

	cr_expect_eq(rc, 0, "video_frames exited %d:\n%s", rc, out);
	cr_expect_not_null(strstr(out, "1080p 1920x1080 RGBA"), "%s", out);
	cr_expect_not_null(strstr(out, "4k    3840x2160 RGBA"), "%s", out);
	cr_expect_not_null(strstr(out, "12 frames in"), "%s", out);
	cr_expect_not_null(strstr(out, "fps"), "%s", out);
	cr_expect_not_null(strstr(out, "GB/s"), "%s", out);
	cr_expect_not_null(strstr(out, "CPU camera"), "%s", out);
	cr_expect_null(strstr(out, "FAILED"), "%s", out);
	free(out);
}

/* one frame written, read in place by three viewers */
Test(examples, video_frames_three_viewers, .timeout = 120)
{
	char *argv[] = { (char *)example("video_frames"), "--format", "1080p", "--frames", "20",
			 "--viewers", "3", NULL };
	const char *want[] = { "20 frames in", "to 3 viewers", NULL };
	expect_ok(argv, want);
}

Test(examples, bad_arguments_exit_2, .timeout = 30)
{
	char *bad[][4] = {
		{ (char *)example("market_data"), "--strategies", "0", NULL },
		{ (char *)example("market_data"), "--quotes", NULL, NULL },
		{ (char *)example("market_data"), "--bogus", NULL, NULL },
		{ (char *)example("video_frames"), "--format", "8k", NULL },
		{ (char *)example("video_frames"), "--frames", "-3", NULL },
		{ (char *)example("video_frames"), "--fps", NULL, NULL },
		{ (char *)example("video_frames"), "--viewers", "9", NULL },
		{ (char *)example("event_loop"), "--rings", "65", NULL },
		{ (char *)example("event_loop"), "--produce", "-1", NULL },
		{ (char *)example("event_loop"), "--stats-ms", NULL, NULL },
		{ (char *)example("event_loop"), "--edge", "--bogus", NULL },
		{ (char *)example("event_loop"), "--backend", "tcp", NULL },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *out;
		int rc = run(bad[i], &out);
		cr_expect_eq(rc, 2, "%s %s: exit %d:\n%s", bad[i][0], bad[i][1], rc, out);
		cr_expect_not_null(strstr(out, "usage:"), "%s", out);
		free(out);
	}
}

/* ---- event_loop: the epoll gateway ------------------------------------- */

/* The gateway's rings on a backend: their URIs and the files behind them. */
struct el_backend {
	const char *name;       /* --backend */
	const char *uri;        /* printf format: pid, ring */
	const char *path;
};

static const struct el_backend el_shm = { "shm", "shm:event-loop-%ld-%u",
					  "/dev/shm/event-loop-%ld-%u" };
static const struct el_backend el_mpmc = { "mpmc", "shm:event-loop-%ld-%u",
					   "/dev/shm/event-loop-%ld-%u" };
static const struct el_backend el_pipe = { "pipe", "pipe:/tmp/event-loop-%ld-%u",
					   "/tmp/event-loop-%ld-%u" };
static const struct el_backend el_mq = { "mq", "mq:event-loop-%ld-%u",
					 "/dev/mqueue/event-loop-%ld-%u" };

/*
 * Run the gateway on backend b with `rings` rings and the options in
 * opt[] (at most 6), read its output until every string of want[] is in
 * it (30 seconds at most), then send it SIGTERM, read the rest and
 * collect it.  Returns its exit status, its output in *out; checks that
 * it removed its rings.  A gateway that does not get there is killed,
 * and its rings removed.
 */
static int gateway(const struct el_backend *b, unsigned rings, const char *const opt[],
		   const char *const want[], char **out)
{
	char nrings[16];
	char *argv[16] = { (char *)example("event_loop"), "--backend", (char *)b->name,
			   "--rings", nrings, "--stats-ms", "50" };
	struct output o = { 0 };
	int fd, k = 7;

	snprintf(nrings, sizeof(nrings), "%u", rings);
	for (size_t i = 0; opt[i] && k < 14; i++)
		argv[k++] = (char *)opt[i];
	pid_t pid = start(argv, &fd);
	bool got = false;
	time_t end = time(NULL) + 30;

	while (!got && time(NULL) < end && read_some(fd, &o, 100) >= 0) {
		got = o.buf != NULL;
		for (size_t i = 0; got && want[i]; i++)
			got = strstr(o.buf, want[i]) != NULL;
	}
	kill(pid, got ? SIGTERM : SIGKILL);
	while (read_some(fd, &o, 30000) > 0)
		;
	close(fd);
	int rc = finish(pid);
	for (unsigned i = 0; i < rings; i++) {
		char name[96];
		snprintf(name, sizeof(name), b->path, (long)pid, i);
		if (got)
			cr_expect_neq(access(name, F_OK), 0, "%s is left", name);
		snprintf(name, sizeof(name), b->uri, (long)pid, i);
		(void)shmring_unlink(name);
	}
	*out = o.buf;
	cr_expect(got, "event_loop never printed what was awaited:\n%s", o.buf ? o.buf : "");
	return rc;
}

/* Producers that finish: every message of every ring, in order. */
static void gateway_delivers_all(const struct el_backend *b, const char *edge)
{
	const char *const opt[] = { "--produce", "20000", edge, NULL };
	const char *const want[] = { "all 4 rings ended", "stats: ", NULL };
	char *out;
	int rc = gateway(b, 4, opt, want, &out);

	cr_expect_eq(rc, 0, "event_loop exited %d:\n%s", rc, out);
	cr_expect_not_null(strstr(out, edge ? "edge-triggered" : "level-triggered"), "%s", out);
	for (unsigned i = 0; i < 4; i++) {
		char line[64];
		snprintf(line, sizeof(line), "ring %u: 20000 messages, in order, ended", i);
		cr_expect_not_null(strstr(out, line), "%s", out);
	}
	cr_expect_not_null(strstr(out, "total: 80000 messages on 4 rings, 0 out of order"), "%s",
			   out);
	cr_expect_not_null(strstr(out, "Terminated: stopping"), "%s", out);
	cr_expect_null(strstr(out, "FAILED"), "%s", out);
	free(out);
}

/* SIGTERM while the producers still send: they are stopped, and what
 * came is complete and in order. */
static void gateway_stops_mid_stream(const struct el_backend *b)
{
	const char *const opt[] = { "--produce", "0", NULL };
	const char *const want[] = { "stats: ", NULL };
	char *out;
	int rc = gateway(b, 4, opt, want, &out);

	cr_expect_eq(rc, 0, "event_loop exited %d:\n%s", rc, out);
	cr_expect_not_null(strstr(out, "0/4 rings ended"), "%s", out);
	cr_expect_not_null(strstr(out, "on 4 rings, 0 out of order or damaged"), "%s", out);
	cr_expect_null(strstr(out, "FAILED"), "%s", out);
	free(out);
}

Test(examples, event_loop_level_triggered_receives_all, .timeout = 90)
{
	gateway_delivers_all(&el_shm, NULL);
}

Test(examples, event_loop_edge_triggered_receives_all, .timeout = 90)
{
	gateway_delivers_all(&el_shm, "--edge");
}

Test(examples, event_loop_sigterm_mid_stream_stops_cleanly, .timeout = 90)
{
	gateway_stops_mid_stream(&el_shm);
}

Test(examples, event_loop_mpmc_rings, .timeout = 90)
{
	gateway_delivers_all(&el_mpmc, "--edge");
	gateway_stops_mid_stream(&el_mpmc);
}

Test(examples, event_loop_pipe_rings, .timeout = 90)
{
	gateway_delivers_all(&el_pipe, NULL);
	gateway_stops_mid_stream(&el_pipe);
}

Test(examples, event_loop_mq_rings, .timeout = 90)
{
	gateway_delivers_all(&el_mq, "--edge");
	gateway_stops_mid_stream(&el_mq);
}
