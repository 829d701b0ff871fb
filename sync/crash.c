/* SPDX-License-Identifier: MIT */
#include "crash.h"

#ifdef SHMRING_CRASH_POINTS
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static char want[64];
static long want_n;
static int want_stop;           /* ":stop": SIGSTOP at pass n and every later one */
static _Atomic long passes;
static _Atomic int parsed;      /* 0 not yet, 1 parsing, 2 done */

static void parse(void)
{
	int expect = 0;
	if (!atomic_compare_exchange_strong(&parsed, &expect, 1)) {
		while (atomic_load(&parsed) != 2)
			;
		return;
	}
	const char *e = getenv("SHMRING_CRASH_AT");
	char s[sizeof(want) + 32];
	if (e && strlen(e) < sizeof(s)) {
		strcpy(s, e);
		size_t l = strlen(s);
		if (l > 5 && !strcmp(s + l - 5, ":stop")) {
			s[l - 5] = 0;
			want_stop = 1;
		}
		char *colon = strrchr(s, ':');
		if (colon && (size_t)(colon - s) < sizeof(want)) {
			memcpy(want, s, (size_t)(colon - s));
			want[colon - s] = 0;
			want_n = strtol(colon + 1, NULL, 10);
		}
	}
	atomic_store(&parsed, 2);
}

void crash_reset(void)
{
	want[0] = 0;
	want_n = 0;
	want_stop = 0;
	atomic_store(&passes, 0);
	atomic_store(&parsed, 0);
}

void crash_point(const char *name)
{
	if (atomic_load(&parsed) != 2)
		parse();
	if (want_n <= 0 || strcmp(name, want) != 0)
		return;
	long pass = atomic_fetch_add(&passes, 1) + 1;
	if (want_stop ? pass >= want_n : pass == want_n)
		raise(want_stop ? SIGSTOP : SIGKILL);
}
#else
/* ISO C wants at least one declaration in a translation unit */
typedef int crash_points_disabled;
#endif
