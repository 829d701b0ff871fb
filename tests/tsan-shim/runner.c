/* SPDX-License-Identifier: MIT */
/* Runner for the TSan stand-in of Criterion: see criterion/criterion.h. */
#include "criterion/criterion.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_TESTS 256
#define EXIT_SKIP 77

struct shim_test {
	const char *suite, *name;
	void (*fn)(void);
	struct shim_test_opts opts;
};
static struct shim_test tests[MAX_TESTS];
static int ntests;
static struct { const char *name; struct shim_suite_opts opts; } suites[16];
static int nsuites;

void shim_suite(const char *suite, struct shim_suite_opts opts)
{
	if (nsuites < 16)
		suites[nsuites++].name = suite, suites[nsuites - 1].opts = opts;
}

static const struct shim_suite_opts *suite_of(const char *name)
{
	static const struct shim_suite_opts none;
	for (int i = 0; i < nsuites; i++)
		if (!strcmp(suites[i].name, name))
			return &suites[i].opts;
	return &none;
}

void shim_register(const char *suite, const char *name, void (*fn)(void),
		   struct shim_test_opts opts)
{
	if (ntests < MAX_TESTS)
		tests[ntests++] = (struct shim_test){ suite, name, fn, opts };
}

void shim_fail(const char *file, int line, const char *expr, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "[----] %s:%d: Assertion Failed: %s\n[----]   ", file, line, expr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	_exit(1);
}

void shim_skip(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "[SKIP] ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	_exit(EXIT_SKIP);
}

void shim_log(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "[----] ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int main(int argc, char **argv)
{
	int passed = 0, failed = 0, skipped = 0;
	const char *only = NULL;
	for (int i = 1; i < argc; i++)          /* Criterion's options are ignored */
		if (!strncmp(argv[i], "--filter=", 9))
			only = argv[i] + 9;
	for (int i = 0; i < ntests; i++) {
		char full[256];
		snprintf(full, sizeof(full), "%s::%s", tests[i].suite, tests[i].name);
		if (only && !strstr(full, only))
			continue;
		fflush(NULL);
		pid_t pid = fork();
		if (pid == 0) {
			const struct shim_suite_opts *so = suite_of(tests[i].suite);
			double timeout = tests[i].opts.timeout > 0 ? tests[i].opts.timeout : so->timeout;
			if (timeout > 0)
				alarm((unsigned)timeout + 1);
			if (so->init)
				so->init();
			tests[i].fn();
			if (so->fini)
				so->fini();
			fflush(NULL);
			_exit(0);
		}
		int st = 0;
		waitpid(pid, &st, 0);
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
			printf("[PASS] %s\n", full);
			passed++;
		} else if (WIFEXITED(st) && WEXITSTATUS(st) == EXIT_SKIP) {
			printf("[SKIP] %s\n", full);
			skipped++;
		} else {
			printf("[FAIL] %s: %s %d\n", full, WIFSIGNALED(st) ? "signal" : "exit",
			       WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
			failed++;
		}
	}
	printf("[====] Synthesis: Tested: %d | Passing: %d | Failing: %d | Crashing: 0 \n",
	       passed + failed, passed, failed);
	(void)skipped;
	return failed ? 1 : 0;
}
