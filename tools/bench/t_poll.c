/* SPDX-License-Identifier: MIT */
/*
 * shmring-bench: waiting in an event loop.
 *
 *   shmring-epoll     shm: SPSC; the consumer receives with timeout 0 until
 *                     -EAGAIN (which arms shmring_fd()), then sleeps in
 *                     epoll_wait on that descriptor; the producer sends
 *                     with SHMRING_FOREVER.  A round trip uses one ring
 *                     each way, so each side is asleep in epoll_wait when
 *                     the other sends.
 *   eventfd-pingpong  floor of a wake-up round trip through a descriptor:
 *                     a message slot in shm and an eventfd each way; the
 *                     receiver sleeps in read() on its eventfd, the sender
 *                     copies the message and writes the eventfd
 *   eventfd-epoll     the same, the receiver sleeping in epoll_wait on the
 *                     eventfd before it reads it: what epoll itself adds
 */
#include "bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* a receiving end's epoll set of one descriptor, level-triggered */
static int ep_open(int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (ep < 0)
		fail_errno("epoll_create1");
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
		fail_errno("epoll_ctl");
	return ep;
}

/* sleep until the one descriptor of the set is readable */
static void ep_wait(int ep)
{
	struct epoll_event ev;
	int n;

	while ((n = epoll_wait(ep, &ev, 1, -1)) < 0 && errno == EINTR)
		;
	if (n < 0)
		fail_errno("epoll_wait");
}

/* ---------------------------------------------------------------------- */
/* shmring-epoll                                                            */

struct ep_priv {
	struct sr_priv sr;              /* first: shmring-block's attach fills it */
	int ep;                         /* receiving end: epoll set; else -1 */
};
END_PRIV(EP, struct ep_priv)

/* shmring-block's rings (t_shmring.c): the same ring, the same ends;
 * only how the consumer waits differs */
static const struct transport *block_t(void)
{
	static const struct transport *t;

	for (unsigned i = 0; !t && i < bench_shmring_count; i++)
		if (strcmp(bench_shmring_transports[i].name, "shmring-block") == 0)
			t = &bench_shmring_transports[i];
	if (!t)
		fail("shmring-epoll: shmring-block's rings are not built in");
	return t;
}

/* a ring whose backend hands out a descriptor: -ENOTSUP ("n/a") if not */
static int create_epoll(struct chan *ch, const struct geom *g)
{
	struct shmring_caps caps;
	int rc = block_t()->create(ch, g);

	if (rc < 0)
		return rc;
	rc = shmring_caps(ch->ring, &caps);
	if (rc < 0 || !(caps.flags & SHMRING_CAP_POLL)) {
		block_t()->destroy(ch, NULL);
		return rc < 0 ? rc : -ENOTSUP;
	}
	return 0;
}

static void epoll_destroy(struct chan *ch, struct shmring_stats *st)
{
	block_t()->destroy(ch, st);
}

static void epoll_attach(struct end *e, struct chan *ch)
{
	block_t()->attach(e, ch);
	EP(e)->ep = -1;
	if (e->dir == END_RX) {
		int fd = shmring_fd(EP(e)->sr.r);
		if (fd < 0)
			fail_rc("shmring_fd", fd);
		EP(e)->ep = ep_open(fd);
	}
}

static void epoll_detach(struct end *e)
{
	close_fd(EP(e)->ep);
	block_t()->detach(e);
}

static inline void ep_tx(struct end *e, unsigned k)
{
	for (unsigned i = 0; i < k; i++) {
		stamp(e->buf, e->size, next_word(e));
		int rc = shmring_send(EP(e)->sr.r, e->buf, e->size, SHMRING_FOREVER);
		if (rc < 0)
			fail_rc("shmring_send", rc);
	}
}

/* the event loop's consumer: timeout 0 until -EAGAIN, which arms the
 * descriptor; then epoll_wait (counted in e->empty) and look again */
static inline unsigned ep_rx(struct end *e)
{
	for (;;) {
		ssize_t n = shmring_recv(EP(e)->sr.r, e->buf, e->size, 0);
		if (n >= 0) {
			check_msg(e, e->buf, (size_t)n);
			return 1;
		}
		if (n != -EAGAIN)
			fail_rc("shmring_recv", n);
		e->empty++;
		ep_wait(EP(e)->ep);
	}
}

BENCH_LOOPS(ep)

/* ---------------------------------------------------------------------- */
/* eventfd-pingpong, eventfd-epoll: one slot and one eventfd per direction  */

struct efp_priv {
	unsigned char *slot;            /* the channel's shm page */
	int efd;                        /* blocking eventfd, written by the sender */
	int ep;                         /* eventfd-epoll receiver: epoll set; else -1 */
};
END_PRIV(EFP, struct efp_priv)

static int create_efp(struct chan *ch, const struct geom *g)
{
	(void)g;
	ch->fd[0] = eventfd(0, EFD_CLOEXEC);
	if (ch->fd[0] < 0)
		return -errno;
	shmseg_create(ch, 4096);        /* sizes up to 1 KiB */
	return 0;
}

static void efp_destroy(struct chan *ch, struct shmring_stats *st)
{
	(void)st;
	if (ch->fd[0] >= 0)
		close(ch->fd[0]);
	ch->fd[0] = -1;
	shmseg_destroy(ch);
}

static void efp_attach(struct end *e, struct chan *ch)
{
	EFP(e)->slot = shmseg_attach(ch);
	EFP(e)->efd = claim_fd(ch, 0);
	EFP(e)->ep = -1;
	e->buf = alloc_buf(e->size);
}

static void efp_attach_epoll(struct end *e, struct chan *ch)
{
	efp_attach(e, ch);
	if (e->dir == END_RX)
		EFP(e)->ep = ep_open(EFP(e)->efd);
}

static void efp_detach(struct end *e)
{
	close_fd(EFP(e)->ep);
	close_fd(EFP(e)->efd);
	shmseg_detach(EFP(e)->slot, e->ch);
	free(e->buf);
}

/* the eventfd write and read are the synchronisation (the kernel locks
 * the eventfd on both sides); the fences say so for the C11 reader */
static inline void efp_tx(struct end *e, unsigned k)
{
	uint64_t one = 1;

	for (unsigned i = 0; i < k; i++) {
		stamp(e->buf, e->size, next_word(e));
		memcpy(EFP(e)->slot, e->buf, e->size);
		atomic_thread_fence(memory_order_release);
		while (write(EFP(e)->efd, &one, sizeof(one)) != (ssize_t)sizeof(one))
			if (errno != EINTR)
				fail_errno("write (eventfd)");
	}
}

static inline unsigned efp_rx(struct end *e)
{
	uint64_t v;

	if (EFP(e)->ep >= 0)
		ep_wait(EFP(e)->ep);
	while (read(EFP(e)->efd, &v, sizeof(v)) != (ssize_t)sizeof(v))
		if (errno != EINTR)
			fail_errno("read (eventfd)");
	atomic_thread_fence(memory_order_acquire);
	memcpy(e->buf, EFP(e)->slot, e->size);
	check_msg(e, e->buf, e->size);
	return 1;
}

BENCH_LOOPS(efp)

/* ---------------------------------------------------------------------- */

const struct transport bench_poll_transports[] = {
	{ "shmring-epoll", "shmring",
	  "shm: SPSC, consumer: timeout 0 until -EAGAIN, then epoll_wait on shmring_fd()",
	  1, 1, 1, 0, 64 * KIB, T_TPUT | T_LAT | T_SHMRING | T_FDWAIT, create_epoll,
	  epoll_destroy, epoll_attach, epoll_detach, LOOPS(ep), NULL, NULL, NULL },
};
const unsigned bench_poll_count =
	sizeof(bench_poll_transports) / sizeof(bench_poll_transports[0]);

const struct transport bench_poll_floor_transports[] = {
	{ "eventfd-pingpong", "floor",
	  "floor of a wake-up through a descriptor: sleeping in read() on an eventfd",
	  1, 1, 1, 0, KIB, T_LAT, create_efp, efp_destroy, efp_attach, efp_detach,
	  LOOPS(efp), NULL, NULL, NULL },
	{ "eventfd-epoll", "floor",
	  "eventfd-pingpong, sleeping in epoll_wait on the eventfd, then read()",
	  1, 1, 1, 0, KIB, T_LAT, create_efp, efp_destroy, efp_attach_epoll, efp_detach,
	  LOOPS(efp), NULL, NULL, NULL },
};
const unsigned bench_poll_floor_count =
	sizeof(bench_poll_floor_transports) / sizeof(bench_poll_floor_transports[0]);
