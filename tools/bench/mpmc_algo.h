/* SPDX-License-Identifier: MIT */
/*
 * shmring-bench: the MPMC ring's algorithm (ring/mpmc.h) driven directly,
 * without the API around it, compiled twice, each in its own translation
 * unit so that both get the same inlining: t_mpmc_safe.c with mpmc_commit()
 * as the library has it, t_mpmc_nosafety.c with mpmc_nosafety.h's commit
 * (a plain store instead of the CAS that lets a recoverer race the
 * holder).  Same loop, same memory, one run: the difference is what crash
 * safety costs the algorithm.  The includer defines ALGO(x) (the names'
 * prefix), ALGO_COMMIT (the commit to use), ALGO_NAME and ALGO_NOTE(pxc)
 * (the transports' name and note), then says ALGO_FAMILY(f) to define
 * bench_<f>_transports.
 */
#ifndef SHMRING_BENCH_MPMC_ALGO_H
#define SHMRING_BENCH_MPMC_ALGO_H

#include "bench.h"

#include <errno.h>
#include <sys/mman.h>

#include "ring/mpmc.h"

#define ALGO_STATE_LEN ((sizeof(struct mpmc_shared) + 4095) & ~(size_t)4095)

/* expand ALGO() before BENCH_LOOPS pastes */
#define ALGO_LOOPS(n) BENCH_LOOPS(n)

/* the includer's two transports, 1x1 and 2x2, as bench_<f>_transports */
#define ALGO_T(nm, note, np, nc)                                                \
	{ nm, "shmring", note, np, nc, 1, 64, 64, T_TPUT | T_POLLS, ALGO(create),   \
	  ALGO(destroy), ALGO(attach), ALGO(detach),                           \
	  { ALGO(l_produce), ALGO(l_consume), ALGO(l_ping), ALGO(l_pong) },    \
	  NULL, NULL, NULL }
#define ALGO_FAMILY(f)                                                          \
	const struct transport bench_##f##_transports[] = {                     \
		ALGO_T(ALGO_NAME, ALGO_NOTE("1x1"), 1, 1),                      \
		ALGO_T(ALGO_NAME "-2x2", ALGO_NOTE("2x2"), 2, 2),               \
	};                                                                      \
	const unsigned bench_##f##_count = 2;

#endif /* SHMRING_BENCH_MPMC_ALGO_H */

struct ALGO(priv) {
	struct mpmc_h h;
};
END_PRIV(ALGO(P), struct ALGO(priv))

static int ALGO(create)(struct chan *ch, const struct geom *g)
{
	uint64_t stride = mpmc_stride_for((uint32_t)g->size), n = 2;
	while (n * stride < MIB)
		n <<= 1;
	size_t len = ALGO_STATE_LEN + n * stride;
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE,
		       -1, 0);
	if (m == MAP_FAILED)
		return -errno;
	struct mpmc_geom mg = mpmc_geom_make((uint8_t *)m + ALGO_STATE_LEN, n, (uint32_t)g->size);
	mpmc_init(m, &mg, MPMC_STALL_DEFAULT_MS);
	ch->mem = m;
	ch->len = len;
	ch->u[0] = n;
	return 0;
}

static void ALGO(destroy)(struct chan *ch, struct shmring_stats *st)
{
	(void)st;
	if (ch->mem)
		munmap(ch->mem, ch->len);
	ch->mem = NULL;
}

static void ALGO(attach)(struct end *e, struct chan *ch)
{
	struct mpmc_h *h = &ALGO(P)(e)->h;
	uint32_t max = (uint32_t)e->size;
	h->sh = ch->mem;
	h->g = mpmc_geom_make((uint8_t *)ch->mem + ALGO_STATE_LEN, ch->u[0], max);
	/* owner ids as participant slots would give: distinct per process */
	h->me = 1 + (e->dir == END_TX ? e->id : MAX_PROD + e->id);
	h->part = &h->sh->parts[h->me - 1];
	e->buf = alloc_buf(e->size * e->batch);
}

static void ALGO(detach)(struct end *e)
{
	(void)e;
}

static inline void ALGO(l_tx)(struct end *e, unsigned k)
{
	struct mpmc_h *h = &ALGO(P)(e)->h;
	for (unsigned i = 0; i < k; i++) {
		struct mpmc_pos p;
		unsigned spins = 0;
		int rc;
		fill_frame(e->buf, e->size, next_word(e));
		while ((rc = mpmc_claim(h, &p)) != 0) {
			if (rc != -EAGAIN && rc != -EBUSY)
				fail_rc("mpmc_claim", rc);
			e->full++;
			relax(&spins);
		}
		memcpy(mpmc_payload(&h->g, p.t), e->buf, e->size);
		if ((rc = ALGO_COMMIT(h, p.t, (uint32_t)e->size)) != 0)
			fail_rc("mpmc_commit", rc);
	}
}

static inline unsigned ALGO(l_rx)(struct end *e)
{
	struct mpmc_h *h = &ALGO(P)(e)->h;
	for (;;) {
		struct mpmc_pos p;
		int rc = mpmc_peek(h, &p);
		if (rc == -EAGAIN)
			return 0;
		if (rc == -EBUSY)
			continue;       /* not empty, only probed past busy slots: the
					 * consume loop would take a 0 for the end */
		if (rc < 0)
			fail_rc("mpmc_peek", rc);
		int64_t len = mpmc_len(h, &p);
		if (len < 0)
			continue;
		memcpy(e->buf, mpmc_payload(&h->g, p.t), (size_t)len);
		if (mpmc_consume(h, &p) != 0)
			continue;       /* another consumer took it: the copy is void */
		check_msg(e, e->buf, (size_t)len);
		return 1;
	}
}

ALGO_LOOPS(ALGO(l))
