# SPDX-License-Identifier: MIT
"""asyncio: one event loop serves many rings through their descriptors."""
import asyncio

import pytest

import shmring
from conftest import join_ok, run_child

N = 2000


def produce(uri, n, tag):
    with shmring.Ring(uri, producer=True) as r:
        for i in range(n):
            r.send(f"{tag}:{i}".encode())
        r.shutdown()


def drain(uri, n):
    with shmring.Ring(uri, consumer=True) as r:
        for i in range(n):
            assert r.recv(timeout=30) == i.to_bytes(4, "little")


@pytest.mark.parametrize("scheme", ["shm", "pipe", "mq"])
def test_one_loop_many_rings(make_uri, scheme):
    uris = [make_uri(scheme) for _ in range(3)]
    o = {"capacity": 4096, "max_msg": 64} if scheme != "mq" else {"capacity": 640, "max_msg": 64}
    consumers = [shmring.Ring(u, create=True, consumer=True, **o) for u in uris]
    procs = [run_child(produce, u, N, k) for k, u in enumerate(uris)]

    async def consume(k, r):
        got = []
        async for msg in r:                         # ends at the end of the stream
            got.append(msg)
        return k, got

    async def main():
        return await asyncio.wait_for(
            asyncio.gather(*(consume(k, r) for k, r in enumerate(consumers))), 60)

    try:
        for k, got in asyncio.run(main()):
            assert got == [f"{k}:{i}".encode() for i in range(N)]
        for p in procs:
            join_ok(p)
    finally:
        for r in consumers:
            r.close()


def test_send_async_waits_for_room(uri):
    with shmring.Ring(uri, create=True, producer=True, capacity=4096, max_msg=64) as r:
        p = run_child(drain, uri, N)

        async def main():
            for i in range(N):                      # the ring holds < 100: it waits
                await r.send_async(i.to_bytes(4, "little"))

        asyncio.run(asyncio.wait_for(main(), 60))
        join_ok(p)
        st = r.stats()
        assert st["msgs_sent"] == N


def test_recv_async_at_the_end_raises(uri):
    with shmring.Ring(uri, create=True, producer=True, consumer=True) as r:
        r.send(b"last")
        r.shutdown()

        async def main():
            assert await r.recv_async() == b"last"
            with pytest.raises(BrokenPipeError):
                await r.recv_async()

        asyncio.run(main())


def test_cancelled_recv_async_leaves_no_reader(uri):
    with shmring.Ring(uri, create=True, producer=True, consumer=True) as r:
        async def main():
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(r.recv_async(), 0.05)
            r.send(b"later")
            assert await asyncio.wait_for(r.recv_async(), 5) == b"later"

        asyncio.run(main())
