/* SPDX-License-Identifier: MIT */
/*
 * MPMC crash tests (issue 3), linked against the crash-point build of the
 * library (build/crash/libshmring.a, sync/crash.h).
 *
 *  - torture: 2 producers and 2 consumers in separate processes on a ring
 *    of 32 slots, random sizes, every API (send, reserve+commit,
 *    send_batch; recv, acquire+release, recv_batch); a driver SIGKILLs a
 *    random one at a random moment and starts a replacement, 200 times
 *    (SHMRING_MPMC_KILLS overrides; make torture: 5000).  Half the
 *    replacements start only after the survivors moved messages again
 *    (recovery on the data path, without the sweep an attach runs); one
 *    in eight of the others is killed while it attaches.
 *  - crash points: for every named point and n = 1..N (SHMRING_CRASH_NMAX;
 *    make torture: 20), a scenario in which a process dies at the n-th
 *    pass through the point, replacements run, the invariants hold and the
 *    ring works afterwards.
 *  - control lock: a process killed while it holds the control-plane lock.
 *
 * The ledger (anonymous MAP_SHARED memory, outside the ring) is what the
 * invariants are checked against:
 *  - every producer incarnation is a generation g; a message carries
 *    (g, length, seq, checksum) and a payload derived from (g, seq);
 *    sent[g] counts the messages whose send/commit returned 0;
 *  - a consumer verifies each message (length, checksum, pattern: never
 *    torn), checks per-producer order within its own incarnation, and sets
 *    the message's bit in g's bitmap: a bit already set is a message
 *    delivered twice to completion;
 *  - before and after each call a consumer writes what it may be holding
 *    (phase, budget): when the driver kills it, that is the most it can
 *    have taken out of the ring without logging it.  Every message that
 *    was confirmed sent and never delivered must fit in the sum of those
 *    budgets, and the library's msgs_dropped must lie between the kills
 *    that certainly held an acquired message and those that may have.
 *    A message a killed consumer held between acquire and release must
 *    never be delivered afterwards (the documented policy is to drop it).
 *  - after each kill, deliveries resume within the ring's stall timeout
 *    plus one second (the only timing assertion, besides generous bounds
 *    that turn a hang into a failure).
 *
 * At the end of every run the workers stop, the driver attaches a consumer
 * (whose attach sweeps whatever dead participants still hold) and drains
 * with timeout 0, so the count of lost messages does not depend on timing.
 */
#ifndef SHMRING_CRASH_POINTS
#define SHMRING_CRASH_POINTS 1   /* crash_reset(): this suite links the crash build */
#endif
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "backend/seg.h"
#include "ring/mpmc.h"
#include "sync/crash.h"
#include "sync/lock.h"

#define MS 1000000ll
#define MSG_MAX 100u             /* slots of 16 + 100 bytes, rounded to 128 */
#define HDR 24u                  /* gen, len, seq, pad, checksum */
#define RING_CAP 4096u           /* 32 slots: the ring wraps every 32 messages */
#define STALL_MS 200u            /* opts.stall_ms */
#define MAXSEQ (1u << 18)        /* per generation; a producer then retires */
#define NB 8u                    /* largest batch */
#define OUTSIDER 0xffffffffu     /* generation of messages that must never be delivered */
#define OP_TIMEOUT (20 * MS)

enum { A_SEND = 1, A_RESERVE = 2, A_SENDB = 4 };
enum { A_RECV = 1, A_ACQ = 2, A_RECVB = 4 };
#define A_ALL 7u
enum { PH_IDLE, PH_CALL, PH_HELD, PH_RELEASING, PH_LOG };
/* ledger violations (exit codes of workers: 30 + kind) */
enum { E_SHORT = 1, E_TORN, E_OUTSIDER, E_ORDER, E_DUP, E_LIB };

struct gen {
	_Atomic uint32_t sent;       /* seq < sent: send/commit returned 0 */
	_Atomic uint32_t top;        /* highest delivered seq + 1 */
	_Atomic int ready, killed;
};

struct cslot {
	_Atomic int ready, phase, api;
	_Atomic uint32_t budget;     /* messages this call may take / has not logged */
	_Atomic uint64_t held;       /* gen << 32 | seq, in PH_HELD */
};

struct ledger {
	char uri[128];
	uint32_t maxgen, maxcons;
	_Atomic uint32_t ngen, ncons;
	_Atomic int stop_prod, stop_cons;
	_Atomic uint64_t total;      /* deliveries logged */
	_Atomic uint64_t errors;
	_Atomic int err_claimed;
	char err[256];
	_Atomic uint64_t open_req, open_done;   /* the opener's protocol */
	_Atomic int locker_rc;
	struct gen *gens;            /* same address in every forked child */
	struct cslot *cs;
	_Atomic uint8_t *bits;       /* maxgen bitmaps of MAXSEQ bits */
	size_t size;
};

static struct ledger *L;

/* ---- the ledger ---------------------------------------------------------- */

static void ledger_new(const char *uri, uint32_t maxgen, uint32_t maxcons)
{
	size_t size = sizeof(struct ledger) + 64 + (size_t)maxgen * sizeof(struct gen) +
		      (size_t)maxcons * sizeof(struct cslot) + 64 + (size_t)maxgen * (MAXSEQ / 8);
	/* NORESERVE: only the pages the bitmaps touch are ever allocated */
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE,
		       -1, 0);
	cr_assert_neq(p, MAP_FAILED, "ledger mmap");
	L = p;
	L->size = size;
	snprintf(L->uri, sizeof(L->uri), "%s", uri);
	L->maxgen = maxgen;
	L->maxcons = maxcons;
	uint8_t *b = (uint8_t *)p + ((sizeof(struct ledger) + 63) & ~(size_t)63);
	L->gens = (struct gen *)b;
	b += (size_t)maxgen * sizeof(struct gen);
	L->cs = (struct cslot *)b;
	b += (size_t)maxcons * sizeof(struct cslot);
	L->bits = (_Atomic uint8_t *)(((uintptr_t)b + 63) & ~(uintptr_t)63);
}

static void ledger_free(void)
{
	munmap(L, L->size);
	L = NULL;
}

static void lerr(const char *fmt, ...)
{
	atomic_fetch_add(&L->errors, 1);
	int z = 0;
	if (!atomic_compare_exchange_strong(&L->err_claimed, &z, 1))
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(L->err, sizeof(L->err), fmt, ap);
	va_end(ap);
}

static _Atomic uint8_t *bitmap(uint32_t g)
{
	return L->bits + (size_t)g * (MAXSEQ / 8);
}

static bool delivered(uint32_t g, uint32_t seq)
{
	return atomic_load(&bitmap(g)[seq / 8]) & (1u << (seq % 8));
}

/* ---- messages ----------------------------------------------------------- */

static uint64_t fnv(const uint8_t *p, size_t n, uint64_t h)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

static uint64_t msg_sum(const uint8_t *m, size_t len)
{
	return fnv(m + HDR, len - HDR, fnv(m, 16, 0xcbf29ce484222325ull));
}

/* A message of HDR..room bytes for (g, seq), written in place. */
static size_t build(uint8_t *m, size_t room, uint32_t g, uint32_t seq, uint64_t *rnd)
{
	size_t len = HDR + t_rand(rnd) % (room - HDR + 1);
	uint32_t l = (uint32_t)len, pad = 0;
	memcpy(m, &g, 4);
	memcpy(m + 4, &l, 4);
	memcpy(m + 8, &seq, 4);
	memcpy(m + 12, &pad, 4);
	t_fill(m + HDR, len - HDR, (uint64_t)g << 32 | seq);
	uint64_t sum = msg_sum(m, len);
	memcpy(m + 16, &sum, 8);
	return len;
}

/* 0, or E_*: what is wrong with the message. */
static int verify(const uint8_t *m, size_t len, uint32_t *g, uint32_t *seq)
{
	uint32_t l;
	uint64_t sum;
	if (len < HDR)
		return E_SHORT;
	memcpy(g, m, 4);
	memcpy(&l, m + 4, 4);
	memcpy(seq, m + 8, 4);
	memcpy(&sum, m + 16, 8);
	if (l != len || sum != msg_sum(m, len) ||
	    !t_check(m + HDR, len - HDR, (uint64_t)*g << 32 | *seq))
		return E_TORN;
	if (*g == OUTSIDER)
		return E_OUTSIDER;     /* a message dropped on purpose came back */
	if (*g >= atomic_load(&L->ngen) || *seq >= MAXSEQ)
		return E_TORN;
	return 0;
}

/* Log one delivery to completion: order within this consumer, then the
 * bit (a second delivery of the same message is E_DUP). */
static int deliver(uint32_t g, uint32_t seq, uint32_t *last)
{
	if (seq < last[g]) {
		lerr("per-producer order: gen %u seq %u after seq %u", g, seq, last[g] - 1);
		return E_ORDER;
	}
	last[g] = seq + 1;
	uint8_t bit = (uint8_t)(1u << (seq % 8));
	if (atomic_fetch_or(&bitmap(g)[seq / 8], bit) & bit) {
		lerr("delivered twice: gen %u seq %u", g, seq);
		return E_DUP;
	}
	uint32_t top = atomic_load(&L->gens[g].top);
	while (top < seq + 1 && !atomic_compare_exchange_weak(&L->gens[g].top, &top, seq + 1))
		;
	atomic_fetch_add(&L->total, 1);
	return 0;
}

static int take(struct cslot *cs, const uint8_t *m, size_t len, uint32_t *last)
{
	uint32_t g, seq;
	int e = verify(m, len, &g, &seq);
	if (e) {
		lerr("bad message (kind %d), len %zu", e, len);
		return e;
	}
	if ((e = deliver(g, seq, last)))
		return e;
	atomic_fetch_sub(&cs->budget, 1);
	return 0;
}

static void idle(struct cslot *cs)
{
	atomic_store(&cs->phase, PH_IDLE);
	atomic_store(&cs->budget, 0);
}

static unsigned pick(unsigned mask, uint64_t *rnd)
{
	for (;;) {
		unsigned a = 1u << (t_rand(rnd) % 3);
		if (mask & a)
			return a;
	}
}

/*
 * One consumer call with the given API.  Returns how many messages it
 * delivered (0: nothing there within the timeout), -errno from the
 * library, or -(1000 + E_*) for a ledger violation.
 */
static int c_step(struct shmring *r, struct cslot *cs, unsigned api, int64_t to, uint32_t *last,
		  uint64_t *rnd)
{
	uint8_t buf[NB][MSG_MAX];
	int e;
	atomic_store(&cs->api, (int)api);
	if (api == A_RECV) {
		atomic_store(&cs->budget, 1);
		atomic_store(&cs->phase, PH_CALL);
		ssize_t n = shmring_recv(r, buf[0], MSG_MAX, to);
		if (n < 0) {
			idle(cs);
			return n == -ETIMEDOUT || n == -EAGAIN ? 0 : (int)n;
		}
		atomic_store(&cs->phase, PH_LOG);
		e = take(cs, buf[0], (size_t)n, last);
		idle(cs);
		return e ? -(1000 + e) : 1;
	}
	if (api == A_RECVB) {
		unsigned k = 1 + (unsigned)(t_rand(rnd) % NB);
		struct iovec v[NB];
		for (unsigned i = 0; i < k; i++)
			v[i] = (struct iovec){ buf[i], MSG_MAX };
		atomic_store(&cs->budget, k);
		atomic_store(&cs->phase, PH_CALL);
		int n = shmring_recv_batch(r, v, k, to);
		if (n < 0) {
			idle(cs);
			return n == -ETIMEDOUT || n == -EAGAIN ? 0 : n;
		}
		atomic_store(&cs->budget, (uint32_t)n);
		atomic_store(&cs->phase, PH_LOG);
		for (int i = 0; i < n; i++)
			if ((e = take(cs, buf[i], v[i].iov_len, last)))
				return -(1000 + e);
		idle(cs);
		return n;
	}
	/* acquire, check in place, release, then log */
	struct shmring_msg m;
	atomic_store(&cs->budget, 1);
	atomic_store(&cs->phase, PH_CALL);
	int rc = shmring_acquire(r, &m, to);
	if (rc < 0) {
		idle(cs);
		return rc == -ETIMEDOUT || rc == -EAGAIN ? 0 : rc;
	}
	uint32_t g, seq;
	if ((e = verify(m.data, m.len, &g, &seq))) {
		lerr("bad message in place (kind %d), len %zu", e, m.len);
		return -(1000 + e);
	}
	atomic_store(&cs->held, (uint64_t)g << 32 | seq);
	atomic_store(&cs->phase, PH_HELD);
	if (t_rand(rnd) % 16 == 0)
		sched_yield();          /* widen the window a kill can land in */
	atomic_store(&cs->phase, PH_RELEASING);
	if ((rc = shmring_release(r, &m)) < 0) {
		lerr("release: %s", shmring_strerror(rc));
		return rc;
	}
	atomic_store(&cs->phase, PH_LOG);
	e = deliver(g, seq, last);
	idle(cs);
	return e ? -(1000 + e) : 1;
}

/* ---- worker processes ------------------------------------------------------- */

struct wcfg {
	uint32_t id;                 /* generation (producer) or ledger slot (consumer) */
	unsigned apis;
	char crash[64];              /* SHMRING_CRASH_AT for this process, "" none */
	unsigned n;                  /* sweep_dier: slots to hold */
};

static void arm(const char *crash)
{
	if (crash[0])
		setenv("SHMRING_CRASH_AT", crash, 1);
	else
		unsetenv("SHMRING_CRASH_AT");
	crash_reset();
}

static int producer_main(void *arg)
{
	const struct wcfg *c = arg;
	arm(c->crash);
	uint32_t g = c->id;
	struct shmring *r = NULL;
	int rc = shmring_open(L->uri, SHMRING_PRODUCER, NULL, &r);
	if (rc) {
		lerr("producer %u: open: %s", g, shmring_strerror(rc));
		return 10;
	}
	atomic_store(&L->gens[g].ready, 1);
	uint64_t rnd = 0x9e3779b97f4a7c15ull * (g + 1);
	uint8_t m[NB][MSG_MAX];
	uint32_t seq = 0;
	while (!atomic_load(&L->stop_prod) && seq + NB < MAXSEQ) {
		unsigned api = pick(c->apis, &rnd);
		if (api == A_SEND) {
			size_t len = build(m[0], MSG_MAX, g, seq, &rnd);
			rc = shmring_send(r, m[0], len, OP_TIMEOUT);
			if (rc == 0)
				seq++;
		} else if (api == A_RESERVE) {
			struct shmring_msg z;
			rc = shmring_reserve(r, MSG_MAX, &z, OP_TIMEOUT);
			if (rc == 0) {
				z.len = build(z.data, MSG_MAX, g, seq, &rnd);   /* written in place */
				rc = shmring_commit(r, &z);
				if (rc == 0)
					seq++;
			}
		} else {
			unsigned n = 1 + (unsigned)(t_rand(&rnd) % NB);
			struct iovec v[NB];
			for (unsigned i = 0; i < n; i++)
				v[i] = (struct iovec){ m[i], build(m[i], MSG_MAX, g, seq + i, &rnd) };
			rc = shmring_send_batch(r, v, n, OP_TIMEOUT);
			if (rc > 0) {
				seq += (uint32_t)rc;
				rc = 0;
			}
		}
		if (rc == 0) {
			atomic_store(&L->gens[g].sent, seq);   /* after the call returned */
			continue;
		}
		/* -ECANCELED: skipped as stalled, never delivered: send it again */
		if (rc == -ETIMEDOUT || rc == -ECANCELED)
			continue;
		lerr("producer %u: api %u: %s", g, api, shmring_strerror(rc));
		return 11;
	}
	shmring_close(r);
	return 0;
}

static uint32_t *order_table(void)
{
	void *p = mmap(NULL, (size_t)L->maxgen * 4, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static int consumer_main(void *arg)
{
	const struct wcfg *c = arg;
	arm(c->crash);
	struct cslot *cs = &L->cs[c->id];
	uint32_t *last = order_table();
	if (!last)
		return 19;
	struct shmring *r = NULL;
	int rc = shmring_open(L->uri, SHMRING_CONSUMER, NULL, &r);
	if (rc) {
		lerr("consumer %u: open: %s", c->id, shmring_strerror(rc));
		return 20;
	}
	atomic_store(&cs->ready, 1);
	uint64_t rnd = 0x2545f4914f6cdd1dull * (c->id + 7);
	while (!atomic_load(&L->stop_cons)) {
		unsigned api = pick(c->apis, &rnd);
		rc = c_step(r, cs, api, OP_TIMEOUT, last, &rnd);
		if (rc <= -1000)
			return 30 + (-rc - 1000);
		if (rc < 0) {
			lerr("consumer %u: api %u: %s", c->id, api, shmring_strerror(rc));
			return 21;
		}
	}
	shmring_close(r);
	return 0;
}

/* Opens one more handle (producer, consumer, alternately) each time the
 * driver asks: the process that passes the control-plane points. */
static int opener_main(void *arg)
{
	const struct wcfg *c = arg;
	arm(c->crash);
	struct shmring *hs[64];
	unsigned nh = 0;
	uint64_t done = 0;
	while (!atomic_load(&L->stop_cons)) {
		if (atomic_load(&L->open_req) <= done || nh == 64) {
			usleep(100);
			continue;
		}
		int role = done % 2 ? SHMRING_CONSUMER : SHMRING_PRODUCER;
		int rc = shmring_open(L->uri, role, NULL, &hs[nh]);
		if (rc) {
			lerr("opener: open %llu: %s", (unsigned long long)done, shmring_strerror(rc));
			return 40;
		}
		nh++;
		atomic_store(&L->open_done, ++done);
	}
	while (nh)
		shmring_close(hs[--nh]);
	return 0;
}

/* Takes the control-plane lock directly, through a descriptor of its own,
 * reports what it got, and dies inside the section, so the next holder
 * finds `busy` set. */
static int locker_main(void *arg)
{
	(void)arg;
	arm("");
	struct shmring *r = NULL;
	char self[64];
	if (shmring_open(L->uri, 0, NULL, &r))
		return 50;
	snprintf(self, sizeof(self), "/proc/self/fd/%d", segh_of(r)->map->fd);
	int fd = open(self, O_RDWR | O_CLOEXEC);
	atomic_store(&L->locker_rc, fd < 0 ? -errno : ctl_lock(segh_of(r)->ctl, NULL, fd, segh_of(r)->map->fd, NULL));
	raise(SIGKILL);
	return 51;
}

/* What a dead holder left: `busy` set (1) and the lock byte free (2). */
static int ctl_left(struct shmring *mon)
{
	int st = atomic_load(&segh_of(mon)->ctl->busy) != 0;
	if (lock_held(segh_of(mon)->map->fd, CTL_LOCK_CTL, 1) == -1)
		st |= 2;
	return st;
}

/* A participant that dies holding a claim (reserve, never committed). */
static int claim_dier_main(void *arg)
{
	(void)arg;
	arm("");
	struct shmring *r = NULL;
	struct shmring_msg z;
	if (shmring_open(L->uri, SHMRING_PRODUCER, NULL, &r) || shmring_reserve(r, 10, &z, 0))
		return 60;
	raise(SIGKILL);
	return 61;
}

/* Dies holding n slots: n/2 acquired messages (of the OUTSIDER generation,
 * which nobody may ever get) and the rest claims, each through its own
 * handle, i.e. its own participant. */
static int sweep_dier_main(void *arg)
{
	const struct wcfg *c = arg;
	arm("");
	uint64_t rnd = 5;
	uint8_t m[MSG_MAX];
	for (unsigned i = 0; i < c->n; i++) {
		if (i % 2 == 0)
			continue;
		struct shmring *p = NULL, *q = NULL;
		struct shmring_msg a;
		size_t len = build(m, MSG_MAX, OUTSIDER, i, &rnd);
		if (shmring_open(L->uri, SHMRING_PRODUCER, NULL, &p) ||
		    shmring_send(p, m, len, 0) ||
		    shmring_open(L->uri, SHMRING_CONSUMER, NULL, &q) || shmring_acquire(q, &a, 0))
			return 62;
	}
	for (unsigned i = 0; i < c->n; i += 2) {
		struct shmring *p = NULL;
		struct shmring_msg z;
		if (shmring_open(L->uri, SHMRING_PRODUCER, NULL, &p) || shmring_reserve(p, 10, &z, 0))
			return 63;
	}
	raise(SIGKILL);
	return 64;
}

/* ---- the driver --------------------------------------------------------------- */

enum { R_PROD, R_CONS, R_OTHER };

struct worker {
	int role;
	pid_t pid;
	uint32_t id;
	unsigned apis;
};

struct run {
	struct shmring *mon;        /* the creator's handle: no role, stats only */
	struct worker w[8];
	unsigned nw;
	unsigned prod_kills, cons_kills;
	uint64_t allow_lost, drop_lo, drop_hi;
	uint64_t *held;             /* messages killed consumers held: never to come back */
	unsigned nheld;
	/* what the scenario itself left behind on purpose */
	uint64_t extra_holes, extra_drops;
};

struct verdict {
	uint64_t delivered, lost, first_lost;
	struct shmring_stats st;
};

static const char *made[16];
static int nmade;
static char made_buf[16][128];

static void cleanup(void)
{
	for (int i = 0; i < nmade; i++)
		(void)shmring_unlink(made[i]);
	nmade = 0;
}

TestSuite(torture, .fini = cleanup, .timeout = 900);

static const char *mk_uri(const char *tag)
{
	int i = nmade < 16 ? nmade++ : 15;
	snprintf(made_buf[i], sizeof(made_buf[0]), "%s", t_uri(tag));
	made[i] = made_buf[i];
	return made_buf[i];
}

static struct shmring *mk_ring(const char *uri)
{
	struct shmring_opts o = { .kind = SHMRING_MPMC, .capacity = RING_CAP, .max_msg = MSG_MAX,
				  .stall_ms = STALL_MS };
	return t_open_opts(uri, SHMRING_CREATE | SHMRING_EXCL, &o);
}

static void run_init(struct run *u, const char *uri, uint32_t maxgen, uint32_t maxcons)
{
	memset(u, 0, sizeof(*u));
	ledger_new(uri, maxgen, maxcons);
	u->mon = mk_ring(uri);
	u->held = calloc(maxcons, sizeof(uint64_t));
	cr_assert_not_null(u->held);
}

static void run_free(struct run *u)
{
	shmring_close(u->mon);
	shmring_unlink(L->uri);
	free(u->held);
	ledger_free();
}

static struct shmring_stats stats(struct run *u)
{
	struct shmring_stats st;
	cr_assert_eq(shmring_stats(u->mon, &st), 0);
	return st;
}

/* Start a worker of the given role in entry i (a new generation or ledger
 * slot each time). */
static void start(struct run *u, unsigned i, int role, unsigned apis, const char *crash)
{
	struct wcfg c = { .apis = apis };
	snprintf(c.crash, sizeof(c.crash), "%s", crash ? crash : "");
	if (role == R_PROD) {
		c.id = atomic_fetch_add(&L->ngen, 1);
		cr_assert_lt(c.id, L->maxgen, "out of generations");
	} else {
		c.id = atomic_fetch_add(&L->ncons, 1);
		cr_assert_lt(c.id, L->maxcons, "out of consumer slots");
	}
	u->w[i] = (struct worker){ role, t_spawn(role == R_PROD ? producer_main : consumer_main, &c),
				   c.id, apis };
	if (i >= u->nw)
		u->nw = i + 1;
}

static bool ready(const struct worker *w)
{
	return w->role == R_PROD ? atomic_load(&L->gens[w->id].ready)
				 : atomic_load(&L->cs[w->id].ready);
}

/* waitpid with a deadline: the status as t_wait gives it, or -1 if the
 * process was still running (it is then killed and reaped). */
static int wait_for(pid_t pid, uint64_t ms)
{
	uint64_t end = t_now_ns() + ms * 1000000ull;
	for (;;) {
		int st;
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid)
			return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
		if (t_now_ns() > end) {
			kill(pid, SIGKILL);
			t_wait(pid);
			return -1;
		}
		usleep(200);
	}
}

/* What a dead worker may have taken with it. */
static void died(struct run *u, const struct worker *w)
{
	if (w->role == R_PROD) {
		atomic_store(&L->gens[w->id].killed, 1);
		u->prod_kills++;
		return;
	}
	if (w->role != R_CONS)
		return;
	struct cslot *cs = &L->cs[w->id];
	int ph = atomic_load(&cs->phase), api = atomic_load(&cs->api);
	uint32_t b = atomic_load(&cs->budget);
	u->cons_kills++;
	switch (ph) {
	case PH_CALL:
		u->allow_lost += b;                  /* taken inside the call, not logged */
		if (api == A_ACQ)
			u->drop_hi++;                /* maybe acquired: dropped */
		break;
	case PH_HELD:
		u->allow_lost++;
		u->drop_lo++;
		u->drop_hi++;
		u->held[u->nheld++] = atomic_load(&cs->held);
		break;
	case PH_RELEASING:
		u->allow_lost++;
		u->drop_hi++;
		break;
	case PH_LOG:
		u->allow_lost += b;
		break;
	default:
		break;
	}
}

static void fail_status(const char *who, int st)
{
	cr_assert_fail("%s exited with status %d; ledger: %llu errors, first: %s", who, st,
		       (unsigned long long)atomic_load(&L->errors), L->err);
}

static void wait_ready(struct run *u, uint64_t ms)
{
	uint64_t end = t_now_ns() + ms * 1000000ull;
	for (unsigned i = 0; i < u->nw; i++)
		while (u->w[i].pid > 0 && (u->w[i].role == R_PROD || u->w[i].role == R_CONS) &&
		       !ready(&u->w[i])) {
			int st;
			if (waitpid(u->w[i].pid, &st, WNOHANG) == u->w[i].pid)
				fail_status("a worker starting up",
					    WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st));
			cr_assert_lt(t_now_ns(), end, "a worker did not attach within %llu ms",
				     (unsigned long long)ms);
			usleep(200);
		}
}

/* Deliveries beyond `from` within ms: the ring moves. */
static bool flows(uint64_t from, uint64_t ms)
{
	uint64_t end = t_now_ns() + ms * 1000000ull;
	while (atomic_load(&L->total) <= from) {
		if (t_now_ns() > end)
			return false;
		usleep(100);
	}
	return true;
}

/* flows(), watching the workers: one that exits meanwhile fails the test
 * with its status and the ledger's first error. */
static bool flows_watched(struct run *u, uint64_t from, uint64_t ms)
{
	uint64_t end = t_now_ns() + ms * 1000000ull;
	while (atomic_load(&L->total) <= from) {
		for (unsigned i = 0; i < u->nw; i++) {
			siginfo_t si = { 0 };
			/* WNOWAIT: a producer retiring at MAXSEQ is the caller's */
			if (u->w[i].pid <= 0 ||
			    waitid(P_PID, (id_t)u->w[i].pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 ||
			    si.si_pid != u->w[i].pid)
				continue;
			if (si.si_code == CLD_EXITED && si.si_status == 0 && u->w[i].role == R_PROD)
				continue;
			fail_status("a worker", si.si_code == CLD_EXITED ? si.si_status
									 : 128 + si.si_status);
		}
		if (t_now_ns() > end)
			return false;
		usleep(100);
	}
	return true;
}

/* Stop every worker, then attach a consumer (its attach sweeps what dead
 * participants still hold) and drain with timeout 0: after that sweep the
 * ring holds only READY and FREE slots, so -EAGAIN means empty. */
static void finish(struct run *u)
{
	atomic_store(&L->stop_prod, 1);
	for (unsigned i = 0; i < u->nw; i++)
		if (u->w[i].pid > 0 && u->w[i].role == R_PROD) {
			int st = wait_for(u->w[i].pid, 30000);
			if (st != 0)
				fail_status("a producer, told to stop,", st);
			u->w[i].pid = 0;
		}
	atomic_store(&L->stop_cons, 1);
	for (unsigned i = 0; i < u->nw; i++)
		if (u->w[i].pid > 0) {
			int st = wait_for(u->w[i].pid, 30000);
			if (st != 0)
				fail_status("a consumer, told to stop,", st);
			u->w[i].pid = 0;
		}
	uint32_t slot = atomic_fetch_add(&L->ncons, 1);
	cr_assert_lt(slot, L->maxcons);
	struct cslot *cs = &L->cs[slot];
	uint32_t *last = order_table();
	cr_assert_not_null(last);
	struct shmring *r = NULL;
	int rc = shmring_open(L->uri, SHMRING_CONSUMER, NULL, &r);
	cr_assert_eq(rc, 0, "drain: open: %s", shmring_strerror(rc));
	uint64_t rnd = 99;
	for (;;) {
		rc = c_step(r, cs, pick(A_ALL, &rnd), 0, last, &rnd);
		if (rc == 0)
			break;
		cr_assert_gt(rc, 0, "drain: %d; ledger: %s", rc, L->err);
	}
	shmring_close(r);
	munmap(last, (size_t)L->maxgen * 4);
}

/* The invariants, from the ledger and the ring's counters. */
static struct verdict check(struct run *u, const char *what)
{
	struct verdict v = { .first_lost = UINT64_MAX };
	cr_assert_eq(atomic_load(&L->errors), 0, "%s: %llu ledger errors, first: %s", what,
		     (unsigned long long)atomic_load(&L->errors), L->err);
	uint32_t ngen = atomic_load(&L->ngen);
	uint64_t bits = 0;
	for (uint32_t g = 0; g < ngen; g++) {
		uint32_t sent = atomic_load(&L->gens[g].sent), top = atomic_load(&L->gens[g].top);
		bool killed = atomic_load(&L->gens[g].killed);
		for (uint32_t s = 0; s < sent; s++)
			if (!delivered(g, s)) {
				if (v.lost++ == 0)
					v.first_lost = (uint64_t)g << 32 | s;
			}
		/* nothing delivered that was not sent: a live producer's
		 * unconfirmed messages do not exist; a killed one's are the
		 * rest of its last batch at most */
		cr_assert_leq(top, sent + (killed ? NB : 0),
			      "%s: gen %u: seq %u delivered, %u confirmed%s", what, g, top - 1, sent,
			      killed ? " (killed)" : "");
		/* a consumer killed inside deliver() may have set a bit and
		 * not yet moved top: look a batch further */
		uint32_t end = (top > sent ? top : sent) + 2 * NB;
		for (uint32_t s = 0; s < end && s < MAXSEQ; s++)
			bits += delivered(g, s);
	}
	v.delivered = atomic_load(&L->total);
	/* ... or not yet counted the delivery: one per consumer kill at most */
	cr_assert(bits >= v.delivered && bits <= v.delivered + u->cons_kills,
		  "%s: %llu bits set for %llu deliveries (%u consumers killed)", what,
		  (unsigned long long)bits, (unsigned long long)v.delivered, u->cons_kills);
	for (unsigned i = 0; i < u->nheld; i++)
		cr_assert(!delivered((uint32_t)(u->held[i] >> 32), (uint32_t)u->held[i]),
			  "%s: gen %u seq %u, held by a killed consumer, was delivered again", what,
			  (unsigned)(u->held[i] >> 32), (unsigned)u->held[i]);
	cr_assert_leq(v.lost, u->allow_lost,
		      "%s: %llu confirmed messages never delivered (first: gen %u seq %u), but "
		      "killed consumers can have taken %llu", what, (unsigned long long)v.lost,
		      (unsigned)(v.first_lost >> 32), (unsigned)v.first_lost,
		      (unsigned long long)u->allow_lost);
	v.st = stats(u);
	cr_assert_geq(v.st.msgs_dropped, u->drop_lo + u->extra_drops,
		      "%s: dropped %llu, but %llu killed consumers held a message (+%llu on purpose)",
		      what, (unsigned long long)v.st.msgs_dropped, (unsigned long long)u->drop_lo,
		      (unsigned long long)u->extra_drops);
	cr_assert_leq(v.st.msgs_dropped, u->drop_hi + u->extra_drops,
		      "%s: dropped %llu, at most %llu killed consumers can have held one (+%llu)",
		      what, (unsigned long long)v.st.msgs_dropped, (unsigned long long)u->drop_hi,
		      (unsigned long long)u->extra_drops);
	cr_assert_leq(v.st.msgs_dropped, v.lost + u->extra_drops,
		      "%s: more messages dropped (%llu) than lost (%llu)", what,
		      (unsigned long long)v.st.msgs_dropped, (unsigned long long)v.lost);
	/* a killed producer leaves its one claim: a range of a batch at most */
	cr_assert_leq(v.st.holes_skipped, (uint64_t)u->prod_kills * NB + u->extra_holes,
		      "%s: %llu holes, %u producers killed (+%llu on purpose)", what,
		      (unsigned long long)v.st.holes_skipped, u->prod_kills,
		      (unsigned long long)u->extra_holes);
	cr_assert_eq(v.st.msgs_redelivered, 0, "%s: MPMC drops, never redelivers", what);
	cr_assert_eq(v.st.producers + v.st.consumers, 0, "%s: live participants left: %u + %u",
		     what, v.st.producers, v.st.consumers);
	return v;
}

/* A fresh producer and consumer move 320 messages through every API:
 * in order, whole, and nothing else comes out. */
static void works_afterwards(const char *uri)
{
	struct shmring *p = t_open(uri, SHMRING_PRODUCER), *q = t_open(uri, SHMRING_CONSUMER);
	uint64_t rnd = 4242;
	uint8_t m[NB][MSG_MAX];
	uint32_t sent = 0, got = 0;
	for (int round = 0; round < 40; round++) {
		for (unsigned k = 0; k < 8;) {
			unsigned api = pick(A_ALL, &rnd);
			int rc;
			if (api == A_SEND) {
				rc = shmring_send(p, m[0], build(m[0], MSG_MAX, OUTSIDER - 1, sent, &rnd),
						  0);
				rc = rc == 0 ? 1 : rc;
			} else if (api == A_RESERVE) {
				struct shmring_msg z;
				cr_assert_eq(shmring_reserve(p, MSG_MAX, &z, 0), 0);
				z.len = build(z.data, MSG_MAX, OUTSIDER - 1, sent, &rnd);
				rc = shmring_commit(p, &z);
				rc = rc == 0 ? 1 : rc;
			} else {
				struct iovec v[2];
				for (unsigned i = 0; i < 2; i++)
					v[i] = (struct iovec){ m[i], build(m[i], MSG_MAX, OUTSIDER - 1,
									   sent + i, &rnd) };
				rc = shmring_send_batch(p, v, 2, 0);
			}
			cr_assert_gt(rc, 0, "afterwards: send: %s", shmring_strerror(rc));
			sent += (uint32_t)rc;
			k += (unsigned)rc;
		}
		while (got < sent) {
			uint8_t b[MSG_MAX];
			struct shmring_msg a;
			const uint8_t *at = b;
			size_t len;
			bool acq = t_rand(&rnd) & 1;
			if (acq) {
				cr_assert_eq(shmring_acquire(q, &a, 0), 0, "afterwards: acquire");
				at = a.data;
				len = a.len;
			} else {
				ssize_t n = shmring_recv(q, b, sizeof(b), 0);
				cr_assert_gt(n, 0, "afterwards: recv: %s", shmring_strerror((int)n));
				len = (size_t)n;
			}
			uint32_t g, l, s;
			uint64_t sum;
			cr_assert_geq(len, HDR);
			memcpy(&g, at, 4);
			memcpy(&l, at + 4, 4);
			memcpy(&s, at + 8, 4);
			memcpy(&sum, at + 16, 8);
			cr_assert(g == OUTSIDER - 1 && l == len && s == got && sum == msg_sum(at, len) &&
				  t_check(at + HDR, len - HDR, (uint64_t)g << 32 | s),
				  "afterwards: message %u: gen %x seq %u len %zu", got, g, s, len);
			if (acq)
				cr_assert_eq(shmring_release(q, &a), 0);
			got++;
		}
	}
	uint8_t b[MSG_MAX];
	cr_assert_eq(shmring_recv(q, b, sizeof(b), 0), -EAGAIN, "afterwards: something left");
	shmring_close(p);
	shmring_close(q);
}

/* ---- crash torture ------------------------------------------------------------ */

static unsigned env_u(const char *name, unsigned dflt)
{
	const char *e = getenv(name);
	return e && *e ? (unsigned)strtoul(e, NULL, 10) : dflt;
}

Test(torture, mpmc_kill_loop, .timeout = 3600)
{
	unsigned kills = env_u("SHMRING_MPMC_KILLS", 200);
	struct run u;
	/* a generation per producer kill, plus retirements at MAXSEQ */
	run_init(&u, mk_uri("tort"), kills + 1024, kills + 64);
	uint64_t t_start = t_now_ns(), rnd = 0xc0ffee;
	for (unsigned i = 0; i < 4; i++)
		start(&u, i, i < 2 ? R_PROD : R_CONS, A_ALL, NULL);
	wait_ready(&u, 10000);
	cr_assert(flows(0, 10000), "nothing flows at the start");
	unsigned done = 0, startup_kills = 0, retired = 0, late_starts = 0;
	uint64_t max_resume = 0, sum_resume = 0;
	const uint64_t bound = STALL_MS + 1000;
	while (done < kills) {
		usleep((unsigned)(t_rand(&rnd) % 20000));
		/* producers retire at MAXSEQ: replace them (not a kill) */
		for (unsigned i = 0; i < 4; i++) {
			int st;
			if (waitpid(u.w[i].pid, &st, WNOHANG) != u.w[i].pid)
				continue;
			if (u.w[i].role != R_PROD || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
				fail_status("a worker", WIFSIGNALED(st) ? 128 + WTERMSIG(st)
									: WEXITSTATUS(st));
			retired++;
			start(&u, i, R_PROD, A_ALL, NULL);
		}
		unsigned i = (unsigned)(t_rand(&rnd) % 4);
		uint64_t t_kill = t_now_ns();
		kill(u.w[i].pid, SIGKILL);
		int st = t_wait(u.w[i].pid);
		if (st == 0 && u.w[i].role == R_PROD) {
			retired++;                   /* it had just retired */
		} else {
			if (st != 128 + SIGKILL)
				fail_status("a worker", st);
			died(&u, &u.w[i]);
			done++;
		}
		uint64_t before = atomic_load(&L->total);
		/* half the time the replacement starts only once the survivors
		 * moved messages again: they must recover on the data path,
		 * without the sweep that the replacement's attach runs */
		bool late = t_rand(&rnd) & 1;
		u.w[i].pid = 0;
		if (late)
			late_starts++;
		else
			start(&u, i, u.w[i].role, A_ALL, NULL);
		if (!late && done < kills && t_rand(&rnd) % 8 == 0) {
			/* now and then, the replacement dies while it attaches */
			usleep((unsigned)(t_rand(&rnd) % 3000));
			t_kill = t_now_ns();
			kill(u.w[i].pid, SIGKILL);
			st = t_wait(u.w[i].pid);
			if (st != 128 + SIGKILL)
				fail_status("a starting worker", st);
			died(&u, &u.w[i]);
			done++;
			startup_kills++;
			before = atomic_load(&L->total);
			start(&u, i, u.w[i].role, A_ALL, NULL);
		}
		uint64_t spent = (t_now_ns() - t_kill) / 1000000;
		cr_assert(flows_watched(&u, before, spent < bound ? bound - spent : 0),
			  "kill %u: no delivery within %llu ms (stall timeout + 1 s)", done,
			  (unsigned long long)bound);
		uint64_t resume = (t_now_ns() - t_kill) / 1000;
		sum_resume += resume;
		if (resume > max_resume)
			max_resume = resume;
		if (late)
			start(&u, i, u.w[i].role, A_ALL, NULL);
		wait_ready(&u, 10000);
	}
	finish(&u);
	struct verdict v = check(&u, "torture");
	double secs = (double)(t_now_ns() - t_start) / 1e9;
	cr_log_info("mpmc torture: %u kills (%u producers, %u consumers, %u while attaching; "
		    "%u replacements started only after the flow resumed), "
		    "%u retirements, %u generations; %llu messages delivered in %.1f s; "
		    "lost %llu (allowed %llu), dropped %llu (bounds %llu..%llu), holes %llu, "
		    "stalls %llu, cancelled %llu, repairs %llu; flow resumed after %.2f ms on "
		    "average, %.2f ms at worst (bound %llu ms)",
		    done, u.prod_kills, u.cons_kills, startup_kills, late_starts, retired,
		    atomic_load(&L->ngen), (unsigned long long)v.delivered, secs,
		    (unsigned long long)v.lost, (unsigned long long)u.allow_lost,
		    (unsigned long long)v.st.msgs_dropped, (unsigned long long)u.drop_lo,
		    (unsigned long long)u.drop_hi, (unsigned long long)v.st.holes_skipped,
		    (unsigned long long)v.st.stalls_skipped,
		    (unsigned long long)v.st.commits_cancelled, (unsigned long long)v.st.repairs,
		    (double)sum_resume / 1000.0 / (done ? done : 1), (double)max_resume / 1000.0,
		    (unsigned long long)bound);
	works_afterwards(L->uri);
	run_free(&u);
}

/* ---- crash points ---------------------------------------------------------------- */

/*
 * n = 1..N for every point.  make torture runs N = 20 (SHMRING_CRASH_NMAX);
 * make check runs N = 5 to keep the suite's time sane: a scenario takes
 * ~30 ms.
 */
static unsigned nmax(void)
{
	return env_u("SHMRING_CRASH_NMAX", 5);
}

enum cls { K_PROD, K_CONS, K_JOIN, K_OWNERDEAD, K_REPAIR, K_RECOVER, K_SWEEP };

static void start_opener(struct run *u, unsigned i, const char *crash)
{
	struct wcfg c = { 0 };
	snprintf(c.crash, sizeof(c.crash), "%s", crash);
	u->w[i] = (struct worker){ R_OTHER, t_spawn(opener_main, &c), 0, 0 };
	if (i >= u->nw)
		u->nw = i + 1;
}

/* Ask the opener for handle number k; true once it has it, false if it
 * died (reaped, status checked by the caller through *st). */
static bool opener_open(struct worker *w, uint64_t k, int *st)
{
	atomic_store(&L->open_req, k);
	uint64_t end = t_now_ns() + 20000 * 1000000ull;
	while (atomic_load(&L->open_done) < k) {
		int s;
		if (waitpid(w->pid, &s, WNOHANG) == w->pid) {
			*st = WIFSIGNALED(s) ? 128 + WTERMSIG(s) : WEXITSTATUS(s);
			w->pid = 0;
			return false;
		}
		cr_assert_lt(t_now_ns(), end, "opener: no answer to request %llu",
			     (unsigned long long)k);
		usleep(100);
	}
	return true;
}

static void expect_killed(int st, const char *point, unsigned n)
{
	if (st == -1)
		cr_assert_fail("%s:%u: the process never reached the point (30 s)", point, n);
	if (st != 128 + SIGKILL)
		fail_status(point, st);
}

static struct verdict point_scenario(const char *point, enum cls k, unsigned n)
{
	char crash[64], what[80];
	snprintf(crash, sizeof(crash), "%s:%u", point, n);
	snprintf(what, sizeof(what), "%s:%u", point, n);
	struct run u;
	run_init(&u, mk_uri("pt"), 64, 64);
	unsigned victim_apis = A_ALL;
	uint32_t victim = 0;
	int st;
	uint64_t resume_from = UINT64_MAX;
	switch (k) {
	case K_PROD:
	case K_CONS:
	case K_JOIN:
		/* the victim among a live producer and consumer */
		start(&u, 0, R_PROD, A_ALL, NULL);
		start(&u, 1, R_CONS, A_ALL, NULL);
		wait_ready(&u, 10000);
		if (k == K_JOIN) {
			start_opener(&u, 2, crash);
			int os = 0;
			cr_assert(!opener_open(&u.w[2], n, &os), "%s: the opener survived", what);
			expect_killed(os, point, n);
		} else {
			if (!strcmp(point, "mpmc.mid_copy"))
				victim_apis = A_SEND;        /* only send copies in two halves */
			if (!strcmp(point, "mpmc.mid_read"))
				victim_apis = n % 2 ? A_RECV : A_RECVB;
			if (!strncmp(point, "mpmc.range_", 11))   /* only batches go in ranges */
				victim_apis = k == K_PROD ? A_SENDB : A_RECVB;
			start(&u, 2, k == K_PROD ? R_PROD : R_CONS, victim_apis, crash);
			victim = u.w[2].id;
			st = wait_for(u.w[2].pid, 30000);
			expect_killed(st, point, n);
			died(&u, &u.w[2]);
		}
		u.w[2].pid = 0;
		resume_from = atomic_load(&L->total);
		break;
	case K_OWNERDEAD:
		/* n processes die holding the control lock; the opener meets each */
	case K_REPAIR:
		/* n participants die holding a claim; the opener repairs each */
		start_opener(&u, 0, crash);
		for (unsigned i = 1; i <= n; i++) {
			pid_t d = t_spawn(k == K_OWNERDEAD ? locker_main : claim_dier_main, NULL);
			cr_assert_eq(t_wait(d), 128 + SIGKILL);
			if (k == K_OWNERDEAD)
				cr_assert_eq(atomic_load(&L->locker_rc), 0);
			int os = 0;
			bool alive = opener_open(&u.w[0], i, &os);
			cr_assert_eq(alive, i < n, "%s: opener at %u: %s", what, i,
				     alive ? "survived" : "died early");
			if (!alive)
				expect_killed(os, point, n);
		}
		if (k == K_REPAIR)
			u.extra_holes = n;
		break;
	case K_SWEEP: {
		/* one process dies holding n slots; the opener's sweep meets each */
		struct wcfg c = { .n = n };
		pid_t d = t_spawn(sweep_dier_main, &c);
		cr_assert_eq(t_wait(d), 128 + SIGKILL, "the sweep's dier");
		start_opener(&u, 0, crash);
		int os = 0;
		cr_assert(!opener_open(&u.w[0], 1, &os), "%s: the opener survived", what);
		expect_killed(os, point, n);
		u.extra_holes = (n + 1) / 2;
		u.extra_drops = n / 2;
		break;
	}
	case K_RECOVER:
		/* the victim is the only consumer; producers die after a claim,
		 * leaving holes it must recover on the data path (a later
		 * attach would sweep them instead, so one at a time) */
		start(&u, 0, R_CONS, A_RECV | A_ACQ, crash);
		wait_ready(&u, 10000);
		for (unsigned i = 1; i <= n; i++) {
			char hole[64];
			snprintf(hole, sizeof(hole), "mpmc.claimed:%u", 1 + i % 3);
			/* a batch's claim is a range: a hole of up to NB tickets */
			uint64_t h0 = stats(&u).holes_skipped;
			start(&u, 1, R_PROD, A_ALL, hole);
			st = wait_for(u.w[1].pid, 30000);
			expect_killed(st, "mpmc.claimed", 1 + i % 3);
			died(&u, &u.w[1]);
			u.w[1].pid = 0;
			uint64_t end = t_now_ns() + 20000 * 1000000ull;
			bool dead = false;
			while (stats(&u).holes_skipped <= h0) {
				int s;
				if (waitpid(u.w[0].pid, &s, WNOHANG) == u.w[0].pid) {
					expect_killed(WIFSIGNALED(s) ? 128 + WTERMSIG(s) : WEXITSTATUS(s),
						      point, n);
					dead = true;
					break;
				}
				cr_assert_lt(t_now_ns(), end, "%s: hole %u not recovered", what, i);
				usleep(200);
			}
			cr_assert_eq(dead, i == n, "%s: the consumer %s at hole %u", what,
				     dead ? "died" : "survived", i);
		}
		died(&u, &u.w[0]);
		u.w[0].pid = 0;
		break;
	}
	/* replacements: a producer and a consumer move messages again */
	if (k == K_PROD || k == K_CONS)
		start(&u, 2, k == K_PROD ? R_PROD : R_CONS, A_ALL, NULL);
	else if (k == K_JOIN)
		start(&u, 2, R_CONS, A_ALL, NULL);
	else {
		start(&u, 0, R_PROD, A_ALL, NULL);
		start(&u, 1, R_CONS, A_ALL, NULL);
	}
	if (resume_from != UINT64_MAX)
		cr_assert(flows_watched(&u, resume_from, STALL_MS + 1000),
			  "%s: no delivery within the stall timeout + 1 s of the death", what);
	wait_ready(&u, 10000);
	uint64_t base = atomic_load(&L->total);
	cr_assert(flows_watched(&u, base + 300, 20000), "%s: fewer than 300 messages within 20 s",
		  what);
	finish(&u);
	struct verdict v = check(&u, what);

	/* what exactly this death must have cost */
	const struct shmring_stats *s = &v.st;
	if (k == K_PROD) {
		cr_assert_eq(v.lost, 0, "%s: a producer's death lost %llu confirmed messages", what,
			     (unsigned long long)v.lost);
		cr_assert_eq(s->msgs_dropped, 0, "%s", what);
		if (!strcmp(point, "mpmc.committed")) {
			cr_assert_eq(s->holes_skipped, 0, "%s: a committed message left a hole", what);
			uint32_t sent = atomic_load(&L->gens[victim].sent);
			cr_assert(delivered(victim, sent),
				  "%s: committed (unconfirmed) seq %u not delivered", what, sent);
		} else {
			/* a dead holder is tested for death before its stall
			 * clock can run out (api/mpmc.c, unblock): a hole, not
			 * a stall */
			/* a hole per ticket of its claim: one, or a batch's
			 * range (at least two where the point is in one) */
			uint64_t lo = strncmp(point, "mpmc.range_", 11) ? 1 : 2;
			cr_assert(s->holes_skipped >= lo && s->holes_skipped <= NB,
				  "%s: %llu holes for one dead claim (stalls %llu)", what,
				  (unsigned long long)s->holes_skipped,
				  (unsigned long long)s->stalls_skipped);
		}
		cr_assert_eq(s->repairs, 0, "%s", what);
	} else if (k == K_CONS) {
		cr_assert_eq(s->holes_skipped, 0, "%s", what);
		cr_assert_eq(s->repairs, 0, "%s", what);
		if (!strcmp(point, "mpmc.taken")) {
			cr_assert_eq(s->msgs_dropped, 1, "%s: the acquired message is dropped", what);
			cr_assert_eq(v.lost, 1, "%s", what);
		} else if (!strncmp(point, "mpmc.range_", 11)) {
			/* a batch's range, copied out, then taken: gone with
			 * the dead, as a recv's message after its CAS; never
			 * dropped, never delivered again */
			cr_assert_eq(s->msgs_dropped, 0, "%s", what);
			cr_assert(v.lost >= 2 && v.lost <= NB, "%s: lost %llu", what,
				  (unsigned long long)v.lost);
		} else if (!strcmp(point, "mpmc.released")) {
			cr_assert_eq(s->msgs_dropped, 0, "%s: a released message is not dropped", what);
			cr_assert_eq(v.lost, 1, "%s: released, then killed before logging", what);
		} else {
			/* mid_read: copied, not yet taken; recv loses nothing, a
			 * batch only the messages it took before this one */
			cr_assert_eq(s->msgs_dropped, 0, "%s", what);
			cr_assert_leq(v.lost, n % 2 ? 0 : NB - 1, "%s: lost %llu", what,
				      (unsigned long long)v.lost);
		}
	} else if (k == K_JOIN) {
		cr_assert_eq(s->repairs, 1, "%s: repairs %llu", what, (unsigned long long)s->repairs);
		cr_assert_eq(v.lost + s->holes_skipped + s->msgs_dropped, 0, "%s", what);
	} else if (k == K_OWNERDEAD) {
		cr_assert_eq(s->repairs, n, "%s: repairs %llu", what, (unsigned long long)s->repairs);
	} else if (k == K_REPAIR) {
		cr_assert_eq(s->repairs, 1, "%s: repairs %llu", what, (unsigned long long)s->repairs);
		cr_assert_eq(s->holes_skipped, n, "%s: holes %llu", what,
			     (unsigned long long)s->holes_skipped);
	} else if (k == K_SWEEP) {
		cr_assert_eq(s->repairs, 1, "%s: repairs %llu", what, (unsigned long long)s->repairs);
		cr_assert_eq(s->holes_skipped, (n + 1) / 2, "%s: holes %llu", what,
			     (unsigned long long)s->holes_skipped);
		cr_assert_eq(s->msgs_dropped, n / 2, "%s: dropped %llu", what,
			     (unsigned long long)s->msgs_dropped);
	} else if (k == K_RECOVER) {
		cr_assert(s->holes_skipped >= n && s->holes_skipped <= (uint64_t)n * NB,
			  "%s: holes %llu", what, (unsigned long long)s->holes_skipped);
		cr_assert_eq(v.lost + s->msgs_dropped + s->repairs, 0, "%s", what);
	}
	if (k == K_OWNERDEAD || k == K_REPAIR || k == K_SWEEP)
		cr_assert_eq(v.lost, 0, "%s: lost %llu", what, (unsigned long long)v.lost);
	works_afterwards(L->uri);
	run_free(&u);
	return v;
}

static void point_loop(const char *point, enum cls k)
{
	unsigned N = nmax();
	uint64_t t0 = t_now_ns(), msgs = 0, lost = 0, dropped = 0, holes = 0, repairs = 0;
	uint64_t stalls = 0;
	for (unsigned n = 1; n <= N; n++) {
		struct verdict v = point_scenario(point, k, n);
		msgs += v.delivered;
		lost += v.lost;
		dropped += v.st.msgs_dropped;
		holes += v.st.holes_skipped;
		repairs += v.st.repairs;
		stalls += v.st.stalls_skipped;
	}
	cr_log_info("%s: n = 1..%u passed in %.1f s; over all n: %llu messages delivered, "
		    "lost %llu, dropped %llu, holes %llu, repairs %llu, stalls %llu", point, N,
		    (double)(t_now_ns() - t0) / 1e9, (unsigned long long)msgs,
		    (unsigned long long)lost, (unsigned long long)dropped, (unsigned long long)holes,
		    (unsigned long long)repairs, (unsigned long long)stalls);
}

Test(torture, point_mpmc_claimed) { point_loop("mpmc.claimed", K_PROD); }
Test(torture, point_mpmc_mid_copy) { point_loop("mpmc.mid_copy", K_PROD); }
Test(torture, point_mpmc_before_commit) { point_loop("mpmc.before_commit", K_PROD); }
Test(torture, point_mpmc_committed) { point_loop("mpmc.committed", K_PROD); }
Test(torture, point_mpmc_taken) { point_loop("mpmc.taken", K_CONS); }
Test(torture, point_mpmc_mid_read) { point_loop("mpmc.mid_read", K_CONS); }
Test(torture, point_mpmc_released) { point_loop("mpmc.released", K_CONS); }
Test(torture, point_mpmc_range_copy) { point_loop("mpmc.range_copy", K_PROD); }
Test(torture, point_mpmc_range_marked) { point_loop("mpmc.range_marked", K_PROD); }
Test(torture, point_mpmc_range_taken) { point_loop("mpmc.range_taken", K_CONS); }
Test(torture, point_mpmc_range_freeing) { point_loop("mpmc.range_freeing", K_CONS); }
Test(torture, point_mpmc_recover) { point_loop("mpmc.recover", K_RECOVER); }
Test(torture, point_mpmc_sweep) { point_loop("mpmc.sweep", K_SWEEP); }
Test(torture, point_ctl_join) { point_loop("ctl.join", K_JOIN); }
Test(torture, point_ctl_repair) { point_loop("ctl.repair", K_REPAIR); }
Test(torture, point_ctl_ownerdead) { point_loop("ctl.ownerdead", K_OWNERDEAD); }

/* ---- a ticket lost inside a batch receive ----------------------------------- */

/* What a consumer of the test below received, in memory the test shares. */
struct lost_got {
	_Atomic unsigned n;
	uint64_t v[16];
};

struct lost_arg {
	char uri[128];
	char crash[64];
	struct lost_got *got;
};

static int lost_consumer(void *arg)
{
	const struct lost_arg *a = arg;
	arm(a->crash);
	struct shmring *r = NULL;
	if (shmring_open(a->uri, SHMRING_CONSUMER, NULL, &r))
		return 80;
	uint64_t buf[8];
	struct iovec v[8];
	for (int i = 0; i < 8; i++)
		v[i] = (struct iovec){ &buf[i], sizeof(buf[i]) };
	int n = shmring_recv_batch(r, v, 8, 10000 * MS);
	if (n < 0 || n > 8)
		return 81;
	for (int i = 0; i < n; i++)
		a->got->v[i] = buf[i];
	atomic_store(&a->got->n, (unsigned)n);
	shmring_close(r);
	return 0;
}

/* Wait for pid to stop (true) or exit (false, *code its status). */
static bool stopped_or_exited(pid_t pid, int *code)
{
	int st;
	while (waitpid(pid, &st, WUNTRACED) < 0)
		cr_assert_eq(errno, EINTR);
	if (WIFSTOPPED(st))
		return true;
	*code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return false;
}

/*
 * A batch receive that loses a ticket to another consumer's range must
 * not go on at the next ticket: that one still reads READY while the
 * other consumer's range covers it.  Consumer A takes 0..1 as a range,
 * then finds 2 READY and stops before its take (mpmc.mid_read, 2nd
 * pass); B takes 2..4 as a range and stops before freeing it; A goes on,
 * loses ticket 2 and must end its batch with 0..1, not take 3..4 too.
 */
Test(torture, a_batch_that_loses_a_ticket_skips_the_winners_range, .timeout = 60)
{
	struct lost_got *got = t_shared(2 * sizeof(*got));
	struct lost_arg a = { .got = &got[0] }, b = { .got = &got[1] };
	snprintf(a.uri, sizeof(a.uri), "%s", t_ring_uri("lostticket"));
	snprintf(b.uri, sizeof(b.uri), "%s", a.uri);
	snprintf(a.crash, sizeof(a.crash), "mpmc.mid_read:1:stop");
	snprintf(b.crash, sizeof(b.crash), "mpmc.range_taken:1:stop");
	struct shmring_opts o = { .kind = SHMRING_MPMC, .capacity = RING_CAP, .max_msg = MSG_MAX,
				  .stall_ms = 60000 };
	struct shmring *p = NULL;
	cr_assert_eq(shmring_open(a.uri, SHMRING_CREATE | SHMRING_PRODUCER, &o, &p), 0);
	for (uint64_t s = 0; s < 2; s++)
		cr_assert_eq(shmring_send(p, &s, sizeof(s), 0), 0);
	int code = -1;
	pid_t pa = t_spawn(lost_consumer, &a);
	cr_assert(stopped_or_exited(pa, &code), "A stops before taking 0..1");
	for (uint64_t s = 2; s < 5; s++)
		cr_assert_eq(shmring_send(p, &s, sizeof(s), 0), 0);
	cr_assert_eq(kill(pa, SIGCONT), 0);
	cr_assert(stopped_or_exited(pa, &code), "A stops before taking 2..4");
	pid_t pb = t_spawn(lost_consumer, &b);
	cr_assert(stopped_or_exited(pb, &code), "B stops holding 2..4");
	/* A loses ticket 2 to B; whatever it tries next, it is let go on */
	do
		cr_assert_eq(kill(pa, SIGCONT), 0);
	while (stopped_or_exited(pa, &code));
	cr_assert_eq(code, 0);
	cr_assert_eq(kill(pb, SIGCONT), 0);
	cr_assert_eq(t_wait(pb), 0);
	cr_assert_eq(atomic_load(&got[0].n), 2, "A received %u", atomic_load(&got[0].n));
	cr_assert_eq(atomic_load(&got[1].n), 3, "B received %u", atomic_load(&got[1].n));
	for (unsigned i = 0; i < 2; i++)
		cr_assert_eq(got[0].v[i], i);
	for (unsigned i = 0; i < 3; i++)
		cr_assert_eq(got[1].v[i], 2 + i);
	struct shmring_stats st = t_stats(p);
	cr_assert_eq(st.msgs_recv, 5);
	shmring_close(p);
	t_unshared(got, 2 * sizeof(*got));
}

/* create.before_publish: the n-th of n creations dies before the version
 * is published.  The earlier rings work; opening the half-made one gives
 * -EPROTO (its creator's lock died with it: no wait), CREATE|EXCL -EEXIST;
 * shmring_unlink refuses it as documented, rm(1) removes it, and the name
 * can be created again. */
struct creator_arg {
	char uris[32][128];
	unsigned n;
};

static int creator_main(void *arg)
{
	const struct creator_arg *a = arg;
	char crash[64];
	snprintf(crash, sizeof(crash), "create.before_publish:%u", a->n);
	arm(crash);
	for (unsigned i = 0; i < a->n; i++) {
		struct shmring_opts o = { .kind = SHMRING_MPMC, .capacity = RING_CAP,
					  .max_msg = MSG_MAX, .stall_ms = STALL_MS };
		struct shmring *r = NULL;
		if (shmring_open(a->uris[i], SHMRING_CREATE | SHMRING_EXCL, &o, &r))
			return 70;
		shmring_close(r);
	}
	return 71;
}

static void send_recv_one(const char *uri, const char *what)
{
	struct shmring *p = t_open(uri, SHMRING_PRODUCER | SHMRING_CONSUMER);
	char b[8];
	cr_assert_eq(shmring_send(p, "ping", 4, 0), 0, "%s", what);
	cr_assert_eq(shmring_recv(p, b, sizeof(b), 0), 4, "%s", what);
	cr_assert_eq(memcmp(b, "ping", 4), 0);
	shmring_close(p);
}

Test(torture, point_create_before_publish)
{
	unsigned N = nmax();
	struct creator_arg *a = calloc(1, sizeof(*a));
	cr_assert_not_null(a);
	cr_assert_leq(N, 32);
	uint64_t worst = 0;
	int open_rc = 0, excl_rc = 0, create_rc = 0;
	for (unsigned n = 1; n <= N; n++) {
		a->n = n;
		for (unsigned i = 0; i < n; i++)
			snprintf(a->uris[i], sizeof(a->uris[i]), "%s", t_uri("pub"));
		pid_t c = t_spawn(creator_main, a);
		cr_assert_eq(t_wait(c), 128 + SIGKILL, "create.before_publish:%u: creator", n);
		for (unsigned i = 0; i + 1 < n; i++) {
			send_recv_one(a->uris[i], "an earlier ring");
			cr_assert_eq(shmring_unlink(a->uris[i]), 0);
		}
		const char *uri = a->uris[n - 1];
		struct shmring *r = NULL;
		uint64_t t0 = t_now_ns();
		open_rc = shmring_open(uri, SHMRING_PRODUCER, NULL, &r);
		uint64_t took = t_now_ns() - t0;
		if (took > worst)
			worst = took;
		cr_assert_eq(open_rc, -EPROTO, "open of a half-made ring: %s",
			     shmring_strerror(open_rc));
		cr_assert_null(r);
		/* "never hang": generous, the wait is SEG_PUBLISH_WAIT_NS (1 s) */
		cr_assert_lt(took, 10000 * 1000000ull, "open took %llu ms",
			     (unsigned long long)(took / 1000000));
		struct shmring_opts o = { .kind = SHMRING_MPMC, .capacity = RING_CAP,
					  .max_msg = MSG_MAX, .stall_ms = STALL_MS };
		excl_rc = shmring_open(uri, SHMRING_CREATE | SHMRING_EXCL, &o, &r);
		cr_assert_eq(excl_rc, -EEXIST, "%s", shmring_strerror(excl_rc));
		create_rc = shmring_open(uri, SHMRING_CREATE, &o, &r);
		cr_assert_eq(create_rc, -EPROTO, "create without EXCL over a half-made ring: %s",
			     shmring_strerror(create_rc));
		/* shmring_unlink(3): "rings whose creator died before finishing
		 * are refused the same way [-EPROTO]; remove such a file with
		 * rm(1)" (or shmctl-tool rm): the API never deletes a file it
		 * cannot read as a ring. */
		int rc = shmring_unlink(uri);
		cr_assert_eq(rc, -EPROTO, "shmring_unlink of a half-made ring: %s",
			     shmring_strerror(rc));
		char path[160];
		snprintf(path, sizeof(path), "/dev/shm/%s", uri + 4);
		cr_assert_eq(unlink(path), 0, "rm %s", path);
		cr_assert_eq(shmring_open(uri, SHMRING_CREATE | SHMRING_EXCL, &o, &r), 0,
			     "create again after unlink");
		shmring_close(r);
		send_recv_one(uri, "the recreated ring");
		cr_assert_eq(shmring_unlink(uri), 0);
	}
	cr_log_info("create.before_publish: n = 1..%u; open of the half-made ring: %s after "
		    "%.0f ms at worst; CREATE|EXCL: %s; rm and re-create work",
		    N, shmring_strerror(open_rc), (double)worst / 1e6, shmring_strerror(excl_rc));
	free(a);
}

/* ---- control lock ----------------------------------------------------------------- */

/* A process dies holding the control-plane lock, taken directly: the data
 * path does not need it; the kernel frees the byte and `busy` tells the
 * next holder, and an open repairs, counts it, and the ring works. */
Test(torture, control_lock_holder_killed)
{
	struct run u;
	run_init(&u, mk_uri("rob"), 8, 8);
	struct shmring *p = t_open(L->uri, SHMRING_PRODUCER), *q = t_open(L->uri, SHMRING_CONSUMER);
	for (int round = 1; round <= 2; round++) {
		pid_t l = t_spawn(locker_main, NULL);
		cr_assert_eq(t_wait(l), 128 + SIGKILL);
		cr_assert_eq(atomic_load(&L->locker_rc), 0);
		/* the data path goes on while the holder is dead */
		for (int i = 0; i < 100; i++) {
			char b[8];
			cr_assert_eq(shmring_send(p, &i, sizeof(i), 0), 0);
			cr_assert_eq(shmring_recv(q, b, sizeof(b), 0), (ssize_t)sizeof(i));
			cr_assert_eq(memcmp(b, &i, sizeof(i)), 0);
		}
		cr_assert_eq(ctl_left(u.mon), 3, "busy set, byte free: %d", ctl_left(u.mon));
		cr_assert_eq(stats(&u).repairs, (uint64_t)round - 1);
		struct shmring *c2 = NULL;
		int rc = shmring_open(L->uri, SHMRING_CONSUMER, NULL, &c2);
		cr_assert_eq(rc, 0, "open after the holder died: %s", shmring_strerror(rc));
		struct shmring_stats st = stats(&u);
		cr_assert_eq(st.repairs, (uint64_t)round, "repairs %llu", (unsigned long long)st.repairs);
		cr_assert_eq(st.consumers, 2);
		cr_assert_eq(ctl_left(u.mon), 2, "repaired: busy clear, byte free");
		shmring_close(c2);
	}
	shmring_close(p);
	shmring_close(q);
	works_afterwards(L->uri);
	run_free(&u);
}

/* The same through the library's own lock site: a consumer killed in
 * ctl_join (control lock held, liveness lock taken, slot half filled in)
 * while a producer and a consumer stream. */
static int joiner_main(void *arg)
{
	(void)arg;
	arm("ctl.join:1");
	struct shmring *r = NULL;
	if (shmring_open(L->uri, SHMRING_CONSUMER, NULL, &r))
		return 81;
	return 80;            /* the crash point was not reached */
}

Test(torture, control_lock_killed_in_join)
{
	struct run u;
	run_init(&u, mk_uri("robj"), 16, 16);
	start(&u, 0, R_PROD, A_ALL, NULL);
	start(&u, 1, R_CONS, A_ALL, NULL);
	wait_ready(&u, 10000);
	pid_t j = t_spawn(joiner_main, NULL);
	cr_assert_eq(t_wait(j), 128 + SIGKILL, "the joiner died at ctl.join");
	uint64_t from = atomic_load(&L->total);
	cr_assert(flows_watched(&u, from + 100, 10000), "traffic stopped while the lock's holder is dead");
	cr_assert_eq(stats(&u).repairs, 0);
	struct shmring *c2 = t_open(L->uri, SHMRING_CONSUMER);
	struct shmring_stats st = stats(&u);
	cr_assert_eq(st.repairs, 1, "repairs %llu", (unsigned long long)st.repairs);
	cr_assert_eq(st.consumers, 2, "the half-joined slot is not a live consumer");
	shmring_close(c2);
	finish(&u);
	check(&u, "control_lock_killed_in_join");
	works_afterwards(L->uri);
	run_free(&u);
}
