/* SPDX-License-Identifier: MIT */
/* list: every shmring segment, recognised by its header, never by name. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "scan.h"
#include "shmctl.h"
#include "table.h"

struct list_ctx {
	const struct opts *o;
	struct jw jw;
	struct table t;
	struct tseg *s;
	unsigned found, corrupt, unreadable;
};

static void list_human_row(struct list_ctx *c, const struct tseg *s)
{
	char a[64], b[64], safe[300];
	uint64_t now = now_real_ns();
	struct table *t = &c->t;
	tbl_cell(t, fmt_safe(s->name, safe, sizeof(safe)));
	tbl_cell(t, s->backend);
	if (s->status == TS_OK) {
		tbl_cell(t, kind_name(s->g.kind));
		tbl_cell(t, fmt_size(s->g.capacity, a, sizeof(a)));
	} else {
		tbl_cell(t, "-");
		tbl_cell(t, "-");
	}
	if (s->have_state) {
		tbl_cellf(t, "%.1f%%", fill_pct(s));
		tbl_cellf(t, "%u/%u", s->prod_live, s->prod_dead);
		tbl_cellf(t, "%u/%u", s->cons_live, s->cons_dead);
	} else {
		tbl_cell(t, "-");
		tbl_cell(t, "-");
		tbl_cell(t, "-");
	}
	if (s->prod_live || s->cons_live)
		tbl_cell(t, "live");
	else
		tbl_cellf(t, "%s ago", fmt_age(now > s->last_activity_ns ? now - s->last_activity_ns : 0,
					       a, sizeof(a)));
	tbl_cell(t, user_name((uint32_t)s->st.st_uid, b, sizeof(b)));
	tbl_cell(t, mode_str((uint32_t)s->st.st_mode, a, sizeof(a)));
	if (s->status == TS_OK)
		tbl_cell(t, s->in_use ? "ok, in use" : "ok");
	else
		tbl_cellf(t, "%s: %s", tstatus_name(s->status), s->reason);
}

static void list_one(void *arg, int dirfd, const char *path, const char *name, const char *backend)
{
	struct list_ctx *c = arg;
	struct tseg *s = c->s;
	tseg_init(s);
	s->backend = backend;
	int rc = tseg_open(s, dirfd, name, path, false);
	if (rc == -EACCES || rc == -EPERM)
		c->unreadable++;
	if (rc != 0)
		return;          /* not a regular file, gone meanwhile, or unreadable */
	rc = tseg_read(s);
	if (rc == 0 && s->ours) {
		c->found++;
		if (s->status == TS_CORRUPT)
			c->corrupt++;
		if (c->o->json) {
			jw_obj(&c->jw, NULL);
			json_summary(&c->jw, s);
			jw_obj_end(&c->jw);
		} else {
			list_human_row(c, s);
		}
	}
	tseg_close(s);
}

int cmd_list(const struct opts *o)
{
	static const char *const heads[] = { "NAME", "BACKEND", "KIND", "CAPACITY", "FILL",
					     "PROD", "CONS", "ACTIVITY", "OWNER", "MODE", "STATUS" };
	struct list_ctx c = { .o = o };
	c.s = malloc(sizeof(*c.s));
	if (!c.s)
		return fail(EXIT_ERROR, NULL, "%s", strerror(ENOMEM));
	if (o->json) {
		jw_init(&c.jw, stdout);
		jw_obj(&c.jw, NULL);
		jw_arr(&c.jw, "segments");
	} else {
		tbl_init(&c.t, "lllrrrrllll", heads);
	}
	int rc = scan_dirs(o, list_one, &c);
	if (o->json) {
		jw_arr_end(&c.jw);
		jw_u64(&c.jw, "count", c.found);
		jw_u64(&c.jw, "corrupt", c.corrupt);
		jw_u64(&c.jw, "unreadable", c.unreadable);
		jw_obj_end(&c.jw);
		jw_done(&c.jw);
	} else {
		if (c.found)
			tbl_print(&c.t, stdout, NULL);
		else
			printf("no shmring segments\n");
		if (c.unreadable)
			printf("note: %u file%s could not be read (permission denied)\n",
			       c.unreadable, c.unreadable == 1 ? "" : "s");
		tbl_free(&c.t);
	}
	free(c.s);
	if (rc == EXIT_OK && c.corrupt)
		rc = fail(EXIT_PROBLEM, NULL, "list: %u corrupt segment%s found", c.corrupt,
			  c.corrupt == 1 ? "" : "s");
	return finish_output(rc);
}
