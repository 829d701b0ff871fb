# SPDX-License-Identifier: MIT
"""NumPy frames written and read in place, and the memoryviews of
reserve()/acquire() released when their with-block ends."""
import zlib

import numpy as np
import pytest

import shmring
from conftest import CTX, join_ok, run_child

H, W = 2160, 3840                     # 4K RGBA: 31.6 MiB a frame
FRAME = H * W * 4
FRAMES = 6


def ring_span(uri):
    """(start, end) of this process's mapping of the shm: ring."""
    name = "/dev/shm/" + uri.split(":", 1)[1]
    with open("/proc/self/maps") as f:
        for line in f:
            if line.rstrip().endswith(name):
                lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
                return lo, hi
    raise AssertionError(f"{name} is not mapped")


def address(a):
    return a.__array_interface__["data"][0]


def camera(uri, out):
    with shmring.Ring(uri, producer=True) as r:
        lo, hi = ring_span(uri)
        for i in range(FRAMES):
            with r.reserve(FRAME + 4) as buf:
                frame = np.frombuffer(buf, np.uint8, FRAME).reshape(H, W, 4)
                assert lo <= address(frame) and address(frame) + FRAME <= hi
                frame[:] = i * 40                           # in place
                frame[i::97, ::13, i % 4] = 255 - i
                crc = zlib.crc32(frame)                     # reads it back in place
                buf[FRAME:] = crc.to_bytes(4, "little")
                del frame
            out.put(crc)
        r.shutdown()


def test_4k_rgba_frames_in_place_across_processes(uri):
    with shmring.Ring(uri, create=True, consumer=True, capacity=3 * (FRAME + 64),
                      max_msg=FRAME + 4) as r:
        lo, hi = ring_span(uri)
        sums = CTX.SimpleQueue()
        p = run_child(camera, uri, sums)
        for i in range(FRAMES):
            with r.acquire(timeout=60) as m:
                assert len(m) == FRAME + 4 and m.readonly
                frame = np.frombuffer(m, np.uint8, FRAME).reshape(H, W, 4)
                assert lo <= address(frame) and address(frame) + FRAME <= hi   # no copy
                assert not frame.flags.writeable
                assert (frame[1, 1] == (i * 40) & 0xFF).all()
                crc = zlib.crc32(frame)
                assert crc == int.from_bytes(m[FRAME:], "little") == sums.get()
                del frame
        with pytest.raises(BrokenPipeError):
            r.recv(timeout=60)
        join_ok(p)


def test_memoryviews_are_released_after_the_block(uri):
    with shmring.Ring(uri, create=True, producer=True, consumer=True) as r:
        res = r.reserve(64)
        with res as buf:
            buf[:4] = b"abcd"
            part = buf[1:3]                                 # views derived from it
            again = memoryview(buf)
            cast = buf.cast("I")
            res.length = 10                                 # commit 10 of the 64
        for v in (buf, part, again, cast):
            with pytest.raises(ValueError):
                v[0]
            with pytest.raises(ValueError):
                bytes(v)
        with pytest.raises(ValueError):
            buf[0] = 1
        with pytest.raises(ValueError):
            np.frombuffer(buf, np.uint8)
        with pytest.raises(RuntimeError):
            res.__enter__()                                 # entered once
        with r.acquire(timeout=1) as m:
            assert bytes(m[:4]) == b"abcd" and len(m) == 10
            held = m[2:]
            arr = np.asarray(m)                             # holds an export
            assert arr[0] == ord("a")
            del arr
        for v in (m, held):
            with pytest.raises(ValueError):
                v[0]
        assert r.stats()["used"] == 0


def test_export_kept_past_the_block_is_cut_off(uri):
    with shmring.Ring(uri, create=True, producer=True, consumer=True) as r:
        r.send(b"0123456789")
        with r.acquire() as m:
            arr = np.asarray(m)             # an export of m that outlives the block
        with pytest.raises(ValueError):
            m[0]
        with pytest.raises(ValueError):
            memoryview(m)
        del arr


def _arrays_outlive_their_ring(uri):
    r = shmring.Ring(uri, create=True, producer=True, consumer=True,
                     capacity=1 << 16, max_msg=4096)
    arrays = []
    for i in range(50):
        r.send(bytes([i]) * 4096)
        with r.acquire() as m:
            arrays.append(np.frombuffer(m, np.uint8))       # kept past the block
    r.close()
    del r
    # the mapping is still there: reading is safe (what was given back may
    # have been reused: only the reading itself is promised)
    assert sum(int(a[0]) for a in arrays) >= 0
    arrays.clear()


def test_an_array_that_outlives_its_ring_reads_mapped_memory(uri):
    # in a child: a read of unmapped memory would kill the process
    p = run_child(_arrays_outlive_their_ring, uri)
    join_ok(p)


def test_an_exception_in_reserve_sends_an_empty_message(uri):
    with shmring.Ring(uri, create=True, producer=True, consumer=True) as r:
        with pytest.raises(KeyError):
            with r.reserve(100) as buf:
                buf[:3] = b"abc"
                raise KeyError("render failed")
        assert r.recv(0) == b""
        with pytest.raises(BlockingIOError):
            r.recv(0)


def test_recv_while_a_message_is_held(uri):
    with shmring.Ring(uri, create=True, producer=True, consumer=True) as r:
        r.send(b"a")
        r.send(b"b")
        with r.acquire() as m:
            assert bytes(m) == b"a"
            with pytest.raises(shmring.Error):              # SPSC: -EINPROGRESS
                r.recv(0)
        assert r.recv(0) == b"b"


def test_close_inside_the_block_waits_for_it(uri):
    with shmring.Ring(uri, create=True, producer=True, consumer=True) as r:
        r.send(b"xyz")
        with r.acquire() as m:
            r.close()                                       # the handle stays until the release
            assert r.closed
            assert bytes(m) == b"xyz"
        with pytest.raises(ValueError):
            m[0]
        with pytest.raises(ValueError):
            r.recv(0)
