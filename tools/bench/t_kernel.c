/* SPDX-License-Identifier: MIT */
/*
 * shmring-bench: what a program uses without shmring -- kernel transports,
 * shared buffers signalled by eventfd or by a bare futex -- and the two
 * physical floors the goals are measured against.
 *
 *   pipe            anonymous pipe (1 MiB buffer if allowed), write/read
 *   unix-stream     UNIX stream socketpair, same framing (fixed sizes)
 *   unix-seqpacket  UNIX seqpacket socketpair: one send/recv per message
 *   mqueue          POSIX message queue, mq_send/mq_receive
 *   eventfd-shm     slots in a POSIX shm segment; every message signalled
 *                   by an eventfd write, space returned by another eventfd
 *   futex-shm       the same slots with head/tail indices; a side sleeps
 *                   on a bare futex at once when it must wait (no spin) and
 *                   is woken only when it sleeps
 *   futex-pingpong  a bare futex ping-pong: every round trip wakes two
 *                   sleeping processes: the floor of a blocking round trip
 *   cacheline       ping-pong of two 64-byte lines, spinning: the floor of
 *                   any round trip between the two CPUs
 *   cacheline-rec   the same with 64 B messages behind an 8-byte header
 *                   word that is the flag, in 72-byte records advancing
 *                   through 64 KiB: two lines each way, the floor of any
 *                   ring that frames messages in band (as shmring does)
 *   bare-frame      four frame slots with spin flags, written and read in
 *                   place: the floor of a large-frame hand-off
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static int g_pipe_size;                 /* F_SETPIPE_SZ, probed once; 0: default */

/* ---------------------------------------------------------------------- */
/* fd transports: pipe, unix-stream, unix-seqpacket                         */

struct fd_priv {
	int fd;
};
END_PRIV(FD, struct fd_priv)

static void probe_pipe(void)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC) != 0)
		fail_errno("pipe2");
	g_pipe_size = fcntl(p[1], F_SETPIPE_SZ, (int)MIB) >= 0 ? (int)MIB : 0;
	close_fd(p[0]);
	close_fd(p[1]);
}

static int create_pipe(struct chan *ch, const struct geom *g)
{
	(void)g;
	if (pipe2(ch->fd, O_CLOEXEC) != 0)
		return -errno;
	if (g_pipe_size > 0 && fcntl(ch->fd[1], F_SETPIPE_SZ, g_pipe_size) < 0)
		return -errno;
	return 0;
}

static int create_sp(struct chan *ch, int type)
{
	return socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, ch->fd) == 0 ? 0 : -errno;
}

static int create_stream(struct chan *ch, const struct geom *g)
{ (void)g; return create_sp(ch, SOCK_STREAM); }
static int create_seqpacket(struct chan *ch, const struct geom *g)
{ (void)g; return create_sp(ch, SOCK_SEQPACKET); }

static void fd_destroy(struct chan *ch, struct shmring_stats *st)
{
	(void)st;
	for (int i = 0; i < 4; i++) {
		if (ch->fd[i] >= 0)
			close(ch->fd[i]);
		ch->fd[i] = -1;
	}
}

/* pipe: fd[0] reads, fd[1] writes; socket pairs: fd[1] reads, fd[0] writes */
static void pipe_attach(struct end *e, struct chan *ch)
{
	FD(e)->fd = claim_fd(ch, e->dir == END_TX ? 1 : 0);
	e->buf = alloc_buf(e->size);
}

static void sp_attach(struct end *e, struct chan *ch)
{
	FD(e)->fd = claim_fd(ch, e->dir == END_TX ? 0 : 1);
	e->buf = alloc_buf(e->size);
}

static void fd_detach(struct end *e)
{
	close_fd(FD(e)->fd);
	free(e->buf);
}

static inline void fd_tx(struct end *e, unsigned k)
{
	for (unsigned i = 0; i < k; i++) {
		stamp(e->buf, e->size, next_word(e));
		write_full(FD(e)->fd, e->buf, e->size);
	}
}

static inline unsigned fd_rx(struct end *e)
{
	read_full(FD(e)->fd, e->buf, e->size);
	check_msg(e, e->buf, e->size);
	return 1;
}

BENCH_LOOPS(fd)

static inline void seqpacket_tx(struct end *e, unsigned k)
{
	for (unsigned i = 0; i < k; i++) {
		stamp(e->buf, e->size, next_word(e));
		ssize_t n;
		while ((n = send(FD(e)->fd, e->buf, e->size, 0)) < 0 && errno == EINTR)
			;
		if (n < 0)
			fail_errno("send (seqpacket)");
		if ((size_t)n != e->size)
			fail("send (seqpacket): %zd of %zu bytes", n, e->size);
	}
}

static inline unsigned seqpacket_rx(struct end *e)
{
	ssize_t n;

	/* MSG_TRUNC: the real length, so a bigger message is caught */
	while ((n = recv(FD(e)->fd, e->buf, e->size, MSG_TRUNC)) < 0 && errno == EINTR)
		;
	if (n < 0)
		fail_errno("recv (seqpacket)");
	if (n == 0)
		fail("recv (seqpacket): the peer closed");
	check_msg(e, e->buf, (size_t)n);
	return 1;
}

BENCH_LOOPS(seqpacket)

/* ---------------------------------------------------------------------- */
/* POSIX message queue                                                      */

struct mq_priv {
	mqd_t q;
};
END_PRIV(MQ, struct mq_priv)

const char *mq_skip(size_t size)
{
	return (long)size > g_mq_msgsize_max ? "above fs.mqueue.msgsize_max" : NULL;
}

static int create_mq(struct chan *ch, const struct geom *g)
{
	struct mq_attr a;
	mqd_t q;

	memset(&a, 0, sizeof(a));
	a.mq_maxmsg = g_mq_msg_max < 64 ? g_mq_msg_max : 64;
	a.mq_msgsize = (long)g->size;
	snprintf(ch->name, sizeof(ch->name), "/shmring-bench-%ld-%u-%u",
		 (long)getpid(), bench_case_no(), g->index);
	q = mq_open(ch->name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &a);
	if (q == (mqd_t)-1) {
		int err = errno;
		ch->name[0] = '\0';
		return -err;
	}
	mq_close(q);
	return 0;
}

static void mq_destroy(struct chan *ch, struct shmring_stats *st)
{
	(void)st;
	if (ch->name[0] && mq_unlink(ch->name) != 0 && errno != ENOENT)
		fprintf(stderr, "shmring-bench: mq_unlink %s: %s\n", ch->name, strerror(errno));
	ch->name[0] = '\0';
}

static void mq_attach(struct end *e, struct chan *ch)
{
	MQ(e)->q = mq_open(ch->name, (e->dir == END_TX ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
	if (MQ(e)->q == (mqd_t)-1)
		fail_errno("mq_open");
	e->buf = alloc_buf(e->size);
}

static void mq_detach(struct end *e)
{
	if (mq_close(MQ(e)->q) != 0)
		fail_errno("mq_close");
	free(e->buf);
}

static inline void mq_tx(struct end *e, unsigned k)
{
	for (unsigned i = 0; i < k; i++) {
		stamp(e->buf, e->size, next_word(e));
		while (mq_send(MQ(e)->q, (const char *)e->buf, e->size, 0) != 0)
			if (errno != EINTR)
				fail_errno("mq_send");
	}
}

static inline unsigned mq_rx(struct end *e)
{
	ssize_t n;

	while ((n = mq_receive(MQ(e)->q, (char *)e->buf, e->size, NULL)) < 0)
		if (errno != EINTR)
			fail_errno("mq_receive");
	check_msg(e, e->buf, (size_t)n);
	return 1;
}

BENCH_LOOPS(mq)

/* ---------------------------------------------------------------------- */
/* shared slots in a POSIX shm segment                                      */

/* most slots of a channel (bare-frame-64m: a flag each in the header page) */
#define BARE_MAX 256

/* header page of the slot transports; slots follow at 4096 */
struct slot_hdr {
	_Alignas(CACHELINE) atomic_uint head;           /* futex-shm: written by the producer */
	_Alignas(CACHELINE) atomic_uint tail;           /* futex-shm: written by the consumer */
	_Alignas(CACHELINE) atomic_uint cons_sleeping;  /* futex-shm: the consumer sleeps on head */
	_Alignas(CACHELINE) atomic_uint prod_sleeping;  /* futex-shm: the producer sleeps on tail */
	_Alignas(CACHELINE) atomic_uint flag[BARE_MAX];  /* bare-frame: 1 = slot full */
};
_Static_assert(sizeof(struct slot_hdr) <= 4096, "slot header fits its page");

struct slot_priv {
	struct slot_hdr *hdr;
	unsigned char *slots;
	size_t stride;
	unsigned nslots;
	unsigned pos;                   /* next slot to write or read */
	unsigned cached;                /* futex-shm: the other side's index as last seen */
	uint64_t credit;                /* eventfd: free slots / ready messages known */
	uint64_t owed;                  /* eventfd: slots consumed, not yet returned */
	int efd_data, efd_space;
};
END_PRIV(SL, struct slot_priv)

static size_t slot_stride(size_t size)
{
	return (size + 4095) & ~(size_t)4095;
}

/* as many slots as fit `bytes`, 4 to BARE_MAX (like a ring of that memory) */
static unsigned slots_in(size_t bytes, size_t size)
{
	size_t n = bytes / slot_stride(size);
	return n < 4 ? 4 : n > BARE_MAX ? BARE_MAX : (unsigned)n;
}

static unsigned slot_count(size_t size)
{
	return slots_in(MIB, size);
}

static int create_slots(struct chan *ch, const struct geom *g, unsigned nslots)
{
	ch->u[0] = nslots;
	ch->u[1] = slot_stride(g->size);
	shmseg_create(ch, 4096 + nslots * ch->u[1]);
	return 0;
}

static int create_futex_shm(struct chan *ch, const struct geom *g)
{
	return create_slots(ch, g, slot_count(g->size));
}

static int create_bare(struct chan *ch, const struct geom *g)
{
	return create_slots(ch, g, 4);
}

/* the slots of a 64 MiB ring (at most BARE_MAX): a backlog that big */
static int create_bare_64m(struct chan *ch, const struct geom *g)
{
	return create_slots(ch, g, slots_in(64 * MIB, g->size));
}

static int create_line(struct chan *ch, const struct geom *g)
{
	return create_slots(ch, g, 1);
}

static int create_eventfd(struct chan *ch, const struct geom *g)
{
	ch->fd[0] = eventfd(0, EFD_CLOEXEC);
	ch->fd[1] = eventfd(0, EFD_CLOEXEC);
	if (ch->fd[0] < 0 || ch->fd[1] < 0)
		return -errno;
	return create_slots(ch, g, slot_count(g->size));
}

static void slots_destroy(struct chan *ch, struct shmring_stats *st)
{
	fd_destroy(ch, st);
	shmseg_destroy(ch);
}

static void slots_attach(struct end *e, struct chan *ch)
{
	struct slot_priv *s = SL(e);

	s->hdr = shmseg_attach(ch);
	s->slots = (unsigned char *)s->hdr + 4096;
	s->nslots = (unsigned)ch->u[0];
	s->stride = ch->u[1];
	s->efd_data = s->efd_space = -1;
	/* the eventfd sides both need both: each process has its own copy */
	if (ch->fd[0] >= 0 || ch->fd[1] >= 0) {
		s->efd_data = claim_fd(ch, 0);
		s->efd_space = claim_fd(ch, 1);
	}
	if (e->dir == END_TX)
		s->credit = s->nslots;
	e->buf = alloc_buf(e->size);
}

static void slots_detach(struct end *e)
{
	struct slot_priv *s = SL(e);

	close_fd(s->efd_data);
	close_fd(s->efd_space);
	shmseg_detach(s->hdr, e->ch);
	free(e->buf);
}

static inline unsigned char *slot_at(struct slot_priv *s, unsigned pos)
{
	return s->slots + (size_t)(pos % s->nslots) * s->stride;
}

static uint64_t efd_read(int fd)
{
	uint64_t v;
	ssize_t n;

	while ((n = read(fd, &v, sizeof(v))) < 0 && errno == EINTR)
		;
	if (n != (ssize_t)sizeof(v))
		fail_errno("read (eventfd)");
	return v;
}

static void efd_write(int fd, uint64_t v)
{
	ssize_t n;

	while ((n = write(fd, &v, sizeof(v))) < 0 && errno == EINTR)
		;
	if (n != (ssize_t)sizeof(v))
		fail_errno("write (eventfd)");
}

/* eventfd-shm: the eventfd read/write are the synchronisation (the kernel
 * takes a lock on both sides); the fences say so for the C11 reader */
static inline void efd_tx(struct end *e, unsigned k)
{
	struct slot_priv *s = SL(e);

	for (unsigned i = 0; i < k; i++) {
		if (s->credit == 0)
			s->credit = efd_read(s->efd_space);
		atomic_thread_fence(memory_order_acquire);
		stamp(e->buf, e->size, next_word(e));
		memcpy(slot_at(s, s->pos++), e->buf, e->size);
		s->credit--;
		atomic_thread_fence(memory_order_release);
		efd_write(s->efd_data, 1);
	}
}

static inline unsigned efd_rx(struct end *e)
{
	struct slot_priv *s = SL(e);

	if (s->credit == 0)
		s->credit = efd_read(s->efd_data);
	atomic_thread_fence(memory_order_acquire);
	memcpy(e->buf, slot_at(s, s->pos++), e->size);
	check_msg(e, e->buf, e->size);
	s->credit--;
	s->owed++;
	if (s->credit == 0) {           /* all we were told of is read: return the slots */
		atomic_thread_fence(memory_order_release);
		efd_write(s->efd_space, s->owed);
		s->owed = 0;
	}
	return 1;
}

BENCH_LOOPS(efd)

/* futex-shm */
static void futex_wait(atomic_uint *addr, unsigned val)
{
	/* shared between processes: no FUTEX_PRIVATE_FLAG */
	if (syscall(SYS_futex, addr, FUTEX_WAIT, val, NULL, NULL, 0) != 0 &&
	    errno != EAGAIN && errno != EINTR)
		fail_errno("futex wait");
}

static void futex_wake(atomic_uint *addr)
{
	if (syscall(SYS_futex, addr, FUTEX_WAKE, 1, NULL, NULL, 0) < 0)
		fail_errno("futex wake");
}

/* Sleeper and waker are a Dekker pair: the sleeper stores its flag, then
 * loads the index; the waker stores the index, then loads the flag (all
 * seq_cst), so one of them sees the other's store and no wake-up is lost. */
static inline void fx_tx(struct end *e, unsigned k)
{
	struct slot_priv *s = SL(e);
	struct slot_hdr *h = s->hdr;

	for (unsigned i = 0; i < k; i++) {
		while (s->pos - s->cached == s->nslots) {
			/* acquire: pairs with the consumer's release of tail; its
			 * reads of the slot are done before we overwrite it */
			s->cached = atomic_load_explicit(&h->tail, memory_order_acquire);
			if (s->pos - s->cached != s->nslots)
				break;
			atomic_store(&h->prod_sleeping, 1);
			s->cached = atomic_load(&h->tail);
			if (s->pos - s->cached == s->nslots)
				futex_wait(&h->tail, s->cached);
			atomic_store_explicit(&h->prod_sleeping, 0, memory_order_relaxed);
		}
		stamp(e->buf, e->size, next_word(e));
		memcpy(slot_at(s, s->pos), e->buf, e->size);
		s->pos++;
		/* seq_cst: publishes the slot (release) and orders the store
		 * before the load of cons_sleeping (Dekker) */
		atomic_store(&h->head, s->pos);
		if (atomic_load(&h->cons_sleeping))
			futex_wake(&h->head);
	}
}

static inline unsigned fx_rx(struct end *e)
{
	struct slot_priv *s = SL(e);
	struct slot_hdr *h = s->hdr;

	while (s->pos == s->cached) {
		/* acquire: pairs with the producer's store of head */
		s->cached = atomic_load_explicit(&h->head, memory_order_acquire);
		if (s->pos != s->cached)
			break;
		atomic_store(&h->cons_sleeping, 1);
		s->cached = atomic_load(&h->head);
		if (s->pos == s->cached)
			futex_wait(&h->head, s->cached);
		atomic_store_explicit(&h->cons_sleeping, 0, memory_order_relaxed);
	}
	memcpy(e->buf, slot_at(s, s->pos), e->size);
	check_msg(e, e->buf, e->size);
	s->pos++;
	atomic_store(&h->tail, s->pos);         /* seq_cst: as in fx_tx */
	if (atomic_load(&h->prod_sleeping))
		futex_wake(&h->tail);
	return 1;
}

BENCH_LOOPS(fx)

/* futex-pingpong: one slot, its index is the futex; the receiver sleeps at
 * once and the sender always wakes it: a bare sleep/wake round trip */
static inline void fpp_tx(struct end *e, unsigned k)
{
	struct slot_priv *s = SL(e);

	for (unsigned i = 0; i < k; i++) {
		stamp(e->buf, e->size, next_word(e));
		memcpy(s->slots, e->buf, e->size);
		/* release: pairs with the acquire load in fpp_rx */
		atomic_store_explicit(&s->hdr->head, (unsigned)e->tx_seq, memory_order_release);
		futex_wake(&s->hdr->head);
	}
}

static inline unsigned fpp_rx(struct end *e)
{
	struct slot_priv *s = SL(e);
	unsigned want = (unsigned)e->next[0], v;

	/* acquire: pairs with the release store in fpp_tx */
	while ((v = atomic_load_explicit(&s->hdr->head, memory_order_acquire)) != want)
		futex_wait(&s->hdr->head, v);
	memcpy(e->buf, s->slots, e->size);
	check_msg(e, e->buf, e->size);
	return 1;
}

BENCH_LOOPS(fpp)

/* cacheline: the message is the line itself; its first word (the
 * producer's word) is written last and is the flag */
static inline void line_tx(struct end *e, unsigned k)
{
	struct slot_priv *s = SL(e);
	unsigned char *p = s->slots;

	for (unsigned i = 0; i < k; i++) {
		uint64_t w = next_word(e);
		memset(p + 8, (int)(w & 0xff), CACHELINE - 16);
		store64(p + CACHELINE - 8, w);
		/* release: pairs with the acquire load in line_rx; the line is
		 * complete once its first word is */
		atomic_store_explicit((_Atomic uint64_t *)(void *)p, w, memory_order_release);
	}
}

static inline unsigned line_rx(struct end *e)
{
	struct slot_priv *s = SL(e);
	/* acquire: pairs with the release store in line_tx; the sender
	 * writes the line again only after we answer */
	if (atomic_load_explicit((_Atomic uint64_t *)(void *)s->slots, memory_order_acquire) !=
	    e->next[0])
		return 0;
	check_msg(e, s->slots, CACHELINE);
	return 1;
}

BENCH_LOOPS(line)

/* cacheline-rec: a 64 B payload after its header word, which is written
 * last and is the flag; records follow each other through the slot area
 * (one in flight, so both sides simply start over at its beginning), and
 * the word after a record is zeroed before it is published */
#define REC_HDR 8u

static inline unsigned char *rec_at(struct slot_priv *s, size_t size)
{
	if ((size_t)s->pos + REC_HDR + size + REC_HDR > (size_t)s->nslots * s->stride)
		s->pos = 0;
	return s->slots + s->pos;
}

static inline void rec_tx(struct end *e, unsigned k)
{
	struct slot_priv *s = SL(e);

	for (unsigned i = 0; i < k; i++) {
		unsigned char *p = rec_at(s, e->size);
		uint64_t w = next_word(e);
		memset(p + REC_HDR + 8, (int)(w & 0xff), e->size - 16);
		stamp(p + REC_HDR, e->size, w);
		/* relaxed: ordered before the receiver looks by the release below */
		atomic_store_explicit((_Atomic uint64_t *)(void *)(p + REC_HDR + e->size), 0,
				      memory_order_relaxed);
		/* release: pairs with the acquire load in rec_rx */
		atomic_store_explicit((_Atomic uint64_t *)(void *)p, w, memory_order_release);
		s->pos += (unsigned)(REC_HDR + e->size);
	}
}

static inline unsigned rec_rx(struct end *e)
{
	struct slot_priv *s = SL(e);
	unsigned char *p = rec_at(s, e->size);
	/* acquire: pairs with the release store in rec_tx */
	if (atomic_load_explicit((_Atomic uint64_t *)(void *)p, memory_order_acquire) !=
	    e->next[0])
		return 0;
	check_msg(e, p + REC_HDR, e->size);
	s->pos += (unsigned)(REC_HDR + e->size);
	return 1;
}

BENCH_LOOPS(rec)

static int create_rec(struct chan *ch, const struct geom *g)
{
	return create_slots(ch, g, 16);   /* 16 pages: 64 KiB of records */
}

/* bare-frame: four slots (bare-frame-64m: more), a flag each */
static inline void bare_tx(struct end *e, unsigned k)
{
	struct slot_priv *s = SL(e);

	for (unsigned i = 0; i < k; i++) {
		atomic_uint *full = &s->hdr->flag[s->pos % s->nslots];
		unsigned spins = 0;
		/* acquire: pairs with the consumer's release of 0 in bare_rx; its
		 * reads of the previous frame are done before we overwrite it */
		while (atomic_load_explicit(full, memory_order_acquire) != 0) {
			e->full++;
			relax(&spins);
		}
		fill_frame(slot_at(s, s->pos++), e->size, next_word(e));
		/* release: pairs with the consumer's acquire in bare_rx */
		atomic_store_explicit(full, 1, memory_order_release);
	}
}

static inline unsigned bare_rx(struct end *e)
{
	struct slot_priv *s = SL(e);
	atomic_uint *full = &s->hdr->flag[s->pos % s->nslots];

	/* acquire: pairs with the producer's release of 1 in bare_tx */
	if (atomic_load_explicit(full, memory_order_acquire) == 0)
		return 0;
	check_msg(e, slot_at(s, s->pos++), e->size);
	/* release: pairs with the producer's acquire in bare_tx */
	atomic_store_explicit(full, 0, memory_order_release);
	return 1;
}

BENCH_LOOPS(bare)

/* ---------------------------------------------------------------------- */

#define K(nm, fam, note, maxsz, fl, create, destroy, attach, detach, loops, skip, setup) \
	{ nm, fam, note, 1, 1, 1, 0, maxsz, fl, create, destroy, attach, detach,        \
	  LOOPS(loops), skip, setup, NULL }
#define TL (T_TPUT | T_LAT)

const struct transport bench_kernel_transports[] = {
	K("pipe", "kernel", "anonymous pipe (1 MiB buffer if allowed), fixed-size write/read",
	  0, TL, create_pipe, fd_destroy, pipe_attach, fd_detach, fd, NULL, probe_pipe),
	K("unix-stream", "kernel", "UNIX stream socketpair, default buffers, same framing",
	  0, TL, create_stream, fd_destroy, sp_attach, fd_detach, fd, NULL, NULL),
	K("unix-seqpacket", "kernel", "UNIX seqpacket socketpair, one send/recv per message",
	  64 * KIB, TL, create_seqpacket, fd_destroy, sp_attach, fd_detach, seqpacket, NULL, NULL),
	K("mqueue", "kernel", "POSIX message queue, mq_send/mq_receive",
	  0, TL, create_mq, mq_destroy, mq_attach, mq_detach, mq, mq_skip, NULL),
	K("eventfd-shm", "kernel", "slots in POSIX shm, an eventfd write per message",
	  0, TL, create_eventfd, slots_destroy, slots_attach, slots_detach, efd, NULL, NULL),
	K("futex-shm", "kernel", "slots in POSIX shm, bare futex when a side must wait (no spin)",
	  0, TL, create_futex_shm, slots_destroy, slots_attach, slots_detach, fx, NULL, NULL),
	K("futex-pingpong", "floor", "floor of a blocking round trip: two sleeping processes, futex",
	  KIB, T_LAT, create_line, slots_destroy, slots_attach, slots_detach, fpp, NULL, NULL),
	{ "cacheline", "floor", "floor of a round trip: ping-pong of two 64-byte lines, spinning",
	  1, 1, 1, CACHELINE, CACHELINE, T_LAT | T_POLLS, create_line, slots_destroy, slots_attach,
	  slots_detach, LOOPS(line), NULL, NULL, NULL },
	{ "cacheline-rec", "floor", "cacheline with 64 B messages behind an 8 B header word: 2 lines each way",
	  1, 1, 1, CACHELINE, CACHELINE, T_LAT | T_POLLS, create_rec, slots_destroy, slots_attach,
	  slots_detach, LOOPS(rec), NULL, NULL, NULL },
	{ "bare-frame", "floor", "floor of a frame hand-off: 4 slots with spin flags, in place",
	  1, 1, 1, KIB, 0, T_TPUT | T_POLLS, create_bare, slots_destroy, slots_attach,
	  slots_detach, LOOPS(bare), NULL, NULL, NULL },
	{ "bare-frame-64m", "floor", "bare-frame with the slots of a 64 MiB ring: the floor of a "
	  "full big ring", 1, 1, 1, KIB, 0, T_TPUT | T_POLLS, create_bare_64m, slots_destroy,
	  slots_attach, slots_detach, LOOPS(bare), NULL, NULL, NULL },
};
const unsigned bench_kernel_count =
	sizeof(bench_kernel_transports) / sizeof(bench_kernel_transports[0]);
