"""Priors: the noise each pass of :func:`freqscope.freeinit.sample` starts from, one object per prior.

A prior is a :class:`Prior`, a dataclass whose fields are its options, each default written once, there.
It draws pass 0's noise (:meth:`Prior.first_noise`) and, if it ``iterates``, re-initialises pass k ≥ 1 from
the pass before (:meth:`Prior.reinit`). Whatever else it needs while sampling comes through hooks that every
prior has: a check of its options against the scheduler, an observer of the passes it re-initialises from,
its default re-noise level, its entries in ``SamplingResult.info``. All priors are in one table,
:data:`PRIORS`; :func:`register_prior` adds one from anywhere (the ``freeinit`` command's ``--prior``
choices and prior options are read from it)::

    @register_prior
    @dataclass
    class Scaled(Prior):
        name = "scaled"
        scale: float = field(default=0.5, metadata={"help": "standard deviation of the noise"})

        def first_noise(self, shape, ctx):
            return self.scale * gaussian_noise(shape, generator=ctx.generator, device=ctx.device)

>>> make_prior("freqprior", mid_step=400, pyoco_alpha=2.0).info()  # options of other priors are left out
{'mid_step': 400, 'ratio': 0.8}
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, ClassVar

import torch

from .bands import BandSet, make_bands
from .filters import freq_mix
from .gap import training_power
from .noise import gaussian_noise, offset_noise, pyoco_mixed_noise, pyoco_progressive_noise, spectrum_matched_noise
from .noise_schedule import vp_alpha_bar
from .scheduler_adapter import start_index_for, training_schedule

__all__ = [
    "PRIORS",
    "Prior",
    "InitContext",
    "ReinitContext",
    "FreeInit",
    "FreqPrior",
    "FreqPriorTail",
    "PyocoMixed",
    "PyocoProgressive",
    "Offset",
    "Spectrum",
    "MidStepObserver",
    "register_prior",
    "make_prior",
    "prior_options",
    "freqprior_noise",
    "bands_on",
    "signature_default",
]


def freqprior_noise(
    z_t: torch.Tensor,
    mask: torch.Tensor,
    *,
    ratio: float,
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


def signature_default(fn: Callable, name: str):
    """The default of ``fn``'s keyword ``name``: a noise function's default lives once, in its signature."""
    return inspect.signature(fn).parameters[name].default


# ---- what a prior is given ----------------------------------------------------------------------------


@dataclass
class InitContext:
    """What pass 0's noise may use: the random source, the VP-equivalent level ᾱ of the pass's first step
    (``first_alpha_bar``) and the band power of clean latents (``clip_power``, where :func:`sample` has it)."""

    generator: torch.Generator | None
    device: torch.device | str
    first_alpha_bar: float
    clip_power: tuple[BandSet, torch.Tensor] | None = None


@dataclass
class ReinitContext:
    """What a re-initialisation may use: the previous pass's clean latent, the re-diffusion noise ``eps``,
    the start level ᾱ, the low-pass ``mask`` and the prior's observer of the previous pass (``observed``)."""

    latents: torch.Tensor
    eps: torch.Tensor
    alpha_bar: float
    mask: torch.Tensor
    generator: torch.Generator | None
    device: torch.device | str
    observed: Any = None


class Prior:
    """An initial-noise prior. A subclass is a dataclass whose fields are its options (a field's
    ``metadata["help"]`` says what it is; ``metadata["min"]`` / ``["max"]`` bound it); it sets ``name``,
    overrides :meth:`first_noise` (default: i.i.d. N(0, 1)) and, if it ``iterates``, :meth:`reinit`."""

    #: The name it is registered under (``info["prior"]``, the CLI's ``--prior``).
    name: ClassVar[str] = ""
    #: Whether passes k ≥ 1 re-initialise from the pass before (``num_iters`` passes); otherwise one pass.
    iterates: ClassVar[bool] = False
    #: Whether its re-initialisation mixes with the variance-preserving filter (``L``, ``√(1−L²)``).
    variance_preserving: ClassVar[bool] = False
    #: Whether pass 0 needs ``clip_power`` (the band power of clean latents).
    needs_clip_power: ClassVar[bool] = False
    #: Where passes k ≥ 1 re-noise when no level is given: the level of training timestep
    #: ``round(renoise_fraction·(N−1))``; None: the level :func:`~freqscope.freeinit.sample` chooses.
    renoise_fraction: ClassVar[float | None] = None

    def first_noise(self, shape: tuple[int, ...], ctx: InitContext) -> torch.Tensor:
        """The noise pass 0 starts from, VP-normalised, ``(b, c, t, h, w)``: i.i.d. N(0, 1)."""
        return gaussian_noise(shape, generator=ctx.generator, device=ctx.device)

    def reinit(self, r: ReinitContext) -> torch.Tensor:
        """The noise pass k ≥ 1 starts from, made from the pass before (iterating priors only)."""
        raise NotImplementedError(f"prior {self.name} runs one pass: it has no re-initialisation")

    def check(self, scheduler: Any) -> None:
        """Refuse options that do not suit ``scheduler``, before any work, naming the option."""

    def observer(
        self, scheduler: Any, levels: list[tuple[float, float, float]], start_index: int, init: torch.Tensor
    ) -> Callable[[dict], None] | None:
        """An observer of a pass that will be re-initialised from (``levels``: its grid's (t, a, s), started
        at ``start_index`` from ``init``); handed to :meth:`reinit` as ``observed``. None: nothing to keep."""
        return None

    def info(self) -> dict:
        """Its entries in ``SamplingResult.info``: its options."""
        return {f.name: getattr(self, f.name) for f in fields(self)} if is_dataclass(self) else {}


# ---- the priors ----------------------------------------------------------------------------------------


def _rediffuse_and_mix(r: ReinitContext, *, variance_preserving: bool) -> torch.Tensor:
    """Re-diffusion of the last result to the start level (VP-normalised), then frequency mixing with fresh noise."""
    z_t = math.sqrt(r.alpha_bar) * r.latents.float() + math.sqrt(1 - r.alpha_bar) * r.eps
    fresh = gaussian_noise(r.eps.shape, generator=r.generator, device=r.device)
    return freq_mix(z_t, fresh, r.mask, variance_preserving=variance_preserving)


@dataclass
class FreeInit(Prior):
    """FreeInit (Wu et al. 2024, Alg. 1): Gaussian noise, then the low frequencies of the re-diffused result
    with fresh high ones."""

    name: ClassVar[str] = "freeinit"
    iterates: ClassVar[bool] = True

    def reinit(self, r: ReinitContext) -> torch.Tensor:
        return _rediffuse_and_mix(r, variance_preserving=False)


class MidStepObserver:
    """FreqPrior: keeps a pass's latent at ``mid_step`` (the sample entering that grid step), VP-normalised.
    The pass itself runs to the end (the official code's ``save_intermediate``): same trajectory, and a
    clean result per pass for the gap diagnostic."""

    def __init__(
        self, levels: list[tuple[float, float, float]], alpha_bar_mid: float, start_index: int, init: torch.Tensor
    ) -> None:
        self.m = start_index_for(levels, alpha_bar_mid)
        t_m, a_m, s_m = levels[self.m]
        self.start, self.norm = start_index, math.sqrt(a_m**2 + s_m**2)
        self.mid: dict = {"alpha_bar": vp_alpha_bar(a_m, s_m), "t": t_m}
        if self.m <= start_index:  # the pass starts at or below mid_step: its initial noise is that latent
            self.mid["z"] = init
        self.device = init.device

    def __call__(self, d: dict) -> None:
        if d["stage"] == "step" and d["i"] == self.m - self.start - 1:
            self.mid["z"] = d["x"].float().to(self.device) / self.norm


@dataclass
class FreqPrior(Prior):
    """FreqPrior as published (fudan-zvg/FreqPrior): each pass's latent at training timestep ``mid_step``,
    diffused on to the start level, blended with fresh noise (``ratio``) and filtered variance-preservingly
    (:func:`freqprior_noise`); every pass runs the whole grid. Defaults: scripts/animate_with_freqprior.py."""

    name: ClassVar[str] = "freqprior"
    iterates: ClassVar[bool] = True
    variance_preserving: ClassVar[bool] = True

    mid_step: int = field(default=321, metadata={"help": "timestep carried to the next pass", "min": 0})
    ratio: float = field(default=0.8, metadata={"help": "weight of the diffused latent against fresh noise"})

    def check(self, scheduler: Any) -> None:
        last = training_schedule(scheduler).num_train_timesteps - 1
        if not 0 <= self.mid_step <= last:
            raise ValueError(f"mid_step={self.mid_step}: must be a training timestep in [0, {last}]")
        if not 0 <= self.ratio <= 1:
            raise ValueError(f"ratio={self.ratio}: FreqPrior's blend weight must lie in [0, 1]")

    def observer(self, scheduler, levels, start_index, init) -> MidStepObserver:
        # The latent at mid_step is carried to the next pass; mid_step is mapped onto the grid as a level.
        alpha_bar_mid = float(training_schedule(scheduler).vp_alpha_bar[self.mid_step])
        return MidStepObserver(levels, alpha_bar_mid, start_index, init)

    def reinit(self, r: ReinitContext) -> torch.Tensor:
        """The latent at mid_step diffused on to the start level (its forward process from ᾱ_mid to ᾱ_T)."""
        mid = r.observed.mid
        ratio = r.alpha_bar / mid["alpha_bar"]
        z_t = math.sqrt(ratio) * mid["z"] + math.sqrt(1 - ratio) * r.eps
        return freqprior_noise(z_t, r.mask, ratio=self.ratio, generator=r.generator, device=r.device)


@dataclass
class FreqPriorTail(Prior):
    """Our earlier FreqPrior variant: as FreeInit with the variance-preserving filter, re-noising at the
    level of training timestep ``0.8·(N−1)`` (our default) and sampling only the tail of the grid from there."""

    name: ClassVar[str] = "freqprior-tail"
    iterates: ClassVar[bool] = True
    variance_preserving: ClassVar[bool] = True
    renoise_fraction: ClassVar[float | None] = 0.8

    def reinit(self, r: ReinitContext) -> torch.Tensor:
        return _rediffuse_and_mix(r, variance_preserving=True)


_PYOCO_ALPHA = "PYoCo's α: the noise's correlation between frames"


@dataclass
class PyocoMixed(Prior):
    """PYoCo mixed noise (Ge et al. 2023, Eq. 3), one pass."""

    name: ClassVar[str] = "pyoco-mixed"

    pyoco_alpha: float = field(default=signature_default(pyoco_mixed_noise, "alpha"), metadata={"help": _PYOCO_ALPHA})

    def first_noise(self, shape: tuple[int, ...], ctx: InitContext) -> torch.Tensor:
        return pyoco_mixed_noise(shape, alpha=self.pyoco_alpha, generator=ctx.generator, device=ctx.device)


@dataclass
class PyocoProgressive(Prior):
    """PYoCo progressive noise (Ge et al. 2023, Eq. 4), one pass."""

    name: ClassVar[str] = "pyoco-progressive"

    pyoco_alpha: float = field(
        default=signature_default(pyoco_progressive_noise, "alpha"), metadata={"help": _PYOCO_ALPHA}
    )

    def first_noise(self, shape: tuple[int, ...], ctx: InitContext) -> torch.Tensor:
        return pyoco_progressive_noise(shape, alpha=self.pyoco_alpha, generator=ctx.generator, device=ctx.device)


@dataclass
class Offset(Prior):
    """Offset noise (Guttenberg 2023), one pass."""

    name: ClassVar[str] = "offset"

    offset_strength: float = field(
        default=signature_default(offset_noise, "strength"),
        metadata={"help": "standard deviation of the offset shared by every frame and pixel"},
    )

    def first_noise(self, shape: tuple[int, ...], ctx: InitContext) -> torch.Tensor:
        return offset_noise(shape, strength=self.offset_strength, generator=ctx.generator, device=ctx.device)


@dataclass
class Spectrum(Prior):
    """Gaussian noise with training z's expected power in every band at the level of the pass's first step
    (:func:`~freqscope.noise.spectrum_matched_noise`), one pass; needs the clip's band power."""

    name: ClassVar[str] = "spectrum"
    needs_clip_power: ClassVar[bool] = True

    def first_noise(self, shape: tuple[int, ...], ctx: InitContext) -> torch.Tensor:
        if ctx.clip_power is None:
            raise ValueError("prior=spectrum needs clip_power=(bands, P)")
        bands, P = bands_on(ctx.clip_power[0], shape), ctx.clip_power[1]
        power = training_power(P.float().to(ctx.device), ctx.first_alpha_bar)[bands.labels.to(ctx.device)]
        return spectrum_matched_noise(shape, power, generator=ctx.generator, device=ctx.device)


# ---- the registry --------------------------------------------------------------------------------------

#: Every prior by name; adding one is one class and one entry (or :func:`register_prior`).
PRIORS: dict[str, type[Prior]] = {
    p.name: p for p in (FreeInit, FreqPrior, FreqPriorTail, PyocoMixed, PyocoProgressive, Offset, Spectrum)
}


def register_prior(cls: type[Prior]) -> type[Prior]:
    """Register the prior class ``cls`` under its ``name`` (replacing one of that name); a class decorator."""
    if not (isinstance(cls, type) and issubclass(cls, Prior)):
        raise ValueError(f"`prior` {cls!r}: a prior is a subclass of freqscope.priors.Prior")
    if not (isinstance(cls.name, str) and cls.name):
        raise ValueError(f"`prior` {cls.__name__}: set its name, the one it is chosen by")
    PRIORS[cls.name] = cls
    return cls


def prior_options(cls: type[Prior]) -> tuple:
    """The options of the prior class ``cls``: its dataclass fields (none for a prior without options)."""
    return fields(cls) if is_dataclass(cls) else ()


def make_prior(prior: str | Prior, **options: Any) -> Prior:
    """The prior named ``prior`` with those of ``options`` that are its own (the others, other priors'
    options, are left out: one run may compare several priors); a :class:`Prior` object as it is."""
    if isinstance(prior, Prior):
        return prior
    if prior not in PRIORS:
        raise ValueError(f"unknown prior {prior!r}; choose one of {', '.join(PRIORS)}")
    cls = PRIORS[prior]
    return cls(**{f.name: options[f.name] for f in prior_options(cls) if f.name in options})
