/* SPDX-License-Identifier: MIT */
/*
 * Liveness and role locks: open-file-description (OFD) byte-range locks on
 * one byte of a file, taken through a descriptor.  The kernel keeps them,
 * not the file, and drops them when the last descriptor of the holder's
 * open file description closes — when the holder dies, too — so a lock
 * held says "somebody alive has this", and nothing a peer writes into
 * shared memory can fake or keep one.
 *
 * A lock belongs to the open file description, not to the process: two
 * descriptors of one description share their locks, two descriptors of
 * separate opens conflict with each other even in one process.  Hence
 * lock_reopen(), which makes a description of the caller's own.
 */
#ifndef SHMRING_SYNC_LOCK_H
#define SHMRING_SYNC_LOCK_H

#include <stdint.h>
#include <sys/types.h>

/* F_OFD_SETLK of `type` (F_RDLCK, F_WRLCK, F_UNLCK) on byte `at` through
 * fd, never waiting: 0, -EAGAIN if another description holds a conflicting
 * lock, or another -errno. */
__attribute__((visibility("hidden"))) int lock_set(int fd, short type, off_t at);

/* lock_set(), polling until give_up (CLOCK_MONOTONIC ns): F_OFD_SETLKW could
 * wait forever on a holder that is stopped, or on a peer that took the byte
 * and keeps it.  0, -ETIMEDOUT or -errno. */
__attribute__((visibility("hidden")))
int lock_set_until(int fd, short type, off_t at, uint64_t give_up);

/* The first byte in [at, at + len) on which another open file description
 * holds a lock that a write lock would conflict with: its offset, -1 if
 * there is none, or -2 if the test failed (nothing is known then).
 * Through a descriptor whose own description holds no lock there, this
 * sees every holder, this process's other descriptions included. */
__attribute__((visibility("hidden"))) off_t lock_held(int fd, off_t at, off_t len);

/* Open the file that fd refers to again, through /proc/self/fd: a new open
 * file description of the caller's own (its locks conflict with fd's), of
 * the same inode even if the name was renamed or replaced meanwhile.
 * O_CLOEXEC is added to flags.  The descriptor, or -errno. */
__attribute__((visibility("hidden"))) int lock_reopen(int fd, int flags);

#endif
