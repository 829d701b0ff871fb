/* SPDX-License-Identifier: MIT */
/* The cold half of ring/mpmc.h: recovery transitions, the sweep, init. */
#include "mpmc.h"

#include <stdio.h>

int mpmc_commit_lost(struct mpmc_h *h, uint64_t t, uint64_t w)
{
	struct mpmc_slot *s = mpmc_slot(&h->g, t);
	for (unsigned i = 0; i < MPMC_PROBES; i++) {
		/* Ours only if it still names us and this slot; a later lap of
		 * the same slot can only be ORPHAN(us) through skipped laps. */
		if (!mw_valid(&h->g, w, t) || mw_owner(w) != h->me || mw_diff(w, t) < 0 ||
		    mw_count(w) != 1)
			return -EINVAL;
		if (mw_state(w) != MS_ORPHAN)
			return -EINVAL;
		/* Skipped while we stalled: nobody reads this claim any more
		 * and nobody else may write the slot until we let it go.
		 * [M9] release: our writes are over before the next
		 * claimer's; pairs with [M1]/[M2]. */
		if (atomic_compare_exchange_strong_explicit(&s->word, &w,
							    mw_next_free(w, h->g.nslots),
							    memory_order_release,
							    memory_order_acquire)) {
			mpmc_count(&h->sh->cancelled, 1);
			return -ECANCELED;
		}
	}
	return -EINVAL;
}

void mpmc_range_uncover(const struct mpmc_geom *g, uint64_t T, uint64_t k)
{
	if (k > MPMC_RANGE_MAX || k > g->nslots)
		return;                       /* mw_valid() refuses such a word */
	for (uint64_t i = 1; i < k; i++) {
		uint64_t t = T + i, target = mw_make(t + g->nslots, MS_FREE, 0);
		_Atomic uint64_t *word = &mpmc_slot(g, t)->word;
		/* acquire: pairs with the release that made the word (a
		 * consumer's [M6] or the owner's [M11]) */
		uint64_t w = atomic_load_explicit(word, memory_order_acquire);
		for (unsigned n = 0; n < 8; n++) {
			/* a held word, or one at or past the target, is not the
			 * range's (a forged range, or a recoverer that came late) */
			if (!mw_valid(g, w, t) || mw_owner(w) != 0 || mw_diff(w, t + g->nslots) >= 0)
				break;
			/* [M7] release: pairs with the next claimer's [M1]/[M2];
			 * the payload is garbage for the next lap */
			if (atomic_compare_exchange_strong_explicit(word, &w, target,
								    memory_order_release,
								    memory_order_acquire))
				break;
		}
	}
}

int mpmc_range_lost(struct mpmc_h *h, uint64_t t, uint64_t k, uint64_t w)
{
	struct mpmc_slot *s = mpmc_slot(&h->g, t);
	for (unsigned i = 0; i < MPMC_PROBES; i++) {
		unsigned st = mw_state(w);
		if (!mw_valid(&h->g, w, t) || mw_owner(w) != h->me || mw_count(w) != k ||
		    mw_diff(w, t) < 0 || (st != MS_ORPHAN && st != MS_STUCK))
			return -EINVAL;
		/* Skipped while we stalled, lap after lap maybe: the range is
		 * still ours and nobody reads it.  Its other words go to the
		 * lap after the first word's, then the first one: [M9] for a
		 * claim, [M10] (seq_cst, as [M6]) for a taken range. */
		uint64_t T = t + (uint64_t)mw_diff(w, t);
		mpmc_range_uncover(&h->g, T, k);
		if (atomic_compare_exchange_strong_explicit(&s->word, &w,
							    mw_next_free(w, h->g.nslots),
							    memory_order_seq_cst,
							    memory_order_acquire)) {
			if (st == MS_STUCK)
				return 0;
			mpmc_count(&h->sh->cancelled, k);
			return -ECANCELED;
		}
	}
	return -EINVAL;
}

int mpmc_release_lost(struct mpmc_h *h, uint64_t t, uint64_t w)
{
	struct mpmc_slot *s = mpmc_slot(&h->g, t);
	for (unsigned i = 0; i < MPMC_PROBES; i++) {
		if (!mw_valid(&h->g, w, t) || mw_owner(w) != h->me || mw_diff(w, t) < 0 ||
		    mw_state(w) != MS_STUCK || mw_count(w) != 1)
			return -EINVAL;
		/* Still ours; producers skipped laps while we held it.
		 * [M10] seq_cst, as [M6]: our reads are done (release; pairs
		 * with [M1]/[M2]), ordered before the sleeper check [K2]. */
		if (atomic_compare_exchange_strong_explicit(&s->word, &w,
							    mw_next_free(w, h->g.nslots),
							    memory_order_seq_cst,
							    memory_order_acquire))
			return 0;
	}
	return -EINVAL;
}

static bool held(unsigned st)
{
	return st == MS_WRITING || st == MS_READING || st == MS_ORPHAN || st == MS_STUCK;
}

static void count_freed(struct mpmc_shared *sh, uint64_t w)
{
	unsigned st = mw_state(w);
	if (st == MS_WRITING)
		mpmc_count(&sh->holes, mw_count(w));   /* never committed: holes skipped */
	else if ((st == MS_READING || st == MS_STUCK) && mw_count(w) == 1)
		mpmc_count(&sh->dropped, 1);     /* acquired, never released */
	/* a taken range (recv) was copied out before it was taken: its
	 * messages went to the dead; only its slots are left to free */
	/* ORPHAN was counted as a stall when it was skipped */
}

bool mpmc_recover_dead(struct mpmc_h *h, const struct mpmc_pos *p)
{
	uint64_t w = p->w;
	unsigned st = mw_state(w);
	if (!held(st))
		return false;
	CRASH_POINT("mpmc.recover");
	/* A range's other words first: the first word covers them until it
	 * moves, so a recoverer killed in between leaves it to the next */
	if (mw_count(w) > 1)
		mpmc_range_uncover(&h->g, p->t + (uint64_t)mw_diff(w, p->t), mw_count(w));
	/* [M7] release: pairs with the next claimer's [M1]/[M2]; the dead
	 * writes nothing more, and what it wrote is garbage for the next lap */
	if (!atomic_compare_exchange_strong_explicit(&mpmc_slot(&h->g, p->t)->word, &w,
						     mw_next_free(w, h->g.nslots),
						     memory_order_release, memory_order_relaxed))
		return false;
	count_freed(h->sh, w);
	return true;
}

bool mpmc_skip_stalled(struct mpmc_h *h, const struct mpmc_pos *p)
{
	uint64_t w = p->w;
	unsigned st = mw_state(w);
	if (!held(st))
		return false;
	/* The holder keeps the slot (it may still write or read it); only
	 * ticket p->t, and for a producer the lap before it, are given up. */
	unsigned ns = st == MS_WRITING ? MS_ORPHAN : st == MS_READING ? MS_STUCK : st;
	uint64_t nw = mw_make_range(p->t, ns, mw_owner(w), mw_count(w));
	/* [M8] relaxed: no data changes hands (the holder keeps the slot);
	 * the holder's own [M9]/[M10] CAS decides, and fails on this word */
	if (!atomic_compare_exchange_strong_explicit(&mpmc_slot(&h->g, p->t)->word, &w, nw,
						     memory_order_relaxed, memory_order_relaxed))
		return false;
	mpmc_count(&h->sh->stalls, 1);
	return true;
}

void mpmc_sweep(struct mpmc_shared *sh, const struct mpmc_geom *g,
		const uint64_t dead[MPMC_MASK_WORDS])
{
	for (uint64_t i = 0; i < g->nslots; i++) {
		struct mpmc_slot *s = (struct mpmc_slot *)(g->data + i * g->stride);
		/* acquire: pairs with the holder's claim */
		uint64_t w = atomic_load_explicit(&s->word, memory_order_acquire);
		/* a few laps: a dead claim may turn ORPHAN under us, still dead's */
		for (unsigned lap = 0; lap < 8; lap++) {
			unsigned o = mw_owner(w);
			uint64_t T = (w & MW_TMASK) >> MPMC_TSHIFT;
			if (o == 0 || o > MPMC_MAX_PARTS || !held(mw_state(w)) ||
			    !(dead[(o - 1) / 64] & (1ull << ((o - 1) % 64))))
				break;
			if ((T & g->mask) != i || !mw_valid(g, w, T))
				break;           /* corrupt: the data path reports -EPROTO */
			CRASH_POINT("mpmc.sweep");
			if (mw_count(w) > 1)
				mpmc_range_uncover(g, T, mw_count(w));
			/* [M7] release: as in mpmc_recover_dead() */
			if (atomic_compare_exchange_strong_explicit(&s->word, &w,
								    mw_next_free(w, g->nslots),
								    memory_order_release,
								    memory_order_acquire)) {
				count_freed(sh, w);
				break;
			}
		}
	}
	for (unsigned k = 0; k < MPMC_MASK_WORDS; k++) {
		/* relaxed: a stale sleeper bit costs one spurious wake */
		atomic_fetch_and_explicit(&sh->cons_sleepers[k], ~dead[k], memory_order_relaxed);
		atomic_fetch_and_explicit(&sh->prod_sleepers[k], ~dead[k], memory_order_relaxed);
		atomic_fetch_and_explicit(&sh->cons_pollers[k], ~dead[k], memory_order_relaxed);
		atomic_fetch_and_explicit(&sh->prod_pollers[k], ~dead[k], memory_order_relaxed);
	}
}

void mpmc_init(struct mpmc_shared *sh, const struct mpmc_geom *g, uint32_t stall_ms)
{
	memset(sh, 0, sizeof(*sh));
	sh->stall_ms = stall_ms;
	for (uint64_t i = 0; i < g->nslots; i++) {
		struct mpmc_slot *s = (struct mpmc_slot *)(g->data + i * g->stride);
		/* relaxed: nobody sees the ring before the header's version */
		atomic_store_explicit(&s->word, mw_make(i, MS_FREE, 0), memory_order_relaxed);
		atomic_store_explicit(&s->len, 0, memory_order_relaxed);
	}
}

uint64_t mpmc_queued(const struct mpmc_shared *sh, const struct mpmc_geom *g)
{
	/* relaxed: a snapshot of two hints */
	uint64_t p = atomic_load_explicit(&sh->prod_ticket, memory_order_relaxed);
	uint64_t c = atomic_load_explicit(&sh->cons_ticket, memory_order_relaxed);
	uint64_t n = p > c ? p - c : 0;
	return n > g->nslots ? g->nslots : n;
}

void mpmc_totals(const struct mpmc_shared *sh, struct shmring_stats *st)
{
	/* relaxed throughout: a monitoring snapshot */
#define LD(x) atomic_load_explicit(&(x), memory_order_relaxed)
	for (uint32_t i = 0; i < MPMC_MAX_PARTS; i++) {
		const struct mpmc_part *p = &sh->parts[i];
		st->msgs_sent += LD(p->msgs_sent);
		st->bytes_sent += LD(p->bytes_sent);
		st->msgs_recv += LD(p->msgs_recv);
		st->bytes_recv += LD(p->bytes_recv);
		st->waits_full += LD(p->waits_full);
		st->waits_empty += LD(p->waits_empty);
		st->futex_sleeps += LD(p->sleeps);
		st->futex_wakes += LD(p->wakes);
		st->poll_wakes += LD(p->bells);
		st->poll_spurious += LD(p->spurious);
	}
	st->holes_skipped += LD(sh->holes);
	st->stalls_skipped += LD(sh->stalls);
	st->commits_cancelled += LD(sh->cancelled);
	st->msgs_dropped += LD(sh->dropped);
#undef LD
}

const char *mpmc_state_name(unsigned state)
{
	static const char *const names[] = { "FREE", "WRITING", "READY", "READING", "ORPHAN",
					     "STUCK" };
	return state <= MS_STUCK ? names[state] : "?";
}

const char *mw_explain(const struct mpmc_geom *g, uint64_t w, uint64_t t, char *buf, size_t n)
{
	unsigned st = mw_state(w), o = mw_owner(w);
	uint64_t ticket = (w & MW_TMASK) >> MPMC_TSHIFT;
	switch (mw_fault(g, w, t)) {
	case MWF_NONE:
		snprintf(buf, n, "%s", "");
		break;
	case MWF_STATE:
		snprintf(buf, n, "state %u is not a slot state", st);
		break;
	case MWF_OWNER:
		snprintf(buf, n, "%s with owner %u, which is not a participant (at most %u)",
			 mpmc_state_name(st), o, MPMC_MAX_PARTS);
		break;
	case MWF_UNHELD_OWNER:
		snprintf(buf, n, "%s with owner %u (only a held slot names one)",
			 mpmc_state_name(st), o);
		break;
	case MWF_NO_OWNER:
		snprintf(buf, n, "%s with no owner", mpmc_state_name(st));
		break;
	case MWF_RANGE:
		snprintf(buf, n, "%s claiming a range of %llu tickets (only WRITING and ORPHAN "
			 "claim ranges, of at most %u and the ring's slots)", mpmc_state_name(st),
			 (unsigned long long)mw_count(w), MPMC_RANGE_MAX);
		break;
	case MWF_SLOT:
		snprintf(buf, n, "ticket %llu belongs to slot %llu", (unsigned long long)ticket,
			 (unsigned long long)(ticket & g->mask));
		break;
	}
	return buf;
}
