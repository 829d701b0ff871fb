/* SPDX-License-Identifier: MIT */
/* Helpers shared by the Criterion suites. */
#ifndef SHMRING_TESTS_COMMON_H
#define SHMRING_TESTS_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shmring.h"

/* A ring name unique to this process and call: "t-<tag>-<pid>-<n>".
 * Returns a static buffer per slot (8 slots rotate). */
const char *t_name(const char *tag);
/* "shm:" + t_name(tag), same rotation. */
const char *t_uri(const char *tag);

/* Create a ring with no role (the creator), asserting success. */
struct shmring *t_create(const char *uri, uint64_t capacity, uint32_t max_msg);
/* Open with the given oflags (and opts), asserting success. */
struct shmring *t_open(const char *uri, int oflags);
struct shmring *t_open_opts(const char *uri, int oflags, const struct shmring_opts *o);

/* fork(); the child runs fn(arg) and _exits with its return value. */
pid_t t_spawn(int (*fn)(void *), void *arg);
/* waitpid; returns the exit status, or 128 + signal if killed. */
int t_wait(pid_t pid);

/* Anonymous MAP_SHARED memory visible to forked children. */
void *t_shared(size_t size);
void t_unshared(void *p, size_t size);

/* Cheap payload fill/check: bytes derived from a 64-bit key. */
void t_fill(void *buf, size_t len, uint64_t key);
int t_check(const void *buf, size_t len, uint64_t key);

/* xorshift64* */
uint64_t t_rand(uint64_t *state);

uint64_t t_now_ns(void);

/* nanosleep for ms milliseconds, resumed after a signal. */
void t_sleep_ms(long ms);
/* Poll a shared flag (another process sets it) until it is `want`, for at
 * most max_ms milliseconds; whether it is. */
int t_wait_flag(_Atomic int *f, int want, long max_ms);

/* The number in the file at path (a /proc/sys setting), or dflt. */
uint64_t t_sysctl_u64(const char *path, uint64_t dflt);

/* ---- bookkeeping: what a test names is removed after it ---------------- */

/* Remember a ring URI ("shm:NAME", a bare NAME, "file:PATH", "pipe:PATH",
 * "mq:NAME") or an absolute path for t_cleanup(); returns a copy that
 * lives until then.  At most 256 between two t_cleanup() calls. */
const char *t_remember(const char *uri);
/* t_remember(t_uri(tag)) and t_remember(t_name(tag)). */
const char *t_ring_uri(const char *tag);
const char *t_ring_name(const char *tag);
/* Remove everything remembered: shmring_unlink(), then by hand what the
 * library refuses (half made, or left by a failed test), directories too.
 * Meant as a suite's .fini: it runs after a test that failed as well. */
void t_cleanup(void);

/* The file behind a URI: /dev/shm/NAME for "shm:NAME" or a bare NAME, PATH
 * for "file:PATH" and "pipe:PATH".  Static buffer per slot (8 rotate). */
const char *t_path_of(const char *uri);
/* lstat() succeeds. */
int t_exists(const char *path);

/* shmring_open() then, if it succeeded, shmring_close(): the open's rc. */
int t_try_open(const char *uri, int oflags, const struct shmring_opts *o);
/* shmring_stats(), asserting success. */
struct shmring_stats t_stats(struct shmring *r);

/* ---- programs ---------------------------------------------------------- */

struct t_run {
	int status;              /* exit status, or 128 + signal */
	char *out, *err;         /* NUL-terminated; free with t_run_free() */
	size_t out_len, err_len;
};

/* Run the program `path` (without a '/': looked up in PATH) with argv (NULL-terminated), `in` on its stdin
 * (NULL: /dev/null), stdout into the file out_path (then .out stays empty)
 * or captured, stderr captured.  Killed, and the test failed, after
 * limit_s seconds. */
struct t_run t_run_prog(const char *path, char *const argv[], const char *in,
			const char *out_path, unsigned limit_s);
/* The same as the user and group of id `as` (no supplementary groups). */
struct t_run t_run_prog_as(const char *path, char *const argv[], const char *in,
			   const char *out_path, unsigned limit_s, uid_t as);
void t_run_free(struct t_run *r);
/* Append n bytes to the NUL-terminated heap buffer *buf of *len bytes. */
void t_append(char **buf, size_t *len, const char *p, size_t n);

/* ---- files ------------------------------------------------------------- */

/* A reboot, simulated on the closed ring file at path: another boot id, a
 * holder of the control lock that died inside its section with the old
 * boot (`busy` set), and the producer role held by participant slot 0 of
 * the old boot. */
void t_fake_reboot(const char *path);

/* pwrite/pread n bytes at off of the file at path, asserting success. */
void t_patch(const char *path, off_t off, const void *p, size_t n);
void t_peek(const char *path, off_t off, void *p, size_t n);

/* ---- the inline row ---------------------------------------------------- */

/* A suite built with -DSHMRING_TEST_INLINE (test_conformance_inline,
 * test_stream_inline) opens its rings with shmring_inl_open() and makes
 * its data calls through <shmring/inline.h>: an SPSC ring in a segment
 * takes the inline fast path, every other backend the library's way. */
#ifdef SHMRING_TEST_INLINE
#include "shmring/inline.h"
#define shmring_open(uri, oflags, opts, out) shmring_inl_open(uri, oflags, opts, out)
#define shmring_send    shmring_inl_send
#define shmring_recv    shmring_inl_recv
#define shmring_reserve shmring_inl_reserve
#define shmring_commit  shmring_inl_commit
#define shmring_acquire shmring_inl_acquire
#define shmring_release shmring_inl_release
#define shmring_send_batch shmring_inl_send_batch
#define shmring_recv_batch shmring_inl_recv_batch
#endif

#endif
