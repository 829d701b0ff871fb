/* SPDX-License-Identifier: MIT */
#include "common.h"
#include "shm/ctl.h"
#include "shm/segment.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/stat.h>
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
	return t_open_opts(uri, oflags, NULL);
}

struct shmring *t_open_opts(const char *uri, int oflags, const struct shmring_opts *o)
{
	struct shmring *r = NULL;
	int rc = shmring_open(uri, oflags, o, &r);
	cr_assert_eq(rc, 0, "open %s 0x%x: %s", uri, oflags, shmring_strerror(rc));
	cr_assert_not_null(r);
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

void t_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int t_wait_flag(_Atomic int *f, int want, long max_ms)
{
	for (long i = 0; i < max_ms; i++) {
		if (atomic_load(f) == want)
			return 1;
		t_sleep_ms(1);
	}
	return atomic_load(f) == want;
}

uint64_t t_sysctl_u64(const char *path, uint64_t dflt)
{
	FILE *f = fopen(path, "r");
	unsigned long long v;
	if (!f)
		return dflt;
	if (fscanf(f, "%llu", &v) != 1)
		v = dflt;
	fclose(f);
	return v;
}

/* ---- bookkeeping ------------------------------------------------------- */

#define MADE_MAX 256

static char made[MADE_MAX][320];
static unsigned nmade;

const char *t_remember(const char *uri)
{
	cr_assert_lt(nmade, MADE_MAX, "too many names for the bookkeeping");
	cr_assert_lt(strlen(uri), sizeof(made[0]), "name too long for the bookkeeping");
	snprintf(made[nmade], sizeof(made[0]), "%s", uri);
	return made[nmade++];
}

const char *t_ring_uri(const char *tag)
{
	return t_remember(t_uri(tag));
}

const char *t_ring_name(const char *tag)
{
	return t_remember(t_name(tag));
}

void t_cleanup(void)
{
	for (unsigned i = 0; i < nmade; i++) {
		const char *u = made[i];
		if (u[0] != '/')
			(void)shmring_unlink(u);
		if (strncmp(u, "mq:", 3) == 0)
			continue;
		const char *p = u[0] == '/' ? u : t_path_of(u);
		if (unlink(p) < 0 && (errno == EISDIR || errno == EPERM))
			(void)rmdir(p);
	}
	nmade = 0;
}

const char *t_path_of(const char *uri)
{
	static char path[8][400];
	static unsigned next;
	char *b = path[next++ % 8];
	if (strncmp(uri, "file:", 5) == 0 || strncmp(uri, "pipe:", 5) == 0)
		snprintf(b, sizeof(path[0]), "%s", uri + 5);
	else
		snprintf(b, sizeof(path[0]), "/dev/shm/%s",
			 strncmp(uri, "shm:", 4) == 0 ? uri + 4 : uri);
	return b;
}

int t_exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

int t_try_open(const char *uri, int oflags, const struct shmring_opts *o)
{
	struct shmring *r = NULL;
	int rc = shmring_open(uri, oflags, o, &r);
	if (rc == 0)
		shmring_close(r);
	return rc;
}

struct shmring_stats t_stats(struct shmring *r)
{
	struct shmring_stats st;
	int rc = shmring_stats(r, &st);
	cr_assert_eq(rc, 0, "stats: %s", shmring_strerror(rc));
	return st;
}

/* ---- programs ---------------------------------------------------------- */

void t_append(char **buf, size_t *len, const char *p, size_t n)
{
	char *nb = realloc(*buf, *len + n + 1);
	cr_assert_not_null(nb);
	memcpy(nb + *len, p, n);
	*len += n;
	nb[*len] = 0;
	*buf = nb;
}

/* stdin of the child: `in` in a memory file, or /dev/null */
static int input_fd(const char *in)
{
	if (!in)
		return open("/dev/null", O_RDONLY | O_CLOEXEC);
	int fd = memfd_create("t-stdin", MFD_CLOEXEC);
	cr_assert_geq(fd, 0, "memfd_create: %s", strerror(errno));
	size_t len = strlen(in);
	cr_assert_eq(write(fd, in, len), (ssize_t)len, "write stdin");
	cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

struct t_run t_run_prog(const char *path, char *const argv[], const char *in,
			const char *out_path, unsigned limit_s)
{
	return t_run_prog_as(path, argv, in, out_path, limit_s, (uid_t)-1);
}

struct t_run t_run_prog_as(const char *path, char *const argv[], const char *in,
			   const char *out_path, unsigned limit_s, uid_t as)
{
	int po[2], pe[2];
	int fin = input_fd(in);
	cr_assert_eq(pipe2(po, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(pe, O_CLOEXEC), 0);
	fflush(NULL);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		/* with out_path, po[1] closes at exec: the parent sees EOF */
		int out = out_path ? open(out_path, O_WRONLY | O_CLOEXEC) : po[1];
		if (out < 0)
			_exit(126);
		dup2(out, 1);
		dup2(pe[1], 2);
		if (fin >= 0)
			dup2(fin, 0);
		if (as != (uid_t)-1 && (setgroups(0, NULL) < 0 || setgid((gid_t)as) < 0 ||
					setuid(as) < 0))
			_exit(126);
		if (strchr(path, '/'))
			execv(path, argv);
		else
			execvp(path, argv);
		_exit(127);
	}
	if (fin >= 0)
		close(fin);
	close(po[1]);
	close(pe[1]);
	struct t_run r = { 0 };
	r.out = calloc(1, 1);
	r.err = calloc(1, 1);
	struct pollfd pf[2] = { { .fd = po[0], .events = POLLIN }, { .fd = pe[0], .events = POLLIN } };
	uint64_t deadline = t_now_ns() + limit_s * 1000000000ull;
	int open_fds = 2;
	while (open_fds) {
		if (t_now_ns() > deadline) {
			kill(pid, SIGKILL);
			t_wait(pid);
			cr_assert_fail("%s %s: no end after %u s", argv[0], argv[1] ? argv[1] : "",
				       limit_s);
		}
		if (poll(pf, 2, 200) <= 0)
			continue;
		for (int i = 0; i < 2; i++) {
			if (pf[i].fd < 0 || !pf[i].revents)
				continue;
			char buf[4096];
			ssize_t n = read(pf[i].fd, buf, sizeof(buf));
			if (n > 0) {
				t_append(i ? &r.err : &r.out, i ? &r.err_len : &r.out_len, buf, (size_t)n);
			} else {
				close(pf[i].fd);
				pf[i].fd = -1;
				open_fds--;
			}
		}
	}
	r.status = t_wait(pid);
	return r;
}

void t_run_free(struct t_run *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

/* ---- files ------------------------------------------------------------- */

void t_patch(const char *path, off_t off, const void *p, size_t n)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	cr_assert_eq(pwrite(fd, p, n, off), (ssize_t)n, "pwrite %s", path);
	close(fd);
}

void t_peek(const char *path, off_t off, void *p, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	cr_assert_eq(pread(fd, p, n, off), (ssize_t)n, "pread %s", path);
	close(fd);
}

void t_fake_reboot(const char *path)
{
	int fd = open(path, O_RDWR);
	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	struct ctl_shared *ctl = mmap(NULL, SEG_RING_OFF - SEG_CTL_OFF, PROT_READ | PROT_WRITE,
				      MAP_SHARED, fd, SEG_CTL_OFF);
	cr_assert_neq(ctl, MAP_FAILED);
	ctl->persist.boot_id[0] ^= 0xff;
	atomic_store(&ctl->busy, 1);
	ctl->prod_owner = 1;
	atomic_store(&ctl->parts[0].state, PART_ACTIVE);
	munmap(ctl, SEG_RING_OFF - SEG_CTL_OFF);
	close(fd);
}
