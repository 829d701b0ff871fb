/* SPDX-License-Identifier: MIT */
/* The NATS connection: options, bounded back-off, JetStream stream; the
 * counters' printing. */
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bridge.h"
#include "mark.h"

volatile sig_atomic_t br_stop;

uint64_t br_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void br_sleep_ns(uint64_t ns)
{
	struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u)};
	nanosleep(&ts, NULL);   /* a signal cuts it short: the caller checks br_stop */
}

uint64_t br_ident(const struct br_conf *c)
{
	const char *st = c->stream ? c->stream : "";
	return mark_hash(st, strlen(st) + 1, mark_hash(c->subject, strlen(c->subject), 21));
}

void br_err(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("shmring-bridge: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* Counted by the client's own thread, which may still call after the
 * connection is destroyed: process-wide counters, not the caller's struct
 * (freed by then).  Relaxed: counters, read for display only. */
static uint64_t link_disconnects, link_reconnects;

/* ---- counters ------------------------------------------------------------ */
#define BR_FIELDS(X) X(msgs) X(bytes) X(publishes) X(fragments) X(acks) X(redeliveries) \
	X(dups_skipped) X(replayed) X(lost) X(dropped) X(retries) X(resyncs) X(reconnects) X(disconnects) \
	X(full_waits) X(lag)

void br_stats_print(const struct br_conf *c, const struct br_stats *st, bool final)
{
	struct br_stats cp = *st, *s = &cp;
	s->disconnects = __atomic_load_n(&link_disconnects, __ATOMIC_RELAXED);
	s->reconnects = __atomic_load_n(&link_reconnects, __ATOMIC_RELAXED);
	if (c->json) {
		printf("{\"direction\":\"%s\",\"final\":%s", c->outbound ? "out" : "in",
		       final ? "true" : "false");
#define J(f) printf(",\"" #f "\":%llu", (unsigned long long)s->f);
		BR_FIELDS(J)
#undef J
		printf("}\n");
		fflush(stdout);
		return;
	}
	fprintf(stderr, "shmring-bridge %s%s:", c->outbound ? "out" : "in", final ? " (final)" : "");
#define T(f) fprintf(stderr, " " #f "=%llu", (unsigned long long)s->f);
	BR_FIELDS(T)
#undef T
	fputc('\n', stderr);
}

void br_stats_tick(const struct br_conf *c, const struct br_stats *s)
{
	static uint64_t next;
	if (c->stats_every <= 0)
		return;
	uint64_t now = br_now_ns(), every = (uint64_t)(c->stats_every * 1e9);
	if (!next)
		next = now + every;
	if (now < next)
		return;
	next = now + every;
	br_stats_print(c, s, false);
}

/* ---- connection ---------------------------------------------------------- */
static void on_disconnected(natsConnection *nc, void *closure)
{
	(void)nc; (void)closure;
	__atomic_fetch_add(&link_disconnects, 1, __ATOMIC_RELAXED);
}

static void on_reconnected(natsConnection *nc, void *closure)
{
	(void)nc; (void)closure;
	__atomic_fetch_add(&link_reconnects, 1, __ATOMIC_RELAXED);
}

static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
	(void)nc; (void)sub; (void)err; (void)closure;
	/* slow consumer and the like: counted where they are seen (dropped) */
}

/* doubling from 10 ms, capped */
static int64_t backoff(natsConnection *nc, int attempts, void *closure)
{
	(void)nc;
	int64_t cap = *(const uint32_t *)closure, ms = 10;
	for (int i = 1; i < attempts && ms < cap; i++)
		ms *= 2;
	return ms < cap ? ms : cap;
}

static int ck(natsStatus s, const char *what)
{
	if (s == NATS_OK)
		return 0;
	br_err("%s: %s (%s)", what, natsStatus_GetText(s), nats_GetLastError(NULL));
	return -1;
}

int br_connect(struct br_link *l, const struct br_conf *c, struct br_stats *st)
{
	memset(l, 0, sizeof(*l));
	l->st = st;
	/* a name that does not resolve is bad input; a server that does not
	 * answer (yet) is waited for */
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
	char host[256];
	snprintf(host, sizeof(host), "%s", c->host);
	if (host[0] == '[') {
		memmove(host, host + 1, strlen(host));
		host[strcspn(host, "]")] = 0;
	}
	int g = getaddrinfo(host, NULL, &hints, &ai);
	if (g == EAI_NONAME || g == EAI_FAIL || g == EAI_NODATA) {
		br_err("cannot resolve host '%s': %s", host, gai_strerror(g));
		return BR_USAGE;
	}
	if (ai)
		freeaddrinfo(ai);
	/* no answer from the resolver (no network yet): waited for like a
	 * server that is down, and said if it lasts */
	const char *unresolved = g ? gai_strerror(g) : NULL;
	natsOptions *o = NULL;
	if (ck(natsOptions_Create(&o), "NATS options") ||
	    ck(natsOptions_SetURL(o, c->nats_url), "NATS URL") ||
	    ck(natsOptions_SetMaxReconnect(o, -1), "NATS options") ||
	    ck(natsOptions_SetCustomReconnectDelay(o, backoff, (void *)&c->backoff_max_ms), "NATS options") ||
	    ck(natsOptions_SetReconnectBufSize(o, 32 << 20), "NATS options") ||
	    ck(natsOptions_SetIOBufSize(o, 256 << 10), "NATS options") ||
	    ck(natsOptions_SetTimeout(o, 2000), "NATS options") ||
	    ck(natsOptions_SetPingInterval(o, 2000), "NATS options") ||
	    ck(natsOptions_SetMaxPingsOut(o, 3), "NATS options") ||
	    ck(natsOptions_SetDisconnectedCB(o, on_disconnected, NULL), "NATS options") ||
	    ck(natsOptions_SetReconnectedCB(o, on_reconnected, NULL), "NATS options") ||
	    ck(natsOptions_SetErrorHandler(o, on_error, NULL), "NATS options")) {
		natsOptions_Destroy(o);
		return BR_FAIL;
	}
	if (c->creds && ck(natsOptions_SetUserCredentialsFromFiles(o, c->creds, NULL),
			   "--creds")) {
		natsOptions_Destroy(o);
		return BR_USAGE;
	}
	if (c->tls_ca && (ck(natsOptions_SetSecure(o, true), "--tls-ca") ||
			  ck(natsOptions_LoadCATrustedCertificates(o, c->tls_ca), "--tls-ca"))) {
		natsOptions_Destroy(o);
		return BR_USAGE;
	}
	uint64_t start = br_now_ns(), wait_ms = 10;
	bool said = false;
	for (;;) {
		natsStatus s = natsConnection_Connect(&l->nc, o);
		if (s == NATS_OK)
			break;
		if (s != NATS_NO_SERVER && s != NATS_TIMEOUT && s != NATS_IO_ERROR &&
		    s != NATS_CONNECTION_CLOSED) {
			br_err("cannot connect to %s: %s (%s)", c->nats_url, natsStatus_GetText(s),
			       nats_GetLastError(NULL));
			natsOptions_Destroy(o);
			return BR_USAGE;
		}
		double waited = (double)(br_now_ns() - start) / 1e9;
		if (c->connect_timeout > 0 && waited >= c->connect_timeout) {
			if (unresolved)
				br_err("no NATS server answers at %s after %.1f s (cannot resolve host "
				       "'%s': %s)", c->nats_url, waited, host, unresolved);
			else
				br_err("no NATS server answers at %s after %.1f s", c->nats_url, waited);
			natsOptions_Destroy(o);
			return BR_USAGE;
		}
		if (!said)
			br_err("waiting for a NATS server at %s (%s)", c->nats_url, natsStatus_GetText(s));
		said = true;
		if (br_stop) {
			natsOptions_Destroy(o);
			return BR_OK;
		}
		br_sleep_ns(wait_ms * 1000000u);
		wait_ms = wait_ms * 2 > c->backoff_max_ms ? c->backoff_max_ms : wait_ms * 2;
	}
	if (said)
		br_err("connected to %s", c->nats_url);
	l->opts = o;
	l->max_payload = (int)natsConnection_GetMaxPayload(l->nc);
	if (c->stream) {
		jsOptions jo;
		jsOptions_Init(&jo);
		jo.Wait = 5000;
		jo.PublishAsync.MaxPending = 4096;
		if (ck(natsConnection_JetStream(&l->js, l->nc, &jo), "JetStream")) {
			br_disconnect(l);
			return BR_FAIL;
		}
	}
	return 0;
}

void br_disconnect(struct br_link *l)
{
	if (l->js)
		jsCtx_Destroy(l->js);
	if (l->nc) {
		natsConnection_FlushTimeout(l->nc, 2000);
		natsConnection_Destroy(l->nc);
	}
	natsOptions_Destroy(l->opts);
	memset(l, 0, sizeof(*l));
}

/* The stream for the subject, created if missing; a stream of that name
 * that does not take the subject is an error (exit 2). */
int br_stream_ensure(struct br_link *l, const struct br_conf *c, int64_t *created, bool *single)
{
	jsStreamInfo *si = NULL;
	jsErrCode je = 0;
	for (;;) {
		natsStatus s = js_GetStreamInfo(&si, l->js, c->stream, NULL, &je);
		if (s == NATS_OK)
			break;
		if (s == NATS_NOT_FOUND) {
			jsStreamConfig sc;
			const char *subjects[1] = {c->subject};
			jsStreamConfig_Init(&sc);
			sc.Name = c->stream;
			sc.Subjects = subjects;
			sc.SubjectsLen = 1;
			sc.Storage = js_FileStorage;
			sc.Duplicates = (int64_t)600 * 1000000000;   /* 10 min de-dup window */
			s = js_AddStream(&si, l->js, &sc, NULL, &je);
			if (s == NATS_OK)
				break;
		}
		if (br_stop)
			return BR_OK;
		if (s == NATS_TIMEOUT || s == NATS_NO_RESPONDERS || s == NATS_CONNECTION_CLOSED ||
		    s == NATS_IO_ERROR || s == NATS_CONNECTION_DISCONNECTED) {
			br_sleep_ns(200000000u);       /* JetStream not ready yet */
			continue;
		}
		br_err("stream '%s': %s (%s, JetStream error %d)", c->stream, natsStatus_GetText(s),
		       nats_GetLastError(NULL), (int)je);
		return BR_USAGE;
	}
	bool takes = false;
	for (int i = 0; si->Config && i < si->Config->SubjectsLen; i++)
		takes |= !strcmp(si->Config->Subjects[i], c->subject);
	*created = si->Created;
	*single = takes && si->Config->SubjectsLen == 1;
	jsStreamInfo_Destroy(si);
	if (!takes) {
		br_err("stream '%s' exists but does not take subject '%s'", c->stream, c->subject);
		return BR_USAGE;
	}
	return 0;
}
