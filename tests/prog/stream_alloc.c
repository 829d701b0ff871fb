/* SPDX-License-Identifier: MIT */
/*
 * The stream contract run by a program that counts its heap calls.
 *
 * Built twice (Makefile, tests/sh/dlopen.sh runs both):
 *   dlopen_stream  starts two threads, then dlopen()s "libshmring.so.0"
 *                  (found through LD_LIBRARY_PATH) and calls it only
 *                  through dlsym()ed pointers: a plugin or language binding.
 *   linked_stream  links libshmring.a and jemalloc (as the tools do), so the
 *                  library takes its handles from a jemalloc arena.
 * Both: a producer creates a shm: ring, a forked consumer opens it, N
 * messages go across in order, the producer shuts down, the consumer drains
 * and then gets -EPIPE.  Every malloc-family and jemalloc call of each
 * process is counted; from the first message to the last there must be
 * none (the per-message path never touches the heap).
 *
 * usage: dlopen_stream|linked_stream [N]      exit 0 pass, 1 fail
 */
#include "shmring.h"

#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))
#define MSG 64
#define TIMEOUT_NS (20LL * 1000000000LL)

/* ---- counting allocator: glibc's own entry points do the work ---- */

/* process-local counter, no partner: relaxed; read by the same thread
 * that runs the loop it brackets */
static atomic_ulong g_heap_calls;

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);
extern void *__libc_memalign(size_t align, size_t n);

static void count(void)
{
	atomic_fetch_add_explicit(&g_heap_calls, 1, memory_order_relaxed);
}

EXPORT void *malloc(size_t n) { count(); return __libc_malloc(n); }
EXPORT void *calloc(size_t n, size_t size) { count(); return __libc_calloc(n, size); }
EXPORT void *realloc(void *p, size_t n) { count(); return __libc_realloc(p, n); }
EXPORT void free(void *p) { if (p) count(); __libc_free(p); }
EXPORT void *memalign(size_t align, size_t n) { count(); return __libc_memalign(align, n); }
EXPORT void *aligned_alloc(size_t align, size_t n) { count(); return __libc_memalign(align, n); }

EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
	void *p;

	count();
	if (align < sizeof(void *) || (align & (align - 1)))
		return EINVAL;
	if (!(p = __libc_memalign(align, n)))
		return ENOMEM;
	*out = p;
	return 0;
}

#ifdef STREAM_LINKED
/* the library's jemalloc calls land here first (the executable's symbols
 * come first), then go on to libjemalloc.so.2 */
static atomic_ulong g_je_calls;   /* relaxed, as g_heap_calls */

EXPORT void *mallocx(size_t n, int flags);
EXPORT void dallocx(void *p, int flags);

EXPORT void *mallocx(size_t n, int flags)
{
	static void *(*real)(size_t, int);

	count();
	atomic_fetch_add_explicit(&g_je_calls, 1, memory_order_relaxed);
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "mallocx");
	return real ? real(n, flags) : NULL;
}

EXPORT void dallocx(void *p, int flags)
{
	static void (*real)(void *, int);

	count();
	atomic_fetch_add_explicit(&g_je_calls, 1, memory_order_relaxed);
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "dallocx");
	if (real)
		real(p, flags);
}
#endif

static unsigned long heap_calls(void)
{
	return atomic_load_explicit(&g_heap_calls, memory_order_relaxed);
}

/* ---- the library, linked or through dlsym ---- */

static struct {
	int (*open)(const char *, int, const struct shmring_opts *, struct shmring **);
	int (*close)(struct shmring *);
	int (*unlink)(const char *);
	int (*send)(struct shmring *, const void *, size_t, int64_t);
	ssize_t (*recv)(struct shmring *, void *, size_t, int64_t);
	int (*shutdown)(struct shmring *);
	const char *(*strerror)(int);
} lib;

static const char *g_prog = "stream_alloc";

static void die(const char *what, long rc)
{
	fprintf(stderr, "%s: %s: %s\n", g_prog, what,
		rc < 0 && lib.strerror ? lib.strerror((int)rc) : "failed");
	exit(1);
}

#ifdef STREAM_LINKED
static void load_library(void)
{
	lib.open = shmring_open;
	lib.close = shmring_close;
	lib.unlink = shmring_unlink;
	lib.send = shmring_send;
	lib.recv = shmring_recv;
	lib.shutdown = shmring_shutdown;
	lib.strerror = shmring_strerror;
}
#else
static void *sym(void *h, const char *name)
{
	void *p = dlsym(h, name);

	if (!p) {
		fprintf(stderr, "%s: dlsym %s: %s\n", g_prog, name, dlerror());
		exit(1);
	}
	return p;
}

static void load_library(void)
{
	void *h = dlopen("libshmring.so.0", RTLD_NOW);

	if (!h) {
		fprintf(stderr, "%s: dlopen libshmring.so.0: %s\n", g_prog, dlerror());
		exit(1);
	}
	*(void **)&lib.open = sym(h, "shmring_open");
	*(void **)&lib.close = sym(h, "shmring_close");
	*(void **)&lib.unlink = sym(h, "shmring_unlink");
	*(void **)&lib.send = sym(h, "shmring_send");
	*(void **)&lib.recv = sym(h, "shmring_recv");
	*(void **)&lib.shutdown = sym(h, "shmring_shutdown");
	*(void **)&lib.strerror = sym(h, "shmring_strerror");
}
#endif

/* ---- threads that are already running when the library comes in ---- */

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_started, g_stop;

static void *idler(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&g_mu);
	g_started++;
	pthread_cond_broadcast(&g_cv);
	while (!g_stop)
		pthread_cond_wait(&g_cv, &g_mu);
	pthread_mutex_unlock(&g_mu);
	return NULL;
}

/* ---- the stream ---- */

static unsigned long consume(const char *uri, uint64_t n)
{
	struct shmring *r;
	unsigned char buf[MSG];
	unsigned long before = 0;
	ssize_t got;
	int rc = lib.open(uri, SHMRING_CONSUMER, NULL, &r);

	if (rc < 0)
		die("consumer open", rc);
	for (uint64_t i = 1; i <= n; i++) {
		uint64_t seq;

		got = lib.recv(r, buf, sizeof(buf), TIMEOUT_NS);
		if (got != MSG)
			die("recv", got);
		memcpy(&seq, buf, sizeof(seq));
		if (seq != i) {
			fprintf(stderr, "%s: message %" PRIu64 " carries %" PRIu64 "\n", g_prog, i, seq);
			exit(1);
		}
		if (i == 1)
			before = heap_calls();
	}
	unsigned long calls = heap_calls() - before;
	got = lib.recv(r, buf, sizeof(buf), TIMEOUT_NS);
	if (got != -EPIPE)
		die("recv after shutdown wants -EPIPE", got < 0 ? got : 0);
	lib.close(r);
	return calls;
}

static unsigned long produce(struct shmring *r, uint64_t n)
{
	unsigned char buf[MSG] = { 0 };
	unsigned long before = 0;

	for (uint64_t i = 1; i <= n; i++) {
		memcpy(buf, &i, sizeof(i));
		int rc = lib.send(r, buf, sizeof(buf), TIMEOUT_NS);
		if (rc < 0)
			die("send", rc);
		if (i == 1)
			before = heap_calls();
	}
	return heap_calls() - before;
}

int main(int argc, char **argv)
{
	uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 100000;
	pthread_t th[2];
	struct shmring *r;
	char uri[64];
	int st, rc;

	g_prog = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	if (n < 2)
		n = 2;
	alarm(120);
	for (int i = 0; i < 2; i++)
		if (pthread_create(&th[i], NULL, idler, NULL) != 0)
			die("pthread_create", 0);
	pthread_mutex_lock(&g_mu);
	while (g_started < 2)
		pthread_cond_wait(&g_cv, &g_mu);
	pthread_mutex_unlock(&g_mu);

	load_library();

	snprintf(uri, sizeof(uri), "shm:shmring-test-%s-%ld", g_prog, (long)getpid());
	unsigned long at_open = heap_calls();
	rc = lib.open(uri, SHMRING_CREATE | SHMRING_EXCL | SHMRING_PRODUCER, NULL, &r);
	if (rc < 0)
		die("producer open", rc);
	/* the counters must see the library's calls, or a 0 proves nothing */
	const char *unseen = heap_calls() == at_open ? "the library's heap calls are not seen" : NULL;
#ifdef STREAM_LINKED
	if (atomic_load_explicit(&g_je_calls, memory_order_relaxed) == 0)
		unseen = "the handle did not come from jemalloc";
#endif
	if (unseen) {
		fprintf(stderr, "%s: %s\n", g_prog, unseen);
		(void)lib.unlink(uri);
		return 1;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		(void)lib.unlink(uri);
		die("fork", 0);
	}
	if (pid == 0) {
		unsigned long calls = consume(uri, n);
		printf("%s: consumer: %" PRIu64 " messages in order, then -EPIPE; "
		       "heap calls while receiving: %lu\n", g_prog, n, calls);
		fflush(stdout);
		_exit(calls ? 1 : 0);
	}
	unsigned long calls = produce(r, n);
	rc = lib.shutdown(r);
	if (rc < 0) {
		(void)lib.unlink(uri);
		die("shutdown", rc);
	}
	if (waitpid(pid, &st, 0) != pid)
		st = -1;
	lib.close(r);
	(void)lib.unlink(uri);
	printf("%s: producer: %" PRIu64 " messages sent, heap calls while sending: %lu\n",
	       g_prog, n, calls);

	pthread_mutex_lock(&g_mu);
	g_stop = 1;
	pthread_cond_broadcast(&g_cv);
	pthread_mutex_unlock(&g_mu);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "%s: the consumer failed (status 0x%x)\n", g_prog, st);
		return 1;
	}
	return calls ? 1 : 0;
}
