/* SPDX-License-Identifier: MIT */
/*
 * Ring -> NATS.  Messages are read in place (acquire) and given back to
 * the ring (release) only once NATS has them: core NATS, once the client
 * took the publish; JetStream, once the stream acknowledged it.  A kill
 * before that leaves them in the ring for the next bridge.
 *
 * JetStream: each message has a position (its index in the ring's
 * stream of messages) and the run an epoch kept in the mark file; the
 * stream de-duplicates by Nats-Msg-Id (epoch-position), the inbound
 * bridge by position, so a message published again after a kill is
 * written once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "bridge.h"
#include "frame.h"
#include "mark.h"

#define HELD_MAX 1024          /* messages read in place, not yet given back */

struct out {
	const struct br_conf *c;
	struct br_link l;
	struct br_stats st;
	struct shmring *r;
	struct shmring_msg held[HELD_MAX];
	unsigned nheld;
	unsigned char *buf;        /* one publish */
	size_t batch_cap;          /* a batch of small messages up to this */
	size_t piece_cap;          /* one publish at most (the server's max_payload) */
	size_t used;               /* bytes of buf */
	unsigned count;            /* messages batched in buf */
	uint64_t pub_id, seq;      /* seq: position of the next message to batch */
	uint64_t first_ns;         /* when the batch's first message came */
	/* JetStream */
	struct mark mark;
	bool has_mark;
	uint64_t ring_id, ident;
	uint64_t recv;             /* the ring's msgs_recv as this bridge expects it */
};

/* The outbound record, words of the mark file:
 *   OM_POS   position of the oldest message not yet given back to the ring
 *   OM_RECV  the ring's msgs_recv counter when OM_POS was current
 *   OM_REL   k > 0: the k messages from OM_POS on are being given back
 * An SPSC ring's msgs_recv counts exactly what was released, even by a
 * consumer killed between its release and its counter (the next holder
 * counts it), so after a kill msgs_recv - OM_RECV says how many of the k
 * went back. */
enum { OM_EPOCH, OM_RING, OM_IDENT, OM_POS, OM_RECV, OM_REL };

static void out_mark(struct out *o, uint64_t pos, uint64_t releasing)
{
	if (!o->has_mark)
		return;
	uint64_t v[MARK_VALS] = {0};
	v[OM_EPOCH] = o->pub_id;
	v[OM_RING] = o->ring_id;
	v[OM_IDENT] = o->ident;
	v[OM_POS] = pos;
	v[OM_RECV] = o->recv;
	v[OM_REL] = releasing;
	mark_write(&o->mark, v);
}

/* Give the held messages back to the ring, oldest first, announced in the
 * mark before and recorded after. */
static int release_held(struct out *o, uint64_t first_pos)
{
	out_mark(o, first_pos, o->nheld);
	for (unsigned i = 0; i < o->nheld; i++) {
		int rc = shmring_release(o->r, &o->held[i]);
		if (rc < 0) {
			br_err("release: %s", shmring_strerror(rc));
			return BR_FAIL;
		}
	}
	o->recv += o->nheld;
	out_mark(o, first_pos + o->nheld, 0);
	o->nheld = 0;
	return 0;
}

#define OUT_STOPPED 100        /* SIGTERM while the stream did not answer */

/*
 * Publish one payload.  Core NATS: handed to the client, retried while its
 * buffers are full (back-pressure: the ring is not drained meanwhile).
 * JetStream: one publish at a time, each acknowledged by the stream before
 * the next goes out, retried under the same id until it is: so the stream
 * holds the payloads in the order of their positions even when a
 * disconnect loses one in flight (asynchronous publishes would let a later
 * one overtake it).
 */
static int publish(struct out *o, const unsigned char *p, size_t n, const char *msg_id)
{
	for (;;) {
		natsStatus s;
		if (o->l.js) {
			jsPubOptions po;
			jsPubOptions_Init(&po);
			po.MsgId = msg_id;
			po.MaxWait = 5000;
			jsPubAck *pa = NULL;
			jsErrCode je = 0;
			s = js_Publish(&pa, o->l.js, o->c->subject, p, (int)n, &po, &je);
			if (s == NATS_OK) {
				o->st.acks++;
				if (pa && pa->Duplicate)
					o->st.dups_skipped++;
				jsPubAck_Destroy(pa);
			}
		} else {
			s = natsConnection_Publish(o->l.nc, o->c->subject, p, (int)n);
		}
		if (s == NATS_OK) {
			o->st.publishes++;
			return 0;
		}
		if (s == NATS_CONNECTION_CLOSED) {
			br_err("publish: connection closed");
			return BR_FAIL;
		}
		if (s == NATS_MAX_PAYLOAD) {
			br_err("publish: payload of %zu bytes over the server's limit", n);
			return BR_FAIL;
		}
		/* the stream did not answer (a restart), the client's buffers
		 * are full while it reconnects: again, after a pause */
		if (o->l.js)
			o->st.retries++;
		if (br_stop)
			return o->l.js ? OUT_STOPPED : BR_FAIL;
		br_sleep_ns(o->l.js ? 50000000 : 2000000);
	}
}

static void id_of(const struct out *o, char *id, size_t cap, uint64_t seq, unsigned count, uint32_t off)
{
	snprintf(id, cap, "%016llx-%llu-%u-%u", (unsigned long long)o->pub_id,
		 (unsigned long long)seq, count, off);
}

/* Publish a message larger than one publish: pieces of one seq. */
static int send_pieces(struct out *o, const struct shmring_msg *m, uint64_t seq)
{
	size_t chunk = o->piece_cap - FR_HDR - FR_PIECE_HDR;
	uint32_t off = 0, total = (uint32_t)m->len;
	do {
		size_t n = total - off < chunk ? total - off : chunk;
		struct fr_hdr h = {.flags = FR_PIECE, .count = 1, .pub_id = o->pub_id, .seq = seq};
		fr_put_hdr(o->buf, &h);
		fr_put32(o->buf + FR_HDR, total);
		fr_put32(o->buf + FR_HDR + 4, off);
		memcpy(o->buf + FR_HDR + FR_PIECE_HDR, (const char *)m->data + off, n);
		char id[96];
		id_of(o, id, sizeof(id), seq, 1, off);
		int rc = publish(o, o->buf, FR_HDR + FR_PIECE_HDR + n, id);
		if (rc)
			return rc;
		o->st.fragments++;
		off += (uint32_t)n;
	} while (off < total);
	return 0;
}

/* Publish what is held: the batch in buf, or big messages as pieces.
 * Then (JetStream: after the acks) give the messages back to the ring. */
static int flush(struct out *o)
{
	if (!o->nheld)
		return 0;
	uint64_t first = o->seq - o->nheld;
	int rc;
	if (o->count) {
		struct fr_hdr h = {.count = (uint16_t)o->count, .pub_id = o->pub_id, .seq = first};
		fr_put_hdr(o->buf, &h);
		char id[96];
		id_of(o, id, sizeof(id), first, o->count, 0);
		if ((rc = publish(o, o->buf, o->used, id)))
			return rc;
	} else if ((rc = send_pieces(o, &o->held[0], first))) {   /* one big message */
		return rc;
	}
	for (unsigned i = 0; i < o->nheld; i++) {
		o->st.msgs++;
		o->st.bytes += o->held[i].len;
	}
	o->count = 0;
	o->used = FR_HDR;
	return release_held(o, first);
}

/* Where this ring's messages stand, for JetStream ids: the mark says
 * which position the ring's next message has, checked against the ring's
 * count of released messages; without a mark that matches, a new epoch
 * (new ids) starts at position 0. */
static int js_position(struct out *o)
{
	char path[4300];
	uint64_t v[MARK_VALS] = {0};
	bool found = false;
	struct shmring_stats rs;
	struct shmring_caps caps;
	int rc = shmring_stats(o->r, &rs);
	if (rc < 0 || (rc = shmring_caps(o->r, &caps)) < 0) {
		br_err("%s: %s", o->c->ring, shmring_strerror(rc));
		return BR_FAIL;
	}
	if (getrandom(&o->pub_id, sizeof(o->pub_id), 0) != sizeof(o->pub_id))
		o->pub_id = br_now_ns() ^ ((uint64_t)getpid() << 32);
	o->seq = 0;
	if (!(caps.flags & SHMRING_CAP_ZEROCOPY) || (caps.flags & SHMRING_CAP_MPMC) ||
	    mark_path(o->c->ring, "out", path, sizeof(path)) < 0) {
		br_err("warning: %s: after a kill of this bridge, the messages it held may "
		       "reach the stream twice (exactly-once needs an SPSC shm: or file: source)",
		       o->c->ring);
		return 0;
	}
	if ((rc = mark_open(&o->mark, path, v, &found)) < 0) {
		br_err("%s: %s", path, shmring_strerror(rc));
		return BR_FAIL;
	}
	o->has_mark = true;
	o->ring_id = mark_ring_id(o->c->ring);
	o->ident = br_ident(o->c);
	o->recv = rs.msgs_recv;
	if (found && v[OM_RING] == o->ring_id && v[OM_IDENT] == o->ident) {
		uint64_t back = rs.msgs_recv - v[OM_RECV];
		if (back <= v[OM_REL]) {            /* 0 when no release was under way */
			o->pub_id = v[OM_EPOCH];
			o->seq = v[OM_POS] + back;
		} else {
			br_err("warning: %s: %llu messages were taken from the ring by another "
			       "consumer; their positions are unknown: a new epoch starts",
			       o->c->ring, (unsigned long long)(back - v[OM_REL]));
		}
	}
	out_mark(o, o->seq, 0);
	return 0;
}

/* One more message read in place: batched, or alone as pieces when it
 * does not fit a batch. */
static int add(struct out *o, const struct shmring_msg *m)
{
	int rc;
	bool big = m->len + FR_REC > o->batch_cap - FR_HDR;
	if (o->nheld && (big || o->used + FR_REC + m->len > o->batch_cap ||
			 o->nheld == HELD_MAX || o->count == 0xffff) && (rc = flush(o)))
		return rc;
	if (!o->nheld)
		o->first_ns = br_now_ns();
	o->held[o->nheld++] = *m;
	o->seq++;
	if (big)
		return flush(o);          /* count == 0: as pieces */
	fr_put32(o->buf + o->used, (uint32_t)m->len);
	memcpy(o->buf + o->used + FR_REC, m->data, m->len);
	o->used += FR_REC + m->len;
	o->count++;
	return 0;
}

static int eos(struct out *o)
{
	int rc = flush(o);
	if (rc)
		return rc;
	struct fr_hdr h = {.flags = FR_END, .pub_id = o->pub_id, .seq = o->seq};
	fr_put_hdr(o->buf, &h);
	char id[96];
	id_of(o, id, sizeof(id), o->seq, 0, 0xffffffffu);
	return publish(o, o->buf, FR_HDR, id);
}

int br_outbound(const struct br_conf *c)
{
	struct out *o = calloc(1, sizeof(*o));
	if (!o)
		return BR_FAIL;
	o->c = c;
	int rc = shmring_open(c->ring, SHMRING_CONSUMER, NULL, &o->r);
	if (rc < 0) {
		br_err("cannot open the source ring %s: %s", c->ring, shmring_strerror(rc));
		free(o);
		return rc == -ENOENT || rc == -EINVAL || rc == -EACCES || rc == -EPROTO ||
		       rc == -EBUSY ? BR_USAGE : BR_FAIL;
	}
	if ((rc = br_connect(&o->l, c, &o->st)) || br_stop)
		goto out;
	if (c->stream) {
		int64_t created;
		bool single;
		if ((rc = br_stream_ensure(&o->l, c, &created, &single)) || br_stop)
			goto out;
		jsOptions jo;
		jsOptions_Init(&jo);
		jsCtx_Destroy(o->l.js);
		o->l.js = NULL;
		jo.Wait = 5000;
		jo.PublishAsync.MaxPending = 4096;
		if (natsConnection_JetStream(&o->l.js, o->l.nc, &jo) != NATS_OK) {
			br_err("JetStream: %s", nats_GetLastError(NULL));
			rc = BR_FAIL;
			goto out;
		}
		if ((rc = js_position(o)))
			goto out;
	} else if (getrandom(&o->pub_id, sizeof(o->pub_id), 0) != sizeof(o->pub_id)) {
		o->pub_id = br_now_ns();
	}
	/* the server's max_payload counts the headers too (Nats-Msg-Id) */
	size_t maxp = o->l.max_payload > 4096 ? (size_t)o->l.max_payload - 1024 : 3072;
	o->piece_cap = maxp;
	o->batch_cap = c->batch_bytes < maxp ? c->batch_bytes : maxp;
	o->buf = malloc(o->piece_cap);
	if (!o->buf) {
		rc = BR_FAIL;
		goto out;
	}
	o->used = FR_HDR;
	const uint64_t linger = (uint64_t)c->linger_us * 1000;
	while (!br_stop) {
		int64_t tmo = 100000000;                 /* wake up to look at br_stop */
		if (o->nheld) {
			uint64_t now = br_now_ns(), due = o->first_ns + linger;
			if (now >= due) {
				if ((rc = flush(o)))
					goto out;
				continue;
			}
			tmo = (int64_t)(due - now);
		}
		struct shmring_msg m;
		rc = shmring_acquire(o->r, &m, o->nheld && linger == 0 ? 0 : tmo);
		if (rc == -ETIMEDOUT || rc == -EAGAIN || rc == -EINTR || rc == -EINPROGRESS) {
			if (rc == -EINPROGRESS || (o->nheld && br_now_ns() >= o->first_ns + linger)) {
				if ((rc = flush(o)))
					goto out;
			}
			rc = 0;
			br_stats_tick(c, &o->st);
			continue;
		}
		if (rc == -EPIPE) {                      /* the source is over: tell the other side */
			rc = eos(o);
			goto out;
		}
		if (rc < 0) {
			br_err("%s: %s", c->ring, shmring_strerror(rc));
			rc = BR_FAIL;
			goto out;
		}
		if ((rc = add(o, &m)))
			goto out;
		if (o->used + FR_REC >= o->batch_cap && (rc = flush(o)))
			goto out;
		if ((o->st.msgs & 1023) == 0) {
			struct shmring_stats rs;
			if (shmring_stats(o->r, &rs) == 0)
				o->st.lag = rs.used;
		}
		/* after every message: --stats-every is a time, and a steady
		 * stream has no idle timeouts to print them at */
		br_stats_tick(c, &o->st);
	}
	/* SIGTERM: what is batched goes out, then the NATS buffers */
	rc = flush(o);
out:
	if (o->l.nc && !o->l.js)
		natsConnection_FlushTimeout(o->l.nc, 5000);
	if (o->r)
		shmring_close(o->r);      /* held messages go back to the ring */
	if (!c->quiet || c->json)
		br_stats_print(c, &o->st, true);
	br_disconnect(&o->l);
	if (o->has_mark)
		mark_close(&o->mark);
	free(o->buf);
	free(o);
	return rc == OUT_STOPPED ? BR_OK : rc;   /* what was not published stays in the ring */
}
