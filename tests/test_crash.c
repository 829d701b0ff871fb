/* SPDX-License-Identifier: MIT */
/*
 * SIGKILL of the producer and of the consumer mid-stream, in a loop, with
 * a replacement started after each kill.  A ledger outside the ring (shared
 * anonymous memory) records what each producer's send returned for and
 * what the consumers took; at the end it must show, for every producer
 * generation, sequence numbers 0..k-1 exactly once and in order, with
 * k >= what send() confirmed and k <= that + 1 (the in-flight message of a
 * killed producer), generations in order, and no torn message.  The only
 * redelivery allowed is of the message a killed consumer held, and the
 * library must count it.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

#define MAXGEN 4096
#define MSG_MAX 256

struct ledger {
	const char *uri;
	_Atomic int stop;
	_Atomic int prod_ready, cons_ready;  /* the current incarnation holds its role */
	_Atomic uint64_t sent[MAXGEN];     /* per producer generation: sends confirmed */
	_Atomic int killed[MAXGEN];
	_Atomic uint64_t got[MAXGEN];      /* per generation: delivered, once it ended */
	_Atomic uint64_t pending;          /* entry + 1 a consumer holds, 0 none */
	_Atomic uint64_t redeliveries;     /* seen by consumers */
	_Atomic uint64_t last;             /* entry + 1 of the last delivery, 0 none */
	_Atomic uint64_t total;
	bool zc;                           /* producers reserve and commit */
};

static struct ledger *L;
static char uri_buf[160];

static uint64_t entry(uint64_t gen, uint64_t seq) { return gen << 32 | seq; }

static int producer(void *arg)
{
	uint64_t gen = (uint64_t)(uintptr_t)arg;
	struct shmring *r = NULL;
	int rc = shmring_open(L->uri, SHMRING_PRODUCER, NULL, &r);
	if (rc) {
		fprintf(stderr, "producer: open: %s\n", shmring_strerror(rc));
		return 10;
	}
	atomic_store(&L->prod_ready, 1);
	uint8_t buf[MSG_MAX];
	uint64_t rnd = gen * 7919 + 1;
	for (uint64_t seq = 0;; ) {
		if (atomic_load(&L->stop))
			return shmring_shutdown(r) == 0 ? 0 : 11;
		uint32_t len = 8 + (uint32_t)(t_rand(&rnd) % (MSG_MAX - 7));
		uint64_t e = entry(gen, seq);
		memcpy(buf, &e, 8);
		t_fill(buf + 8, len - 8, e);
		if (L->zc) {
			struct shmring_msg m;
			rc = shmring_reserve(r, len, &m, 50 * 1000 * 1000);
			if (rc == 0) {
				memcpy(m.data, buf, len);
				rc = shmring_commit(r, &m);
			}
		} else {
			rc = shmring_send(r, buf, len, 50 * 1000 * 1000);
		}
		if (rc == -ETIMEDOUT)
			continue;
		if (rc)
			return 12;
		seq++;
		/* after the send returned: this many are promised */
		atomic_store(&L->sent[gen], seq);
	}
}

/*
 * Record a delivery and check it against the previous one: within a
 * generation the sequence goes up by one; a new generation starts at 0.
 * One atomic store of `last` commits it, so a consumer killed in here
 * leaves either the old or the new state, and the rest is idempotent.
 */
static void log_append(uint64_t e)
{
	uint64_t last = atomic_load(&L->last);
	if (last == e + 1)
		return;     /* the dead consumer logged it and died before clearing */
	uint64_t g = e >> 32, s = e & 0xffffffffu;
	uint64_t lg = last ? (last - 1) >> 32 : 0, ls = last ? (last - 1) & 0xffffffffu : 0;
	int ok = last ? (g == lg && s == ls + 1) || (g > lg && s == 0) : s == 0;
	if (!ok) {
		fprintf(stderr, "consumer: got gen %lu seq %lu after gen %lu seq %lu%s\n",
			(unsigned long)g, (unsigned long)s, (unsigned long)lg,
			(unsigned long)ls, last ? "" : " (first)");
		_exit(26);
	}
	if (last && g != lg)
		atomic_store(&L->got[lg], ls + 1);   /* generation lg is over */
	atomic_fetch_add(&L->total, 1);              /* display only */
	atomic_store(&L->last, e + 1);
}

static int consumer(void *arg)
{
	(void)arg;
	struct shmring *r = NULL;
	int rc = shmring_open(L->uri, SHMRING_CONSUMER, NULL, &r);
	if (rc) {
		fprintf(stderr, "consumer: open: %s\n", shmring_strerror(rc));
		return 20;
	}
	atomic_store(&L->cons_ready, 1);
	for (;;) {
		struct shmring_msg m;
		rc = shmring_acquire(r, &m, 50 * 1000 * 1000);
		if (rc == -ETIMEDOUT)
			continue;
		uint64_t pend = atomic_load(&L->pending);
		if (rc == -EPIPE) {
			if (pend)
				log_append(pend - 1);
			atomic_store(&L->pending, 0);
			return 0;
		}
		if (rc) {
			fprintf(stderr, "consumer: acquire: %s\n", shmring_strerror(rc));
			return 21;
		}
		uint64_t e;
		if (m.len < 8)
			return 22;
		memcpy(&e, m.data, 8);
		if (!t_check((uint8_t *)m.data + 8, m.len - 8, e))
			return 23;   /* torn */
		if (pend) {
			if (pend - 1 == e)
				atomic_fetch_add(&L->redeliveries, 1);  /* held by the dead one */
			else
				log_append(pend - 1);                  /* it was released */
		}
		atomic_store(&L->pending, e + 1);
		if (shmring_release(r, &m))
			return 24;
		log_append(e);
		atomic_store(&L->pending, 0);
	}
}

/* Both roles held by the current incarnations, and a message delivered
 * since `from`: the ring moves again after the last kill. */
static void wait_progress(uint64_t from)
{
	uint64_t deadline = t_now_ns() + 5000000000ull;
	while (atomic_load(&L->total) <= from || !atomic_load(&L->prod_ready) ||
	       !atomic_load(&L->cons_ready)) {
		cr_assert_lt(t_now_ns(), deadline, "no message flowed within 5 s of a restart");
		usleep(200);
	}
}

/*
 * kills: how many SIGKILLs (one process each), or with `everyone`, how many
 * rounds in which both are killed and nobody maps the ring any more, so
 * the next processes reopen it cold (what a file: ring must survive).
 */
static void torture_in(const char *uri, unsigned kills, uint64_t seed, bool everyone,
		       uint64_t cap, bool zc)
{
	snprintf(uri_buf, sizeof(uri_buf), "%s", uri);
	L = t_shared(sizeof(*L));
	L->uri = uri_buf;
	L->zc = zc;
	struct shmring *own = t_create(uri_buf, cap, MSG_MAX);
	if (everyone)
		shmring_close(own);
	uint64_t gen = 0, rnd = seed;
	unsigned cons_kills = 0, role_kills = 0;
	pid_t prod = t_spawn(producer, (void *)(uintptr_t)gen);
	pid_t cons = t_spawn(consumer, NULL);
	wait_progress(0);
	for (unsigned k = 0; k < kills; k++) {
		usleep(500 + (unsigned)(t_rand(&rnd) % 8000));
		uint64_t before = atomic_load(&L->total);
		if (everyone) {
			/* both, in a random order, the second at once or a bit later */
			pid_t first = t_rand(&rnd) & 1 ? prod : cons;
			kill(first, SIGKILL);
			if (t_rand(&rnd) & 1)
				usleep((unsigned)(t_rand(&rnd) % 300));
			kill(first == prod ? cons : prod, SIGKILL);
			int sp = t_wait(prod), sc = t_wait(cons);
			cr_assert_eq(sp, 128 + SIGKILL, "producer died on its own: status %d", sp);
			cr_assert_eq(sc, 128 + SIGKILL, "consumer died on its own: status %d", sc);
			atomic_store(&L->killed[gen], 1);
			atomic_store(&L->prod_ready, 0);
			atomic_store(&L->cons_ready, 0);
			cr_assert_lt(++gen, MAXGEN);
			cons_kills++;
			role_kills += 2;
			prod = t_spawn(producer, (void *)(uintptr_t)gen);
			cons = t_spawn(consumer, NULL);
		} else if (t_rand(&rnd) & 1) {
			kill(prod, SIGKILL);
			int st = t_wait(prod);
			cr_assert_eq(st, 128 + SIGKILL, "producer died on its own: status %d", st);
			atomic_store(&L->killed[gen], 1);
			atomic_store(&L->prod_ready, 0);
			cr_assert_lt(++gen, MAXGEN);
			role_kills++;
			prod = t_spawn(producer, (void *)(uintptr_t)gen);
		} else {
			kill(cons, SIGKILL);
			int st = t_wait(cons);
			cr_assert_eq(st, 128 + SIGKILL, "consumer died on its own: status %d", st);
			cons_kills++;
			role_kills++;
			atomic_store(&L->cons_ready, 0);
			cons = t_spawn(consumer, NULL);
		}
		wait_progress(before);
	}
	atomic_store(&L->stop, 1);
	cr_assert_eq(t_wait(prod), 0, "last producer");
	cr_assert_eq(t_wait(cons), 0, "last consumer");

	/* the ledger's verdict: order was checked delivery by delivery */
	uint64_t last = atomic_load(&L->last);
	cr_assert_neq(last, 0, "nothing delivered");
	atomic_store(&L->got[(last - 1) >> 32], ((last - 1) & 0xffffffffu) + 1);
	uint64_t total = atomic_load(&L->total);
	for (uint64_t x = 0; x <= gen; x++) {
		uint64_t got = atomic_load(&L->got[x]);
		uint64_t sent = atomic_load(&L->sent[x]);
		cr_assert_geq(got, sent, "gen %lu: %lu delivered, %lu confirmed (lost)",
			      (unsigned long)x, (unsigned long)got, (unsigned long)sent);
		cr_assert_leq(got, sent + (uint64_t)atomic_load(&L->killed[x]),
			      "gen %lu: %lu delivered, %lu confirmed", (unsigned long)x,
			      (unsigned long)got, (unsigned long)sent);
	}
	if (everyone)
		own = t_open(uri_buf, 0);
	struct shmring_stats st;
	cr_assert_eq(shmring_stats(own, &st), 0);
	/* every message counted once as sent and once as received, including
	 * one published or released by a holder killed before it counted it */
	uint64_t published = 0;
	for (uint64_t x = 0; x <= gen; x++)
		published += atomic_load(&L->got[x]);
	cr_assert_eq(st.msgs_sent, published, "msgs_sent %lu, %lu messages published",
		     (unsigned long)st.msgs_sent, (unsigned long)published);
	cr_assert_eq(st.msgs_recv, published, "msgs_recv %lu, %lu messages published",
		     (unsigned long)st.msgs_recv, (unsigned long)published);
	uint64_t seen = atomic_load(&L->redeliveries);
	cr_assert_geq(st.msgs_redelivered, seen, "a redelivery went uncounted");
	cr_assert_leq(st.msgs_redelivered, cons_kills, "more redeliveries than consumer kills");
	cr_assert_eq(st.takeovers, role_kills, "every dead holder's role was taken over: %lu of %u",
		     (unsigned long)st.takeovers, role_kills);
	cr_log_info("crash %s: %u %s (%u consumers killed), %lu messages checked, %lu redelivered",
		    uri_buf, kills, everyone ? "rounds of killing both" : "kills", cons_kills,
		    (unsigned long)total, (unsigned long)st.msgs_redelivered);
	shmring_close(own);
	shmring_unlink(uri_buf);
	t_unshared(L, sizeof(*L));
}

static void torture(const char *uri, unsigned kills, uint64_t seed, bool everyone)
{
	torture_in(uri, kills, seed, everyone, 16384, false);
}

static unsigned crash_kills(void)
{
	const char *n = getenv("SHMRING_CRASH_KILLS");
	return n ? (unsigned)strtoul(n, NULL, 10) : 200;
}

Test(crash, kill_producer_and_consumer_in_a_loop, .timeout = 300)
{
	torture(t_uri("crash"), crash_kills(), 12345, false);
}

/* a ring far larger than what is in flight: producers go back to the
 * start of the area early (warm placement), and consumers holding the
 * record behind such a filler hand the filler back before they die */
Test(crash, big_ring_zero_copy_kills, .timeout = 300)
{
	torture_in(t_uri("crashw"), crash_kills() / 2, 4242, false, 4u << 20, true);
}

static unsigned file_rounds(void)
{
	const char *n = getenv("SHMRING_FILE_ROUNDS");
	return n ? (unsigned)strtoul(n, NULL, 10) : 300;
}

/* file: on the root filesystem: every process killed at a random point,
 * the file reopened cold by new ones, 300 times */
Test(crash, file_ring_kill_everyone_and_reopen, .timeout = 300)
{
	char uri[200];
	snprintf(uri, sizeof(uri), "file:/tmp/%s.ring", t_name("crashf"));
	torture(uri, file_rounds(), 777, true);
}
