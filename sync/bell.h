/* SPDX-License-Identifier: MIT */
/*
 * Doorbells: the pollable half of a wake-up (shmring_fd()).
 *
 * A futex cannot be polled, and an eventfd cannot be reached by another
 * process unless it is passed to it.  A doorbell is a UNIX datagram socket
 * that its owner binds to a name of its own in /dev/shm
 * ("shmring-bell.<16 hex digits>", the digits random): the owner polls
 * it, a waker in any process sends it one empty datagram with sendto(2),
 * one system call, no descriptor kept, no SIGPIPE, and ECONNREFUSED when
 * its owner is gone.  Sending needs write permission on the socket file,
 * which carries the ring's group and write bits: who may write the ring
 * may ring its participants' bells, nobody else; and only the owner can
 * read what is sent, so nobody can steal a wake-up.
 *
 * The protocol that decides when to ring is the futex path's
 * (sync/wait.h): the poller announces itself in the same word a sleeper
 * uses ([B1], a bit of its own) and looks at the ring once more ([B3]);
 * the waker finds the bit after its publish and clears it ([W4]).
 */
#ifndef SHMRING_SYNC_BELL_H
#define SHMRING_SYNC_BELL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define BELL_DIR "/dev/shm/"
#define BELL_PREFIX "shmring-bell."

struct bell {
	int fd;                  /* bound, non-blocking; -1: none */
	uint64_t id;             /* the name's digits; never 0 */
	dev_t dev;               /* the socket file, to remove it and only it */
	ino_t ino;
};

/*
 * Make a doorbell: a socket bound to a fresh name, its file given `gid`
 * (when we may: a group we are in) and `mode`'s group and other write bits
 * (owner: write).  0 or -errno.
 */
__attribute__((visibility("hidden")))
int bell_make(struct bell *b, uint32_t mode, gid_t gid);

/* Close it and remove its file (if the name still is ours). */
__attribute__((visibility("hidden"))) void bell_free(struct bell *b);

/* Read everything sent so far; returns how many datagrams. */
__attribute__((visibility("hidden"))) unsigned bell_drain(const struct bell *b);

/*
 * Ring the doorbell named by id, through *sock (an unbound datagram
 * socket of the caller's, made on first use; -1 before).  Never blocks.
 * 0 sent, 1 nobody listens there (its owner is gone: nothing to do),
 * or -errno (EAGAIN: its queue is full, so it is readable anyway).
 */
__attribute__((visibility("hidden"))) int bell_ring(int *sock, uint64_t id);

/* Is somebody bound to the name of id?  For gc: a doorbell file nobody
 * listens on is left over from a dead poller. */
__attribute__((visibility("hidden"))) bool bell_alive(uint64_t id);

/* Remove the doorbell file of id if nobody listens on it (its owner died
 * without closing): 1 removed, 0 alive or absent, -errno (EPERM: another
 * user's, in the sticky /dev/shm). */
__attribute__((visibility("hidden"))) int bell_remove_dead(uint64_t id);

/* id from a file name in BELL_DIR ("shmring-bell.<hex>"), or 0. */
__attribute__((visibility("hidden"))) uint64_t bell_id_of(const char *name);

#endif
