/* SPDX-License-Identifier: MIT */
/*
 * Suite `metrics`: `shmctl-tool metrics` run as a separate program against
 * real rings of every kind and backend, healthy, shut down, corrupt, with
 * SIGKILLed participants, and unreadable: its text is checked against what
 * `shmctl-tool info --json` says of each ring (through jq), by
 * `promtool check metrics` and by a real `prometheus` that scrapes
 * `--listen` twice (both from Debian's `prometheus` package: those tests
 * say SKIPPED without it).  The HTTP endpoint is fed garbage, a 1 MiB
 * request line, 600 idle connections and a client that reads a byte a
 * second, and must keep answering others.  The Grafana dashboard is
 * checked with jq.
 *
 * Every ring is "t-<tag>-<pid>-<n>" and every scrape runs with
 * `--match 't-*-<pid>-*'`: the tool never reports anybody else's rings here.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "shmring.h"
#include "shm/segment.h"

#define MS (1000ll * 1000)

/* ======================================================================= */
/* bookkeeping                                                             */
/* ======================================================================= */

static char tmp_dirs[4][64];
static unsigned ntmp;

static void fini(void)
{
	t_cleanup();
	for (unsigned i = 0; i < ntmp; i++) {
		char *argv[] = { "rm", "-rf", "--", tmp_dirs[i], NULL };
		struct t_run r = t_run_prog("rm", argv, NULL, NULL, 30);
		t_run_free(&r);
	}
	ntmp = 0;
}

TestSuite(metrics, .fini = fini);

/* A fresh directory under /tmp, removed after the test. */
static const char *tmp_dir(void)
{
	cr_assert_lt(ntmp, 4);
	char *d = tmp_dirs[ntmp];
	snprintf(d, sizeof(tmp_dirs[0]), "/tmp/t-metrics-%d-XXXXXX", (int)getpid());
	cr_assert_not_null(mkdtemp(d), "mkdtemp: %s", strerror(errno));
	ntmp++;
	return d;
}

static const char *glob_of_mine(void)
{
	static char g[64];
	snprintf(g, sizeof(g), "t-*-%d-*", (int)getpid());
	return g;
}

static const char *shmctl(void)
{
	static char p[512];
	const char *b = getenv("SHMRING_TEST_BUILD");
	snprintf(p, sizeof(p), "%s/shmctl-tool", b && *b ? b : "build");
	return p;
}

/* Is `prog` an executable in PATH? */
static bool have_prog(const char *prog)
{
	const char *path = getenv("PATH");
	char buf[4096];
	snprintf(buf, sizeof(buf), "%s", path ? path : "/usr/bin:/bin");
	for (char *save = NULL, *d = strtok_r(buf, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		char p[4200];
		snprintf(p, sizeof(p), "%s/%s", d, prog);
		if (access(p, X_OK) == 0)
			return true;
	}
	return false;
}

#define NEED_PROMETHEUS(prog)                                                          \
	do {                                                                           \
		if (!have_prog(prog))                                                  \
			cr_skip_test("SKIPPED: %s is not installed (Debian: prometheus; "  \
				     "make metrics-deps)", prog);                          \
	} while (0)

/* One scrape on stdout: the text (free()), asserting exit 0. */
static char *scrape(const char *dir)
{
	char *argv[] = { "shmctl-tool", "metrics", "--match", (char *)glob_of_mine(),
			 dir ? "--dir" : NULL, (char *)dir, NULL };
	struct t_run r = t_run_prog(shmctl(), argv, NULL, NULL, 30);
	cr_assert_eq(r.status, 0, "metrics: exit %d: %s", r.status, r.err);
	char *out = r.out;
	r.out = NULL;
	t_run_free(&r);
	return out;
}

/* The value of NAME{ring="URI",...} in text; -1 if there is no such line. */
static double sample(const char *text, const char *name, const char *uri)
{
	char key[512];
	size_t kl = (size_t)snprintf(key, sizeof(key), "%s{ring=\"%s\",", name, uri);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, key, kl))
			continue;
		const char *v = strstr(p, "} ");
		cr_assert_not_null(v);
		return strtod(v + 2, NULL);
	}
	return -1;
}

/* The whole sample line of NAME for URI (static), or NULL. */
static const char *sample_line(const char *text, const char *name, const char *uri)
{
	static char line[1024];
	char key[512];
	snprintf(key, sizeof(key), "%s{ring=\"%s\",", name, uri);
	const char *p = strstr(text, key);
	while (p && p != text && p[-1] != '\n')
		p = strstr(p + 1, key);
	if (!p)
		return NULL;
	size_t n = strcspn(p, "\n");
	snprintf(line, sizeof(line), "%.*s", (int)n, p);
	return line;
}

/* jq FILTER on doc, or on the file at path if doc is NULL: its output
 * (free()), asserting success. */
static char *jq_on(const char *filter, const char *doc, const char *path)
{
	char *argv[] = { "jq", "-r", (char *)filter, (char *)path, NULL };
	struct t_run r = t_run_prog("jq", argv, doc, NULL, 30);
	cr_assert_eq(r.status, 0, "jq %s: exit %d: %s", filter, r.status, r.err);
	char *out = r.out;
	r.out = NULL;
	t_run_free(&r);
	return out;
}

static char *jq(const char *filter, const char *doc)
{
	return jq_on(filter, doc, NULL);
}

/* ======================================================================= */
/* rings in known states                                                   */
/* ======================================================================= */

static void make(const char *uri, enum shmring_kind kind, uint32_t flags)
{
	struct shmring_opts o = { .kind = kind, .capacity = 64 * 1024, .max_msg = 1024,
				  .flags = flags };
	struct shmring *r = NULL;
	int rc = shmring_open(uri, SHMRING_CREATE | SHMRING_EXCL, &o, &r);
	cr_assert_eq(rc, 0, "create %s: %s", uri, shmring_strerror(rc));
	shmring_close(r);
}

/* A child with one role on a ring (sub: a broadcast subscriber's URI, or
 * NULL): sends nsend messages of 100 bytes, receives nrecv, says so and
 * waits to be killed or told to go. */
struct peer {
	char uri[300];
	int oflags, nsend, nrecv;
	_Atomic int ready, quit;
	int rc;
};

static int peer_main(void *arg)
{
	struct peer *p = arg;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	struct shmring *r = NULL;
	int rc = shmring_open(p->uri, p->oflags, NULL, &r);
	char buf[1024] = "message";
	for (int i = 0; rc >= 0 && i < p->nsend; i++)
		rc = shmring_send(r, buf, 100, 1000 * MS);
	for (int i = 0; rc >= 0 && i < p->nrecv; i++) {
		ssize_t n = shmring_recv(r, buf, sizeof(buf), 1000 * MS);
		rc = n < 0 ? (int)n : 0;
	}
	p->rc = rc;
	atomic_store(&p->ready, rc < 0 ? -1 : 1);
	if (rc < 0)
		return 1;
	while (!atomic_load(&p->quit))
		t_sleep_ms(2);
	shmring_close(r);
	return 0;
}

static struct peer *peer_start(const char *uri, int oflags, int nsend, int nrecv, pid_t *pid)
{
	struct peer *p = t_shared(sizeof(*p));
	memset(p, 0, sizeof(*p));
	snprintf(p->uri, sizeof(p->uri), "%s", uri);
	p->oflags = oflags;
	p->nsend = nsend;
	p->nrecv = nrecv;
	*pid = t_spawn(peer_main, p);
	cr_assert(t_wait_flag(&p->ready, 1, 10000), "peer on %s: %s", uri,
		  shmring_strerror(p->rc));
	return p;
}

static void peer_kill(struct peer *p, pid_t pid)
{
	kill(pid, SIGKILL);
	cr_assert_eq(t_wait(pid), 128 + SIGKILL);
	t_unshared(p, sizeof(*p));
}

static void peer_stop(struct peer *p, pid_t pid)
{
	atomic_store(&p->quit, 1);
	cr_assert_eq(t_wait(pid), 0);
	t_unshared(p, sizeof(*p));
}

/* Break the header checksum: the segment is still recognised, as corrupt. */
static void corrupt(const char *path)
{
	uint32_t cs;
	t_peek(path, offsetof(struct seg_hdr, checksum), &cs, 4);
	cs ^= 0x5a5a5a5au;
	t_patch(path, offsetof(struct seg_hdr, checksum), &cs, 4);
}

/* What a scene holds: each ring's URI. */
struct scene {
	const char *dir;
	const char *spsc, *mpmc, *bcast, *fspsc, *fbcast, *shut, *bad, *dead;
	struct peer *live[4];
	pid_t live_pid[4];
};

/* Rings of every kind and backend (file: has no MPMC rings), with traffic: healthy ones with live
 * peers, a shut-down one, a corrupt one, one whose producer and consumer
 * were SIGKILLed, and (as root) one nobody but root may read. */
static void scene_make(struct scene *s)
{
	char buf[400];
	memset(s, 0, sizeof(*s));
	s->dir = tmp_dir();
	s->spsc = t_ring_uri("spsc");
	s->mpmc = t_ring_uri("mpmc");
	s->bcast = t_ring_uri("bcast");
	snprintf(buf, sizeof(buf), "file:%s/%s", s->dir, t_name("fspsc"));
	s->fspsc = t_remember(buf);
	snprintf(buf, sizeof(buf), "file:%s/%s", s->dir, t_name("fbcast"));
	s->fbcast = t_remember(buf);
	s->shut = t_ring_uri("shut");
	s->bad = t_ring_uri("bad");
	s->dead = t_ring_uri("dead");
	make(s->spsc, SHMRING_SPSC, 0);
	make(s->mpmc, SHMRING_MPMC, 0);
	make(s->bcast, SHMRING_BCAST, 0);
	make(s->fspsc, SHMRING_SPSC, 0);
	make(s->fbcast, SHMRING_BCAST, SHMRING_OVERWRITE);
	make(s->shut, SHMRING_SPSC, 0);
	make(s->bad, SHMRING_MPMC, 0);
	make(s->dead, SHMRING_SPSC, 0);

	/* traffic, then live holders: a consumer on the SPSC ring that took
	 * 3 of 7, an MPMC producer, two broadcast subscribers (one named) */
	pid_t pid;
	struct peer *pp = peer_start(s->spsc, SHMRING_PRODUCER, 7, 0, &pid);
	peer_stop(pp, pid);
	s->live[0] = peer_start(s->spsc, SHMRING_CONSUMER, 0, 3, &s->live_pid[0]);
	s->live[1] = peer_start(s->mpmc, SHMRING_PRODUCER, 2, 0, &s->live_pid[1]);
	s->live[2] = peer_start(s->bcast, SHMRING_CONSUMER, 0, 0, &s->live_pid[2]);
	snprintf(buf, sizeof(buf), "%s#audit", s->fbcast);
	s->live[3] = peer_start(buf, SHMRING_CONSUMER, 0, 0, &s->live_pid[3]);
	pp = peer_start(s->bcast, SHMRING_PRODUCER, 5, 0, &pid);
	peer_stop(pp, pid);
	pp = peer_start(s->fbcast, SHMRING_PRODUCER, 4, 0, &pid);
	peer_stop(pp, pid);
	pp = peer_start(s->fspsc, SHMRING_PRODUCER, 1, 0, &pid);
	peer_stop(pp, pid);

	struct shmring *r = t_open(s->shut, SHMRING_PRODUCER);
	cr_assert_eq(shmring_shutdown(r), 0);
	shmring_close(r);
	corrupt(t_path_of(s->bad));
	/* dead participants: a producer and a consumer SIGKILLed with their roles */
	pid_t cpid;
	pp = peer_start(s->dead, SHMRING_PRODUCER, 2, 0, &pid);
	struct peer *cp = peer_start(s->dead, SHMRING_CONSUMER, 0, 1, &cpid);
	peer_kill(pp, pid);
	peer_kill(cp, cpid);
}

static void scene_end(struct scene *s)
{
	for (int i = 0; i < 4; i++)
		if (s->live[i])
			peer_stop(s->live[i], s->live_pid[i]);
}

/* info --json's stats of uri, as "key value" lines (free()). */
static char *info_stats(const char *uri)
{
	char *argv[] = { "shmctl-tool", "info", (char *)uri, "--json", NULL };
	struct t_run r = t_run_prog(shmctl(), argv, NULL, NULL, 30);
	cr_assert_eq(r.status, 0, "info %s: exit %d: %s", uri, r.status, r.err);
	char *out = jq(".stats + {used, capacity, max_msg, producers_live: .producers.live,"
		       " producers_dead: .producers.dead, consumers_live: .consumers.live,"
		       " consumers_dead: .consumers.dead, shut_down: (if .shut_down then 1"
		       " else 0 end)} | to_entries[] | \"\\(.key) \\(.value)\"", r.out);
	t_run_free(&r);
	return out;
}

/* info's stats key -> the metric */
static const char *const metric_of[][2] = {
	{ "msgs_sent", "shmring_messages_sent_total" },
	{ "bytes_sent", "shmring_sent_bytes_total" },
	{ "msgs_recv", "shmring_messages_received_total" },
	{ "bytes_recv", "shmring_received_bytes_total" },
	{ "waits_full", "shmring_waits_full_total" },
	{ "waits_empty", "shmring_waits_empty_total" },
	{ "futex_wakes", "shmring_futex_wakes_total" },
	{ "futex_sleeps", "shmring_futex_sleeps_total" },
	{ "holes_skipped", "shmring_holes_skipped_total" },
	{ "msgs_redelivered", "shmring_messages_redelivered_total" },
	{ "msgs_dropped", "shmring_messages_dropped_total" },
	{ "repairs", "shmring_repairs_total" },
	{ "takeovers", "shmring_takeovers_total" },
	{ "stalls_skipped", "shmring_stalls_skipped_total" },
	{ "commits_cancelled", "shmring_commits_cancelled_total" },
	{ "msgs_lost", "shmring_messages_lost_total" },
	{ "evictions", "shmring_evictions_total" },
	{ "lag_msgs", "shmring_lag_messages" },
	{ "lag_bytes", "shmring_lag_bytes" },
	{ "used", "shmring_used_bytes" },
	{ "capacity", "shmring_capacity_bytes" },
	{ "max_msg", "shmring_max_message_bytes" },
	{ "producers_live", "shmring_live_producers" },
	{ "producers_dead", "shmring_dead_producers" },
	{ "consumers_live", "shmring_live_consumers" },
	{ "consumers_dead", "shmring_dead_consumers" },
	{ "shut_down", "shmring_shut_down" },
};
#define NMETRIC_OF (sizeof(metric_of) / sizeof(metric_of[0]))

/* get(metric) must equal info's figure for every key info reports. */
static void expect_as_info(const char *uri, double (*get)(void *arg, const char *metric),
			   void *arg)
{
	char *lines = info_stats(uri);
	unsigned matched = 0;
	for (char *save = NULL, *l = strtok_r(lines, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char key[64];
		double want;
		cr_assert_eq(sscanf(l, "%63s %lf", key, &want), 2, "info line '%s'", l);
		for (size_t i = 0; i < NMETRIC_OF; i++) {
			if (strcmp(metric_of[i][0], key))
				continue;
			double got = get(arg, metric_of[i][1]);
			cr_assert_eq(got, want, "%s %s: metrics say %.17g, info says %.17g", uri,
				     metric_of[i][1], got, want);
			matched++;
		}
	}
	free(lines);
	cr_assert_eq(matched, NMETRIC_OF, "%s: %u of %zu figures compared", uri, matched,
		     NMETRIC_OF);
}

struct text_arg {
	const char *text, *uri;
};

static double from_text(void *arg, const char *metric)
{
	struct text_arg *a = arg;
	return sample(a->text, metric, a->uri);
}

/* ======================================================================= */
/* the text                                                                */
/* ======================================================================= */

Test(metrics, every_ring_and_state_is_reported_as_info_sees_it, .timeout = 60)
{
	struct scene s;
	scene_make(&s);
	char *text = scrape(s.dir);
	const char *up[] = { s.spsc, s.mpmc, s.bcast, s.fspsc, s.fbcast, s.shut, s.dead };
	for (size_t i = 0; i < sizeof(up) / sizeof(up[0]); i++) {
		cr_expect_eq(sample(text, "shmring_ring_up", up[i]), 1, "%s not up:\n%s", up[i], text);
		struct text_arg a = { text, up[i] };
		expect_as_info(up[i], from_text, &a);
	}
	/* labels: ring, kind, backend */
	char want[600];
	snprintf(want, sizeof(want), "shmring_ring_up{ring=\"%s\",kind=\"mpmc\",backend=\"shm\"} 1",
		 s.mpmc);
	cr_expect_str_eq(sample_line(text, "shmring_ring_up", s.mpmc), want);
	snprintf(want, sizeof(want), "shmring_ring_up{ring=\"%s\",kind=\"bcast\",backend=\"file\"} 1",
		 s.fbcast);
	cr_expect_str_eq(sample_line(text, "shmring_ring_up", s.fbcast), want);
	/* the corrupt ring: up 0 with its reason, and nothing else */
	snprintf(want, sizeof(want), "shmring_ring_up{ring=\"%s\",kind=\"unknown\",backend=\"shm\","
		 "reason=\"corrupt\"} 0", s.bad);
	cr_expect_str_eq(sample_line(text, "shmring_ring_up", s.bad), want);
	cr_expect_eq(sample(text, "shmring_messages_sent_total", s.bad), -1);
	/* state */
	cr_expect_eq(sample(text, "shmring_shut_down", s.shut), 1);
	cr_expect_eq(sample(text, "shmring_shut_down", s.spsc), 0);
	cr_expect_eq(sample(text, "shmring_dead_producers", s.dead), 1);
	cr_expect_eq(sample(text, "shmring_dead_consumers", s.dead), 1);
	cr_expect_eq(sample(text, "shmring_live_consumers", s.spsc), 1);
	cr_expect_eq(sample(text, "shmring_messages_sent_total", s.spsc), 7);
	cr_expect_eq(sample(text, "shmring_messages_received_total", s.spsc), 3);
	cr_expect_eq(sample(text, "shmring_used_bytes", s.spsc) > 0, 1);
	cr_expect_eq(sample(text, "shmring_in_use", s.spsc), 1);
	cr_expect_eq(sample(text, "shmring_live_subscribers", s.bcast), 1);
	/* per-subscriber lag: the unnamed one by its line, the named one by name */
	cr_expect_eq(sample(text, "shmring_subscriber_lag_messages", s.bcast), 5, "%s", text);
	const char *l = sample_line(text, "shmring_subscriber_lag_messages", s.fbcast);
	cr_assert_not_null(l);
	cr_expect_not_null(strstr(l, ",subscriber=\"audit\",line=\"0\"} 4"), "%s", l);
	l = sample_line(text, "shmring_subscriber_alive", s.bcast);
	cr_assert_not_null(l);
	cr_expect_not_null(strstr(l, ",subscriber=\"line 0\",line=\"0\"} 1"), "%s", l);
	/* HELP and TYPE before each family's samples */
	cr_expect_not_null(strstr(text, "# HELP shmring_messages_sent_total "));
	cr_expect_not_null(strstr(text, "# TYPE shmring_messages_sent_total counter\n"));
	cr_expect_not_null(strstr(text, "# TYPE shmring_fill_ratio gauge\n"));
	free(text);
	scene_end(&s);
}

Test(metrics, promtool_accepts_every_kind_backend_and_state, .timeout = 60)
{
	NEED_PROMETHEUS("promtool");
	struct scene s;
	scene_make(&s);
	char *text = scrape(s.dir);
	char *argv[] = { "promtool", "check", "metrics", NULL };
	struct t_run r = t_run_prog("promtool", argv, text, NULL, 30);
	cr_expect_eq(r.status, 0, "promtool check metrics: exit %d\n%s%s\non:\n%s", r.status,
		     r.out, r.err, text);
	t_run_free(&r);
	free(text);
	scene_end(&s);
}

/* A ring the scraper may not read: up 0, "unreadable", and the scrape goes on. */
Test(metrics, an_unreadable_ring_is_down_and_the_rest_is_scraped, .timeout = 30)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to act as another user");
	const char *mine = t_ring_uri("mine"), *open_ = t_ring_uri("open");
	make(mine, SHMRING_SPSC, 0);
	struct shmring_opts o = { .mode = 0666 };
	struct shmring *r = NULL;
	cr_assert_eq(shmring_open(open_, SHMRING_CREATE | SHMRING_EXCL, &o, &r), 0);
	shmring_close(r);
	char *argv[] = { "shmctl-tool", "metrics", "--match", (char *)glob_of_mine(), NULL };
	struct t_run run = t_run_prog_as(shmctl(), argv, NULL, NULL, 30, 65534);
	cr_assert_eq(run.status, 0, "exit %d: %s", run.status, run.err);
	char want[600];
	snprintf(want, sizeof(want), "shmring_ring_up{ring=\"%s\",kind=\"unknown\",backend=\"shm\","
		 "reason=\"unreadable\"} 0", mine);
	cr_expect_str_eq(sample_line(run.out, "shmring_ring_up", mine), want);
	cr_expect_eq(sample(run.out, "shmring_ring_up", open_), 1, "%s", run.out);
	t_run_free(&run);
}

Test(metrics, textfile_is_replaced_whole_and_readable, .timeout = 30)
{
	const char *uri = t_ring_uri("tf");
	make(uri, SHMRING_SPSC, 0);
	const char *dir = tmp_dir();
	char path[256];
	snprintf(path, sizeof(path), "%s/shmring.prom", dir);
	/* an old file is replaced, not appended to */
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "stale 1\n", 8), 8);
	close(fd);
	mode_t old = umask(077);
	char *argv[] = { "shmctl-tool", "metrics", "--match", (char *)glob_of_mine(),
			 "--textfile", path, NULL };
	struct t_run r = t_run_prog(shmctl(), argv, NULL, NULL, 30);
	umask(old);
	cr_assert_eq(r.status, 0, "exit %d: %s", r.status, r.err);
	cr_expect_eq(r.out_len + r.err_len, 0, "printed: %s%s", r.out, r.err);
	t_run_free(&r);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_mode & 0777, 0644, "mode %o", st.st_mode & 0777);
	char *text = calloc(1, (size_t)st.st_size + 1);
	fd = open(path, O_RDONLY);
	cr_assert_eq(read(fd, text, (size_t)st.st_size), st.st_size);
	close(fd);
	cr_expect_null(strstr(text, "stale"));
	cr_expect_eq(sample(text, "shmring_ring_up", uri), 1);
	free(text);
	/* a temporary file left under the pid the tool gets (a run killed
	 * before its rename): replaced, not an error */
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		char stale[300];
		snprintf(stale, sizeof(stale), "%s.tmp.%d", path, (int)getpid());
		int sfd = open(stale, O_WRONLY | O_CREAT | O_EXCL, 0600);
		int null = open("/dev/null", O_WRONLY);
		if (sfd < 0 || null < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
			_exit(100);
		execv(shmctl(), argv);
		_exit(101);
	}
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x over a stale temporary",
		  status);
	/* nothing else left in the directory: no temporary file */
	char *ls[] = { "ls", "-A", (char *)dir, NULL };
	r = t_run_prog("ls", ls, NULL, NULL, 10);
	cr_expect_str_eq(r.out, "shmring.prom\n");
	t_run_free(&r);
	/* a directory that does not exist: exit 2, one line */
	snprintf(path, sizeof(path), "%s/missing/x.prom", dir);
	r = t_run_prog(shmctl(), argv, NULL, NULL, 30);
	cr_expect_eq(r.status, 2);
	cr_expect_neq(strstr(r.err, "No such file"), NULL, "%s", r.err);
	t_run_free(&r);
}

Test(metrics, bad_options_are_exit_2, .timeout = 30)
{
	static const char *const bad[][2] = {
		{ "--listen", "9464" }, { "--listen", ":9464" }, { "--listen", "localhost:9464" },
		{ "--listen", "127.0.0.1:70000" }, { "--listen", "[::1]9464" },
		{ "--listen", "127.0.0.1:x" }, { "--textfile", "" }, { "--json", NULL },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *argv[] = { "shmctl-tool", "metrics", (char *)bad[i][0], (char *)bad[i][1], NULL };
		struct t_run r = t_run_prog(shmctl(), argv, NULL, NULL, 10);
		cr_expect_eq(r.status, 2, "%s %s: exit %d", bad[i][0], bad[i][1], r.status);
		cr_expect_gt(r.err_len, 0);
		t_run_free(&r);
	}
	char *both[] = { "shmctl-tool", "metrics", "--textfile", "/tmp/x.prom", "--listen",
			 "127.0.0.1:0", NULL };
	struct t_run r = t_run_prog(shmctl(), both, NULL, NULL, 10);
	cr_expect_eq(r.status, 2);
	t_run_free(&r);
}

/* ======================================================================= */
/* HTTP                                                                    */
/* ======================================================================= */

struct server {
	pid_t pid;
	int port;
	char log[256];
};

/* shmctl-tool metrics --listen 127.0.0.1:0 [--dir dir]: its port. */
static void server_start(struct server *sv, const char *dir)
{
	const char *d = tmp_dir();
	snprintf(sv->log, sizeof(sv->log), "%s/listen.out", d);
	int out = open(sv->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	cr_assert_geq(out, 0);
	fflush(NULL);
	/* this process's glob, not the child's */
	char *argv[] = { "shmctl-tool", "metrics", "--listen", "127.0.0.1:0", "--match",
			 (char *)glob_of_mine(), dir ? "--dir" : NULL, (char *)dir, NULL };
	sv->pid = fork();
	cr_assert_geq(sv->pid, 0);
	if (sv->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(out, 1);
		dup2(out, 2);
		execv(shmctl(), argv);
		_exit(127);
	}
	close(out);
	sv->port = 0;
	for (int i = 0; i < 1000 && !sv->port; i++) {
		char buf[256] = { 0 };
		int fd = open(sv->log, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			(void)!read(fd, buf, sizeof(buf) - 1);
			close(fd);
		}
		char *p = strstr(buf, "listening on http://127.0.0.1:");
		if (p && strchr(p, '\n'))
			sv->port = atoi(p + strlen("listening on http://127.0.0.1:"));
		else
			t_sleep_ms(10);
	}
	cr_assert_gt(sv->port, 0, "no port from the tool");
}

/* SIGTERM: it must have run all along and end with 0. */
static void server_stop(struct server *sv)
{
	cr_assert_eq(waitpid(sv->pid, NULL, WNOHANG), 0, "the server died");
	kill(sv->pid, SIGTERM);
	cr_expect_eq(t_wait(sv->pid), 0, "the server's exit status");
}

static int connect_to(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0, "connect: %s",
		     strerror(errno));
	return fd;
}

/* Send req (n bytes) while reading the answer, then read to the end (at
 * most 20 s): the status code (0: none), the whole answer in *resp.
 * half_close: shut the connection down for writing once req is sent (a
 * server in Go takes that for a client gone and cancels the request). */
static int exchange_hc(int port, const char *req, size_t n, char **resp, bool half_close)
{
	int fd = connect_to(port);
	size_t off = 0, len = 0;
	char *buf = calloc(1, 1);
	bool wclosed = false;
	uint64_t end = t_now_ns() + 20000 * (uint64_t)MS;
	for (;;) {
		if (off == n && !wclosed) {
			if (half_close)
				shutdown(fd, SHUT_WR);
			wclosed = true;
		}
		struct pollfd p = { .fd = fd, .events = POLLIN | (wclosed ? 0 : POLLOUT) };
		cr_assert_lt(t_now_ns(), end, "no complete answer within 20 s");
		if (poll(&p, 1, 1000) <= 0)
			continue;
		if (p.revents & POLLOUT) {
			ssize_t w = send(fd, req + off, n - off > 65536 ? 65536 : n - off,
					 MSG_NOSIGNAL | MSG_DONTWAIT);
			if (w > 0)
				off += (size_t)w;
			else if (w < 0 && errno != EAGAIN)
				off = n;        /* refused the rest: read what it said */
		}
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			char chunk[65536];
			ssize_t r = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
			if (r < 0 && errno == EAGAIN)
				continue;
			if (r <= 0)
				break;
			t_append(&buf, &len, chunk, (size_t)r);
		}
	}
	close(fd);
	int code = 0;
	sscanf(buf, "HTTP/1.%*1[01] %d ", &code);
	*resp = buf;
	return code;
}

static int exchange(int port, const char *req, size_t n, char **resp)
{
	return exchange_hc(port, req, n, resp, true);
}

static int get_status(int port, const char *req)
{
	char *resp;
	int code = exchange(port, req, strlen(req), &resp);
	free(resp);
	return code;
}

/* A GET /metrics that must answer 200 with uri up. */
static void expect_scrape(int port, const char *uri, const char *when)
{
	char *resp;
	const char *req = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
	int code = exchange(port, req, strlen(req), &resp);
	cr_assert_eq(code, 200, "%s: status %d: %.200s", when, code, resp);
	const char *body = strstr(resp, "\r\n\r\n");
	cr_assert_not_null(body);
	cr_expect_eq(sample(body + 4, "shmring_ring_up", uri), 1, "%s: ring not up", when);
	cr_expect_not_null(strstr(resp, "\r\nContent-Type: text/plain; version=0.0.4"), "%s", when);
	free(resp);
}

Test(metrics, http_answers_get_and_refuses_the_rest, .timeout = 60)
{
	const char *uri = t_ring_uri("http");
	make(uri, SHMRING_SPSC, 0);
	struct server sv;
	server_start(&sv, NULL);
	expect_scrape(sv.port, uri, "plain GET");
	static const struct { const char *req; int code; } cases[] = {
		{ "GET /metrics?x=1 HTTP/1.0\r\n\r\n", 200 },
		{ "GET /metrics HTTP/1.1\n\n", 200 },
		{ "HEAD /metrics HTTP/1.1\r\n\r\n", 200 },
		{ "GET / HTTP/1.1\r\n\r\n", 404 },
		{ "GET /metricsx HTTP/1.1\r\n\r\n", 404 },
		{ "POST /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\nab", 405 },
		{ "DELETE /metrics HTTP/1.1\r\n\r\n", 405 },
		{ "GET /metrics\r\n\r\n", 400 },
		{ "GET /metrics HTTP/2.0\r\n\r\n", 400 },
		{ "GET  /metrics HTTP/1.1\r\n\r\n", 400 },
		{ "\r\n\r\n", 400 },
		{ "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400 },   /* a TLS hello */
		{ "GET /\x01 HTTP/1.1\r\n\r\n", 400 },
		{ "G\xc3\xa9T /metrics HTTP/1.1\r\n\r\n", 400 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int code = get_status(sv.port, cases[i].req);
		cr_expect_eq(code, cases[i].code, "case %zu: status %d, want %d", i, code,
			     cases[i].code);
	}
	char *resp;
	int code = exchange(sv.port, "HEAD /metrics HTTP/1.1\r\n\r\n", 26, &resp);
	cr_expect_eq(code, 200);
	cr_expect_null(strstr(resp, "shmring_"), "HEAD sent a body");
	free(resp);
	code = exchange(sv.port, "PUT /metrics HTTP/1.1\r\n\r\n", 25, &resp);
	cr_expect_not_null(strstr(resp, "\r\nAllow: GET, HEAD\r\n"), "%s", resp);
	free(resp);
	expect_scrape(sv.port, uri, "after the bad requests");
	server_stop(&sv);
}

/* A head that arrives split anywhere -- here one byte per segment, so
 * also between a CR and its LF -- is judged as the whole head would be. */
Test(metrics, http_judges_a_head_split_anywhere_as_whole, .timeout = 60)
{
	const char *uri = t_ring_uri("split");
	make(uri, SHMRING_SPSC, 0);
	struct server sv;
	server_start(&sv, NULL);
	static const struct { const char *req; int code; } cases[] = {
		{ "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 200 },
		{ "GET /nothing HTTP/1.1\r\n\r\n", 404 },
		{ "GET /metrics HTTP/1.1\r\r\n\r\n", 400 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int fd = connect_to(sv.port);
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		const char *req = cases[i].req;
		for (size_t k = 0; req[k]; k++) {
			cr_assert_eq(send(fd, req + k, 1, MSG_NOSIGNAL), 1, "case %zu, byte %zu", i, k);
			t_sleep_ms(2);      /* each byte its own segment, read on its own */
		}
		char buf[64] = { 0 };
		cr_assert_gt(recv(fd, buf, sizeof(buf) - 1, 0), 0, "case %zu: no answer", i);
		int code = 0;
		sscanf(buf, "HTTP/1.%*1[01] %d ", &code);
		cr_expect_eq(code, cases[i].code, "case %zu: status %d, want %d", i, code,
			     cases[i].code);
		close(fd);
	}
	server_stop(&sv);
}

/* A client that asks for /metrics and then reads one byte a second. */
static int slow_reader(void *arg)
{
	int port = *(int *)arg;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int small = 1024;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		return 1;
	const char *req = "GET /metrics HTTP/1.1\r\n\r\n";
	if (write(fd, req, strlen(req)) < 0)
		return 2;
	for (;;) {
		char c;
		if (read(fd, &c, 1) <= 0)
			return 0;
		t_sleep_ms(1000);
	}
}

Test(metrics, http_survives_garbage_huge_lines_idle_crowds_and_slow_readers, .timeout = 120)
{
	struct rlimit rl;
	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < 1024 + 64 && rl.rlim_max >= 1024 + 64) {
		rl.rlim_cur = 1024 + 64;
		cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	}
	if (rl.rlim_cur < 700)
		cr_skip_test("RLIMIT_NOFILE %llu: too few descriptors for 600 idle connections",
			     (unsigned long long)rl.rlim_cur);
	/* many rings, so that a scrape is larger than the socket buffers */
	const char *uri = NULL;
	for (int i = 0; i < 60; i++) {
		uri = t_ring_uri("crowd");
		make(uri, i % 3 == 0 ? SHMRING_SPSC : i % 3 == 1 ? SHMRING_MPMC : SHMRING_BCAST, 0);
	}
	struct server sv;
	server_start(&sv, NULL);
	expect_scrape(sv.port, uri, "first");

	/* two slow readers, started first: they hold their answers throughout */
	pid_t slow[2];
	for (int i = 0; i < 2; i++)
		slow[i] = t_spawn(slow_reader, &sv.port);

	/* garbage of every sort, each followed by a good scrape */
	uint64_t rnd = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	for (int i = 0; i < 20; i++) {
		char junk[512];
		size_t n = 1 + t_rand(&rnd) % sizeof(junk);
		for (size_t k = 0; k < n; k++)
			junk[k] = (char)t_rand(&rnd);
		char *resp;
		int code = exchange(sv.port, junk, n, &resp);
		free(resp);
		cr_expect(code == 400 || code == 0, "junk %d: status %d", i, code);
	}
	/* a good request with random bytes changed, cut or doubled */
	static const char good[] = "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n";
	for (int i = 0; i < 100; i++) {
		char req[2 * sizeof(good)];
		size_t n = sizeof(good) - 1;
		memcpy(req, good, n);
		for (int k = 1 + (int)(t_rand(&rnd) % 4); k > 0; k--)
			req[t_rand(&rnd) % n] = (char)t_rand(&rnd);
		if (t_rand(&rnd) % 4 == 0)
			n = t_rand(&rnd) % n + 1;
		else if (t_rand(&rnd) % 4 == 0) {
			memcpy(req + n, req, n);
			n *= 2;
		}
		char *resp;
		int code = exchange(sv.port, req, n, &resp);
		free(resp);
		cr_expect(code == 0 || code == 200 || code == 400 || code == 404 || code == 405,
			  "mutation %d: status %d for '%.*s'", i, code, (int)n, req);
	}
	expect_scrape(sv.port, uri, "after random bytes");

	/* a request line of 1 MiB */
	size_t big = 1u << 20;
	char *line = malloc(big + 32);
	memcpy(line, "GET /", 5);
	memset(line + 5, 'a', big);
	memcpy(line + 5 + big, " HTTP/1.1\r\n\r\n", 14);
	char *resp;
	int code = exchange(sv.port, line, big + 18, &resp);
	cr_expect_eq(code, 431, "1 MiB request line: status %d", code);
	free(resp);
	/* and 1 MiB of headers after a good request line */
	memcpy(line, "GET /metrics HTTP/1.1\r\nX: ", 26);
	code = exchange(sv.port, line, big, &resp);
	cr_expect_eq(code, 431, "1 MiB of headers: status %d", code);
	free(resp);
	free(line);
	expect_scrape(sv.port, uri, "after 1 MiB request lines");

	/* 600 idle connections (more than the 512 it keeps): others still served */
	enum { IDLE = 600 };
	int *idle = malloc(IDLE * sizeof(int));
	for (int i = 0; i < IDLE; i++)
		idle[i] = connect_to(sv.port);
	expect_scrape(sv.port, uri, "with 600 idle connections");
	/* and with half a request on each of the newest */
	for (int i = IDLE - 100; i < IDLE; i++)
		cr_assert_eq(send(idle[i], "GET /metr", 9, MSG_NOSIGNAL), 9);
	expect_scrape(sv.port, uri, "with 100 half requests");
	for (int i = 0; i < IDLE; i++)
		close(idle[i]);
	free(idle);
	expect_scrape(sv.port, uri, "after the idle crowd left");

	for (int i = 0; i < 2; i++) {
		cr_expect_eq(waitpid(slow[i], NULL, WNOHANG), 0, "a slow reader finished: it was "
			     "not slowed down");
		kill(slow[i], SIGKILL);
		t_wait(slow[i]);
	}
	expect_scrape(sv.port, uri, "last");
	server_stop(&sv);
}

/* ======================================================================= */
/* a real Prometheus                                                       */
/* ======================================================================= */

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(a);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &sl), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static void url_escape(const char *s, char *out, size_t n)
{
	size_t o = 0;
	for (; *s && o + 4 < n; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '_' || c == '-' || c == '.')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, n - o, "%%%02X", c);
	}
	out[o] = 0;
}

/* Prometheus's answer to the instant query q (free()); NULL if it is not up. */
static char *prom_query(int port, const char *q)
{
	char esc[2048], req[2300];
	url_escape(q, esc, sizeof(esc));
	snprintf(req, sizeof(req), "GET /api/v1/query?query=%s HTTP/1.0\r\nHost: 127.0.0.1\r\n"
		 "Connection: close\r\n\r\n", esc);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return NULL;
	}
	close(fd);
	char *resp;
	int code = exchange_hc(port, req, strlen(req), &resp, false);
	if (code != 200) {
		cr_log_info("query %s: status %d: %.300s", q, code, resp);
		free(resp);
		return NULL;
	}
	char *body = strstr(resp, "\r\n\r\n");
	char *out = strdup(body ? body + 4 : "");
	free(resp);
	return out;
}

struct prom_arg {
	int port;
	const char *uri;
	char *held;              /* "name value" lines: every series of the ring */
};

/* The value Prometheus holds for metric{ring=uri} (not a subscriber's);
 * -1 if none.  One query per ring: {ring="uri"}. */
static double from_prometheus(void *arg, const char *metric)
{
	struct prom_arg *a = arg;
	if (!a->held) {
		char q[600];
		snprintf(q, sizeof(q), "{ring=\"%s\"}", a->uri);
		char *doc = prom_query(a->port, q);
		cr_assert_not_null(doc, "query %s failed", q);
		a->held = jq("if .status != \"success\" then error(\"not success\") else"
			     " .data.result[] | select(.metric.subscriber == null)"
			     " | \"\\(.metric.__name__) \\(.value[1])\" end", doc);
		free(doc);
	}
	size_t ml = strlen(metric);
	for (const char *p = a->held; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, metric, ml) && p[ml] == ' ')
			return strtod(p + ml + 1, NULL);
	return -1;
}

Test(metrics, a_real_prometheus_holds_what_info_reports, .timeout = 120)
{
	NEED_PROMETHEUS("prometheus");
	struct scene s;
	scene_make(&s);
	struct server sv;
	server_start(&sv, s.dir);
	const char *d = tmp_dir();
	int pport = free_port();
	char cfg[256], data[256], log[256], listen[64];
	snprintf(cfg, sizeof(cfg), "%s/prometheus.yml", d);
	snprintf(data, sizeof(data), "%s/data", d);
	snprintf(log, sizeof(log), "%s/prometheus.log", d);
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", pport);
	FILE *f = fopen(cfg, "w");
	cr_assert_not_null(f);
	fprintf(f, "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
		   "scrape_configs:\n  - job_name: shmring\n    static_configs:\n"
		   "      - targets: ['127.0.0.1:%d']\n", sv.port);
	fclose(f);
	int out = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	cr_assert_geq(out, 0);
	fflush(NULL);
	pid_t pp = fork();
	cr_assert_geq(pp, 0);
	if (pp == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(out, 1);
		dup2(out, 2);
		char *argv[] = { "prometheus", "--config.file", cfg, "--storage.tsdb.path", data,
				 "--web.listen-address", listen, NULL };
		execvp("prometheus", argv);
		_exit(127);
	}
	close(out);
	/* wait until it holds two scrapes of every ring */
	char q[600];
	snprintf(q, sizeof(q), "min(count_over_time(shmring_ring_up{ring=~\"%s|%s\"}[5m]))",
		 s.spsc, s.fbcast);
	int scrapes = 0;
	for (int i = 0; i < 600 && scrapes < 2; i++) {
		char *doc = prom_query(pport, q);
		if (doc) {
			char *v = jq(".data.result | if length == 1 then .[0].value[1] else 0 end", doc);
			scrapes = atoi(v);
			free(v);
			free(doc);
		}
		if (scrapes < 2)
			t_sleep_ms(100);
	}
	cr_assert_geq(scrapes, 2, "Prometheus did not scrape twice in 60 s (log: %s)", log);
	const char *up[] = { s.spsc, s.mpmc, s.bcast, s.fspsc, s.fbcast, s.shut, s.dead };
	for (size_t i = 0; i < sizeof(up) / sizeof(up[0]); i++) {
		struct prom_arg a = { pport, up[i], NULL };
		cr_expect_eq(from_prometheus(&a, "shmring_ring_up"), 1, "%s", up[i]);
		expect_as_info(up[i], from_prometheus, &a);
		free(a.held);
	}
	struct prom_arg a = { pport, s.bad, NULL };
	cr_expect_eq(from_prometheus(&a, "shmring_ring_up"), 0);
	free(a.held);
	/* the target itself was healthy */
	char *doc = prom_query(pport, "up{job=\"shmring\"}");
	cr_assert_not_null(doc);
	char *v = jq(".data.result[0].value[1]", doc);
	cr_expect_str_eq(v, "1\n");
	free(v);
	free(doc);
	kill(pp, SIGTERM);
	int st = t_wait(pp);
	cr_expect(st == 0 || st == 128 + SIGTERM, "prometheus exit %d", st);
	server_stop(&sv);
	scene_end(&s);
}

/* ======================================================================= */
/* the Grafana dashboard                                                   */
/* ======================================================================= */

Test(metrics, grafana_dashboard_is_valid_and_uses_real_metrics, .timeout = 30)
{
	/* make check runs in the source tree */
	const char *path = "tools/grafana/shmring.json";
	cr_assert_eq(access(path, R_OK), 0, "%s: %s", path, strerror(errno));
	/* the panels an operator wants first */
	char *titles = jq_on("[.panels[] | select(.type != \"row\") | .title | ascii_downcase]"
			     " | join(\"|\")", NULL, path);
	static const char *const want[] = { "throughput", "fill", "lag", "recovery" };
	for (size_t i = 0; i < 4; i++)
		cr_expect_not_null(strstr(titles, want[i]), "no %s panel in: %s", want[i], titles);
	free(titles);
	/* every metric the queries name is one the tool writes */
	char *exprs = jq_on("[.. | objects | .expr? // empty] | join(\"\\n\")", NULL, path);
	cr_assert_gt(strlen(exprs), 10, "no queries");
	const char *uri = t_ring_uri("graf");
	make(uri, SHMRING_BCAST, 0);
	char *text = scrape(NULL);
	unsigned names = 0;
	for (char *p = strstr(exprs, "shmring_"); p; p = strstr(p + 1, "shmring_")) {
		size_t l = strspn(p, "abcdefghijklmnopqrstuvwxyz_");
		char type[200];
		snprintf(type, sizeof(type), "# TYPE %.*s ", (int)l, p);
		cr_expect_not_null(strstr(text, type), "the dashboard asks for %.*s, which the tool "
				   "does not write", (int)l, p);
		names++;
	}
	cr_expect_geq(names, 4);
	free(text);
	free(exprs);
}
