/* SPDX-License-Identifier: MIT */
/*
 * Single-producer single-consumer ring of fixed-size messages
 * (SHMRING_FIXED): every message is exactly max_msg bytes, so a message
 * needs no header.  The data area is a power of two of slots of `stride`
 * bytes (max_msg rounded up to 8); a slot's index is a 64-bit counter that
 * only grows, its offset `(idx & mask) * stride`.  As in DPDK's and
 * Concurrency Kit's rings, the producer publishes how many messages it
 * wrote (prod_tail), the consumer how many it gave back (cons_head), each
 * on its own 128-byte line, and each side keeps a private copy of the
 * other's counter and reads the shared one again only when the ring looks
 * full (producer) or empty (consumer).
 *
 * The counters are also the statistics: msgs_sent is prod_tail, msgs_recv
 * is cons_head, so they are exact through any crash with no further store.
 *
 * Memory orders, each tagged and paired (docs/design.md lists them all):
 *   [X1] producer acquire-loads cons_head          <- pairs with [X4]
 *   [X2] producer release-stores prod_tail         -> pairs with [X3]
 *   [X3] consumer acquire-loads prod_tail          <- pairs with [X2]
 *   [X4] consumer release-stores cons_head         -> pairs with [X1]
 *   the waker's look after [X2] / [X4]: wait_look(), Dekker with [W1]
 *
 * Nothing here blocks: -EAGAIN goes back to the caller.  Every counter read
 * from shared memory is checked against the private copies (a counter that
 * went backwards or more than a ring ahead is -EPROTO); no offset is ever
 * computed from a shared value without the mask.
 */
#ifndef SHMRING_RING_FIXED_H
#define SHMRING_RING_FIXED_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../sync/wait.h"
#include "copy.h"

#ifndef likely
#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#endif

#define FX_LINE 128
/* Slots: a power of two, at least FX_MIN_SLOTS. */
#define FX_MIN_SLOTS 2ull

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free to be address-free");

/* The ring's shared state, at the segment's ring offset (the same place
 * and size as an SPSC ring's state; the wait line and the counters are at
 * the same offsets too). */
struct fixed_shared {
	/* written by the producer once per publish */
	_Atomic uint64_t prod_tail;        /* messages published (= msgs_sent) */
	uint8_t pad0[FX_LINE - 8];

	/* written by the consumer on every acquire and release */
	_Atomic uint64_t cons_head;        /* messages released (= msgs_recv): slots before
					      it are the producer's again */
	_Atomic uint64_t cons_read;        /* messages handed out by acquire (>= cons_head) */
	uint8_t pad1[FX_LINE - 16];

	/* written only when a side goes to sleep or the stream ends */
	_Atomic uint32_t cons_sleeping;    /* WAIT_SLEEPING / WAIT_POLLING / WAIT_FENCED */
	_Atomic uint32_t cons_wake;        /* futex word the consumer sleeps on */
	_Atomic uint32_t prod_sleeping;
	_Atomic uint32_t prod_wake;
	_Atomic uint32_t shutdown;         /* 1 after shmring_shutdown */
	uint8_t pad2[FX_LINE - 20];

	/* counters written only by the producer role (relaxed, single writer) */
	_Atomic uint64_t waits_full, prod_wakes, prod_sleeps, prod_bells, prod_spurious;
	uint8_t pad3[FX_LINE - 40];

	/* counters written only by the consumer role */
	_Atomic uint64_t waits_empty, cons_wakes, cons_sleeps, cons_bells, cons_spurious;
	uint8_t pad4[FX_LINE - 40];
};
_Static_assert(offsetof(struct fixed_shared, cons_head) == FX_LINE, "consumer line");
_Static_assert(offsetof(struct fixed_shared, cons_sleeping) == 2 * FX_LINE, "wait line");
_Static_assert(offsetof(struct fixed_shared, waits_full) == 3 * FX_LINE, "producer stats line");
_Static_assert(offsetof(struct fixed_shared, waits_empty) == 4 * FX_LINE, "consumer stats line");
_Static_assert(sizeof(struct fixed_shared) == 5 * FX_LINE, "fixed_shared size");

/* Geometry: derived from the validated header, never re-read. */
struct fixed_geom {
	uint8_t *data;          /* slot 0 in this process */
	uint64_t slots;         /* power of two */
	uint64_t mask;
	uint32_t stride;        /* size rounded up to 8 */
	uint32_t size;          /* every message's length (max_msg) */
};

static inline uint32_t fx_stride_for(uint32_t size)
{
	return (uint32_t)(((uint64_t)size + 7u) & ~(uint64_t)7u);
}

static inline struct fixed_geom fx_geom_make(uint8_t *data, uint64_t capacity, uint32_t size)
{
	uint32_t stride = fx_stride_for(size);
	uint64_t slots = capacity / stride;
	return (struct fixed_geom){ .data = data, .slots = slots, .mask = slots - 1,
				    .stride = stride, .size = size };
}

static inline uint8_t *fx_slot(const struct fixed_geom *g, uint64_t idx)
{
	return g->data + (idx & g->mask) * g->stride;
}

struct fixed_prod {
	struct fixed_shared *sh;
	struct fixed_geom g;
	uint64_t tail;          /* next slot to write (private copy of prod_tail) */
	uint64_t cons_cache;    /* last cons_head seen */
	bool resv_open;
	struct shmring_inl_fence wf;   /* our fence as the consumer's waker */
};

struct fixed_cons {
	struct fixed_shared *sh;
	struct fixed_geom g;
	uint64_t head;          /* released (private copy of cons_head) */
	uint64_t read;          /* handed out, >= head */
	uint64_t prod_cache;    /* last prod_tail seen */
	struct shmring_inl_fence wf;   /* our fence as the producer's waker */
};

/* ---- producer ---------------------------------------------------------- */

/* Attach: continue at the published end (the counter is the publish, so
 * a dead producer left nothing half done that a reader could see). */
static inline int fx_prod_init(struct fixed_prod *p, struct fixed_shared *sh,
			       const struct fixed_geom *g, bool light)
{
	/* [X1'] acquire: pairs with [X4]; the consumer is done with the
	 * slots before its head */
	uint64_t head = atomic_load_explicit(&sh->cons_head, memory_order_acquire);
	/* relaxed: only the producer role writes it, and we hold it now */
	uint64_t tail = atomic_load_explicit(&sh->prod_tail, memory_order_relaxed);
	if (tail - head > g->slots)
		return -EPROTO;
	*p = (struct fixed_prod){ .sh = sh, .g = *g, .tail = tail, .cons_cache = head,
				  .wf = wait_fence_adopt(&sh->cons_sleeping, light) };
	return 0;
}

/* Free slots, reading cons_head again if fewer than `want` are known
 * free; -EPROTO if the consumer's counter is impossible. */
static inline int64_t fx_free(struct fixed_prod *p, uint64_t want)
{
	uint64_t free = p->g.slots - (p->tail - p->cons_cache);
	if (likely(free >= want))
		return (int64_t)free;
	/* [X1] acquire: pairs with [X4]; the consumer finished reading these
	 * slots before it released them, so we may overwrite them */
	uint64_t head = atomic_load_explicit(&p->sh->cons_head, memory_order_acquire);
	/* it only moves forward and never past our tail */
	if (unlikely(p->tail - head > p->g.slots || head - p->cons_cache > p->tail - p->cons_cache))
		return -EPROTO;
	p->cons_cache = head;
	return (int64_t)(p->g.slots - (p->tail - head));
}

/* Publish every slot before p->tail.  True when the consumer may sleep or
 * poll and must be woken (the caller does it). */
static inline bool fx_publish(struct fixed_prod *p)
{
	/* [X2] release: the slots' bytes are written before the consumer can
	 * see the counter; pairs with [X3] */
	atomic_store_explicit(&p->sh->prod_tail, p->tail, memory_order_release);
	/* after the fence: the load half of the Dekker pair with [W1] */
	return wait_look(&p->wf, &p->sh->cons_sleeping);
}

/* ---- consumer ---------------------------------------------------------- */

/* Attach at the last released message: what a dead predecessor had
 * acquired and not released is delivered again (*redelivered: how many). */
static inline int fx_cons_init(struct fixed_cons *c, struct fixed_shared *sh,
			       const struct fixed_geom *g, bool light, uint64_t *redelivered)
{
	/* relaxed: only the consumer role writes these, and we hold it now */
	uint64_t head = atomic_load_explicit(&sh->cons_head, memory_order_relaxed);
	uint64_t read = atomic_load_explicit(&sh->cons_read, memory_order_relaxed);
	/* [X3'] acquire: pairs with [X2] */
	uint64_t tail = atomic_load_explicit(&sh->prod_tail, memory_order_acquire);
	if (tail - head > g->slots || read - head > tail - head)
		return -EPROTO;
	*redelivered = read - head;
	*c = (struct fixed_cons){ .sh = sh, .g = *g, .head = head, .read = head,
				  .prod_cache = tail,
				  .wf = wait_fence_adopt(&sh->prod_sleeping, light) };
	/* relaxed: read only by a takeover, after this consumer is proven
	 * dead (the kernel's lock release orders it) */
	atomic_store_explicit(&sh->cons_read, head, memory_order_relaxed);
	return 0;
}

/* Published messages not yet handed out, reading prod_tail again if none
 * is known; -EPROTO if the producer's counter is impossible. */
static inline int64_t fx_avail(struct fixed_cons *c)
{
	uint64_t n = c->prod_cache - c->read;
	if (likely(n))
		return (int64_t)n;
	/* [X3] acquire: pairs with [X2]; the slots before it are written */
	uint64_t tail = atomic_load_explicit(&c->sh->prod_tail, memory_order_acquire);
	/* never more than a ring ahead of what we released, never behind
	 * what we have seen */
	if (unlikely(tail - c->head > c->g.slots || tail - c->head < c->read - c->head))
		return -EPROTO;
	c->prod_cache = tail;
	return (int64_t)(tail - c->read);
}

/* Hand out `n` messages in place (acquire): a crash from here on counts
 * them as redelivered. */
static inline void fx_take(struct fixed_cons *c, uint64_t n)
{
	c->read += n;
	/* relaxed: see fx_cons_init */
	atomic_store_explicit(&c->sh->cons_read, c->read, memory_order_relaxed);
}

/* Give every slot before `to` back.  True when the producer may sleep or
 * poll and must be woken. */
static inline bool fx_release_to(struct fixed_cons *c, uint64_t to)
{
	c->head = to;
	/* [X4] release: our reads of the released slots are complete before
	 * the producer can reuse them; pairs with [X1] */
	atomic_store_explicit(&c->sh->cons_head, to, memory_order_release);
	/* after the fence: the load half of the Dekker pair with [W1] */
	return wait_look(&c->wf, &c->sh->prod_sleeping);
}

#endif /* SHMRING_RING_FIXED_H */
