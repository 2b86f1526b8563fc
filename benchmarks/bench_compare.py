"""``freqscope compare``'s statistics at dataset scale, one section per mode (issue 18, item 7).

    python benchmarks/bench_compare.py                  # every section
    python benchmarks/bench_compare.py --only sets      # one section
    python benchmarks/bench_compare.py --rows 2000      # quicker

sets: two sets of synthetic rows (default 10,000 each) as :func:`freqscope.rows.latent_rows` lays them out for a
4×16×64×64 latent (T = 16 → 9 × 32 spectrum cells, 6 bands): :func:`freqscope.compare.compare_sets` with 1000
bootstrap resamples (resample counts × rows, one matmul per block) against a naive bootstrap, a Python loop over
resamples that gathers the rows of each one and recomputes every number, timed over a few resamples and
extrapolated to 1000. A section for the paired mode goes in ``SECTIONS``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

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
    print(f"sets: {rows:,} × {rows:,} rows, {SHAPE[2] // 2 + 1}×32 cells, {len(a[0]['band_power'])} bands "
          f"(made in {time.perf_counter() - t0:.1f} s)")

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
    print(f"  naive loop, {N_BOOT} resamples (extrapolated from {NAIVE_RESAMPLES}): {naive:7.2f} s "
          f"({per_resample * 1e3:.1f} ms per resample)")
    boot_only = per_resample * N_BOOT / max(ours - base, 1e-9)
    print(f"  speed-up: {naive / ours:.1f}× end to end; the bootstrap alone {boot_only:.1f}×")
    print(f"  distance {cmp.distance_db:.3f} dB, CI {np.round(cmp.distance_ci_db, 3)}; "
          f"last band Δ {cmp.bands[-1]['delta_db']:.3f} dB, CI {np.round(cmp.bands[-1]['ci_db'], 3)}")


#: The sections, run in this order (a section takes the number of rows or pairs to use).
SECTIONS: dict[str, Callable[[int], None]] = {"sets": bench_sets}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000, help="clips per set")
    parser.add_argument("--only", choices=sorted(SECTIONS), help="run one section")
    args = parser.parse_args()
    for name, run in SECTIONS.items():
        if args.only in (None, name):
            run(args.rows)


if __name__ == "__main__":
    main()
