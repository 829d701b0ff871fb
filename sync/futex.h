/* SPDX-License-Identifier: MIT */
/*
 * Futex wait/wake on 32-bit words in shared memory.  Never the _PRIVATE
 * operations: the sleeper and the waker are different processes, and a
 * private futex is keyed by (mm, address) so it would never meet its peer.
 */
#ifndef SHMRING_SYNC_FUTEX_H
#define SHMRING_SYNC_FUTEX_H

#include <errno.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/*
 * Sleep while *word == val, until woken or the absolute CLOCK_MONOTONIC
 * deadline (NULL: no deadline).  FUTEX_WAIT_BITSET takes an absolute time,
 * so a wait resumed after EINTR does not stretch the timeout.
 * Returns 0 (woken, maybe spuriously), -EAGAIN (word had changed),
 * -ETIMEDOUT or -EINTR.
 */
static inline int futex_wait_until(_Atomic uint32_t *word, uint32_t val,
				   const struct timespec *abs_mono)
{
	long rc = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_BITSET, val,
			  abs_mono, NULL, FUTEX_BITSET_MATCH_ANY);
	return rc == 0 ? 0 : -errno;
}

/* Wake up to n sleepers on word; returns how many were woken or -errno. */
static inline int futex_wake(_Atomic uint32_t *word, int n)
{
	long rc = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, n, NULL, NULL, 0);
	return rc >= 0 ? (int)rc : -errno;
}

#endif /* SHMRING_SYNC_FUTEX_H */
