/* SPDX-License-Identifier: MIT */
/*
 * <shmring/inline.h> -- the SPSC hot path of shm: and file: rings as
 * inline functions, for programs that build against the installed headers.
 *
 *   #include <shmring/inline.h>
 *   struct shmring *r;
 *   int rc = shmring_inl_open("shm:feed", SHMRING_PRODUCER, NULL, &r);
 *   rc = shmring_inl_send(r, msg, len, SHMRING_FOREVER);
 *
 * shmring_inl_send/recv/reserve/commit/acquire/release/send_batch/recv_batch
 * take the handle of <shmring.h> and behave exactly as shmring_send() and
 * the others (same arguments, same results, same errors).  What they do
 * inline is only the common case of an SPSC ring in a segment: the room is
 * known, or a record is published; nobody sleeps; no reservation or
 * acquisition is in the way.  Everything else -- waits, timeouts,
 * wake-ups, doorbells, shutdown, errors, every other ring kind and
 * backend, a handle opened with plain shmring_open() -- is the library's
 * call, which works on the same state.
 *
 * The inline code reads the handle's private state and the segment, whose
 * layouts are an ABI: SHMRING_LAYOUT_VERSION.  shmring_inl_open() passes
 * the version this program was built with to the library, which refuses
 * another one with -EPROTO, so a program never runs inline code of another
 * layout.  A library of another layout version means rebuilding the
 * program.  shmring_inline(3), docs/design.md "Segment layout ABI".
 *
 * Every function marked SHMRING_INLINE also exists as an exported symbol
 * of the library (api/inline.c defines the marker empty and includes this
 * file), for FFI and for languages that cannot use a C header.
 *
 * This header compiles as C11 and C++17: shared memory is read and written
 * with the __atomic builtins on plain integers, which both languages
 * accept.  Names beginning with shmring__ / SHMRING__ are internal.
 */
#ifndef SHMRING_INLINE_H
#define SHMRING_INLINE_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#ifndef __cplusplus
#include <stdbool.h>
#endif

#include <shmring.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The layout of the handle's inline state and of the segment the inline
 * code reads: bumped on any change of either. */
#define SHMRING_LAYOUT_VERSION 1u

#ifndef SHMRING_INLINE
#define SHMRING_INLINE static inline
#endif

/* Open as shmring_open(), recording the layout version this program was
 * built with: -EPROTO if the library's differs; on an SPSC ring in a
 * segment the returned handle takes the inline fast path. */
SHMRING_API SHMRING_MUST_USE
int shmring_open_layout(const char *uri, int oflags, const struct shmring_opts *opts,
			struct shmring **out, unsigned layout);
#define shmring_inl_open(uri, oflags, opts, out) \
	shmring_open_layout(uri, oflags, opts, out, SHMRING_LAYOUT_VERSION)

/* The out-of-line half of a publish or release whose look found that the
 * peer sleeps or polls (or a fenced waker): the library's look and wake. */
SHMRING_API void shmring__spsc_wake(struct shmring *r, int role);

/* ---- the SPSC record format (docs/design.md, "Segment layout ABI") ---- */

#define SHMRING__TAG_MSG   0x4d534731u  /* "1GSM" */
#define SHMRING__TAG_PAD   0x50414431u  /* "1DAP" */
#define SHMRING__HDR       8u           /* header word before every payload */
#define SHMRING__ALIGN_MIN 256u         /* payloads this long start 64-byte aligned */
#define SHMRING__MAX_PADS  2            /* end filler + alignment filler */

/* Offsets in the ring's shared state (struct spsc_shared), which the
 * library asserts; 32-bit words are the sleep flags and shutdown. */
#define SHMRING__SH_PROD_TAIL      0u
#define SHMRING__SH_CONS_HEAD    128u
#define SHMRING__SH_CONS_READ    136u
#define SHMRING__SH_CONS_SLEEPING 256u
#define SHMRING__SH_PROD_SLEEPING 264u
#define SHMRING__SH_SHUTDOWN     272u
#define SHMRING__SH_MSGS_SENT    384u   /* then bytes_sent */
#define SHMRING__SH_PEND_TAIL    440u   /* then pend_msgs, pend_bytes */
#define SHMRING__SH_MSGS_RECV    512u   /* then bytes_recv */
#define SHMRING__SH_PEND_HEAD    568u   /* then pend_recv, pend_rbytes */
/* a sleep flag's bits of a sleeper or a poller (the library's wait.h) */
#define SHMRING__WAITERS 3u

#if defined(__GNUC__)
#define shmring__likely(x)   __builtin_expect(!!(x), 1)
#define shmring__unlikely(x) __builtin_expect(!!(x), 0)
#define SHMRING__ALWAYS_INLINE __attribute__((always_inline))
#else
#define shmring__likely(x)   (x)
#define shmring__unlikely(x) (x)
#define SHMRING__ALWAYS_INLINE
#endif

/* ---- the handle's inline state ----------------------------------------- */

/* Geometry: copied from the validated segment header at open, never read
 * from the segment again. */
struct shmring_inl_geom {
	uint8_t *data;          /* the data area in this process, 64-aligned */
	uint64_t cap;           /* power of two, >= 4096 */
	uint64_t mask;          /* cap - 1 */
	uint32_t max_msg;
	uint32_t reserved;
};

/* A waker's fence state: `on` while every publish must be fenced (after
 * a wake-up); otherwise a compiler barrier (`light`) or a full fence. */
struct shmring_inl_fence {
	bool light;
	bool on;
	uint32_t quiet;         /* fenced publishes in a row that found nobody */
};

/* The producer's private state: the library's own. */
struct shmring_inl_prod {
	struct shmring_inl_geom g;
	uint8_t *ksh;           /* the ring's shared state in the mapping */
	uint64_t tail;          /* where the next group starts */
	uint64_t cons_cache;    /* the consumer's released position, last seen */
	uint64_t resv_fill;     /* open reservation: end filler, alignment filler */
	uint64_t resv_skip;
	uint64_t rewind_at;     /* tail from which warm placement looks again */
	uint64_t sent_msgs;     /* messages and bytes published */
	uint64_t sent_bytes;
	uint32_t resv_len;
	bool resv_open;
	struct shmring_inl_fence wf;   /* ours, as the consumer's waker */
};

/* The consumer's private state: the library's own. */
struct shmring_inl_cons {
	struct shmring_inl_geom g;
	uint8_t *ksh;
	uint64_t head;          /* released: the producer may reuse what is before */
	uint64_t read;          /* handed out (>= head) */
	uint64_t recv_msgs;     /* messages and bytes released */
	uint64_t recv_bytes;
	struct shmring_inl_fence wf;   /* ours, as the producer's waker */
};

/* What every handle starts with. */
struct shmring_inl {
	uint32_t layout;        /* SHMRING_LAYOUT_VERSION of the library */
	uint32_t fast;          /* SHMRING_PRODUCER / SHMRING_CONSUMER: roles whose
				   fast path is inline; 0 for every other handle */
	struct shmring_inl_prod *prod;
	struct shmring_inl_cons *cons;
};

static inline struct shmring_inl_prod *shmring__inl_prod(struct shmring *r)
{
	const struct shmring_inl *in = (const struct shmring_inl *)(void *)r;
	return r && (in->fast & SHMRING_PRODUCER) ? in->prod : NULL;
}

static inline struct shmring_inl_cons *shmring__inl_cons(struct shmring *r)
{
	const struct shmring_inl *in = (const struct shmring_inl *)(void *)r;
	return r && (in->fast & SHMRING_CONSUMER) ? in->cons : NULL;
}

static inline uint64_t *shmring__sh64(uint8_t *ksh, unsigned off)
{
	return (uint64_t *)(void *)(ksh + off);
}

static inline uint32_t *shmring__sh32(uint8_t *ksh, unsigned off)
{
	return (uint32_t *)(void *)(ksh + off);
}

/* ---- copies ------------------------------------------------------------ */

/* The first k and the last k of n bytes (k <= n <= 2k), through registers:
 * with k a constant after inlining, a few plain loads and stores. */
static inline SHMRING__ALWAYS_INLINE void shmring__copy_ends(unsigned char *d,
							     const unsigned char *s,
							     size_t n, size_t k)
{
	unsigned char a[32], b[32];
	memcpy(a, s, k);
	memcpy(b, s + n - k, k);
	memcpy(d, a, k);
	memcpy(d + n - k, b, k);
}

/* Copy n bytes exactly, inline for n <= 64 (memcpy's call and size
 * dispatch cost as much as such a copy); nothing outside [0, n) is read
 * or written. */
static inline SHMRING__ALWAYS_INLINE void shmring__copy(void *dst, const void *src, size_t n)
{
	unsigned char *d = (unsigned char *)dst;
	const unsigned char *s = (const unsigned char *)src;
	if (n > 64)
		memcpy(d, s, n);
	else if (n >= 32)
		shmring__copy_ends(d, s, n, 32);
	else if (n >= 16)
		shmring__copy_ends(d, s, n, 16);
	else if (n >= 8)
		shmring__copy_ends(d, s, n, 8);
	else if (n >= 4)
		shmring__copy_ends(d, s, n, 4);
	else if (n) {
		shmring__copy_ends(d, s, n, 1);
		d[n / 2] = s[n / 2];
	}
}

/* Copy n bytes out of a ring, n just read from it: a multiple of 8 up to
 * 64 (most binary message structs) takes a copy of constant size, whose
 * loads are constant offsets from src.  Exact like shmring__copy. */
static inline SHMRING__ALWAYS_INLINE void shmring__copy_out(void *dst, const void *src, size_t n)
{
	switch (n) {
	case 8:  memcpy(dst, src, 8);  break;
	case 16: memcpy(dst, src, 16); break;
	case 24: memcpy(dst, src, 24); break;
	case 32: memcpy(dst, src, 32); break;
	case 40: memcpy(dst, src, 40); break;
	case 48: memcpy(dst, src, 48); break;
	case 56: memcpy(dst, src, 56); break;
	case 64: memcpy(dst, src, 64); break;
	default: shmring__copy(dst, src, n); break;
	}
}

/* ---- records ----------------------------------------------------------- */

static inline uint64_t shmring__rec_size(uint64_t len)
{
	return (SHMRING__HDR + len + 7u) & ~(uint64_t)7u;
}

static inline uint64_t shmring__hdr(uint32_t len, uint32_t tag)
{
	return (uint64_t)tag << 32 | len;
}

static inline uint64_t *shmring__word(const struct shmring_inl_geom *g, uint64_t pos)
{
	return (uint64_t *)(void *)(g->data + (pos & g->mask));
}

/* Alignment filler for a payload of `len` bytes whose group starts at `off`:
 * 0, or 8..56 so that the payload lands on a 64-byte boundary. */
static inline uint64_t shmring__skip(uint64_t off, uint64_t len)
{
	return len >= SHMRING__ALIGN_MIN ? (56u - off) & 63u : 0;
}

/* Bytes a record may take at `tail` without a filler: to the end of the
 * area, and leaving the word after it free.  Wrap-safe (differences). */
static inline uint64_t shmring__room(uint64_t tail, uint64_t head, uint64_t cap)
{
	uint64_t used = tail - head, to_end = cap - (tail & (cap - 1));
	uint64_t avail = used + SHMRING__HDR >= cap ? 0 : cap - SHMRING__HDR - used;
	return avail < to_end ? avail : to_end;
}

/*
 * Parse the group at `pos`: at most SHMRING__MAX_PADS fillers, then a
 * message.  The first word is loaded with acquire ([C1], pairs with [P2]);
 * the words after it were stored before it and are ordered by it.  Returns
 * 0 and the message, -EAGAIN if the first word is 0 (not yet published),
 * -EPROTO for anything a correct producer cannot have written: every
 * value is checked against the private geometry before it is used.
 */
static inline SHMRING__ALWAYS_INLINE int shmring__spsc_parse(const struct shmring_inl_geom *g, uint64_t pos,
				      void **data, uint32_t *len, uint64_t *end)
{
	for (int step = 0; step <= SHMRING__MAX_PADS; step++) {
		uint64_t off = pos & g->mask;
		/* [C1] acquire on the first word: pairs with [P2]; the rest of
		 * the group, payload included, was written before it.  The
		 * later words: relaxed, ordered by [C1]. */
		uint64_t h = step ? __atomic_load_n(shmring__word(g, pos), __ATOMIC_RELAXED)
				  : __atomic_load_n(shmring__word(g, pos), __ATOMIC_ACQUIRE);
		uint32_t n = (uint32_t)h, tag = (uint32_t)(h >> 32);
		if (h == 0) {
			if (step)
				return -EPROTO;    /* a filler always has a successor */
			/* nothing yet: ask for the line after the header's now, so
			 * that a payload crossing into it travels in parallel */
			__builtin_prefetch(g->data + ((pos + 64) & g->mask));
			return -EAGAIN;
		}
		if (tag == SHMRING__TAG_MSG) {
			uint64_t rec = shmring__rec_size(n);
			if (shmring__unlikely(n > g->max_msg || rec > g->cap - off ||
					      (n >= SHMRING__ALIGN_MIN &&
					       ((off + SHMRING__HDR) & 63u))))
				return -EPROTO;
			*data = g->data + off + SHMRING__HDR;
			*len = n;
			*end = pos + rec;
			return 0;
		}
		/* a filler runs to the end of the area (never from offset 0), or
		 * is a short one that aligns the payload after it */
		bool to_end = off != 0 && n == g->cap - off;
		bool align = n >= 8 && n <= 56 && !(n & 7u) &&
			     !((off + n + SHMRING__HDR) & 63u) && n < g->cap - off;
		if (shmring__unlikely(tag != SHMRING__TAG_PAD || !(to_end || align)))
			return -EPROTO;
		pos += n;
	}
	return -EPROTO;
}

/*
 * The waker's look after its publish or release ([P3]/[C3]), when its
 * fence is light or full but not "on" (then the library looks): the fence,
 * then the load half of the Dekker pair with the sleeper's [W1]/[B1].
 * True when the library must look and wake.
 */
static inline SHMRING__ALWAYS_INLINE bool shmring__look(const struct shmring_inl_fence *f, uint32_t *sleeping)
{
	if (shmring__unlikely(f->on))
		return true;
	if (f->light)
		/* the sleeper's membarrier orders the hardware; only the
		 * compiler must keep the store before the load */
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
	else {
#if defined(__SANITIZE_THREAD__)
		/* gcc refuses a thread fence under ThreadSanitizer: a seq_cst
		 * read-modify-write is a full barrier on the hardware */
		static unsigned tsan_word;
		(void)__atomic_fetch_add(&tsan_word, 0, __ATOMIC_SEQ_CST);
#else
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
	}
	/* relaxed, after the fence: the load half of the Dekker pair */
	return shmring__unlikely((__atomic_load_n(sleeping, __ATOMIC_RELAXED) &
				  SHMRING__WAITERS) != 0);
}

/* ---- producer ---------------------------------------------------------- */

static inline SHMRING__ALWAYS_INLINE bool shmring__spsc_shut(struct shmring_inl_prod *p)
{
	/* relaxed: only stops further sends; nothing is read through it */
	return __atomic_load_n(shmring__sh32(p->ksh, SHMRING__SH_SHUTDOWN), __ATOMIC_RELAXED) != 0;
}

/*
 * Before a group is published ([P2]): count it, and store where it ends
 * and the counts it brings, in that order -- a producer killed before the
 * publish leaves pend_tail past the ring's end, one killed after it leaves
 * pend_tail at the end with the counts that go with it, whether or not
 * msgs_sent and bytes_sent were stored yet (the library's takeover).
 */
static inline SHMRING__ALWAYS_INLINE void shmring__spsc_pend(struct shmring_inl_prod *p, uint64_t end, uint64_t msgs,
				      uint64_t bytes)
{
	uint64_t *pend = shmring__sh64(p->ksh, SHMRING__SH_PEND_TAIL);
	p->sent_msgs += msgs;
	p->sent_bytes += bytes;
	/* read only by a takeover, after this producer is proven dead: no
	 * partner.  The counts are release stores only so that neither is
	 * moved before the position they belong to (a kill lands between any
	 * two instructions); [P2]'s release keeps all three before it. */
	__atomic_store_n(&pend[0], end, __ATOMIC_RELAXED);
	__atomic_store_n(&pend[1], p->sent_msgs, __ATOMIC_RELEASE);
	__atomic_store_n(&pend[2], p->sent_bytes, __ATOMIC_RELEASE);
}

/*
 * A message shorter than SHMRING__ALIGN_MIN that fits before the end of the
 * area and in the room already known: copy, zero the next header word,
 * release-store the header ([P2], pairs with [C1]).  Returns false, having
 * touched nothing, for anything else.
 */
static inline SHMRING__ALWAYS_INLINE bool shmring__spsc_send_short(struct shmring_inl_prod *p, const void *msg,
					    size_t len)
{
	uint64_t rec = shmring__rec_size(len), tail = p->tail;
	if (shmring__unlikely(len >= SHMRING__ALIGN_MIN || len > p->g.max_msg ||
			      rec > shmring__room(tail, p->cons_cache, p->g.cap)))
		return false;
	shmring__copy(p->g.data + (tail & p->g.mask) + SHMRING__HDR, msg, len);
	/* relaxed: ordered before the consumer can look here by [P2] */
	__atomic_store_n(shmring__word(&p->g, tail + rec), 0, __ATOMIC_RELAXED);
	shmring__spsc_pend(p, tail + rec, 1, len);
	/* [P2] release: publishes the record; pairs with [C1] */
	__atomic_store_n(shmring__word(&p->g, tail), shmring__hdr((uint32_t)len, SHMRING__TAG_MSG),
			 __ATOMIC_RELEASE);
	p->tail = tail + rec;
	return true;
}

/* send()'s fast path: no reservation open, no shutdown, a short message in
 * the room known.  False, having touched nothing, otherwise. */
static inline SHMRING__ALWAYS_INLINE bool shmring__spsc_send_fast(struct shmring_inl_prod *p, const void *msg,
					   size_t len)
{
	return !p->resv_open && !shmring__spsc_shut(p) && shmring__spsc_send_short(p, msg, len);
}

/*
 * send_batch()'s fast path: every one of the n messages short, with a
 * buffer, and all of them fitting before the end of the area in the room
 * already known.  Then they are written as one group and published at
 * once, as the library's batch: the headers after the first, the zero word
 * after the last record, the counts (shmring__spsc_pend), then the first
 * header with release ([P2], pairs with [C1]).  Returns n, with *bytes
 * their payload, or 0 having published nothing (the library's call then
 * sends the batch, so that it still goes as one group).
 */
static inline SHMRING__ALWAYS_INLINE unsigned shmring__spsc_send_many(struct shmring_inl_prod *p,
								      const struct iovec *msgs,
								      unsigned n, uint64_t *bytes)
{
	/* a private copy: the copies store through pointers the compiler
	 * cannot tell from the handle */
	const struct shmring_inl_geom g = p->g;
	const uint64_t start = p->tail;
	uint64_t tail = start, room = shmring__room(start, p->cons_cache, g.cap), sum = 0, first = 0;
	for (unsigned i = 0; i < n; i++) {
		size_t len = msgs[i].iov_len;
		uint64_t rec = shmring__rec_size(len);
		/* what was written so far is free room nobody reads: the
		 * library's call writes over it */
		if (shmring__unlikely(len >= SHMRING__ALIGN_MIN || len > g.max_msg || rec > room ||
				      (msgs[i].iov_base == NULL && len)))
			return 0;
		shmring__copy(g.data + (tail & g.mask) + SHMRING__HDR, msgs[i].iov_base, len);
		uint64_t w = shmring__hdr((uint32_t)len, SHMRING__TAG_MSG);
		if (i == 0)
			first = w;
		else    /* relaxed: ordered before the consumer can look by [P2] */
			__atomic_store_n(shmring__word(&g, tail), w, __ATOMIC_RELAXED);
		tail += rec;
		room -= rec;
		sum += len;
	}
	/* relaxed, as above: the word after the last record reads "nothing yet" */
	__atomic_store_n(shmring__word(&g, tail), 0, __ATOMIC_RELAXED);
	shmring__spsc_pend(p, tail, n, sum);
	/* [P2] release: publishes the whole group; pairs with [C1] */
	__atomic_store_n(shmring__word(&g, start), first, __ATOMIC_RELEASE);
	p->tail = tail;
	*bytes = sum;
	return n;
}

/*
 * Write the words of a group starting at `tail` (end filler, alignment
 * filler, then the message's header) except its first, and return that
 * first word: the caller release-stores it last ([P2]).
 */
static inline SHMRING__ALWAYS_INLINE uint64_t shmring__spsc_group_words(const struct shmring_inl_geom *g, uint64_t tail,
						 uint64_t fill, uint64_t skip, uint32_t len)
{
	uint64_t w = shmring__hdr(len, SHMRING__TAG_MSG);
	/* relaxed, here and below: ordered before the consumer can look by
	 * the release store of the group's first word ([P2]) */
	if (skip) {
		__atomic_store_n(shmring__word(g, tail + fill + skip), w, __ATOMIC_RELAXED);
		w = shmring__hdr((uint32_t)skip, SHMRING__TAG_PAD);
	}
	if (fill) {
		__atomic_store_n(shmring__word(g, tail + fill), w, __ATOMIC_RELAXED);
		w = shmring__hdr((uint32_t)fill, SHMRING__TAG_PAD);
	}
	return w;
}

/* The payload of the open reservation (after resv_fill/resv_skip are set). */
static inline void *shmring__spsc_resv_data(const struct shmring_inl_prod *p)
{
	return p->g.data + ((p->tail + p->resv_fill + p->resv_skip) & p->g.mask) + SHMRING__HDR;
}

/*
 * reserve()'s fast path: no reservation open, no shutdown, a record that
 * needs no end filler and fits the room already known, and no warm
 * placement due (rewind_at: a signed distance, positions wrap).  Opens
 * the reservation; false, having touched nothing, otherwise.
 */
static inline SHMRING__ALWAYS_INLINE bool shmring__spsc_reserve_fast(struct shmring_inl_prod *p, size_t len,
					      struct shmring_msg *m)
{
	uint64_t off = p->tail & p->g.mask, skip = shmring__skip(off, len);
	if (shmring__unlikely(p->resv_open || len > p->g.max_msg ||
			      (int64_t)(p->tail - p->rewind_at) >= 0 ||
			      skip + shmring__rec_size(len) >
				      shmring__room(p->tail, p->cons_cache, p->g.cap) ||
			      shmring__spsc_shut(p)))
		return false;
	p->resv_fill = 0;
	p->resv_skip = skip;
	p->resv_len = (uint32_t)len;
	p->resv_open = true;
	m->data = shmring__spsc_resv_data(p);
	m->len = len;
	m->priv[0] = p->tail;        /* where the group starts: ties commit to it */
	m->priv[1] = len;            /* the most commit may publish */
	return true;
}

/* Is m this producer's open reservation?  (The payload pointer too: another
 * ring's reservation may carry the same position and length.) */
static inline SHMRING__ALWAYS_INLINE bool shmring__spsc_commit_ok(const struct shmring_inl_prod *p,
					   const struct shmring_msg *m)
{
	return p->resv_open && m->priv[0] == p->tail && m->len <= m->priv[1] &&
	       m->priv[1] == p->resv_len && m->data == shmring__spsc_resv_data(p);
}

/*
 * Publish the open reservation with `len` (<= reserved) payload bytes: zero
 * the next header word, write the group's later words, then release-store
 * its first word.  Visible to the consumer on return.
 */
static inline SHMRING__ALWAYS_INLINE void shmring__spsc_commit(struct shmring_inl_prod *p, uint32_t len)
{
	uint64_t next = p->tail + p->resv_fill + p->resv_skip + shmring__rec_size(len);
	/* relaxed: ordered before the consumer can look here by [P2] below */
	__atomic_store_n(shmring__word(&p->g, next), 0, __ATOMIC_RELAXED);
	uint64_t first = shmring__spsc_group_words(&p->g, p->tail, p->resv_fill, p->resv_skip, len);
	shmring__spsc_pend(p, next, 1, len);
	/* [P2] release: publishes the group, payload included; pairs with [C1] */
	__atomic_store_n(shmring__word(&p->g, p->tail), first, __ATOMIC_RELEASE);
	p->tail = next;
	p->resv_open = false;
}

/*
 * After one or more publishes: the counters (counted before the publish by
 * shmring__spsc_pend, so that a takeover can finish this), the tail hint,
 * and the look.  True when the library must look and wake (the consumer
 * sleeps or polls, or our fence is on).
 */
static inline SHMRING__ALWAYS_INLINE bool shmring__spsc_published(struct shmring_inl_prod *p)
{
	uint64_t *sent = shmring__sh64(p->ksh, SHMRING__SH_MSGS_SENT);
	/* relaxed, all three: one writer (this role); stats and tools only */
	__atomic_store_n(&sent[0], p->sent_msgs, __ATOMIC_RELAXED);
	__atomic_store_n(&sent[1], p->sent_bytes, __ATOMIC_RELAXED);
	__atomic_store_n(shmring__sh64(p->ksh, SHMRING__SH_PROD_TAIL), p->tail, __ATOMIC_RELAXED);
	/* [P3] after the fence: the load half of the Dekker pair with [W1] */
	return shmring__look(&p->wf, shmring__sh32(p->ksh, SHMRING__SH_CONS_SLEEPING));
}

/* ---- consumer ---------------------------------------------------------- */

/* Hand out the parsed message ending at `end`: it is now in our hands. */
static inline SHMRING__ALWAYS_INLINE void shmring__spsc_take(struct shmring_inl_cons *c, uint64_t end)
{
	c->read = end;
	/* relaxed: read only by a takeover, after our proven death (the
	 * kernel's lock release orders it) */
	__atomic_store_n(shmring__sh64(c->ksh, SHMRING__SH_CONS_READ), end, __ATOMIC_RELAXED);
}

/*
 * Give bytes up to `end`, holding `msgs` messages of `bytes` payload bytes,
 * back to the producer.  The counts that go with `end` are stored first, as
 * the producer's in shmring__spsc_pend().  True when the library must look
 * and wake (the producer sleeps or polls on a full ring, or our fence is on).
 */
static inline SHMRING__ALWAYS_INLINE bool shmring__spsc_released(struct shmring_inl_cons *c, uint64_t end,
					  uint64_t msgs, uint64_t bytes)
{
	uint64_t *pend = shmring__sh64(c->ksh, SHMRING__SH_PEND_HEAD);
	uint64_t *recv = shmring__sh64(c->ksh, SHMRING__SH_MSGS_RECV);
	c->recv_msgs += msgs;
	c->recv_bytes += bytes;
	/* read by a takeover only; ordered as in shmring__spsc_pend(), and
	 * before [C2] by its release */
	__atomic_store_n(&pend[0], end, __ATOMIC_RELAXED);
	__atomic_store_n(&pend[1], c->recv_msgs, __ATOMIC_RELEASE);
	__atomic_store_n(&pend[2], c->recv_bytes, __ATOMIC_RELEASE);
	c->head = end;
	/* [C2] release: our reads of the released records are complete before
	 * the producer can see the space; pairs with [P1] */
	__atomic_store_n(shmring__sh64(c->ksh, SHMRING__SH_CONS_HEAD), end, __ATOMIC_RELEASE);
	/* relaxed: one writer (this role); counted in pend_* already */
	__atomic_store_n(&recv[0], c->recv_msgs, __ATOMIC_RELAXED);
	__atomic_store_n(&recv[1], c->recv_bytes, __ATOMIC_RELAXED);
	/* [C3] after the fence: the load half of the Dekker pair with [W1] */
	return shmring__look(&c->wf, shmring__sh32(c->ksh, SHMRING__SH_PROD_SLEEPING));
}

/*
 * recv()'s fast path: nothing acquired, a published message that fits
 * `cap`: copy it out and release it.  Returns its length (and in *wake
 * what shmring__spsc_released said), or -EAGAIN having touched nothing.
 */
static inline SHMRING__ALWAYS_INLINE ssize_t shmring__spsc_recv_fast(struct shmring_inl_cons *c, void *buf, size_t cap,
					      bool *wake)
{
	void *data;
	uint32_t len;
	uint64_t end;
	if (shmring__unlikely(c->read != c->head) ||
	    shmring__unlikely(shmring__spsc_parse(&c->g, c->read, &data, &len, &end) < 0) ||
	    shmring__unlikely(len > cap))
		return -EAGAIN;
	shmring__spsc_take(c, end);      /* a crash from here on counts as a redelivery */
	/* len <= cap, said again where the compiler's object-size checks of
	 * an inlined caller's buffer can see it */
	shmring__copy(buf, data, len <= cap ? len : cap);
	*wake = shmring__spsc_released(c, end, 1, len);
	return len;
}

/*
 * Copy out the published messages from `at` that fit their buffers, in
 * order, stopping at the first that is not there, is damaged or does not
 * fit (for the first of a call, the library's call reports why).  Returns
 * how many, with *end after the last and *bytes their payload; nothing is
 * taken or released here.  recv_batch()'s fast path, and the library's.
 */
static inline SHMRING__ALWAYS_INLINE unsigned shmring__spsc_recv_many(const struct shmring_inl_geom *cg,
								      uint64_t at, struct iovec *bufs,
								      unsigned n, uint64_t *end,
								      uint64_t *bytes)
{
	const struct shmring_inl_geom g = *cg;    /* as in shmring__spsc_send_many */
	uint64_t sum = 0;
	unsigned i;
	for (i = 0; i < n; i++) {
		void *src;
		uint32_t len;
		uint64_t next;
		if (shmring__spsc_parse(&g, at, &src, &len, &next) < 0 || len > bufs[i].iov_len ||
		    (bufs[i].iov_base == NULL && len))
			break;
		shmring__copy_out(bufs[i].iov_base, src, len);
		bufs[i].iov_len = len;
		sum += len;
		at = next;
	}
	*end = at;
	*bytes = sum;
	return i;
}

/*
 * acquire()'s fast path: the next message, with no end filler in front of
 * it (the library hands such a filler back at once).  False, having
 * touched nothing, otherwise.
 */
static inline SHMRING__ALWAYS_INLINE bool shmring__spsc_acquire_fast(struct shmring_inl_cons *c, struct shmring_msg *m)
{
	void *data;
	uint32_t len;
	uint64_t end, start = c->read;
	if (shmring__unlikely(shmring__spsc_parse(&c->g, start, &data, &len, &end) < 0) ||
	    shmring__unlikely(end - shmring__rec_size(len) - start >= 64 && start == c->head))
		return false;
	shmring__spsc_take(c, end);
	m->data = data;
	m->len = len;
	m->priv[0] = start;          /* release must come in acquisition order */
	m->priv[1] = end;
	return true;
}

/*
 * Is m the oldest acquired message?  0, -EINVAL, or -EPROTO when the record
 * acquire parsed no longer parses (someone wrote over a published header:
 * the ring is damaged, not the argument).  priv[1] must be the end of that
 * record, not any position: a forged end would leave cons_head inside one.
 */
static inline SHMRING__ALWAYS_INLINE int shmring__spsc_release_check(const struct shmring_inl_cons *c,
					      const struct shmring_msg *m)
{
	void *data;
	uint32_t len;
	uint64_t end;
	if (shmring__unlikely(m->priv[0] != c->head || m->priv[1] <= m->priv[0] ||
			      m->priv[1] > c->read || m->len > m->priv[1] - m->priv[0]))
		return -EINVAL;
	if (shmring__unlikely(shmring__spsc_parse(&c->g, c->head, &data, &len, &end) < 0))
		return -EPROTO;
	if (shmring__unlikely(end != m->priv[1] || m->len != len || m->data != data))
		return -EINVAL;
	return 0;
}

/* ---- the inline API ---------------------------------------------------- */

/* shmring_send(3) */
SHMRING_INLINE SHMRING_MUST_USE int shmring_inl_send(struct shmring *r, const void *msg,
						     size_t len, int64_t timeout_ns)
{
	struct shmring_inl_prod *p = shmring__inl_prod(r);
	if (shmring__likely(p != NULL) && shmring__likely(msg != NULL || !len) &&
	    shmring__likely(shmring__spsc_send_fast(p, msg, len))) {
		if (shmring__spsc_published(p))
			shmring__spsc_wake(r, SHMRING_PRODUCER);
		return 0;
	}
	return shmring_send(r, msg, len, timeout_ns);
}

/* shmring_recv(3) */
SHMRING_INLINE SHMRING_MUST_USE ssize_t shmring_inl_recv(struct shmring *r, void *buf,
							 size_t cap, int64_t timeout_ns)
{
	struct shmring_inl_cons *c = shmring__inl_cons(r);
	bool wake = false;
	ssize_t n;
	if (shmring__likely(c != NULL) && shmring__likely(buf != NULL || !cap) &&
	    shmring__likely((n = shmring__spsc_recv_fast(c, buf, cap, &wake)) >= 0)) {
		if (wake)
			shmring__spsc_wake(r, SHMRING_CONSUMER);
		return n;
	}
	return shmring_recv(r, buf, cap, timeout_ns);
}

/* shmring_send_batch(3): inline when every message is short and all fit
 * the room known; otherwise the whole batch is the library's call. */
SHMRING_INLINE SHMRING_MUST_USE int shmring_inl_send_batch(struct shmring *r,
							   const struct iovec *msgs, unsigned n,
							   int64_t timeout_ns)
{
	struct shmring_inl_prod *p = shmring__inl_prod(r);
	uint64_t bytes = 0;
	if (shmring__likely(p != NULL) && shmring__likely(msgs != NULL && n > 0 && n <= INT32_MAX) &&
	    shmring__likely(!p->resv_open && !shmring__spsc_shut(p)) &&
	    shmring__likely(shmring__spsc_send_many(p, msgs, n, &bytes) == n)) {
		if (shmring__spsc_published(p))
			shmring__spsc_wake(r, SHMRING_PRODUCER);
		return (int)n;
	}
	return shmring_send_batch(r, msgs, n, timeout_ns);
}

/* shmring_recv_batch(3) */
SHMRING_INLINE SHMRING_MUST_USE int shmring_inl_recv_batch(struct shmring *r, struct iovec *bufs,
							   unsigned n, int64_t timeout_ns)
{
	struct shmring_inl_cons *c = shmring__inl_cons(r);
	uint64_t end = 0, bytes = 0;
	unsigned k;
	if (shmring__likely(c != NULL) && shmring__likely(bufs != NULL && n > 0 && n <= INT32_MAX) &&
	    shmring__likely(c->read == c->head) &&
	    shmring__likely((k = shmring__spsc_recv_many(&c->g, c->read, bufs, n, &end, &bytes)) > 0)) {
		/* taken and released together, after the copies: a consumer
		 * killed before has handed out nothing */
		shmring__spsc_take(c, end);
		if (shmring__spsc_released(c, end, k, bytes))
			shmring__spsc_wake(r, SHMRING_CONSUMER);
		return (int)k;
	}
	return shmring_recv_batch(r, bufs, n, timeout_ns);
}

/* shmring_reserve(3) */
SHMRING_INLINE SHMRING_MUST_USE int shmring_inl_reserve(struct shmring *r, size_t len,
							struct shmring_msg *m, int64_t timeout_ns)
{
	struct shmring_inl_prod *p = shmring__inl_prod(r);
	if (shmring__likely(p != NULL) && shmring__likely(m != NULL) &&
	    shmring__likely(shmring__spsc_reserve_fast(p, len, m)))
		return 0;
	return shmring_reserve(r, len, m, timeout_ns);
}

/* shmring_commit(3) */
SHMRING_INLINE SHMRING_MUST_USE int shmring_inl_commit(struct shmring *r, struct shmring_msg *m)
{
	struct shmring_inl_prod *p = shmring__inl_prod(r);
	if (shmring__likely(p != NULL) && shmring__likely(m != NULL) &&
	    shmring__likely(shmring__spsc_commit_ok(p, m)) &&
	    shmring__likely(!shmring__spsc_shut(p))) {
		shmring__spsc_commit(p, (uint32_t)m->len);
		if (shmring__spsc_published(p))
			shmring__spsc_wake(r, SHMRING_PRODUCER);
		m->data = NULL;
		return 0;
	}
	return shmring_commit(r, m);
}

/* shmring_acquire(3) */
SHMRING_INLINE SHMRING_MUST_USE int shmring_inl_acquire(struct shmring *r, struct shmring_msg *m,
							int64_t timeout_ns)
{
	struct shmring_inl_cons *c = shmring__inl_cons(r);
	if (shmring__likely(c != NULL) && shmring__likely(m != NULL) &&
	    shmring__likely(shmring__spsc_acquire_fast(c, m)))
		return 0;
	return shmring_acquire(r, m, timeout_ns);
}

/* shmring_release(3) */
SHMRING_INLINE SHMRING_MUST_USE int shmring_inl_release(struct shmring *r, struct shmring_msg *m)
{
	struct shmring_inl_cons *c = shmring__inl_cons(r);
	if (shmring__likely(c != NULL) && shmring__likely(m != NULL) &&
	    shmring__likely(shmring__spsc_release_check(c, m) == 0)) {
		if (shmring__spsc_released(c, m->priv[1], 1, m->len))
			shmring__spsc_wake(r, SHMRING_CONSUMER);
		m->data = NULL;
		return 0;
	}
	return shmring_release(r, m);
}

#ifdef __cplusplus
}
#endif
#endif /* SHMRING_INLINE_H */
