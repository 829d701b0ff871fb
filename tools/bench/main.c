/* SPDX-License-Identifier: MIT */
/*
 * shmring-bench: the speed of shmring beside the alternatives -- DPDK
 * rte_ring, Concurrency Kit ck_ring, iceoryx, the kernel's transports and
 * the physical floors -- measured in one run, with one harness, by the
 * same pinned processes, and printed as one table (or JSON, or a plot).
 *
 * The R reps of a case are not run back to back: rep 1 of every case runs,
 * then rep 2 (in reverse order), and so on, so that a slow spell of the
 * machine hits every transport alike and the ratios stay fair; and within a
 * round every case runs beside the cases it is compared with, as far as one
 * order allows (goal_run_order()).
 */
#include "bench.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const struct transport *g_t[MAX_TRANSPORTS];
static unsigned g_nt;
static bool g_use[MAX_TRANSPORTS];

static void add_family(const struct transport *ts, unsigned n)
{
	for (unsigned i = 0; i < n && g_nt < MAX_TRANSPORTS; i++)
		g_t[g_nt++] = &ts[i];
}

/* table order: shmring, the peers, the kernel, the floors */
static void collect_transports(void)
{
	add_family(bench_shmring_transports, bench_shmring_count);
	add_family(bench_poll_transports, bench_poll_count);
	add_family(bench_mpmc_safe_transports, bench_mpmc_safe_count);
	add_family(bench_mpmc_nosafety_transports, bench_mpmc_nosafety_count);
#ifdef BENCH_HAVE_DPDK
	add_family(bench_dpdk_transports, bench_dpdk_count);
#else
	g_missing_peers[g_n_missing_peers++] =
		"dpdk (pkg-config libdpdk not found at build time: apt-get install libdpdk-dev)";
#endif
#ifdef BENCH_HAVE_CK
	add_family(bench_ck_transports, bench_ck_count);
#else
	g_missing_peers[g_n_missing_peers++] =
		"ck (<ck_ring.h> not found at build time: apt-get install libck-dev)";
#endif
#ifdef BENCH_HAVE_ICEORYX
	add_family(bench_iceoryx_transports, bench_iceoryx_count);
#else
	g_missing_peers[g_n_missing_peers++] =
		"iceoryx (iceoryx_binding_c not found at build time: apt-get install iceoryx "
		"libiceoryx-binding-c-dev)";
#endif
	add_family(bench_kernel_transports, bench_kernel_count);
	add_family(bench_poll_floor_transports, bench_poll_floor_count);
}

static void usage(void)
{
	printf("usage: shmring-bench [--quick] [--json] [--plot FILE.svg] [--peer-log FILE]\n"
	       "                     [--sizes LIST] [--transports LIST] [--msgs N] [--reps N]\n"
	       "                     [--lat-samples N]\n"
	       "       shmring-bench --strace-run N\n"
	       "\n"
	       "Measures streaming throughput (msgs/s, GB/s, CPU and system calls per message)\n"
	       "and round-trip latency (p50 ... p99.99, max) of shmring and of its peers between\n"
	       "processes pinned to two CPUs, and prints the goal ratios of this run.\n"
	       "\n"
	       "  --quick            short budgets, sizes 64 B and 1 MiB (`make demo`, < 1 min)\n"
	       "  --json             one JSON document on stdout instead of the tables\n"
	       "  --plot FILE.svg    also draw throughput against size and latency percentiles\n"
	       "                     (needs gnuplot)\n"
	       "  --peer-log FILE    the peers' processes (ck, DPDK, iceoryx) write their own\n"
	       "                     output there, not to the terminal\n"
	       "  --sizes LIST       message sizes, comma-separated, K/M suffixes, 8 B to 64 MiB\n"
	       "                     (default 8,56,64,256,1K,64K,1M,8M)\n"
	       "  --transports LIST  comma-separated names or families (shmring, dpdk, ck,\n"
	       "                     iceoryx, kernel, floor); --transports help lists them\n"
	       "  --msgs N           timed messages per producer per rep, and round trips per\n"
	       "                     case; default: sized to the time budget\n"
	       "  --reps N           reps per case, taken in turn across the cases (default 3)\n"
	       "  --lat-samples N    round trips per case of 8 or 64 B, over all reps (default\n"
	       "                     1000000; --quick: time budget); never more than 60 s a case\n"
	       "  --strace-run N     only stream N 64-byte messages through one shmring-poll pair\n"
	       "                     (or the first shmring transport of --transports), for\n"
	       "                     strace -c -f (no system call per message) or callgrind\n"
	       "  --help             this text\n"
	       "\n"
	       "Exit status: 0 when every case ran (or was refused by the library, shown as\n"
	       "n/a) and every message checked out -- missed goals are printed, not fatal --;\n"
	       "1 on a failure (bad sequence number, library error); 2 on a usage error.\n");
}

static void list_transports(void)
{
	printf("transports built in:\n");
	for (unsigned i = 0; i < g_nt; i++)
		printf("  %-21s %-8s %s\n", g_t[i]->name, g_t[i]->family, g_t[i]->note);
	print_missing_peers();
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
	if (errno || v > MAX_SIZE)
		usage_error("size '%s' out of range (8 B to 64 MiB)", s);
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
	if (!sizes && strcmp(arg, "help") == 0) {
		list_transports();
		exit(0);
	}
	snprintf(buf, sizeof(buf), "%s", arg);
	if (sizes)
		cfg.n_sizes = 0;
	else
		memset(g_use, 0, sizeof(g_use));
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (sizes) {
			if (cfg.n_sizes == MAX_SIZES)
				usage_error("--sizes: more than %d sizes", MAX_SIZES);
			cfg.sizes[cfg.n_sizes++] = parse_size(tok);
			continue;
		}
		bool any = false;
		for (unsigned i = 0; i < g_nt; i++) {
			if (strcmp(tok, g_t[i]->name) == 0 || strcmp(tok, g_t[i]->family) == 0) {
				g_use[i] = true;
				any = true;
			}
		}
		if (!any) {
			for (unsigned i = 0; i < g_n_missing_peers; i++)
				if (strncmp(g_missing_peers[i], tok, strlen(tok)) == 0)
					usage_error("transport '%s': %s", tok, g_missing_peers[i]);
			usage_error("unknown transport '%s' (--transports help lists them)", tok);
		}
	}
	if (sizes && cfg.n_sizes == 0)
		usage_error("--sizes: empty list");
	if (!sizes) {
		bool any = false;
		for (unsigned i = 0; i < g_nt; i++)
			any |= g_use[i];
		if (!any)
			usage_error("--transports: empty list");
	}
}

static int strace_run(uint64_t n, bool all)
{
	static struct case_result cr;

	cr.t = &bench_shmring_transports[0];    /* shmring-poll */
	/* or the first shmring transport --transports named */
	for (unsigned i = 0; i < g_nt && !all; i++)
		if (g_use[i] && (g_t[i]->flags & T_SHMRING)) {
			cr.t = g_t[i];
			break;
		}
	cr.size = 64;
	cr.tput_n = n;
	cfg.msgs = n;
	run_rep(&cr, true, false);
	finish_case(&cr);
	printf("strace-run: %" PRIu64 " messages of 64 B through %s: %.2f M msgs/s\n",
	       n, cr.t->name, cr.rate_med / 1e6);
	return 0;
}

/* The command line into cfg and g_use[]; returns --strace-run's N (0: a
 * normal run).  Usage errors exit 2; --help and --transports help exit 0. */
static uint64_t parse_options(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "json", no_argument, NULL, 'j' },
		{ "plot", required_argument, NULL, 'p' },
		{ "peer-log", required_argument, NULL, 'L' },
		{ "sizes", required_argument, NULL, 's' },
		{ "transports", required_argument, NULL, 't' },
		{ "msgs", required_argument, NULL, 'n' },
		{ "reps", required_argument, NULL, 'r' },
		{ "lat-samples", required_argument, NULL, 'l' },
		{ "strace-run", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const size_t full_sizes[] = { 8, 56, 64, 256, KIB, 64 * KIB, MIB, 8 * MIB };
	static const size_t quick_sizes[] = { 64, MIB };
	bool sizes_given = false, lat_given = false;
	uint64_t strace_n = 0;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (c) {
		case 'q': cfg.quick = true; break;
		case 'j': cfg.json = true; break;
		case 'p':
			if (!*optarg)
				usage_error("--plot wants a file name");
			cfg.plot = optarg;
			break;
		case 'L':
			if (!*optarg)
				usage_error("--peer-log wants a file name");
			cfg.peer_log = optarg;
			break;
		case 's': parse_list(optarg, true); sizes_given = true; break;
		case 't': parse_list(optarg, false); break;
		case 'n': cfg.msgs = parse_count(optarg, "--msgs", 2, 1000000000000ull); break;
		case 'r': cfg.reps = (unsigned)parse_count(optarg, "--reps", 1, MAX_REPS); break;
		case 'l':
			cfg.lat_samples = parse_count(optarg, "--lat-samples", 1, 1000000000ull);
			lat_given = true;
			break;
		case 'S': strace_n = parse_count(optarg, "--strace-run", 2, 1000000000000ull); break;
		case 'h': usage(); exit(0);
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
	if (!sizes_given) {
		const size_t *s = cfg.quick ? quick_sizes : full_sizes;
		unsigned n = cfg.quick ? sizeof(quick_sizes) / sizeof(quick_sizes[0])
				       : sizeof(full_sizes) / sizeof(full_sizes[0]);
		for (unsigned i = 0; i < n; i++)
			cfg.sizes[cfg.n_sizes++] = s[i];
	}
	if (!lat_given)
		cfg.lat_samples = cfg.quick ? 0 : 1000000;
	return strace_n;
}

/* --plot: gnuplot there and the file writable, found out now rather than
 * after the whole run.  0, or 2 after a message. */
static int check_plot(void)
{
	if (cfg.plot && !plot_available()) {
		fprintf(stderr, "shmring-bench: --plot needs gnuplot (apt-get install gnuplot-nox)\n");
		return 2;
	}
	if (cfg.plot) {
		FILE *f = fopen(cfg.plot, "a");
		if (!f) {
			fprintf(stderr, "shmring-bench: --plot %s: %s\n", cfg.plot, strerror(errno));
			return 2;
		}
		fclose(f);
	}
	return 0;
}

/* The cases to run: each chosen transport at each size it carries, once.
 * Returns how many, written to results[]. */
static unsigned plan_cases(struct case_result *results)
{
	unsigned n_res = 0;

	for (unsigned ti = 0; ti < g_nt; ti++) {
		const struct transport *t = g_t[ti];
		if (!g_use[ti])
			continue;
		for (unsigned si = 0; si < cfg.n_sizes; si++) {
			size_t size = cfg.sizes[si];
			if (t->min_size == t->max_size && t->min_size)
				size = t->min_size;     /* a floor of one size */
			if (size < t->min_size || (t->max_size && size > t->max_size))
				continue;
			const char *why = t->skip ? t->skip(size) : NULL;
			if (why && strncmp(why, "n/a", 3) != 0)
				continue;       /* a size this transport cannot carry */
			bool dup = false;
			for (unsigned k = 0; k < n_res; k++)
				dup |= results[k].t == t && results[k].size == size;
			if (dup)
				continue;
			struct case_result *cr = &results[n_res++];
			cr->t = t;
			cr->size = size;
			cr->tput_n = cfg.msgs;
			cr->lat_n = cfg.msgs ? (cfg.msgs + cfg.reps - 1) / cfg.reps : 0;
			cr->lat_total = size <= 64 ? cfg.lat_samples : 0;
			cr->na = why;           /* the peer cannot run here at all */
		}
	}
	return n_res;
}

/* Every rep of every case, the cases taken in turn (goal order, reversed
 * every other rep); progress on stderr when it is a terminal. */
static void run_cases(struct case_result *results, unsigned n_res)
{
	bool tty = isatty(STDERR_FILENO);
	static unsigned order[MAX_TRANSPORTS * MAX_SIZES];
	goal_run_order(results, n_res, order);
	for (unsigned rep = 0; rep < cfg.reps; rep++) {
		for (unsigned k = 0; k < n_res; k++) {
			struct case_result *cr = &results[order[rep % 2 ? n_res - 1 - k : k]];
			if (cr->na)
				continue;       /* refused once: refused every time */
			if (tty) {
				char sz[32];
				fprintf(stderr, "\r  rep %u/%u: %-21s %-8s", rep + 1, cfg.reps,
					cr->t->name, fmt_size(cr->size, sz, sizeof(sz)));
			}
			run_rep(cr, (cr->t->flags & T_TPUT) != 0,
				(cr->t->flags & T_LAT) && cr->t->nprod == 1 && cr->t->ncons == 1);
		}
	}
	if (tty)
		fprintf(stderr, "\r%50s\r", "");
}

int main(int argc, char **argv)
{
	collect_transports();
	cfg.reps = 3;
	for (unsigned i = 0; i < g_nt; i++)
		g_use[i] = true;
	uint64_t strace_n = parse_options(argc, argv);
	bool all = true;         /* no --transports */
	for (unsigned i = 0; i < g_nt; i++)
		all &= g_use[i];

	cfg.rep_s = cfg.quick ? 0.04 : 0.25;
	cfg.lat_s = cfg.quick ? 0.04 : 0.5;
	/* a stuck case is a bug to report, not a reason to hang `make demo` */
	cfg.watchdog_s = cfg.msgs || strace_n ? 3600 : cfg.quick ? 20 : 180;
	if (check_plot() != 0)
		return 2;
	bench_init();
	peer_log_open();
	for (unsigned i = 0; i < g_nt; i++) {
		if (!g_use[i] && !strace_n)
			continue;
		bench_register(g_t[i]);
		if (g_t[i]->setup)
			g_t[i]->setup();
	}
	if (strace_n)
		return strace_run(strace_n, all);

	static struct case_result results[MAX_TRANSPORTS * MAX_SIZES];
	unsigned n_res = plan_cases(results);
	struct machine m;
	machine_describe(&m);
	if (!cfg.json)
		print_header(&m);
	run_cases(results, n_res);
	for (unsigned k = 0; k < n_res; k++)
		finish_case(&results[k]);
	machine_load(m.load_end, sizeof(m.load_end));
	if (cfg.json) {
		print_json(results, n_res, &m);
	} else {
		print_tables(results, n_res);
		print_goals(results, n_res);
		printf("\nload average %s at the end\n", m.load_end);
	}
	peer_log_report();
	if (cfg.plot && write_plot(cfg.plot, results, n_res) != 0)
		fail("--plot %s: gnuplot failed", cfg.plot);
	if (fflush(stdout) != 0 || ferror(stdout))
		fail_errno("writing stdout");
	return 0;
}
