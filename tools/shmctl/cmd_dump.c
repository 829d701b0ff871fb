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

static void one(void *arg, const struct trec *r)
{
	struct dump_ctx *c = arg;
	const struct opts *o = c->o;
	bool cut = r->copied < r->len;
	if (o->json) {
		struct jw *w = &c->jw;
		jw_obj(w, NULL);
		jw_u64(w, "index", r->index);
		jw_u64(w, "pos", r->pos);
		jw_u64(w, "offset", r->off);
		jw_u64(w, "len", r->len);
		jw_bool(w, "acquired", r->acquired);
		jw_u64(w, "shown", r->copied);
		jw_bool(w, "truncated", cut);
		if (!o->text) {
			const char *h = to_hex(c, r->copy, r->copied);
			jw_str(w, "hex", h ? h : "");
		}
		if (!o->hex)
			jw_bytes(w, "text", r->copy, r->copied);
		jw_obj_end(w);
		return;
	}
	printf("#%llu  pos %llu  offset %llu  len %u%s\n", (unsigned long long)r->index,
	       (unsigned long long)r->pos, (unsigned long long)r->off, r->len,
	       r->acquired ? "  [acquired by the consumer, not yet released]" : "");
	bool as_text = o->text || (!o->hex && printable(r->copy, r->copied));
	if (r->copied == 0)
		printf("    (empty)\n");
	else if (as_text)
		print_text(r->copy, r->copied);
	else
		print_hex(r->copy, r->copied);
	if (cut)
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

int cmd_dump(const struct opts *o)
{
	struct tseg *s = malloc(sizeof(*s));
	if (!s)
		return fail(EXIT_ERROR, NULL, "out of memory");
	int rc = open_target(o->uri, s, false, NULL);
	if (rc) {
		free(s);
		return rc;
	}
	if (s->status != TS_OK) {
		rc = fail(EXIT_PROBLEM, s->path, "cannot read its records: %s: %s",
			  tstatus_name(s->status), s->reason);
		goto out;
	}
	if ((rc = tseg_map(s)) < 0) {
		rc = fail(EXIT_ERROR, s->path, "mmap: %s", strerror(-rc));
		goto out;
	}
	struct opts eff = *o;
	if (!o->have_count)
		eff.count = DUMP_DEFAULT_COUNT;
	uint64_t bytes = o->bytes == UINT64_MAX ? DUMP_DEFAULT_BYTES : o->bytes;
	struct dump_ctx c = { .o = &eff };
	char uri[PATH_MAX + 8], safe[PATH_MAX + 16];
	tseg_uri(s, uri, sizeof(uri));
	if (o->json) {
		jw_init(&c.jw, stdout);
		jw_obj(&c.jw, NULL);
		jw_str(&c.jw, "uri", uri);
		jw_str(&c.jw, "path", s->path);
		jw_u64(&c.jw, "max_msg", s->g.max_msg);
		jw_arr(&c.jw, "messages");
	} else {
		printf("%s: queued messages from cons_head %llu (%llu bytes used)\n",
		       fmt_safe(uri, safe, sizeof(safe)), (unsigned long long)s->cons_head,
		       (unsigned long long)s->used);
	}
	struct twalk w;
	tseg_walk(s, eff.count, bytes, one, &c, &w);
	if (o->json) {
		jw_arr_end(&c.jw);
		jw_u64(&c.jw, "count", w.msgs);
		jw_u64(&c.jw, "bytes", w.bytes);
		jw_str(&c.jw, "stopped", stop_name(w.stop));
		jw_str(&c.jw, "reason", w.stop == WALK_CORRUPT || w.stop == WALK_FAULT ? w.reason : NULL);
		jw_obj_end(&c.jw);
		jw_done(&c.jw);
	} else {
		switch (w.stop) {
		case WALK_END:
			printf("%llu message%s, %llu bytes: end of the queue\n",
			       (unsigned long long)w.msgs, w.msgs == 1 ? "" : "s",
			       (unsigned long long)w.bytes);
			break;
		case WALK_COUNT:
			printf("%llu message%s shown; more are queued (--count 0 shows all)\n",
			       (unsigned long long)w.msgs, w.msgs == 1 ? "" : "s");
			break;
		case WALK_MOVED:
			printf("%llu message%s shown; the consumer took the next one meanwhile\n",
			       (unsigned long long)w.msgs, w.msgs == 1 ? "" : "s");
			break;
		default:
			printf("stopped after %llu message%s: %s\n", (unsigned long long)w.msgs,
			       w.msgs == 1 ? "" : "s", w.reason);
			break;
		}
	}
	free(c.hexbuf);
	rc = EXIT_OK;
	if (w.stop == WALK_CORRUPT || w.stop == WALK_FAULT)
		rc = fail(EXIT_PROBLEM, s->path, "corrupt: %s", w.reason);
	else if (w.stop == WALK_NOMEM)
		rc = fail(EXIT_ERROR, s->path, "out of memory for a message of the ring");
out:
	tseg_close(s);
	free(s);
	return finish_output(rc);
}
