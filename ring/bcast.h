/* SPDX-License-Identifier: MIT */
/*
 * Broadcast ring: one producer, up to 64 subscribers, each of which reads
 * every message, on a raw memory region.  No system calls, no allocation,
 * no pointers in shared memory.
 *
 * Records are those of the SPSC ring (ring/spsc.h: the header word is the
 * commit flag, fillers run to the end of the area or align a large
 * payload) with one more word: the message's sequence number.
 *
 *   +-------------+-------------+-------------------------------+
 *   | header (u64)| seq (u64)   | payload, len bytes, pad to 8  |
 *   +-------------+-------------+-------------------------------+
 *
 * The producer owns `head` (where the next group goes) and `tail`: every
 * byte between tail and head is intact, bytes before tail may be written
 * over.  It moves tail before it writes: blocking rings to the slowest
 * subscriber it counts (bit set in `active`), never past one;
 * SHMRING_OVERWRITE rings and rings nobody is counted in to the first
 * record boundary that leaves room.  A subscriber reads at its own
 * position and then checks that tail has not passed it: a copy made while
 * the producer wrote over it is thrown away, never handed out (a seqlock's
 * check, with tail as the sequence).  Being lapped (overwrite), evicted or
 * written off as dead (blocking) all look the same to a subscriber: tail
 * passed it.
 *
 * Memory orders (docs/design.md, "Broadcast rings", lists every pair):
 *   [P1] producer acquire-loads a subscriber's pos      <- pairs with [C2]
 *   [P2] producer release-stores a group's first header -> pairs with [C1]
 *   [P3] producer loads the sleeper/poller masks after fence_waker(): Dekker
 *        with the subscribers' [K1]/[B1]
 *   [P4] producer stores tail (seq_cst), then a release fence, then writes:
 *        pairs with [C4]
 *   [R1]/[R3] producer loads `active` (seq_cst) before and after [P4]
 *   [E1] producer clears a subscriber's bit (seq_cst CAS, only while the
 *        line's gen is the one it decided about) to stop counting it
 *        (evicted, dead, nonsense position); evict++ after it; both before
 *        the [P4] that passes it: pairs with [C5]
 *   [C1] subscriber acquire-loads the header at its position <- [P2]
 *   [C2] subscriber release-stores pos                   -> pairs with [P1]
 *   [C3] subscriber loads prod_sleeping after fence_waker(): Dekker with [W1]
 *   [C4] subscriber: reads, acquire fence, load tail: a byte the producer
 *        wrote after [P4] makes this load see that tail, so a torn copy is
 *        seen
 *   [C5] subscriber of a blocking ring: reads, acquire fence, load
 *        `active`: its bit still set means nothing it read was written
 *        over (the producer clears it, [E1], before the [P4] that lets
 *        it pass); pairs with [E1] and the release fence of [P4]
 *   [K7] producer, two or more sleepers: sets relay (seq_cst) and wakes one;
 *        the subscriber it woke exchanges relay to 0 (seq_cst) and wakes the
 *        rest; no data is ordered through relay (the futex word is [K6])
 *   [H1]/[H2] the producer's hints (head, its sequence number) for joiners
 *        and stats: a seqlock pair, release store / acquire load of the
 *        version
 *   [J1]/[J2] a subscriber sets its bit (seq_cst RMW), then loads tail
 *        (seq_cst) until tail <= its pos.  In S, either the producer's [R3]
 *        sees [J1] (it counts the joiner: a new round, tail back down to
 *        it, nothing written yet) or [J2] comes after [P4] and sees the
 *        tail it must start at or after
 *
 * Everything read from shared memory is checked against the private
 * geometry; loops are bounded by constants or the capacity.
 */
#ifndef SHMRING_RING_BCAST_H
#define SHMRING_RING_BCAST_H

#include "spsc.h"

#define BC_MAX_SUBS 64u
#define BC_HDR      16u             /* header word + sequence word */
#define BC_NAME_MAX 64u             /* a named subscriber's name, NUL included */
#define BC_MARKS    64u             /* the producer's known boundaries (bc_mark()) */

/* The copies of payloads.  A subscriber may be lapped while it copies
 * (overwrite rings): the copy is a deliberate race, checked afterwards
 * ([C4]).  ThreadSanitizer is told so by doing both sides' copies with
 * relaxed atomic loads and stores; everyone else uses memcpy. */
#if defined(__SANITIZE_THREAD__)
static inline void bc_copy(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;
	for (size_t i = 0; i < n; i++)
		__atomic_store_n(&d[i], __atomic_load_n(&s[i], __ATOMIC_RELAXED), __ATOMIC_RELAXED);
}
#define bc_fence_acquire() ((void)atomic_fetch_add_explicit(&fence_tsan_word, 0, \
								  memory_order_seq_cst))
#define bc_fence_release() bc_fence_acquire()
#define bc_copy_out(d, s, n) bc_copy((d), (s), (n))
#else
#define bc_copy(d, s, n) ring_copy((d), (s), (n))
/* out of the ring: constant-size copies for lengths that are multiples
 * of 8 up to 64 (ring/copy.h) */
#define bc_copy_out(d, s, n) ring_copy_out((d), (s), (n))
#define bc_fence_acquire() atomic_thread_fence(memory_order_acquire)
#define bc_fence_release() atomic_thread_fence(memory_order_release)
#endif

enum { BC_FREE = 0, BC_ACTIVE = 1, BC_PARKED = 2 };   /* struct bc_sub.state */

/* A subscriber's line: 256 bytes. */
struct bc_sub {
	/* block 0: written by the subscriber as it receives */
	_Atomic uint64_t pos;        /* released: bytes before it may be reused */
	_Atomic uint64_t next_seq;   /* sequence number it expects next; 0: none yet */
	_Atomic uint64_t msgs_recv, bytes_recv, msgs_lost, waits_empty;
	_Atomic uint64_t sleeps, wakes, bells, spurious;
	_Atomic uint32_t ack;        /* the eviction generation it has seen */
	uint8_t pad0[SPSC_LINE - 84];
	/* block 1: written under the control lock (state, owner, gen, name)
	 * and by the producer when it evicts (evict, evictions) */
	_Atomic uint32_t state;      /* BC_FREE, BC_ACTIVE, BC_PARKED (named, nobody in it) */
	_Atomic uint32_t owner;      /* participant slot + 1 while ACTIVE */
	_Atomic uint32_t gen;        /* bumped at every join */
	_Atomic uint32_t evict;      /* != ack: the producer evicted it (or wrote it off) */
	_Atomic uint64_t evictions;
	char name[BC_NAME_MAX];      /* file: rings, named subscriber; "" unnamed */
	uint8_t pad1[SPSC_LINE - 24 - BC_NAME_MAX];
};
_Static_assert(sizeof(struct bc_sub) == 2 * SPSC_LINE, "bc_sub is two blocks");
_Static_assert(offsetof(struct bc_sub, state) == SPSC_LINE, "bc_sub second block");

struct bcast_shared {
	/* block 0: the producer, after every publish (hints for joiners, stats),
	 * a pair read consistently through hint_ver (a seqlock: odd while
	 * the producer writes them) */
	_Atomic uint64_t head;       /* end of the published records */
	_Atomic uint64_t head_seq;   /* sequence number of the next message */
	_Atomic uint64_t hint_ver;
	uint8_t pad0[SPSC_LINE - 24];
	/* block 1: the producer, when it frees room */
	_Atomic uint64_t tail;       /* first intact byte: a record boundary, <= head */
	uint8_t pad1[SPSC_LINE - 8];
	/* block 2: read-mostly */
	_Atomic uint64_t active;     /* bit i: the producer counts subs[i] (set by the
					subscriber, [J1]; cleared at leave and by [E1]) */
	_Atomic uint64_t sub_sleeping;   /* bit i: subscriber i about to sleep on sub_wake */
	_Atomic uint64_t sub_polling;    /* bit i: subscriber i's doorbell wants ringing */
	_Atomic uint32_t sub_wake;   /* futex word every subscriber sleeps on */
	_Atomic uint32_t prod_sleeping, prod_wake;
	_Atomic uint32_t shutdown;
	uint32_t stall_ms;           /* creator's; checked on open */
	_Atomic uint32_t relay;      /* 1: sleepers on sub_wake the producer left to the
					subscriber it woke ([K7]); 0 in rings made before it */
	uint8_t pad2[SPSC_LINE - 48];
	/* block 3: counters of the producer role (relaxed, single writer) */
	_Atomic uint64_t msgs_sent, bytes_sent, waits_full, prod_wakes, prod_sleeps;
	_Atomic uint64_t prod_bells, prod_spurious, evictions;
	uint8_t pad3[SPSC_LINE - 64];
	struct bc_sub subs[BC_MAX_SUBS];
};
_Static_assert(offsetof(struct bcast_shared, tail) == SPSC_LINE, "tail line");
_Static_assert(offsetof(struct bcast_shared, active) == 2 * SPSC_LINE, "wait line");
_Static_assert(offsetof(struct bcast_shared, msgs_sent) == 3 * SPSC_LINE, "counters line");
_Static_assert(offsetof(struct bcast_shared, subs) == 4 * SPSC_LINE, "subscriber lines");
_Static_assert(sizeof(struct bcast_shared) == 4 * SPSC_LINE + BC_MAX_SUBS * 2 * SPSC_LINE,
	       "bcast_shared size");

/* [H1] The producer's hints: head and the sequence number there, written
 * as a seqlock's data (odd version, release fence, the pair, release
 * store of the even version). */
static inline void bc_set_hints(struct bcast_shared *sh, uint64_t *ver, uint64_t head,
				uint64_t seq)
{
	/* relaxed: the fence below orders it before the pair */
	atomic_store_explicit(&sh->hint_ver, ++*ver, memory_order_relaxed);
	bc_fence_release();
	/* relaxed: between the two versions ([H2] checks them) */
	atomic_store_explicit(&sh->head, head, memory_order_relaxed);
	atomic_store_explicit(&sh->head_seq, seq, memory_order_relaxed);
	/* [H1] release: the pair before the even version; pairs with [H2] */
	atomic_store_explicit(&sh->hint_ver, ++*ver, memory_order_release);
}

/* [H2] Read the hints as a pair written together: false if the producer
 * kept writing them (a few tries). */
static inline bool bc_hints(const struct bcast_shared *sh, uint64_t *head, uint64_t *seq)
{
	for (int i = 0; i < 16; i++) {
		/* [H2] acquire: pairs with [H1] */
		uint64_t v = atomic_load_explicit(&sh->hint_ver, memory_order_acquire);
		/* relaxed: checked by the version below */
		*head = atomic_load_explicit(&sh->head, memory_order_relaxed);
		*seq = atomic_load_explicit(&sh->head_seq, memory_order_relaxed);
		bc_fence_acquire();
		/* relaxed: after the fence; a change means a torn pair */
		if (!(v & 1u) && atomic_load_explicit(&sh->hint_ver, memory_order_relaxed) == v)
			return true;
	}
	return false;
}

/* A new ring: all zero but the stall time (creator, before publishing). */
static inline void bc_init(struct bcast_shared *sh, uint32_t stall_ms)
{
	sh->stall_ms = stall_ms;
}

/* Largest max_msg for a ring of cap bytes: record (<= max_msg + 23), end
 * filler (< record + 56), alignment filler (<= 56), next header word. */
static inline uint64_t bc_max_msg_for(uint64_t cap)
{
	return cap / 2 - 160 < SPSC_MAX_MSG ? cap / 2 - 160 : SPSC_MAX_MSG;
}

static inline uint64_t bc_rec_size(uint64_t len)
{
	return (BC_HDR + len + 7u) & ~(uint64_t)7u;
}

/* Alignment filler so that a payload of len >= SPSC_ALIGN_MIN bytes in a
 * group at offset off starts on a 64-byte boundary: 0 or 8..56. */
static inline uint64_t bc_skip(uint64_t off, uint64_t len)
{
	return len >= SPSC_ALIGN_MIN ? (48u - off) & 63u : 0;
}


/*
 * The words of the group at pos: at most SPSC_MAX_PADS fillers, then a
 * message's header word; `first` is the order of the load of the group's
 * first word.  0 with where the message's record starts, its length and
 * the group's end; -EAGAIN: nothing published there; -EPROTO: nothing a
 * producer writes.
 */
static inline __attribute__((always_inline)) int bc_group(const struct spsc_geom *g, uint64_t pos,
							  memory_order first, uint64_t *at,
							  uint32_t *len, uint64_t *end)
{
	for (int step = 0; step <= SPSC_MAX_PADS; step++) {
		uint64_t off = pos & g->mask;
		uint64_t h = atomic_load_explicit(spsc_word(g, pos),
						  step ? memory_order_relaxed : first);
		uint32_t n = (uint32_t)h, tag = (uint32_t)(h >> 32);
		if (h == 0)
			return step ? -EPROTO : -EAGAIN;
		if (tag == SPSC_TAG_MSG) {
			uint64_t rec = bc_rec_size(n);
			if (unlikely(n > g->max_msg || rec > g->cap - off ||
				     (n >= SPSC_ALIGN_MIN && ((off + BC_HDR) & 63u))))
				return -EPROTO;
			*at = pos;
			*len = n;
			*end = pos + rec;
			return 0;
		}
		bool to_end = off != 0 && n == g->cap - off;
		bool align = n >= 8 && n <= 56 && !(n & 7u) && !((off + n + BC_HDR) & 63u) &&
			     n < g->cap - off;
		if (unlikely(tag != SPSC_TAG_PAD || !(to_end || align)))
			return -EPROTO;
		pos += n;
	}
	return -EPROTO;
}

/*
 * Parse the group at pos: 0 with the message, or bc_group()'s errors.  In
 * a lapped position anything may be read: the caller checks that its
 * reads were intact (bc_cons_intact()) before it believes an answer.
 */
static inline __attribute__((always_inline)) int bc_parse(const struct spsc_geom *g, uint64_t pos,
							  const uint8_t **data, uint32_t *len,
							  uint64_t *seq, uint64_t *end)
{
	uint64_t at;
	/* [C1] acquire on the first word: pairs with [P2]; the words and
	 * payload of the group were written before it */
	int rc = bc_group(g, pos, memory_order_acquire, &at, len, end);
	if (rc < 0)
		return rc;
	/* relaxed: ordered by the acquire above */
	*seq = atomic_load_explicit(spsc_word(g, at + 8), memory_order_relaxed);
	*data = g->data + (at & g->mask) + BC_HDR;
	return 0;
}

/*
 * [C4] After reading at pos (a header, a copy): were those bytes intact?
 * The acquire fence orders the reads before the load of tail; a byte
 * written over after the producer's [P4] makes this load see its tail.
 */
static inline bool bc_intact(struct bcast_shared *sh, uint64_t pos)
{
	bc_fence_acquire();
	/* relaxed: ordered by the fence above (pairs with [P4]) */
	uint64_t t = atomic_load_explicit(&sh->tail, memory_order_relaxed);
	return (int64_t)(pos - t) >= 0;
}

/*
 * The walk's step: the end of the group at pos, from its header words
 * alone (bc_group()).  The producer walks its own records with it; a
 * predecessor's are ordered by the acquire of tail in bc_prod_init().
 */
static inline int bc_step(const struct spsc_geom *g, uint64_t pos, uint64_t *end)
{
	uint64_t at;
	uint32_t len;
	return bc_group(g, pos, memory_order_relaxed, &at, &len, end);
}

/* ---- producer ---------------------------------------------------------- */

struct bc_prod {
	struct bcast_shared *sh;
	struct spsc_geom g;
	uint64_t head;          /* where the next group starts */
	uint64_t seq;           /* the next message's sequence number */
	uint64_t tail;          /* the tail last published */
	uint64_t resv_fill, resv_skip;
	uint32_t resv_len;
	bool resv_open;
	bool light;             /* fence_waker() may be the light one */
	bool overwrite;         /* SHMRING_OVERWRITE: never wait */
	uint64_t hint_ver;      /* the hints' seqlock version, ours */
	/* record boundaries the producer made itself, oldest first, at least
	 * mark_step bytes apart (bc_mark()): where tail may go without a
	 * walk over the records before a subscriber's position */
	uint64_t mark[BC_MARKS];
	uint32_t mark_first, mark_n;
	uint64_t mark_next, mark_step;
	uint64_t lb_mask;       /* lines whose lb is known (bc_scan_subs()) */
	uint64_t lb[BC_MAX_SUBS];       /* a lower bound of each line's position */
	uint32_t lb_gen[BC_MAX_SUBS];   /* the line's gen when lb was read */
};

/* Where the first record boundary at or after the published end is,
 * walking from a boundary `from` (>= tail): the walk stops at the zero
 * word after the last record.  *last_seq gets the last record's sequence
 * number (unchanged if none).  Bounded by cap/8 steps. */
static inline int bc_walk(const struct spsc_geom *g, uint64_t from, uint64_t *to,
			  uint64_t *last_seq)
{
	uint64_t pos = from;
	for (uint64_t steps = 0; steps <= g->cap / 8; steps++) {
		const uint8_t *d;
		uint32_t len;
		uint64_t seq, end;
		int rc = bc_parse(g, pos, &d, &len, &seq, &end);
		if (rc == -EAGAIN)
			break;
		if (rc < 0 || end - from > g->cap)
			return -EPROTO;
		*last_seq = seq;
		pos = end;
	}
	*to = pos;
	return pos - from > g->cap ? -EPROTO : 0;
}

/* Attach the producer: tail from the ring, the true end of the records by
 * walking from it (a dead producer may have published past its hints). */
static inline int bc_prod_init(struct bc_prod *p, struct bcast_shared *sh,
			       const struct spsc_geom *g, bool light, bool overwrite)
{
	/* acquire: pairs with the last producer's [P4]; nobody else writes tail */
	uint64_t tail = atomic_load_explicit(&sh->tail, memory_order_acquire);
	/* relaxed: a hint, used only when no record follows tail */
	uint64_t seq = atomic_load_explicit(&sh->head_seq, memory_order_relaxed), last = 0;
	uint64_t head;
	if ((tail & 7u) || bc_walk(g, tail, &head, &last) < 0)
		return -EPROTO;
	/* sequence numbers start at 1: a subscriber's 0 means "none yet" */
	*p = (struct bc_prod){ .sh = sh, .g = *g, .head = head, .tail = tail,
			       .seq = head != tail ? last + 1 : (seq ? seq : 1), .light = light,
			       .overwrite = overwrite, .mark_step = g->cap / BC_MARKS };
	p->mark_next = head + p->mark_step;
	/* relaxed: only producers write it, one at a time */
	p->hint_ver = atomic_load_explicit(&sh->hint_ver, memory_order_relaxed) & ~1ull;
	bc_set_hints(sh, &p->hint_ver, head, p->seq);
	return 0;
}

/* Bytes a group for len bytes takes at head, with the next header word. */
static inline uint64_t bc_need(const struct bc_prod *p, size_t len, uint64_t *fill,
			       uint64_t *skip)
{
	uint64_t off = p->head & p->g.mask;
	*fill = 0;
	*skip = bc_skip(off, len);
	if (off + *skip + bc_rec_size(len) > p->g.cap) {
		*fill = p->g.cap - off;
		*skip = bc_skip(0, len);
	}
	return *fill + *skip + bc_rec_size(len) + SPSC_HDR;
}

static inline bool bc_fits(const struct bc_prod *p, uint64_t need)
{
	return p->head + need - p->tail <= p->g.cap;
}

/* [P4] Publish a new tail before writing over the bytes before it. */
static inline void bc_set_tail(struct bc_prod *p, uint64_t tail)
{
	p->tail = tail;
	/* seq_cst: ordered with the mask loads of [R1]/[R3] and a joiner's
	 * [J1]/[J2] (header comment) */
	atomic_store_explicit(&p->sh->tail, tail, memory_order_seq_cst);
	/* release fence: the store above comes before every byte we write
	 * after it; pairs with a subscriber's [C4] */
	bc_fence_release();
}

/*
 * Where tail may go to free room for `need` bytes (and `extra` more if
 * there are records to drop, so that tail, a line every subscriber reads,
 * moves in steps, not per message), dropping the oldest records from
 * `from`.  A record that does not parse (written over by a peer) ends the
 * walk at head: the ring is emptied rather than trusted.
 */
static inline uint64_t bc_drop_target(const struct bc_prod *p, uint64_t from, uint64_t need,
				      uint64_t extra)
{
	uint64_t t = from;
	for (uint64_t steps = 0; steps <= p->g.cap / 8 && t != p->head; steps++) {
		if (p->head + need + extra - t <= p->g.cap)
			break;
		const uint8_t *d;
		uint32_t len;
		uint64_t seq, end;
		if (bc_parse(&p->g, t, &d, &len, &seq, &end) < 0 || end - t > p->head - t)
			return p->head;
		t = end;
	}
	return p->head + need - t > p->g.cap ? p->head : t;
}

/* Is `to` a record boundary at or after `from` (a boundary)?  Walks the
 * records between: bounded by cap/8 steps. */
static inline bool bc_boundary(const struct spsc_geom *g, uint64_t from, uint64_t to)
{
	uint64_t pos = from;
	for (uint64_t steps = 0; steps <= g->cap / 8 && pos != to; steps++) {
		uint64_t end;
		if (bc_step(g, pos, &end) < 0 || end - from > to - from)
			return false;
		pos = end;
	}
	return pos == to;
}

/*
 * Remember head, a boundary the producer wrote itself, as a mark: every
 * mark_step bytes (cap / BC_MARKS) of records, so the marks at or after
 * tail number at most BC_MARKS + 1.  When the marks are full the oldest
 * goes (it is below tail by then, or only makes a walk longer).
 */
static __attribute__((noinline, cold, unused)) void bc_mark(struct bc_prod *p)
{
	if (p->mark_n == BC_MARKS) {
		p->mark_first = (p->mark_first + 1) % BC_MARKS;
		p->mark_n--;
	}
	p->mark[(p->mark_first + p->mark_n) % BC_MARKS] = p->head;
	p->mark_n++;
	p->mark_next = p->head + p->mark_step;
}

/*
 * Where tail may go for `need` bytes when the slowest counted subscriber
 * is at min (floor <= min <= head): to a record boundary at or below min.
 * Head, and the marks, are boundaries the producer made; the last of them
 * at or below min is taken when it leaves room, so a subscriber's
 * position is believed without a walk over the records before it.  Only
 * when room is short is min itself checked, by a walk from that mark
 * (at most mark_step bytes and one record).  False: min is inside a
 * record, nonsense from that subscriber.  Marks below the new tail go.
 */
static inline bool bc_tail_to(struct bc_prod *p, uint64_t floor, uint64_t min, uint64_t need,
			      uint64_t *t)
{
	uint64_t best = floor;
	while (p->mark_n && (int64_t)(min - p->mark[p->mark_first]) >= 0) {
		if ((int64_t)(p->mark[p->mark_first] - best) > 0)
			best = p->mark[p->mark_first];
		p->mark_first = (p->mark_first + 1) % BC_MARKS;
		p->mark_n--;
	}
	if (min == p->head || min == best || p->head + need - best <= p->g.cap) {
		*t = min == p->head ? min : best;
		return true;
	}
	*t = min;
	return bc_boundary(&p->g, best, min);
}

/* What the producer found looking at the subscribers it counts. */
struct bc_scan {
	uint64_t min;           /* slowest position (clamped to the floor) */
	uint64_t holders;       /* bits of the subscribers at min */
	uint64_t bad;           /* bits whose position is nonsense */
	uint32_t watch;         /* one holder's line ... */
	uint64_t watch_seen;    /* ... and the value read there */
};

/*
 * One counted line's position, read now ([P1]): believed only between the
 * floor (the tail at the start of this look, below which nobody counted
 * can be) and head, on a word boundary; one below the floor but within a
 * lap is taken as the floor (a joiner that has not yet seen tail, [J2]).
 * False: nonsense, that subscriber's fault.
 */
static inline bool bc_read_pos(const struct bc_prod *p, uint32_t i, uint64_t floor,
			       uint64_t *raw, uint64_t *pos)
{
	/* [P1] acquire: pairs with the subscriber's [C2]; its reads of the
	 * bytes before pos are done */
	*raw = atomic_load_explicit(&p->sh->subs[i].pos, memory_order_acquire);
	*pos = *raw;
	if ((*pos & 7u) || p->head - *pos > p->g.cap)
		return false;
	if ((int64_t)(*pos - floor) < 0)
		*pos = floor;
	else if (*pos - floor > p->head - floor)
		return false;
	return true;
}

/*
 * The slowest counted position.  Every line's position is read at most
 * once ([P1]), and only where it can decide the minimum: the producer
 * keeps what it last read of each line (p->lb) as a lower bound, good
 * while the line's holder is the same (`gen`, bumped at every attach; a
 * holder's position only moves forward, and an evicted one comes back at
 * tail), and reads again only the lines whose bound is the smallest, until
 * the smallest is one read now.  On a full ring with many subscribers the
 * producer then reads the holders' lines, not every line, per message it
 * frees.  A subscriber that moves its position back harms only itself.
 */
static inline void bc_scan_subs(struct bc_prod *p, uint64_t mask, uint64_t floor,
				struct bc_scan *s)
{
	const uint64_t span = p->head - floor;
	uint64_t fresh = 0, raw[BC_MAX_SUBS];
	*s = (struct bc_scan){ .min = p->head };
	for (uint64_t left = mask; left; left &= left - 1) {
		uint32_t i = (uint32_t)__builtin_ctzll(left);
		/* relaxed: written under the control lock before the
		 * holder's [J1], which our [R1] read */
		uint32_t gen = atomic_load_explicit(&p->sh->subs[i].gen, memory_order_relaxed);
		if (p->lb_gen[i] != gen) {
			p->lb_gen[i] = gen;
			p->lb_mask &= ~(1ull << i);
		}
	}
	/* bounded: every pass reads at least one line it had not read */
	for (uint32_t pass = 0; pass <= BC_MAX_SUBS; pass++) {
		uint64_t best = span + 1, at = 0;
		for (uint64_t left = mask; left; left &= left - 1) {
			uint32_t i = (uint32_t)__builtin_ctzll(left);
			uint64_t bit = 1ull << i, key = 0;     /* unknown: read it */
			if (p->lb_mask & bit)
				key = (int64_t)(p->lb[i] - floor) < 0 ? 0 : p->lb[i] - floor;
			if (key < best) {
				best = key;
				at = 0;
			}
			if (key == best)
				at |= bit;
		}
		uint64_t want = at & ~fresh;
		if (!want) {
			s->min = best <= span ? floor + best : p->head;
			s->holders = at;
			if (at) {
				s->watch = (uint32_t)__builtin_ctzll(at);
				s->watch_seen = raw[s->watch];
			}
			return;
		}
		for (; want; want &= want - 1) {
			uint32_t i = (uint32_t)__builtin_ctzll(want);
			uint64_t bit = 1ull << i, pos;
			fresh |= bit;
			if (!bc_read_pos(p, i, floor, &raw[i], &pos)) {
				s->bad |= bit;
				p->lb_mask &= ~bit;
				continue;
			}
			p->lb[i] = pos;
			p->lb_mask |= bit;
		}
		if (s->bad)
			return;
	}
}

/*
 * [E1] Stop counting line i's holder of generation `gen` (the one the
 * producer's decision is about: p->lb_gen[i], read at its scan).  True if
 * it did.  A decision can be out of date by the time it is carried out:
 * the holder may have left and a newcomer joined the same line (its
 * attach bumps gen under the control lock, then its [J1] sets the bit
 * again), and clearing that bit would stop counting a subscriber nobody
 * decided about -- the producer would then pass it and it would lose
 * messages while alive.  So the bit goes by a CAS, only while the line's
 * gen is still `gen`:
 *   - the load of `active` that sees the bit reads from the [J1] that set
 *     it (or later), so the gen loaded after it is at least that holder's;
 *   - after a successful CAS, gen is loaded again: if the CAS read the
 *     bit from a newcomer's [J1] (the holder left and the newcomer joined
 *     between our gen check and the CAS), it synchronized with that [J1]
 *     and this load sees the newcomer's gen.  The bit is then set back
 *     before anything else: the producer moves no tail in between, so the
 *     newcomer, seeing its bit clear meanwhile, finds its bytes intact by
 *     tail ([C5] falls back to [C4]).
 * Setting a bit back for a newcomer that has also left meanwhile counts a
 * line nobody holds: its owner is then 0, so the next liveness look
 * (bc_uncount_line() again, same gen) stops counting it.
 */
static inline bool bc_uncount_line(struct bc_prod *p, uint32_t i, uint32_t gen)
{
	struct bc_sub *u = &p->sh->subs[i];
	const uint64_t bit = 1ull << i;
	/* seq_cst: in S with the holder's [J1] and leave */
	uint64_t cur = atomic_load_explicit(&p->sh->active, memory_order_seq_cst);
	/* bounded: a failed CAS means some line joined or left meanwhile */
	for (int tries = 0;; tries++) {
		/* seq_cst: after the load of active that saw the bit (above) */
		if (!(cur & bit) || tries == 64 ||
		    atomic_load_explicit(&u->gen, memory_order_seq_cst) != gen)
			return false;
		/* [E1] seq_cst RMW: in S with the subscriber's [J1] and its
		 * look at its bit; before the [P4] that passes it, whose
		 * release fence makes a subscriber that read our later writes
		 * see the bit clear ([C5]) */
		if (atomic_compare_exchange_weak_explicit(&p->sh->active, &cur, cur & ~bit,
							  memory_order_seq_cst,
							  memory_order_seq_cst))
			break;
	}
	/* seq_cst: after the CAS (above) */
	if (atomic_load_explicit(&u->gen, memory_order_seq_cst) != gen) {
		/* seq_cst RMW: as [J1], for the newcomer */
		atomic_fetch_or_explicit(&p->sh->active, bit, memory_order_seq_cst);
		return false;
	}
	return true;
}

/* Stop counting the holders of `bits` the last scan decided about;
 * `evicted`: they learn it as an eviction, and the ring counts it.
 * Returns the bits it stopped. */
static inline uint64_t bc_uncount(struct bc_prod *p, uint64_t bits, bool evicted)
{
	uint64_t done = 0;
	for (; bits; bits &= bits - 1) {
		uint32_t i = (uint32_t)__builtin_ctzll(bits);
		if (!bc_uncount_line(p, i, p->lb_gen[i]))
			continue;
		done |= 1ull << i;
		if (!evicted)
			continue;
		struct bc_sub *u = &p->sh->subs[i];
		/* relaxed: we are their only writer; display.  Before the
		 * [P4] that passes the subscriber: it reads them after the
		 * acquire load of that tail (sub_lapped()) */
		atomic_store_explicit(&u->evict, atomic_load_explicit(&u->evict,
			memory_order_relaxed) + 1, memory_order_relaxed);
		atomic_store_explicit(&u->evictions, atomic_load_explicit(&u->evictions,
			memory_order_relaxed) + 1, memory_order_relaxed);
	}
	if (evicted && done)
		spsc_count(&p->sh->evictions, (uint64_t)__builtin_popcountll(done));
	return done;
}

/*
 * Make room for `need` bytes if the rules allow: move tail (never past a
 * counted subscriber unless the ring overwrites).  Returns 0 (it fits),
 * -EAGAIN (a subscriber holds it back: *s says who), or 1 (positions of
 * s->bad are nonsense: the caller stops counting them and calls again).
 * Bounded: a new round only for a new joiner, at most 2 x 64 of them.
 */
static inline int bc_make_room(struct bc_prod *p, uint64_t need, struct bc_scan *s)
{
	const uint64_t floor = p->tail, slack = p->g.cap / 16;
	*s = (struct bc_scan){ .min = p->head };
	if (p->overwrite) {
		uint64_t t = bc_drop_target(p, floor, need, slack);
		if (t != p->tail)
			bc_set_tail(p, t);
		return 0;
	}
	for (int round = 0; round <= 2 * (int)BC_MAX_SUBS; round++) {
		/* [R1] seq_cst: who is counted, before [P4] */
		uint64_t mask = atomic_load_explicit(&p->sh->active, memory_order_seq_cst);
		uint64_t t;
		if (mask) {
			bc_scan_subs(p, mask, floor, s);
			if (s->bad)
				return 1;
			if (!bc_tail_to(p, floor, s->min, need, &t)) {
				s->bad = s->holders;     /* inside a record: nonsense */
				return 1;
			}
		} else {
			/* nobody counted: keep what history fits for SHMRING_OLDEST */
			t = bc_drop_target(p, floor, need, slack);
		}
		if (t != p->tail)
			bc_set_tail(p, t);
		/* [R3] seq_cst: after [P4]; a bit that came meanwhile is a
		 * joiner whose [J2] may have read an older tail: count it */
		if (atomic_load_explicit(&p->sh->active, memory_order_seq_cst) == mask)
			return bc_fits(p, need) ? 0 : -EAGAIN;
	}
	return -EAGAIN;
}

/* Write the words of a group at head except its first; return the first
 * (the caller release-stores it last, [P2]). */
static inline uint64_t bc_group_words(const struct spsc_geom *g, uint64_t head, uint64_t fill,
				      uint64_t skip, uint32_t len, uint64_t seq)
{
	uint64_t at = head + fill + skip;
	uint64_t w = spsc_hdr(len, SPSC_TAG_MSG);
	/* relaxed, here and below: ordered before any subscriber can look
	 * by the release store of the group's first word ([P2]) */
	atomic_store_explicit(spsc_word(g, at + 8), seq, memory_order_relaxed);
	if (skip) {
		atomic_store_explicit(spsc_word(g, at), w, memory_order_relaxed);
		w = spsc_hdr((uint32_t)skip, SPSC_TAG_PAD);
	}
	if (fill) {
		atomic_store_explicit(spsc_word(g, head + fill), w, memory_order_relaxed);
		w = spsc_hdr((uint32_t)fill, SPSC_TAG_PAD);
	}
	return w;
}

static inline void *bc_resv_data(const struct bc_prod *p)
{
	return p->g.data + ((p->head + p->resv_fill + p->resv_skip) & p->g.mask) + BC_HDR;
}

/* Open a reservation of len bytes; the room was made by the caller
 * (bc_fits() is true for bc_need()). */
static inline void *bc_reserve(struct bc_prod *p, size_t len, uint64_t fill, uint64_t skip)
{
	p->resv_fill = fill;
	p->resv_skip = skip;
	p->resv_len = (uint32_t)len;
	p->resv_open = true;
	return bc_resv_data(p);
}

/* Publish the group of len payload bytes (already written) at head, with
 * the fillers bc_need() gave. */
static inline __attribute__((always_inline)) void bc_publish(struct bc_prod *p, uint64_t fill,
							     uint64_t skip, uint32_t len)
{
	const uint64_t head = p->head, seq = p->seq;
	const uint64_t next = head + fill + skip + bc_rec_size(len);
	/* relaxed: ordered before a subscriber can look here by [P2] */
	atomic_store_explicit(spsc_word(&p->g, next), 0, memory_order_relaxed);
	uint64_t first = bc_group_words(&p->g, head, fill, skip, len, seq);
	/* [P2] release: publishes the group, payload included; pairs with [C1] */
	atomic_store_explicit(spsc_word(&p->g, head), first, memory_order_release);
	p->head = next;
	p->seq = seq + 1;
	if (unlikely((int64_t)(next - p->mark_next) >= 0))
		bc_mark(p);
}

/* Publish the open reservation with len (<= reserved) payload bytes. */
static inline __attribute__((always_inline)) void bc_commit(struct bc_prod *p, uint32_t len)
{
	p->resv_open = false;
	bc_publish(p, p->resv_fill, p->resv_skip, len);
}

/* Copy a message of len bytes into the room bc_need() found (fill and
 * skip) and publish it: a reservation and its commit, without the open
 * reservation's state. */
static inline __attribute__((always_inline)) void bc_send(struct bc_prod *p, uint64_t fill,
							  uint64_t skip, const void *msg, uint32_t len)
{
	/* bc_copy: a lapped subscriber may be reading these bytes (its copy
	 * is thrown away, [C4]) */
	bc_copy(p->g.data + ((p->head + fill + skip) & p->g.mask) + BC_HDR, msg, len);
	bc_publish(p, fill, skip, len);
}

/* After commits: the hints, then whether a subscriber sleeps or polls
 * (the caller wakes them: no system call here). */
static inline bool bc_published(struct bc_prod *p)
{
	/* for joiners (who check them against tail) and stats */
	bc_set_hints(p->sh, &p->hint_ver, p->head, p->seq);
	fence_waker(p->light);
	/* [P3] after the fence: the load half of the Dekker pairs with the
	 * subscribers' [K1] and [B1] */
	return (atomic_load_explicit(&p->sh->sub_sleeping, memory_order_relaxed) |
		atomic_load_explicit(&p->sh->sub_polling, memory_order_relaxed)) != 0;
}

/* ---- subscriber -------------------------------------------------------- */

struct bc_cons {
	struct bcast_shared *sh;
	struct bc_sub *me;
	struct spsc_geom g;
	uint64_t pos;           /* released */
	uint64_t read;          /* handed out (acquired), >= pos */
	uint64_t expect;        /* next sequence number; 0: none expected yet */
	uint64_t bit;           /* ours in `active` */
	uint32_t ack;           /* eviction generation seen */
	uint32_t idx;           /* our line */
	bool light;
	bool overwrite;         /* SHMRING_OVERWRITE: tail alone says intact */
};

/*
 * [C5] After reading at pos: were those bytes intact?  On a blocking ring
 * the producer writes over what a subscriber it counts may still read
 * only after it stopped counting it ([E1], then the [P4] before the
 * write): our bit, loaded after the acquire fence, still set means
 * nothing we read was written over.  Without the bit (and on overwrite
 * rings, where the producer laps without clearing bits) tail decides
 * ([C4]).  `active` sits on the line of [C3], read per message anyway and
 * written only at joins, leaves and evictions, while tail moves with every
 * message the producer frees on a full ring.
 */
static inline bool bc_cons_intact(const struct bc_cons *c, uint64_t pos)
{
	if (!c->overwrite) {
		bc_fence_acquire();
		/* [C5] relaxed: ordered by the fence above; pairs with [E1]
		 * and the release fence of [P4] */
		if (atomic_load_explicit(&c->sh->active, memory_order_relaxed) & c->bit)
			return true;
	}
	return bc_intact(c->sh, pos);
}

/*
 * Be counted from position `start` (a record boundary, or below tail):
 * [J1] set our bit, then [J2] look at tail until it is not past our
 * position, moving up to it when it is.  Returns how far we moved up
 * (bytes written off before we were counted).  Bounded: tail only moves
 * forward while we are not counted, and by at most the capacity per lap;
 * after 64 laps we take the tail we read (the producer counts us by then).
 */
static inline uint64_t bc_join(struct bc_cons *c, uint64_t start)
{
	uint64_t bit = c->bit, moved = 0;
	c->pos = c->read = start;
	/* relaxed: published by the seq_cst RMW below ([J1]) */
	atomic_store_explicit(&c->me->pos, start, memory_order_relaxed);
	/* [J1] seq_cst RMW: in S with the producer's [R1]/[R3] */
	atomic_fetch_or_explicit(&c->sh->active, bit, memory_order_seq_cst);
	for (int lap = 0; lap < 64; lap++) {
		/* [J2] seq_cst: after [J1] in S (header comment) */
		uint64_t t = atomic_load_explicit(&c->sh->tail, memory_order_seq_cst);
		if ((int64_t)(c->pos - t) >= 0)
			break;
		moved += t - c->pos;
		c->pos = c->read = t;
		/* seq_cst: the producer's next [R1] round reads it ([P1]) */
		atomic_store_explicit(&c->me->pos, t, memory_order_seq_cst);
	}
	return moved;
}

/* Does the producer still count us?  seq_cst: in S with its [E1]. */
static inline bool bc_counted(const struct bc_cons *c)
{
	return (atomic_load_explicit(&c->sh->active, memory_order_seq_cst) >> c->idx) & 1u;
}

/* Release bytes up to end.  True when the producer may sleep or poll. */
static inline bool bc_release_to(struct bc_cons *c, uint64_t end)
{
	c->pos = end;
	/* relaxed: read with the position by a named subscriber's successor
	 * and by stats */
	atomic_store_explicit(&c->me->next_seq, c->expect, memory_order_relaxed);
	/* [C2] release: our reads of the released records are done before
	 * the producer may reuse the space; pairs with [P1] */
	atomic_store_explicit(&c->me->pos, end, memory_order_release);
	fence_waker(c->light);
	/* [C3] after the fence: the Dekker pair with the producer's [W1] */
	return atomic_load_explicit(&c->sh->prod_sleeping, memory_order_relaxed) != 0;
}

/* Account a delivered message of sequence seq: how many before it were
 * lost (a gap announced by -EOVERFLOW).  -1: a sequence number from the
 * past (a message twice, or a corrupt ring). */
static inline int64_t bc_seen(struct bc_cons *c, uint64_t seq)
{
	if (c->expect && seq < c->expect)
		return -1;
	uint64_t lost = c->expect ? seq - c->expect : 0;
	c->expect = seq + 1;
	return (int64_t)(lost > INT64_MAX ? INT64_MAX : lost);
}

/* Bytes between a position and the producer, for stats; tolerant of a
 * torn or lagging view. */
static inline uint64_t bc_lag(uint64_t head, uint64_t pos, uint64_t cap)
{
	uint64_t d = head - pos;
	return (int64_t)d < 0 ? 0 : d > cap ? cap : d;
}

#endif /* SHMRING_RING_BCAST_H */
