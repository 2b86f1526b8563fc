"""FreeInit (Wu et al., ECCV 2024, Alg. 1) and its peers around any sampler, observed through a callback.

A *sampler* (:mod:`freqscope.samplers`) turns an initial noise into a clean latent: :class:`DenoiserSampler`
(a model and a diffusers scheduler, e.g. the weight-free :class:`~freqscope.reference.GaussianVideoModel`)
or :class:`PipelineSampler` (any diffusers video pipeline whose call takes ``latents=``). The noise each pass
starts from, per prior, is :mod:`freqscope.init_noise`. Initial noises live
in the *VP-normalised* space (unit-variance noise, ``z = √ᾱ·z0 + √(1−ᾱ)·ε``); each sampler maps them into
its scheduler's own sample space, so schedulers with ``init_noise_sigma ≠ 1`` (Euler) and flow matching
are handled correctly.

``num_iters`` counts *total* sampling passes, as in the official code and diffusers: ``num_iters=1`` is
plain sampling, ``num_iters=3`` is one plain pass and two re-initialised ones.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import torch

from .bands import BandSet
from .filters import FILTER_METHODS, lowpass_filter
from .gap import keep_reinitialising, low_band_gap_db
from .init_noise import (
    FREQPRIOR_MID_STEP,
    FREQPRIOR_RATIO,
    INITIAL_NOISE,
    ITERATIVE,
    PRIORS,
    REINIT,
    PriorContext,
    Reinit,
    bands_on,
    freqprior_noise,
    signature_default,
)
from .priors import gaussian_noise, offset_noise, pyoco_mixed_noise, pyoco_progressive_noise
from .samplers import Callback, DenoiserSampler, PipelineSampler
from .schedulers import family, start_index_for, training_schedule, vp_alpha_bar

__all__ = [
    "PRIORS",
    "INITIAL_NOISE",
    "REINIT",
    "PriorContext",
    "Reinit",
    "RenoiseLevel",
    "renoise_level",
    "MidStepObserver",
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
#: freqprior-tail re-noises at the level of this fraction of the training timesteps (our default).
FREQPRIOR_FRACTION = 0.8
#: Adaptive FreeInit (``num_iters="auto"``): at most this many passes, stopping once the low-band gap is
#: within ``gap_tol`` dB, stops shrinking, or the next pass would overshoot.
MAX_AUTO_ITERS = 5


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

    @property
    def latents(self) -> torch.Tensor:
        return self.passes[-1].latents


# ---- the steps of sample() -------------------------------------------------------------------------------


def _check_args(
    prior: str,
    num_iters: int | str,
    *,
    renoise: str,
    max_iters: int,
    gap_tol: float,
    clip_power,
    num_inference_steps: int,
    method: str,
    shape: tuple,
    renoise_alpha_bar: float | None,
    diffuse_timestep: int | None,
) -> None:
    """Every argument :func:`sample` can check before any work, each error naming its parameter."""
    if prior not in PRIORS:
        raise ValueError(f"unknown prior {prior!r}; choose one of {', '.join(PRIORS)}")
    if renoise not in RENOISE:
        raise ValueError(f"renoise={renoise!r}: use 'reuse' (official) or 'fresh'")
    adaptive = num_iters == "auto"
    if adaptive and not (isinstance(max_iters, int) and max_iters >= 1):
        raise ValueError(f"max_iters={max_iters}: must be a whole number >= 1")
    if adaptive and not gap_tol > 0:
        raise ValueError(f"gap_tol={gap_tol}: must be a positive number of dB")
    if not adaptive and not (isinstance(num_iters, int) and num_iters >= 1):
        raise ValueError(
            f"num_iters={num_iters}: must be a whole number >= 1 (it counts all sampling passes) or 'auto'"
        )
    if (adaptive or prior == "spectrum") and clip_power is None:
        raise ValueError(
            f"{'num_iters=auto' if adaptive else 'prior=spectrum'} needs clip_power=(bands, P): "
            "the band power of clean latents to measure the gap against"
        )
    if not (isinstance(num_inference_steps, int) and num_inference_steps >= 1):
        raise ValueError(f"num_inference_steps={num_inference_steps}: must be a whole number >= 1")
    if method not in FILTER_METHODS:
        raise ValueError(f"unknown filter method {method!r}; choose one of {', '.join(FILTER_METHODS)}")
    if len(shape) != 5:
        raise ValueError(f"shape must be (b, c, t, h, w), got {tuple(shape)}")
    if renoise_alpha_bar is not None and not (0 < renoise_alpha_bar < 1):
        raise ValueError(f"renoise_alpha_bar={renoise_alpha_bar}: a VP-equivalent ᾱ must lie in (0, 1)")
    if diffuse_timestep is not None and renoise_alpha_bar is not None:
        raise ValueError("give diffuse_timestep or renoise_alpha_bar, not both")


def _num_passes(prior: str, num_iters: int | str, max_iters: int, notes: list[str]) -> int:
    """Passes to run: ``max_iters`` for adaptive FreeInit, one for a single-pass prior (said in ``notes``)."""
    if not isinstance(num_iters, int):  # "auto"
        return max_iters if prior in ITERATIVE else 1
    if prior not in ITERATIVE and num_iters > 1:
        notes.append(f"prior {prior} is a single-pass initial noise; num_iters={num_iters} ignored")
        return 1
    return num_iters


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
    *,
    prior: str,
    num_iters: int,
    diffuse_timestep: int | None,
    renoise_alpha_bar: float | None,
    notes: list[str],
) -> RenoiseLevel:
    """The re-noise level of passes k ≥ 1 (see :func:`sample`); a zero-SNR ``diffuse_timestep`` falls back
    to ``MIN_RENOISE_ALPHA_BAR``, said in ``notes``."""
    if diffuse_timestep is None and not (prior == "freqprior-tail" and renoise_alpha_bar is None):
        return RenoiseLevel(renoise_alpha_bar)
    train = training_schedule(scheduler)
    N = train.num_train_timesteps
    t_star = diffuse_timestep if diffuse_timestep is not None else round(FREQPRIOR_FRACTION * (N - 1))
    if not 0 <= t_star < N:
        raise ValueError(f"diffuse_timestep={t_star}: must be a training timestep in [0, {N - 1}]")
    level = RenoiseLevel(float(train.vp_alpha_bar[t_star]), diffuse_timestep is not None, t_star)
    if prior in ITERATIVE and num_iters > 1 and float(train.vp_alpha_bar[t_star]) < 1e-8:
        notes.append(
            f"{train.name} has zero SNR at diffuse_timestep={t_star}, where re-diffusion returns the "
            f"initial noise unchanged; re-noising at ᾱ={MIN_RENOISE_ALPHA_BAR} instead"
        )
        level = RenoiseLevel(MIN_RENOISE_ALPHA_BAR, False, t_star)
    return level


def _mid_step_alpha_bar(scheduler, prior: str, mid_step: int, ratio: float) -> float | None:
    """FreqPrior: ᾱ of training timestep ``mid_step``, whose latent is carried to the next pass."""
    if prior != "freqprior":
        return None
    train = training_schedule(scheduler)
    last = train.num_train_timesteps - 1
    if not 0 <= mid_step <= last:
        raise ValueError(f"mid_step={mid_step}: must be a training timestep in [0, {last}]")
    if not 0 <= ratio <= 1:
        raise ValueError(f"ratio={ratio}: FreqPrior's blend weight must lie in [0, 1]")
    return float(train.vp_alpha_bar[mid_step])


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


def _info(prior: str, passes, notes, fam: str, scheduler, level: RenoiseLevel, options: dict) -> dict:
    """``SamplingResult.info``: what was run, in a fixed key order (it goes into the JSON report)."""
    o = options
    info = {
        "prior": prior,
        "num_iters": len(passes),
        "adaptive": {"gap_tol": o["gap_tol"], "max_iters": o["max_iters"]} if o["num_iters"] == "auto" else None,
        "model_calls": sum(p.num_inference_steps - p.start_index for p in passes),
        "num_inference_steps": o["num_inference_steps"],
        "filter": {"method": o["method"], "d_s": o["d_s"], "d_t": o["d_t"], "order": o["order"]},
        "renoise": o["renoise"],
        "diffuse_timestep": level.t_star,
        "renoise_alpha_bar": level.target,
        "scheduler_family": fam,
        "fast_sampling": o["fast_sampling"],
        "schedule": type(scheduler).__name__,
        "notes": notes,
    }
    alpha = o["pyoco_alpha"]
    if prior == "pyoco-mixed":
        info["pyoco_alpha"] = alpha if alpha is not None else signature_default(pyoco_mixed_noise, "alpha")
    if prior == "pyoco-progressive":
        info["pyoco_alpha"] = alpha if alpha is not None else signature_default(pyoco_progressive_noise, "alpha")
    if prior == "offset":
        strength = o["offset_strength"]
        info["offset_strength"] = strength if strength is not None else signature_default(offset_noise, "strength")
    if prior == "freqprior":
        info.update(mid_step=o["mid_step"], ratio=o["ratio"])
    return info


def sample(
    sampler: DenoiserSampler | PipelineSampler,
    shape: tuple[int, ...],
    *,
    prior: str = "freeinit",
    num_iters: int | str = 3,
    num_inference_steps: int = 50,
    method: str = "butterworth",
    d_s: float = 0.25,
    d_t: float = 0.25,
    order: int = 4,
    renoise: str = "reuse",
    diffuse_timestep: int | None = None,
    renoise_alpha_bar: float | None = None,
    mid_step: int = FREQPRIOR_MID_STEP,
    ratio: float = FREQPRIOR_RATIO,
    fast_sampling: bool = False,
    pyoco_alpha: float | None = None,
    offset_strength: float | None = None,
    clip_power: tuple[BandSet, torch.Tensor] | None = None,
    gap_tol: float = 1.0,
    max_iters: int = MAX_AUTO_ITERS,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    callback: Callback | None = None,
) -> SamplingResult:
    """Sample with FreeInit or a peer; every pass is returned with its initial noise.

    Pass 0 samples from ``prior``'s noise (:data:`INITIAL_NOISE`). Passes k ≥ 1 of an iterative prior start
    from its re-initialisation (:data:`REINIT`) of the last pass. FreeInit re-diffuses the last result with
    the pass-0 noise (``renoise="reuse"``, the official behaviour) or a fresh draw (``"fresh"``), keeps its
    low frequencies under the ``method`` filter and refills the high ones with fresh Gaussian noise.
    ``freqprior`` (as published) carries each pass's latent at training timestep ``mid_step`` (mapped onto
    the grid as a level) to the next, diffuses it on to the start level with the initial noise, blends it
    with fresh noise (``ratio``) and filters it (:func:`freqprior_noise`); every pass runs the whole grid
    (the official code's ``save_intermediate``: the same trajectory, and a clean result per pass).
    ``freqprior-tail`` re-noises the clean result at the level of training timestep ``0.8·(N−1)`` with
    variance-preserving mixing and samples from there.

    Where a pass re-noises is a *noise level* (VP-equivalent ᾱ), mapped onto the grid the sampler runs
    (:mod:`freqscope.schedulers`): the pass starts at the first grid step at or below that noise and is
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
    ``max_iters`` passes. ``prior="spectrum"``: one pass from :func:`~freqscope.priors.spectrum_matched_noise`
    with training ``z``'s expected band power at the first step's level. Both need ``clip_power = (bands,
    P_b)``, the band power of clean latents (the reference clip's, or a dataset mean).

    ``callback(d)`` observes every pass: ``{"stage": "init", "pass", "x"}`` (the pass's initial noise),
    at every step ``{"stage": "step", "pass", "i", "t", "sigma", "x", "denoised"}`` and ``{"stage": "end",
    "pass", "x", "init", "alpha_bar", "start_timestep"}`` (``x``: the pass's clean latent). At a step, ``x``
    is the sample after step ``i``; ``t`` and ``sigma`` (k-diffusion's σ = s/a) are the level the step
    started from; ``denoised`` is the model's clean estimate there (:class:`DenoiserSampler`), or None where
    the sampler cannot see it (:class:`PipelineSampler`: a pipeline's step callback exposes latents only).
    Diagnostics such as :class:`~freqscope.experiment.GapObserver` plug in here.
    """
    _check_args(
        prior,
        num_iters,
        renoise=renoise,
        max_iters=max_iters,
        gap_tol=gap_tol,
        clip_power=clip_power,
        num_inference_steps=num_inference_steps,
        method=method,
        shape=shape,
        renoise_alpha_bar=renoise_alpha_bar,
        diffuse_timestep=diffuse_timestep,
    )
    options = dict(locals())  # the arguments as given, for info
    adaptive = num_iters == "auto"
    t, h, w = shape[-3:]
    mask = lowpass_filter((t, h, w), method=method, d_s=d_s, d_t=d_t, order=order, device=device)
    scheduler, fam = sampler.scheduler, family(sampler.scheduler)
    notes: list[str] = []
    n_passes = _num_passes(prior, num_iters, max_iters, notes)
    level = renoise_level(
        scheduler,
        prior=prior,
        num_iters=n_passes,
        diffuse_timestep=diffuse_timestep,
        renoise_alpha_bar=renoise_alpha_bar,
        notes=notes,
    )
    alpha_bar_mid = _mid_step_alpha_bar(scheduler, prior, mid_step, ratio)

    passes: list[PassResult] = []
    eps0 = torch.empty(0)  # pass 0's noise, set by pass 0
    mid: dict = {}  # FreqPrior: the previous pass's latent at mid_step and its level
    for k in range(n_passes):
        # Steps of this pass: all of them, or coarse to fine with fast_sampling.
        steps = max(1, int(num_inference_steps / n_passes * (k + 1))) if fast_sampling else num_inference_steps
        # This pass's grid: (t, a, s) of every step, as the sampler will run it.
        levels = sampler.grid(steps, shape)
        if k == 0:
            # Pass 0 starts at the top of the grid from the prior's own noise.
            ctx = PriorContext(
                generator,
                device,
                vp_alpha_bar(*levels[0][1:]),
                clip_power,
                pyoco_alpha,
                offset_strength,
            )
            init, start_index, alpha_bar = INITIAL_NOISE[prior](shape, ctx).float(), 0, None
            eps0 = init
        else:
            # Later passes start at the re-noise level, mapped onto this pass's grid.
            start_index, alpha_bar = level.on_grid(levels, fam)
            _midway_note(scheduler, fam, levels, start_index, level, notes)
            # The re-diffusion noise: the pass-0 noise again (official) or a fresh draw.
            eps = eps0 if renoise == "reuse" else gaussian_noise(shape, generator=generator, device=device)
            # The prior's re-initialisation of the last pass.
            init = REINIT[prior](Reinit(passes[-1].latents, eps, alpha_bar, mask, generator, device, mid, ratio))
        # Adaptive FreeInit: stop once another pass would not bring the low band closer to training.
        if adaptive and k > 0 and _adaptive_stop(passes, init, alpha_bar, clip_power, shape, gap_tol, notes):
            break
        if callback is not None:
            callback({"stage": "init", "pass": k, "x": init})
        # FreqPrior: an observer keeps this pass's latent at mid_step for the next re-initialisation.
        keep_mid = None
        if prior == "freqprior" and k < n_passes - 1:
            assert alpha_bar_mid is not None  # set for freqprior
            keep_mid = MidStepObserver(levels, alpha_bar_mid, start_index, init)
            mid = keep_mid.mid
        # The pass itself, observed step by step.
        z0 = sampler(
            init,
            num_inference_steps=steps,
            start_index=start_index,
            pass_index=k,
            callback=observers(keep_mid, callback),
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
    return SamplingResult(passes, _info(prior, passes, notes, fam, scheduler, level, options), mask)
