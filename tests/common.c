/* SPDX-License-Identifier: MIT */
#include "common.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char names[8][128];
static unsigned name_next;

const char *t_name(const char *tag)
{
	static unsigned counter;
	char *b = names[name_next++ % 8];
	snprintf(b, sizeof(names[0]), "t-%s-%d-%u", tag, (int)getpid(), counter++);
	return b;
}

const char *t_uri(const char *tag)
{
	char n[100];
	snprintf(n, sizeof(n), "%s", t_name(tag));
	char *b = names[name_next++ % 8];
	snprintf(b, sizeof(names[0]), "shm:%s", n);
	return b;
}

struct shmring *t_create(const char *uri, uint64_t capacity, uint32_t max_msg)
{
	struct shmring_opts o = { .capacity = capacity, .max_msg = max_msg };
	struct shmring *r = NULL;
	int rc = shmring_open(uri, SHMRING_CREATE | SHMRING_EXCL, &o, &r);
	cr_assert_eq(rc, 0, "create %s: %s", uri, shmring_strerror(rc));
	return r;
}

struct shmring *t_open(const char *uri, int oflags)
{
	struct shmring *r = NULL;
	int rc = shmring_open(uri, oflags, NULL, &r);
	cr_assert_eq(rc, 0, "open %s: %s", uri, shmring_strerror(rc));
	return r;
}

pid_t t_spawn(int (*fn)(void *), void *arg)
{
	fflush(NULL);
	pid_t parent = getpid();
	pid_t pid = fork();
	cr_assert_geq(pid, 0, "fork");
	if (pid == 0) {
		/* die with the test: a failed assertion in the parent must not
		 * leave children waiting forever on a ring */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(99);
		_exit(fn(arg));
	}
	return pid;
}

int t_wait(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0)
		;
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WEXITSTATUS(st);
}

void *t_shared(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(p, MAP_FAILED, "mmap");
	return p;
}

void t_unshared(void *p, size_t size)
{
	munmap(p, size);
}

/* 8 bytes per step from an LCG seeded by the key: every byte depends on
 * the key, so a torn, stale or misplaced payload fails t_check(). */
void t_fill(void *buf, size_t len, uint64_t key)
{
	uint8_t *b = buf;
	uint64_t x = key * 0x9e3779b97f4a7c15ull + 1;
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		memcpy(b + i, &x, 8);
	}
	x = x * 6364136223846793005ull + 1442695040888963407ull;
	memcpy(b + i, &x, len - i);
}

int t_check(const void *buf, size_t len, uint64_t key)
{
	const uint8_t *b = buf;
	uint64_t x = key * 0x9e3779b97f4a7c15ull + 1;
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		if (memcmp(b + i, &x, 8))
			return 0;
	}
	x = x * 6364136223846793005ull + 1442695040888963407ull;
	return memcmp(b + i, &x, len - i) == 0;
}

uint64_t t_rand(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

uint64_t t_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
