"""Per-band signal-to-noise ratio of the forward process at every training timestep.

``SNR_b(t) = a_t² P_b / s_t²`` (VP: ``ᾱ_t P_b / (1−ᾱ_t)``; flow: ``(1−σ_t)² P_b / σ_t²``), with
``P_b`` the mean ``|F z0|²`` over band b's bins and channels (orthonormal FFT, so unit white
noise has power 1 per bin). Because the FFT is linear, ``F z_t = a_t F z0 + s_t F ε``: the
whole curve needs one FFT of ``z0`` (and one per noise draw), never one per timestep.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .bands import BandSet, band_power
from .noise import randn
from .noise_schedule import Schedule

__all__ = [
    "snr_closed_form",
    "snr_sampled",
    "snr_naive",
    "to_db",
    "crossing_timesteps",
    "energy_fraction",
    "BandSNR",
    "band_snr",
    "clip_weights",
]


def to_db(x: torch.Tensor) -> torch.Tensor:
    """``10·log10(x)`` (−inf at 0, +inf at inf)."""
    return 10.0 * torch.log10(x)


def snr_closed_form(power: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    """``(…, n_bands)`` band powers → ``(…, n_bands, N)`` linear SNR at every timestep."""
    return power[..., None] * schedule.snr.to(power)


def snr_sampled(
    z0: torch.Tensor,
    bands: BandSet,
    schedule: Schedule,
    *,
    seeds: int,
    generator: torch.Generator | None = None,
    progress: Callable | None = None,
    power: torch.Tensor | None = None,
) -> torch.Tensor:
    """SNR measured with ``seeds`` real draws of ε: ``(seeds, n_bands, N)`` linear.

    Signal power in band b at t is ``a_t² P_b``, noise power ``s_t² N_b`` with ``N_b`` the
    measured band power of the drawn ``ε`` (so it scatters around the closed form by the
    sampling error of ``N_b``, about ``√(2/n_bins)`` relative for a band of ``n_bins`` bins).
    ``power``: ``band_power(z0, bands)`` if already computed (saves an FFT). The FFTs run on ``z0``'s device;
    the result is on the CPU.
    """
    power = (band_power(z0, bands) if power is None else power).cpu()  # (n_bands,)
    out = []
    for _ in progress(range(seeds), desc="noise draws", unit="draw") if progress else range(seeds):
        eps = randn(z0.shape, generator=generator, device=z0.device)  # on the generator's device, then moved
        noise = band_power(eps, bands).cpu()  # (n_bands,)
        out.append(snr_closed_form(power / noise, schedule))
    return torch.stack(out)


def snr_naive(z0: torch.Tensor, bands: BandSet, schedule: Schedule, eps: torch.Tensor) -> torch.Tensor:
    """Reference implementation for benchmarks and tests: form ``a_t z0`` and ``s_t ε`` at every
    timestep and FFT both (2N FFTs). Same result as :func:`snr_sampled` for the same ``ε``."""
    rows = []
    for a, s in zip(schedule.a.tolist(), schedule.s.tolist()):
        rows.append(band_power(a * z0, bands) / band_power(s * eps, bands))
    return torch.stack(rows, dim=-1)  # (n_bands, N)


def crossing_timesteps(snr_db: torch.Tensor) -> list[int | None]:
    """First timestep at which each band's SNR drops below 0 dB: ``(n_bands, N)`` → list (None: never)."""
    below = snr_db < 0
    first = below.double().argmax(dim=-1)
    return [int(i) if bool(b.any()) else None for i, b in zip(first.tolist(), below)]


def energy_fraction(power: torch.Tensor, bands: BandSet) -> torch.Tensor:
    """Share of the total energy ``Σ|F z0|²`` in each band (sums to 1 over the bands)."""
    n = torch.tensor([b.n_bins for b in bands.bands], dtype=power.dtype, device=power.device)
    e = torch.nan_to_num(power) * n
    return e / e.sum()


@dataclass
class BandSNR:
    """Per-band SNR of one latent at every training timestep; every tensor on the CPU."""

    power: torch.Tensor  # (n_bands,) mean |F z0|² per bin
    energy_fraction: torch.Tensor  # (n_bands,)
    snr_db: torch.Tensor  # (n_bands, N) closed form
    crossing: list[int | None]  # first t with SNR < 0 dB
    sampled_db_mean: torch.Tensor | None = None  # (n_bands, N) measured SNR (dB) of the mean noise power over seeds
    sampled_db_std: torch.Tensor | None = None  # (n_bands, N) spread (s.d.) of the per-draw SNR in dB


def band_snr(
    z0: torch.Tensor,
    bands: BandSet,
    schedule: Schedule,
    *,
    seeds: int = 0,
    generator: torch.Generator | None = None,
    progress: Callable | None = None,
    power: torch.Tensor | None = None,
) -> BandSNR:
    """Everything ``freqscope snr`` reports for one latent ``z0`` of shape ``(b, c, t, h, w)``
    (``power``: its band power if already computed). The FFTs run on ``z0``'s device; the result is on the CPU."""
    power = (band_power(z0, bands) if power is None else power).cpu()  # (n_bands,)
    snr_db = to_db(snr_closed_form(power, schedule))
    res = BandSNR(power, energy_fraction(power, bands), snr_db, crossing_timesteps(snr_db))
    if seeds > 0:
        lin = snr_sampled(z0, bands, schedule, seeds=seeds, generator=generator, progress=progress, power=power)
        # Averaged in linear power: the mean noise power over draws (SNR ∝ 1/noise: a harmonic mean of the
        # per-draw SNR). A mean of dB would be biased, by +1.5 dB for DC's 3 degrees of freedom (3 channels).
        res.sampled_db_mean = to_db(1 / (1 / lin).mean(dim=0))
        res.sampled_db_std = to_db(lin).std(dim=0) if seeds > 1 else torch.zeros_like(res.snr_db)
    return res


def clip_weights(weights: torch.Tensor | None, n: int) -> torch.Tensor:
    """Per-clip weights of a mean over ``n`` clips, normalised to sum to 1 (float64; None: equal weights).

    >>> clip_weights(torch.tensor([1.0, 3.0]), 2)
    tensor([0.2500, 0.7500], dtype=torch.float64)
    """
    if weights is None:
        return torch.full((n,), 1.0 / n, dtype=torch.float64)
    w = torch.as_tensor(weights, dtype=torch.float64).flatten()
    if w.numel() != n or not torch.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"weights: need {n} finite numbers >= 0, not all 0; got {w.tolist()[:8]}")
    return w / w.sum()
