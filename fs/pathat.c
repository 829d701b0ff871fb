/* SPDX-License-Identifier: MIT */
/* Removing a name relative to its directory (fs/pathat.h). */
#include "pathat.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

int pathat_dir(const char *path, const char **name, bool strict)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	if (!*base)
		return -EISDIR;
	size_t len = slash ? (size_t)(slash - path) : 0;
	if (len >= sizeof(dir))
		return -ENAMETOOLONG;
	if (!slash)
		strcpy(dir, ".");
	else if (len == 0)
		strcpy(dir, "/");
	else {
		memcpy(dir, path, len);
		dir[len] = 0;
	}
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (dfd < 0) {
		/* a symbolic link fails O_DIRECTORY|O_NOFOLLOW with ENOTDIR */
		int e = errno;
		return e == ELOOP || (e == ENOTDIR && lstat(dir, &st) == 0 && S_ISLNK(st.st_mode))
		       ? -EACCES : -e;
	}
	int rc = fstat(dfd, &st) < 0 ? -errno : 0;
	if (rc == 0 && strict && pathat_dir_unsafe(&st))
		rc = -EACCES;
	if (rc < 0) {
		close(dfd);
		return rc;
	}
	*name = base;
	return dfd;
}

int pathat_unlink_same(int dirfd, const char *name, const struct stat *was)
{
	struct stat now;
	if (fstatat(dirfd, name, &now, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? -ESTALE : -errno;
	if (now.st_dev != was->st_dev || now.st_ino != was->st_ino)
		return -ESTALE;
	return unlinkat(dirfd, name, 0) < 0 ? -errno : 0;
}

int pathat_unlink_checked(const char *path,
			  int (*check)(int dirfd, const char *name, struct stat *st))
{
	const char *name;
	int dfd = pathat_dir(path, &name, true);
	if (dfd < 0)
		return dfd;
	struct stat st;
	int rc = check(dfd, name, &st);
	if (rc == 0)
		rc = pathat_unlink_same(dfd, name, &st);
	close(dfd);
	return rc == -ESTALE ? -EAGAIN : rc;
}

void pathat_undo_create(const char *path, const struct stat *made)
{
	const char *name;
	int dfd = pathat_dir(path, &name, false);
	if (dfd >= 0) {
		(void)pathat_unlink_same(dfd, name, made);
		close(dfd);
	}
}
