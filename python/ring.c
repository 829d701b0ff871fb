/* SPDX-License-Identifier: MIT */
/* shmring.Ring: one handle of the C library. */
#include "binding.h"

#include <limits.h>
#include <string.h>
#include <structmember.h>
#include <time.h>

PyTypeObject *ring_type;

/* Broadcast rings' flags (SHMRING_OVERWRITE, SHMRING_OLDEST), passed through
 * as numbers: a library without broadcast rings refuses them (ValueError). */
#define BCAST_OVERWRITE 0x04u
#define BCAST_OLDEST    0x40

/* ---- the library calls, as op_fn ---- */

struct buf_arg {
	void *p;
	size_t len;
};

static long op_send(struct shmring *r, void *arg, int64_t t)
{
	struct buf_arg *a = arg;

	return shmring_send(r, a->p, a->len, t);
}

static long op_recv(struct shmring *r, void *arg, int64_t t)
{
	struct buf_arg *a = arg;

	return shmring_recv(r, a->p, a->len, t);
}

static long op_acquire(struct shmring *r, void *arg, int64_t t)
{
	return shmring_acquire(r, arg, t);
}

struct batch_arg {
	const struct iovec *v;
	unsigned n;
};

static long op_send_batch(struct shmring *r, void *arg, int64_t t)
{
	struct batch_arg *a = arg;

	return shmring_send_batch(r, a->v, a->n, t);
}

/* ---- waiting ---- */

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

long ring_wait(struct ring *self, op_fn fn, void *arg, int64_t timeout_ns)
{
	int64_t deadline = timeout_ns < 0 ? -1 : now_ns() + timeout_ns;
	long rc;

	for (;;) {
		int64_t slice = SLICE_NS;

		if (deadline >= 0) {
			int64_t left = deadline - now_ns();

			if (left <= 0)
				return -ETIMEDOUT;
			if (left < slice)
				slice = left;
		}
		self->inflight++;
		Py_BEGIN_ALLOW_THREADS
		rc = fn(self->r, arg, slice);
		Py_END_ALLOW_THREADS
		self->inflight--;
		if (rc != -ETIMEDOUT)
			return rc;
		if (self->closing) {
			PyErr_SetString(PyExc_ValueError, "the ring was closed while this call waited");
			return RC_PYERR;
		}
		if (PyErr_CheckSignals() < 0)
			return RC_PYERR;
	}
}

int ring_usable(struct ring *self)
{
	if (!self->r || self->closing) {
		PyErr_SetString(PyExc_ValueError, "operation on a closed ring");
		return -1;
	}
	if (self->inflight && !self->shared) {
		PyErr_SetString(PyExc_RuntimeError,
				"another thread is using this handle: open a handle per thread "
				"(only MPMC handles may be shared)");
		return -1;
	}
	return 0;
}

/* The real close, once close() was asked and nobody uses the handle. */
void ring_settle(struct ring *self)
{
	if (!self->closing || !self->r || self->inflight || self->zones)
		return;
	shmring_close(self->r);
	self->r = NULL;
	PyMem_Free(self->scratch);
	self->scratch = NULL;
}

#define USABLE_OR_NULL(self) do { if (ring_usable(self) < 0) return NULL; } while (0)
#define SETTLE(self) do { if ((self)->closing) ring_settle(self); } while (0)

/* ---- open and close ---- */

static int parse_kind(PyObject *o, int *kind)
{
	if (!o || o == Py_None) {
		*kind = SHMRING_SPSC;
		return 0;
	}
	if (PyUnicode_Check(o)) {
		static const struct { const char *name; int kind; } names[] = {
			{ "spsc", SHMRING_SPSC }, { "mpmc", SHMRING_MPMC },
			{ "bcast", 3 }, { "broadcast", 3 },
		};
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			if (PyUnicode_CompareWithASCIIString(o, names[i].name) == 0) {
				*kind = names[i].kind;
				return 0;
			}
		}
		PyErr_Format(PyExc_ValueError, "kind must be 'spsc', 'mpmc' or 'bcast', not %R", o);
		return -1;
	}
	long v = PyLong_AsLong(o);

	if (v == -1 && PyErr_Occurred())
		return -1;
	if (v < 1 || v > 255) {
		PyErr_Format(PyExc_ValueError, "kind out of range: %ld", v);
		return -1;
	}
	*kind = (int)v;
	return 0;
}

static const char *kind_name(uint32_t kind)
{
	switch (kind) {
	case SHMRING_SPSC: return "spsc";
	case SHMRING_MPMC: return "mpmc";
	case 3: return "bcast";
	default: return "unknown";
	}
}

static PyObject *ring_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "uri", "create", "exclusive", "producer", "consumer", "kind",
				  "capacity", "max_msg", "mode", "prefault", "mlock", "stall_ms",
				  "spin_ns", "oldest", "overwrite", NULL };
	PyObject *uri, *kindo = NULL, *spin = Py_None;
	int create = 0, excl = 0, prod = 0, cons = 0, prefault = 0, mlock = 0, kind;
	int oldest = 0, overwrite = 0;
	unsigned long long capacity = 0;
	unsigned long max_msg = 0, mode = 0600, stall_ms = 0;
	struct shmring_opts o;
	struct shmring_stats st;
	struct shmring_caps caps;
	struct shmring *r;
	struct ring *self;
	int oflags, rc;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "U|$ppppOKkkppkOpp:Ring", kwlist, &uri,
					 &create, &excl, &prod, &cons, &kindo, &capacity, &max_msg,
					 &mode, &prefault, &mlock, &stall_ms, &spin, &oldest,
					 &overwrite))
		return NULL;
	if (parse_kind(kindo, &kind) < 0)
		return NULL;
	if (max_msg > UINT32_MAX || mode > 07777 || stall_ms > UINT32_MAX)
		return PyErr_Format(PyExc_ValueError, "max_msg, mode or stall_ms out of range");
	const char *u = PyUnicode_AsUTF8(uri);
	if (!u)
		return NULL;
	memset(&o, 0, sizeof(o));
	o.kind = (enum shmring_kind)kind;
	o.capacity = capacity;
	o.max_msg = (uint32_t)max_msg;
	o.mode = (uint32_t)mode;
	o.flags = (prefault ? SHMRING_PREFAULT : 0) | (mlock ? SHMRING_MLOCK : 0) |
		  (overwrite ? BCAST_OVERWRITE : 0);
	o.stall_ms = (uint32_t)stall_ms;
	oflags = (create ? SHMRING_CREATE : 0) | (excl ? SHMRING_EXCL : 0) |
		 (prod ? SHMRING_PRODUCER : 0) | (cons ? SHMRING_CONSUMER : 0) |
		 (oldest ? BCAST_OLDEST : 0);

	/* opening may wait for a lock a dying peer held: without the GIL */
	Py_BEGIN_ALLOW_THREADS
	rc = shmring_open(u, oflags, &o, &r);
	Py_END_ALLOW_THREADS
	if (rc < 0)
		return raise_rc(rc);
	if (spin != Py_None) {
		unsigned long ns = PyLong_AsUnsignedLong(spin);

		if ((ns == (unsigned long)-1 && PyErr_Occurred()) || ns > UINT32_MAX) {
			if (!PyErr_Occurred())
				PyErr_SetString(PyExc_ValueError, "spin_ns out of range");
			shmring_close(r);
			return NULL;
		}
		shmring_set_spin(r, (uint32_t)ns);
	}
	self = (struct ring *)type->tp_alloc(type, 0);
	if (!self) {
		shmring_close(r);
		return NULL;
	}
	self->r = r;
	self->uri = Py_NewRef(uri);
	self->oflags = oflags;
	self->kind = (uint32_t)kind;
	if (shmring_stats(r, &st) == 0 && st.kind)
		self->kind = st.kind;
	if (shmring_caps(r, &caps) == 0) {
		self->max_msg = caps.max_msg;
		self->shared = (caps.flags & SHMRING_CAP_MPMC) != 0;
	}
	return (PyObject *)self;
}

static void ring_dealloc(struct ring *self)
{
	PyTypeObject *tp = Py_TYPE(self);

	if (self->weakreflist)
		PyObject_ClearWeakRefs((PyObject *)self);
	if (self->r)
		shmring_close(self->r);
	PyMem_Free(self->scratch);
	Py_XDECREF(self->uri);
	tp->tp_free((PyObject *)self);
	Py_DECREF(tp);                  /* instances of heap types own a reference */
}

static PyObject *ring_close(struct ring *self, PyObject *unused)
{
	(void)unused;
	self->closing = 1;
	ring_settle(self);
	Py_RETURN_NONE;
}

static PyObject *ring_enter(struct ring *self, PyObject *unused)
{
	(void)unused;
	USABLE_OR_NULL(self);
	return Py_NewRef(self);
}

static PyObject *ring_exit(struct ring *self, PyObject *const *args, Py_ssize_t nargs)
{
	(void)args;
	(void)nargs;
	return ring_close(self, NULL);
}

/* ---- copying calls ---- */

static const char *const kw_timeout[] = { "timeout" };

static PyObject *ring_send(struct ring *self, PyObject *const *args, Py_ssize_t nargs,
			   PyObject *kwnames)
{
	static const char *const names[] = { "data", "timeout" };
	PyObject *data, *o[2];
	int64_t t = SHMRING_FOREVER;
	struct buf_arg a;
	long rc;

	if (nargs == 1 && !kwnames) {
		data = args[0];
	} else {
		if (parse_args(args, nargs, kwnames, "send", names, 2, 2, o) < 0 ||
		    parse_timeout(o[1], &t) < 0)
			return NULL;
		if (!(data = o[0]))
			return PyErr_Format(PyExc_TypeError, "send() missing its data");
	}
	USABLE_OR_NULL(self);
	if (PyBytes_CheckExact(data)) {
		a.p = PyBytes_AS_STRING(data);
		a.len = (size_t)PyBytes_GET_SIZE(data);
		rc = ring_run(self, op_send, &a, t);
	} else {
		Py_buffer v;

		if (PyObject_GetBuffer(data, &v, PyBUF_SIMPLE) < 0)
			return NULL;
		a.p = v.buf;
		a.len = (size_t)v.len;
		rc = ring_run(self, op_send, &a, t);
		PyBuffer_Release(&v);
	}
	SETTLE(self);
	if (rc < 0)
		return raise_run(rc);
	Py_RETURN_NONE;
}

/* The next message as bytes; NULL with an exception (none at -EPIPE when
 * eof_ok: the iterator's end). */
static PyObject *recv_bytes(struct ring *self, int64_t t, int eof_ok)
{
	PyObject *b;
	long rc;

	if (!self->held) {
		/* read in place, copy once into the bytes object */
		struct shmring_msg m;

		rc = ring_run(self, op_acquire, &m, t);
		if (rc < 0)
			goto fail;
		b = PyBytes_FromStringAndSize(m.data, (Py_ssize_t)m.len);
		rc = shmring_release(self->r, &m);
		if (rc < 0) {
			Py_XDECREF(b);
			goto fail;
		}
		SETTLE(self);
		return b;
	}
	/* messages held by acquire(): the library decides (MPMC receives,
	 * SPSC says -EINPROGRESS) */
	if (!self->scratch && !(self->scratch = PyMem_Malloc(self->max_msg ? self->max_msg : 1)))
		return PyErr_NoMemory();
	struct buf_arg a = { self->scratch, self->max_msg };

	rc = ring_run(self, op_recv, &a, t);
	if (rc < 0)
		goto fail;
	SETTLE(self);
	return PyBytes_FromStringAndSize(self->scratch, rc);
fail:
	SETTLE(self);
	if (eof_ok && rc == -EPIPE)
		return NULL;
	return raise_run(rc);
}

static PyObject *ring_recv(struct ring *self, PyObject *const *args, Py_ssize_t nargs,
			   PyObject *kwnames)
{
	int64_t t = SHMRING_FOREVER;

	if (nargs || kwnames) {
		PyObject *o[1];

		if (parse_args(args, nargs, kwnames, "recv", kw_timeout, 1, 1, o) < 0 ||
		    parse_timeout(o[0], &t) < 0)
			return NULL;
	}
	USABLE_OR_NULL(self);
	return recv_bytes(self, t, 0);
}

static PyObject *ring_recv_into(struct ring *self, PyObject *const *args, Py_ssize_t nargs,
				PyObject *kwnames)
{
	static const char *const names[] = { "buffer", "timeout" };
	PyObject *o[2];
	int64_t t = SHMRING_FOREVER;
	Py_buffer v;
	long rc;

	if (parse_args(args, nargs, kwnames, "recv_into", names, 2, 2, o) < 0 ||
	    parse_timeout(o[1], &t) < 0)
		return NULL;
	if (!o[0])
		return PyErr_Format(PyExc_TypeError, "recv_into() missing its buffer");
	USABLE_OR_NULL(self);
	if (PyObject_GetBuffer(o[0], &v, PyBUF_WRITABLE) < 0)
		return NULL;
	struct buf_arg a = { v.buf, (size_t)v.len };

	rc = ring_run(self, op_recv, &a, t);
	PyBuffer_Release(&v);
	SETTLE(self);
	if (rc < 0)
		return raise_run(rc);
	return PyLong_FromLong(rc);
}

/* Set exc.sent = n on the exception being raised. */
static void note_sent(Py_ssize_t n)
{
	PyObject *type, *val, *tb, *num;

	PyErr_Fetch(&type, &val, &tb);
	PyErr_NormalizeException(&type, &val, &tb);
	num = PyLong_FromSsize_t(n);
	if (val && num && PyObject_SetAttrString(val, "sent", num) < 0)
		PyErr_Clear();
	Py_XDECREF(num);
	PyErr_Restore(type, val, tb);
}

static PyObject *ring_send_batch(struct ring *self, PyObject *const *args, Py_ssize_t nargs,
				 PyObject *kwnames)
{
	static const char *const names[] = { "messages", "timeout" };
	PyObject *o[2], *seq;
	int64_t t = SHMRING_FOREVER;
	Py_buffer *views = NULL;
	struct iovec *iov = NULL;
	Py_ssize_t n, got = 0, done = 0;
	long rc = 0;

	if (parse_args(args, nargs, kwnames, "send_batch", names, 2, 2, o) < 0 ||
	    parse_timeout(o[1], &t) < 0)
		return NULL;
	if (!o[0])
		return PyErr_Format(PyExc_TypeError, "send_batch() missing its messages");
	USABLE_OR_NULL(self);
	seq = PySequence_Fast(o[0], "send_batch() takes an iterable of bytes-like objects");
	if (!seq)
		return NULL;
	n = PySequence_Fast_GET_SIZE(seq);
	if (n == 0) {
		Py_DECREF(seq);
		return PyLong_FromLong(0);
	}
	views = PyMem_Calloc((size_t)n, sizeof(*views));
	iov = PyMem_Calloc((size_t)n, sizeof(*iov));
	if (!views || !iov) {
		PyErr_NoMemory();
		goto out;
	}
	for (; got < n; got++) {
		if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(seq, got), &views[got],
				       PyBUF_SIMPLE) < 0)
			goto out;
		iov[got].iov_base = views[got].buf;
		iov[got].iov_len = (size_t)views[got].len;
	}
	while (done < n) {
		Py_ssize_t left = n - done;
		struct batch_arg a = { iov + done, left > 1024 ? 1024u : (unsigned)left };

		rc = ring_run(self, op_send_batch, &a, t);
		if (rc < 0)
			break;
		done += rc;
	}
	if (rc < 0) {
		raise_run(rc);
		note_sent(done);
	}
out:
	for (Py_ssize_t i = 0; i < got; i++)
		PyBuffer_Release(&views[i]);
	PyMem_Free(views);
	PyMem_Free(iov);
	Py_DECREF(seq);
	SETTLE(self);
	return PyErr_Occurred() ? NULL : PyLong_FromSsize_t(done);
}

static PyObject *ring_recv_batch(struct ring *self, PyObject *const *args, Py_ssize_t nargs,
				 PyObject *kwnames)
{
	static const char *const names[] = { "max", "timeout" };
	PyObject *o[2], *list, *b;
	int64_t t = SHMRING_FOREVER;
	Py_ssize_t max = 64;

	if (parse_args(args, nargs, kwnames, "recv_batch", names, 2, 2, o) < 0 ||
	    parse_timeout(o[1], &t) < 0)
		return NULL;
	if (o[0] && ((max = PyLong_AsSsize_t(o[0])) < 1)) {
		if (!PyErr_Occurred())
			PyErr_SetString(PyExc_ValueError, "recv_batch(): max must be >= 1");
		return NULL;
	}
	USABLE_OR_NULL(self);
	if (!(b = recv_bytes(self, t, 0)))
		return NULL;
	if (!(list = PyList_New(0)) || PyList_Append(list, b) < 0)
		goto fail;
	Py_DECREF(b);
	while (PyList_GET_SIZE(list) < max && self->r && !self->closing) {
		b = recv_bytes(self, 0, 1);
		if (!b) {
			/* the end of what is there now; the next call raises */
			if (PyErr_ExceptionMatches(PyExc_BlockingIOError))
				PyErr_Clear();
			if (PyErr_Occurred())
				goto fail_list;
			break;
		}
		if (PyList_Append(list, b) < 0)
			goto fail;
		Py_DECREF(b);
	}
	return list;
fail:
	Py_DECREF(b);
fail_list:
	Py_XDECREF(list);
	return NULL;
}

/* ---- in place ---- */

static PyObject *ring_reserve(struct ring *self, PyObject *const *args, Py_ssize_t nargs,
			      PyObject *kwnames)
{
	static const char *const names[] = { "size", "timeout" };
	PyObject *o[2];
	int64_t t = SHMRING_FOREVER;
	Py_ssize_t len;

	if (parse_args(args, nargs, kwnames, "reserve", names, 2, 2, o) < 0 ||
	    parse_timeout(o[1], &t) < 0)
		return NULL;
	if (!o[0])
		return PyErr_Format(PyExc_TypeError, "reserve() missing its size");
	len = PyLong_AsSsize_t(o[0]);
	if (len < 0) {
		if (!PyErr_Occurred())
			PyErr_SetString(PyExc_ValueError, "reserve(): size must be >= 0");
		return NULL;
	}
	USABLE_OR_NULL(self);
	return zone_new(self, reservation_type, (size_t)len, t);
}

static PyObject *ring_acquire(struct ring *self, PyObject *const *args, Py_ssize_t nargs,
			      PyObject *kwnames)
{
	PyObject *o[1];
	int64_t t = SHMRING_FOREVER;

	if (parse_args(args, nargs, kwnames, "acquire", kw_timeout, 1, 1, o) < 0 ||
	    parse_timeout(o[0], &t) < 0)
		return NULL;
	USABLE_OR_NULL(self);
	return zone_new(self, message_type, 0, t);
}

/* ---- the rest of the API ---- */

static PyObject *ring_iter(struct ring *self)
{
	USABLE_OR_NULL(self);
	return Py_NewRef(self);
}

static PyObject *ring_next(struct ring *self)
{
	USABLE_OR_NULL(self);
	return recv_bytes(self, SHMRING_FOREVER, 1);
}

static PyObject *ring_shutdown(struct ring *self, PyObject *unused)
{
	int rc;

	(void)unused;
	USABLE_OR_NULL(self);
	rc = shmring_shutdown(self->r);
	if (rc < 0)
		return raise_rc(rc);
	Py_RETURN_NONE;
}

static PyObject *ring_flush(struct ring *self, PyObject *unused)
{
	int rc;

	(void)unused;
	USABLE_OR_NULL(self);
	self->inflight++;               /* msync may take a while */
	Py_BEGIN_ALLOW_THREADS
	rc = shmring_flush(self->r);
	Py_END_ALLOW_THREADS
	self->inflight--;
	SETTLE(self);
	if (rc < 0)
		return raise_rc(rc);
	Py_RETURN_NONE;
}

static PyObject *ring_fileno(struct ring *self, PyObject *unused)
{
	int fd;

	(void)unused;
	USABLE_OR_NULL(self);
	fd = shmring_fd(self->r);
	if (fd < 0)
		return raise_rc(fd);
	return PyLong_FromLong(fd);
}

static PyObject *ring_set_spin(struct ring *self, PyObject *arg)
{
	unsigned long ns = PyLong_AsUnsignedLong(arg);
	int rc;

	if (ns == (unsigned long)-1 && PyErr_Occurred())
		return NULL;
	if (ns > UINT32_MAX)
		return PyErr_Format(PyExc_ValueError, "spin_ns out of range: %lu", ns);
	USABLE_OR_NULL(self);
	rc = shmring_set_spin(self->r, (uint32_t)ns);
	if (rc < 0)
		return raise_rc(rc);
	Py_RETURN_NONE;
}

#define U64(f) #f, (unsigned long long)st.f
#define U32(f) #f, (unsigned long)st.f

static PyObject *ring_stats(struct ring *self, PyObject *unused)
{
	struct shmring_stats st;
	int rc;

	(void)unused;
	USABLE_OR_NULL(self);
	rc = shmring_stats(self->r, &st);
	if (rc < 0)
		return raise_rc(rc);
	return Py_BuildValue("{sK sK sK sK sK sK sK sK sK sK sK sK sK sK sK sk ss sk sk sN sN"
			     " sK sK sK sK}",
			     U64(msgs_sent), U64(bytes_sent), U64(msgs_recv), U64(bytes_recv),
			     U64(waits_full), U64(waits_empty), U64(futex_wakes),
			     U64(futex_sleeps), U64(holes_skipped), U64(msgs_redelivered),
			     U64(msgs_dropped), U64(repairs), U64(takeovers), U64(capacity),
			     U64(used), U32(max_msg), "kind", kind_name(st.kind),
			     U32(producers), U32(consumers),
			     "shut_down", PyBool_FromLong(st.shut_down),
			     "unlinked", PyBool_FromLong(st.unlinked),
			     U64(stalls_skipped), U64(commits_cancelled), U64(poll_wakes),
			     U64(poll_spurious));
}

static PyObject *ring_caps(struct ring *self, PyObject *unused)
{
	struct shmring_caps c;
	int rc;

	(void)unused;
	USABLE_OR_NULL(self);
	rc = shmring_caps(self->r, &c);
	if (rc < 0)
		return raise_rc(rc);
#define CAP(name, bit) name, PyBool_FromLong((c.flags & (bit)) != 0)
	return Py_BuildValue("{sk sk sk sk sK sN sN sN sN sN sN sN}",
			     "flags", (unsigned long)c.flags,
			     "max_producers", (unsigned long)c.max_producers,
			     "max_consumers", (unsigned long)c.max_consumers,
			     "max_msg", (unsigned long)c.max_msg,
			     "capacity", (unsigned long long)c.capacity,
			     CAP("zerocopy", SHMRING_CAP_ZEROCOPY), CAP("mpmc", SHMRING_CAP_MPMC),
			     CAP("persistent", SHMRING_CAP_PERSISTENT),
			     CAP("durable", SHMRING_CAP_DURABLE),
			     CAP("recovery", SHMRING_CAP_RECOVERY),
			     CAP("blocking", SHMRING_CAP_BLOCKING), CAP("poll", SHMRING_CAP_POLL));
#undef CAP
}

static PyObject *ring_repr(struct ring *self)
{
	return PyUnicode_FromFormat("<shmring.Ring %R %s%s%s%s>", self->uri, kind_name(self->kind),
				    self->oflags & SHMRING_PRODUCER ? " producer" : "",
				    self->oflags & SHMRING_CONSUMER ? " consumer" : "",
				    self->r && !self->closing ? "" : " closed");
}

static PyObject *get_closed(struct ring *self, void *c)
{
	(void)c;
	return PyBool_FromLong(!self->r || self->closing);
}

static PyObject *get_kind(struct ring *self, void *c)
{
	(void)c;
	return PyUnicode_FromString(kind_name(self->kind));
}

static PyObject *get_role(struct ring *self, void *c)
{
	return PyBool_FromLong((self->oflags & (int)(intptr_t)c) != 0);
}

#define FASTKW(name, fn, doc) { name, (PyCFunction)(void (*)(void))fn, METH_FASTCALL | METH_KEYWORDS, doc }

static PyMethodDef ring_methods[] = {
	FASTKW("send", ring_send,
	       "send(data, timeout=None)\n--\n\n"
	       "Send one message: any bytes-like object of 0..max_msg bytes.\n"
	       "timeout: None waits for room, 0 raises BlockingIOError at once,\n"
	       "seconds > 0 raise TimeoutError when they run out."),
	FASTKW("recv", ring_recv,
	       "recv(timeout=None)\n--\n\n"
	       "The next message, as bytes.  BrokenPipeError once the stream was\n"
	       "shut down and drained; timeout as for send()."),
	FASTKW("recv_into", ring_recv_into,
	       "recv_into(buffer, timeout=None)\n--\n\n"
	       "Copy the next message into a writable buffer; return its length.\n"
	       "A buffer too small raises shmring.Error (EMSGSIZE) and leaves the\n"
	       "message in the ring."),
	FASTKW("send_batch", ring_send_batch,
	       "send_batch(messages, timeout=None)\n--\n\n"
	       "Send every message of an iterable of bytes-like objects, in order;\n"
	       "return how many (all).  timeout bounds each wait for room; when an\n"
	       "error stops it, the exception's `sent` says how many went."),
	FASTKW("recv_batch", ring_recv_batch,
	       "recv_batch(max=64, timeout=None)\n--\n\n"
	       "A list of 1..max messages: waits (timeout) for the first, then takes\n"
	       "what is there without waiting."),
	FASTKW("reserve", ring_reserve,
	       "reserve(size, timeout=None)\n--\n\n"
	       "A context manager: entering reserves size bytes in the ring and\n"
	       "returns a writable memoryview of them; leaving commits the message.\n"
	       "The memoryview is released when the block ends."),
	FASTKW("acquire", ring_acquire,
	       "acquire(timeout=None)\n--\n\n"
	       "A context manager: entering takes the next message and returns a\n"
	       "read-only memoryview of it in the ring; leaving releases it.  The\n"
	       "memoryview is released when the block ends."),
	{ "shutdown", (PyCFunction)ring_shutdown, METH_NOARGS,
	  "shutdown()\n--\n\nProducer: end of stream for everyone.  Consumers receive what\n"
	  "is queued, then BrokenPipeError; later sends raise BrokenPipeError." },
	{ "flush", (PyCFunction)ring_flush, METH_NOARGS,
	  "flush()\n--\n\nfile: rings: make this handle's work durable (msync).  Does\n"
	  "nothing elsewhere." },
	{ "stats", (PyCFunction)ring_stats, METH_NOARGS,
	  "stats()\n--\n\nThe ring's counters and geometry, as a dict." },
	{ "caps", (PyCFunction)ring_caps, METH_NOARGS,
	  "caps()\n--\n\nWhat this handle's backend can do, as a dict." },
	{ "fileno", (PyCFunction)ring_fileno, METH_NOARGS,
	  "fileno()\n--\n\nA descriptor that is readable when a call that raised\n"
	  "BlockingIOError may now succeed (shmring_fd(3)).  Owned by the handle." },
	{ "set_spin", (PyCFunction)ring_set_spin, METH_O,
	  "set_spin(ns, /)\n--\n\nNanoseconds a blocking call spins before it sleeps." },
	{ "close", (PyCFunction)ring_close, METH_NOARGS,
	  "close()\n--\n\nGive up the handle.  A call waiting in another thread raises\n"
	  "ValueError; open reservations and messages are finished first." },
	{ "__enter__", (PyCFunction)ring_enter, METH_NOARGS, NULL },
	{ "__exit__", (PyCFunction)(void (*)(void))ring_exit, METH_FASTCALL, NULL },
	{ NULL, NULL, 0, NULL }
};

static PyGetSetDef ring_getset[] = {
	{ "closed", (getter)get_closed, NULL, "True once close() was called.", NULL },
	{ "kind", (getter)get_kind, NULL, "'spsc', 'mpmc' or 'bcast'.", NULL },
	{ "producer", (getter)get_role, NULL, "The handle sends.",
	  (void *)(intptr_t)SHMRING_PRODUCER },
	{ "consumer", (getter)get_role, NULL, "The handle receives.",
	  (void *)(intptr_t)SHMRING_CONSUMER },
	{ NULL, NULL, NULL, NULL, NULL }
};

static PyMemberDef ring_members[] = {
	{ "uri", T_OBJECT_EX, offsetof(struct ring, uri), READONLY, "The URI it was opened with." },
	{ "max_msg", T_UINT, offsetof(struct ring, max_msg), READONLY,
	  "The largest message, bytes." },
	{ "__weaklistoffset__", T_PYSSIZET, offsetof(struct ring, weakreflist), READONLY, NULL },
	{ NULL, 0, 0, 0, NULL }
};

static PyType_Slot ring_slots[] = {
	{ Py_tp_doc, (void *)
	  "Ring(uri, *, create=False, exclusive=False, producer=False, consumer=False,\n"
	  "     kind='spsc', capacity=0, max_msg=0, mode=0o600, prefault=False,\n"
	  "     mlock=False, stall_ms=0, spin_ns=None, oldest=False, overwrite=False)\n--\n\n"
	  "A handle on the ring named by uri: 'shm:NAME' (or NAME), 'file:PATH',\n"
	  "'pipe:PATH', 'mq:NAME'.  create makes it if missing (exclusive: raise\n"
	  "FileExistsError if present); capacity, max_msg, kind, mode apply when it\n"
	  "is created (and to both sides of a pipe:).  Broadcast rings: overwrite\n"
	  "(create: the producer never waits), oldest (a subscriber starts at the\n"
	  "oldest message still there).  A context manager: leaving\n"
	  "the block closes it.  Iterating receives until the end of the stream." },
	{ Py_tp_new, ring_new },
	{ Py_tp_dealloc, ring_dealloc },
	{ Py_tp_repr, ring_repr },
	{ Py_tp_iter, ring_iter },
	{ Py_tp_iternext, ring_next },
	{ Py_tp_methods, ring_methods },
	{ Py_tp_getset, ring_getset },
	{ Py_tp_members, ring_members },
	{ 0, NULL }
};

static PyType_Spec ring_spec = {
	.name = "shmring.Ring",
	.basicsize = sizeof(struct ring),
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.slots = ring_slots,
};

int ring_init_types(PyObject *m)
{
	ring_type = (PyTypeObject *)PyType_FromSpec(&ring_spec);
	if (!ring_type)
		return -1;
	return PyModule_AddObjectRef(m, "Ring", (PyObject *)ring_type);
}
