/* SPDX-License-Identifier: MIT */
/*
 * The process-local registry (shm/registry.c): handles on one ring share a
 * mapping, many threads open and close at once, and the last close unmaps.
 * Runs under ThreadSanitizer (make check SAN=thread).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

/* How many mappings of /dev/shm/<name> this process has. */
static int mappings_of(const char *name)
{
	FILE *f = fopen("/proc/self/maps", "r");
	cr_assert_not_null(f);
	char line[512];
	int n = 0;
	while (fgets(line, sizeof(line), f)) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = 0;
		const char *slash = strrchr(line, '/');
		if (slash && strcmp(slash + 1, name) == 0)
			n++;
	}
	fclose(f);
	return n;
}

Test(registry, handles_share_one_mapping)
{
	const char *name = t_name("reg");
	char uri[160];
	snprintf(uri, sizeof(uri), "shm:%s", name);
	struct shmring *a = t_create(uri, 65536, 0);
	struct shmring *p = t_open(uri, SHMRING_PRODUCER);
	struct shmring *c = t_open(name, SHMRING_CONSUMER);   /* bare name: same ring */
	cr_assert_eq(mappings_of(name), 1, "one mapping for three handles");
	cr_assert_eq(shmring_send(p, "x", 1, 0), 0);
	char b[4];
	cr_assert_eq(shmring_recv(c, b, sizeof(b), 0), 1);
	shmring_close(a);
	shmring_close(p);
	cr_assert_eq(mappings_of(name), 1);
	shmring_close(c);
	cr_assert_eq(mappings_of(name), 0, "last close unmaps");
	cr_assert_eq(shmring_unlink(uri), 0);
}

Test(registry, recreated_ring_is_a_new_mapping)
{
	const char *name = t_name("reg2");
	struct shmring *a = t_create(name, 65536, 0);
	cr_assert_eq(shmring_unlink(name), 0);
	/* same name, different inode: must not reuse the old mapping */
	struct shmring *b = t_create(name, 1 << 20, 0);
	struct shmring_stats sa, sb;
	cr_assert_eq(shmring_stats(a, &sa), 0);
	cr_assert_eq(shmring_stats(b, &sb), 0);
	cr_assert_eq(sa.capacity, 65536);
	cr_assert_eq(sb.capacity, 1 << 20);
	shmring_close(a);
	shmring_close(b);
	shmring_unlink(name);
}

struct churn {
	const char *uri;
	int iters;
	int id;
	_Atomic int *sent;
	_Atomic int *got_roles;
};

static void *churn_thread(void *arg)
{
	struct churn *t = arg;
	for (int i = 0; i < t->iters; i++) {
		struct shmring *r = NULL;
		int want = (i + t->id) % 3 == 0 ? SHMRING_PRODUCER : 0;
		int rc = shmring_open(t->uri, want, NULL, &r);
		if (rc == -EBUSY)
			continue;     /* another thread holds the producer role */
		cr_assert_eq(rc, 0, "open: %s", shmring_strerror(rc));
		struct shmring_stats st;
		cr_assert_eq(shmring_stats(r, &st), 0);
		cr_assert_eq(st.capacity, 65536);
		if (want) {
			atomic_fetch_add(t->got_roles, 1);
			uint32_t v = (uint32_t)(t->id * 100000 + i);
			rc = shmring_send(r, &v, sizeof(v), 0);
			if (rc == 0)
				atomic_fetch_add(t->sent, 1);
			else
				cr_assert_eq(rc, -EAGAIN, "send: %s", shmring_strerror(rc));
		}
		cr_assert_eq(shmring_close(r), 0);
	}
	return NULL;
}

Test(registry, threads_open_use_close_at_once, .timeout = 120)
{
	const char *name = t_name("churn");
	char uri[160];
	snprintf(uri, sizeof(uri), "shm:%s", name);
	struct shmring *own = t_create(uri, 65536, 64);
	shmring_close(own);
	enum { THREADS = 8 };
	const char *b = getenv("SHMRING_TEST_BUILD");
	int iters = b && strstr(b, "thread") ? 150 : 600;
	_Atomic int sent = 0, roles = 0;
	pthread_t th[THREADS];
	struct churn ctx[THREADS];
	for (int i = 0; i < THREADS; i++) {
		ctx[i] = (struct churn){ uri, iters, i, &sent, &roles };
		cr_assert_eq(pthread_create(&th[i], NULL, churn_thread, &ctx[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	cr_assert_gt(atomic_load(&roles), 0);
	cr_assert_eq(mappings_of(name), 0, "every mapping released");
	/* every successful send is in the ring, exactly once */
	struct shmring *c = t_open(uri, SHMRING_CONSUMER);
	int n = 0;
	uint32_t v;
	while (shmring_recv(c, &v, sizeof(v), 0) == sizeof(v))
		n++;
	cr_assert_eq(n, atomic_load(&sent));
	struct shmring_stats st;
	cr_assert_eq(shmring_stats(c, &st), 0);
	cr_assert_eq(st.producers, 0, "no participant leaked");
	cr_assert_eq(st.consumers, 1);
	shmring_close(c);
	shmring_unlink(uri);
}

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

static int count_fds(void)
{
	int n = 0;
	char path[64];
	for (int fd = 0; fd < 4096; fd++) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n += access(path, F_OK) == 0;
	}
	return n;
}

/*
 * Open, use and close in a loop: descriptors, mappings and heap stay flat.
 * Under ASan the leak check runs here, on this process, rather than at
 * exit (Criterion's own runner leaks a few objects at exit, which is why
 * the test environment sets leak_check_at_exit=0).
 */
Test(registry, no_leaks_after_open_close_cycles, .timeout = 60)
{
	const char *name = t_name("leak");
	struct shmring *own = t_create(name, 65536, 0);
	shmring_close(own);
	int fds = count_fds();
	for (int i = 0; i < 2000; i++) {
		struct shmring *p = t_open(name, SHMRING_PRODUCER);
		struct shmring *c = t_open(name, SHMRING_CONSUMER);
		cr_assert_eq(shmring_send(p, &i, sizeof(i), 0), 0);
		int v;
		cr_assert_eq(shmring_recv(c, &v, sizeof(v), 0), (ssize_t)sizeof(v));
		cr_assert_eq(v, i);
		cr_assert_eq(shmring_close(p), 0);
		cr_assert_eq(shmring_close(c), 0);
	}
	cr_assert_eq(count_fds(), fds, "descriptors leaked");
	cr_assert_eq(mappings_of(name), 0, "mapping leaked");
#if defined(__SANITIZE_ADDRESS__)
	cr_assert_eq(__lsan_do_recoverable_leak_check(), 0, "heap leaked (see the report above)");
#endif
	cr_assert_eq(shmring_unlink(name), 0);
}
