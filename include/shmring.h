/* SPDX-License-Identifier: MIT */
/*
 * shmring — message rings between processes on one Linux machine.
 *
 * Every function returns 0 (or a count / length) on success and a negative
 * errno value on failure; shmring_strerror() describes it.  Nothing is
 * reported through errno alone, nothing prints, exits or aborts.
 *
 * Concurrency (who may call what at the same time):
 *
 *   handle kind     | same handle, two threads | own handle per thread
 *   ----------------+--------------------------+----------------------
 *   SPSC producer   | no                       | one producer at a time
 *   SPSC consumer   | no                       | one consumer at a time
 *   open/close/stats| yes (different handles)  | yes
 *
 * shmring_open() and shmring_close() of different handles may run in any
 * number of threads at once, on the same ring or on different ones.
 */
#ifndef SHMRING_H
#define SHMRING_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SHMRING_VERSION_MAJOR 0
#define SHMRING_VERSION_MINOR 1
#define SHMRING_VERSION_PATCH 0

#if defined(__GNUC__)
#define SHMRING_API __attribute__((visibility("default")))
#define SHMRING_MUST_USE __attribute__((warn_unused_result))
#else
#define SHMRING_API
#define SHMRING_MUST_USE
#endif

struct shmring;                 /* opaque handle */

enum shmring_kind {
	SHMRING_SPSC = 1,        /* one producer, one consumer */
	SHMRING_MPMC = 2,        /* up to 64 producers and 64 consumers, each message to one */
	SHMRING_BCAST = 3,       /* one producer, up to 64 subscribers, each gets every
				    message (shm: and file:; shmring(7)) */
};

struct shmring_opts {           /* all-zero means defaults */
	enum shmring_kind kind;  /* default SHMRING_SPSC */
	uint64_t capacity;       /* data bytes, default 1 MiB; rounded up */
	uint32_t max_msg;        /* largest message, bytes; default capacity/4 */
	uint32_t mode;           /* permission bits on create, default 0600 */
	uint32_t flags;          /* SHMRING_PREFAULT | SHMRING_MLOCK | ... */
	/* MPMC: a live producer or consumer that holds a slot longer than
	 * this many milliseconds is skipped (its commit then fails with
	 * -ECANCELED).  BCAST without SHMRING_OVERWRITE: a live subscriber
	 * that keeps the producer waiting this long is evicted (its next
	 * receive returns -EOVERFLOW).  0 = default 1000, at most 3600000.
	 * Dead holders are recovered at once, whatever this says. */
	uint32_t stall_ms;
};

/* opts.flags */
#define SHMRING_PREFAULT 0x01u  /* populate the mapping's page tables at open */
#define SHMRING_MLOCK    0x02u  /* lock the mapping in RAM (needs RLIMIT_MEMLOCK) */
#define SHMRING_OVERWRITE 0x04u /* BCAST, at creation: the producer never waits; a
				   subscriber that falls a ring behind loses the oldest */
#define SHMRING_FIXED    0x08u  /* SPSC, at creation: every message is exactly max_msg
				   bytes, stored with no header (shm:, file:); shmring(7) */

/* oflags */
#define SHMRING_CREATE   0x01   /* create if missing */
#define SHMRING_EXCL     0x02   /* with CREATE: -EEXIST if present */
#define SHMRING_PRODUCER 0x10   /* this handle sends */
#define SHMRING_CONSUMER 0x20   /* this handle receives */
#define SHMRING_OLDEST   0x40   /* BCAST consumer: start at the oldest message still
				   in the ring, not at the next one sent */

#define SHMRING_FOREVER  (-1)   /* timeout_ns: block until possible */
				/* 0: never block (-EAGAIN); >0: -ETIMEDOUT */

/* Open (and with SHMRING_CREATE create) the ring named by uri:
 * "shm:NAME" or "NAME", "file:PATH", "pipe:PATH", "mq:NAME". */
SHMRING_API SHMRING_MUST_USE
int shmring_open(const char *uri, int oflags,
		 const struct shmring_opts *opts, struct shmring **out);
/* Give up the handle's roles and mapping.  Never fails on a valid handle. */
SHMRING_API int shmring_close(struct shmring *r);
/* Remove the ring's name; processes that have it open keep using it. */
SHMRING_API int shmring_unlink(const char *uri);

/* copying API */
SHMRING_API SHMRING_MUST_USE
int shmring_send(struct shmring *r, const void *msg, size_t len, int64_t timeout_ns);
SHMRING_API SHMRING_MUST_USE
ssize_t shmring_recv(struct shmring *r, void *buf, size_t cap, int64_t timeout_ns);

/* zero-copy API: write and read in place */
struct shmring_msg { void *data; size_t len; uint64_t priv[2]; };
SHMRING_API SHMRING_MUST_USE
int shmring_reserve(struct shmring *r, size_t len, struct shmring_msg *m, int64_t timeout_ns);
SHMRING_API SHMRING_MUST_USE
int shmring_commit(struct shmring *r, struct shmring_msg *m);   /* m->len may shrink first */
SHMRING_API SHMRING_MUST_USE
int shmring_acquire(struct shmring *r, struct shmring_msg *m, int64_t timeout_ns);
SHMRING_API SHMRING_MUST_USE
int shmring_release(struct shmring *r, struct shmring_msg *m);

/* batches: return how many messages moved (>= 1), or -errno */
SHMRING_API SHMRING_MUST_USE
int shmring_send_batch(struct shmring *r, const struct iovec *msgs, unsigned n, int64_t timeout_ns);
SHMRING_API SHMRING_MUST_USE
int shmring_recv_batch(struct shmring *r, struct iovec *bufs, unsigned n, int64_t timeout_ns);

/* producer: end of stream for everyone */
SHMRING_API int shmring_shutdown(struct shmring *r);

/*
 * Counters live in the segment (a monitor process sees them); the geometry
 * fields are the ring's own, after rounding.  Fields may be appended in
 * later versions only in place of `reserved`.
 */
struct shmring_stats {
	uint64_t msgs_sent, bytes_sent;         /* committed by producers */
	uint64_t msgs_recv, bytes_recv;         /* released by consumers */
	uint64_t waits_full;                    /* a send found the ring full and waited */
	uint64_t waits_empty;                   /* a receive found it empty and waited */
	uint64_t futex_wakes;                   /* FUTEX_WAKE calls made */
	uint64_t futex_sleeps;                  /* FUTEX_WAIT calls made */
	uint64_t holes_skipped;                 /* MPMC: claims of dead producers skipped */
	uint64_t msgs_redelivered;              /* held by a dead consumer, delivered again */
	uint64_t msgs_dropped;                  /* lost to a crash (never delivered) */
	uint64_t repairs;                       /* control-plane repairs: a holder died mid-section */
	uint64_t takeovers;                     /* roles taken over from dead holders */
	uint64_t capacity;                      /* data bytes */
	uint64_t used;                          /* bytes queued now */
	uint32_t max_msg;
	uint32_t kind;                          /* enum shmring_kind */
	uint32_t producers, consumers;          /* live participants now */
	uint32_t shut_down;                     /* 1 once shmring_shutdown was called */
	uint32_t unlinked;                      /* 1 if the ring's name is gone (shmring_unlink,
						   gc, or systemd-logind's RemoveIPC) */
	uint64_t stalls_skipped;                /* MPMC: slots of live holders skipped after
						   the stall timeout (opts.stall_ms) */
	uint64_t commits_cancelled;             /* MPMC: late commits refused (-ECANCELED) */
	uint64_t poll_wakes;                    /* doorbells rung: wake-ups of shmring_fd() pollers */
	uint64_t poll_spurious;                 /* shmring_fd() readiness after which a call
						   found nothing to do */
	/* BCAST: a subscriber's handle, its own; a producer's or a monitor's,
	 * the slowest live subscriber's (0 on other kinds) */
	uint64_t lag_msgs;                      /* messages committed it has not received */
	uint64_t lag_bytes;                     /* ring bytes between it and the producer */
	uint64_t msgs_lost;                     /* overwritten or evicted before it read them
						   (a producer or monitor: all subscribers') */
	uint64_t evictions;                     /* times it was evicted for keeping the
						   producer waiting past stall_ms (all: total) */
};
SHMRING_API SHMRING_MUST_USE
int shmring_stats(struct shmring *r, struct shmring_stats *st);
SHMRING_API const char *shmring_strerror(int err);

/* Durability, what a backend can do, spin tuning. */

/*
 * file: rings: make this handle's work durable (msync).  Producer: every
 * record committed so far, then the index that vouches for them; consumer:
 * its released position; a handle without a role: the whole file.  Without
 * it, messages survive any crash of the processes but not a reboot.  On a
 * shm: ring it does nothing and returns 0.
 */
SHMRING_API SHMRING_MUST_USE int shmring_flush(struct shmring *r);

/* What this handle's backend can do, for programs that run on several. */
struct shmring_caps {
	uint32_t flags;                /* SHMRING_CAP_* */
	uint32_t max_producers;        /* live producers at once */
	uint32_t max_consumers;        /* live consumers at once */
	uint32_t max_msg;              /* largest message, bytes */
	uint64_t capacity;             /* bytes (shm:/file:, pipe:), or queue depth x max_msg (mq:) */
	uint64_t reserved[4];
};
#define SHMRING_CAP_ZEROCOPY   0x01u  /* reserve/acquire hand out the ring's own memory */
#define SHMRING_CAP_MPMC       0x02u  /* several producers and consumers at once */
#define SHMRING_CAP_PERSISTENT 0x04u  /* queued messages outlive every process (shm:, file:, mq:) */
#define SHMRING_CAP_DURABLE    0x08u  /* shmring_flush() survives a reboot (file:) */
#define SHMRING_CAP_RECOVERY   0x10u  /* dead holders' roles are taken over, counted */
#define SHMRING_CAP_BLOCKING   0x20u  /* timeouts and SHMRING_FOREVER (all backends) */
#define SHMRING_CAP_POLL       0x40u  /* shmring_fd() (all backends) */
#define SHMRING_CAP_BCAST      0x80u  /* every subscriber receives every message */
#define SHMRING_CAP_FIXED      0x100u /* SHMRING_FIXED ring: every message is max_msg bytes */
SHMRING_API SHMRING_MUST_USE int shmring_caps(struct shmring *r, struct shmring_caps *caps);

/* Bounded spin, in nanoseconds, before a blocking call sleeps on a futex
 * (default 20000; 0 sleeps at once).  Per handle. */
SHMRING_API int shmring_set_spin(struct shmring *r, uint32_t spin_ns);

/* Also use rings owned by `uid` (process-wide; up to 16 uids).  Without it,
 * shmring_open() refuses with -EACCES a ring whose owner is not this
 * process's effective uid, root included.  0, -EINVAL, or -ENOSPC. */
SHMRING_API int shmring_trust_owner(uid_t uid);

/*
 * A descriptor for poll/select/epoll/io_uring: readable when a call of this
 * handle that returned -EAGAIN may now succeed (consumer: a message, or the
 * end of the stream; producer: room for max_msg bytes, or shutdown).  Poll;
 * when readable, call with timeout 0 until -EAGAIN, which re-arms it.
 * Readiness may be spurious; a wake-up is never lost.  Owned by the handle
 * (closed by shmring_close); the same descriptor on every call.  -EPERM for
 * a handle without a role.  shmring_fd(3).
 */
SHMRING_API SHMRING_MUST_USE int shmring_fd(struct shmring *r);

#ifdef __cplusplus
}
#endif
#endif /* SHMRING_H */
