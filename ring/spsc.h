/* SPDX-License-Identifier: MIT */
/*
 * Single-producer single-consumer ring of variable-length messages on a raw
 * memory region.  No system calls, no allocation, no pointers in shared
 * memory: positions are 64-bit byte counters that only grow; the offset in
 * the data area is `pos & mask`.
 *
 * Record format (8-byte aligned, never split across the end of the area):
 *
 *   +-----------+-----------+---------------------------+
 *   | len (u32) | tag (u32) | payload, len bytes, pad 8 |
 *   +-----------+-----------+---------------------------+
 *
 * tag is SPSC_TAG_MSG for a message and SPSC_TAG_PAD for the filler that
 * skips to the start of the area when a record does not fit before the end
 * (then len is the filler's whole size).  Because a record never wraps, the
 * consumer reads a frame in place with one pointer (zero-copy).
 *
 * Memory orders, each tagged and paired (see docs/design.md):
 *   [P1] producer acquire-loads cons_head   <- pairs with [C2]
 *   [P2] producer seq_cst-publishes prod_tail -> pairs with [C1]
 *   [P3] producer seq_cst-loads cons_sleeping: Dekker with [W1] (sync/wait)
 *   [C1] consumer acquire-loads prod_tail   <- pairs with [P2]
 *   [C2] consumer seq_cst-publishes cons_head -> pairs with [P1]
 *   [C3] consumer seq_cst-loads prod_sleeping: Dekker with [W1]
 *
 * The functions here never block: they return -EAGAIN and the caller (api/)
 * decides to spin or sleep.  Everything read from shared memory is checked
 * against the geometry copied into the private side structs; a violation is
 * -EPROTO and nothing is read out of bounds.
 */
#ifndef SHMRING_RING_SPSC_H
#define SHMRING_RING_SPSC_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifndef likely
#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#endif

/* Two lines: the adjacent-line prefetcher of x86 pulls pairs of 64 B lines. */
#define SPSC_LINE 128

#define SPSC_TAG_MSG 0x4d534731u /* "1GSM" */
#define SPSC_TAG_PAD 0x50414431u /* "1DAP" */
#define SPSC_HDR     8u

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free to be address-free");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock-free to be address-free");

/* The ring's shared state; lives in the segment at a 4096-aligned offset. */
struct spsc_shared {
	/* written by the producer on every commit */
	_Atomic uint64_t prod_tail;        /* bytes published */
	uint8_t pad0[SPSC_LINE - 8];

	/* written by the consumer on every acquire and release */
	_Atomic uint64_t cons_head;        /* bytes released: the producer may reuse them */
	_Atomic uint64_t cons_read;        /* bytes handed out (>= cons_head): in the consumer's hands */
	uint8_t pad1[SPSC_LINE - 16];

	/* written only when a side goes to sleep or the stream ends: read-mostly */
	_Atomic uint32_t cons_sleeping;    /* consumer is about to sleep on cons_wake */
	_Atomic uint32_t cons_wake;        /* futex word the consumer sleeps on */
	_Atomic uint32_t prod_sleeping;    /* producer is about to sleep on prod_wake */
	_Atomic uint32_t prod_wake;        /* futex word the producer sleeps on */
	_Atomic uint32_t shutdown;         /* 1 after shmring_shutdown */
	uint8_t pad2[SPSC_LINE - 20];

	/* counters written only by the producer role (relaxed, single writer) */
	_Atomic uint64_t msgs_sent, bytes_sent, waits_full, prod_wakes, prod_sleeps;
	uint8_t pad3[SPSC_LINE - 40];

	/* counters written only by the consumer role (relaxed, single writer) */
	_Atomic uint64_t msgs_recv, bytes_recv, waits_empty, cons_wakes, cons_sleeps;
	uint8_t pad4[SPSC_LINE - 40];
};
_Static_assert(offsetof(struct spsc_shared, cons_head) == SPSC_LINE, "consumer line");
_Static_assert(offsetof(struct spsc_shared, cons_sleeping) == 2 * SPSC_LINE, "wait line");
_Static_assert(offsetof(struct spsc_shared, msgs_sent) == 3 * SPSC_LINE, "producer stats line");
_Static_assert(offsetof(struct spsc_shared, msgs_recv) == 4 * SPSC_LINE, "consumer stats line");
_Static_assert(sizeof(struct spsc_shared) == 5 * SPSC_LINE, "spsc_shared size");

/* Geometry: copied from the validated header, never re-read from the segment. */
struct spsc_geom {
	uint8_t *data;          /* start of the data area in this process */
	uint64_t cap;           /* power of two, multiple of 8 */
	uint64_t mask;
	uint32_t max_msg;
};

struct spsc_prod {
	struct spsc_shared *sh;
	struct spsc_geom g;
	uint64_t tail;          /* private copy of prod_tail */
	uint64_t cons_cache;    /* last cons_head seen */
	uint64_t resv_end;      /* with resv_open: tail + filler, where the record starts */
	uint32_t resv_len;
	bool resv_open;
};

struct spsc_cons {
	struct spsc_shared *sh;
	struct spsc_geom g;
	uint64_t head;          /* private copy of cons_head (released) */
	uint64_t read;          /* handed out, not yet released */
	uint64_t prod_cache;    /* last prod_tail seen */
};

static inline uint64_t spsc_rec_size(uint64_t len)
{
	return (SPSC_HDR + len + 7u) & ~(uint64_t)7u;
}

/* Largest max_msg a ring of `cap` bytes accepts: a record plus the filler in
 * front of it (< one record) must fit in an empty ring. */
static inline uint64_t spsc_max_msg_for(uint64_t cap)
{
	return cap / 2 - SPSC_HDR;
}

static inline void spsc_hdr_write(uint8_t *at, uint32_t len, uint32_t tag)
{
	uint32_t h[2] = { len, tag };
	memcpy(at, h, sizeof(h));
}

/* ---- producer ---------------------------------------------------------- */

/* Attach the producer side: continue at the published tail (a dead
 * predecessor's unpublished reservation is simply overwritten). */
static inline int spsc_prod_init(struct spsc_prod *p, struct spsc_shared *sh,
				 const struct spsc_geom *g)
{
	/* [P1'] acquire: the consumer's releases before our attach are visible */
	uint64_t head = atomic_load_explicit(&sh->cons_head, memory_order_acquire);
	/* relaxed: only the producer role writes prod_tail, and we hold it now */
	uint64_t tail = atomic_load_explicit(&sh->prod_tail, memory_order_relaxed);
	if ((tail | head) & 7u || tail - head > g->cap)
		return -EPROTO;
	memset(p, 0, sizeof(*p));
	p->sh = sh;
	p->g = *g;
	p->tail = tail;
	p->cons_cache = head;
	return 0;
}

/*
 * Claim room for a record of `len` bytes.  Returns 0 and the payload pointer
 * in *out, -EAGAIN when the ring is full, -EMSGSIZE, or -EPROTO when the
 * consumer's index is impossible.
 */
static inline int spsc_reserve(struct spsc_prod *p, size_t len, void **out)
{
	if (unlikely(len > p->g.max_msg))
		return -EMSGSIZE;
	uint64_t rec = spsc_rec_size(len);
	uint64_t off = p->tail & p->g.mask;
	uint64_t room = p->g.cap - off;
	uint64_t fill = rec <= room ? 0 : room;
	uint64_t need = fill + rec;

	if (unlikely(p->tail + need - p->cons_cache > p->g.cap)) {
		/* [P1] acquire: pairs with [C2]; the consumer finished reading
		 * these bytes before it released them, so we may overwrite. */
		uint64_t head = atomic_load_explicit(&p->sh->cons_head, memory_order_acquire);
		if (unlikely(p->tail - head > p->g.cap || (head & 7u)))
			return -EPROTO;
		p->cons_cache = head;
		if (p->tail + need - head > p->g.cap)
			return -EAGAIN;
	}
	if (fill)
		spsc_hdr_write(p->g.data + off, (uint32_t)fill, SPSC_TAG_PAD);
	p->resv_end = p->tail + fill;
	p->resv_len = (uint32_t)len;
	p->resv_open = true;
	*out = p->g.data + (p->resv_end & p->g.mask) + SPSC_HDR;
	return 0;
}

/* Finish the open reservation with `len` (<= reserved) bytes, unpublished. */
static inline void spsc_stage(struct spsc_prod *p, uint32_t len)
{
	spsc_hdr_write(p->g.data + (p->resv_end & p->g.mask), len, SPSC_TAG_MSG);
	p->tail = p->resv_end + spsc_rec_size(len);
	p->resv_open = false;
}

/*
 * Publish every staged record.  Returns true when the consumer may be asleep
 * and must be woken (the caller does the FUTEX_WAKE: no syscall here).
 */
static inline bool spsc_publish(struct spsc_prod *p)
{
	/* [P2] seq_cst: publishes the records (release part, pairs with [C1])
	 * and is the store half of the Dekker pair with [W1]: either the
	 * consumer sees this tail before it sleeps, or we see it sleeping. */
	atomic_exchange_explicit(&p->sh->prod_tail, p->tail, memory_order_seq_cst);
	/* [P3] seq_cst: load half of the Dekker pair, after [P2] in S */
	return atomic_load_explicit(&p->sh->cons_sleeping, memory_order_seq_cst) != 0;
}

/* ---- consumer ---------------------------------------------------------- */

/* Attach the consumer side at the last released message; anything a dead
 * predecessor had acquired but not released is delivered again. */
static inline int spsc_cons_init(struct spsc_cons *c, struct spsc_shared *sh,
				 const struct spsc_geom *g)
{
	/* relaxed: only the consumer role writes cons_head, and we hold it now */
	uint64_t head = atomic_load_explicit(&sh->cons_head, memory_order_relaxed);
	/* [C1'] acquire: pairs with [P2]; records up to tail are complete */
	uint64_t tail = atomic_load_explicit(&sh->prod_tail, memory_order_acquire);
	if ((tail | head) & 7u || tail - head > g->cap)
		return -EPROTO;
	memset(c, 0, sizeof(*c));
	c->sh = sh;
	c->g = *g;
	c->head = head;
	c->read = head;
	c->prod_cache = tail;
	/* relaxed: cons_read is read only by a takeover, after this consumer
	 * is proven dead (the kernel's lock release orders it) */
	atomic_store_explicit(&sh->cons_read, head, memory_order_relaxed);
	return 0;
}

/*
 * Look at the next unread message without moving anything shared.  On
 * success `data` and `len` describe the payload in place and `end` is the position
 * just past its record (fillers in front of it included).
 */
static inline int spsc_peek(struct spsc_cons *c, void **data, uint32_t *len, uint64_t *end)
{
	uint64_t pos = c->read;
	uint64_t avail = c->prod_cache - pos;

	if (avail == 0) {
		/* [C1] acquire: pairs with [P2]; payload bytes written before
		 * the producer published the tail are visible to us now */
		uint64_t tail = atomic_load_explicit(&c->sh->prod_tail, memory_order_acquire);
		if (unlikely(tail - c->head > c->g.cap || (tail & 7u)))
			return -EPROTO;
		c->prod_cache = tail;
		avail = tail - pos;
		if (avail == 0)
			return -EAGAIN;
		if (unlikely(avail > c->g.cap))
			return -EPROTO;
	}
	for (int step = 0; step < 2; step++) {  /* at most one filler, then a message */
		uint64_t off = pos & c->g.mask;
		uint32_t h[2];
		memcpy(h, c->g.data + off, sizeof(h));   /* copy once, then validate the copy */
		if (h[1] == SPSC_TAG_MSG) {
			uint64_t rec = spsc_rec_size(h[0]);
			if (unlikely(h[0] > c->g.max_msg || rec > avail || rec > c->g.cap - off))
				return -EPROTO;
			*data = c->g.data + off + SPSC_HDR;
			*len = h[0];
			*end = pos + rec;
			return 0;
		}
		/* a filler runs exactly to the end of the area, never from offset 0 */
		if (unlikely(h[1] != SPSC_TAG_PAD || off == 0 || h[0] != c->g.cap - off ||
			     h[0] >= avail))
			return -EPROTO;
		pos += h[0];
		avail -= h[0];
	}
	return -EPROTO;
}

/* Hand out the peeked message (zero-copy acquire): it is now in our hands. */
static inline void spsc_take(struct spsc_cons *c, uint64_t end)
{
	c->read = end;
	/* relaxed: see spsc_cons_init; read only after our proven death */
	atomic_store_explicit(&c->sh->cons_read, end, memory_order_relaxed);
}

/*
 * Give bytes up to `end` back to the producer.  Returns true when the
 * producer may be asleep on a full ring and must be woken.
 */
static inline bool spsc_release_to(struct spsc_cons *c, uint64_t end)
{
	c->head = end;
	/* [C2] seq_cst: our reads of the released records are complete before
	 * the producer can see the space (release part, pairs with [P1]); also
	 * the store half of the Dekker pair with the producer's [W1]. */
	atomic_exchange_explicit(&c->sh->cons_head, end, memory_order_seq_cst);
	/* [C3] seq_cst: load half of the Dekker pair */
	return atomic_load_explicit(&c->sh->prod_sleeping, memory_order_seq_cst) != 0;
}

/* Bytes queued, for stats; tolerant of a torn view (it is only displayed). */
static inline uint64_t spsc_used(const struct spsc_shared *sh, uint64_t cap)
{
	/* relaxed: a monitoring snapshot, no data is read through it */
	uint64_t head = atomic_load_explicit(&sh->cons_head, memory_order_relaxed);
	uint64_t tail = atomic_load_explicit(&sh->prod_tail, memory_order_relaxed);
	uint64_t used = tail - head;
	return used > cap ? cap : used;
}

/* Count the records in [from, to) for redelivery accounting; -EPROTO if the
 * span does not parse.  Bounded by cap/8 steps whatever the memory says. */
static inline int64_t spsc_count_records(const struct spsc_geom *g, uint64_t from, uint64_t to)
{
	int64_t n = 0;
	if (to - from > g->cap || ((from | to) & 7u))
		return -EPROTO;
	while (from != to) {
		uint64_t off = from & g->mask;
		uint32_t h[2];
		memcpy(h, g->data + off, sizeof(h));
		uint64_t step;
		if (h[1] == SPSC_TAG_MSG) {
			step = spsc_rec_size(h[0]);
			n++;
		} else if (h[1] == SPSC_TAG_PAD && off != 0 && h[0] == g->cap - off) {
			step = h[0];
		} else {
			return -EPROTO;
		}
		if (step == 0 || step > to - from)
			return -EPROTO;
		from += step;
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
