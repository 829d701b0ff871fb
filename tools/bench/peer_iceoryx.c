/* SPDX-License-Identifier: MIT */
/*
 * shmring-bench peer: iceoryx 2.0 (Debian iceoryx, libiceoryx-binding-c-dev),
 * compiled in only when the C binding's headers are installed.
 *
 * iceoryx needs its broker: the bench starts its own iox-roudi (monitoring
 * off, a mempool for every message size of the run, from a config file in
 * /tmp) before the first iceoryx case and stops it at exit.  Only one RouDi
 * can run on a machine: if another one is running, the iceoryx rows say so.
 *
 * Each channel is a publisher/subscriber pair on its own service.  The
 * publisher loans a chunk, writes the message into it and publishes it
 * (zero-copy, like shmring-zc); the subscriber takes the chunk, checks it
 * in place and releases it.  Lossless: the publisher waits for a slow
 * subscriber (WAIT_FOR_CONSUMER / BLOCK_PRODUCER), history 0; both sides
 * wait until they are connected before the first message.  The queue holds
 * 256 messages, so for frames the mempool runs out first (24 chunks of
 * 1 MiB, 12 of 8 MiB) and the publisher spins on its loan, as a shmring
 * producer spins on a full ring -- rather than in iceoryx's blocking
 * publish, which sleeps.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <iceoryx_binding_c/chunk.h>
#include <iceoryx_binding_c/enums.h>
#include <iceoryx_binding_c/log.h>
#include <iceoryx_binding_c/publisher.h>
#include <iceoryx_binding_c/runtime.h>
#include <iceoryx_binding_c/subscriber.h>
#include <iceoryx_binding_c/types.h>

static pid_t g_roudi = -1;
static char g_config[96], g_log[96];
static const char *g_down;              /* why iceoryx cannot run, or NULL */
static unsigned g_ends;                 /* ends this process holds open */

struct iox_priv {
	iox_pub_storage_t pub_storage;
	iox_sub_storage_t sub_storage;
	iox_pub_t pub;
	iox_sub_t sub;
};
END_PRIV(P, struct iox_priv)

/* ---------------------------------------------------------------------- */
/* RouDi                                                                    */

static void roudi_stop(void)
{
	if (g_roudi > 0) {
		int st;
		kill(g_roudi, SIGTERM);
		for (int i = 0; i < 500 && waitpid(g_roudi, &st, WNOHANG) == 0; i++)
			usleep(10000);
		if (waitpid(g_roudi, &st, WNOHANG) == 0) {
			kill(g_roudi, SIGKILL);
			(void)waitpid(g_roudi, &st, 0);
		}
		g_roudi = -1;
	}
	if (g_config[0])
		unlink(g_config);
	if (g_log[0] && !g_down)        /* kept when RouDi failed: it says why */
		unlink(g_log);
	g_config[0] = g_log[0] = '\0';
}

static bool write_config(void)
{
	static const struct { unsigned long size, count; } pools[] = {
		{ 64, 1024 }, { 256, 1024 }, { 1024, 1024 }, { 65536, 600 },
		{ 1048576, 24 }, { 8388608, 12 },
	};
	FILE *f;

	snprintf(g_config, sizeof(g_config), "/tmp/shmring-bench-roudi-%ld.toml", (long)getpid());
	f = fopen(g_config, "w");
	if (!f)
		return false;
	fprintf(f, "[general]\nversion = 1\n\n[[segment]]\n");
	for (size_t i = 0; i < sizeof(pools) / sizeof(pools[0]); i++)
		fprintf(f, "\n[[segment.mempool]]\nsize = %lu\ncount = %lu\n", pools[i].size,
			pools[i].count);
	return fclose(f) == 0;
}

static bool log_says(const char *what)
{
	FILE *f = fopen(g_log, "r");
	char line[512];
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, what) != NULL;
	fclose(f);
	return found;
}

/* start iox-roudi, its output to a log file, and wait until it says it is
 * ready (10 s at most) */
static void roudi_start(void)
{
	int st;

	if (!write_config()) {
		g_down = "n/a (cannot write the RouDi config in /tmp)";
		return;
	}
	snprintf(g_log, sizeof(g_log), "/tmp/shmring-bench-roudi-%ld.log", (long)getpid());
	fflush(stdout);
	fflush(stderr);
	g_roudi = fork();
	if (g_roudi < 0)
		fail_errno("fork");
	if (g_roudi == 0) {
		int fd = open(g_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		/* RouDi goes when the bench goes, even if the bench is killed */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
			_exit(126);
		execlp("iox-roudi", "iox-roudi", "-c", g_config, "-m", "off", "-l", "info",
		       (char *)NULL);
		_exit(127);
	}
	for (uint64_t deadline = now_ns() + 10000000000ull; now_ns() < deadline;) {
		if (log_says("ready for clients"))
			return;
		if (waitpid(g_roudi, &st, WNOHANG) == g_roudi) {
			g_roudi = -1;
			break;
		}
		usleep(10000);
	}
	g_down = log_says("lock") || log_says("already") ?
		 "n/a (another iox-roudi runs on this machine)" :
		 "n/a (iox-roudi did not start: see /tmp/shmring-bench-roudi-PID.log)";
	roudi_stop();
}

static const char *iox_skip(size_t size)
{
	(void)size;
	if (g_roudi < 0 && !g_down)
		roudi_start();
	return g_down;
}

/* ---------------------------------------------------------------------- */
/* channels                                                                 */

static int iox_create(struct chan *ch, const struct geom *g)
{
	if (g_down)
		return -ENOTSUP;
	/* the service: unique per run, case and direction */
	snprintf(ch->name, sizeof(ch->name), "%ld-%u", (long)getpid(), bench_case_no());
	ch->u[0] = g->index;
	return 0;
}

static void iox_destroy(struct chan *ch, struct shmring_stats *st)
{
	(void)st;
	ch->name[0] = '\0';
}


static void iox_attach(struct end *e, struct chan *ch)
{
	struct iox_priv *p = P(e);
	char event[16];

	if (g_ends++ == 0) {
		char name[64];
		snprintf(name, sizeof(name), "shmring-bench-%ld", (long)getpid());
		/* Fatal: a loan that finds the mempool empty (the bench's
		 * back-pressure with frames, see the top) is logged at Error,
		 * two lines on stderr per failed loan; the bench checks every
		 * return code itself */
		iox_set_loglevel(Iceoryx_LogLevel_Fatal);
		iox_runtime_init(name);
	}
	snprintf(event, sizeof(event), "ch%u", (unsigned)ch->u[0]);
	uint64_t deadline = now_ns() + 10000000000ull;
	if (e->dir == END_TX) {
		iox_pub_options_t o;
		iox_pub_options_init(&o);
		o.historyCapacity = 0;
		o.subscriberTooSlowPolicy = ConsumerTooSlowPolicy_WAIT_FOR_CONSUMER;
		p->pub = iox_pub_init(&p->pub_storage, "shmring-bench", ch->name, event, &o);
		while (!iox_pub_has_subscribers(p->pub)) {
			if (now_ns() > deadline)
				fail("iceoryx: no subscriber after 10 s");
			usleep(1000);
		}
	} else {
		iox_sub_options_t o;
		iox_sub_options_init(&o);
		o.queueCapacity = 256;         /* the chunks run out first */
		o.historyRequest = 0;
		o.queueFullPolicy = QueueFullPolicy_BLOCK_PRODUCER;
		p->sub = iox_sub_init(&p->sub_storage, "shmring-bench", ch->name, event, &o);
		while (iox_sub_get_subscription_state(p->sub) != SubscribeState_SUBSCRIBED) {
			if (now_ns() > deadline)
				fail("iceoryx: not subscribed after 10 s");
			usleep(1000);
		}
	}
}

static void iox_detach(struct end *e)
{
	struct iox_priv *p = P(e);

	if (e->dir == END_TX) {
		iox_pub_deinit(p->pub);
	} else {
		iox_sub_release_queued_chunks(p->sub);
		iox_sub_deinit(p->sub);
	}
	if (--g_ends == 0)
		iox_runtime_shutdown();
}

/* ---------------------------------------------------------------------- */
/* zero-copy: loan, write in place, publish; take, read in place, release   */

static inline void iox_tx(struct end *e, unsigned k)
{
	iox_pub_t pub = P(e)->pub;

	for (unsigned i = 0; i < k; i++) {
		void *chunk;
		unsigned spins = 0;
		enum iox_AllocationResult rc;

		uint64_t since = 0, tries = 0;
		while ((rc = iox_pub_loan_chunk(pub, &chunk, (uint32_t)e->size)) ==
		       AllocationResult_RUNNING_OUT_OF_CHUNKS) {
			e->full++;
			relax(&spins);
			/* the consumer frees chunks within microseconds; ten
			 * seconds without one is a leak or a stall in iceoryx */
			if ((++tries & 0xfffu) == 0) {
				uint64_t t = now_ns();
				if (!since)
					since = t;
				else if (t - since > 10000000000ull)
					fail("iceoryx: no free %zu-byte chunk for 10 s", e->size);
			}
		}
		if (rc != AllocationResult_SUCCESS)
			fail("iox_pub_loan_chunk (%zu B): error %d", e->size, (int)rc);
		fill_frame(chunk, e->size, next_word(e));
		iox_pub_publish_chunk(pub, chunk);
	}
}

static inline unsigned iox_rx(struct end *e)
{
	iox_sub_t sub = P(e)->sub;
	const void *chunk;
	enum iox_ChunkReceiveResult rc = iox_sub_take_chunk(sub, &chunk);

	if (rc == ChunkReceiveResult_NO_CHUNK_AVAILABLE)
		return 0;
	if (rc != ChunkReceiveResult_SUCCESS)
		fail("iox_sub_take_chunk: error %d", (int)rc);
	check_msg(e, chunk, e->size);
	iox_sub_release_chunk(sub, chunk);
	return 1;
}

BENCH_LOOPS(iox)

const struct transport bench_iceoryx_transports[] = {
	{ "iceoryx", "iceoryx", "iceoryx 2.0 publish/subscribe, loan/publish + take/release, in place",
	  1, 1, 1, 8, 0, T_TPUT | T_LAT | T_POLLS, iox_create, iox_destroy, iox_attach, iox_detach,
	  LOOPS(iox), iox_skip, NULL, roudi_stop },
	/* every subscriber takes every chunk: the broadcast ring's peer */
	{ "iceoryx-x3", "iceoryx", "iceoryx 2.0 publish/subscribe, 1 publisher x 3 subscribers, "
	  "in place", 1, 3, 1, 8 * MIB, 0, T_TPUT | T_POLLS | T_BCAST, iox_create, iox_destroy,
	  iox_attach, iox_detach, LOOPS(iox), iox_skip, NULL, roudi_stop },
};
const unsigned bench_iceoryx_count =
	sizeof(bench_iceoryx_transports) / sizeof(bench_iceoryx_transports[0]);
