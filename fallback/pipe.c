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
 * (see pool_take): it moves the pages into the pipe instead of copying them.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common.h"
#include "../mem/alloc.h"
#include "../sync/lock.h"
#include "../api/pathat.h"
#include "../api/trust.h"

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
	uint32_t roles;
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

/* ---- frames ------------------------------------------------------------ */

static inline uint32_t mix32(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x85ebca6bu;
	x ^= x >> 13;
	x *= 0xc2b2ae35u;
	x ^= x >> 16;
	return x;
}

static inline uint32_t fr_check(uint32_t magic, uint32_t len, uint32_t tag)
{
	return mix32(magic ^ mix32(len ^ mix32(tag + 0x9e3779b9u)));
}

static void fr_make(struct fb_handle *h, uint32_t magic, uint32_t len, struct fr_hdr *hd,
		    struct fr_tail *t)
{
	uint32_t tag = h->nonce + h->seq++ * 0x9e3779b9u;
	*hd = (struct fr_hdr){ magic, len, tag, fr_check(magic, len, tag) };
	*t = (struct fr_tail){ tag, ~hd->check };
}

/* Header and trailer around len payload bytes at p + FR_HDR. */
static void fr_seal(struct fb_handle *h, uint8_t *p, uint32_t magic, uint32_t len)
{
	struct fr_hdr hd;
	struct fr_tail t;
	fr_make(h, magic, len, &hd, &t);
	memcpy(p, &hd, sizeof(hd));
	memcpy(p + FR_HDR + len, &t, sizeof(t));
}

/* 1: a whole valid frame at off; 0: perhaps one, more bytes needed;
 * -1: no frame starts at off. */
static int fr_at(const struct fb_handle *h, size_t off, struct fr_hdr *out)
{
	const uint8_t *p = h->rbuf + off;
	size_t avail = h->rend - off;
	if (avail < FR_HDR) {
		uint32_t md = FR_MAGIC_DATA, me = FR_MAGIC_EOS;
		size_t k = avail < 4 ? avail : 4;
		return memcmp(p, &md, k) == 0 || memcmp(p, &me, k) == 0 ? 0 : -1;
	}
	struct fr_hdr hd;
	memcpy(&hd, p, sizeof(hd));
	if (hd.magic != FR_MAGIC_DATA && hd.magic != FR_MAGIC_EOS)
		return -1;
	if (hd.check != fr_check(hd.magic, hd.len, hd.tag) || hd.len > h->max_msg ||
	    (hd.magic == FR_MAGIC_EOS && hd.len != 0))
		return -1;
	if (avail < FR_OVERHEAD + (size_t)hd.len)
		return 0;
	struct fr_tail t;
	memcpy(&t, p + FR_HDR + hd.len, sizeof(t));
	if (t.tag != hd.tag || t.ncheck != ~hd.check)
		return -1;
	*out = hd;
	return 1;
}

/* ---- options ----------------------------------------------------------- */

struct plan {
	uint64_t cap;
	uint32_t max_msg, mode;
};

static int plan_opts(const struct shmring_opts *o, struct plan *p)
{
	static const struct shmring_opts zero;
	if (!o)
		o = &zero;
	if (o->kind == SHMRING_MPMC)
		return -ENOTSUP;        /* one consumer per pipe */
	if (o->kind != 0 && o->kind != SHMRING_SPSC)
		return -EINVAL;
	/* read and write bits only, as for shm: and file: rings */
	if ((o->mode & ~0666u) || o->capacity > FB_MAX_CAP || o->max_msg > MAX_MSG_LIMIT)
		return -EINVAL;
	uint64_t cap = o->capacity ? o->capacity : FB_DEFAULT_CAP;
	if (cap < FB_MIN_CAP)
		cap = FB_MIN_CAP;
	if (cap & (cap - 1))
		cap = 1ull << (64 - __builtin_clzll(cap));      /* as the kernel rounds */
	uint64_t mm = o->max_msg ? o->max_msg : cap / 4;
	p->cap = cap;
	p->max_msg = (uint32_t)(mm > MAX_MSG_LIMIT ? MAX_MSG_LIMIT : mm);
	/* the sticky bit marks a stream that is over (mark_end): never at birth */
	p->mode = (o->mode ? o->mode : 0600) & ~(uint32_t)S_ISVTX;
	return 0;
}

/* ---- descriptors and locks --------------------------------------------- */

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void set_pipe_size(int fd, uint64_t want)
{
	if (want > MAX_PIPE_SZ)
		want = MAX_PIPE_SZ;
	int cur = fcntl(fd, F_GETPIPE_SZ);
	if (cur < 0 || (uint64_t)cur >= want)
		return;                 /* never shrink what a peer asked for */
	if (fcntl(fd, F_SETPIPE_SZ, (int)want) >= 0 || errno != EPERM)
		return;                 /* EBUSY: more queued than fits; keep the size */
	/* above /proc/sys/fs/pipe-max-size without CAP_SYS_RESOURCE: take the
	 * most allowed; the pipe's real size is in caps and stats */
	uint64_t max = fb_sysctl("/proc/sys/fs/pipe-max-size", FB_DEFAULT_CAP);
	if (max > (uint64_t)cur && max < want)
		(void)fcntl(fd, F_SETPIPE_SZ, (int)max);
}

/* The FIFO at path, made if asked: an O_PATH descriptor, never through a
 * symbolic link, never anything but a FIFO. */
static int fifo_get(const char *path, int oflags, int *opath, bool *created, struct stat *st)
{
	for (int lap = 0; lap < 100; lap++) {
		bool made = false;
		if (oflags & SHMRING_CREATE) {
			if (mkfifo(path, 0600) == 0)
				made = true;
			else if (errno != EEXIST)
				return -errno;
			else if (oflags & SHMRING_EXCL)
				return -EEXIST;
		}
		int fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			if (errno == ENOENT && (oflags & SHMRING_CREATE))
				continue;       /* removed between the two calls: again */
			return -errno;
		}
		if (fstat(fd, st) < 0) {
			int rc = -errno;
			close(fd);
			return rc;
		}
		int rc = S_ISLNK(st->st_mode) ? -EACCES : S_ISDIR(st->st_mode) ? -EISDIR
			 : !S_ISFIFO(st->st_mode) ? -EPROTO : 0;
		/* another user's FIFO: its frames and locks are theirs to forge */
		if (rc == 0 && !trust_owner_ok(st->st_uid))
			rc = -EACCES;
		if (rc < 0) {
			close(fd);
			return rc;      /* not ours to touch, even if `made` raced */
		}
		*opath = fd;
		*created = made;
		return 0;
	}
	return -EAGAIN;
}

static int take_consumer(int rd)
{
	int rc = lock_set(rd, F_RDLCK, LOCK_CONS);
	if (rc < 0)
		return rc == -EAGAIN ? -ENOTSUP : rc;
	/* lock, then look: of two consumers racing here at most one sees no
	 * other, so at most one stays */
	off_t other = lock_held(rd, LOCK_CONS, 1);
	return other >= 0 ? -ENOTSUP : other == -2 ? -ENOLCK : 0;
}

/* Refused here, the producer closes its write end again; that is no end
 * of file for the consumer: whoever holds the lock that refused it holds a
 * write end too. */
static int take_producer(struct fb_handle *h)
{
	if (!h->multi) {
		int rc = lock_set(h->wfd, F_WRLCK, LOCK_SOLE);
		if (rc < 0)
			return rc == -EAGAIN ? -ENOTSUP : rc;
		off_t other = lock_held(h->wfd, LOCK_MULTI, MULTI_SLOTS);
		return other >= 0 ? -ENOTSUP : other == -2 ? -ENOLCK : 0;
	}
	int rc = -EUSERS;
	for (int i = 0; i < MULTI_SLOTS && rc == -EUSERS; i++) {
		rc = lock_set(h->wfd, F_WRLCK, LOCK_MULTI + i);
		if (rc == -EAGAIN)
			rc = -EUSERS;
	}
	if (rc < 0)
		return rc;
	off_t other = lock_held(h->wfd, LOCK_SOLE, 1);
	return other >= 0 ? -ENOTSUP : other == -2 ? -ENOLCK : 0;
}

static int attach(struct fb_handle *h, bool created, uint32_t mode)
{
	int rd = -1, rc = 0;
	if (h->roles || created) {
		rd = lock_reopen(h->opath, O_RDONLY | O_NONBLOCK);
		if (rd < 0)
			return rd;
	}
	/* mkfifo made it 0600 (less the umask): now exactly what was asked */
	if (created && fchmod(rd, mode) < 0)
		rc = -errno;
	/* the consumer's role before any write end is opened: a refused
	 * handle with both roles must not look like a writer come and gone */
	if (rc == 0 && (h->roles & SHMRING_CONSUMER))
		rc = take_consumer(rd);
	if (rc < 0 || !h->roles) {
		close_fd(&rd);
		return rc;
	}
	if (h->roles & SHMRING_CONSUMER)
		h->rfd = rd;
	else
		h->own_rfd = rd;
	/* either side may be first to open the pipe: both ask for its size */
	set_pipe_size(rd, h->cap_req);
	if (!(h->roles & SHMRING_PRODUCER))
		return 0;
	/* cannot be ENXIO: we hold a read end */
	h->wfd = lock_reopen(h->opath, O_WRONLY | O_NONBLOCK);
	if (h->wfd < 0)
		return h->wfd;
	if (h->rfd >= 0) {
		/* both roles: the producer's own read end, apart from the
		 * consumer's, which goes at the end of the stream */
		h->own_rfd = lock_reopen(h->opath, O_RDONLY | O_NONBLOCK);
		if (h->own_rfd < 0)
			return h->own_rfd;
	}
	return take_producer(h);
}

/* ---- the pool of pages for vmsplice ------------------------------------ */

static int pool_make(struct fb_handle *h)
{
	long pg = sysconf(_SC_PAGESIZE);
	size_t page = pg > 0 ? (size_t)pg : 4096;
	int psz = fcntl(h->wfd, F_GETPIPE_SZ);
	h->slot_size = (h->frame_max + page - 1) / page * page;
	/* enough slots to fill the pipe and write the next frame meanwhile */
	size_t n = (psz > 0 ? (size_t)psz : FB_DEFAULT_CAP) / h->slot_size + 2;
	if (n > 64)
		n = 64;
	/* mmap, not the allocator: pages lent to the pipe must never be given
	 * to anything else while the pipe holds them; after munmap the pipe
	 * keeps its own reference to the pages */
	void *p = mmap(NULL, n * h->slot_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -ENOMEM;
	h->slot_end = sr_zalloc(n * sizeof(*h->slot_end));
	if (!h->slot_end) {
		munmap(p, n * h->slot_size);
		return -ENOMEM;
	}
	/* a forked child must not share pages the parent writes again */
	(void)madvise(p, n * h->slot_size, MADV_DONTFORK);
	h->pool = p;
	h->pool_len = n * h->slot_size;
	h->nslots = (unsigned)n;
	return 0;
}

/*
 * A slot to build a large frame in, for vmsplice, or -1 (copy instead).
 * The pipe refers to the pages of a spliced frame until the consumer has
 * read them: a slot is written again only when every byte of its last frame
 * has left the pipe.  FIONREAD says how many bytes are still in the pipe —
 * the newest ones, FIFO — so the slot is free once at least that many bytes
 * went in after it.  (Bytes of other writers only make the test stricter.)
 */
static int pool_take(struct fb_handle *h)
{
	if (!h->pool && pool_make(h) < 0)
		return -1;
	unsigned s = h->next_slot;
	if (h->slot_end[s]) {
		int unread;
		if (ioctl(h->wfd, FIONREAD, &unread) < 0 || unread < 0 ||
		    h->pushed - h->slot_end[s] < (uint64_t)unread)
			return -1;
	}
	h->next_slot = (s + 1) % h->nslots;
	return (int)s;
}

static uint8_t *slot_ptr(struct fb_handle *h, int s)
{
	return h->pool + (size_t)s * h->slot_size;
}

/* ---- producer ---------------------------------------------------------- */

static ssize_t write_once(int fd, const struct iovec *iov, int cnt, bool splice)
{
	ssize_t n;
	do
		n = splice ? vmsplice(fd, iov, (unsigned long)cnt, SPLICE_F_NONBLOCK)
			   : writev(fd, iov, cnt);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

/* Whether the stream was shut down: the FIFO's sticky bit (set by
 * mark_end).  -1 when the test failed (nothing is known). */
static int end_marked(int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -1;
	return (st.st_mode & S_ISVTX) != 0;
}

/* Set the end-of-stream bit on the FIFO: 0, or -errno (EPERM: not the
 * FIFO's owner; the EOS frame alone then tells the consumer). */
static int mark_end(struct fb_handle *h)
{
	struct stat st;
	if (fstat(h->wfd, &st) < 0)
		return -errno;
	if (!(st.st_mode & S_ISVTX) && fchmod(h->wfd, (st.st_mode & 07777) | S_ISVTX) < 0)
		return -errno;
	h->marked = true;
	return 0;
}

/* Did another producer shut the stream down?  Looked at now if `now`, else
 * at most every SHUT_CHECK_NS (a clock read is no system call).  Sets
 * h->shut: further sends are -EPIPE.  A consumer that comes or goes changes
 * nothing here: frames wait in the pipe for the next one. */
static void check_shut(struct fb_handle *h, bool now)
{
	if (h->shut)
		return;
	uint64_t t = clock_mono_ns();
	if (!now && t < h->next_check)
		return;
	h->next_check = t + SHUT_CHECK_NS;
	if (end_marked(h->wfd) > 0)
		h->shut = true;
}

/* Wait for room, in slices, looking between them for a shutdown by
 * another producer (this handle's own frames after its own shutdown — the
 * rest of a frame, the EOS frame — still go).  0 (look again), -EPIPE,
 * -EAGAIN (timeout 0), -ETIMEDOUT. */
static int wait_writable(struct fb_handle *h, uint64_t deadline)
{
	bool was = h->shut;
	check_shut(h, true);
	if (h->shut && !was)
		return -EPIPE;
	if (deadline == FB_NOWAIT)
		return -EAGAIN;
	uint64_t slice = clock_mono_ns() + WAIT_SLICE_NS;
	short ev;
	int rc = fb_wait_fd(h->wfd, POLLOUT, deadline < slice ? deadline : slice, &ev);
	if (rc == -ETIMEDOUT && deadline > slice)
		return 0;               /* a slice is over, not the wait */
	return rc;
}

static void count_wait(struct fb_handle *h, uint64_t deadline, bool *waited)
{
	if (!*waited && deadline != FB_NOWAIT) {
		h->st.waits_full++;
		*waited = true;
	}
}

/* Put bytes into the pipe, waiting for room until the deadline: the count
 * written (>= 1), or -EAGAIN/-ETIMEDOUT (nothing written), -EPIPE, -errno. */
static ssize_t push(struct fb_handle *h, const struct iovec *iov, int cnt, bool splice,
		    uint64_t deadline, bool *waited)
{
	for (;;) {
		if (h->broken)
			return -EPIPE;
		ssize_t n = write_once(h->wfd, iov, cnt, splice);
		if (n > 0) {
			h->pushed += (uint64_t)n;
			return n;
		}
		if (n == -EPIPE) {      /* cannot happen while we hold a read end */
			h->broken = true;
			return -EPIPE;
		}
		if (n != -EAGAIN && n != 0)
			return n;
		if (deadline != FB_NOWAIT)
			count_wait(h, deadline, waited);
		int rc = wait_writable(h, deadline);
		if (rc < 0)
			return rc;
	}
}

/* Finish the frame written in part. */
static int flush_pending(struct fb_handle *h, uint64_t deadline, bool *waited)
{
	while (h->pend_len) {
		struct iovec v = { (void *)h->pend, h->pend_len };
		ssize_t n = push(h, &v, 1, h->pend_slot >= 0, deadline, waited);
		if (n < 0) {
			if (n == -EPIPE) {
				h->pend_len = 0;        /* the consumer is gone: lost */
				h->pend_slot = -1;
				h->st.msgs_dropped++;
			}
			return (int)n;
		}
		h->pend += n;
		h->pend_len -= (size_t)n;
	}
	if (h->pend_slot >= 0) {
		h->slot_end[h->pend_slot] = h->pushed;
		h->pend_slot = -1;
	}
	return 0;
}

/* The bytes of iov after the first `skip` become the pending rest. */
static void keep_rest(struct fb_handle *h, const struct iovec *iov, int cnt, size_t skip, int slot)
{
	if (slot >= 0) {
		/* a spliced frame is one region of its slot */
		h->pend = (const uint8_t *)iov[0].iov_base + skip;
		h->pend_len = iov[0].iov_len - skip;
		h->pend_slot = slot;
		return;
	}
	size_t out = 0;
	for (int i = 0; i < cnt; i++) {
		size_t l = iov[i].iov_len;
		if (skip >= l) {
			skip -= l;
			continue;
		}
		/* memmove: a frame built in wbuf moves down within it */
		memmove(h->wbuf + out, (const uint8_t *)iov[i].iov_base + skip, l - skip);
		out += l - skip;
		skip = 0;
	}
	h->pend = h->wbuf;
	h->pend_len = out;
	h->pend_slot = -1;
}

/*
 * Finish the frame begun, whatever the deadline, as long as the consumer
 * reads: a frame left half written would hold back every frame after it,
 * and a caller that now waits for an answer to it would wait for ever.
 * Only a consumer that reads nothing for IDLE_NS (or the caller's later
 * deadline) stops it: the rest then waits in the handle, and the next call
 * of the handle, or its close, writes it first.  SHMRING_FOREVER waits for
 * ever, as asked.
 */
static int flush_idle(struct fb_handle *h, uint64_t deadline, bool *waited)
{
	if (deadline == UINT64_MAX)
		return flush_pending(h, UINT64_MAX, waited);
	for (;;) {
		size_t before = h->pend_len;
		uint64_t d = clock_mono_ns() + IDLE_NS;
		if (deadline != FB_NOWAIT && deadline > d)
			d = deadline;
		int rc = flush_pending(h, d, waited);
		if (rc != -ETIMEDOUT || h->pend_len == before)
			return rc;
	}
}

/* Room in the pipe now, by FIONREAD, less a page for the pipe's slot
 * rounding; SIZE_MAX when unknown. */
static size_t room_now(struct fb_handle *h, size_t *pipe_size)
{
	int size = fcntl(h->wfd, F_GETPIPE_SZ), unread;
	*pipe_size = size > 0 ? (size_t)size : SIZE_MAX;
	if (size <= 0 || ioctl(h->wfd, FIONREAD, &unread) < 0 || unread < 0)
		return SIZE_MAX;
	return (size_t)size > (size_t)unread + 4096 ? (size_t)size - (size_t)unread - 4096 : 0;
}

/* Whether a frame of `total` bytes larger than PIPE_BUF would go in whole
 * now, so that timeout 0 can say -EAGAIN rather than begin it (a frame
 * begun is finished, see flush_idle); a frame larger than the pipe begins
 * only in an empty one.  When in doubt, yes. */
static bool room_for(struct fb_handle *h, size_t total)
{
	size_t size, room = room_now(h, &size);
	if (room == SIZE_MAX)
		return true;
	if (total + 4096 >= size)
		return room + 4096 >= size;     /* empty */
	return room >= total;
}

/*
 * Write one whole frame.  0: it is in the pipe (or, after IDLE_NS of a
 * consumer that reads nothing, its rest waits in the handle, see
 * flush_idle).  -EAGAIN/-ETIMEDOUT: nothing was written.
 */
static int send_frame(struct fb_handle *h, const struct iovec *iov, int cnt, size_t total,
		      int slot, uint64_t deadline, bool *waited)
{
	if (deadline == FB_NOWAIT && total > PIPE_BUF && !room_for(h, total))
		return -EAGAIN;
	ssize_t n = push(h, iov, cnt, slot >= 0, deadline, waited);
	if (n < 0)
		return (int)n;
	if ((size_t)n < total) {
		keep_rest(h, iov, cnt, (size_t)n, slot);
		int rc = flush_idle(h, deadline, waited);
		if (rc == -EPIPE)
			return rc;
	} else if (slot >= 0) {
		h->slot_end[slot] = h->pushed;
	}
	return 0;
}

static int put_msg(struct fb_handle *h, const void *msg, size_t len, uint64_t deadline,
		   bool *waited)
{
	size_t total = FR_OVERHEAD + len;
	int slot = !h->multi && total >= VMSPLICE_MIN ? pool_take(h) : -1;
	if (slot >= 0 || total <= SMALL_FRAME) {
		uint8_t *p = slot >= 0 ? slot_ptr(h, slot) : h->wbuf;
		if (len)
			memcpy(p + FR_HDR, msg, len);
		fr_seal(h, p, FR_MAGIC_DATA, (uint32_t)len);
		struct iovec v = { p, total };
		return send_frame(h, &v, 1, total, slot, deadline, waited);
	}
	/* large, copied by the kernel: gather, no copy of ours */
	struct fr_hdr hd;
	struct fr_tail t;
	fr_make(h, FR_MAGIC_DATA, (uint32_t)len, &hd, &t);
	struct iovec v[3] = {
		{ &hd, sizeof(hd) }, { (void *)msg, len }, { &t, sizeof(t) },
	};
	return send_frame(h, v, 3, total, -1, deadline, waited);
}

static int prod_ready(struct fb_handle *h)
{
	if (h->resv.open)
		return -EINPROGRESS;
	check_shut(h, false);
	if (h->shut || h->broken)
		return -EPIPE;
	return 0;
}

static int p_send(struct fb_handle *h, const void *msg, size_t len, int64_t timeout_ns)
{
	int rc = prod_ready(h);
	if (rc < 0)
		return rc;
	if (len > h->max_msg)
		return -EMSGSIZE;
	uint64_t deadline = fb_deadline(timeout_ns);
	bool waited = false;
	if ((rc = flush_pending(h, deadline, &waited)) < 0)
		return rc;
	if ((rc = put_msg(h, msg, len, deadline, &waited)) < 0)
		return rc;
	fb_count_sent(&h->st, len);
	return 0;
}

/* Wait until a write would not block. */
static int wait_room(struct fb_handle *h, uint64_t deadline, bool *waited)
{
	for (;;) {
		if (h->broken)
			return -EPIPE;
		struct pollfd p = { .fd = h->wfd, .events = POLLOUT };
		int n = poll(&p, 1, 0);
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0)
			return 0;
		if (deadline != FB_NOWAIT)
			count_wait(h, deadline, waited);
		int rc = wait_writable(h, deadline);
		if (rc < 0)
			return rc;
	}
}

static int p_reserve(struct fb_handle *h, size_t len, struct shmring_msg *m, int64_t timeout_ns)
{
	int rc = prod_ready(h);
	if (rc < 0)
		return rc;
	if (len > h->max_msg)
		return -EMSGSIZE;
	uint64_t deadline = fb_deadline(timeout_ns);
	bool waited = false;
	if ((rc = flush_pending(h, deadline, &waited)) < 0)
		return rc;
	if ((rc = wait_room(h, deadline, &waited)) < 0)
		return rc;
	size_t total = FR_OVERHEAD + len;
	if (deadline == FB_NOWAIT && total > PIPE_BUF && !room_for(h, total))
		return -EAGAIN;
	int slot = !h->multi && total >= VMSPLICE_MIN ? pool_take(h) : -1;
	h->resv_buf = slot >= 0 ? slot_ptr(h, slot) : h->wbuf;
	h->resv_slot = slot;
	fb_resv_open(&h->resv, h->resv_buf + FR_HDR, len, deadline, m);
	return 0;
}

static int p_commit(struct fb_handle *h, struct shmring_msg *m)
{
	if (fb_resv_check(&h->resv, m) < 0)
		return -EINVAL;
	if (h->shut || h->broken) {
		/* the stream ended while the frame was being written */
		h->resv.open = false;
		h->st.msgs_dropped++;
		return -EPIPE;
	}
	size_t len = m->len, total = FR_OVERHEAD + len;
	fr_seal(h, h->resv_buf, FR_MAGIC_DATA, (uint32_t)len);
	struct iovec v = { h->resv_buf, total };
	bool waited = false;
	/* With several producers another may have taken the room reserve saw:
	 * then wait as the reserve's timeout allowed, and if that is over keep
	 * the reservation open for another commit. */
	int rc = send_frame(h, &v, 1, total, h->resv_slot, h->resv.deadline, &waited);
	if (rc == -EAGAIN || rc == -ETIMEDOUT)
		return rc;
	h->resv.open = false;
	if (rc < 0) {
		h->st.msgs_dropped++;   /* the consumer is gone */
		return rc;
	}
	fb_count_sent(&h->st, len);
	m->data = NULL;
	return 0;
}

static size_t frame_total(const struct iovec *v)
{
	return FR_OVERHEAD + v->iov_len;
}

static int p_send_batch(struct fb_handle *h, const struct iovec *msgs, unsigned n, int64_t timeout_ns)
{
	int rc = prod_ready(h);
	if (rc < 0)
		return rc;
	uint64_t dl = fb_deadline(timeout_ns);   /* only the first message waits */
	bool waited = false;
	if ((rc = flush_pending(h, dl, &waited)) < 0)
		return rc;
	unsigned done = 0;
	while (done < n) {
		const struct iovec *v = &msgs[done];
		if (!v->iov_base && v->iov_len) {
			rc = -EINVAL;
			break;
		}
		if (v->iov_len > h->max_msg) {
			rc = -EMSGSIZE;
			break;
		}
		if (frame_total(v) > SMALL_FRAME) {
			if ((rc = put_msg(h, v->iov_base, v->iov_len, dl, &waited)) < 0)
				break;
			fb_count_sent(&h->st, v->iov_len);
			done++;
			dl = FB_NOWAIT;
			if (h->pend_len)
				break;          /* the pipe is full */
			continue;
		}
		/* small frames: as many as fit in one write (PIPE_BUF with
		 * several producers, so that each write stays atomic) */
		size_t lim = h->multi ? PIPE_BUF : h->wcap, used = 0;
		if (!h->multi && dl == FB_NOWAIT) {
			/* not more than fits now: what is begun must be finished */
			size_t size, room = room_now(h, &size);
			if (room < lim)
				lim = room > frame_total(v) ? room : frame_total(v);
		}
		unsigned j = done;
		while (j < n && (msgs[j].iov_base || !msgs[j].iov_len) &&
		       msgs[j].iov_len <= h->max_msg && frame_total(&msgs[j]) <= SMALL_FRAME &&
		       used + frame_total(&msgs[j]) <= lim) {
			if (msgs[j].iov_len)
				memcpy(h->wbuf + used + FR_HDR, msgs[j].iov_base, msgs[j].iov_len);
			fr_seal(h, h->wbuf + used, FR_MAGIC_DATA, (uint32_t)msgs[j].iov_len);
			used += frame_total(&msgs[j]);
			j++;
		}
		struct iovec c = { h->wbuf, used };
		ssize_t w = push(h, &c, 1, false, dl, &waited);
		if (w < 0) {
			rc = (int)w;
			break;
		}
		size_t off = 0;
		unsigned k = done;
		while (k < j && off + frame_total(&msgs[k]) <= (size_t)w)
			off += frame_total(&msgs[k++]);
		if (off < (size_t)w) {
			/* one frame went in part: the rest must follow */
			size_t rest = off + frame_total(&msgs[k]) - (size_t)w;
			memmove(h->wbuf, h->wbuf + w, rest);
			h->pend = h->wbuf;
			h->pend_len = rest;
			h->pend_slot = -1;
			k++;
		}
		for (unsigned i = done; i < k; i++)
			fb_count_sent(&h->st, msgs[i].iov_len);
		done = k;
		dl = FB_NOWAIT;
		if (h->pend_len && flush_idle(h, FB_NOWAIT, &waited) < 0)
			break;
		if (k < j)
			break;                  /* the pipe is full */
	}
	return done ? (int)done : rc;
}

/* The EOS frame, waiting for room until the deadline: 0 or -errno. */
static int put_eos(struct fb_handle *h, uint64_t deadline)
{
	uint8_t eos[FR_OVERHEAD];
	fr_seal(h, eos, FR_MAGIC_EOS, 0);
	struct iovec v = { eos, sizeof(eos) };
	bool waited = true;             /* not counted: no send waits here */
	ssize_t n = push(h, &v, 1, false, deadline, &waited);
	if (n < 0)
		return (int)n;
	h->eos_sent = true;             /* 24 bytes < PIPE_BUF: all or nothing */
	return 0;
}

static int p_shutdown(struct fb_handle *h)
{
	h->shut = true;
	if (h->eos_sent || h->broken)
		return 0;
	/* the rest of a frame first: the bit says that everything sent is in
	 * the pipe */
	bool waited = true;
	int rc = flush_idle(h, FB_NOWAIT, &waited);
	if (rc == 0 && (h->marked || mark_end(h) == 0)) {
		/* The frame only wakes a consumer asleep on an empty pipe; on a
		 * full one nobody sleeps, and the consumer that drains it finds
		 * the bit.  Close tries the frame once more. */
		rc = put_eos(h, FB_NOWAIT);
		return rc == -EAGAIN ? 0 : rc;
	}
	if (rc == 0)
		rc = put_eos(h, clock_mono_ns() + IDLE_NS);     /* the frame is all there is */
	return rc == -EPIPE ? 0 : rc;   /* -EPIPE: our own consumer ended the stream */
}

/* ---- consumer ---------------------------------------------------------- */

static void end_stream(struct fb_handle *h)
{
	h->ended = true;
	if (h->wfd >= 0)
		h->broken = true;       /* a handle with both roles: its sends go nowhere now */
	/* what follows the end (frames of producers that did not know) is
	 * not for us; give the read end back: another consumer may start a
	 * new stream on the FIFO after an end of file */
	h->rpos = h->rend;
	close_fd(&h->rfd);
}

/* Skip bytes that are no frame: up to the next place a frame may start. */
static void resync(struct fb_handle *h)
{
	if (!h->skipping) {
		h->skipping = true;     /* one loss per stretch of bad bytes */
		h->st.msgs_dropped++;
	}
	size_t off = h->rpos + 1;
	while (off < h->rend) {
		const uint8_t *s = memchr(h->rbuf + off, FR_MAGIC_DATA & 0xff, h->rend - off);
		if (!s) {
			off = h->rend;
			break;
		}
		off = (size_t)(s - h->rbuf);
		struct fr_hdr hd;
		int r = fr_at(h, off, &hd);
		if (r > 0 || (r == 0 && !h->eof))
			break;
		off++;
	}
	h->rpos = off;
}

/* How many bytes the frame at rpos still needs from the pipe (at least 1):
 * a header first, then the rest of the frame it announces, never more, so
 * that no byte of the next frame leaves the pipe. */
static size_t bytes_wanted(const struct fb_handle *h)
{
	size_t avail = h->rend - h->rpos;
	if (avail < FR_HDR)
		return FR_HDR - avail;
	struct fr_hdr hd;
	memcpy(&hd, h->rbuf + h->rpos, sizeof(hd));
	size_t total = FR_OVERHEAD + (size_t)(hd.len <= h->max_msg ? hd.len : 0);
	return total > avail ? total - avail : 1;
}

/* Read up to `want` bytes from the pipe: 1 got bytes, 0 none (h->eof tells
 * whether the stream is over), -EINPROGRESS if acquired messages fill the
 * buffer. */
static int fill(struct fb_handle *h, size_t want)
{
	if (h->held.count == 0) {
		if (h->rpos == h->rend) {
			h->rpos = h->rend = 0;
		} else if (h->rcap - h->rpos < h->frame_max) {
			memmove(h->rbuf, h->rbuf + h->rpos, h->rend - h->rpos);
			h->rend -= h->rpos;
			h->rpos = 0;
		}
	}
	if (h->rend == h->rcap)
		return -EINPROGRESS;
	if (want > h->rcap - h->rend)
		want = h->rcap - h->rend;
	bool marked = false;
	for (int round = 0; round < 3; round++) {
		ssize_t n;
		do
			n = read(h->rfd, h->rbuf + h->rend, want);
		while (n < 0 && errno == EINTR);
		if (n > 0) {
			h->rend += (size_t)n;
			return 1;
		}
		if (n < 0 && errno != EAGAIN)
			return -errno;
		if (n == 0) {
			/* No writer now.  poll() tells whether one came and
			 * went since we opened (POLLHUP: the end) or none came
			 * yet (keep waiting); POLLIN: one came and wrote
			 * meanwhile, read again. */
			struct pollfd p = { .fd = h->rfd, .events = POLLIN };
			int k;
			do
				k = poll(&p, 1, 0);
			while (k < 0 && errno == EINTR);
			if (k < 0)
				return -errno;
			if (p.revents & POLLIN)
				continue;
			if (p.revents & POLLHUP) {
				h->eof = true;
				return 0;
			}
		}
		/* Empty.  A shutdown marked on the FIFO comes after everything
		 * its producer sent: with the mark seen, one more read finds
		 * whatever was sent before it, and an empty pipe then is the
		 * end. */
		if (marked) {
			h->eof = true;
			return 0;
		}
		if (end_marked(h->rfd) <= 0)
			return 0;
		marked = true;
	}
	return 0;
}

/* The next whole frame at rpos (not consumed), or -EPIPE, -EAGAIN,
 * -ETIMEDOUT, -EINPROGRESS, -errno. */
static int next_frame(struct fb_handle *h, uint64_t deadline, struct fr_hdr *hd, bool *waited)
{
	for (;;) {
		if (h->ended)
			return -EPIPE;
		int r = fr_at(h, h->rpos, hd);
		if (r > 0) {
			h->skipping = false;
			if (hd->magic == FR_MAGIC_EOS) {
				h->rpos += FR_OVERHEAD;
				end_stream(h);
				return -EPIPE;
			}
			return 0;
		}
		if (r < 0 || (h->eof && h->rpos < h->rend)) {
			/* garbage, or a frame cut short by the end of the stream */
			resync(h);
			continue;
		}
		if (h->eof) {
			end_stream(h);
			return -EPIPE;
		}
		int rc = fill(h, bytes_wanted(h));
		if (rc < 0)
			return rc;
		if (rc > 0 || h->eof)
			continue;
		if (!*waited && deadline != FB_NOWAIT) {
			h->st.waits_empty++;
			*waited = true;
		}
		short ev;
		if ((rc = fb_wait_fd(h->rfd, POLLIN, deadline, &ev)) < 0)
			return rc;
	}
}

/* fb_take_fn: the next frame's payload into buf. */
static ssize_t p_take(struct fb_handle *h, void *buf, size_t cap, uint64_t deadline, bool *waited)
{
	struct fr_hdr hd;
	int rc = next_frame(h, deadline, &hd, waited);
	if (rc < 0)
		return rc;
	if (hd.len > cap)
		return -EMSGSIZE;       /* it stays at rpos for the next call */
	if (hd.len)
		memcpy(buf, h->rbuf + h->rpos + FR_HDR, hd.len);
	h->rpos += FR_OVERHEAD + hd.len;
	return (ssize_t)hd.len;
}

static ssize_t p_recv(struct fb_handle *h, void *buf, size_t cap, int64_t timeout_ns)
{
	return fb_recv(h, &h->held, &h->st, p_take, buf, cap, timeout_ns);
}

static int p_acquire(struct fb_handle *h, struct shmring_msg *m, int64_t timeout_ns)
{
	if (h->held.count == h->held.cap)
		return -EINPROGRESS;
	struct fr_hdr hd;
	bool waited = false;
	int rc = next_frame(h, fb_deadline(timeout_ns), &hd, &waited);
	if (rc < 0)
		return rc;
	/* the frame stays where it is in rbuf: nothing moves bytes while any
	 * message is held (fill compacts only when none is) */
	fb_held_push(&h->held, h->rbuf + h->rpos + FR_HDR, hd.len, m);
	h->rpos += FR_OVERHEAD + hd.len;
	return 0;
}

static int p_release(struct fb_handle *h, struct shmring_msg *m)
{
	return fb_held_pop(&h->held, m, &h->st);
}

static int p_recv_batch(struct fb_handle *h, struct iovec *bufs, unsigned n, int64_t timeout_ns)
{
	return fb_recv_batch(h, &h->held, &h->st, p_take, bufs, n, timeout_ns);
}

/* ---- stats, caps, close ------------------------------------------------ */

/* A descriptor of the pipe to ask about it: one of ours, or a new read end
 * for a handle without any (*tmp is then set to be closed). */
static int probe_fd(struct fb_handle *h, int *tmp)
{
	*tmp = -1;
	if (h->wfd >= 0)
		return h->wfd;
	if (h->rfd >= 0)
		return h->rfd;
	*tmp = lock_reopen(h->opath, O_RDONLY | O_NONBLOCK);
	return *tmp;
}

static int p_stats(struct fb_handle *h, struct shmring_stats *st)
{
	*st = h->st;
	st->kind = SHMRING_SPSC;
	st->max_msg = h->max_msg;
	st->capacity = h->cap_req;
	st->shut_down = h->shut || h->ended || end_marked(h->opath) > 0;
	struct stat s;
	st->unlinked = fstat(h->opath, &s) == 0 && s.st_nlink == 0;
	int tmp, fd = probe_fd(h, &tmp);
	if (fd >= 0) {
		int v;
		if ((v = fcntl(fd, F_GETPIPE_SZ)) > 0)
			st->capacity = (uint64_t)v;
		if (ioctl(fd, FIONREAD, &v) == 0 && v > 0)
			st->used = (uint64_t)v;
		/* a probe does not see the locks of its own descriptor */
		st->consumers = lock_held(fd, LOCK_CONS, 1) >= 0;
		if (fd == h->rfd)
			st->consumers++;
		for (off_t at = LOCK_SOLE, got; at < LOCK_MULTI + MULTI_SLOTS; at = got + 1) {
			if ((got = lock_held(fd, at, LOCK_MULTI + MULTI_SLOTS - at)) < 0)
				break;
			st->producers++;
		}
	}
	close_fd(&tmp);
	if (h->wfd >= 0)
		st->producers++;
	st->used += h->rend - h->rpos;          /* taken from the pipe, not yet delivered */
	return 0;
}

static int p_caps(struct fb_handle *h, struct shmring_caps *caps)
{
	caps->flags = SHMRING_CAP_BLOCKING;
	caps->max_producers = h->multi ? MULTI_SLOTS : 1;
	caps->max_consumers = 1;
	caps->max_msg = h->max_msg;
	caps->capacity = h->cap_req;
	int tmp, fd = probe_fd(h, &tmp);
	int v;
	if (fd >= 0 && (v = fcntl(fd, F_GETPIPE_SZ)) > 0)
		caps->capacity = (uint64_t)v;
	close_fd(&tmp);
	return 0;
}

static void handle_free(struct fb_handle *h)
{
	close_fd(&h->rfd);
	close_fd(&h->wfd);
	close_fd(&h->own_rfd);
	close_fd(&h->opath);
	/* a forked child has no pool (MADV_DONTFORK): whatever it mapped at
	 * that address since is not ours to unmap */
	if (h->pool && h->pid == getpid())
		munmap(h->pool, h->pool_len);
	sr_free(h->slot_end);
	sr_free(h->rbuf);
	sr_free(h->wbuf);
	sr_free(h);
}

static int p_close(struct fb_handle *h)
{
	/* A frame written in part is finished if a consumer drains the pipe
	 * within IDLE_NS (without a consumer, at once); else its rest is lost,
	 * and the consumer drops the cut frame.  After a shutdown, the end is
	 * marked as it could not be before.  Not in a forked child: the
	 * descriptors are the parent's too. */
	if (h->pid == getpid() && h->wfd >= 0 && !h->broken) {
		bool waited = true;
		if (h->pend_len && lock_held(h->wfd, LOCK_CONS, 1) != -1)
			(void)flush_idle(h, FB_NOWAIT, &waited);
		if (h->shut && !h->marked)
			(void)mark_end(h);
		if (h->shut && !h->eos_sent && !h->pend_len)
			(void)put_eos(h, FB_NOWAIT);
	}
	handle_free(h);
	return 0;
}

static const struct fb_ops pipe_ops = {
	.send = p_send, .recv = p_recv, .reserve = p_reserve, .commit = p_commit,
	.acquire = p_acquire, .release = p_release, .send_batch = p_send_batch,
	.recv_batch = p_recv_batch, .shutdown = p_shutdown, .stats = p_stats,
	.caps = p_caps, .close = p_close,
};

/* ---- open, unlink ------------------------------------------------------ */

static uint32_t make_nonce(void)
{
	uint32_t v;
	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) == (ssize_t)sizeof(v))
		return v;
	return mix32((uint32_t)clock_mono_ns() ^ (uint32_t)getpid() * 0x9e3779b1u);
}

static struct fb_handle *handle_new(const struct plan *p, uint32_t roles)
{
	struct fb_handle *h = sr_zalloc(sizeof(*h));
	if (!h)
		return NULL;
	h->opath = h->rfd = h->wfd = h->own_rfd = -1;
	h->pend_slot = h->resv_slot = -1;
	h->held.cap = HELD_MAX;
	h->roles = roles;
	h->pid = getpid();
	h->max_msg = p->max_msg;
	h->frame_max = FR_OVERHEAD + (size_t)p->max_msg;
	h->cap_req = p->cap;
	h->multi = h->frame_max <= PIPE_BUF;
	h->nonce = make_nonce();
	/* everything is allocated before the FIFO is touched: a producer that
	 * opened its write end and then failed would look, to the consumer,
	 * like the last writer gone — the end of the stream */
	if (roles & SHMRING_PRODUCER) {
		h->wcap = h->frame_max > 65536 ? h->frame_max : 65536;
		if (!(h->wbuf = sr_zalloc(h->wcap)))
			goto fail;
	}
	if (roles & SHMRING_CONSUMER) {
		h->rcap = 2 * h->frame_max > 65536 ? 2 * h->frame_max : 65536;
		if (!(h->rbuf = sr_zalloc(h->rcap)))
			goto fail;
	}
	return h;
fail:
	handle_free(h);
	return NULL;
}

int fb_pipe_open(const char *path, int oflags, const struct shmring_opts *opts,
		 struct fb_handle **out, const struct fb_ops **ops)
{
	struct plan p;
	int rc = plan_opts(opts, &p);
	if (rc < 0)
		return rc;
	struct fb_handle *h = handle_new(&p, (uint32_t)oflags & (SHMRING_PRODUCER | SHMRING_CONSUMER));
	if (!h)
		return -ENOMEM;
	bool created = false;
	struct stat made;
	rc = fifo_get(path, oflags, &h->opath, &created, &made);
	if (rc == 0)
		rc = attach(h, created, p.mode);
	if (rc < 0) {
		handle_free(h);
		/* a FIFO we made and cannot use must not stay behind under its
		 * name — only if the name still refers to it */
		const char *name;
		int dfd = created ? pathat_dir(path, &name, false) : -1;
		if (dfd >= 0) {
			(void)pathat_unlink_same(dfd, name, &made);
			close(dfd);
		}
		return rc;
	}
	if (h->wfd >= 0)
		check_shut(h, true);    /* a stream already over: sends are -EPIPE */
	*out = h;
	*ops = &pipe_ops;
	return 0;
}

/* Look and remove through the directory's descriptor (api/pathat.h). */
int fb_pipe_unlink(const char *path)
{
	const char *name;
	int dfd = pathat_dir(path, &name, true);
	if (dfd < 0)
		return dfd;
	struct stat st;
	int rc = fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno
		 : S_ISLNK(st.st_mode) ? -EACCES : S_ISDIR(st.st_mode) ? -EISDIR
		 : !S_ISFIFO(st.st_mode) ? -EPROTO      /* not ours: never removed */
		 : pathat_unlink_same(dfd, name, &st);
	close(dfd);
	return rc == -ESTALE ? -EAGAIN : rc;
}
