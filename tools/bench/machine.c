/* SPDX-License-Identifier: MIT */
/* shmring-bench: what machine the numbers come from. */
#include "bench.h"

#include <stdio.h>
#include <sys/utsname.h>
#include <unistd.h>

static void cpu_model(char *buf, size_t len)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[512];

	snprintf(buf, len, "unknown");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "model name", 10) == 0) {
			char *p = strchr(line, ':');
			if (p) {
				p++;
				while (*p == ' ' || *p == '\t')
					p++;
				p[strcspn(p, "\n")] = '\0';
				snprintf(buf, len, "%s", p);
			}
			break;
		}
	}
	fclose(f);
}

void machine_load(char *buf, size_t len)
{
	FILE *f = fopen("/proc/loadavg", "r");
	double a, b, c;

	snprintf(buf, len, "unknown");
	if (!f)
		return;
	if (fscanf(f, "%lf %lf %lf", &a, &b, &c) == 3)
		snprintf(buf, len, "%.2f %.2f %.2f", a, b, c);
	fclose(f);
}

static void first_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");

	snprintf(buf, len, "-");
	if (!f)
		return;
	if (fgets(buf, (int)len, f))
		buf[strcspn(buf, "\n")] = '\0';
	fclose(f);
}

void machine_describe(struct machine *m)
{
	struct utsname u;

	memset(m, 0, sizeof(*m));
	cpu_model(m->cpu, sizeof(m->cpu));
	if (uname(&u) != 0)
		fail_errno("uname");
	snprintf(m->kernel, sizeof(m->kernel), "Linux %s %s", u.release, u.machine);
	m->nproc = sysconf(_SC_NPROCESSORS_ONLN);
	first_line("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor",
		   m->governor, sizeof(m->governor));
	machine_load(m->load_start, sizeof(m->load_start));
}
