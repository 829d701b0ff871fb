/* SPDX-License-Identifier: MIT */
/*
 * Control plane of a segment: the participant table, role ownership and
 * recovery counters, guarded by one robust process-shared mutex.  Nothing
 * here is on the per-message path.
 *
 * Liveness: participant slot i is alive while some process holds an OFD
 * write lock on byte CTL_LOCK_BASE + i of the segment file.  The kernel
 * drops that lock when the last descriptor of the holder's open file
 * description goes away, i.e. when the process dies, however it dies; pid
 * reuse cannot fake it.  pid and start time are kept for display only.
 */
#ifndef SHMRING_SYNC_CTL_H
#define SHMRING_SYNC_CTL_H

#include <pthread.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define CTL_MAX_PARTS 130u       /* 64 producers + 64 consumers + 2 spare */
#define CTL_LOCK_BASE 1024       /* byte offset of slot 0's liveness lock */
#define CTL_LOCK_OPEN 1000       /* every mapper holds it shared; gc unlinks only
				    under an exclusive lock on it */
#define CTL_LOCK_TIMEOUT_NS (2ull * 1000 * 1000 * 1000)

enum { PART_FREE = 0, PART_ACTIVE = 1 };
enum { ROLE_PRODUCER = 0x10, ROLE_CONSUMER = 0x20 };   /* == SHMRING_PRODUCER/CONSUMER */

struct ctl_part {                /* one per participant, 64 bytes */
	_Atomic uint32_t state;  /* PART_*; written under the mutex */
	_Atomic uint32_t roles;  /* ROLE_* bits */
	int32_t pid;             /* display only: pids are reused */
	uint32_t gen;            /* bumped each time the slot is taken */
	uint64_t start_ticks;    /* /proc/PID/stat starttime, display only */
	uint64_t attach_ns;      /* CLOCK_REALTIME at attach */
	uint8_t pad[32];
};
_Static_assert(sizeof(struct ctl_part) == 64, "ctl_part is one cache line");

struct ctl_shared {
	union {
		pthread_mutex_t mutex;   /* robust, process-shared */
		uint8_t mutex_space[64];
	};
	uint32_t prod_owner;     /* SPSC: slot + 1 of the producer, 0 none */
	uint32_t cons_owner;     /* SPSC: slot + 1 of the consumer, 0 none */
	/* recovery counters, written under the mutex (relaxed: readers display) */
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
_Static_assert(sizeof(pthread_mutex_t) <= 64, "mutex fits its space");
_Static_assert(offsetof(struct ctl_shared, parts) == 128, "ctl layout");

/* A ring's part of a repair (MPMC: free the slots dead participants
 * held), run with the mutex held before their table slots are reused, so
 * that no ring word can name a participant slot that changed hands.
 * dead[] has bit i set for participant slot i. */
#define CTL_MASK_WORDS 3
_Static_assert(CTL_MAX_PARTS <= 64 * CTL_MASK_WORDS, "a bit per participant");
struct ctl_sweep {
	void (*fn)(void *arg, const uint64_t dead[CTL_MASK_WORDS]);
	void *arg;
};

/* Initialise a fresh control block (creator only, before publication). */
__attribute__((visibility("hidden"))) int ctl_init(struct ctl_shared *c);

/*
 * Take the mutex.  Every lock of it goes through here: on EOWNERDEAD the
 * table is repaired (dead slots freed, owners checked) and the mutex marked
 * consistent before we return.  Bounded: -ETIMEDOUT after
 * CTL_LOCK_TIMEOUT_NS if a live process keeps it.
 */
__attribute__((visibility("hidden")))
int ctl_lock(struct ctl_shared *c, int check_fd, const struct ctl_sweep *sw);
__attribute__((visibility("hidden"))) void ctl_unlock(struct ctl_shared *c);

/* Is slot i's liveness lock held by anybody (this process included)? */
__attribute__((visibility("hidden"))) bool ctl_alive(int check_fd, uint32_t slot);

/*
 * With the mutex held, after ctl_repair(): claim a free slot for `roles`, taking its
 * liveness lock through lock_fd (an open file description of our own).
 * Returns the slot index or -errno.
 */
__attribute__((visibility("hidden")))
int ctl_join(struct ctl_shared *c, int lock_fd, uint32_t roles);
/* With the mutex held: give the slot up and drop its lock. */
__attribute__((visibility("hidden")))
void ctl_leave(struct ctl_shared *c, int lock_fd, uint32_t slot);

/* With the mutex held: free every slot whose holder is dead, after `sw`
 * (may be NULL) freed what they held in the ring.  Idempotent: a repair
 * killed half-way leaves the slots marked, and the next one redoes it. */
__attribute__((visibility("hidden")))
void ctl_repair(struct ctl_shared *c, int check_fd, const struct ctl_sweep *sw);

/* Does `owner` (slot + 1, 0 none) name a live participant? */
__attribute__((visibility("hidden")))
bool ctl_owner_alive(struct ctl_shared *c, int check_fd, uint32_t owner);

/* Count live producers and consumers (no mutex: a snapshot for stats). */
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

/* Once per process: prove that robust mutexes work here (a thread that
 * dies holding one must hand EOWNERDEAD to the next locker).  0 or -ENOTSUP. */
__attribute__((visibility("hidden"))) int ctl_probe_robust(void);

#endif /* SHMRING_SYNC_CTL_H */
