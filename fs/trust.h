/* SPDX-License-Identifier: MIT */
/*
 * Whose rings this process uses.  A ring (segment, file, FIFO, queue) is
 * opened only if its owner, read with fstat on the descriptor just opened,
 * is this process's effective uid or a uid named by shmring_trust_owner().
 * Root is no exception: a ring another user made is memory that user can
 * write, and any local user can squat a ring's name before a daemon opens
 * it.  Removing a name (shmring_unlink) is governed by the directory, not
 * by this list.
 */
#ifndef SHMRING_FS_TRUST_H
#define SHMRING_FS_TRUST_H

#include <stdbool.h>
#include <sys/types.h>

#define TRUST_MAX 16

/* Is a ring owned by `owner` one this process may use? */
__attribute__((visibility("hidden"))) bool trust_owner_ok(uid_t owner);
/* fstat(fd) and trust_owner_ok(): 0, -EACCES, or -errno from fstat. */
__attribute__((visibility("hidden"))) int trust_check_fd(int fd);

#endif
