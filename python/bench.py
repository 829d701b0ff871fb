# SPDX-License-Identifier: MIT
"""How fast the Python binding moves messages, beside what Python offers.

    PYTHONPATH=build/python /usr/bin/python3 python/bench.py [--quick] [--json]

Cases, each between two processes (fork) unless it says otherwise:

  loop         the same Python loops with no IPC: build each 64 B message
               and check it in one process -- the ceiling of any binding
  shmring      64 B, Ring.send / Ring.recv (shm: SPSC, blocking calls)
  mp-queue     64 B, multiprocessing.Queue put / get
  mp-pipe      64 B, multiprocessing.Pipe send_bytes / recv_bytes
  frames-py    8 MiB NumPy frames through reserve / acquire: the producer
               fills each frame in place and stamps its number at both ends,
               the consumer checks both stamps and loads one word per
               64-byte line (what the C bench does)
  frames-c     the C library on the same frames: shmring-bench's shmring-zc
               at 8 MiB, run now (needs build/shmring-bench)

Rates are messages (or frames) per second, timed by the consumer from the
first message to the last.  The ratios the binding aims at are printed at
the end.  Exit status: 0 (ratios printed, missed or not), 1 if a message
arrived wrong, 2 on bad arguments.
"""
import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# python/shmring here is the package's source, without its compiled part:
# the built package comes from PYTHONPATH (build/python)
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != HERE]

import numpy as np  # noqa: E402

import shmring  # noqa: E402

PAD = bytes(56)
FRAME = 8 << 20
WARMUP = 16     # untimed frames: the ring (4 frames) goes round 4 times


def build(i):
    return i.to_bytes(8, "little") + PAD


def check(m, i):
    if len(m) != 64 or int.from_bytes(m[:8], "little") != i:
        raise SystemExit(f"bench: message {i} arrived wrong")


def loop_case(n):
    t0 = time.perf_counter()
    for i in range(n):
        check(build(i), i)
    return n / (time.perf_counter() - t0)


def run_pair(producer, consumer, args):
    """Start both sides; the consumer puts its rate on a queue."""
    ctx = mp.get_context("fork")
    out = ctx.SimpleQueue()
    c = ctx.Process(target=consumer, args=(out,) + args)
    p = ctx.Process(target=producer, args=args)
    c.start()
    p.start()
    p.join()
    c.join()
    if p.exitcode or c.exitcode:
        raise SystemExit(f"bench: a process failed ({p.exitcode}, {c.exitcode})")
    return out.get()


# -- shmring, 64 B --

def ring_tx(uri, n):
    with shmring.Ring(uri, producer=True) as r:
        send = r.send
        for i in range(n):
            send(build(i))
        r.shutdown()


def ring_rx(out, uri, n):
    with shmring.Ring(uri, consumer=True) as r:
        recv = r.recv
        check(recv(), 0)
        t0 = time.perf_counter()
        for i in range(1, n):
            check(recv(), i)
        out.put((n - 1) / (time.perf_counter() - t0))


def shmring_case(n):
    uri = f"shm:pybench-{os.getpid()}"
    with shmring.Ring(uri, create=True, capacity=1 << 20, max_msg=4096):
        try:
            return run_pair(ring_tx, ring_rx, (uri, n))
        finally:
            shmring.unlink(uri)


# -- multiprocessing.Queue and Pipe, 64 B --

def queue_tx(q, n):
    for i in range(n):
        q.put(build(i))


def queue_rx(out, q, n):
    check(q.get(), 0)
    t0 = time.perf_counter()
    for i in range(1, n):
        check(q.get(), i)
    out.put((n - 1) / (time.perf_counter() - t0))


def pipe_tx(conns, n):
    tx = conns[1]
    for i in range(n):
        tx.send_bytes(build(i))


def pipe_rx(out, conns, n):
    rx = conns[0]
    check(rx.recv_bytes(), 0)
    t0 = time.perf_counter()
    for i in range(1, n):
        check(rx.recv_bytes(), i)
    out.put((n - 1) / (time.perf_counter() - t0))


# -- 8 MiB frames --

def frame_tx(uri, n):
    with shmring.Ring(uri, producer=True) as r:
        for i in range(n):
            with r.reserve(FRAME) as buf:
                words = np.frombuffer(buf, np.uint64)
                words.view(np.uint8).fill(i & 0xFF)       # the frame, written once
                words[0] = words[-1] = i                  # its number at both ends
        r.shutdown()


def frame_rx(out, uri, n):
    with shmring.Ring(uri, consumer=True) as r:
        t0 = None
        for i in range(n):
            with r.acquire() as m:
                words = np.frombuffer(m, np.uint64)
                if len(m) != FRAME or words[0] != i or words[-1] != i:
                    raise SystemExit(f"bench: frame {i} arrived wrong")
                int(words[8::8].sum())                    # one load per 64 B line
                del words
            if i == WARMUP - 1:                           # every page of the ring touched
                t0 = time.perf_counter()
        out.put((n - WARMUP) / (time.perf_counter() - t0))


def frames_case(n):
    uri = f"shm:pybench-frames-{os.getpid()}"
    with shmring.Ring(uri, create=True, capacity=4 * FRAME, max_msg=FRAME):
        try:
            return run_pair(frame_tx, frame_rx, (uri, n))
        finally:
            shmring.unlink(uri)


def frames_c(bench):
    if not os.access(bench, os.X_OK):
        return None
    res = subprocess.run([bench, "--sizes", "8M", "--transports", "shmring-zc", "--reps", "3",
                          "--lat-samples", "100", "--json"],
                         capture_output=True, text=True, check=False)
    if res.returncode != 0:
        return None
    for r in json.loads(res.stdout)["results"]:
        if r["transport"] == "shmring-zc":
            return float(r["throughput"]["msgs_per_s"])
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer messages (a few seconds)")
    ap.add_argument("--json", action="store_true", help="one JSON document on stdout")
    ap.add_argument("--bench", default=os.path.join(HERE, "..", "build", "shmring-bench"),
                    help="shmring-bench for the C frame rate (default: build/shmring-bench)")
    a = ap.parse_args()
    k = 0.2 if a.quick else 1.0
    n64, nq, nf = int(2_000_000 * k), int(200_000 * k), int(1000 * k)

    rates = {}
    rates["loop"] = loop_case(n64)
    rates["shmring"] = shmring_case(n64)
    ctx = mp.get_context("fork")
    rates["mp-queue"] = run_pair(queue_tx, queue_rx, (ctx.Queue(), nq))
    rates["mp-pipe"] = run_pair(pipe_tx, pipe_rx, (ctx.Pipe(duplex=False), nq))
    rates["frames-py"] = frames_case(nf)
    rates["frames-c"] = frames_c(os.path.abspath(a.bench))

    goals = [
        ("64 B msgs/s, shmring / mp-queue", "shmring", "mp-queue", 10.0),
        ("64 B msgs/s, shmring / mp-pipe", "shmring", "mp-pipe", 3.0),
        ("64 B msgs/s, shmring / loop (no IPC)", "shmring", "loop", 0.5),
        ("8 MiB frames/s, frames-py / frames-c", "frames-py", "frames-c", 0.8),
    ]
    ratios = []
    for name, num, den, want in goals:
        v = rates[num] / rates[den] if rates.get(num) and rates.get(den) else None
        ratios.append({"name": name, "value": v, "goal": want,
                       "met": v is not None and v >= want})
    if a.json:
        json.dump({"python": sys.version.split()[0], "executable": sys.executable,
                   "rates": rates, "ratios": ratios}, sys.stdout, indent=2)
        print()
        return 0
    print(f"python {sys.version.split()[0]} ({sys.executable}), numpy {np.__version__}")
    for name, rate in rates.items():
        unit = "frames/s" if name.startswith("frames") else "msgs/s"
        print(f"  {name:10} {rate:>14,.0f} {unit}" if rate else f"  {name:10} {'n/a':>14}")
    print("ratios of this run:")
    for r in ratios:
        v = "n/a" if r["value"] is None else f"{r['value']:.2f}"
        print(f"  {r['name']:40} {v:>6}  goal >= {r['goal']:<4} "
              f"{'met' if r['met'] else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
