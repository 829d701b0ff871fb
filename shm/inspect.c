/* SPDX-License-Identifier: MIT */
#include "inspect.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static enum seg_verdict refuse(struct seg_snap *s, enum seg_verdict v, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static enum seg_verdict refuse(struct seg_snap *s, enum seg_verdict v, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->why, sizeof(s->why), fmt, ap);
	va_end(ap);
	return v;
}

static enum seg_verdict verdict_of(enum seg_fault f)
{
	switch (f) {
	case SEG_SOUND:
		return SEG_V_OK;
	case SEG_F_UNPUBLISHED:
		return SEG_V_INCOMPLETE;
	case SEG_F_VERSION:
	case SEG_F_STAMP:
		return SEG_V_UNSUPPORTED;
	default:
		return SEG_V_CORRUPT;
	}
}

static int pread_full(int fd, void *buf, size_t n, off_t at)
{
	ssize_t got = pread(fd, buf, n, at);
	if (got < 0)
		return -errno;
	return (size_t)got == n ? 0 : -ENODATA;
}

/* The control block and the ring state, copied with pread (a short file
 * gives -ENODATA, never SIGBUS), and the ring state checked as opening
 * the ring checks it. */
static int read_state(int fd, struct seg_snap *s)
{
	int rc = pread_full(fd, &s->ctl, sizeof(s->ctl), (off_t)s->g.ctl_off);
	if (rc < 0)
		return rc;
	if (s->g.kind == SHMRING_BCAST) {
		rc = pread_full(fd, &s->bring, sizeof(s->bring), (off_t)s->g.ring_off);
		if (rc == 0 && !seg_stall_valid(s->bring.stall_ms))
			s->verdict = refuse(s, SEG_V_CORRUPT, "stall timeout %u ms out of range "
					    "[1, %u]", s->bring.stall_ms, MPMC_STALL_MAX_MS);
		return rc;
	}
	if (seg_is_fixed(&s->g))
		return pread_full(fd, &s->fring, sizeof(s->fring), (off_t)s->g.ring_off);
	if (s->g.kind != SHMRING_MPMC)
		return pread_full(fd, &s->ring, sizeof(s->ring), (off_t)s->g.ring_off);
	rc = pread_full(fd, &s->mring, sizeof(s->mring), (off_t)s->g.ring_off);
	if (rc < 0)
		return rc;
	seg_mpmc_geom(&s->g, NULL, &s->mg);
	if (!seg_stall_valid(s->mring.stall_ms))
		s->verdict = refuse(s, SEG_V_CORRUPT, "stall timeout %u ms out of range [1, %u]",
				    s->mring.stall_ms, MPMC_STALL_MAX_MS);
	return 0;
}

int seg_snap_read(int fd, struct seg_snap *s)
{
	s->have_state = false;
	s->verdict = SEG_V_OK;
	s->why[0] = 0;
	s->ours = false;
	s->hdr_bytes = 0;
	memset(&s->hdr, 0, sizeof(s->hdr));
	memset(&s->g, 0, sizeof(s->g));
	if (fstat(fd, &s->st) < 0)
		return -errno;
	ssize_t n = pread(fd, &s->hdr, sizeof(s->hdr), 0);
	if (n < 0)
		return -errno;
	s->hdr_bytes = (size_t)n;
	s->ours = s->hdr_bytes >= sizeof(s->hdr.magic) && s->hdr.magic == SEG_MAGIC;
	if (!s->ours)
		return 0;
	uint64_t size = (uint64_t)s->st.st_size;
	if (s->hdr_bytes < sizeof(s->hdr)) {
		s->verdict = refuse(s, SEG_V_CORRUPT, "file of %llu bytes is too short for a "
				    "header (%zu bytes)", (unsigned long long)size, sizeof(s->hdr));
		return 0;
	}
	enum seg_fault f = seg_check(&s->hdr, size, s->st.st_uid);
	if (f != SEG_SOUND) {
		seg_explain(f, &s->hdr, size, s->st.st_uid, s->why, sizeof(s->why));
		s->verdict = verdict_of(f);
		return 0;
	}
	(void)seg_validate(&s->hdr, size, s->st.st_uid, &s->g);
	int rc = read_state(fd, s);
	if (rc == -ENODATA) {
		s->verdict = refuse(s, SEG_V_CORRUPT, "file shrank while being read");
		return 0;
	}
	if (rc < 0)
		return rc;
	s->have_state = s->verdict == SEG_V_OK;
	return 0;
}

/* relaxed throughout: a monitoring snapshot of single-writer counters */
#define LD(x) atomic_load_explicit(&(x), memory_order_relaxed)

void seg_bc_sub(const struct bcast_shared *b, uint64_t capacity, uint32_t i,
		struct seg_bc_sub *out)
{
	const struct bc_sub *u = &b->subs[i % BC_MAX_SUBS];
	uint64_t head = LD(b->head), hseq = LD(b->head_seq), next = LD(u->next_seq);
	out->state = LD(u->state);
	out->owner = LD(u->owner);
	out->counted = (LD(b->active) >> (i % BC_MAX_SUBS)) & 1u;
	memcpy(out->name, u->name, sizeof(out->name));
	out->name[sizeof(out->name) - 1] = 0;
	out->pos = LD(u->pos);
	out->lag_bytes = bc_lag(head, out->pos, capacity);
	/* a subscriber that has received nothing yet: its bytes behind, in
	 * messages of the average size so far */
	uint64_t msgs = LD(b->msgs_sent), rec = msgs ? LD(b->bytes_sent) / msgs + BC_HDR : 0;
	out->lag_msgs = next ? (hseq > next ? hseq - next : 0)
			     : (rec ? out->lag_bytes / rec : 0);
	out->msgs_recv = LD(u->msgs_recv);
	out->msgs_lost = LD(u->msgs_lost);
	out->evictions = LD(u->evictions);
}

static void bc_counters(const struct seg_geom *g, const struct bcast_shared *b,
			struct shmring_stats *st)
{
	st->msgs_sent = LD(b->msgs_sent);
	st->bytes_sent = LD(b->bytes_sent);
	st->waits_full = LD(b->waits_full);
	st->futex_wakes = LD(b->prod_wakes);
	st->futex_sleeps = LD(b->prod_sleeps);
	st->poll_wakes = LD(b->prod_bells);
	st->poll_spurious = LD(b->prod_spurious);
	st->shut_down = LD(b->shutdown) != 0;
	st->evictions = LD(b->evictions);
	for (uint32_t i = 0; i < BC_MAX_SUBS; i++) {
		const struct bc_sub *u = &b->subs[i];
		if (LD(u->state) == BC_FREE)
			continue;
		st->msgs_recv += LD(u->msgs_recv);
		st->bytes_recv += LD(u->bytes_recv);
		st->waits_empty += LD(u->waits_empty);
		st->futex_wakes += LD(u->wakes);
		st->futex_sleeps += LD(u->sleeps);
		st->poll_wakes += LD(u->bells);
		st->poll_spurious += LD(u->spurious);
		st->msgs_lost += LD(u->msgs_lost);
		struct seg_bc_sub v;
		seg_bc_sub(b, g->capacity, i, &v);
		if (v.counted && v.lag_bytes >= st->lag_bytes) {
			st->lag_bytes = v.lag_bytes;
			st->lag_msgs = v.lag_msgs;
		}
	}
	/* queued: what the slowest counted subscriber has yet to read (the
	 * ring keeps older records for SHMRING_OLDEST, queued for nobody) */
	st->used = st->lag_bytes;
}

/* The wait counters of an SPSC or FIXED ring state, the same fields in
 * both (and the drops of the control block c). */
#define WAIT_COUNTERS(r, st)                                                    \
	do {                                                                    \
		(st)->waits_full = LD((r)->waits_full);                         \
		(st)->waits_empty = LD((r)->waits_empty);                       \
		(st)->futex_wakes = LD((r)->prod_wakes) + LD((r)->cons_wakes);  \
		(st)->futex_sleeps = LD((r)->prod_sleeps) + LD((r)->cons_sleeps); \
		(st)->poll_wakes = LD((r)->prod_bells) + LD((r)->cons_bells);   \
		(st)->poll_spurious = LD((r)->prod_spurious) + LD((r)->cons_spurious); \
		(st)->msgs_dropped = LD(c->dropped);                            \
	} while (0)

void seg_counters(const struct seg_geom *g, const struct ctl_shared *c, const void *ring,
		  struct shmring_stats *st)
{
	if (g->kind == SHMRING_BCAST) {
		bc_counters(g, ring, st);
		st->msgs_dropped = LD(c->dropped);
	} else if (g->kind == SHMRING_MPMC) {
		const struct mpmc_shared *m = ring;
		struct mpmc_geom mg;
		seg_mpmc_geom(g, NULL, &mg);
		mpmc_totals(m, st);
		/* commit-after-shutdown drops count in the control block */
		st->msgs_dropped += LD(c->dropped);
		st->shut_down = LD(m->shutdown) != 0;
		st->used = mpmc_queued(m, &mg) * mg.stride;
	} else if (seg_is_fixed(g)) {
		/* the counters are the indices: exact through any crash */
		const struct fixed_shared *r = ring;
		uint64_t tail = LD(r->prod_tail), head = LD(r->cons_head);
		uint64_t slots = g->capacity / fx_stride_for(g->max_msg), q = tail - head;
		st->msgs_sent = tail;
		st->bytes_sent = tail * g->max_msg;
		st->msgs_recv = head;
		st->bytes_recv = head * g->max_msg;
		WAIT_COUNTERS(r, st);
		st->shut_down = LD(r->shutdown) != 0;
		/* a torn or garbled view: 0 .. the whole ring */
		st->used = ((int64_t)q < 0 ? 0 : q > slots ? slots : q) * g->max_msg;
	} else {
		const struct spsc_shared *r = ring;
		st->msgs_sent = LD(r->msgs_sent);
		st->bytes_sent = LD(r->bytes_sent);
		st->msgs_recv = LD(r->msgs_recv);
		st->bytes_recv = LD(r->bytes_recv);
		WAIT_COUNTERS(r, st);
		st->holes_skipped = LD(c->holes);
		st->shut_down = LD(r->shutdown) != 0;
		st->used = spsc_used(r, g->capacity);
	}
	st->msgs_redelivered = LD(c->redelivered);
	st->repairs = LD(c->repairs);
	st->takeovers = LD(c->takeovers);
	st->capacity = g->capacity;
	st->max_msg = g->max_msg;
	st->kind = g->kind;
}
#undef WAIT_COUNTERS
#undef LD
