# SPDX-License-Identifier: MIT
"""frames.py: a NumPy camera and a viewer, frames written and read in place.

    PYTHONPATH=build/python /usr/bin/python3 python/examples/frames.py [--frames N]
        [--width W] [--height H] [--role both|camera|viewer] [--uri URI]

The camera asks the ring for a frame-sized region (reserve), renders an RGBA
frame straight into it through a NumPy array, and leaving the with-block
publishes it.  The viewer gets the same memory (acquire), looks at the
frame where it lies and leaving the block hands the room back.  No copy on
either side.  --role both (the default) runs the camera in a child process;
camera and viewer may also run as two commands (start the viewer first: it
creates the ring).

Exit status: 0 ok, 1 a frame arrived damaged or out of order, 2 bad arguments.
"""
import argparse
import os
import signal
import sys
import time

import numpy as np

import shmring

HEADER = 16                     # frame number and height, then the pixels


def camera(uri, frames, h, w):
    with shmring.Ring(uri, producer=True) as r:
        ramp = np.arange(w, dtype=np.uint16)
        for n in range(frames):
            with r.reserve(HEADER + h * w * 4) as buf:
                np.frombuffer(buf, np.uint64, 2)[:] = (n, h)
                frame = np.frombuffer(buf, np.uint8, offset=HEADER).reshape(h, w, 4)
                frame[:, :, 0] = (ramp + n) & 0xFF          # a moving red gradient
                frame[:, :, 1] = n & 0xFF
                frame[:, :, 2] = 0
                frame[:, :, 3] = 255
                del frame                                    # not used past the block
        r.shutdown()                                         # end of stream


def viewer(uri, frames, h, w, with_camera):
    size = HEADER + h * w * 4
    with shmring.Ring(uri, create=True, consumer=True, capacity=4 * (size + 64),
                      max_msg=size) as r:
        if with_camera:
            pid = os.fork()
            if pid == 0:
                try:
                    camera(uri, frames, h, w)
                finally:
                    os._exit(0)
        start, seen = time.perf_counter(), 0
        try:
            while True:
                try:
                    with r.acquire(timeout=10) as m:
                        n, height = (int(x) for x in np.frombuffer(m, np.uint64, 2))
                        frame = np.frombuffer(m, np.uint8, offset=HEADER).reshape(h, w, 4)
                        if n != seen or height != h or frame[h // 2, 0, 1] != n & 0xFF:
                            print(f"viewer: frame {seen} damaged or out of order", file=sys.stderr)
                            return 1
                        red = float(frame[:, :, 0].mean())       # read in place
                        del frame
                except BrokenPipeError:
                    break
                seen += 1
                if seen % 50 == 0:
                    print(f"viewer: frame {seen}, mean red {red:.1f}")
            secs = time.perf_counter() - start
            st = r.stats()
            print(f"viewer: {seen} frames of {w}x{h} RGBA in {secs:.2f} s: {seen / secs:.0f} fps, "
                  f"{seen * size / secs / 1e9:.2f} GB/s, waits for a frame {st['waits_empty']}")
            return 0 if seen == frames else 1
        finally:
            if with_camera:
                if seen != frames:                           # it may wait for room
                    os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            shmring.unlink(uri)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="a NumPy camera -> viewer pair through shmring")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--role", choices=("both", "camera", "viewer"), default="both")
    ap.add_argument("--uri", default=f"shm:frames-example-{os.getpid()}")
    args = ap.parse_args()
    if args.frames < 1 or args.width < 1 or args.height < 1:
        ap.error("--frames, --width and --height must be >= 1")
    if args.role == "camera":
        camera(args.uri, args.frames, args.height, args.width)
        sys.exit(0)
    sys.exit(viewer(args.uri, args.frames, args.height, args.width, args.role == "both"))
