"""A clip's compact spectra: what comparisons of clips and sets need, kept in its row so that they never decode again.

- ``spectrum``: mean ``|F z|²`` on a grid of temporal frequency ``|f_t| = k/T`` (``k = 0 … T//2``, both signs
  pooled) × ``SPATIAL_RINGS`` rings of equal width in spatial radius ``√(f_h² + f_w²)`` over ``[0, √0.5]``
  cycles per sample. It comes from the row's one FFT (the half spectrum of ``rfftn``, each bin weighted by the
  number of full-spectrum bins it stands for), so that ``Σ_cells spectrum · counts = Σ |F z|²`` (Parseval).
- per-frame statistics, for periodic artefacts (:mod:`freqscope.periodic`): ``frame_mean`` (T), ``frame_change``
  (T − 1: mean squared change to the next frame), ``row_grad`` (H − 1) and ``col_grad`` (W − 1): mean ``|Δz|``
  across each row and column boundary (tile seams show there).

Frequencies are in cycles per sample (frame or latent pixel): the same grid for every clip of the same shape.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

__all__ = [
    "SPATIAL_RINGS",
    "MAX_RADIUS",
    "spectrum_grid",
    "ring_index",
    "cell_labels",
    "spectrum_of_half",
    "frame_stats",
]

#: Rings of spatial radius in a clip's spectrum (issue 18: "(t/2 + 1) × 32 bins").
SPATIAL_RINGS = 32
#: Largest spatial radius, cycles per sample: the corner (f_h, f_w) = (½, ½).
MAX_RADIUS = math.sqrt(0.5)


def spectrum_grid(T: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(f_t, ring_edges)``: the ``T//2 + 1`` temporal frequencies ``k/T`` and the ``SPATIAL_RINGS + 1`` ring
    edges of the spectrum, cycles per sample, float64."""
    f_t = torch.arange(T // 2 + 1, dtype=torch.float64) / T
    return f_t, torch.linspace(0.0, MAX_RADIUS, SPATIAL_RINGS + 1, dtype=torch.float64)


def ring_index(H: int, W: int) -> torch.Tensor:
    """The ring of each spatial bin ``(H, W)`` (FFT order): ``⌊SPATIAL_RINGS · r / √0.5⌋`` for ``r = √(f_h² + f_w²)``,
    the last ring closed, computed in integers (``⌊√(2·R²·(k_h²W² + k_w²H²) / (H²W²))⌋``) so that a bin on a ring
    edge, such as the diagonal of a square grid, lands in one ring whatever the rounding."""
    kh = torch.fft.fftfreq(H, d=1.0 / H).round().long()[:, None]
    kw = torch.fft.fftfreq(W, d=1.0 / W).round().long()[None, :]
    q = (2 * SPATIAL_RINGS**2 * (kh**2 * W**2 + kw**2 * H**2)) // (H**2 * W**2)  # (H, W) int64
    r = q.double().sqrt().floor().long()
    r += ((r + 1) ** 2 <= q).long()  # the exact integer square root
    r -= (r**2 > q).long()
    return r.clamp_(max=SPATIAL_RINGS - 1)


@lru_cache(maxsize=64)
def cell_labels(shape: tuple[int, int, int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For the ``rfftn`` half spectrum of a ``(T, H, W)`` grid: each bin's cell ``(T, H, W//2 + 1)``, its weight
    (2 where the bin stands for itself and its mirror, else 1) and each cell's count of full-spectrum bins
    ``((T//2 + 1)·SPATIAL_RINGS,)`` float64 (0: an empty cell)."""
    T, H, W = shape
    wr = W // 2 + 1
    kt = torch.fft.fftfreq(T, dtype=torch.float64).abs() * T  # |k_t|
    ring = ring_index(H, W)[:, :wr]
    labels = (kt.round().long()[:, None, None] * SPATIAL_RINGS + ring[None]).expand(T, H, wr).contiguous()
    weights = torch.full((T, H, wr), 2.0, dtype=torch.float64)
    weights[..., 0] = 1.0  # the w = 0 plane mirrors onto itself
    if W % 2 == 0:
        weights[..., -1] = 1.0  # and so does the Nyquist plane
    n_cells = (T // 2 + 1) * SPATIAL_RINGS
    counts = torch.zeros(n_cells, dtype=torch.float64).index_add_(0, labels.flatten(), weights.flatten())
    return labels, weights, counts


def spectrum_of_half(p: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """The spectrum ``(b, (T//2 + 1)·SPATIAL_RINGS)`` float64 (row-major over ``(f_t, ring)``, NaN in an empty
    cell) from the half-spectrum power ``p = |rfftn z|²`` ``(b, c, T, H, W//2 + 1)``, averaged over channels."""
    labels, weights, counts = cell_labels(tuple(shape))
    b = p.shape[0]
    w = (p.double().mean(1) * weights.to(p.device)).reshape(b, -1)  # (b, bins)
    sums = torch.zeros(b, counts.numel(), dtype=torch.float64, device=p.device)
    sums.index_add_(1, labels.to(p.device).flatten(), w)
    return sums / counts.to(p.device)  # 0/0 = NaN where a cell is empty


def frame_stats(z: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-frame and per-boundary statistics of ``z (b, c, t, h, w)``, each ``(b, n)`` float64: ``frame_mean``,
    ``frame_change`` (mean ``(z_{t+1} − z_t)²``), ``row_grad`` and ``col_grad`` (mean ``|Δz|`` across each row
    and column boundary, over channels, frames and the other axis)."""
    z = z.float()
    return {
        "frame_mean": z.mean(dim=(1, 3, 4)).double(),
        "frame_change": (z[:, :, 1:] - z[:, :, :-1]).square_().mean(dim=(1, 3, 4)).double(),
        "row_grad": (z[..., 1:, :] - z[..., :-1, :]).abs_().mean(dim=(1, 2, 4)).double(),
        "col_grad": (z[..., 1:] - z[..., :-1]).abs_().mean(dim=(1, 2, 3)).double(),
    }
