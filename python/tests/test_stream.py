# SPDX-License-Identifier: MIT
"""The stream contract of the C conformance suite, driven from Python, on
every backend: order and boundaries across two processes, timeouts,
shutdown, and every error as the exception the binding maps it to."""
import errno
import os

import pytest

import shmring
from conftest import join_ok, run_child

BACKENDS = ["shm", "mpmc", "file", "pipe", "mq"]
MAX_MSG = 1000


def opts(backend):
    """What every open of a test passes (pipe: stores no geometry)."""
    o = {"capacity": 65536, "max_msg": MAX_MSG}
    if backend == "mpmc":
        o["kind"] = "mpmc"
    if backend == "mq":
        with open("/proc/sys/fs/mqueue/msg_max") as f:
            depth = min(int(f.read()), 64)
        o["capacity"] = depth * MAX_MSG
    return o


@pytest.fixture(params=BACKENDS)
def ring(request, make_uri):
    """(backend, uri, opts): the ring created, no handle kept."""
    b = request.param
    uri = make_uri("shm" if b == "mpmc" else b)
    o = opts(b)
    shmring.Ring(uri, create=True, exclusive=True, **o).close()
    return b, uri, o


def payload(i):
    """Message i: i % 7 bytes up to MAX_MSG, boundaries visible."""
    n = (i * 37) % (MAX_MSG + 1)
    return bytes((i + k) & 0xFF for k in range(n))


N = 3000


def produce(uri, o, n):
    with shmring.Ring(uri, producer=True, **o) as r:
        for i in range(0, n, 10):
            r.send_batch([payload(j) for j in range(i, min(i + 10, n))])
        r.shutdown()


def test_order_and_boundaries_across_processes(ring):
    b, uri, o = ring
    with shmring.Ring(uri, consumer=True, **o) as r:
        p = run_child(produce, uri, o, N)
        got = 0
        buf = bytearray(MAX_MSG)
        for i, msg in enumerate(r):
            assert msg == payload(i)
            got += 1
            if got == N // 2:                      # the other ways of receiving
                break
        while got < N:
            if got % 3 == 0:
                n = r.recv_into(buf)
                assert bytes(buf[:n]) == payload(got)
                got += 1
            elif got % 3 == 1:
                with r.acquire(timeout=30) as m:
                    assert bytes(m) == payload(got)
                got += 1
            else:
                for msg in r.recv_batch(5, timeout=30):
                    assert msg == payload(got)
                    got += 1
        with pytest.raises(BrokenPipeError) as e:
            r.recv(timeout=30)
        assert e.value.errno == errno.EPIPE
        assert list(r) == []                       # iteration ends at the end
        join_ok(p)


def test_timeouts(ring):
    b, uri, o = ring
    with shmring.Ring(uri, producer=True, consumer=True, **o) as r:
        with pytest.raises(BlockingIOError) as e:
            r.recv(0)
        assert e.value.errno == errno.EAGAIN
        with pytest.raises(TimeoutError) as e:
            r.recv(timeout=0.05)
        assert e.value.errno == errno.ETIMEDOUT
        with pytest.raises(TimeoutError):
            with r.acquire(timeout=0.01):
                pass
        # fill it, then the producer's side times out
        sent = 0
        with pytest.raises(BlockingIOError):
            while True:
                r.send(bytes(MAX_MSG), timeout=0)
                sent += 1
        assert sent > 0
        with pytest.raises(TimeoutError):
            r.send(bytes(MAX_MSG), timeout=0.02)
        for _ in range(sent):
            assert len(r.recv(0)) == MAX_MSG
        with pytest.raises(ValueError):
            r.recv(timeout=-1)


def test_shutdown_drains_then_ends(ring):
    b, uri, o = ring
    with shmring.Ring(uri, producer=True, **o) as p, shmring.Ring(uri, consumer=True, **o) as c:
        p.send(b"one")
        p.send(b"")
        p.shutdown()
        with pytest.raises(BrokenPipeError):
            p.send(b"late")
        assert c.recv(1) == b"one"
        assert c.recv(1) == b""
        with pytest.raises(BrokenPipeError):
            c.recv(1)
        with pytest.raises(BrokenPipeError):
            c.recv(0)


def test_errors_map_to_exceptions(ring):
    b, uri, o = ring
    with shmring.Ring(uri, consumer=True, **o) as c, shmring.Ring(uri, producer=True, **o) as p:
        with pytest.raises(shmring.Error) as e:               # larger than max_msg
            p.send(bytes(MAX_MSG + 1))
        assert e.value.errno == errno.EMSGSIZE
        assert isinstance(e.value, OSError)
        with pytest.raises(PermissionError) as e:             # not its role
            p.recv(0)
        assert e.value.errno == errno.EPERM
        with pytest.raises(PermissionError):
            c.send(b"x")
        p.send(b"x" * 10)
        with pytest.raises(shmring.Error) as e:               # buffer too small
            c.recv_into(bytearray(4), timeout=1)
        assert e.value.errno == errno.EMSGSIZE
        assert c.recv(1) == b"x" * 10                         # still there
    if b != "pipe":                                           # a FIFO is made by both sides
        with pytest.raises(FileExistsError):
            shmring.Ring(uri, create=True, exclusive=True, **o)


def test_open_errors(make_uri):
    with pytest.raises(FileNotFoundError) as e:
        shmring.Ring(make_uri("shm"), consumer=True)
    assert e.value.errno == errno.ENOENT
    with pytest.raises(FileNotFoundError):
        shmring.unlink(make_uri("shm"))
    for bad in ("shm:", "shm:.hidden", "shm:a/b", "nope:x", "shm:" + "x" * 201):
        with pytest.raises(ValueError):
            shmring.Ring(bad, create=True, producer=True)
    with pytest.raises(ValueError):
        shmring.Ring(make_uri("shm"), create=True, kind="ring")
    with pytest.raises(TypeError):
        shmring.Ring(make_uri("shm"), True)                   # keywords only


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a ring another user owns")
def test_another_users_ring_is_refused(make_uri):
    uri = make_uri("shm")
    path = "/dev/shm/" + uri[4:]
    shmring.Ring(uri, create=True, mode=0o666).close()
    os.chown(path, 65534, 65534)
    try:
        with pytest.raises(PermissionError) as e:
            shmring.Ring(uri, consumer=True)
        assert e.value.errno == errno.EACCES
    finally:
        os.chown(path, os.geteuid(), os.getegid())     # ours again: the fixture removes it
    assert shmring.trust_owner(os.geteuid()) is None


def test_second_spsc_consumer_is_busy(uri):
    with shmring.Ring(uri, create=True, consumer=True):
        with pytest.raises(shmring.Error) as e:
            shmring.Ring(uri, consumer=True)
        assert e.value.errno == errno.EBUSY


def test_broadcast_every_subscriber_gets_every_message(uri):
    with shmring.Ring(uri, create=True, producer=True, kind="bcast",
                      capacity=1 << 16, max_msg=1024) as p:
        assert p.kind == "bcast"
        subs = [shmring.Ring(uri, consumer=True) for _ in range(3)]
        for i in range(100):
            p.send(b"m%d" % i)
        late = shmring.Ring(uri, consumer=True, oldest=True)
        for s in subs + [late]:
            assert [s.recv(0) for _ in range(100)] == [b"m%d" % i for i in range(100)]
            with pytest.raises(BlockingIOError):
                s.recv(0)
            s.close()


def test_broadcast_overwrite_tells_a_lapped_subscriber(uri):
    with shmring.Ring(uri, create=True, producer=True, kind="bcast", overwrite=True,
                      capacity=4096, max_msg=256) as p:
        with shmring.Ring(uri, consumer=True) as s:
            for i in range(1000):                 # laps the subscriber many times
                p.send(b"%04d" % i + b"x" * 100)
            with pytest.raises(shmring.Error) as e:
                s.recv(0)
            assert e.value.errno == errno.EOVERFLOW
            first = int(s.recv(0)[:4])            # the oldest still in the ring
            assert 900 < first < 1000
            assert s.stats()["msgs_lost"] >= first


def test_fixed_size_ring_takes_one_length(make_uri):
    uri = make_uri("shm")
    with shmring.Ring(uri, create=True, producer=True, fixed=True, capacity=4096,
                      max_msg=8) as p:
        with shmring.Ring(uri, consumer=True) as c:
            assert p.caps()["fixed"] and c.caps()["fixed"] and c.max_msg == 8
            for i in range(2000):                 # several laps of the ring
                p.send(i.to_bytes(8, "little"))
                assert int.from_bytes(c.recv(0), "little") == i
            for bad in (b"", b"1234567", b"123456789"):
                with pytest.raises(shmring.Error) as e:
                    p.send(bad)
                assert e.value.errno == errno.EMSGSIZE
            assert c.stats()["msgs_recv"] == 2000
    with shmring.Ring(make_uri("shm"), create=True, producer=True, capacity=4096,
                      max_msg=8) as r:
        assert not r.caps()["fixed"]              # a variable-length ring, as before
        r.send(b"abc")


def test_stats_caps_and_roles(ring):
    b, uri, o = ring
    with shmring.Ring(uri, producer=True, **o) as r:
        r.send(b"abc")
        st = r.stats()
        caps = r.caps()
        assert r.producer and not r.consumer and not r.closed
        assert r.max_msg == caps["max_msg"] >= MAX_MSG if b == "mq" else r.max_msg == MAX_MSG
        assert caps["blocking"] and caps["poll"]
        assert caps["zerocopy"] == (b in ("shm", "mpmc", "file"))
        r.flush()
        if b not in ("pipe", "mq"):
            assert st["msgs_sent"] == 1 and st["bytes_sent"] == 3
            assert st["kind"] == ("mpmc" if b == "mpmc" else "spsc")
        assert isinstance(r.fileno(), int)
    assert r.closed
    with pytest.raises(ValueError):
        r.send(b"closed")
    assert "closed" in repr(r)
