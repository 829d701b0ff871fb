/* SPDX-License-Identifier: MIT */
/*
 * gc: remove the shmring segments that crashed or forgotten programs left
 * behind, and nothing else.
 *
 * A candidate carries the shmring magic (a corrupt or half-made ring is
 * still ours; a file without the magic is never touched), has no live
 * participant and no activity for --min-age.  Race-free against a process
 * that attaches meanwhile: every mapper holds a shared OFD lock on byte
 * CTL_LOCK_OPEN for the life of its mapping and re-checks the link count
 * after taking it, so we
 *   1. take that byte exclusively (fails while anybody maps the file),
 *   2. check that the name still refers to the file we hold, that it is
 *      still linked, then re-read and re-judge it under the lock,
 *   3. unlink, and only then close (which drops the lock).
 * A process that opened the file before step 3 gets the shared lock after
 * our close, sees st_nlink == 0 and opens the name again.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/pathat.h"
#include "report.h"
#include "scan.h"
#include "shmctl.h"

struct gc_ctx {
	const struct opts *o;
	struct jw jw;
	struct tseg *s;
	unsigned removed, kept, errors;
};

enum action { ACT_REMOVED, ACT_WOULD, ACT_KEPT, ACT_ERROR };

static const char *action_name(enum action a)
{
	return a == ACT_REMOVED ? "removed" : a == ACT_WOULD ? "would-remove"
	       : a == ACT_KEPT ? "kept" : "error";
}

static uint64_t idle_ns(const struct tseg *s)
{
	uint64_t now = now_real_ns();
	return now > s->last_activity_ns ? now - s->last_activity_ns : 0;
}

static void report(struct gc_ctx *c, const struct tseg *s, enum action a, const char *reason)
{
	char uri[PATH_MAX + 8], safe[PATH_MAX + 16];
	if (a == ACT_REMOVED || a == ACT_WOULD)
		c->removed++;
	else if (a == ACT_KEPT)
		c->kept++;
	else
		c->errors++;
	if (c->o->json) {
		struct jw *w = &c->jw;
		jw_obj(w, NULL);
		jw_str(w, "name", s->name);
		jw_str(w, "uri", tseg_uri(s, uri, sizeof(uri)));
		jw_str(w, "path", s->path);
		jw_str(w, "backend", s->backend);
		jw_str(w, "status", s->ours ? tstatus_name(s->status) : NULL);
		jw_str(w, "action", action_name(a));
		jw_str(w, "reason", reason);
		jw_u64(w, "idle_s", idle_ns(s) / 1000000000ull);
		jw_obj_end(w);
		return;
	}
	fmt_safe(s->path, safe, sizeof(safe));
	if (a == ACT_ERROR)
		warnx_line(s->path, "%s", reason);
	else if (a != ACT_KEPT || c->o->verbose)
		printf("%s %s: %s\n", a == ACT_REMOVED ? "removed" : a == ACT_WOULD ? "would remove"
		       : "kept", safe, reason);
}

/* Should it go?  0 and the reason to remove it, or 1 and the reason to keep it. */
static int judge(const struct opts *o, const struct tseg *s, char *why, size_t n)
{
	char a[32], b[32], t[40];
	if (s->in_use) {
		snprintf(why, n, "in use (mapped by a live process)");
		return 1;
	}
	if (s->slot_locked) {
		snprintf(why, n, "has a live participant");
		return 1;
	}
	uint64_t idle = idle_ns(s);
	if (idle < o->min_age_ns) {
		snprintf(why, n, "active %s ago (%s %s), younger than --min-age %s",
			 fmt_age(idle, a, sizeof(a)), s->activity_from,
			 fmt_time(s->last_activity_ns, t, sizeof(t)), fmt_age(o->min_age_ns, b, sizeof(b)));
		return 1;
	}
	char who[96] = "no live participant";
	if (s->prod_dead || s->cons_dead)
		snprintf(who, sizeof(who), "no live participant (%u dead producer%s, %u dead "
			 "consumer%s)", s->prod_dead, s->prod_dead == 1 ? "" : "s",
			 s->cons_dead, s->cons_dead == 1 ? "" : "s");
	char state[300] = "";
	if (s->status != TS_OK)
		snprintf(state, sizeof(state), "; %s: %s", tstatus_name(s->status), s->reason);
	snprintf(why, n, "%s, not mapped, idle %s since %s %s%s", who, fmt_age(idle, a, sizeof(a)),
		 s->activity_from, fmt_time(s->last_activity_ns, t, sizeof(t)), state);
	return 0;
}

/* Read-only look at a file we may not write: is it ours?  (To say why it stays.) */
static void look_readonly(struct gc_ctx *c, int dirfd, const char *path, const char *name)
{
	struct tseg *s = c->s;
	const char *backend = s->backend;
	tseg_init(s);
	s->backend = backend;
	if (tseg_open(s, dirfd, name, path, false) != 0)
		return;
	if (tseg_read(s) == 0 && s->ours)
		report(c, s, ACT_KEPT, "no write access: cannot take its lock");
	tseg_close(s);
}

/* "what: strerror(err)", reported as an error */
static void report_error(struct gc_ctx *c, const struct tseg *s, const char *what, int err)
{
	char why[160];
	snprintf(why, sizeof(why), "%s: %s", what, strerror(err));
	report(c, s, ACT_ERROR, why);
}

/* Read the segment (again) and judge it.  true: a shmring segment that is
 * to go, why saying why; false: not ours, or kept or failed (reported). */
static bool judged_garbage(struct gc_ctx *c, struct tseg *s, char *why, size_t n)
{
	int rc = tseg_read(s);
	if (rc < 0) {
		report_error(c, s, "read", -rc);
		return false;
	}
	if (!s->ours)
		return false;               /* not a shmring segment: never touched */
	if (judge(c->o, s, why, n)) {
		report(c, s, ACT_KEPT, why);
		return false;
	}
	return true;
}

static void gc_one(void *arg, int dirfd, const char *path, const char *name, const char *backend)
{
	struct gc_ctx *c = arg;
	struct tseg *s = c->s;
	char why[600];
	tseg_init(s);
	s->backend = backend;
	int rc = tseg_open(s, dirfd, name, path, true);
	if (rc == TSEG_NOT_REGULAR || rc == -ENOENT)
		return;                     /* never ours, or gone meanwhile */
	if (rc == -EACCES || rc == -EPERM || rc == -EROFS || rc == -ETXTBSY) {
		look_readonly(c, dirfd, path, name);
		return;
	}
	if (rc < 0) {
		report_error(c, s, "open", -rc);
		return;
	}
	if (!judged_garbage(c, s, why, sizeof(why)))
		goto out;

	/* 1. nobody maps it, and nobody can attach while we hold this */
	rc = ctl_try_exclusive(s->fd);
	if (rc == -EAGAIN) {
		report(c, s, ACT_KEPT, "in use (mapped by a live process)");
		goto out;
	}
	if (rc < 0) {
		report_error(c, s, "lock", -rc);
		goto out;
	}
	/* 2. the name still refers to this file, which is still linked ... */
	struct stat byname;
	if (fstat(s->fd, &s->st) < 0 || s->st.st_nlink == 0 ||
	    fstatat(dirfd, name, &byname, AT_SYMLINK_NOFOLLOW) < 0 ||
	    byname.st_dev != s->st.st_dev || byname.st_ino != s->st.st_ino)
		goto out;                   /* removed or replaced by someone else meanwhile */
	/* ... and, read again under the lock, it still deserves to go */
	if (!judged_garbage(c, s, why, sizeof(why)))
		goto out;
	/* anybody may rename files in such a directory: what we checked may
	 * not be what unlinkat would remove (api/pathat.h) */
	struct stat dst;
	if (fstat(dirfd, &dst) < 0 || pathat_dir_unsafe(&dst)) {
		report(c, s, ACT_ERROR, "not removed: its directory is writable by other users and "
		       "not sticky");
		goto out;
	}
	if (c->o->dry_run) {
		report(c, s, ACT_WOULD, why);
		goto out;
	}
	/* 3. unlink under the lock; closing below drops it */
	if (unlinkat(dirfd, name, 0) < 0) {
		report_error(c, s, "unlink", errno);
		goto out;
	}
	report(c, s, ACT_REMOVED, why);
out:
	tseg_close(s);
}

int cmd_gc(const struct opts *o)
{
	struct gc_ctx c = { .o = o };
	c.s = malloc(sizeof(*c.s));
	if (!c.s)
		return fail(EXIT_ERROR, NULL, "out of memory");
	if (o->json) {
		jw_init(&c.jw, stdout);
		jw_obj(&c.jw, NULL);
		jw_bool(&c.jw, "dry_run", o->dry_run);
		jw_u64(&c.jw, "min_age_s", o->min_age_ns / 1000000000ull);
		jw_arr(&c.jw, "actions");
	}
	int rc = scan_dirs(o, gc_one, &c);
	if (o->json) {
		jw_arr_end(&c.jw);
		jw_u64(&c.jw, o->dry_run ? "would_remove" : "removed", c.removed);
		jw_u64(&c.jw, "kept", c.kept);
		jw_u64(&c.jw, "errors", c.errors);
		jw_obj_end(&c.jw);
		jw_done(&c.jw);
	}
	free(c.s);
	if (rc == EXIT_OK && c.errors) {
		/* in words, each one already has its line on stderr */
		if (o->json)
			fail(EXIT_PROBLEM, NULL, "gc: %u segment%s could not be handled (see "
			     "\"actions\")", c.errors, c.errors == 1 ? "" : "s");
		rc = EXIT_PROBLEM;
	}
	return finish_output(rc);
}
