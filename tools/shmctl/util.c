/* SPDX-License-Identifier: MIT */
/* Parsing of sizes, durations and modes; formatting; small system helpers. */
#include "shmctl.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- parsing ----------------------------------------------------------- */

/* "123" or "123.45": integer part and a fraction scaled to 10^9. */
static int parse_decimal(const char **sp, uint64_t *ip, uint64_t *frac_e9)
{
	const char *s = *sp;
	uint64_t v = 0, f = 0, scale = 100000000;
	int digits = 0;
	for (; *s >= '0' && *s <= '9'; s++, digits++) {
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	if (*s == '.') {
		s++;
		int fd = 0;
		for (; *s >= '0' && *s <= '9'; s++, fd++) {
			f += (uint64_t)(*s - '0') * scale;
			scale /= 10;
		}
		if (fd == 0)
			return -EINVAL;
		digits += fd;
	}
	if (digits == 0)
		return -EINVAL;
	*sp = s;
	*ip = v;
	*frac_e9 = f;
	return 0;
}

/* v * mult + frac_e9 * mult / 1e9, checked for overflow. */
static int scale_checked(uint64_t v, uint64_t frac_e9, uint64_t mult, uint64_t *out)
{
	if (mult && v > UINT64_MAX / mult)
		return -ERANGE;
	uint64_t r = v * mult;
	/* frac_e9 < 1e9: split mult to keep the product in range */
	uint64_t add = (mult / 1000000000u) * frac_e9 +
		       (mult % 1000000000u) * frac_e9 / 1000000000u;
	if (r > UINT64_MAX - add)
		return -ERANGE;
	*out = r + add;
	return 0;
}

int parse_size(const char *s, uint64_t *out)
{
	uint64_t v, f, mult = 1;
	if (!s || parse_decimal(&s, &v, &f) < 0)
		return -EINVAL;
	switch (*s) {
	case 'k': case 'K': mult = 1ull << 10; s++; break;
	case 'm': case 'M': mult = 1ull << 20; s++; break;
	case 'g': case 'G': mult = 1ull << 30; s++; break;
	case 't': case 'T': mult = 1ull << 40; s++; break;
	default: break;
	}
	if (mult > 1 && s[0] == 'i' && s[1] == 'B')
		s += 2;
	else if (*s == 'B' || *s == 'b')
		s++;
	if (*s)
		return -EINVAL;
	uint64_t r;
	if (scale_checked(v, f, mult, &r) < 0)
		return -ERANGE;
	if (f && mult == 1)
		return -EINVAL;      /* a fraction of a byte */
	*out = r;
	return 0;
}

int parse_duration(const char *s, uint64_t *ns)
{
	uint64_t v, f, mult = 1000000000ull;     /* bare number: seconds */
	if (!s || parse_decimal(&s, &v, &f) < 0)
		return -EINVAL;
	if (!strcmp(s, "ns"))
		mult = 1;
	else if (!strcmp(s, "us"))
		mult = 1000;
	else if (!strcmp(s, "ms"))
		mult = 1000000;
	else if (!strcmp(s, "s") || !*s)
		mult = 1000000000ull;
	else if (!strcmp(s, "m"))
		mult = 60ull * 1000000000ull;
	else if (!strcmp(s, "h"))
		mult = 3600ull * 1000000000ull;
	else if (!strcmp(s, "d"))
		mult = 86400ull * 1000000000ull;
	else
		return -EINVAL;
	return scale_checked(v, f, mult, ns) < 0 ? -ERANGE : 0;
}

int parse_count(const char *s, uint64_t *out)
{
	uint64_t v, f;
	if (!s || parse_decimal(&s, &v, &f) < 0 || *s || f)
		return -EINVAL;
	*out = v;
	return 0;
}

int parse_mode(const char *s, uint32_t *out)
{
	uint32_t v = 0;
	if (!s || !*s || strlen(s) > 5)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '7')
			return -EINVAL;
		v = v * 8 + (uint32_t)(*s - '0');
	}
	if (v > 07777)
		return -EINVAL;
	*out = v;
	return 0;
}

/* ---- formatting -------------------------------------------------------- */

const char *fmt_size(uint64_t v, char *buf, size_t n)
{
	static const char units[] = "KMGTPE";
	if (v < 1024) {
		snprintf(buf, n, "%llu", (unsigned long long)v);
		return buf;
	}
	int u = 0;
	uint64_t div = 1024;
	while (u < 5 && v / div >= 1024) {
		div <<= 10;
		u++;
	}
	if (v % div == 0)
		snprintf(buf, n, "%llu%c", (unsigned long long)(v / div), units[u]);
	else
		snprintf(buf, n, "%.1f%c", (double)v / (double)div, units[u]);
	return buf;
}

const char *fmt_age(uint64_t ns, char *buf, size_t n)
{
	/* two units at most, the smaller one left out when it is 0: "45s",
	 * "10m", "12m05s", "3h20m", "2h", "1d06h" */
	static const struct { uint64_t secs; char unit; } u[] = {
		{ 86400, 'd' }, { 3600, 'h' }, { 60, 'm' }, { 1, 's' },
	};
	uint64_t s = ns / 1000000000ull;
	int i = 0;
	while (i < 3 && s < u[i].secs)
		i++;
	uint64_t big = s / u[i].secs, rest = i < 3 ? s % u[i].secs / u[i + 1].secs : 0;
	if (rest)
		snprintf(buf, n, "%llu%c%02llu%c", (unsigned long long)big, u[i].unit,
			 (unsigned long long)rest, u[i + 1].unit);
	else
		snprintf(buf, n, "%llu%c", (unsigned long long)big, u[i].unit);
	return buf;
}

const char *fmt_time(uint64_t real_ns, char *buf, size_t n)
{
	struct tm tm;
	time_t t = (time_t)(real_ns / 1000000000ull);
	if (real_ns == 0 || !localtime_r(&t, &tm) || !strftime(buf, n, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(buf, n, "-");
	return buf;
}

const char *fmt_time_utc(uint64_t real_ns, char *buf, size_t n)
{
	struct tm tm;
	char tmp[40];
	time_t t = (time_t)(real_ns / 1000000000ull);
	if (!gmtime_r(&t, &tm) || !strftime(tmp, sizeof(tmp), "%Y-%m-%dT%H:%M:%S", &tm))
		snprintf(buf, n, "?");
	else
		snprintf(buf, n, "%s.%03uZ", tmp, (unsigned)(real_ns / 1000000u % 1000u));
	return buf;
}

const char *fmt_safe(const char *s, char *buf, size_t n)
{
	size_t o = 0;
	if (n == 0)
		return "";
	for (; *s && o + 5 < n; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '\\') {
			buf[o++] = '\\';
			buf[o++] = '\\';
		} else if (c >= 0x20 && c < 0x7f) {
			buf[o++] = (char)c;
		} else {
			o += (size_t)snprintf(buf + o, n - o, "\\x%02x", c);
		}
	}
	if (*s && o + 4 <= n) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o < n ? o : n - 1] = 0;
	return buf;
}

/* ---- system ------------------------------------------------------------ */

uint64_t now_real_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t now_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

const char *user_name(uint32_t uid, char *buf, size_t n)
{
	struct passwd pw, *res = NULL;
	char tmp[1024];
	if (getpwuid_r((uid_t)uid, &pw, tmp, sizeof(tmp), &res) == 0 && res && res->pw_name)
		snprintf(buf, n, "%s", res->pw_name);
	else
		snprintf(buf, n, "%u", uid);
	return buf;
}

static ssize_t read_small(const char *path, char *buf, size_t n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t got = read(fd, buf, n - 1);
	close(fd);
	if (got < 0)
		return -1;
	buf[got] = 0;
	return got;
}

uint64_t ticks_to_real_ns(uint64_t start_ticks)
{
	static uint64_t btime;
	static long hz;
	if (start_ticks == 0)
		return 0;
	if (!btime) {
		char buf[8192];
		if (read_small("/proc/stat", buf, sizeof(buf)) <= 0)
			return 0;
		char *p = strstr(buf, "\nbtime ");
		if (!p)
			return 0;
		btime = strtoull(p + 7, NULL, 10);
		hz = sysconf(_SC_CLK_TCK);
	}
	if (!btime || hz <= 0 || start_ticks > UINT64_MAX / 1000000000ull)
		return 0;
	return btime * 1000000000ull + start_ticks * 1000000000ull / (uint64_t)hz;
}

/* ---- messages ---------------------------------------------------------- */

/* errno of the first failed flush of stdout: a later flush of a stream in
 * error may succeed (nothing left to write) and errno moves on */
static int out_errno;

static void flush_out(void)
{
	errno = 0;
	if (fflush(stdout) != 0 && !out_errno)
		out_errno = errno ? errno : EIO;
}

static void vline(const char *what, const char *fmt, va_list ap)
{
	char msg[1024], safe[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* one line, whatever the reason text holds */
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	flush_out();            /* what came before the message, first */
	if (what)
		fprintf(stderr, "%s: %s: %s\n", TOOL_NAME, fmt_safe(what, safe, sizeof(safe)), msg);
	else
		fprintf(stderr, "%s: %s\n", TOOL_NAME, msg);
}

int fail(int code, const char *what, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vline(what, fmt, ap);
	va_end(ap);
	return code;
}

void warnx_line(const char *what, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vline(what, fmt, ap);
	va_end(ap);
}

int stdout_failed(void)
{
	flush_out();
	if (out_errno)
		return out_errno;
	/* a write failed inside printf itself, its errno long gone */
	return ferror(stdout) ? EIO : 0;
}

int finish_output(int code)
{
	int e = stdout_failed();
	if (e) {
		fprintf(stderr, "%s: standard output: write error: %s\n", TOOL_NAME, strerror(e));
		return EXIT_ERROR;
	}
	return code;
}
