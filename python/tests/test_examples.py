# SPDX-License-Identifier: MIT
"""python/examples/frames.py runs, on small frames."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def test_frames_example():
    out = subprocess.run([sys.executable, os.path.join(HERE, "..", "examples", "frames.py"),
                          "--frames", "120", "--width", "64", "--height", "48"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "viewer: 120 frames of 64x48 RGBA" in out.stdout
