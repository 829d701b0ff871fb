/* SPDX-License-Identifier: MIT */
/*
 * Removing a name without a second lookup by path.  The directory that holds
 * the name is opened once (O_DIRECTORY|O_NOFOLLOW) and everything after that
 * is relative to it (fstatat, openat, unlinkat): a directory or symbolic link
 * swapped in above it later cannot redirect the removal.  A directory that
 * other users may write and that is not sticky is refused: there anybody can
 * rename files between a check and the unlink.  What remains, in a sticky
 * directory (/dev/shm, /tmp), is a file's own owner (or root) swapping it in
 * the instant between the last comparison and unlinkat.
 */
#ifndef SHMRING_FS_PATHAT_H
#define SHMRING_FS_PATHAT_H

#include <stdbool.h>
#include <sys/stat.h>

/* Others may write the directory and it is not sticky: anybody can rename
 * its files. */
static inline bool pathat_dir_unsafe(const struct stat *dir)
{
	return (dir->st_mode & S_IWOTH) && !(dir->st_mode & S_ISVTX);
}

/*
 * The directory of path's last component: a descriptor, with *name set to
 * that component (inside path).  -EISDIR (path ends in '/'), -EACCES (the
 * directory is a symbolic link, or with `strict` writable by others and not
 * sticky), or -errno of open(2).
 */
__attribute__((visibility("hidden")))
int pathat_dir(const char *path, const char **name, bool strict);

/* unlinkat(dirfd, name) if the name still refers to the file `was` (same
 * device and inode, through dirfd): 0, -ESTALE (replaced or gone meanwhile;
 * nothing removed), or -errno. */
__attribute__((visibility("hidden")))
int pathat_unlink_same(int dirfd, const char *name, const struct stat *was);

/* Remove path only if `check` accepts what it names: check(dirfd, name,
 * &st) looks at the file through the directory's descriptor, fills st and
 * returns 0, or -errno (nothing removed).  Then pathat_unlink_same(); a
 * file replaced meanwhile is -EAGAIN.  The directory is held to `strict`. */
__attribute__((visibility("hidden")))
int pathat_unlink_checked(const char *path,
			  int (*check)(int dirfd, const char *name, struct stat *st));

/* Undo a creation that cannot be used: remove path if it still names the
 * file `made` (a retry with O_EXCL would otherwise get -EEXIST). */
__attribute__((visibility("hidden")))
void pathat_undo_create(const char *path, const struct stat *made);

#endif
