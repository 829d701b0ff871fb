/* SPDX-License-Identifier: MIT */
/*
 * metrics: one scrape of every ring, in the Prometheus text exposition
 * format (version 0.0.4), on stdout, into a file for node_exporter's
 * textfile collector (written whole, then renamed over the old one), or
 * served over HTTP (http.c).
 *
 * Each segment is read once through the tool's reader (seg.c: copies,
 * validated, liveness by F_OFD_GETLK, which takes no lock), reduced to a
 * small record, and closed; the families are then written one after the
 * other, each with its HELP and TYPE lines and one sample per ring.  A
 * segment that cannot be read or fails validation appears only in
 * shmring_ring_up, as 0, with a reason label.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "metrics.h"
#include "scan.h"
#include "seg.h"
#include "shmctl.h"

/* One broadcast subscriber line in use. */
struct msub {
	uint32_t line;
	bool alive;
	char name[BC_NAME_MAX];
	uint64_t lag_msgs, lag_bytes, recv, lost, evictions;
};

/* What one scrape keeps of a segment. */
struct mring {
	char *labels;              /* `ring="...",kind="...",backend="..."`, escaped */
	const char *reason;        /* NULL: up */
	struct shmring_stats st;   /* up only, from here on */
	uint32_t prod_live, prod_dead, cons_live, cons_dead, subs_live;
	bool in_use;
	double idle_s;
	unsigned nsubs;
	struct msub *subs;
};

struct scrape {
	const struct opts *o;
	struct tseg *s;
	struct mring *r;
	size_t n, cap;
	int err;                   /* -ENOMEM once memory ran out */
};

/* ---- text ---------------------------------------------------------------- */

/* A growing buffer written with printf formats (open_memstream() zeroes and
 * copies its buffer at every step: several times slower on 1,000 rings). */
struct obuf {
	char *p;
	size_t len, cap;
	bool nomem;
};

static void ob_grow(struct obuf *b, size_t need)
{
	size_t cap = b->cap ? b->cap : 256;
	while (cap - b->len <= need)
		cap *= 2;
	char *np = realloc(b->p, cap);
	if (!np) {
		b->nomem = true;
		return;
	}
	b->p = np;
	b->cap = cap;
}

static void ob_put(struct obuf *b, const char *p, size_t n)
{
	if (b->cap - b->len <= n)
		ob_grow(b, n);
	if (b->nomem)
		return;
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

/* name{labels} value: the line of most samples, without printf */
static void ob_sample(struct obuf *b, const char *name, const char *labels, uint64_t v)
{
	char num[24];
	size_t i = sizeof(num);
	num[--i] = '\n';
	do {
		num[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	num[--i] = ' ';
	ob_put(b, name, strlen(name));
	ob_put(b, "{", 1);
	ob_put(b, labels, strlen(labels));
	ob_put(b, "}", 1);
	ob_put(b, num + i, sizeof(num) - i);
}

static void ob_printf(struct obuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void ob_printf(struct obuf *b, const char *fmt, ...)
{
	for (int pass = 0; pass < 2 && !b->nomem; pass++) {
		va_list ap;
		va_start(ap, fmt);
		size_t room = b->cap - b->len;
		int n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->nomem = true;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		ob_grow(b, (size_t)n);
	}
}

/* A label value: printable ASCII as is, '\' and '"' escaped, every other
 * byte as the text \xNN (so the value is valid UTF-8 whatever the name). */
static void put_label_value(struct obuf *b, const char *v)
{
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if (*p == '\\' || *p == '"')
			ob_printf(b, "\\%c", *p);
		else if (*p >= 0x20 && *p < 0x7f)
			ob_printf(b, "%c", *p);
		else
			ob_printf(b, "\\\\x%02x", *p);
	}
}

static char *make_labels(const char *ring, const char *kind, const char *backend)
{
	struct obuf b = { 0 };
	ob_printf(&b, "ring=\"");
	put_label_value(&b, ring);
	ob_printf(&b, "\",kind=\"%s\",backend=\"%s\"", kind, backend);
	if (b.nomem) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

/* ---- reading the rings --------------------------------------------------- */

static void subscribers(const struct tseg *s, struct mring *m)
{
	if (!tseg_bcast(s))
		return;
	struct msub subs[BC_MAX_SUBS];
	for (uint32_t i = 0; i < BC_MAX_SUBS; i++) {
		struct seg_bc_sub v;
		seg_bc_sub(&s->bring, s->g.capacity, i, &v);
		if (v.state == BC_FREE)
			continue;
		struct msub *u = &subs[m->nsubs++];
		u->line = i;
		u->alive = v.owner && v.owner <= CTL_MAX_PARTS && tseg_alive_now(s, v.owner - 1);
		snprintf(u->name, sizeof(u->name), "%s", v.name);
		u->lag_msgs = v.lag_msgs;
		u->lag_bytes = v.lag_bytes;
		u->recv = v.msgs_recv;
		u->lost = v.msgs_lost;
		u->evictions = v.evictions;
		m->subs_live += u->alive;
	}
	if (m->nsubs && (m->subs = malloc(m->nsubs * sizeof(*m->subs))))
		memcpy(m->subs, subs, m->nsubs * sizeof(*m->subs));
	else
		m->nsubs = 0;
}

static void keep_state(const struct tseg *s, struct mring *m)
{
	uint64_t now = now_real_ns();
	tseg_stats(s, &m->st);
	m->prod_live = s->prod_live;
	m->prod_dead = s->prod_dead;
	m->cons_live = s->cons_live;
	m->cons_dead = s->cons_dead;
	m->in_use = s->in_use;
	m->idle_s = now > s->last_activity_ns ? (double)(now - s->last_activity_ns) / 1e9 : 0;
	subscribers(s, m);
}

static struct mring *new_ring(struct scrape *c)
{
	if (c->n == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 256;
		struct mring *nr = realloc(c->r, ncap * sizeof(*nr));
		if (!nr) {
			c->err = -ENOMEM;
			return NULL;
		}
		c->r = nr;
		c->cap = ncap;
	}
	struct mring *m = &c->r[c->n];
	memset(m, 0, sizeof(*m));
	return m;
}

static void scrape_one(void *arg, int dirfd, const char *path, const char *name,
		       const char *backend)
{
	struct scrape *c = arg;
	struct tseg *s = c->s;
	char uri[PATH_MAX + 8];
	if (c->err)
		return;
	tseg_init(s);
	s->backend = backend;
	int rc = tseg_open(s, dirfd, name, path, false);
	const char *reason = NULL;
	if (rc == -EACCES || rc == -EPERM)
		reason = "unreadable";           /* perhaps a ring: we cannot tell */
	else if (rc != 0)
		return;                          /* not a regular file, or gone */
	else if ((rc = tseg_read(s)) < 0)
		reason = rc == -ENOMEM ? NULL : "read_error";
	else if (!s->ours)
		goto out;                        /* not a shmring segment */
	else if (s->status != TS_OK || !s->have_state)
		reason = tstatus_name(s->status);
	if (rc == -ENOMEM) {
		c->err = -ENOMEM;
		goto out;
	}
	struct mring *m = new_ring(c);
	if (!m)
		goto out;
	bool up = !reason;
	m->labels = make_labels(tseg_uri(s, uri, sizeof(uri)), up ? kind_name(s->g.kind) : "unknown",
				backend);
	if (!m->labels) {
		c->err = -ENOMEM;
		goto out;
	}
	m->reason = reason;
	if (up)
		keep_state(s, m);
	c->n++;
out:
	tseg_close(s);
}

/* ---- the families -------------------------------------------------------- */

#define ST(field) offsetof(struct shmring_stats, field)

/* Counters straight from struct shmring_stats. */
static const struct counter {
	const char *name, *help;
	size_t off;
} counters[] = {
	{ "shmring_messages_sent_total", "Messages committed by producers.", ST(msgs_sent) },
	{ "shmring_sent_bytes_total", "Payload bytes committed by producers.", ST(bytes_sent) },
	{ "shmring_messages_received_total", "Messages released by consumers.", ST(msgs_recv) },
	{ "shmring_received_bytes_total", "Payload bytes released by consumers.", ST(bytes_recv) },
	{ "shmring_waits_full_total", "Sends that found the ring full and waited.", ST(waits_full) },
	{ "shmring_waits_empty_total", "Receives that found the ring empty and waited.",
	  ST(waits_empty) },
	{ "shmring_futex_wakes_total", "FUTEX_WAKE calls made.", ST(futex_wakes) },
	{ "shmring_futex_sleeps_total", "FUTEX_WAIT calls made.", ST(futex_sleeps) },
	{ "shmring_poll_wakes_total", "Doorbells rung for shmring_fd() pollers.", ST(poll_wakes) },
	{ "shmring_poll_spurious_total", "shmring_fd() readiness after which a call found "
	  "nothing to do.", ST(poll_spurious) },
	{ "shmring_repairs_total", "Recovery: control-plane repairs after a holder died "
	  "mid-section.", ST(repairs) },
	{ "shmring_takeovers_total", "Recovery: roles taken over from dead holders.",
	  ST(takeovers) },
	{ "shmring_messages_redelivered_total", "Recovery: messages held by a dead consumer, "
	  "delivered again.", ST(msgs_redelivered) },
	{ "shmring_messages_dropped_total", "Recovery: messages lost to a crash, never "
	  "delivered.", ST(msgs_dropped) },
	{ "shmring_holes_skipped_total", "Recovery (MPMC): claims of dead producers skipped.",
	  ST(holes_skipped) },
	{ "shmring_stalls_skipped_total", "Recovery (MPMC): slots of live holders skipped "
	  "after the stall timeout.", ST(stalls_skipped) },
	{ "shmring_commits_cancelled_total", "Recovery (MPMC): late commits refused.",
	  ST(commits_cancelled) },
	{ "shmring_messages_lost_total", "Broadcast: messages overwritten or evicted before "
	  "a subscriber read them, all subscribers.", ST(msgs_lost) },
	{ "shmring_evictions_total", "Broadcast: subscribers evicted for keeping the producer "
	  "waiting past the stall timeout.", ST(evictions) },
};

static double g_capacity(const struct mring *m) { return (double)m->st.capacity; }
static double g_used(const struct mring *m) { return (double)m->st.used; }
static double g_fill(const struct mring *m)
{
	return m->st.capacity ? (double)m->st.used / (double)m->st.capacity : 0;
}
static double g_max_msg(const struct mring *m) { return m->st.max_msg; }
static double g_prod_live(const struct mring *m) { return m->prod_live; }
static double g_prod_dead(const struct mring *m) { return m->prod_dead; }
static double g_cons_live(const struct mring *m) { return m->cons_live; }
static double g_cons_dead(const struct mring *m) { return m->cons_dead; }
static double g_subs_live(const struct mring *m) { return m->subs_live; }
static double g_lag_msgs(const struct mring *m) { return (double)m->st.lag_msgs; }
static double g_lag_bytes(const struct mring *m) { return (double)m->st.lag_bytes; }
static double g_idle(const struct mring *m) { return m->idle_s; }
static double g_shut(const struct mring *m) { return m->st.shut_down != 0; }
static double g_in_use(const struct mring *m) { return m->in_use; }

static const struct gauge {
	const char *name, *help;
	double (*get)(const struct mring *m);
} gauges[] = {
	{ "shmring_capacity_bytes", "Data bytes the ring holds.", g_capacity },
	{ "shmring_used_bytes", "Bytes queued now (broadcast: behind the slowest counted "
	  "subscriber).", g_used },
	{ "shmring_fill_ratio", "Used bytes over capacity, 0 to 1.", g_fill },
	{ "shmring_max_message_bytes", "Largest message the ring takes.", g_max_msg },
	{ "shmring_live_producers", "Producers attached whose process is alive.", g_prod_live },
	{ "shmring_dead_producers", "Producers attached whose process died.", g_prod_dead },
	{ "shmring_live_consumers", "Consumers attached whose process is alive.", g_cons_live },
	{ "shmring_dead_consumers", "Consumers attached whose process died.", g_cons_dead },
	{ "shmring_live_subscribers", "Broadcast: subscriber lines whose process is alive.",
	  g_subs_live },
	{ "shmring_lag_messages", "Broadcast: messages the slowest live subscriber has not "
	  "received.", g_lag_msgs },
	{ "shmring_lag_bytes", "Broadcast: ring bytes between the slowest live subscriber and "
	  "the producer.", g_lag_bytes },
	{ "shmring_idle_seconds", "Seconds since the last activity (creation, attach or "
	  "close).", g_idle },
	{ "shmring_shut_down", "1 once shmring_shutdown() was called on the ring.", g_shut },
	{ "shmring_in_use", "1 if some process maps the ring now.", g_in_use },
};

/* Per subscriber line: gauges, then counters. */
enum { SUB_LAG_MSGS, SUB_LAG_BYTES, SUB_ALIVE, SUB_RECV, SUB_LOST, SUB_EVICT };
static const struct sub_family {
	const char *name, *type, *help;
} sub_families[] = {
	[SUB_LAG_MSGS] = { "shmring_subscriber_lag_messages", "gauge",
			   "Broadcast: messages committed this subscriber has not received." },
	[SUB_LAG_BYTES] = { "shmring_subscriber_lag_bytes", "gauge",
			    "Broadcast: ring bytes between this subscriber and the producer." },
	[SUB_ALIVE] = { "shmring_subscriber_alive", "gauge",
			"Broadcast: 1 if this subscriber's process is alive." },
	[SUB_RECV] = { "shmring_subscriber_messages_received_total", "counter",
		       "Broadcast: messages this subscriber received." },
	[SUB_LOST] = { "shmring_subscriber_messages_lost_total", "counter",
		       "Broadcast: messages overwritten or evicted before this subscriber "
		       "read them." },
	[SUB_EVICT] = { "shmring_subscriber_evictions_total", "counter",
			"Broadcast: times this subscriber was evicted." },
};

static void head(struct obuf *f, const char *name, const char *type, const char *help)
{
	ob_printf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static uint64_t sub_value(const struct msub *u, unsigned fam)
{
	switch (fam) {
	case SUB_LAG_MSGS: return u->lag_msgs;
	case SUB_LAG_BYTES: return u->lag_bytes;
	case SUB_ALIVE: return u->alive;
	case SUB_RECV: return u->recv;
	case SUB_LOST: return u->lost;
	default: return u->evictions;
	}
}

static void write_subscribers(struct obuf *f, const struct scrape *c)
{
	for (unsigned k = 0; k < sizeof(sub_families) / sizeof(sub_families[0]); k++) {
		const struct sub_family *sf = &sub_families[k];
		head(f, sf->name, sf->type, sf->help);
		for (size_t i = 0; i < c->n; i++) {
			const struct mring *m = &c->r[i];
			for (unsigned j = 0; j < m->nsubs; j++) {
				const struct msub *u = &m->subs[j];
				ob_printf(f, "%s{%s,subscriber=\"", sf->name, m->labels);
				if (u->name[0])
					put_label_value(f, u->name);
				else
					ob_printf(f, "line %u", u->line);
				ob_printf(f, "\",line=\"%u\"} %llu\n", u->line,
					(unsigned long long)sub_value(u, k));
			}
		}
	}
}

static void write_families(struct obuf *f, const struct scrape *c, uint64_t t0)
{
	head(f, "shmring_ring_up", "gauge", "1 if the segment was read and is sound; 0 with a "
	     "reason label (corrupt, incomplete, unsupported, unreadable, read_error).");
	for (size_t i = 0; i < c->n; i++) {
		const struct mring *m = &c->r[i];
		if (m->reason)
			ob_printf(f, "shmring_ring_up{%s,reason=\"%s\"} 0\n", m->labels, m->reason);
		else
			ob_printf(f, "shmring_ring_up{%s} 1\n", m->labels);
	}
	for (size_t k = 0; k < sizeof(counters) / sizeof(counters[0]); k++) {
		head(f, counters[k].name, "counter", counters[k].help);
		for (size_t i = 0; i < c->n; i++) {
			const struct mring *m = &c->r[i];
			uint64_t v;
			if (m->reason)
				continue;
			memcpy(&v, (const char *)&m->st + counters[k].off, sizeof(v));
			ob_sample(f, counters[k].name, m->labels, v);
		}
	}
	for (size_t k = 0; k < sizeof(gauges) / sizeof(gauges[0]); k++) {
		head(f, gauges[k].name, "gauge", gauges[k].help);
		for (size_t i = 0; i < c->n; i++) {
			if (c->r[i].reason)
				continue;
			double v = gauges[k].get(&c->r[i]);
			if (v >= 0 && v < 9007199254740992.0 && v == (double)(uint64_t)v)
				ob_sample(f, gauges[k].name, c->r[i].labels, (uint64_t)v);
			else
				ob_printf(f, "%s{%s} %.17g\n", gauges[k].name, c->r[i].labels, v);
		}
	}
	write_subscribers(f, c);
	head(f, "shmring_scrape_rings", "gauge", "Segments this scrape reported.");
	ob_printf(f, "shmring_scrape_rings %zu\n", c->n);
	head(f, "shmring_scrape_duration_seconds", "gauge", "Time this scrape took to read "
	     "the segments and write all but this line.");
	ob_printf(f, "shmring_scrape_duration_seconds %.6f\n",
		  (double)(now_mono_ns() - t0) / 1e9);
}

int metrics_scrape(const struct opts *o, char **text, size_t *len)
{
	struct scrape c = { .o = o };
	uint64_t t0 = now_mono_ns();
	*text = NULL;
	*len = 0;
	c.s = malloc(sizeof(*c.s));
	if (!c.s)
		return -ENOMEM;
	/* a directory that cannot be read was reported by scan_dirs; the
	 * others are still scraped */
	(void)scan_dirs(o, scrape_one, &c);
	free(c.s);
	struct obuf b = { 0 };
	if (!c.err) {
		/* about 3,000 bytes a ring */
		ob_grow(&b, c.n * 4096);
		write_families(&b, &c, t0);
		if (b.nomem)
			c.err = -ENOMEM;
	}
	*text = b.p;
	*len = b.len;
	for (size_t i = 0; i < c.n; i++) {
		free(c.r[i].labels);
		free(c.r[i].subs);
	}
	free(c.r);
	if (c.err) {
		free(*text);
		*text = NULL;
		*len = 0;
	}
	return c.err;
}

/* ---- delivery ------------------------------------------------------------ */

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* The whole text into PATH.tmp.PID beside path, then renamed over path:
 * node_exporter never reads half a file. */
static int write_textfile(const char *path, const char *text, size_t len)
{
	char tmp[PATH_MAX];
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= sizeof(tmp))
		return fail(EXIT_ERROR, path, "%s", strerror(ENAMETOOLONG));
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	/* left by a run killed before its rename, whose pid was ours: no live
	 * process writes under our pid, so it goes (a symbolic link put there
	 * is removed, never followed); once only */
	if (fd < 0 && errno == EEXIST && unlink(tmp) == 0)
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return fail(EXIT_ERROR, tmp, "%s", strerror(errno));
	int rc = write_all(fd, text, len);
	/* readable by node_exporter whatever our umask */
	if (rc == 0 && fchmod(fd, 0644) < 0)
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0) {
		unlink(tmp);
		return fail(EXIT_ERROR, path, "%s", strerror(-rc));
	}
	return EXIT_OK;
}

int cmd_metrics(const struct opts *o)
{
	if (o->listen)
		return http_serve(o, o->listen);
	char *text;
	size_t len;
	int rc = metrics_scrape(o, &text, &len);
	if (rc < 0)
		return fail(EXIT_ERROR, NULL, "metrics: %s", strerror(-rc));
	if (o->textfile) {
		rc = write_textfile(o->textfile, text, len);
		free(text);
		return rc;
	}
	fwrite(text, 1, len, stdout);
	free(text);
	return finish_output(EXIT_OK);
}
