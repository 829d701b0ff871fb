/* SPDX-License-Identifier: MIT */
/*
 * NATS -> ring.  Core NATS: a subscription read in this thread; gaps in
 * the publisher's sequence are counted as lost, what the client dropped
 * (slow consumer) as dropped.  JetStream: a durable pull consumer; a
 * message is acknowledged (AckAll) only after what it carries is committed
 * to the ring.  The mark file beside the ring records the last stream
 * sequence applied and the publisher's position written last, announced
 * before each write and recorded after it, so that a bridge started after
 * a kill skips exactly what is already in the ring.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "frame.h"
#include "mark.h"

#define IN_RECS 4096           /* most messages in one batch we accept */
#define IN_STOPPED 100         /* deliver(): SIGTERM while the ring was full */
#define IN_RESYNC 101          /* JetStream: a gap; fetch again from the first missing */

/* The inbound record, words of the mark file. */
enum {
	IM_IDENT, IM_RING, IM_CREATED,
	IM_PUB, IM_NEXT,       /* publisher, and the position of its next message */
	IM_APPLIED,            /* stream sequence of the last NATS message fully applied */
	IM_K, IM_SENT,         /* K > 0: K messages from IM_NEXT on being written; the
				  ring's msgs_sent was IM_SENT before */
};

struct in {
	const struct br_conf *c;
	struct br_link l;
	struct br_stats st;
	struct shmring *r;
	uint32_t max_msg;
	natsSubscription *sub;
	natsMsg *cur;              /* JetStream: the message being applied (progress acks) */
	bool have_pub;
	uint64_t pub_id, next;     /* publisher, and position of its next message */
	uint64_t applied;          /* JetStream: stream sequence fully applied */
	uint64_t seen;             /* JetStream: stream sequence handled last (applied, or
				      a piece kept for a message not complete yet) */
	bool single;               /* the stream holds our subject only: no gaps */
	uint64_t resynced;         /* applied + 1 when the last resync was made: a gap
				      seen again before anything more is applied is a
				      real hole (or pieces that do not follow) */
	char durable[160];
	unsigned char *asm_buf;    /* a message arriving as pieces */
	uint32_t asm_total, asm_off;
	uint64_t asm_seq;
	bool asm_on;
	struct mark mark;
	bool has_mark, exact;      /* exact: the ring's counter proves a commit */
	uint64_t sent;             /* the ring's msgs_sent as this bridge expects it */
	uint64_t ident, ring_id;
	int64_t created;           /* the stream's creation time */
	struct fr_rec recs[IN_RECS];
	struct iovec iov[IN_RECS];
};

static void in_mark(struct in *n, uint64_t writing)
{
	if (!n->has_mark)
		return;
	uint64_t v[MARK_VALS] = {0};
	v[IM_IDENT] = n->ident;
	v[IM_RING] = n->ring_id;
	v[IM_CREATED] = (uint64_t)n->created;
	v[IM_PUB] = n->pub_id;
	v[IM_NEXT] = n->next;
	v[IM_APPLIED] = n->applied;
	v[IM_K] = writing;
	v[IM_SENT] = n->sent;
	mark_write(&n->mark, v);
}

static int too_big(struct in *n, uint64_t len)
{
	br_err("a message of %llu bytes does not fit the destination ring %s (max_msg %u); "
	       "%s", (unsigned long long)len, n->c->ring, n->max_msg,
	       n->c->stream ? "it stays in the stream, unacknowledged" : "it is dropped");
	return BR_USAGE;
}

/* Write messages at positions n->next.. into the ring, waiting while it is
 * full (back-pressure: nothing more is fetched or acknowledged). */
static int deliver(struct in *n, struct iovec *iov, unsigned cnt)
{
	bool waited = false;
	uint64_t progress_ns = 0;
	while (cnt) {
		in_mark(n, cnt);
		/* a look first: a full ring is counted, then waited for */
		int rc = shmring_send_batch(n->r, iov, cnt, waited ? 100000000 : 0);
		if (rc == -ETIMEDOUT || rc == -EAGAIN) {
			if (!waited)
				n->st.full_waits++;
			waited = true;
			if (br_stop)
				return IN_STOPPED;
			/* the ring is full: keep the stream from giving the
			 * message to somebody else meanwhile */
			uint64_t now = br_now_ns();
			if (n->cur && now - progress_ns > 1000000000u) {
				natsMsg_InProgress(n->cur, NULL);
				progress_ns = now;
			}
			br_stats_tick(n->c, &n->st);
			continue;
		}
		if (rc == -EMSGSIZE)
			return too_big(n, iov[0].iov_len);
		if (rc < 0) {
			br_err("%s: %s", n->c->ring, shmring_strerror(rc));
			return rc == -EPIPE ? BR_USAGE : BR_FAIL;
		}
		for (int i = 0; i < rc; i++) {
			n->st.msgs++;
			n->st.bytes += iov[i].iov_len;
		}
		n->sent += (uint64_t)rc;
		n->next += (uint64_t)rc;
		in_mark(n, 0);
		iov += rc;
		cnt -= (unsigned)rc;
		waited = false;
	}
	return 0;
}

/* Position bookkeeping for a payload of publisher pub at seq: how many of
 * its first messages were written already (skip them). */
static uint64_t place(struct in *n, uint64_t pub, uint64_t seq)
{
	if (!n->have_pub || pub != n->pub_id) {
		n->have_pub = true;
		n->pub_id = pub;
		n->next = seq;
		n->asm_on = false;
		return 0;
	}
	if (seq > n->next) {
		n->st.lost += seq - n->next;
		n->next = seq;
		n->asm_on = false;
	}
	return n->next - seq;
}

/* One NATS payload.  0, IN_STOPPED, or an exit status; *done set when the
 * payload is fully applied (an ack may cover it), *end at end of stream. */
static int handle(struct in *n, const unsigned char *p, size_t len, bool *done, bool *end)
{
	struct fr_hdr h;
	uint32_t total = 0, off = 0;
	*done = true;
	n->st.publishes++;
	if (fr_parse(p, len, &h, n->recs, IN_RECS, &total, &off) < 0) {
		n->st.lost++;
		return 0;              /* not ours, or damaged: counted, skipped */
	}
	if (n->c->stream && n->have_pub && h.pub_id == n->pub_id && h.seq > n->next &&
	    n->resynced != n->applied + 1)
		return IN_RESYNC;       /* JetStream delivered past a message: fetch it */
	uint64_t skip = place(n, h.pub_id, h.seq);
	if (h.flags & FR_END) {
		if (skip) {
			n->st.dups_skipped++;
			return 0;
		}
		int rc = shmring_shutdown(n->r);
		if (rc < 0)
			br_err("%s: shutdown: %s", n->c->ring, shmring_strerror(rc));
		n->next++;
		*end = true;
		return 0;
	}
	if (h.flags & FR_PIECE) {
		n->st.fragments++;
		if (skip) {
			if (off == 0)
				n->st.dups_skipped++;
			return 0;
		}
		if (total > n->max_msg)
			return too_big(n, total);
		if (off == 0) {
			/* a message starts (again: a publisher restarted it) */
			n->asm_on = true;
			n->asm_seq = h.seq;
			n->asm_total = total;
			n->asm_off = 0;
		} else if (!n->asm_on || n->asm_seq != h.seq || n->asm_total != total || n->asm_off != off) {
			/* pieces that do not follow: the message is lost (core
			 * NATS), counted when the next one comes */
			n->asm_on = false;
			return 0;
		}
		memcpy(n->asm_buf + n->asm_off, n->recs[0].data, n->recs[0].len);
		n->asm_off += n->recs[0].len;
		if (n->asm_off < n->asm_total) {
			*done = false;
			return 0;
		}
		n->asm_on = false;
		struct iovec v = {n->asm_buf, n->asm_total};
		return deliver(n, &v, 1);
	}
	if (skip >= h.count) {
		n->st.dups_skipped += h.count;
		return 0;
	}
	n->st.dups_skipped += skip;
	n->asm_on = false;              /* a batch between pieces: that message is lost */
	unsigned cnt = 0;
	for (unsigned i = (unsigned)skip; i < h.count; i++) {
		if (n->recs[i].len > n->max_msg)
			return too_big(n, n->recs[i].len);
		n->iov[cnt].iov_base = (void *)n->recs[i].data;
		n->iov[cnt++].iov_len = n->recs[i].len;
	}
	return deliver(n, n->iov, cnt);
}

/* ---- core NATS ------------------------------------------------------------ */
static int run_core(struct in *n)
{
	const struct br_conf *c = n->c;
	if (natsConnection_SubscribeSync(&n->sub, n->l.nc, c->subject) != NATS_OK ||
	    /* bounded memory: what the client holds for us */
	    natsSubscription_SetPendingLimits(n->sub, 1 << 20, 256 << 20) != NATS_OK) {
		br_err("subscribe %s: %s", c->subject, nats_GetLastError(NULL));
		return BR_FAIL;
	}
	natsConnection_Flush(n->l.nc);
	int64_t dropped_seen = 0;
	uint64_t stop_ns = 0;
	for (;;) {
		natsMsg *m = NULL;
		natsStatus s = natsSubscription_NextMsg(&m, n->sub, 100);
		int64_t dropped = 0;
		if (natsSubscription_GetDropped(n->sub, &dropped) == NATS_OK && dropped > dropped_seen) {
			n->st.dropped += (uint64_t)(dropped - dropped_seen);   /* NATS messages */
			dropped_seen = dropped;
		}
		if (s == NATS_TIMEOUT || s == NATS_SLOW_CONSUMER) {
			br_stats_tick(c, &n->st);
			if (br_stop)
				return 0;
			continue;
		}
		if (s != NATS_OK) {
			if (br_stop)
				return 0;
			br_sleep_ns(50000000);
			continue;
		}
		bool done, end = false;
		int rc = handle(n, (const unsigned char *)natsMsg_GetData(m),
				(size_t)natsMsg_GetDataLength(m), &done, &end);
		natsMsg_Destroy(m);
		if (rc == IN_STOPPED)
			return 0;
		if (rc || end)
			return rc;
		if ((n->st.publishes & 255) == 0) {
			int pm = 0;
			if (natsSubscription_GetPending(n->sub, &pm, NULL) == NATS_OK)
				n->st.lag = (uint64_t)pm;
		}
		/* after every message: --stats-every is a time, and a steady
		 * stream has no idle timeouts to print them at */
		br_stats_tick(c, &n->st);
		if (br_stop) {
			/* SIGTERM: what the client already holds goes in (for a
			 * second at most: a publisher may keep it full), then stop */
			int pm = 0;
			if (!stop_ns)
				stop_ns = br_now_ns() + 1000000000u;
			if (natsSubscription_GetPending(n->sub, &pm, NULL) != NATS_OK || pm == 0 ||
			    br_now_ns() > stop_ns)
				return 0;
		}
	}
}

/* ---- JetStream ------------------------------------------------------------- */
/* Where the ring stands: from the mark beside it.  A write under way at a
 * kill is settled by the ring's msgs_sent counter: exact when this bridge
 * is the ring's only producer (an SPSC ring counts, when we take the role
 * over, a commit its dead holder made and did not count); otherwise the
 * write is repeated and counted as replayed. */
static int js_recover(struct in *n)
{
	char path[4300];
	const char *where = n->c->mark;
	struct shmring_caps caps;
	struct shmring_stats rs;
	int rc;
	if ((rc = shmring_caps(n->r, &caps)) < 0 || (rc = shmring_stats(n->r, &rs)) < 0) {
		br_err("%s: %s", n->c->ring, shmring_strerror(rc));
		return BR_FAIL;
	}
	if (!where) {
		if (mark_path(n->c->ring, "in", path, sizeof(path)) < 0) {
			br_err("warning: %s: no place for the record of what was written: after a "
			       "kill, what was written may be written again (give --mark FILE)",
			       n->c->ring);
			return 0;
		}
		where = path;
	}
	uint64_t v[MARK_VALS] = {0};
	bool found;
	if ((rc = mark_open(&n->mark, where, v, &found)) < 0) {
		br_err("mark %s: %s", where, shmring_strerror(rc));
		return BR_USAGE;
	}
	n->has_mark = true;
	n->ring_id = mark_ring_id(n->c->ring);
	n->ident = br_ident(n->c);
	n->exact = (caps.flags & SHMRING_CAP_ZEROCOPY) && !(caps.flags & SHMRING_CAP_MPMC);
	n->sent = rs.msgs_sent;
	if (found && v[IM_IDENT] == n->ident && v[IM_RING] == n->ring_id &&
	    (int64_t)v[IM_CREATED] == n->created) {
		n->have_pub = true;
		n->pub_id = v[IM_PUB];
		n->next = v[IM_NEXT];
		n->applied = v[IM_APPLIED];
		if (v[IM_K]) {                   /* killed while writing */
			uint64_t done = rs.msgs_sent - v[IM_SENT];
			if (!n->exact) {
				n->st.replayed += v[IM_K];
			} else if (done <= v[IM_K]) {
				n->next += done;
			} else {
				br_err("warning: %s has another producer: what was being written "
				       "may be written again", n->c->ring);
				n->st.replayed += v[IM_K];
			}
		}
	} else if (found) {
		br_err("%s: the record beside the ring is for another ring or stream: "
		       "starting from the consumer's position", n->c->ring);
	}
	in_mark(n, 0);
	return 0;
}

/* the durable consumer's name: --durable, or from the ring's URI */
static void durable_of(const struct br_conf *c, char *buf, size_t cap)
{
	if (c->durable) {
		snprintf(buf, cap, "%s", c->durable);
		return;
	}
	snprintf(buf, cap, "shmring-bridge-%s", c->ring);
	for (char *p = buf; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
			*p = '_';
}

/* (Re)subscribe: the durable consumer is made again to deliver from the
 * first stream sequence not applied, so that what it delivers follows
 * what the ring holds without a gap (a consumer whose client was killed
 * delivers new messages first, and the unacknowledged ones only later). */
static int js_subscribe(struct in *n)
{
	uint64_t start = n->applied + 1;
	const struct br_conf *c = n->c;
	if (n->sub) {
		natsSubscription_Destroy(n->sub);
		n->sub = NULL;
	}
	jsSubOptions so;
	jsSubOptions_Init(&so);
	so.Stream = c->stream;
	so.Config.AckPolicy = js_AckAll;
	/* a message fetched and neither applied nor acknowledged (the
	 * bridge was killed) comes again after this long */
	so.Config.AckWait = (int64_t)3 * 1000000000;
	so.Config.MaxAckPending = 20000;
	so.Config.DeliverPolicy = start > 1 ? js_DeliverByStartSequence : js_DeliverAll;
	so.Config.OptStartSeq = start > 1 ? start : 0;
	while (!br_stop) {
		jsErrCode je = 0;
		natsStatus s = js_DeleteConsumer(n->l.js, c->stream, n->durable, NULL, &je);
		if (s == NATS_NOT_FOUND)
			s = NATS_OK;
		if (s == NATS_OK)
			s = js_PullSubscribe(&n->sub, n->l.js, c->subject, n->durable, NULL, &so, &je);
		if (s == NATS_OK)
			return 0;
		if (s != NATS_TIMEOUT && s != NATS_NO_RESPONDERS && s != NATS_CONNECTION_DISCONNECTED &&
		    s != NATS_IO_ERROR && s != NATS_ERR) {
			br_err("consumer %s on stream %s: %s (%s)", n->durable, c->stream,
			       natsStatus_GetText(s), nats_GetLastError(NULL));
			return BR_USAGE;
		}
		br_sleep_ns(200000000);          /* the server is not back yet */
	}
	return 0;
}

/* Where to start: after what the ring holds (the mark), or else after
 * what the durable consumer has acknowledged. */
static int js_start(struct in *n)
{
	const struct br_conf *c = n->c;
	if (!n->applied) {
		jsConsumerInfo *ci = NULL;
		jsErrCode je = 0;
		if (js_GetConsumerInfo(&ci, n->l.js, c->stream, n->durable, NULL, &je) == NATS_OK) {
			n->applied = ci->AckFloor.Stream;
			jsConsumerInfo_Destroy(ci);
		}
	}
	n->seen = n->applied;
	return js_subscribe(n);
}

/* One fetched message.  0, IN_STOPPED, an exit status, or IN_RESYNC. */
static int js_one(struct in *n, natsMsg *m, bool *ackable, bool *end)
{
	jsMsgMetaData *md = NULL;
	uint64_t sseq = 0;
	*ackable = false;
	if (natsMsg_GetMetaData(&md, m) == NATS_OK) {
		if (md->NumDelivered > 1)
			n->st.redeliveries++;
		n->st.lag = md->NumPending;
		sseq = md->Sequence.Stream;
		jsMsgMetaData_Destroy(md);
	}
	if (sseq && sseq <= n->seen) {
		n->st.dups_skipped++;            /* handled before: a redelivery */
		*ackable = !n->asm_on;
		return 0;
	}
	if (sseq && n->single && n->seen && sseq != n->seen + 1) {
		if (n->resynced != n->applied + 1)
			return IN_RESYNC;        /* something before it did not come (yet) */
		n->st.lost += sseq - n->seen - 1;   /* not in the stream any more */
	}
	bool done = true;
	n->cur = m;
	int rc = handle(n, (const unsigned char *)natsMsg_GetData(m),
			(size_t)natsMsg_GetDataLength(m), &done, end);
	n->cur = NULL;
	if (rc)
		return rc;
	if (sseq)
		n->seen = sseq;
	if (done && sseq) {
		n->applied = sseq;
		in_mark(n, 0);
	}
	*ackable = done && !n->asm_on;
	return 0;
}

static int run_js(struct in *n)
{
	const struct br_conf *c = n->c;
	int rc;
	if ((rc = br_stream_ensure(&n->l, c, &n->created, &n->single)) || br_stop)
		return rc;
	durable_of(c, n->durable, sizeof(n->durable));
	if ((rc = js_recover(n)) || (rc = js_start(n)) || br_stop)
		return rc;
	while (!br_stop) {
		natsMsgList list = {0};
		jsFetchRequest fr;
		jsFetchRequest_Init(&fr);
		fr.Batch = 256;
		fr.MaxBytes = 8 << 20;          /* bounded memory: what one fetch may hold */
		fr.Expires = (int64_t)200 * 1000000;
		natsStatus s = natsSubscription_FetchRequest(&list, n->sub, &fr);
		if (s != NATS_OK) {
			natsMsgList_Destroy(&list);
			br_stats_tick(c, &n->st);
			if (s != NATS_TIMEOUT)
				br_sleep_ns(50000000);   /* the server restarts, or the link */
			continue;
		}
		natsMsg *ackable = NULL;
		bool end = false;
		rc = 0;
		for (int i = 0; i < list.Count && !rc && !end; i++) {
			bool ok;
			rc = js_one(n, list.Msgs[i], &ok, &end);
			if (ok)
				ackable = list.Msgs[i];
		}
		if (ackable && natsMsg_Ack(ackable, NULL) == NATS_OK)
			n->st.acks++;
		natsMsgList_Destroy(&list);
		br_stats_tick(c, &n->st);
		if (rc == IN_RESYNC) {
			/* start again at the first sequence not handled; a
			 * message being assembled starts again at its first piece */
			n->st.resyncs++;
			n->asm_on = false;
			n->seen = n->applied;
			n->resynced = n->applied + 1;
			if ((rc = js_subscribe(n)))
				return rc;
			continue;
		}
		if (rc == IN_STOPPED)
			return 0;
		if (rc || end)
			return rc;
	}
	return 0;
}

int br_inbound(const struct br_conf *c)
{
	struct in *n = calloc(1, sizeof(*n));
	if (!n)
		return BR_FAIL;
	n->c = c;
	struct shmring_opts ro = c->ropts;
	int rc = shmring_open(c->ring, SHMRING_PRODUCER | SHMRING_CREATE, &ro, &n->r);
	if (rc < 0) {
		br_err("cannot open the destination ring %s: %s", c->ring, shmring_strerror(rc));
		free(n);
		return rc == -ENOMEM || rc == -ENOSPC ? BR_FAIL : BR_USAGE;
	}
	struct shmring_caps caps;
	if ((rc = shmring_caps(n->r, &caps)) < 0) {
		br_err("%s: %s", c->ring, shmring_strerror(rc));
		rc = BR_FAIL;
		goto out;
	}
	n->max_msg = caps.max_msg;
	n->asm_buf = malloc(n->max_msg ? n->max_msg : 1);
	if (!n->asm_buf) {
		rc = BR_FAIL;
		goto out;
	}
	if ((rc = br_connect(&n->l, c, &n->st)) || br_stop)
		goto out;
	rc = c->stream ? run_js(n) : run_core(n);
out:
	if (n->sub)
		natsSubscription_Destroy(n->sub);
	if (!c->quiet || c->json)
		br_stats_print(c, &n->st, true);
	br_disconnect(&n->l);
	shmring_close(n->r);
	if (n->has_mark)
		mark_close(&n->mark);
	free(n->asm_buf);
	free(n);
	return rc;
}
