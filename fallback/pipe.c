/* SPDX-License-Identifier: MIT */
/*
 * pipe:PATH — the backend: options, the FIFO and its role locks, stats,
 * open and close.  How the backend works: pipe.h.
 */
#include <errno.h>
#include <sys/epoll.h>
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

#include "pipe.h"
#include "../fs/pathat.h"
#include "../fs/trust.h"

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
	if (o->kind == SHMRING_MPMC || o->kind == SHMRING_BCAST || (o->flags & SHMRING_OVERWRITE))
		return -ENOTSUP;        /* one consumer per pipe */
	if (o->flags & SHMRING_FIXED)
		return -ENOTSUP;        /* a segment format */
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
	/* the sticky bit marks a stream that is over (pipe_mark_end): never at birth */
	p->mode = (o->mode ? o->mode : 0600) & ~(uint32_t)S_ISVTX;
	return 0;
}

/* ---- descriptors and locks --------------------------------------------- */

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
	if (h->base.head.roles || created) {
		rd = lock_reopen(h->opath, O_RDONLY | O_NONBLOCK);
		if (rd < 0)
			return rd;
	}
	/* mkfifo made it 0600 (less the umask): now exactly what was asked */
	if (created && fchmod(rd, mode) < 0)
		rc = -errno;
	/* the consumer's role before any write end is opened: a refused
	 * handle with both roles must not look like a writer come and gone */
	if (rc == 0 && (h->base.head.roles & SHMRING_CONSUMER))
		rc = take_consumer(rd);
	if (rc < 0 || !h->base.head.roles) {
		close_fd(&rd);
		return rc;
	}
	if (h->base.head.roles & SHMRING_CONSUMER)
		h->rfd = rd;
	else
		h->own_rfd = rd;
	/* either side may be first to open the pipe: both ask for its size */
	set_pipe_size(rd, h->cap_req);
	if (!(h->base.head.roles & SHMRING_PRODUCER))
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

static int pipe_op_stats(struct shmring *r, struct shmring_stats *st)
{
	struct fb_handle *h = fb_of(r);
	*st = h->st;
	st->kind = SHMRING_SPSC;
	st->max_msg = h->max_msg;
	st->capacity = h->cap_req;
	st->shut_down = h->shut || h->ended || pipe_end_marked(h->opath) > 0;
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

static int pipe_op_caps(struct shmring *r, struct shmring_caps *caps)
{
	struct fb_handle *h = fb_of(r);
	caps->flags = SHMRING_CAP_BLOCKING | SHMRING_CAP_POLL;
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
	close_fd(&h->base.epfd);
	/* a forked child has no pool (MADV_DONTFORK): whatever it mapped at
	 * that address since is not ours to unmap */
	if (h->pool && h->pid == getpid())
		munmap(h->pool, h->pool_len);
	sr_free(h->slot_end);
	sr_free(h->rbuf);
	sr_free(h->wbuf);
	sr_free(h);
}

static int pipe_op_close(struct shmring *r)
{
	struct fb_handle *h = fb_of(r);
	/* A frame written in part is finished if a consumer drains the pipe
	 * within IDLE_NS (without a consumer, at once); else its rest is lost,
	 * and the consumer drops the cut frame.  After a shutdown, the end is
	 * marked as it could not be before.  Not in a forked child: the
	 * descriptors are the parent's too. */
	if (h->pid == getpid() && h->wfd >= 0 && !h->broken) {
		bool waited = true;
		if (h->pend_len && lock_held(h->wfd, LOCK_CONS, 1) != -1)
			(void)pipe_flush_idle(h, FB_NOWAIT, &waited);
		if (h->shut && !h->marked)
			(void)pipe_mark_end(h);
		if (h->shut && !h->eos_sent && !h->pend_len)
			(void)pipe_put_eos(h, FB_NOWAIT);
	}
	handle_free(h);
	return 0;
}

/* Readable: the consumer's read end has bytes or the last writer left; the
 * producer's write end has room, or the consumer left (error). */
static int pipe_op_fd(struct shmring *r)
{
	struct fb_handle *h = fb_of(r);
	const struct fb_watch w[] = { { h->rfd, EPOLLIN }, { h->wfd, EPOLLOUT } };
	return fb_poll_fd(r, w, 2);
}

static const struct shmring_backend_ops pipe_ops = FB_OPS("pipe", pipe_op);

/* ---- open, unlink ------------------------------------------------------ */

static struct fb_handle *handle_new(const struct plan *p, uint32_t roles)
{
	struct fb_handle *h = sr_zalloc(sizeof(*h));
	if (!h)
		return NULL;
	h->opath = h->rfd = h->wfd = h->own_rfd = h->base.epfd = -1;
	h->pend_slot = h->resv_slot = -1;
	h->held.cap = HELD_MAX;
	backend_head_init(&h->base.head, &pipe_ops, roles, 0);
	h->pid = getpid();
	h->max_msg = p->max_msg;
	h->frame_max = FR_OVERHEAD + (size_t)p->max_msg;
	h->cap_req = p->cap;
	h->multi = h->frame_max <= PIPE_BUF;
	h->nonce = pipe_nonce();
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

static int pipe_open_ring(const char *path, int oflags, const struct shmring_opts *opts,
			  struct shmring **out)
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
		if (created)
			pathat_undo_create(path, &made);
		return rc;
	}
	if (h->wfd >= 0)
		pipe_check_shut(h, true);    /* a stream already over: sends are -EPIPE */
	*out = &h->base.head;
	return 0;
}

/* Only a FIFO is ours to remove (fs/pathat.h). */
static int is_fifo(int dfd, const char *name, struct stat *st)
{
	return fstatat(dfd, name, st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno
	       : S_ISLNK(st->st_mode) ? -EACCES : S_ISDIR(st->st_mode) ? -EISDIR
	       : !S_ISFIFO(st->st_mode) ? -EPROTO      /* not ours: never removed */
	       : 0;
}

static int pipe_unlink_ring(const char *path)
{
	return pathat_unlink_checked(path, is_fifo);
}

const struct shmring_backend backend_pipe = {
	.scheme = "pipe", .open = pipe_open_ring, .unlink = pipe_unlink_ring,
};
