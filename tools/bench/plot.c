/* SPDX-License-Identifier: MIT */
/*
 * shmring-bench --plot FILE.svg: one SVG, three panels, drawn by gnuplot
 * from the numbers of this run:
 *   1. msgs/s against message size, one line per 1x1 transport
 *   2. GB/s against message size, the same lines
 *   3. round-trip percentiles (p50, p99, p99.9, p99.99) per transport at
 *      64 B (the floors at their one size)
 */
#include "bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

bool plot_available(void)
{
	const char *path = getenv("PATH");
	char buf[4096];

	if (!path)
		path = "/usr/bin:/bin";
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *save = NULL, *dir = strtok_r(buf, ":", &save); dir;
	     dir = strtok_r(NULL, ":", &save)) {
		char file[4200];
		snprintf(file, sizeof(file), "%s/gnuplot", *dir ? dir : ".");
		if (access(file, X_OK) == 0)
			return true;
	}
	return false;
}

/* gnuplot strings are single-quoted: no quote may end one early */
static void put_quoted(FILE *f, const char *s)
{
	fputc('\'', f);
	for (; *s; s++)
		if (*s != '\'' && *s != '\n')
			fputc(*s, f);
	fputc('\'', f);
}

static bool on_size_plot(const struct case_result *c)
{
	return c->has_tput && !c->na && c->t->nprod == 1 && c->t->ncons == 1 && c->t->batch == 1;
}

static bool seen_before(const struct case_result *res, unsigned i)
{
	for (unsigned k = 0; k < i; k++)
		if (res[k].t == res[i].t)
			return true;
	return false;
}

/* shmring thick and solid, the peers dashed, the kernel dotted */
static const char *line_style(const struct transport *t)
{
	if (strcmp(t->family, "shmring") == 0)
		return "lw 3 dt 1";
	if (strcmp(t->family, "kernel") == 0)
		return "lw 1.5 dt 3";
	if (strcmp(t->family, "floor") == 0)
		return "lw 2 dt 4 lc rgb 'black'";
	return "lw 2 dt 2";
}

static size_t lat_size(const struct case_result *c)
{
	return c->t->min_size == c->t->max_size && c->t->min_size ? c->t->min_size : 64;
}

int write_plot(const char *path, const struct case_result *res, unsigned n)
{
	FILE *f = popen("gnuplot", "w");
	unsigned lines = 0, nlat = 0;
	int st;

	if (!f)
		fail_errno("popen gnuplot");
	/* one datablock per transport: size, msgs/s, GB/s */
	for (unsigned i = 0; i < n; i++) {
		if (!on_size_plot(&res[i]) || seen_before(res, i))
			continue;
		fprintf(f, "$T%u << EOD\n", i);
		for (unsigned k = i; k < n; k++)
			if (res[k].t == res[i].t && on_size_plot(&res[k]))
				fprintf(f, "%zu %.6g %.6g\n", res[k].size, res[k].rate_med,
					res[k].rate_med * (double)res[k].size / 1e9);
		fprintf(f, "EOD\n");
		lines++;
	}
	fprintf(f, "$LAT << EOD\n");
	for (unsigned i = 0; i < n; i++) {
		const struct case_result *c = &res[i];
		if (!c->has_lat || c->na || c->size != lat_size(c))
			continue;
		fprintf(f, "\"%s\" %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", c->t->name,
			c->lat.p50, c->lat.p99, c->lat.p999, c->lat.p9999);
		nlat++;
	}
	fprintf(f, "EOD\n");

	fprintf(f, "set terminal svg size 1200,1700 dynamic font 'sans,11' background '#ffffff'\n");
	fprintf(f, "set output ");
	put_quoted(f, path);
	fprintf(f, "\nset multiplot layout 3,1 title 'shmring-bench: median of %u reps, "
		"two processes pinned to two CPUs'\n", cfg.reps);
	fprintf(f, "set grid\nset key outside right top\nset logscale xy\n"
		"set xlabel 'message size, bytes'\nset format x '%%.0s%%cB'\n");
	for (int panel = 0; panel < 2 && lines; panel++) {
		fprintf(f, "set ylabel '%s'\nplot ", panel ? "GB/s (payload)" : "messages/s");
		unsigned k = 0;
		for (unsigned i = 0; i < n; i++) {
			if (!on_size_plot(&res[i]) || seen_before(res, i))
				continue;
			fprintf(f, "%s$T%u using 1:%d with linespoints %s title ", k++ ? ", " : "",
				i, panel ? 3 : 2, line_style(res[i].t));
			put_quoted(f, res[i].t->name);
		}
		fprintf(f, "\n");
	}
	if (nlat) {
		fprintf(f, "unset logscale x\nset logscale y\nset format x '%%g'\n"
			"set xlabel 'transport (64 B; floors at their size)'\n"
			"set ylabel 'round trip, ns'\nset xtics rotate by -40 left\n"
			"set xrange [-0.5:%u]\n"
			"plot $LAT using 0:2:xtic(1) with points pt 7 ps 1.2 title 'p50', "
			"'' using 0:3 with points pt 5 ps 1.2 title 'p99', "
			"'' using 0:4 with points pt 9 ps 1.2 title 'p99.9', "
			"'' using 0:5 with points pt 13 ps 1.2 title 'p99.99'\n", nlat);
	}
	fprintf(f, "unset multiplot\n");
	st = pclose(f);
	if (st == -1)
		fail_errno("pclose gnuplot");
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}
