/* SPDX-License-Identifier: MIT */
/*
 * The CPython binding (module shmring._shmring): what its three files share.
 *
 *   module.c  the module, errors as exceptions, argument helpers
 *   ring.c    shmring.Ring: open, waiting, close, stats, the type itself
 *   calls.c   its message calls: send/recv, batches, reserve/acquire
 *   zone.c    shmring.Reservation / shmring.Message: reserve/commit and
 *             acquire/release as context managers handing out memoryviews
 *
 * Blocking calls first try once with timeout 0 holding the GIL (the fast
 * path makes no system call), then wait without the GIL in slices of at
 * most SLICE_NS, checking for signals between slices: Ctrl-C raises
 * KeyboardInterrupt within a slice and nothing is consumed or sent.
 */
#ifndef SHMRING_PYTHON_BINDING_H
#define SHMRING_PYTHON_BINDING_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <shmring.h>
#include <stdint.h>

/* the longest a blocking call runs without looking at signals */
#define SLICE_NS 50000000LL

/* a run_*() result that is not a -errno: a Python exception is set */
#define RC_PYERR (-100000)

struct ring {
	PyObject_HEAD
	struct shmring *r;      /* NULL once really closed */
	PyObject *uri;          /* str */
	uint32_t max_msg;
	uint32_t kind;          /* enum shmring_kind, as the ring says */
	int oflags;
	int shared;             /* MPMC: threads may use the handle at once */
	int closing;            /* close() was called: no new calls */
	int inflight;           /* threads inside a library call, GIL released */
	int zones;              /* reservations / messages entered, not yet exited */
	int held;               /* of which messages (acquire) */
	char *scratch;          /* max_msg bytes for recv while messages are held */
	PyObject *survivors;    /* list: memoryviews of finished regions that
				   something still exports (zone.c) */
	PyObject *weakreflist;
};

/* One library call: the handle, the call's own arguments, a timeout. */
typedef long (*op_fn)(struct shmring *r, void *arg, int64_t timeout_ns);

extern PyObject *shmring_error;      /* shmring.Error(OSError) */
extern PyTypeObject *ring_type;
extern PyTypeObject *reservation_type;
extern PyTypeObject *message_type;

/* Raise the exception that fits -errno rc; returns NULL. */
PyObject *raise_rc(long rc);
/* rc < 0 raised (RC_PYERR: already set); returns NULL. */
PyObject *raise_run(long rc);

/*
 * Keyword and positional arguments of a METH_FASTCALL|METH_KEYWORDS call
 * into out[0..n): names[] are the parameters in order, the first npos of
 * which may be given by position; an absent one stays NULL.  0 or -1.
 */
int parse_args(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
	       const char *fname, const char *const *names, int npos, int n, PyObject **out);
/* None: SHMRING_FOREVER; seconds >= 0 (int or float): nanoseconds.  0 or -1. */
int parse_timeout(PyObject *o, int64_t *timeout_ns);

/* ring.c */
/* 0, or -1 with ValueError (closed) or RuntimeError (a thread waits in it). */
int ring_usable(struct ring *self);
long ring_wait(struct ring *self, op_fn fn, void *arg, int64_t timeout_ns);
void ring_settle(struct ring *self);
int ring_init_types(PyObject *m);

#define USABLE_OR_NULL(self) do { if (ring_usable(self) < 0) return NULL; } while (0)
/* after a call: the close that close() deferred, if this was the last user */
#define SETTLE(self) do { if ((self)->closing) ring_settle(self); } while (0)

/* calls.c: Ring's methods (METH_FASTCALL | METH_KEYWORDS) */
#define FASTKW_ARGS PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames
PyObject *ring_send(struct ring *self, FASTKW_ARGS);
PyObject *ring_recv(struct ring *self, FASTKW_ARGS);
PyObject *ring_recv_into(struct ring *self, FASTKW_ARGS);
PyObject *ring_send_batch(struct ring *self, FASTKW_ARGS);
PyObject *ring_recv_batch(struct ring *self, FASTKW_ARGS);
PyObject *ring_reserve(struct ring *self, FASTKW_ARGS);
PyObject *ring_acquire(struct ring *self, FASTKW_ARGS);
/* The next message as bytes; NULL with an exception, or without one at
 * the end of the stream when eof_ok (an iterator's end). */
PyObject *recv_bytes(struct ring *self, int64_t t, int eof_ok);
/* shmring_acquire as an op_fn (arg: struct shmring_msg *) */
long op_acquire(struct shmring *r, void *arg, int64_t t);

/*
 * Run fn: once at once holding the GIL, then (on -EAGAIN, if the timeout
 * allows) waiting without it.  The caller checked ring_usable().
 */
static inline long ring_run(struct ring *self, op_fn fn, void *arg, int64_t timeout_ns)
{
	long rc = fn(self->r, arg, 0);

	if (rc != -EAGAIN || timeout_ns == 0)
		return rc;
	return ring_wait(self, fn, arg, timeout_ns);
}

/* zone.c */
/* Drop the survivors nobody reads through any more; true if none is left,
 * so that the ring's mapping may go. */
int zone_survivors_gone(struct ring *ring);
PyObject *zone_new(struct ring *ring, PyTypeObject *type, size_t len, int64_t timeout_ns);
int zone_init_types(PyObject *m);

#endif
