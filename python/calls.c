/* SPDX-License-Identifier: MIT */
/* shmring.Ring's message calls: copying, batches, and the in-place ones. */
#include "binding.h"

#include <string.h>

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

long op_acquire(struct shmring *r, void *arg, int64_t t)
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

/* ---- copying calls ---- */

static const char *const kw_timeout[] = { "timeout" };

PyObject *ring_send(struct ring *self, PyObject *const *args, Py_ssize_t nargs,
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
PyObject *recv_bytes(struct ring *self, int64_t t, int eof_ok)
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

PyObject *ring_recv(struct ring *self, PyObject *const *args, Py_ssize_t nargs,
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

PyObject *ring_recv_into(struct ring *self, PyObject *const *args, Py_ssize_t nargs,
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

PyObject *ring_send_batch(struct ring *self, PyObject *const *args, Py_ssize_t nargs,
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

PyObject *ring_recv_batch(struct ring *self, PyObject *const *args, Py_ssize_t nargs,
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

PyObject *ring_reserve(struct ring *self, PyObject *const *args, Py_ssize_t nargs,
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

PyObject *ring_acquire(struct ring *self, PyObject *const *args, Py_ssize_t nargs,
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
