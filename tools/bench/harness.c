/* SPDX-License-Identifier: MIT */
/*
 * shmring-bench harness: one rep of a case forks P producer and C consumer
 * processes (1x1: A and B), pinned -- producers to one CPU, consumers to
 * the other -- that attach to channels the parent made, meet at a barrier
 * in a MAP_SHARED page, and report into it.
 *
 *  stream      an untimed warm-up stream (faults pages in, warms caches,
 *              and sizes the timed stream to the time budget on the first
 *              rep; later reps are sized from the rep before), a barrier,
 *              then the timed stream.  Each consumer times from its first
 *              message to its last; the rate of the rep is the messages
 *              after the earliest first one over the span from the earliest
 *              first to the latest last.  One consumer knows the count; two
 *              stop when every producer is done and the channel is empty.
 *              user+sys CPU time (getrusage) and, when the kernel lets us,
 *              system calls (perf tracepoint raw_syscalls:sys_enter) of
 *              every process are taken around the timed stream.
 *  round trip  (1x1 only) A sends on channel 0, B answers on channel 1; A
 *              times each round trip with CLOCK_MONOTONIC after an untimed
 *              warm-up, into a log-bucketed histogram.
 *
 * Conservation: every producer reports how many it sent, every consumer
 * how many and what sum of sequence numbers it received from each
 * producer; the parent checks that they agree (exactly once), on top of
 * the per-message order checks of check_msg().
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

struct config cfg;
int g_cpu[2] = { -1, -1 };
unsigned g_ncpu_allowed;
bool g_yield_in_spins;
long g_mq_msg_max = 10, g_mq_msgsize_max = 8192;

static bool g_child;                    /* set in forked children: they _exit */
static pid_t g_kids[MAX_PROCS];         /* children of the running rep, 0 when reaped */
static atomic_int g_signal;             /* SIGINT/SIGTERM seen by the parent */
static const struct transport *g_cur;   /* the running rep's transport ... */
static struct chan g_chans[MAX_CHANS];  /* ... and its channels, for cleanup */
static unsigned g_nchans;
static unsigned g_case_no;
static long g_sys_enter_id = -1;        /* tracepoint id, -1: not counted */
static const struct transport *g_all[MAX_TRANSPORTS];
static unsigned g_n_all;
static int g_peer_log = -1;             /* --peer-log, open for appending */

/* ---------------------------------------------------------------------- */
/* errors                                                                   */

void cleanup_parent(void)
{
	for (int i = 0; i < MAX_PROCS; i++) {
		if (g_kids[i] > 0) {
			/* a child may spin forever on a peer that is gone */
			if (kill(g_kids[i], SIGKILL) == 0)
				(void)waitpid(g_kids[i], NULL, 0);
			g_kids[i] = 0;
		}
	}
	if (g_cur) {
		const struct transport *t = g_cur;
		g_cur = NULL;           /* a failure in destroy must not loop */
		for (unsigned i = 0; i < g_nchans; i++)
			t->destroy(&g_chans[i], NULL);
		g_nchans = 0;
	}
	for (unsigned i = 0; i < g_n_all; i++) {
		if (g_all[i] && g_all[i]->cleanup) {
			void (*c)(void) = g_all[i]->cleanup;
			g_all[i] = NULL;
			c();
		}
	}
	g_n_all = 0;
}

static noreturn void vfail(const char *fmt, va_list ap)
{
	char msg[1024];
	int n = snprintf(msg, sizeof(msg), "shmring-bench: ");

	fflush(stdout);
	/* one write: a child killed while it reports leaves no half line */
	n += vsnprintf(msg + n, sizeof(msg) - (size_t)n - 1, fmt, ap);
	if (n > (int)sizeof(msg) - 2)
		n = (int)sizeof(msg) - 2;
	msg[n++] = '\n';
	if (write(STDERR_FILENO, msg, (size_t)n) < 0) {
		/* nowhere left to report it */
	}
	if (g_child)
		_exit(1);
	cleanup_parent();
	exit(1);
}

void fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(fmt, ap);
}

void fail_errno(const char *what)
{
	fail("%s: %s", what, strerror(errno));
}

void fail_rc(const char *what, long rc)
{
	fail("%s: %s", what, shmring_strerror((int)rc));
}

void usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("shmring-bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (try --help)\n", stderr);
	exit(2);
}

void check_failed(const struct end *e, const unsigned char *p, size_t len)
{
	if (len != e->size)
		fail("%s: length mismatch: expected %zu bytes, received %zu", e->t->name, e->size, len);
	uint64_t w = load64(p), tail = load64(p + e->size - 8);
	unsigned pid = (unsigned)(w >> SEQ_BITS);
	if (w != tail)
		fail("%s %zu B: torn message: head word %#" PRIx64 ", tail word %#" PRIx64,
		     e->t->name, e->size, w, tail);
	if (pid >= e->nprod)
		fail("%s %zu B: message from producer %u, there are %u", e->t->name, e->size,
		     pid, e->nprod);
	fail("%s %zu B: sequence mismatch from producer %u: expected %s%" PRIu64 ", got %" PRIu64,
	     e->t->name, e->size, pid, e->exact ? "" : "at least ", e->next[pid], w & SEQ_MASK);
}

/* ---------------------------------------------------------------------- */
/* helpers for transports                                                   */

void *map_shared(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		fail_errno("mmap");
	return p;
}

void shmseg_create(struct chan *ch, size_t len)
{
	int fd, rc;

	snprintf(ch->name, sizeof(ch->name), "/shmring-bench-%ld-%u-%p",
		 (long)getpid(), g_case_no, (void *)ch);
	fd = shm_open(ch->name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		ch->name[0] = '\0';     /* not ours */
		fail_errno("shm_open");
	}
	/* posix_fallocate: a full /dev/shm fails here, not with SIGBUS later */
	rc = posix_fallocate(fd, 0, (off_t)len);
	if (rc != 0) {
		close(fd);
		fail("posix_fallocate %s (%zu bytes): %s", ch->name, len, strerror(rc));
	}
	ch->mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
	if (ch->mem == MAP_FAILED) {
		ch->mem = NULL;
		close(fd);
		fail_errno("mmap (shm segment)");
	}
	ch->len = len;
	close_fd(fd);
}

void *shmseg_attach(const struct chan *ch)
{
	int fd = shm_open(ch->name, O_RDWR | O_CLOEXEC, 0);
	void *p;

	if (fd < 0)
		fail_errno("shm_open (attach)");
	p = mmap(NULL, ch->len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
	if (p == MAP_FAILED)
		fail_errno("mmap (attach)");
	close_fd(fd);
	return p;
}

void shmseg_detach(void *p, const struct chan *ch)
{
	if (p && munmap(p, ch->len) != 0)
		fail_errno("munmap");
}

void shmseg_destroy(struct chan *ch)
{
	if (ch->name[0] && shm_unlink(ch->name) != 0 && errno != ENOENT)
		fprintf(stderr, "shmring-bench: shm_unlink %s: %s\n", ch->name, strerror(errno));
	ch->name[0] = '\0';
	if (ch->mem && munmap(ch->mem, ch->len) != 0)
		fprintf(stderr, "shmring-bench: munmap: %s\n", strerror(errno));
	ch->mem = NULL;
}

void *alloc_buf(size_t size)
{
	size_t len = (size + 4095) & ~(size_t)4095;
	void *p = aligned_alloc(4096, len);

	if (!p)
		fail("out of memory for a %zu-byte buffer", size);
	memset(p, 0x5a, len);           /* fault it in before the clock runs */
	return p;
}

void close_fd(int fd)
{
	if (fd >= 0 && close(fd) != 0)
		fail_errno("close");
}

int claim_fd(struct chan *ch, int i)
{
	int fd = ch->fd[i];

	ch->fd[i] = -1;
	return fd;
}

void write_full(int fd, const unsigned char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fail_errno("write");
		}
		p += n;
		len -= (size_t)n;
	}
}

void read_full(int fd, unsigned char *p, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, p + got, len - got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fail_errno("read");
		}
		if (n == 0)
			fail("peer closed after %zu of %zu bytes", got, len);
		got += (size_t)n;
	}
}

unsigned bench_case_no(void)
{
	return g_case_no;
}

/* ---------------------------------------------------------------------- */
/* the shared control page                                                  */

struct barrier {
	_Alignas(CACHELINE) atomic_uint arrived;
	_Alignas(CACHELINE) atomic_uint gen;
};

/* what one process reports about one rep */
struct report {
	/* consumer: its first and last message of the warm-up [0] and of the
	 * timed stream [1], how many came with the first, how many in all */
	_Alignas(CACHELINE) struct span { uint64_t first, last, n_first, got; } span[2];
	uint64_t cpu_ns;                /* timed stream, user+sys */
	int64_t syscalls;               /* timed stream; -1: not counted */
	uint64_t full, empty;
	uint64_t sent;                  /* producer: messages sent on the stream channel */
	uint64_t got[MAX_PROD], sum[MAX_PROD];  /* consumer: all it received there */
	uint64_t sink;
	bool reported;                  /* every field above is final: only exit is left */
};

struct ctl {
	struct barrier bar;
	unsigned nproc;
	unsigned fanout;                        /* consumers that get each message: 1 or ncons */
	_Alignas(CACHELINE) uint64_t tput_n;    /* timed msgs per producer */
	uint64_t lat_n;                         /* timed round trips; 0: A sizes them */
	uint64_t lat_total;                     /* round trips wanted over all reps; 0: time */
	_Alignas(CACHELINE) atomic_uint warm_done;      /* producers done with the warm-up */
	_Alignas(CACHELINE) atomic_uint prod_done;      /* producers done with the timed stream */
	struct report rep[MAX_PROCS];
	struct hist hist;                       /* round trips, by A */
};

/* sense-reversing by generation number, for ctl->nproc processes */
static void barrier_wait(struct ctl *c)
{
	struct barrier *b = &c->bar;
	unsigned spins = 0;
	unsigned g = atomic_load_explicit(&b->gen, memory_order_acquire);

	/* acq_rel: the last arriver sees what the others wrote before arriving */
	if (atomic_fetch_add_explicit(&b->arrived, 1, memory_order_acq_rel) + 1 == c->nproc) {
		atomic_store_explicit(&b->arrived, 0, memory_order_relaxed);
		/* release: pairs with the waiters' acquire load of gen below, so
		 * everything written before the barrier is visible after it */
		atomic_store_explicit(&b->gen, g + 1, memory_order_release);
		return;
	}
	/* acquire: pairs with the release store of gen by the last arriver */
	while (atomic_load_explicit(&b->gen, memory_order_acquire) == g) {
		cpu_pause();
		/* the barrier always yields now and then: waiters may share a CPU */
		if ((++spins & 1023u) == 0)
			sched_yield();
	}
}

/* Messages per second of a stream over all consumers: those after the
 * earliest first message, over the span from it to the latest last one.
 * *timed (if not NULL) gets every message the consumers counted.  A
 * broadcast stream counts each message once, not once per consumer. */
static double span_rate(const struct ctl *c, unsigned nprod, unsigned nproc, int which,
			uint64_t *timed)
{
	uint64_t t0 = UINT64_MAX, t1 = 0, n = 0, n0 = 0;

	for (unsigned q = nprod; q < nproc; q++) {
		const struct span *sp = &c->rep[q].span[which];
		if (sp->got == 0)
			continue;
		if (sp->first < t0) {
			t0 = sp->first;
			n0 = sp->n_first;
		}
		t1 = sp->last > t1 ? sp->last : t1;
		n += sp->got;
	}
	n /= c->fanout;
	if (timed)
		*timed = n;
	return t1 > t0 && n > n0 ? (double)(n - n0) * 1e9 / (double)(t1 - t0) : 0;
}

/* ---------------------------------------------------------------------- */
/* counts                                                                   */

static uint64_t clamp_u64(double v, uint64_t lo, uint64_t hi)
{
	if (!(v >= (double)lo))
		return lo;
	if (v >= (double)hi)
		return hi;
	return (uint64_t)v;
}

/* Enough to wrap the ring a few times and to estimate the rate. */
static uint64_t warmup_msgs(size_t size)
{
	return clamp_u64((double)(8 * MIB) / (double)size, 32, 20000);
}

static uint64_t warmup_rtts(size_t size)
{
	return clamp_u64((double)(4 * MIB) / (double)size, 8, 2000);
}

/* timed messages per producer that fill the time budget at this rate */
static uint64_t tput_count(double rate, unsigned nprod)
{
	return clamp_u64(rate * cfg.rep_s / nprod, 200, 200000000);
}

/* round trips of one rep: the case's target split over the reps, or the
 * time budget; never more than 60 s of round trips per case at the rate
 * just seen (a million 20-us kernel round trips take 20 s) */
static uint64_t lat_count(uint64_t lat_total, const struct hist *h)
{
	double per_rtt = h->count ? h->sum / (double)h->count : 1e3;
	uint64_t cap = clamp_u64(60e9 / cfg.reps / per_rtt, 100, 100000000);
	uint64_t want;

	if (lat_total)
		want = (lat_total + cfg.reps - 1) / cfg.reps;
	else
		want = clamp_u64(cfg.lat_s / cfg.reps * 1e9 / per_rtt,
				 (1000 + cfg.reps - 1) / cfg.reps, 20000000);
	return want < cap ? want : cap;
}

/* ---------------------------------------------------------------------- */
/* the peers' own output                                                    */

/* Another project's processes (iceoryx's runtime warns on every failed
 * loan, DPDK logs) write into --peer-log, not over the tables; shmring's
 * and the kernel transports' children keep the terminal. */
static bool is_peer(const struct transport *t)
{
	return strcmp(t->family, "shmring") != 0 && strcmp(t->family, "kernel") != 0 &&
	       strcmp(t->family, "floor") != 0;
}

void peer_log_open(void)
{
	if (!cfg.peer_log)
		return;
	g_peer_log = open(cfg.peer_log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
	if (g_peer_log < 0)
		fail("--peer-log %s: %s", cfg.peer_log, strerror(errno));
}

/* in a peer's child, before the peer's code runs */
static void peer_log_redirect(const struct transport *t)
{
	if (g_peer_log < 0 || !is_peer(t))
		return;
	if (dup2(g_peer_log, STDOUT_FILENO) < 0 || dup2(g_peer_log, STDERR_FILENO) < 0)
		fail_errno("dup2 --peer-log");
}

void peer_log_report(void)
{
	struct stat st;

	if (g_peer_log < 0)
		return;
	if (fstat(g_peer_log, &st) == 0 && st.st_size > 0)
		printf("\nthe peers' own output (%lld bytes) is in %s\n", (long long)st.st_size,
		       cfg.peer_log);
	else
		(void)unlink(cfg.peer_log);
	close_fd(g_peer_log);
	g_peer_log = -1;
}

/* ---------------------------------------------------------------------- */
/* children                                                                 */

static void pin_to(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) != 0)
		fail_errno("sched_setaffinity");
}

static uint64_t cpu_time_ns(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		fail_errno("getrusage");
	return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000u +
	       ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000u;
}

static int perf_open_syscalls(void)
{
	struct perf_event_attr a;

	if (g_sys_enter_id < 0)
		return -1;
	memset(&a, 0, sizeof(a));
	a.type = PERF_TYPE_TRACEPOINT;
	a.size = sizeof(a);
	a.config = (uint64_t)g_sys_enter_id;
	a.disabled = 1;
	return (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
}

static void perf_ctl(int fd, unsigned long req)
{
	if (fd >= 0 && ioctl(fd, req, 0) != 0)
		fail_errno("perf ioctl");
}

static int64_t perf_read(int fd)
{
	uint64_t v;

	if (fd < 0)
		return -1;
	if (read(fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
		fail_errno("read (perf counter)");
	close_fd(fd);
	return v > 0 ? (int64_t)v - 1 : 0;      /* the disabling ioctl counts itself */
}

static void end_init(struct end *e, const struct transport *t, const struct geom *g,
		     struct chan *ch, int dir, unsigned id)
{
	memset(e, 0, sizeof(*e));
	e->t = t;
	e->ch = ch;
	e->size = g->size;
	e->batch = g->batch;
	e->nprod = g->nprod;
	e->ncons = g->ncons;
	e->dir = dir;
	e->id = dir == END_TX ? id : 0;
	e->sub = dir == END_RX ? id : 0;
	e->exact = g->ncons == 1 || (t->flags & T_BCAST);
	for (unsigned p = 0; p < MAX_PROD; p++)
		e->next[p] = 1;
	t->attach(e, ch);
}

/* A stream phase: producers send n each, then say so; consumers receive
 * until done (one consumer, or each of a broadcast's: exactly nprod * n). */
static void stream(struct end *e, bool producer, uint64_t n, atomic_uint *done,
		   struct span *sp)
{
	const struct transport *t = e->t;

	if (producer) {
		t->loops.produce(e, n);
		/* release: pairs with the consumers' acquire load in consume,
		 * our messages are in the channel before the count says so */
		atomic_fetch_add_explicit(done, 1, memory_order_release);
		return;
	}
	if (e->ncons == 1 || (t->flags & T_BCAST))
		sp->got = t->loops.consume(e, n * e->nprod, NULL, &sp->first, &sp->n_first);
	else
		sp->got = t->loops.consume(e, UINT64_MAX, done, &sp->first, &sp->n_first);
	sp->last = now_ns();
}

/* A child's process settings: default signals, the watchdog, its CPU. */
static void child_setup(unsigned proc, const struct transport *t, const struct geom *g)
{
	bool producer = proc < g->nprod;
	struct sigaction sa;

	g_child = true;
	peer_log_redirect(t);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0)
		fail_errno("sigaction");
	alarm(cfg.watchdog_s);
	/* 1x1: A on the first CPU, B on the second.  2x2: each CPU runs one
	 * producer and one consumer -- two producers on one CPU would let a
	 * preempted one stall the other inside a multi-producer claim.
	 * T_OWNCPU: every consumer on the second, so that what the producer
	 * is charged for is its own work, not the scheduling of readers
	 * that share its CPU */
	if (!producer && (t->flags & T_OWNCPU))
		pin_to(g_cpu[1]);
	else
		pin_to(g_cpu[producer ? proc % 2 : (proc - g->nprod + 1) % 2]);
	if (g->nprod > 1 || g->ncons > 1)
		g_yield_in_spins = true;        /* two spinners share each CPU */
}

/* The throughput phase: a warm-up stream, then the timed one with its
 * CPU time and system calls. */
static void child_tput(unsigned proc, const struct geom *g, struct end *e, struct ctl *ctl)
{
	bool producer = proc < g->nprod;
	struct report *rp = &ctl->rep[proc];

	stream(e, producer, warmup_msgs(g->size), &ctl->warm_done, &rp->span[0]);
	barrier_wait(ctl);              /* warm-up over everywhere */
	if (proc == 0 && ctl->tput_n == 0)
		ctl->tput_n = tput_count(span_rate(ctl, g->nprod, ctl->nproc, 0, NULL), g->nprod);
	int pfd = perf_open_syscalls();
	barrier_wait(ctl);              /* the timed stream starts */
	e->full = e->empty = 0;
	uint64_t c0 = cpu_time_ns();
	perf_ctl(pfd, PERF_EVENT_IOC_ENABLE);
	stream(e, producer, ctl->tput_n, &ctl->prod_done, &rp->span[1]);
	perf_ctl(pfd, PERF_EVENT_IOC_DISABLE);
	rp->cpu_ns = cpu_time_ns() - c0;
	rp->syscalls = perf_read(pfd);
	rp->full = e->full;
	rp->empty = e->empty;
}

/* The latency phase: warm-up round trips, then the timed ones; the
 * producer (ping) keeps the histogram. */
static void child_lat(bool producer, const struct transport *t, const struct geom *g,
		      struct end *e_main, struct end *e_back, struct ctl *ctl)
{
	static struct hist hist;
	uint64_t wn = warmup_rtts(g->size);

	if (producer) {
		h_reset(&hist);
		t->loops.ping(e_main, e_back, wn, &hist);
		if (!ctl->lat_n)
			ctl->lat_n = lat_count(ctl->lat_total, &hist);
		barrier_wait(ctl);
		h_reset(&hist);
		t->loops.ping(e_main, e_back, ctl->lat_n, &hist);
		memcpy(&ctl->hist, &hist, sizeof(hist));
	} else {
		t->loops.pong(e_back, e_main, wn);
		barrier_wait(ctl);
		t->loops.pong(e_back, e_main, ctl->lat_n);
	}
}

static noreturn void child_main(unsigned proc, const struct transport *t, const struct geom *g,
				bool tput, bool lat, struct ctl *ctl)
{
	struct end e_main, e_back;              /* the stream channel; B->A for round trips */
	bool producer = proc < g->nprod;
	struct report *rp = &ctl->rep[proc];

	child_setup(proc, t, g);
	end_init(&e_main, t, g, &g_chans[0], producer ? END_TX : END_RX,
		 producer ? proc : proc - g->nprod);
	if (lat) {
		struct geom gb = *g;
		gb.index = 1;
		end_init(&e_back, t, &gb, &g_chans[1], producer ? END_RX : END_TX, 0);
	}
	/* what this process did not claim belongs to its peers */
	for (unsigned c = 0; c < g_nchans; c++)
		for (int i = 0; i < 4; i++)
			close_fd(claim_fd(&g_chans[c], i));
	barrier_wait(ctl);                     /* everyone attached */

	if (tput)
		child_tput(proc, g, &e_main, ctl);
	if (lat)
		child_lat(producer, t, g, &e_main, &e_back, ctl);

	if (producer) {
		rp->sent = e_main.tx_seq;
	} else {
		memcpy(rp->got, e_main.got, sizeof(rp->got));
		memcpy(rp->sum, e_main.sum, sizeof(rp->sum));
	}
	rp->sink = e_main.sink + (lat ? e_back.sink : 0);
	t->detach(&e_main);
	if (lat)
		t->detach(&e_back);
	/* the parent reads this after waitpid(): the kernel orders it */
	rp->reported = true;
	/* exit, not _exit: a peer's runtime (iceoryx) deregisters from its
	 * broker in a destructor; stdio was flushed before the fork and the
	 * parent's atexit handler does nothing in a child.  That destructor
	 * joins a thread and can wait forever: a short watchdog
	 * then ends the child, and the parent keeps the results it reported. */
	alarm(EXIT_WATCHDOG_S);
	exit(0);
}

/* ---------------------------------------------------------------------- */
/* parent                                                                   */

static const char *describe_status(int st, char *buf, size_t len)
{
	if (WIFEXITED(st))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
		snprintf(buf, len, "timed out after %u s (watchdog)", cfg.watchdog_s);
	else if (WIFSIGNALED(st))
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
	else
		snprintf(buf, len, "ended with status 0x%x", st);
	return buf;
}

/* A shmring child that fails is a bug in shmring: the bench stops.  A
 * peer's (or the kernel's) child that fails is reported and its case shown
 * as failed, and the run goes on: returns false then. */
static bool wait_children(const struct transport *t, size_t size, unsigned nproc, unsigned nprod,
			  const struct ctl *ctl)
{
	bool ok = true;

	for (unsigned left = nproc; left > 0;) {
		int st;
		pid_t pid = waitpid(-1, &st, 0);

		if (pid < 0) {
			if (errno == EINTR) {
				int sig = atomic_load(&g_signal);
				if (sig) {
					fprintf(stderr, "shmring-bench: interrupted by signal %d\n", sig);
					cleanup_parent();
					exit(128 + sig);
				}
				continue;
			}
			fail_errno("waitpid");
		}
		int who = -1;
		for (unsigned i = 0; i < nproc; i++)
			if (pid == g_kids[i])
				who = (int)i;
		if (who < 0)
			continue;
		g_kids[who] = 0;
		left--;
		if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM && ctl->rep[who].reported) {
			fprintf(stderr, "shmring-bench: %s %zu B: a child hung in exit() after its "
				"results were in; killed after %u s, the results stand\n", t->name,
				size, EXIT_WATCHDOG_S);
			continue;
		}
		if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
			char buf[96];
			const char *fmt = "%s %zu B: %s %d %s";
			int id = who < (int)nprod ? who : who - (int)nprod;
			const char *role = (unsigned)who < nprod ? "producer" : "consumer";
			describe_status(st, buf, sizeof(buf));
			if (strcmp(t->family, "shmring") == 0)
				fail(fmt, t->name, size, role, id, buf);
			if (ok)
				fprintf(stderr, "shmring-bench: %s %zu B: %s %d %s; the case is "
					"marked failed\n", t->name, size, role, id, buf);
			ok = false;
			/* its peers may wait for it forever */
			for (unsigned i = 0; i < nproc; i++)
				if (g_kids[i] > 0)
					kill(g_kids[i], SIGKILL);
		}
	}
	return ok;
}

static void add_stats(struct case_result *cr, const struct shmring_stats *st)
{
	if (!cr->has_stats) {
		cr->st = *st;
		cr->has_stats = true;
		return;
	}
	cr->st.msgs_sent += st->msgs_sent;
	cr->st.msgs_recv += st->msgs_recv;
	cr->st.bytes_sent += st->bytes_sent;
	cr->st.bytes_recv += st->bytes_recv;
	cr->st.waits_full += st->waits_full;
	cr->st.waits_empty += st->waits_empty;
	cr->st.futex_wakes += st->futex_wakes;
	cr->st.futex_sleeps += st->futex_sleeps;
	cr->st.poll_wakes += st->poll_wakes;
	cr->st.poll_spurious += st->poll_spurious;
}

/* exactly once: what the producers sent is what the consumers received;
 * on a broadcast stream, what each consumer received */
static void check_conservation(const struct case_result *cr, const struct ctl *ctl,
			       const struct geom *g)
{
	unsigned groups = ctl->fanout > 1 ? g->ncons : 1;

	for (unsigned p = 0; p < g->nprod; p++) {
		uint64_t sent = ctl->rep[p].sent;
		for (unsigned k = 0; k < groups; k++) {
			uint64_t got = 0, sum = 0;
			for (unsigned q = g->nprod; q < g->nprod + g->ncons; q++) {
				if (groups > 1 && q != g->nprod + k)
					continue;
				got += ctl->rep[q].got[p];
				sum += ctl->rep[q].sum[p];
			}
			if (got != sent || sum != sent * (sent + 1) / 2)
				fail("%s %zu B: producer %u sent %" PRIu64 " messages, the "
				     "consumers%s received %" PRIu64 " (sequence sum %" PRIu64
				     ", expected %" PRIu64 ")", cr->t->name, cr->size, p, sent,
				     groups > 1 ? " (each)" : "", got, sum, sent * (sent + 1) / 2);
		}
	}
}

/* The rep's channels (g->nchans).  0; or -ENOTSUP with none left
 * (the library refused: the case is n/a); any other failure is fatal. */
static int create_chans(const struct case_result *cr, struct geom *g)
{
	const struct transport *t = cr->t;

	g_nchans = 0;
	for (unsigned i = 0; i < g->nchans; i++) {
		struct chan *ch = &g_chans[i];
		memset(ch, 0, sizeof(*ch));
		for (int k = 0; k < 4; k++)
			ch->fd[k] = -1;
		g->index = i;
		g_nchans = i + 1;
		int rc = t->create(ch, g);
		if (rc < 0) {
			g_nchans = i;
			for (unsigned k = 0; k < g_nchans; k++)
				t->destroy(&g_chans[k], NULL);
			g_cur = NULL;
			g_nchans = 0;
			if (rc == -ENOTSUP)
				return rc;
			fail("%s %zu B: creating the channel: %s", t->name, cr->size, strerror(-rc));
		}
	}
	return 0;
}

/* The rep's throughput figures, summed over its processes, into cr. */
static void add_tput(struct case_result *cr, struct ctl *ctl, unsigned nproc)
{
	const struct transport *t = cr->t;
	uint64_t n = 0, cpu = 0, pcpu = 0;
	int64_t sys = 0;

	for (unsigned q = 0; q < nproc; q++) {
		const struct report *r = &ctl->rep[q];
		cpu += r->cpu_ns;
		if (q < t->nprod)
			pcpu += r->cpu_ns;
		sys = sys < 0 || r->syscalls < 0 ? -1 : sys + r->syscalls;
		if (q < t->nprod)
			cr->full += r->full;
		else
			cr->empty += r->empty;
	}
	double rate = span_rate(ctl, t->nprod, nproc, 1, &n);
	cr->has_tput = true;
	cr->rate[cr->reps] = rate;
	cr->streamed += n;
	cr->cpu_ns += (double)cpu;
	cr->prod_cpu_ns += (double)pcpu;
	if (sys < 0 || cr->syscalls < 0)
		cr->syscalls = -1;
	else
		cr->syscalls += (double)sys;
	/* the warm-up is short and may have hit a slow spell: size the
	 * next rep from this one */
	cr->tput_n = cfg.msgs ? ctl->tput_n : tput_count(rate, t->nprod);
}

/* Remove the channels; a shmring ring's own counters must agree with
 * what the bench moved (a warning if not) and are kept in cr. */
static void destroy_chans(struct case_result *cr, const struct ctl *ctl)
{
	const struct transport *t = cr->t;
	struct shmring_stats st;

	memset(&st, 0, sizeof(st));
	for (unsigned i = 0; i < g_nchans; i++)
		t->destroy(&g_chans[i], i == 0 && (t->flags & T_SHMRING) ? &st : NULL);
	g_nchans = 0;
	g_cur = NULL;
	if ((t->flags & T_SHMRING) && !(t->flags & T_NOSTATS)) {
		uint64_t moved = 0;
		for (unsigned p = 0; p < t->nprod; p++)
			moved += ctl->rep[p].sent;
		/* a broadcast ring's receive counters leave with their subscribers */
		if (st.msgs_sent != moved ||
		    (!(t->flags & T_BCAST) && st.msgs_recv != moved * ctl->fanout))
			fprintf(stderr, "shmring-bench: warning: %s %zu B: the ring counted %" PRIu64
				" sent and %" PRIu64 " received, the bench moved %" PRIu64 "\n",
				t->name, cr->size, st.msgs_sent, st.msgs_recv, moved);
		add_stats(cr, &st);
		cr->stat_msgs += moved;
	}
}

/* One rep of a case: fresh processes and fresh channels. */
void run_rep(struct case_result *cr, bool tput, bool lat)
{
	const struct transport *t = cr->t;
	struct geom g = {
		.size = cr->size, .batch = t->batch, .nprod = t->nprod, .ncons = t->ncons,
		.nchans = lat ? 2 : 1,
	};
	unsigned nproc = t->nprod + t->ncons;
	struct ctl *ctl;

	g_case_no++;
	g_cur = t;
	if (create_chans(cr, &g) == -ENOTSUP) {
		cr->na = "n/a (ENOTSUP)";
		return;
	}

	ctl = map_shared(sizeof(*ctl));
	ctl->nproc = nproc;
	ctl->fanout = (t->flags & T_BCAST) ? t->ncons : 1;
	ctl->tput_n = cr->tput_n;
	ctl->lat_n = cr->lat_n;
	ctl->lat_total = cr->lat_total;

	fflush(stdout);
	fflush(stderr);
	for (unsigned proc = 0; proc < nproc; proc++) {
		pid_t pid = fork();
		if (pid < 0)
			fail_errno("fork");
		if (pid == 0)
			child_main(proc, t, &g, tput, lat, ctl);
		g_kids[proc] = pid;
	}
	for (unsigned c = 0; c < g_nchans; c++)
		for (int i = 0; i < 4; i++)
			close_fd(claim_fd(&g_chans[c], i));
	if (!wait_children(t, cr->size, nproc, t->nprod, ctl)) {
		cr->na = g_peer_log >= 0 && is_peer(t) ? "FAILED (see the peer log)" :
			 "FAILED (see stderr)";
		for (unsigned i = 0; i < g_nchans; i++)
			t->destroy(&g_chans[i], NULL);
		g_nchans = 0;
		g_cur = NULL;
		if (munmap(ctl, sizeof(*ctl)) != 0)
			fail_errno("munmap");
		return;
	}
	check_conservation(cr, ctl, &g);

	if (tput)
		add_tput(cr, ctl, nproc);
	if (lat) {
		if (!cr->has_lat)
			h_reset(&cr->hist);
		cr->has_lat = true;
		h_merge(&cr->hist, &ctl->hist);
		cr->lat_n = cfg.msgs ? ctl->lat_n : lat_count(cr->lat_total, &ctl->hist);
	}
	cr->reps++;
	destroy_chans(cr, ctl);
	if (munmap(ctl, sizeof(*ctl)) != 0)
		fail_errno("munmap");
}

void finish_case(struct case_result *cr)
{
	if (cr->has_tput)
		cr->rate_med = median(cr->rate, cr->reps, &cr->rate_min, &cr->rate_max);
	if (cr->has_lat) {
		const struct hist *h = &cr->hist;
		cr->lat = (struct lat_result){
			.samples = h->count, .min = h->min,
			.p50 = h_percentile(h, 0.50), .p99 = h_percentile(h, 0.99),
			.p999 = h_percentile(h, 0.999), .p9999 = h_percentile(h, 0.9999),
			.max = h->max, .mean = h->count ? h->sum / (double)h->count : 0,
		};
	}
}

/* ---------------------------------------------------------------------- */
/* set-up                                                                   */

/* first two CPUs of our affinity mask: cores 0 and 1 on the project VM */
static void choose_cpus(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		fail_errno("sched_getaffinity");
	g_ncpu_allowed = (unsigned)CPU_COUNT(&set);
	if (g_ncpu_allowed < 2) {
		g_yield_in_spins = true;
		return;
	}
	for (int c = 0, k = 0; c < CPU_SETSIZE && k < 2; c++)
		if (CPU_ISSET(c, &set))
			g_cpu[k++] = c;
}

/* System calls are counted with the raw_syscalls:sys_enter tracepoint when
 * tracefs is mounted and perf_event_open lets us (root, or a low
 * perf_event_paranoid); otherwise the column says "-". */
static void probe_syscall_counter(void)
{
	static const char *paths[] = {
		"/sys/kernel/tracing/events/raw_syscalls/sys_enter/id",
		"/sys/kernel/debug/tracing/events/raw_syscalls/sys_enter/id",
	};

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]) && g_sys_enter_id < 0; i++) {
		FILE *f = fopen(paths[i], "r");
		long id;
		if (!f)
			continue;
		if (fscanf(f, "%ld", &id) == 1)
			g_sys_enter_id = id;
		fclose(f);
	}
	int fd = perf_open_syscalls();
	if (fd < 0)
		g_sys_enter_id = -1;
	else
		close_fd(fd);
}

static long read_sysctl(const char *path, long dflt)
{
	FILE *f = fopen(path, "r");
	long v;

	if (!f)
		return dflt;
	if (fscanf(f, "%ld", &v) != 1)
		v = dflt;
	fclose(f);
	return v;
}

bool syscalls_counted(void)
{
	return g_sys_enter_id >= 0;
}

static void on_signal(int sig)
{
	atomic_store(&g_signal, sig);
}

static void on_exit_cleanup(void)
{
	if (!g_child)
		cleanup_parent();
}

void bench_register(const struct transport *t)
{
	if (g_n_all < MAX_TRANSPORTS)
		g_all[g_n_all++] = t;
}

void bench_init(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;      /* no SA_RESTART: waitpid returns EINTR */
	if (sigemptyset(&sa.sa_mask) != 0 || sigaction(SIGINT, &sa, NULL) != 0 ||
	    sigaction(SIGTERM, &sa, NULL) != 0)
		fail_errno("sigaction");
	if (atexit(on_exit_cleanup) != 0)
		fail("atexit failed");
	choose_cpus();
	probe_syscall_counter();
	g_mq_msg_max = read_sysctl("/proc/sys/fs/mqueue/msg_max", 10);
	g_mq_msgsize_max = read_sysctl("/proc/sys/fs/mqueue/msgsize_max", 8192);
}
