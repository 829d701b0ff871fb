/* SPDX-License-Identifier: MIT */
/*
 * Opening, closing, unlinking, statistics: everything but the data path.
 * The URI names the backend (api/uri.c); the handle's ops do the rest.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "../backend/backend.h"
#include "../shm/registry.h"
#include "uri.h"

#define OFLAGS_ALL (SHMRING_CREATE | SHMRING_EXCL | SHMRING_PRODUCER | SHMRING_CONSUMER | \
		    SHMRING_OLDEST)

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
	 * liveness locks: each backend gives up what must stay the parent's
	 * (fork_child), and the roles stay the parent's too. */
	for (struct shmring *r = handles; r; r = r->next) {
		if (r->ops->fork_child)
			r->ops->fork_child(r);
		r->roles = 0;
		r->inl.fast = 0;    /* the inline calls take the library's way too */
		r->forked = true;
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

/* ---- public ------------------------------------------------------------ */

int shmring_open(const char *uri, int oflags, const struct shmring_opts *opts,
		 struct shmring **out)
{
	struct uri u;
	int rc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if ((oflags & ~OFLAGS_ALL) || ((oflags & SHMRING_EXCL) && !(oflags & SHMRING_CREATE)))
		return -EINVAL;
	if ((rc = uri_parse(uri, &u)) < 0)
		return rc;
	if (opts && (opts->flags & ~(SHMRING_PREFAULT | SHMRING_MLOCK | SHMRING_OVERWRITE |
				     SHMRING_FIXED)))
		return -EINVAL;         /* mapping flags count on every open */
	/* first: the fork handlers that disown a child's roles apply to every
	 * backend */
	if ((rc = lib_init()) < 0)
		return rc;
	struct shmring *r;
	if ((rc = u.backend->open(u.where, oflags, opts, &r)) < 0)
		return rc;
	handle_link(r);
	*out = r;
	return 0;
}

int shmring_close(struct shmring *r)
{
	if (!r)
		return -EINVAL;
	handle_unlink(r);
	return r->ops->close(r);
}

int shmring_unlink(const char *uri)
{
	struct uri u;
	int rc = uri_parse(uri, &u);
	if (rc < 0)
		return rc;
	return u.backend->unlink(u.where);
}

/* stats and caps: the backend fills a zeroed struct */
int shmring_stats(struct shmring *r, struct shmring_stats *st)
{
	return !r || !st ? -EINVAL : r->ops->stats(r, memset(st, 0, sizeof(*st)));
}

int shmring_caps(struct shmring *r, struct shmring_caps *caps)
{
	return !r || !caps ? -EINVAL : r->ops->caps(r, memset(caps, 0, sizeof(*caps)));
}

int shmring_flush(struct shmring *r)
{
	if (!r)
		return -EINVAL;
	if (r->forked || !r->ops->flush)
		return 0;               /* nothing of these outlives a reboot anyway */
	return r->ops->flush(r);
}

int shmring_fd(struct shmring *r)
{
	if (!r)
		return -EINVAL;
	if (!r->roles)
		return -EPERM;          /* no call of it can return -EAGAIN */
	return r->ops->fd ? r->ops->fd(r) : -ENOTSUP;
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
