/* SPDX-License-Identifier: MIT */
/* shmring-bench output: the terminal tables, the goals, and --json. */
#include "bench.h"

#include <stdio.h>

const char *g_missing_peers[8];
unsigned g_n_missing_peers;

const char *fmt_size(size_t s, char *buf, size_t len)
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

static const char *mode_name(void)
{
	return cfg.msgs ? "fixed-count" : cfg.quick ? "quick" : "full";
}

void print_missing_peers(void)
{
	for (unsigned i = 0; i < g_n_missing_peers; i++)
		printf("peer not built: %s\n", g_missing_peers[i]);
}

void print_header(const struct machine *m)
{
	printf("shmring-bench: shmring %d.%d.%d, %s mode, median of %u reps\n",
	       SHMRING_VERSION_MAJOR, SHMRING_VERSION_MINOR, SHMRING_VERSION_PATCH,
	       mode_name(), cfg.reps);
	printf("machine: %s, %ld CPUs online, %s, governor %s, load average %s at start\n",
	       m->cpu, m->nproc, m->kernel, m->governor, m->load_start);
	if (g_cpu[0] >= 0)
		printf("pinning: producer (A) on CPU %d, consumer (B) on CPU %d; 2x2: a producer and a\n"
		       "  consumer on each CPU -- four processes on two CPUs, oversubscribed, spinners yield\n",
		       g_cpu[0], g_cpu[1]);
	else
		printf("pinning: only %u CPU available: NOT pinned, spinning sides yield; "
		       "numbers are not meaningful\n", g_ncpu_allowed);
	printf("system calls: %s\n", syscalls_counted() ?
	       "counted per process (perf, raw_syscalls:sys_enter)" :
	       "not counted (tracefs not mounted or perf_event_open refused)");
	print_missing_peers();
	fflush(stdout);
}

#define TPUT_FMT "%-21s %3s %3s %7s %10s %21s %9s %8s %8s\n"
#define LAT_FMT "%-21s %7s %9s %8s %8s %8s %9s %10s\n"

static void print_tput_row(const struct case_result *c)
{
	char sz[32], pc[8], b[8], rate[32], mm[48], gb[32], cpu[32], sys[32], lo[16], hi[16];

	snprintf(pc, sizeof(pc), "%ux%u", c->t->nprod, c->t->ncons);
	snprintf(b, sizeof(b), "%u", c->t->batch);
	fmt_size(c->size, sz, sizeof(sz));
	if (c->na) {
		printf("%-21s %3s %3s %7s %10s\n", c->t->name, pc, b, sz, c->na);
		return;
	}
	fmt_rate(c->rate_med, rate, sizeof(rate));
	snprintf(mm, sizeof(mm), "%s - %s", fmt_rate(c->rate_min, lo, sizeof(lo)),
		 fmt_rate(c->rate_max, hi, sizeof(hi)));
	snprintf(gb, sizeof(gb), "%.3f", c->rate_med * (double)c->size / 1e9);
	snprintf(cpu, sizeof(cpu), "%.1f", c->streamed ? c->cpu_ns / (double)c->streamed : 0);
	if (c->syscalls >= 0 && c->streamed)
		snprintf(sys, sizeof(sys), "%.4f", c->syscalls / (double)c->streamed);
	else
		snprintf(sys, sizeof(sys), "-");
	printf(TPUT_FMT, c->t->name, pc, b, sz, rate, mm, gb, cpu, sys);
}

static void print_lat_row(const struct case_result *c)
{
	char sz[32];

	fmt_size(c->size, sz, sizeof(sz));
	if (c->na) {
		printf("%-21s %7s %9s\n", c->t->name, sz, c->na);
		return;
	}
	printf("%-21s %7s %9" PRIu64 " %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %9" PRIu64
	       " %10" PRIu64 "\n", c->t->name, sz, c->lat.samples, c->lat.p50, c->lat.p99,
	       c->lat.p999, c->lat.p9999, c->lat.max);
}

void print_tables(const struct case_result *res, unsigned n)
{
	printf("\nstreaming throughput: median msgs/s of %u reps (min - max), GB = 10^9 B of payload;\n"
	       "  cpu = user+sys ns of every process per message; sys = system calls per message\n",
	       cfg.reps);
	printf(TPUT_FMT, "transport", "PxC", "b", "size", "msgs/s", "min - max", "GB/s",
	       "cpu ns", "sys/msg");
	for (unsigned i = 0; i < n; i++)
		if (res[i].na ? (res[i].t->flags & T_TPUT) : res[i].has_tput)
			print_tput_row(&res[i]);
	printf("\nround trip, ns (one message each way, 1x1, samples of all reps):\n");
	printf(LAT_FMT, "transport", "size", "samples", "p50", "p99", "p99.9", "p99.99", "max");
	for (unsigned i = 0; i < n; i++)
		if (res[i].na ? (res[i].t->flags & T_LAT) : res[i].has_lat)
			print_lat_row(&res[i]);
	fflush(stdout);
}

/* ---------------------------------------------------------------------- */
/* goals: each a ratio of two cases of this run                             */

enum metric { M_RATE, M_P50, M_P99, M_SYSCALLS, M_PCPU };  /* M_PCPU: producer CPU ns/msg */

struct goal {
	const char *label;
	const char *num;                /* transport */
	const char *den;                /* transport; NULL: the value itself */
	size_t size;
	enum metric m;
	bool at_least;
	double goal;
	size_t den_size;                /* the den case's size when not `size` */
};

/* The size of a goal's den case. */
static size_t den_size(const struct goal *g)
{
	return g->den_size ? g->den_size : g->size;
}

static const struct goal goals[] = {
	{ "SPSC 64 B msgs/s, shmring-poll / dpdk-spsc", "shmring-poll", "dpdk-spsc", 64, M_RATE, true, 2, 0 },
	{ "SPSC 64 B msgs/s, shmring-poll / ck-spsc", "shmring-poll", "ck-spsc", 64, M_RATE, true, 1, 0 },
	{ "SPSC 64 B batch 32, shmring / dpdk bursts", "shmring-poll-b32", "dpdk-spsc-b32", 64, M_RATE, true, 1.2, 0 },
	{ "SPSC 8 B batch 32, shmring / dpdk bursts", "shmring-poll-b32", "dpdk-spsc-b32", 8, M_RATE, true, 1.2, 0 },
	{ "SPSC FIXED 8 B batch 32, shmring / dpdk bursts", "shmring-fixed-b32", "dpdk-spsc-b32", 8, M_RATE, true, 1.2, 0 },
	{ "SPSC FIXED 64 B msgs/s, shmring-fixed / dpdk-spsc", "shmring-fixed", "dpdk-spsc", 64, M_RATE, true, 2, 0 },
	{ "SPSC 64 B rtt p50, shmring-poll / dpdk-spsc", "shmring-poll", "dpdk-spsc", 64, M_P50, false, 0.8, 0 },
	{ "SPSC 64 B rtt p50, shmring-poll / cacheline-rec", "shmring-poll", "cacheline-rec", 64, M_P50, false, 1.15, 0 },
	{ "SPSC 56 B rtt p50, shmring-poll / cacheline (64 B)", "shmring-poll", "cacheline", 56, M_P50, false, 1.25, 64 },
	{ "SPSC 64 B rtt p50, shmring-inline / cacheline-rec", "shmring-inline", "cacheline-rec", 64, M_P50, false, 1.15, 0 },
	{ "SPSC 56 B rtt p50, shmring-inline / cacheline (64 B)", "shmring-inline", "cacheline", 56, M_P50, false, 1.25, 64 },
	{ "MPMC 1x1 64 B msgs/s, shmring-mpmc / shmring-poll", "shmring-mpmc", "shmring-poll", 64, M_RATE, true, 0.6, 0 },
	{ "MPMC 2x2 64 B crash safety: algo / nosafety", "mpmc-algo-2x2", "mpmc-algo-nosafety-2x2", 64, M_RATE, true, 0.85, 0 },
	{ "MPMC 1x1 64 B crash safety: algo / nosafety", "mpmc-algo", "mpmc-algo-nosafety", 64, M_RATE, true, 0.85, 0 },
	{ "MPMC 1x1 64 B msgs/s, shmring / dpdk-mpmc", "shmring-mpmc", "dpdk-mpmc", 64, M_RATE, true, 1.5, 0 },
	{ "MPMC 1x1 64 B msgs/s, shmring / ck-mpmc", "shmring-mpmc", "ck-mpmc", 64, M_RATE, true, 1, 0 },
	{ "MPMC 1x1 64 B batch 32, shmring / dpdk", "shmring-mpmc-b32", "dpdk-mpmc-b32", 64, M_RATE, true, 0.8, 0 },
	{ "1 MiB frames, shmring-zc / bare-frame", "shmring-zc", "bare-frame", MIB, M_RATE, true, 0.9, 0 },
	{ "8 MiB frames, shmring-zc / bare-frame", "shmring-zc", "bare-frame", 8 * MIB, M_RATE, true, 0.9, 0 },
	{ "1 MiB frames, 64 MiB ring / 4 MiB ring (zc)", "shmring-zc-64m", "shmring-zc", MIB, M_RATE, true, 0.9, 0 },
	{ "1 MiB frames, shmring-zc-64m / bare-frame", "shmring-zc-64m", "bare-frame", MIB, M_RATE, true, 0.9, 0 },
	{ "1 MiB frames, shmring-zc / iceoryx", "shmring-zc", "iceoryx", MIB, M_RATE, true, 1.4, 0 },
	{ "8 MiB frames, shmring-zc / iceoryx", "shmring-zc", "iceoryx", 8 * MIB, M_RATE, true, 1.4, 0 },
	{ "64 B wake rtt p50, shmring-sleep / futex-pingpong", "shmring-sleep", "futex-pingpong", 64, M_P50, false, 1.1, 0 },
	{ "64 B rtt p50, shmring-block / shmring-poll", "shmring-block", "shmring-poll", 64, M_P50, false, 1.2, 0 },
	{ "64 B streaming syscalls/msg, shmring-block", "shmring-block", NULL, 64, M_SYSCALLS, false, 0.001, 0 },
	{ "64 B rtt p50, shmring-epoll / eventfd-pingpong", "shmring-epoll", "eventfd-pingpong", 64, M_P50, false, 1.2, 0 },
	{ "64 B rtt p50, shmring-epoll / shmring-sleep", "shmring-epoll", "shmring-sleep", 64, M_P50, false, 1.2, 0 },
	{ "64 B msgs/s, shmring-epoll / shmring-block", "shmring-epoll", "shmring-block", 64, M_RATE, true, 0.8, 0 },
	{ "64 B streaming syscalls/msg, shmring-epoll", "shmring-epoll", NULL, 64, M_SYSCALLS, false, 0.01, 0 },
	{ "64 B msgs/s, shmring-poll / pipe", "shmring-poll", "pipe", 64, M_RATE, true, 20, 0 },
	{ "64 B msgs/s, shmring-poll / unix-stream", "shmring-poll", "unix-stream", 64, M_RATE, true, 10, 0 },
	{ "64 B msgs/s, file-tmpfs / shmring-poll", "file-tmpfs", "shmring-poll", 64, M_RATE, true, 0.9, 0 },
	{ "64 B msgs/s, file-disk / shmring-poll", "file-disk", "shmring-poll", 64, M_RATE, true, 0.75, 0 },
	{ "BCAST 1x1 64 B msgs/s, bcast / shmring-poll", "shmring-bcast", "shmring-poll", 64, M_RATE, true, 0.8, 0 },
	{ "BCAST 64 B producer CPU/msg, 8 subs / 1 sub", "shmring-bcast-x8", "shmring-bcast-block", 64, M_PCPU, false, 1.3, 0 },
	{ "BCAST 8 MiB x3 frames/s, bcast / spsc-x3", "shmring-bcast-zc-x3", "shmring-spsc-x3", 8 * MIB, M_RATE, true, 1.5, 0 },
	{ "BCAST 8 MiB x3 producer CPU/frame, bcast / spsc", "shmring-bcast-zc-x3", "shmring-spsc-x3", 8 * MIB, M_PCPU, false, 0.5, 0 },
	{ "BCAST 8 MiB x3 frames/s, bcast / iceoryx-x3", "shmring-bcast-zc-x3", "iceoryx-x3", 8 * MIB, M_RATE, true, 1, 0 },
};
#define N_GOALS (sizeof(goals) / sizeof(goals[0]))

/* Ratios with no goal, printed to read the goals by: a 64 B message and
 * the word that says it has arrived do not fit one 64-byte line, so no
 * ring that frames messages in band can go below cacheline-rec; a
 * wake-up through epoll costs what eventfd-epoll adds to eventfd-pingpong
 * before shmring adds anything.  A ring sized for slack moving one frame
 * at a time shows what warm placement keeps out of the caches' way; a
 * stream fills it, and a full ring is cold whatever its placement. */
static const struct goal context[] = {
	{ "64 B rtt p50, cacheline-rec / cacheline", "cacheline-rec", "cacheline", 64, M_P50, false, 0, 0 },
	{ "64 B rtt p99, shmring-poll / cacheline-rec", "shmring-poll", "cacheline-rec", 64, M_P99, false, 0, 0 },
	{ "56 B rtt p99, shmring-poll / cacheline (64 B)", "shmring-poll", "cacheline", 56, M_P99, false, 0, 64 },
	{ "64 B rtt p99, shmring-inline / cacheline-rec", "shmring-inline", "cacheline-rec", 64, M_P99, false, 0, 0 },
	{ "56 B rtt p99, shmring-inline / cacheline (64 B)", "shmring-inline", "cacheline", 56, M_P99, false, 0, 64 },
	{ "64 B rtt p50, shmring-inline / shmring-poll", "shmring-inline", "shmring-poll", 64, M_P50, false, 0, 0 },
	{ "64 B msgs/s, shmring-inline / shmring-poll", "shmring-inline", "shmring-poll", 64, M_RATE, true, 0, 0 },
	{ "64 B rtt p50, eventfd-epoll / eventfd-pingpong", "eventfd-epoll", "eventfd-pingpong", 64, M_P50, false, 0, 0 },
	{ "64 B rtt p50, shmring-epoll / eventfd-epoll", "shmring-epoll", "eventfd-epoll", 64, M_P50, false, 0, 0 },
	{ "64 B producer CPU/msg, 8 SPSC rings / BCAST 1 sub", "shmring-spsc-x8", "shmring-bcast-block", 64, M_PCPU, false, 0, 0 },
	{ "64 B producer CPU/msg, 8 SPSC rings / BCAST 8 subs", "shmring-spsc-x8", "shmring-bcast-x8", 64, M_PCPU, false, 0, 0 },
	{ "64 B producer CPU/msg, 8 subs / 1 sub, subs off its CPU", "shmring-bcast-x8-own", "shmring-bcast-block", 64, M_PCPU, false, 0, 0 },
	{ "1 MiB rtt p50, 64 MiB ring / 4 MiB ring (zc)", "shmring-zc-64m", "shmring-zc", MIB, M_P50, false, 0, 0 },
	{ "1 MiB frames, bare-frame-64m / bare-frame", "bare-frame-64m", "bare-frame", MIB, M_RATE, true, 0, 0 },
	{ "1 MiB frames, shmring-zc-64m / bare-frame-64m", "shmring-zc-64m", "bare-frame-64m", MIB, M_RATE, true, 0, 0 },
};
#define N_CONTEXT (sizeof(context) / sizeof(context[0]))

struct goal_result {
	bool have;
	double value;
	const char *why;                /* when !have */
	const char *source;             /* M_SYSCALLS: what counted them */
};

static const struct case_result *find(const struct case_result *res, unsigned n,
				      const char *name, size_t size)
{
	for (unsigned i = 0; i < n; i++)
		if (res[i].size == size && strcmp(res[i].t->name, name) == 0)
			return &res[i];
	return NULL;
}

/* value of a metric, or false with the reason */
static bool metric(const struct case_result *c, enum metric m, double *v, const char **why)
{
	if (!c) {
		*why = "not run";
		return false;
	}
	if (c->na) {
		*why = c->na;
		return false;
	}
	if (m == M_RATE && c->has_tput && c->rate_med > 0) {
		*v = c->rate_med;
		return true;
	}
	if (m == M_PCPU && c->has_tput && c->streamed && c->prod_cpu_ns > 0) {
		*v = c->prod_cpu_ns / (double)c->streamed;
		return true;
	}
	if (m == M_P50 && c->has_lat && c->lat.p50 > 0) {
		*v = (double)c->lat.p50;
		return true;
	}
	if (m == M_P99 && c->has_lat && c->lat.p99 > 0) {
		*v = (double)c->lat.p99;
		return true;
	}
	*why = "not run";
	return false;
}

static struct goal_result eval_goal(const struct goal *g, const struct case_result *res, unsigned n)
{
	struct goal_result r = { false, 0, "not run", NULL };
	const struct case_result *a = find(res, n, g->num, g->size);
	double x, y;

	if (g->m == M_SYSCALLS) {
		if (!a || a->na || !a->has_tput || !a->streamed) {
			r.why = a && a->na ? a->na : "not run";
			return r;
		}
		r.have = true;
		if (a->syscalls >= 0) {
			r.value = a->syscalls / (double)a->streamed;
			r.source = "perf";
		} else if (a->t->flags & T_FDWAIT) {
			/* epoll_wait, the doorbell's recv and sendto: no counter */
			r.have = false;
			r.why = "not counted (needs perf)";
		} else if (a->has_stats && a->stat_msgs) {
			/* the library's only system calls on this path are futex */
			r.value = (double)(a->st.futex_wakes + a->st.futex_sleeps) /
				  (double)a->stat_msgs;
			r.source = "futex calls from shmring_stats";
		} else {
			r.have = false;
		}
		return r;
	}
	if (!metric(a, g->m, &x, &r.why))
		return r;
	if (!metric(find(res, n, g->den, den_size(g)), g->m, &y, &r.why))
		return r;
	r.have = true;
	r.value = x / y;
	return r;
}

static void place(const struct case_result *c, const struct case_result *res, bool *placed,
		  unsigned *order, unsigned *k)
{
	if (c && !placed[c - res]) {
		placed[c - res] = true;
		order[(*k)++] = (unsigned)(c - res);
	}
}

static const struct goal *ratio(unsigned i)
{
	return i < N_GOALS ? &goals[i] : &context[i - N_GOALS];
}

/* Case c (if it ran), then every case it is compared with. */
static void place_with_partners(const struct case_result *c, const struct case_result *res,
				unsigned n, bool *placed, unsigned *order, unsigned *k)
{
	if (!c)
		return;
	place(c, res, placed, order, k);
	for (unsigned i = 0; i < N_GOALS + N_CONTEXT; i++) {
		const struct goal *g = ratio(i);
		if (!g->den)
			continue;
		if (g->size == c->size && strcmp(g->num, c->t->name) == 0)
			place(find(res, n, g->den, den_size(g)), res, placed, order, k);
		else if (den_size(g) == c->size && strcmp(g->den, c->t->name) == 0)
			place(find(res, n, g->num, g->size), res, placed, order, k);
	}
}

/*
 * The order the cases run in, each rep: every case of a ratio (goals, then
 * context) right after the case it is compared with, in the order of the
 * goals, then every other case as listed.  A slow spell of this machine
 * (the two virtual CPUs drifting apart) lasts seconds; a whole rep of
 * every case takes minutes, so two cases of a ratio run far apart could
 * see two different machines.  (Spells change within seconds too: this
 * narrows the gap, it does not make the ratios steady.)
 */
void goal_run_order(const struct case_result *res, unsigned n, unsigned *order)
{
	bool placed[MAX_TRANSPORTS * MAX_SIZES] = { false };
	unsigned k = 0;
	for (unsigned i = 0; i < N_GOALS + N_CONTEXT; i++) {
		const struct goal *g = ratio(i);
		place_with_partners(find(res, n, g->num, g->size), res, n, placed, order, &k);
		if (g->den)
			place_with_partners(find(res, n, g->den, den_size(g)), res, n, placed, order, &k);
	}
	for (unsigned i = 0; i < n; i++)
		place(&res[i], res, placed, order, &k);
}

static bool goal_ok(const struct goal *g, const struct goal_result *r)
{
	return r->have && (g->at_least ? r->value >= g->goal : r->value <= g->goal);
}

void print_goals(const struct case_result *res, unsigned n)
{
	printf("\ngoals (ratios of two cases of this run, medians; rtt: p50 of all samples):\n");
	for (unsigned i = 0; i < N_GOALS; i++) {
		const struct goal *g = &goals[i];
		struct goal_result r = eval_goal(g, res, n);
		if (r.have)
			printf("  %-50s %8.4g   goal %s %-6g %s%s%s\n", g->label, r.value,
			       g->at_least ? ">=" : "<=", g->goal,
			       g_cpu[0] < 0 ? "not judged (1 CPU)" : goal_ok(g, &r) ? "ok" : "MISSED",
			       r.source ? ", by " : "", r.source ? r.source : "");
		else
			printf("  %-50s %8s   goal %s %-6g %s\n", g->label, "-",
			       g->at_least ? ">=" : "<=", g->goal, r.why);
	}
	if (cfg.quick)
		printf("  (quick mode: about 0.04 s a case and repetition, so one slow spell of\n"
		       "   the machine can move a ratio 2-4x; `make bench` runs the full cases,\n"
		       "   docs/PERFORMANCE.md records such runs)\n");
	printf("context (no goal: the two-line floor of any ring framing a 64 B message;\n"
	       "  what epoll adds to a bare eventfd wake-up, and what shmring adds to that;\n"
	       "  a fan-out through one SPSC ring per reader, against a broadcast ring;\n"
	       "  a big ring moving one frame at a time, against a small one):\n");
	for (unsigned i = 0; i < N_CONTEXT; i++) {
		struct goal_result r = eval_goal(&context[i], res, n);
		if (r.have)
			printf("  %-50s %8.4g\n", context[i].label, r.value);
		else
			printf("  %-50s %8s   %s\n", context[i].label, "-", r.why);
	}
}

/* ---------------------------------------------------------------------- */
/* JSON                                                                     */

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

static void json_case(const struct case_result *c)
{
	printf("    { \"transport\": ");
	json_str(c->t->name);
	printf(", \"family\": ");
	json_str(c->t->family);
	printf(", \"producers\": %u, \"consumers\": %u, \"batch\": %u, \"size\": %zu, ",
	       c->t->nprod, c->t->ncons, c->t->batch, c->size);
	if (c->na) {
		printf("\"not_run\": ");
		json_str(c->na);
		printf(" }");
		return;
	}
	if (c->has_tput) {
		printf("\"throughput\": { \"msgs_timed\": %" PRIu64 ", \"reps\": %u, "
		       "\"msgs_per_s\": %.0f, \"msgs_per_s_min\": %.0f, \"msgs_per_s_max\": %.0f, "
		       "\"gb_per_s\": %.4f, \"cpu_ns_per_msg\": %.2f, "
		       "\"producer_cpu_ns_per_msg\": %.2f, \"syscalls_per_msg\": ",
		       c->streamed, c->reps, c->rate_med, c->rate_min, c->rate_max,
		       c->rate_med * (double)c->size / 1e9,
		       c->streamed ? c->cpu_ns / (double)c->streamed : 0,
		       c->streamed ? c->prod_cpu_ns / (double)c->streamed : 0);
		if (c->syscalls >= 0 && c->streamed)
			printf("%.5f", c->syscalls / (double)c->streamed);
		else
			printf("null");
		if (c->t->flags & T_POLLS)      /* which side waited: full or empty */
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
		       ", \"p99_9\": %" PRIu64 ", \"p99_99\": %" PRIu64 ", \"max\": %" PRIu64 " }",
		       c->lat.samples, c->lat.min, c->lat.mean, c->lat.p50, c->lat.p99,
		       c->lat.p999, c->lat.p9999, c->lat.max);
	else
		printf("\"rtt_ns\": null");
	if (c->has_stats)
		printf(", \"ring_stats\": { \"msgs_sent\": %" PRIu64 ", \"msgs_recv\": %" PRIu64
		       ", \"waits_full\": %" PRIu64 ", \"waits_empty\": %" PRIu64
		       ", \"futex_wakes\": %" PRIu64 ", \"futex_sleeps\": %" PRIu64
		       ", \"poll_wakes\": %" PRIu64 ", \"poll_spurious\": %" PRIu64
		       ", \"capacity\": %" PRIu64 ", \"max_msg\": %u }",
		       c->st.msgs_sent, c->st.msgs_recv, c->st.waits_full, c->st.waits_empty,
		       c->st.futex_wakes, c->st.futex_sleeps, c->st.poll_wakes, c->st.poll_spurious,
		       c->st.capacity, c->st.max_msg);
	printf(" }");
}

void print_json(const struct case_result *res, unsigned n, const struct machine *m)
{
	printf("{\n  \"tool\": \"shmring-bench\",\n  \"shmring_version\": \"%d.%d.%d\",\n",
	       SHMRING_VERSION_MAJOR, SHMRING_VERSION_MINOR, SHMRING_VERSION_PATCH);
	printf("  \"mode\": \"%s\",\n  \"reps\": %u,\n", mode_name(), cfg.reps);
	printf("  \"machine\": { \"cpu\": ");
	json_str(m->cpu);
	printf(", \"nproc\": %ld, \"cpus_allowed\": %u, \"kernel\": ", m->nproc, g_ncpu_allowed);
	json_str(m->kernel);
	printf(", \"governor\": ");
	json_str(m->governor);
	printf(", \"loadavg_start\": ");
	json_str(m->load_start);
	printf(", \"loadavg_end\": ");
	json_str(m->load_end);
	printf(", \"pinned\": %s, \"cpu_producers\": %d, \"cpu_consumers\": %d, "
	       "\"syscalls_counted\": %s },\n", g_cpu[0] >= 0 ? "true" : "false", g_cpu[0],
	       g_cpu[1], syscalls_counted() ? "true" : "false");
	printf("  \"peers_not_built\": [");
	for (unsigned i = 0; i < g_n_missing_peers; i++) {
		printf(i ? ", " : " ");
		json_str(g_missing_peers[i]);
	}
	printf(" ],\n");
	printf("  \"method\": { \"throughput\": \"consumer clocks, earliest first to latest last "
	       "message of each rep, after an untimed warm-up; median of reps\", \"rtt\": \"ns per "
	       "round trip, CLOCK_MONOTONIC, log-bucketed histogram, 64 sub-buckets per power of "
	       "two\", \"gb\": 1000000000 },\n");
	printf("  \"results\": [\n");
	for (unsigned i = 0; i < n; i++) {
		json_case(&res[i]);
		printf("%s\n", i + 1 < n ? "," : "");
	}
	printf("  ],\n  \"goals\": [\n");
	for (unsigned i = 0; i < N_GOALS; i++) {
		const struct goal *g = &goals[i];
		struct goal_result r = eval_goal(g, res, n);
		printf("    { \"name\": ");
		json_str(g->label);
		if (r.have)
			printf(", \"value\": %.4f", r.value);
		else
			printf(", \"value\": null, \"why\": \"%s\"", r.why);
		printf(", \"goal\": \"%s %g\", \"ok\": %s }%s\n", g->at_least ? ">=" : "<=",
		       g->goal, goal_ok(g, &r) ? "true" : "false", i + 1 < N_GOALS ? "," : "");
	}
	printf("  ],\n  \"context\": [\n");
	for (unsigned i = 0; i < N_CONTEXT; i++) {
		struct goal_result r = eval_goal(&context[i], res, n);
		printf("    { \"name\": ");
		json_str(context[i].label);
		if (r.have)
			printf(", \"value\": %.4f }", r.value);
		else
			printf(", \"value\": null, \"why\": \"%s\" }", r.why);
		printf("%s\n", i + 1 < N_CONTEXT ? "," : "");
	}
	printf("  ]\n}\n");
}
