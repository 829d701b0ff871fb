/* SPDX-License-Identifier: MIT */
/*
 * shmring-bench peer: Concurrency Kit ck_ring (libck-dev), compiled in
 * only when <ck_ring.h> is found.
 *
 * struct ck_ring and its buffer both live in one POSIX shm segment (the
 * ring holds indices only; the buffer is passed to every call, so each
 * process maps the segment wherever it likes).  ck_ring copies typed
 * entries (CK_RING_PROTOTYPE): the entry is the message, one type per size
 * run (8, 64, 256 B and 1 KiB).  As many entries as fit in 1 MiB, at least
 * 1024.  ck_ring has no batch calls: one message per call.
 */
#include "bench.h"

#include <errno.h>
#include <stdlib.h>
#include <ck_ring.h>

struct m8 { unsigned char b[8]; };
struct m64 { unsigned char b[64]; };
struct m256 { unsigned char b[256]; };
struct m1k { unsigned char b[1024]; };
CK_RING_PROTOTYPE(m8, m8)
CK_RING_PROTOTYPE(m64, m64)
CK_RING_PROTOTYPE(m256, m256)
CK_RING_PROTOTYPE(m1k, m1k)

#define RING_OFF 4096           /* entries start on their own page */

struct ck_priv {
	struct ck_ring *ring;
	void *buffer;
};
END_PRIV(P, struct ck_priv)

static const char *ck_skip(size_t size)
{
	return size == 8 || size == 64 || size == 256 || size == KIB ? NULL :
	       "entry types are compiled for 8, 64, 256 B and 1 KiB";
}

static unsigned ring_count(size_t size)
{
	unsigned n = 1024;

	while ((size_t)n * 2 * size <= MIB)
		n *= 2;
	return n;
}

static int ck_create(struct chan *ch, const struct geom *g)
{
	unsigned n = ring_count(g->size);

	shmseg_create(ch, RING_OFF + (size_t)n * g->size);
	ck_ring_init(ch->mem, n);
	return 0;
}

static void ck_destroy(struct chan *ch, struct shmring_stats *st)
{
	(void)st;
	shmseg_destroy(ch);
}

static void ck_attach(struct end *e, struct chan *ch)
{
	P(e)->ring = shmseg_attach(ch);
	P(e)->buffer = (unsigned char *)P(e)->ring + RING_OFF;
	e->buf = alloc_buf(e->size);
}

static void ck_detach(struct end *e)
{
	shmseg_detach(P(e)->ring, e->ch);
	free(e->buf);
}

/* the size is one of four, always the same in a run: a predictable branch */
#define CK_CALL(op, mode, e)                                                    \
	((e)->size == 8 ? ck_ring_##op##_##mode##_m8(P(e)->ring, P(e)->buffer,   \
						     (void *)(e)->buf) :         \
	 (e)->size == 64 ? ck_ring_##op##_##mode##_m64(P(e)->ring, P(e)->buffer, \
						       (void *)(e)->buf) :       \
	 (e)->size == 256 ? ck_ring_##op##_##mode##_m256(P(e)->ring, P(e)->buffer, \
							 (void *)(e)->buf) :     \
	 ck_ring_##op##_##mode##_m1k(P(e)->ring, P(e)->buffer, (void *)(e)->buf))

#define CK_OPS(mode)                                                            \
static inline void mode##_tx(struct end *e, unsigned k)                         \
{                                                                               \
	for (unsigned i = 0; i < k; i++) {                                      \
		unsigned spins = 0;                                             \
		stamp(e->buf, e->size, next_word(e));                           \
		while (!CK_CALL(enqueue, mode, e)) {                            \
			e->full++;                                              \
			relax(&spins);                                          \
		}                                                               \
	}                                                                       \
}                                                                               \
static inline unsigned mode##_rx(struct end *e)                                 \
{                                                                               \
	if (!CK_CALL(dequeue, mode, e))                                         \
		return 0;                                                       \
	check_msg(e, e->buf, e->size);                                          \
	return 1;                                                               \
}                                                                               \
BENCH_LOOPS(mode)

CK_OPS(spsc)
CK_OPS(mpmc)

#define C(nm, note, np, nc, fl, loops)                                          \
	{ nm, "ck", note, np, nc, 1, 8, KIB, (fl) | T_POLLS, ck_create, ck_destroy, \
	  ck_attach, ck_detach, LOOPS(loops), ck_skip, NULL, NULL }

const struct transport bench_ck_transports[] = {
	C("ck-spsc", "ck_ring SPSC in POSIX shm, typed entries, one per call", 1, 1,
	  T_TPUT | T_LAT, spsc),
	C("ck-mpmc", "ck_ring MPMC 1x1, typed entries", 1, 1, T_TPUT | T_LAT, mpmc),
	C("ck-mpmc-2x2", "ck_ring MPMC 2 producers x 2 consumers", 2, 2, T_TPUT, mpmc),
};
const unsigned bench_ck_count = sizeof(bench_ck_transports) / sizeof(bench_ck_transports[0]);
