"""The noise each pass of :func:`freqscope.freeinit.sample` starts from, one function per prior.

``INITIAL_NOISE``: the noise pass 0 starts from (one signature, ``(shape, PriorContext) → noise``);
``REINIT``: the re-initialisation of pass k ≥ 1 from the previous pass's result (``Reinit → noise``) for the
iterative priors. A new prior is one function and one registry line.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .bands import BandSet, make_bands
from .filters import freq_mix
from .gap import training_power
from .priors import gaussian_noise, offset_noise, pyoco_mixed_noise, pyoco_progressive_noise, spectrum_matched_noise

__all__ = [
    "PRIORS",
    "ITERATIVE",
    "INITIAL_NOISE",
    "REINIT",
    "PriorContext",
    "Reinit",
    "freqprior_noise",
    "bands_on",
    "signature_default",
    "FREQPRIOR_MID_STEP",
    "FREQPRIOR_RATIO",
]

#: FreqPrior's published defaults (scripts/animate_with_freqprior.py): the training timestep whose latent is
#: carried to the next pass, and the weight of the diffused latent against fresh noise.
FREQPRIOR_MID_STEP = 321
FREQPRIOR_RATIO = 0.8


def freqprior_noise(
    z_t: torch.Tensor,
    mask: torch.Tensor,
    *,
    ratio: float = FREQPRIOR_RATIO,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """FreqPrior's re-initialisation of a diffused latent ``z_t`` (fudan-zvg/FreqPrior, freqprior pipeline):
    two blends ``x_j = (ratio·z_t + √(1−ratio²)·η_j) / √(1+ratio²)``, each low-passed against fresh noise
    ``y_j`` with the variance-preserving filter (``L``, ``√(1−L²)``), the first taken as real + imaginary
    part of the inverse FFT, the second as real − imaginary, averaged as ``(part₁ + part₂)/√2``.
    Noise is drawn in the order η₁, η₂, y₁, y₂."""
    eta1, eta2, y1, y2 = (gaussian_noise(z_t.shape, generator=generator, device=device) for _ in range(4))
    c, n = ratio / math.sqrt(1 + ratio**2), math.sqrt(1 - ratio**2) / math.sqrt(1 + ratio**2)
    x1, x2 = c * z_t + n * eta1, c * z_t + n * eta2
    part1 = freq_mix(x1, y1, mask, variance_preserving=True, part="+")
    part2 = freq_mix(x2, y2, mask, variance_preserving=True, part="-")
    return (part1 + part2) / math.sqrt(2)


def bands_on(bands: BandSet, shape: tuple[int, ...]) -> BandSet:
    """``bands`` on the latent grid ``shape[-3:]`` (the same edges; a pipeline may pad frames)."""
    if tuple(bands.shape) == tuple(shape[-3:]):
        return bands
    edges = tuple(b.hi for b in bands.bands[1:-1])
    t, h, w = shape[-3:]
    return make_bands((t, h, w), edges, decomposition=bands.decomposition, time_scale=bands.time_scale)


# ---- priors: the noise pass 0 starts from, one signature each --------------------------------------------


@dataclass
class PriorContext:
    """What a prior may use to draw pass 0's noise: the random source, the options of the peers and the
    VP-equivalent level ᾱ of the pass's first step (``first_alpha_bar``)."""

    generator: torch.Generator | None
    device: torch.device | str
    first_alpha_bar: float
    clip_power: tuple[BandSet, torch.Tensor] | None = None
    pyoco_alpha: float | None = None
    offset_strength: float | None = None


def signature_default(fn: Callable, name: str):
    """The default of ``fn``'s keyword ``name``: each prior's default lives once, in its signature."""
    return inspect.signature(fn).parameters[name].default


def _given(**kw) -> dict:
    return {k: v for k, v in kw.items() if v is not None}


def _gaussian_prior(shape: tuple[int, ...], ctx: PriorContext) -> torch.Tensor:
    """i.i.d. N(0, 1): plain sampling, and pass 0 of FreeInit and FreqPrior."""
    return gaussian_noise(shape, generator=ctx.generator, device=ctx.device)


def _pyoco_mixed_prior(shape: tuple[int, ...], ctx: PriorContext) -> torch.Tensor:
    """PYoCo mixed noise (Ge et al. 2023, Eq. 3)."""
    return pyoco_mixed_noise(shape, **_given(alpha=ctx.pyoco_alpha), generator=ctx.generator, device=ctx.device)


def _pyoco_progressive_prior(shape: tuple[int, ...], ctx: PriorContext) -> torch.Tensor:
    """PYoCo progressive noise (Ge et al. 2023, Eq. 4)."""
    kw = _given(alpha=ctx.pyoco_alpha)
    return pyoco_progressive_noise(shape, **kw, generator=ctx.generator, device=ctx.device)


def _offset_prior(shape: tuple[int, ...], ctx: PriorContext) -> torch.Tensor:
    """Offset noise (Guttenberg 2023)."""
    kw = _given(strength=ctx.offset_strength)
    return offset_noise(shape, **kw, generator=ctx.generator, device=ctx.device)


def _spectrum_prior(shape: tuple[int, ...], ctx: PriorContext) -> torch.Tensor:
    """Gaussian noise with training z's expected power in every band at the level of the pass's first step."""
    if ctx.clip_power is None:
        raise ValueError("prior=spectrum needs clip_power=(bands, P)")
    bands, P = bands_on(ctx.clip_power[0], shape), ctx.clip_power[1]
    power = training_power(P.float().to(ctx.device), ctx.first_alpha_bar)[bands.labels.to(ctx.device)]
    return spectrum_matched_noise(shape, power, generator=ctx.generator, device=ctx.device)


#: The noise pass 0 starts from, per prior; a new prior is one function of this signature and one line here.
#: freeinit: re-diffuse the last result, keep its low frequencies (Wu et al. 2024); freqprior: FreqPrior as
#: published (fudan-zvg/FreqPrior): re-diffuse the latent at ``mid_step`` to the last timestep, blend with
#: fresh noise (``ratio``), variance-preserving filter, full grid; freqprior-tail: our earlier variant,
#: re-noise the clean result at an intermediate level and sample only the tail (variance-preserving mixing);
#: pyoco-mixed / pyoco-progressive / offset: frame-correlated or offset initial noise, one pass;
#: spectrum: Gaussian noise with training z_T's expected power in every band (needs the clip's band power), one pass.
INITIAL_NOISE: dict[str, Callable[[tuple[int, ...], PriorContext], torch.Tensor]] = {
    "freeinit": _gaussian_prior,
    "freqprior": _gaussian_prior,
    "freqprior-tail": _gaussian_prior,
    "pyoco-mixed": _pyoco_mixed_prior,
    "pyoco-progressive": _pyoco_progressive_prior,
    "offset": _offset_prior,
    "spectrum": _spectrum_prior,
}


# ---- re-initialisation: the noise pass k ≥ 1 starts from, one signature each -----------------------------


@dataclass
class Reinit:
    """What a re-initialisation may use: the previous pass's clean latent, the re-diffusion noise ``eps``,
    the start level ᾱ, the low-pass ``mask``, FreqPrior's carried latent ``mid`` and blend ``ratio``."""

    latents: torch.Tensor
    eps: torch.Tensor
    alpha_bar: float
    mask: torch.Tensor
    generator: torch.Generator | None
    device: torch.device | str
    mid: dict = field(default_factory=dict)
    ratio: float = FREQPRIOR_RATIO


def _rediffuse_and_mix(r: Reinit, *, variance_preserving: bool) -> torch.Tensor:
    """Re-diffusion of the last result to the start level (VP-normalised), then frequency mixing with fresh noise."""
    z_t = math.sqrt(r.alpha_bar) * r.latents.float() + math.sqrt(1 - r.alpha_bar) * r.eps
    fresh = gaussian_noise(r.eps.shape, generator=r.generator, device=r.device)
    return freq_mix(z_t, fresh, r.mask, variance_preserving=variance_preserving)


def _freeinit_reinit(r: Reinit) -> torch.Tensor:
    """FreeInit (Wu et al. 2024, Alg. 1): low frequencies of the re-diffused result, high ones fresh."""
    return _rediffuse_and_mix(r, variance_preserving=False)


def _freqprior_tail_reinit(r: Reinit) -> torch.Tensor:
    """Our FreqPrior variant: as FreeInit, with the variance-preserving filter (``L``, ``√(1−L²)``)."""
    return _rediffuse_and_mix(r, variance_preserving=True)


def _freqprior_reinit(r: Reinit) -> torch.Tensor:
    """FreqPrior: the previous pass's latent at mid_step, diffused on to the start level (its forward process
    from ᾱ_mid to ᾱ_T), blended with fresh noise and filtered (:func:`freqprior_noise`)."""
    ratio = r.alpha_bar / r.mid["alpha_bar"]
    z_t = math.sqrt(ratio) * r.mid["z"] + math.sqrt(1 - ratio) * r.eps
    return freqprior_noise(z_t, r.mask, ratio=r.ratio, generator=r.generator, device=r.device)


#: The re-initialisation of the iterative priors; the others run one pass.
REINIT: dict[str, Callable[[Reinit], torch.Tensor]] = {
    "freeinit": _freeinit_reinit,
    "freqprior": _freqprior_reinit,
    "freqprior-tail": _freqprior_tail_reinit,
}
PRIORS = tuple(INITIAL_NOISE)
ITERATIVE = tuple(REINIT)
