/* SPDX-License-Identifier: MIT */
/*
 * The internal backend interface: what api/ calls and what every backend
 * fills in.  A backend is a URI scheme (shm:, file:, pipe:, mq:) with an
 * open and an unlink; the handle it opens starts with the common head
 * below, and its calls go through the head's ops.
 *
 * api/ has already checked the arguments and the handle's role (-EINVAL,
 * -EPERM) when it calls an op; the op returns 0/count or -errno exactly as
 * the public function documents.  An op never sees a NULL handle.
 *
 * Adding a backend: docs/design.md, "Adding a backend".
 */
#ifndef SHMRING_BACKEND_H
#define SHMRING_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "shmring.h"
#include "shmring/inline.h"

#define BACKEND_HIDDEN __attribute__((visibility("hidden")))

/* The role bits of a handle: the oflags bits of shmring_open(). */
#define HANDLE_ROLES (SHMRING_PRODUCER | SHMRING_CONSUMER)
/* In a handle's roles beside its role bits while it holds a role of an
 * SPSC ring: api/ops.c's inline way in, one test of one word. */
#define HANDLE_SPSC 0x100u
/* The same for a role of a broadcast ring: api/ops.c calls its copying
 * send and receive directly (backend/bcast.h), not through the ops. */
#define HANDLE_BCAST 0x200u

struct shmring_backend_ops;

/* The common head of every handle (the backend's own state follows it:
 * a backend's handle type has this as its first member). */
struct shmring {
	/* first: what the installed inline header reads (a layout version and
	 * the roles whose fast path is inline, with pointers to their state);
	 * fast is 0 but on an SPSC segment handle from shmring_open_layout() */
	struct shmring_inl inl;
	const struct shmring_backend_ops *ops;
	uint32_t roles;            /* SHMRING_PRODUCER/CONSUMER this handle may use
				      (and HANDLE_SPSC or HANDLE_BCAST);
				      0 in a forked child */
	uint32_t spin_ns;          /* shmring_set_spin() */
	bool forked;               /* inherited across fork(): shared state is not ours */
	struct shmring *next, *prev;   /* api/: every open handle of the process */
};

_Static_assert(offsetof(struct shmring, inl) == 0, "the inline header reads the handle's start");

struct shmring_backend_ops {
	const char *name;          /* for messages and tests: "spsc", "mpmc", "pipe", "mq" */
	int (*send)(struct shmring *r, const void *msg, size_t len, int64_t timeout_ns);
	ssize_t (*recv)(struct shmring *r, void *buf, size_t cap, int64_t timeout_ns);
	int (*reserve)(struct shmring *r, size_t len, struct shmring_msg *m, int64_t timeout_ns);
	int (*commit)(struct shmring *r, struct shmring_msg *m);
	int (*acquire)(struct shmring *r, struct shmring_msg *m, int64_t timeout_ns);
	int (*release)(struct shmring *r, struct shmring_msg *m);
	int (*send_batch)(struct shmring *r, const struct iovec *msgs, unsigned n,
			  int64_t timeout_ns);
	int (*recv_batch)(struct shmring *r, struct iovec *bufs, unsigned n, int64_t timeout_ns);
	int (*shutdown)(struct shmring *r);
	/* *st and *caps are zeroed by the caller */
	int (*stats)(struct shmring *r, struct shmring_stats *st);
	int (*caps)(struct shmring *r, struct shmring_caps *caps);
	/* NULL: nothing of this backend outlives a reboot, shmring_flush() is 0.
	 * Not called in a forked child. */
	int (*flush)(struct shmring *r);
	/* In the child after fork(), with the process's handles list locked:
	 * give up what the child shares with the parent but must not use
	 * (liveness locks).  NULL: nothing.  api/ clears roles itself. */
	void (*fork_child)(struct shmring *r);
	/* shmring_fd(): the handle's pollable descriptor, made on the first
	 * call (r has a role). */
	int (*fd)(struct shmring *r);
	/* After a call of a handle with a descriptor ended in -EAGAIN: re-arm
	 * it; true if something happened since the last re-arm, and the call
	 * is made once more.  NULL: the calls arm it themselves (segments). */
	bool (*rearm)(struct shmring *r);
	/* Leave, free everything, free r.  The handle is off the list. */
	int (*close)(struct shmring *r);
};

/* A URI scheme.  `where` is the part after the scheme: a filesystem path
 * for shm: (its /dev/shm path), file: and pipe:, a NAME for mq:. */
struct shmring_backend {
	const char *scheme;        /* "shm", "file", "pipe", "mq" */
	/* oflags checked (no unknown bits, EXCL only with CREATE), opts->flags
	 * checked; opts may be NULL.  On success *out is a handle whose head
	 * is filled in (backend_head_init) except the list links. */
	int (*open)(const char *where, int oflags, const struct shmring_opts *opts,
		    struct shmring **out);
	int (*unlink)(const char *where);
};

static inline void backend_head_init(struct shmring *r, const struct shmring_backend_ops *ops,
				     uint32_t roles, uint32_t spin_ns)
{
	r->inl = (struct shmring_inl){ .layout = SHMRING_LAYOUT_VERSION };
	r->ops = ops;
	r->roles = roles;
	r->spin_ns = spin_ns;
	r->forked = false;
	r->next = r->prev = NULL;
}

/* The backends (api/uri.c maps a URI's scheme to one of them). */
BACKEND_HIDDEN extern const struct shmring_backend backend_shm;    /* backend/seg.c */
BACKEND_HIDDEN extern const struct shmring_backend backend_file;   /* backend/seg.c */
BACKEND_HIDDEN extern const struct shmring_backend backend_pipe;   /* fallback/pipe.c */
BACKEND_HIDDEN extern const struct shmring_backend backend_mq;     /* fallback/mq.c */

#endif
