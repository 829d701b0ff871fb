/* SPDX-License-Identifier: MIT */
/*
 * A hostile peer: while producer and consumer processes stream messages
 * with finite timeouts (SPSC 1+1, MPMC 2+2) and reopen their handles every
 * 2 s, a third process maps the segment and writes random words into
 * every region of it -- header, control block, ring state, data -- in
 * storms and drizzles, and now and then rolls the segment back to an
 * earlier snapshot.
 *
 * The legitimate processes may get any error and garbled payloads; they
 * must never die of a signal, never read or write outside their buffers
 * (run under SAN=address), and never return from a call more than
 * OVER_BOUND_NS after its timeout.  The worst overrun is reported.
 *
 *   SHMRING_HOSTILE_SECONDS   how long the peer scribbles (default 30)
 *   SHMRING_HOSTILE_SPARE_LOCK=1   leave the control-plane lock's bytes
 *                             (the first 64 of the control block) alone
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "ring/mpmc.h"
#include "ring/spsc.h"
#include "shm/segment.h"
#include "shm/ctl.h"

#define MS (1000ll * 1000)
#define OVER_BOUND_NS (2000 * MS)      /* past a call's own timeout */
#define OPEN_BOUND_NS (10000 * MS)     /* open and close have no timeout: "never hang" */
#define REOPEN_NS (2000 * MS)
#define MAX_MSG 512u
#define NLEGIT 4

TestSuite(hostile, .timeout = 600);

/* One legitimate process's figures; it alone writes them. */
struct figures {
	uint64_t calls, ok, errs, opens, open_fails, msgs_in, intact;
	uint64_t open_proto, open_busy;    /* refusals: -EPROTO, -EBUSY */
	int64_t worst_over;             /* ns past the timeout, worst call */
	uint64_t over_100ms;            /* calls more than 100 ms past their timeout */
	int64_t worst_open, worst_close;
	char worst_call[24];
	int unexpected;                 /* an error code outside the contract */
};

struct arena;

struct legit {
	struct arena *a;
	int idx, oflags;
};

struct arena {
	_Atomic int stop_peer, stop_legit;
	_Atomic int peer_ready;
	char uri[128], path[160];
	int mpmc;
	int spare_lock;
	uint64_t peer_writes, peer_rollbacks;
	struct figures f[NLEGIT];
	struct legit who[NLEGIT];
};

static void sleep_ns(int64_t ns)
{
	struct timespec ts = { ns / 1000000000, ns % 1000000000 };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static unsigned env_seconds(void)
{
	const char *s = getenv("SHMRING_HOSTILE_SECONDS");
	long v = s ? strtol(s, NULL, 10) : 30;
	return v > 0 && v < 3600 ? (unsigned)v : 30;
}

/* ---- the hostile peer ------------------------------------------------------ */

struct region {
	uint64_t off, len;
};

static uint64_t scribble_value(uint64_t cur, uint64_t *rnd)
{
	uint64_t r = t_rand(rnd);
	switch (r % 6) {
	case 0: return t_rand(rnd);                       /* anything */
	case 1: return r >> 56;                           /* a small number */
	case 2: return cur ^ (1ull << (r >> 58));         /* one bit flipped */
	case 3: return cur + 1 - 2 * ((r >> 8) & 1);      /* one up or down */
	case 4: return cur + ((r >> 16) & 0xffff) * 4096; /* a lap or more on */
	default: return ~0ull >> (r >> 58);               /* large */
	}
}

static int peer_main(void *arg)
{
	struct arena *a = arg;
	int fd = open(a->path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return 10;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return 11;
	size_t size = (size_t)st.st_size;
	uint8_t *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (base == MAP_FAILED)
		return 12;
	const struct seg_hdr *h = (const struct seg_hdr *)base;
	uint64_t data_off = h->data_off;
	const struct region regions[] = {
		{ 0, sizeof(struct seg_hdr) },
		{ SEG_CTL_OFF, sizeof(struct ctl_shared) },
		{ SEG_RING_OFF, a->mpmc ? sizeof(struct mpmc_shared) : sizeof(struct spsc_shared) },
		{ data_off, size - data_off },
	};
	/* the state once everybody is attached: rolled back to now and then */
	sleep_ns(300 * MS);
	uint8_t *snap = malloc(size);
	if (!snap)
		return 13;
	memcpy(snap, base, size);
	atomic_store(&a->peer_ready, 1);
	uint64_t rnd = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	uint64_t writes = 0, rollbacks = 0, next_rollback = t_now_ns() + 1000 * MS;
	/* A scribbled header stops every open (checksum): it is scribbled
	 * in short episodes, so that opens and closes also run while the
	 * rest of the segment is under attack. */
	uint64_t next_hdr = t_now_ns(), hdr_back = 0;
	while (!atomic_load(&a->stop_peer)) {
		unsigned burst = 1 + (unsigned)(t_rand(&rnd) % 8);
		for (unsigned i = 0; i < burst; i++) {
			uint64_t now = t_now_ns();
			unsigned k = 1 + (unsigned)(t_rand(&rnd) % 3);
			if (now >= next_hdr) {
				k = 0;
				hdr_back = now + (t_rand(&rnd) % 50) * MS;
				next_hdr = now + (100 + t_rand(&rnd) % 200) * MS;
			}
			const struct region *g = &regions[k];
			uint64_t off = g->off + (t_rand(&rnd) % (g->len / 4)) * 4;
			if (a->spare_lock && off >= SEG_CTL_OFF && off < SEG_CTL_OFF + 64)
				continue;
			if ((off & 7) == 0 && off + 8 <= g->off + g->len) {
				_Atomic uint64_t *w = (_Atomic uint64_t *)(base + off);
				atomic_store_explicit(w, scribble_value(atomic_load(w), &rnd),
						      memory_order_relaxed);
			} else {
				_Atomic uint32_t *w = (_Atomic uint32_t *)(base + off);
				atomic_store_explicit(w, (uint32_t)scribble_value(atomic_load(w), &rnd),
						      memory_order_relaxed);
			}
			writes++;
		}
		if (hdr_back && t_now_ns() >= hdr_back) {
			memcpy(base, snap, regions[0].len);
			hdr_back = 0;
		}
		if (t_now_ns() >= next_rollback) {
			/* a rollback of every region but the data (the lock
			 * bytes too unless spared) */
			for (unsigned k = 0; k < 3; k++) {
				uint64_t off = regions[k].off, len = regions[k].len;
				if (a->spare_lock && k == 1) {
					off += 64;
					len -= 64;
				}
				memcpy(base + off, snap + off, len);
			}
			rollbacks++;
			next_rollback = t_now_ns() + (500 + t_rand(&rnd) % 1000) * MS;
		}
		/* storms (a burst every 0..200 us) and drizzles (every 0..20 ms)
		 * by turns of a second: ring state that a storm leaves garbled
		 * until the next rollback, and calls that mostly work */
		bool storm = (t_now_ns() / (1000 * MS)) % 2 == 0;
		sleep_ns((int64_t)(t_rand(&rnd) % (storm ? 200 : 20000)) * 1000);
	}
	a->peer_writes = writes;
	a->peer_rollbacks = rollbacks;
	free(snap);
	munmap(base, size);
	return 0;
}

/* ---- the legitimate processes ------------------------------------------------- */

/* Everything a call may answer while a peer scribbles. */
static bool expected(int rc)
{
	switch (-rc) {
	case EAGAIN: case ETIMEDOUT: case EPROTO: case EBUSY: case EMSGSIZE: case EPIPE:
	case ECANCELED: case EINVAL: case EINPROGRESS: case EUSERS: case ENOSPC:
		return true;
	}
	return rc >= 0;
}

static const int64_t timeouts[] = { 0, 1 * MS, 10 * MS, 50 * MS, 200 * MS };

static void account(struct figures *f, const char *what, int64_t timeout, uint64_t t0, int64_t rc)
{
	int64_t over = (int64_t)(t_now_ns() - t0) - timeout;
	f->calls++;
	if (rc >= 0)
		f->ok++;
	else
		f->errs++;
	if (!expected((int)rc) && !f->unexpected)
		f->unexpected = (int)rc;
	if (over > 100 * MS)
		f->over_100ms++;
	if (over > f->worst_over) {
		f->worst_over = over;
		snprintf(f->worst_call, sizeof(f->worst_call), "%s", what);
	}
}

/* A message: 8-byte key, then t_fill(key) bytes; a garbled one is counted. */
static void check_msg(struct figures *f, const uint8_t *p, size_t len)
{
	f->msgs_in++;
	uint64_t key;
	if (len >= 8) {
		memcpy(&key, p, 8);
		if (t_check(p + 8, len - 8, key))
			f->intact++;
	}
}

static void produce(struct shmring *r, struct figures *f, uint64_t *rnd, uint64_t *seq)
{
	static uint8_t msg[8][MAX_MSG + 64];
	int64_t to = timeouts[t_rand(rnd) % 5];
	size_t len = 8 + t_rand(rnd) % (MAX_MSG + 16 - 8);    /* now and then too long */
	uint64_t key = (*seq)++;
	memcpy(msg[0], &key, 8);
	t_fill(msg[0] + 8, len - 8, key);
	uint64_t t0 = t_now_ns();
	switch (t_rand(rnd) % 3) {
	case 0:
		account(f, "send", to, t0, shmring_send(r, msg[0], len, to));
		break;
	case 1: {
		struct shmring_msg m;
		int rc = shmring_reserve(r, len, &m, to);
		account(f, "reserve", to, t0, rc);
		if (rc == 0) {
			memcpy(m.data, msg[0], len);
			t0 = t_now_ns();
			account(f, "commit", 0, t0, shmring_commit(r, &m));
		}
		break;
	}
	default: {
		struct iovec iov[8];
		unsigned n = 1 + (unsigned)(t_rand(rnd) % 8);
		for (unsigned i = 0; i < n; i++) {
			size_t l = 8 + i * 40;
			key = (*seq)++;
			memcpy(msg[i], &key, 8);
			t_fill(msg[i] + 8, l - 8, key);
			iov[i] = (struct iovec){ msg[i], l };
		}
		t0 = t_now_ns();
		account(f, "send_batch", to, t0, shmring_send_batch(r, iov, n, to));
		break;
	}
	}
}

static void consume(struct shmring *r, struct figures *f, uint64_t *rnd)
{
	int64_t to = timeouts[t_rand(rnd) % 5];
	uint64_t t0 = t_now_ns();
	switch (t_rand(rnd) % 3) {
	case 0: {
		/* a heap buffer of exactly its size: ASan sees any overrun */
		size_t cap = 1 + t_rand(rnd) % MAX_MSG;
		uint8_t *buf = malloc(cap);
		ssize_t n = shmring_recv(r, buf, cap, to);
		account(f, "recv", to, t0, n);
		if (n > (ssize_t)cap && !f->unexpected)
			f->unexpected = -ERANGE;
		if (n > 0 && n <= (ssize_t)cap)
			check_msg(f, buf, (size_t)n);
		free(buf);
		break;
	}
	case 1: {
		struct shmring_msg m;
		int rc = shmring_acquire(r, &m, to);
		account(f, "acquire", to, t0, rc);
		if (rc == 0) {
			if (m.len > MAX_MSG && !f->unexpected)
				f->unexpected = -ERANGE;
			else
				check_msg(f, m.data, m.len);   /* reads every byte */
			t0 = t_now_ns();
			account(f, "release", 0, t0, shmring_release(r, &m));
		}
		break;
	}
	default: {
		struct iovec iov[8];
		uint8_t *bufs[8];
		for (unsigned i = 0; i < 8; i++) {
			bufs[i] = malloc(MAX_MSG);
			iov[i] = (struct iovec){ bufs[i], MAX_MSG };
		}
		int n = shmring_recv_batch(r, iov, 8, to);
		account(f, "recv_batch", to, t0, n);
		for (int i = 0; i < n && i < 8; i++) {
			if (iov[i].iov_len > MAX_MSG) {
				if (!f->unexpected)
					f->unexpected = -ERANGE;
				break;
			}
			check_msg(f, bufs[i], iov[i].iov_len);
		}
		for (unsigned i = 0; i < 8; i++)
			free(bufs[i]);
		break;
	}
	}
}

static void timed_close(struct figures *f, struct shmring *r)
{
	uint64_t t0 = t_now_ns();
	(void)shmring_close(r);
	int64_t el = (int64_t)(t_now_ns() - t0);
	if (el > f->worst_close)
		f->worst_close = el;
}

static int legit_main(void *arg)
{
	const struct legit *me = arg;
	struct arena *a = me->a;
	int idx = me->idx, oflags = me->oflags;
	struct figures *f = &a->f[idx];
	uint64_t rnd = 0x2545f4914f6cdd1dull * (uint64_t)(idx + 1) ^ (uint64_t)getpid();
	uint64_t seq = (uint64_t)idx << 48;
	struct shmring *r = NULL;
	uint64_t opened = 0;
	while (!atomic_load(&a->stop_legit)) {
		if (r && t_now_ns() - opened >= REOPEN_NS) {
			timed_close(f, r);
			r = NULL;
		}
		if (!r) {
			uint64_t t0 = t_now_ns();
			int rc = shmring_open(a->uri, oflags, NULL, &r);
			int64_t el = (int64_t)(t_now_ns() - t0);
			if (el > f->worst_open)
				f->worst_open = el;
			f->opens++;
			opened = t_now_ns();
			if (rc < 0) {
				r = NULL;
				f->open_fails++;
				f->open_proto += rc == -EPROTO;
				f->open_busy += rc == -EBUSY;
				if (!expected(rc) && rc != -ENOENT && !f->unexpected)
					f->unexpected = rc;
				sleep_ns(10 * MS);
				continue;
			}
		}
		if (oflags & SHMRING_PRODUCER)
			produce(r, f, &rnd, &seq);
		else
			consume(r, f, &rnd);
	}
	if (r)
		timed_close(f, r);
	return 0;
}

/* ---- the test ---------------------------------------------------------------- */

static void hostile_run(const char *tag, bool mpmc)
{
	struct arena *a = t_shared(sizeof(*a));
	const char *name = t_name(tag);
	snprintf(a->uri, sizeof(a->uri), "shm:%s", name);
	snprintf(a->path, sizeof(a->path), "/dev/shm/%s", name);
	a->mpmc = mpmc;
	const char *spare = getenv("SHMRING_HOSTILE_SPARE_LOCK");
	a->spare_lock = spare && *spare && strcmp(spare, "0") != 0;
	struct shmring_opts o = { .kind = mpmc ? SHMRING_MPMC : SHMRING_SPSC,
				  .capacity = 64 * 1024, .max_msg = MAX_MSG, .stall_ms = 100 };
	struct shmring *c = NULL;
	int rc = shmring_open(a->uri, SHMRING_CREATE | SHMRING_EXCL, &o, &c);
	cr_assert_eq(rc, 0, "create: %s", shmring_strerror(rc));
	shmring_close(c);

	unsigned n = mpmc ? 4 : 2;
	pid_t kids[NLEGIT];
	for (unsigned i = 0; i < n; i++) {
		a->who[i] = (struct legit){ a, (int)i,
					    i < n / 2 ? SHMRING_PRODUCER : SHMRING_CONSUMER };
		kids[i] = t_spawn(legit_main, &a->who[i]);
	}
	pid_t peer = t_spawn(peer_main, a);
	unsigned secs = env_seconds();
	sleep_ns((int64_t)secs * 1000 * MS + 300 * MS);
	atomic_store(&a->stop_peer, 1);
	int peer_rc = t_wait(peer);
	atomic_store(&a->stop_legit, 1);
	int status[NLEGIT];
	for (unsigned i = 0; i < n; i++)
		status[i] = t_wait(kids[i]);
	unlink(a->path);

	int64_t worst = 0, worst_open = 0, worst_close = 0;
	uint64_t calls = 0, ok = 0, opens = 0, open_fails = 0, msgs = 0, intact = 0, slow = 0;
	uint64_t proto = 0, busy = 0;
	const char *worst_call = "-";
	for (unsigned i = 0; i < n; i++) {
		struct figures *f = &a->f[i];
		calls += f->calls;
		ok += f->ok;
		opens += f->opens;
		open_fails += f->open_fails;
		msgs += f->msgs_in;
		intact += f->intact;
		slow += f->over_100ms;
		proto += f->open_proto;
		busy += f->open_busy;
		if (f->worst_over > worst) {
			worst = f->worst_over;
			worst_call = f->worst_call;
		}
		if (f->worst_open > worst_open)
			worst_open = f->worst_open;
		if (f->worst_close > worst_close)
			worst_close = f->worst_close;
	}
	char line[512];
	snprintf(line, sizeof(line),
		 "hostile %s: %u s, %llu peer writes, %llu rollbacks%s; %llu calls (%llu ok), "
		 "%llu messages in (%llu intact), %llu opens (%llu refused: %llu -EPROTO, %llu -EBUSY); worst overrun past "
		 "a timeout %.1f ms (%s; %llu calls over 100 ms), worst open %.1f ms, worst close %.1f ms",
		 mpmc ? "MPMC 2+2" : "SPSC 1+1", secs, (unsigned long long)a->peer_writes,
		 (unsigned long long)a->peer_rollbacks, a->spare_lock ? ", lock bytes spared" : "",
		 (unsigned long long)calls, (unsigned long long)ok, (unsigned long long)msgs,
		 (unsigned long long)intact, (unsigned long long)opens,
		 (unsigned long long)open_fails, (unsigned long long)proto, (unsigned long long)busy,
		 (double)worst / 1e6, worst_call,
		 (unsigned long long)slow, (double)worst_open / 1e6, (double)worst_close / 1e6);
	cr_log_info("%s", line);
	fprintf(stderr, "%s\n", line);

	cr_assert_eq(peer_rc, 0, "the peer itself failed: %d", peer_rc);
	for (unsigned i = 0; i < n; i++) {
		cr_expect_eq(status[i], 0, "%s %u ended with %d (128+N: killed by signal N)",
			     a->who[i].oflags == SHMRING_PRODUCER ? "producer" : "consumer", i,
			     status[i]);
		cr_expect_eq(a->f[i].unexpected, 0, "process %u got %s", i,
			     shmring_strerror(a->f[i].unexpected));
	}
	cr_expect_lt(worst, OVER_BOUND_NS, "a call ran %.1f ms past its timeout (%s)",
		     (double)worst / 1e6, worst_call);
	cr_expect_lt(worst_open, OPEN_BOUND_NS, "an open took %.1f ms", (double)worst_open / 1e6);
	cr_expect_lt(worst_close, OPEN_BOUND_NS, "a close took %.1f ms",
		     (double)worst_close / 1e6);
	cr_expect_gt(calls, 0);
	t_unshared(a, sizeof(*a));
}

Test(hostile, spsc_peer_scribbles_every_region) { hostile_run("hsp", false); }
Test(hostile, mpmc_peer_scribbles_every_region) { hostile_run("hmp", true); }
