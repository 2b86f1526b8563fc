"""``freqscope compare``'s statistics at dataset scale, one section per mode (issue 18, item 7).

    python benchmarks/bench_compare.py                  # every section
    python benchmarks/bench_compare.py --only sets      # one section
    python benchmarks/bench_compare.py --rows 2000      # quicker

sets: two sets of synthetic rows (default 10,000 each) as :func:`freqscope.rows.latent_rows` lays them out for a
4×16×64×64 latent (T = 16 → 9 × 32 spectrum cells, 6 bands): :func:`freqscope.compare.compare_sets` with 1000
bootstrap resamples (resample counts × rows, one matmul per block) against a naive bootstrap, a Python loop over
resamples that gathers the rows of each one and recomputes every number, timed over a few resamples and
extrapolated to 1000.

pairs: ``freqscope compare --reference REF/ --test TEST/`` (the job, :func:`freqscope.compare_job.compare`) over
folders of same-named H.264 clips (160×120, 16 frames read; benchmarks/bench_dataset.py's synthetic clips, cached)
against a minimal loop over the same pairs: PyAV decode of both clips, float32 frames, one ``rfftn`` of each and
their band sums (the practical limit of any paired comparison).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import torch

from freqscope.bands import make_bands
from freqscope.compare import compare_sets
from freqscope.spectra import cell_labels

SHAPE = (1, 4, 16, 64, 64)  # (b, c, t, h, w): an SD-VAE latent of 16 frames at 512 px
EDGES = (0.0625, 0.125, 0.25, 0.5)  # DC + 5 bands = 6
N_BOOT = 1000
NAIVE_RESAMPLES = 20


def synthetic_rows(n: int, scale: float, rng: np.random.Generator) -> list[dict]:
    """Rows with a clip level ``a² ~ Gamma(2, scale)`` times a mean-1 gamma factor per band and cell."""
    _, _, t, h, w = SHAPE
    bands = make_bands((t, h, w), EDGES)
    cells = cell_labels((t, h, w))[2].numpy() > 0
    a2 = rng.gamma(2.0, scale, size=(n, 1))
    P = a2 * rng.gamma(4.0, 0.25, size=(n, len(bands)))
    S = np.where(cells, a2 * rng.gamma(4.0, 0.25, size=(n, cells.size)), np.nan)
    geometry = {"latent_shape": list(SHAPE), "band_names": bands.names, "n_bins": [b.n_bins for b in bands.bands]}
    return [{**geometry, "band_power": p.tolist(), "spectrum": s.tolist()} for p, s in zip(P, S)]


def naive_bootstrap(a: list[dict], b: list[dict], resamples: int, seed: int = 0) -> np.ndarray:
    """The obvious way: for each resample, draw clip indices, gather those rows, average, and recompute the band
    Δ, the temporal Δ, the heat map and the distance. Returns the distances ``(resamples,)``."""
    _, _, t, h, w = SHAPE
    bins = cell_labels((t, h, w))[2].numpy().reshape(t // 2 + 1, -1)
    XA = np.array([r["band_power"] + r["spectrum"] for r in a])
    XB = np.array([r["band_power"] + r["spectrum"] for r in b])
    nb = len(a[0]["band_power"])
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(resamples):
        mA = XA[rng.integers(0, len(XA), len(XA))].mean(0)
        mB = XB[rng.integers(0, len(XB), len(XB))].mean(0)
        _bands = 10 * np.log10(mB[:nb] / mA[:nb])
        cA, cB = mA[nb:].reshape(bins.shape), mB[nb:].reshape(bins.shape)
        _temporal = 10 * np.log10(np.nansum(cB * bins, 1) / np.nansum(cA * bins, 1))
        heat = 10 * np.log10(cB / cA)
        ok = np.isfinite(heat)
        out.append(np.sqrt((bins[ok] * heat[ok] ** 2).sum() / bins[ok].sum()))
    return np.array(out)


def bench_sets(rows: int) -> None:
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    a, b = synthetic_rows(rows, 1.0, rng), synthetic_rows(rows, 1.2, rng)
    print(
        f"sets: {rows:,} × {rows:,} rows, {SHAPE[2] // 2 + 1}×32 cells, {len(a[0]['band_power'])} bands "
        f"(made in {time.perf_counter() - t0:.1f} s)"
    )

    t0 = time.perf_counter()
    cmp = compare_sets(a, b, n_boot=N_BOOT)
    ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    compare_sets(a, b, n_boot=1)  # the same call without the bootstrap: reading the rows, point estimates
    base = time.perf_counter() - t0

    t0 = time.perf_counter()
    naive_bootstrap(a, b, NAIVE_RESAMPLES)
    naive_read_and_loop = time.perf_counter() - t0
    t0 = time.perf_counter()
    naive_bootstrap(a, b, 0)
    naive_read = time.perf_counter() - t0
    per_resample = (naive_read_and_loop - naive_read) / NAIVE_RESAMPLES
    naive = naive_read + per_resample * N_BOOT

    print(f"  compare_sets, {N_BOOT} resamples: {ours:7.2f} s (rows read, no bootstrap: {base:.2f} s)")
    print(
        f"  naive loop, {N_BOOT} resamples (extrapolated from {NAIVE_RESAMPLES}): {naive:7.2f} s "
        f"({per_resample * 1e3:.1f} ms per resample)"
    )
    boot_only = per_resample * N_BOOT / max(ours - base, 1e-9)
    print(f"  speed-up: {naive / ours:.1f}× end to end; the bootstrap alone {boot_only:.1f}×")
    print(
        f"  distance {cmp.distance_db:.3f} dB, CI {np.round(cmp.distance_ci_db, 3)}; "
        f"last band Δ {cmp.bands[-1]['delta_db']:.3f} dB, CI {np.round(cmp.bands[-1]['ci_db'], 3)}"
    )


def _decode(path: Path, frames: int) -> torch.Tensor:
    """(1, 3, t, H, W) float32 in [-1, 1]: the first ``frames`` frames, decoded as ``read_video`` decodes."""
    with av.open(str(path)) as c:
        out = []
        for f in c.decode(video=0):
            out.append(f.to_ndarray(format="rgb24"))
            if len(out) == frames:
                break
    return (torch.from_numpy(np.stack(out)).permute(3, 0, 1, 2)[None].float() / 127.5) - 1


def minimal_pairs(pairs: list[tuple[Path, Path]], frames: int) -> float:
    """Seconds of the minimal loop: decode both clips, one rfftn of each, |X|² and cross sums per band."""
    t0 = time.perf_counter()
    bands = None
    for a, b in pairs:
        x, y = _decode(a, frames), _decode(b, frames)
        if bands is None:
            bands = make_bands(tuple(x.shape[-3:]))
        labels = bands.half_labels.flatten()
        X, Y = (torch.fft.rfftn(v, dim=(-3, -2, -1), norm="ortho") for v in (x, y))
        for p in (X.real**2 + X.imag**2, Y.real**2 + Y.imag**2, X.real * Y.real + X.imag * Y.imag):
            torch.zeros(len(bands), dtype=torch.float64).index_add_(0, labels, p.sum(dim=(0, 1)).flatten().double())
    return time.perf_counter() - t0


def bench_pairs(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_dataset import make_clips

    from freqscope.compare_job import compare

    n, frames = args.pairs, 16
    clips = make_clips(Path(tempfile.gettempdir()) / "freqscope-bench-clips", 8 * n)  # every 4th is 160×120
    with tempfile.TemporaryDirectory() as tmp:
        ref, test = Path(tmp, "ref"), Path(tmp, "test")
        ref.mkdir(), test.mkdir()
        pairs = []
        for i in range(n):
            (ref / f"p{i:04d}.mp4").symlink_to(clips[8 * i])
            (test / f"p{i:04d}.mp4").symlink_to(clips[8 * i + 4])
            pairs.append((clips[8 * i], clips[8 * i + 4]))
        best = {"minimal": math.inf, "ours": math.inf}
        for _ in range(args.rounds):
            best["minimal"] = min(best["minimal"], minimal_pairs(pairs, frames))
            t0 = time.perf_counter()
            run = compare(reference=[str(ref)], test=[str(test)], read={"frames": frames})
            best["ours"] = min(best["ours"], time.perf_counter() - t0)
    assert run.counts["pairs"] == n
    print(f"pairs: {n} pairs of 160×120 clips, {frames} frames, best of {args.rounds} rounds")
    print(f"  minimal loop (decode both + rfftn + band sums): {n / best['minimal']:6.1f} pairs/s")
    print(
        f"  freqscope compare --reference --test          : {n / best['ours']:6.1f} pairs/s "
        f"= {best['minimal'] / best['ours']:.2f}× the minimal loop (goal ≥ 0.8×)"
    )


#: The sections, run in this order.
SECTIONS: dict[str, Callable[[argparse.Namespace], None]] = {"sets": lambda a: bench_sets(a.rows), "pairs": bench_pairs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000, help="clips per set")
    parser.add_argument("--pairs", type=int, default=50, help="pairs of clips (pairs section)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (pairs); the best is kept")
    parser.add_argument("--only", choices=sorted(SECTIONS), help="run one section")
    args = parser.parse_args()
    torch.set_num_threads(1)  # per-core figures
    for name, run in SECTIONS.items():
        if args.only in (None, name):
            run(args)


if __name__ == "__main__":
    main()
