/* SPDX-License-Identifier: MIT */
/* check: full validation of the header, the indices, the participant table
 * and the queued records (SPSC) or every slot word (MPMC); exit 1 with the
 * reason when anything is wrong, including a slot that a dead participant
 * still holds (sound, but waiting for a repair). */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "shmctl.h"

#define MAX_WARN 16
#define MAX_PROBLEMS 16
#define WALK_TRIES 8

struct check {
	enum tstatus status;
	char reason[300];
	char warn[MAX_WARN][200];
	unsigned nwarn;
	char problem[MAX_PROBLEMS][300];   /* every problem found, the reason's first */
	unsigned nproblems;                /* stored */
	uint64_t problems;                 /* found */
	bool walked;
	uint64_t msgs, bytes;
	const struct tseg *s;
	bool mpmc_walked;
	struct tmwalk mw;
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

/* A problem: corruption outranks a needed repair; the reason is the first
 * problem of the worst kind. */
static void add_problem(struct check *c, enum tstatus st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void add_problem(struct check *c, enum tstatus st, const char *fmt, ...)
{
	char line[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	c->problems++;
	if (c->nproblems < MAX_PROBLEMS)
		memcpy(c->problem[c->nproblems++], line, sizeof(line));
	if (c->status == TS_OK || (st == TS_CORRUPT && c->status == TS_REPAIR)) {
		c->status = st;
		memcpy(c->reason, line, sizeof(line));
	}
}

/* Every slot that is not FREE (and every invalid word), from the walk. */
static void slot_seen(void *arg, const struct trec *r)
{
	struct check *c = arg;
	char who[64];
	if (r->problem) {
		add_problem(c, TS_CORRUPT, "slot %llu (word 0x%016llx): %s",
			    (unsigned long long)r->slot, (unsigned long long)r->word, r->problem);
		return;
	}
	if (!r->owner)
		return;
	const struct tpart *p = tseg_part(c->s, r->owner - 1);
	snprintf(who, sizeof(who), "participant slot %u (pid %d)", r->owner - 1, p ? p->pid : 0);
	if (!r->owner_alive) {
		if (p && p->state == PART_ACTIVE)
			add_problem(c, TS_REPAIR, "slot %llu (ticket %llu) is %s by %s, which is dead: "
				    "the next producer or consumer to attach repairs it",
				    (unsigned long long)r->slot,
				    (unsigned long long)r->ticket, mpmc_state_name(r->state), who);
		else
			add_problem(c, TS_REPAIR, "slot %llu (ticket %llu) is %s by participant slot "
				    "%u, which is dead and no longer in the table: the next producer or "
				    "consumer that reaches the slot frees it", (unsigned long long)r->slot,
				    (unsigned long long)r->ticket, mpmc_state_name(r->state), r->owner - 1);
	} else if (r->state == MS_ORPHAN || r->state == MS_STUCK) {
		add_warn(c, "slot %llu (ticket %llu) is %s: %s stalled past the stall timeout and "
			 "was skipped; the slot stays its until it returns or dies",
			 (unsigned long long)r->slot, (unsigned long long)r->ticket,
			 mpmc_state_name(r->state), who);
	}
}

static void check_mpmc(struct tseg *s, struct check *c)
{
	int rc = tseg_map(s);
	if (rc < 0) {
		add_warn(c, "slots not verified: mmap: %s", strerror(-rc));
		return;
	}
	c->s = s;
	tmpmc_walk(s, s->cons_ticket, 0, 0, true, slot_seen, c, &c->mw);
	switch (c->mw.stop) {
	case WALK_FAULT:
		add_problem(c, TS_CORRUPT, "%s", c->mw.reason);
		return;
	case WALK_NOMEM:
		add_warn(c, "slots not verified: out of memory");
		return;
	default:
		break;
	}
	c->mpmc_walked = c->walked = true;
	c->msgs = c->mw.msgs;
	c->bytes = c->mw.bytes;
	if (c->mw.changed)
		add_warn(c, "%llu slot%s changed while read (a busy ring): not verified",
			 (unsigned long long)c->mw.changed, c->mw.changed == 1 ? "" : "s");
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
	if (tseg_mpmc(s)) {
		check_mpmc(s, c);
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

static uint64_t held_slots(const struct tmwalk *w)
{
	return w->states[MS_WRITING] + w->states[MS_READING] + w->states[MS_ORPHAN] +
	       w->states[MS_STUCK];
}

/* "slots": what the walk of an MPMC ring found (null for SPSC, or unwalked) */
static void json_slots(struct jw *w, const struct check *c)
{
	if (!c->mpmc_walked) {
		jw_null(w, "slots");
		return;
	}
	const struct tmwalk *m = &c->mw;
	uint64_t dead = 0;
	for (uint32_t i = 0; i < CTL_MAX_PARTS; i++)
		dead += m->held_dead[i];
	JW_U64_OBJ(w, "slots", { "total", c->s->mg.nslots }, { "free", m->states[MS_FREE] },
		   { "writing", m->states[MS_WRITING] }, { "ready", m->states[MS_READY] },
		   { "reading", m->states[MS_READING] }, { "orphan", m->states[MS_ORPHAN] },
		   { "stuck", m->states[MS_STUCK] }, { "invalid", m->invalid },
		   { "changed", m->changed }, { "held_by_dead", dead });
}

static void check_json(const struct tseg *s, const struct check *c, const char *uri, bool ok)
{
	struct jw w;
	jw_init(&w, stdout);
	jw_obj(&w, NULL);
	jw_str(&w, "uri", uri);
	jw_str(&w, "path", s->path);
	jw_bool(&w, "ok", ok);
	jw_str(&w, "status", tstatus_name(c->status));
	jw_str(&w, "reason", ok ? NULL : c->reason);
	jw_arr(&w, "problems");
	for (unsigned i = 0; i < c->nproblems; i++)
		jw_str(&w, NULL, c->problem[i]);
	jw_arr_end(&w);
	jw_u64(&w, "problems_total", c->problems);
	jw_arr(&w, "warnings");
	for (unsigned i = 0; i < c->nwarn; i++)
		jw_str(&w, NULL, c->warn[i]);
	jw_arr_end(&w);
	jw_obj(&w, "records");
	jw_bool(&w, "verified", c->walked);
	jw_u64(&w, "messages", c->msgs);
	jw_u64(&w, "bytes", c->bytes);
	jw_obj_end(&w);
	json_slots(&w, c);
	jw_obj_end(&w);
	jw_done(&w);
}

static void check_text(const struct tseg *s, const struct check *c, const char *uri, bool ok)
{
	char safe[PATH_MAX + 16], a[32];
	fmt_safe(uri, safe, sizeof(safe));
	if (ok && c->mpmc_walked)
		printf("%s: ok (mpmc, %llu slots of %llu bytes, %llu message%s ready, %llu "
		       "bytes, %llu slot%s held)\n", safe, (unsigned long long)s->mg.nslots,
		       (unsigned long long)s->mg.stride, (unsigned long long)c->msgs,
		       c->msgs == 1 ? "" : "s", (unsigned long long)c->bytes,
		       (unsigned long long)held_slots(&c->mw), held_slots(&c->mw) == 1 ? "" : "s");
	else if (ok && c->walked)
		printf("%s: ok (%s, capacity %s, %llu message%s queued, %llu bytes)\n", safe,
		       kind_name(s->g.kind), fmt_size(s->g.capacity, a, sizeof(a)),
		       (unsigned long long)c->msgs, c->msgs == 1 ? "" : "s",
		       (unsigned long long)c->bytes);
	else if (ok)
		printf("%s: ok (%s, capacity %s)\n", safe, kind_name(s->g.kind),
		       fmt_size(s->g.capacity, a, sizeof(a)));
	else
		printf("%s: %s: %s\n", safe, tstatus_name(c->status), c->reason);
	for (unsigned i = 0; i < c->nproblems; i++)
		if (strcmp(c->problem[i], c->reason))
			printf("  problem: %s\n", c->problem[i]);
	if (c->problems > c->nproblems)
		printf("  ... %llu more problems\n",
		       (unsigned long long)(c->problems - c->nproblems));
	for (unsigned i = 0; i < c->nwarn; i++)
		printf("  warning: %s\n", c->warn[i]);
}

static int check_seg(const struct opts *o, struct tseg *s)
{
	int rc;
	struct check *c = calloc(1, sizeof(*c));
	if (!c)
		return fail(EXIT_ERROR, NULL, "out of memory");
	run_checks(s, c);
	if (c->status != TS_OK && c->problems == 0) {
		memcpy(c->problem[0], c->reason, sizeof(c->reason));
		c->nproblems = c->problems = 1;
	}
	char uri[PATH_MAX + 8];
	tseg_uri(s, uri, sizeof(uri));
	bool ok = c->status == TS_OK;
	if (o->json)
		check_json(s, c, uri, ok);
	else
		check_text(s, c, uri, ok);
	rc = ok ? EXIT_OK : EXIT_PROBLEM;
	if (!ok && c->problems > 1)
		fail(rc, s->path, "%s: %s (and %llu more problem%s)", tstatus_name(c->status),
		     c->reason, (unsigned long long)(c->problems - 1), c->problems == 2 ? "" : "s");
	else if (!ok)
		fail(rc, s->path, "%s: %s", tstatus_name(c->status), c->reason);
	free(c);
	return finish_output(rc);
}

int cmd_check(const struct opts *o)
{
	return with_target(o, check_seg);
}
