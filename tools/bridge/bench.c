/* SPDX-License-Identifier: MIT */
/*
 * shmring-bridge --bench: what the bridge costs beside the NATS client used
 * directly, in one run on one machine (core NATS, loopback).
 *
 *   direct   a NATS connection publishes N messages, another subscribes
 *   bridge   a ring -> outbound bridge -> NATS -> inbound bridge -> a ring
 *
 * Rates: N messages as fast as they go, first send to last receive.
 * Latency: messages sent one by one, 50 us apart, each carrying its send
 * time (CLOCK_MONOTONIC, the same clock in every process); p50 and p99 of
 * receive time minus send time.  The bridges run as child processes of
 * this program (the same binary); a nats-server -js is started on a free
 * loopback port in a temporary directory unless --url names one.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bridge.h"

#define LAT_MSGS 20000
#define LAT_GAP_NS 50000

struct bench {
	char url[128];             /* nats://127.0.0.1:PORT */
	char dir[64];              /* the server's temporary directory, or "" */
	pid_t server;
	uint64_t msgs_small, msgs_big;
	int seq;                   /* ring and subject names */
};

/* ---- the server ------------------------------------------------------------ */

static int port_open(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

static int server_start(struct bench *b)
{
	static const char *const dirs[] = {"/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"};
	char exe[256] = "";
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]) && !exe[0]; i++) {
		snprintf(exe, sizeof(exe), "%s/nats-server", dirs[i]);
		if (access(exe, X_OK))
			exe[0] = 0;
	}
	if (!exe[0]) {
		br_err("--bench: nats-server is not installed (Debian: nats-server), or give --url");
		return BR_USAGE;
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || getsockname(fd, (struct sockaddr *)&a, &al)) {
		br_err("--bench: no free port: %s", strerror(errno));
		return BR_FAIL;
	}
	close(fd);
	int port = ntohs(a.sin_port);
	snprintf(b->dir, sizeof(b->dir), "/tmp/shmring-bridge-bench.XXXXXX");
	if (!mkdtemp(b->dir)) {
		br_err("--bench: mkdtemp: %s", strerror(errno));
		return BR_FAIL;
	}
	char ps[16], store[96], log[96];
	snprintf(ps, sizeof(ps), "%d", port);
	snprintf(store, sizeof(store), "%s/store", b->dir);
	snprintf(log, sizeof(log), "%s/server.log", b->dir);
	b->server = fork();
	if (b->server == 0) {
		int lf = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (lf >= 0) {
			dup2(lf, 1);
			dup2(lf, 2);
		}
		execl(exe, "nats-server", "-js", "-a", "127.0.0.1", "-p", ps, "-sd", store, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 1000 && !port_open(port); i++)
		br_sleep_ns(10000000);
	if (!port_open(port)) {
		br_err("--bench: nats-server did not start (see %s)", log);
		return BR_FAIL;
	}
	snprintf(b->url, sizeof(b->url), "nats://127.0.0.1:%d", port);
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *f)
{
	(void)st; (void)type; (void)f;
	remove(path);
	return 0;
}

static void server_stop(struct bench *b)
{
	if (b->server > 0) {
		kill(b->server, SIGTERM);
		waitpid(b->server, NULL, 0);
	}
	if (b->dir[0])
		nftw(b->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- measuring --------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t pct(uint64_t *v, size_t n, double p)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_u64);
	size_t i = (size_t)(p * (double)(n - 1));
	return v[i];
}

/* what a receiver records: count, time of the last, latencies */
struct recv_log {
	uint64_t n, want, last_ns;
	uint64_t *lat;             /* LAT_MSGS entries when measuring latency */
	bool failed;
};

static void note(struct recv_log *r, const void *data, size_t len)
{
	uint64_t now = br_now_ns();
	if (r->lat && len >= 8 && r->n < LAT_MSGS) {
		uint64_t t;
		memcpy(&t, data, 8);
		r->lat[r->n] = now - t;
	}
	r->last_ns = now;
	/* read by the measuring thread: the count last, released */
	__atomic_store_n(&r->n, r->n + 1, __ATOMIC_RELEASE);
}

/* the sender: n messages of len bytes, the send time first; paced when
 * measuring latency */
typedef int (*send_fn)(void *ctx, const void *p, size_t len);

static uint64_t send_all(send_fn fn, void *ctx, uint64_t n, size_t len, bool paced)
{
	unsigned char *buf = calloc(1, len < 8 ? 8 : len);
	uint64_t start = br_now_ns(), next = start;
	for (uint64_t i = 0; i < n && buf; i++) {
		if (paced) {
			while (br_now_ns() < next)
				;
			next += LAT_GAP_NS;
		}
		uint64_t now = br_now_ns();
		memcpy(buf, &now, 8);
		if (len >= 16)
			memcpy(buf + 8, &i, 8);
		if (fn(ctx, buf, len) < 0)
			break;
	}
	free(buf);
	return start;
}

static bool wait_all(struct recv_log *r, uint64_t max_s)
{
	uint64_t end = br_now_ns() + max_s * 1000000000u;
	while (__atomic_load_n(&r->n, __ATOMIC_ACQUIRE) < r->want && br_now_ns() < end && !br_stop)
		br_sleep_ns(1000000);
	return r->n >= r->want;
}

/* ---- direct: the NATS client alone ------------------------------------------- */

static void on_direct(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
	(void)nc; (void)sub;
	struct recv_log *r = closure;
	note(r, natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m));
	natsMsg_Destroy(m);
}

struct direct_pub {
	natsConnection *nc;
	const char *subject;
};

static int direct_send(void *ctx, const void *p, size_t len)
{
	struct direct_pub *d = ctx;
	for (;;) {
		natsStatus s = natsConnection_Publish(d->nc, d->subject, p, (int)len);
		if (s == NATS_OK)
			return 0;
		if (s != NATS_INSUFFICIENT_BUFFER)
			return -1;
		br_sleep_ns(100000);
	}
}

/* 0 and *rate / r->lat filled, or -1 */
static int run_direct(struct bench *b, uint64_t n, size_t len, bool paced, double *rate,
		      struct recv_log *r)
{
	natsConnection *pub = NULL, *sub_nc = NULL;
	natsSubscription *sub = NULL;
	char subject[64];
	snprintf(subject, sizeof(subject), "bench.direct.%d.%d", getpid(), b->seq++);
	r->want = n;
	int rc = -1;
	if (natsConnection_ConnectTo(&pub, b->url) != NATS_OK ||
	    natsConnection_ConnectTo(&sub_nc, b->url) != NATS_OK ||
	    natsConnection_Subscribe(&sub, sub_nc, subject, on_direct, r) != NATS_OK ||
	    natsSubscription_SetPendingLimits(sub, -1, -1) != NATS_OK ||
	    natsConnection_Flush(sub_nc) != NATS_OK) {
		br_err("--bench: direct: %s", nats_GetLastError(NULL));
		goto out;
	}
	struct direct_pub d = {pub, subject};
	uint64_t start = send_all(direct_send, &d, n, len, paced);
	natsConnection_Flush(pub);
	if (!wait_all(r, 120)) {
		br_err("--bench: direct: %llu of %llu messages arrived", (unsigned long long)r->n,
		       (unsigned long long)n);
		goto out;
	}
	*rate = (double)n / ((double)(r->last_ns - start) / 1e9);
	rc = 0;
out:
	natsSubscription_Destroy(sub);
	natsConnection_Destroy(sub_nc);
	natsConnection_Destroy(pub);
	return rc;
}

/* ---- through the bridges -------------------------------------------------------- */

static pid_t spawn_bridge(const char *a, const char *bb, const char *linger)
{
	pid_t pid = fork();
	if (pid == 0) {
		int dn = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (dn >= 0)
			dup2(dn, 2);
		execl("/proc/self/exe", "shmring-bridge", a, bb, "--quiet", "--linger-us", linger,
		      "--capacity", "64M", "--max-msg", "4M", (char *)NULL);
		_exit(127);
	}
	return pid;
}

struct ring_cons {
	struct shmring *r;
	struct recv_log *log;
	size_t cap;
	int stop;                  /* set by the measuring thread */
};

static void *ring_consumer(void *p)
{
	struct ring_cons *c = p;
	unsigned char *buf = malloc(c->cap);
	while (buf && !__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
		ssize_t len = shmring_recv(c->r, buf, c->cap, 100000000);
		if (len == -ETIMEDOUT)
			continue;
		if (len < 0)
			break;
		note(c->log, buf, (size_t)len);
	}
	free(buf);
	return NULL;
}

static int ring_send(void *ctx, const void *p, size_t len)
{
	return shmring_send(ctx, p, len, SHMRING_FOREVER);
}

static int run_bridge(struct bench *b, uint64_t n, size_t len, bool paced, double *rate,
		      struct recv_log *r)
{
	char src[64], dst[64], addr[200];
	int k = b->seq++;
	snprintf(src, sizeof(src), "shm:bridge-bench-src-%d-%d", getpid(), k);
	snprintf(dst, sizeof(dst), "shm:bridge-bench-dst-%d-%d", getpid(), k);
	snprintf(addr, sizeof(addr), "%s/bench.bridge.%d.%d", b->url, getpid(), k);
	struct shmring_opts o = {.kind = SHMRING_SPSC, .capacity = 64u << 20, .max_msg = 4u << 20};
	struct shmring *prod = NULL, *cons = NULL;
	pid_t in = -1, out = -1;
	pthread_t th;
	bool th_on = false;
	int rc = -1;
	r->want = n;
	if ((rc = shmring_open(src, SHMRING_CREATE | SHMRING_EXCL | SHMRING_PRODUCER, &o, &prod)) < 0 ||
	    (rc = shmring_open(dst, SHMRING_CREATE | SHMRING_EXCL | SHMRING_CONSUMER, &o, &cons)) < 0) {
		br_err("--bench: rings: %s", shmring_strerror(rc));
		rc = -1;
		goto out;
	}
	rc = -1;
	const char *linger = paced ? "0" : "100";
	in = spawn_bridge(addr, dst, linger);
	out = spawn_bridge(src, addr, linger);
	/* both subscribed and attached: the producer's ring has its consumer,
	 * the consumer's ring its producer */
	for (int i = 0; i < 500; i++) {
		struct shmring_stats a, c;
		if (shmring_stats(prod, &a) == 0 && shmring_stats(cons, &c) == 0 &&
		    a.consumers && c.producers)
			break;
		br_sleep_ns(10000000);
	}
	br_sleep_ns(300000000);                 /* the inbound bridge's subscription */
	struct ring_cons rcn = {cons, r, 4u << 20, 0};
	if (pthread_create(&th, NULL, ring_consumer, &rcn))
		goto out;
	th_on = true;
	uint64_t start = send_all(ring_send, prod, n, len, paced);
	if (!wait_all(r, 120)) {
		br_err("--bench: bridge: %llu of %llu messages arrived", (unsigned long long)r->n,
		       (unsigned long long)n);
		goto out;
	}
	*rate = (double)n / ((double)(r->last_ns - start) / 1e9);
	rc = 0;
out:
	if (prod)
		shmring_shutdown(prod);        /* the end of the stream stops both bridges */
	if (out > 0 && waitpid(out, NULL, 0) < 0)
		kill(out, SIGKILL);
	if (in > 0) {
		br_sleep_ns(200000000);
		kill(in, SIGTERM);
		waitpid(in, NULL, 0);
	}
	if (th_on) {
		__atomic_store_n(&rcn.stop, 1, __ATOMIC_RELEASE);
		pthread_join(th, NULL);
	}
	if (prod)
		shmring_close(prod);
	if (cons)
		shmring_close(cons);
	shmring_unlink(src);
	shmring_unlink(dst);
	return rc;
}

/* ---- the report ---------------------------------------------------------------- */

static int one_size(struct bench *b, uint64_t n, size_t len, const char *label)
{
	double rd = 0, rb = 0, dummy;
	struct recv_log a = {0}, c = {0};
	if (run_direct(b, n, len, false, &rd, &a) || run_bridge(b, n, len, false, &rb, &c))
		return BR_FAIL;
	printf("%-6s  %9llu msgs   direct %12.0f msg/s %9.1f MB/s   bridge %12.0f msg/s %9.1f MB/s"
	       "   ratio %.2f\n", label, (unsigned long long)n, rd, rd * (double)len / 1e6, rb,
	       rb * (double)len / 1e6, rb / rd);
	fflush(stdout);
	if (len > 4096)
		return 0;
	uint64_t *ld = calloc(LAT_MSGS, 8), *lb = calloc(LAT_MSGS, 8);
	struct recv_log x = {.lat = ld}, y = {.lat = lb};
	int rc = BR_FAIL;
	if (ld && lb && !run_direct(b, LAT_MSGS, len, true, &dummy, &x) &&
	    !run_bridge(b, LAT_MSGS, len, true, &dummy, &y)) {
		uint64_t d50 = pct(ld, LAT_MSGS, 0.5), d99 = pct(ld, LAT_MSGS, 0.99);
		uint64_t b50 = pct(lb, LAT_MSGS, 0.5), b99 = pct(lb, LAT_MSGS, 0.99);
		printf("%-6s  latency, one message every %d us: direct p50 %.1f us p99 %.1f us; "
		       "bridge (--linger-us 0) p50 %.1f us p99 %.1f us; added p50 %.1f us p99 %.1f us\n",
		       label, LAT_GAP_NS / 1000, (double)d50 / 1e3, (double)d99 / 1e3, (double)b50 / 1e3,
		       (double)b99 / 1e3, ((double)b50 - (double)d50) / 1e3,
		       ((double)b99 - (double)d99) / 1e3);
		rc = 0;
	}
	free(ld);
	free(lb);
	return rc;
}

int br_bench(int argc, char **argv)
{
	static const struct option lo[] = {
		{"url", required_argument, 0, 'u'},
		{"msgs", required_argument, 0, 'n'},
		{"big-msgs", required_argument, 0, 'N'},
		{0, 0, 0, 0},
	};
	struct bench b = {.msgs_small = 2000000, .msgs_big = 2000};
	int o;
	opterr = 0;
	optind = 1;
	while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		char *end;
		switch (o) {
		case 'u':
			if (strncmp(optarg, "nats://", 7) || strlen(optarg) >= sizeof(b.url)) {
				br_err("--bench: --url nats://HOST:PORT");
				return BR_USAGE;
			}
			snprintf(b.url, sizeof(b.url), "%s", optarg);
			break;
		case 'n':
		case 'N':
			errno = 0;
			uint64_t v = strtoull(optarg, &end, 10);
			if (errno || *end || v == 0 || v > 100000000) {
				br_err("--bench: bad count '%s'", optarg);
				return BR_USAGE;
			}
			*(o == 'n' ? &b.msgs_small : &b.msgs_big) = v;
			break;
		default:
			br_err("--bench: usage: shmring-bridge --bench [--url nats://HOST:PORT] "
			       "[--msgs N] [--big-msgs N]");
			return BR_USAGE;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	int rc;
	if (!b.url[0] && (rc = server_start(&b)))
		return rc;
	printf("shmring-bridge --bench: core NATS at %s; ring -> bridge -> NATS -> bridge -> ring "
	       "against one NATS client publishing to another\n", b.url);
	rc = one_size(&b, b.msgs_small, 64, "64 B");
	if (!rc)
		rc = one_size(&b, b.msgs_big, 1u << 20, "1 MiB");
	server_stop(&b);
	nats_Close();
	return rc;
}
