/* SPDX-License-Identifier: MIT */
/*
 * MPMC rings from outside: a walk of the slot words (ring/mpmc.h) on the
 * read-only mapping, for info (states and holders), dump (the slots in
 * use, in ticket order from cons_ticket) and check (every word validated).
 *
 * Each word is one atomic load; a payload is copied between two loads of
 * its word (acquire, then an acquire fence before the second), as a
 * seqlock reader does: if the word moved on meanwhile the copy is void and
 * the slot is read again, a few times, then counted as "changed".  The
 * walk visits each slot exactly once, nslots being the count derived from
 * the validated header: nothing read from the segment bounds a loop.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seg.h"

#define SLOT_TRIES 4

static bool held_state(unsigned st)
{
	return st == MS_WRITING || st == MS_READING || st == MS_ORPHAN || st == MS_STUCK;
}

const char *mw_problem(const struct mpmc_geom *g, uint64_t w, uint64_t t, char *buf, size_t n)
{
	if (!mw_valid(g, w, t))
		return mw_explain(g, w, t, buf, n);
	/* sound to the library, but not where a walk from cons_ticket can find it */
	if (mw_diff(w, t) < -(int64_t)g->nslots) {
		snprintf(buf, n, "ticket %llu is more than a lap behind ticket %llu (counted from "
			 "cons_ticket)", (unsigned long long)(t + (uint64_t)mw_diff(w, t)),
			 (unsigned long long)t);
		return buf;
	}
	return NULL;
}

struct mwalk_ctx {
	struct tseg *s;
	struct mpmc_geom g;
	uint64_t max_shown, copy_max;
	bool keep_going;
	void (*cb)(void *arg, const struct trec *r);
	void *arg;
	struct tmwalk *out;
	uint8_t *buf;
	size_t buf_cap;
	bool alive[CTL_MAX_PARTS];   /* found alive once in this walk: stays so */
};

/* Is the holder `owner` alive?  Dead is re-tested every time, and only
 * believed if the word still names it afterwards: a repair sweeps a dead
 * participant's words before its table slot can be reused. */
static bool holder_alive(struct mwalk_ctx *c, const _Atomic uint64_t *word, uint64_t w,
			 unsigned owner)
{
	uint32_t slot = owner - 1;
	if (c->alive[slot])
		return true;
	if (tseg_alive_now(c->s, slot)) {
		c->alive[slot] = true;
		return true;
	}
	/* acquire: the lock test above happened before this look */
	atomic_thread_fence(memory_order_acquire);
	return atomic_load_explicit(word, memory_order_relaxed) != w;
}

static bool copy_payload(struct mwalk_ctx *c, const uint8_t *p, uint32_t want)
{
	if (want > c->buf_cap) {
		uint8_t *nb = realloc(c->buf, want);
		if (!nb)
			return false;
		c->buf = nb;
		c->buf_cap = want;
	}
	if (want)
		memcpy(c->buf, p, want);
	return true;
}

/* Read the slot of ticket t once, consistently.  1: read (r filled),
 * 0: its word kept changing, -ENOMEM. */
static int read_slot(struct mwalk_ctx *c, uint64_t t, struct trec *r, char *why, size_t n)
{
	const struct mpmc_slot *sl = mpmc_slot(&c->g, t);
	bool show = c->cb && (!c->max_shown || c->out->shown < c->max_shown);
	for (int k = 0; k < SLOT_TRIES; k++) {
		/* acquire: pairs with the commit [M3]; a READY payload is whole */
		uint64_t w = atomic_load_explicit(&sl->word, memory_order_acquire);
		memset(r, 0, sizeof(*r));
		r->mpmc = true;
		r->pos = t;
		r->slot = t & c->g.mask;
		r->off = r->slot * c->g.stride + c->g.hdr;
		r->word = w;
		r->state = mw_state(w);
		r->owner = mw_owner(w);
		const char *bad = mw_problem(&c->g, w, t, why, n);
		if (bad)
			return 1;             /* a single load: no tearing to rule out */
		r->ticket = t + (uint64_t)mw_diff(w, t);
		r->has_msg = r->state == MS_READY || r->state == MS_READING || r->state == MS_STUCK;
		r->acquired = r->state == MS_READING || r->state == MS_STUCK;
		bool len_bad = false;
		if (r->has_msg) {
			/* relaxed: after the acquire above; checked by the re-load */
			r->len = atomic_load_explicit(&sl->len, memory_order_relaxed);
			len_bad = r->len > c->g.max_msg;
			uint32_t want = c->copy_max && c->copy_max < r->len ? (uint32_t)c->copy_max
									   : r->len;
			if (show && !len_bad) {
				if (!copy_payload(c, (const uint8_t *)sl + c->g.hdr, want))
					return -ENOMEM;
				r->copy = c->buf;
				r->copied = want;
			}
		}
		/* acquire fence: our reads of len and payload come before the
		 * re-load; an unchanged word means nobody reused the slot */
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&sl->word, memory_order_relaxed) != w)
			continue;
		if (len_bad) {
			snprintf(why, n, "%s message of length %u > max_msg %u", mpmc_state_name(r->state),
				 r->len, c->g.max_msg);
			r->copy = NULL;
			r->copied = 0;
			return 1;
		}
		why[0] = 0;
		if (held_state(r->state)) {
			const struct tpart *p = tseg_part(c->s, r->owner - 1);
			r->pid = p ? p->pid : 0;
			r->owner_alive = holder_alive(c, &sl->word, w, r->owner);
		}
		return 1;
	}
	return 0;
}

static int walk_slots(void *arg)
{
	struct mwalk_ctx *c = arg;
	struct tmwalk *o = c->out;
	char why[200];
	for (uint64_t i = 0; i < c->g.nslots; i++) {
		struct trec r;
		uint64_t t = o->start + i;
		int rc = read_slot(c, t, &r, why, sizeof(why));
		if (rc == -ENOMEM) {
			o->stop = WALK_NOMEM;
			return 0;
		}
		if (rc == 0) {
			o->changed++;
			continue;
		}
		if (why[0]) {
			if (o->invalid++ == 0) {
				o->bad_slot = r.slot;
				snprintf(o->reason, sizeof(o->reason), "slot %llu (word 0x%016llx): %s",
					 (unsigned long long)r.slot, (unsigned long long)r.word, why);
			}
			r.problem = why;
			if (c->cb && c->keep_going)
				c->cb(c->arg, &r);
			if (!c->keep_going) {
				o->stop = WALK_CORRUPT;
				return 0;
			}
			continue;
		}
		o->states[r.state]++;
		if (held_state(r.state)) {
			o->held[r.owner - 1]++;
			o->held_dead[r.owner - 1] += !r.owner_alive;
		}
		if (r.state == MS_READY) {
			o->msgs++;
			o->bytes += r.len;
		}
		if (r.state == MS_FREE || !c->cb)
			continue;
		if (c->max_shown && o->shown >= c->max_shown) {
			o->stop = WALK_COUNT;     /* counts stay partial: dump only */
			return 0;
		}
		r.index = o->shown++;
		c->cb(c->arg, &r);
	}
	if (o->invalid && o->stop == WALK_END)
		o->stop = WALK_CORRUPT;
	return 0;
}

void tmpmc_walk(struct tseg *s, uint64_t start, uint64_t max_shown, uint64_t copy_max,
		bool keep_going, void (*cb)(void *arg, const struct trec *r), void *arg,
		struct tmwalk *out)
{
	struct mwalk_ctx *c = calloc(1, sizeof(*c));
	memset(out, 0, sizeof(*out));
	out->start = start;
	if (!c) {
		out->stop = WALK_NOMEM;
		return;
	}
	if (!s->base || !tseg_mpmc(s) || !s->have_state) {
		out->stop = WALK_FAULT;
		snprintf(out->reason, sizeof(out->reason), "not a mapped MPMC ring");
		free(c);
		return;
	}
	*c = (struct mwalk_ctx){ .s = s, .g = s->mg, .max_shown = max_shown, .copy_max = copy_max,
				 .keep_going = keep_going, .cb = cb, .arg = arg, .out = out };
	c->g.data = (uint8_t *)(uintptr_t)(s->base + s->g.data_off);
	if (tseg_guarded(walk_slots, c) == -EFAULT) {
		out->stop = WALK_FAULT;
		snprintf(out->reason, sizeof(out->reason),
			 "the file shrank while its slots were read (SIGBUS)");
	}
	free(c->buf);
	free(c);
}
