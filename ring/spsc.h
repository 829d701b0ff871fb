/* SPDX-License-Identifier: MIT */
/*
 * Single-producer single-consumer ring of variable-length messages on a raw
 * memory region.  No system calls, no allocation, no pointers in shared
 * memory: positions are 64-bit byte counters that only grow; the offset in
 * the data area is `pos & mask`.
 *
 * Every record starts with one 64-bit header word, and that word is the
 * commit flag (as in Aeron): 0 means "nothing here yet", otherwise
 *
 *   bits  0..31  length (message: payload bytes; filler: whole size)
 *   bits 32..63  tag: SPSC_TAG_MSG or SPSC_TAG_PAD
 *
 *   +-------------+---------------------------------+
 *   | header (u64)| payload, len bytes, pad to 8    |
 *   +-------------+---------------------------------+
 *
 * The consumer polls the header word at its own position, so a message
 * travels in the cache lines of the record itself: no separate index line
 * is pulled across cores per message.  The producer makes "0 means not yet"
 * true by zeroing the word where the *next* header will go before it
 * publishes a record; stale bytes from an earlier lap therefore can never
 * be taken for a record.
 *
 * Fillers (tag PAD): one that runs to the end of the area when a record
 * would not fit there (records never wrap, so a frame is one contiguous
 * region, written and read in place), and a short one (8..56 bytes) in
 * front of a payload of SPSC_ALIGN_MIN bytes or more, so that large
 * payloads start on a 64-byte boundary (memcpy and SIMD code are much
 * faster on aligned buffers).  A group (fillers + record) is published by
 * the release store of its FIRST header word, after every other word.
 *
 * Memory orders, each tagged and paired (docs/design.md lists them all):
 *   [P1] producer acquire-loads cons_head          <- pairs with [C2]
 *   [P2] producer release-stores a group's first header -> pairs with [C1]
 *   [P3] producer loads cons_sleeping after its fence (wait_look): Dekker with [W1]
 *   [C1] consumer acquire-loads the header at its position <- pairs with [P2]
 *   [C2] consumer release-stores cons_head          -> pairs with [P1]
 *   [C3] consumer loads prod_sleeping after its fence (wait_look): Dekker with [W1]
 *
 * Nothing here blocks: -EAGAIN goes back to the caller (api/), which spins
 * or sleeps.  Every value read from shared memory is checked against the
 * geometry copied into the private structs; a violation is -EPROTO and
 * nothing is read out of bounds.  Loops are bounded by constants.
 */
#ifndef SHMRING_RING_SPSC_H
#define SHMRING_RING_SPSC_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

#include "../sync/wait.h"
#include "copy.h"

#ifndef likely
#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#endif

/* Two lines: the adjacent-line prefetcher of x86 pulls pairs of 64 B lines. */
#define SPSC_LINE 128

#define SPSC_TAG_MSG 0x4d534731u     /* "1GSM" */
#define SPSC_TAG_PAD 0x50414431u     /* "1DAP" */
#define SPSC_HDR     8u
#define SPSC_ALIGN_MIN 256u          /* payloads this long start 64-byte aligned */
#define SPSC_MAX_PADS 2              /* end filler + alignment filler */

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free to be address-free");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock-free to be address-free");

/* The ring's shared state; lives in the segment at a 4096-aligned offset. */
struct spsc_shared {
	/* producer: position after its last commit.  Not read per message
	 * (the consumer polls record headers): stats, tools, takeover hint. */
	_Atomic uint64_t prod_tail;
	uint8_t pad0[SPSC_LINE - 8];

	/* written by the consumer on every acquire and release */
	_Atomic uint64_t cons_head;        /* bytes released: the producer may reuse them */
	_Atomic uint64_t cons_read;        /* bytes handed out (>= cons_head): in the consumer's hands */
	uint8_t pad1[SPSC_LINE - 16];

	/* written only when a side goes to sleep or the stream ends: read-mostly */
	_Atomic uint32_t cons_sleeping;    /* WAIT_SLEEPING: consumer about to sleep on cons_wake;
					      WAIT_POLLING: its doorbell wants ringing */
	_Atomic uint32_t cons_wake;        /* futex word the consumer sleeps on */
	_Atomic uint32_t prod_sleeping;    /* the same for the producer */
	_Atomic uint32_t prod_wake;        /* futex word the producer sleeps on */
	_Atomic uint32_t shutdown;         /* 1 after shmring_shutdown */
	uint8_t pad2[SPSC_LINE - 20];

	/* counters written only by the producer role (relaxed, single writer) */
	_Atomic uint64_t msgs_sent, bytes_sent, waits_full, prod_wakes, prod_sleeps;
	_Atomic uint64_t prod_bells;       /* the consumer's doorbell rung */
	_Atomic uint64_t prod_spurious;    /* this side's doorbell found nothing to do */
	/* what msgs_sent and bytes_sent become once the group ending at
	 * pend_tail is published: stored before its publish, so that a
	 * takeover counts a group whose producer died between publishing it
	 * and counting it (spsc_prod_init).  Zero in rings made before them. */
	_Atomic uint64_t pend_tail, pend_msgs, pend_bytes;
	uint8_t pad3[SPSC_LINE - 80];

	/* counters written only by the consumer role (relaxed, single writer) */
	_Atomic uint64_t msgs_recv, bytes_recv, waits_empty, cons_wakes, cons_sleeps;
	_Atomic uint64_t cons_bells, cons_spurious;
	/* msgs_recv and bytes_recv once cons_head is pend_head: as pend_* on
	 * the producer's line, for a consumer killed between its release and
	 * its counters (spsc_cons_init) */
	_Atomic uint64_t pend_head, pend_recv, pend_rbytes;
	uint8_t pad4[SPSC_LINE - 80];
};
_Static_assert(offsetof(struct spsc_shared, cons_head) == SPSC_LINE, "consumer line");
_Static_assert(offsetof(struct spsc_shared, cons_sleeping) == 2 * SPSC_LINE, "wait line");
_Static_assert(offsetof(struct spsc_shared, msgs_sent) == 3 * SPSC_LINE, "producer stats line");
_Static_assert(offsetof(struct spsc_shared, msgs_recv) == 4 * SPSC_LINE, "consumer stats line");
_Static_assert(sizeof(struct spsc_shared) == 5 * SPSC_LINE, "spsc_shared size");

/* Geometry: copied from the validated header, never re-read from the segment. */
struct spsc_geom {
	uint8_t *data;          /* start of the data area in this process, 64-aligned */
	uint64_t cap;           /* power of two, >= 4096 */
	uint64_t mask;
	uint32_t max_msg;
};

struct spsc_prod {
	struct spsc_shared *sh;
	struct spsc_geom g;
	uint64_t tail;          /* where the next group starts */
	uint64_t cons_cache;    /* last cons_head seen */
	uint64_t resv_fill;     /* open reservation: end filler, alignment filler */
	uint64_t resv_skip;
	uint32_t resv_len;
	bool resv_open;
	uint64_t rewind_at;     /* tail from which spsc_rewind() looks again */
	uint64_t sent_msgs;     /* msgs_sent and bytes_sent, counting what is */
	uint64_t sent_bytes;    /*   published (spsc_pend); stored by the caller */
	struct wait_fence wf;   /* our fence as the consumer's waker (sync/wait.h) */
};

struct spsc_cons {
	struct spsc_shared *sh;
	struct spsc_geom g;
	uint64_t head;          /* private copy of cons_head (released) */
	uint64_t read;          /* handed out, not yet released */
	uint64_t recv_msgs;     /* msgs_recv and bytes_recv, counting what is */
	uint64_t recv_bytes;    /*   released (spsc_release_to); stored by the caller */
	struct wait_fence wf;   /* our fence as the producer's waker */
};

static inline uint64_t spsc_rec_size(uint64_t len)
{
	return (SPSC_HDR + len + 7u) & ~(uint64_t)7u;
}

/* Largest max_msg of any ring: an end filler is shorter than the record
 * behind it plus its alignment filler (< max_msg + 72), and its length must
 * fit the 32 bits of a header word. */
#define SPSC_MAX_MSG (UINT32_MAX - 128u)

/* Largest max_msg for a ring of `cap` bytes: in an empty ring a record, the
 * end filler in front of it (< record + 56), its alignment filler (<= 56)
 * and the next header word (8) must fit. */
static inline uint64_t spsc_max_msg_for(uint64_t cap)
{
	return cap / 2 - 128 < SPSC_MAX_MSG ? cap / 2 - 128 : SPSC_MAX_MSG;
}

static inline _Atomic uint64_t *spsc_word(const struct spsc_geom *g, uint64_t pos)
{
	return (_Atomic uint64_t *)(void *)(g->data + (pos & g->mask));
}

static inline uint64_t spsc_hdr(uint32_t len, uint32_t tag)
{
	return (uint64_t)tag << 32 | len;
}

/* Alignment filler for a payload of `len` bytes whose group starts at `off`:
 * 0, or 8..56 so that the payload lands on a 64-byte boundary. */
static inline uint64_t spsc_skip(uint64_t off, uint64_t len)
{
	return len >= SPSC_ALIGN_MIN ? (56u - off) & 63u : 0;
}

/*
 * Parse the group at `pos`: at most SPSC_MAX_PADS fillers, then a message.
 * The first word is loaded with acquire ([C1], pairs with [P2]); the words
 * after it were stored before it and are ordered by it.  Returns 0 and the
 * message, -EAGAIN if the first word is 0 (not yet published), -EPROTO for
 * anything a correct producer cannot have written.
 */
static inline int spsc_parse(const struct spsc_geom *g, uint64_t pos, void **data,
			     uint32_t *len, uint64_t *end)
{
	for (int step = 0; step <= SPSC_MAX_PADS; step++) {
		uint64_t off = pos & g->mask;
		/* [C1] acquire on the first word: pairs with [P2]; the rest of
		 * the group, payload included, was written before it */
		uint64_t h = atomic_load_explicit(spsc_word(g, pos),
						  step ? memory_order_relaxed : memory_order_acquire);
		uint32_t n = (uint32_t)h, tag = (uint32_t)(h >> 32);
		if (h == 0) {
			if (step)
				return -EPROTO;    /* a filler always has a successor */
			/* nothing yet: ask for the line after the header's now, so
			 * that a payload crossing into it travels in parallel */
			__builtin_prefetch(g->data + ((pos + 64) & g->mask));
			return -EAGAIN;
		}
		if (tag == SPSC_TAG_MSG) {
			uint64_t rec = spsc_rec_size(n);
			if (unlikely(n > g->max_msg || rec > g->cap - off ||
				     (n >= SPSC_ALIGN_MIN && ((off + SPSC_HDR) & 63u))))
				return -EPROTO;
			*data = g->data + off + SPSC_HDR;
			*len = n;
			*end = pos + rec;
			return 0;
		}
		/* a filler runs to the end of the area (never from offset 0), or
		 * is a short one that aligns the payload after it */
		bool to_end = off != 0 && n == g->cap - off;
		bool align = n >= 8 && n <= 56 && !(n & 7u) && !((off + n + SPSC_HDR) & 63u) &&
			     n < g->cap - off;
		if (unlikely(tag != SPSC_TAG_PAD || !(to_end || align)))
			return -EPROTO;
		pos += n;
	}
	return -EPROTO;
}

/*
 * Warm placement.  Left to itself the producer walks the whole data area,
 * so in a ring sized generously for slack (64 MiB for 1 MiB frames) every
 * record lands in memory -- and pages -- that left the caches and the TLB
 * a lap ago, on both sides.  Nothing ties a record to the next address,
 * though: when little is in flight (half of spsc_warm() at most) and
 * the group would start spsc_warm() bytes or more into the area, the
 * producer puts an end filler at its tail and the record at offset 0 of
 * the next lap -- a group every consumer already knows how to read.  A
 * ring that keeps up then touches about spsc_warm() bytes plus what it has
 * in flight, not its whole area.
 *
 * The price: until the consumer reaches that group, the end filler counts
 * as in flight, so for that while the producer has spsc_warm() bytes of
 * room minus what was in flight, not the whole ring.  Hence the threshold
 * is a sixteenth of the ring at least, rewinds happen only when the
 * consumer is nearly caught up, and a consumer taking the record hands the
 * filler back at once (sph_acquire).  Short messages sent by copy
 * (spsc_send_short) keep walking the area: the check would cost the
 * hottest path.
 */
#define SPSC_WARM (256u * 1024u)

static inline uint64_t spsc_warm(uint64_t len, uint64_t cap)
{
	uint64_t w = 4 * spsc_rec_size(len);
	w = w > SPSC_WARM ? w : SPSC_WARM;
	return w > cap / 16 ? w : cap / 16;
}

/* ---- producer ---------------------------------------------------------- */

/*
 * Attach the producer side.  The true end of the published records is found
 * by walking them from the consumer's released position (a dead producer
 * may have published after its last prod_tail store); the walk stops at
 * the zero word every correct producer leaves after its last record.
 */
static inline int spsc_prod_init(struct spsc_prod *p, struct spsc_shared *sh,
				 const struct spsc_geom *g, bool light)
{
	/* [P1'] acquire: pairs with [C2]; the consumer is done with the bytes
	 * before its head */
	uint64_t head = atomic_load_explicit(&sh->cons_head, memory_order_acquire);
	if (head & 7u)
		return -EPROTO;
	uint64_t pos = head;
	for (uint64_t steps = 0; steps <= g->cap / 8; steps++) {
		void *data;
		uint32_t len;
		uint64_t end;
		int rc = spsc_parse(g, pos, &data, &len, &end);
		if (rc == -EAGAIN)
			break;
		if (rc < 0 || end - head > g->cap)
			return -EPROTO;
		pos = end;
	}
	if (pos - head > g->cap)
		return -EPROTO;
	/* relaxed, here and below: the counters are this role's, and a dead
	 * holder's stores are ordered before us by the lock we took over */
	uint64_t msgs = atomic_load_explicit(&sh->msgs_sent, memory_order_relaxed);
	uint64_t bytes = atomic_load_explicit(&sh->bytes_sent, memory_order_relaxed);
	if (atomic_load_explicit(&sh->pend_tail, memory_order_relaxed) == pos) {
		/* the last group was published: its counts are the pending ones
		 * (the same values if they were stored already) */
		msgs = atomic_load_explicit(&sh->pend_msgs, memory_order_relaxed);
		bytes = atomic_load_explicit(&sh->pend_bytes, memory_order_relaxed);
		atomic_store_explicit(&sh->msgs_sent, msgs, memory_order_relaxed);
		atomic_store_explicit(&sh->bytes_sent, bytes, memory_order_relaxed);
	}
	/* no reservation open; the rest from the ring as it is */
	*p = (struct spsc_prod){ .sh = sh, .g = *g, .tail = pos, .cons_cache = head,
				 .sent_msgs = msgs, .sent_bytes = bytes, .rewind_at = pos,
				 .wf = wait_fence_adopt(&sh->cons_sleeping, light) };
	/* relaxed: a hint for stats; only this producer writes it */
	atomic_store_explicit(&sh->prod_tail, pos, memory_order_relaxed);
	return 0;
}

/* Where a record of `len` bytes goes in a group starting at offset `off`:
 * behind an end filler of *fill bytes when it does not fit before the end
 * of the area, and behind an alignment filler of *skip bytes. */
static inline void spsc_place(uint64_t off, uint64_t len, uint64_t cap, uint64_t *fill,
			      uint64_t *skip)
{
	*fill = 0;
	*skip = spsc_skip(off, len);
	if (off + *skip + spsc_rec_size(len) > cap) {   /* does not fit before the end */
		*fill = cap - off;
		*skip = spsc_skip(0, len);
	}
}

/* Read the consumer's index again into cons_cache; -EPROTO if impossible. */
static inline int spsc_refresh_head(struct spsc_prod *p)
{
	/* [P1] acquire: pairs with [C2]; the consumer finished reading
	 * these bytes before it released them, so we may overwrite. */
	uint64_t head = atomic_load_explicit(&p->sh->cons_head, memory_order_acquire);
	/* the consumer only moves forward, and never past our tail */
	if (unlikely(head - p->cons_cache > p->tail - p->cons_cache || (head & 7u)))
		return -EPROTO;
	p->cons_cache = head;
	return 0;
}

/*
 * Write the words of a group starting at `tail` (end filler, alignment
 * filler, then the message's header) except its first, and return that
 * first word: the caller release-stores it last ([P2]).
 */
static inline uint64_t spsc_group_words(const struct spsc_geom *g, uint64_t tail, uint64_t fill,
					uint64_t skip, uint32_t len)
{
	uint64_t w = spsc_hdr(len, SPSC_TAG_MSG);
	/* relaxed, here and below: ordered before the consumer can look by
	 * the release store of the group's first word ([P2]) */
	if (skip) {
		atomic_store_explicit(spsc_word(g, tail + fill + skip), w, memory_order_relaxed);
		w = spsc_hdr((uint32_t)skip, SPSC_TAG_PAD);
	}
	if (fill) {
		atomic_store_explicit(spsc_word(g, tail + fill), w, memory_order_relaxed);
		w = spsc_hdr((uint32_t)fill, SPSC_TAG_PAD);
	}
	return w;
}

/* The payload of the open reservation (after resv_fill/resv_skip are set). */
static inline void *spsc_resv_data(const struct spsc_prod *p)
{
	return p->g.data + ((p->tail + p->resv_fill + p->resv_skip) & p->g.mask) + SPSC_HDR;
}

/*
 * Whether a record of `len` bytes may start the next lap, behind an end
 * filler at tail: sets *fill and *skip and returns true if so, and in
 * rewind_at where to look next.  The consumer's index is read again at
 * most once every spsc_warm() / 2 bytes published, so a consumer that lags
 * costs no extra cache miss per message.
 */
static inline bool spsc_rewind(struct spsc_prod *p, uint64_t len, uint64_t *fill, uint64_t *skip)
{
	uint64_t off = p->tail & p->g.mask, warm = spsc_warm(len, p->g.cap), near = warm / 2;
	if (off < warm) {                 /* not that far into the area yet */
		p->rewind_at = p->tail + (warm - off);
		return false;
	}
	/* an impossible index is reported by the caller's own check */
	if (p->tail - p->cons_cache > near &&
	    (spsc_refresh_head(p) < 0 || p->tail - p->cons_cache > near)) {
		p->rewind_at = p->tail + near;    /* the consumer lags: later */
		return false;
	}
	/* the start of the area is free: at most `near` bytes are in flight,
	 * and they lie behind the tail (the caller's room check vouches) */
	*fill = p->g.cap - off;
	*skip = spsc_skip(0, len);
	p->rewind_at = p->tail + *fill + warm;
	return true;
}

/*
 * Claim room for a message of `len` bytes.  Returns 0 and the payload
 * pointer in *out, -EAGAIN when the ring is full, -EMSGSIZE, or -EPROTO when
 * the consumer's index is impossible.
 */
static inline int spsc_reserve(struct spsc_prod *p, size_t len, void **out)
{
	if (unlikely(len > p->g.max_msg))
		return -EMSGSIZE;
	uint64_t fill, skip, off = p->tail & p->g.mask;
	spsc_place(off, len, p->g.cap, &fill, &skip);
	/* one compare on the way: rewind_at is where spsc_rewind() may next
	 * find something to do (a signed distance: positions wrap) */
	if (unlikely((int64_t)(p->tail - p->rewind_at) >= 0) && !fill)
		(void)spsc_rewind(p, len, &fill, &skip);
	/* + the next header word, zeroed before this group is published */
	uint64_t need = fill + skip + spsc_rec_size(len) + SPSC_HDR;

	if (unlikely(p->tail + need - p->cons_cache > p->g.cap)) {
		if (unlikely(spsc_refresh_head(p) < 0))
			return -EPROTO;
		if (p->tail + need - p->cons_cache > p->g.cap)
			return -EAGAIN;
	}
	p->resv_fill = fill;
	p->resv_skip = skip;
	p->resv_len = (uint32_t)len;
	p->resv_open = true;
	*out = spsc_resv_data(p);
	return 0;
}

/*
 * Before a group is published ([P2]): count it, and store where it ends
 * and the counts it brings, in that order -- a producer killed before the
 * publish leaves pend_tail past the ring's end, one killed after it leaves
 * pend_tail at the end with the counts that go with it, whether or not
 * the caller stored msgs_sent and bytes_sent yet (spsc_prod_init).
 */
static inline void spsc_pend(struct spsc_prod *p, uint64_t end, uint64_t msgs, uint64_t bytes)
{
	p->sent_msgs += msgs;
	p->sent_bytes += bytes;
	/* read only by a takeover, after this producer is proven dead: no
	 * partner.  The counts are release stores only so that neither is
	 * moved before the position they belong to (a kill lands between any
	 * two instructions); [P2]'s release keeps all three before it. */
	atomic_store_explicit(&p->sh->pend_tail, end, memory_order_relaxed);
	atomic_store_explicit(&p->sh->pend_msgs, p->sent_msgs, memory_order_release);
	atomic_store_explicit(&p->sh->pend_bytes, p->sent_bytes, memory_order_release);
}

/*
 * Publish the open reservation with `len` (<= reserved) payload bytes: zero
 * the next header word, write the group's later words, then release-store
 * its first word.  Visible to the consumer on return.
 */
static inline void spsc_commit(struct spsc_prod *p, uint32_t len)
{
	uint64_t next = p->tail + p->resv_fill + p->resv_skip + spsc_rec_size(len);
	/* relaxed: ordered before the consumer can look here by [P2] below */
	atomic_store_explicit(spsc_word(&p->g, next), 0, memory_order_relaxed);
	uint64_t first = spsc_group_words(&p->g, p->tail, p->resv_fill, p->resv_skip, len);
	spsc_pend(p, next, 1, len);
	/* [P2] release: publishes the group, payload included; pairs with [C1] */
	atomic_store_explicit(spsc_word(&p->g, p->tail), first, memory_order_release);
	p->tail = next;
	p->resv_open = false;
}

/* Bytes a record may take at `tail` without a filler: to the end of the
 * area, and leaving the word after it free.  Wrap-safe (differences). */
static inline uint64_t spsc_room(uint64_t tail, uint64_t head, uint64_t cap)
{
	uint64_t used = tail - head, to_end = cap - (tail & (cap - 1));
	uint64_t avail = used + SPSC_HDR >= cap ? 0 : cap - SPSC_HDR - used;
	return avail < to_end ? avail : to_end;
}

/*
 * send() of a message shorter than SPSC_ALIGN_MIN that fits before the end
 * of the area and in the room already known: copy, zero the next header
 * word, release-store the header ([P2], pairs with [C1]).  Returns false,
 * having touched nothing, for anything else (the caller reserves).
 */
static inline bool spsc_send_short(struct spsc_prod *p, const void *msg, size_t len)
{
	uint64_t rec = spsc_rec_size(len), tail = p->tail;
	if (unlikely(len >= SPSC_ALIGN_MIN || len > p->g.max_msg ||
		     rec > spsc_room(tail, p->cons_cache, p->g.cap)))
		return false;
	ring_copy(p->g.data + (tail & p->g.mask) + SPSC_HDR, msg, len);
	/* relaxed: ordered before the consumer can look here by [P2] */
	atomic_store_explicit(spsc_word(&p->g, tail + rec), 0, memory_order_relaxed);
	spsc_pend(p, tail + rec, 1, len);
	/* [P2] release: publishes the record; pairs with [C1] */
	atomic_store_explicit(spsc_word(&p->g, tail), spsc_hdr((uint32_t)len, SPSC_TAG_MSG),
			      memory_order_release);
	p->tail = tail + rec;
	return true;
}

/*
 * Copy up to n messages into the ring as ONE group, published by a single
 * release store of its first word after every other word of every record
 * ([P2] as for one message): the consumer sees all of them or none, and a
 * batch costs one publish, not n.  Stops at the first message that does not
 * fit (the consumer's index is read again once), is too long, or has no
 * buffer; returns how many went (0: the first did not fit), or -EMSGSIZE /
 * -EINVAL / -EPROTO when nothing went.  *bytes gets their payload bytes.
 */
static inline int spsc_send_many(struct spsc_prod *p, const struct iovec *msgs, unsigned n,
				 uint64_t *bytes)
{
	const uint64_t start = p->tail, cap = p->g.cap, mask = p->g.mask;
	/* short messages never need an alignment filler */
	const size_t small = p->g.max_msg < SPSC_ALIGN_MIN ? p->g.max_msg + 1u : SPSC_ALIGN_MIN;
	uint8_t *const data = p->g.data;
	uint64_t tail = start, head = p->cons_cache, first = 0, sum = 0;
	/* bytes a record may take at tail with no filler, no index reload:
	 * up to the end of the area and within the free room we know of */
	uint64_t room = spsc_room(tail, head, cap);
	bool fresh = false;
	unsigned i;
	for (i = 0; i < n; i++) {
		size_t len = msgs[i].iov_len;
		uint64_t w;
		if (likely(len < small && spsc_rec_size(len) <= room &&
			   (msgs[i].iov_base || !len))) {
			/* the common case: one header word and the payload */
			ring_copy(data + (tail & mask) + SPSC_HDR, msgs[i].iov_base, len);
			w = spsc_hdr((uint32_t)len, SPSC_TAG_MSG);
			if (i == 0)
				first = w;
			else   /* relaxed: ordered by [P2] below, as every word here */
				atomic_store_explicit(spsc_word(&p->g, tail), w, memory_order_relaxed);
			tail += spsc_rec_size(len);
			room -= spsc_rec_size(len);
			sum += len;
			continue;
		}
		if (unlikely(len > p->g.max_msg || (!msgs[i].iov_base && len))) {
			if (i == 0)
				return len > p->g.max_msg ? -EMSGSIZE : -EINVAL;
			break;
		}
		uint64_t rec = spsc_rec_size(len), fill, skip;
		spsc_place(tail & mask, len, cap, &fill, &skip);
		if (unlikely(tail + fill + skip + rec + SPSC_HDR - head > cap)) {
			if (fresh)
				break;
			/* p->tail is still the group's start: as in spsc_reserve */
			if (unlikely(spsc_refresh_head(p) < 0)) {
				if (i == 0)
					return -EPROTO;
				break;   /* publish what fits; the next call reports it */
			}
			head = p->cons_cache;
			fresh = true;
			if (tail + fill + skip + rec + SPSC_HDR - head > cap)
				break;
		}
		uint64_t at = tail + fill + skip;
		ring_copy(data + (at & mask) + SPSC_HDR, msgs[i].iov_base, len);
		w = spsc_group_words(&p->g, tail, fill, skip, (uint32_t)len);
		if (i == 0)
			first = w;
		else
			atomic_store_explicit(spsc_word(&p->g, tail), w, memory_order_relaxed);
		tail = at + rec;
		sum += len;
		room = spsc_room(tail, head, cap);
	}
	if (i == 0)
		return 0;
	/* the word after the last record must read "nothing yet" */
	atomic_store_explicit(spsc_word(&p->g, tail), 0, memory_order_relaxed);
	spsc_pend(p, tail, i, sum);
	/* [P2] release: publishes the whole group; pairs with [C1] */
	atomic_store_explicit(spsc_word(&p->g, start), first, memory_order_release);
	p->tail = tail;
	*bytes = sum;
	return (int)i;
}

/*
 * After one or more commits: returns true when the consumer may be asleep
 * and must be woken (the caller does the FUTEX_WAKE: no syscall here).
 */
static inline bool spsc_published(struct spsc_prod *p)
{
	/* relaxed: a hint for stats and tools, single writer */
	atomic_store_explicit(&p->sh->prod_tail, p->tail, memory_order_relaxed);
	/* [P3] after the fence: the load half of the Dekker pair with [W1] */
	return wait_look(&p->wf, &p->sh->cons_sleeping);
}

/* ---- consumer ---------------------------------------------------------- */

/* Attach the consumer side at the last released message; anything a dead
 * predecessor had acquired but not released is delivered again. */
static inline int spsc_cons_init(struct spsc_cons *c, struct spsc_shared *sh,
				 const struct spsc_geom *g, bool light)
{
	/* relaxed: only the consumer role writes cons_head, and we hold it now */
	uint64_t head = atomic_load_explicit(&sh->cons_head, memory_order_relaxed);
	if (head & 7u)
		return -EPROTO;
	/* relaxed: as cons_head; the counts that go with the last release
	 * made (see spsc_pend) */
	uint64_t msgs = atomic_load_explicit(&sh->msgs_recv, memory_order_relaxed);
	uint64_t bytes = atomic_load_explicit(&sh->bytes_recv, memory_order_relaxed);
	if (atomic_load_explicit(&sh->pend_head, memory_order_relaxed) == head) {
		msgs = atomic_load_explicit(&sh->pend_recv, memory_order_relaxed);
		bytes = atomic_load_explicit(&sh->pend_rbytes, memory_order_relaxed);
		atomic_store_explicit(&sh->msgs_recv, msgs, memory_order_relaxed);
		atomic_store_explicit(&sh->bytes_recv, bytes, memory_order_relaxed);
	}
	/* nothing handed out: read == head */
	*c = (struct spsc_cons){ .sh = sh, .g = *g, .head = head, .read = head,
				 .recv_msgs = msgs, .recv_bytes = bytes,
				 .wf = wait_fence_adopt(&sh->prod_sleeping, light) };
	/* relaxed: cons_read is read only by a takeover, after this consumer
	 * is proven dead (the kernel's lock release orders it) */
	atomic_store_explicit(&sh->cons_read, head, memory_order_relaxed);
	return 0;
}

/* The next unread message, in place, without moving anything shared. */
static inline int spsc_peek(struct spsc_cons *c, void **data, uint32_t *len, uint64_t *end)
{
	return spsc_parse(&c->g, c->read, data, len, end);
}

/* The word the consumer waits on while the ring is empty. */
static inline _Atomic uint64_t *spsc_cons_watch(struct spsc_cons *c)
{
	return spsc_word(&c->g, c->read);
}

/*
 * Copy out published messages from `pos` (just past a message the caller
 * already copied) into bufs[0..n), stopping at the first that is not yet
 * published or does not fit its buffer.  Moves nothing shared: the caller
 * takes and releases up to *pos afterwards.  Returns how many were copied.
 */
static inline int spsc_recv_more(struct spsc_cons *c, uint64_t *pos, struct iovec *bufs,
				 unsigned n, uint64_t *bytes)
{
	/* a private copy: the copies below store through pointers the
	 * compiler cannot tell from the handle, and would make it reload
	 * the geometry from there for every message */
	const struct spsc_geom g = c->g;
	uint64_t at = *pos, sum = 0;
	unsigned i;
	for (i = 0; i < n; i++) {
		void *src;
		uint32_t len;
		uint64_t end;
		/* not yet published, or corrupt: stop here; a corrupt record
		 * is reported by the next call, which starts at it */
		if (spsc_parse(&g, at, &src, &len, &end) < 0)
			break;
		if (len > bufs[i].iov_len || (!bufs[i].iov_base && len))
			break;
		ring_copy_out(bufs[i].iov_base, src, len);
		bufs[i].iov_len = len;
		sum += len;
		at = end;
	}
	*pos = at;
	*bytes += sum;
	return (int)i;
}

/* Hand out the peeked message (zero-copy acquire): it is now in our hands. */
static inline void spsc_take(struct spsc_cons *c, uint64_t end)
{
	c->read = end;
	/* relaxed: see spsc_cons_init; read only after our proven death */
	atomic_store_explicit(&c->sh->cons_read, end, memory_order_relaxed);
}

/*
 * Give bytes up to `end`, holding `msgs` messages of `bytes` payload bytes,
 * back to the producer.  Returns true when the producer may be asleep on a
 * full ring and must be woken.  The counts that go with `end` are stored
 * first, as the producer's in spsc_pend(): a consumer killed between the
 * release and the caller's store of msgs_recv is counted by its successor.
 */
static inline bool spsc_release_to(struct spsc_cons *c, uint64_t end, uint64_t msgs,
				   uint64_t bytes)
{
	c->recv_msgs += msgs;
	c->recv_bytes += bytes;
	/* read by a takeover only; ordered as in spsc_pend(), and before
	 * [C2] by its release */
	atomic_store_explicit(&c->sh->pend_head, end, memory_order_relaxed);
	atomic_store_explicit(&c->sh->pend_recv, c->recv_msgs, memory_order_release);
	atomic_store_explicit(&c->sh->pend_rbytes, c->recv_bytes, memory_order_release);
	c->head = end;
	/* [C2] release: our reads of the released records are complete before
	 * the producer can see the space; pairs with [P1] */
	atomic_store_explicit(&c->sh->cons_head, end, memory_order_release);
	/* [C3] after the fence: the load half of the Dekker pair with [W1] */
	return wait_look(&c->wf, &c->sh->prod_sleeping);
}

/* Bytes queued, for stats; tolerant of a lagging or torn view. */
static inline uint64_t spsc_used(const struct spsc_shared *sh, uint64_t cap)
{
	/* relaxed: a monitoring snapshot, no data is read through it */
	uint64_t head = atomic_load_explicit(&sh->cons_head, memory_order_relaxed);
	uint64_t tail = atomic_load_explicit(&sh->prod_tail, memory_order_relaxed);
	uint64_t used = tail - head;
	return (int64_t)used < 0 ? 0 : used > cap ? cap : used;
}

/* Count the messages in [from, to) for redelivery accounting; -EPROTO if the
 * span does not parse.  Bounded by cap/8 steps whatever the memory says. */
static inline int64_t spsc_count_records(const struct spsc_geom *g, uint64_t from, uint64_t to)
{
	int64_t n = 0;
	if (to - from > g->cap || ((from | to) & 7u))
		return -EPROTO;
	while (from != to) {
		void *data;
		uint32_t len;
		uint64_t end;
		if (spsc_parse(g, from, &data, &len, &end) < 0 || end - from > to - from)
			return -EPROTO;
		from = end;
		n++;
	}
	return n;
}

/* Counter bump by the single writer of a counter: a plain load and store. */
static inline void spsc_count(_Atomic uint64_t *ctr, uint64_t add)
{
	/* relaxed: one writer per counter (its role); readers only display it */
	atomic_store_explicit(ctr, atomic_load_explicit(ctr, memory_order_relaxed) + add,
			      memory_order_relaxed);
}

#endif /* SHMRING_RING_SPSC_H */
