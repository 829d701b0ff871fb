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
/* Open with the given oflags, asserting success. */
struct shmring *t_open(const char *uri, int oflags);

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

#endif
