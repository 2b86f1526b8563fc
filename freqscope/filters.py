"""FreeInit's spatio-temporal low-pass filters and frequency mixing, vectorised and cached.

Masks are returned in centred (``fftshift``) order over ``(t, h, w)`` with FreeInit's coordinates
``2k/N − 1`` per axis and ``d² = ((d_s/d_t)·f_t)² + f_h² + f_w²`` (Wu et al. 2024, Sec. 3.3; the
official code and diffusers' ``FreeInitMixin`` agree on these).
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

__all__ = ["FILTER_METHODS", "lowpass_filter", "freq_mix", "noise_variance", "variance_loss_db"]

#: ``ideal-legacy`` keeps the published code's bug (``d² ≤ 2·d_s`` instead of ``d² ≤ d_s²``) for reproduction;
#: ``box-legacy`` the published box, whose width threshold is H's (``round(H//2 · d_s)`` on both spatial axes).
FILTER_METHODS = ("gaussian", "butterworth", "box", "box-legacy", "ideal", "ideal-legacy")
_DIMS = (-3, -2, -1)


def lowpass_filter(
    shape: tuple[int, int, int],
    *,
    method: str = "butterworth",
    d_s: float = 0.25,
    d_t: float = 0.25,
    order: int = 4,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Low-pass mask ``L`` of shape ``(t, h, w)`` in centred (fftshift) order, float32.

    gaussian ``exp(−d²/(2 d_s²))``; butterworth ``1/(1 + (d²/d_s²)^order)``; ideal ``d² ≤ d_s²``;
    box: an index box of half-width ``round(N//2 · d)`` about the centre bin, per axis (``d_t`` for t, ``d_s``
    for h and w); the official code (FreeInit's and FreqPrior's ``box_low_pass_filter``) computes the spatial
    half-width from H alone and uses it for W too: the same box when H = W, kept as ``box-legacy``
    (slice for slice, including its wrap-around where W's half-width is exceeded).

    >>> lowpass_filter((16, 32, 32), method="gaussian").shape
    torch.Size([16, 32, 32])
    """
    if len(shape) != 3 or any(int(n) < 1 for n in shape):
        raise ValueError(f"shape must be (t, h, w) with positive sizes, got {tuple(shape)}")
    if method not in FILTER_METHODS:
        raise ValueError(f"unknown filter method {method!r}; choose one of {', '.join(FILTER_METHODS)}")
    for name, v in (("d_s", d_s), ("d_t", d_t)):
        if not (math.isfinite(v) and 0 <= v <= 1):
            raise ValueError(f"{name}={v}: a stop frequency must lie in [0, 1] (Nyquist = 1)")
    if not (isinstance(order, int) and order >= 1):
        raise ValueError(f"order={order}: the Butterworth order must be a whole number >= 1")
    return _lowpass(tuple(int(n) for n in shape), method, float(d_s), float(d_t), int(order), str(torch.device(device)))


@lru_cache(maxsize=32)
def _lowpass(shape, method, d_s, d_t, order, device) -> torch.Tensor:
    T, H, W = shape
    if d_s == 0 or d_t == 0:
        return torch.zeros(shape, device=device)
    if method in ("box", "box-legacy"):
        th = [round(T // 2 * d_t), round(H // 2 * d_s), round((H if method == "box-legacy" else W) // 2 * d_s)]
        inside = [_box_axis(n, r, device) for n, r in zip(shape, th)]
        return (inside[0][:, None, None] & inside[1][None, :, None] & inside[2][None, None, :]).float()
    f_t, f_h, f_w = (2 * torch.arange(n, dtype=torch.float64, device=device) / n - 1 for n in shape)
    d2 = ((d_s / d_t) * f_t)[:, None, None] ** 2 + f_h[None, :, None] ** 2 + f_w[None, None, :] ** 2
    if method == "gaussian":
        m = torch.exp(-d2 / (2 * d_s**2))
    elif method == "butterworth":
        m = 1 / (1 + (d2 / d_s**2) ** order)
    elif method == "ideal":
        m = (d2 <= d_s**2).double()
    else:  # ideal-legacy: the published threshold, d² ≤ 2·d_s
        m = (d2 <= d_s * 2).double()
    return m.float()


def _box_axis(n: int, r: int, device) -> torch.Tensor:
    """Bins ``[n//2 − r, n//2 + r)`` of one axis, sliced as the published code slices them: where the start
    is negative (``box-legacy`` with W's half-width below H's), Python counts it from the end, so the box
    keeps the bins ``[n + n//2 − r, n)`` (e.g. n = 17, r = 16: bins 9–16), not ``[0, n)``."""
    inside = torch.zeros(n, dtype=torch.bool, device=device)
    inside[n // 2 - r : n // 2 + r] = True
    return inside


def freq_mix(
    x: torch.Tensor,
    noise: torch.Tensor,
    mask: torch.Tensor,
    *,
    variance_preserving: bool = False,
    part: str = "real",
) -> torch.Tensor:
    """Low frequencies of ``x`` and high frequencies of ``noise`` over the last three dims.

    FreeInit: ``F⁻¹(L·F x + (1 − L)·F noise)``. With ``variance_preserving`` (as FreqPrior) the noise
    is weighted by ``√(1 − L²)``, so that two unit white noises mix to unit white noise.
    ``x`` and ``noise`` are ``(…, t, h, w)``; ``mask`` is ``(t, h, w)`` in centred order. Computed in
    float32 (float64 inputs stay float64). ``part``: ``"real"`` of the inverse FFT, or ``"+"`` / ``"-"`` for
    real ± imaginary part (FreqPrior's two halves, whose average is again unit white noise).
    """
    if x.shape != noise.shape:
        raise ValueError(f"x {tuple(x.shape)} and noise {tuple(noise.shape)} must have the same shape")
    if x.ndim < 3 or tuple(mask.shape) != tuple(x.shape[-3:]):
        raise ValueError(f"mask {tuple(mask.shape)} must be the (t, h, w) of x {tuple(x.shape)}")
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    L = torch.fft.ifftshift(mask.to(x.device, dtype), dim=_DIMS)  # to unshifted order, once
    H = torch.sqrt(torch.clamp(1 - L**2, min=0)) if variance_preserving else 1 - L
    X = torch.fft.fftn(x.to(dtype), dim=_DIMS)
    N = torch.fft.fftn(noise.to(dtype), dim=_DIMS)
    out = torch.fft.ifftn(X * L + N * H, dim=_DIMS)
    if part == "real":
        return out.real
    if part in ("+", "-"):
        return out.real + out.imag if part == "+" else out.real - out.imag
    raise ValueError(f"part={part!r}: use 'real', '+' or '-'")


def noise_variance(mask: torch.Tensor, *, variance_preserving: bool = False) -> float:
    """Variance of ``freq_mix`` of two independent unit white noises: the mean of ``L² + H²``."""
    L = mask.double()
    H2 = (1 - L**2).clamp(min=0) if variance_preserving else (1 - L) ** 2
    return float((L**2 + H2).mean())


def variance_loss_db(mask: torch.Tensor, *, variance_preserving: bool = False) -> float:
    """How much noise variance the mix loses, in dB (0 for variance-preserving or binary masks)."""
    loss = -10 * math.log10(noise_variance(mask, variance_preserving=variance_preserving))
    return round(loss, 9) + 0.0  # a binary mask's float32 rounding (±1e-7 dB) and −0.0 print as 0
