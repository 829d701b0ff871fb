/* SPDX-License-Identifier: MIT */
/*
 * pipe:PATH — a named FIFO carrying framed messages.
 *
 * A frame is a 16-byte header, the payload, and an 8-byte trailer:
 *
 *   header  magic (DATA or EOS) | len | tag | check = hash(magic, len, tag)
 *   trailer tag | ~check
 *
 * The tag differs for every frame of a handle (a random nonce plus a
 * counter).  A consumer delivers a frame only when its header checks out AND
 * the trailer found len bytes later repeats the header's tag: a frame cut
 * short — its writer killed in the middle of a frame larger than PIPE_BUF,
 * so that other bytes or the end of the stream follow — is never delivered.
 * The consumer then looks for the next valid header byte by byte (which also
 * lets a new consumer start in the middle of a stream), and counts the loss
 * in msgs_dropped.
 *
 * Roles are open-file-description locks on the FIFO inode (the kernel drops
 * them when the holder dies), taken on the role's own descriptor:
 *   byte 0          consumer, read lock (a read-only descriptor can take no
 *                   write lock): exclusion is lock-then-check with
 *                   F_OFD_GETLK, so of two racing consumers at most one
 *                   stays, and a second consumer gets -ENOTSUP;
 *   byte 1          the only producer, when frames can be larger than
 *                   PIPE_BUF (writes above PIPE_BUF interleave);
 *   bytes 2..65     producers while every frame fits in PIPE_BUF (each
 *                   write is then atomic): up to 64 of them.
 *
 * Opening: a FIFO cannot be opened for writing while nobody has it open for
 * reading (ENXIO).  A producer therefore opens it for reading first, then
 * the write end, and keeps that read end (it never reads from it): its
 * frames wait in the pipe until a consumer comes, like messages in a ring
 * that nobody reads yet, and its writes can never raise SIGPIPE — whatever
 * the process's disposition, and without touching any signal mask, which
 * would cost two system calls per write.  A consumer that leaves is no end
 * of the stream: the producer goes on until the pipe is full, then waits
 * (within its timeout) for the next consumer.
 *
 * A consumer takes from the pipe only what it delivers: a header, then the
 * rest of that frame, never bytes of the next one.  So a consumer that
 * closes leaves every message it did not deliver in the pipe for the next
 * one; one killed loses at most the frame it was taking (or holds, acquired).
 * It opens its end without blocking and waits for data with poll().
 *
 * End of stream: shmring_shutdown sets the sticky bit of the FIFO (a bit
 * that means nothing else on a FIFO and outlives every process; a new FIFO
 * is a new stream), then writes an EOS frame after the data, which wakes a
 * sleeping consumer.  A consumer that finds the pipe empty looks at the bit,
 * then at the pipe once more (everything sent before the shutdown is there
 * by then): so a consumer that comes after the EOS frame was taken, or
 * after every process let the pipe go, drains and gets -EPIPE too.  A
 * producer that may not chmod the FIFO (not its owner) has only the frame.
 * End-of-file once every writer that came since the consumer opened is gone
 * also ends the stream (a forked child may keep a write end open, so
 * end-of-file alone cannot be relied on).
 *
 * Large frames go with vmsplice() from a pool of pages when that is safe
 * (see pipe_pool.c): it moves the pages into the pipe instead of copying them.
 */
#ifndef SHMRING_FALLBACK_PIPE_H
#define SHMRING_FALLBACK_PIPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <unistd.h>

#include "common.h"
#include "../mem/alloc.h"
#include "../sync/lock.h"

#define FR_MAGIC_DATA 0x31445253u       /* "SRD1" in memory order */
#define FR_MAGIC_EOS  0x31455253u       /* "SRE1" */
#define FR_HDR 16u
#define FR_TAIL 8u
#define FR_OVERHEAD (FR_HDR + FR_TAIL)

#define MAX_PIPE_SZ (1u << 30)
#define MAX_MSG_LIMIT (1u << 30)

#define LOCK_CONS 0
#define LOCK_SOLE 1
#define LOCK_MULTI 2
#define MULTI_SLOTS 64

#define HELD_MAX 64                     /* acquired and not yet released */
#define SMALL_FRAME 4096u               /* copied into one write; larger ones are gathered */
#define VMSPLICE_MIN 16384u             /* from here on, vmsplice() pays (docs/backends.md) */
#define IDLE_NS 1000000000ull           /* a frame begun, shutdown and close give up
					   after 1 s of a consumer that reads nothing */
#define SHUT_CHECK_NS 1000000ull        /* a sending producer looks for a shutdown every 1 ms */
#define WAIT_SLICE_NS 20000000ull       /* and every 20 ms while it waits for room */

struct fr_hdr { uint32_t magic, len, tag, check; };
struct fr_tail { uint32_t tag, ncheck; };
_Static_assert(sizeof(struct fr_hdr) == FR_HDR && sizeof(struct fr_tail) == FR_TAIL, "frame layout");

struct fb_handle {
	struct fb_base base;         /* first: fallback/fallback.h */
	pid_t pid;                  /* the opener: a forked child's close writes nothing */
	int opath;                  /* O_PATH: identity; stats of a role-less handle */
	int rfd, wfd;               /* consumer's read end, producer's write end */
	int own_rfd;                /* producer: a read end of its own, never read */
	uint32_t max_msg;
	size_t frame_max;
	uint64_t cap_req;           /* pipe size asked for */
	bool multi;                 /* every frame fits PIPE_BUF: several producers */

	/* producer */
	uint8_t *wbuf;              /* frames are built here; rests of frames wait here */
	size_t wcap;
	const uint8_t *pend;        /* the rest of a frame written in part */
	size_t pend_len;
	int pend_slot;              /* pool slot of that rest, or -1 */
	uint32_t nonce, seq;
	bool shut, broken, eos_sent;
	bool marked;                /* this handle set the FIFO's end-of-stream bit */
	uint64_t next_check;        /* when a sender looks for a shutdown again */
	struct fb_resv resv;
	uint8_t *resv_buf;          /* the reserved frame's start */
	int resv_slot;
	/* vmsplice pool: pages lent to the pipe are written again only once
	 * the pipe no longer holds them (pool_take) */
	uint8_t *pool;
	size_t pool_len, slot_size;
	unsigned nslots, next_slot;
	uint64_t *slot_end;         /* `pushed` after a slot's last byte; 0: never */
	uint64_t pushed;            /* bytes this handle put into the pipe */

	/* consumer */
	uint8_t *rbuf;
	size_t rcap, rpos, rend;    /* [rpos, rend): read from the pipe, not yet parsed */
	bool eof, ended, skipping;
	struct fb_heldq held;

	struct shmring_stats st;    /* this handle's counters */
};

static inline void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* ---- pipe_frame.c ---- */
/* Header and trailer for a frame of len payload bytes (a new tag). */
FB_HIDDEN void pipe_frame_make(struct fb_handle *h, uint32_t magic, uint32_t len,
			       struct fr_hdr *hd, struct fr_tail *t);
/* Header and trailer around len payload bytes at p + FR_HDR. */
FB_HIDDEN void pipe_frame_seal(struct fb_handle *h, uint8_t *p, uint32_t magic, uint32_t len);
/* 1: a whole valid frame at rbuf + off; 0: perhaps one, more bytes needed;
 * -1: no frame starts at off. */
FB_HIDDEN int pipe_frame_at(const struct fb_handle *h, size_t off, struct fr_hdr *out);
/* A random start for a handle's frame tags. */
FB_HIDDEN uint32_t pipe_nonce(void);

/* ---- pipe_pool.c ---- */
/* A pool slot to build a large frame in, for vmsplice, or -1 (copy instead). */
FB_HIDDEN int pipe_pool_take(struct fb_handle *h);

static inline uint8_t *slot_ptr(struct fb_handle *h, int s)
{
	return h->pool + (size_t)s * h->slot_size;
}

/* ---- pipe_send.c ---- */
/* Is the FIFO's end-of-stream bit set?  1, 0 or -errno. */
FB_HIDDEN int pipe_end_marked(int fd);
/* Set the FIFO's end-of-stream bit: 0 or -errno. */
FB_HIDDEN int pipe_mark_end(struct fb_handle *h);
/* Look for a shutdown of the stream (now, or when the next check is due). */
FB_HIDDEN void pipe_check_shut(struct fb_handle *h, bool now);
/* Finish a frame written in part, giving up after IDLE_NS of a consumer
 * that reads nothing. */
FB_HIDDEN int pipe_flush_idle(struct fb_handle *h, uint64_t deadline, bool *waited);
/* The EOS frame, waiting for room until the deadline: 0 or -errno. */
FB_HIDDEN int pipe_put_eos(struct fb_handle *h, uint64_t deadline);
FB_HIDDEN int pipe_op_send(struct shmring *r, const void *msg, size_t len, int64_t timeout_ns);
FB_HIDDEN int pipe_op_reserve(struct shmring *r, size_t len, struct shmring_msg *m,
			      int64_t timeout_ns);
FB_HIDDEN int pipe_op_commit(struct shmring *r, struct shmring_msg *m);
FB_HIDDEN int pipe_op_send_batch(struct shmring *r, const struct iovec *msgs, unsigned n,
				 int64_t timeout_ns);
FB_HIDDEN int pipe_op_shutdown(struct shmring *r);

/* ---- pipe_recv.c ---- */
FB_HIDDEN ssize_t pipe_op_recv(struct shmring *r, void *buf, size_t cap, int64_t timeout_ns);
FB_HIDDEN int pipe_op_acquire(struct shmring *r, struct shmring_msg *m, int64_t timeout_ns);
FB_HIDDEN int pipe_op_release(struct shmring *r, struct shmring_msg *m);
FB_HIDDEN int pipe_op_recv_batch(struct shmring *r, struct iovec *bufs, unsigned n,
				 int64_t timeout_ns);

#endif
