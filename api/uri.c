/* SPDX-License-Identifier: MIT */
#include "uri.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../backend/backend.h"
#include "../shm/segment.h"

int uri_name_ok(const char *name)
{
	size_t n = 0;
	if (!name || name[0] == '.' || name[0] == 0)
		return 0;
	for (const char *p = name; *p; p++, n++) {
		char c = *p;
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			 (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
		if (!ok || n >= 200)
			return 0;
	}
	return 1;
}

static int has_prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

static int parse(const char *uri, struct uri *u)
{
	if (!uri || !u)
		return -EINVAL;
	memset(u, 0, sizeof(*u));
	const char *colon = strchr(uri, ':');
	if (!colon || has_prefix(uri, "shm:")) {
		u->scheme = URI_SHM;
		u->name = colon ? uri + 4 : uri;
		if (!uri_name_ok(u->name))
			return -EINVAL;
		snprintf(u->path, sizeof(u->path), "%s%s", SEG_SHM_DIR, u->name);
		return 0;
	}
	if (has_prefix(uri, "file:") || has_prefix(uri, "pipe:")) {
		u->scheme = uri[0] == 'f' ? URI_FILE : URI_PIPE;
		u->name = colon + 1;
		size_t n = strlen(u->name);
		if (n == 0 || n >= sizeof(u->path) || u->name[n - 1] == '/')
			return -EINVAL;
		memcpy(u->path, u->name, n + 1);
		return 0;
	}
	if (has_prefix(uri, "mq:")) {
		u->scheme = URI_MQ;
		u->name = uri + 3;
		return uri_name_ok(u->name) ? 0 : -EINVAL;
	}
	return -EINVAL;   /* unknown scheme */
}

/* A scheme's backend: adding a backend adds a row here. */
static const struct shmring_backend *const backends[] = {
	[URI_SHM] = &backend_shm, [URI_FILE] = &backend_file,
	[URI_PIPE] = &backend_pipe, [URI_MQ] = &backend_mq,
};

int uri_parse(const char *uri, struct uri *u)
{
	int rc = parse(uri, u);
	if (rc < 0)
		return rc;
	u->backend = backends[u->scheme];
	u->where = u->scheme == URI_MQ ? u->name : u->path;
	return 0;
}
