/* SPDX-License-Identifier: MIT */
/*
 * Reading a segment from outside, without disturbing it.
 *
 * Everything is a copy: the library's reader (seg_snap_read, shm/inspect.h)
 * preads the header, the control block and the ring state (struct
 * spsc_shared or struct mpmc_shared) into private memory and validates
 * them there, with the library's own checks and reasons: copy first, then
 * validate the copy, never the shared original a peer may change
 * meanwhile.  The tool adds liveness and formats.  Only
 * `dump`, `check` and (MPMC) `info` map the file, read-only, to walk the
 * records with the acquire loads of spsc_parse() or the MPMC slot words,
 * under a SIGBUS guard (a peer may truncate the file after we checked its
 * size).  Every loop over shared memory is bounded by the validated
 * geometry, never by a value read from the segment.
 *
 * Nothing here takes a lock: liveness is F_OFD_GETLK through our own
 * descriptor, which never blocks and changes nothing.  The only lock the
 * tool ever takes is gc's exclusive "in use" lock (cmd_gc.c).
 */
#ifndef SHMCTL_SEG_H
#define SHMCTL_SEG_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "ring/mpmc.h"
#include "ring/spsc.h"
#include "shm/inspect.h"
#include "shm/segment.h"
#include "shm/ctl.h"

/* A snapshot's verdict (shm/inspect.h), and one verdict of check's own. */
enum tstatus {
	TS_OK = SEG_V_OK,
	TS_INCOMPLETE = SEG_V_INCOMPLETE,
	TS_UNSUPPORTED = SEG_V_UNSUPPORTED,
	TS_CORRUPT = SEG_V_CORRUPT,
	TS_REPAIR,          /* check only: sound, but holds what a dead process left */
};

struct tpart {
	uint32_t slot, state, roles, gen;
	int32_t pid;
	uint64_t start_ticks, attach_ns;
	uint64_t bell;          /* its doorbell's id (shmring_fd), 0: none */
	bool alive;             /* its liveness lock is held now */
	bool owns_prod, owns_cons;
};

struct tseg {
	char path[PATH_MAX];    /* for messages and output */
	char name[256];         /* file name */
	const char *backend;    /* "shm" or "file" */
	int fd;
	bool writable;
	struct stat st;

	/* header, raw copy */
	size_t hdr_bytes;
	struct seg_hdr hdr;
	bool ours;              /* carries the shmring magic */
	enum tstatus status;
	char reason[256];       /* why status is not TS_OK */
	struct seg_geom g;      /* TS_OK only */

	/* control block and ring state, copies (TS_OK only) */
	bool have_state;
	struct ctl_shared ctl;
	struct spsc_shared ring;         /* SPSC (FIXED: its wait line, at the same offsets) */
	struct fixed_shared fring;       /* SPSC with SHMRING_FIXED: indices count messages */
	uint64_t prod_tail, cons_head, cons_read;
	struct mpmc_shared mring;        /* MPMC */
	struct mpmc_geom mg;             /* from the validated header (data: NULL) */
	struct bcast_shared bring;       /* BCAST (prod_tail: its head hint, cons_head and
					    cons_read: its tail, the oldest record) */
	uint32_t stall_ms;               /* MPMC, validated */
	uint64_t prod_ticket, cons_ticket, queued;   /* MPMC hints; queued in slots */
	uint64_t used;                   /* bytes queued (MPMC: queued slots x stride) */
	bool shut_down;

	/* liveness, through F_OFD_GETLK */
	bool in_use;            /* some process maps it (holds the open lock) */
	bool slot_locked;       /* some liveness lock is held */
	unsigned nparts;        /* ACTIVE slots in parts[] */
	struct tpart parts[CTL_MAX_PARTS];
	int16_t part_at[CTL_MAX_PARTS];  /* participant slot -> index in parts[], -1 */
	uint32_t prod_live, prod_dead, cons_live, cons_dead;

	uint64_t last_activity_ns;   /* CLOCK_REALTIME */
	const char *activity_from;   /* which timestamp it came from */

	const uint8_t *base;    /* read-only mapping (tseg_map) */
	size_t map_size;
};

#define TSEG_NOT_REGULAR 1

void tseg_init(struct tseg *s);
/*
 * Open `name` relative to dirfd (or a path with AT_FDCWD), never following a
 * symbolic link and never blocking (a FIFO): 0, TSEG_NOT_REGULAR, or -errno.
 * rw: O_RDWR (gc), else O_RDONLY.
 */
int tseg_open(struct tseg *s, int dirfd, const char *name, const char *path, bool rw);
/* (Re)read the header, then the state and liveness if the header is valid.
 * Returns 0, or -errno for an I/O error (status is then meaningless). */
int tseg_read(struct tseg *s);
void tseg_close(struct tseg *s);

const char *tstatus_name(enum tstatus st);
const char *kind_name(uint32_t kind);
static inline bool tseg_mpmc(const struct tseg *s)
{
	return s->g.kind == SHMRING_MPMC;
}
static inline bool tseg_bcast(const struct tseg *s)
{
	return s->g.kind == SHMRING_BCAST;
}
static inline bool tseg_fixed(const struct tseg *s)
{
	return seg_is_fixed(&s->g);
}
/* The entry of participant slot `slot` (ACTIVE or not), or NULL if free. */
const struct tpart *tseg_part(const struct tseg *s, uint32_t slot);

/* 1 if any lock is held on [at, at+len), 0 if none, -EIO if the test failed
 * (sync/lock.h lock_held). */
int tseg_locked(int fd, off_t at, off_t len);

/* Consistency of the copied ring state and participant table (TS_OK).
 * 0, or -EPROTO with the reason in why; warnings are appended to warn
 * (up to nwarn lines of 200 bytes). */
int tseg_check_state(const struct tseg *s, char *why, size_t n, char (*warn)[200],
		     unsigned max_warn, unsigned *nwarn);

/* ---- records ----------------------------------------------------------- */

int tseg_map(struct tseg *s);
void tseg_unmap(struct tseg *s);
/* Run fn(arg) with SIGBUS turned into a return of -EFAULT (the file shrank
 * under the mapping); otherwise fn's result. */
int tseg_guarded(int (*fn)(void *arg), void *arg);

enum walk_stop { WALK_END, WALK_COUNT, WALK_MOVED, WALK_CORRUPT, WALK_FAULT, WALK_NOMEM };

struct trec {
	uint64_t index;
	uint64_t pos;            /* ring position of the record (fillers in front included) */
	uint64_t off;            /* offset of the payload in the data area */
	uint32_t len;
	const uint8_t *copy;    /* the first `copied` payload bytes, private */
	uint32_t copied;
	bool acquired;          /* handed to the consumer, not yet released */
	/* MPMC slots (tmpmc_walk) */
	bool mpmc;
	bool has_msg;           /* READY, READING or STUCK: len and payload are a message's */
	uint64_t ticket, slot, word;
	unsigned state, owner;  /* owner: participant slot + 1, 0 none */
	int32_t pid;            /* owner's recorded pid, 0 unknown */
	bool owner_alive;       /* its liveness lock is held now */
	const char *problem;    /* a word the library would refuse: why (keep_going) */
};

struct twalk {
	uint64_t msgs, bytes, head, end;
	enum walk_stop stop;
	char reason[256];
};

/*
 * Walk the queued records from cons_head on the read-only mapping, with
 * spsc_parse()'s rules, stopping at the first zero header, after max_msgs
 * (0: no limit), or when the consumer releases what we are looking at.
 * cb (may be NULL) gets each message with a private copy of up to
 * copy_max bytes of it (0: all).  Bounded by capacity / 8 steps.
 */
void tseg_walk(struct tseg *s, uint64_t max_msgs, uint64_t copy_max,
	       void (*cb)(void *arg, const struct trec *r), void *arg, struct twalk *out);

/* ---- MPMC slots (slots.c) --------------------------------------------- */

/* A slot word that the library would refuse (mw_explain), or one more than a
 * lap behind t: why, or NULL if it is sound.
 * t: any ticket of the slot the word stands in. */
const char *mw_problem(const struct mpmc_geom *g, uint64_t w, uint64_t t, char *buf, size_t n);

#define MW_NSTATES (MS_STUCK + 1)

struct tmwalk {
	uint64_t states[MW_NSTATES], invalid;
	uint64_t held[CTL_MAX_PARTS];      /* slots held per participant slot */
	uint64_t held_dead[CTL_MAX_PARTS]; /* ... whose holder is dead */
	uint64_t shown, msgs, bytes;       /* entries given to cb; READY ones and their bytes */
	uint64_t changed;                  /* words that moved on while read (not shown) */
	uint64_t start;                    /* first ticket walked */
	enum walk_stop stop;
	char reason[256];                  /* WALK_CORRUPT / WALK_FAULT */
	uint64_t bad_slot;                 /* WALK_CORRUPT: the first bad slot */
};

/*
 * Walk every slot once, from ticket `start` (the slot of start first), on
 * the read-only mapping: count the states and holders and give cb (may be
 * NULL) each slot that is not FREE, up to max_shown of them (0: all), with
 * a private copy of up to copy_max payload bytes (0: all) of a committed
 * message.  A slot whose word changes while it is read is retried, then
 * counted as changed.  Stops (WALK_CORRUPT) at a word the library would
 * refuse unless keep_going.  Bounded by the validated slot count.
 */
void tmpmc_walk(struct tseg *s, uint64_t start, uint64_t max_shown, uint64_t copy_max,
		bool keep_going, void (*cb)(void *arg, const struct trec *r), void *arg,
		struct tmwalk *out);

/* Is participant slot `slot`'s liveness lock held right now? */
bool tseg_alive_now(const struct tseg *s, uint32_t slot);

/* Counters as shmring_stats() reports them (seg_counters), from the copies;
 * producers, consumers and unlinked are left 0. */
void tseg_stats(const struct tseg *s, struct shmring_stats *st);

/* "shm:NAME" or "file:PATH" */
const char *tseg_uri(const struct tseg *s, char *buf, size_t n);

#endif
