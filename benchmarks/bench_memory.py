"""Peak memory of ``freqscope snr`` against the size of the frames tensor: the factor behind
``video.MEMORY_FACTOR``, the memory estimate checked before decoding.

Runs the CLI in subprocesses on a synthetic 12-frame 48×64 clip at several ``--size`` values and
prints, per size, the peak RSS above the run at ``--size 8`` (imports and libraries) divided by the
bytes of the float32 ``(1, 3, t, H, W)`` frames tensor.

    python benchmarks/bench_memory.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import av
import numpy as np

from freqscope.video import MEMORY_FACTOR, _target_size

FRAMES, H, W = 12, 48, 64


#: The child reports its own peak RSS from VmHWM (Linux), as bench_snr.py's does: ru_maxrss would carry this
#: process's high-water mark (torch imported) across fork and exec and floor the baseline.
CHILD = (
    "import atexit, re, sys; atexit.register(lambda: print(re.search(r'VmHWM:\\s+(\\d+)', "
    "open('/proc/self/status').read()).group(1), file=sys.stderr)); from freqscope.cli import main; main()"
)


def peak_rss(args: list[str]) -> int:
    """Peak resident memory (bytes) of one ``freqscope`` subprocess."""
    r = subprocess.run([sys.executable, "-c", CHILD, *args], check=True, capture_output=True, text=True)
    return int(r.stderr.split()[-1]) * 1024  # VmHWM is in KiB


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        clip = Path(d) / "clip.mp4"
        rng = np.random.default_rng(0)
        with av.open(str(clip), "w") as c:
            s = c.add_stream("libx264", rate=25)
            s.width, s.height, s.pix_fmt = W, H, "yuv420p"
            for _ in range(FRAMES):
                a = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
                for pkt in s.encode(av.VideoFrame.from_ndarray(a, format="rgb24")):
                    c.mux(pkt)
            for pkt in s.encode():
                c.mux(pkt)
        base = peak_rss(["snr", "--video", str(clip), "--size", "8", "-q"])
        print(f"baseline (--size 8): {base / 2**20:.0f} MiB")
        for size in (512, 1024):
            h, w = _target_size(H, W, size)
            tensor = 4 * 3 * FRAMES * h * w
            rss = peak_rss(["snr", "--video", str(clip), "--size", str(size), "-q"])
            print(
                f"--size {size}: frames tensor {tensor / 2**20:.0f} MiB, peak {rss / 2**20:.0f} MiB, "
                f"factor {(rss - base) / tensor:.1f} (MEMORY_FACTOR = {MEMORY_FACTOR})"
            )


if __name__ == "__main__":
    main()
