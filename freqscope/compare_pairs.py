"""Frame-aligned pairs (reference vs test: a clip and its VAE round trip, or two renderings of one prompt)
compared band by band: gain, coherence and PSNR per band, the error per frame and the spatial error profiles
(issue 18). Pure functions of tensors; no I/O.

From one orthonormal FFT of each, ``X_r = F ref`` and ``X_t = F test`` (sums over a band's bins, the pairs
and the channels):

- ``gain_db = 10·log10(Σ|X_t|² / Σ|X_r|²)``;
- ``coherence = |Σ X_r·conj(X_t)|² / (Σ|X_r|²·Σ|X_t|²)`` (Cauchy–Schwarz: ≤ 1, 1 for ``test = g·ref``; clamped
  to 1 against float32 rounding); a band is symmetric under ``f → −f``, so the sum is real: the squared
  power-weighted mean of ``cos`` of the phase error (a one-frame shift gives ``(Σ cos(2π f_t) P / Σ P)²``);
- ``psnr_db = 10·log10(peak² / MSE_b)``, ``MSE_b = Σ|X_t − X_r|² / N`` the part of the per-sample mean squared
  error ``MSE = Σ(test − ref)² / N`` (``N = b·c·t·h·w``) that the band carries: ``Σ_b MSE_b = MSE`` (Parseval,
  to float32 rounding: the FFT and the per-frame sums are float32 before float64).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from .bands import DEFAULT_EDGES, BandSet, make_bands

__all__ = ["PairComparison", "PairAccumulator", "compare_pairs", "psnr_db"]

PEAK = 2.0  # peak-to-peak range of the samples: frames in [-1, 1]


@dataclass
class PairComparison:
    """``test`` against ``reference``. An undefined ratio is NaN (listed in ``notes``); zero error gives a PSNR of
    ``inf``, which a JSON writer must write as null (or "inf")."""

    n_pairs: int
    shape: list[int]  # (c, t, h, w) of each clip
    peak: float
    bands: list[dict[str, Any]]  # {name, lo, hi, n_bins, gain_db, coherence, psnr_db, mse}
    mse: float  # Σ(test − ref)² / N
    psnr_db: float  # 10·log10(peak² / mse); inf for identical inputs
    frame_error: list[float]  # (t,) mean over pairs, channels and pixels of (test − ref)² per frame
    frame_psnr_db: list[float]  # (t,)
    row_error: list[float]  # (h,) mean |test − ref| per row, over pairs, channels, frames and columns
    col_error: list[float]  # (w,) mean |test − ref| per column
    notes: list[str] = field(default_factory=list)


def psnr_db(mse: float, peak: float = PEAK) -> float:
    """``10·log10(peak² / mse)``: ``inf`` for ``mse = 0``."""
    return math.inf if mse == 0 else 10.0 * math.log10(peak**2 / mse)


def compare_pairs(
    reference: torch.Tensor,
    test: torch.Tensor,
    *,
    edges: tuple[float, ...] = DEFAULT_EDGES,
    decomposition: str = "spatiotemporal",
    time_scale: float = 1.0,
    peak: float = PEAK,
) -> PairComparison:
    """Band gain, coherence and PSNR of ``test`` against ``reference``, both ``(b, c, t, h, w)`` (b pairs),
    and their error per frame, row and column (module doc). Bands as :func:`~freqscope.bands.make_bands`.
    Pairs that do not fit in memory at once go through a :class:`PairAccumulator`, with the same result.

    >>> ref = torch.rand(2, 3, 8, 32, 32) * 2 - 1
    >>> cmp = compare_pairs(ref, 0.5 * ref)
    >>> round(cmp.bands[1]["gain_db"], 3), round(cmp.bands[1]["coherence"], 6)
    (-6.021, 1.0)
    """
    acc = PairAccumulator(edges=edges, decomposition=decomposition, time_scale=time_scale, peak=peak)
    acc.add(reference, test)
    return acc.result()


class PairAccumulator:
    """The sums behind :func:`compare_pairs`, added a batch of pairs at a time (memory: one batch)."""

    def __init__(
        self,
        *,
        edges: tuple[float, ...] = DEFAULT_EDGES,
        decomposition: str = "spatiotemporal",
        time_scale: float = 1.0,
        peak: float = PEAK,
    ):
        if not (peak > 0 and math.isfinite(peak)):
            raise ValueError(f"peak={peak}: the samples' peak-to-peak range, > 0 (2 for frames in [-1, 1])")
        self.edges, self.decomposition, self.time_scale, self.peak = edges, decomposition, time_scale, peak
        self.shape: tuple[int, ...] | None = None  # (c, t, h, w)
        self.bands: BandSet | None = None
        self.n_pairs = 0
        self.sums = torch.zeros(4, 0, dtype=torch.float64)  # Σ|X_r|², Σ|X_t|², Σ Re(X_r·conj X_t), Σ|X_t − X_r|²
        self.frame_sq = self.row_abs = self.col_abs = torch.zeros(0, dtype=torch.float64)
        self.power_t = torch.zeros(2, 0, dtype=torch.float64)  # Σ over pairs of the temporal power of ref and test

    def add(self, reference: torch.Tensor, test: torch.Tensor) -> None:
        """Add ``b`` frame-aligned pairs ``(b, c, t, h, w)``, of the shape of every pair before them."""
        if reference.ndim != 5 or tuple(test.shape) != tuple(reference.shape):
            raise ValueError(
                f"`reference` {tuple(reference.shape)} and `test` {tuple(test.shape)} must be the same "
                "(b, c, t, h, w) shape: frame-aligned pairs of clips of one size"
            )
        b, c, T, H, W = reference.shape
        if self.bands is None:
            self.shape = (c, T, H, W)
            self.bands = make_bands(
                (T, H, W),
                self.edges,
                decomposition=self.decomposition,
                time_scale=self.time_scale,
                device=reference.device,
            )
            self.sums = torch.zeros(4, len(self.bands), dtype=torch.float64)
            self.frame_sq, self.row_abs, self.col_abs = (torch.zeros(n, dtype=torch.float64) for n in (T, H, W))
            self.power_t = torch.zeros(2, T // 2 + 1, dtype=torch.float64)
        elif (c, T, H, W) != self.shape:
            raise ValueError(
                f"pairs of (c, t, h, w) {(c, T, H, W)} after pairs of {self.shape}: compare clips of "
                "one size (set `size`, or compare each size apart)"
            )
        sums, per_t = _band_sums(reference, test, self.bands)  # (4, n_bands), (2, T)
        for name, s in (("reference", sums[0]), ("test", sums[1])):
            if not torch.isfinite(s).all():
                raise ValueError(f"`{name}` holds NaN/Inf values; check the frames or the decoder")
        self.sums += sums
        self.power_t += _temporal_power(per_t, c, H, W)
        dt = _working_dtype(reference, test)
        self._add_errors(test.to(dt) - reference.to(dt))
        self.n_pairs += b

    def _add_errors(self, d: torch.Tensor) -> None:
        """Add the error ``d = test − reference`` ``(b, c, t, h, w)`` per frame (squared), row and column (absolute):
        float32 sums along a frame or a row of pixels (pairwise, relative error ~1e-7), then float64. A float32
        difference of float32 frames is rounded once (relative 6e-8) and exactly 0 for equal frames."""
        b, c, T, H, W = d.shape
        d = d.contiguous()  # a VAE may decode into another memory layout
        self.frame_sq += (d * d).view(b * c, T, H * W).sum(-1).double().sum(0).cpu()
        a = d.abs_().view(b * c, T, H, W)
        self.row_abs += a.sum(-1).double().sum(dim=(0, 1)).cpu()
        self.col_abs += a.sum(-2).double().sum(dim=(0, 1)).cpu()

    def result(self) -> PairComparison:
        """The comparison of every pair added."""
        if self.bands is None or self.shape is None:
            raise ValueError("no pair to compare; give `reference` and `test` clips")
        c, T, H, W = self.shape
        per_frame = self.n_pairs * c * H * W
        N = per_frame * T
        frame_error = (self.frame_sq / per_frame).tolist()
        mse = float(self.frame_sq.sum()) / N
        rows, notes = [], []
        for band, rr, tt, rt, dd in zip(self.bands.bands, *(s.tolist() for s in self.sums)):
            gain, coh, note = _gain_coherence(band.name, band.n_bins, rr, tt, rt)
            notes += [note] if note else []
            mse_b = dd / N if band.n_bins else math.nan
            rows.append(
                {
                    "name": band.name,
                    "lo": band.lo,
                    "hi": band.hi,
                    "n_bins": band.n_bins,
                    "gain_db": gain,
                    "coherence": coh,
                    "psnr_db": psnr_db(mse_b, self.peak) if band.n_bins else math.nan,
                    "mse": mse_b,
                }
            )
        return PairComparison(
            n_pairs=self.n_pairs,
            shape=[c, T, H, W],
            peak=float(self.peak),
            bands=rows,
            mse=mse,
            psnr_db=psnr_db(mse, self.peak),
            frame_error=frame_error,
            frame_psnr_db=[psnr_db(e, self.peak) for e in frame_error],
            row_error=(self.row_abs / (self.n_pairs * c * T * W)).tolist(),
            col_error=(self.col_abs / (self.n_pairs * c * T * H)).tolist(),
            notes=notes,
        )


def _working_dtype(reference: torch.Tensor, test: torch.Tensor) -> torch.dtype:
    """float64 where either clip is float64, else float32 (the FFTs and the pixel errors are computed in it)."""
    return torch.float64 if torch.float64 in (reference.dtype, test.dtype) else torch.float32


def _temporal_power(per_t: torch.Tensor, c: int, H: int, W: int) -> torch.Tensor:
    """``(2, T//2 + 1)``: the reference's and the test's mean ``|F x|²`` over every bin of each ``|f_t| = k/T``,
    summed over the pairs, from the sums ``per_t (2, T)`` over pairs, channels and the bins of each temporal index."""
    T = per_t.shape[-1]
    k = torch.fft.fftfreq(T, d=1.0 / T).round().abs().long()  # |k_t| of each temporal index
    pooled = torch.zeros(2, T // 2 + 1, dtype=torch.float64).index_add_(1, k, per_t)
    return pooled / (torch.bincount(k, minlength=T // 2 + 1).double() * H * W * c)


def _band_sums(reference: torch.Tensor, test: torch.Tensor, bands: BandSet) -> tuple[torch.Tensor, torch.Tensor]:
    """``Σ|X_r|², Σ|X_t|², Σ Re(X_r·conj X_t), Σ|X_t − X_r|²`` per band, over pairs and channels, ``(4, n_bands)``;
    and ``Σ|X_r|², Σ|X_t|²`` over pairs, channels and the bins of each temporal index, ``(2, t)``: float64 CPU,
    from one ``rfftn`` of each, float32 (float64 where a clip is) (a half-spectrum bin counts for its mirror too)."""
    dt = _working_dtype(reference, test)
    Xr, Xt = (torch.fft.rfftn(x.to(dt), dim=(-3, -2, -1), norm="ortho") for x in (reference, test))
    b, c, T, H, W2 = Xr.shape
    R, Y = (torch.view_as_real(X).view(b, c, T * H * W2, 2) for X in (Xr, Xt))  # (pairs, channels, bins, re/im)
    D = Y - R  # the FFT of test − ref, by linearity
    per_bin = []
    for u, v in ((R, R), (Y, Y), (R, Y), (D, D)):  # |X_r|², |X_t|², Re(X_r·conj X_t), |X_t − X_r|²
        s = (u * v).sum(1)  # over channels, in the FFT's precision (a few terms); then float64
        per_bin.append(s[..., 0] + s[..., 1])
    q = torch.stack(per_bin).double().view(4, b, T, H, W2).mul_(bands.half_weights.to(Xr.device))  # bin + mirror
    k = len(bands)
    labels = bands.half_labels.to(q.device).flatten() + k * torch.arange(4, device=q.device)[:, None, None]
    sums = torch.bincount(labels.expand(4, b, -1).flatten(), weights=q.flatten(), minlength=4 * k).view(4, k)
    return sums.cpu(), q[:2].sum(dim=(1, 3, 4)).cpu()


def _gain_coherence(name: str, n_bins: int, rr: float, tt: float, rt: float) -> tuple[float, float, str | None]:
    """Gain (dB) and coherence of one band from its sums, with a note where they are undefined."""
    if n_bins == 0:
        return math.nan, math.nan, f"band {name} holds no bin of this grid: gain and coherence undefined (NaN)"
    if rr == 0:
        return math.nan, math.nan, f"band {name}: no energy in `reference`, gain and coherence undefined (NaN)"
    if tt == 0:
        return -math.inf, math.nan, f"band {name}: no energy in `test` (gain -inf dB), coherence undefined (NaN)"
    return 10.0 * math.log10(tt / rr), min(rt**2 / (rr * tt), 1.0), None  # ≤ 1 but for float32 rounding
