/* SPDX-License-Identifier: MIT */
/* create and rm: through the public API where it can, carefully where it
 * cannot (a corrupt ring the library refuses to read is still ours). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/pathat.h"
#include "api/uri.h"
#include "report.h"
#include "shmctl.h"

int cmd_create(const struct opts *o)
{
	struct uri u;
	if (uri_parse(o->uri, &u) < 0)
		return fail(EXIT_ERROR, o->uri, "invalid ring URI: expected shm:NAME, NAME or "
			    "file:PATH (NAME: 1-200 of [A-Za-z0-9._-], not starting with a dot)");
	if (o->max_msg > UINT32_MAX)
		return fail(EXIT_ERROR, o->uri, "--max-msg %llu is too large",
			    (unsigned long long)o->max_msg);
	struct shmring_opts so = {
		.kind = o->have_kind ? (enum shmring_kind)o->kind : SHMRING_SPSC,
		.capacity = o->capacity,
		.max_msg = (uint32_t)o->max_msg,
		.mode = o->have_mode ? o->mode : 0,
		.stall_ms = o->have_stall ? o->stall_ms : 0,
		.flags = o->fixed ? SHMRING_FIXED : 0,
	};
	if (o->have_mode && o->mode == 0)
		return fail(EXIT_ERROR, o->uri, "--mode 0 would make a ring nobody can open");
	struct shmring *r = NULL;
	int rc = shmring_open(o->uri, SHMRING_CREATE | SHMRING_EXCL, &so, &r);
	if (rc < 0) {
		const char *what = u.scheme == URI_SHM || u.scheme == URI_FILE ? u.path : o->uri;
		if (rc == -ENOTSUP && so.kind == SHMRING_MPMC)
			return fail(EXIT_ERROR, what, "kind mpmc is not supported on %s rings (%s); "
				    "use shm:NAME", u.scheme == URI_FILE ? "file:" : "these",
				    shmring_strerror(rc));
		if (rc == -ENOTSUP)
			return fail(EXIT_ERROR, what, "this backend is not supported by this version "
				    "of the library (%s)", shmring_strerror(rc));
		if (rc == -EEXIST)
			return fail(EXIT_ERROR, what, "already exists");
		if (rc == -EINVAL && so.kind == SHMRING_MPMC)
			return fail(EXIT_ERROR, what, "invalid ring options (capacity up to 1T: a "
				    "power of two of slots of max_msg plus a header, at most %llu slots; "
				    "mode at most 0666)", (unsigned long long)SEG_MPMC_MAX_SLOTS);
		if (rc == -EINVAL)
			return fail(EXIT_ERROR, what, "invalid ring options (capacity up to 1T, "
				    "max_msg below capacity / 2, mode at most 0666)");
		if (rc == -EACCES)
			return fail(EXIT_ERROR, what, "%s (another user's file of that name, or "
				    "fs.protected_regular?)", shmring_strerror(rc));
		return fail(EXIT_ERROR, what, "%s", shmring_strerror(rc));
	}
	struct shmring_stats st;
	char a[32], b[32];
	rc = shmring_stats(r, &st);
	shmring_close(r);
	if (rc < 0)
		return fail(EXIT_ERROR, u.path, "created, but stats: %s", shmring_strerror(rc));
	char slots[96] = "";
	if (st.kind == SHMRING_BCAST)
		snprintf(slots, sizeof(slots), ", stall timeout %u ms",
			 so.stall_ms ? so.stall_ms : MPMC_STALL_DEFAULT_MS);
	if (o->fixed) {
		uint64_t stride = fx_stride_for(st.max_msg);
		snprintf(slots, sizeof(slots), " (fixed: %llu slots of %llu bytes)",
			 (unsigned long long)(st.capacity / stride), (unsigned long long)stride);
	}
	if (st.kind == SHMRING_MPMC) {
		uint64_t stride = mpmc_stride_for(st.max_msg);
		snprintf(slots, sizeof(slots), " (%llu slots of %llu bytes), stall timeout %u ms",
			 (unsigned long long)(st.capacity / stride), (unsigned long long)stride,
			 so.stall_ms ? so.stall_ms : MPMC_STALL_DEFAULT_MS);
	}
	printf("created %s: %s, capacity %s%s, max_msg %s, mode %04o\n", o->uri,
	       kind_name(st.kind), fmt_size(st.capacity, a, sizeof(a)), slots,
	       fmt_size(st.max_msg, b, sizeof(b)), so.mode ? so.mode : 0600);
	return finish_output(EXIT_OK);
}

static int rm_library(const struct opts *o, const char *what)
{
	int rc = shmring_unlink(o->uri);
	if (rc == -ENOTSUP)
		return fail(EXIT_ERROR, what, "removing this kind of ring is not supported by this "
			    "version of the library");
	if (rc == -EACCES)
		return fail(EXIT_ERROR, what, "%s (no permission, a symbolic link, or its directory "
			    "is a symbolic link or writable by other users and not sticky)",
			    shmring_strerror(rc));
	if (rc < 0)
		return fail(rc == -EPROTO ? EXIT_PROBLEM : EXIT_ERROR, what, "%s", shmring_strerror(rc));
	printf("removed %s\n", o->uri);
	return finish_output(EXIT_OK);
}

/* The directory of the ring's name, opened once: every later look and the
 * unlink go through it (fs/pathat.h).  A descriptor, or minus the exit
 * status after a message. */
static int rm_dir(const struct uri *u, const char **name)
{
	int dfd = pathat_dir(u->path, name, false);
	if (dfd == -EACCES)
		return -fail(EXIT_ERROR, u->path, "the directory that holds it is a symbolic link "
			     "or not accessible: name the ring by its real directory");
	if (dfd < 0)
		return -fail(EXIT_ERROR, u->path, "directory: %s", strerror(-dfd));
	struct stat dst;
	if (fstat(dfd, &dst) < 0 || pathat_dir_unsafe(&dst)) {
		close(dfd);
		return -fail(EXIT_ERROR, u->path, "refused: its directory is writable by other "
			     "users and not sticky, so another user could swap the name between "
			     "the check and the removal (chmod o-w or +t the directory)");
	}
	return dfd;
}

int cmd_rm(const struct opts *o)
{
	struct uri u;
	if (uri_parse(o->uri, &u) < 0)
		return fail(EXIT_ERROR, o->uri, "invalid ring URI: expected shm:NAME, NAME or "
			    "file:PATH");
	if (u.scheme != URI_SHM && u.scheme != URI_FILE)
		return rm_library(o, o->uri);

	const char *name;
	int dfd = rm_dir(&u, &name);
	if (dfd < 0)
		return -dfd;
	struct tseg *s = malloc(sizeof(*s));
	if (!s) {
		close(dfd);
		return fail(EXIT_ERROR, NULL, "out of memory");
	}
	int rc = open_target_at(&u, s, dfd, name, true, ": left alone");
	if (rc) {
		free(s);
		close(dfd);
		return rc;
	}
	char uri[PATH_MAX + 8], safe[PATH_MAX + 16];
	tseg_uri(s, uri, sizeof(uri));
	/* Exclusive "in use" lock: nobody maps it, and nobody can attach while
	 * we hold it (attach re-checks the link count after its shared lock). */
	rc = ctl_try_exclusive(s->fd);
	bool locked = rc == 0;
	if (rc == -EAGAIN && !o->force) {
		rc = fail(EXIT_PROBLEM, s->path, "in use (mapped by a live process%s); --force "
			  "removes its name anyway", s->prod_live + s->cons_live ? ", with roles" : "");
		goto out;
	}
	if (rc < 0 && rc != -EAGAIN) {
		rc = fail(EXIT_ERROR, s->path, "lock: %s", strerror(-rc));
		goto out;
	}
	if (fstat(s->fd, &s->st) < 0 || s->st.st_nlink == 0) {
		rc = fail(EXIT_ERROR, s->path, "removed or replaced by another process meanwhile");
		goto out;
	}
	if (locked && tseg_read(s) == 0 && !s->ours) {
		rc = fail(EXIT_PROBLEM, s->path, "no longer a shmring segment: left alone");
		goto out;
	}
	/* A valid ring, or corrupt, incomplete or of another build (the
	 * library will not read it, but it carries our magic, so it is ours
	 * to remove) — only if the name still is the file we looked at. */
	rc = pathat_unlink_same(dfd, name, &s->st);
	if (rc == -ESTALE) {
		rc = fail(EXIT_ERROR, s->path, "removed or replaced by another process meanwhile");
		goto out;
	}
	if (rc < 0) {
		rc = fail(EXIT_ERROR, s->path, "unlink: %s", strerror(-rc));
		goto out;
	}
	fmt_safe(uri, safe, sizeof(safe));
	if (s->status == TS_OK)
		printf("removed %s%s\n", safe, locked ? "" : " (still mapped: its processes keep "
		       "using it until they close it)");
	else
		printf("removed %s (%s: %s)\n", safe, tstatus_name(s->status), s->reason);
	rc = EXIT_OK;
out:
	tseg_close(s);           /* drops the exclusive lock, after the unlink */
	free(s);
	close(dfd);
	return finish_output(rc);
}
