"""A diffusion model with no weights: the exact MMSE denoiser of a stationary Gaussian video.

The video ``x`` has per-channel power spectrum ``S`` (here a real clip's own latent spectrum
``|F z0|²``), so its Fourier bins are independent Gaussians of variance ``S``. Noised as
``z = A·x + B·ε``, the posterior mean is a per-frequency Wiener gain,
``E[F x | z] = A·S / (A²·S + B²) · F z``. Sampling it from pure noise with DDIM shows the
training/inference gap exactly: the low bands come out with power ``S / (ᾱ_T S + 1 − ᾱ_T)``
instead of ``S``.
"""

from __future__ import annotations

from typing import Any

import torch

from .bands import fft3
from .noise import spectrum_matched_noise
from .scheduler_adapter import family, input_level

__all__ = ["GaussianVideoModel"]

_DIMS = (-3, -2, -1)


class GaussianVideoModel:
    """Exact denoiser of a stationary Gaussian video with power spectrum ``S`` of shape ``(c, t, h, w)``.

    ``model(z, t, scheduler)`` returns what ``scheduler`` expects (``epsilon``, ``v_prediction``,
    ``sample``, or the flow-matching velocity ``ε − x0``) for a model input ``z`` of shape
    ``(b, c, t, h, w)``.
    """

    def __init__(self, spectrum: torch.Tensor):
        if spectrum.ndim != 4:
            raise ValueError(f"spectrum must be (c, t, h, w), got shape {tuple(spectrum.shape)}")
        if not torch.isfinite(spectrum).all() or (spectrum < 0).any():
            raise ValueError("spectrum must be finite and non-negative")
        # A real video's spectrum is symmetric, S(f) = S(−f) (a periodogram |F z0|² already is):
        # symmetrise, so that sampling and denoising map real videos to real videos.
        S = spectrum.float()
        S_neg = torch.roll(torch.flip(S, dims=_DIMS), shifts=(1, 1, 1), dims=_DIMS)  # S at index (−k) mod N
        self.S = 0.5 * (S + S_neg)

    @classmethod
    def from_latent(cls, z0: torch.Tensor) -> GaussianVideoModel:
        """The spectrum of a clip's latent ``(b, c, t, h, w)``: ``|F z0|²`` per channel (mean over b)."""
        if z0.ndim != 5:
            raise ValueError(f"z0 must be (b, c, t, h, w), got shape {tuple(z0.shape)}")
        Z = fft3(z0)
        return cls((Z.real**2 + Z.imag**2).mean(dim=0))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.S.shape)

    def sample(self, batch: int = 1, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw videos from the model's data distribution: ``F⁻¹(√S · F ξ)``, ``(batch, c, t, h, w)``."""
        return spectrum_matched_noise((batch, *self.S.shape), self.S, generator=generator, device=self.S.device)

    def denoise(self, z: torch.Tensor, A: float, B: float) -> torch.Tensor:
        """Posterior mean ``E[x0 | z = A·x0 + B·ε]``."""
        Z = torch.fft.fftn(z.float(), dim=_DIMS, norm="ortho")
        gain = A * self.S / (A**2 * self.S + B**2)
        return torch.fft.ifftn(Z * gain.to(Z.device), dim=_DIMS, norm="ortho").real

    def __call__(self, z: torch.Tensor, t: Any, scheduler: Any) -> torch.Tensor:
        A, B = input_level(scheduler, t)
        x0 = self.denoise(z, A, B)
        if B == 0:
            eps = torch.zeros_like(x0)
        else:
            eps = (z.float() - A * x0) / B
        pred = getattr(scheduler.config, "prediction_type", "epsilon")
        if family(scheduler) == "flow":
            return (eps - x0).to(z.dtype)  # velocity dz/dσ
        if pred == "epsilon":
            return eps.to(z.dtype)
        if pred == "v_prediction":
            return (A * eps - B * x0).to(z.dtype)
        if pred == "sample":
            return x0.to(z.dtype)
        raise ValueError(f"prediction_type {pred!r} is not supported by the reference model")

    def ddim_gain(self, scheduler: Any, timesteps: list[int]) -> torch.Tensor:
        """Closed form of a deterministic DDIM pass with this model: per bin, ``z0 = G·z_start`` with
        ``G = Π (A'·A·S + B'·B) / (A²·S + B²)`` over the steps (diffusers' DDIMScheduler, η = 0).
        Returns ``G`` of shape ``(c, t, h, w)`` in FFT order."""
        ac = scheduler.alphas_cumprod.double()
        final = float(scheduler.final_alpha_cumprod)
        ratio = scheduler.config.num_train_timesteps // scheduler.num_inference_steps
        S = self.S.double()
        G = torch.ones_like(S)
        for t in timesteps:
            t = int(t)
            a_t = float(ac[t])
            prev = t - ratio
            a_p = float(ac[prev]) if prev >= 0 else final
            A, B, A2, B2 = a_t**0.5, (1 - a_t) ** 0.5, a_p**0.5, (1 - a_p) ** 0.5
            G = G * (A2 * A * S + B2 * B) / (A**2 * S + B**2)
        return G
