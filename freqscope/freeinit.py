"""FreeInit (Wu et al., ECCV 2024, Alg. 1) and its peers around any sampler, observed through a callback.

A *sampler* (:mod:`freqscope.samplers`) turns an initial noise into a clean latent: :class:`DenoiserSampler`
(a model and a diffusers scheduler, e.g. the weight-free :class:`~freqscope.reference.GaussianVideoModel`)
or :class:`PipelineSampler` (any diffusers video pipeline whose call takes ``latents=``). The noise each pass
starts from is the prior's (:mod:`freqscope.priors`: one object per prior, with its options, registered
in :data:`PRIORS`); FreeInit's own options are :class:`FreeInitOptions`. Initial noises live
in the *VP-normalised* space (unit-variance noise, ``z = √ᾱ·z0 + √(1−ᾱ)·ε``); each sampler maps them into
its scheduler's own sample space, so schedulers with ``init_noise_sigma ≠ 1`` (Euler) and flow matching
are handled correctly.

``num_iters`` counts *total* sampling passes, as in the official code and diffusers: ``num_iters=1`` is
plain sampling, ``num_iters=3`` is one plain pass and two re-initialised ones.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import torch

from .bands import BandSet
from .filters import FILTER_METHODS, lowpass_filter
from .gap import keep_reinitialising, low_band_gap_db
from .noise import gaussian_noise
from .noise_schedule import vp_alpha_bar
from .priors import (
    PRIORS,
    InitContext,
    Prior,
    ReinitContext,
    bands_on,
    freqprior_noise,
    make_prior,
    prior_options,
    register_prior,
)
from .samplers import Callback, DenoiserSampler, PipelineSampler
from .scheduler_adapter import family, start_index_for, training_schedule

__all__ = [
    "PRIORS",
    "Prior",
    "register_prior",
    "FreeInitOptions",
    "sample_options",
    "RenoiseLevel",
    "renoise_level",
    "observers",
    "Callback",
    "RENOISE",
    "PassResult",
    "SamplingResult",
    "DenoiserSampler",
    "PipelineSampler",
    "sample",
    "freqprior_noise",
    "MIN_RENOISE_ALPHA_BAR",
    "RENOISE_LEVEL_RULE",
]

RENOISE = ("reuse", "fresh")
#: Where re-diffusing to the last timestep carries no signal (zero terminal SNR, flow matching), re-noise
#: from the last timestep whose VP-equivalent ᾱ is at least this: SD's terminal ᾱ, the level FreeInit
#: was designed at.
MIN_RENOISE_ALPHA_BAR = 0.0046600985
#: The re-noise level when neither ``diffuse_timestep`` nor ``renoise_alpha_bar`` is given, in words.
RENOISE_LEVEL_RULE = "the first inference step's level; SD's terminal level where that is 0 or σ-scaled"


@dataclass(frozen=True)
class FreeInitOptions:
    """FreeInit's own options, shared by every iterating prior: the low-pass filter of the frequency mixing,
    the re-noise of passes k ≥ 1 (see :func:`sample`), coarse-to-fine steps and adaptive FreeInit's stop."""

    method: str = "butterworth"  # low-pass filter, one of filters.FILTER_METHODS
    d_s: float = 0.25  # spatial stop frequency (Nyquist = 1)
    d_t: float = 0.25  # temporal stop frequency
    order: int = 4  # Butterworth order
    renoise: str = "reuse"  # re-diffusion noise: the pass-0 noise again (official) or "fresh"
    diffuse_timestep: int | None = None  # re-diffuse to exactly this training timestep's level
    renoise_alpha_bar: float | None = None  # or re-noise at this VP-equivalent ᾱ (neither: RENOISE_LEVEL_RULE)
    fast_sampling: bool = False  # coarse to fine: pass k of n runs (k+1)/n of the steps
    gap_tol: float = 1.0  # num_iters="auto": stop once the low-band gap is within this many dB
    max_iters: int = 5  # num_iters="auto": at most this many passes


@dataclass
class PassResult:
    index: int
    init: torch.Tensor  # (b, c, t, h, w) initial noise, VP-normalised
    latents: torch.Tensor  # (b, c, t, h, w) generated clean latent
    start_timestep: float  # first timestep this pass was sampled from
    alpha_bar: float  # VP-equivalent ᾱ of the start level (what training z at that level looks like)
    num_inference_steps: int
    start_index: int = 0  # grid index the pass started from: it ran num_inference_steps − start_index steps


@dataclass
class SamplingResult:
    passes: list[PassResult]
    info: dict  # method, filter, re-diffusion timestep, notes
    mask: torch.Tensor  # (t, h, w) the low-pass filter of the re-initialisations, centred order
    prior: Prior  # the prior that sampled, with its options

    @property
    def latents(self) -> torch.Tensor:
        return self.passes[-1].latents


def sample_options(prior: str | Prior, options: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`sample`'s keywords for ``prior`` from one flat mapping of options, as a job or the CLI gathers
    them for several priors: a prior's own options make the prior (:func:`~freqscope.priors.make_prior`;
    the other priors' are left out), :class:`FreeInitOptions`' fields make ``freeinit`` and the rest pass on.

    >>> sample_options("freqprior", {"num_iters": 2, "ratio": 0.5, "d_s": 0.3, "pyoco_alpha": 2.0})
    {'prior': FreqPrior(mid_step=321, ratio=0.5), 'freeinit': FreeInitOptions(method='butterworth', \
d_s=0.3, d_t=0.25, order=4, renoise='reuse', diffuse_timestep=None, renoise_alpha_bar=None, \
fast_sampling=False, gap_tol=1.0, max_iters=5), 'num_iters': 2}
    """
    shared = {f.name for f in fields(FreeInitOptions)}
    of_priors = {f.name for cls in PRIORS.values() for f in prior_options(cls)}
    clash = of_priors & (shared | set(inspect.signature(sample).parameters))
    if clash:
        raise ValueError(f"`prior` options {sorted(clash)} are sample()'s or FreeInit's own: rename them")
    rest = {k: v for k, v in options.items() if k not in shared | of_priors}
    freeinit = FreeInitOptions(**{k: v for k, v in options.items() if k in shared})
    return {"prior": make_prior(prior, **options), "freeinit": freeinit, **rest}


# ---- the steps of sample() -------------------------------------------------------------------------------


def _check_args(
    prior: Prior,
    num_iters: int | str,
    o: FreeInitOptions,
    *,
    clip_power,
    num_inference_steps: int,
    shape: tuple,
) -> None:
    """Every argument :func:`sample` can check before any work, each error naming its parameter."""
    if o.renoise not in RENOISE:
        raise ValueError(f"renoise={o.renoise!r}: use 'reuse' (official) or 'fresh'")
    adaptive = num_iters == "auto"
    if adaptive and not (isinstance(o.max_iters, int) and o.max_iters >= 1):
        raise ValueError(f"max_iters={o.max_iters}: must be a whole number >= 1")
    if adaptive and not o.gap_tol > 0:
        raise ValueError(f"gap_tol={o.gap_tol}: must be a positive number of dB")
    if not adaptive and not (isinstance(num_iters, int) and num_iters >= 1):
        raise ValueError(
            f"num_iters={num_iters}: must be a whole number >= 1 (it counts all sampling passes) or 'auto'"
        )
    if ((adaptive and prior.iterates) or prior.needs_clip_power) and clip_power is None:
        raise ValueError(
            f"{'num_iters=auto' if adaptive and prior.iterates else f'prior={prior.name}'} needs "
            "clip_power=(bands, P): the band power of clean latents to measure the gap against"
        )
    if not (isinstance(num_inference_steps, int) and num_inference_steps >= 1):
        raise ValueError(f"num_inference_steps={num_inference_steps}: must be a whole number >= 1")
    if o.method not in FILTER_METHODS:
        raise ValueError(f"unknown filter method {o.method!r}; choose one of {', '.join(FILTER_METHODS)}")
    if len(shape) != 5:
        raise ValueError(f"shape must be (b, c, t, h, w), got {tuple(shape)}")
    if o.renoise_alpha_bar is not None and not (0 < o.renoise_alpha_bar < 1):
        raise ValueError(f"renoise_alpha_bar={o.renoise_alpha_bar}: a VP-equivalent ᾱ must lie in (0, 1)")
    if o.diffuse_timestep is not None and o.renoise_alpha_bar is not None:
        raise ValueError("give diffuse_timestep or renoise_alpha_bar, not both")


@dataclass
class RenoiseLevel:
    """Where passes k ≥ 1 re-noise, as a VP-equivalent ᾱ (``None``: the family's default). ``exact``:
    re-diffuse to exactly this level (a training timestep ``t_star``, as the official code) and start from
    the first grid step at or below it; otherwise re-diffuse to the level of that grid step itself."""

    target: float | None
    exact: bool = False
    t_star: int | None = None

    def on_grid(self, levels: list[tuple[float, float, float]], fam: str) -> tuple[int, float]:
        """(start index, ᾱ re-diffused to) of a pass with the grid ``levels``."""
        ab = self.target
        if ab is None:  # the family's default: the first step's own level, or SD's terminal one
            ab0 = vp_alpha_bar(*levels[0][1:])
            ab = ab0 if fam == "vp" and ab0 > 1e-8 else MIN_RENOISE_ALPHA_BAR
        i = start_index_for(levels, ab)
        return i, (ab if self.exact else vp_alpha_bar(*levels[i][1:]))


def renoise_level(
    scheduler: Any,
    prior: Prior,
    *,
    num_passes: int,
    diffuse_timestep: int | None,
    renoise_alpha_bar: float | None,
    notes: list[str],
) -> RenoiseLevel:
    """The re-noise level of passes k ≥ 1 (see :func:`sample`; ``prior`` may re-noise at its own
    ``renoise_fraction`` of the training timesteps by default); a zero-SNR timestep falls back to
    ``MIN_RENOISE_ALPHA_BAR``, said in ``notes``."""
    fraction = prior.renoise_fraction if renoise_alpha_bar is None else None
    if diffuse_timestep is None and fraction is None:
        return RenoiseLevel(renoise_alpha_bar)
    train = training_schedule(scheduler)
    N = train.num_train_timesteps
    t_star = diffuse_timestep if diffuse_timestep is not None else round((fraction or 0.0) * (N - 1))
    if not 0 <= t_star < N:
        raise ValueError(f"diffuse_timestep={t_star}: must be a training timestep in [0, {N - 1}]")
    level = RenoiseLevel(float(train.vp_alpha_bar[t_star]), diffuse_timestep is not None, t_star)
    if prior.iterates and num_passes > 1 and float(train.vp_alpha_bar[t_star]) < 1e-8:
        notes.append(
            f"{train.name} has zero SNR at diffuse_timestep={t_star}, where re-diffusion returns the "
            f"initial noise unchanged; re-noising at ᾱ={MIN_RENOISE_ALPHA_BAR} instead"
        )
        level = RenoiseLevel(MIN_RENOISE_ALPHA_BAR, False, t_star)
    return level


def _midway_note(scheduler, fam: str, levels, start_index: int, level: RenoiseLevel, notes: list[str]) -> None:
    """Say once that a default re-noise level made a pass start midway through the grid."""
    if not start_index or level.target is not None or any("re-noising from t=" in n for n in notes):
        return
    t, a, s = levels[start_index]
    notes.append(
        f"{type(scheduler).__name__} ({fam}) starts its grid at ᾱ={vp_alpha_bar(*levels[0][1:]):.3g}; "
        f"re-noising from t={t:g} (ᾱ={vp_alpha_bar(a, s):.4g}, intended {MIN_RENOISE_ALPHA_BAR}) "
        "and sampling the rest of the grid"
    )


def observers(*callbacks: Callback | None) -> Callback | None:
    """One callback calling each given one in turn (None if none is given)."""
    given = [c for c in callbacks if c is not None]
    if len(given) <= 1:
        return given[0] if given else None

    def each(d: dict) -> None:
        for c in given:
            c(d)

    return each


def _adaptive_stop(passes, init, alpha_bar, clip_power, shape, gap_tol: float, notes: list[str]) -> bool:
    """Adaptive FreeInit: whether to stop before this candidate pass (:func:`~freqscope.gap.keep_reinitialising`
    on the low-band gap of the last noise sampled and of the candidate), said in ``notes``."""
    bands, P = bands_on(clip_power[0], shape), clip_power[1]
    gaps = [low_band_gap_db(passes[-1].init, bands, P, passes[-1].alpha_bar)]  # the rule reads the last gap only
    candidate = low_band_gap_db(init, bands, P, alpha_bar)
    if keep_reinitialising(gaps, candidate, tol=gap_tol):
        return False
    notes.append(
        f"adaptive: stopped after {len(passes)} pass(es): low-band gap {gaps[-1]:.2f} dB, next pass's "
        f"{candidate:.2f} dB (tolerance {gap_tol} dB)"
    )
    return True


def _info(
    prior: Prior, passes, notes, fam, scheduler, level: RenoiseLevel, o: FreeInitOptions, steps: int, adaptive: bool
) -> dict:
    """``SamplingResult.info``: what was run, in a fixed key order (it goes into the JSON report), then the
    prior's own entries (its options)."""
    info = {
        "prior": prior.name,
        "num_iters": len(passes),
        "adaptive": {"gap_tol": o.gap_tol, "max_iters": o.max_iters} if adaptive else None,
        "model_calls": sum(p.num_inference_steps - p.start_index for p in passes),
        "num_inference_steps": steps,
        "filter": {"method": o.method, "d_s": o.d_s, "d_t": o.d_t, "order": o.order},
        "renoise": o.renoise,
        "diffuse_timestep": level.t_star,
        "renoise_alpha_bar": level.target,
        "scheduler_family": fam,
        "fast_sampling": o.fast_sampling,
        "schedule": type(scheduler).__name__,
        "notes": notes,
    }
    return {**info, **prior.info()}


def sample(
    sampler: DenoiserSampler | PipelineSampler,
    shape: tuple[int, ...],
    *,
    prior: str | Prior = "freeinit",
    num_iters: int | str = 3,
    num_inference_steps: int = 50,
    freeinit: FreeInitOptions = FreeInitOptions(),
    clip_power: tuple[BandSet, torch.Tensor] | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    callback: Callback | None = None,
) -> SamplingResult:
    """Sample with FreeInit or a peer; every pass is returned with its initial noise.

    ``prior`` is a registered name (:data:`PRIORS`, with its default options) or a prior object with its
    options (:mod:`freqscope.priors`, e.g. ``FreqPrior(mid_step=400)``). Pass 0 samples from the
    prior's noise. Passes k ≥ 1 of an iterating prior start from its re-initialisation of the last pass; a
    single-pass prior runs one pass, whatever ``num_iters``. FreeInit re-diffuses the last result with
    the pass-0 noise (``renoise="reuse"``, the official behaviour) or a fresh draw (``"fresh"``), keeps its
    low frequencies under the ``method`` filter and refills the high ones with fresh Gaussian noise.
    ``freqprior`` (as published) carries each pass's latent at training timestep ``mid_step`` (mapped onto
    the grid as a level) to the next, diffuses it on to the start level with the initial noise, blends it
    with fresh noise (``ratio``) and filters it (:func:`freqprior_noise`); every pass runs the whole grid
    (the official code's ``save_intermediate``: the same trajectory, and a clean result per pass).
    ``freqprior-tail`` re-noises the clean result at the level of training timestep ``0.8·(N−1)`` with
    variance-preserving mixing and samples from there. ``freeinit`` holds FreeInit's own options, shared by
    every iterating prior (:class:`FreeInitOptions`: filter, re-noise, ``fast_sampling``, adaptive stop).

    Where a pass re-noises is a *noise level* (VP-equivalent ᾱ), mapped onto the grid the sampler runs
    (:mod:`freqscope.scheduler_adapter`): the pass starts at the first grid step at or below that noise and is
    re-diffused to exactly that step's level, so ``passes[k].start_timestep`` and ``.alpha_bar`` agree.
    Default level: for VP schedules, the first inference step's own (DDIM 50 steps, leading: t = 981);
    for flow matching, zero terminal SNR and σ-scaled schedules, ``MIN_RENOISE_ALPHA_BAR`` (SD's terminal
    ᾱ), said in ``info["notes"]`` and a warning when the pass then starts midway. ``renoise_alpha_bar``
    sets another level; ``diffuse_timestep`` re-diffuses to exactly that training timestep's level and runs
    from the first grid step at or below it (``diffuse_timestep=N−1`` is the official code and diffusers'
    ``enable_free_init``; with ``freqprior``, the official FreqPrior).

    ``num_iters="auto"`` is adaptive FreeInit: before each re-initialised pass the candidate noise's low-band
    gap (:func:`~freqscope.gap.low_band_gap_db`: the band ``(0, e₁)``, against ``clip_power``) is
    measured, and the pass runs only while the last gap is above ``gap_tol`` dB, the candidate's is smaller
    and does not overshoot below ``−gap_tol`` (:func:`~freqscope.gap.keep_reinitialising`); at most
    ``max_iters`` passes. ``prior="spectrum"``: one pass from :func:`~freqscope.noise.spectrum_matched_noise`
    with training ``z``'s expected band power at the first step's level. Both need ``clip_power = (bands,
    P_b)``, the band power of clean latents (the reference clip's, or a dataset mean).

    ``callback(d)`` observes every pass: ``{"stage": "init", "pass", "x"}`` (the pass's initial noise),
    at every step ``{"stage": "step", "pass", "i", "t", "sigma", "x", "denoised"}`` and ``{"stage": "end",
    "pass", "x", "init", "alpha_bar", "start_timestep"}`` (``x``: the pass's clean latent). At a step, ``x``
    is the sample after step ``i``; ``t`` and ``sigma`` (k-diffusion's σ = s/a) are the level the step
    started from; ``denoised`` is the model's clean estimate there (:class:`DenoiserSampler`), or None where
    the sampler cannot see it (:class:`PipelineSampler`: a pipeline's step callback exposes latents only).
    Diagnostics such as :class:`~freqscope.freeinit_job.GapObserver` plug in here.
    """
    prior, o = make_prior(prior), freeinit
    _check_args(prior, num_iters, o, clip_power=clip_power, num_inference_steps=num_inference_steps, shape=shape)
    # The single-pass rule: a prior that does not iterate runs one pass.
    adaptive = num_iters == "auto" and prior.iterates
    n_passes = (o.max_iters if adaptive else int(num_iters)) if prior.iterates else 1
    t, h, w = shape[-3:]
    mask = lowpass_filter((t, h, w), method=o.method, d_s=o.d_s, d_t=o.d_t, order=o.order, device=device)
    scheduler, fam = sampler.scheduler, family(sampler.scheduler)
    notes: list[str] = []
    level = renoise_level(
        scheduler,
        prior,
        num_passes=n_passes,
        diffuse_timestep=o.diffuse_timestep,
        renoise_alpha_bar=o.renoise_alpha_bar,
        notes=notes,
    )
    prior.check(scheduler)

    passes: list[PassResult] = []
    eps0 = torch.empty(0)  # pass 0's noise, set by pass 0
    observed = None  # the prior's observer of the last pass (FreqPrior: its latent at mid_step)
    for k in range(n_passes):
        # Steps of this pass: all of them, or coarse to fine with fast_sampling.
        steps = max(1, int(num_inference_steps / n_passes * (k + 1))) if o.fast_sampling else num_inference_steps
        # This pass's grid: (t, a, s) of every step, as the sampler will run it.
        levels = sampler.grid(steps, shape)
        if k == 0:
            # Pass 0 starts at the top of the grid from the prior's own noise.
            ctx = InitContext(generator, device, vp_alpha_bar(*levels[0][1:]), clip_power)
            init, start_index, alpha_bar = prior.first_noise(shape, ctx).float(), 0, None
            eps0 = init
        else:
            # Later passes start at the re-noise level, mapped onto this pass's grid.
            start_index, alpha_bar = level.on_grid(levels, fam)
            _midway_note(scheduler, fam, levels, start_index, level, notes)
            # The re-diffusion noise: the pass-0 noise again (official) or a fresh draw.
            eps = eps0 if o.renoise == "reuse" else gaussian_noise(shape, generator=generator, device=device)
            # The prior's re-initialisation of the last pass.
            init = prior.reinit(ReinitContext(passes[-1].latents, eps, alpha_bar, mask, generator, device, observed))
        # Adaptive FreeInit: stop once another pass would not bring the low band closer to training.
        if adaptive and k > 0 and _adaptive_stop(passes, init, alpha_bar, clip_power, shape, o.gap_tol, notes):
            break
        if callback is not None:
            callback({"stage": "init", "pass": k, "x": init})
        # The prior may observe a pass it will re-initialise from (FreqPrior keeps the latent at mid_step).
        observed = prior.observer(scheduler, levels, start_index, init) if k < n_passes - 1 else None
        # The pass itself, observed step by step.
        z0 = sampler(
            init,
            num_inference_steps=steps,
            start_index=start_index,
            pass_index=k,
            callback=observers(observed, callback),
            generator=generator,
        )
        # Where the pass started, as run (pass 0: the top of its grid).
        start_t, a, s = levels[start_index]
        alpha_bar = vp_alpha_bar(a, s) if alpha_bar is None else alpha_bar
        passes.append(PassResult(k, init, z0.float(), float(start_t), alpha_bar, steps, start_index))
        if callback is not None:
            callback(
                {"stage": "end", "pass": k, "x": z0, "init": init, "alpha_bar": alpha_bar, "start_timestep": start_t}
            )

    for n in notes:
        warnings.warn(n, stacklevel=2)
    info = _info(prior, passes, notes, fam, scheduler, level, o, num_inference_steps, adaptive)
    return SamplingResult(passes, info, mask, prior)
