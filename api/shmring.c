/* SPDX-License-Identifier: MIT */
/* Opening, closing, unlinking, statistics: everything but the data path. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../mem/alloc.h"
#include "mpmc.h"
#include "handle.h"
#include "../fs/pathat.h"
#include "../shm/registry.h"
#include "../fs/trust.h"
#include "uri.h"
#include "../mmapfile/mmapfile.h"
#include "../shm/inspect.h"
#include "../shm/segment.h"
#include "../shm/ctl.h"
#include "../sync/clock.h"
#include "../sync/fence.h"
#include "../sync/lock.h"
#include "../sync/wait.h"

#define OFLAGS_ALL (SHMRING_CREATE | SHMRING_EXCL | SHMRING_PRODUCER | SHMRING_CONSUMER)
_Static_assert(SHMRING_PRODUCER == ROLE_PRODUCER && SHMRING_CONSUMER == ROLE_CONSUMER,
	       "oflags role bits are the participant role bits");

/* ---- process-wide state ------------------------------------------------ */

/* Every open handle, so that a forked child can disown the parent's roles. */
static pthread_mutex_t handles_lock = PTHREAD_MUTEX_INITIALIZER;
static struct shmring *handles;
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static bool init_done;

static void fork_prepare(void) { pthread_mutex_lock(&handles_lock); }
static void fork_parent(void) { pthread_mutex_unlock(&handles_lock); }

static void fork_child(void)
{
	/* The child shares the parent's open file descriptions, hence its
	 * liveness locks: close our copies so that the parent's death still
	 * frees its slots, and drop the roles, which stay the parent's. */
	for (struct shmring *r = handles; r; r = r->next) {
		if (r->lock_fd >= 0)
			close(r->lock_fd);
		r->lock_fd = -1;
		r->roles = 0;
		r->forked = 1;
	}
	pthread_mutex_unlock(&handles_lock);
}

/* Once per process; a failure is not remembered, so a later open tries
 * again. */
static int lib_init(void)
{
	int rc = 0;
	pthread_mutex_lock(&init_lock);
	if (!init_done) {
		rc = reg_init();
		if (rc == 0 && pthread_atfork(fork_prepare, fork_parent, fork_child))
			rc = -ENOMEM;
		init_done = rc == 0;
	}
	pthread_mutex_unlock(&init_lock);
	return rc;
}

static void handle_link(struct shmring *r)
{
	pthread_mutex_lock(&handles_lock);
	r->next = handles;
	if (handles)
		handles->prev = r;
	handles = r;
	pthread_mutex_unlock(&handles_lock);
}

static void handle_unlink(struct shmring *r)
{
	pthread_mutex_lock(&handles_lock);
	if (r->prev)
		r->prev->next = r->next;
	else if (handles == r)
		handles = r->next;
	if (r->next)
		r->next->prev = r->prev;
	pthread_mutex_unlock(&handles_lock);
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

/* Share this process's mapping of the file behind fd, or make one.
 * Consumes fd. */
static int map_get(int fd, uint32_t want_flags, struct seg_map **out)
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
	/* Hold the "in use" lock for the mapping's life.  If we get it
	 * exclusively, nobody else maps the file: the moment for recovery that
	 * needs to be alone (mmapfile/: after a reboot).  Then make sure a gc
	 * did not unlink the file between our open() and the lock: if it did,
	 * the caller opens the name again. */
	bool alone = ctl_try_exclusive(fd) == 0;
	rc = alone ? 0 : ctl_hold_open(fd);
	if (rc == 0 && fstat(fd, &st) == 0 && st.st_nlink == 0)
		rc = -ESTALE;
	if (rc == 0)
		rc = seg_read(fd, &m->geom);
	/* PREFAULT and MLOCK are this process's choice for its own mapping:
	 * another process's RLIMIT_MEMLOCK must not decide whether we can open */
	if (rc == 0)
		rc = seg_map(fd, &m->geom, want_flags, (void **)&m->base);
	if (rc == 0 && alone) {
		rc = mf_recover_alone(m->base, &m->geom);
		if (rc >= 0)
			rc = ctl_hold_open(fd);     /* exclusive -> shared, atomically */
	}
	if (rc < 0) {
		reg_discard(m);
		return rc;
	}
	struct seg_map *won = reg_put_new(m);
	if (won != m)
		reg_discard(m);
	*out = won;
	return 0;
}

/* Open (or create) the file behind a shm: URI. Returns a descriptor;
 * *created tells whether this call made the file. */
static int seg_fd(const struct uri *u, int oflags, const struct seg_geom *plan, bool *created)
{
	*created = false;
	/* Bounded: each lap means another process created or unlinked the
	 * segment between our two attempts. */
	for (int lap = 0; lap < 100; lap++) {
		if (oflags & SHMRING_CREATE) {
			int fd = seg_create(u->path, plan, plan->mode);
			*created = fd >= 0;
			if (fd != -EEXIST)
				return fd;
			if (oflags & SHMRING_EXCL)
				return -EEXIST;
		}
		int fd = seg_open(u->path);
		if (fd == -ENOENT && (oflags & SHMRING_CREATE))
			continue;
		if (fd == -ELOOP)
			return -EACCES;     /* a symlink where a segment should be */
		return fd;
	}
	return -EAGAIN;
}

/* ---- roles ------------------------------------------------------------- */

static int attach_roles(struct shmring *r, uint32_t roles)
{
	struct seg_map *m = r->map;
	/* A descriptor of our own open file description: the liveness lock
	 * must not be shared with the registry's descriptor, through which
	 * every handle of this process tests the others. */
	int fd = lock_reopen(m->fd, O_RDWR);
	if (fd < 0)
		return fd;
	r->lock_fd = fd;
	if (r->is_mpmc)
		return mp_attach(r, roles);

	int rc = ctl_lock(r->ctl, &r->ctl_local, r->lock_fd, m->fd, NULL);
	if (rc < 0)
		return rc;
	ctl_repair(r->ctl, m->fd, NULL);
	if (((roles & ROLE_PRODUCER) && r->ctl->prod_owner) ||
	    ((roles & ROLE_CONSUMER) && r->ctl->cons_owner)) {
		rc = -EBUSY;       /* after repair, an owner is a live one */
		goto out;
	}
	/* registered receivers of the sleeper's membarrier may skip the full
	 * fence on every publish (sync/fence.h) */
	bool light = fence_register();
	struct spsc_geom g = {
		.data = m->base + m->geom.data_off,
		.cap = m->geom.capacity,
		.mask = m->geom.capacity - 1,
		.max_msg = m->geom.max_msg,
	};
	if (roles & ROLE_CONSUMER) {
		/* relaxed: the previous consumer is gone (dead or closed) */
		uint64_t head = atomic_load_explicit(&r->sh->cons_head, memory_order_relaxed);
		uint64_t read = atomic_load_explicit(&r->sh->cons_read, memory_order_relaxed);
		if (read != head) {
			int64_t n = spsc_count_records(&g, head, read);
			if (n < 0) {
				rc = -EPROTO;
				goto out;
			}
			/* relaxed: under the control lock; display only */
			atomic_fetch_add_explicit(&r->ctl->redelivered, (uint64_t)n,
						  memory_order_relaxed);
		}
		if ((rc = spsc_cons_init(&r->cons, r->sh, &g, light)) < 0)
			goto out;
	}
	if ((roles & ROLE_PRODUCER) && (rc = spsc_prod_init(&r->prod, r->sh, &g, light)) < 0)
		goto out;
	r->flushed = r->prod.tail;
	rc = ctl_join(r->ctl, r->lock_fd, roles);
	if (rc < 0)
		goto out;
	r->slot = rc;
	rc = 0;
	/* A predecessor killed while asleep left its flag up: the peer would
	 * make a FUTEX_WAKE per message for nobody.  relaxed: under the lock,
	 * and a stale value costs one spurious wake at most. */
	if (roles & ROLE_PRODUCER) {
		r->ctl->prod_owner = (uint32_t)r->slot + 1;
		atomic_store_explicit(&r->sh->prod_sleeping, 0, memory_order_relaxed);
	}
	if (roles & ROLE_CONSUMER) {
		r->ctl->cons_owner = (uint32_t)r->slot + 1;
		atomic_store_explicit(&r->sh->cons_sleeping, 0, memory_order_relaxed);
	}
	r->roles = roles;
out:
	ctl_unlock(r->ctl, &r->ctl_local, r->lock_fd);
	return rc;
}

static void detach_roles(struct shmring *r)
{
	if (r->forked || r->slot < 0)
		return;
	if (r->is_mpmc)
		mp_detach(r);
	else if (ctl_lock(r->ctl, &r->ctl_local, r->lock_fd, r->map->fd, NULL) == 0) {
		uint32_t me = (uint32_t)r->slot + 1;
		if (r->ctl->prod_owner == me)
			r->ctl->prod_owner = 0;
		if (r->ctl->cons_owner == me)
			r->ctl->cons_owner = 0;
		ctl_leave(r->ctl, r->lock_fd, (uint32_t)r->slot);
		ctl_unlock(r->ctl, &r->ctl_local, r->lock_fd);
	}
	/* if the lock timed out, closing lock_fd below still proves us gone */
	r->slot = -1;
	r->roles = 0;
}

/* ---- public ------------------------------------------------------------ */

/* pipe: and mq: (fallback/): the same handle, the calls go to the backend */
static int fb_open(const struct uri *u, int oflags, const struct shmring_opts *opts,
		   struct shmring **out)
{
	struct shmring *r = sr_zalloc(sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->lock_fd = -1;
	r->slot = -1;
	int rc = u->scheme == URI_PIPE ? fb_pipe_open(u->path, oflags, opts, &r->fbh, &r->fb)
				       : fb_mq_open(u->name, oflags, opts, &r->fbh, &r->fb);
	if (rc < 0) {
		sr_free(r);
		return rc;
	}
	r->roles = (uint32_t)oflags & (ROLE_PRODUCER | ROLE_CONSUMER);
	handle_link(r);
	*out = r;
	return 0;
}

int shmring_open(const char *uri, int oflags, const struct shmring_opts *opts,
		 struct shmring **out)
{
	struct uri u;
	struct seg_geom plan;
	int rc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if ((oflags & ~OFLAGS_ALL) || ((oflags & SHMRING_EXCL) && !(oflags & SHMRING_CREATE)))
		return -EINVAL;
	if ((rc = uri_parse(uri, &u)) < 0)
		return rc;
	if (opts && (opts->flags & ~(SHMRING_PREFAULT | SHMRING_MLOCK)))
		return -EINVAL;         /* mapping flags count on every open */
	/* first: the fork handlers that disown a child's roles apply to every
	 * backend */
	if ((rc = lib_init()) < 0)
		return rc;
	if (u.scheme == URI_PIPE || u.scheme == URI_MQ)
		return fb_open(&u, oflags, opts, out);
	/* MPMC rings in files would need their own reboot recovery */
	if (u.scheme == URI_FILE && (oflags & SHMRING_CREATE) && opts && opts->kind == SHMRING_MPMC)
		return -ENOTSUP;
	if ((rc = seg_plan((oflags & SHMRING_CREATE) ? opts : NULL, &plan)) < 0)
		return rc;

	bool created;
	int fd = seg_fd(&u, oflags, &plan, &created);
	if (fd < 0)
		return fd;
	struct stat made;
	if (created && fstat(fd, &made) < 0)
		created = false;
	struct shmring *r = sr_zalloc(sizeof(*r));
	if (!r) {
		rc = -ENOMEM;
		close(fd);
		goto undo_create;
	}
	r->lock_fd = -1;
	r->slot = -1;
	pthread_mutex_init(&r->ctl_local, NULL);   /* default attributes: cannot fail */
	for (int lap = 0; (rc = map_get(fd, opts ? opts->flags : 0, &r->map)) == -ESTALE; lap++) {
		/* removed by a gc while we opened it: look the name up again */
		if (lap >= 10 || (fd = seg_fd(&u, oflags, &plan, &created)) < 0) {
			rc = lap >= 10 ? -EAGAIN : fd;
			break;
		}
		if (created && fstat(fd, &made) < 0)
			created = false;
	}
	if (rc < 0) {
		sr_free(r);
		goto undo_create;
	}
	r->is_file = u.scheme == URI_FILE;
	r->ctl = (struct ctl_shared *)(r->map->base + r->map->geom.ctl_off);
	r->sh = (struct spsc_shared *)(r->map->base + r->map->geom.ring_off);
	r->spin_ns = r->map->geom.spin_ns;
	if (r->map->geom.kind == SHMRING_MPMC &&
	    (rc = r->is_file ? -ENOTSUP : mp_open(r)) < 0) {
		reg_release(r->map);
		sr_free(r);
		goto undo_create;
	}
	uint32_t roles = (uint32_t)oflags & (ROLE_PRODUCER | ROLE_CONSUMER);
	if (roles && (rc = attach_roles(r, roles)) < 0) {
		if (r->lock_fd >= 0)
			close(r->lock_fd);
		reg_release(r->map);
		sr_free(r);
		goto undo_create;
	}
	handle_link(r);
	*out = r;
	return 0;

undo_create:
	/* A ring we made and cannot use must not stay behind under its name
	 * (a retry with EXCL would get -EEXIST).  Only if the name still
	 * points to the file we made. */
	if (created) {
		const char *name;
		int dfd = pathat_dir(u.path, &name, false);
		if (dfd >= 0) {
			(void)pathat_unlink_same(dfd, name, &made);
			close(dfd);
		}
	}
	return rc;
}

int shmring_close(struct shmring *r)
{
	if (!r)
		return -EINVAL;
	handle_unlink(r);
	if (r->fb && !r->is_mpmc) {
		int rc = r->fb->close(r->fbh);
		sr_free(r);
		return rc;
	}
	if (!r->forked && r->roles)
		/* relaxed: a timestamp for the tool's gc, display only.  Only
		 * role holders: a monitor that opens and closes to look must not
		 * keep an abandoned ring "active" forever. */
		atomic_store_explicit(&r->ctl->last_close_ns, clock_real_ns(), memory_order_relaxed);
	detach_roles(r);
	if (r->lock_fd >= 0)
		close(r->lock_fd);
	reg_release(r->map);
	if (!r->forked)      /* a child may have inherited it locked: leave it be */
		pthread_mutex_destroy(&r->ctl_local);
	sr_free(r);
	return 0;
}

int shmring_unlink(const char *uri)
{
	struct uri u;
	int rc = uri_parse(uri, &u);
	if (rc < 0)
		return rc;
	if (u.scheme == URI_PIPE)
		return fb_pipe_unlink(u.path);
	if (u.scheme == URI_MQ)
		return fb_mq_unlink(u.name);
	/* Only remove what is a ring: read the header first, and then the
	 * name only if it still refers to the file read (fs/pathat.h). */
	const char *name;
	int dfd = pathat_dir(u.path, &name, true);
	if (dfd < 0)
		return dfd;
	struct seg_geom g;
	struct stat st;
	int fd = openat(dfd, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	rc = fd < 0 ? (errno == ELOOP ? -EACCES : -errno) : seg_read(fd, &g);
	if (rc == -ENOTSUP)
		rc = 0;
	if (rc == 0 && fstat(fd, &st) < 0)
		rc = -errno;
	if (rc == 0)
		rc = pathat_unlink_same(dfd, name, &st);
	if (fd >= 0)
		close(fd);
	close(dfd);
	return rc == -ESTALE ? -EAGAIN : rc;
}

int shmring_stats(struct shmring *r, struct shmring_stats *st)
{
	if (!r || !st)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	if (r->fb && !r->is_mpmc)
		return r->fb->stats(r->fbh, st);
	struct ctl_shared *c = r->ctl;
	seg_counters(&r->map->geom, c, r->map->base + r->map->geom.ring_off, st);
	ctl_count(c, r->map->fd, &st->producers, &st->consumers);
	/* RemoveIPC=yes deletes a user's segments when their last session
	 * ends, even while mapped: a later open by name finds nothing or a twin */
	struct stat fst;
	st->unlinked = fstat(r->map->fd, &fst) == 0 && fst.st_nlink == 0;
	return 0;
}

int shmring_flush(struct shmring *r)
{
	if (!r)
		return -EINVAL;
	if (!r->is_file || r->forked || r->fb)
		return 0;               /* nothing of these outlives a reboot anyway */
	uint8_t *base = r->map->base;
	const struct seg_geom *g = &r->map->geom;
	int rc = 0;
	if (r->roles & ROLE_PRODUCER) {
		if (r->prod.resv_open)
			return -EINPROGRESS;
		rc = mf_flush_records(base, g, &r->flushed, r->prod.tail);
	}
	if (rc == 0 && (r->roles & ROLE_CONSUMER))
		rc = mf_flush_position(base, g);
	if (rc == 0 && !r->roles)
		rc = mf_flush_all(base, g);
	return rc;
}

int shmring_caps(struct shmring *r, struct shmring_caps *caps)
{
	if (!r || !caps)
		return -EINVAL;
	memset(caps, 0, sizeof(*caps));
	if (r->fb)
		return r->fb->caps(r->fbh, caps);
	/* a shm: segment outlives its processes too (until unlink or reboot) */
	caps->flags = SHMRING_CAP_ZEROCOPY | SHMRING_CAP_RECOVERY | SHMRING_CAP_BLOCKING |
		      SHMRING_CAP_PERSISTENT | (r->is_file ? SHMRING_CAP_DURABLE : 0);
	caps->max_producers = 1;
	caps->max_consumers = 1;
	caps->max_msg = r->map->geom.max_msg;
	caps->capacity = r->map->geom.capacity;
	return 0;
}

int shmring_set_spin(struct shmring *r, uint32_t spin_ns)
{
	if (!r || spin_ns > 1000000000u)
		return -EINVAL;
	r->spin_ns = spin_ns;
	return 0;
}

const char *shmring_strerror(int err)
{
	switch (err) {
	case 0: return "success";
	case -EAGAIN: return "ring full or empty (would block)";
	case -ETIMEDOUT: return "timed out";
	case -EMSGSIZE: return "message larger than max_msg, or receive buffer too small";
	case -EPIPE: return "stream shut down and drained";
	case -EBUSY: return "role already held by a live process";
	case -EPROTO: return "segment of another version, corrupt, or not a ring";
	case -EPERM: return "operation not allowed by this handle's role";
	case -ENOTSUP: return "not supported by this backend or build";
	case -EINPROGRESS: return "a reservation or acquired message is still open";
	case -ENOSPC: return "no space left for the segment (is /dev/shm full?)";
	case -EUSERS: return "participant table full, or 64 producers (consumers) already";
	case -ECANCELED: return "reservation skipped after the stall timeout: message not sent";
	}
	if (err < 0 && err != INT_MIN) {
		const char *s = strerrordesc_np(-err);
		if (s)
			return s;
	}
	return "unknown error";
}
