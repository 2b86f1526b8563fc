"""Gaussian noise draws, all ``(b, c, t, h, w)`` and seeded by a ``torch.Generator``: plain (as diffusers draws
it, also the forward process's ε of the analysis) and the structured noises that priors start from (offset,
PYoCo, spectrum-matched). Bottom layer: imports nothing from freqscope."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = [
    "randn",
    "gaussian_noise",
    "offset_noise",
    "pyoco_mixed_noise",
    "pyoco_progressive_noise",
    "spectrum_matched_noise",
]

_DIMS = (-3, -2, -1)


def _check_shape(shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(int(n) for n in shape)
    if len(shape) != 5 or min(shape) < 1:
        raise ValueError(f"noise shape must be (b, c, t, h, w) with positive sizes, got {shape}")
    return shape


def randn(
    shape: Sequence[int], *, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Unit Gaussian noise drawn as diffusers' ``randn_tensor`` does: on the generator's own device (CPU
    without a generator), then moved to ``device``; so a CPU generator seeds CUDA runs reproducibly and a
    CUDA generator works for CUDA targets."""
    gen_device = generator.device if generator is not None else torch.device("cpu")
    return torch.randn(tuple(shape), generator=generator, device=gen_device).to(device)


def gaussian_noise(
    shape: Sequence[int], *, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """i.i.d. N(0, 1): what samplers start from."""
    return randn(_check_shape(shape), generator=generator, device=device)


def offset_noise(
    shape: Sequence[int],
    *,
    strength: float = 0.1,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """ε + strength·δ with δ ~ N(0, 1) per (b, c), shared over (t, h, w) (Guttenberg 2023).
    Its DC power is raised by ``strength²·t·h·w``; the total variance is ``1 + strength²``."""
    b, c, t, h, w = _check_shape(shape)
    eps = randn((b, c, t, h, w), generator=generator, device=device)
    return eps + strength * randn((b, c, 1, 1, 1), generator=generator, device=device)


def pyoco_mixed_noise(
    shape: Sequence[int],
    *,
    alpha: float = 1.0,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """PYoCo mixed noise (Ge et al. 2023, Eq. 3): a component shared by all frames with variance
    ``α²/(1+α²)`` plus an independent one with variance ``1/(1+α²)``: unit variance, frame correlation
    ``α²/(1+α²)``."""
    b, c, t, h, w = _check_shape(shape)
    shared = randn((b, c, 1, h, w), generator=generator, device=device)
    ind = randn((b, c, t, h, w), generator=generator, device=device)
    return (alpha * shared + ind) / math.sqrt(1 + alpha**2)


def pyoco_progressive_noise(
    shape: Sequence[int],
    *,
    alpha: float = 2.0,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """PYoCo progressive noise (Ge et al. 2023, Eq. 4): ``ε_i = α/√(1+α²)·ε_{i−1} + ξ_i/√(1+α²)``, an AR(1)
    chain over frames with unit variance and lag-k correlation ``(α/√(1+α²))^k``."""
    b, c, t, h, w = _check_shape(shape)
    xi = randn((b, c, t, h, w), generator=generator, device=device)
    out = torch.empty_like(xi)
    out[:, :, 0] = xi[:, :, 0]
    r = alpha / math.sqrt(1 + alpha**2)
    for i in range(1, t):  # over frames only (t ≈ 16): each frame depends on the previous one
        out[:, :, i] = r * out[:, :, i - 1] + xi[:, :, i] / math.sqrt(1 + alpha**2)
    return out


def spectrum_matched_noise(
    shape: Sequence[int],
    power: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Gaussian noise with expected power ``power`` in every bin of the orthonormal 3D FFT: white noise
    ``ξ`` shaped as ``F⁻¹(√power · F ξ)``. ``power`` is in FFT order and broadcasts to ``(b, c, t, h, w)``,
    e.g. training ``z_T``'s ``ᾱ·P_b + 1 − ᾱ`` spread over each band's bins: the spectrum-matched prior, the
    initial noise that closes the gap on power alone, with no extra sampling pass and no phase from a sample.
    ``power`` must be symmetric, ``power(f) = power(−f)`` (a function of ``|f|`` is), so the noise is real."""
    shape = _check_shape(shape)
    power = torch.as_tensor(power, dtype=torch.float32, device=device)
    if (power < 0).any() or not torch.isfinite(power).all():
        raise ValueError("power must be finite and non-negative in every bin")
    mirrored = torch.roll(torch.flip(power, dims=_DIMS), shifts=(1, 1, 1), dims=_DIMS)  # power at (−k) mod N
    if power.ndim >= 3 and not torch.allclose(power, mirrored, rtol=1e-5, atol=1e-7):
        raise ValueError("power must be symmetric, power(f) = power(-f), for the noise to be real")
    xi = randn(shape, generator=generator, device=device)
    shaped = torch.fft.fftn(xi, dim=_DIMS, norm="ortho") * power.sqrt()
    return torch.fft.ifftn(shaped, dim=_DIMS, norm="ortho").real
