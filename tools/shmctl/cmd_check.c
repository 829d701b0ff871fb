/* SPDX-License-Identifier: MIT */
/* check: full validation of the header, the indices, the participant table
 * and the queued records; exit 1 with the reason when anything is wrong. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "shmctl.h"

#define MAX_WARN 16
#define WALK_TRIES 8

struct check {
	enum tstatus status;
	char reason[300];
	char warn[MAX_WARN][200];
	unsigned nwarn;
	bool walked;
	uint64_t msgs, bytes;
};

static void add_warn(struct check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add_warn(struct check *c, const char *fmt, ...)
{
	va_list ap;
	if (c->nwarn >= MAX_WARN)
		return;
	va_start(ap, fmt);
	vsnprintf(c->warn[c->nwarn++], sizeof(c->warn[0]), fmt, ap);
	va_end(ap);
}

static void run_checks(struct tseg *s, struct check *c)
{
	c->status = s->status;
	if (s->status != TS_OK) {
		snprintf(c->reason, sizeof(c->reason), "%s", s->reason);
		return;
	}
	if (tseg_check_state(s, c->reason, sizeof(c->reason), c->warn, MAX_WARN, &c->nwarn) < 0) {
		c->status = TS_CORRUPT;
		return;
	}
	int rc = tseg_map(s);
	if (rc < 0) {
		add_warn(c, "records not verified: mmap: %s", strerror(-rc));
		return;
	}
	struct twalk w;
	/* a busy ring may move under the walk: look again a few times */
	for (int i = 0; i < WALK_TRIES; i++) {
		tseg_walk(s, 0, 0, NULL, NULL, &w);
		if (w.stop != WALK_MOVED)
			break;
	}
	switch (w.stop) {
	case WALK_END:
		c->walked = true;
		c->msgs = w.msgs;
		c->bytes = w.bytes;
		break;
	case WALK_MOVED:
	case WALK_COUNT:
	case WALK_NOMEM:
		add_warn(c, "records not verified: the consumer kept moving while they were read");
		break;
	case WALK_CORRUPT:
	case WALK_FAULT:
		c->status = TS_CORRUPT;
		snprintf(c->reason, sizeof(c->reason), "%s", w.reason);
		return;
	}
	/* the producer stores its hint after publishing, so records reach at
	 * least to it; behind it is fine (a dead producer published more) */
	if (c->walked && (int64_t)(s->prod_tail - w.end) > 0) {
		/* re-read: the hint may have moved on since our copy */
		if (tseg_read(s) == 0 && s->status == TS_OK && !s->in_use &&
		    (int64_t)(s->prod_tail - w.end) > 0) {
			c->status = TS_CORRUPT;
			snprintf(c->reason, sizeof(c->reason), "prod_tail %llu is beyond the last "
				 "record, which ends at %llu", (unsigned long long)s->prod_tail,
				 (unsigned long long)w.end);
		}
	}
}

int cmd_check(const struct opts *o)
{
	struct tseg *s = malloc(sizeof(*s));
	struct check *c = calloc(1, sizeof(*c));
	if (!s || !c) {
		free(s);
		free(c);
		return fail(EXIT_ERROR, NULL, "out of memory");
	}
	int rc = open_target(o->uri, s, false, NULL);
	if (rc) {
		free(s);
		free(c);
		return rc;
	}
	run_checks(s, c);
	char uri[PATH_MAX + 8], a[32];
	tseg_uri(s, uri, sizeof(uri));
	bool ok = c->status == TS_OK;
	if (o->json) {
		struct jw w;
		jw_init(&w, stdout);
		jw_obj(&w, NULL);
		jw_str(&w, "uri", uri);
		jw_str(&w, "path", s->path);
		jw_bool(&w, "ok", ok);
		jw_str(&w, "status", tstatus_name(c->status));
		jw_str(&w, "reason", ok ? NULL : c->reason);
		jw_arr(&w, "warnings");
		for (unsigned i = 0; i < c->nwarn; i++)
			jw_str(&w, NULL, c->warn[i]);
		jw_arr_end(&w);
		jw_obj(&w, "records");
		jw_bool(&w, "verified", c->walked);
		jw_u64(&w, "messages", c->msgs);
		jw_u64(&w, "bytes", c->bytes);
		jw_obj_end(&w);
		jw_obj_end(&w);
		jw_done(&w);
	} else {
		char safe[PATH_MAX + 16];
		fmt_safe(uri, safe, sizeof(safe));
		if (ok && c->walked)
			printf("%s: ok (%s, capacity %s, %llu message%s queued, %llu bytes)\n", safe,
			       kind_name(s->g.kind), fmt_size(s->g.capacity, a, sizeof(a)),
			       (unsigned long long)c->msgs, c->msgs == 1 ? "" : "s",
			       (unsigned long long)c->bytes);
		else if (ok)
			printf("%s: ok (%s, capacity %s)\n", safe, kind_name(s->g.kind),
			       fmt_size(s->g.capacity, a, sizeof(a)));
		else
			printf("%s: %s: %s\n", safe, tstatus_name(c->status), c->reason);
		for (unsigned i = 0; i < c->nwarn; i++)
			printf("  warning: %s\n", c->warn[i]);
	}
	rc = ok ? EXIT_OK : EXIT_PROBLEM;
	if (!ok)
		fail(rc, s->path, "%s: %s", tstatus_name(c->status), c->reason);
	tseg_close(s);
	free(s);
	free(c);
	return finish_output(rc);
}
