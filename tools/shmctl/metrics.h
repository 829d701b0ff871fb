/* SPDX-License-Identifier: MIT */
/*
 * metrics: every ring's counters in the Prometheus text exposition format
 * (version 0.0.4), and the small HTTP/1.1 responder that serves them.
 */
#ifndef SHMCTL_METRICS_H
#define SHMCTL_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "shmctl.h"

/* One fresh scrape of every ring o names (scan_dirs), as text, into a
 * malloc()ed buffer: 0, or -errno (out of memory). */
int metrics_scrape(const struct opts *o, char **text, size_t *len);

/* Content-Type of the text metrics_scrape() makes. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/*
 * Serve GET /metrics on addr ("127.0.0.1:9464", "[::1]:9464"; port 0: any
 * free port) until SIGINT, SIGTERM or SIGHUP, each request answered with a
 * fresh scrape.  Prints "listening on http://ADDR:PORT/metrics" on stdout
 * once bound.  Returns an exit status (after a message if it is not
 * EXIT_OK).
 */
int http_serve(const struct opts *o, const char *addr);

/* What --listen makes of the request head received so far (len bytes; a
 * connection gets HTTP_HEAD_MAX at most): 0 while it may still become a
 * request, else the status to answer with -- 200 for GET or HEAD /metrics
 * (*head_only for HEAD), 400, 404, 405, 431.  Reads nothing past
 * head + len (tests/fuzz/fuzz_http.c). */
#define HTTP_HEAD_MAX 8192u
int http_examine(const char *head, size_t len, bool *head_only);

#endif
