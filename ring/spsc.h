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

#include "shmring/inline.h"
#include "../sync/wait.h"
#include "copy.h"

#ifndef likely
#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#endif

/* Two lines: the adjacent-line prefetcher of x86 pulls pairs of 64 B lines. */
#define SPSC_LINE 128

/* The record format is part of the installed inline header's ABI. */
#define SPSC_TAG_MSG SHMRING__TAG_MSG
#define SPSC_TAG_PAD SHMRING__TAG_PAD
#define SPSC_HDR     SHMRING__HDR
#define SPSC_ALIGN_MIN SHMRING__ALIGN_MIN
#define SPSC_MAX_PADS SHMRING__MAX_PADS

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
/* the offsets the installed inline code uses (include/shmring/inline.h) */
_Static_assert(offsetof(struct spsc_shared, prod_tail) == SHMRING__SH_PROD_TAIL, "ABI");
_Static_assert(offsetof(struct spsc_shared, cons_head) == SHMRING__SH_CONS_HEAD, "ABI");
_Static_assert(offsetof(struct spsc_shared, cons_read) == SHMRING__SH_CONS_READ, "ABI");
_Static_assert(offsetof(struct spsc_shared, cons_sleeping) == SHMRING__SH_CONS_SLEEPING, "ABI");
_Static_assert(offsetof(struct spsc_shared, prod_sleeping) == SHMRING__SH_PROD_SLEEPING, "ABI");
_Static_assert(offsetof(struct spsc_shared, shutdown) == SHMRING__SH_SHUTDOWN, "ABI");
_Static_assert(offsetof(struct spsc_shared, msgs_sent) == SHMRING__SH_MSGS_SENT &&
	       offsetof(struct spsc_shared, bytes_sent) == SHMRING__SH_MSGS_SENT + 8, "ABI");
_Static_assert(offsetof(struct spsc_shared, pend_tail) == SHMRING__SH_PEND_TAIL &&
	       offsetof(struct spsc_shared, pend_msgs) == SHMRING__SH_PEND_TAIL + 8 &&
	       offsetof(struct spsc_shared, pend_bytes) == SHMRING__SH_PEND_TAIL + 16, "ABI");
_Static_assert(offsetof(struct spsc_shared, msgs_recv) == SHMRING__SH_MSGS_RECV &&
	       offsetof(struct spsc_shared, bytes_recv) == SHMRING__SH_MSGS_RECV + 8, "ABI");
_Static_assert(offsetof(struct spsc_shared, pend_head) == SHMRING__SH_PEND_HEAD &&
	       offsetof(struct spsc_shared, pend_recv) == SHMRING__SH_PEND_HEAD + 8 &&
	       offsetof(struct spsc_shared, pend_rbytes) == SHMRING__SH_PEND_HEAD + 16, "ABI");
_Static_assert((WAIT_SLEEPING | WAIT_POLLING) == SHMRING__WAITERS, "ABI");

/* Geometry: copied from the validated header, never re-read from the segment. */
struct spsc_geom {
	uint8_t *data;          /* start of the data area in this process, 64-aligned */
	uint64_t cap;           /* power of two, >= 4096 */
	uint64_t mask;
	uint32_t max_msg;
};

/* A side's state: the private state the installed inline code shares
 * (struct shmring_inl_prod/cons, `f`: tail, positions, counts, fence),
 * the shared state, and the geometry as the ring code here takes it (the
 * same values as f.g; neither changes after init). */
struct spsc_prod {
	struct shmring_inl_prod f;
	struct spsc_shared *sh;
	struct spsc_geom g;
};

struct spsc_cons {
	struct shmring_inl_cons f;
	struct spsc_shared *sh;
	struct spsc_geom g;
};

static inline struct shmring_inl_geom spsc_pub_geom(const struct spsc_geom *g)
{
	return (struct shmring_inl_geom){ .data = g->data, .cap = g->cap, .mask = g->mask,
					  .max_msg = g->max_msg };
}

static inline uint64_t spsc_rec_size(uint64_t len)
{
	return shmring__rec_size(len);
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
	return shmring__hdr(len, tag);
}

/* Alignment filler for a payload of `len` bytes whose group starts at `off`:
 * 0, or 8..56 so that the payload lands on a 64-byte boundary. */
static inline uint64_t spsc_skip(uint64_t off, uint64_t len)
{
	return shmring__skip(off, len);
}

/*
 * Parse the group at `pos` (shmring__spsc_parse: [C1] acquire on its first
 * word, pairs with [P2]).  Returns 0 and the message, -EAGAIN if nothing is
 * published there yet, -EPROTO for anything a correct producer cannot have
 * written.
 */
static inline int spsc_parse(const struct spsc_geom *g, uint64_t pos, void **data,
			     uint32_t *len, uint64_t *end)
{
	const struct shmring_inl_geom pg = spsc_pub_geom(g);
	return shmring__spsc_parse(&pg, pos, data, len, end);
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
	*p = (struct spsc_prod){ .sh = sh, .g = *g,
				 .f = { .g = spsc_pub_geom(g), .ksh = (uint8_t *)(void *)sh,
					.tail = pos, .cons_cache = head, .sent_msgs = msgs,
					.sent_bytes = bytes, .rewind_at = pos,
					.wf = wait_fence_adopt(&sh->cons_sleeping, light) } };
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
	if (unlikely(head - p->f.cons_cache > p->f.tail - p->f.cons_cache || (head & 7u)))
		return -EPROTO;
	p->f.cons_cache = head;
	return 0;
}

/* The group's words but its first (returned: the caller release-stores it
 * last, [P2]) and the open reservation's payload: shmring__spsc_group_words
 * and shmring__spsc_resv_data of the installed header. */
static inline void *spsc_resv_data(const struct spsc_prod *p)
{
	return shmring__spsc_resv_data(&p->f);
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
	uint64_t off = p->f.tail & p->g.mask, warm = spsc_warm(len, p->g.cap), near = warm / 2;
	if (off < warm) {                 /* not that far into the area yet */
		p->f.rewind_at = p->f.tail + (warm - off);
		return false;
	}
	/* an impossible index is reported by the caller's own check */
	if (p->f.tail - p->f.cons_cache > near &&
	    (spsc_refresh_head(p) < 0 || p->f.tail - p->f.cons_cache > near)) {
		p->f.rewind_at = p->f.tail + near;    /* the consumer lags: later */
		return false;
	}
	/* the start of the area is free: at most `near` bytes are in flight,
	 * and they lie behind the tail (the caller's room check vouches) */
	*fill = p->g.cap - off;
	*skip = spsc_skip(0, len);
	p->f.rewind_at = p->f.tail + *fill + warm;
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
	uint64_t fill, skip, off = p->f.tail & p->g.mask;
	spsc_place(off, len, p->g.cap, &fill, &skip);
	/* one compare on the way: rewind_at is where spsc_rewind() may next
	 * find something to do (a signed distance: positions wrap) */
	if (unlikely((int64_t)(p->f.tail - p->f.rewind_at) >= 0) && !fill)
		(void)spsc_rewind(p, len, &fill, &skip);
	/* + the next header word, zeroed before this group is published */
	uint64_t need = fill + skip + spsc_rec_size(len) + SPSC_HDR;

	if (unlikely(p->f.tail + need - p->f.cons_cache > p->g.cap)) {
		if (unlikely(spsc_refresh_head(p) < 0))
			return -EPROTO;
		if (p->f.tail + need - p->f.cons_cache > p->g.cap)
			return -EAGAIN;
	}
	p->f.resv_fill = fill;
	p->f.resv_skip = skip;
	p->f.resv_len = (uint32_t)len;
	p->f.resv_open = true;
	*out = spsc_resv_data(p);
	return 0;
}

/* Before a group is published ([P2]): count it, and store where it ends
 * and the counts it brings (shmring__spsc_pend). */
static inline void spsc_pend(struct spsc_prod *p, uint64_t end, uint64_t msgs, uint64_t bytes)
{
	shmring__spsc_pend(&p->f, end, msgs, bytes);
}

/* Publish the open reservation with `len` (<= reserved) payload bytes
 * (shmring__spsc_commit: [P2] release, pairs with [C1]). */
static inline void spsc_commit(struct spsc_prod *p, uint32_t len)
{
	shmring__spsc_commit(&p->f, len);
}

static inline uint64_t spsc_room(uint64_t tail, uint64_t head, uint64_t cap)
{
	return shmring__room(tail, head, cap);
}

/* send() of a short message in the room already known
 * (shmring__spsc_send_short: [P2], pairs with [C1]); false, having touched
 * nothing, for anything else (the caller reserves). */
static inline bool spsc_send_short(struct spsc_prod *p, const void *msg, size_t len)
{
	return shmring__spsc_send_short(&p->f, msg, len);
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
	const uint64_t start = p->f.tail, cap = p->g.cap, mask = p->g.mask;
	/* short messages never need an alignment filler */
	const size_t small = p->g.max_msg < SPSC_ALIGN_MIN ? p->g.max_msg + 1u : SPSC_ALIGN_MIN;
	uint8_t *const data = p->g.data;
	uint64_t tail = start, head = p->f.cons_cache, first = 0, sum = 0;
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
			/* p->f.tail is still the group's start: as in spsc_reserve */
			if (unlikely(spsc_refresh_head(p) < 0)) {
				if (i == 0)
					return -EPROTO;
				break;   /* publish what fits; the next call reports it */
			}
			head = p->f.cons_cache;
			fresh = true;
			if (tail + fill + skip + rec + SPSC_HDR - head > cap)
				break;
		}
		uint64_t at = tail + fill + skip;
		ring_copy(data + (at & mask) + SPSC_HDR, msgs[i].iov_base, len);
		w = shmring__spsc_group_words(&p->f.g, tail, fill, skip, (uint32_t)len);
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
	p->f.tail = tail;
	*bytes = sum;
	return (int)i;
}

/*
 * After one or more commits: the counters, the tail hint and the look
 * (shmring__spsc_published; [P3] after the fence, the load half of the
 * Dekker pair with [W1]).  Returns true when the consumer may be asleep and
 * must be woken (the caller does the FUTEX_WAKE: no syscall here).
 */
static inline bool spsc_published(struct spsc_prod *p)
{
	return shmring__spsc_published(&p->f) && wait_look(&p->f.wf, &p->sh->cons_sleeping);
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
	*c = (struct spsc_cons){ .sh = sh, .g = *g,
				 .f = { .g = spsc_pub_geom(g), .ksh = (uint8_t *)(void *)sh,
					.head = head, .read = head, .recv_msgs = msgs,
					.recv_bytes = bytes,
					.wf = wait_fence_adopt(&sh->prod_sleeping, light) } };
	/* relaxed: cons_read is read only by a takeover, after this consumer
	 * is proven dead (the kernel's lock release orders it) */
	atomic_store_explicit(&sh->cons_read, head, memory_order_relaxed);
	return 0;
}

/* The next unread message, in place, without moving anything shared. */
static inline int spsc_peek(struct spsc_cons *c, void **data, uint32_t *len, uint64_t *end)
{
	return shmring__spsc_parse(&c->f.g, c->f.read, data, len, end);
}

/* The word the consumer waits on while the ring is empty. */
static inline _Atomic uint64_t *spsc_cons_watch(struct spsc_cons *c)
{
	return spsc_word(&c->g, c->f.read);
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
	uint64_t sum = 0;
	unsigned k = shmring__spsc_recv_many(&c->f.g, *pos, bufs, n, pos, &sum);
	*bytes += sum;
	return (int)k;
}

/* Hand out the peeked message (zero-copy acquire): it is now in our hands. */
static inline void spsc_take(struct spsc_cons *c, uint64_t end)
{
	shmring__spsc_take(&c->f, end);
}

/*
 * Give bytes up to `end`, holding `msgs` messages of `bytes` payload bytes,
 * back to the producer (shmring__spsc_released: the counts first, [C2]
 * release, then [C3] after the fence, the load half of the Dekker pair
 * with [W1]).  Returns true when the producer may be asleep on a full ring
 * and must be woken.
 */
static inline bool spsc_release_to(struct spsc_cons *c, uint64_t end, uint64_t msgs,
				   uint64_t bytes)
{
	return shmring__spsc_released(&c->f, end, msgs, bytes) &&
	       wait_look(&c->f.wf, &c->sh->prod_sleeping);
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
