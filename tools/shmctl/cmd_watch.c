/* SPDX-License-Identifier: MIT */
/*
 * watch: a live view like top(1).  Every interval the ring state and the
 * control block are copied with pread (no mapping, no lock) and turned into
 * rates.  On a terminal the screen is redrawn in place ('q' or Ctrl-C
 * quits); into a pipe or file, one line per interval.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "report.h"
#include "shmctl.h"

static volatile sig_atomic_t stop_sig;

static void on_stop(int sig)
{
	stop_sig = sig;
}

struct sample {
	uint64_t t;               /* CLOCK_MONOTONIC ns */
	struct shmring_stats st;
	bool ok;
};

struct rates {
	bool valid;
	double in_msgs, in_mb, out_msgs, out_mb, waits_full, waits_empty, wakes, sleeps;
	uint64_t recoveries_new;
};

static double per_s(uint64_t now, uint64_t then, double dt)
{
	return now >= then ? (double)(now - then) / dt : 0.0;   /* a reset counter: 0 */
}

static uint64_t recoveries(const struct shmring_stats *s)
{
	return s->repairs + s->takeovers + s->msgs_redelivered + s->msgs_dropped +
	       s->holes_skipped + s->stalls_skipped + s->commits_cancelled;
}

static void compute(const struct sample *prev, const struct sample *cur, struct rates *r)
{
	memset(r, 0, sizeof(*r));
	if (!prev->ok || !cur->ok || cur->t <= prev->t)
		return;
	double dt = (double)(cur->t - prev->t) / 1e9;
	const struct shmring_stats *a = &prev->st, *b = &cur->st;
	r->valid = true;
	r->in_msgs = per_s(b->msgs_sent, a->msgs_sent, dt);
	r->in_mb = per_s(b->bytes_sent, a->bytes_sent, dt) / 1e6;
	r->out_msgs = per_s(b->msgs_recv, a->msgs_recv, dt);
	r->out_mb = per_s(b->bytes_recv, a->bytes_recv, dt) / 1e6;
	r->waits_full = per_s(b->waits_full, a->waits_full, dt);
	r->waits_empty = per_s(b->waits_empty, a->waits_empty, dt);
	r->wakes = per_s(b->futex_wakes, a->futex_wakes, dt);
	r->sleeps = per_s(b->futex_sleeps, a->futex_sleeps, dt);
	r->recoveries_new = recoveries(b) >= recoveries(a) ? recoveries(b) - recoveries(a) : 0;
}

static const char *rate(bool valid, double v, int decimals, char *buf, size_t n)
{
	if (!valid)
		snprintf(buf, n, "-");
	else
		snprintf(buf, n, "%.*f", decimals, v);
	return buf;
}

/* Where the name stands now: "" if it still refers to the file we watch. */
static const char *name_state(const struct tseg *s)
{
	struct stat byname;
	if (s->st.st_nlink == 0)
		return "  [removed: the name was unlinked]";
	if (stat(s->path, &byname) < 0 || byname.st_ino != s->st.st_ino ||
	    byname.st_dev != s->st.st_dev)
		return "  [the name now refers to another file]";
	return "";
}

/* One screen; every line ends with "clear to end of line". */
static void draw(const struct opts *o, const struct tseg *s, const char *uri,
		 const struct sample *cur, const struct rates *r)
{
	char a[32], b[32], c[32], d[32], t[40];
	printf("\033[H");
	printf("%s watch %s   every %.2gs   %s   (q quits)\033[K\n", TOOL_NAME, uri,
	       (double)o->interval_ns / 1e9, fmt_time(now_real_ns(), t, sizeof(t)));
	if (!cur->ok) {
		printf("%s: %s%s\033[K\n\033[J", tstatus_name(s->status), s->reason, name_state(s));
		return;
	}
	double fill = fill_pct(s);
	char bar[21];
	int filled = (int)(fill / 5.0 + 0.5);
	for (int i = 0; i < 20; i++)
		bar[i] = i < filled ? '#' : ' ';
	bar[20] = 0;
	bool shut = s->shut_down;
	printf("%s  capacity %s  max_msg %s  fill %5.1f%% [%s]  used %s%s\033[K\n",
	       kind_name(s->g.kind), fmt_size(s->g.capacity, a, sizeof(a)),
	       fmt_size(s->g.max_msg, b, sizeof(b)), fill, bar, fmt_size(s->used, c, sizeof(c)),
	       name_state(s));
	printf("producers %u live %u dead   consumers %u live %u dead   shut down: %s\033[K\n",
	       s->prod_live, s->prod_dead, s->cons_live, s->cons_dead, shut ? "yes" : "no");
	printf("\033[K\n");
	printf("  %-12s %12s %10s %16s %16s\033[K\n", "", "msgs/s", "MB/s", "total msgs",
	       "total bytes");
	printf("  %-12s %12s %10s %16llu %16llu\033[K\n", "in (sent)",
	       rate(r->valid, r->in_msgs, 1, a, sizeof(a)), rate(r->valid, r->in_mb, 3, b, sizeof(b)),
	       (unsigned long long)cur->st.msgs_sent, (unsigned long long)cur->st.bytes_sent);
	printf("  %-12s %12s %10s %16llu %16llu\033[K\n", "out (recv)",
	       rate(r->valid, r->out_msgs, 1, a, sizeof(a)),
	       rate(r->valid, r->out_mb, 3, b, sizeof(b)),
	       (unsigned long long)cur->st.msgs_recv, (unsigned long long)cur->st.bytes_recv);
	printf("\033[K\n");
	printf("  %-12s full %s/s   empty %s/s   (totals %llu, %llu)\033[K\n", "waits",
	       rate(r->valid, r->waits_full, 1, a, sizeof(a)),
	       rate(r->valid, r->waits_empty, 1, b, sizeof(b)),
	       (unsigned long long)cur->st.waits_full, (unsigned long long)cur->st.waits_empty);
	printf("  %-12s wake-ups %s/s   sleeps %s/s\033[K\n", "futex",
	       rate(r->valid, r->wakes, 1, c, sizeof(c)), rate(r->valid, r->sleeps, 1, d, sizeof(d)));
	printf("  %-12s %s new   repairs %llu  takeovers %llu  redelivered %llu  dropped %llu  "
	       "holes %llu\033[K\n", "recoveries",
	       r->valid ? (snprintf(a, sizeof(a), "%llu", (unsigned long long)r->recoveries_new), a)
			: "-",
	       (unsigned long long)cur->st.repairs, (unsigned long long)cur->st.takeovers,
	       (unsigned long long)cur->st.msgs_redelivered,
	       (unsigned long long)cur->st.msgs_dropped,
	       (unsigned long long)cur->st.holes_skipped);
	if (tseg_mpmc(s))
		printf("  %-12s stalls skipped %llu  commits cancelled %llu\033[K\n", "",
		       (unsigned long long)cur->st.stalls_skipped,
		       (unsigned long long)cur->st.commits_cancelled);
	printf("\033[J");
}

static void line(const struct tseg *s, const struct sample *cur, const struct rates *r, bool first)
{
	char t[40], v[8][32];
	time_t now = (time_t)(now_real_ns() / 1000000000ull);
	struct tm tm;
	if (!localtime_r(&now, &tm) || !strftime(t, sizeof(t), "%H:%M:%S", &tm))
		snprintf(t, sizeof(t), "-");
	if (first)
		printf("%-8s %10s %9s %10s %9s %6s %12s %13s %9s %10s %5s %5s\n", "TIME", "IN_MSG/S",
		       "IN_MB/S", "OUT_MSG/S", "OUT_MB/S", "FILL%", "WAITS_FULL/S", "WAITS_EMPTY/S",
		       "WAKES/S", "RECOVERIES", "PROD", "CONS");
	if (!cur->ok) {
		printf("%-8s %s: %s%s\n", t, tstatus_name(s->status), s->reason, name_state(s));
		return;
	}
	char p[16], c[16];
	snprintf(p, sizeof(p), "%u/%u", s->prod_live, s->prod_dead);
	snprintf(c, sizeof(c), "%u/%u", s->cons_live, s->cons_dead);
	printf("%-8s %10s %9s %10s %9s %6.1f %12s %13s %9s %10llu %5s %5s\n", t,
	       rate(r->valid, r->in_msgs, 1, v[0], 32), rate(r->valid, r->in_mb, 3, v[1], 32),
	       rate(r->valid, r->out_msgs, 1, v[2], 32), rate(r->valid, r->out_mb, 3, v[3], 32),
	       fill_pct(s), rate(r->valid, r->waits_full, 1, v[4], 32),
	       rate(r->valid, r->waits_empty, 1, v[5], 32), rate(r->valid, r->wakes, 1, v[6], 32),
	       (unsigned long long)recoveries(&cur->st), p, c);
}

/* --json: one JSON document per interval, a stream for jq and friends */
static void json_sample(const struct tseg *s, const struct sample *cur, const struct rates *r)
{
	struct jw w;
	jw_init(&w, stdout);
	jw_obj(&w, NULL);
	jw_u64(&w, "time_ns", now_real_ns());
	jw_str(&w, "status", tstatus_name(s->status));
	if (!cur->ok) {
		jw_str(&w, "reason", s->reason);
	} else {
		jw_bool(&w, "rates_valid", r->valid);
		jw_dbl(&w, "in_msgs_per_s", r->in_msgs, 1);
		jw_dbl(&w, "in_mb_per_s", r->in_mb, 3);
		jw_dbl(&w, "out_msgs_per_s", r->out_msgs, 1);
		jw_dbl(&w, "out_mb_per_s", r->out_mb, 3);
		jw_dbl(&w, "fill_pct", fill_pct(s), 1);
		jw_dbl(&w, "waits_full_per_s", r->waits_full, 1);
		jw_dbl(&w, "waits_empty_per_s", r->waits_empty, 1);
		jw_dbl(&w, "wakes_per_s", r->wakes, 1);
		jw_u64(&w, "recoveries", recoveries(&cur->st));
		jw_u64(&w, "producers_live", s->prod_live);
		jw_u64(&w, "consumers_live", s->cons_live);
	}
	jw_obj_end(&w);
	jw_done(&w);
}

/* Sleep until the deadline, a signal, or 'q' on the terminal.  false: stop. */
static bool wait_next(uint64_t deadline, bool keys)
{
	for (;;) {
		if (stop_sig)
			return false;
		uint64_t now = now_mono_ns();
		if (now >= deadline)
			return true;
		uint64_t left_ms = (deadline - now + 999999) / 1000000;
		if (keys) {
			struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
			int n = poll(&p, 1, (int)(left_ms > 60000 ? 60000 : left_ms));
			if (n > 0) {
				char ch;
				ssize_t got = read(STDIN_FILENO, &ch, 1);
				if (got == 0 || (got == 1 && (ch == 'q' || ch == 'Q' || ch == 3)))
					return false;
				if (p.revents & (POLLHUP | POLLERR | POLLNVAL))
					return false;
			}
		} else {
			struct timespec ts = { (time_t)((deadline - now) / 1000000000ull),
					       (long)((deadline - now) % 1000000000ull) };
			nanosleep(&ts, NULL);
		}
	}
}

/* The terminal on stdin without line buffering or echo, so that 'q' is
 * seen at once; the settings before into *saved.  false: left as it was. */
static bool keys_raw(struct termios *saved)
{
	if (tcgetattr(STDIN_FILENO, saved) != 0)
		return false;
	struct termios raw = *saved;
	raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
	raw.c_cc[VMIN] = 0;
	raw.c_cc[VTIME] = 0;
	return tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
}

/* SIGINT, SIGTERM and SIGHUP end the watch after the current sample. */
static void catch_stop(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

static int watch_seg(const struct opts *o, struct tseg *s)
{
	int rc;
	bool tty = isatty(STDOUT_FILENO) && !o->json;
	struct termios saved;
	bool keys = tty && isatty(STDIN_FILENO) && keys_raw(&saved);
	catch_stop();

	char uri[PATH_MAX + 8], safe[PATH_MAX + 16];
	fmt_safe(tseg_uri(s, uri, sizeof(uri)), safe, sizeof(safe));
	if (tty)
		printf("\033[H\033[2J\033[?25l");       /* clear, hide the cursor */
	struct sample prev = { 0 }, cur = { 0 };
	uint64_t frames = 0, next = now_mono_ns();
	bool problem = false, out_broken = false;
	rc = EXIT_OK;
	for (;;) {
		int r = frames ? tseg_read(s) : 0;      /* open_target read the first */
		if (r < 0) {
			rc = fail(EXIT_ERROR, s->path, "read: %s", strerror(-r));
			break;
		}
		cur.t = now_mono_ns();
		cur.ok = s->status == TS_OK && s->have_state;
		problem = !cur.ok;
		tseg_stats(s, &cur.st);
		struct rates rt;
		compute(&prev, &cur, &rt);
		if (o->json)
			json_sample(s, &cur, &rt);
		else if (tty)
			draw(o, s, safe, &cur, &rt);
		else
			line(s, &cur, &rt, frames == 0);
		prev = cur;
		/* each sample is flushed here, and only here, so that a write
		 * error is seen with its errno: a closed pipe or a full disk;
		 * without --count nothing else would ever stop the loop */
		int e = stdout_failed();
		if (e) {
			rc = fail(EXIT_ERROR, "standard output", "write error: %s", strerror(e));
			out_broken = true;
			break;
		}
		if (o->count && ++frames >= o->count)
			break;
		if (!o->count)
			frames++;
		next += o->interval_ns;
		if (next < now_mono_ns())
			next = now_mono_ns();       /* fell behind (stopped?): no burst */
		if (!wait_next(next, keys))
			break;
	}
	if (tty && !out_broken)
		printf("\033[?25h\n");
	if (keys)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	if (rc == EXIT_OK && problem)
		rc = fail(EXIT_PROBLEM, s->path, "%s: %s", tstatus_name(s->status), s->reason);
	return out_broken ? rc : finish_output(rc);   /* reported once */
}

int cmd_watch(const struct opts *o)
{
	return with_target(o, watch_seg);
}
