/* SPDX-License-Identifier: MIT */
/*
 * Rings in a segment (shm: and file:): what every ring kind's handle
 * shares -- the process's mapping, the control block, this handle's
 * liveness descriptor and participant slot -- and the table of ring kinds
 * (SPSC, MPMC, BCAST) that backend/seg.c chooses from by the segment header's
 * `kind`.
 */
#ifndef SHMRING_BACKEND_SEG_H
#define SHMRING_BACKEND_SEG_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "backend.h"
#include "../shm/ctl.h"
#include "../shm/registry.h"
#include "../sync/bell.h"

_Static_assert(SHMRING_PRODUCER == ROLE_PRODUCER && SHMRING_CONSUMER == ROLE_CONSUMER,
	       "oflags role bits are the participant role bits");

/* A named subscriber's name (file:PATH#NAME), NUL included: at most 63
 * characters of a shm: name's set. */
#define SEGH_NAME_MAX 64

struct seg_handle {
	struct shmring head;
	struct seg_map *map;       /* this process's mapping (shm/registry.h) */
	struct ctl_shared *ctl;    /* the control block in it */
	int lock_fd;               /* our own open file description: the liveness
				      and control locks; -1 without a role */
	int slot;                  /* participant slot, -1 without a role */
	bool is_file;              /* file: ring */
	int oflags;                /* shmring_open()'s (SHMRING_OLDEST: the kind reads it) */
	char sub_name[SEGH_NAME_MAX];   /* file:PATH#NAME: a named subscriber; "" none */
	const struct segh_kind *kind;
	/* With lock_fd's OFD lock, the control lock (shm/ctl.h): threads that
	 * share this handle share its open file description, which the kernel
	 * does not tell apart.  Per handle, like lock_fd: a forked child never
	 * takes a handle's control lock (its handles are disowned), so a
	 * mutex inherited locked at fork() is never waited on. */
	pthread_mutex_t ctl_local;
	/* shmring_fd(): our doorbell (fd -1 until asked for; published with
	 * a release store, read with segh_polls()), the socket we ring
	 * others' with (-1 until needed), and our own messages counted when we
	 * last armed (the spurious-readiness counter; threads sharing an MPMC
	 * handle may miscount, as its other counters) */
	struct bell bell;
	int ring_sock;
	uint64_t armed_at;
};

/* A ring kind on a segment: its handle type starts with struct seg_handle. */
struct segh_kind {
	uint32_t kind;             /* the header's kind: SHMRING_SPSC, _MPMC, _BCAST */
	size_t handle_size;
	bool in_files;             /* may live in a file: ring (reboot recovery) */
	const struct shmring_backend_ops *ops;
	/* After mapping, before any role: copy and check the kind's geometry
	 * and shared state into the handle.  0 or -EPROTO. */
	int (*init)(struct seg_handle *s);
	/* Take `roles` (lock_fd is open): join the participant table under
	 * the control lock.  0 or -errno (-EBUSY, -EUSERS, -ETIMEDOUT, ...). */
	int (*attach)(struct seg_handle *s, uint32_t roles);
	/* Leave the table, giving up what the handle holds (its slot >= 0,
	 * not forked).  Best effort: if the control lock times out, closing
	 * lock_fd afterwards still proves us gone. */
	void (*detach)(struct seg_handle *s);
	/* segh_pair_attach's kinds: take `roles` with the control lock held
	 * and the table repaired (ends with segh_pair_join).  NULL: others. */
	int (*attach_locked)(struct seg_handle *s, uint32_t roles);
};

static inline struct seg_handle *segh_of(struct shmring *r)
{
	return (struct seg_handle *)(void *)r;
}

BACKEND_HIDDEN extern const struct segh_kind segh_kind_spsc;    /* backend/spsc.c */
BACKEND_HIDDEN extern const struct segh_kind segh_kind_mpmc;    /* backend/mpmc.c */
BACKEND_HIDDEN extern const struct segh_kind segh_kind_bcast;   /* backend/bcast.c */
/* SPSC with SHMRING_FIXED in the header's flags */
BACKEND_HIDDEN extern const struct segh_kind segh_kind_fixed;   /* backend/fixed.c */

/* For the kinds' ops: */
/* Statistics every kind shares: counters, live participants, unlinked. */
BACKEND_HIDDEN int segh_stats(struct shmring *r, struct shmring_stats *st);
/* fork_child: close the liveness descriptor, so that the parent's death
 * still frees its slots. */
BACKEND_HIDDEN void segh_fork_child(struct shmring *r);
/* close for every kind: leave (the kind's detach), release the mapping,
 * free the handle. */
BACKEND_HIDDEN int segh_close(struct shmring *r);
/* Has this handle a doorbell?  (Threads sharing an MPMC handle: one may
 * make it while another calls.) */
static inline bool segh_polls(const struct seg_handle *s)
{
	/* acquire: pairs with segh_fd()'s release of bell.fd, after its id */
	return __atomic_load_n(&s->bell.fd, __ATOMIC_ACQUIRE) >= 0;
}

/* shmring_fd() for every kind. */
BACKEND_HIDDEN int segh_fd(struct shmring *r);
/* A waker took WAIT_POLLING down for participant `owner` (slot + 1, read
 * from the segment: checked here): ring its doorbell, count in *rung. */
BACKEND_HIDDEN void segh_ring(struct seg_handle *s, uint32_t owner, _Atomic uint64_t *rung);
/* A call of a polling handle found nothing to do (-EAGAIN): before it
 * arms ([B1]), empty the doorbell and count a wake-up that brought
 * nothing (`done`: this handle's messages so far) in *spurious.  After
 * [B1] the caller looks at the ring once more ([B3], seq_cst). */
BACKEND_HIDDEN void segh_arm_prepare(struct seg_handle *s, uint64_t done,
				     _Atomic uint64_t *spurious);
/* Ring our own doorbell: the loop comes back and calls again. */
BACKEND_HIDDEN void segh_ring_self(struct seg_handle *s);
/* After [B1], when the waker may have used the light fence (SPSC): the
 * heavy half (sync/fence.h). */
BACKEND_HIDDEN void segh_arm_fence(struct seg_handle *s);
/* shmring_flush() of a ring kind with a single producer (SPSC, BCAST):
 * nothing for shm:; a file: producer's records before `end` (its
 * reservation closed), a consumer's position, or everything without a
 * role.  *flushed: the producer's "durable up to". */
BACKEND_HIDDEN int segh_flush(struct seg_handle *s, bool resv_open, uint64_t *flushed,
			      uint64_t end);
/* The kinds with one producer and one consumer role (SPSC, FIXED), whose
 * owners are the control block's prod_owner and cons_owner and whose
 * sides sleep on one `sleeping` word each (sync/wait.h), at these offsets
 * of the ring state (asserted beside each kind's state): */
#define SEGH_PAIR_CONS_SLEEPING 256u
#define SEGH_PAIR_PROD_SLEEPING 264u
/* attach: the control lock, the repair, then the kind's attach_locked */
BACKEND_HIDDEN int segh_pair_attach(struct seg_handle *s, uint32_t roles);
/* under the control lock, the roles' state taken over: join the table,
 * become the owners, take down what a dead predecessor left armed */
BACKEND_HIDDEN int segh_pair_join(struct seg_handle *s, uint32_t roles);
/* detach: give the roles up, with our arming */
BACKEND_HIDDEN void segh_pair_detach(struct seg_handle *s);
/* caps: one producer, one consumer, in place, recovered (and FIXED) */
BACKEND_HIDDEN int segh_pair_caps(struct shmring *r, struct shmring_caps *caps);
/* shutdown by the producer: the flag ([S1]), then wake the consumer, a
 * poller or a sleeper */
BACKEND_HIDDEN void segh_pair_shutdown(struct seg_handle *s, _Atomic uint32_t *shutdown,
				       _Atomic uint32_t *cons_sleeping, _Atomic uint32_t *cons_wake,
				       _Atomic uint64_t *prod_wakes, _Atomic uint64_t *prod_bells);
/* A peer that answers at once: look at *watch (!= seen) and *shutdown for
 * a few polls before the caller reads any clock; false at once with a
 * spin time of 0. */
BACKEND_HIDDEN bool segh_pre_spin(const struct seg_handle *s, _Atomic uint64_t *watch,
				  uint64_t seen, _Atomic uint32_t *shutdown);

/* Take and release the control lock for this handle. */
BACKEND_HIDDEN int segh_lock(struct seg_handle *s, const struct ctl_sweep *sw);
BACKEND_HIDDEN void segh_unlock(struct seg_handle *s);

#endif
