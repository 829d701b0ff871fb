/* SPDX-License-Identifier: MIT */
/*
 * shmctl-tool: inspect, watch and clean shmring segments from outside.
 * Shared declarations of the command modules.
 *
 * Exit status everywhere: EXIT_OK (0) all fine, EXIT_PROBLEM (1) the tool
 * worked and found a problem (corrupt segment, foreign file, ring in use),
 * EXIT_ERROR (2) usage or system error.  Every failure prints one line on
 * stderr naming the file and the reason.
 */
#ifndef SHMCTL_TOOL_H
#define SHMCTL_TOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define EXIT_OK      0
#define EXIT_PROBLEM 1
#define EXIT_ERROR   2

#define TOOL_NAME "shmctl-tool"
#define MAX_DIRS 32

/* Every option of every command; main.c checks which command takes which. */
struct opts {
	bool json, hex, text, dry_run, force, verbose, fixed;
	bool have_kind, have_capacity, have_max_msg, have_mode, have_count, have_stall;
	const char *dirs[MAX_DIRS];
	unsigned ndirs;
	const char *match;         /* fnmatch(3) pattern on file names, or NULL */
	uint64_t interval_ns;      /* watch */
	uint64_t count;            /* dump: messages, watch: frames (0 = no limit) */
	uint64_t bytes;            /* dump: payload bytes shown per message (0 = all) */
	uint64_t min_age_ns;       /* gc */
	uint32_t kind;             /* create */
	uint64_t capacity;
	uint64_t max_msg;
	uint32_t mode;
	uint32_t stall_ms;         /* create, MPMC: the stall timeout */
	const char *uri;           /* the positional URI, when the command takes one */
	const char *textfile;      /* metrics: write here (temp file + rename) */
	const char *listen;        /* metrics: serve HTTP on this ADDRESS:PORT */
};

int cmd_list(const struct opts *o);
int cmd_info(const struct opts *o);
int cmd_check(const struct opts *o);
int cmd_watch(const struct opts *o);
int cmd_dump(const struct opts *o);
int cmd_create(const struct opts *o);
int cmd_rm(const struct opts *o);
int cmd_gc(const struct opts *o);
int cmd_metrics(const struct opts *o);

/* ---- util.c ------------------------------------------------------------ */

/* "64K", "16M", "1G", "4096" (binary multiples, K/M/G/T, optional "iB"/"B").
 * 0 or -EINVAL / -ERANGE. */
int parse_size(const char *s, uint64_t *out);
/* "30s", "10m", "2h", "1d", "500ms", "0.5" (seconds), "1.5s".  0 or -EINVAL. */
int parse_duration(const char *s, uint64_t *ns);
/* Decimal count. */
int parse_count(const char *s, uint64_t *out);
/* Octal permission bits "0600", "644". */
int parse_mode(const char *s, uint32_t *out);

/* "64K", "1.5M", "512" into buf. */
const char *fmt_size(uint64_t v, char *buf, size_t n);
/* "45s", "12m", "3h20m", "2d" into buf. */
const char *fmt_age(uint64_t ns, char *buf, size_t n);
/* Local "2026-11-26 07:00:00" from CLOCK_REALTIME ns (0: "-"). */
const char *fmt_time(uint64_t real_ns, char *buf, size_t n);
/* UTC "2026-11-26T07:00:00.123Z" for JSON. */
const char *fmt_time_utc(uint64_t real_ns, char *buf, size_t n);
/* Bytes made safe for a terminal: non-printables as \xNN. */
const char *fmt_safe(const char *s, char *buf, size_t n);

uint64_t now_real_ns(void);
uint64_t now_mono_ns(void);
/* User name of uid into buf, or the number. */
const char *user_name(uint32_t uid, char *buf, size_t n);
/* Process start time (CLOCK_REALTIME ns) from /proc starttime ticks; 0 if unknown. */
uint64_t ticks_to_real_ns(uint64_t start_ticks);

/* One-line error on stderr: "shmctl-tool: what: reason". Returns code. */
int fail(int code, const char *what, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The same, without exiting the command: a note for one item. */
void warnx_line(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Flush stdout: 0, or the errno of a failed write (EIO if it is unknown). */
int stdout_failed(void);
/* Flush stdout; a write error is a system error, reported here. */
int finish_output(int code);

#endif
