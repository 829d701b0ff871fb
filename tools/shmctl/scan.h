/* SPDX-License-Identifier: MIT */
/* Walking /dev/shm and the --dir directories, in name order. */
#ifndef SHMCTL_SCAN_H
#define SHMCTL_SCAN_H

#include "shmctl.h"

/*
 * Call fn for every entry of /dev/shm (backend "shm") and then of each
 * --dir (backend "file") whose name matches --match, sorted by name, with
 * the directory's descriptor.  Subdirectories are not entered.  Returns
 * EXIT_OK, or EXIT_ERROR after a message if a directory could not be read
 * (the others are still scanned).
 */
typedef void (*scan_fn)(void *arg, int dirfd, const char *path, const char *name,
			const char *backend);
int scan_dirs(const struct opts *o, scan_fn fn, void *arg);

#endif
