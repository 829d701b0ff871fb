/* SPDX-License-Identifier: MIT */
/*
 * market_data: a feed handler publishes quotes to strategy processes over
 * shmring, and each strategy measures tick-to-strategy latency.
 *
 *   market_data [--strategies N] [--quotes N] [--rate QUOTES_PER_S] [--spin] [--spsc]
 *
 * The feed handler (this process) creates one broadcast ring
 * (SHMRING_BCAST): it writes every quote once, and every strategy -- a
 * subscriber -- reads every quote.  It forks the strategies, waits until
 * all of them have joined (a subscriber receives what is published after
 * it joined), then publishes quotes at a steady rate, stamping each with
 * CLOCK_MONOTONIC just before the send.  A strategy takes the time when it
 * has the quote in hand; the difference is the tick-to-strategy latency
 * (the clock is the same for every process on one machine).  At the end
 * the feed shuts the ring down, each strategy drains it, checks it saw
 * every quote in order, and prints its latency percentiles.
 *
 * The ring is blocking (the default): the feed waits for the slowest live
 * strategy; one that stalls longer than opts.stall_ms is evicted and told
 * so by -EOVERFLOW, which this example counts as a failure.  A feed that
 * must never wait would create the ring with SHMRING_OVERWRITE and let a
 * slow strategy lose the oldest quotes (counted in its shmring_stats).
 *
 * --spsc does the same the way it was done before broadcast rings: one
 * SPSC ring per strategy, the feed sending every quote N times.  What the
 * broadcast ring changed, measured on a shared 2-core VM, unpaced
 * (--rate 0), 1 million quotes: with 8 strategies the feed spent 97-129
 * ns of CPU per quote against 232-587 ns through 8 SPSC rings (with 4:
 * 119-129 against 94-132, about even).  The feed finished sooner with
 * SPSC rings (8 strategies: 1.05-1.54 s against 1.82-2.64 s): each of
 * them buffers 4096 quotes for its own reader, while the broadcast feed
 * keeps pace with the slowest of 8 strategies sharing 2 cores.  Where
 * strategies have cores of their own, the feed's cost is what limits a
 * fan-out; shmring-bench's producer-CPU cases (docs/PERFORMANCE.md)
 * measure it.
 *
 * Strategies wait with SHMRING_FOREVER: a short spin, then a futex sleep,
 * so an idle strategy costs no CPU; --spin makes them busy-poll instead
 * (lowest latency, one core each).
 *
 * Build: cc -O2 market_data.c -lshmring
 * Exit status: 0 ok, 1 failure (a lost or reordered quote, a library
 * error), 2 bad arguments.
 */
#include <shmring.h>

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_STRATEGIES 16

/* One quote on the wire: 64 bytes, one cache line. */
struct quote {
	uint64_t seq;           /* 1, 2, 3, ... per feed */
	uint64_t sent_ns;       /* CLOCK_MONOTONIC when published */
	uint32_t instrument;
	uint32_t flags;
	int64_t bid_px, ask_px; /* price in 1e-8 units */
	uint32_t bid_qty, ask_qty;
	uint8_t pad[16];
};
_Static_assert(sizeof(struct quote) == 64, "a quote is one cache line");

struct args {
	unsigned strategies;
	uint64_t quotes;
	uint64_t rate;          /* quotes per second; 0: as fast as possible */
	bool spin;
	bool spsc;              /* one SPSC ring per strategy instead */
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* the broadcast ring is ring 0; --spsc: ring i is strategy i's */
static void ring_uri(char *buf, size_t len, pid_t feed, unsigned i)
{
	snprintf(buf, len, "shm:market-data-%ld-%u", (long)feed, i);
}

static unsigned n_rings(const struct args *a)
{
	return a->spsc ? a->strategies : 1;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static uint64_t percentile(const uint64_t *sorted, uint64_t n, double q)
{
	uint64_t i = (uint64_t)(q * (double)(n - 1) + 0.5);
	return sorted[i < n ? i : n - 1];
}

/* ---------------------------------------------------------------------- */
/* a strategy process                                                       */

static int strategy(unsigned id, pid_t feed, const struct args *a, int joined)
{
	char uri[64];
	struct shmring *r;
	struct quote q;
	uint64_t *lat, got = 0;
	int64_t timeout = a->spin ? 0 : SHMRING_FOREVER;
	ssize_t n;
	int rc;

	lat = malloc(a->quotes * sizeof(*lat));
	if (!lat) {
		fprintf(stderr, "strategy %u: out of memory\n", id);
		return 1;
	}
	ring_uri(uri, sizeof(uri), feed, a->spsc ? id : 0);
	rc = shmring_open(uri, SHMRING_CONSUMER, NULL, &r);
	if (rc < 0) {
		fprintf(stderr, "strategy %u: open %s: %s\n", id, uri, shmring_strerror(rc));
		return 1;
	}
	/* subscribed: tell the feed (one byte; its end of the pipe sees EOF
	 * if we die before) */
	if (write(joined, "j", 1) != 1) {
		perror("strategy: write");
		return 1;
	}
	close(joined);
	/* -EPIPE: the feed shut the ring down and we have drained it */
	while ((n = shmring_recv(r, &q, sizeof(q), timeout)) != -EPIPE) {
		if (n == -EAGAIN)
			continue;               /* --spin: nothing yet, poll again */
		if (n < 0) {
			/* -EOVERFLOW: we stalled past stall_ms and were evicted */
			fprintf(stderr, "strategy %u: recv: %s\n", id, shmring_strerror((int)n));
			return 1;
		}
		uint64_t t = now_ns();
		if (n != (ssize_t)sizeof(q) || q.seq != got + 1 || got == a->quotes) {
			fprintf(stderr, "strategy %u: expected quote %" PRIu64 ", got %" PRIu64
				" (%zd bytes)\n", id, got + 1, q.seq, n);
			return 1;
		}
		lat[got++] = t - q.sent_ns;
		/* a real strategy would update its book and decide here */
	}
	shmring_close(r);
	if (got != a->quotes) {
		fprintf(stderr, "strategy %u: %" PRIu64 " of %" PRIu64 " quotes\n", id, got, a->quotes);
		return 1;
	}
	qsort(lat, got, sizeof(*lat), cmp_u64);
	printf("strategy %u: %" PRIu64 " quotes, tick-to-strategy ns: p50 %" PRIu64 "  p99 %"
	       PRIu64 "  p99.9 %" PRIu64 "  p99.99 %" PRIu64 "  max %" PRIu64 "\n", id, got,
	       percentile(lat, got, 0.50), percentile(lat, got, 0.99),
	       percentile(lat, got, 0.999), percentile(lat, got, 0.9999), lat[got - 1]);
	fflush(stdout);
	free(lat);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* the feed handler                                                         */

static int publish(struct shmring **rings, const struct args *a)
{
	uint64_t start = now_ns(), period = a->rate ? 1000000000u / a->rate : 0;
	struct quote q;

	memset(&q, 0, sizeof(q));
	for (uint64_t i = 1; i <= a->quotes; i++) {
		/* pace the feed: spin until this quote's time */
		if (period)
			while (now_ns() < start + (i - 1) * period)
				;
		q.seq = i;
		q.instrument = (uint32_t)(i % 500);
		q.bid_px = 10000000000 + (int64_t)(i % 97) * 1000000;
		q.ask_px = q.bid_px + 1000000;
		q.bid_qty = 100;
		q.ask_qty = 200;
		q.sent_ns = now_ns();
		for (unsigned s = 0; s < n_rings(a); s++) {
			/* a strategy that stalls for a second is a failure here
			 * (broadcast: it is evicted after stall_ms, and the feed
			 * goes on without it) */
			int rc = shmring_send(rings[s], &q, sizeof(q), 1000000000);
			if (rc < 0) {
				fprintf(stderr, "feed: send to ring %u: %s\n", s,
					shmring_strerror(rc));
				return 1;
			}
		}
	}
	return 0;
}

static int usage(const char *why)
{
	fprintf(stderr, "market_data: %s\n"
		"usage: market_data [--strategies 1-%d] [--quotes N] [--rate QUOTES_PER_S] [--spin]\n"
		"                   [--spsc]\n",
		why, MAX_STRATEGIES);
	return 2;
}

static bool parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

int main(int argc, char **argv)
{
	struct args a = { .strategies = 2, .quotes = 1000000, .rate = 200000, .spin = false };
	struct shmring *rings[MAX_STRATEGIES];
	pid_t kids[MAX_STRATEGIES], feed = getpid();
	char uri[64];
	int status = 0;

	for (int i = 1; i < argc; i++) {
		const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t v;

		if (strcmp(opt, "--spin") == 0) {
			a.spin = true;
			continue;
		}
		if (strcmp(opt, "--spsc") == 0) {
			a.spsc = true;
			continue;
		}
		i++;                            /* the others take a value */
		if (strcmp(opt, "--strategies") == 0) {
			if (!parse_u64(val, 1, MAX_STRATEGIES, &v))
				return usage("--strategies wants 1 to 16");
			a.strategies = (unsigned)v;
		} else if (strcmp(opt, "--quotes") == 0) {
			if (!parse_u64(val, 1, 100000000, &v))
				return usage("--quotes wants 1 to 100000000");
			a.quotes = v;
		} else if (strcmp(opt, "--rate") == 0) {
			if (!parse_u64(val, 0, 1000000000, &v))
				return usage("--rate wants 0 (unpaced) to 1000000000");
			a.rate = v;
		} else {
			return usage("unknown argument");
		}
	}

	/* one broadcast ring (--spsc: one ring per strategy), 4096 quotes deep */
	for (unsigned s = 0; s < n_rings(&a); s++) {
		struct shmring_opts o = { .kind = a.spsc ? SHMRING_SPSC : SHMRING_BCAST,
					  .capacity = 4096 * 96, .max_msg = sizeof(struct quote),
					  .flags = SHMRING_PREFAULT };
		ring_uri(uri, sizeof(uri), feed, s);
		int rc = shmring_open(uri, SHMRING_CREATE | SHMRING_EXCL | SHMRING_PRODUCER, &o,
				      &rings[s]);
		if (rc < 0) {
			fprintf(stderr, "feed: create %s: %s\n", uri, shmring_strerror(rc));
			return 1;
		}
	}
	int joined[2];
	if (pipe(joined) != 0) {
		perror("pipe");
		return 1;
	}
	fflush(stdout);
	for (unsigned s = 0; s < a.strategies; s++) {
		kids[s] = fork();
		if (kids[s] < 0) {
			perror("fork");
			return 1;
		}
		if (kids[s] == 0) {
			close(joined[0]);
			_exit(strategy(s, feed, &a, joined[1]));
		}
	}
	close(joined[1]);

	/* a subscriber gets what is published after it joined: wait for all */
	for (unsigned s = 0; s < a.strategies && status == 0; s++) {
		char c;
		if (read(joined[0], &c, 1) != 1) {
			fprintf(stderr, "feed: a strategy failed before it joined\n");
			status = 1;
		}
	}
	close(joined[0]);

	uint64_t t0 = now_ns();
	struct rusage ru0, ru1;
	getrusage(RUSAGE_SELF, &ru0);
	if (status == 0)
		status = publish(rings, &a);
	getrusage(RUSAGE_SELF, &ru1);
	double secs = (double)(now_ns() - t0) / 1e9;
	double cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec +
			      ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) * 1e9 +
		     (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec +
			      ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) * 1e3;
	for (unsigned s = 0; s < n_rings(&a); s++) {
		shmring_shutdown(rings[s]);     /* end of stream: strategies drain, then exit */
		shmring_close(rings[s]);
	}
	for (unsigned s = 0; s < a.strategies; s++) {
		int st;
		if (waitpid(kids[s], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			status = 1;
	}
	for (unsigned s = 0; s < n_rings(&a); s++) {
		ring_uri(uri, sizeof(uri), feed, s);
		shmring_unlink(uri);
	}
	printf("feed: %" PRIu64 " quotes to %u strategies (%s) in %.2f s (%.0f quotes/s each), "
	       "feed CPU %.0f ns per quote%s\n", a.quotes, a.strategies,
	       a.spsc ? "one SPSC ring each" : "one broadcast ring", secs,
	       (double)a.quotes / secs, cpu / (double)a.quotes, status ? "; FAILED" : "");
	return status;
}
