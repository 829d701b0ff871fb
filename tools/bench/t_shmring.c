/* SPDX-License-Identifier: MIT */
/*
 * shmring-bench: shmring's own transports, through the public API only.
 *
 *   -poll   send/recv with timeout 0, spinning on -EAGAIN (busy-poll)
 *   -block  send/recv with SHMRING_FOREVER: the default spin, then a futex
 *   -sleep  the same with shmring_set_spin(0): every wait sleeps at once,
 *           so a round trip measures two futex wake-ups
 *   -zc     reserve/commit and acquire/release: written and read in place
 *   -b32    send_batch/recv_batch of up to 32 messages
 *   -fixed  opts.flags = SHMRING_FIXED, max_msg the message size: no
 *           per-message header
 *   -mpmc   opts.kind = SHMRING_MPMC, 1x1 and 2x2
 *   -bcast  opts.kind = SHMRING_BCAST: every subscriber gets every message;
 *           -spsc-xN, the same fan-out through N SPSC rings, one per reader,
 *           the producer sending each message N times
 *   -inline send/recv (-inline-zc: reserve/commit, acquire/release) through
 *           <shmring/inline.h>, opened with shmring_inl_open: the same
 *           calls as -poll (-zc) without the library call per message
 *   file-*, pipe-ring, mq-ring: the same calls on file:, pipe: and mq: URIs
 */
#include "bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "shmring/inline.h"

END_PRIV(P, struct sr_priv)

/* ---------------------------------------------------------------------- */
/* channels                                                                 */

static struct shmring_opts ring_opts(const struct geom *g, enum shmring_kind kind)
{
	struct shmring_opts o;

	memset(&o, 0, sizeof(o));
	o.kind = kind;
	o.capacity = MIB;
	if (g->size >= 64 * KIB) {
		o.capacity = 4 * g->size > MIB ? 4 * g->size : MIB;
		o.max_msg = (uint32_t)g->size;
	}
	if (kind == SHMRING_MPMC)
		o.max_msg = (uint32_t)g->size;  /* slots of the message size */
	o.flags = SHMRING_PREFAULT;
	return o;
}

/* Where a transport's rings live: the ring kind, and the URI made of the
 * bench's pid, the case number and the channel's index. */
enum ring_at { AT_SHM_SPSC, AT_SHM_FIXED, AT_SHM_BIG, AT_SHM_MPMC, AT_SHM_BCAST, AT_FILE_TMPFS, AT_FILE_DISK, AT_PIPE,
	       AT_MQ };
static const struct {
	enum shmring_kind kind;
	const char *uri_fmt;
} ring_at[] = {
	[AT_SHM_SPSC] = { SHMRING_SPSC, "shm:bench-%ld-%u-%u" },
	[AT_SHM_FIXED] = { SHMRING_SPSC, "shm:bench-%ld-%u-%u" },
	[AT_SHM_BIG] = { SHMRING_SPSC, "shm:bench-%ld-%u-%u" },
	[AT_SHM_MPMC] = { SHMRING_MPMC, "shm:bench-%ld-%u-%u" },
	[AT_SHM_BCAST] = { SHMRING_BCAST, "shm:bench-%ld-%u-%u" },
	[AT_FILE_TMPFS] = { SHMRING_SPSC, "file:/dev/shm/shmring-bench-%ld-%u-%u.ring" },
	[AT_FILE_DISK] = { SHMRING_SPSC, "file:/tmp/shmring-bench-%ld-%u-%u.ring" },
	[AT_PIPE] = { SHMRING_SPSC, "pipe:/tmp/shmring-bench-%ld-%u-%u.fifo" },
	[AT_MQ] = { SHMRING_SPSC, "mq:shmring-bench-%ld-%u-%u" },
};

static int ring_create(struct chan *ch, const struct geom *g, enum ring_at at)
{
	struct shmring_opts o = ring_opts(g, ring_at[at].kind);
	int rc;

	snprintf(ch->name, sizeof(ch->name), ring_at[at].uri_fmt, (long)getpid(), bench_case_no(),
		 g->index);
	if (at == AT_SHM_BIG)   /* sized for slack, far above what is in flight */
		o.capacity = 64 * MIB;
	if (at == AT_SHM_FIXED) {       /* every message of the case's size */
		o.flags |= SHMRING_FIXED;
		o.max_msg = (uint32_t)g->size;
	}
	if (at == AT_MQ) {
		/* a queue of the depth the system allows */
		o.max_msg = (uint32_t)g->size;
		o.capacity = g->size * (uint64_t)(g_mq_msg_max < 64 ? g_mq_msg_max : 64);
	}
	/* pipe: stores no geometry: every open passes the creator's opts */
	ch->u[0] = o.capacity;
	ch->u[1] = o.max_msg;
	ch->u[2] = (uint64_t)o.kind;
	ch->u[3] = o.flags;
	rc = shmring_open(ch->name, SHMRING_CREATE | SHMRING_EXCL, &o, &ch->ring);
	if (rc < 0) {
		ch->ring = NULL;
		if (rc != -ENOTSUP)
			fprintf(stderr, "shmring-bench: shmring_open %s (create): %s\n", ch->name,
				shmring_strerror(rc));
		ch->name[0] = '\0';     /* not ours: leave it alone */
		return rc == -ENOTSUP ? rc : -EIO;
	}
	return 0;
}

/* create_AT_SHM_SPSC() ...: struct transport's create for each place */
#define RING_CREATE(at)                                                         \
	static int create_##at(struct chan *ch, const struct geom *g)           \
	{                                                                       \
		return ring_create(ch, g, at);                                  \
	}
RING_CREATE(AT_SHM_SPSC)
RING_CREATE(AT_SHM_FIXED)
RING_CREATE(AT_SHM_BIG)
RING_CREATE(AT_SHM_MPMC)
RING_CREATE(AT_SHM_BCAST)
RING_CREATE(AT_FILE_TMPFS)
RING_CREATE(AT_FILE_DISK)
RING_CREATE(AT_PIPE)
RING_CREATE(AT_MQ)

static void ring_destroy(struct chan *ch, struct shmring_stats *st)
{
	if (ch->ring && st) {
		int rc = shmring_stats(ch->ring, st);
		if (rc < 0)
			fail_rc("shmring_stats", rc);
	}
	if (ch->name[0]) {
		int rc = shmring_unlink(ch->name);
		if (rc < 0 && rc != -ENOENT)
			fprintf(stderr, "shmring-bench: shmring_unlink %s: %s\n", ch->name,
				shmring_strerror(rc));
		ch->name[0] = '\0';
	}
	if (ch->ring)
		(void)shmring_close(ch->ring);
	ch->ring = NULL;
}

/* inl: open with shmring_inl_open (the inline fast path on) */
static void ring_open_end(struct end *e, struct chan *ch, bool inl)
{
	struct shmring_opts o;
	int role = e->dir == END_TX ? SHMRING_PRODUCER : SHMRING_CONSUMER;
	int rc;

	memset(&o, 0, sizeof(o));
	o.capacity = ch->u[0];
	o.max_msg = (uint32_t)ch->u[1];
	o.kind = (enum shmring_kind)ch->u[2];
	o.flags = (uint32_t)ch->u[3];
	/* opts: the geometry for a fallback, which keeps none; for every ring
	 * SHMRING_PREFAULT, this process's own choice for its mapping, as the
	 * peers and the floors map theirs with MAP_POPULATE */
	rc = inl ? shmring_inl_open(ch->name, role, &o, &P(e)->r)
		 : shmring_open(ch->name, role, &o, &P(e)->r);
	if (rc < 0)
		fail("shmring_open %s as %s: %s", ch->name,
		     role == SHMRING_PRODUCER ? "producer" : "consumer", shmring_strerror(rc));
	e->buf = alloc_buf(e->size * e->batch);
}

static void ring_attach(struct end *e, struct chan *ch)
{
	ring_open_end(e, ch, false);
}

static void ring_attach_inline(struct end *e, struct chan *ch)
{
	ring_open_end(e, ch, true);
}

/* -sleep: no spin before the futex */
static void ring_attach_sleep(struct end *e, struct chan *ch)
{
	ring_attach(e, ch);
	int rc = shmring_set_spin(P(e)->r, 0);
	if (rc < 0)
		fail_rc("shmring_set_spin", rc);
}

static void ring_detach(struct end *e)
{
	int rc = shmring_close(P(e)->r);

	if (rc < 0)
		fail_rc("shmring_close", rc);
	free(e->buf);
}

/* ---------------------------------------------------------------------- */
/* copying API, one message or a batch; timeout 0 spins, FOREVER blocks     */

static inline __attribute__((always_inline))
void copy_tx(struct end *e, unsigned k, int64_t timeout, bool inl)
{
	struct shmring *r = P(e)->r;
	unsigned spins = 0;
	int rc;

	if (k == 1) {
		stamp(e->buf, e->size, next_word(e));
		while ((rc = inl ? shmring_inl_send(r, e->buf, e->size, timeout)
				 : shmring_send(r, e->buf, e->size, timeout)) == -EAGAIN) {
			e->full++;
			relax(&spins);
		}
		if (rc < 0)
			fail_rc("shmring_send", rc);
		return;
	}
	for (unsigned i = 0; i < k; i++) {
		e->iov[i].iov_base = e->buf + i * e->size;
		e->iov[i].iov_len = e->size;
		stamp(e->iov[i].iov_base, e->size, next_word(e));
	}
	for (unsigned done = 0; done < k;) {
		rc = shmring_send_batch(r, e->iov + done, k - done, timeout);
		if (rc == -EAGAIN) {
			e->full++;
			relax(&spins);
			continue;
		}
		if (rc < 0)
			fail_rc("shmring_send_batch", rc);
		done += (unsigned)rc;
	}
}

static inline __attribute__((always_inline))
unsigned copy_rx(struct end *e, int64_t timeout, bool inl)
{
	struct shmring *r = P(e)->r;

	if (e->batch == 1) {
		ssize_t n = inl ? shmring_inl_recv(r, e->buf, e->size, timeout)
			    : shmring_recv(r, e->buf, e->size, timeout);
		if (n == -EAGAIN)
			return 0;
		if (n < 0)
			fail_rc("shmring_recv", n);
		check_msg(e, e->buf, (size_t)n);
		return 1;
	}
	for (unsigned i = 0; i < e->batch; i++) {
		e->iov[i].iov_base = e->buf + i * e->size;
		e->iov[i].iov_len = e->size;
	}
	int n = shmring_recv_batch(r, e->iov, e->batch, timeout);
	if (n == -EAGAIN)
		return 0;
	if (n < 0)
		fail_rc("shmring_recv_batch", n);
	for (int i = 0; i < n; i++)
		check_msg(e, e->iov[i].iov_base, e->iov[i].iov_len);
	return (unsigned)n;
}

static inline void poll_tx(struct end *e, unsigned k) { copy_tx(e, k, 0, false); }
static inline unsigned poll_rx(struct end *e) { return copy_rx(e, 0, false); }
static inline void block_tx(struct end *e, unsigned k) { copy_tx(e, k, SHMRING_FOREVER, false); }
static inline unsigned block_rx(struct end *e) { return copy_rx(e, SHMRING_FOREVER, false); }

/* -inline: the same busy-poll through <shmring/inline.h> */
static inline void inl_tx(struct end *e, unsigned k) { copy_tx(e, k, 0, true); }
static inline unsigned inl_rx(struct end *e) { return copy_rx(e, 0, true); }

BENCH_LOOPS(poll)
BENCH_LOOPS(block)
BENCH_LOOPS(inl)

/* ---------------------------------------------------------------------- */
/* zero-copy: the frame is written and read in the ring                    */

static inline __attribute__((always_inline))
void zc_tx_wait(struct end *e, unsigned k, int64_t timeout, bool inl)
{
	struct shmring *r = P(e)->r;

	for (unsigned i = 0; i < k; i++) {
		struct shmring_msg m;
		unsigned spins = 0;
		int rc;

		while ((rc = inl ? shmring_inl_reserve(r, e->size, &m, timeout)
				 : shmring_reserve(r, e->size, &m, timeout)) == -EAGAIN) {
			e->full++;
			relax(&spins);
		}
		if (rc < 0)
			fail_rc("shmring_reserve", rc);
		if (m.len < e->size)
			fail("shmring_reserve: asked for %zu bytes, got %zu", e->size, m.len);
		fill_frame(m.data, e->size, next_word(e));
		m.len = e->size;
		rc = inl ? shmring_inl_commit(r, &m) : shmring_commit(r, &m);
		if (rc < 0)
			fail_rc("shmring_commit", rc);
	}
}

static inline __attribute__((always_inline))
unsigned zc_rx_wait(struct end *e, int64_t timeout, bool inl)
{
	struct shmring *r = P(e)->r;
	struct shmring_msg m;
	int rc = inl ? shmring_inl_acquire(r, &m, timeout) : shmring_acquire(r, &m, timeout);

	if (rc == -EAGAIN)
		return 0;
	if (rc < 0)
		fail_rc("shmring_acquire", rc);
	check_msg(e, m.data, m.len);
	rc = inl ? shmring_inl_release(r, &m) : shmring_release(r, &m);
	if (rc < 0)
		fail_rc("shmring_release", rc);
	return 1;
}

static inline void zc_tx(struct end *e, unsigned k) { zc_tx_wait(e, k, 0, false); }
static inline unsigned zc_rx(struct end *e) { return zc_rx_wait(e, 0, false); }
/* -zcb: the same, every wait SHMRING_FOREVER (more processes than CPUs) */
static inline void zcb_tx(struct end *e, unsigned k) { zc_tx_wait(e, k, SHMRING_FOREVER, false); }
static inline unsigned zcb_rx(struct end *e) { return zc_rx_wait(e, SHMRING_FOREVER, false); }

static inline void inlzc_tx(struct end *e, unsigned k) { zc_tx_wait(e, k, 0, true); }
static inline unsigned inlzc_rx(struct end *e) { return zc_rx_wait(e, 0, true); }

BENCH_LOOPS(zc)
BENCH_LOOPS(zcb)
BENCH_LOOPS(inlzc)

/* ---------------------------------------------------------------------- */
/* fan-out through one SPSC ring per reader: "shm:bench-PID-CASE-CHAN-I"    */

struct fan_priv {
	struct shmring *out[MAX_CONS];  /* the producer's: every reader's ring */
	unsigned n;
};
END_PRIV(FP, struct fan_priv)

static void fan_name(char *buf, size_t len, const struct chan *ch, unsigned i)
{
	snprintf(buf, len, "%s-%u", ch->name, i);
}

static void fan_destroy(struct chan *ch, struct shmring_stats *st)
{
	char name[128];

	(void)st;                       /* N rings: no one ring's counters */
	for (unsigned i = 0; ch->name[0] && i < ch->u[0]; i++) {
		fan_name(name, sizeof(name), ch, i);
		int rc = shmring_unlink(name);
		if (rc < 0 && rc != -ENOENT)
			fprintf(stderr, "shmring-bench: shmring_unlink %s: %s\n", name,
				shmring_strerror(rc));
	}
	ch->name[0] = '\0';
}

static int fan_create(struct chan *ch, const struct geom *g)
{
	struct shmring_opts o = ring_opts(g, SHMRING_SPSC);
	char name[128];

	snprintf(ch->name, sizeof(ch->name), "shm:bench-%ld-%u-%u", (long)getpid(),
		 bench_case_no(), g->index);
	ch->u[0] = 0;
	for (unsigned i = 0; i < g->ncons; i++) {
		struct shmring *r;
		fan_name(name, sizeof(name), ch, i);
		int rc = shmring_open(name, SHMRING_CREATE | SHMRING_EXCL, &o, &r);
		if (rc < 0) {
			fprintf(stderr, "shmring-bench: shmring_open %s (create): %s\n", name,
				shmring_strerror(rc));
			fan_destroy(ch, NULL);
			return -EIO;
		}
		(void)shmring_close(r);
		ch->u[0] = i + 1;
	}
	return 0;
}

/* the producer opens every ring, a reader its own (e->sub) */
static void fan_attach(struct end *e, struct chan *ch)
{
	char name[128];
	unsigned n = e->dir == END_TX ? (unsigned)ch->u[0] : 1;

	for (unsigned i = 0; i < n; i++) {
		struct shmring *r;
		fan_name(name, sizeof(name), ch, e->dir == END_TX ? i : e->sub);
		int rc = shmring_open(name, e->dir == END_TX ? SHMRING_PRODUCER : SHMRING_CONSUMER,
				      NULL, &r);
		if (rc < 0)
			fail("shmring_open %s: %s", name, shmring_strerror(rc));
		if (e->dir == END_TX)
			FP(e)->out[i] = r;
		else
			P(e)->r = r;
	}
	if (e->dir == END_TX)
		FP(e)->n = n;
	e->buf = alloc_buf(e->size);
}

static void fan_detach(struct end *e)
{
	if (e->dir == END_TX) {
		for (unsigned i = 0; i < FP(e)->n; i++)
			if (shmring_close(FP(e)->out[i]) < 0)
				fail("shmring_close");
	} else if (shmring_close(P(e)->r) < 0) {
		fail("shmring_close");
	}
	free(e->buf);
}

/* the message made once (the whole frame written, or stamped), then sent
 * into every reader's ring, each send a copy */
static inline __attribute__((always_inline))
void fan_send(struct end *e, unsigned k, bool frame)
{
	for (unsigned j = 0; j < k; j++) {
		uint64_t w = next_word(e);
		if (frame)
			fill_frame(e->buf, e->size, w);
		else
			stamp(e->buf, e->size, w);
		for (unsigned i = 0; i < FP(e)->n; i++) {
			int rc = shmring_send(FP(e)->out[i], e->buf, e->size, SHMRING_FOREVER);
			if (rc < 0)
				fail_rc("shmring_send", rc);
		}
	}
}

/* -spsc-x8: 64 B messages, read by copying out; -spsc-x3: frames, read in place */
static inline void fan_tx(struct end *e, unsigned k) { fan_send(e, k, false); }
static inline unsigned fan_rx(struct end *e) { return copy_rx(e, SHMRING_FOREVER, false); }
static inline void fanzc_tx(struct end *e, unsigned k) { fan_send(e, k, true); }
static inline unsigned fanzc_rx(struct end *e) { return zc_rx_wait(e, SHMRING_FOREVER, false); }

BENCH_LOOPS(fan)
BENCH_LOOPS(fanzc)

/* ---------------------------------------------------------------------- */

#define SR(nm, note, np, nc, b, maxsz, fl, create, attach, loops)               \
	{ nm, "shmring", note, np, nc, b, 0, maxsz, (fl) | T_SHMRING, create,   \
	  ring_destroy, attach, ring_detach, LOOPS(loops), NULL, NULL, NULL }

#define TL (T_TPUT | T_LAT)
#define BC (T_TPUT | T_BCAST)

const struct transport bench_shmring_transports[] = {
	SR("shmring-poll", "shm: SPSC, send/recv, timeout 0, retry (busy-poll)",
	   1, 1, 1, 0, TL | T_POLLS, create_AT_SHM_SPSC, ring_attach, poll),
	SR("shmring-inline", "shm: SPSC, send/recv through <shmring/inline.h>, timeout 0",
	   1, 1, 1, 0, TL | T_POLLS, create_AT_SHM_SPSC, ring_attach_inline, inl),
	SR("shmring-inline-zc", "shm: SPSC, reserve/commit + acquire/release, <shmring/inline.h>",
	   1, 1, 1, 0, TL | T_POLLS, create_AT_SHM_SPSC, ring_attach_inline, inlzc),
	SR("shmring-poll-b32", "shm: SPSC, send_batch/recv_batch of 32, timeout 0",
	   1, 1, 32, 64 * KIB, T_TPUT | T_POLLS, create_AT_SHM_SPSC, ring_attach, poll),
	SR("shmring-fixed", "shm: SPSC, SHMRING_FIXED (no header), send/recv, timeout 0",
	   1, 1, 1, 64 * KIB, TL | T_POLLS, create_AT_SHM_FIXED, ring_attach, poll),
	SR("shmring-fixed-b32", "shm: SPSC, SHMRING_FIXED, send_batch/recv_batch of 32, timeout 0",
	   1, 1, 32, 64 * KIB, T_TPUT | T_POLLS, create_AT_SHM_FIXED, ring_attach, poll),
	SR("shmring-block", "shm: SPSC, SHMRING_FOREVER (default spin, then futex)",
	   1, 1, 1, 0, TL, create_AT_SHM_SPSC, ring_attach, block),
	SR("shmring-sleep", "shm: SPSC, SHMRING_FOREVER with shmring_set_spin(0): futex at once",
	   1, 1, 1, KIB, TL, create_AT_SHM_SPSC, ring_attach_sleep, block),
	SR("shmring-zc", "shm: SPSC, reserve/commit + acquire/release, in place",
	   1, 1, 1, 0, TL | T_POLLS, create_AT_SHM_SPSC, ring_attach, zc),
	SR("shmring-zc-64m", "shm: SPSC, reserve/commit + acquire/release, in place, 64 MiB ring",
	   1, 1, 1, 0, TL | T_POLLS, create_AT_SHM_BIG, ring_attach, zc),
	SR("shmring-mpmc", "shm: MPMC 1x1, send/recv, timeout 0",
	   1, 1, 1, 64 * KIB, TL | T_POLLS, create_AT_SHM_MPMC, ring_attach, poll),
	SR("shmring-mpmc-b32", "shm: MPMC 1x1, batches of 32, timeout 0",
	   1, 1, 32, 64 * KIB, T_TPUT | T_POLLS, create_AT_SHM_MPMC, ring_attach, poll),
	SR("shmring-mpmc-block", "shm: MPMC 1x1, SHMRING_FOREVER",
	   1, 1, 1, 64 * KIB, TL, create_AT_SHM_MPMC, ring_attach, block),
	SR("shmring-mpmc-2x2", "shm: MPMC 2 producers x 2 consumers, timeout 0",
	   2, 2, 1, KIB, T_TPUT | T_POLLS, create_AT_SHM_MPMC, ring_attach, poll),
	SR("shmring-mpmc-2x2-b32", "shm: MPMC 2x2, batches of 32, timeout 0",
	   2, 2, 32, KIB, T_TPUT | T_POLLS, create_AT_SHM_MPMC, ring_attach, poll),
	SR("shmring-bcast", "shm: BCAST 1x1, send/recv, timeout 0 (busy-poll)",
	   1, 1, 1, 64 * KIB, TL | T_POLLS | T_BCAST, create_AT_SHM_BCAST, ring_attach, poll),
	SR("shmring-bcast-block", "shm: BCAST 1x1, send/recv, SHMRING_FOREVER",
	   1, 1, 1, KIB, BC, create_AT_SHM_BCAST, ring_attach, block),
	SR("shmring-bcast-x8", "shm: BCAST 1 producer x 8 subscribers, SHMRING_FOREVER",
	   1, 8, 1, KIB, BC, create_AT_SHM_BCAST, ring_attach, block),
	SR("shmring-bcast-x8-own", "shm: BCAST 1x8 as shmring-bcast-x8, the 8 subscribers on "
	   "the second CPU: the producer has the first to itself",
	   1, 8, 1, KIB, BC | T_OWNCPU, create_AT_SHM_BCAST, ring_attach, block),
	{ "shmring-spsc-x8", "shmring", "shm: 8 SPSC rings, one per reader, each message sent 8 "
	  "times, SHMRING_FOREVER", 1, 8, 1, 0, KIB, BC | T_SHMRING | T_NOSTATS, fan_create,
	  fan_destroy, fan_attach, fan_detach, LOOPS(fan), NULL, NULL, NULL },
	/* frames of 8 MiB and more only (not in --quick) */
	{ "shmring-bcast-zc-x3", "shmring", "shm: BCAST 1x3, frames written once and read in "
	  "place, SHMRING_FOREVER", 1, 3, 1, 8 * MIB, 0, BC | T_SHMRING, create_AT_SHM_BCAST,
	  ring_destroy, ring_attach, ring_detach, LOOPS(zcb), NULL, NULL, NULL },
	{ "shmring-spsc-x3", "shmring", "shm: 3 SPSC rings, the frame written once, copied into "
	  "each, read in place, SHMRING_FOREVER", 1, 3, 1, 8 * MIB, 0, BC | T_SHMRING | T_NOSTATS,
	  fan_create, fan_destroy, fan_attach, fan_detach, LOOPS(fanzc), NULL, NULL, NULL },
	SR("file-tmpfs", "file: ring in /dev/shm (tmpfs), send/recv, timeout 0, no flush",
	   1, 1, 1, MIB, TL | T_POLLS, create_AT_FILE_TMPFS, ring_attach, poll),
	SR("file-disk", "file: ring in /tmp (the root filesystem), send/recv, timeout 0",
	   1, 1, 1, MIB, TL | T_POLLS, create_AT_FILE_DISK, ring_attach, poll),
	SR("pipe-ring", "pipe: backend (named FIFO, framed), send/recv, SHMRING_FOREVER",
	   1, 1, 1, MIB, TL | T_NOSTATS, create_AT_PIPE, ring_attach, block),
	{ "mq-ring", "shmring", "mq: backend (POSIX queue), send/recv, SHMRING_FOREVER",
	  1, 1, 1, 0, 0, TL | T_SHMRING | T_NOSTATS, create_AT_MQ, ring_destroy, ring_attach,
	  ring_detach, LOOPS(block), mq_skip, NULL, NULL },
};
const unsigned bench_shmring_count =
	sizeof(bench_shmring_transports) / sizeof(bench_shmring_transports[0]);
