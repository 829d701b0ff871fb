/* SPDX-License-Identifier: MIT */
/*
 * shmring-bench peer: DPDK rte_ring (libdpdk-dev), compiled in only when
 * pkg-config finds libdpdk.
 *
 * The ring lives in a POSIX shm segment sized by rte_ring_get_memsize_elem
 * and set up by rte_ring_init: no EAL, no hugepages, no memzone -- the
 * ring holds no pointer, so each process maps the segment wherever it
 * likes.  Elements are the message itself (esize = message size, 8 B to
 * 1 KiB, a multiple of 4), so a 64-byte message is one 64-byte element.
 * The ring has as many elements as fit in 1 MiB (at least 1024), the same
 * memory as a default shmring ring.  Calls: rte_ring_{sp,mp}_enqueue_elem
 * and rte_ring_{sc,mc}_dequeue_elem one at a time; the _burst_elem forms
 * for batches of 32.
 */
#include "bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

struct dpdk_priv {
	struct rte_ring *r;
	unsigned esize;
};
END_PRIV(P, struct dpdk_priv)

static unsigned ring_count(size_t size)
{
	unsigned n = 1024;

	while ((size_t)n * 2 * size <= MIB)
		n *= 2;
	return n;
}

static int dpdk_create(struct chan *ch, const struct geom *g, unsigned flags)
{
	unsigned count = ring_count(g->size);
	ssize_t len = rte_ring_get_memsize_elem((unsigned)g->size, count);
	char name[32];

	if (len < 0)
		return (int)len;
	shmseg_create(ch, (size_t)len);
	snprintf(name, sizeof(name), "bench-%u-%u", bench_case_no(), g->index);
	return rte_ring_init(ch->mem, name, count, flags);
}

static int create_spsc(struct chan *ch, const struct geom *g)
{ return dpdk_create(ch, g, RING_F_SP_ENQ | RING_F_SC_DEQ); }
static int create_mpmc(struct chan *ch, const struct geom *g)
{ return dpdk_create(ch, g, 0); }

static void dpdk_destroy(struct chan *ch, struct shmring_stats *st)
{
	(void)st;
	shmseg_destroy(ch);
}

static void dpdk_attach(struct end *e, struct chan *ch)
{
	P(e)->r = shmseg_attach(ch);
	P(e)->esize = (unsigned)e->size;
	e->buf = alloc_buf(e->size * e->batch);
}

static void dpdk_detach(struct end *e)
{
	shmseg_detach(P(e)->r, e->ch);
	free(e->buf);
}

/* one transport per (producer sync, consumer sync); k == 1 is a single
 * enqueue, more is a burst that is retried until all k are in */
#define DPDK_OPS(nm, enq, deq)                                                  \
static inline void nm##_tx(struct end *e, unsigned k)                           \
{                                                                               \
	struct rte_ring *r = P(e)->r;                                           \
	unsigned esize = P(e)->esize, spins = 0;                                \
	for (unsigned i = 0; i < k; i++)                                        \
		stamp(e->buf + i * e->size, e->size, next_word(e));             \
	if (k == 1) {                                                           \
		while (rte_ring_##enq##_enqueue_elem(r, e->buf, esize) != 0) {  \
			e->full++;                                              \
			relax(&spins);                                          \
		}                                                               \
		return;                                                         \
	}                                                                       \
	for (unsigned done = 0; done < k;) {                                    \
		unsigned n = rte_ring_##enq##_enqueue_burst_elem(r,             \
			e->buf + done * e->size, esize, k - done, NULL);        \
		if (n == 0) {                                                   \
			e->full++;                                              \
			relax(&spins);                                          \
		}                                                               \
		done += n;                                                      \
	}                                                                       \
}                                                                               \
static inline unsigned nm##_rx(struct end *e)                                   \
{                                                                               \
	struct rte_ring *r = P(e)->r;                                           \
	unsigned esize = P(e)->esize, n;                                        \
	if (e->batch == 1) {                                                    \
		if (rte_ring_##deq##_dequeue_elem(r, e->buf, esize) != 0)       \
			return 0;                                               \
		n = 1;                                                          \
	} else {                                                                \
		n = rte_ring_##deq##_dequeue_burst_elem(r, e->buf, esize,       \
							e->batch, NULL);        \
	}                                                                       \
	for (unsigned i = 0; i < n; i++)                                        \
		check_msg(e, e->buf + i * e->size, e->size);                    \
	return n;                                                               \
}                                                                               \
BENCH_LOOPS(nm)

DPDK_OPS(spsc, sp, sc)
DPDK_OPS(mpmc, mp, mc)

#define D(nm, note, np, nc, b, fl, create, loops)                               \
	{ nm, "dpdk", note, np, nc, b, 8, KIB, (fl) | T_POLLS, create, dpdk_destroy, \
	  dpdk_attach, dpdk_detach, LOOPS(loops), NULL, NULL, NULL }
#define TL (T_TPUT | T_LAT)

const struct transport bench_dpdk_transports[] = {
	D("dpdk-spsc", "rte_ring SP/SC in POSIX shm, _elem, one per call", 1, 1, 1, TL,
	  create_spsc, spsc),
	D("dpdk-spsc-b32", "rte_ring SP/SC, _burst_elem of 32", 1, 1, 32, T_TPUT,
	  create_spsc, spsc),
	D("dpdk-mpmc", "rte_ring MP/MC 1x1, _elem, one per call", 1, 1, 1, TL,
	  create_mpmc, mpmc),
	D("dpdk-mpmc-b32", "rte_ring MP/MC 1x1, _burst_elem of 32", 1, 1, 32, T_TPUT,
	  create_mpmc, mpmc),
	D("dpdk-mpmc-2x2", "rte_ring MP/MC 2 producers x 2 consumers, one per call", 2, 2, 1,
	  T_TPUT, create_mpmc, mpmc),
	D("dpdk-mpmc-2x2-b32", "rte_ring MP/MC 2x2, bursts of 32", 2, 2, 32, T_TPUT,
	  create_mpmc, mpmc),
};
const unsigned bench_dpdk_count = sizeof(bench_dpdk_transports) / sizeof(bench_dpdk_transports[0]);
