/* SPDX-License-Identifier: MIT */
/* Ring URIs: "shm:NAME" (or a bare NAME), "file:PATH", "pipe:PATH", "mq:NAME". */
#ifndef SHMRING_API_URI_H
#define SHMRING_API_URI_H

#include <limits.h>

enum uri_scheme { URI_SHM = 1, URI_FILE, URI_PIPE, URI_MQ };

struct shmring_backend;

struct uri {
	enum uri_scheme scheme;
	const struct shmring_backend *backend;   /* the scheme's backend */
	const char *where;        /* what the backend opens: path (shm, file, pipe), NAME (mq) */
	const char *name;         /* NAME or PATH part, inside the caller's string */
	char path[PATH_MAX];      /* filesystem path of the segment (shm, file) */
};

/* 0, or -EINVAL for an unknown scheme, a bad NAME, or a path too long. */
__attribute__((visibility("hidden"))) int uri_parse(const char *uri, struct uri *u);
/* A valid NAME: 1-200 of [A-Za-z0-9._-], not starting with '.'. */
__attribute__((visibility("hidden"))) int uri_name_ok(const char *name);

#endif
