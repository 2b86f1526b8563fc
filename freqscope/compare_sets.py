"""Two sets of clips compared through their rows: per-band Δ dB, the temporal spectrum and the
``(f_t, f_s)`` heat map of Δ dB, a log-spectral distance, each with a percentile bootstrap CI, and findings
in words (issue 18). Pure functions of row dicts (:mod:`freqscope.rows`); no I/O.

Notation: set A (``real_rows``, the reference) and set B (``generated_rows``); ``P̄`` a mean over the clips
of a set, in linear power (docs/architecture.md); ``Δ = 10·log10(P̄_B / P̄_A)`` dB. The unit of resampling
is the clip: each bootstrap resample draws ``n_A`` clips of A and ``n_B`` clips of B with replacement,
independently (Efron & Tibshirani 1993, ch. 13, percentile interval). Clip weights are ignored: every clip
counts once.

The compact spectrum of a row (``spectrum``, ``n_t·n_s`` values, row-major): ``n_t = T//2 + 1`` rows of
``|f_t| = k/T`` cycles/frame (both signs pooled) × ``n_s = 32`` rings of equal width in
``f_s = √(f_h² + f_w²)`` over ``[0, √0.5]`` cycles/sample (:mod:`freqscope.spectra`); each value the mean
``|F z|²`` (orthonormal 3D FFT, mean over channels) over the bins of its cell, NaN where a cell holds none.
The bins ``n_{k,j}`` of cell ``(k, j)`` follow from ``(T, H, W)`` (``spectra.cell_labels``), so a cell's total
power is ``n_{k,j}·S_{k,j}`` and ``Σ_{k,j} n_{k,j} S_{k,j} = Σ z² / c`` (Parseval): every pooled number below
(a row of the temporal spectrum, a region) is the bin-weighted mean ``Σ n S / Σ n``, the mean ``|F z|²`` over
all the bins it covers.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .bands import make_bands
from .spectra import SPATIAL_RINGS, cell_labels, spectrum_grid

__all__ = ["SetComparison", "compare_sets", "REGIONS", "Region"]

N_BOOT = 1000  # bootstrap resamples
SEED = 0  # of the numpy Generator that draws them
CI = 0.95  # coverage of the percentile intervals
FINDING_DB = 1.0  # a finding needs |Δ| ≥ this and a CI that excludes 0 (see REGIONS)
BOOT_BLOCK = 1 << 23  # resample counts held at once (resamples × clips), 64 MiB of float64


@dataclass(frozen=True)
class Region:
    """A region of the ``(f_t, f_s)`` plane (cycles/frame, cycles/sample; ``lo ≤ f < hi``, a ring by its
    centre) and the words for energy that set B has in excess or misses there."""

    where: str
    f_t: tuple[float, float]
    f_s: tuple[float, float]
    excess: str
    missing: str


#: The regions that findings speak of, in this order. The first is the whole spectrum (a change of level: gain,
#: contrast); a finding in another region needs both its Δ and its Δ relative to the first (the change of its
#: share of the energy) to pass (|·| ≥ FINDING_DB, CI excluding 0, same sign), so that a mere change of level
#: is not read as flicker or noise. Every f_t ≠ 0 is ≥ 1/T, so f_t ≥ 1e-6 means "moving".
REGIONS = (
    Region("all frequencies", (0.0, math.inf), (0.0, math.inf), "more energy overall", "less energy overall"),
    Region("0 < f_t < 0.25 cycles/frame", (1e-6, 0.25), (0.0, math.inf), "more motion", "too little motion"),
    Region("f_t ≥ 0.25 cycles/frame", (0.25, math.inf), (0.0, math.inf), "flicker", "over-smoothed motion"),
    Region("f_s ≥ 0.25 cycles/sample", (0.0, math.inf), (0.25, math.inf), "noise or over-sharpening", "blur"),
)


@dataclass
class SetComparison:
    """Set B (generated) against set A (real). Intervals are ``[lo, hi]`` percentile bootstrap CIs (NaN with
    fewer than 2 clips in a set); Δ in dB. Arrays are float64 numpy; ``±inf``/NaN may occur (a JSON writer
    must write them as null)."""

    n_clips: dict[str, int]  # {"real": n_A, "generated": n_B}
    latent_shape: list[int]  # (c, t, h, w) of every clip of both sets
    bands: list[dict[str, Any]]  # {name, lo, hi, n_bins, power_real, power_generated, delta_db, ci_db}
    f_t: np.ndarray  # (n_t,) |f_t| of each spectrum row, cycles/frame
    f_s_edges: np.ndarray  # (n_s + 1,) ring edges, cycles/sample
    cell_bins: np.ndarray  # (n_t, n_s) FFT bins n_{k,j} in each cell (the weights below)
    temporal_power: np.ndarray  # (2, n_t) P̄(f_t) of A and B: mean |F z|² over all bins of each |f_t|
    temporal_power_ci: np.ndarray  # (2, 2, n_t) [set, lo/hi, f_t]
    temporal: dict[str, list]  # {"f": (n_t,), "delta_db": (n_t,), "ci_db": (n_t, 2)}
    heatmap_db: np.ndarray  # (n_t, n_s) Δ per cell, NaN where a cell is empty (or A has no power there)
    heatmap_ci_db: np.ndarray  # (2, n_t, n_s) lo, hi
    distance_db: float  # D = √(Σ n_{k,j} Δ_{k,j}² / Σ n_{k,j}) over the cells with a defined Δ (log-spectral)
    # [lo, hi]: how precisely D is known, not a test against 0 (two samples of one distribution have D > 0)
    distance_ci_db: list[float]
    regions: list[dict[str, Any]]  # {where, delta_db, ci_db, relative_db, relative_ci_db}: REGIONS with bins here
    findings: list[str]  # sentences, e.g. "+4.4 dB (95% CI +3.9 to +5.0) at f_t ≥ 0.25 cycles/frame: flicker"
    n_boot: int
    seed: int
    ci: float
    notes: list[str] = field(default_factory=list)  # what was left undefined, and why


def compare_sets(
    real_rows: list[dict[str, Any]],
    generated_rows: list[dict[str, Any]],
    *,
    n_boot: int = N_BOOT,
    seed: int = SEED,
    ci: float = CI,
    edges: tuple[float, ...] | None = None,
    decomposition: str = "spatiotemporal",
    time_scale: float = 1.0,
) -> SetComparison:
    """Compare set B (``generated_rows``) with set A (``real_rows``), one row dict per clip (module doc).

    Band bounds ``lo, hi``: from ``make_bands(grid, edges, decomposition=…, time_scale=…)`` when ``edges``
    is given (the run's band settings; checked against the rows' band names), else read from the band names
    (the last band's upper bound rounded as named). When B holds exactly A's rows (in the same order) it is
    one sample compared with itself: both draw the same resamples, so every Δ and CI is exactly 0. With one
    clip in a set the intervals are NaN (a note says so) and there are no findings.

    >>> import torch
    >>> from freqscope.rows import latent_rows
    >>> z = torch.randn(8, 4, 8, 32, 32, generator=torch.Generator().manual_seed(0))
    >>> cmp = compare_sets(latent_rows(z[:4])[1], latent_rows(2 * z[4:])[1], n_boot=200)
    >>> round(cmp.bands[-1]["delta_db"], 1), cmp.heatmap_db.shape, [f.split(": ")[1] for f in cmp.findings]
    (6.0, (5, 32), ['more energy overall'])
    """
    if not (0.0 < ci < 1.0):
        raise ValueError(f"ci={ci}: a coverage strictly between 0 and 1, e.g. 0.95")
    if int(n_boot) < 1:
        raise ValueError(f"`n_boot` = {n_boot}: at least 1 resample (1000 is usual)")
    a, b = _read_set(real_rows, "the real set"), _read_set(generated_rows, "the generated set")
    _check_sets(a, b)
    c, T, H, W = a["shape"]
    names = a["names"]
    n_bands = len(names)
    f_t, f_s_edges, bins = _cell_bins(T, H, W)  # bins: (n_t, n_s)
    bounds = _bounds(names, (T, H, W), edges, decomposition, time_scale)
    linear = _linear_maps(bins, f_t, f_s_edges)  # (n_cells, n_maps): temporal rows, then regions
    notes: list[str] = []

    XA, XB = a["X"], b["X"]  # (n, n_bands + n_cells)
    mA, mB = XA.mean(0), XB.mean(0)
    _check_ratio(mA[:n_bands], names, a["n_bins"])
    same = XA.shape == XB.shape and np.array_equal(XA, XB)
    if min(len(XA), len(XB)) < 2:
        notes.append("a set holds one clip: confidence intervals need at least 2 clips per set (left NaN)")
        bA = bB = None
    else:
        bA, bB = _boot_means(XA, XB, n_boot=int(n_boot), rng=np.random.default_rng(seed), same=same)

    est = _estimates(mA, mB, n_bands, linear, bins)
    boot = _estimates(bA, bB, n_bands, linear, bins) if bA is not None and bB is not None else None
    q = [(1 - ci) / 2, (1 + ci) / 2]
    lohi = {k: _quantiles(boot[k], q) if boot else np.full((2,) + np.shape(v), np.nan) for k, v in est.items()}

    n_t = len(f_t)
    band_rows = [
        {
            "name": n,
            "lo": lo,
            "hi": hi,
            "n_bins": nb,
            "power_real": float(mA[i]),
            "power_generated": float(mB[i]),
            "delta_db": float(est["bands"][i]),
            "ci_db": [float(v) for v in lohi["bands"][:, i]],
        }
        for i, (n, (lo, hi), nb) in enumerate(zip(names, bounds, a["n_bins"]))
    ]
    empty = [r["name"] for r in band_rows if r["n_bins"] == 0]
    if empty:
        notes.append(f"band(s) {', '.join(empty)} hold no bin of the {T}×{H}×{W} grid: Δ undefined (NaN)")
    if np.isnan(est["heatmap"][bins.ravel() > 0]).any():
        notes.append("some spectrum cells have no power in the real set: their Δ is undefined (NaN), left out")
    regions = [
        {
            "where": r.where,
            "delta_db": float(est["regions"][i]),
            "ci_db": [float(v) for v in lohi["regions"][:, i]],
            "relative_db": float(est["relative"][i]),
            "relative_ci_db": [float(v) for v in lohi["relative"][:, i]],
        }
        for i, r in enumerate(REGIONS)
        if _region_mask(r, bins, f_t, f_s_edges).any()  # e.g. no f_t ≥ 0.25 with T < 4
    ]
    return SetComparison(
        n_clips={"real": len(XA), "generated": len(XB)},
        latent_shape=[c, T, H, W],
        bands=band_rows,
        f_t=f_t,
        f_s_edges=f_s_edges,
        cell_bins=bins,
        temporal_power=np.stack([est["power_t_a"], est["power_t_b"]]),
        temporal_power_ci=np.stack([lohi["power_t_a"], lohi["power_t_b"]]),
        temporal={"f": f_t.tolist(), "delta_db": est["temporal"].tolist(), "ci_db": lohi["temporal"].T.tolist()},
        heatmap_db=est["heatmap"].reshape(n_t, SPATIAL_RINGS),
        heatmap_ci_db=lohi["heatmap"].reshape(2, n_t, SPATIAL_RINGS),
        distance_db=float(est["distance"]),
        distance_ci_db=[float(v) for v in lohi["distance"]],
        regions=regions,
        findings=_findings(regions, ci),
        n_boot=int(n_boot),
        seed=seed,
        ci=ci,
        notes=notes,
    )


def _read_set(rows: list[dict[str, Any]], param: str) -> dict[str, Any]:
    """One set's rows → its latent shape ``(c, t, h, w)``, band names and bins, and ``X (n, n_bands + n_cells)``
    (band powers, then the spectrum with 0 in empty cells)."""
    if not rows:
        raise ValueError(f"{param} holds no clip: give the rows of at least 2 clips")
    shapes: dict[tuple[int, ...], int] = {}
    for r in rows:
        s = tuple(int(v) for v in r["latent_shape"][1:])
        shapes[s] = shapes.get(s, 0) + 1
    if len(shapes) > 1:
        found = ", ".join(f"{s} ×{n}" for s, n in shapes.items())
        raise ValueError(
            f"{param} mixes latent shapes (c, t, h, w) {found}; read every clip with the same "
            "`frames` and `size` (and encoder)"
        )
    (shape,) = shapes
    names = list(rows[0]["band_names"])
    if any(list(r["band_names"]) != names for r in rows):
        raise ValueError(f"{param} mixes band sets; analyse every clip with the same `edges`")
    n_cells = (shape[1] // 2 + 1) * SPATIAL_RINGS
    for i, r in enumerate(rows):
        if len(r.get("spectrum") or ()) != n_cells:
            raise ValueError(
                f"row {i} of {param} has no compact spectrum of {n_cells} values for latent shape "
                f"{shape}; analyse the clips again with a freqscope that writes it"
            )
    X = np.array([list(r["band_power"]) + list(r["spectrum"]) for r in rows], dtype=np.float64)
    n_bins = [int(v) for v in rows[0]["n_bins"]]
    full = np.concatenate([np.array(n_bins) > 0, _cell_bins(*shape[1:])[2].ravel() > 0])
    bad = ~np.isfinite(X[:, full]).all(1)
    if bad.any():
        raise ValueError(f"row {int(np.argmax(bad))} of {param} holds NaN/Inf power; check that clip")
    return {"shape": shape, "names": names, "n_bins": n_bins, "X": np.where(full, X, 0.0)}


def _check_sets(a: dict[str, Any], b: dict[str, Any]) -> None:
    if a["shape"] != b["shape"]:
        raise ValueError(
            f"the real clips have latent shape (c, t, h, w) {a['shape']} but the generated clips "
            f"{b['shape']}; compare sets read with the same `frames` and `size` (and encoder)"
        )
    if a["names"] != b["names"]:
        raise ValueError("the real and the generated set have different bands; analyse both with the same `edges`")


def _check_ratio(power_a: np.ndarray, names: list[str], n_bins: list[int]) -> None:
    for p, n, nb in zip(power_a, names, n_bins):
        if nb > 0 and p == 0:
            raise ValueError(
                f"the real set has no power in band {n}: Δ dB = 10·log10(P_B/P_A) is undefined there; "
                "check the real clips (constant frames?) or choose other `edges`"
            )


def _cell_bins(T: int, H: int, W: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``|f_t|`` of each spectrum row ``(n_t,)``, ring edges ``(n_s + 1,)`` and bins per cell ``(n_t, n_s)``, as
    :mod:`freqscope.spectra` makes the rows' spectra."""
    f_t, f_s_edges = spectrum_grid(T)
    counts = cell_labels((T, H, W))[2].numpy().reshape(T // 2 + 1, SPATIAL_RINGS)
    return f_t.numpy(), f_s_edges.numpy(), counts


def _region_mask(r: Region, bins: np.ndarray, f_t: np.ndarray, f_s_edges: np.ndarray) -> np.ndarray:
    """``(n_t, n_s)`` cells of region ``r`` that hold bins."""
    centre = 0.5 * (f_s_edges[1:] + f_s_edges[:-1])
    in_t = (f_t >= r.f_t[0]) & (f_t < r.f_t[1])
    in_s = (centre >= r.f_s[0]) & (centre < r.f_s[1])
    return in_t[:, None] & in_s[None, :] & (bins > 0)


def _linear_maps(bins: np.ndarray, f_t: np.ndarray, f_s_edges: np.ndarray) -> np.ndarray:
    """``(n_cells, n_t + n_regions)``: each column the bin-weighted mean over a set of cells (a spectrum row,
    then a region), so that ``S @ maps`` is the mean ``|F z|²`` over all the bins there (Parseval-consistent)."""
    masks = [np.eye(len(f_t), dtype=bool)[k][:, None] & (bins > 0) for k in range(len(f_t))]
    masks += [_region_mask(r, bins, f_t, f_s_edges) for r in REGIONS]
    cols = [np.where(m, bins, 0.0).ravel() for m in masks]
    return np.stack([c / c.sum() if c.sum() else np.full_like(c, np.nan) for c in cols], axis=1)


def _resample_counts(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """``(k, n)`` float64: how often each of ``n`` clips is drawn in each of ``k`` resamples of size ``n``."""
    idx = rng.integers(0, n, size=(k, n)) + n * np.arange(k)[:, None]  # (k, n) index matrix, offset per resample
    return np.bincount(idx.ravel(), minlength=k * n).reshape(k, n).astype(np.float64)


def _boot_means(
    XA: np.ndarray, XB: np.ndarray, *, n_boot: int, rng: np.random.Generator, same: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap set means ``(n_boot, F)`` of A and B: resample counts × rows, one matmul per block of
    resamples (blocks only bound the memory; ``same``: B draws A's resamples)."""
    nA, nB = len(XA), len(XB)
    step = max(1, BOOT_BLOCK // max(nA, nB))
    outA, outB = [], []
    for start in range(0, n_boot, step):
        k = min(step, n_boot - start)
        cA = _resample_counts(rng, nA, k)
        cB = cA if same else _resample_counts(rng, nB, k)
        outA.append(cA @ XA / nA)  # (k, F)
        outB.append(cB @ XB / nB)
    return np.concatenate(outA), np.concatenate(outB)


def _db(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``10·log10(num/den)``: NaN where ``den`` is 0 (undefined), −inf where only ``num`` is."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, 10.0 * np.log10(num / np.where(den > 0, den, 1.0)), np.nan)


def _estimates(
    mA: np.ndarray, mB: np.ndarray, n_bands: int, linear: np.ndarray, bins: np.ndarray
) -> dict[str, np.ndarray]:
    """Every reported number from the set means ``(…, F)`` of A and B (point estimates or bootstrap rows)."""
    n_t = bins.shape[0]
    cA, cB = mA[..., n_bands:], mB[..., n_bands:]  # (…, n_cells)
    lA, lB = cA @ np.nan_to_num(linear), cB @ np.nan_to_num(linear)  # (…, n_t + n_regions)
    heat = _db(cB, cA)  # (…, n_cells)
    w = np.where(np.isnan(heat), 0.0, bins.ravel())  # (…, n_cells): the cells with a defined Δ (±inf counts)
    with np.errstate(invalid="ignore"):
        dist = np.sqrt((w * np.where(w > 0, heat, 0.0) ** 2).sum(-1) / w.sum(-1))
    regions = _db(lB[..., n_t:], lA[..., n_t:])  # (…, n_regions), NaN for a region without bins
    return {
        "bands": _db(mB[..., :n_bands], mA[..., :n_bands]),
        "power_t_a": lA[..., :n_t],
        "power_t_b": lB[..., :n_t],
        "temporal": _db(lB[..., :n_t], lA[..., :n_t]),
        "heatmap": heat,
        "distance": dist,
        "regions": regions,
        "relative": regions - regions[..., :1],  # Δ of each region's share of the energy of REGIONS[0]
    }


def _quantiles(boot: np.ndarray, q: list[float]) -> np.ndarray:
    """Percentile interval ``(2, …)`` of bootstrap values ``(n_boot, …)`` (NaN where any resample is NaN)."""
    return np.quantile(boot, q, axis=0)


def _bounds(
    names: list[str], grid: tuple[int, int, int], edges: tuple[float, ...] | None, decomposition: str, time_scale: float
) -> list[tuple[float, float]]:
    """``(lo, hi)`` of each band: from ``make_bands`` when ``edges`` are given (checked against the names), else
    parsed from the names that ``make_bands`` writes (``DC``, ``(0, e1)``, ``[e1, e2)``, …, ``[ek, d_max]``)."""
    if edges is not None:
        bands = make_bands(grid, tuple(edges), decomposition=decomposition, time_scale=time_scale)
        if bands.names != names:
            raise ValueError(
                f"the rows' bands {names} are not those of `edges` {list(edges)} ({bands.names}); "
                "pass the `edges`, `decomposition` and `time_scale` the rows were analysed with"
            )
        return [(b.lo, b.hi) for b in bands.bands]
    out = []
    for n in names:
        m = re.fullmatch(r"[\[(]\s*([-+0-9.eE]+),\s*([-+0-9.eE]+)\s*[)\]]", n)
        out.append((0.0, 0.0) if n == "DC" or m is None else (float(m[1]), float(m[2])))
    return out


def _findings(regions: list[dict[str, Any]], ci: float) -> list[str]:
    """A sentence per region where B has excess or missing energy (the rule: :data:`REGIONS`)."""
    words = {r.where: r for r in REGIONS}
    out = []
    for r in regions:
        d, rel = r["delta_db"], r["relative_db"]
        overall = r["where"] == REGIONS[0].where
        if not _passes(d, r["ci_db"]) or not (overall or (_passes(rel, r["relative_ci_db"]) and rel * d > 0)):
            continue
        lo, hi = r["ci_db"]
        word = words[r["where"]].excess if d > 0 else words[r["where"]].missing
        share = "" if overall else f"; {rel:+.1f} dB relative to all frequencies"
        out.append(f"{d:+.1f} dB ({100 * ci:g}% CI {lo:+.1f} to {hi:+.1f}{share}) at {r['where']}: {word}")
    return out


def _passes(d: float, ci_db: list[float]) -> bool:
    """``|d| ≥ FINDING_DB`` and a CI that excludes 0."""
    lo, hi = ci_db
    return bool(np.isfinite(lo) and np.isfinite(hi) and abs(d) >= FINDING_DB and (lo > 0 or hi < 0))
