/* SPDX-License-Identifier: MIT */
/*
 * The shm: and file: backends: find or create the segment, share this
 * process's mapping of it, pick the ring kind its header names, take the
 * roles; and what every kind's handle does alike (close, statistics,
 * fork).
 */
#include "seg.h"

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../fs/pathat.h"
#include "../fs/trust.h"
#include "../mem/alloc.h"
#include "../mmapfile/mmapfile.h"
#include "../shm/inspect.h"
#include "../shm/segment.h"
#include "../sync/clock.h"
#include "../sync/fence.h"
#include "../sync/lock.h"
#include "../sync/wait.h"

/* The ring kinds, by the header's kind. */
static const struct segh_kind *const kinds[] = { &segh_kind_spsc, &segh_kind_mpmc,
						 &segh_kind_bcast };

static const struct segh_kind *kind_of(uint32_t kind, uint32_t flags)
{
	if (kind == SHMRING_SPSC && (flags & SHMRING_FIXED))
		return &segh_kind_fixed;     /* the same kind, another format */
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (kinds[i]->kind == kind)
			return kinds[i];
	return NULL;
}

/* ---- mapping ----------------------------------------------------------- */

static int map_extra_flags(struct seg_map *m, uint32_t flags)
{
	if ((flags & SHMRING_MLOCK) && mlock(m->base, m->geom.size) < 0)
		return -errno;
#ifdef MADV_POPULATE_WRITE
	if (flags & SHMRING_PREFAULT)
		(void)madvise(m->base, m->geom.size, MADV_POPULATE_WRITE);
#endif
	return 0;
}

/* Map a new entry for fd (m->fd): hold the "in use" lock for the
 * mapping's life.  If we get it exclusively, nobody else maps the file:
 * the moment for a file: ring's recovery after a reboot (mmapfile/).
 * Then make sure a gc did not unlink the file between our open() and the
 * lock: if it did (-ESTALE), the caller opens the name again. */
static int map_new(struct seg_map *m, uint32_t want_flags, bool is_file)
{
	struct stat st;
	bool alone = ctl_try_exclusive(m->fd) == 0;
	int rc = alone ? 0 : ctl_hold_open(m->fd);
	if (rc == 0 && fstat(m->fd, &st) == 0 && st.st_nlink == 0)
		rc = -ESTALE;
	if (rc == 0)
		rc = seg_read(m->fd, &m->geom);
	/* PREFAULT and MLOCK are this process's choice for its own mapping:
	 * another process's RLIMIT_MEMLOCK must not decide whether we can open */
	if (rc == 0)
		rc = seg_map(m->fd, &m->geom, want_flags, (void **)&m->base);
	if (rc == 0 && alone && is_file)
		rc = mf_recover_alone(m->base, &m->geom);
	if (rc >= 0 && alone)
		rc = ctl_hold_open(m->fd);     /* exclusive -> shared, atomically */
	return rc < 0 ? rc : 0;
}

/* Share this process's mapping of the file behind fd, or make one.
 * Consumes fd. */
static int map_get(int fd, uint32_t want_flags, bool is_file, struct seg_map **out)
{
	struct stat st;
	int rc = fstat(fd, &st) < 0 ? -errno : 0;
	/* another user's ring is memory that user writes (fs/trust.h) */
	if (rc == 0 && !trust_owner_ok(st.st_uid))
		rc = -EACCES;
	if (rc < 0) {
		close(fd);
		return rc;
	}
	struct seg_map *m = reg_get(st.st_dev, st.st_ino);
	if (m) {
		close(fd);
		rc = map_extra_flags(m, want_flags);
		if (rc < 0) {
			reg_release(m);
			return rc;
		}
		*out = m;
		return 0;
	}
	m = sr_zalloc(sizeof(*m));
	if (!m) {
		close(fd);
		return -ENOMEM;
	}
	m->fd = fd;
	m->dev = st.st_dev;
	m->ino = st.st_ino;
	atomic_init(&m->refs, 1);
	if ((rc = map_new(m, want_flags, is_file)) < 0) {
		reg_discard(m);
		return rc;
	}
	struct seg_map *won = reg_put_new(m);
	if (won != m)
		reg_discard(m);
	*out = won;
	return 0;
}

/* ---- finding the segment ------------------------------------------------ */

struct seg_req {
	const char *path;
	int oflags;
	uint32_t map_flags;        /* opts->flags: this process's mapping */
	bool is_file;
	struct seg_geom plan;      /* what SHMRING_CREATE makes */
	bool created;              /* this open made the file ... */
	struct stat made;          /* ... this one */
};

/* Open (or create) the file.  Returns a descriptor. */
static int req_fd(struct seg_req *q)
{
	q->created = false;
	/* Bounded: each lap means another process created or unlinked the
	 * segment between our two attempts. */
	for (int lap = 0; lap < 100; lap++) {
		int fd;
		if (q->oflags & SHMRING_CREATE) {
			fd = seg_create(q->path, &q->plan, q->plan.mode);
			if (fd >= 0 && fstat(fd, &q->made) == 0)
				q->created = true;
			if (fd != -EEXIST)
				return fd;
			if (q->oflags & SHMRING_EXCL)
				return -EEXIST;
		}
		fd = seg_open(q->path);
		if (fd == -ENOENT && (q->oflags & SHMRING_CREATE))
			continue;
		if (fd == -ELOOP)
			return -EACCES;     /* a symlink where a segment should be */
		return fd;
	}
	return -EAGAIN;
}

/* The mapping of the segment the request names. */
static int req_map(struct seg_req *q, struct seg_map **out)
{
	int fd = req_fd(q);
	for (int lap = 0; fd >= 0; lap++) {
		int rc = map_get(fd, q->map_flags, q->is_file, out);
		if (rc != -ESTALE)
			return rc;
		/* removed by a gc while we opened it: look the name up again */
		if (lap >= 10)
			return -EAGAIN;
		fd = req_fd(q);
	}
	return fd;
}

/* A ring we made and cannot use must not stay behind under its name (a
 * retry with EXCL would get -EEXIST).  Only if the name still points to
 * the file we made. */
static void req_undo(const struct seg_req *q)
{
	if (q->created)
		pathat_undo_create(q->path, &q->made);
}

/* ---- the handle -------------------------------------------------------- */

int segh_lock(struct seg_handle *s, const struct ctl_sweep *sw)
{
	return ctl_lock(s->ctl, &s->ctl_local, s->lock_fd, s->map->fd, sw);
}

void segh_unlock(struct seg_handle *s)
{
	ctl_unlock(s->ctl, &s->ctl_local, s->lock_fd);
}

/* A handle of the kind the mapped header names. */
static int handle_make(struct seg_map *m, bool is_file, int oflags, const char *sub,
		       struct seg_handle **out)
{
	const struct segh_kind *k = kind_of(m->geom.kind, m->geom.flags);
	if (!k)
		return -EPROTO;     /* seg_read() let through a kind we cannot run */
	if (is_file && !k->in_files)
		return -ENOTSUP;    /* its reboot recovery does not exist */
	if (sub[0] && k->kind != SHMRING_BCAST)
		return -EINVAL;     /* subscriber names are broadcast rings' */
	struct seg_handle *s = sr_zalloc(k->handle_size);
	if (!s)
		return -ENOMEM;
	backend_head_init(&s->head, k->ops, 0, m->geom.spin_ns);
	s->map = m;
	s->ctl = (struct ctl_shared *)(m->base + m->geom.ctl_off);
	s->lock_fd = -1;
	s->slot = -1;
	s->bell.fd = -1;
	s->ring_sock = -1;
	s->is_file = is_file;
	s->oflags = oflags;
	snprintf(s->sub_name, sizeof(s->sub_name), "%s", sub);
	s->kind = k;
	pthread_mutex_init(&s->ctl_local, NULL);   /* default attributes: cannot fail */
	int rc = k->init(s);
	if (rc < 0) {
		pthread_mutex_destroy(&s->ctl_local);
		sr_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

static int handle_attach(struct seg_handle *s, uint32_t roles)
{
	/* A descriptor of our own open file description: the liveness lock
	 * must not be shared with the registry's descriptor, through which
	 * every handle of this process tests the others. */
	int fd = lock_reopen(s->map->fd, O_RDWR);
	if (fd < 0)
		return fd;
	s->lock_fd = fd;
	return s->kind->attach(s, roles);
}

static int seg_backend_open(const char *path, const char *sub, bool is_file, int oflags,
			    const struct shmring_opts *opts, struct shmring **out)
{
	struct seg_req q = {
		.path = path, .oflags = oflags, .is_file = is_file,
		.map_flags = opts ? opts->flags : 0,
	};
	/* MPMC rings in files would need their own reboot recovery */
	if (is_file && (oflags & SHMRING_CREATE) && opts && opts->kind == SHMRING_MPMC)
		return -ENOTSUP;
	int rc = seg_plan((oflags & SHMRING_CREATE) ? opts : NULL, &q.plan);
	struct seg_map *m = NULL;
	if (rc == 0)
		rc = req_map(&q, &m);
	struct seg_handle *s = NULL;
	if (rc == 0 && (rc = handle_make(m, is_file, oflags, sub, &s)) < 0)
		reg_release(m);
	uint32_t roles = (uint32_t)oflags & HANDLE_ROLES;
	if (rc == 0 && roles && (rc = handle_attach(s, roles)) < 0) {
		if (s->lock_fd >= 0)
			close(s->lock_fd);
		reg_release(m);
		pthread_mutex_destroy(&s->ctl_local);
		sr_free(s);
	}
	if (rc < 0) {
		req_undo(&q);
		return rc;
	}
	*out = &s->head;
	return 0;
}

int segh_close(struct shmring *r)
{
	struct seg_handle *s = (struct seg_handle *)r;
	if (!r->forked && r->roles)
		/* relaxed: a timestamp for the tool's gc, display only.  Only
		 * role holders: a monitor that opens and closes to look must not
		 * keep an abandoned ring "active" forever. */
		atomic_store_explicit(&s->ctl->last_close_ns, clock_real_ns(), memory_order_relaxed);
	if (!r->forked && s->slot >= 0)
		s->kind->detach(s);
	s->slot = -1;
	r->roles = 0;
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	bell_free(&s->bell);       /* after detach: no waker reads its id any more */
	if (s->ring_sock >= 0)
		close(s->ring_sock);
	reg_release(s->map);
	if (!r->forked)      /* a child may have inherited it locked: leave it be */
		pthread_mutex_destroy(&s->ctl_local);
	sr_free(s);
	return 0;
}

int segh_stats(struct shmring *r, struct shmring_stats *st)
{
	struct seg_handle *s = (struct seg_handle *)r;
	seg_counters(&s->map->geom, s->ctl, s->map->base + s->map->geom.ring_off, st);
	ctl_count(s->ctl, s->map->fd, &st->producers, &st->consumers);
	/* RemoveIPC=yes deletes a user's segments when their last session
	 * ends, even while mapped: a later open by name finds nothing or a twin */
	struct stat fst;
	st->unlinked = fstat(s->map->fd, &fst) == 0 && fst.st_nlink == 0;
	return 0;
}

void segh_fork_child(struct shmring *r)
{
	/* The child shares the parent's open file descriptions, hence its
	 * liveness locks: close our copy so that the parent's death still
	 * frees its slots. */
	struct seg_handle *s = (struct seg_handle *)r;
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	s->lock_fd = -1;
	/* the doorbell stays the parent's: its file too (not removed here) */
	if (s->bell.fd >= 0)
		close(s->bell.fd);
	s->bell.fd = -1;
	if (s->ring_sock >= 0)
		close(s->ring_sock);
	s->ring_sock = -1;
}

int segh_flush(struct seg_handle *s, bool resv_open, uint64_t *flushed, uint64_t end)
{
	if (!s->is_file)
		return 0;               /* nothing of a shm: ring outlives a reboot anyway */
	uint8_t *base = s->map->base;
	const struct seg_geom *g = &s->map->geom;
	uint32_t roles = s->head.roles;
	int rc = 0;
	if (roles & SHMRING_PRODUCER) {
		if (resv_open)
			return -EINPROGRESS;
		rc = mf_flush_records(base, g, flushed, end);
	}
	if (rc == 0 && (roles & SHMRING_CONSUMER))
		rc = mf_flush_position(base, g);
	if (rc == 0 && !roles)
		rc = mf_flush_all(base, g);
	return rc;
}

/* ---- one producer, one consumer (SPSC, FIXED) --------------------------- */

static _Atomic uint32_t *pair_word(const struct seg_handle *s, uint32_t off)
{
	return (_Atomic uint32_t *)(void *)(s->map->base + s->map->geom.ring_off + off);
}

int segh_pair_attach(struct seg_handle *s, uint32_t roles)
{
	int rc = segh_lock(s, NULL);
	if (rc < 0)
		return rc;
	ctl_repair(s->ctl, s->map->fd, NULL);
	rc = s->kind->attach_locked(s, roles);
	segh_unlock(s);
	return rc;
}

int segh_pair_join(struct seg_handle *s, uint32_t roles)
{
	struct ctl_shared *c = s->ctl;
	_Atomic uint32_t *prod_sleeping = pair_word(s, SEGH_PAIR_PROD_SLEEPING);
	_Atomic uint32_t *cons_sleeping = pair_word(s, SEGH_PAIR_CONS_SLEEPING);
	int rc = ctl_join(c, s->lock_fd, roles);
	if (rc < 0)
		return rc;
	s->slot = rc;
	/* A predecessor killed while asleep left its flag up: the peer would
	 * make a FUTEX_WAKE per message for nobody.  relaxed: under the lock,
	 * and a stale value costs one spurious wake at most.  WAIT_FENCED is
	 * the peer's (its waker role): it stays. */
	if (roles & ROLE_PRODUCER) {
		c->prod_owner = (uint32_t)s->slot + 1;
		atomic_fetch_and_explicit(prod_sleeping, ~WAIT_WAITERS, memory_order_relaxed);
	}
	if (roles & ROLE_CONSUMER) {
		c->cons_owner = (uint32_t)s->slot + 1;
		atomic_fetch_and_explicit(cons_sleeping, ~WAIT_WAITERS, memory_order_relaxed);
	}
	return 0;
}

void segh_pair_detach(struct seg_handle *s)
{
	_Atomic uint32_t *prod_sleeping = pair_word(s, SEGH_PAIR_PROD_SLEEPING);
	_Atomic uint32_t *cons_sleeping = pair_word(s, SEGH_PAIR_CONS_SLEEPING);
	if (segh_lock(s, NULL) < 0)
		return;
	uint32_t me = (uint32_t)s->slot + 1;
	/* relaxed: our arming goes with us; a stale bit costs the peer one
	 * failed sendto */
	if (s->ctl->prod_owner == me) {
		s->ctl->prod_owner = 0;
		atomic_fetch_and_explicit(prod_sleeping, ~WAIT_POLLING, memory_order_relaxed);
	}
	if (s->ctl->cons_owner == me) {
		s->ctl->cons_owner = 0;
		atomic_fetch_and_explicit(cons_sleeping, ~WAIT_POLLING, memory_order_relaxed);
	}
	ctl_leave(s->ctl, s->lock_fd, (uint32_t)s->slot);
	segh_unlock(s);
}

int segh_pair_caps(struct shmring *r, struct shmring_caps *caps)
{
	const struct seg_handle *s = segh_of(r);
	const struct seg_geom *g = &s->map->geom;
	/* a shm: segment outlives its processes too (until unlink or reboot) */
	caps->flags = SHMRING_CAP_ZEROCOPY | SHMRING_CAP_RECOVERY | SHMRING_CAP_BLOCKING |
		      SHMRING_CAP_PERSISTENT | SHMRING_CAP_POLL |
		      ((g->flags & SHMRING_FIXED) ? SHMRING_CAP_FIXED : 0) |
		      (s->is_file ? SHMRING_CAP_DURABLE : 0);
	caps->max_producers = 1;
	caps->max_consumers = 1;
	caps->max_msg = g->max_msg;
	caps->capacity = g->capacity;
	return 0;
}

void segh_pair_shutdown(struct seg_handle *s, _Atomic uint32_t *shutdown,
			_Atomic uint32_t *cons_sleeping, _Atomic uint32_t *cons_wake,
			_Atomic uint64_t *prod_wakes, _Atomic uint64_t *prod_bells)
{
	/* [S1] seq_cst: after every publish of ours ([P2]/[X2] are sequenced
	 * before); pairs with the consumer's [S2] acquire */
	atomic_store_explicit(shutdown, 1, memory_order_seq_cst);
	/* a poller must learn it too: take its arming down and ring; then
	 * unconditionally: a consumer asleep must learn the stream is over */
	if (atomic_fetch_and_explicit(cons_sleeping, ~WAIT_WAITERS, memory_order_seq_cst) &
	    WAIT_POLLING)
		/* relaxed: written under the control lock at attach; a stale
		 * owner names a doorbell nobody listens to (checked there) */
		segh_ring(s, __atomic_load_n(&s->ctl->cons_owner, __ATOMIC_RELAXED), prod_bells);
	wait_wake(NULL, cons_wake, prod_wakes, NULL);
}

/* Polls before a waiter reads the clock (tens of nanoseconds each on a
 * VM, which a round trip would pay three times). */
#define PRE_SPIN_POLLS 64u

bool segh_pre_spin(const struct seg_handle *s, _Atomic uint64_t *watch, uint64_t seen,
		   _Atomic uint32_t *shutdown)
{
	if (s->head.spin_ns == 0)
		return false;
	for (unsigned i = 0; i < PRE_SPIN_POLLS; i++) {
		/* relaxed: a hint to look again; the ring re-reads with acquire */
		if (atomic_load_explicit(watch, memory_order_relaxed) != seen ||
		    atomic_load_explicit(shutdown, memory_order_relaxed))
			return true;
		cpu_relax();
	}
	return false;
}

/* ---- doorbells (shmring_fd) -------------------------------------------- */

int segh_fd(struct shmring *r)
{
	struct seg_handle *s = segh_of(r);
	if (segh_polls(s))
		return s->bell.fd;
	if (s->slot < 0 || (uint32_t)s->slot >= CTL_MAX_PARTS)
		return -EPERM;
	/* who may write the ring may ring us: its group and write bits */
	struct stat st;
	if (fstat(s->map->fd, &st) < 0)
		return -errno;
	struct bell b;
	int rc = bell_make(&b, st.st_mode & 0777, st.st_gid);
	if (rc < 0)
		return rc;
	/* threads sharing the handle: the first one's doorbell stays */
	pthread_mutex_lock(&s->ctl_local);
	bool won = !segh_polls(s);
	if (won) {
		s->bell.id = b.id;
		s->bell.dev = b.dev;
		s->bell.ino = b.ino;
		/* [B0] release: the id is published before our first arming
		 * ([B1] is sequenced after it); a waker's acquire in
		 * segh_ring() pairs */
		atomic_store_explicit(&s->ctl->parts[s->slot].bell, b.id, memory_order_release);
		__atomic_store_n(&s->bell.fd, b.fd, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&s->ctl_local);
	if (!won)
		bell_free(&b);
	else
		/* Nothing is armed yet, and messages may be waiting: start
		 * readable, so that the loop's first call finds them (or its
		 * -EAGAIN arms).  Counted as spurious if there are none. */
		segh_ring_self(s);
	return s->bell.fd;
}

void segh_ring(struct seg_handle *s, uint32_t owner, _Atomic uint64_t *rung)
{
	if (owner == 0 || owner > CTL_MAX_PARTS)
		return;                 /* none, or garbage: nobody to ring */
	/* acquire: pairs with [B0]; the id is checked by its use only (a
	 * name in BELL_DIR that nobody may be bound to) */
	uint64_t id = atomic_load_explicit(&s->ctl->parts[owner - 1].bell, memory_order_acquire);
	if (id == 0)
		return;
	if (bell_ring(&s->ring_sock, id) == 0)
		/* relaxed: single writer (our role), display only */
		atomic_store_explicit(rung, atomic_load_explicit(rung, memory_order_relaxed) + 1,
				      memory_order_relaxed);
}

void segh_arm_prepare(struct seg_handle *s, uint64_t done, _Atomic uint64_t *spurious)
{
	/* Empty the doorbell first: level-triggered pollers must see it
	 * readable again only for a wake-up that comes after this arming. */
	/* relaxed: armed_at is ours, a hint for the counter */
	if (bell_drain(&s->bell) && done == __atomic_load_n(&s->armed_at, __ATOMIC_RELAXED))
		/* woken, and no message moved since we armed */
		atomic_store_explicit(spurious, atomic_load_explicit(spurious, memory_order_relaxed) + 1,
				      memory_order_relaxed);
	__atomic_store_n(&s->armed_at, done, __ATOMIC_RELAXED);
}

void segh_ring_self(struct seg_handle *s)
{
	(void)bell_ring(&s->ring_sock, s->bell.id);
}

void segh_arm_fence(struct seg_handle *s)
{
	/* The heavy half of the asymmetric fence, as for a sleeper
	 * (sync/wait.c).  Refused by the kernel: the waker's store may not
	 * be ordered before its load; ring ourselves, so that the poller
	 * comes back and looks (busy, but never stuck). */
	if (!fence_heavy())
		segh_ring_self(s);
}

/* Only remove what is a ring: read the header first, and then the name
 * only if it still refers to the file read (fs/pathat.h). */
/* The doorbells (sync/bell.h) its participant table names, of pollers
 * that died without closing: they go with the ring.  Live ones belong to
 * their pollers, who remove them when they close. */
static void sweep_bells(int fd, const struct seg_geom *g)
{
	struct ctl_part parts[CTL_MAX_PARTS];
	off_t at = (off_t)(g->ctl_off + offsetof(struct ctl_shared, parts));
	if (pread(fd, parts, sizeof(parts), at) != (ssize_t)sizeof(parts))
		return;
	for (uint32_t i = 0; i < CTL_MAX_PARTS; i++) {
		/* relaxed: a snapshot of the file; any id is only a name to try */
		uint64_t id = atomic_load_explicit(&parts[i].bell, memory_order_relaxed);
		if (id)
			(void)bell_remove_dead(id);
	}
}

static int is_segment(int dfd, const char *name, struct stat *st)
{
	struct seg_geom g;
	int fd = openat(dfd, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	int rc = fd < 0 ? (errno == ELOOP ? -EACCES : -errno) : seg_read(fd, &g);
	if (rc == 0)
		sweep_bells(fd, &g);
	if (rc == -ENOTSUP)
		rc = 0;         /* a ring of a kind this build cannot run */
	if (rc == 0 && fstat(fd, st) < 0)
		rc = -errno;
	if (fd >= 0)
		close(fd);
	return rc;
}

static int seg_backend_unlink(const char *path)
{
	return pathat_unlink_checked(path, is_segment);
}

static int shm_open_ring(const char *path, int oflags, const struct shmring_opts *opts,
			 struct shmring **out)
{
	return seg_backend_open(path, "", false, oflags, opts, out);
}

/* file:PATH#NAME: the path into buf, the subscriber's name into sub ("":
 * none).  A '#' starts a name: -EINVAL if what follows is not one (1 to
 * 63 of [A-Za-z0-9._-], not starting with '.'). */
static int file_split(const char *where, char *buf, size_t n, char sub[SEGH_NAME_MAX])
{
	const char *hash = strrchr(where, '#');
	size_t len = hash ? (size_t)(hash - where) : strlen(where);
	sub[0] = 0;
	if (len == 0 || len >= n)
		return -EINVAL;
	memcpy(buf, where, len);
	buf[len] = 0;
	if (!hash)
		return 0;
	const char *name = hash + 1;
	size_t k = strlen(name);
	if (k == 0 || k >= SEGH_NAME_MAX || name[0] == '.')
		return -EINVAL;
	for (size_t i = 0; i < k; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return -EINVAL;
	}
	memcpy(sub, name, k + 1);
	return 0;
}

static int file_open_ring(const char *where, int oflags, const struct shmring_opts *opts,
			  struct shmring **out)
{
	char path[PATH_MAX], sub[SEGH_NAME_MAX];
	int rc = file_split(where, path, sizeof(path), sub);
	return rc < 0 ? rc : seg_backend_open(path, sub, true, oflags, opts, out);
}

static int file_unlink_ring(const char *where)
{
	char path[PATH_MAX], sub[SEGH_NAME_MAX];
	int rc = file_split(where, path, sizeof(path), sub);
	return rc < 0 ? rc : seg_backend_unlink(path);
}

const struct shmring_backend backend_shm = {
	.scheme = "shm", .open = shm_open_ring, .unlink = seg_backend_unlink,
};
const struct shmring_backend backend_file = {
	.scheme = "file", .open = file_open_ring, .unlink = file_unlink_ring,
};
