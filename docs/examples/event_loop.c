/* SPDX-License-Identifier: MIT */
/*
 * event_loop: a gateway that waits for several rings, a timer and its
 * signals in one epoll set.
 *
 *   event_loop [--rings N] [--produce MSGS] [--stats-ms MS] [--edge]
 *              [--backend shm|mpmc|pipe|mq]
 *
 * The gateway (this process) creates N rings and consumes them all from
 * one thread: each ring's shmring_fd(), a timerfd that prints a stats
 * line every --stats-ms milliseconds, and a signalfd for SIGTERM and
 * SIGINT sit in one epoll set (level-triggered, or edge-triggered with
 * --edge).  The rings are SPSC rings shm:event-loop-PID-I; --backend mpmc
 * makes them MPMC, pipe and mq use the fallbacks pipe:/tmp/event-loop-PID-I
 * and mq:event-loop-PID-I: the loop is the same for all.
 *
 * When a ring's descriptor is readable the gateway receives with timeout
 * 0 until -EAGAIN, which re-arms the descriptor; a ring whose stream ends
 * (-EPIPE) leaves the set.  On SIGTERM or SIGINT it stops its producers,
 * closes and removes its rings, prints what each ring delivered and exits.
 *
 * --produce MSGS forks one producer per ring that sends MSGS messages
 * (0: until stopped) in bursts with pauses, then shuts its ring down.  A
 * producer sends with timeout 0 and waits for room with poll(2) on its
 * own handle's shmring_fd().  Without --produce the gateway prints the
 * ring names and waits for producers of your own.
 *
 * Every message carries its ring, a sequence number and a payload derived
 * from it; the gateway checks that each ring's messages arrive complete
 * and in order.
 *
 * Build: cc -O2 event_loop.c -lshmring
 * Exit status: 0 stopped by a signal and every message was right, 1
 * failure (a lost, reordered or damaged message, a library error), 2 bad
 * arguments.
 */
#include <shmring.h>

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_RINGS 64
#define MAX_PAYLOAD 240
#define TAG_TIMER (MAX_RINGS + 1)
#define TAG_SIGNAL (MAX_RINGS + 2)

/* One message: a header and 0 to MAX_PAYLOAD bytes of payload. */
struct msg {
	uint64_t seq;           /* 1, 2, 3, ... per ring */
	uint32_t ring;
	uint32_t len;           /* payload bytes */
	uint8_t payload[MAX_PAYLOAD];
};

struct args {
	const char *backend;    /* shm, mpmc, pipe, mq */
	unsigned rings;
	uint64_t produce;       /* messages per producer; 0: until stopped */
	bool producers;         /* --produce given */
	unsigned stats_ms;
	bool edge;
};

/* What the gateway knows of one ring. */
struct ring {
	struct shmring *r;
	char uri[64];
	int fd;                 /* shmring_fd(), owned by the handle */
	uint64_t msgs;          /* received */
	uint64_t bad;           /* out of order or damaged */
	bool ended;             /* -EPIPE seen */
	pid_t producer;         /* 0: none forked */
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t next_rand(uint64_t *s)
{
	/* xorshift64: a different stream per producer */
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static uint8_t pattern(uint64_t seq, uint32_t i)
{
	return (uint8_t)(seq * 31u + i);
}

/* ---- producer (a child process) ------------------------------------------ */

/* Send one message; wait for room with poll(2) on the handle's descriptor. */
static int send_polled(struct shmring *p, int fd, const struct msg *m, size_t len)
{
	for (;;) {
		int rc = shmring_send(p, m, len, fd >= 0 ? 0 : SHMRING_FOREVER);
		if (rc != -EAGAIN)
			return rc;
		/* that -EAGAIN armed fd: it turns readable when there is room */
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			return -errno;
	}
}

static int produce(const char *uri, const struct shmring_opts *o, unsigned ring, uint64_t count)
{
	struct shmring *p;
	int rc = shmring_open(uri, SHMRING_PRODUCER, o, &p);  /* pipe: needs the same opts */
	if (rc < 0) {
		fprintf(stderr, "producer %u: open %s: %s\n", ring, uri, shmring_strerror(rc));
		return 1;
	}
	/* A backend without a descriptor: block in shmring_send instead. */
	int fd = shmring_fd(p);
	uint64_t seed = (now_ns() ^ ((uint64_t)getpid() << 32) ^ ring) | 1;  /* never 0 */
	struct msg m = { .ring = ring };
	for (uint64_t seq = 1; rc >= 0 && (count == 0 || seq <= count); seq++) {
		m.seq = seq;
		m.len = (uint32_t)(next_rand(&seed) % (MAX_PAYLOAD + 1));
		for (uint32_t i = 0; i < m.len; i++)
			m.payload[i] = pattern(seq, i);
		rc = send_polled(p, fd, &m, offsetof(struct msg, payload) + m.len);
		/* bursts of about 64 messages, then a pause of up to 200 us,
		 * so that the gateway falls asleep and is woken often */
		if (rc >= 0 && next_rand(&seed) % 64 == 0) {
			struct timespec pause = { 0, (long)(next_rand(&seed) % 200000) };
			nanosleep(&pause, NULL);
		}
	}
	if (rc < 0)
		fprintf(stderr, "producer %u: send: %s\n", ring, shmring_strerror(rc));
	else
		rc = shmring_shutdown(p);      /* end of stream: the gateway sees -EPIPE */
	shmring_close(p);
	return rc < 0 ? 1 : 0;
}

/* ---- gateway ---------------------------------------------------------- */

static void check(struct ring *g, unsigned i, const struct msg *m, ssize_t n)
{
	bool ok = n >= (ssize_t)offsetof(struct msg, payload) && m->ring == i &&
		  m->len <= MAX_PAYLOAD && (size_t)n == offsetof(struct msg, payload) + m->len &&
		  m->seq == g->msgs + 1;
	for (uint32_t k = 0; ok && k < m->len; k++)
		ok = m->payload[k] == pattern(m->seq, k);
	if (!ok && g->bad++ == 0)
		fprintf(stderr, "ring %u: message %" PRIu64 " out of order or damaged\n", i,
			g->msgs + 1);
	g->msgs++;
}

/* Receive until -EAGAIN (which re-arms the descriptor) or the end of the
 * stream.  0, or -errno of a failed call. */
static int drain(struct ring *g, unsigned i, int ep)
{
	struct msg m;
	ssize_t n;
	while ((n = shmring_recv(g->r, &m, sizeof(m), 0)) >= 0)
		check(g, i, &m, n);
	if (n == -EAGAIN)
		return 0;
	if (n == -EPIPE) {
		g->ended = true;
		epoll_ctl(ep, EPOLL_CTL_DEL, g->fd, NULL);
		printf("ring %u: end of stream after %" PRIu64 " messages\n", i, g->msgs);
		return 0;
	}
	fprintf(stderr, "ring %u: recv: %s\n", i, shmring_strerror((int)n));
	return (int)n;
}

static void stats_line(const struct ring *g, unsigned rings, uint64_t t0)
{
	uint64_t msgs = 0, wakes = 0, spurious = 0;
	unsigned ended = 0;
	for (unsigned i = 0; i < rings; i++) {
		struct shmring_stats st;
		msgs += g[i].msgs;
		ended += g[i].ended;
		if (shmring_stats(g[i].r, &st) == 0) {
			wakes += st.poll_wakes;
			spurious += st.poll_spurious;
		}
	}
	printf("stats: %.1f s, %" PRIu64 " messages, %u/%u rings ended, poll wakes %" PRIu64
	       ", spurious %" PRIu64 "\n",
	       (double)(now_ns() - t0) / 1e9, msgs, ended, rings, wakes, spurious);
}

/* The signals that stop the gateway. */
static sigset_t stop_signals(void)
{
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	return sigs;
}

/* A timerfd that fires every ms milliseconds, and a signalfd for SIGTERM
 * and SIGINT (blocked in this process, so they come only through it). */
static int loop_fds(unsigned ms, int *tfd, int *sfd)
{
	sigset_t sigs = stop_signals();
	*tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	*sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	if (*tfd < 0 || *sfd < 0)
		return -errno;
	struct itimerspec it = {
		.it_interval = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000 },
		.it_value = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000 },
	};
	return timerfd_settime(*tfd, 0, &it, NULL) < 0 ? -errno : 0;
}

static int add(int ep, int fd, uint32_t tag, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.u32 = tag };
	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

/* The loop: until a signal comes.  0, or -errno. */
static int serve(struct ring *g, const struct args *a)
{
	int tfd = -1, sfd = -1, rc = 0;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	uint32_t in = EPOLLIN | (a->edge ? EPOLLET : 0);
	uint64_t t0 = now_ns();
	if (ep < 0)
		rc = -errno;
	if (rc < 0 || (rc = loop_fds(a->stats_ms, &tfd, &sfd)) < 0 ||
	    (rc = add(ep, tfd, TAG_TIMER, EPOLLIN)) < 0 || (rc = add(ep, sfd, TAG_SIGNAL, EPOLLIN)) < 0)
		goto out;
	unsigned live = a->rings;
	for (unsigned i = 0; i < a->rings && rc == 0; i++) {
		if ((rc = add(ep, g[i].fd, i, in)) == 0)
			rc = drain(&g[i], i, ep);  /* the first -EAGAIN arms the descriptor */
		live -= g[i].ended;
	}
	if (rc == 0 && live == 0)
		printf("all %u rings ended\n", a->rings);
	bool stop = false;
	while (rc == 0 && !stop) {
		struct epoll_event ev[16];
		int n = epoll_wait(ep, ev, 16, -1);
		if (n < 0 && errno != EINTR)
			rc = -errno;
		for (int k = 0; k < n && rc == 0; k++) {
			uint32_t tag = ev[k].data.u32;
			if (tag == TAG_TIMER) {
				uint64_t expired;
				if (read(tfd, &expired, sizeof(expired)) == (ssize_t)sizeof(expired))
					stats_line(g, a->rings, t0);
			} else if (tag == TAG_SIGNAL) {
				struct signalfd_siginfo si;
				if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
					printf("%s: stopping\n", strsignal((int)si.ssi_signo));
					stop = true;
				}
			} else if (tag < a->rings && !g[tag].ended) {
				rc = drain(&g[tag], tag, ep);
				if (g[tag].ended && --live == 0)
					printf("all %u rings ended\n", a->rings);
			}
		}
	}
out:
	if (rc < 0 && rc != -EPIPE)
		fprintf(stderr, "event loop: %s\n", strerror(-rc));
	if (ep >= 0)
		close(ep);
	if (tfd >= 0)
		close(tfd);
	if (sfd >= 0)
		close(sfd);
	return rc;
}

/* ---- setup and the end ------------------------------------------------ */

static int usage(const char *why)
{
	fprintf(stderr, "event_loop: %s\n", why);
	fprintf(stderr,
		"usage: event_loop [--rings 1-%d] [--produce MSGS] [--stats-ms MS] [--edge]\n"
		"                  [--backend shm|mpmc|pipe|mq]\n",
		MAX_RINGS);
	return 2;
}

static bool parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	if (!s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return false;
	*out = v;
	return true;
}

static int parse(int argc, char **argv, struct args *a)
{
	*a = (struct args){ .backend = "shm", .rings = 4, .stats_ms = 1000 };
	for (int i = 1; i < argc; i++) {
		uint64_t v;
		if (!strcmp(argv[i], "--rings")) {
			if (i + 1 >= argc || !parse_u64(argv[++i], MAX_RINGS, &v) || v == 0)
				return usage("--rings wants 1 to 64");
			a->rings = (unsigned)v;
		} else if (!strcmp(argv[i], "--produce")) {
			if (i + 1 >= argc || !parse_u64(argv[++i], 1000000000, &v))
				return usage("--produce wants 0 (until stopped) to 1000000000");
			a->produce = v;
			a->producers = true;
		} else if (!strcmp(argv[i], "--stats-ms")) {
			if (i + 1 >= argc || !parse_u64(argv[++i], 3600000, &v) || v == 0)
				return usage("--stats-ms wants 1 to 3600000");
			a->stats_ms = (unsigned)v;
		} else if (!strcmp(argv[i], "--backend")) {
			const char *b = i + 1 < argc ? argv[++i] : "";
			if (strcmp(b, "shm") && strcmp(b, "mpmc") && strcmp(b, "pipe") && strcmp(b, "mq"))
				return usage("--backend wants shm, mpmc, pipe or mq");
			a->backend = b;
		} else if (!strcmp(argv[i], "--edge")) {
			a->edge = true;
		} else {
			return usage("unknown argument");
		}
	}
	return 0;
}

/* Stop the producers that still run and collect them: 0 if each finished
 * well or was stopped here, else 1. */
static int reap(struct ring *g, unsigned rings)
{
	int fail = 0;
	for (unsigned i = 0; i < rings; i++) {
		int st;
		if (g[i].producer <= 0)
			continue;
		kill(g[i].producer, SIGTERM);   /* a zombie's pid is still ours */
		if (waitpid(g[i].producer, &st, 0) != g[i].producer)
			continue;
		if (WIFEXITED(st) ? WEXITSTATUS(st) != 0 : WTERMSIG(st) != SIGTERM) {
			fprintf(stderr, "producer %u failed (status %#x)\n", i, (unsigned)st);
			fail = 1;
		}
	}
	return fail;
}

/* The closing report: every ring, then the total.  0 if all was right. */
static int report(const struct ring *g, const struct args *a)
{
	uint64_t total = 0, bad = 0;
	int fail = 0;
	for (unsigned i = 0; i < a->rings; i++) {
		total += g[i].msgs;
		bad += g[i].bad;
		printf("ring %u: %" PRIu64 " messages, %s%s\n", i, g[i].msgs,
		       g[i].bad ? "NOT in order" : "in order", g[i].ended ? ", ended" : "");
		/* a stream that ended must have delivered all it was given */
		if (a->producers && a->produce && g[i].ended && g[i].msgs != a->produce) {
			fprintf(stderr, "ring %u: %" PRIu64 " of %" PRIu64 " messages\n", i,
				g[i].msgs, a->produce);
			fail = 1;
		}
	}
	printf("total: %" PRIu64 " messages on %u rings, %" PRIu64 " out of order or damaged\n",
	       total, a->rings, bad);
	return fail || bad;
}

int main(int argc, char **argv)
{
	static struct ring g[MAX_RINGS];
	struct args a;
	int rc = parse(argc, argv, &a);
	if (rc)
		return rc;
	setvbuf(stdout, NULL, _IOLBF, 0);

	/* SIGTERM and SIGINT arrive through the signalfd only; blocked
	 * before the producers are forked, which unblock them */
	sigset_t sigs = stop_signals();
	sigprocmask(SIG_BLOCK, &sigs, NULL);

	/* mq: a queue of 8 messages, within the default fs.mqueue.msg_max */
	bool mq = !strcmp(a.backend, "mq");
	struct shmring_opts o = { .capacity = mq ? 8 * sizeof(struct msg) : 64 << 10,
				  .max_msg = sizeof(struct msg) };
	if (!strcmp(a.backend, "mpmc"))
		o.kind = SHMRING_MPMC;
	const char *fmt = !strcmp(a.backend, "pipe") ? "pipe:/tmp/event-loop-%ld-%u"
			  : mq ? "mq:event-loop-%ld-%u" : "shm:event-loop-%ld-%u";
	unsigned made = 0;
	for (; made < a.rings && rc == 0; made++) {
		struct ring *r = &g[made];
		snprintf(r->uri, sizeof(r->uri), fmt, (long)getpid(), made);
		rc = shmring_open(r->uri, SHMRING_CREATE | SHMRING_EXCL | SHMRING_CONSUMER, &o,
				  &r->r);
		if (rc == 0 && (r->fd = shmring_fd(r->r)) < 0) {
			rc = r->fd;
			shmring_close(r->r);
		}
		if (rc < 0) {
			fprintf(stderr, "%s: %s\n", r->uri, shmring_strerror(rc));
			shmring_unlink(r->uri);
			break;
		}
	}
	pid_t gateway = getpid();
	for (unsigned i = 0; i < made && rc == 0; i++) {
		if (!a.producers) {
			printf("ring %u: %s, waiting for a producer\n", i, g[i].uri);
			continue;
		}
		fflush(NULL);
		g[i].producer = fork();
		if (g[i].producer < 0) {
			rc = -errno;
			perror("fork");
		} else if (g[i].producer == 0) {
			/* a gateway that dies, however, takes its producers along */
			prctl(PR_SET_PDEATHSIG, SIGTERM);
			if (getppid() != gateway)
				_exit(1);       /* it died before the line above */
			sigprocmask(SIG_UNBLOCK, &sigs, NULL);
			for (unsigned j = 0; j < made; j++)
				shmring_close(g[j].r);  /* the gateway's handles: no role here */
			int st = produce(g[i].uri, &o, i, a.produce);
			fflush(NULL);
			_exit(st);
		}
	}
	if (rc == 0) {
		printf("gateway %ld: %u %s rings, stats every %u ms, %s-triggered\n", (long)gateway,
		       a.rings, a.backend, a.stats_ms, a.edge ? "edge" : "level");
		rc = serve(g, &a);
	}
	int fail = reap(g, made);
	for (unsigned i = 0; i < made; i++) {
		shmring_close(g[i].r);          /* closes its descriptor too */
		shmring_unlink(g[i].uri);
	}
	if (made == a.rings)
		fail |= report(g, &a);
	if (rc < 0 || fail) {
		printf("FAILED\n");
		return 1;
	}
	return 0;
}
