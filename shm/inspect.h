/* SPDX-License-Identifier: MIT */
/*
 * Reading a segment without disturbing it: the one reader behind
 * shmring_stats() and shmctl-tool.
 *
 * seg_snap_read() copies the header with pread (no mapping: a short file
 * cannot SIGBUS us), validates the copy with seg_check(), then copies the
 * control block and the ring state and checks what the library checks on
 * open.  Nothing is locked, mapped or written.  seg_counters() maps the
 * counters of a control block and ring state (a live mapping or a copy)
 * to struct shmring_stats.
 */
#ifndef SHMRING_SHM_INSPECT_H
#define SHMRING_SHM_INSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "segment.h"
#include "../ring/bcast.h"
#include "../ring/fixed.h"
#include "../ring/mpmc.h"
#include "../ring/spsc.h"
#include "ctl.h"

/* What a snapshot says of its segment, coarsely. */
enum seg_verdict {
	SEG_V_OK = 0,        /* valid header, geometry and ring state */
	SEG_V_INCOMPLETE,    /* magic, but version 0: being created, or its creator died */
	SEG_V_UNSUPPORTED,   /* magic, but another layout version or build */
	SEG_V_CORRUPT,       /* magic, but inconsistent */
};

struct seg_snap {
	struct stat st;              /* the file, when read */
	size_t hdr_bytes;            /* how much of the header the file holds */
	struct seg_hdr hdr;          /* raw copy */
	bool ours;                   /* carries the shmring magic */
	enum seg_verdict verdict;    /* meaningful when ours */
	char why[256];               /* why verdict is not SEG_V_OK */
	struct seg_geom g;           /* SEG_V_OK only */
	bool have_state;             /* ctl and the ring state below are copies */
	struct ctl_shared ctl;
	struct spsc_shared ring;     /* SPSC */
	struct fixed_shared fring;   /* SPSC with SHMRING_FIXED (seg_is_fixed) */
	struct mpmc_shared mring;    /* MPMC */
	struct mpmc_geom mg;         /* MPMC, from the validated header (data: NULL) */
	struct bcast_shared bring;   /* BCAST */
};

/* An SPSC ring of fixed-size messages (ring/fixed.h)? */
static inline bool seg_is_fixed(const struct seg_geom *g)
{
	return g->kind == SHMRING_SPSC && (g->flags & SHMRING_FIXED);
}

/* Snapshot the segment behind fd: 0 (the verdict says the rest), or
 * -errno for an I/O error. */
__attribute__((visibility("hidden"))) int seg_snap_read(int fd, struct seg_snap *s);

/* Is stall_ms, read from an MPMC ring state, one the library accepts? */
static inline bool seg_stall_valid(uint32_t stall_ms)
{
	return stall_ms != 0 && stall_ms <= MPMC_STALL_MAX_MS;
}

/* Counters, shut_down, used, capacity, max_msg and kind of a segment of
 * geometry g, from its control block and ring state (struct spsc_shared,
 * struct fixed_shared, struct mpmc_shared or struct bcast_shared, by
 * g->kind and seg_is_fixed()), into a zeroed
 * *st: a relaxed snapshot (MPMC and BCAST sums are added; BCAST: the lag
 * fields are the slowest counted subscriber's).  Leaves the other fields
 * alone. */
__attribute__((visibility("hidden")))
void seg_counters(const struct seg_geom *g, const struct ctl_shared *c, const void *ring,
		  struct shmring_stats *st);

/* One BCAST subscriber line, as a snapshot shows it. */
struct seg_bc_sub {
	uint32_t state, owner;     /* BC_FREE/ACTIVE/PARKED, participant slot + 1 */
	bool counted;              /* its bit in `active` */
	char name[BC_NAME_MAX];    /* NUL-terminated copy */
	uint64_t pos, lag_bytes, lag_msgs, msgs_recv, msgs_lost, evictions;
};

/* Line i of a BCAST ring state (a copy or a live mapping): relaxed. */
__attribute__((visibility("hidden")))
void seg_bc_sub(const struct bcast_shared *b, uint64_t capacity, uint32_t i,
		struct seg_bc_sub *out);

#endif /* SHMRING_SHM_INSPECT_H */
