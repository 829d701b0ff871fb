/* SPDX-License-Identifier: MIT */
/* shmring.Ring: one handle of the C library. */
#include "binding.h"

#include <limits.h>
#include <string.h>
#include <structmember.h>
#include <time.h>

PyTypeObject *ring_type;

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
	if (!self->closing || !self->r || self->inflight || self->zones ||
	    !zone_survivors_gone(self))
		return;
	shmring_close(self->r);
	self->r = NULL;
	PyMem_Free(self->scratch);
	self->scratch = NULL;
}

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
				  "spin_ns", "oldest", "overwrite", "fixed", NULL };
	PyObject *uri, *kindo = NULL, *spin = Py_None;
	int create = 0, excl = 0, prod = 0, cons = 0, prefault = 0, mlock = 0, kind;
	int oldest = 0, overwrite = 0, fixed = 0;
	unsigned long long capacity = 0;
	unsigned long max_msg = 0, mode = 0600, stall_ms = 0;
	struct shmring_opts o;
	struct shmring_stats st;
	struct shmring_caps caps;
	struct shmring *r;
	struct ring *self;
	int oflags, rc;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "U|$ppppOKkkppkOppp:Ring", kwlist, &uri,
					 &create, &excl, &prod, &cons, &kindo, &capacity, &max_msg,
					 &mode, &prefault, &mlock, &stall_ms, &spin, &oldest,
					 &overwrite, &fixed))
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
		  (overwrite ? SHMRING_OVERWRITE : 0) | (fixed ? SHMRING_FIXED : 0);
	o.stall_ms = (uint32_t)stall_ms;
	oflags = (create ? SHMRING_CREATE : 0) | (excl ? SHMRING_EXCL : 0) |
		 (prod ? SHMRING_PRODUCER : 0) | (cons ? SHMRING_CONSUMER : 0) |
		 (oldest ? SHMRING_OLDEST : 0);

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
	/* An object that still reads a finished region in place (a NumPy
	 * array made from its view) would read unmapped memory: then the
	 * handle and its mapping stay until the process ends. */
	if (self->r && zone_survivors_gone(self))
		shmring_close(self->r);
	Py_XDECREF(self->survivors);
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
			     " sK sK sK sK sK sK sK sK}",
			     U64(msgs_sent), U64(bytes_sent), U64(msgs_recv), U64(bytes_recv),
			     U64(waits_full), U64(waits_empty), U64(futex_wakes),
			     U64(futex_sleeps), U64(holes_skipped), U64(msgs_redelivered),
			     U64(msgs_dropped), U64(repairs), U64(takeovers), U64(capacity),
			     U64(used), U32(max_msg), "kind", kind_name(st.kind),
			     U32(producers), U32(consumers),
			     "shut_down", PyBool_FromLong(st.shut_down),
			     "unlinked", PyBool_FromLong(st.unlinked),
			     U64(stalls_skipped), U64(commits_cancelled), U64(poll_wakes),
			     U64(poll_spurious), U64(lag_msgs), U64(lag_bytes), U64(msgs_lost),
			     U64(evictions));
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
	return Py_BuildValue("{sk sk sk sk sK sN sN sN sN sN sN sN sN sN}",
			     "flags", (unsigned long)c.flags,
			     "max_producers", (unsigned long)c.max_producers,
			     "max_consumers", (unsigned long)c.max_consumers,
			     "max_msg", (unsigned long)c.max_msg,
			     "capacity", (unsigned long long)c.capacity,
			     CAP("zerocopy", SHMRING_CAP_ZEROCOPY), CAP("mpmc", SHMRING_CAP_MPMC),
			     CAP("persistent", SHMRING_CAP_PERSISTENT),
			     CAP("durable", SHMRING_CAP_DURABLE),
			     CAP("recovery", SHMRING_CAP_RECOVERY),
			     CAP("blocking", SHMRING_CAP_BLOCKING), CAP("poll", SHMRING_CAP_POLL),
			     CAP("bcast", SHMRING_CAP_BCAST), CAP("fixed", SHMRING_CAP_FIXED));
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
	  "     mlock=False, stall_ms=0, spin_ns=None, oldest=False, overwrite=False,\n"
	  "     fixed=False)\n--\n\n"
	  "A handle on the ring named by uri: 'shm:NAME' (or NAME), 'file:PATH',\n"
	  "'pipe:PATH', 'mq:NAME'.  create makes it if missing (exclusive: raise\n"
	  "FileExistsError if present); capacity, max_msg, kind, mode apply when it\n"
	  "is created (and to both sides of a pipe:).  Broadcast rings: overwrite\n"
	  "(create: the producer never waits), oldest (a subscriber starts at the\n"
	  "oldest message still there).  fixed (create, SPSC): every message is\n"
	  "exactly max_msg bytes, with no header.  A context manager: leaving\n"
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
