/* SPDX-License-Identifier: MIT */
/* Pieces shared by the commands: opening the target of a URI, and the
 * summary of a segment (list, info) in JSON and in words. */
#ifndef SHMCTL_REPORT_H
#define SHMCTL_REPORT_H

#include <stdbool.h>

#include "json.h"
#include "seg.h"

/*
 * Resolve uri (shm:NAME, NAME or file:PATH) and open and read the file it
 * names.  0, or the exit status after a one-line message: EXIT_ERROR for a
 * bad URI or a system error, EXIT_PROBLEM for a file that is not a shmring
 * segment.
 */
int open_target(const char *uri, struct tseg *s, bool rw, const char *note);
/* The same for a parsed shm: or file: URI, the file being `name` relative
 * to dirfd (AT_FDCWD: name is the path). */
struct uri;
int open_target_at(const struct uri *u, struct tseg *s, int dirfd, const char *name, bool rw,
		   const char *note);

/* A read-only command on o->uri's segment: open it (open_target(), no
 * note), run fn on it, close it.  fn's exit status, or open_target's. */
struct opts;
int with_target(const struct opts *o, int (*fn)(const struct opts *o, struct tseg *s));

double fill_pct(const struct tseg *s);
/* "producer", "consumer", "producer+consumer", "none" */
const char *roles_str(uint32_t roles);
/* The members of a segment's summary, into the current JSON object. */
void json_summary(struct jw *w, const struct tseg *s);
/* "0600" */
const char *mode_str(uint32_t mode, char *buf, size_t n);

#endif
