/* SPDX-License-Identifier: MIT */
#include "seg.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shmctl.h"
#include "sync/lock.h"
#include "sync/wait.h"

void tseg_init(struct tseg *s)
{
	memset(s, 0, sizeof(*s));
	s->fd = -1;
	s->backend = "shm";
}

const char *tstatus_name(enum tstatus st)
{
	switch (st) {
	case TS_OK: return "ok";
	case TS_INCOMPLETE: return "incomplete";
	case TS_UNSUPPORTED: return "unsupported";
	case TS_CORRUPT: return "corrupt";
	case TS_REPAIR: return "needs-repair";
	}
	return "?";
}

const char *kind_name(uint32_t kind)
{
	return kind == SHMRING_SPSC ? "spsc" : kind == SHMRING_MPMC ? "mpmc" :
	       kind == SHMRING_BCAST ? "bcast" : "unknown";
}

int tseg_open(struct tseg *s, int dirfd, const char *name, const char *path, bool rw)
{
	struct stat pre;
	snprintf(s->path, sizeof(s->path), "%s", path);
	const char *slash = strrchr(path, '/');
	snprintf(s->name, sizeof(s->name), "%s", slash ? slash + 1 : path);
	/* Look before opening: opening a device node could have side effects
	 * and a FIFO would block without O_NONBLOCK. */
	if (fstatat(dirfd, name, &pre, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (!S_ISREG(pre.st_mode))
		return TSEG_NOT_REGULAR;
	int fl = (rw ? O_RDWR : O_RDONLY) | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
	/* O_NOATIME where allowed: inspecting should not even touch atime */
	int fd = openat(dirfd, name, fl | (rw ? 0 : O_NOATIME));
	if (fd < 0 && errno == EPERM && !rw)
		fd = openat(dirfd, name, fl);
	if (fd < 0)
		return errno == ELOOP ? TSEG_NOT_REGULAR : -errno;
	if (fstat(fd, &s->st) < 0) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	if (!S_ISREG(s->st.st_mode)) {
		close(fd);
		return TSEG_NOT_REGULAR;   /* replaced between the two looks */
	}
	s->fd = fd;
	s->writable = rw;
	return 0;
}

void tseg_close(struct tseg *s)
{
	tseg_unmap(s);
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

int tseg_locked(int fd, off_t at, off_t len)
{
	off_t held = lock_held(fd, at, len);
	return held == -2 ? -EIO : held >= 0;    /* -EIO: the test itself failed */
}

static uint64_t ts_ns(const struct timespec *t)
{
	return t->tv_sec < 0 ? 0 : (uint64_t)t->tv_sec * 1000000000ull + (uint64_t)t->tv_nsec;
}

static void liveness(struct tseg *s)
{
	int rc = tseg_locked(s->fd, CTL_LOCK_OPEN, 1);
	s->in_use = rc != 0;                 /* an error cannot prove it unused */
	rc = tseg_locked(s->fd, CTL_LOCK_BASE, CTL_MAX_PARTS);
	s->slot_locked = rc != 0;
	s->nparts = 0;
	s->prod_live = s->prod_dead = s->cons_live = s->cons_dead = 0;
	for (uint32_t i = 0; i < CTL_MAX_PARTS; i++)
		s->part_at[i] = -1;
	if (!s->have_state)
		return;
	for (uint32_t i = 0; i < CTL_MAX_PARTS; i++) {
		const struct ctl_part *p = &s->ctl.parts[i];
		/* relaxed: a private copy */
		uint32_t state = atomic_load_explicit(&p->state, memory_order_relaxed);
		if (state == PART_FREE)
			continue;
		s->part_at[i] = (int16_t)s->nparts;
		struct tpart *t = &s->parts[s->nparts++];
		t->slot = i;
		t->state = state;
		t->roles = atomic_load_explicit(&p->roles, memory_order_relaxed);
		t->gen = p->gen;
		t->pid = p->pid;
		t->start_ticks = p->start_ticks;
		t->attach_ns = p->attach_ns;
		t->bell = atomic_load_explicit(&p->bell, memory_order_relaxed);
		t->alive = s->slot_locked && tseg_locked(s->fd, CTL_LOCK_BASE + (off_t)i, 1) != 0;
		t->owns_prod = s->ctl.prod_owner == i + 1;
		t->owns_cons = s->ctl.cons_owner == i + 1;
		if (state != PART_ACTIVE)
			continue;
		if (t->roles & ROLE_PRODUCER)
			*(t->alive ? &s->prod_live : &s->prod_dead) += 1;
		if (t->roles & ROLE_CONSUMER)
			*(t->alive ? &s->cons_live : &s->cons_dead) += 1;
	}
}

const struct tpart *tseg_part(const struct tseg *s, uint32_t slot)
{
	if (slot >= CTL_MAX_PARTS || s->part_at[slot] < 0)
		return NULL;
	return &s->parts[s->part_at[slot]];
}

bool tseg_alive_now(const struct tseg *s, uint32_t slot)
{
	/* an error cannot prove it dead */
	return slot >= CTL_MAX_PARTS || tseg_locked(s->fd, CTL_LOCK_BASE + (off_t)slot, 1) != 0;
}

static void activity(struct tseg *s)
{
	if (s->have_state) {
		/* relaxed: private copies */
		uint64_t a = atomic_load_explicit(&s->ctl.last_attach_ns, memory_order_relaxed);
		uint64_t c = atomic_load_explicit(&s->ctl.last_close_ns, memory_order_relaxed);
		s->last_activity_ns = s->g.created_ns;
		s->activity_from = "created";
		if (a > s->last_activity_ns) {
			s->last_activity_ns = a;
			s->activity_from = "last attach";
		}
		if (c > s->last_activity_ns) {
			s->last_activity_ns = c;
			s->activity_from = "last close";
		}
		return;
	}
	/* no trustworthy header: when the file was last written (creation,
	 * or whoever wrote the header since) */
	s->last_activity_ns = ts_ns(&s->st.st_mtim);
	s->activity_from = "file modified";
}

/* The snapshot's copies, and what the tool shows of them. */
static void take(struct tseg *s, const struct seg_snap *snap)
{
	s->st = snap->st;
	s->hdr_bytes = snap->hdr_bytes;
	s->hdr = snap->hdr;
	s->ours = snap->ours;
	s->status = (enum tstatus)snap->verdict;
	snprintf(s->reason, sizeof(s->reason), "%s", snap->why);
	s->g = snap->g;
	s->have_state = snap->have_state;
	if (!s->have_state)
		return;
	s->ctl = snap->ctl;
	/* relaxed throughout: private copies */
	if (tseg_mpmc(s)) {
		const struct mpmc_shared *m = &snap->mring;
		s->mring = *m;
		s->mg = snap->mg;
		s->stall_ms = m->stall_ms;
		s->prod_ticket = atomic_load_explicit(&m->prod_ticket, memory_order_relaxed);
		s->cons_ticket = atomic_load_explicit(&m->cons_ticket, memory_order_relaxed);
		s->queued = mpmc_queued(m, &s->mg);
	} else if (tseg_bcast(s)) {
		s->bring = snap->bring;
		s->prod_tail = atomic_load_explicit(&s->bring.head, memory_order_relaxed);
		s->cons_head = s->cons_read = atomic_load_explicit(&s->bring.tail,
								    memory_order_relaxed);
	} else if (tseg_fixed(s)) {
		s->fring = snap->fring;
		/* the wait line (shutdown, sleeping words) where an SPSC
		 * ring's is, for what reads it there (segment.c pins both) */
		memcpy(&s->ring, &snap->fring, sizeof(s->ring));
		s->prod_tail = atomic_load_explicit(&s->fring.prod_tail, memory_order_relaxed);
		s->cons_head = atomic_load_explicit(&s->fring.cons_head, memory_order_relaxed);
		s->cons_read = atomic_load_explicit(&s->fring.cons_read, memory_order_relaxed);
	} else {
		s->ring = snap->ring;
		s->prod_tail = atomic_load_explicit(&s->ring.prod_tail, memory_order_relaxed);
		s->cons_head = atomic_load_explicit(&s->ring.cons_head, memory_order_relaxed);
		s->cons_read = atomic_load_explicit(&s->ring.cons_read, memory_order_relaxed);
	}
	struct shmring_stats st;
	tseg_stats(s, &st);
	s->used = st.used;
	s->shut_down = st.shut_down;
}

int tseg_read(struct tseg *s)
{
	struct seg_snap *snap = malloc(sizeof(*snap));
	if (!snap)
		return -ENOMEM;
	int rc = seg_snap_read(s->fd, snap);
	if (rc == 0) {
		take(s, snap);
		if (s->ours) {
			liveness(s);
			activity(s);
		}
	}
	free(snap);
	return rc;
}

/* ---- state ------------------------------------------------------------- */

/* Warnings go to warn[] (max_warn lines), counted in *nwarn. */
struct warns {
	char (*line)[200];
	unsigned max, *n;
};

static void warnf(struct warns *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void warnf(struct warns *w, const char *fmt, ...)
{
	if (*w->n >= w->max)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(w->line[(*w->n)++], sizeof(w->line[0]), fmt, ap);
	va_end(ap);
}

/* SHMRING_FIXED: message counts, read <= tail, within a ring of head */
static int fixed_indices(const struct tseg *s, char *why, size_t n)
{
	typedef unsigned long long ull;
	uint64_t slots = s->g.capacity / fx_stride_for(s->g.max_msg);
	uint64_t head = s->cons_head, read = s->cons_read, tail = s->prod_tail;
	if (tail - head > slots || read - head > tail - head) {
		snprintf(why, n, "counters out of order: cons_head %llu <= cons_read %llu <= "
			 "prod_tail %llu <= cons_head + %llu slots does not hold", (ull)head,
			 (ull)read, (ull)tail, (ull)slots);
		return -EPROTO;
	}
	return 0;
}

static int spsc_indices(const struct tseg *s, char *why, size_t n)
{
	if (tseg_fixed(s))
		return fixed_indices(s, why, n);
	uint64_t cap = s->g.capacity, head = s->cons_head, read = s->cons_read, tail = s->prod_tail;
	if ((head | read | tail) & 7u) {
		snprintf(why, n, "index not a multiple of 8 (prod_tail %llu, cons_head %llu, "
			 "cons_read %llu)", (unsigned long long)tail, (unsigned long long)head,
			 (unsigned long long)read);
		return -EPROTO;
	}
	if (read - head > cap) {
		snprintf(why, n, "cons_read %llu is not within capacity %llu after cons_head %llu",
			 (unsigned long long)read, (unsigned long long)cap, (unsigned long long)head);
		return -EPROTO;
	}
	/* prod_tail is a hint stored after publication: the consumer may be
	 * ahead of it, by less than a ring */
	if ((int64_t)(tail - head) > (int64_t)cap || (int64_t)(head - tail) > (int64_t)cap) {
		snprintf(why, n, "prod_tail %llu and cons_head %llu are more than capacity %llu apart",
			 (unsigned long long)tail, (unsigned long long)head, (unsigned long long)cap);
		return -EPROTO;
	}
	return 0;
}

/* MPMC: the ticket hints only move one step at a time behind the slot
 * words (mpmc_pass), so they stay within a lap or so of each other; two
 * laps apart is damage. */
static int mpmc_tickets(const struct tseg *s, char *why, size_t n)
{
	uint64_t p = s->prod_ticket, c = s->cons_ticket, lap = s->mg.nslots;
	if ((int64_t)(p - c) > (int64_t)(2 * lap) || (int64_t)(c - p) > (int64_t)(2 * lap)) {
		snprintf(why, n, "prod_ticket %llu and cons_ticket %llu are more than two laps "
			 "(%llu slots each) apart", (unsigned long long)p, (unsigned long long)c,
			 (unsigned long long)lap);
		return -EPROTO;
	}
	return 0;
}

/* Role owners and the participant table, the same for both kinds. */
static int participants(const struct tseg *s, char *why, size_t n, struct warns *w)
{
	const uint32_t owners[2] = { s->ctl.prod_owner, s->ctl.cons_owner };
	/* relaxed: private copy.  busy with the control lock's byte free: its
	 * holder died inside (or a peer wrote the word); only tested, never
	 * taken (F_OFD_GETLK) */
	if (atomic_load_explicit(&s->ctl.busy, memory_order_relaxed) != 0 &&
	    tseg_locked(s->fd, CTL_LOCK_CTL, 1) == 0)
		warnf(w, "a holder of the control lock died inside its section: the next "
		      "producer or consumer to attach repairs the table");
	for (int i = 0; i < 2; i++) {
		const char *role = i ? "consumer" : "producer";
		uint32_t o = owners[i];
		if (o > CTL_MAX_PARTS) {
			snprintf(why, n, "%s owner %u is not a slot (max %u)", role, o, CTL_MAX_PARTS);
			return -EPROTO;
		}
		if (o == 0)
			continue;
		/* relaxed: private copy */
		uint32_t st = atomic_load_explicit(&s->ctl.parts[o - 1].state, memory_order_relaxed);
		if (st != PART_ACTIVE)
			warnf(w, "%s owner names free slot %u: stale, cleared at the next attach",
			      role, o - 1);
	}
	for (uint32_t i = 0; i < CTL_MAX_PARTS; i++) {
		const struct ctl_part *p = &s->ctl.parts[i];
		uint32_t st = atomic_load_explicit(&p->state, memory_order_relaxed);
		uint32_t roles = atomic_load_explicit(&p->roles, memory_order_relaxed);
		if (st != PART_FREE && st != PART_ACTIVE) {
			snprintf(why, n, "participant slot %u has state %u", i, st);
			return -EPROTO;
		}
		if (st == PART_ACTIVE && (roles & ~(uint32_t)(ROLE_PRODUCER | ROLE_CONSUMER))) {
			snprintf(why, n, "participant slot %u has roles 0x%x", i, roles);
			return -EPROTO;
		}
	}
	for (unsigned i = 0; i < s->nparts; i++) {
		const struct tpart *p = &s->parts[i];
		if (p->state == PART_ACTIVE && !p->alive)
			warnf(w, "slot %u (pid %d, %s) is dead and not yet cleaned up: the next attach "
			      "repairs it", p->slot, p->pid,
			      (p->roles & ROLE_PRODUCER) ? ((p->roles & ROLE_CONSUMER) ? "producer+consumer"
							    : "producer") : "consumer");
	}
	return 0;
}

static void spsc_warnings(const struct tseg *s, struct warns *w)
{
	const struct spsc_shared *r = &s->ring;
	if (s->prod_live > 1 || s->cons_live > 1)
		warnf(w, "%u live producers and %u live consumers on an SPSC ring",
		      s->prod_live, s->cons_live);
	/* relaxed throughout: private copy */
	uint32_t shut = atomic_load_explicit(&r->shutdown, memory_order_relaxed);
	if (shut > 1)
		warnf(w, "shutdown flag holds %u (only 0 and 1 are written)", shut);
	if ((atomic_load_explicit(&r->cons_sleeping, memory_order_relaxed) & WAIT_WAITERS) &&
	    !s->cons_live)
		warnf(w, "consumer sleeping flag up with no live consumer: cleared at the next attach");
	if ((atomic_load_explicit(&r->prod_sleeping, memory_order_relaxed) & WAIT_WAITERS) &&
	    !s->prod_live)
		warnf(w, "producer sleeping flag up with no live producer: cleared at the next attach");
}

/* A sleeper mask naming participants that are not alive: one wasted wake-up. */
static void sleeper_warning(const struct tseg *s, const _Atomic uint64_t *mask,
			    const char *side, struct warns *w)
{
	char list[120] = "";
	size_t len = 0;
	unsigned stale = 0;
	for (unsigned k = 0; k < MPMC_MASK_WORDS; k++) {
		/* relaxed: private copy */
		uint64_t m = atomic_load_explicit(&mask[k], memory_order_relaxed);
		for (unsigned b = 0; b < 64; b++) {
			uint32_t slot = k * 64 + b;
			if (!(m & (1ull << b)))
				continue;
			const struct tpart *p = tseg_part(s, slot);
			if (p && p->alive)
				continue;
			stale++;
			if (len + 16 < sizeof(list))
				len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%u",
							len ? ", " : "", slot);
		}
	}
	if (stale)
		warnf(w, "%s sleeper bits name %u participant slot%s that %s not alive (%s): stale, "
		      "each costs one spurious wake-up", side, stale, stale == 1 ? "" : "s",
		      stale == 1 ? "is" : "are", list);
}

static void mpmc_warnings(const struct tseg *s, struct warns *w)
{
	const struct mpmc_shared *m = &s->mring;
	if (s->prod_live > MPMC_MAX_ROLE || s->cons_live > MPMC_MAX_ROLE)
		warnf(w, "%u live producers and %u live consumers (at most %u of each)",
		      s->prod_live, s->cons_live, MPMC_MAX_ROLE);
	/* relaxed: private copy */
	uint32_t shut = atomic_load_explicit(&m->shutdown, memory_order_relaxed);
	if (shut > 1)
		warnf(w, "shutdown flag holds %u (only 0 and 1 are written)", shut);
	sleeper_warning(s, m->cons_sleepers, "consumer", w);
	sleeper_warning(s, m->prod_sleepers, "producer", w);
}

/* Broadcast rings: one producer, up to 64 subscribers; subscriber lines
 * of dead holders (freed at the next attach). */
static void bcast_warnings(const struct tseg *s, struct warns *w)
{
	const struct bcast_shared *b = &s->bring;
	if (s->prod_live > 1 || s->cons_live > BC_MAX_SUBS)
		warnf(w, "%u live producers and %u live subscribers (at most 1 and %u)",
		      s->prod_live, s->cons_live, BC_MAX_SUBS);
	/* relaxed throughout: private copy */
	uint32_t shut = atomic_load_explicit(&b->shutdown, memory_order_relaxed);
	if (shut > 1)
		warnf(w, "shutdown flag holds %u (only 0 and 1 are written)", shut);
	for (uint32_t i = 0; i < BC_MAX_SUBS; i++) {
		struct seg_bc_sub v;
		seg_bc_sub(b, s->g.capacity, i, &v);
		if (v.state != BC_FREE && v.state != BC_ACTIVE && v.state != BC_PARKED)
			warnf(w, "subscriber line %u has state %u: its holder wrote garbage", i,
			      v.state);
		else if (v.state == BC_ACTIVE && (v.owner == 0 || v.owner > CTL_MAX_PARTS ||
						  !tseg_alive_now(s, v.owner - 1)))
			warnf(w, "subscriber line %u belongs to a dead participant: freed (or, "
			      "named, parked) at the next attach", i);
	}
}

int tseg_check_state(const struct tseg *s, char *why, size_t n, char (*warn)[200],
		     unsigned max_warn, unsigned *nwarn)
{
	struct warns w = { warn, max_warn, nwarn };
	*nwarn = 0;
	int rc = tseg_mpmc(s) ? mpmc_tickets(s, why, n) : spsc_indices(s, why, n);
	if (rc == 0)
		rc = participants(s, why, n, &w);
	if (rc < 0)
		return rc;
	if (tseg_mpmc(s))
		mpmc_warnings(s, &w);
	else if (tseg_bcast(s))
		bcast_warnings(s, &w);
	else
		spsc_warnings(s, &w);
	return 0;
}

/* ---- mapping and records ----------------------------------------------- */

int tseg_map(struct tseg *s)
{
	if (s->status != TS_OK)
		return -EPROTO;
	void *p = mmap(NULL, (size_t)s->g.size, PROT_READ, MAP_SHARED, s->fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	s->base = p;
	s->map_size = (size_t)s->g.size;
	return 0;
}

void tseg_unmap(struct tseg *s)
{
	if (s->base)
		munmap((void *)(uintptr_t)s->base, s->map_size);
	s->base = NULL;
}

/* A file truncated under our mapping raises SIGBUS: turn it into an error. */
static sigjmp_buf bus_env;
static volatile sig_atomic_t bus_armed;

static void on_sigbus(int sig)
{
	if (bus_armed) {
		bus_armed = 0;
		siglongjmp(bus_env, 1);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Why spsc_parse() refused the group at pos: its rules, spelled out. */
static void explain(const struct spsc_geom *g, uint64_t pos, char *why, size_t n)
{
	for (int step = 0; step <= SPSC_MAX_PADS; step++) {
		uint64_t off = pos & g->mask;
		uint64_t h = atomic_load_explicit(spsc_word(g, pos), memory_order_relaxed);
		uint32_t len = (uint32_t)h, tag = (uint32_t)(h >> 32);
		if (h == 0) {
			snprintf(why, n, "filler before offset %llu is not followed by a record",
				 (unsigned long long)off);
			return;
		}
		if (tag == SPSC_TAG_MSG) {
			if (len > g->max_msg)
				snprintf(why, n, "message at offset %llu has length %u > max_msg %u",
					 (unsigned long long)off, len, g->max_msg);
			else if (spsc_rec_size(len) > g->cap - off)
				snprintf(why, n, "message of %u bytes at offset %llu runs past the end "
					 "of the data area", len, (unsigned long long)off);
			else
				snprintf(why, n, "payload of %u bytes at offset %llu is not 64-byte "
					 "aligned", len, (unsigned long long)off);
			return;
		}
		if (tag != SPSC_TAG_PAD) {
			snprintf(why, n, "unknown record tag 0x%08x at offset %llu (header 0x%016llx)",
				 tag, (unsigned long long)off, (unsigned long long)h);
			return;
		}
		bool to_end = off != 0 && len == g->cap - off;
		bool align = len >= 8 && len <= 56 && !(len & 7u) &&
			     !((off + len + SPSC_HDR) & 63u) && len < g->cap - off;
		if (!to_end && !align) {
			snprintf(why, n, "filler of %u bytes at offset %llu is neither an end filler "
				 "nor an alignment filler", len, (unsigned long long)off);
			return;
		}
		pos += len;
	}
	snprintf(why, n, "more than %d fillers in a row", SPSC_MAX_PADS);
}

struct walk_ctx {
	struct tseg *s;
	uint64_t max_msgs, copy_max;
	void (*cb)(void *, const struct trec *);
	void *arg;
	struct twalk *out;
	uint8_t *buf;
	size_t buf_cap;
	/* walk_body's snapshot, for the steps of each record */
	struct spsc_geom g;
	uint64_t head, read;            /* cons_head and cons_read when we looked */
	bool read_ok;                   /* cons_read within a capacity of head */
};

/* Where the records still in the ring start: SPSC, the consumer's
 * released position; BCAST, the producer's tail (the oldest record). */
static const _Atomic uint64_t *mapped_start(const struct tseg *s)
{
	const void *ring = s->base + s->g.ring_off;
	if (tseg_bcast(s))
		return &((const struct bcast_shared *)ring)->tail;
	return &((const struct spsc_shared *)ring)->cons_head;
}

/* Has the record at pos been released (or, BCAST, dropped) since we
 * started at head? */
static bool moved_past(const struct tseg *s, uint64_t head, uint64_t pos)
{
	/* acquire fence: our reads of the record come before this look at
	 * cons_head (the seqlock reader's pattern; BCAST: [C4]) */
	atomic_thread_fence(memory_order_acquire);
	uint64_t now = atomic_load_explicit(mapped_start(s), memory_order_relaxed);
	return now - head > pos - head;
}

/* The record at pos by the kind's rules: spsc_parse() or bc_parse(). */
static int parse_at(const struct tseg *s, const struct spsc_geom *g, uint64_t pos, void **data,
		    uint32_t *len, uint64_t *end)
{
	if (!tseg_bcast(s))
		return spsc_parse(g, pos, data, len, end);
	const uint8_t *d;
	uint64_t seq;
	int rc = bc_parse(g, pos, &d, len, &seq, end);
	*data = (void *)(uintptr_t)d;
	return rc;
}

/* The record at pos (spsc_parse() said rc; it ends at end) does not
 * parse, runs past capacity or straddles cons_read: the walk stops there,
 * moved on or corrupt.  true if it stopped. */
static bool walk_refused(struct walk_ctx *w, uint64_t pos, int rc, uint64_t end)
{
	struct tseg *s = w->s;
	struct twalk *o = w->out;
	uint64_t head = w->head, read = w->read;
	if (rc < 0 || end - head > w->g.cap) {
		if (moved_past(s, head, pos)) {
			o->stop = WALK_MOVED;
			return true;
		}
		o->stop = WALK_CORRUPT;
		if (rc < 0) {
			char why[200];
			if (tseg_bcast(s))
				snprintf(why, sizeof(why), "not a broadcast record (header 0x%016llx)",
					 (unsigned long long)atomic_load_explicit(
						 spsc_word(&w->g, pos), memory_order_relaxed));
			else
				explain(&w->g, pos, why, sizeof(why));
			snprintf(o->reason, sizeof(o->reason), "record at position %llu: %s",
				 (unsigned long long)pos, why);
		} else {
			snprintf(o->reason, sizeof(o->reason), "record at position %llu runs "
				 "past capacity from cons_head", (unsigned long long)pos);
		}
		return true;
	}
	if (w->read_ok && read != head && read - head > pos - head && read - head < end - head) {
		if (moved_past(s, head, pos)) {
			o->stop = WALK_MOVED;
			return true;
		}
		o->stop = WALK_CORRUPT;
		snprintf(o->reason, sizeof(o->reason), "cons_read %llu is not on a record "
			 "boundary", (unsigned long long)read);
		return true;
	}
	return false;
}

/* Count the record at pos and hand a copy of it (up to copy_max bytes) to
 * the callback.  true: the walk stops before it (--count reached, out of
 * memory, or consumed while we looked). */
static bool walk_emit(struct walk_ctx *w, uint64_t pos, void *data, uint32_t len)
{
	struct twalk *o = w->out;
	if (w->max_msgs && o->msgs >= w->max_msgs) {
		o->stop = WALK_COUNT;
		return true;
	}
	uint32_t want = w->copy_max && w->copy_max < len ? (uint32_t)w->copy_max : len;
	if (w->cb && want > w->buf_cap) {
		uint8_t *nb = realloc(w->buf, want);
		if (!nb) {
			o->stop = WALK_NOMEM;
			return true;
		}
		w->buf = nb;
		w->buf_cap = want;
	}
	if (w->cb && want)
		memcpy(w->buf, data, want);
	if (moved_past(w->s, w->head, pos)) {
		o->stop = WALK_MOVED;       /* consumed while we looked: not shown */
		return true;
	}
	if (w->cb) {
		struct trec r = {
			.index = o->msgs, .pos = pos,
			.off = (uint64_t)((uint8_t *)data - w->g.data), .len = len,
			.copy = w->buf, .copied = want,
			.acquired = w->read_ok && w->read - w->head > pos - w->head,
		};
		w->cb(w->arg, &r);
	}
	o->msgs++;
	o->bytes += len;
	return false;
}

/* SHMRING_FIXED: every slot from cons_head to prod_tail, max_msg bytes */
static int walk_fixed(struct walk_ctx *w)
{
	struct tseg *s = w->s;
	struct twalk *o = w->out;
	const struct fixed_shared *r = (const void *)(s->base + s->g.ring_off);
	struct fixed_geom g = fx_geom_make((uint8_t *)(uintptr_t)(s->base + s->g.data_off),
					   s->g.capacity, s->g.max_msg);
	w->g.data = g.data;
	/* acquire: pairs with the consumer's [X4]; then [X3]'s pairing with
	 * the producer's [X2]: the slots up to tail are written */
	uint64_t head = atomic_load_explicit(&r->cons_head, memory_order_acquire);
	uint64_t tail = atomic_load_explicit(&r->prod_tail, memory_order_acquire);
	/* relaxed: a hint of what the consumer holds, checked below */
	uint64_t read = atomic_load_explicit(&r->cons_read, memory_order_relaxed);
	w->head = head;
	w->read = read;
	w->read_ok = read - head <= tail - head;
	o->head = o->end = head;
	if (tail - head > g.slots) {
		o->stop = moved_past(s, head, head) ? WALK_MOVED : WALK_CORRUPT;
		snprintf(o->reason, sizeof(o->reason), "prod_tail %llu is not within %llu slots "
			 "after cons_head %llu", (unsigned long long)tail,
			 (unsigned long long)g.slots, (unsigned long long)head);
		return 0;
	}
	o->stop = WALK_END;
	for (uint64_t i = head; i != tail; i++) {
		if (walk_emit(w, i, fx_slot(&g, i), g.size))
			return 0;
		o->end = i + 1;
	}
	return 0;
}

static int walk_body(void *arg)
{
	struct walk_ctx *w = arg;
	struct tseg *s = w->s;
	struct twalk *o = w->out;
	if (tseg_fixed(s))
		return walk_fixed(w);
	w->g = (struct spsc_geom){
		.data = (uint8_t *)(uintptr_t)(s->base + s->g.data_off),
		.cap = s->g.capacity, .mask = s->g.capacity - 1, .max_msg = s->g.max_msg,
	};
	/* acquire: pairs with the consumer's [C2] (BCAST: the producer's
	 * [P4]); the records from here on were not yet given back to the
	 * producer when we looked */
	uint64_t head = atomic_load_explicit(mapped_start(s), memory_order_acquire);
	/* relaxed: a broadcast ring has no one consumer's hands */
	uint64_t read = tseg_bcast(s) ? head :
		atomic_load_explicit(&((const struct spsc_shared *)(const void *)
				       (s->base + s->g.ring_off))->cons_read, memory_order_relaxed);
	uint64_t pos = head;
	w->head = head;
	w->read = read;
	o->head = o->end = head;
	if (head & 7u) {
		o->stop = WALK_CORRUPT;
		snprintf(o->reason, sizeof(o->reason), "cons_head %llu is not a multiple of 8",
			 (unsigned long long)head);
		return 0;
	}
	w->read_ok = read - head <= w->g.cap;     /* otherwise check_state says so */
	for (uint64_t step = 0; step <= w->g.cap / 8; step++) {
		void *data;
		uint32_t len;
		uint64_t end = 0;       /* read by walk_refused() only after a parse */
		if (pos - head >= w->g.cap) {
			o->stop = moved_past(s, head, head) ? WALK_MOVED : WALK_CORRUPT;
			snprintf(o->reason, sizeof(o->reason), "records from cons_head %llu fill the "
				 "whole ring with no end marker", (unsigned long long)head);
			return 0;
		}
		int rc = parse_at(s, &w->g, pos, &data, &len, &end);
		if (rc == -EAGAIN) {
			o->stop = WALK_END;
			break;
		}
		if (walk_refused(w, pos, rc, end) || walk_emit(w, pos, data, len))
			return 0;
		pos = end;
		o->end = pos;
	}
	if (o->stop == WALK_END && w->read_ok && read - head > pos - head &&
	    !moved_past(s, head, pos)) {
		o->stop = WALK_CORRUPT;
		snprintf(o->reason, sizeof(o->reason), "cons_read %llu is beyond the last record "
			 "(ends at %llu)", (unsigned long long)read, (unsigned long long)pos);
	}
	return 0;
}

int tseg_guarded(int (*fn)(void *arg), void *arg)
{
	struct sigaction sa, old;
	int rc;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigbus;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, &old);
	if (sigsetjmp(bus_env, 1) == 0) {
		bus_armed = 1;
		rc = fn(arg);
		bus_armed = 0;
	} else {
		rc = -EFAULT;
	}
	sigaction(SIGBUS, &old, NULL);
	return rc;
}

void tseg_walk(struct tseg *s, uint64_t max_msgs, uint64_t copy_max,
	       void (*cb)(void *arg, const struct trec *r), void *arg, struct twalk *out)
{
	struct walk_ctx w = { .s = s, .max_msgs = max_msgs, .copy_max = copy_max, .cb = cb,
			      .arg = arg, .out = out };
	memset(out, 0, sizeof(*out));
	if (tseg_guarded(walk_body, &w) == -EFAULT) {
		out->stop = WALK_FAULT;
		snprintf(out->reason, sizeof(out->reason),
			 "the file shrank while its records were read (SIGBUS)");
	}
	free(w.buf);
}

void tseg_stats(const struct tseg *s, struct shmring_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (s->have_state)
		seg_counters(&s->g, &s->ctl, tseg_mpmc(s) ? (const void *)&s->mring :
					     tseg_bcast(s) ? (const void *)&s->bring :
					     tseg_fixed(s) ? (const void *)&s->fring
							   : (const void *)&s->ring, st);
}

const char *tseg_uri(const struct tseg *s, char *buf, size_t n)
{
	if (!strcmp(s->backend, "shm"))
		snprintf(buf, n, "shm:%s", s->name);
	else
		snprintf(buf, n, "file:%s", s->path);
	return buf;
}
