# SPDX-License-Identifier: MIT
# Type stubs of the shmring package (the C extension and its Python part).
from collections.abc import AsyncIterator, Iterable, Iterator
from types import TracebackType
from typing import Literal, TypedDict

from typing_extensions import Buffer, Self

__all__ = ["Ring", "Reservation", "Message", "Error", "unlink", "trust_owner",
           "strerror", "SPSC", "MPMC", "BCAST", "CAP_ZEROCOPY", "CAP_MPMC",
           "CAP_PERSISTENT", "CAP_DURABLE", "CAP_RECOVERY", "CAP_BLOCKING",
           "CAP_POLL", "CAP_BCAST", "LIBRARY_VERSION"]

SPSC: int
MPMC: int
BCAST: int
CAP_ZEROCOPY: int
CAP_MPMC: int
CAP_PERSISTENT: int
CAP_DURABLE: int
CAP_RECOVERY: int
CAP_BLOCKING: int
CAP_POLL: int
CAP_BCAST: int
LIBRARY_VERSION: str

Kind = Literal["spsc", "mpmc", "bcast", "broadcast"]
# None: wait as long as it takes; 0: never wait (BlockingIOError); > 0: seconds
Timeout = float | None


class Error(OSError):
    """A library error no builtin exception names; errno says which."""
    sent: int


class Stats(TypedDict):
    msgs_sent: int
    bytes_sent: int
    msgs_recv: int
    bytes_recv: int
    waits_full: int
    waits_empty: int
    futex_wakes: int
    futex_sleeps: int
    holes_skipped: int
    msgs_redelivered: int
    msgs_dropped: int
    repairs: int
    takeovers: int
    capacity: int
    used: int
    max_msg: int
    kind: str
    producers: int
    consumers: int
    shut_down: bool
    unlinked: bool
    stalls_skipped: int
    commits_cancelled: int
    poll_wakes: int
    poll_spurious: int
    lag_msgs: int
    lag_bytes: int
    msgs_lost: int
    evictions: int


class Caps(TypedDict):
    flags: int
    max_producers: int
    max_consumers: int
    max_msg: int
    capacity: int
    zerocopy: bool
    mpmc: bool
    persistent: bool
    durable: bool
    recovery: bool
    blocking: bool
    poll: bool
    bcast: bool


class Reservation:
    """with r.reserve(n) as buf: a writable memoryview of n bytes in the ring."""
    length: int
    def __enter__(self) -> memoryview: ...
    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> Literal[False]: ...


class Message:
    """with r.acquire() as m: a read-only memoryview of the next message."""
    @property
    def length(self) -> int: ...
    def __enter__(self) -> memoryview: ...
    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> Literal[False]: ...


class Ring:
    def __init__(self, uri: str, *, create: bool = False, exclusive: bool = False,
                 producer: bool = False, consumer: bool = False, kind: Kind | int = "spsc",
                 capacity: int = 0, max_msg: int = 0, mode: int = 0o600,
                 prefault: bool = False, mlock: bool = False, stall_ms: int = 0,
                 spin_ns: int | None = None, oldest: bool = False,
                 overwrite: bool = False, fixed: bool = False) -> None: ...
    @property
    def uri(self) -> str: ...
    @property
    def max_msg(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def producer(self) -> bool: ...
    @property
    def consumer(self) -> bool: ...
    @property
    def closed(self) -> bool: ...

    def send(self, data: Buffer, timeout: Timeout = None) -> None: ...
    def recv(self, timeout: Timeout = None) -> bytes: ...
    def recv_into(self, buffer: Buffer, timeout: Timeout = None) -> int: ...
    def send_batch(self, messages: Iterable[Buffer], timeout: Timeout = None) -> int: ...
    def recv_batch(self, max: int = 64, timeout: Timeout = None) -> list[bytes]: ...
    def reserve(self, size: int, timeout: Timeout = None) -> Reservation: ...
    def acquire(self, timeout: Timeout = None) -> Message: ...
    async def send_async(self, data: Buffer) -> None: ...
    async def recv_async(self) -> bytes: ...

    def shutdown(self) -> None: ...
    def flush(self) -> None: ...
    def stats(self) -> Stats: ...
    def caps(self) -> Caps: ...
    def fileno(self) -> int: ...
    def set_spin(self, ns: int, /) -> None: ...
    def close(self) -> None: ...

    def __enter__(self) -> Self: ...
    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...
    def __iter__(self) -> Iterator[bytes]: ...
    def __next__(self) -> bytes: ...
    def __aiter__(self) -> AsyncIterator[bytes]: ...
    async def __anext__(self) -> bytes: ...


def unlink(uri: str, /) -> None: ...
def trust_owner(uid: int, /) -> None: ...
def strerror(err: int, /) -> str: ...
