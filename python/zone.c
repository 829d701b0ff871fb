/* SPDX-License-Identifier: MIT */
/*
 * shmring.Reservation and shmring.Message: a region of the ring handed out
 * as a memoryview for the length of a with-block.
 *
 * The memoryview points into the ring's mapping.  When the block ends the
 * region goes back to the ring (commit: the consumer may read it; release:
 * the producer may overwrite it), so every memoryview on it is released
 * first: using one afterwards raises ValueError instead of reading or
 * writing memory the ring has reused.  A plain memoryview.release() refuses
 * while views derived from it (slices, memoryview(buf), casts) or buffer
 * exports exist; then the view's managed buffer, which they all share, is
 * marked released, which every memoryview checks before each access.
 * Objects that copied the raw pointer without keeping an export (NumPy's
 * frombuffer) cannot be reached: they must not outlive the block.
 */
#include "binding.h"

#include <structmember.h>

PyTypeObject *reservation_type;
PyTypeObject *message_type;

enum { Z_NEW, Z_OPEN, Z_DONE };

struct zone {
	PyObject_HEAD
	struct ring *ring;      /* strong reference: the handle outlives the zone */
	struct shmring_msg m;
	PyObject *view;         /* the memoryview handed out while open */
	Py_ssize_t len;         /* reservation: bytes asked for, then committed */
	Py_ssize_t size;        /* the view's length */
	int64_t timeout_ns;
	int state;
	int write;              /* a reservation (1) or a message (0) */
};

struct reserve_arg {
	size_t len;
	struct shmring_msg *m;
};

static long op_reserve(struct shmring *r, void *arg, int64_t t)
{
	struct reserve_arg *a = arg;

	return shmring_reserve(r, a->len, a->m, t);
}

PyObject *zone_new(struct ring *ring, PyTypeObject *type, size_t len, int64_t timeout_ns)
{
	struct zone *z = (struct zone *)type->tp_alloc(type, 0);

	if (!z)
		return NULL;
	z->ring = (struct ring *)Py_NewRef(ring);
	z->len = (Py_ssize_t)len;
	z->timeout_ns = timeout_ns;
	z->write = type == reservation_type;
	return (PyObject *)z;
}

/* Every memoryview on the region raises from now on. */
static void zone_invalidate(struct zone *z)
{
	PyMemoryViewObject *mv = (PyMemoryViewObject *)z->view;

	if (!mv)
		return;
	if (mv->exports == 0 && mv->mbuf->exports == 1) {
		/* the view alone: the public way */
		PyObject *rc = PyObject_CallMethod(z->view, "release", NULL);

		if (rc)
			Py_DECREF(rc);
		else
			PyErr_Clear();
	}
	/* views derived from it, or exports: they share the managed buffer
	 * (made by PyMemoryView_FromMemory, it holds no exporter to release) */
	mv->mbuf->flags |= _Py_MANAGED_BUFFER_RELEASED;
	/* ... but an export (a NumPy array) holds the bare address: the ring's
	 * mapping must outlive it.  Kept until nothing reads through it. */
	(void)zone_survivors_gone(z->ring);     /* forget those done with */
	if (mv->exports || Py_REFCNT(mv->mbuf) > 1) {
		if (!z->ring->survivors)
			z->ring->survivors = PyList_New(0);
		if (!z->ring->survivors || PyList_Append(z->ring->survivors, z->view) < 0)
			PyErr_Clear();  /* out of memory: the view is leaked, never freed */
		else
			Py_CLEAR(z->view);
		return;
	}
	Py_CLEAR(z->view);
}

/* A finished region's memoryview is done with when it has no export left
 * and no view made from it still holds its managed buffer (each holds a
 * reference; the view itself is the one left). */
static int survivor_gone(PyObject *view)
{
	PyMemoryViewObject *mv = (PyMemoryViewObject *)view;

	return mv->exports == 0 && Py_REFCNT(mv->mbuf) == 1;
}

int zone_survivors_gone(struct ring *ring)
{
	PyObject *l = ring->survivors;

	if (!l)
		return 1;
	for (Py_ssize_t i = PyList_GET_SIZE(l) - 1; i >= 0; i--)
		if (survivor_gone(PyList_GET_ITEM(l, i)) && PyList_SetSlice(l, i, i + 1, NULL) < 0)
			PyErr_Clear();
	return PyList_GET_SIZE(l) == 0;
}

/* Give the region back: commit (publish ok ? len : 0 bytes) or release. */
static long zone_finish(struct zone *z, int ok)
{
	struct ring *ring = z->ring;
	long rc;

	zone_invalidate(z);
	if (z->write) {
		z->m.len = ok ? (size_t)z->len : 0;
		rc = shmring_commit(ring->r, &z->m);
	} else {
		rc = shmring_release(ring->r, &z->m);
		ring->held--;
	}
	z->state = Z_DONE;
	ring->zones--;
	if (ring->closing)
		ring_settle(ring);
	return rc;
}

static PyObject *zone_enter(struct zone *z, PyObject *unused)
{
	struct ring *ring = z->ring;
	long rc;

	(void)unused;
	if (z->state != Z_NEW)
		return PyErr_Format(PyExc_RuntimeError, "a %s is entered once",
				    Py_TYPE(z)->tp_name);
	if (ring_usable(ring) < 0)
		return NULL;
	if (z->write) {
		struct reserve_arg a = { (size_t)z->len, &z->m };

		rc = ring_run(ring, op_reserve, &a, z->timeout_ns);
	} else {
		rc = ring_run(ring, op_acquire, &z->m, z->timeout_ns);
	}
	if (rc < 0) {
		if (ring->closing)
			ring_settle(ring);
		return raise_run(rc);
	}
	z->state = Z_OPEN;
	ring->zones++;
	if (!z->write)
		ring->held++;
	z->size = z->write ? z->len : (Py_ssize_t)z->m.len;
	static char empty[1];
	z->view = PyMemoryView_FromMemory(z->m.data ? z->m.data : empty, z->size,
					  z->write ? PyBUF_WRITE : PyBUF_READ);
	if (!z->view) {
		PyObject *type, *val, *tb;

		PyErr_Fetch(&type, &val, &tb);
		(void)zone_finish(z, 0);
		PyErr_Restore(type, val, tb);
		return NULL;
	}
	return Py_NewRef(z->view);
}

static PyObject *zone_exit(struct zone *z, PyObject *const *args, Py_ssize_t nargs)
{
	int ok = nargs < 1 || args[0] == Py_None;
	long rc;

	if (z->state != Z_OPEN)
		Py_RETURN_FALSE;
	rc = zone_finish(z, ok);
	if (rc < 0 && ok)
		return raise_rc(rc);
	Py_RETURN_FALSE;
}

static void zone_dealloc(struct zone *z)
{
	PyTypeObject *tp = Py_TYPE(z);

	if (z->state == Z_OPEN) {
		/* entered, never exited: finish it, whatever exception flies */
		PyObject *type, *val, *tb;

		PyErr_Fetch(&type, &val, &tb);
		(void)zone_finish(z, 0);
		PyErr_Restore(type, val, tb);
	}
	Py_XDECREF(z->view);
	Py_XDECREF(z->ring);
	tp->tp_free((PyObject *)z);
	Py_DECREF(tp);                  /* instances of heap types own a reference */
}

static PyObject *zone_get_length(struct zone *z, void *c)
{
	(void)c;
	return PyLong_FromSsize_t(z->state == Z_NEW && !z->write ? 0 : z->write ? z->len : z->size);
}

static int zone_set_length(struct zone *z, PyObject *v, void *c)
{
	Py_ssize_t n;

	(void)c;
	if (!v) {
		PyErr_SetString(PyExc_AttributeError, "length cannot be deleted");
		return -1;
	}
	n = PyLong_AsSsize_t(v);
	if (n == -1 && PyErr_Occurred())
		return -1;
	if (z->state != Z_OPEN || n < 0 || n > z->size) {
		PyErr_Format(PyExc_ValueError, "length: 0..%zd inside the with-block", z->size);
		return -1;
	}
	z->len = n;
	return 0;
}

static PyObject *zone_repr(struct zone *z)
{
	static const char *const states[] = { "not entered", "open", "done" };

	return PyUnicode_FromFormat("<%s %zd bytes, %s>", Py_TYPE(z)->tp_name,
				    z->write ? z->len : z->size, states[z->state]);
}

static PyMethodDef zone_methods[] = {
	{ "__enter__", (PyCFunction)zone_enter, METH_NOARGS, NULL },
	{ "__exit__", (PyCFunction)(void (*)(void))zone_exit, METH_FASTCALL, NULL },
	{ NULL, NULL, 0, NULL }
};

static PyGetSetDef reservation_getset[] = {
	{ "length", (getter)zone_get_length, (setter)zone_set_length,
	  "Bytes the commit publishes: the size asked for, or less if set lower\n"
	  "inside the block.", NULL },
	{ NULL, NULL, NULL, NULL, NULL }
};

static PyGetSetDef message_getset[] = {
	{ "length", (getter)zone_get_length, NULL, "The message's length.", NULL },
	{ NULL, NULL, NULL, NULL, NULL }
};

static PyType_Slot reservation_slots[] = {
	{ Py_tp_doc, (void *)
	  "What Ring.reserve() returns: `with r.reserve(n) as buf:` writes a message\n"
	  "of n bytes in place.  Leaving the block normally commits `length` bytes;\n"
	  "leaving it by an exception commits an empty message (a reservation\n"
	  "cannot be taken back).  buf is released when the block ends." },
	{ Py_tp_dealloc, zone_dealloc },
	{ Py_tp_repr, zone_repr },
	{ Py_tp_methods, zone_methods },
	{ Py_tp_getset, reservation_getset },
	{ 0, NULL }
};

static PyType_Slot message_slots[] = {
	{ Py_tp_doc, (void *)
	  "What Ring.acquire() returns: `with r.acquire() as m:` reads the next\n"
	  "message in place; leaving the block releases it (the producer may\n"
	  "reuse the room).  m is released when the block ends." },
	{ Py_tp_dealloc, zone_dealloc },
	{ Py_tp_repr, zone_repr },
	{ Py_tp_methods, zone_methods },
	{ Py_tp_getset, message_getset },
	{ 0, NULL }
};

static PyType_Spec reservation_spec = {
	.name = "shmring.Reservation",
	.basicsize = sizeof(struct zone),
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION,
	.slots = reservation_slots,
};

static PyType_Spec message_spec = {
	.name = "shmring.Message",
	.basicsize = sizeof(struct zone),
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION,
	.slots = message_slots,
};

int zone_init_types(PyObject *m)
{
	reservation_type = (PyTypeObject *)PyType_FromSpec(&reservation_spec);
	message_type = (PyTypeObject *)PyType_FromSpec(&message_spec);
	if (!reservation_type || !message_type ||
	    PyModule_AddObjectRef(m, "Reservation", (PyObject *)reservation_type) < 0 ||
	    PyModule_AddObjectRef(m, "Message", (PyObject *)message_type) < 0)
		return -1;
	return 0;
}
