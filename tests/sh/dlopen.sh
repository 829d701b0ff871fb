#!/bin/sh
# libshmring.so is loaded with dlopen() by a process that already runs
# threads (a plugin, a language binding) and by Python's ctypes; the stream
# contract runs through it, and no message touches the heap (linked into a
# program with jemalloc too).  Run by `make check`; SRC and BUILD are set.
set -eu
prog=$BUILD/tests/prog

LD_LIBRARY_PATH=$BUILD "$prog/dlopen_stream" 100000
"$prog/linked_stream" 100000

if ! command -v python3 >/dev/null 2>&1; then
	echo "dlopen.sh: python3 absent, the ctypes load is not tried"
	exit 0
fi
python3 - "$BUILD/libshmring.so.0" <<'PY'
import ctypes, errno, sys, threading

# a thread runs before the library comes in, as in any interpreter
done = threading.Event()
t = threading.Thread(target=done.wait)
t.start()
try:
    lib = ctypes.CDLL(sys.argv[1])
    lib.shmring_strerror.restype = ctypes.c_char_p
    lib.shmring_strerror.argtypes = [ctypes.c_int]
    msg = lib.shmring_strerror(-errno.EPIPE).decode()
    print("dlopen.sh: python3 ctypes.CDLL loaded it; shmring_strerror(-EPIPE) = " + repr(msg))
finally:
    done.set()
    t.join()
PY
