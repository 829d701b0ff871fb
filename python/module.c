/* SPDX-License-Identifier: MIT */
/* The module shmring._shmring: errors, argument helpers, module functions. */
#include "binding.h"

#include <limits.h>
#include <math.h>

#define STR_(x) #x
#define STR(x) STR_(x)
#define VERSION_STR STR(SHMRING_VERSION_MAJOR) "." STR(SHMRING_VERSION_MINOR) "." \
	STR(SHMRING_VERSION_PATCH)

PyObject *shmring_error;

PyObject *raise_rc(long rc)
{
	int e = rc < 0 && rc > -INT_MAX ? (int)-rc : EINVAL;
	const char *what = shmring_strerror(-e);
	PyObject *type, *exc;

	switch (e) {
	case EAGAIN: type = PyExc_BlockingIOError; break;
	case ETIMEDOUT: type = PyExc_TimeoutError; break;
	case EPIPE: type = PyExc_BrokenPipeError; break;
	case EEXIST: type = PyExc_FileExistsError; break;
	case ENOENT: type = PyExc_FileNotFoundError; break;
	case EACCES:
	case EPERM: type = PyExc_PermissionError; break;
	case EINVAL:
		PyErr_SetString(PyExc_ValueError, what);
		return NULL;
	default: type = shmring_error; break;
	}
	exc = PyObject_CallFunction(type, "is", e, what);
	if (exc) {
		PyErr_SetObject(type, exc);
		Py_DECREF(exc);
	}
	return NULL;
}

PyObject *raise_run(long rc)
{
	return rc == RC_PYERR ? NULL : raise_rc(rc);
}

int parse_args(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
	       const char *fname, const char *const *names, int npos, int n, PyObject **out)
{
	Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;

	for (int i = 0; i < n; i++)
		out[i] = NULL;
	if (nargs > npos) {
		PyErr_Format(PyExc_TypeError, "%s() takes at most %d positional argument%s (%zd given)",
			     fname, npos, npos == 1 ? "" : "s", nargs);
		return -1;
	}
	for (Py_ssize_t i = 0; i < nargs; i++)
		out[i] = args[i];
	for (Py_ssize_t k = 0; k < nkw; k++) {
		PyObject *key = PyTuple_GET_ITEM(kwnames, k);
		int i = 0;

		while (i < n && PyUnicode_CompareWithASCIIString(key, names[i]) != 0)
			i++;
		if (i == n) {
			PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'",
				     fname, key);
			return -1;
		}
		if (out[i]) {
			PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'",
				     fname, names[i]);
			return -1;
		}
		out[i] = args[nargs + k];
	}
	return 0;
}

int parse_timeout(PyObject *o, int64_t *timeout_ns)
{
	double s;

	if (!o || o == Py_None) {
		*timeout_ns = SHMRING_FOREVER;
		return 0;
	}
	if (PyLong_CheckExact(o)) {
		long long v = PyLong_AsLongLong(o);

		if (v == -1 && PyErr_Occurred())
			return -1;
		if (v >= 0 && v < INT64_MAX / 1000000000LL) {
			*timeout_ns = v * 1000000000LL;
			return 0;
		}
		s = (double)v;
	} else {
		s = PyFloat_AsDouble(o);
		if (s == -1.0 && PyErr_Occurred())
			return -1;
	}
	if (!(s >= 0)) {        /* negative or NaN */
		PyErr_SetString(PyExc_ValueError, "timeout must be None or a number of seconds >= 0");
		return -1;
	}
	*timeout_ns = s * 1e9 >= 9e18 ? SHMRING_FOREVER : (int64_t)ceil(s * 1e9);
	return 0;
}

/* ---- module functions ---- */

static PyObject *mod_unlink(PyObject *mod, PyObject *arg)
{
	const char *uri;
	int rc;

	(void)mod;
	if (!PyUnicode_Check(arg))
		return PyErr_Format(PyExc_TypeError, "unlink() argument must be str, not %.100s",
				    Py_TYPE(arg)->tp_name);
	uri = PyUnicode_AsUTF8(arg);
	if (!uri)
		return NULL;
	rc = shmring_unlink(uri);
	if (rc < 0)
		return raise_rc(rc);
	Py_RETURN_NONE;
}

static PyObject *mod_trust_owner(PyObject *mod, PyObject *arg)
{
	unsigned long uid;
	int rc;

	(void)mod;
	uid = PyLong_AsUnsignedLong(arg);
	if (uid == (unsigned long)-1 && PyErr_Occurred())
		return NULL;
	if (uid > UINT32_MAX)
		return PyErr_Format(PyExc_ValueError, "uid out of range: %lu", uid);
	rc = shmring_trust_owner((uid_t)uid);
	if (rc < 0)
		return raise_rc(rc);
	Py_RETURN_NONE;
}

static PyObject *mod_strerror(PyObject *mod, PyObject *arg)
{
	long e;

	(void)mod;
	e = PyLong_AsLong(arg);
	if (e == -1 && PyErr_Occurred())
		return NULL;
	if (e > INT_MAX || e < -INT_MAX)
		return PyErr_Format(PyExc_ValueError, "not an errno value: %ld", e);
	return PyUnicode_FromString(shmring_strerror(e > 0 ? (int)-e : (int)e));
}

static PyMethodDef mod_methods[] = {
	{ "unlink", mod_unlink, METH_O,
	  "unlink(uri, /)\n--\n\n"
	  "Remove the ring's name.  Processes that have it open keep using it;\n"
	  "FileNotFoundError if there is no such ring." },
	{ "trust_owner", mod_trust_owner, METH_O,
	  "trust_owner(uid, /)\n--\n\n"
	  "Also open rings owned by the user uid (process-wide, up to 16 uids).\n"
	  "Without it a ring owned by another user is refused with PermissionError." },
	{ "strerror", mod_strerror, METH_O,
	  "strerror(err, /)\n--\n\n"
	  "What an errno value (positive or negative) means to shmring." },
	{ NULL, NULL, 0, NULL }
};

static struct PyModuleDef mod_def = {
	PyModuleDef_HEAD_INIT,
	.m_name = "shmring._shmring",
	.m_doc = "The C part of the shmring binding; import shmring instead.",
	.m_size = -1,
	.m_methods = mod_methods,
};

PyMODINIT_FUNC PyInit__shmring(void);

PyMODINIT_FUNC PyInit__shmring(void)
{
	PyObject *m = PyModule_Create(&mod_def);

	if (!m)
		return NULL;
	shmring_error = PyErr_NewExceptionWithDoc("shmring.Error",
		"An error of the shmring library that no builtin exception names;\n"
		"errno says which (e.g. errno.EMSGSIZE, errno.EBUSY, errno.EPROTO).",
		PyExc_OSError, NULL);
	if (!shmring_error || PyModule_AddObjectRef(m, "Error", shmring_error) < 0)
		goto fail;
	if (PyModule_AddIntConstant(m, "SPSC", SHMRING_SPSC) < 0 ||
	    PyModule_AddIntConstant(m, "MPMC", SHMRING_MPMC) < 0 ||
	    PyModule_AddIntConstant(m, "BCAST", 3) < 0 ||
	    PyModule_AddIntConstant(m, "CAP_ZEROCOPY", SHMRING_CAP_ZEROCOPY) < 0 ||
	    PyModule_AddIntConstant(m, "CAP_MPMC", SHMRING_CAP_MPMC) < 0 ||
	    PyModule_AddIntConstant(m, "CAP_PERSISTENT", SHMRING_CAP_PERSISTENT) < 0 ||
	    PyModule_AddIntConstant(m, "CAP_DURABLE", SHMRING_CAP_DURABLE) < 0 ||
	    PyModule_AddIntConstant(m, "CAP_RECOVERY", SHMRING_CAP_RECOVERY) < 0 ||
	    PyModule_AddIntConstant(m, "CAP_BLOCKING", SHMRING_CAP_BLOCKING) < 0 ||
	    PyModule_AddIntConstant(m, "CAP_POLL", SHMRING_CAP_POLL) < 0 ||
	    PyModule_AddIntConstant(m, "CAP_BCAST", SHMRING_CAP_BCAST) < 0 ||
	    PyModule_AddStringConstant(m, "LIBRARY_VERSION", VERSION_STR) < 0)
		goto fail;
	if (ring_init_types(m) < 0 || zone_init_types(m) < 0)
		goto fail;
	return m;
fail:
	Py_DECREF(m);
	return NULL;
}
