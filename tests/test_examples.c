/* SPDX-License-Identifier: MIT */
/*
 * The examples that double as benchmarks (docs/examples/market_data.c and
 * video_frames.c), run briefly: they must finish, succeed, and print what
 * they promise.  No timing is asserted -- the numbers are theirs to print.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
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

/* Run argv, return its exit status (128 + signal if killed); its stdout
 * and stderr together in *out (malloc'd, NUL-terminated). */
static int run(char *const argv[], char **out)
{
	int fd[2];
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	pid_t pid;
	int st;

	cr_assert_not_null(buf);
	cr_assert_eq(pipe(fd), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		dup2(fd[1], STDOUT_FILENO);
		dup2(fd[1], STDERR_FILENO);
		close(fd[0]);
		close(fd[1]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(fd[1]);
	for (;;) {
		if (len + 1024 > cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			cr_assert_not_null(buf);
		}
		ssize_t n = read(fd[0], buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	close(fd[0]);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	*out = buf;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
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
	cr_expect_null(strstr(out, "FAILED"), "%s", out);
	free(out);
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

Test(examples, bad_arguments_exit_2, .timeout = 30)
{
	char *bad[][4] = {
		{ (char *)example("market_data"), "--strategies", "0", NULL },
		{ (char *)example("market_data"), "--quotes", NULL, NULL },
		{ (char *)example("market_data"), "--bogus", NULL, NULL },
		{ (char *)example("video_frames"), "--format", "8k", NULL },
		{ (char *)example("video_frames"), "--frames", "-3", NULL },
		{ (char *)example("video_frames"), "--fps", NULL, NULL },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *out;
		int rc = run(bad[i], &out);
		cr_expect_eq(rc, 2, "%s %s: exit %d:\n%s", bad[i][0], bad[i][1], rc, out);
		cr_expect_not_null(strstr(out, "usage:"), "%s", out);
		free(out);
	}
}
