/* SPDX-License-Identifier: MIT */
/*
 * shmring-bench: the speed of shmring beside the alternatives, measured in
 * one run and printed as one table (or one JSON document with --json).
 *
 * A case is a (transport, size); a rep of a case forks two processes,
 * pinned to two different CPUs: A (producer, pinger) and B (consumer,
 * ponger).  Both attach, then wait on a start barrier in a MAP_SHARED page,
 * so that timing covers only the transfer.  The R reps of a case are not run
 * back to back: rep 1 of every case runs, then rep 2 (in reverse order), and
 * so on, so that a slow spell of the machine hits every transport alike.
 *
 *  throughput  A streams messages to B.  Each rep starts with an untimed
 *              warm-up pass that faults pages in and warms the caches.  The
 *              message count fills a time budget: the first rep sizes it
 *              from its warm-up, later reps from the rep before (--msgs
 *              fixes it instead).  Then the barrier, then the timed run,
 *              which B times from the receipt of its first message to the
 *              receipt of its last: rate = (n - 1) / elapsed.  The table
 *              shows the median rep; JSON has min and max too.
 *  latency     A sends, B receives and sends back, A receives: one sample
 *              per round trip, timed by A with CLOCK_MONOTONIC after an
 *              untimed warm-up, recorded in a log-bucketed histogram
 *              (exact below 64 ns, then 64 linear sub-buckets per power of
 *              two, so at most 1.6 % error); the reps' histograms are
 *              merged.  Printed percentiles are the upper bound of their
 *              bucket, never above the true maximum.
 *
 * Every message carries its sequence number in its first and its last
 * 8 bytes.  The receiver checks both and the length, and loads one word of
 * every cache line of the payload.  The check is the same for every
 * transport, so reading in place is never credited with reading nothing.
 * A mismatch is fatal: a message on stderr and exit status 1.
 * Copying transports send from a prepared buffer and stamp the sequence
 * number per message; in-place transports (shmring-zc, bare-frame) write the
 * whole frame per message, as a camera writing a frame would.
 */
#include <shmring.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdnoreturn.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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
#define BARE_SLOTS 4

/* ---------------------------------------------------------------------- */
/* errors                                                                   */

static bool g_child;                    /* set in forked children: they _exit */
static char g_uris[2][80];              /* rings the parent created, for cleanup */
static pid_t g_kids[2];                 /* children of the running case, 0 when reaped */
static atomic_int g_signal;             /* SIGINT/SIGTERM seen by the parent */

static void cleanup_parent(void)
{
	for (int i = 0; i < 2; i++) {
		if (g_kids[i] > 0) {
			/* a child may spin forever on a peer that is gone */
			if (kill(g_kids[i], SIGKILL) == 0)
				(void)waitpid(g_kids[i], NULL, 0);
			g_kids[i] = 0;
		}
	}
	for (int i = 0; i < 2; i++) {
		if (g_uris[i][0]) {
			int rc = shmring_unlink(g_uris[i]);
			if (rc < 0 && rc != -ENOENT)
				fprintf(stderr, "shmring-bench: shmring_unlink %s: %s\n",
					g_uris[i], shmring_strerror(rc));
			g_uris[i][0] = '\0';
		}
	}
}

__attribute__((format(printf, 1, 2)))
static noreturn void fail(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("shmring-bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (g_child)
		_exit(1);
	cleanup_parent();
	exit(1);
}

static noreturn void fail_errno(const char *what)
{
	fail("%s: %s", what, strerror(errno));
}

static noreturn void fail_rc(const char *what, long rc)
{
	fail("%s: %s", what, shmring_strerror((int)rc));
}

__attribute__((format(printf, 1, 2)))
static noreturn void usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("shmring-bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (try --help)\n", stderr);
	exit(2);
}

/* ---------------------------------------------------------------------- */
/* time, spinning                                                           */

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		fail_errno("clock_gettime");
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* With one CPU a spinning side would burn its whole time slice waiting for
 * a peer that cannot run; then every 256th spin gives the CPU away. */
static bool g_yield_in_spins;

static inline void relax(unsigned *spins)
{
	cpu_pause();
	if (g_yield_in_spins && (++*spins & 255u) == 0 && sched_yield() != 0)
		fail_errno("sched_yield");
}

/* ---------------------------------------------------------------------- */
/* histogram: exact below 2^6, then 64 linear sub-buckets per power of two */

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

static uint64_t h_upper(unsigned i)
{
	if (i < H_SUB)
		return i;
	unsigned k = (i - H_SUB) / H_SUB + H_SUB_BITS;
	uint64_t sub = (i - H_SUB) % H_SUB + H_SUB;
	return ((sub + 1) << (k - H_SUB_BITS)) - 1;     /* wraps to max at the top */
}

static void h_reset(struct hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
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

static uint64_t h_percentile(const struct hist *h, double q)
{
	if (h->count == 0)
		return 0;
	uint64_t rank = (uint64_t)(q * (double)h->count + 0.999999);
	if (rank < 1)
		rank = 1;
	uint64_t seen = 0;
	for (unsigned i = 0; i < H_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= rank) {
			uint64_t u = h_upper(i);
			return u < h->max ? u : h->max;
		}
	}
	return h->max;
}

/* ---------------------------------------------------------------------- */
/* shared control page                                                      */

struct barrier {
	_Alignas(CACHELINE) atomic_uint arrived;
	_Alignas(CACHELINE) atomic_uint gen;
};

static void h_merge(struct hist *dst, const struct hist *src)
{
	for (unsigned i = 0; i < H_BUCKETS; i++)
		dst->b[i] += src->b[i];
	dst->count += src->count;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

/* One page per case and rep, shared by the parent and the two children.
 * The parent presets the counts (0: the children choose them after the
 * warm-up); a child writes a field before a barrier, the other reads it
 * after. */
struct ctl {
	struct barrier bar;
	_Alignas(CACHELINE) uint64_t tput_n;    /* timed msgs in this rep; chosen by B */
	uint64_t lat_n;                         /* timed round trips in this rep; chosen by A */
	uint64_t sent_ab;                       /* messages A sent to B in all, set by A at the end */
	double rate;                            /* msgs/s of this rep, set by B */
	uint64_t full, empty;                   /* failed tries in the timed stream, by A / B */
	_Alignas(CACHELINE) uint64_t sink[2];   /* what the receivers loaded, so loads stay */
	struct hist hist;                       /* round trips of this rep, set by A at the end */
};

/* Two processes; sense-reversing by generation number. */
static void barrier_wait(struct barrier *b)
{
	unsigned spins = 0;
	unsigned g = atomic_load_explicit(&b->gen, memory_order_acquire);

	/* acq_rel: the last arriver sees what the first wrote before arriving */
	if (atomic_fetch_add_explicit(&b->arrived, 1, memory_order_acq_rel) + 1 == 2) {
		atomic_store_explicit(&b->arrived, 0, memory_order_relaxed);
		/* release: pairs with the waiter's acquire load of gen below, so
		 * everything both sides wrote before the barrier is visible after */
		atomic_store_explicit(&b->gen, g + 1, memory_order_release);
		return;
	}
	/* acquire: pairs with the release store of gen by the last arriver */
	while (atomic_load_explicit(&b->gen, memory_order_acquire) == g)
		relax(&spins);
}

/* ---------------------------------------------------------------------- */
/* shared areas of the two floors                                           */

/* cacheline: each side owns one line and spins on the other's */
struct line {
	_Alignas(CACHELINE) atomic_uint_least64_t seq;
	unsigned char payload[CACHELINE - sizeof(uint64_t)];
};

struct bare_hdr {
	struct {
		_Alignas(CACHELINE) atomic_uint full;
	} flag[BARE_SLOTS];
};

/* ---------------------------------------------------------------------- */
/* one side of a case                                                       */

struct ep {
	size_t size;
	struct shmring *tx, *rx;
	int fd_tx, fd_rx;
	unsigned char *sbuf, *rbuf;             /* private buffers of copying transports */
	struct line *mine, *peer;               /* cacheline */
	struct bare_hdr *bare;                  /* bare-frame flags ... */
	unsigned char *slots;                   /* ... and frames */
	size_t slot_stride;
	uint64_t sink;
	uint64_t full, empty;                   /* tries that found the ring full / empty */
};

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

static inline void stamp(unsigned char *p, size_t size, uint64_t seq)
{
	store64(p, seq);
	store64(p + size - 8, seq);
}

/* in place: the whole frame is written, every time */
static inline void fill_frame(unsigned char *p, size_t size, uint64_t seq)
{
	memset(p, (int)(seq & 0xff), size);
	stamp(p, size, seq);
}

static inline void check_frame(struct ep *e, const unsigned char *p, uint64_t seq)
{
	uint64_t head = load64(p), tail = load64(p + e->size - 8);

	if (head != seq || tail != seq)
		fail("sequence mismatch in a %zu-byte message: expected %" PRIu64
		     ", got %" PRIu64 " at the head and %" PRIu64 " at the tail",
		     e->size, seq, head, tail);
	/* one load per cache line: the consumer has really seen the frame */
	uint64_t sum = 0;
	for (size_t off = CACHELINE; off + 8 <= e->size; off += CACHELINE)
		sum += load64(p + off);
	e->sink += sum;
}

static inline void check_len(const struct ep *e, size_t len)
{
	if (len != e->size)
		fail("length mismatch: expected %zu bytes, received %zu", e->size, len);
}

/* shmring-poll */
static inline void tx_poll(struct ep *e, uint64_t seq)
{
	unsigned spins = 0;
	int rc;

	stamp(e->sbuf, e->size, seq);
	while ((rc = shmring_send(e->tx, e->sbuf, e->size, 0)) == -EAGAIN) {
		e->full++;
		relax(&spins);
	}
	if (rc < 0)
		fail_rc("shmring_send", rc);
}

static inline void rx_poll(struct ep *e, uint64_t seq)
{
	unsigned spins = 0;
	ssize_t n;

	while ((n = shmring_recv(e->rx, e->rbuf, e->size, 0)) == -EAGAIN) {
		e->empty++;
		relax(&spins);
	}
	if (n < 0)
		fail_rc("shmring_recv", n);
	check_len(e, (size_t)n);
	check_frame(e, e->rbuf, seq);
}

/* shmring-block */
static inline void tx_block(struct ep *e, uint64_t seq)
{
	int rc;

	stamp(e->sbuf, e->size, seq);
	rc = shmring_send(e->tx, e->sbuf, e->size, SHMRING_FOREVER);
	if (rc < 0)
		fail_rc("shmring_send (blocking)", rc);
}

static inline void rx_block(struct ep *e, uint64_t seq)
{
	ssize_t n = shmring_recv(e->rx, e->rbuf, e->size, SHMRING_FOREVER);

	if (n < 0)
		fail_rc("shmring_recv (blocking)", n);
	check_len(e, (size_t)n);
	check_frame(e, e->rbuf, seq);
}

/* shmring-zc */
static inline void tx_zc(struct ep *e, uint64_t seq)
{
	struct shmring_msg m;
	unsigned spins = 0;
	int rc;

	while ((rc = shmring_reserve(e->tx, e->size, &m, 0)) == -EAGAIN) {
		e->full++;
		relax(&spins);
	}
	if (rc < 0)
		fail_rc("shmring_reserve", rc);
	if (m.len < e->size)
		fail("shmring_reserve: asked for %zu bytes, got %zu", e->size, m.len);
	fill_frame(m.data, e->size, seq);
	m.len = e->size;
	rc = shmring_commit(e->tx, &m);
	if (rc < 0)
		fail_rc("shmring_commit", rc);
}

static inline void rx_zc(struct ep *e, uint64_t seq)
{
	struct shmring_msg m;
	unsigned spins = 0;
	int rc;

	while ((rc = shmring_acquire(e->rx, &m, 0)) == -EAGAIN) {
		e->empty++;
		relax(&spins);
	}
	if (rc < 0)
		fail_rc("shmring_acquire", rc);
	check_len(e, m.len);
	check_frame(e, m.data, seq);
	rc = shmring_release(e->rx, &m);
	if (rc < 0)
		fail_rc("shmring_release", rc);
}

/* pipe, unix: fixed-size messages, so no length prefix is needed */
static void write_full(int fd, const unsigned char *p, size_t len)
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

static void read_full(int fd, unsigned char *p, size_t len)
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
			fail("length mismatch: peer closed after %zu of %zu bytes", got, len);
		got += (size_t)n;
	}
}

static inline void tx_fd(struct ep *e, uint64_t seq)
{
	stamp(e->sbuf, e->size, seq);
	write_full(e->fd_tx, e->sbuf, e->size);
}

static inline void rx_fd(struct ep *e, uint64_t seq)
{
	read_full(e->fd_rx, e->rbuf, e->size);
	check_frame(e, e->rbuf, seq);
}

/* cacheline: the floor of a round trip between the two CPUs */
static inline void tx_line(struct ep *e, uint64_t seq)
{
	memset(e->mine->payload, (int)(seq & 0xff), sizeof(e->mine->payload));
	/* release: pairs with the peer's acquire load in rx_line, so the
	 * payload written above is visible once the new seq is */
	atomic_store_explicit(&e->mine->seq, seq, memory_order_release);
}

static inline void rx_line(struct ep *e, uint64_t seq)
{
	unsigned spins = 0;
	uint64_t v;

	/* acquire: pairs with the peer's release store in tx_line */
	while ((v = atomic_load_explicit(&e->peer->seq, memory_order_acquire)) != seq) {
		if (v != seq - 1)
			fail("sequence mismatch on the cache line: expected %" PRIu64
			     ", got %" PRIu64, seq, v);
		relax(&spins);
	}
	/* the payload is stable: the peer writes it again only after we answer */
	const unsigned char *p = e->peer->payload;
	if (p[0] != (unsigned char)seq || p[sizeof(e->peer->payload) - 1] != (unsigned char)seq)
		fail("payload mismatch on the cache line at seq %" PRIu64, seq);
	e->sink += p[0];
}

/* bare-frame: the floor of a large-frame hand-off, four slots with flags */
static inline void tx_bare(struct ep *e, uint64_t seq)
{
	unsigned slot = (unsigned)((seq - 1) % BARE_SLOTS), spins = 0;
	atomic_uint *full = &e->bare->flag[slot].full;

	/* acquire: pairs with the consumer's release store of 0 in rx_bare, so
	 * its reads of the previous frame are done before we overwrite it */
	while (atomic_load_explicit(full, memory_order_acquire) != 0) {
		e->full++;
		relax(&spins);
	}
	fill_frame(e->slots + slot * e->slot_stride, e->size, seq);
	/* release: pairs with the consumer's acquire load in rx_bare, which then
	 * sees the whole frame */
	atomic_store_explicit(full, 1, memory_order_release);
}

static inline void rx_bare(struct ep *e, uint64_t seq)
{
	unsigned slot = (unsigned)((seq - 1) % BARE_SLOTS), spins = 0;
	atomic_uint *full = &e->bare->flag[slot].full;

	/* acquire: pairs with the producer's release store of 1 in tx_bare */
	while (atomic_load_explicit(full, memory_order_acquire) == 0) {
		e->empty++;
		relax(&spins);
	}
	check_frame(e, e->slots + slot * e->slot_stride, seq);
	/* release: pairs with the producer's acquire load in tx_bare */
	atomic_store_explicit(full, 0, memory_order_release);
}

/* ---------------------------------------------------------------------- */
/* the loops, one copy per transport so that each op is inlined            */

typedef void (*op_fn)(struct ep *, uint64_t);
typedef void (*produce_fn)(struct ep *, uint64_t *, uint64_t);
typedef double (*consume_fn)(struct ep *, uint64_t *, uint64_t);
typedef void (*ping_fn)(struct ep *, uint64_t *, uint64_t *, uint64_t, struct hist *);
typedef void (*pong_fn)(struct ep *, uint64_t *, uint64_t *, uint64_t);

static inline __attribute__((always_inline))
void produce_loop(struct ep *e, uint64_t *seq, uint64_t n, op_fn tx)
{
	for (uint64_t i = 0; i < n; i++)
		tx(e, (*seq)++);
}

/* returns msgs/s from the first message received to the last */
static inline __attribute__((always_inline))
double consume_loop(struct ep *e, uint64_t *seq, uint64_t n, op_fn rx)
{
	rx(e, (*seq)++);
	uint64_t t0 = now_ns();
	for (uint64_t i = 1; i < n; i++)
		rx(e, (*seq)++);
	uint64_t t1 = now_ns();
	return t1 > t0 ? (double)(n - 1) * 1e9 / (double)(t1 - t0) : 0.0;
}

static inline __attribute__((always_inline))
void ping_loop(struct ep *e, uint64_t *sseq, uint64_t *rseq, uint64_t n,
	       struct hist *h, op_fn tx, op_fn rx)
{
	for (uint64_t i = 0; i < n; i++) {
		uint64_t t0 = now_ns();
		tx(e, (*sseq)++);
		rx(e, (*rseq)++);
		h_add(h, now_ns() - t0);
	}
}

static inline __attribute__((always_inline))
void pong_loop(struct ep *e, uint64_t *sseq, uint64_t *rseq, uint64_t n,
	       op_fn tx, op_fn rx)
{
	for (uint64_t i = 0; i < n; i++) {
		rx(e, (*rseq)++);
		tx(e, (*sseq)++);
	}
}

#define DEFINE_LOOPS(name)                                                      \
	static void produce_##name(struct ep *e, uint64_t *s, uint64_t n)      \
	{ produce_loop(e, s, n, tx_##name); }                                   \
	static double consume_##name(struct ep *e, uint64_t *s, uint64_t n)    \
	{ return consume_loop(e, s, n, rx_##name); }                            \
	static void ping_##name(struct ep *e, uint64_t *ss, uint64_t *rs,      \
				uint64_t n, struct hist *h)                     \
	{ ping_loop(e, ss, rs, n, h, tx_##name, rx_##name); }                   \
	static void pong_##name(struct ep *e, uint64_t *ss, uint64_t *rs,      \
				uint64_t n)                                     \
	{ pong_loop(e, ss, rs, n, tx_##name, rx_##name); }

DEFINE_LOOPS(poll)
DEFINE_LOOPS(block)
DEFINE_LOOPS(zc)
DEFINE_LOOPS(fd)

/* the floors: bare-frame streams only, cacheline ping-pongs only */
static void produce_bare(struct ep *e, uint64_t *s, uint64_t n)
{ produce_loop(e, s, n, tx_bare); }
static double consume_bare(struct ep *e, uint64_t *s, uint64_t n)
{ return consume_loop(e, s, n, rx_bare); }
static void ping_line(struct ep *e, uint64_t *ss, uint64_t *rs, uint64_t n, struct hist *h)
{ ping_loop(e, ss, rs, n, h, tx_line, rx_line); }
static void pong_line(struct ep *e, uint64_t *ss, uint64_t *rs, uint64_t n)
{ pong_loop(e, ss, rs, n, tx_line, rx_line); }

/* ---------------------------------------------------------------------- */
/* transports                                                               */

enum res_kind { RES_SHMRING, RES_PIPE, RES_UNIX, RES_LINE, RES_BARE };

struct transport {
	const char *name;
	enum res_kind res;
	size_t min_size;                /* smaller sizes are not run */
	size_t fixed_size;              /* nonzero: one row of this size */
	bool polls;                     /* spins on full/empty: those tries are counted */
	produce_fn produce;             /* NULL: no throughput */
	consume_fn consume;
	ping_fn ping;                   /* NULL: no latency */
	pong_fn pong;
	const char *note;
	const char *ring_fmt;           /* RES_SHMRING: URI format (pid, case, a/b); NULL: shm: */
	bool fallback;                  /* pipe:/mq: backend: every open passes the creator's
					   opts (pipe: stores no geometry), and its stats are
					   per handle, so the parent's handle counts nothing */
};

static const struct transport transports[] = {
	{ "shmring-poll", RES_SHMRING, 0, 0, true, produce_poll, consume_poll, ping_poll, pong_poll,
	  "shm: SPSC ring, send/recv, timeout 0, retry on -EAGAIN", NULL, false },
	{ "shmring-block", RES_SHMRING, 0, 0, false, produce_block, consume_block, ping_block, pong_block,
	  "same ring, send/recv, SHMRING_FOREVER (spin, then futex)", NULL, false },
	{ "shmring-zc", RES_SHMRING, 0, 0, true, produce_zc, consume_zc, ping_zc, pong_zc,
	  "same ring, reserve/commit + acquire/release, in place", NULL, false },
	{ "file-tmpfs", RES_SHMRING, 0, 0, true, produce_poll, consume_poll, ping_poll, pong_poll,
	  "file: ring in /dev/shm (tmpfs), send/recv, timeout 0, no flush",
	  "file:/dev/shm/shmring-bench-%ld-%u-%c.ring", false },
	{ "file-disk", RES_SHMRING, 0, 0, true, produce_poll, consume_poll, ping_poll, pong_poll,
	  "file: ring in /tmp (the root filesystem), send/recv, timeout 0, no flush",
	  "file:/tmp/shmring-bench-%ld-%u-%c.ring", false },
	{ "pipe-ring", RES_SHMRING, 0, 0, false, produce_block, consume_block, ping_block, pong_block,
	  "pipe: backend (named FIFO, framed), send/recv, SHMRING_FOREVER",
	  "pipe:/tmp/shmring-bench-%ld-%u-%c.fifo", true },
	{ "mq-ring", RES_SHMRING, 0, 0, false, produce_block, consume_block, ping_block, pong_block,
	  "mq: backend (POSIX queue), send/recv, SHMRING_FOREVER; sizes <= msgsize_max",
	  "mq:shmring-bench-%ld-%u-%c", true },
	{ "pipe", RES_PIPE, 0, 0, false, produce_fd, consume_fd, ping_fd, pong_fd,
	  "anonymous pipe (1 MiB if allowed), fixed-size write/read", NULL, false },
	{ "unix", RES_UNIX, 0, 0, false, produce_fd, consume_fd, ping_fd, pong_fd,
	  "UNIX stream socketpair, default buffers, same framing", NULL, false },
	{ "cacheline", RES_LINE, 0, 64, true, NULL, NULL, ping_line, pong_line,
	  "floor: ping-pong of two 64-byte lines; latency only", NULL, false },
	{ "bare-frame", RES_BARE, 1024, 0, true, produce_bare, consume_bare, NULL, NULL,
	  "floor: 4 slots with spin flags, in place; throughput, sizes >= 1 KiB", NULL, false },
};
#define N_TRANSPORTS (sizeof(transports) / sizeof(transports[0]))

/* ---------------------------------------------------------------------- */
/* configuration                                                            */

struct config {
	bool quick, json;
	unsigned reps;
	uint64_t msgs;                  /* 0: calibrated to the time budget */
	double rep_s, lat_s;            /* time budgets */
	size_t sizes[MAX_SIZES];
	unsigned n_sizes;
	bool use[N_TRANSPORTS];
	unsigned watchdog_s;            /* a child that runs longer dies of SIGALRM */
};

static struct config cfg;
static int g_cpu[2] = { -1, -1 };      /* CPUs of A and B; -1: not pinned */
static unsigned g_ncpu_allowed;
static char g_loadavg[64] = "unknown";  /* a busy machine explains odd numbers */
static int g_pipe_size;                 /* after F_SETPIPE_SZ, probed once */
static struct shmring_opts g_ring_opts; /* of the running case's rings, for fallback children */
static uint64_t g_mq_msg_max = 10, g_mq_msgsize_max = 8192;    /* fs.mqueue.* */
static bool g_mq_skipped;               /* a size above msgsize_max was left out */
static const char *g_pipe_note = "";
static unsigned g_case_no;

/* what one rep of a case asks of its children */
struct plan {
	bool tput, lat, warmup;
};

struct resources {
	struct shmring *ring[2];        /* the parent's role-less handles */
	int pipe_ab[2], pipe_ba[2], sp[2];
	void *area;
	size_t area_len;
	size_t slot_stride;
};

struct lat_result {
	uint64_t samples, min, p50, p99, p999, max;
	double mean;
};

/* one (transport, size): filled rep by rep, summed up by finish_case() */
struct case_result {
	const struct transport *t;
	size_t size;
	bool has_tput, has_lat;
	uint64_t tput_n;                /* timed msgs of the next rep; 0: B chooses */
	uint64_t lat_n;                 /* timed round trips of the next rep; 0: A chooses */
	unsigned reps;
	double rate[MAX_REPS];
	double rate_med, rate_min, rate_max;
	uint64_t full, empty, streamed;         /* failed tries while streaming, all reps */
	struct hist hist;               /* round trips of every rep */
	struct lat_result lat;
	bool has_stats;                 /* ring counters of A->B, summed over the reps */
	struct shmring_stats st;
};

static uint64_t clamp_u64(double v, uint64_t lo, uint64_t hi)
{
	if (!(v >= (double)lo))
		return lo;
	if (v >= (double)hi)
		return hi;
	return (uint64_t)v;
}

/* Enough to wrap the ring or slots a few times and to estimate the rate;
 * cheap enough to repeat in every rep (each rep is a fresh pair). */
static uint64_t warmup_msgs(size_t size)
{
	return clamp_u64((double)(8 * MIB) / (double)size, 32, 10000);
}

static uint64_t warmup_rtts(size_t size)
{
	return clamp_u64((double)(4 * MIB) / (double)size, 8, 1000);
}

/* counts that fill the time budget at the rate just seen */
static uint64_t tput_count(double rate)
{
	return clamp_u64(rate * cfg.rep_s, 200, 200000000);
}

static uint64_t lat_count(const struct hist *h)
{
	return clamp_u64(cfg.lat_s / cfg.reps * 1e9 * (double)h->count / h->sum,
			 (1000 + cfg.reps - 1) / cfg.reps, 20000000);
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

static void *alloc_buf(size_t size)
{
	size_t len = (size + 4095) & ~(size_t)4095;
	void *p = aligned_alloc(4096, len);

	if (!p)
		fail("out of memory for a %zu-byte buffer", size);
	memset(p, 0x5a, len);           /* fault it in before the clock runs */
	return p;
}

static void close_fd(int fd)
{
	if (fd >= 0 && close(fd) != 0)
		fail_errno("close");
}

static struct shmring *open_role(const char *uri, int role, const struct shmring_opts *o)
{
	struct shmring *r;
	int rc = shmring_open(uri, role, o, &r);

	if (rc < 0)
		fail("shmring_open %s as %s: %s", uri,
		     role == SHMRING_PRODUCER ? "producer" : "consumer", shmring_strerror(rc));
	return r;
}

/* role 0 is A (producer, pinger), role 1 is B (consumer, ponger) */
static void ep_open(struct ep *e, int role, const struct transport *t, size_t size,
		    const struct plan *pl, struct resources *res)
{
	memset(e, 0, sizeof(*e));
	e->size = size;
	e->fd_tx = e->fd_rx = -1;

	switch (t->res) {
	case RES_SHMRING: {
		const struct shmring_opts *o = t->fallback ? &g_ring_opts : NULL;
		if (role == 0) {
			e->tx = open_role(g_uris[0], SHMRING_PRODUCER, o);
			if (pl->lat)
				e->rx = open_role(g_uris[1], SHMRING_CONSUMER, o);
		} else {
			e->rx = open_role(g_uris[0], SHMRING_CONSUMER, o);
			if (pl->lat)
				e->tx = open_role(g_uris[1], SHMRING_PRODUCER, o);
		}
		break;
	}
	case RES_PIPE:
		/* keep only our ends, so a dead peer shows as EOF or EPIPE */
		if (role == 0) {
			e->fd_tx = res->pipe_ab[1];
			e->fd_rx = res->pipe_ba[0];
			close_fd(res->pipe_ab[0]);
			close_fd(res->pipe_ba[1]);
		} else {
			e->fd_rx = res->pipe_ab[0];
			e->fd_tx = res->pipe_ba[1];
			close_fd(res->pipe_ab[1]);
			close_fd(res->pipe_ba[0]);
		}
		break;
	case RES_UNIX:
		e->fd_tx = e->fd_rx = res->sp[role];
		close_fd(res->sp[1 - role]);
		break;
	case RES_LINE: {
		struct line *lines = res->area;
		e->mine = &lines[role];
		e->peer = &lines[1 - role];
		break;
	}
	case RES_BARE:
		e->bare = res->area;
		e->slots = (unsigned char *)res->area + 4096;
		e->slot_stride = res->slot_stride;
		break;
	}
	if (t->res == RES_SHMRING || t->res == RES_PIPE || t->res == RES_UNIX) {
		e->sbuf = alloc_buf(size);
		e->rbuf = alloc_buf(size);
	}
}

static void ep_close(struct ep *e)
{
	if (e->tx) {
		int rc = shmring_close(e->tx);
		if (rc < 0)
			fail_rc("shmring_close", rc);
	}
	if (e->rx) {
		int rc = shmring_close(e->rx);
		if (rc < 0)
			fail_rc("shmring_close", rc);
	}
	close_fd(e->fd_tx);
	if (e->fd_rx != e->fd_tx)
		close_fd(e->fd_rx);
	free(e->sbuf);
	free(e->rbuf);
}

static struct hist g_hist;

static noreturn void child_main(int role, const struct transport *t, size_t size,
				const struct plan *pl, struct resources *res, struct ctl *ctl)
{
	struct ep e;
	uint64_t seq_ab = 1, seq_ba = 1;       /* next sequence number each way */
	struct sigaction sa;

	g_child = true;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0)
		fail_errno("sigaction");
	alarm(cfg.watchdog_s);
	pin_to(g_cpu[role]);
	ep_open(&e, role, t, size, pl, res);
	barrier_wait(&ctl->bar);               /* both attached */

	if (pl->tput) {
		if (role == 0) {
			if (pl->warmup)
				t->produce(&e, &seq_ab, warmup_msgs(size));
			barrier_wait(&ctl->bar);        /* B has chosen tput_n */
			e.full = 0;
			t->produce(&e, &seq_ab, ctl->tput_n);
			ctl->full = e.full;
		} else {
			if (pl->warmup) {
				double rate = t->consume(&e, &seq_ab, warmup_msgs(size));
				if (!ctl->tput_n)
					ctl->tput_n = tput_count(rate);
			}
			barrier_wait(&ctl->bar);        /* the timed rep starts */
			e.empty = 0;
			ctl->rate = t->consume(&e, &seq_ab, ctl->tput_n);
			ctl->empty = e.empty;
		}
	}

	if (pl->lat) {
		uint64_t wn = warmup_rtts(size);
		if (role == 0) {
			h_reset(&g_hist);
			t->ping(&e, &seq_ab, &seq_ba, wn, &g_hist);
			if (!ctl->lat_n)
				ctl->lat_n = lat_count(&g_hist);
			barrier_wait(&ctl->bar);        /* B knows lat_n */
			h_reset(&g_hist);
			t->ping(&e, &seq_ab, &seq_ba, ctl->lat_n, &g_hist);
			memcpy(&ctl->hist, &g_hist, sizeof(g_hist));
		} else {
			t->pong(&e, &seq_ba, &seq_ab, wn);
			barrier_wait(&ctl->bar);
			t->pong(&e, &seq_ba, &seq_ab, ctl->lat_n);
		}
	}

	if (role == 0)
		ctl->sent_ab = seq_ab - 1;
	ctl->sink[role] = e.sink;
	ep_close(&e);
	_exit(0);
}

/* ---------------------------------------------------------------------- */
/* parent                                                                   */

static void *map_shared(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		fail_errno("mmap");
	return p;
}

static void set_pipe_size(int fd)
{
	if (g_pipe_size > 0 && fcntl(fd, F_SETPIPE_SZ, g_pipe_size) < 0)
		fail_errno("fcntl(F_SETPIPE_SZ)");
}

static void make_pipe(int p[2])
{
	if (pipe2(p, O_CLOEXEC) != 0)
		fail_errno("pipe2");
	set_pipe_size(p[1]);
}

static void res_setup(struct resources *res, const struct transport *t, size_t size,
		      const struct plan *pl)
{
	memset(res, 0, sizeof(*res));
	res->pipe_ab[0] = res->pipe_ab[1] = res->pipe_ba[0] = res->pipe_ba[1] = -1;
	res->sp[0] = res->sp[1] = -1;

	switch (t->res) {
	case RES_SHMRING:
		for (int i = 0; i < (pl->lat ? 2 : 1); i++) {
			struct shmring_opts o;
			int rc;

			memset(&o, 0, sizeof(o));
			o.kind = SHMRING_SPSC;
			o.capacity = MIB;
			if (size >= 64 * KIB) {
				o.capacity = 8 * size > MIB ? 8 * size : MIB;
				o.max_msg = (uint32_t)size;
			}
			o.flags = SHMRING_PREFAULT;
			if (t->fallback && strncmp(t->ring_fmt, "mq:", 3) == 0) {
				/* a queue of the depth the system allows */
				o.max_msg = (uint32_t)size;
				o.capacity = size * (g_mq_msg_max < 64 ? g_mq_msg_max : 64);
			}
			g_ring_opts = o;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
			snprintf(g_uris[i], sizeof(g_uris[i]),
				 t->ring_fmt ? t->ring_fmt : "shm:bench-%ld-%u-%c",
				 (long)getpid(), g_case_no, i ? 'b' : 'a');
#pragma GCC diagnostic pop
			rc = shmring_open(g_uris[i], SHMRING_CREATE | SHMRING_EXCL, &o, &res->ring[i]);
			if (rc < 0) {
				char uri[sizeof(g_uris[i])];
				memcpy(uri, g_uris[i], sizeof(uri));
				g_uris[i][0] = '\0';   /* not ours: leave it alone */
				fail("shmring_open %s (create): %s", uri, shmring_strerror(rc));
			}
		}
		break;
	case RES_PIPE:
		make_pipe(res->pipe_ab);
		make_pipe(res->pipe_ba);
		break;
	case RES_UNIX:
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, res->sp) != 0)
			fail_errno("socketpair");
		break;
	case RES_LINE:
		res->area_len = 4096;
		res->area = map_shared(res->area_len);
		break;
	case RES_BARE:
		res->slot_stride = (size + 4095) & ~(size_t)4095;
		res->area_len = 4096 + BARE_SLOTS * res->slot_stride;
		res->area = map_shared(res->area_len);
		break;
	}
}

static void res_teardown(struct resources *res, struct shmring_stats *st)
{
	for (int i = 0; i < 2; i++) {
		if (!res->ring[i])
			continue;
		if (i == 0 && st) {
			int rc = shmring_stats(res->ring[0], st);
			if (rc < 0)
				fail_rc("shmring_stats", rc);
		}
		int rc = shmring_unlink(g_uris[i]);
		if (rc < 0)
			fail_rc("shmring_unlink", rc);
		g_uris[i][0] = '\0';
		rc = shmring_close(res->ring[i]);
		if (rc < 0)
			fail_rc("shmring_close", rc);
		res->ring[i] = NULL;
	}
	if (res->area && munmap(res->area, res->area_len) != 0)
		fail_errno("munmap");
	res->area = NULL;
}

static void parent_close_fds(struct resources *res)
{
	int *fds[] = { &res->pipe_ab[0], &res->pipe_ab[1], &res->pipe_ba[0],
		       &res->pipe_ba[1], &res->sp[0], &res->sp[1] };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		close_fd(*fds[i]);
		*fds[i] = -1;
	}
}

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

static void wait_children(const struct transport *t, size_t size)
{
	for (int left = 2; left > 0;) {
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
		int who = pid == g_kids[0] ? 0 : pid == g_kids[1] ? 1 : -1;
		if (who < 0)
			continue;
		g_kids[who] = 0;
		left--;
		if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
			char buf[96];
			fail("%s %zu B: %s %s", t->name, size,
			     who == 0 ? "producer/pinger" : "consumer/ponger",
			     describe_status(st, buf, sizeof(buf)));
		}
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
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
}

/* One rep of a case: a fresh pair of processes and fresh resources. */
static void run_rep(struct case_result *cr, const struct plan *pl)
{
	const struct transport *t = cr->t;
	struct resources res;
	struct shmring_stats st;
	struct ctl *ctl;

	g_case_no++;
	res_setup(&res, t, cr->size, pl);
	ctl = map_shared(sizeof(*ctl));
	ctl->tput_n = cr->tput_n;
	ctl->lat_n = cr->lat_n;

	fflush(stdout);
	fflush(stderr);
	for (int role = 0; role < 2; role++) {
		pid_t pid = fork();
		if (pid < 0)
			fail_errno("fork");
		if (pid == 0)
			child_main(role, t, cr->size, pl, &res, ctl);
		g_kids[role] = pid;
	}
	parent_close_fds(&res);
	wait_children(t, cr->size);

	if (pl->tput) {
		cr->has_tput = true;
		/* the warm-up is short and may have hit a slow spell: size the
		 * next rep from this one */
		cr->tput_n = cfg.msgs ? ctl->tput_n : tput_count(ctl->rate);
		cr->rate[cr->reps] = ctl->rate;
		cr->full += ctl->full;
		cr->empty += ctl->empty;
		cr->streamed += ctl->tput_n;
	}
	if (pl->lat) {
		if (!cr->has_lat)
			h_reset(&cr->hist);
		cr->has_lat = true;
		cr->lat_n = cfg.msgs ? ctl->lat_n : lat_count(&ctl->hist);
		h_merge(&cr->hist, &ctl->hist);
	}
	cr->reps++;
	memset(&st, 0, sizeof(st));
	res_teardown(&res, t->res == RES_SHMRING ? &st : NULL);
	if (t->res == RES_SHMRING && !t->fallback) {
		if (st.msgs_sent != ctl->sent_ab || st.msgs_recv != ctl->sent_ab)
			fprintf(stderr, "shmring-bench: warning: %s %zu B: the ring counted %" PRIu64
				" sent and %" PRIu64 " received, the bench moved %" PRIu64 "\n",
				t->name, cr->size, st.msgs_sent, st.msgs_recv, ctl->sent_ab);
		add_stats(cr, &st);
	}
	if (munmap(ctl, sizeof(*ctl)) != 0)
		fail_errno("munmap");
}

static void finish_case(struct case_result *cr)
{
	if (cr->has_tput) {
		double r[MAX_REPS];
		unsigned n = cr->reps;
		memcpy(r, cr->rate, n * sizeof(r[0]));
		qsort(r, n, sizeof(r[0]), cmp_double);
		cr->rate_min = r[0];
		cr->rate_max = r[n - 1];
		cr->rate_med = n % 2 ? r[n / 2] : (r[n / 2 - 1] + r[n / 2]) / 2;
	}
	if (cr->has_lat) {
		const struct hist *h = &cr->hist;
		cr->lat = (struct lat_result){
			.samples = h->count, .min = h->min,
			.p50 = h_percentile(h, 0.50), .p99 = h_percentile(h, 0.99),
			.p999 = h_percentile(h, 0.999), .max = h->max,
			.mean = h->count ? h->sum / (double)h->count : 0,
		};
	}
}

/* ---------------------------------------------------------------------- */
/* machine description                                                      */

static void cpu_model(char *buf, size_t len)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[512];

	snprintf(buf, len, "unknown");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "model name", 10) == 0) {
			char *p = strchr(line, ':');
			if (p) {
				p++;
				while (*p == ' ' || *p == '\t')
					p++;
				p[strcspn(p, "\n")] = '\0';
				snprintf(buf, len, "%s", p);
			}
			break;
		}
	}
	fclose(f);
}

static void read_loadavg(void)
{
	FILE *f = fopen("/proc/loadavg", "r");
	double a, b, c;

	if (!f)
		return;
	if (fscanf(f, "%lf %lf %lf", &a, &b, &c) == 3)
		snprintf(g_loadavg, sizeof(g_loadavg), "%.2f %.2f %.2f", a, b, c);
	fclose(f);
}

static void kernel_name(char *buf, size_t len)
{
	struct utsname u;

	if (uname(&u) != 0)
		fail_errno("uname");
	snprintf(buf, len, "%s %s %s", u.sysname, u.release, u.machine);
}

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

static void probe_pipe_size(void)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC) != 0)
		fail_errno("pipe2");
	if (fcntl(p[1], F_SETPIPE_SZ, (int)MIB) >= 0) {
		g_pipe_size = (int)MIB;
		g_pipe_note = "1 MiB (F_SETPIPE_SZ)";
	} else if (errno == EPERM || errno == EBUSY || errno == EINVAL) {
		g_pipe_size = 0;
		g_pipe_note = "default (F_SETPIPE_SZ to 1 MiB refused)";
	} else {
		fail_errno("fcntl(F_SETPIPE_SZ)");
	}
	close_fd(p[0]);
	close_fd(p[1]);
}

static uint64_t read_sysctl(const char *path, uint64_t dflt)
{
	FILE *f = fopen(path, "r");
	unsigned long long v;

	if (!f)
		return dflt;
	if (fscanf(f, "%llu", &v) != 1)
		v = dflt;
	fclose(f);
	return v;
}

/* mq-ring runs within what the system allows a POSIX queue */
static void probe_mq_limits(void)
{
	g_mq_msg_max = read_sysctl("/proc/sys/fs/mqueue/msg_max", 10);
	g_mq_msgsize_max = read_sysctl("/proc/sys/fs/mqueue/msgsize_max", 8192);
}

/* ---------------------------------------------------------------------- */
/* output                                                                   */

static const char *fmt_size(size_t s, char *buf, size_t len)
{
	if (s >= MIB && s % MIB == 0)
		snprintf(buf, len, "%zu MiB", s / MIB);
	else if (s >= KIB && s % KIB == 0)
		snprintf(buf, len, "%zu KiB", s / KIB);
	else
		snprintf(buf, len, "%zu B", s);
	return buf;
}

static const char *fmt_rate(double r, char *buf, size_t len)
{
	if (r >= 1e6)
		snprintf(buf, len, "%.2f M", r / 1e6);
	else if (r >= 1e3)
		snprintf(buf, len, "%.1f k", r / 1e3);
	else
		snprintf(buf, len, "%.0f", r);
	return buf;
}

static const char *fmt_u64(uint64_t v, char *buf, size_t len)
{
	snprintf(buf, len, "%" PRIu64, v);
	return buf;
}

#define TABLE_FMT "%-13s %7s %10s %10s %9s %9s %9s %10s\n"

static void print_header(const char *cpu, const char *kern, long nproc)
{
	printf("shmring-bench: shmring %d.%d.%d, %s mode, median of %u reps\n",
	       SHMRING_VERSION_MAJOR, SHMRING_VERSION_MINOR, SHMRING_VERSION_PATCH,
	       cfg.msgs ? "fixed-count" : cfg.quick ? "quick" : "default", cfg.reps);
	printf("machine: %s, nproc %ld, %s, load average %s at start\n", cpu, nproc, kern, g_loadavg);
	if (g_cpu[0] >= 0)
		printf("pinning: producer/pinger on CPU %d, consumer/ponger on CPU %d; pipe buffer %s\n",
		       g_cpu[0], g_cpu[1], g_pipe_note);
	else
		printf("pinning: only %u CPU available: NOT pinned, spinning sides yield; "
		       "numbers are not meaningful; pipe buffer %s\n", g_ncpu_allowed, g_pipe_note);
	printf("\n" TABLE_FMT, "transport", "size", "msgs/s", "MB/s",
	       "rtt p50", "p99", "p99.9", "max (ns)");
	fflush(stdout);
}

static void print_row(const struct case_result *c)
{
	char sz[32], rate[32], mb[32], a[32], b[32], d[32], m[32];

	if (c->has_tput) {
		fmt_rate(c->rate_med, rate, sizeof(rate));
		snprintf(mb, sizeof(mb), "%.1f", c->rate_med * (double)c->size / 1e6);
	} else {
		snprintf(rate, sizeof(rate), "-");
		snprintf(mb, sizeof(mb), "-");
	}
	if (c->has_lat) {
		fmt_u64(c->lat.p50, a, sizeof(a));
		fmt_u64(c->lat.p99, b, sizeof(b));
		fmt_u64(c->lat.p999, d, sizeof(d));
		fmt_u64(c->lat.max, m, sizeof(m));
	} else {
		snprintf(a, sizeof(a), "-");
		snprintf(b, sizeof(b), "-");
		snprintf(d, sizeof(d), "-");
		snprintf(m, sizeof(m), "-");
	}
	printf(TABLE_FMT, c->t->name, fmt_size(c->size, sz, sizeof(sz)), rate, mb, a, b, d, m);
	fflush(stdout);
}

static const struct case_result *find(const struct case_result *res, unsigned n,
				      const char *name, size_t size)
{
	for (unsigned i = 0; i < n; i++)
		if (res[i].size == size && strcmp(res[i].t->name, name) == 0)
			return &res[i];
	return NULL;
}

struct ratio {
	const char *label;
	bool have;
	double value, goal;
	bool at_least;          /* goal is a lower bound */
	bool ok;
};

static unsigned compute_ratios(const struct case_result *res, unsigned n, struct ratio *out)
{
	const struct case_result *poll64 = find(res, n, "shmring-poll", 64);
	const struct case_result *pipe64 = find(res, n, "pipe", 64);
	const struct case_result *unix64 = find(res, n, "unix", 64);
	const struct case_result *line = find(res, n, "cacheline", 64);
	const struct case_result *zc1m = find(res, n, "shmring-zc", MIB);
	const struct case_result *bare1m = find(res, n, "bare-frame", MIB);
	unsigned k = 0;

	out[k] = (struct ratio){ "64 B msgs/s, shmring-poll / pipe", false, 0, 20, true, false };
	if (poll64 && pipe64 && poll64->has_tput && pipe64->rate_med > 0) {
		out[k].have = true;
		out[k].value = poll64->rate_med / pipe64->rate_med;
	}
	k++;
	out[k] = (struct ratio){ "64 B msgs/s, shmring-poll / unix", false, 0, 10, true, false };
	if (poll64 && unix64 && poll64->has_tput && unix64->rate_med > 0) {
		out[k].have = true;
		out[k].value = poll64->rate_med / unix64->rate_med;
	}
	k++;
	out[k] = (struct ratio){ "64 B rtt p50, shmring-poll / cacheline", false, 0, 1.3, false, false };
	if (poll64 && line && poll64->has_lat && line->lat.p50 > 0) {
		out[k].have = true;
		out[k].value = (double)poll64->lat.p50 / (double)line->lat.p50;
	}
	k++;
	out[k] = (struct ratio){ "1 MiB msgs/s, shmring-zc / bare-frame", false, 0, 0.85, true, false };
	if (zc1m && bare1m && zc1m->has_tput && bare1m->rate_med > 0) {
		out[k].have = true;
		out[k].value = zc1m->rate_med / bare1m->rate_med;
	}
	k++;
	const struct case_result *ft64 = find(res, n, "file-tmpfs", 64);
	const struct case_result *fd64 = find(res, n, "file-disk", 64);
	out[k] = (struct ratio){ "64 B msgs/s, file-tmpfs / shmring-poll", false, 0, 0.9, true, false };
	if (ft64 && poll64 && ft64->has_tput && poll64->rate_med > 0) {
		out[k].have = true;
		out[k].value = ft64->rate_med / poll64->rate_med;
	}
	k++;
	out[k] = (struct ratio){ "64 B msgs/s, file-disk / shmring-poll", false, 0, 0.75, true, false };
	if (fd64 && poll64 && fd64->has_tput && poll64->rate_med > 0) {
		out[k].have = true;
		out[k].value = fd64->rate_med / poll64->rate_med;
	}
	k++;
	for (unsigned i = 0; i < k; i++)
		out[i].ok = out[i].have &&
			    (out[i].at_least ? out[i].value >= out[i].goal : out[i].value <= out[i].goal);
	return k;
}

/* What the fallbacks cost next to the shm: ring with the same calls. */
static void print_fallback_cost(const struct case_result *res, unsigned n)
{
	bool head = false;

	for (unsigned i = 0; i < n; i++) {
		const struct case_result *f = &res[i];
		const struct case_result *s = find(res, n, "shmring-block", f->size);
		char sz[32];

		if (!f->t->fallback || !s)
			continue;
		if (!head)
			printf("\nfallback cost (against shmring-block, same size, this run):\n");
		head = true;
		printf("  %-10s %7s", f->t->name, fmt_size(f->size, sz, sizeof(sz)));
		if (f->has_tput && s->has_tput && s->rate_med > 0)
			printf("   msgs/s x%.3f", f->rate_med / s->rate_med);
		if (f->has_lat && s->has_lat && s->lat.p50 > 0)
			printf("   rtt p50 x%.1f", (double)f->lat.p50 / (double)s->lat.p50);
		printf("\n");
	}
}

static void print_footer(const struct case_result *res, unsigned n)
{
	struct ratio r[8];
	unsigned k = compute_ratios(res, n, r);

	printf("\nthroughput: payload bytes, MB = 10^6 B, timed by the consumer from the first to the\n"
	       "  last message of a rep, after an untimed warm-up; median of %u reps, taken in turn\n"
	       "  across all cases (min/max in --json).\n"
	       "rtt: ns per round trip, CLOCK_MONOTONIC, samples of all reps in one log-bucketed\n"
	       "  histogram (<= 1.6 %% error).\n"
	       "cacheline: rtt floor, one 64-byte line each way.  bare-frame: large-frame floor, run for\n"
	       "  sizes >= 1 KiB only (4 slots, so it is not a floor for small messages).\n"
	       "pipe-ring, mq-ring: the same API over the pipe: and mq: fallbacks, blocking calls;\n"
	       "  mq-ring's queue holds %" PRIu64 " messages (fs.mqueue.msg_max)%s.\n",
	       cfg.reps, g_mq_msg_max < 64 ? g_mq_msg_max : 64,
	       g_mq_skipped ? "; sizes above fs.mqueue.msgsize_max are not run (-EMSGSIZE)" : "");
	print_fallback_cost(res, n);
	printf("\nratios (goals from the issues, this run):\n");
	for (unsigned i = 0; i < k; i++) {
		if (r[i].have)
			printf("  %-40s %7.2f   goal %s %-5g %s\n", r[i].label, r[i].value,
			       r[i].at_least ? ">=" : "<=", r[i].goal,
			       g_cpu[0] < 0 ? "not judged (1 CPU)" : r[i].ok ? "ok" : "MISSED");
		else
			printf("  %-40s %7s   goal %s %-5g n/a (not run)\n", r[i].label, "-",
			       r[i].at_least ? ">=" : "<=", r[i].goal);
	}
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void print_json(const struct case_result *res, unsigned n, const char *cpu,
		       const char *kern, long nproc)
{
	struct ratio r[8];
	unsigned k = compute_ratios(res, n, r);

	printf("{\n  \"tool\": \"shmring-bench\",\n  \"shmring_version\": \"%d.%d.%d\",\n",
	       SHMRING_VERSION_MAJOR, SHMRING_VERSION_MINOR, SHMRING_VERSION_PATCH);
	printf("  \"mode\": \"%s\",\n  \"reps\": %u,\n",
	       cfg.msgs ? "fixed-count" : cfg.quick ? "quick" : "default", cfg.reps);
	printf("  \"machine\": { \"cpu\": ");
	json_str(cpu);
	printf(", \"nproc\": %ld, \"cpus_allowed\": %u, \"kernel\": ", nproc, g_ncpu_allowed);
	json_str(kern);
	printf(", \"loadavg_at_start\": ");
	json_str(g_loadavg);
	printf(", \"pinned\": %s, \"cpu_a\": %d, \"cpu_b\": %d, \"pipe_buffer\": ",
	       g_cpu[0] >= 0 ? "true" : "false", g_cpu[0], g_cpu[1]);
	json_str(g_pipe_note);
	printf(" },\n");
	printf("  \"method\": { \"throughput\": \"consumer clock, first to last message of each rep, "
	       "after an untimed warm-up; median of reps\", \"rtt\": \"ns per round trip, "
	       "CLOCK_MONOTONIC, log-bucketed histogram, 64 sub-buckets per power of two\", "
	       "\"mb\": 1000000 },\n");
	printf("  \"results\": [\n");
	for (unsigned i = 0; i < n; i++) {
		const struct case_result *c = &res[i];
		printf("    { \"transport\": \"%s\", \"size\": %zu, ", c->t->name, c->size);
		if (c->has_tput) {
			printf("\"throughput\": { \"msgs_timed\": %" PRIu64 ", \"reps\": %u, "
			       "\"msgs_per_s\": %.0f, \"msgs_per_s_min\": %.0f, \"msgs_per_s_max\": %.0f, "
			       "\"mb_per_s\": %.1f",
			       c->streamed, c->reps, c->rate_med, c->rate_min, c->rate_max,
			       c->rate_med * (double)c->size / 1e6);
			if (c->t->polls)        /* which side waited: the ring ran full or empty */
				printf(", \"full_tries_per_msg\": %.3f, \"empty_tries_per_msg\": %.3f",
				       (double)c->full / (double)c->streamed,
				       (double)c->empty / (double)c->streamed);
			printf(" }, ");
		} else {
			printf("\"throughput\": null, ");
		}
		if (c->has_lat)
			printf("\"rtt_ns\": { \"samples\": %" PRIu64 ", \"min\": %" PRIu64
			       ", \"mean\": %.1f, \"p50\": %" PRIu64 ", \"p99\": %" PRIu64
			       ", \"p99_9\": %" PRIu64 ", \"max\": %" PRIu64 " }",
			       c->lat.samples, c->lat.min, c->lat.mean, c->lat.p50, c->lat.p99,
			       c->lat.p999, c->lat.max);
		else
			printf("\"rtt_ns\": null");
		if (c->has_stats)
			printf(", \"ring_stats\": { \"msgs_sent\": %" PRIu64 ", \"msgs_recv\": %" PRIu64
			       ", \"waits_full\": %" PRIu64 ", \"waits_empty\": %" PRIu64
			       ", \"futex_wakes\": %" PRIu64 ", \"futex_sleeps\": %" PRIu64
			       ", \"capacity\": %" PRIu64 ", \"max_msg\": %u }",
			       c->st.msgs_sent, c->st.msgs_recv, c->st.waits_full, c->st.waits_empty,
			       c->st.futex_wakes, c->st.futex_sleeps, c->st.capacity, c->st.max_msg);
		printf(" }%s\n", i + 1 < n ? "," : "");
	}
	printf("  ],\n  \"ratios\": [\n");
	for (unsigned i = 0; i < k; i++) {
		printf("    { \"name\": ");
		json_str(r[i].label);
		if (r[i].have)
			printf(", \"value\": %.3f", r[i].value);
		else
			printf(", \"value\": null");
		printf(", \"goal\": \"%s %g\", \"ok\": %s }%s\n", r[i].at_least ? ">=" : "<=",
		       r[i].goal, r[i].ok ? "true" : "false", i + 1 < k ? "," : "");
	}
	printf("  ]\n}\n");
}

/* ---------------------------------------------------------------------- */
/* options                                                                  */

static void usage(void)
{
	printf("usage: shmring-bench [--quick] [--json] [--sizes LIST] [--transports LIST]\n"
	       "                     [--msgs N] [--reps N]\n"
	       "       shmring-bench --strace-run N\n"
	       "\n"
	       "Measures throughput (msgs/s, MB/s) and round-trip latency (p50/p99/p99.9/max)\n"
	       "of shmring and of the alternatives between two processes pinned to two CPUs,\n"
	       "and prints one table with the ratios the issues set as goals.\n"
	       "\n"
	       "  --quick            short time budget per case (what `make demo` runs, < 1 min)\n"
	       "  --json             one JSON document on stdout instead of the table\n"
	       "  --sizes LIST       message sizes, comma-separated, K/M suffixes allowed, >= 8\n"
	       "                     (default 8,64,1K,64K,1M)\n"
	       "  --transports LIST  comma-separated subset of:\n");
	for (size_t i = 0; i < N_TRANSPORTS; i++)
		printf("                       %-14s %s\n", transports[i].name, transports[i].note);
	printf("  --msgs N           timed messages per throughput rep, and timed round trips per\n"
	       "                     case (split over the reps); default: chosen after the first\n"
	       "                     warm-up to fill the time budget\n"
	       "  --reps N           reps per case, taken in turn across the cases; the median\n"
	       "                     throughput is shown (default 3, max %d)\n"
	       "  --strace-run N     only stream N 64-byte messages through one shmring-poll pair\n"
	       "                     (for strace -c -f: no system call per message)\n"
	       "  --help             this text\n"
	       "\n"
	       "Exit status: 0 when every case ran and every message checked out (missed goals\n"
	       "are printed, not fatal), 1 on a failure (bad sequence number, library error),\n"
	       "2 on a usage error.\n", MAX_REPS);
}

static uint64_t parse_count(const char *s, const char *opt, uint64_t lo, uint64_t hi)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = *s >= '0' && *s <= '9' ? strtoull(s, &end, 10) : 0;
	if (*s < '0' || *s > '9' || errno || *end != '\0' || v < lo || v > hi)
		usage_error("%s wants a whole number from %" PRIu64 " to %" PRIu64 ", not '%s'",
			    opt, lo, hi, s);
	return v;
}

static size_t parse_size(const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	if (*s < '0' || *s > '9')
		usage_error("bad size '%s' in --sizes", s);
	v = strtoull(s, &end, 10);
	if (errno)
		usage_error("bad size '%s' in --sizes", s);
	if (*end == 'k' || *end == 'K') {
		v *= KIB;
		end++;
	} else if (*end == 'm' || *end == 'M') {
		v *= MIB;
		end++;
	}
	if (*end == 'i' && (end[1] == 'B' || end[1] == 'b'))
		end += 2;
	else if (*end == 'B' || *end == 'b')
		end++;
	if (*end != '\0')
		usage_error("bad size '%s' in --sizes", s);
	if (v < 8 || v > MAX_SIZE)
		usage_error("size '%s' out of range (8 B to 64 MiB)", s);
	return (size_t)v;
}

static void parse_list(const char *arg, bool sizes)
{
	char buf[1024], *save = NULL;

	if (strlen(arg) >= sizeof(buf))
		usage_error("%s: list too long", sizes ? "--sizes" : "--transports");
	snprintf(buf, sizeof(buf), "%s", arg);
	if (sizes)
		cfg.n_sizes = 0;
	else
		memset(cfg.use, 0, sizeof(cfg.use));
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (sizes) {
			if (cfg.n_sizes == MAX_SIZES)
				usage_error("%s: too many sizes", "--sizes");
			cfg.sizes[cfg.n_sizes++] = parse_size(tok);
			continue;
		}
		size_t i;
		for (i = 0; i < N_TRANSPORTS; i++)
			if (strcmp(tok, transports[i].name) == 0)
				break;
		if (i == N_TRANSPORTS)
			usage_error("unknown transport '%s'", tok);
		cfg.use[i] = true;
	}
	if (sizes && cfg.n_sizes == 0)
		usage_error("%s: empty list", "--sizes");
	if (!sizes) {
		bool any = false;
		for (size_t i = 0; i < N_TRANSPORTS; i++)
			any |= cfg.use[i];
		if (!any)
			usage_error("%s: empty list", "--transports");
	}
}

static void on_signal(int sig)
{
	atomic_store(&g_signal, sig);
}

static void install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;      /* no SA_RESTART: waitpid returns EINTR */
	if (sigemptyset(&sa.sa_mask) != 0 || sigaction(SIGINT, &sa, NULL) != 0 ||
	    sigaction(SIGTERM, &sa, NULL) != 0)
		fail_errno("sigaction");
}

static int strace_run(uint64_t n)
{
	static struct case_result cr;
	struct plan pl = { .tput = true, .lat = false, .warmup = false };

	cr.t = &transports[0];          /* shmring-poll */
	cr.size = 64;
	cr.tput_n = n;
	run_rep(&cr, &pl);
	finish_case(&cr);
	printf("strace-run: %" PRIu64 " messages of 64 B through %s: %.2f M msgs/s\n",
	       n, cr.t->name, cr.rate_med / 1e6);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "json", no_argument, NULL, 'j' },
		{ "sizes", required_argument, NULL, 's' },
		{ "transports", required_argument, NULL, 't' },
		{ "msgs", required_argument, NULL, 'n' },
		{ "reps", required_argument, NULL, 'r' },
		{ "strace-run", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const size_t default_sizes[] = { 8, 64, KIB, 64 * KIB, MIB };
	uint64_t strace_n = 0;
	int c;

	cfg.reps = 3;
	for (size_t i = 0; i < sizeof(default_sizes) / sizeof(default_sizes[0]); i++)
		cfg.sizes[cfg.n_sizes++] = default_sizes[i];
	for (size_t i = 0; i < N_TRANSPORTS; i++)
		cfg.use[i] = true;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (c) {
		case 'q': cfg.quick = true; break;
		case 'j': cfg.json = true; break;
		case 's': parse_list(optarg, true); break;
		case 't': parse_list(optarg, false); break;
		case 'n': cfg.msgs = parse_count(optarg, "--msgs", 2, 1000000000000ull); break;
		case 'r': cfg.reps = (unsigned)parse_count(optarg, "--reps", 1, MAX_REPS); break;
		case 'S': strace_n = parse_count(optarg, "--strace-run", 2, 1000000000000ull); break;
		case 'h': usage(); return 0;
		case ':':
			usage_error("option '%s' needs an argument", argv[optind - 1]);
		default:
			if (optopt)
				usage_error("option '%s' takes no argument", argv[optind - 1]);
			usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		usage_error("unexpected argument '%s'", argv[optind]);

	cfg.rep_s = cfg.quick ? 0.05 : 0.25;
	cfg.lat_s = cfg.quick ? 0.08 : 0.5;
	/* a stuck case is a bug to report, not a reason to hang `make demo` */
	cfg.watchdog_s = cfg.msgs || strace_n ? 3600 : 120;

	install_signals();
	choose_cpus();
	probe_pipe_size();
	probe_mq_limits();

	if (strace_n)
		return strace_run(strace_n);

	char cpu[256], kern[256];
	long nproc = sysconf(_SC_NPROCESSORS_ONLN);
	cpu_model(cpu, sizeof(cpu));
	kernel_name(kern, sizeof(kern));
	read_loadavg();

	static struct case_result results[N_TRANSPORTS * MAX_SIZES];
	unsigned n_res = 0;
	bool tty = isatty(STDERR_FILENO);

	for (size_t ti = 0; ti < N_TRANSPORTS; ti++) {
		const struct transport *t = &transports[ti];
		if (!cfg.use[ti])
			continue;
		for (unsigned si = 0; si < cfg.n_sizes; si++) {
			size_t size = t->fixed_size ? t->fixed_size : cfg.sizes[si];
			if (size < t->min_size)
				continue;
			if (t->fallback && strncmp(t->ring_fmt, "mq:", 3) == 0 &&
			    size > g_mq_msgsize_max) {
				g_mq_skipped = true;    /* a queue refuses it: -EMSGSIZE */
				continue;
			}
			bool dup = false;
			for (unsigned k = 0; k < n_res; k++)
				dup |= results[k].t == t && results[k].size == size;
			if (dup)
				continue;
			results[n_res].t = t;
			results[n_res].size = size;
			results[n_res].tput_n = cfg.msgs;
			results[n_res].lat_n = cfg.msgs ? (cfg.msgs + cfg.reps - 1) / cfg.reps : 0;
			n_res++;
		}
	}

	if (!cfg.json)
		print_header(cpu, kern, nproc);
	/* Reps go round the cases, forwards then backwards, rather than three in
	 * a row: a slow spell of the machine (other load, a noisy VM host) then
	 * lands on every transport alike, and the ratios stay fair. */
	for (unsigned rep = 0; rep < cfg.reps; rep++) {
		for (unsigned k = 0; k < n_res; k++) {
			struct case_result *cr = &results[rep % 2 ? n_res - 1 - k : k];
			struct plan pl = {
				.tput = cr->t->produce != NULL, .lat = cr->t->ping != NULL,
				.warmup = true,
			};
			if (tty) {
				char sz[32];
				fprintf(stderr, "\r  rep %u/%u: %-13s %-8s", rep + 1, cfg.reps,
					cr->t->name, fmt_size(cr->size, sz, sizeof(sz)));
			}
			run_rep(cr, &pl);
		}
	}
	if (tty)
		fprintf(stderr, "\r%40s\r", "");
	for (unsigned k = 0; k < n_res; k++) {
		finish_case(&results[k]);
		if (!cfg.json)
			print_row(&results[k]);
	}
	if (cfg.json)
		print_json(results, n_res, cpu, kern, nproc);
	else
		print_footer(results, n_res);
	if (fflush(stdout) != 0 || ferror(stdout))
		fail_errno("writing stdout");
	return 0;
}
