/* SPDX-License-Identifier: MIT */
/* shmring-bridge: a ring's messages to a NATS subject and back (private). */
#ifndef SHMRING_BRIDGE_H
#define SHMRING_BRIDGE_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include <nats/nats.h>

#include "shmring.h"

/* exit statuses */
#define BR_OK     0
#define BR_FAIL   1   /* a system error or a lost connection that never came back */
#define BR_USAGE  2   /* bad input: arguments, a message the destination cannot take */

/* ---- what the command line says ---------------------------------------- */
struct br_conf {
	const char *ring;          /* ring URI */
	char nats_url[512];        /* nats://HOST:PORT (no subject) */
	char host[256];
	char subject[256];
	bool outbound;             /* ring -> subject */
	const char *stream;        /* --stream NAME, or NULL (core NATS) */
	const char *durable;       /* --durable NAME (inbound JetStream) */
	const char *creds, *tls_ca;
	const char *mark;          /* --mark FILE: where the inbound records what it applied */
	struct shmring_opts ropts; /* --capacity --max-msg --kind, on create */
	uint32_t linger_us;        /* --linger-us: batching delay, default 100 */
	uint32_t batch_bytes;      /* --batch-bytes: publish payload target, default 64 KiB */
	double stats_every;        /* --stats-every S, 0 = only at the end */
	bool json;                 /* counters as JSON lines */
	bool quiet;
	double connect_timeout;    /* --connect-timeout S: 0 = wait for ever */
	uint32_t backoff_max_ms;   /* --reconnect-max-ms: cap of the back-off */
};

/* 0, or BR_USAGE after printing why. */
int br_parse(struct br_conf *c, int argc, char **argv);
/* Split "nats://HOST[:PORT]/SUBJECT"; 0 or -EINVAL with *why set. */
int br_parse_nats(const char *s, char *url, size_t url_cap, char *host, size_t host_cap,
		  char *subj, size_t subj_cap, const char **why);

/* ---- counters ------------------------------------------------------------ */
struct br_stats {
	uint64_t msgs, bytes;      /* moved out of (outbound) / into (inbound) the ring */
	uint64_t publishes;        /* NATS messages published (outbound) or received (inbound) */
	uint64_t fragments;        /* pieces of messages larger than one publish */
	uint64_t acks;             /* JetStream: publish acks received / acks sent */
	uint64_t redeliveries;     /* JetStream messages delivered more than once */
	uint64_t dups_skipped;     /* already applied (by stream sequence): not written again */
	uint64_t replayed;         /* written again without proof they were not (see the man page) */
	uint64_t lost;             /* core NATS: messages missing in the sequence (at most once) */
	uint64_t dropped;          /* core NATS: NATS messages the client dropped (slow consumer) */
	uint64_t retries;          /* JetStream publishes retried after a timeout or error */
	uint64_t resyncs;          /* JetStream: consumer restarted at the first sequence not applied */
	uint64_t reconnects, disconnects;
	uint64_t full_waits;       /* the destination ring was full: stopped taking */
	uint64_t lag;              /* outbound: bytes queued in the source ring;
				      inbound: messages pending in the stream consumer */
};

extern volatile sig_atomic_t br_stop;   /* SIGTERM/SIGINT seen */

void br_stats_print(const struct br_conf *c, const struct br_stats *s, bool final);
/* Print the counters if --stats-every says it is time. */
void br_stats_tick(const struct br_conf *c, const struct br_stats *s);

/* ---- the NATS side -------------------------------------------------------- */
struct br_link {
	natsConnection *nc;
	natsOptions *opts;
	jsCtx *js;
	struct br_stats *st;
	int max_payload;
};

/* Connect with a bounded back-off until the server answers (or
 * --connect-timeout, or SIGTERM).  0, or an exit status. */
int br_connect(struct br_link *l, const struct br_conf *c, struct br_stats *st);
void br_disconnect(struct br_link *l);
/* JetStream: the stream exists (created for the subject if missing);
 * *single: it holds this subject only (its sequence numbers have no gaps). */
int br_stream_ensure(struct br_link *l, const struct br_conf *c, int64_t *created, bool *single);

/* What the records kept beside a ring belong to: stream and subject. */
uint64_t br_ident(const struct br_conf *c);

uint64_t br_now_ns(void);
void br_sleep_ns(uint64_t ns);
/* "shmring-bridge: " + message on stderr */
void br_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- the two directions ------------------------------------------------------ */
int br_outbound(const struct br_conf *c);
int br_inbound(const struct br_conf *c);
int br_bench(int argc, char **argv);

#endif
