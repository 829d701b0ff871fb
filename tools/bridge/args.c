/* SPDX-License-Identifier: MIT */
/* The command line: two addresses, options; bad input is exit status 2. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bridge.h"

static const char usage[] =
	"usage: shmring-bridge SOURCE DESTINATION [options]\n"
	"  one of SOURCE and DESTINATION is a ring URI (shm:NAME, file:PATH, pipe:PATH,\n"
	"  mq:NAME), the other nats://HOST[:PORT]/SUBJECT\n"
	"  --stream NAME          JetStream stream (persistent; created if missing)\n"
	"  --durable NAME         inbound JetStream consumer name (default: from the ring)\n"
	"  --mark FILE            inbound JetStream: where the last applied sequence is kept\n"
	"  --creds FILE           NATS credentials file\n"
	"  --tls-ca FILE          CA certificates: use TLS and verify the server\n"
	"  --capacity BYTES       destination ring, when created (default 16M)\n"
	"  --max-msg BYTES        destination ring, when created (default 4M)\n"
	"  --kind spsc|mpmc       destination ring, when created (default spsc)\n"
	"  --linger-us N          wait up to N us to fill a publish with more messages (100)\n"
	"  --batch-bytes N        publish size to aim for when batching (64K)\n"
	"  --connect-timeout S    give up (exit 2) if no server answers for S s (0: wait)\n"
	"  --reconnect-max-ms N   cap of the reconnect back-off (2000)\n"
	"  --stats-every S        print the counters every S seconds\n"
	"  --json                 counters as JSON lines on stdout\n"
	"  --quiet                no final counters\n"
	"  shmring-bridge --bench [NATS-URL] [--msgs N] [--size BYTES]: speed against the\n"
	"  NATS client alone (starts nats-server when no URL is given)\n";

static int bad(const char *fmt, const char *arg)
{
	fprintf(stderr, "shmring-bridge: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n(shmring-bridge --help for usage)\n");
	return BR_USAGE;
}

/* "16M", "4096", "1G": bytes; -1 if not a size */
static int64_t parse_size(const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return -1;
	unsigned shift = 0;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	default: break;
	}
	if (*end || v > (UINT64_C(1) << 40) >> shift)
		return -1;
	return (int64_t)(v << shift);
}

static int parse_num(const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= 0) || v > 1e9)
		return -1;
	*out = v;
	return 0;
}

static int valid_token(const char *s, const char *extra)
{
	if (!*s || strlen(s) > 64)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr(extra, *s))
			return 0;
	return 1;
}

int br_parse_nats(const char *s, char *url, size_t url_cap, char *host, size_t host_cap,
		  char *subj, size_t subj_cap, const char **why)
{
	const char *scheme = NULL;
	if (!strncmp(s, "nats://", 7))
		scheme = "nats://";
	else if (!strncmp(s, "tls://", 6))
		scheme = "tls://";
	if (!scheme)
		return *why = "not a nats:// address", -EINVAL;
	const char *h = s + strlen(scheme), *slash = strchr(h, '/');
	if (!slash)
		return *why = "no /SUBJECT after the host", -EINVAL;
	const char *hend = slash, *port = NULL;
	if (*h == '[') {                               /* [IPv6]:port */
		const char *rb = memchr(h, ']', (size_t)(slash - h));
		if (!rb)
			return *why = "unclosed [ in the host", -EINVAL;
		if (rb + 1 < slash && rb[1] != ':')
			return *why = "junk after ]", -EINVAL;
		port = rb + 1 < slash ? rb + 2 : NULL;
		hend = rb + 1;
	} else {
		const char *colon = memchr(h, ':', (size_t)(slash - h));
		if (colon) {
			port = colon + 1;
			hend = colon;
		}
	}
	size_t hl = (size_t)(hend - h);
	if (hl == 0 || hl >= host_cap)
		return *why = "empty or too long host", -EINVAL;
	for (const char *p = h; p < hend; p++)
		if (!isalnum((unsigned char)*p) && !strchr(".-_:[]", *p))
			return *why = "bad character in the host", -EINVAL;
	long pn = 4222;
	if (port) {
		char *end;
		errno = 0;
		pn = strtol(port, &end, 10);
		if (errno || end != slash || end == port || pn < 1 || pn > 65535)
			return *why = "bad port", -EINVAL;
	}
	memcpy(host, h, hl);
	host[hl] = 0;
	if ((size_t)snprintf(url, url_cap, "%s%s:%ld", scheme, host, pn) >= url_cap)
		return *why = "address too long", -EINVAL;
	/* a subject: dot-separated tokens of printable characters without
	 * blanks; no wildcards (the bridge keeps one ordered stream) */
	const char *sj = slash + 1;
	size_t sl = strlen(sj);
	if (sl == 0)
		return *why = "empty subject", -EINVAL;
	if (sl >= subj_cap)
		return *why = "subject too long", -EINVAL;
	for (size_t i = 0; i < sl; i++) {
		unsigned char ch = (unsigned char)sj[i];
		if (ch <= ' ' || ch >= 0x7f)
			return *why = "the subject contains a space or a control character", -EINVAL;
		if (ch == '*' || ch == '>')
			return *why = "wildcards (* and >) are not allowed in the subject", -EINVAL;
		if (ch == '.' && (i == 0 || i + 1 == sl || sj[i + 1] == '.'))
			return *why = "empty token in the subject", -EINVAL;
	}
	memcpy(subj, sj, sl + 1);
	return 0;
}

static int is_nats(const char *s)
{
	return !strncmp(s, "nats:", 5) || !strncmp(s, "tls:", 4);
}

static int readable(const char *path)
{
	return access(path, R_OK) == 0;
}

int br_parse(struct br_conf *c, int argc, char **argv)
{
	enum { O_STREAM = 256, O_DURABLE, O_MARK, O_CREDS, O_TLSCA, O_CAP, O_MAXMSG, O_KIND,
	       O_LINGER, O_BATCH, O_CTIMEOUT, O_BACKOFF, O_STATS, O_JSON, O_QUIET, O_HELP };
	static const struct option lo[] = {
		{"stream", required_argument, 0, O_STREAM},
		{"durable", required_argument, 0, O_DURABLE},
		{"mark", required_argument, 0, O_MARK},
		{"creds", required_argument, 0, O_CREDS},
		{"tls-ca", required_argument, 0, O_TLSCA},
		{"capacity", required_argument, 0, O_CAP},
		{"max-msg", required_argument, 0, O_MAXMSG},
		{"kind", required_argument, 0, O_KIND},
		{"linger-us", required_argument, 0, O_LINGER},
		{"batch-bytes", required_argument, 0, O_BATCH},
		{"connect-timeout", required_argument, 0, O_CTIMEOUT},
		{"reconnect-max-ms", required_argument, 0, O_BACKOFF},
		{"stats-every", required_argument, 0, O_STATS},
		{"json", no_argument, 0, O_JSON},
		{"quiet", no_argument, 0, O_QUIET},
		{"help", no_argument, 0, O_HELP},
		{0, 0, 0, 0},
	};
	memset(c, 0, sizeof(*c));
	c->ropts.capacity = 16u << 20;
	c->ropts.max_msg = 4u << 20;
	c->ropts.kind = SHMRING_SPSC;
	c->linger_us = 100;
	c->batch_bytes = 64u << 10;
	c->backoff_max_ms = 2000;
	int o;
	int64_t v;
	double d;
	opterr = 0;
	optind = 1;
	while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (o) {
		case O_STREAM:
			if (!valid_token(optarg, "_-"))
				return bad("bad stream name '%s' (letters, digits, _ and -)", optarg);
			c->stream = optarg;
			break;
		case O_DURABLE:
			if (!valid_token(optarg, "_-"))
				return bad("bad consumer name '%s' (letters, digits, _ and -)", optarg);
			c->durable = optarg;
			break;
		case O_MARK: c->mark = optarg; break;
		case O_CREDS:
			if (!readable(optarg))
				return bad("cannot read the credentials file '%s'", optarg);
			c->creds = optarg;
			break;
		case O_TLSCA:
			if (!readable(optarg))
				return bad("cannot read the CA file '%s'", optarg);
			c->tls_ca = optarg;
			break;
		case O_CAP:
			if ((v = parse_size(optarg)) <= 0)
				return bad("bad --capacity '%s'", optarg);
			c->ropts.capacity = (uint64_t)v;
			break;
		case O_MAXMSG:
			if ((v = parse_size(optarg)) <= 0 || v > UINT32_MAX)
				return bad("bad --max-msg '%s'", optarg);
			c->ropts.max_msg = (uint32_t)v;
			break;
		case O_KIND:
			if (!strcmp(optarg, "spsc"))
				c->ropts.kind = SHMRING_SPSC;
			else if (!strcmp(optarg, "mpmc"))
				c->ropts.kind = SHMRING_MPMC;
			else
				return bad("bad --kind '%s' (spsc or mpmc)", optarg);
			break;
		case O_LINGER:
			if (parse_num(optarg, &d) || d > 1e6)
				return bad("bad --linger-us '%s' (0..1000000)", optarg);
			c->linger_us = (uint32_t)d;
			break;
		case O_BATCH:
			if ((v = parse_size(optarg)) < 64 || v > (16 << 20))
				return bad("bad --batch-bytes '%s' (64..16M)", optarg);
			c->batch_bytes = (uint32_t)v;
			break;
		case O_CTIMEOUT:
			if (parse_num(optarg, &c->connect_timeout))
				return bad("bad --connect-timeout '%s'", optarg);
			break;
		case O_BACKOFF:
			if (parse_num(optarg, &d) || d < 1 || d > 600000)
				return bad("bad --reconnect-max-ms '%s' (1..600000)", optarg);
			c->backoff_max_ms = (uint32_t)d;
			break;
		case O_STATS:
			if (parse_num(optarg, &c->stats_every))
				return bad("bad --stats-every '%s'", optarg);
			break;
		case O_JSON: c->json = true; break;
		case O_QUIET: c->quiet = true; break;
		case O_HELP: fputs(usage, stdout); exit(0);
		default:
			return bad("unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (argc - optind != 2) {
		fputs(usage, stderr);
		return BR_USAGE;
	}
	const char *src = argv[optind], *dst = argv[optind + 1];
	if (is_nats(src) == is_nats(dst))
		return bad("one address must be a ring, the other nats://HOST[:PORT]/SUBJECT: '%s'",
			   is_nats(src) ? "both are NATS" : "neither is NATS");
	c->outbound = is_nats(dst);
	const char *n = c->outbound ? dst : src, *why = "";
	c->ring = c->outbound ? src : dst;
	if (br_parse_nats(n, c->nats_url, sizeof(c->nats_url), c->host, sizeof(c->host),
			  c->subject, sizeof(c->subject), &why) < 0) {
		fprintf(stderr, "shmring-bridge: bad NATS address '%s': %s\n", n, why);
		return BR_USAGE;
	}
	if (c->durable && (c->outbound || !c->stream))
		return bad("%s", "--durable is for an inbound bridge with --stream");
	if (c->mark && (c->outbound || !c->stream))
		return bad("%s", "--mark is for an inbound bridge with --stream");
	if (c->batch_bytes < 64)
		c->batch_bytes = 64;
	return 0;
}
