/* SPDX-License-Identifier: MIT */
/*
 * shmring-bench, private header: what the harness, the transports and the
 * output share.
 *
 * A transport moves fixed-size messages over channels.  A channel is one
 * direction: created by the parent (a ring in a POSIX shm segment, a pipe,
 * a socket pair, ...), attached to by forked children as a sender end or a
 * receiver end.  Streaming uses one channel with P sender processes and C
 * receiver processes; a round trip uses two (A->B and B->A) and two
 * processes.  Each transport supplies inline tx/rx functions and expands
 * BENCH_LOOPS() over them, so the per-message path is inlined into the
 * loop that times it, the same way for every transport.
 */
#ifndef SHMRING_BENCH_H
#define SHMRING_BENCH_H

#include <shmring.h>

#include <inttypes.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdnoreturn.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_pause() _mm_pause()
#elif defined(__aarch64__)
#define cpu_pause() __asm__ __volatile__("yield" ::: "memory")
#else
#define cpu_pause() do { } while (0)
#endif

#define CACHELINE 64
#define KIB ((size_t)1 << 10)
#define MIB ((size_t)1 << 20)
#define MAX_REPS 99
#define MAX_SIZES 32
#define MAX_SIZE (64 * MIB)
#define MAX_BATCH 32
#define EXIT_WATCHDOG_S 10      /* a child's exit(), after it reported */
#define MAX_PROD 2              /* producers of one stream */
#define MAX_CONS 8              /* consumers of one stream (broadcast fan-out) */
#define MAX_PROCS (MAX_PROD + MAX_CONS)
#define MAX_CHANS 2             /* a round trip uses two */
#define MAX_TRANSPORTS 64

/* Every message starts and ends with one 64-bit word: the producer id in
 * the top 8 bits, its sequence number (from 1) below. */
#define SEQ_BITS 56
#define SEQ_MASK ((UINT64_C(1) << SEQ_BITS) - 1)

/* ---------------------------------------------------------------------- */
/* errors (harness.c): print, clean up, exit 1 (children: _exit 1)          */

__attribute__((format(printf, 1, 2)))
noreturn void fail(const char *fmt, ...);
noreturn void fail_errno(const char *what);
noreturn void fail_rc(const char *what, long rc);
__attribute__((format(printf, 1, 2)))
noreturn void usage_error(const char *fmt, ...);

/* ---------------------------------------------------------------------- */
/* time, spinning                                                           */

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		fail_errno("clock_gettime");
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* More spinning processes than CPUs (one CPU, or 2x2 on two): a spinning
 * side would burn its time slice waiting for a peer that cannot run, so
 * every 256th spin gives the CPU away. */
extern bool g_yield_in_spins;

static inline void relax(unsigned *spins)
{
	cpu_pause();
	if (g_yield_in_spins && (++*spins & 255u) == 0 && sched_yield() != 0)
		fail_errno("sched_yield");
}

/* ---------------------------------------------------------------------- */
/* histogram (stats.c): exact below 2^6, then 64 sub-buckets per power of 2 */

#define H_SUB_BITS 6
#define H_SUB (1u << H_SUB_BITS)
#define H_BUCKETS (H_SUB + (64 - H_SUB_BITS) * H_SUB)

struct hist {
	uint64_t count, min, max;
	double sum;
	uint64_t b[H_BUCKETS];
};

static inline unsigned h_index(uint64_t v)
{
	if (v < H_SUB)
		return (unsigned)v;
	unsigned k = 63u - (unsigned)__builtin_clzll(v);     /* 2^k <= v */
	return H_SUB + (k - H_SUB_BITS) * H_SUB +
	       (unsigned)((v >> (k - H_SUB_BITS)) - H_SUB);
}

static inline void h_add(struct hist *h, uint64_t v)
{
	h->b[h_index(v)]++;
	h->count++;
	h->sum += (double)v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

void h_reset(struct hist *h);
void h_merge(struct hist *dst, const struct hist *src);
uint64_t h_percentile(const struct hist *h, double q);
double median(double *v, unsigned n, double *min, double *max);

/* ---------------------------------------------------------------------- */
/* channels and ends                                                        */

enum { END_TX, END_RX };

/* What the parent made for one channel; children inherit it by fork. */
struct chan {
	char name[96];                  /* URI or object name; "" when none */
	int fd[4];                      /* -1 when unused; an end claims its fds */
	void *mem;                      /* MAP_SHARED area, or NULL */
	size_t len;
	struct shmring *ring;           /* shmring: the parent's role-less handle */
	uint64_t u[4];                  /* geometry chosen by create() */
};

struct transport;

/* One process's end of one channel. */
struct end {
	const struct transport *t;
	struct chan *ch;
	size_t size;
	unsigned batch, nprod, ncons;
	unsigned id;                    /* producer id (sender) */
	unsigned sub;                   /* consumer index, 0 .. ncons-1 (receiver) */
	int dir;                        /* END_TX or END_RX */
	bool exact;                     /* one consumer: no gaps between seqs */
	bool stopped;                   /* the peer is gone (EOF): stop receiving */
	uint64_t tx_seq;                /* last sequence number sent */
	uint64_t next[MAX_PROD];        /* next sequence number expected per producer */
	uint64_t got[MAX_PROD], sum[MAX_PROD];  /* conservation, checked by the parent */
	uint64_t sink;                  /* one word per line of payload, summed */
	uint64_t full, empty;           /* tries that found the channel full / empty */
	unsigned char *buf;             /* private, MAX_BATCH x size (copying transports) */
	struct iovec iov[MAX_BATCH];
	_Alignas(CACHELINE) unsigned char priv[256];    /* the transport's own state */
};

/* a transport's state in e->priv: END_PRIV(P, struct x) declares P(e) */
#define END_PRIV(fn, type)                                                      \
	_Static_assert(sizeof(type) <= sizeof(((struct end *)0)->priv),         \
		       #type " fits in struct end");                           \
	static inline type *fn(struct end *e) { return (type *)(void *)e->priv; }

static inline uint64_t load64(const unsigned char *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static inline void store64(unsigned char *p, uint64_t v)
{
	memcpy(p, &v, sizeof(v));
}

/* the word of the next message this sender sends */
static inline uint64_t next_word(struct end *e)
{
	return (uint64_t)e->id << SEQ_BITS | ++e->tx_seq;
}

static inline void stamp(unsigned char *p, size_t size, uint64_t w)
{
	store64(p, w);
	store64(p + size - 8, w);
}

/* in place: the whole frame is written, every time, as a camera would */
static inline void fill_frame(unsigned char *p, size_t size, uint64_t w)
{
	memset(p, (int)(w & 0xff), size);
	stamp(p, size, w);
}

noreturn void check_failed(const struct end *e, const unsigned char *p, size_t len);

/* The receiver's check, the same for every transport: length, the word at
 * both ends, the producer's order, and one load per cache line so that
 * reading in place is never credited with reading nothing. */
static inline void check_msg(struct end *e, const unsigned char *p, size_t len)
{
	if (len != e->size)
		check_failed(e, p, len);
	uint64_t w = load64(p), s = w & SEQ_MASK;
	unsigned pid = (unsigned)(w >> SEQ_BITS);
	if (w != load64(p + e->size - 8) || pid >= e->nprod ||
	    (s != e->next[pid] && (e->exact || s < e->next[pid])))
		check_failed(e, p, len);
	e->next[pid] = s + 1;
	e->got[pid]++;
	e->sum[pid] += s;
	uint64_t sum = 0;
	for (size_t off = CACHELINE; off + 8 <= e->size; off += CACHELINE)
		sum += load64(p + off);
	e->sink += sum;
}

/* ---------------------------------------------------------------------- */
/* transports                                                               */

/* a (transport, size) case as the transport sees it */
struct geom {
	size_t size;
	unsigned batch, nprod, ncons;
	unsigned nchans;                /* 1: stream only; 2: round trips too */
	unsigned index;                 /* which channel: 0 A->B, 1 B->A */
};

struct loops {
	void (*produce)(struct end *e, uint64_t n);
	/* receive n messages (UINT64_MAX: until drained); first/last times */
	uint64_t (*consume)(struct end *e, uint64_t n, const atomic_uint *prod_done,
			    uint64_t *t_first, uint64_t *n_first);
	void (*ping)(struct end *tx, struct end *rx, uint64_t n, struct hist *h);
	void (*pong)(struct end *tx, struct end *rx, uint64_t n);
};

#define T_TPUT     0x01u        /* streams (throughput) */
#define T_LAT      0x02u        /* round trips (latency) */
#define T_POLLS    0x04u        /* spins on full/empty: the tries are counted */
#define T_SHMRING  0x08u        /* a shmring ring: counters from shmring_stats */
#define T_NOSTATS  0x10u        /* shmring fallback: counters are per handle */
#define T_FDWAIT   0x20u        /* waits in epoll: only perf counts its system calls */
#define T_BCAST    0x40u        /* every consumer receives every message (fan-out) */
#define T_OWNCPU   0x80u        /* every consumer on the second CPU: the producer has one to itself */

struct transport {
	const char *name;
	const char *family;             /* shmring, dpdk, ck, iceoryx, kernel, floor */
	const char *note;
	unsigned nprod, ncons, batch;
	size_t min_size, max_size;      /* sizes run; max 0: no limit */
	unsigned flags;                 /* T_* */
	/* parent: make the channel; 0, or -errno (-ENOTSUP: "n/a") */
	int (*create)(struct chan *ch, const struct geom *g);
	/* parent: remove it; stats (may be NULL) from the ring if T_SHMRING */
	void (*destroy)(struct chan *ch, struct shmring_stats *st);
	/* child: open one end (e->dir, e->id set); detach closes it */
	void (*attach)(struct end *e, struct chan *ch);
	void (*detach)(struct end *e);
	struct loops loops;
	/* not-run reason for a size (NULL: run it), e.g. limits probed at start */
	const char *(*skip)(size_t size);
	void (*setup)(void);            /* once, in the parent, before any case */
	void (*cleanup)(void);          /* once, in the parent, at exit (also on failure) */
};

/* the state t_shmring.c's attach leaves in e->priv; t_poll.c reuses the
 * rings of shmring-block, so its state starts with this */
struct sr_priv {
	struct shmring *r;
};

/* t_poll.c: shmring-epoll; the floors eventfd-pingpong, eventfd-epoll */
extern const struct transport bench_poll_transports[];
extern const unsigned bench_poll_count;
extern const struct transport bench_poll_floor_transports[];
extern const unsigned bench_poll_floor_count;

/*
 * The loops, expanded per transport over its inline functions:
 *   name##_tx(e, k)  sends k (1..batch) messages, blocking or spinning as
 *                    the transport does when the channel is full;
 *   name##_rx(e)     receives up to batch messages and checks each with
 *                    check_msg(); returns how many, 0 when none was ready
 *                    (polling transports) or the stream ended (e->stopped).
 */
#define BENCH_LOOPS(name)                                                       \
static void name##_produce(struct end *e, uint64_t n)                           \
{                                                                               \
	while (n > 0) {                                                         \
		unsigned k = n < e->batch ? (unsigned)n : e->batch;             \
		name##_tx(e, k);                                                \
		n -= k;                                                         \
	}                                                                       \
}                                                                               \
static uint64_t name##_consume(struct end *e, uint64_t n,                       \
			       const atomic_uint *done,                         \
			       uint64_t *t_first, uint64_t *n_first)            \
{                                                                               \
	uint64_t got = 0;                                                       \
	unsigned spins = 0, k;                                                  \
	*n_first = 0;                                                           \
	while (got < n && !e->stopped) {                                        \
		if ((k = name##_rx(e)) != 0) {                                  \
			if (got == 0) {                                         \
				*t_first = now_ns();                            \
				*n_first = k;                                   \
			}                                                       \
			got += k;                                               \
			continue;                                               \
		}                                                               \
		/* acquire: pairs with the producers' release add; after it,   \
		 * an empty channel stays empty */                               \
		if (done &&                                                     \
		    atomic_load_explicit(done, memory_order_acquire) == e->nprod && \
		    (k = name##_rx(e)) == 0)                                    \
			break;                                                  \
		if (k != 0) {                                                   \
			if (got == 0) {                                         \
				*t_first = now_ns();                            \
				*n_first = k;                                   \
			}                                                       \
			got += k;                                               \
			continue;                                               \
		}                                                               \
		e->empty++;                                                     \
		relax(&spins);                                                  \
	}                                                                       \
	return got;                                                             \
}                                                                               \
static void name##_ping(struct end *tx, struct end *rx, uint64_t n,            \
			struct hist *h)                                         \
{                                                                               \
	for (uint64_t i = 0; i < n; i++) {                                      \
		unsigned spins = 0;                                             \
		uint64_t t0 = now_ns();                                         \
		name##_tx(tx, 1);                                               \
		while (name##_rx(rx) == 0)                                      \
			relax(&spins);                                          \
		h_add(h, now_ns() - t0);                                        \
	}                                                                       \
}                                                                               \
static void name##_pong(struct end *tx, struct end *rx, uint64_t n)             \
{                                                                               \
	for (uint64_t i = 0; i < n; i++) {                                      \
		unsigned spins = 0;                                             \
		while (name##_rx(rx) == 0)                                      \
			relax(&spins);                                          \
		name##_tx(tx, 1);                                               \
	}                                                                       \
}

#define LOOPS(name) { name##_produce, name##_consume, name##_ping, name##_pong }

/* the transports of each file (bench_<f>_transports[], bench_<f>_count);
 * peers only when built in */
#define BENCH_FAMILY(f)                                                         \
	extern const struct transport bench_##f##_transports[];                 \
	extern const unsigned bench_##f##_count
BENCH_FAMILY(shmring);
BENCH_FAMILY(mpmc_safe);
BENCH_FAMILY(mpmc_nosafety);
BENCH_FAMILY(kernel);
BENCH_FAMILY(dpdk);
BENCH_FAMILY(ck);
BENCH_FAMILY(iceoryx);

/* ---------------------------------------------------------------------- */
/* shared helpers for transports (harness.c)                                */

void *map_shared(size_t len);
/* a POSIX shm segment of len bytes (posix_fallocate'd), mapped; name is
 * "/shmring-bench-<pid>-<n>" written to ch->name; registered for cleanup */
void shmseg_create(struct chan *ch, size_t len);
/* child: map the segment again (another address) and return it */
void *shmseg_attach(const struct chan *ch);
void shmseg_detach(void *p, const struct chan *ch);
void shmseg_destroy(struct chan *ch);
void *alloc_buf(size_t size);
void close_fd(int fd);
int claim_fd(struct chan *ch, int i);    /* takes ch->fd[i] for this end */
void write_full(int fd, const unsigned char *p, size_t len);
void read_full(int fd, unsigned char *p, size_t len);
unsigned bench_case_no(void);           /* unique per rep, for names */
extern long g_mq_msg_max, g_mq_msgsize_max;     /* fs.mqueue.*, read at start */
const char *mq_skip(size_t size);       /* mq transports: sizes a queue refuses */

/* ---------------------------------------------------------------------- */
/* configuration and results                                                */

struct config {
	bool quick, json;
	unsigned reps;
	uint64_t msgs;                  /* 0: calibrated to the time budget */
	uint64_t lat_samples;           /* round trips per small-message case, all reps */
	double rep_s, lat_s;            /* time budgets */
	size_t sizes[MAX_SIZES];
	unsigned n_sizes;
	const char *plot;               /* --plot FILE.svg */
	const char *peer_log;           /* --peer-log FILE: the peers' own output */
	unsigned watchdog_s;     /* a child's whole rep */
};

extern struct config cfg;
extern int g_cpu[2];                    /* CPUs of producers and consumers; -1: unpinned */
extern unsigned g_ncpu_allowed;

struct lat_result {
	uint64_t samples, min, p50, p99, p999, p9999, max;
	double mean;
};

/* one (transport, size): filled rep by rep, summed up by finish_case() */
struct case_result {
	const struct transport *t;
	size_t size;
	const char *na;                 /* not run: why ("ENOTSUP", ...) */
	bool has_tput, has_lat;
	uint64_t tput_n;                /* timed msgs per producer, next rep; 0: calibrate */
	uint64_t lat_n;                 /* timed round trips per rep; 0: calibrate */
	uint64_t lat_total;             /* round trips wanted over all reps; 0: time budget */
	unsigned reps;
	double rate[MAX_REPS];
	double rate_med, rate_min, rate_max;
	uint64_t full, empty, streamed;         /* failed tries, timed msgs, all reps */
	double cpu_ns;                  /* user+sys of every process in timed streams */
	double prod_cpu_ns;             /* ... of the producers alone */
	double syscalls;                /* in timed streams, all processes; < 0: not counted */
	struct hist hist;
	struct lat_result lat;
	bool has_stats;                 /* ring counters of the stream channel */
	struct shmring_stats st;
	uint64_t stat_msgs;             /* messages the harness moved while counters ran */
};

void run_rep(struct case_result *cr, bool tput, bool lat);
void finish_case(struct case_result *cr);
void bench_init(void);                  /* CPUs, probes, signals */
void peer_log_open(void);               /* --peer-log: create it now, or fail */
void peer_log_report(void);             /* stdout: where the peers' output went */
void bench_register(const struct transport *t);     /* its cleanup runs at exit */
void cleanup_parent(void);
bool syscalls_counted(void);

/* machine description (machine.c) */
struct machine {
	char cpu[256], kernel[256], load_start[64], load_end[64];
	long nproc;
	char governor[64];
};
void machine_describe(struct machine *m);
void machine_load(char *buf, size_t len);

/* output (output.c, plot.c) */
const char *fmt_size(size_t s, char *buf, size_t len);
void print_header(const struct machine *m);
void print_tables(const struct case_result *res, unsigned n);
void print_goals(const struct case_result *res, unsigned n);
void goal_run_order(const struct case_result *res, unsigned n, unsigned *order);
void print_json(const struct case_result *res, unsigned n, const struct machine *m);
int write_plot(const char *path, const struct case_result *res, unsigned n);
bool plot_available(void);
void print_missing_peers(void);
extern const char *g_missing_peers[8];
extern unsigned g_n_missing_peers;

#endif
