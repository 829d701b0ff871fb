# SPDX-License-Identifier: MIT
"""Fixtures for the binding's tests: unique ring names, removed afterwards,
and a child process that must end within a bound."""
import itertools
import multiprocessing
import os

import pytest

import shmring

_seq = itertools.count()
CTX = multiprocessing.get_context("fork")
# every wait on another process is bounded: a hang fails the test
JOIN_S = 60


def unique(tag="t"):
    return f"py-{tag}-{os.getpid()}-{next(_seq)}"


@pytest.fixture
def make_uri(tmp_path):
    """make_uri(scheme) -> a URI nobody uses; the ring is removed at the end."""
    made = []

    def make(scheme="shm"):
        name = unique(scheme)
        uri = f"{scheme}:{tmp_path / name}" if scheme in ("file", "pipe") else f"{scheme}:{name}"
        made.append(uri)
        return uri

    yield make
    for uri in made:
        try:
            shmring.unlink(uri)
        except OSError:
            pass


@pytest.fixture
def uri(make_uri):
    return make_uri("shm")


def run_child(target, *args):
    """Start target(*args) in a forked process; returns the Process."""
    p = CTX.Process(target=target, args=args, daemon=True)
    p.start()
    return p


def join_ok(p):
    p.join(JOIN_S)
    if p.is_alive():
        p.kill()
        p.join()
        pytest.fail(f"child {p.pid} did not finish within {JOIN_S} s")
    assert p.exitcode == 0, f"child exited with {p.exitcode}"
