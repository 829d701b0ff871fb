/* SPDX-License-Identifier: MIT */
#include "scan.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shm/segment.h"

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int scan_one(const char *dir, const char *backend, const struct opts *o,
		    scan_fn fn, void *arg)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return fail(EXIT_ERROR, dir, "%s", strerror(errno));
	int dup_fd = dup(dfd);
	DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
	if (!d) {
		int e = errno;
		if (dup_fd >= 0)
			close(dup_fd);
		close(dfd);
		return fail(EXIT_ERROR, dir, "%s", strerror(e));
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	int rc = EXIT_OK;
	struct dirent *e;
	errno = 0;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		/* only regular files (or unknown: tseg_open looks again) */
		if (e->d_type != DT_REG && e->d_type != DT_UNKNOWN)
			continue;
		if (o->match && fnmatch(o->match, e->d_name, FNM_PERIOD) != 0)
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			char **nn = realloc(names, ncap * sizeof(*nn));
			if (!nn)
				break;
			names = nn;
			cap = ncap;
		}
		if (!(names[n] = strdup(e->d_name)))
			break;
		n++;
		errno = 0;
	}
	if (errno) {
		rc = fail(EXIT_ERROR, dir, "%s", strerror(errno));
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), by_name);
	size_t dl = strlen(dir);
	for (size_t i = 0; i < n; i++) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s%s%s", dir, dl && dir[dl - 1] == '/' ? "" : "/",
			 names[i]);
		fn(arg, dfd, path, names[i], backend);
		free(names[i]);
	}
	free(names);
	close(dfd);
	return rc;
}

/* The same directory named twice (--dir /dev/shm/, a symlink, a repeated
 * --dir) would list, check or collect each of its segments twice. */
static bool seen_before(const struct stat *seen, unsigned n, const struct stat *st)
{
	for (unsigned i = 0; i < n; i++)
		if (seen[i].st_dev == st->st_dev && seen[i].st_ino == st->st_ino)
			return true;
	return false;
}

int scan_dirs(const struct opts *o, scan_fn fn, void *arg)
{
	struct stat seen[MAX_DIRS + 1];
	unsigned nseen = 0;
	if (stat(SEG_SHM_DIR, &seen[nseen]) == 0)
		nseen++;
	int rc = scan_one(SEG_SHM_DIR, "shm", o, fn, arg);
	for (unsigned i = 0; i < o->ndirs; i++) {
		struct stat st;
		/* a failed stat is left to scan_one, which reports it */
		if (stat(o->dirs[i], &st) == 0) {
			if (seen_before(seen, nseen, &st))
				continue;
			seen[nseen++] = st;
		}
		int r = scan_one(o->dirs[i], "file", o, fn, arg);
		if (r != EXIT_OK)
			rc = r;
	}
	return rc;
}
