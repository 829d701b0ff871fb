/* SPDX-License-Identifier: MIT */
#include "report.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/uri.h"
#include "shmctl.h"

int open_target(const char *uri, struct tseg *s, bool rw, const char *note)
{
	struct uri u;
	if (uri_parse(uri, &u) < 0)
		return fail(EXIT_ERROR, uri, "invalid ring URI: expected shm:NAME, NAME or file:PATH "
			    "(NAME: 1-200 of [A-Za-z0-9._-], not starting with a dot)");
	if (u.scheme != URI_SHM && u.scheme != URI_FILE)
		return fail(EXIT_ERROR, uri, "not a shared-memory ring: this tool handles shm: and "
			    "file: rings");
	return open_target_at(&u, s, AT_FDCWD, u.path, rw, note);
}

int with_target(const struct opts *o, int (*fn)(const struct opts *o, struct tseg *s))
{
	struct tseg *s = malloc(sizeof(*s));
	if (!s)
		return fail(EXIT_ERROR, NULL, "out of memory");
	int rc = open_target(o->uri, s, false, NULL);
	if (rc == 0) {
		rc = fn(o, s);
		tseg_close(s);
	}
	free(s);
	return rc;
}

int open_target_at(const struct uri *u, struct tseg *s, int dirfd, const char *name, bool rw,
		   const char *note)
{
	tseg_init(s);
	s->backend = u->scheme == URI_SHM ? "shm" : "file";
	int rc = tseg_open(s, dirfd, name, u->path, rw);
	if (rc == TSEG_NOT_REGULAR)
		return fail(EXIT_PROBLEM, u->path, "not a regular file, so not a shmring segment%s",
			    note ? note : "");
	if (rc < 0)
		return fail(EXIT_ERROR, u->path, "%s", strerror(-rc));
	if (u->scheme == URI_SHM)
		snprintf(s->name, sizeof(s->name), "%s", u->name);
	rc = tseg_read(s);
	if (rc < 0) {
		tseg_close(s);
		return fail(EXIT_ERROR, u->path, "read: %s", strerror(-rc));
	}
	if (!s->ours) {
		tseg_close(s);
		return fail(EXIT_PROBLEM, u->path, "not a shmring segment (no shmring header)%s",
			    note ? note : "");
	}
	return 0;
}

double fill_pct(const struct tseg *s)
{
	if (!s->have_state || s->g.capacity == 0)
		return 0;
	return 100.0 * (double)s->used / (double)s->g.capacity;
}

const char *roles_str(uint32_t roles)
{
	roles &= ROLE_PRODUCER | ROLE_CONSUMER;
	return roles == (ROLE_PRODUCER | ROLE_CONSUMER) ? "producer+consumer"
	       : roles == ROLE_PRODUCER ? "producer" : roles == ROLE_CONSUMER ? "consumer" : "none";
}

const char *mode_str(uint32_t mode, char *buf, size_t n)
{
	snprintf(buf, n, "%04o", mode & 07777u);
	return buf;
}

void json_summary(struct jw *w, const struct tseg *s)
{
	char buf[PATH_MAX + 8];
	uint64_t now = now_real_ns();
	jw_str(w, "name", s->name);
	jw_str(w, "uri", tseg_uri(s, buf, sizeof(buf)));
	jw_str(w, "path", s->path);
	jw_str(w, "backend", s->backend);
	jw_str(w, "status", tstatus_name(s->status));
	jw_str(w, "reason", s->status == TS_OK ? NULL : s->reason);
	if (s->status == TS_OK) {
		jw_str(w, "kind", kind_name(s->g.kind));
		jw_u64(w, "capacity", s->g.capacity);
		jw_u64(w, "max_msg", s->g.max_msg);
	} else {
		jw_null(w, "kind");
		jw_null(w, "capacity");
		jw_null(w, "max_msg");
	}
	jw_u64(w, "size", (uint64_t)s->st.st_size);
	if (s->have_state) {
		jw_u64(w, "used", s->used);
		jw_dbl(w, "fill_pct", fill_pct(s), 2);
		JW_U64_OBJ(w, "producers", { "live", s->prod_live }, { "dead", s->prod_dead });
		JW_U64_OBJ(w, "consumers", { "live", s->cons_live }, { "dead", s->cons_dead });
		jw_bool(w, "shut_down", s->shut_down);
	} else {
		jw_null(w, "used");
		jw_null(w, "fill_pct");
		jw_null(w, "producers");
		jw_null(w, "consumers");
		jw_null(w, "shut_down");
	}
	jw_bool(w, "in_use", s->in_use);
	jw_u64(w, "last_activity_ns", s->last_activity_ns);
	jw_str(w, "last_activity", fmt_time_utc(s->last_activity_ns, buf, sizeof(buf)));
	jw_str(w, "last_activity_from", s->activity_from);
	jw_u64(w, "idle_s", now > s->last_activity_ns ? (now - s->last_activity_ns) / 1000000000ull : 0);
	jw_obj(w, "owner");
	jw_u64(w, "uid", (uint64_t)s->st.st_uid);
	jw_str(w, "user", user_name((uint32_t)s->st.st_uid, buf, sizeof(buf)));
	jw_obj_end(w);
	jw_str(w, "mode", mode_str((uint32_t)s->st.st_mode, buf, sizeof(buf)));
}
