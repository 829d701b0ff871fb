#!/bin/sh
# libshmring.a and libshmring.so define no global name but the public
# shmring_* functions, and a program linking libshmring.a statically may
# define functions named like the library's internal ones (lock_set,
# seg_open, reg_get) and still use the ring.  Run by `make check`; SRC,
# BUILD and CC are set.
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "symbols.sh: $*" >&2; exit 1; }
command -v nm >/dev/null 2>&1 || { echo "symbols.sh: nm absent"; exit 77; }

# (a) every defined global name is shmring_*; the shared library adds its
# version nodes (shmring.map) as absolute symbols
bad=$(nm -g --defined-only "$BUILD/libshmring.a" | awk 'NF == 3 { print $3 }' |
	grep -v '^shmring_' || true)
[ -z "$bad" ] || fail "libshmring.a defines non-public global names:
$bad"
bad=$(nm -D --defined-only "$BUILD/libshmring.so.0" | awk 'NF == 3 { print $3 }' |
	grep -v '^shmring_' | grep -vx 'SHMRING_0\.[0-9]*' || true)
[ -z "$bad" ] || fail "libshmring.so exports non-public names:
$bad"
# the weak references to libjemalloc (mem/alloc.c) stay undefined and weak
weak=$(nm "$BUILD/libshmring.a" | awk '$1 == "w" { print $2 }' | sort | tr '\n' ' ')
[ "$weak" = "dallocx mallctl mallocx " ] ||
	fail "libshmring.a: weak undefined references are '$weak', not libjemalloc's"

# (b) a program with its own lock_set, seg_open and reg_get, linked with
# the archive statically
cat >"$tmp/prog.c" <<'C'
#include <shmring.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int lock_set(int fd, int how);
int seg_open(const char *name);
int reg_get(int key);
int lock_set(int fd, int how) { return fd * 100 + how; }
int seg_open(const char *name) { return (int)strlen(name) + 1000; }
int reg_get(int key) { return -key; }

/* one message through a fresh ring: 0, or why not */
static const char *round_trip(void)
{
	const int flags = SHMRING_CREATE | SHMRING_EXCL | SHMRING_PRODUCER | SHMRING_CONSUMER;
	struct shmring *ring = NULL;
	char name[64], got[8] = "";
	const char *why = NULL;

	snprintf(name, sizeof(name), "shm:shmring-test-symbols-%ld", (long)getpid());
	int err = shmring_open(name, flags, NULL, &ring);
	if (err < 0)
		return shmring_strerror(err);
	if ((err = shmring_send(ring, "hello", 5, 0)) < 0)
		why = shmring_strerror(err);
	else if (shmring_recv(ring, got, sizeof(got), 0) != 5 || memcmp(got, "hello", 5))
		why = "recv did not return hello";
	shmring_close(ring);
	shmring_unlink(name);
	return why;
}

int main(void)
{
	const char *why;

	if (lock_set(3, 4) != 304 || seg_open("abc") != 1003 || reg_get(7) != -7)
		why = "own functions: wrong result";
	else
		why = round_trip();
	printf("%s\n", why ? why : "hello");
	return why != NULL;
}
C
$CC -std=c11 -D_GNU_SOURCE -I"$SRC/include" -o "$tmp/prog" "$tmp/prog.c" \
	"$BUILD/libshmring.a" -lurcu-bp -lurcu-cds -ljemalloc -lpthread >"$tmp/log" 2>&1 ||
	{ cat "$tmp/log"; fail "linking libshmring.a beside lock_set/seg_open/reg_get failed"; }
out=$("$tmp/prog") || fail "the static program failed: $out"
[ "$out" = hello ] || fail "the static program said '$out'"
echo "symbols.sh: only shmring_* are global; own lock_set/seg_open/reg_get link beside libshmring.a"
