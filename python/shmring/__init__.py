# SPDX-License-Identifier: MIT
"""shmring: message rings between processes on one Linux machine.

    import shmring

    with shmring.Ring("shm:ticks", create=True, producer=True) as r:
        r.send(b"tick")

    with shmring.Ring("shm:ticks", consumer=True) as r:
        for msg in r:                # until the producer calls shutdown()
            print(msg)

Messages are written and read in place with ``reserve()`` and
``acquire()`` (memoryviews into the ring, valid inside their with-block),
copied with ``send()``/``recv()``/``recv_into()``, and awaited from asyncio
with ``send_async()``/``recv_async()``.  Errors are OSError subclasses:
TimeoutError, BlockingIOError (timeout=0), BrokenPipeError (the stream was
shut down and drained), FileExistsError, FileNotFoundError,
PermissionError, and shmring.Error for the rest; bad arguments raise
ValueError.  See docs/python.md.
"""

import asyncio as _asyncio

from ._shmring import (BCAST, CAP_BCAST, CAP_BLOCKING, CAP_DURABLE, CAP_MPMC,
                       CAP_PERSISTENT, CAP_POLL, CAP_RECOVERY, CAP_ZEROCOPY,
                       LIBRARY_VERSION, MPMC,
                       SPSC, Error, Message, Reservation, strerror, trust_owner, unlink)
from ._shmring import Ring as _Ring

__all__ = ["Ring", "Reservation", "Message", "Error", "unlink", "trust_owner",
           "strerror", "SPSC", "MPMC", "BCAST", "CAP_ZEROCOPY", "CAP_MPMC",
           "CAP_PERSISTENT", "CAP_DURABLE", "CAP_RECOVERY", "CAP_BLOCKING",
           "CAP_POLL", "CAP_BCAST", "LIBRARY_VERSION"]


def _wake(fut):
    if not fut.done():
        fut.set_result(None)


class Ring(_Ring):
    __doc__ = _Ring.__doc__
    __slots__ = ()

    async def _readable(self):
        """Wait until the handle's descriptor is readable (shmring_fd(3))."""
        loop = _asyncio.get_running_loop()
        fd = self.fileno()
        fut = loop.create_future()
        loop.add_reader(fd, _wake, fut)
        try:
            await fut
        finally:
            loop.remove_reader(fd)

    async def recv_async(self):
        """The next message, as bytes, without blocking the event loop.

        Receives with timeout 0; on BlockingIOError waits for the handle's
        descriptor with loop.add_reader and tries again, so one loop serves
        any number of rings.  BrokenPipeError at the end of the stream.
        One coroutine at a time per handle.
        """
        while True:
            try:
                return self.recv(0)
            except BlockingIOError:
                pass
            await self._readable()

    async def send_async(self, data):
        """Send one message without blocking the event loop (see recv_async)."""
        while True:
            try:
                return self.send(data, 0)
            except BlockingIOError:
                pass
            await self._readable()

    def __aiter__(self):
        return self

    async def __anext__(self):
        try:
            return await self.recv_async()
        except BrokenPipeError:
            raise StopAsyncIteration from None
