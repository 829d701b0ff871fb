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
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

#define MAXGEN 4096
#define MAXLOG (1u << 22)
#define MSG_MAX 256

struct ledger {
	const char *uri;
	_Atomic int stop;
	_Atomic int prod_ready, cons_ready;  /* the current incarnation holds its role */
	_Atomic uint64_t sent[MAXGEN];     /* per producer generation: sends confirmed */
	_Atomic int killed[MAXGEN];
	_Atomic uint64_t pending;          /* entry + 1 a consumer holds, 0 none */
	_Atomic uint64_t redeliveries;     /* seen by consumers */
	_Atomic uint64_t log_n;
	_Atomic uint64_t log[MAXLOG];      /* gen << 32 | seq, in delivery order */
};

static struct ledger *L;
static char uri_buf[160];

static uint64_t entry(uint64_t gen, uint64_t seq) { return gen << 32 | seq; }

static int producer(void *arg)
{
	uint64_t gen = (uint64_t)(uintptr_t)arg;
	struct shmring *r = NULL;
	int rc = shmring_open(L->uri, SHMRING_PRODUCER, NULL, &r);
	if (rc)
		return 10;
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
		rc = shmring_send(r, buf, len, 50 * 1000 * 1000);
		if (rc == -ETIMEDOUT)
			continue;
		if (rc)
			return 12;
		seq++;
		/* after the send returned: this many are promised */
		atomic_store(&L->sent[gen], seq);
	}
}

static void log_append(uint64_t e)
{
	uint64_t n = atomic_load(&L->log_n);
	if (n > 0 && atomic_load(&L->log[n - 1]) == e)
		return;     /* the dead consumer logged it and died before clearing */
	atomic_store(&L->log[n], e);
	atomic_store(&L->log_n, n + 1);
}

static int consumer(void *arg)
{
	(void)arg;
	struct shmring *r = NULL;
	int rc = shmring_open(L->uri, SHMRING_CONSUMER, NULL, &r);
	if (rc)
		return 20;
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
		if (rc)
			return 21;
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
	while (atomic_load(&L->log_n) <= from || !atomic_load(&L->prod_ready) ||
	       !atomic_load(&L->cons_ready)) {
		cr_assert_lt(t_now_ns(), deadline, "no message flowed within 5 s of a restart");
		usleep(200);
	}
}

static void torture(unsigned kills, uint64_t seed)
{
	snprintf(uri_buf, sizeof(uri_buf), "%s", t_uri("crash"));
	L = t_shared(sizeof(*L));
	L->uri = uri_buf;
	struct shmring *own = t_create(uri_buf, 16384, MSG_MAX);
	uint64_t gen = 0, rnd = seed;
	unsigned cons_kills = 0;
	pid_t prod = t_spawn(producer, (void *)(uintptr_t)gen);
	pid_t cons = t_spawn(consumer, NULL);
	wait_progress(0);
	for (unsigned k = 0; k < kills; k++) {
		usleep(500 + (unsigned)(t_rand(&rnd) % 8000));
		uint64_t before = atomic_load(&L->log_n);
		if (t_rand(&rnd) & 1) {
			kill(prod, SIGKILL);
			cr_assert_eq(t_wait(prod), 128 + SIGKILL, "producer died on its own");
			atomic_store(&L->killed[gen], 1);
			atomic_store(&L->prod_ready, 0);
			cr_assert_lt(++gen, MAXGEN);
			prod = t_spawn(producer, (void *)(uintptr_t)gen);
		} else {
			kill(cons, SIGKILL);
			cr_assert_eq(t_wait(cons), 128 + SIGKILL, "consumer died on its own");
			cons_kills++;
			atomic_store(&L->cons_ready, 0);
			cons = t_spawn(consumer, NULL);
		}
		wait_progress(before);
	}
	atomic_store(&L->stop, 1);
	cr_assert_eq(t_wait(prod), 0, "last producer");
	cr_assert_eq(t_wait(cons), 0, "last consumer");

	/* the ledger's verdict */
	uint64_t n = atomic_load(&L->log_n);
	uint64_t next_seq = 0, cur_gen = 0, total = 0;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t e = atomic_load(&L->log[i]);
		uint64_t g = e >> 32, s = e & 0xffffffffu;
		if (g != cur_gen) {
			cr_assert_gt(g, cur_gen, "generation %lu after %lu", (unsigned long)g,
				     (unsigned long)cur_gen);
			for (uint64_t x = cur_gen; x < g; x++) {
				uint64_t got = x == cur_gen ? next_seq : 0;
				uint64_t sent = atomic_load(&L->sent[x]);
				cr_assert_geq(got, sent, "gen %lu: %lu delivered, %lu confirmed",
					      (unsigned long)x, (unsigned long)got, (unsigned long)sent);
				cr_assert_leq(got, sent + (uint64_t)atomic_load(&L->killed[x]),
					      "gen %lu: more delivered than sent", (unsigned long)x);
			}
			cur_gen = g;
			next_seq = 0;
		}
		cr_assert_eq(s, next_seq, "gen %lu: seq %lu where %lu was due (lost, duplicated or reordered)",
			     (unsigned long)g, (unsigned long)s, (unsigned long)next_seq);
		next_seq++;
		total++;
	}
	for (uint64_t x = cur_gen; x <= gen; x++) {
		uint64_t got = x == cur_gen ? next_seq : 0;
		uint64_t sent = atomic_load(&L->sent[x]);
		cr_assert_geq(got, sent, "gen %lu: %lu delivered, %lu confirmed", (unsigned long)x,
			      (unsigned long)got, (unsigned long)sent);
		cr_assert_leq(got, sent + (uint64_t)atomic_load(&L->killed[x]));
	}
	struct shmring_stats st;
	cr_assert_eq(shmring_stats(own, &st), 0);
	uint64_t seen = atomic_load(&L->redeliveries);
	cr_assert_geq(st.msgs_redelivered, seen, "a redelivery went uncounted");
	cr_assert_leq(st.msgs_redelivered, cons_kills, "more redeliveries than consumer kills");
	cr_assert_eq(st.takeovers, kills, "every dead holder's role was taken over: %lu of %u",
		     (unsigned long)st.takeovers, kills);
	cr_log_info("crash: %u kills (%u consumers), %lu messages checked, %lu redelivered",
		    kills, cons_kills, (unsigned long)total, (unsigned long)st.msgs_redelivered);
	shmring_close(own);
	shmring_unlink(uri_buf);
	t_unshared(L, sizeof(*L));
}

static unsigned crash_kills(void)
{
	const char *n = getenv("SHMRING_CRASH_KILLS");
	return n ? (unsigned)strtoul(n, NULL, 10) : 200;
}

Test(crash, kill_producer_and_consumer_in_a_loop, .timeout = 300)
{
	torture(crash_kills(), 12345);
}
