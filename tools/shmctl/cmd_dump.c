/* SPDX-License-Identifier: MIT */
/* dump: the queued messages, read in place through a read-only mapping,
 * without consuming them and without writing a byte of the segment. */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "shmctl.h"

#define DUMP_DEFAULT_COUNT 10
#define DUMP_DEFAULT_BYTES 256

struct dump_ctx {
	const struct opts *o;
	struct jw jw;
	char *hexbuf;
	size_t hexcap;
	uint64_t shown, bytes;       /* entries shown, and the payload bytes they hold */
};

/* What a walk of either kind ended with. */
struct dump_end {
	enum walk_stop stop;
	const char *reason;
	uint64_t changed;            /* MPMC: slots that moved on while read */
};

static bool printable(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!(p[i] >= 0x20 && p[i] < 0x7f) && p[i] != '\n' && p[i] != '\t' && p[i] != '\r')
			return false;
	return true;
}

static void print_text(const uint8_t *p, size_t n)
{
	fputs("    \"", stdout);
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];
		if (c == '\n')
			fputs("\\n", stdout);
		else if (c == '\t')
			fputs("\\t", stdout);
		else if (c == '\r')
			fputs("\\r", stdout);
		else if (c == '\\' || c == '"')
			printf("\\%c", c);
		else if (c >= 0x20 && c < 0x7f)
			putchar(c);
		else
			printf("\\x%02x", c);
	}
	fputs("\"\n", stdout);
}

static void print_hex(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i += 16) {
		printf("    %08zx ", i);
		for (size_t j = 0; j < 16; j++) {
			if (j == 8)
				putchar(' ');
			if (i + j < n)
				printf(" %02x", p[i + j]);
			else
				fputs("   ", stdout);
		}
		fputs("  |", stdout);
		for (size_t j = 0; j < 16 && i + j < n; j++)
			putchar(p[i + j] >= 0x20 && p[i + j] < 0x7f ? p[i + j] : '.');
		fputs("|\n", stdout);
	}
}

static const char *to_hex(struct dump_ctx *c, const uint8_t *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	if (2 * n + 1 > c->hexcap) {
		char *nb = realloc(c->hexbuf, 2 * n + 1);
		if (!nb)
			return NULL;
		c->hexbuf = nb;
		c->hexcap = 2 * n + 1;
	}
	for (size_t i = 0; i < n; i++) {
		c->hexbuf[2 * i] = digits[p[i] >> 4];
		c->hexbuf[2 * i + 1] = digits[p[i] & 15];
	}
	c->hexbuf[2 * n] = 0;
	return c->hexbuf;
}

/* An MPMC slot's holder, in words: "by slot 3 (pid 42)" */
static const char *holder_str(const struct trec *r, char *buf, size_t n)
{
	if (!r->owner)
		return "";
	char pid[24] = "";
	if (r->pid)
		snprintf(pid, sizeof(pid), "pid %d, ", r->pid);
	snprintf(buf, n, " by slot %u (%s%s)", r->owner - 1, pid, r->owner_alive ? "alive" : "DEAD");
	return buf;
}

static const char *slot_note(const struct trec *r)
{
	switch (r->state) {
	case MS_WRITING: return "  [claimed, being written]";
	case MS_READING: return "  [acquired by a consumer, not yet released]";
	case MS_ORPHAN: return "  [skipped: its producer stalled past the stall timeout]";
	case MS_STUCK: return "  [acquired; producers skip the slot: its consumer stalled]";
	}
	return "";
}

static void json_entry(struct dump_ctx *c, const struct trec *r)
{
	const struct opts *o = c->o;
	struct jw *w = &c->jw;
	bool msg = !r->mpmc || r->has_msg;
	jw_obj(w, NULL);
	jw_u64(w, "index", r->index);
	if (r->mpmc) {
		jw_u64(w, "ticket", r->ticket);
		jw_u64(w, "slot", r->slot);
		jw_str(w, "state", mpmc_state_name(r->state));
		if (r->owner) {
			jw_u64(w, "owner", r->owner - 1);
			jw_i64(w, "pid", r->pid);
			jw_bool(w, "alive", r->owner_alive);
		} else {
			jw_null(w, "owner");
			jw_null(w, "pid");
			jw_null(w, "alive");
		}
	} else {
		jw_u64(w, "pos", r->pos);
	}
	jw_u64(w, "offset", r->off);
	if (msg)
		jw_u64(w, "len", r->len);
	else
		jw_null(w, "len");
	jw_bool(w, "acquired", r->acquired);
	jw_u64(w, "shown", r->copied);
	jw_bool(w, "truncated", r->copied < r->len);
	if (!o->text) {
		const char *h = msg ? to_hex(c, r->copy, r->copied) : NULL;
		jw_str(w, "hex", h ? h : msg ? "" : NULL);
	}
	if (!o->hex) {
		if (msg)
			jw_bytes(w, "text", r->copy, r->copied);
		else
			jw_null(w, "text");
	}
	jw_obj_end(w);
}

static void one(void *arg, const struct trec *r)
{
	struct dump_ctx *c = arg;
	const struct opts *o = c->o;
	bool msg = !r->mpmc || r->has_msg;
	c->shown++;
	c->bytes += msg ? r->len : 0;
	if (o->json) {
		json_entry(c, r);
		return;
	}
	if (r->mpmc) {
		char who[96];
		printf("#%llu  ticket %llu  slot %llu  %s%s", (unsigned long long)r->index,
		       (unsigned long long)r->ticket, (unsigned long long)r->slot,
		       mpmc_state_name(r->state), holder_str(r, who, sizeof(who)));
		if (msg)
			printf("  len %u", r->len);
		printf("%s\n", slot_note(r));
		if (!msg)
			return;
	} else {
		printf("#%llu  pos %llu  offset %llu  len %u%s\n", (unsigned long long)r->index,
		       (unsigned long long)r->pos, (unsigned long long)r->off, r->len,
		       r->acquired ? "  [acquired by the consumer, not yet released]" : "");
	}
	bool as_text = o->text || (!o->hex && printable(r->copy, r->copied));
	if (r->copied == 0)
		printf("    (empty)\n");
	else if (as_text)
		print_text(r->copy, r->copied);
	else
		print_hex(r->copy, r->copied);
	if (r->copied < r->len)
		printf("    (%u of %u bytes shown)\n", r->copied, r->len);
}

static const char *stop_name(enum walk_stop st)
{
	switch (st) {
	case WALK_END: return "end";
	case WALK_COUNT: return "count";
	case WALK_MOVED: return "moved";
	case WALK_CORRUPT: return "corrupt";
	case WALK_FAULT: return "fault";
	case WALK_NOMEM: return "nomem";
	}
	return "?";
}

/* What precedes the entries: the JSON document's head, or one line. */
static void dump_head(struct dump_ctx *c, const struct tseg *s, bool mpmc)
{
	char uri[PATH_MAX + 8], safe[PATH_MAX + 16];
	tseg_uri(s, uri, sizeof(uri));
	if (c->o->json) {
		jw_init(&c->jw, stdout);
		jw_obj(&c->jw, NULL);
		jw_str(&c->jw, "uri", uri);
		jw_str(&c->jw, "path", s->path);
		jw_str(&c->jw, "kind", kind_name(s->g.kind));
		jw_u64(&c->jw, "max_msg", s->g.max_msg);
		if (mpmc) {
			jw_u64(&c->jw, "cons_ticket", s->cons_ticket);
			jw_u64(&c->jw, "prod_ticket", s->prod_ticket);
		}
		jw_arr(&c->jw, "messages");
	} else if (mpmc) {
		printf("%s: slots in use from cons_ticket %llu (prod_ticket %llu, %llu queued)\n",
		       fmt_safe(uri, safe, sizeof(safe)), (unsigned long long)s->cons_ticket,
		       (unsigned long long)s->prod_ticket, (unsigned long long)s->queued);
	} else {
		printf("%s: queued messages from cons_head %llu (%llu bytes used)\n",
		       fmt_safe(uri, safe, sizeof(safe)), (unsigned long long)s->cons_head,
		       (unsigned long long)s->used);
	}
}

/* What follows the entries: counts and why the walk stopped. */
static void dump_tail(struct dump_ctx *c, const struct dump_end *end, bool mpmc, bool bad)
{
	const char *what = mpmc ? "slot" : "message";
	if (c->o->json) {
		jw_arr_end(&c->jw);
		jw_u64(&c->jw, "count", c->shown);
		jw_u64(&c->jw, "bytes", c->bytes);
		if (mpmc)
			jw_u64(&c->jw, "changed", end->changed);
		jw_str(&c->jw, "stopped", stop_name(end->stop));
		jw_str(&c->jw, "reason", bad ? end->reason : NULL);
		jw_obj_end(&c->jw);
		jw_done(&c->jw);
		return;
	}
	const char *pl = c->shown == 1 ? "" : "s";
	switch (end->stop) {
	case WALK_END:
		printf("%llu %s%s, %llu bytes: end of the %s\n", (unsigned long long)c->shown,
		       mpmc ? "slot" : "message", pl, (unsigned long long)c->bytes,
		       mpmc ? "slots in use" : "queue");
		break;
	case WALK_COUNT:
		printf("%llu %s%s shown; more are %s (--count 0 shows all)\n",
		       (unsigned long long)c->shown, what, pl, mpmc ? "in use" : "queued");
		break;
	case WALK_MOVED:
		printf("%llu %s%s shown; the consumer took the next one meanwhile\n",
		       (unsigned long long)c->shown, what, pl);
		break;
	default:
		printf("stopped after %llu %s%s: %s\n", (unsigned long long)c->shown, what, pl,
		       end->reason);
		break;
	}
	if (end->changed)
		printf("%llu slot%s changed while read (not shown)\n",
		       (unsigned long long)end->changed, end->changed == 1 ? "" : "s");
}

static int dump_seg(const struct opts *o, struct tseg *s)
{
	int rc;
	if (s->status != TS_OK)
		return finish_output(fail(EXIT_PROBLEM, s->path, "cannot read its records: %s: %s",
					  tstatus_name(s->status), s->reason));
	if ((rc = tseg_map(s)) < 0)
		return finish_output(fail(EXIT_ERROR, s->path, "mmap: %s", strerror(-rc)));
	struct opts eff = *o;
	if (!o->have_count)
		eff.count = DUMP_DEFAULT_COUNT;
	uint64_t bytes = o->bytes == UINT64_MAX ? DUMP_DEFAULT_BYTES : o->bytes;
	struct dump_ctx c = { .o = &eff };
	bool mpmc = tseg_mpmc(s);
	dump_head(&c, s, mpmc);
	struct twalk w;
	struct tmwalk mw;
	struct dump_end end = { 0 };
	if (mpmc) {
		tmpmc_walk(s, s->cons_ticket, eff.count, bytes, false, one, &c, &mw);
		end = (struct dump_end){ mw.stop, mw.reason, mw.changed };
	} else {
		tseg_walk(s, eff.count, bytes, one, &c, &w);
		end = (struct dump_end){ w.stop, w.reason, 0 };
	}
	bool bad = end.stop == WALK_CORRUPT || end.stop == WALK_FAULT;
	dump_tail(&c, &end, mpmc, bad);
	free(c.hexbuf);
	rc = EXIT_OK;
	if (bad)
		rc = fail(EXIT_PROBLEM, s->path, "corrupt: %s", end.reason);
	else if (end.stop == WALK_NOMEM)
		rc = fail(EXIT_ERROR, s->path, "out of memory for a message of the ring");
	return finish_output(rc);
}

int cmd_dump(const struct opts *o)
{
	return with_target(o, dump_seg);
}
