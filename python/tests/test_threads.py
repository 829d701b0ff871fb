# SPDX-License-Identifier: MIT
"""Reference counts, the GIL and signals: no leak over many messages,
threads with their own handles at once, a handle closed while another
thread waits on it, Ctrl-C in a blocking call."""
import os
import signal
import sys
import threading
import time
import tracemalloc

import pytest

import shmring
from conftest import CTX, JOIN_S, join_ok, run_child

# make check: 100 000 round trips; SHMRING_PY_LONG=1: the full million
LEAK_N = 1_000_000 if os.environ.get("SHMRING_PY_LONG") else 100_000


def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def traffic(r, n, buf):
    send, recv, recv_into = r.send, r.recv, r.recv_into
    msg, ba = b"m" * 64, bytearray(b"b" * 64)
    for i in range(n):
        send(msg)
        recv()
        send(ba, timeout=1)
        recv_into(buf, timeout=None)
        if i % 64 == 0:
            r.send_batch([msg, ba, memoryview(msg)])
            r.recv_batch(8, timeout=0)
            with r.reserve(64) as w:
                w[:2] = b"ok"
            with r.acquire(timeout=1) as m:
                bytes(m[:2])
            try:
                r.recv(0)
            except BlockingIOError:
                pass


def test_no_leak_over_many_messages(uri):
    with shmring.Ring(uri, create=True, producer=True, consumer=True) as r:
        buf = bytearray(256)
        traffic(r, 10_000, buf)                      # warm up: caches, arenas
        types = (shmring.Reservation, shmring.Message, shmring.Ring.__mro__[1])
        refs = [sys.getrefcount(t) for t in types]
        tracemalloc.start()
        try:
            before_py = tracemalloc.get_traced_memory()[0]
            before_rss = rss_kib()
            traffic(r, LEAK_N, buf)
            grown_py = tracemalloc.get_traced_memory()[0] - before_py
            grown_rss = rss_kib() - before_rss
        finally:
            tracemalloc.stop()
        print(f"{LEAK_N} round trips: Python heap {grown_py:+} B, RSS {grown_rss:+} KiB")
        assert [sys.getrefcount(t) for t in types] == refs   # objects give back their type
        assert grown_py < 64 * 1024
        if "libasan" not in os.environ.get("LD_PRELOAD", ""):   # ASan's quarantine grows it
            assert grown_rss < 4 * 1024


def test_blocking_calls_release_the_gil(uri):
    """An SPSC pair in two threads of one process, each with its own handle:
    a blocking call that kept the GIL would stop the other side for good."""
    n = 20_000
    with shmring.Ring(uri, create=True, capacity=4096, max_msg=64):
        got = []

        def consume():
            with shmring.Ring(uri, consumer=True) as c:
                got.extend(c)

        t = threading.Thread(target=consume)
        t.start()
        with shmring.Ring(uri, producer=True) as p:
            for i in range(n):
                p.send(i.to_bytes(4, "little"))     # the ring holds < 100: it waits
            p.shutdown()
        t.join(JOIN_S)
        assert not t.is_alive()
        assert [int.from_bytes(m, "little") for m in got] == list(range(n))


def test_threads_with_their_own_handles_on_mpmc(uri):
    nthreads, n = 3, 5_000
    with shmring.Ring(uri, create=True, kind="mpmc", capacity=1 << 16, max_msg=64):
        seen = [[] for _ in range(nthreads)]

        def produce(k):
            with shmring.Ring(uri, producer=True) as p:
                for i in range(n):
                    p.send(f"{k}:{i}".encode())

        def consume(k):
            with shmring.Ring(uri, consumer=True) as c:
                try:
                    while True:
                        seen[k].append(c.recv(timeout=30).decode())
                except BrokenPipeError:
                    pass

        cons = [threading.Thread(target=consume, args=(k,)) for k in range(nthreads)]
        prods = [threading.Thread(target=produce, args=(k,)) for k in range(nthreads)]
        for t in cons + prods:
            t.start()
        for t in prods:
            t.join(JOIN_S)
        with shmring.Ring(uri, producer=True) as p:
            p.shutdown()
        for t in cons:
            t.join(JOIN_S)
        assert not any(t.is_alive() for t in cons + prods)
        everything = sorted(m for s in seen for m in s)
        assert everything == sorted(f"{k}:{i}" for k in range(nthreads) for i in range(n))
        for s in seen:                                      # FIFO per producer
            for k in range(nthreads):
                mine = [int(m.split(":")[1]) for m in s if m.startswith(f"{k}:")]
                assert mine == sorted(mine)


def test_close_while_another_thread_waits(uri):
    with shmring.Ring(uri, create=True, consumer=True) as r:
        caught = []

        def wait():
            try:
                r.recv()                                    # forever
            except Exception as e:                          # noqa: BLE001
                caught.append(e)

        t = threading.Thread(target=wait)
        t.start()
        time.sleep(0.2)                                     # let it wait
        with pytest.raises(RuntimeError):                   # SPSC: one thread at a time
            r.recv(0)
        r.close()
        t.join(JOIN_S)
        assert not t.is_alive()
        assert len(caught) == 1 and isinstance(caught[0], ValueError), caught
        assert r.closed
    # the role was given back: a new consumer may open
    shmring.Ring(uri, consumer=True).close()


def interrupted(uri, out):
    with shmring.Ring(uri, consumer=True) as r:
        out.put("waiting")
        try:
            r.recv()
            out.put("not interrupted")
            return
        except KeyboardInterrupt:
            out.put(time.monotonic())
        out.put(r.recv(timeout=30))                         # nothing was lost


def test_ctrl_c_interrupts_a_blocking_call(uri):
    with shmring.Ring(uri, create=True, producer=True) as r:
        out = CTX.SimpleQueue()
        p = run_child(interrupted, uri, out)
        assert out.get() == "waiting"
        time.sleep(0.3)                                     # inside the wait by now
        sent = time.monotonic()
        os.kill(p.pid, signal.SIGINT)
        got = out.get()
        assert isinstance(got, float), got
        print(f"KeyboardInterrupt {1000 * (got - sent):.1f} ms after SIGINT")
        r.send(b"after")
        assert out.get() == b"after"
        join_ok(p)


def interrupted_send(uri, out):
    with shmring.Ring(uri, producer=True) as r:
        n = 0
        try:
            while True:
                r.send(n.to_bytes(4, "little"), timeout=0)
                n += 1
        except BlockingIOError:
            pass
        out.put(n)                                          # full: the next send waits
        try:
            r.send(b"never")
            out.put("not interrupted")
        except KeyboardInterrupt:
            out.put("interrupted")
        r.shutdown()


def test_ctrl_c_interrupts_a_blocking_send_and_sends_nothing(uri):
    with shmring.Ring(uri, create=True, consumer=True, capacity=4096, max_msg=64) as r:
        out = CTX.SimpleQueue()
        p = run_child(interrupted_send, uri, out)
        n = out.get()
        time.sleep(0.3)                                     # inside the wait by now
        os.kill(p.pid, signal.SIGINT)
        assert out.get() == "interrupted"
        join_ok(p)
        got = [int.from_bytes(m, "little") for m in r]     # until the shutdown
        assert got == list(range(n))                        # and not b"never"
