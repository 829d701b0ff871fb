/* SPDX-License-Identifier: MIT */
/*
 * Control plane of a segment: the participant table, role ownership and
 * recovery counters, guarded by the control lock.  Nothing here is on the
 * per-message path.
 *
 * The control lock is kept by the kernel, not in the segment: an OFD write
 * lock on byte CTL_LOCK_CTL of the segment file, taken through the
 * handle's own open file description (so the kernel drops it when the
 * holder dies) and paired with a mutex in process memory (an OFD lock does
 * not exclude two threads using the same open file description).  The
 * segment holds one word about it, `busy`: set by a holder once it is
 * inside, cleared before it leaves.  The next holder that finds it set
 * knows the previous one died inside the section, and repairs.  Nothing in
 * the segment is a pointer or a lock a peer could corrupt into a crash: a
 * garbage `busy` costs one repair.
 *
 * Liveness: participant slot i is alive while some process holds an OFD
 * write lock on byte CTL_LOCK_BASE + i of the segment file.  The kernel
 * drops that lock when the last descriptor of the holder's open file
 * description goes away, i.e. when the process dies, however it dies; pid
 * reuse cannot fake it.  pid and start time are kept for display only.
 */
#ifndef SHMRING_SHM_CTL_H
#define SHMRING_SHM_CTL_H

#include <pthread.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define CTL_MAX_PARTS 130u       /* 64 producers + 64 consumers + 2 spare */
#define CTL_LOCK_BASE 1024       /* byte offset of slot 0's liveness lock */
#define CTL_LOCK_OPEN 1000       /* every mapper holds it shared; gc unlinks only
				    under an exclusive lock on it */
#define CTL_LOCK_CTL  1001       /* the control lock: one holder at a time, exclusive */
#define CTL_LOCK_TIMEOUT_NS (2ull * 1000 * 1000 * 1000)

enum { PART_FREE = 0, PART_ACTIVE = 1 };
enum { ROLE_PRODUCER = 0x10, ROLE_CONSUMER = 0x20 };   /* == SHMRING_PRODUCER/CONSUMER */

struct ctl_part {                /* one per participant, 64 bytes */
	_Atomic uint32_t state;  /* PART_*; written under the control lock */
	_Atomic uint32_t roles;  /* ROLE_* bits */
	int32_t pid;             /* display only: pids are reused */
	uint32_t gen;            /* bumped each time the slot is taken */
	uint64_t start_ticks;    /* /proc/PID/stat starttime, display only */
	uint64_t attach_ns;      /* CLOCK_REALTIME at attach */
	_Atomic uint64_t bell;   /* its doorbell's id (sync/bell.h), 0: none; written
				    by the participant before it first arms */
	uint8_t pad[24];
};
_Static_assert(sizeof(struct ctl_part) == 64, "ctl_part is one cache line");

struct ctl_shared {
	_Atomic uint32_t busy;   /* nonzero while a holder of the control lock is
				    inside its section: found set, it died there */
	uint8_t reserved[60];    /* zero */
	uint32_t prod_owner;     /* SPSC: slot + 1 of the producer, 0 none */
	uint32_t cons_owner;     /* SPSC: slot + 1 of the consumer, 0 none */
	/* recovery counters, written under the lock (relaxed: readers display) */
	_Atomic uint64_t repairs, takeovers, redelivered, dropped, holes;
	_Atomic uint64_t last_attach_ns;   /* CLOCK_REALTIME of the latest attach */
	_Atomic uint64_t last_close_ns;    /* CLOCK_REALTIME of the latest close */
	struct ctl_part parts[CTL_MAX_PARTS];
	/* file: rings (mmapfile/): what survives a reboot */
	struct {
		uint8_t boot_id[16];              /* boot of the last process alone with it */
		_Atomic uint64_t durable_tail;    /* records before it reached the disk */
		uint8_t pad[40];
	} persist;
};
_Static_assert(offsetof(struct ctl_shared, busy) == 0, "ctl layout: busy");
_Static_assert(offsetof(struct ctl_shared, prod_owner) == 64, "ctl layout: owners");
_Static_assert(offsetof(struct ctl_shared, repairs) == 72, "ctl layout: counters");
_Static_assert(offsetof(struct ctl_shared, parts) == 128, "ctl layout: parts");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2 && ATOMIC_LLONG_LOCK_FREE == 2,
	       "only lock-free atomics are address-free across processes");
_Static_assert(CTL_LOCK_CTL != CTL_LOCK_OPEN && CTL_LOCK_CTL < CTL_LOCK_BASE,
	       "the control lock has a byte of its own");

/* A ring's part of a repair (MPMC: free the slots dead participants
 * held), run with the control lock held before their table slots are reused, so
 * that no ring word can name a participant slot that changed hands.
 * dead[] has bit i set for participant slot i. */
#define CTL_MASK_WORDS 3
_Static_assert(CTL_MAX_PARTS <= 64 * CTL_MASK_WORDS, "a bit per participant");
struct ctl_sweep {
	void (*fn)(void *arg, const uint64_t dead[CTL_MASK_WORDS]);
	void *arg;
};

/*
 * Take the control lock: `local` (process memory; NULL if no other thread
 * can use lock_fd), then the OFD write lock on byte CTL_LOCK_CTL through
 * lock_fd, an open file description of the caller's own.  Every lock goes
 * through here: if `busy` says the previous holder died inside its
 * section, the table is repaired (dead slots freed, owners checked, `sw`
 * run) and `repairs` counted before we return.  Bounded: -ETIMEDOUT after
 * CTL_LOCK_TIMEOUT_NS if a live process (or a peer that took the byte)
 * keeps it; the wait polls with back-off, nothing blocks in the kernel.
 * Lock order: local, then the byte.
 */
__attribute__((visibility("hidden")))
int ctl_lock(struct ctl_shared *c, pthread_mutex_t *local, int lock_fd, int check_fd,
	     const struct ctl_sweep *sw);
/* Leave the section: busy cleared, the byte, then `local`, released. */
__attribute__((visibility("hidden")))
void ctl_unlock(struct ctl_shared *c, pthread_mutex_t *local, int lock_fd);

/* Is slot i's liveness lock held by anybody (this process included)? */
__attribute__((visibility("hidden"))) bool ctl_alive(int check_fd, uint32_t slot);

/*
 * With the control lock held, after ctl_repair(): claim a free slot for `roles`, taking its
 * liveness lock through lock_fd (an open file description of our own).
 * Returns the slot index or -errno.
 */
__attribute__((visibility("hidden")))
int ctl_join(struct ctl_shared *c, int lock_fd, uint32_t roles);
/* With the control lock held: give the slot up and drop its lock. */
__attribute__((visibility("hidden")))
void ctl_leave(struct ctl_shared *c, int lock_fd, uint32_t slot);

/* With the control lock held: free every slot whose holder is dead, after `sw`
 * (may be NULL) freed what they held in the ring.  Idempotent: a repair
 * killed half-way leaves the slots marked, and the next one redoes it. */
__attribute__((visibility("hidden")))
void ctl_repair(struct ctl_shared *c, int check_fd, const struct ctl_sweep *sw);

/* Does `owner` (slot + 1, 0 none) name a live participant? */
__attribute__((visibility("hidden")))
bool ctl_owner_alive(struct ctl_shared *c, int check_fd, uint32_t owner);

/* Count live producers and consumers (no lock: a snapshot for stats). */
__attribute__((visibility("hidden")))
void ctl_count(struct ctl_shared *c, int check_fd, uint32_t *prods, uint32_t *conss);

/*
 * The "in use" lock: every process that maps the segment holds a shared
 * OFD lock on byte CTL_LOCK_OPEN through its descriptor, for as long as it
 * has the mapping.  ctl_hold_open() takes it (waiting, bounded, while a gc
 * holds it exclusively); ctl_try_exclusive() is gc's: it succeeds only if
 * no process has the segment open, and while it is held nobody can attach.
 */
__attribute__((visibility("hidden"))) int ctl_hold_open(int fd);
__attribute__((visibility("hidden"))) int ctl_try_exclusive(int fd);

#endif /* SHMRING_SHM_CTL_H */
