"""Spatio-temporal frequency bands of ``(b, c, t, h, w)`` tensors: grids, masks, power, band-pass.

Conventions (docs/architecture.md): orthonormal 3D FFT over ``(t, h, w)``; per axis the frequency is
normalised so that Nyquist = 1, i.e. ``f = 2·fftfreq(N)`` (equal to FreeInit's ``2k/N − 1``
after ``fftshift`` for even N, and exactly 0 at DC for odd N too); spatio-temporal distance
``d² = (time_scale·f_t)² + f_h² + f_w²`` with ``time_scale = d_s/d_t`` (1 by default).
The DC bin is its own band; the edges ``e_1 < … < e_k`` give bands
``(0, e_1), [e_1, e_2), …, [e_k, d_max]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch

__all__ = [
    "Band",
    "BandSet",
    "DECOMPOSITIONS",
    "DEFAULT_EDGES",
    "fft3",
    "freq_grid",
    "distance",
    "make_bands",
    "parse_edges",
    "band_mean",
    "band_power",
    "band_sums",
    "band_sums_of_half",
    "band_power_of_half",
    "half_power",
    "bin_power",
    "bandpass",
    "rapsd",
    "radial_profile",
    "spatiotemporal_power",
]

DEFAULT_EDGES = (0.125, 0.25, 0.5)
#: spatiotemporal: distance over (t, h, w); spatial: over (h, w) only; temporal: |f_t| only.
DECOMPOSITIONS = ("spatiotemporal", "spatial", "temporal")


def _check5(x: torch.Tensor, name: str = "x") -> None:
    if x.ndim != 5:
        raise ValueError(f"{name} must be (b, c, t, h, w), got shape {tuple(x.shape)}")


def fft3(x: torch.Tensor) -> torch.Tensor:
    """Orthonormal 3D FFT over ``(t, h, w)``, unshifted: ``(b, c, t, h, w)`` complex (Parseval holds)."""
    _check5(x)
    if x.dtype != torch.float64:
        x = x.float()  # analysis in float32 at least, whatever the model ran in
    return torch.fft.fftn(x, dim=(-3, -2, -1), norm="ortho")


def freq_grid(shape: tuple[int, int, int], *, device: torch.device | str = "cpu") -> tuple[torch.Tensor, ...]:
    """Normalised frequencies ``(f_t, f_h, f_w)`` (Nyquist = 1) in FFT (unshifted) order, each ``(t, h, w)``."""
    T, H, W = shape
    axes = [2.0 * torch.fft.fftfreq(n, device=device, dtype=torch.float64) for n in (T, H, W)]
    return torch.meshgrid(*axes, indexing="ij")


def distance(
    shape: tuple[int, int, int],
    *,
    decomposition: str = "spatiotemporal",
    time_scale: float = 1.0,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Distance of every bin from DC, ``(t, h, w)`` float64, FFT order (see module doc)."""
    f_t, f_h, f_w = freq_grid(shape, device=device)
    if decomposition == "spatiotemporal":
        return torch.sqrt((time_scale * f_t) ** 2 + f_h**2 + f_w**2)
    if decomposition == "spatial":
        return torch.sqrt(f_h**2 + f_w**2)
    if decomposition == "temporal":
        return f_t.abs()
    raise ValueError(f"unknown decomposition {decomposition!r}; choose one of {', '.join(DECOMPOSITIONS)}")


@dataclass(frozen=True)
class Band:
    name: str
    lo: float
    hi: float
    n_bins: int  # bins of the (t, h, w) grid in this band

    def to_dict(self) -> dict:
        return {"name": self.name, "lo": self.lo, "hi": self.hi, "n_bins": self.n_bins}


@dataclass(frozen=True)
class BandSet:
    """A partition of a ``(t, h, w)`` grid into bands: ``labels[i] = band index of bin i``."""

    shape: tuple[int, int, int]
    bands: tuple[Band, ...]
    labels: torch.Tensor  # (t, h, w) int64, FFT order
    decomposition: str
    time_scale: float
    # The half spectrum that ``rfftn`` returns, (t, h, w//2 + 1): each bin's band, and how many bins of the
    # full grid it stands for (1 on the w = 0 and Nyquist planes, 2 elsewhere: |F x|² is symmetric for real x).
    half_labels: torch.Tensor
    half_weights: torch.Tensor

    def __len__(self) -> int:
        return len(self.bands)

    def masks(self) -> torch.Tensor:
        """Boolean masks ``(n_bands, t, h, w)`` in FFT order; they sum to one everywhere."""
        return self.labels[None] == torch.arange(len(self.bands), device=self.labels.device)[:, None, None, None]

    @property
    def names(self) -> list[str]:
        return [b.name for b in self.bands]


def parse_edges(text: str) -> tuple[float, ...]:
    """``"0.125,0.25,0.5"`` → ``(0.125, 0.25, 0.5)``, checked as in :func:`make_bands`."""
    try:
        edges = tuple(float(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise ValueError(f"`edges` {text!r}: expected comma-separated numbers such as 0.125,0.25,0.5") from None
    if not edges:
        raise ValueError(f"`edges` {text!r}: give at least one edge, e.g. 0.125,0.25,0.5")
    _check_edges(edges)
    return edges


def _check_edges(edges: tuple[float, ...], d_max: float | None = None) -> None:
    for e in edges:
        if not math.isfinite(e) or e <= 0:
            raise ValueError(f"band edges {list(edges)}: every edge must be a number > 0 (got {e})")
    if any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"band edges {list(edges)}: must be strictly increasing, e.g. 0.125,0.25,0.5")
    if d_max is not None and edges[-1] >= d_max:
        raise ValueError(
            f"band edges {list(edges)}: the last edge must be below the largest distance "
            f"in the grid ({d_max:.4g}); frequencies are normalised so that Nyquist = 1"
        )


def make_bands(
    shape: tuple[int, int, int],
    edges: tuple[float, ...] = DEFAULT_EDGES,
    *,
    decomposition: str = "spatiotemporal",
    time_scale: float = 1.0,
    device: torch.device | str = "cpu",
) -> BandSet:
    """Partition the ``(t, h, w)`` grid into DC + ``len(edges) + 1`` distance bands (cached).

    >>> bs = make_bands((16, 32, 32), (0.125, 0.25, 0.5))
    >>> [b.name for b in bs.bands], bs.labels.shape
    (['DC', '(0, 0.125)', '[0.125, 0.25)', '[0.25, 0.5)', '[0.5, 1.732]'], torch.Size([16, 32, 32]))
    """
    if len(shape) != 3 or any(int(n) < 1 for n in shape):
        raise ValueError(f"shape must be (t, h, w) with positive sizes, got {tuple(shape)}")
    if not (time_scale > 0 and math.isfinite(time_scale)):
        raise ValueError(f"time_scale={time_scale}: must be > 0 (it is d_s/d_t)")
    return _make_bands(
        tuple(int(n) for n in shape),
        tuple(float(e) for e in edges),
        decomposition,
        float(time_scale),
        str(torch.device(device)),
    )


@lru_cache(maxsize=64)
def _make_bands(shape, edges, decomposition, time_scale, device) -> BandSet:
    d = distance(shape, decomposition=decomposition, time_scale=time_scale, device=device)
    d_max = float(d.max())
    _check_edges(edges, d_max)
    # Bin i goes to band searchsorted(edges, d_i, right) + 1, and DC (d = 0) to band 0.
    e = torch.tensor(edges, dtype=torch.float64, device=device)
    labels = torch.bucketize(d, e, right=True) + 1  # (t, h, w): 1..k+1
    labels[d == 0] = 0
    counts = torch.bincount(labels.flatten(), minlength=len(edges) + 2).tolist()
    bounds = [(0.0, 0.0), (0.0, edges[0])] + list(zip(edges[:-1], edges[1:])) + [(edges[-1], d_max)]
    names = ["DC", f"(0, {edges[0]:g})"] + [f"[{a:g}, {b:g})" for a, b in zip(edges[:-1], edges[1:])]
    names.append(f"[{edges[-1]:g}, {d_max:.4g}]")
    bands = tuple(Band(n, lo, hi, c) for n, (lo, hi), c in zip(names, bounds, counts))
    W = shape[2]
    wr = W // 2 + 1
    weights = torch.full((wr,), 2.0, dtype=torch.float64, device=device)
    weights[0] = 1.0
    if W % 2 == 0:
        weights[-1] = 1.0  # the Nyquist plane is its own mirror
    # The distance is even in every axis (|fftfreq| is), so a bin and its mirror share a band.
    half = labels[..., :wr].contiguous()
    return BandSet(shape, bands, labels, decomposition, time_scale, half, weights)


def bin_power(x: torch.Tensor) -> torch.Tensor:
    """``|F x|²`` averaged over batch and channels: ``(b, c, t, h, w)`` → ``(t, h, w)`` float64."""
    _check5(x)
    T, H, W = x.shape[-3:]
    X = torch.fft.rfftn(x if x.dtype == torch.float64 else x.float(), dim=(-3, -2, -1), norm="ortho")
    half = _abs2(X).double().mean(dim=(0, 1))  # (t, h, w//2+1)
    wr = W // 2 + 1
    full = torch.empty(T, H, W, dtype=torch.float64, device=half.device)
    full[..., :wr] = half
    # The rest by symmetry, |X(-k)| = |X(k)| for real x: bin (t, h, w) mirrors ((-t) mod T, (-h) mod H, W - w).
    full[..., wr:] = half[..., 1 : W - wr + 1].flip(-3, -2, -1).roll((1, 1), dims=(-3, -2))
    return full


def _abs2(X: torch.Tensor) -> torch.Tensor:
    """``|X|² = Re² + Im²`` of a complex tensor, in its real dtype (bit for bit what summing the squares of
    ``view_as_real`` gives, 5× faster than that strided reduction)."""
    return X.real.square() + X.imag.square()


def band_mean(p: torch.Tensor, bands: BandSet) -> torch.Tensor:
    """Reduce per-bin power ``(…, t, h, w)`` (FFT order) to the mean over each band's bins: ``(…, n_bands)``
    float64. A band with no bin gives NaN."""
    if tuple(p.shape[-3:]) != bands.shape:
        raise ValueError(f"x has (t, h, w) = {tuple(p.shape[-3:])} but the bands were made for {bands.shape}")
    lead = p.shape[:-3]
    flat = p.double().reshape(*lead, math.prod(bands.shape))  # (…, t·h·w)
    sums = _group_sums(flat, bands.labels.to(p.device).flatten(), len(bands))  # (…, n_bands)
    return sums / _counts(bands, sums)  # 0/0 = NaN where a band is empty


def _group_sums(values: torch.Tensor, index: torch.Tensor, k: int) -> torch.Tensor:
    """Sums of float64 ``values (…, N)`` over the groups ``index (N,)`` (each in ``0 … k−1``): ``(…, k)``."""
    lead = values.shape[:-1]
    flat = values.reshape(-1, values.shape[-1])  # (n, N)
    sums = torch.zeros(flat.shape[0], k, dtype=torch.float64, device=values.device).index_add_(1, index, flat)
    return sums.reshape(*lead, k)


def _group_means(values: torch.Tensor, index: torch.Tensor, k: int) -> torch.Tensor:
    """Means of float64 ``values (N,)`` over the groups ``index (N,)``: ``(k,)``, NaN for an empty group."""
    sums = _group_sums(values, index, k)
    return sums / torch.bincount(index, minlength=k).to(sums)


def _counts(bands: BandSet, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor([b.n_bins for b in bands.bands], dtype=torch.float64, device=like.device)


def half_power(x: torch.Tensor) -> torch.Tensor:
    """``|F x|²`` on the half spectrum of one orthonormal real FFT: ``(b, c, t, h, w)`` → ``(b, c, t, h, w//2+1)``
    float32 (float64 for float64 ``x``). Every band and spectrum of a row comes from this one FFT."""
    _check5(x)
    return _abs2(torch.fft.rfftn(x if x.dtype == torch.float64 else x.float(), dim=(-3, -2, -1), norm="ortho"))


def band_sums_of_half(p: torch.Tensor, bands: BandSet) -> torch.Tensor:
    """:func:`band_sums` from the half-spectrum power ``p`` of :func:`half_power`."""
    if tuple(p.shape[-3:-1]) != bands.shape[:2] or p.shape[-1] != bands.shape[2] // 2 + 1:
        raise ValueError(f"x has (t, h, w) = {tuple(p.shape[-3:])} (half) but the bands were made for {bands.shape}")
    b, c = p.shape[:2]
    p = (p * bands.half_weights.to(p.device, p.dtype)).reshape(b, c, -1)  # (b, c, t·h·(w//2+1))
    return _group_sums(p.double(), bands.half_labels.to(p.device).flatten(), len(bands))  # (b, c, n_bands)


def band_sums(x: torch.Tensor, bands: BandSet) -> torch.Tensor:
    """Sum of ``|F x|²`` over each band's bins: ``(b, c, t, h, w)`` → ``(b, c, n_bands)`` float64.

    One float32 real FFT (``rfftn``, half the spectrum) with float64 sums: each half-spectrum bin
    counts for itself and its mirror (weight 2), except on the ``w = 0`` and Nyquist planes, so the
    sums equal those over the full complex spectrum.
    """
    _check5(x)
    if tuple(x.shape[-3:]) != bands.shape:
        raise ValueError(f"x has (t, h, w) = {tuple(x.shape[-3:])} but the bands were made for {bands.shape}")
    return band_sums_of_half(half_power(x), bands)


def band_power_of_half(p: torch.Tensor, bands: BandSet, *, per_sample: bool = False) -> torch.Tensor:
    """:func:`band_power` from the half-spectrum power ``p`` of :func:`half_power`."""
    sums = band_sums_of_half(p, bands).mean(dim=1)  # (b, n_bands): mean over channels
    power = sums / _counts(bands, sums)  # 0/0 = NaN where a band is empty
    return power if per_sample else power.mean(dim=0)


def band_power(x: torch.Tensor, bands: BandSet, *, per_sample: bool = False) -> torch.Tensor:
    """Mean of ``|F x|²`` over each band's bins and over channels (and batch).

    Returns ``(n_bands,)`` float64, or ``(b, n_bands)`` with ``per_sample=True``. A band
    with no bin gives NaN. With the orthonormal FFT, unit white noise has power 1 in every
    band and ``Σ_b power_b · n_bins_b = Σ x² / (b·c)`` (Parseval).
    """
    _check5(x)
    if tuple(x.shape[-3:]) != bands.shape:
        raise ValueError(f"x has (t, h, w) = {tuple(x.shape[-3:])} but the bands were made for {bands.shape}")
    return band_power_of_half(half_power(x), bands, per_sample=per_sample)


def bandpass(x: torch.Tensor, bands: BandSet, index: int | None = None) -> torch.Tensor:
    """Band-pass reconstruction of ``x``: ``(b, c, t, h, w)`` → ``(n_bands, b, c, t, h, w)``
    (or one band's ``(b, c, t, h, w)`` when ``index`` is given). The bands sum back to ``x``."""
    _check5(x)
    X = fft3(x)
    masks = bands.masks().to(X.device)
    if index is not None:
        return torch.fft.ifftn(X * masks[index], dim=(-3, -2, -1), norm="ortho").real
    return torch.stack([torch.fft.ifftn(X * m, dim=(-3, -2, -1), norm="ortho").real for m in masks])


def rapsd(
    x: torch.Tensor,
    *,
    n_bins: int | None = None,
    decomposition: str = "spatiotemporal",
    time_scale: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Radially averaged power spectrum: mean ``|F x|²`` in rings of equal width in ``d``.

    Returns ``(radius, power)``, each ``(n_bins,)`` float64, ``radius`` the ring centres;
    DC is excluded. Default ``n_bins``: half the largest of ``t, h, w`` (one ring per
    frequency step of that axis). Empty rings give NaN.
    """
    _check5(x)
    return radial_profile(bin_power(x), n_bins=n_bins, decomposition=decomposition, time_scale=time_scale)


def radial_profile(
    p: torch.Tensor, *, n_bins: int | None = None, decomposition: str = "spatiotemporal", time_scale: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`rapsd` of an already computed per-bin power ``(t, h, w)`` (FFT order)."""
    T, H, W = p.shape[-3:]
    shape = (T, H, W)
    d = distance(shape, decomposition=decomposition, time_scale=time_scale, device=p.device).flatten()
    p = p.double().flatten()
    keep = d > 0
    p, d = p[keep], d[keep]
    n_bins = n_bins or max(2, max(shape) // 2)
    edges = torch.linspace(0.0, float(d.max()) * (1 + 1e-9), n_bins + 1, dtype=torch.float64, device=p.device)
    idx = (torch.bucketize(d, edges, right=True) - 1).clamp_(0, n_bins - 1)
    return 0.5 * (edges[1:] + edges[:-1]), _group_means(p, idx, n_bins)


def spatiotemporal_power(x: torch.Tensor, *, n_spatial: int | None = None) -> tuple[torch.Tensor, ...]:
    """Mean ``|F x|²`` on a grid of temporal frequency ``|f_t|`` × spatial radius ``√(f_h² + f_w²)``.

    Returns ``(f_t, spatial_edges, power)``: the distinct ``|f_t|`` values ``(n_t,)``, the spatial ring
    edges ``(n_spatial + 1,)`` (equal width up to the largest radius) and ``power (n_t, n_spatial)``
    float64 (NaN where a cell holds no bin). Default ``n_spatial``: half the larger spatial side.
    """
    _check5(x)
    T, H, W = x.shape[-3:]
    p = bin_power(x)  # (t, h, w)
    f_t, f_h, f_w = freq_grid((T, H, W), device=p.device)
    ft = f_t.abs()
    r = torch.sqrt(f_h**2 + f_w**2)
    t_vals = torch.unique(ft)
    n_spatial = n_spatial or max(2, max(H, W) // 2)
    edges = torch.linspace(0.0, float(r.max()) * (1 + 1e-9), n_spatial + 1, dtype=torch.float64, device=p.device)
    ti = torch.bucketize(ft.flatten(), t_vals)  # exact match: index of |f_t| among the distinct values
    si = (torch.bucketize(r.flatten(), edges, right=True) - 1).clamp_(0, n_spatial - 1)
    cell = ti * n_spatial + si
    power = _group_means(p.flatten(), cell, len(t_vals) * n_spatial)
    return t_vals, edges, power.reshape(len(t_vals), n_spatial)
