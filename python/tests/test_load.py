# SPDX-License-Identifier: MIT
"""The extension is loaded by dlopen into an interpreter that already runs
threads, brings no jemalloc with it, and exports nothing but its init."""
import subprocess
import sys

import shmring


def test_loads_by_dlopen_into_a_threaded_interpreter():
    code = ("import threading; e = threading.Event(); "
            "t = threading.Thread(target=e.wait); t.start()\n"
            "try:\n import shmring; print(shmring.strerror(32))\n"
            "finally:\n e.set(); t.join()\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip() == shmring.strerror(-32)
    with open("/proc/self/maps") as f:
        assert "jemalloc" not in f.read()


def test_exports_only_its_init():
    out = subprocess.run(["nm", "-D", "--defined-only", shmring._shmring.__file__],
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        return                                  # no binutils: nothing to look at
    names = [line.split()[-1] for line in out.stdout.splitlines() if line.strip()]
    assert names == ["PyInit__shmring"]


def test_stubs_name_what_the_module_has():
    import ast
    import os

    path = os.path.join(os.path.dirname(shmring.__file__), "__init__.pyi")
    with open(path) as f:
        tree = ast.parse(f.read())
    ring = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Ring")
    stubbed = {n.name for n in ring.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    public = {m for m in dir(shmring.Ring) if not m.startswith("_")}
    assert public <= stubbed, public - stubbed
    assert set(shmring.__all__) <= {getattr(n, "name", None) or getattr(n.target, "id", None)
                                    for n in tree.body
                                    if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AnnAssign))}
    for name in shmring.__all__:
        assert getattr(shmring, name).__doc__ or not callable(getattr(shmring, name)), name
