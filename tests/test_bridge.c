/* SPDX-License-Identifier: MIT */
/*
 * shmring-bridge through a real nats-server (started here on 127.0.0.1, on
 * a free port, with its store in a temporary directory): a producer's ring,
 * the outbound bridge, NATS, the inbound bridge, a consumer's ring.  The
 * producer writes a seeded random stream; the consumer regenerates it, so
 * it knows the length and every byte of each message (its sequence number
 * first, then bytes derived from it): a lost, duplicated, reordered or torn
 * message fails at its sequence number.
 *
 * Short forms run in make check; SHMRING_BRIDGE_LONG=1 (make
 * check-bridge-long) runs the long ones: a million messages of 1 B..256 KiB,
 * 20 + 20 kill -9 of the bridges and 5 restarts of the server.
 * Skipped, with a message, when nats-server is not installed.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <ftw.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

static int long_run(void)
{
	const char *s = getenv("SHMRING_BRIDGE_LONG");
	return s && *s && strcmp(s, "0");
}

static const char *bridge_path(void)
{
	static char path[512];
	const char *b = getenv("SHMRING_TEST_BUILD");
	snprintf(path, sizeof(path), "%s/shmring-bridge", b ? b : "build");
	return path;
}

static const char *server_path(void)
{
	static const char *const dirs[] = {"/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"};
	static char path[256];
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/nats-server", dirs[i]);
		if (access(path, X_OK) == 0)
			return path;
	}
	return NULL;
}

/* ---- the server ----------------------------------------------------------- */

struct server {
	pid_t pid;
	int port;
	char dir[64];             /* store and log */
	char url[64];             /* nats://127.0.0.1:PORT */
	bool tls;                 /* with DIR/srv.pem and DIR/srv.key */
	const char *conf;         /* a configuration file (-c) instead of JetStream */
};

/* the servers' directories, removed by the suite's .fini, and every
 * process started, killed by it if a failed test left it running */
static char dirs[8][64];
static unsigned ndirs;
static pid_t pids[256];
static unsigned npids;

static void track(pid_t pid)
{
	if (npids < sizeof(pids) / sizeof(pids[0]))
		pids[npids++] = pid;
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *f)
{
	(void)st; (void)type; (void)f;
	remove(path);
	return 0;
}

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(fd >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	cr_assert(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	cr_assert(getsockname(fd, (struct sockaddr *)&a, &al) == 0);
	close(fd);
	return ntohs(a.sin_port);
}

static int port_open(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

static void server_init(struct server *s)
{
	const char *ns = server_path();
	if (!ns)
		cr_skip_test("nats-server is not installed (Debian: nats-server; make bridge-deps)");
	memset(s, 0, sizeof(*s));
	snprintf(s->dir, sizeof(s->dir), "/tmp/shmring-nats.XXXXXX");
	cr_assert(mkdtemp(s->dir));
	if (ndirs < sizeof(dirs) / sizeof(dirs[0]))
		snprintf(dirs[ndirs++], sizeof(dirs[0]), "%s", s->dir);
	s->port = free_port();
	snprintf(s->url, sizeof(s->url), "nats://127.0.0.1:%d", s->port);
}

/* fork and exec path with argv, its stdout and stderr appended to log */
static pid_t spawn_logged(const char *path, char *const argv[], const char *log)
{
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(path, argv);
		_exit(127);
	}
	track(pid);
	return pid;
}

static void server_start(struct server *s)
{
	char port[16], store[96], log[96];
	snprintf(port, sizeof(port), "%d", s->port);
	snprintf(store, sizeof(store), "%s/store", s->dir);
	snprintf(log, sizeof(log), "%s/server.log", s->dir);
	char cert[96], key[96];
	snprintf(cert, sizeof(cert), "%s/srv.pem", s->dir);
	snprintf(key, sizeof(key), "%s/srv.key", s->dir);
	char *argv[] = {"nats-server", "-js", "-a", "127.0.0.1", "-p", port, "-sd", store,
			s->tls ? "--tls" : NULL, "--tlscert", cert, "--tlskey", key, NULL};
	char *conf_argv[] = {"nats-server", "-c", (char *)s->conf, "-a", "127.0.0.1", "-p", port,
			     NULL};
	s->pid = spawn_logged(server_path(), s->conf ? conf_argv : argv, log);
	for (int i = 0; i < 1000 && !port_open(s->port); i++)
		t_sleep_ms(10);
	cr_assert(port_open(s->port), "nats-server did not start (see %s)", log);
}

static void server_stop(struct server *s)
{
	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		t_wait(s->pid);
	}
	s->pid = 0;
}

/* ---- the bridges ------------------------------------------------------------ */

/* argv for shmring-bridge with args (NULL-terminated) */
static void bridge_argv(char *argv[32], const char *const *args)
{
	int n = 0;
	argv[n++] = "shmring-bridge";
	for (; *args && n < 31; args++)
		argv[n++] = (char *)*args;
	argv[n] = NULL;
}

/* Start shmring-bridge with args, its output into log. */
static pid_t bridge_start(const char *log, const char *const *args)
{
	char *argv[32];
	bridge_argv(argv, args);
	return spawn_logged(bridge_path(), argv, log);
}

/* Run shmring-bridge with args to its end (killed after limit_s). */
static struct t_run bridge_run(const char *const *args, unsigned limit_s)
{
	char *argv[32];
	bridge_argv(argv, args);
	return t_run_prog(bridge_path(), argv, NULL, NULL, limit_s);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return strdup("");
	char *buf = NULL;
	size_t len = 0;
	char chunk[4096];
	size_t k;
	while ((k = fread(chunk, 1, sizeof(chunk), f)) > 0)
		t_append(&buf, &len, chunk, k);
	fclose(f);
	return buf ? buf : strdup("");
}

/* ---- the stream of messages ------------------------------------------------ */

struct gen {
	uint64_t rnd;
	uint32_t max;              /* largest message */
	uint32_t big_every;        /* every so many, a frame of big bytes (0: none) */
	uint32_t big;
	uint32_t min;              /* shortest message */
};

/* log-uniform 1..max: every size class equally often */
static uint32_t gen_len(struct gen *g, uint64_t seq)
{
	uint64_t r = t_rand(&g->rnd);
	if (g->big_every && seq % g->big_every == g->big_every - 1)
		return g->big - (uint32_t)(r % 64);
	unsigned bits = 0;
	while ((1ull << bits) < g->max)
		bits++;
	unsigned b = (unsigned)(r % (bits + 1));
	uint64_t hi = (1ull << b), v = hi + ((r >> 16) % hi);
	if (v > g->max)
		v = g->max;
	v -= v > 1 ? (r >> 40) % 2 : 0;
	return (uint32_t)(v < g->min ? g->min : v);
}

static void make_msg(uint8_t *buf, uint32_t len, uint64_t seq)
{
	t_fill(buf, len, seq);
	memcpy(buf, &seq, len < 8 ? len : 8);
}

struct prod_arg {
	const char *uri;
	uint64_t n;
	struct gen g;
	unsigned pause_every;      /* a short sleep every so many messages (0: never) */
};

static int producer(void *p)
{
	struct prod_arg *a = p;
	struct shmring *r;
	if (shmring_open(a->uri, SHMRING_PRODUCER, NULL, &r) < 0)
		return 10;
	uint8_t *buf = malloc(a->g.big > a->g.max ? a->g.big : a->g.max);
	struct gen g = a->g;
	for (uint64_t i = 0; i < a->n; i++) {
		uint32_t len = gen_len(&g, i);
		make_msg(buf, len, i);
		int rc = shmring_send(r, buf, len, SHMRING_FOREVER);
		if (rc < 0)
			return 11;
		if (a->pause_every && i % a->pause_every == 0)
			usleep(1000);
	}
	if (shmring_shutdown(r) < 0)
		return 12;
	shmring_close(r);
	free(buf);
	return 0;
}

struct result {
	_Atomic uint64_t got;      /* messages checked so far */
	_Atomic int done;          /* 1: end of stream seen; 2: failed */
	uint64_t bad_seq;
	char why[200];
};

struct cons_arg {
	const char *uri;
	uint64_t n;
	struct gen g;
	unsigned slow_every;       /* sleep 1 ms every so many messages (0: never) */
	bool gaps;                 /* at most once: messages may be missing (g.min >= 8) */
	struct result *res;
};

static int consumer(void *p)
{
	struct cons_arg *a = p;
	struct result *res = a->res;
	struct shmring *r;
	int rc = shmring_open(a->uri, SHMRING_CONSUMER, NULL, &r);
	if (rc < 0) {
		snprintf(res->why, sizeof(res->why), "open %s: %s", a->uri, shmring_strerror(rc));
		res->done = 2;
		return 1;
	}
	uint32_t cap = a->g.big > a->g.max ? a->g.big : a->g.max;
	uint8_t *buf = malloc(cap), *want = malloc(cap);
	struct gen g = a->g;
	uint64_t got = 0;
	for (uint64_t i = 0;; i++) {
		ssize_t len = shmring_recv(r, buf, cap, SHMRING_FOREVER);
		if (len == -EPIPE) {
			if (got != a->n && !a->gaps) {
				snprintf(res->why, sizeof(res->why), "end of stream after %llu of %llu",
					 (unsigned long long)got, (unsigned long long)a->n);
				res->done = 2;
				return 1;
			}
			res->done = 1;
			return 0;
		}
		uint64_t seq = ~0ull;
		if (len >= 8)
			memcpy(&seq, buf, 8);
		/* at most once: skip to the message that came, never back */
		while (a->gaps && len >= 8 && seq > i && seq < a->n) {
			gen_len(&g, i);
			i++;
		}
		uint32_t wl = gen_len(&g, i);
		make_msg(want, wl, i);
		if (len < 0 || i >= a->n || (uint32_t)len != wl || memcmp(buf, want, wl)) {
			res->bad_seq = i;
			snprintf(res->why, sizeof(res->why),
				 "message %llu: got %zd bytes (seq %lld), want %u bytes",
				 (unsigned long long)i, len, (long long)seq, wl);
			res->done = 2;
			return 1;
		}
		atomic_store(&res->got, ++got);
		if (a->slow_every && i % a->slow_every == 0)
			usleep(1000);
	}
}

/* ---- one run ----------------------------------------------------------------- */

struct run {
	struct server s;
	char src[64], dst[64];     /* ring URIs */
	char subject[64], addr[128];
	char out_log[128], in_log[128];
	pid_t out, in, prod, cons;
	struct result *res;
	struct prod_arg pa;
	struct cons_arg ca;
};

static struct run *run_new(const char *tag, uint64_t n, struct gen g, uint64_t src_cap,
			   uint32_t src_max)
{
	struct run *u = calloc(1, sizeof(*u));
	server_init(&u->s);
	snprintf(u->src, sizeof(u->src), "%s", t_ring_uri(tag));
	snprintf(u->dst, sizeof(u->dst), "%s", t_ring_uri(tag));
	snprintf(u->subject, sizeof(u->subject), "t.%s.%d", tag, getpid());
	snprintf(u->addr, sizeof(u->addr), "%s/%s", u->s.url, u->subject);
	snprintf(u->out_log, sizeof(u->out_log), "%s/out.log", u->s.dir);
	snprintf(u->in_log, sizeof(u->in_log), "%s/in.log", u->s.dir);
	/* the bridges' records beside the rings */
	char p[256];
	snprintf(p, sizeof(p), "/dev/shm/.shmring-bridge-out.%s", u->src + 4);
	t_remember(p);
	snprintf(p, sizeof(p), "/dev/shm/.shmring-bridge-in.%s", u->dst + 4);
	t_remember(p);
	shmring_close(t_create(u->src, src_cap, src_max));
	u->res = t_shared(sizeof(*u->res));
	u->pa = (struct prod_arg){.uri = u->src, .n = n, .g = g};
	u->ca = (struct cons_arg){.uri = u->dst, .n = n, .g = g, .res = u->res};
	return u;
}

static void run_dump(struct run *u)
{
	char *o = slurp(u->out_log), *i = slurp(u->in_log);
	fprintf(stderr, "---- outbound log\n%s---- inbound log\n%s----\n", o, i);
	free(o);
	free(i);
}

/* A bridge that exited before its time: its status, or -1 while it runs. */
static pid_t spawn_fn(int (*fn)(void *), void *arg)
{
	pid_t pid = t_spawn(fn, arg);
	track(pid);
	return pid;
}

static int exited(pid_t *pid)
{
	int st;
	if (*pid <= 0 || waitpid(*pid, &st, WNOHANG) != *pid)
		return -1;
	*pid = 0;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Wait for the consumer to see the end of the stream (or fail, or a bridge
 * to stop on its own before the stream is over). */
static void run_finish(struct run *u)
{
	while (u->res->done == 0) {
		t_sleep_ms(20);
		int bad = exited(&u->out);
		const char *who = "outbound";
		if (bad <= 0) {
			bad = exited(&u->in);
			who = "inbound";
		}
		if (bad > 0) {
			t_sleep_ms(500);           /* the consumer may still finish */
			if (u->res->done == 0) {
				run_dump(u);
				cr_assert_fail("the %s bridge exited with %d before the end of the "
					       "stream (consumer at %llu)", who, bad,
					       (unsigned long long)u->res->got);
			}
		}
	}
	int st = t_wait(u->cons);
	if (u->res->done != 1)
		run_dump(u);
	cr_assert_eq(u->res->done, 1, "consumer: %s (status %d)", u->res->why, st);
	cr_assert_eq(t_wait(u->prod), 0);
}

/* The bridge's exit status (0 if run_finish saw it end already). */
static int bridge_wait(pid_t pid)
{
	return pid > 0 ? t_wait(pid) : 0;
}

/* Both bridges of the run exit 0; their logs are shown if not. */
static void run_bridges_ok(struct run *u)
{
	int o = bridge_wait(u->out), i = bridge_wait(u->in);
	u->out = u->in = 0;
	if (o || i)
		run_dump(u);
	cr_assert(o == 0 && i == 0, "exit status: outbound %d, inbound %d", o, i);
}

static void run_free(struct run *u)
{
	server_stop(&u->s);
	t_unshared(u->res, sizeof(*u->res));
	free(u);
}

static int stat_of(const char *log, const char *key, uint64_t *out)
{
	char *t = slurp(log), *p = NULL, *q = t;
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	while ((q = strstr(q, pat)))           /* the last line's */
		p = q++;
	int ok = p != NULL;
	if (p)
		*out = strtoull(p + strlen(pat), NULL, 10);
	free(t);
	return ok;
}

static void wait_ring(const char *uri)
{
	for (int i = 0; i < 3000 && !t_exists(t_path_of(uri)); i++)
		t_sleep_ms(10);
	cr_assert(t_exists(t_path_of(uri)), "%s was not created", uri);
}

static void teardown(void)
{
	for (unsigned i = 0; i < npids; i++)
		if (waitpid(pids[i], NULL, WNOHANG) == 0) {
			kill(pids[i], SIGKILL);
			waitpid(pids[i], NULL, 0);
		}
	npids = 0;
	t_cleanup();
	for (unsigned i = 0; i < ndirs; i++)
		nftw(dirs[i], rm_one, 16, FTW_DEPTH | FTW_PHYS);
	ndirs = 0;
}

TestSuite(bridge, .fini = teardown);

/* ---- core NATS: boundaries, order, big frames in pieces ---------------------- */

Test(bridge, core_keeps_order_and_boundaries, .timeout = 600)
{
	uint64_t n = long_run() ? 1000000 : 20000;
	struct gen g = {.rnd = 42, .max = 256 << 10, .big_every = 5000, .big = 3 << 20};
	struct run *u = run_new("bc", n, g, 64 << 20, 4 << 20);
	server_start(&u->s);
	const char *in[] = {u->addr, u->dst, "--capacity", "64M", "--max-msg", "4M", "--json",
			    NULL};
	u->in = bridge_start(u->in_log, in);
	u->cons = -1;
	/* the consumer once the inbound bridge made the ring, and subscribed */
	wait_ring(u->dst);
	t_sleep_ms(300);
	u->cons = spawn_fn(consumer, &u->ca);
	const char *out[] = {u->src, u->addr, "--json", NULL};
	u->out = bridge_start(u->out_log, out);
	u->prod = spawn_fn(producer, &u->pa);
	run_finish(u);
	/* the end of the stream stops both bridges by themselves */
	run_bridges_ok(u);
	uint64_t msgs = 0, lost = 1, frags = 0;
	cr_assert(stat_of(u->in_log, "msgs", &msgs) && stat_of(u->in_log, "lost", &lost));
	cr_assert(stat_of(u->out_log, "fragments", &frags));
	cr_assert_eq(msgs, n);
	cr_assert_eq(lost, 0);
	cr_assert_gt(frags, 0, "the 3 MiB frames travelled in pieces");
	run_free(u);
}

/* ---- TLS: --tls-ca reaches the client ------------------------------------------ */

static int sh(const char *cmd)
{
	char *argv[] = {"sh", "-c", (char *)cmd, NULL};
	struct t_run r = t_run_prog("/bin/sh", argv, NULL, NULL, 60);
	int st = r.status;
	t_run_free(&r);
	return st;
}

/* A run of 2000 messages up to 64 KiB, for a test whose keys `tool` makes:
 * skipped without it. */
static struct run *run_keyed(const char *tool, const char *tag, uint64_t rnd)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null", tool);
	if (sh(cmd))
		cr_skip_test("%s is not installed (it makes the test's keys)", tool);
	struct gen g = {.rnd = rnd, .max = 64 << 10};
	return run_new(tag, 2000, g, 8 << 20, 1 << 20);
}

/* Both bridges with `opt val`, the whole stream through them, checked. */
static void run_both_with(struct run *u, const char *opt, const char *val)
{
	const char *in[] = {u->addr, u->dst, opt, val, "--json", NULL};
	u->in = bridge_start(u->in_log, in);
	wait_ring(u->dst);
	t_sleep_ms(300);
	u->cons = spawn_fn(consumer, &u->ca);
	const char *out[] = {u->src, u->addr, opt, val, "--json", NULL};
	u->out = bridge_start(u->out_log, out);
	u->prod = spawn_fn(producer, &u->pa);
	run_finish(u);
	run_bridges_ok(u);
	run_free(u);
}

Test(bridge, tls_ca_verifies_the_server, .timeout = 120)
{
	struct run *u = run_keyed("openssl", "bt", 23);
	char cmd[1024], ca[96];
	snprintf(cmd, sizeof(cmd),
		 "cd %s && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem "
		 "-days 1 -subj /CN=shmring-test-ca && "
		 "openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj /CN=127.0.0.1 && "
		 "printf 'subjectAltName=IP:127.0.0.1\n' >ext && "
		 "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem "
		 "-days 1 -extfile ext", u->s.dir);
	cr_assert_eq(sh(cmd), 0, "openssl could not make the certificates");
	snprintf(ca, sizeof(ca), "%s/ca.pem", u->s.dir);
	u->s.tls = true;
	server_start(&u->s);
	/* without the CA the server is not trusted: exit 2, said why */
	const char *bad[] = {u->addr, u->dst, "--connect-timeout", "5", NULL};
	struct t_run r = bridge_run(bad, 30);
	cr_assert_eq(r.status, 2, "%s", r.err);
	cr_assert(strstr(r.err, "SSL") || strstr(r.err, "TLS") || strstr(r.err, "certificate"),
		  "%s", r.err);
	t_run_free(&r);
	shmring_unlink(u->dst);
	run_both_with(u, "--tls-ca", ca);
}

/* ---- --creds: decentralized auth, the server trusting an operator -------------- */

Test(bridge, creds_authenticate_to_the_server, .timeout = 120)
{
	struct run *u = run_keyed("python3", "bc", 29);
	char cmd[256], conf[96], user[96], stranger[96];
	snprintf(cmd, sizeof(cmd), "python3 tests/bridge/mkcreds.py %s %d", u->s.dir, u->s.port);
	cr_assert_eq(sh(cmd), 0, "tests/bridge/mkcreds.py could not make the credentials");
	snprintf(conf, sizeof(conf), "%s/auth.conf", u->s.dir);
	snprintf(user, sizeof(user), "%s/user.creds", u->s.dir);
	snprintf(stranger, sizeof(stranger), "%s/stranger.creds", u->s.dir);
	u->s.conf = conf;
	server_start(&u->s);
	/* no credentials, and a user of an account the server does not trust:
	 * exit 2, said why */
	const char *none[] = {u->addr, u->dst, "--connect-timeout", "5", NULL};
	const char *bad[] = {u->addr, u->dst, "--connect-timeout", "5", "--creds", stranger, NULL};
	const char *const *refused[] = {none, bad};
	for (int i = 0; i < 2; i++) {
		struct t_run r = bridge_run(refused[i], 30);
		cr_assert_eq(r.status, 2, "%s", r.err);
		cr_assert(strstr(r.err, "Authorization") || strstr(r.err, "Authentication"), "%s",
			  r.err);
		t_run_free(&r);
		shmring_unlink(u->dst);
	}
	run_both_with(u, "--creds", user);
}

/* ---- core NATS: at most once, and every loss counted -------------------------- */

Test(bridge, core_counts_what_a_server_restart_loses, .timeout = 300)
{
	uint64_t n = 40000;
	struct gen g = {.rnd = 17, .max = 2048, .min = 8};
	struct run *u = run_new("bl", n, g, 8 << 20, 1 << 20);
	u->pa.pause_every = 4;
	u->ca.gaps = true;
	server_start(&u->s);
	const char *in[] = {u->addr, u->dst, "--json", NULL};
	u->in = bridge_start(u->in_log, in);
	wait_ring(u->dst);
	t_sleep_ms(300);
	u->cons = spawn_fn(consumer, &u->ca);
	const char *out[] = {u->src, u->addr, "--json", "--reconnect-max-ms", "50", NULL};
	u->out = bridge_start(u->out_log, out);
	u->prod = spawn_fn(producer, &u->pa);
	while (u->res->got < n / 4 && u->res->done == 0)
		t_sleep_ms(10);
	server_stop(&u->s);
	t_sleep_ms(300);
	server_start(&u->s);
	/* the end of the stream may itself be lost: then stop the inbound */
	cr_assert_eq(t_wait(u->prod), 0);
	u->prod = 0;
	int ost = bridge_wait(u->out);
	u->out = 0;
	if (ost)
		run_dump(u);
	cr_assert_eq(ost, 0);
	for (int i = 0; i < 500 && u->res->done == 0; i++)
		t_sleep_ms(10);
	bool ended = u->res->done == 1;
	if (!ended)
		kill(u->in, SIGTERM);
	cr_assert_eq(bridge_wait(u->in), 0);
	u->in = 0;
	if (!ended) {
		kill(u->cons, SIGKILL);
		t_wait(u->cons);
	} else {
		cr_assert_eq(t_wait(u->cons), 0);
	}
	cr_assert_neq(u->res->done, 2, "%s", u->res->why);
	uint64_t msgs = 0, lost = 0, dropped = 0, disc = 0;
	cr_assert(stat_of(u->in_log, "msgs", &msgs) && stat_of(u->in_log, "lost", &lost));
	stat_of(u->in_log, "dropped", &dropped);
	stat_of(u->in_log, "disconnects", &disc);
	cr_log_info("%llu sent, %llu arrived, %llu counted lost, %llu dropped, %llu disconnects; "
		    "end of stream %s", (unsigned long long)n, (unsigned long long)msgs,
		    (unsigned long long)lost, (unsigned long long)dropped, (unsigned long long)disc,
		    ended ? "seen" : "lost");
	cr_assert_eq(msgs, u->res->got, "what the inbound bridge wrote is what the consumer read");
	cr_assert_gt(disc, 0);
	if (ended)
		cr_assert_eq(msgs + lost, n, "every message arrived or was counted lost");
	else
		cr_assert_leq(msgs + lost, n);
	run_free(u);
}

/* ---- JetStream: kill -9 of either bridge, restarts of the server -------------- */

static void start_out(struct run *u, const char *stream)
{
	const char *out[] = {u->src, u->addr, "--stream", stream, "--json", NULL};
	u->out = bridge_start(u->out_log, out);
}

static void start_in(struct run *u, const char *stream, const char *dst_max)
{
	const char *in[] = {u->addr, u->dst, "--stream", stream, "--capacity", "32M",
			    "--max-msg", dst_max, "--json", NULL};
	u->in = bridge_start(u->in_log, in);
}

Test(bridge, js_kill9_and_server_restarts_exactly_once, .timeout = 1800)
{
	int lng = long_run();
	uint64_t n = lng ? 200000 : 30000;
	int kills_in = lng ? 20 : 3, kills_out = lng ? 20 : 3, restarts = lng ? 5 : 1;
	struct gen g = {.rnd = 7, .max = 16 << 10, .big_every = 4000, .big = 5 << 19};
	struct run *u = run_new("bk", n, g, 32 << 20, 4 << 20);
	u->pa.pause_every = 8;             /* the stream lasts while the kills come */
	char stream[32];
	snprintf(stream, sizeof(stream), "BK%d", getpid());
	server_start(&u->s);
	start_in(u, stream, "4M");
	wait_ring(u->dst);
	u->cons = spawn_fn(consumer, &u->ca);
	start_out(u, stream);
	u->prod = spawn_fn(producer, &u->pa);
	uint64_t rnd = 99;
	int left_in = kills_in, left_out = kills_out, left_srv = restarts;
	while ((left_in || left_out || left_srv) && u->res->done == 0) {
		t_sleep_ms(100 + (long)(t_rand(&rnd) % 300));
		uint64_t pick = t_rand(&rnd) % (uint64_t)(left_in + left_out + left_srv);
		if (pick < (uint64_t)left_in) {
			kill(u->in, SIGKILL);
			t_wait(u->in);
			start_in(u, stream, "4M");
			left_in--;
		} else if (pick < (uint64_t)(left_in + left_out)) {
			kill(u->out, SIGKILL);
			t_wait(u->out);
			start_out(u, stream);
			left_out--;
		} else {
			server_stop(&u->s);
			t_sleep_ms(200);
			server_start(&u->s);
			left_srv--;
		}
	}
	cr_log_info("kills left when the stream ended: in %d, out %d, server %d (of %d %d %d)",
		    left_in, left_out, left_srv, kills_in, kills_out, restarts);
	run_finish(u);
	run_bridges_ok(u);
	uint64_t replayed = 1, lost = 1, dups = 0, redel = 0, resyncs = 0, retries = 0;
	cr_assert(stat_of(u->in_log, "replayed", &replayed) && stat_of(u->in_log, "lost", &lost));
	stat_of(u->in_log, "dups_skipped", &dups);
	stat_of(u->in_log, "redeliveries", &redel);
	stat_of(u->in_log, "resyncs", &resyncs);
	stat_of(u->out_log, "retries", &retries);
	cr_log_info("%llu messages; last inbound run: %llu duplicates skipped, %llu redeliveries, "
		    "%llu resyncs; last outbound run: %llu publishes retried",
		    (unsigned long long)n, (unsigned long long)dups, (unsigned long long)redel,
		    (unsigned long long)resyncs, (unsigned long long)retries);
	cr_assert_eq(replayed, 0);
	cr_assert_eq(lost, 0);
	run_free(u);
}

/* ---- back-pressure: a slow consumer, no loss, bounded memory ------------------ */

static uint64_t rss_peak_kb(pid_t pid)
{
	char path[64], line[256];
	uint64_t kb = 0;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmHWM:", 6))
			kb = strtoull(line + 6, NULL, 10);
	fclose(f);
	return kb;
}

Test(bridge, js_slow_consumer_no_loss_bounded_memory, .timeout = 600)
{
	uint64_t n = long_run() ? 200000 : 20000;
	struct gen g = {.rnd = 3, .max = 8 << 10};
	struct run *u = run_new("bs", n, g, 8 << 20, 1 << 20);
	u->ca.slow_every = 8;
	char stream[32];
	snprintf(stream, sizeof(stream), "BS%d", getpid());
	server_start(&u->s);
	const char *in[] = {u->addr, u->dst, "--stream", stream, "--capacity", "64K",
			    "--max-msg", "16K", "--json", NULL};
	u->in = bridge_start(u->in_log, in);
	wait_ring(u->dst);
	u->cons = spawn_fn(consumer, &u->ca);
	start_out(u, stream);
	u->prod = spawn_fn(producer, &u->pa);
	uint64_t peak_in = 0, peak_out = 0;
	while (u->res->done == 0 && u->in > 0 && u->out > 0) {
		uint64_t a = rss_peak_kb(u->in), b = rss_peak_kb(u->out);
		peak_in = a > peak_in ? a : peak_in;
		peak_out = b > peak_out ? b : peak_out;
		t_sleep_ms(50);
		if (exited(&u->out) > 0 || exited(&u->in) > 0)
			break;
	}
	run_finish(u);
	run_bridges_ok(u);
	uint64_t full = 0, lost = 1;
	cr_assert(stat_of(u->in_log, "full_waits", &full) && stat_of(u->in_log, "lost", &lost));
	cr_log_info("peak RSS: inbound %llu KiB, outbound %llu KiB; the ring was full %llu times",
		    (unsigned long long)peak_in, (unsigned long long)peak_out,
		    (unsigned long long)full);
	cr_assert_gt(full, 0, "the destination ring filled up");
	cr_assert_eq(lost, 0);
	cr_assert_lt(peak_in, 256 * 1024, "the inbound bridge held %llu KiB", (unsigned long long)peak_in);
	cr_assert_lt(peak_out, 256 * 1024, "the outbound bridge held %llu KiB", (unsigned long long)peak_out);
	run_free(u);
}

/* ---- a server that is down at start ------------------------------------------- */

Test(bridge, waits_for_a_server_down_at_start, .timeout = 300)
{
	uint64_t n = 5000;
	struct gen g = {.rnd = 5, .max = 4 << 10};
	struct run *u = run_new("bw", n, g, 8 << 20, 1 << 20);
	char stream[32];
	snprintf(stream, sizeof(stream), "BW%d", getpid());
	/* both bridges first: they wait for the server */
	start_in(u, stream, "1M");
	wait_ring(u->dst);
	u->cons = spawn_fn(consumer, &u->ca);
	start_out(u, stream);
	u->prod = spawn_fn(producer, &u->pa);
	t_sleep_ms(1500);
	cr_assert_eq(u->res->got, 0);
	cr_assert_eq(exited(&u->in), -1, "the inbound bridge waits");
	cr_assert_eq(exited(&u->out), -1, "the outbound bridge waits");
	server_start(&u->s);
	run_finish(u);
	run_bridges_ok(u);
	char *log = slurp(u->in_log);
	cr_assert(strstr(log, "waiting for a NATS server"), "%s", log);
	free(log);
	run_free(u);
}

/* ---- bad input: a clear message, exit status 2, nothing lost ------------------ */

static void expect_usage(const char *const *args, const char *says)
{
	struct t_run r = bridge_run(args, 30);
	cr_expect_eq(r.status, 2, "%s %s: status %d, stderr: %s", args[0], args[1], r.status, r.err);
	cr_expect(strstr(r.err, says), "%s %s: no '%s' in: %s", args[0], args[1], says, r.err);
	t_run_free(&r);
}

Test(bridge, bad_input_exits_2_and_keeps_the_source, .timeout = 120)
{
	if (!server_path())
		cr_skip_test("nats-server is not installed (Debian: nats-server; make bridge-deps)");
	const char *src = t_ring_uri("bb");
	struct shmring *r = t_create(src, 1 << 16, 1024);
	struct shmring *p = t_open(src, SHMRING_PRODUCER);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(shmring_send(p, "keep", 4, 0), 0);
	int port = free_port();           /* nobody listens there */
	char closed[64];
	snprintf(closed, sizeof(closed), "nats://127.0.0.1:%d/md.feed", port);
	expect_usage((const char *[]){src, "nats://127.0.0.1:99999/md.feed", NULL}, "bad port");
	expect_usage((const char *[]){src, "nats://127.0.0.1/md feed", NULL}, "space");
	expect_usage((const char *[]){src, "nats://127.0.0.1/md..feed", NULL}, "empty token");
	expect_usage((const char *[]){src, "nats://127.0.0.1/md.*", NULL}, "wildcards");
	expect_usage((const char *[]){src, "nats://127.0.0.1", NULL}, "no /SUBJECT");
	expect_usage((const char *[]){src, "nats:/127.0.0.1/x", NULL}, "not a nats://");
	expect_usage((const char *[]){src, "nats:///x", NULL}, "host");
	expect_usage((const char *[]){src, "shm:other", NULL}, "one address must be a ring");
	/* (without a network the resolver does not answer: then the timeout) */
	expect_usage((const char *[]){src, "nats://no-such-host.invalid/md.feed",
				       "--connect-timeout", "5", NULL}, "cannot resolve");
	expect_usage((const char *[]){src, closed, "--connect-timeout", "1", NULL},
		     "no NATS server answers");
	expect_usage((const char *[]){src, closed, "--capacity", "lots", NULL}, "--capacity");
	expect_usage((const char *[]){src, closed, "--stream", "a b", NULL}, "stream name");
	expect_usage((const char *[]){src, closed, "--creds", "/nonexistent/creds", NULL},
		     "credentials");
	expect_usage((const char *[]){"shm:t-bb-no-such-ring", closed, NULL}, "source ring");
	/* the source ring still holds its three messages */
	struct shmring_stats st = t_stats(r);
	cr_assert_eq(st.msgs_recv, 0);
	cr_assert_eq(st.msgs_sent, 3);
	shmring_close(p);
	shmring_close(r);
}

Test(bridge, js_frame_too_big_for_the_ring_exits_2_and_stays_in_the_stream, .timeout = 300)
{
	struct server s;
	server_init(&s);
	server_start(&s);
	const char *src = t_ring_uri("bf"), *dst = t_ring_uri("bf"), *dst2 = t_ring_uri("bf");
	char p[256], addr[128], stream[32], log[128];
	for (int i = 0; i < 3; i++) {
		const char *u = i == 0 ? src : i == 1 ? dst : dst2;
		snprintf(p, sizeof(p), "/dev/shm/.shmring-bridge-%s.%s", i ? "in" : "out", u + 4);
		t_remember(p);
	}
	snprintf(addr, sizeof(addr), "%s/t.bf.%d", s.url, getpid());
	snprintf(stream, sizeof(stream), "BF%d", getpid());
	snprintf(log, sizeof(log), "%s/bridges.log", s.dir);
	shmring_close(t_create(src, 1 << 20, 128 << 10));
	struct shmring *prod = t_open(src, SHMRING_PRODUCER);
	static uint8_t buf[64 << 10];
	for (uint64_t i = 0; i < 21; i++) {
		uint32_t len = i == 10 ? sizeof(buf) : 100;
		make_msg(buf, len, i);
		cr_assert_eq(shmring_send(prod, buf, len, 0), 0);
	}
	cr_assert_eq(shmring_shutdown(prod), 0);
	shmring_close(prod);
	const char *out[] = {src, addr, "--stream", stream, "--quiet", NULL};
	struct t_run o = bridge_run(out, 60);
	cr_assert_eq(o.status, 0, "%s", o.err);
	t_run_free(&o);
	/* a ring whose messages are at most 4 KiB: the 64 KiB one stops it */
	const char *in[] = {addr, dst, "--stream", stream, "--durable", "bf", "--capacity", "64K",
			    "--max-msg", "4K", "--quiet", NULL};
	struct t_run i1 = bridge_run(in, 60);
	cr_assert_eq(i1.status, 2, "%s", i1.err);
	cr_assert(strstr(i1.err, "does not fit the destination ring"), "%s", i1.err);
	t_run_free(&i1);
	struct shmring *c = t_open(dst, SHMRING_CONSUMER);
	for (uint64_t i = 0; i < 10; i++) {
		cr_assert_eq(shmring_recv(c, buf, sizeof(buf), 0), 100);
		cr_assert_eq(memcmp(buf, &i, 8), 0);
	}
	cr_assert_eq(shmring_recv(c, buf, sizeof(buf), 0), -EAGAIN);
	shmring_close(c);
	/* the same durable consumer into a ring that takes it: the rest */
	const char *in2[] = {addr, dst2, "--stream", stream, "--durable", "bf", "--capacity", "1M",
			     "--max-msg", "128K", "--quiet", NULL};
	struct t_run i2 = bridge_run(in2, 60);
	cr_assert_eq(i2.status, 0, "%s", i2.err);
	t_run_free(&i2);
	c = t_open(dst2, SHMRING_CONSUMER);
	for (uint64_t i = 10; i < 21; i++) {
		ssize_t len = shmring_recv(c, buf, sizeof(buf), 0);
		cr_assert_eq(len, i == 10 ? (ssize_t)sizeof(buf) : 100, "message %llu", (unsigned long long)i);
		cr_assert_eq(memcmp(buf, &i, 8), 0);
	}
	cr_assert_eq(shmring_recv(c, buf, sizeof(buf), 0), -EPIPE);
	shmring_close(c);
	server_stop(&s);
}

/* How many times `what` occurs in `s`. */
static unsigned count_of(const char *s, const char *what)
{
	unsigned n = 0;
	for (const char *p = s; (p = strstr(p, what)) != NULL; p += strlen(what))
		n++;
	return n;
}

/* ---- SIGTERM: a clean stop; counters every S seconds, as JSON ----------------- */

Test(bridge, sigterm_stops_cleanly_with_counters, .timeout = 120)
{
	struct gen g = {.rnd = 11, .max = 1024};
	struct run *u = run_new("bt", 1ull << 40, g, 1 << 20, 4096);
	u->pa.pause_every = 4;
	server_start(&u->s);
	const char *in[] = {u->addr, u->dst, "--json", "--stats-every", "0.2", NULL};
	u->in = bridge_start(u->in_log, in);
	wait_ring(u->dst);
	u->cons = spawn_fn(consumer, &u->ca);
	const char *out[] = {u->src, u->addr, "--json", "--stats-every", "0.2", NULL};
	u->out = bridge_start(u->out_log, out);
	u->prod = spawn_fn(producer, &u->pa);
	while (u->res->got < 2000 && u->res->done == 0)
		t_sleep_ms(20);
	t_sleep_ms(500);
	kill(u->out, SIGTERM);
	kill(u->in, SIGTERM);
	cr_assert_eq(t_wait(u->out), 0);
	cr_assert_eq(t_wait(u->in), 0);
	u->out = u->in = 0;
	char *o = slurp(u->out_log), *i = slurp(u->in_log);
	/* both ran for 0.7 s or more with counters due every 0.2 s: a
	 * steady stream must not hold them back */
	cr_assert(count_of(o, "\"final\":false") >= 2 && strstr(o, "\"final\":true"), "%s", o);
	cr_assert(count_of(i, "\"final\":false") >= 2 && strstr(i, "\"final\":true"), "%s", i);
	free(o);
	free(i);
	cr_assert_eq(u->res->done, 0, "%s", u->res->why);   /* no wrong message so far */
	kill(u->prod, SIGKILL);
	kill(u->cons, SIGKILL);
	t_wait(u->prod);
	t_wait(u->cons);
	run_free(u);
}
