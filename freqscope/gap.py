"""The initialization gap per band: how far an initial noise is from what the model saw in training.

At a start level ᾱ (ᾱ_T for FreeInit), training inputs ``z = √ᾱ·z0 + √(1−ᾱ)·ε`` of a clip with band
power ``P_b`` have expected band power ``ᾱ·P_b + (1 − ᾱ)``. For an initial noise with band power
``Q_b``, ``gap_b = 10·log10((ᾱ·P_b + 1 − ᾱ) / Q_b)`` dB: positive where the noise has too little power
(plain Gaussian noise in the low bands), 0 where it matches training.
"""

from __future__ import annotations

import torch

from .bands import BandSet, band_power

__all__ = [
    "training_power",
    "gap_db",
    "low_band_gap_db",
    "keep_reinitialising",
    "relative_power_db",
    "predicted_pass_power",
]


def training_power(P: torch.Tensor, alpha_bar: float) -> torch.Tensor:
    """Expected band power of training-time ``z`` at level ᾱ: ``ᾱ·P + (1 − ᾱ)``."""
    return alpha_bar * P + (1 - alpha_bar)


def gap_db(init: torch.Tensor, bands: BandSet, P: torch.Tensor, alpha_bar: float) -> torch.Tensor:
    """``(n_bands,)`` gap in dB of an initial noise ``(b, c, t, h, w)`` against training at level ᾱ."""
    return 10 * torch.log10(training_power(P, alpha_bar) / band_power(init, bands))


def low_band_gap_db(
    init: torch.Tensor, bands: BandSet, P: torch.Tensor, alpha_bar: float, *, cutoff: float | None = None
) -> float:
    """The gap of the low band, where the training/inference gap lives: the bands between DC and ``cutoff``
    (default: the first edge, i.e. the band ``(0, e₁)``), pooled with weights by bin count. DC is left out:
    with one bin per channel its power is a χ² of ``c`` degrees of freedom, too noisy to steer by."""
    cutoff = bands.bands[1].hi if cutoff is None else cutoff
    low = [i for i, b in enumerate(bands.bands) if 0 < b.hi <= cutoff + 1e-12 and b.n_bins > 0]
    if not low:
        raise ValueError(f"cutoff={cutoff}: no band below it besides DC; pass band edges below the filter's d_s")
    n = torch.tensor([float(bands.bands[i].n_bins) for i in low], dtype=torch.float64)
    target = (n * training_power(P[low].double().cpu(), alpha_bar)).sum()
    got = (n * band_power(init, bands)[low].double().cpu()).sum()
    return float(10 * torch.log10(target / got))


def keep_reinitialising(gaps: list[float], candidate: float, *, tol: float = 1.0) -> bool:
    """Adaptive FreeInit's rule: run another pass from a candidate initial noise only while the gap of the
    noise just sampled (``gaps[-1]``) is above ``tol``, the candidate's gap is smaller in magnitude (still
    shrinking) and it does not overshoot below ``−tol`` (re-used noise drives it past zero)."""
    current = gaps[-1]
    return current > tol and abs(candidate) < abs(current) and candidate >= -tol


def relative_power_db(z: torch.Tensor, bands: BandSet, P: torch.Tensor) -> torch.Tensor:
    """Band power of a generated latent relative to the clip's, in dB (0: the clip's spectrum)."""
    return 10 * torch.log10(band_power(z, bands) / P)


def predicted_pass_power(
    gains: list[torch.Tensor],
    mask: torch.Tensor,
    alpha_bar: float,
    *,
    renoise: str = "reuse",
    variance_preserving: bool = False,
    init_power: torch.Tensor | None = None,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Closed-form expected per-bin power of each pass's initial noise and generated latent.

    For a linear sampler (the Gaussian reference model with deterministic DDIM), pass k maps its
    initial noise to ``z0 = G_k · init`` per frequency bin. Re-diffusion and mixing give, per bin,
    ``init_{k+1} = L·(√ᾱ·G_k·init_k + √(1−ᾱ)·ε_r) + H·ξ`` with ``H = 1 − L`` (or ``√(1 − L²)``).
    With ``ε_r`` a fresh draw the powers add; reused (``ε_r`` = the pass-0 noise) it adds coherently:
    track ``init_k = c_k·ε_0 + (independent part of power u_k)``.
    ``gains``: per pass ``(c, t, h, w)`` FFT order; ``mask``: ``(t, h, w)`` centred order.
    Returns (init powers, z0 powers), per pass, each ``(c, t, h, w)``.
    """
    L = torch.fft.ifftshift(mask.double(), dim=(-3, -2, -1))
    H2 = (1 - L**2).clamp(min=0) if variance_preserving else (1 - L) ** 2
    a, s = alpha_bar**0.5, (1 - alpha_bar) ** 0.5
    c = torch.ones_like(gains[0]) if init_power is None else init_power.sqrt()  # coefficient on ε_0
    u = torch.zeros_like(gains[0])  # power of the part independent of ε_0
    inits, outs = [], []
    for k, G in enumerate(gains):
        if k > 0:
            Gp = gains[k - 1]
            if renoise == "reuse":
                c, u = L * (a * Gp * c + s), L**2 * a**2 * Gp**2 * u + H2
            else:
                c, u = L * a * Gp * c, L**2 * (a**2 * Gp**2 * u + s**2) + H2
        inits.append(c**2 + u)
        outs.append(G**2 * (c**2 + u))
    return inits, outs
