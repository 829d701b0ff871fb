/* SPDX-License-Identifier: MIT */
/*
 * Multi-producer multi-consumer ring of fixed-size slots on a raw memory
 * region, built so that no process killed at any instruction can wedge it.
 *
 * A Vyukov-style bounded queue: ticket t lives in slot t & mask, and each
 * slot carries one 64-bit word saying which ticket it is at and what state
 * it is in.  Unlike the textbook queue (and DPDK's rte_ring), a claim is a
 * compare-and-swap of the slot word itself that writes the claimer's
 * participant id into it, so a slot in use always says who uses it (as
 * Aeron's negative-length header does).  prod_ticket and cons_ticket are
 * only hints that anybody may push forward: nothing is ever claimed
 * without the slot word recording the owner, so no claim can be lost in a
 * gap between two steps.
 *
 *   word = (count - 1) << 58 | ticket (mod 2^46) << 12 | state << 8 | owner
 *   owner = participant slot + 1 (the segment's participant table), 0 for none
 *   count = 1, or a range: a held word standing for count tickets (below)
 *
 *   state      owner  meaning at ticket T
 *   FREE       0      producers may claim ticket T
 *   WRITING    p      producer p writes ticket T's message
 *   READY      0      ticket T's message waits for a consumer
 *   READING    c      consumer c holds ticket T's message (acquire)
 *   ORPHAN     p      T was skipped while p, alive but stalled, still had
 *                     the claim: the slot stays p's until p comes back
 *                     (its commit then fails with -ECANCELED) or dies
 *   STUCK      c      like READING, and lap T was skipped by producers
 *                     because c held the slot past the stall timeout
 *
 * Transitions (each one CAS of the whole word, except where noted):
 *   FREE(T)      -> WRITING(T,p)    producer claim                  [M2]
 *   WRITING(T,p) -> READY(T)        commit                          [M3]
 *   READY(T)     -> READING(T,c)    acquire                         [M5]
 *   READY(T)     -> FREE(T+N)       recv: copy first, then this CAS [M6]
 *   READING(T,c) -> FREE(T+N)       release                         [M6]
 *   WRITING(T,p) -> FREE(T+N)       p dead (a hole), or p cancels   [M7]
 *   READING(T,c) -> FREE(T+N)       c dead (message dropped)        [M7]
 *   WRITING(T,p) -> ORPHAN(U,p)     p stalled: U = T (consumer) or T+N (producer) [M8]
 *   READING(T,c) -> STUCK(T+N,c)    c stalled (producer)            [M8]
 *   ORPHAN/STUCK(T) -> same(T+N)    later laps skipped at once      [M8]
 *   ORPHAN(T,p)  -> FREE(T+N)       p's late commit [M9], or p dead [M7]
 *   STUCK(T,c)   -> FREE(T+N)       c's release [M10], or c dead [M7]
 *
 * A ticket T is "done" for consumers once its slot is READING, ORPHAN or
 * STUCK at T, or at any later ticket; for producers once it is anything
 * but FREE at T.  Because a stalled holder keeps its slot (ORPHAN, STUCK)
 * until it returns, a process that resumes after SIGSTOP never writes over
 * memory that someone else now owns, and its late commit is refused by
 * the word, which no longer says WRITING(T, it).
 *
 * Ranges (docs/design.md, 10.8): a batch claims k FREE slots in a row with
 * one CAS of the first word, FREE(T) -> WRITING(T,p,k), and commits them
 * with one more, WRITING(T,p,k) -> READY(T), after plain stores of READY
 * into the other k-1 words [M11]; recv_batch copies k READY messages in a
 * row, takes them with one CAS, READY(T) -> READING(T,c,k), stores FREE a
 * lap on into the others [M12] and frees the first [M6].  While the first
 * word holds the range it covers the others: every scan passes a range
 * word at or after its ticket whole, and no participant reaches a ticket
 * before the one below it is taken, so nobody else reads or writes them.
 * Recovery and stall skips work on the first word with its count (a dead
 * claim: count holes); whoever frees a range moves its other words first.
 *
 * Memory orders (docs/design.md, "MPMC"):
 *   [M1] claimer acquire-loads the word    <- pairs with [M6] (reads done)
 *   [M2] claim CAS, seq_cst (acquire)      <- pairs with [M6]; seq_cst orders
 *        the shutdown re-check after it (api/mpmc.c, [X1])
 *   [M3] commit CAS, seq_cst (release)     -> pairs with [M4]/[M5];
 *        seq_cst also orders it before the load of the sleeper mask [K2]
 *   [M4] consumer acquire-loads the word   <- pairs with [M3]
 *   [M5] acquire CAS, acquire              <- pairs with [M3]
 *   [M6] release / recv CAS, seq_cst (release) -> pairs with [M1]/[M2];
 *        and orders it before [K2] (producers asleep on a full ring)
 *   [M7] recovery CAS of a dead holder's slot (ring/mpmc.c), release
 *        -> pairs with [M1]/[M2]; the dead holder writes nothing more
 *   [M8] stall skip CAS, relaxed: no data changes hands, the live holder
 *        keeps the slot and its own [M9]/[M10] decides
 *   [M9] late commit of an ORPHAN claim, release -> pairs with [M1]/[M2]
 *   [M10] release of a STUCK message, seq_cst as [M6]
 *   [M11] range commit: the other words' READY stores, release -> pairs
 *        with [M4]/[M5] of a consumer that reads them after [M3]
 *   [M12] range free: the other words' FREE stores, release -> pairs with
 *        the next lap's [M1]
 *   tickets: relaxed CAS, hints only; no data is published through them.
 *
 * Nothing here blocks or makes a system call; deciding that a holder is
 * dead (an OFD lock test) or stalled (a clock) is the caller's (api/mpmc.c).
 * Every word read is checked (owner range, state, slot index) before use;
 * a violation is -EPROTO.  Loops are bounded by constants, and a scan
 * passes at most one lap of slots that stand ahead of it (mpmc_run).
 */
#ifndef SHMRING_RING_MPMC_H
#define SHMRING_RING_MPMC_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "copy.h"
#include "shmring.h"
#include "../sync/clock.h"
#include "../sync/crash.h"

#ifndef likely
#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#endif

#define MPMC_LINE     128
#define MPMC_TSHIFT   12
#define MPMC_MAX_PARTS 130u          /* participant slots: 64 + 64 + 2 spare (the
					 control block's table has as many) */
#define MPMC_MASK_WORDS 3            /* sleeper bitmaps: one bit per participant */
#define MPMC_PROBES   4096u          /* per call: CAS failures + tickets passed */
#define MPMC_MAX_ROLE 64u            /* live producers, and live consumers */
#define MPMC_STALL_DEFAULT_MS 1000u
#define MPMC_WRITING_PAUSES 8u         /* a consumer's pause on a message being written */
#define MPMC_STALL_MAX_MS (3600u * 1000u)
#define MPMC_RANGE_MAX 32u           /* tickets one range claim may cover */

_Static_assert(MPMC_MAX_PARTS <= 64 * MPMC_MASK_WORDS, "a sleeper bit per participant");
_Static_assert(MPMC_MAX_PARTS < 256, "owner field is 8 bits");
_Static_assert(MPMC_RANGE_MAX <= 64, "count field is 6 bits");

enum mpmc_state {
	MS_FREE = 0, MS_WRITING = 1, MS_READY = 2, MS_READING = 3, MS_ORPHAN = 4, MS_STUCK = 5,
};

/* One participant's counters and its wake-up word: two lines, written by
 * that participant only (counters: relaxed adds, threads may share a
 * handle) except `wake`, which wakers bump. */
struct mpmc_part {
	_Atomic uint64_t msgs_sent, bytes_sent, msgs_recv, bytes_recv;
	_Atomic uint64_t waits_full, waits_empty, sleeps, wakes;
	_Atomic uint32_t wake;           /* futex word this participant sleeps on */
	uint32_t pad0;
	_Atomic uint64_t bells;          /* doorbells it rang (shmring_fd pollers) */
	_Atomic uint64_t spurious;       /* its own doorbell found nothing to do */
	uint8_t pad[MPMC_LINE - 88];
};
_Static_assert(sizeof(struct mpmc_part) == MPMC_LINE, "mpmc_part is two lines");

/* The ring's shared state; lives at the segment's ring offset. */
struct mpmc_shared {
	_Atomic uint64_t prod_ticket;    /* hint: no ticket below it is still FREE */
	uint8_t pad0[MPMC_LINE - 8];
	_Atomic uint64_t cons_ticket;    /* hint: every ticket below it is done */
	uint8_t pad1[MPMC_LINE - 8];
	/* read-mostly: a bit is set by a participant about to sleep and
	 * cleared by the one waker that takes it */
	_Atomic uint64_t cons_sleepers[MPMC_MASK_WORDS];
	_Atomic uint64_t prod_sleepers[MPMC_MASK_WORDS];
	_Atomic uint32_t shutdown;
	uint32_t stall_ms;               /* set by the creator; validated on open */
	/* a bit per participant whose doorbell (shmring_fd) wants ringing:
	 * set by the poller, cleared by the one waker that rings it */
	_Atomic uint64_t cons_pollers[MPMC_MASK_WORDS];
	_Atomic uint64_t prod_pollers[MPMC_MASK_WORDS];
	uint8_t pad2[MPMC_LINE - 104];
	/* recovery counters, any process (relaxed adds, display only) */
	_Atomic uint64_t holes, stalls, cancelled, dropped;
	uint8_t pad3[MPMC_LINE - 32];
	struct mpmc_part parts[MPMC_MAX_PARTS];
};
_Static_assert(offsetof(struct mpmc_shared, cons_ticket) == MPMC_LINE, "consumer line");
_Static_assert(offsetof(struct mpmc_shared, parts) == 4 * MPMC_LINE, "parts offset");

/* A slot: header, then the payload at `hdr` bytes (64 when payloads can be
 * large, so that they start cache-line aligned). */
struct mpmc_slot {
	_Atomic uint64_t word;
	_Atomic uint32_t len;            /* written by the claimer before [M3] */
	uint32_t reserved;
};

/* Geometry: from the validated header, never re-read from the segment. */
struct mpmc_geom {
	uint8_t *data;
	uint64_t nslots, mask, stride;
	uint32_t hdr, max_msg;
};

/* One handle's view: the geometry, and who it is in the slot words. */
struct mpmc_h {
	struct mpmc_shared *sh;
	struct mpmc_geom g;
	uint32_t me;                     /* participant slot + 1; 0 without a role */
	struct mpmc_part *part;          /* &sh->parts[me - 1] */
};

/* A ticket looked at and the word found there. */
struct mpmc_pos {
	uint64_t t, w;
};

/* ---- geometry ----------------------------------------------------------- */

/* Payloads of MPMC_ALIGN_MIN bytes or more start 64-byte aligned. */
#define MPMC_ALIGN_MIN 256u

static inline uint32_t mpmc_hdr_for(uint32_t max_msg)
{
	return max_msg >= MPMC_ALIGN_MIN ? 64u : (uint32_t)sizeof(struct mpmc_slot);
}

static inline uint64_t mpmc_stride_for(uint32_t max_msg)
{
	return ((uint64_t)mpmc_hdr_for(max_msg) + max_msg + 63u) & ~(uint64_t)63u;
}

/* The geometry of nslots slots (a power of two) of messages up to max_msg
 * bytes at data: the one derivation the library, shmctl-tool and the
 * benchmark use. */
static inline struct mpmc_geom mpmc_geom_make(void *data, uint64_t nslots, uint32_t max_msg)
{
	return (struct mpmc_geom){
		.data = data, .nslots = nslots, .mask = nslots - 1,
		.stride = mpmc_stride_for(max_msg), .hdr = mpmc_hdr_for(max_msg),
		.max_msg = max_msg,
	};
}

/* ---- slot words ----------------------------------------------------------- */

/* bits 63..58 hold count - 1 (a range claim), 57..12 the ticket mod 2^46 */
#define MW_CSHIFT 58
#define MW_TMASK  (((UINT64_C(1) << (MW_CSHIFT - MPMC_TSHIFT)) - 1) << MPMC_TSHIFT)

static inline uint64_t mw_make(uint64_t t, unsigned state, unsigned owner)
{
	return ((t << MPMC_TSHIFT) & MW_TMASK) | ((uint64_t)state << 8) | owner;
}
/* A range word: k tickets from t (1 <= k <= MPMC_RANGE_MAX); k = 1 is mw_make(). */
static inline uint64_t mw_make_range(uint64_t t, unsigned state, unsigned owner, uint64_t k)
{
	return mw_make(t, state, owner) | ((k - 1) << MW_CSHIFT);
}
static inline unsigned mw_state(uint64_t w) { return (unsigned)(w >> 8) & 0xfu; }
static inline unsigned mw_owner(uint64_t w) { return (unsigned)w & 0xffu; }
/* How many tickets the word stands for: its range, 1 for a plain word. */
static inline uint64_t mw_count(uint64_t w) { return (w >> MW_CSHIFT) + 1; }

/* Tickets in a word are kept mod 2^46: the signed distance from t. */
static inline int64_t mw_diff(uint64_t w, uint64_t t)
{
	uint64_t d = ((w & MW_TMASK) - (t << MPMC_TSHIFT)) << (64 - MW_CSHIFT);
	/* arithmetic shift of a negative value: gcc and clang define it */
	return (int64_t)d >> (64 - MW_CSHIFT + MPMC_TSHIFT);
}

/* The same word one lap later, FREE and plain: how every hold ends. */
static inline uint64_t mw_next_free(uint64_t w, uint64_t nslots)
{
	return ((w & MW_TMASK) + (nslots << MPMC_TSHIFT)) & MW_TMASK;
}

/* Why a word cannot stand in ticket t's slot (mw_fault), MWF_NONE if it can. */
enum mw_fault {
	MWF_NONE = 0,
	MWF_STATE,          /* not a slot state */
	MWF_OWNER,          /* owner is not a participant */
	MWF_UNHELD_OWNER,   /* FREE or READY naming an owner */
	MWF_NO_OWNER,       /* a held state naming none */
	MWF_SLOT,           /* its ticket belongs to another slot */
	MWF_RANGE,          /* a range where none can be, or longer than allowed */
};

static inline enum mw_fault mw_fault(const struct mpmc_geom *g, uint64_t w, uint64_t t)
{
	unsigned s = mw_state(w), o = mw_owner(w);
	if (s > MS_STUCK)
		return MWF_STATE;
	if (o > MPMC_MAX_PARTS)
		return MWF_OWNER;
	if ((s == MS_FREE || s == MS_READY) != (o == 0))
		return o ? MWF_UNHELD_OWNER : MWF_NO_OWNER;
	/* a range is held (WRITING, ORPHAN; READING, STUCK), and bounded */
	if (unlikely(w >> MW_CSHIFT) &&
	    (o == 0 || mw_count(w) > MPMC_RANGE_MAX || mw_count(w) > g->nslots))
		return MWF_RANGE;
	return (((w >> MPMC_TSHIFT) ^ t) & g->mask) ? MWF_SLOT : MWF_NONE;
}

/* Is w a word that can stand in ticket t's slot? */
static inline bool mw_valid(const struct mpmc_geom *g, uint64_t w, uint64_t t)
{
	return mw_fault(g, w, t) == MWF_NONE;
}

static inline struct mpmc_slot *mpmc_slot(const struct mpmc_geom *g, uint64_t t)
{
	return (struct mpmc_slot *)(g->data + (t & g->mask) * g->stride);
}

static inline void *mpmc_payload(const struct mpmc_geom *g, uint64_t t)
{
	return (uint8_t *)mpmc_slot(g, t) + g->hdr;
}

/* The slot after s (ticket t+1's when s is t's), without a multiply;
 * end = g->data + nslots * stride. */
static inline struct mpmc_slot *mpmc_slot_after(const struct mpmc_geom *g, struct mpmc_slot *s,
						 const uint8_t *end)
{
	uint8_t *n = (uint8_t *)s + g->stride;
	return (struct mpmc_slot *)(n == end ? g->data : n);
}

static inline const uint8_t *mpmc_data_end(const struct mpmc_geom *g)
{
	return g->data + g->nslots * g->stride;
}

/*
 * The fast path's hint update, by whoever just claimed or took ticket t:
 * t + 1 if nobody moved the hint meanwhile, with a plain store (no locked
 * instruction per message).  Preempted between the load and the store, it
 * can put back a hint that others advanced; that only costs the next
 * caller some probes, and the probing path (mpmc_next) raises it again
 * with a CAS, so it never stays behind.  Any value written is a ticket
 * that every lower one is taken (done) below: the invariant holds.
 * relaxed: a hint; the slot words carry every hand-over.
 */
static inline void mpmc_pass_to(_Atomic uint64_t *hint, uint64_t t, uint64_t next)
{
	if (atomic_load_explicit(hint, memory_order_relaxed) == t)
		atomic_store_explicit(hint, next, memory_order_relaxed);
}

static inline void mpmc_pass(_Atomic uint64_t *hint, uint64_t t)
{
	mpmc_pass_to(hint, t, t + 1);
}

/* Where to look after ticket t turned out to be taken or done: raise the
 * hint past it (monotonic CAS, bounded) and continue from the hint. */
static inline uint64_t mpmc_next(_Atomic uint64_t *hint, uint64_t t)
{
	/* relaxed: a hint */
	uint64_t n = atomic_load_explicit(hint, memory_order_relaxed);
	for (unsigned i = 0; i < 16 && n <= t; i++)
		if (atomic_compare_exchange_weak_explicit(hint, &n, t + 1, memory_order_relaxed,
							  memory_order_relaxed))
			return t + 1;
	return n > t ? n : t + 1;
}

/*
 * A scan's run of tickets whose slots already stand at a later ticket (a
 * stale hint, or a corrupt ring).  Once the run has looked at every slot,
 * each ticket below the lowest of those later tickets is done (slot words
 * only move forward), so the scan jumps there: whatever the words say, a
 * scan passes at most one lap of them before it lands on a slot at its
 * own ticket.
 */
struct mpmc_run {
	uint64_t start, n, low;
};

/* Ticket t's slot stands at ticket `at` > t.  True when the run (t the
 * next ticket after it) now spans every slot: jump to run->low. */
static inline bool mpmc_run_ahead(struct mpmc_run *run, uint64_t t, uint64_t at,
				  uint64_t nslots)
{
	if (run->n == 0 || t != run->start + run->n) {
		run->start = t;
		run->n = 0;
		run->low = at;
	} else if ((int64_t)(at - run->low) < 0) {
		run->low = at;
	}
	return ++run->n >= nslots;
}

/* The next ticket a scan looks at after t (taken or done), w being the
 * word of t's slot and d how far it stands ahead of t.  A range word at
 * or after t says that its count of tickets from t on are taken (done):
 * the scan passes them all. */
static inline uint64_t mpmc_scan_next(_Atomic uint64_t *hint, struct mpmc_run *run,
				      uint64_t t, uint64_t w, int64_t d, uint64_t nslots)
{
	if (unlikely(mw_count(w) > 1) && d >= 0) {
		run->n = 0;
		return mpmc_next(hint, t + mw_count(w) - 1);
	}
	if (d > 0 && mpmc_run_ahead(run, t, t + (uint64_t)d, nslots)) {
		run->n = 0;
		return mpmc_next(hint, run->low - 1);
	}
	if (d <= 0)
		run->n = 0;
	return mpmc_next(hint, t);
}

static inline void mpmc_count(_Atomic uint64_t *ctr, uint64_t n)
{
	/* relaxed: a statistic; threads may share a handle, hence the add */
	atomic_fetch_add_explicit(ctr, n, memory_order_relaxed);
}

/* ---- producer ---------------------------------------------------------------- */

/*
 * How many tickets from t on, up to kmax, stand in `state` (FREE, READY)
 * one after the other, t's own seen so already: what a range claim or a
 * range take at t may cover.  No participant reaches a ticket above t
 * before t is taken (done): claims, takes and hints go in ticket order,
 * and every scan passes a whole range at once.  So what these loads see
 * still holds at the CAS of t's word.
 */
static inline uint64_t mpmc_run_of(const struct mpmc_geom *g, uint64_t t, uint64_t kmax,
				   unsigned state)
{
	uint64_t k = 1;
	const uint8_t *end = mpmc_data_end(g);
	struct mpmc_slot *s = mpmc_slot_after(g, mpmc_slot(g, t), end);
	if (kmax > g->nslots)
		kmax = g->nslots;
	/* [M1] / [M4] acquire: pairs with [M6] (the last lap's reads of a
	 * slot we will write are done) / [M3], [M11] (a payload we will
	 * read is visible) */
	for (; k < kmax && atomic_load_explicit(&s->word, memory_order_acquire) ==
				   mw_make(t + k, state, 0); k++)
		s = mpmc_slot_after(g, s, end);
	return k;
}

/*
 * Claim the next ticket, or a range of up to kmax (<= MPMC_RANGE_MAX)
 * tickets from it in one CAS of the first ticket's word, which then says
 * WRITING(t, me, k): who holds the range and how long it is; the other
 * slots' words are left as they are until the commit.  k >= 1: p->t.. are
 * ours.  -EAGAIN: the ring is full; p->t/p->w name the slot in the way (a
 * previous lap's READY, WRITING, READING, ORPHAN or STUCK).  -EBUSY:
 * MPMC_PROBES tickets were passed (a far stale hint, or heavy contention)
 * and the hint raised: call again.  -EPROTO: a word that cannot be.
 */
static inline int mpmc_claim_n(struct mpmc_h *h, struct mpmc_pos *p, uint64_t kmax)
{
	struct mpmc_shared *sh = h->sh;
	const int64_t lap = (int64_t)h->g.nslots;
	/* relaxed: a hint */
	uint64_t t = atomic_load_explicit(&sh->prod_ticket, memory_order_relaxed);
	struct mpmc_slot *s = mpmc_slot(&h->g, t);
	/* [M1] acquire: pairs with [M6]; the last lap's reads are done */
	uint64_t w = atomic_load_explicit(&s->word, memory_order_acquire);
	struct mpmc_run run = { 0, 0, 0 };

	for (unsigned i = 0; i < MPMC_PROBES; i++) {
		/* FREE at t: one compare says the word is valid and claimable */
		if (likely(w == mw_make(t, MS_FREE, 0))) {
			uint64_t k = kmax > 1 ? mpmc_run_of(&h->g, t, kmax, MS_FREE) : 1;
			/* [M2] seq_cst CAS: the claim names its owner (and range) */
			if (likely(atomic_compare_exchange_strong_explicit(
				    &s->word, &w, mw_make_range(t, MS_WRITING, h->me, k),
				    memory_order_seq_cst, memory_order_acquire))) {
				CRASH_POINT("mpmc.claimed");
				mpmc_pass_to(&sh->prod_ticket, t, t + k);
				p->t = t;
				return (int)k;
			}
			continue;               /* w is the new value */
		}
		if (unlikely(!mw_valid(&h->g, w, t)))
			return -EPROTO;
		int64_t d = mw_diff(w, t);
		if (d == -lap) {
			/* Full: a READY message, or a slot held one lap back
			 * (the caller decides: dead holder, stalled, or wait). */
			p->t = t;
			p->w = w;
			return -EAGAIN;
		} else if (d < 0) {
			return -EPROTO;         /* more than a lap behind */
		}
		/* taken, skipped, or our hint was stale */
		t = mpmc_scan_next(&sh->prod_ticket, &run, t, w, d, h->g.nslots);
		s = mpmc_slot(&h->g, t);
		w = atomic_load_explicit(&s->word, memory_order_acquire);   /* [M1] */
	}
	return -EBUSY;          /* not full: still probing (hint raised); call again */
}

/* Claim the next ticket: 0 (p->t is ours) or mpmc_claim_n()'s errors. */
static inline int mpmc_claim(struct mpmc_h *h, struct mpmc_pos *p)
{
	int rc = mpmc_claim_n(h, p, 1);
	return rc > 0 ? 0 : rc;
}

/* Publish ticket t with len bytes.  0, or the cold path's -ECANCELED
 * (skipped while we stalled) / -EINVAL (not our open claim). */
__attribute__((visibility("hidden"), cold))
int mpmc_commit_lost(struct mpmc_h *h, uint64_t t, uint64_t w);

static inline int mpmc_commit(struct mpmc_h *h, uint64_t t, uint32_t len)
{
	struct mpmc_slot *s = mpmc_slot(&h->g, t);
	uint64_t w = mw_make(t, MS_WRITING, h->me);
	/* The slot is ours only while its word names our claim (or our
	 * skipped claim, ORPHAN, which nobody else reuses): a stale or
	 * repeated commit must not write the length of someone else's
	 * message.  A prefetch for writing (PREFETCHW where the target has it;
	 * plain prefetcht0 in a generic x86-64 build): the CAS below needs
	 * the line anyway. */
	__builtin_prefetch(&s->word, 1);
	/* relaxed: our own claim's word; the CAS below decides */
	uint64_t now = atomic_load_explicit(&s->word, memory_order_relaxed);
	if (unlikely(now != w))
		return mpmc_commit_lost(h, t, now);
	/* relaxed: ordered before the consumer's read by [M3] */
	atomic_store_explicit(&s->len, len, memory_order_relaxed);
	/* [M3] seq_cst CAS: releases payload and len (pairs with [M4]/[M5]);
	 * seq_cst so that the sleeper-mask load after it cannot pass it */
	if (likely(atomic_compare_exchange_strong_explicit(&s->word, &w, mw_make(t, MS_READY, 0),
							   memory_order_seq_cst,
							   memory_order_acquire)))
		return 0;
	return mpmc_commit_lost(h, t, w);
}

/* Give a claim back unpublished (shutdown raced us, or close): a hole that
 * nobody needs to wait for. */
static inline void mpmc_cancel(struct mpmc_h *h, uint64_t t)
{
	uint64_t w = mw_make(t, MS_WRITING, h->me);
	/* release: our writes to the payload are over before a reuse */
	if (!atomic_compare_exchange_strong_explicit(&mpmc_slot(&h->g, t)->word, &w,
						     mw_next_free(w, h->g.nslots),
						     memory_order_release, memory_order_relaxed))
		(void)mpmc_commit_lost(h, t, w);   /* orphaned meanwhile: free it */
}

/* A range's commit, cancel or free found the first word changed: skipped
 * while we stalled, ORPHAN(us) (the range is given back, -ECANCELED) or
 * STUCK(us) (freed, 0); or not ours (-EINVAL). */
__attribute__((visibility("hidden"), cold))
int mpmc_range_lost(struct mpmc_h *h, uint64_t t, uint64_t k, uint64_t w);

/* A range's other words, tickets T+1 .. T+k-1, moved to FREE one lap
 * after T's (each by a CAS from a word standing below that, left alone
 * if it is held or not a word of its slot).  Before the first word's own
 * move: until then nobody else looks at them. */
__attribute__((visibility("hidden"), cold))
void mpmc_range_uncover(const struct mpmc_geom *g, uint64_t T, uint64_t k);

/*
 * Publish the k tickets of the range claimed at t (mpmc_claim_n), each
 * slot's len already stored.  The other words become READY one by one
 * (plain release stores: nobody else writes or reads them while the
 * first word covers them), then one CAS turns the first word into a
 * plain READY(t), which uncovers them.  0, -ECANCELED (skipped while we
 * stalled: nothing of it is delivered) or -EINVAL.
 */
static inline int mpmc_commit_range(struct mpmc_h *h, uint64_t t, uint64_t k)
{
	const uint8_t *end = mpmc_data_end(&h->g);
	struct mpmc_slot *s = mpmc_slot(&h->g, t);
	for (uint64_t i = 1; i < k; i++) {
		s = mpmc_slot_after(&h->g, s, end);
		/* [M11] release: publishes t+i's payload and len to a consumer
		 * whose [M4]/[M5] reads this word once [M3] uncovered it */
		atomic_store_explicit(&s->word, mw_make(t + i, MS_READY, 0), memory_order_release);
		CRASH_POINT("mpmc.range_marked");
	}
	CRASH_POINT("mpmc.before_commit");
	uint64_t w = mw_make_range(t, MS_WRITING, h->me, k);
	/* [M3] seq_cst CAS, as in mpmc_commit(): releases t's payload and the
	 * stores above (pairs with [M4]/[M5]), before the sleeper check [K2] */
	if (likely(atomic_compare_exchange_strong_explicit(&mpmc_slot(&h->g, t)->word, &w,
							   mw_make(t, MS_READY, 0),
							   memory_order_seq_cst, memory_order_acquire)))
		return 0;
	return mpmc_range_lost(h, t, k, w);
}

/* Give a range claim back unpublished: k holes nobody waits for. */
static inline void mpmc_cancel_range(struct mpmc_h *h, uint64_t t, uint64_t k)
{
	uint64_t w = mw_make_range(t, MS_WRITING, h->me, k);
	mpmc_range_uncover(&h->g, t, k);
	/* release: as in mpmc_cancel() */
	if (!atomic_compare_exchange_strong_explicit(&mpmc_slot(&h->g, t)->word, &w,
						     mw_next_free(w, h->g.nslots),
						     memory_order_release, memory_order_relaxed))
		(void)mpmc_range_lost(h, t, k, w);
}

/* ---- consumer ---------------------------------------------------------------- */

/*
 * Find the oldest message.  0: p->t/p->w name a READY slot.  -EAGAIN:
 * nothing to take; p->w is the word in the way (FREE: empty; WRITING:
 * being written; an older lap: not produced yet).  -EBUSY as for
 * mpmc_claim().  -EPROTO.
 */
static inline int mpmc_peek(struct mpmc_h *h, struct mpmc_pos *p)
{
	struct mpmc_shared *sh = h->sh;
	const int64_t lap = (int64_t)h->g.nslots;
	/* relaxed: a hint */
	uint64_t t = atomic_load_explicit(&sh->cons_ticket, memory_order_relaxed);
	/* [M4] acquire: pairs with [M3]; the payload is visible */
	uint64_t w = atomic_load_explicit(&mpmc_slot(&h->g, t)->word, memory_order_acquire);
	bool waited = false;
	struct mpmc_run run = { 0, 0, 0 };

	for (unsigned i = 0; i < MPMC_PROBES; i++) {
		p->t = t;
		p->w = w;
		/* READY at t: one compare says the word is valid and ready */
		if (likely(w == mw_make(t, MS_READY, 0))) {
			/* we will CAS this word after reading the payload:
			 * ask for the line now, for writing where the
			 * target has PREFETCHW (see mpmc_commit) */
			__builtin_prefetch(&mpmc_slot(&h->g, t)->word, 1);
			return 0;
		}
		if (unlikely(!mw_valid(&h->g, w, t)))
			return -EPROTO;
		int64_t d = mw_diff(w, t);
		if (d == 0) {
			unsigned st = mw_state(w);
			if (st == MS_WRITING && !waited) {
				/* The producer is copying this very message: give
				 * it a moment before the next look, so that our
				 * loads do not pull the line from under its commit
				 * CAS (which would then wait for it to come back). */
				for (unsigned k = 0; k < MPMC_WRITING_PAUSES; k++)
					cpu_relax();
				waited = true;
				w = atomic_load_explicit(&mpmc_slot(&h->g, t)->word,
							 memory_order_acquire);   /* [M4] */
				continue;
			}
			if (st == MS_FREE || st == MS_WRITING)
				return -EAGAIN;
			/* READING, ORPHAN, STUCK: done with */
		} else if (d < 0) {
			return d == -lap ? -EAGAIN : -EPROTO;
		}
		t = mpmc_scan_next(&sh->cons_ticket, &run, t, w, d, h->g.nslots);
		w = atomic_load_explicit(&mpmc_slot(&h->g, t)->word, memory_order_acquire); /* [M4] */
	}
	return -EBUSY;          /* not empty: still probing (hint raised); call again */
}

/* A batch's next message: ticket p->t + 1, right after the one we took,
 * if it is READY.  0, or -EAGAIN for anything else (mpmc_peek() then). */
static inline int mpmc_peek_after(struct mpmc_h *h, struct mpmc_pos *p)
{
	uint64_t t = p->t + 1;
	/* [M4] acquire: pairs with [M3]; the payload is visible */
	uint64_t w = atomic_load_explicit(&mpmc_slot(&h->g, t)->word, memory_order_acquire);
	if (w != mw_make(t, MS_READY, 0))
		return -EAGAIN;
	p->t = t;
	p->w = w;
	return 0;
}

/* The length of the READY message at p, checked; -EAGAIN if the slot moved
 * on meanwhile (someone else took it). */
static inline int64_t mpmc_len(struct mpmc_h *h, const struct mpmc_pos *p)
{
	struct mpmc_slot *s = mpmc_slot(&h->g, p->t);
	/* relaxed: after [M4]; a value from a later lap is caught below */
	uint32_t len = atomic_load_explicit(&s->len, memory_order_relaxed);
	if (unlikely(len > h->g.max_msg)) {
		/* acquire: orders the len load before this re-check */
		if (atomic_load_explicit(&s->word, memory_order_acquire) != p->w)
			return -EAGAIN;
		return -EPROTO;
	}
	return len;
}

/* Take the READY message at p for in-place reading.  0, or -EAGAIN if
 * another consumer was faster. */
static inline int mpmc_take(struct mpmc_h *h, struct mpmc_pos *p)
{
	struct mpmc_slot *s = mpmc_slot(&h->g, p->t);
	uint64_t w = p->w;
	/* [M5] acquire CAS: pairs with [M3] */
	if (!atomic_compare_exchange_strong_explicit(&s->word, &w,
						     mw_make(p->t, MS_READING, h->me),
						     memory_order_acquire, memory_order_relaxed))
		return -EAGAIN;
	p->w = mw_make(p->t, MS_READING, h->me);
	CRASH_POINT("mpmc.taken");
	mpmc_pass(&h->sh->cons_ticket, p->t);
	return 0;
}

/* recv: after copying the message out, make it ours and free the slot in
 * one step.  0, or -EAGAIN if another consumer took it first (the copy is
 * then void).  A consumer killed before this CAS loses nothing. */
static inline int mpmc_consume(struct mpmc_h *h, const struct mpmc_pos *p)
{
	uint64_t w = p->w;
	/* [M6] seq_cst CAS: our reads are done (release; pairs with [M1]/[M2])
	 * and ordered before the producer-sleeper check */
	if (!atomic_compare_exchange_strong_explicit(&mpmc_slot(&h->g, p->t)->word, &w,
						     mw_next_free(w, h->g.nslots),
						     memory_order_seq_cst, memory_order_relaxed))
		return -EAGAIN;
	mpmc_pass(&h->sh->cons_ticket, p->t);
	return 0;
}

/*
 * recv of a range: take the k READY messages from p->t (counted by
 * mpmc_run_of), already copied out, in one CAS of the first word, which
 * then says READING(t, me, k).  No consumer reaches t+1.. before t is done, so the
 * copies are of what the CAS takes.  0, or -EAGAIN if another consumer
 * had t first (the copies are void).  Then mpmc_free_range().
 */
static inline int mpmc_take_range(struct mpmc_h *h, const struct mpmc_pos *p, uint64_t k)
{
	uint64_t w = p->w;
	/* [M5] acquire CAS: pairs with [M3] */
	if (!atomic_compare_exchange_strong_explicit(&mpmc_slot(&h->g, p->t)->word, &w,
						     mw_make_range(p->t, MS_READING, h->me, k),
						     memory_order_acquire, memory_order_relaxed))
		return -EAGAIN;
	CRASH_POINT("mpmc.range_taken");
	mpmc_pass_to(&h->sh->cons_ticket, p->t, p->t + k);
	return 0;
}

/* Free the k slots of a range taken with mpmc_take_range(): the other
 * words one lap on (plain release stores: the first word covers them,
 * nobody else looks), then the first word.  A holder skipped as stalled
 * meanwhile (STUCK) redoes it at the lap the first word has reached. */
static inline void mpmc_free_range(struct mpmc_h *h, uint64_t t, uint64_t k)
{
	const uint8_t *end = mpmc_data_end(&h->g);
	struct mpmc_slot *s = mpmc_slot(&h->g, t);
	for (uint64_t i = 1; i < k; i++) {
		s = mpmc_slot_after(&h->g, s, end);
		/* [M12] release: our reads of t+i are done; pairs with the
		 * next claimer's [M1], once [M6] below uncovered the word */
		atomic_store_explicit(&s->word, mw_make(t + i + h->g.nslots, MS_FREE, 0),
				      memory_order_release);
		CRASH_POINT("mpmc.range_freeing");
	}
	uint64_t w = mw_make_range(t, MS_READING, h->me, k);
	/* [M6] seq_cst CAS: our reads are done (release; pairs with
	 * [M1]/[M2]), ordered before the producer-sleeper check [K2] */
	if (!atomic_compare_exchange_strong_explicit(&mpmc_slot(&h->g, t)->word, &w,
						     mw_next_free(w, h->g.nslots),
						     memory_order_seq_cst, memory_order_acquire))
		(void)mpmc_range_lost(h, t, k, w);
}

__attribute__((visibility("hidden"), cold))
int mpmc_release_lost(struct mpmc_h *h, uint64_t t, uint64_t w);

/* Free a slot taken with mpmc_take().  0 or -EINVAL (not held by us). */
static inline int mpmc_release(struct mpmc_h *h, uint64_t t)
{
	uint64_t w = mw_make(t, MS_READING, h->me);
	/* [M6] seq_cst CAS, as in mpmc_consume() */
	if (likely(atomic_compare_exchange_strong_explicit(&mpmc_slot(&h->g, t)->word, &w,
							   mw_next_free(w, h->g.nslots),
							   memory_order_seq_cst,
							   memory_order_relaxed)))
		return 0;
	return mpmc_release_lost(h, t, w);
}

/* ---- recovery (ring/mpmc.c; cold) ----------------------------------------- */

/*
 * The holder of the word at p (WRITING/READING/ORPHAN/STUCK) is dead:
 * free its slot, counting a hole or a dropped message.  Returns true if
 * this call did it.
 */
__attribute__((visibility("hidden")))
bool mpmc_recover_dead(struct mpmc_h *h, const struct mpmc_pos *p);

/*
 * The holder of the word at p has held it past the stall timeout while
 * alive: skip ticket p->t (WRITING -> ORPHAN, READING -> STUCK; a slot
 * already ORPHAN or STUCK one lap back: the same, one lap on), counted.
 * Returns true if this call did it.
 */
__attribute__((visibility("hidden")))
bool mpmc_skip_stalled(struct mpmc_h *h, const struct mpmc_pos *p);

/* Free every slot held by a participant whose bit is set in dead[]
 * (slot index = bit).  Idempotent; each step is one CAS. */
__attribute__((visibility("hidden")))
void mpmc_sweep(struct mpmc_shared *sh, const struct mpmc_geom *g,
		const uint64_t dead[MPMC_MASK_WORDS]);

/* Initialise a fresh ring (creator only, before publication). */
__attribute__((visibility("hidden")))
void mpmc_init(struct mpmc_shared *sh, const struct mpmc_geom *g, uint32_t stall_ms);

/* Add every counter of the ring, summed over participants, to *st: a
 * snapshot (the library's shmring_stats and shmctl-tool read the same
 * sums). */
__attribute__((visibility("hidden")))
void mpmc_totals(const struct mpmc_shared *sh, struct shmring_stats *st);

/* "FREE" ... "STUCK", "?" for a value that is not a slot state. */
__attribute__((visibility("hidden"))) const char *mpmc_state_name(unsigned state);

/* mw_fault(g, w, t) in words, into buf; returns buf ("" for MWF_NONE). */
__attribute__((visibility("hidden")))
const char *mw_explain(const struct mpmc_geom *g, uint64_t w, uint64_t t, char *buf, size_t n);

/* Messages between the hints: a snapshot for stats. */
__attribute__((visibility("hidden")))
uint64_t mpmc_queued(const struct mpmc_shared *sh, const struct mpmc_geom *g);

#endif /* SHMRING_RING_MPMC_H */
