"""FreeInit (Wu et al., ECCV 2024, Alg. 1) and its peers around any sampler, observed through a callback.

A *sampler* turns an initial noise into a clean latent: :class:`DenoiserSampler` (a model and a diffusers
scheduler, e.g. the weight-free :class:`~freqscope.reference.GaussianVideoModel`) or
:class:`PipelineSampler` (any diffusers video pipeline whose call takes ``latents=``). Initial noises live
in the *VP-normalised* space (unit-variance noise, ``z = √ᾱ·z0 + √(1−ᾱ)·ε``); each sampler maps them into
its scheduler's own sample space, so schedulers with ``init_noise_sigma ≠ 1`` (Euler) and flow matching
are handled correctly.

``num_iters`` counts *total* sampling passes, as in the official code and diffusers: ``num_iters=1`` is
plain sampling, ``num_iters=3`` is one plain pass and two re-initialised ones.
"""

from __future__ import annotations

import inspect
import math
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from .filters import FILTER_METHODS, freq_mix, lowpass_filter
from .priors import gaussian_noise, offset_noise, pyoco_mixed_noise, pyoco_progressive_noise
from .reference import scheduler_space
from .schedule import Schedule, flow_schedule, vp_schedule

__all__ = [
    "PRIORS",
    "RENOISE",
    "PassResult",
    "SamplingResult",
    "DenoiserSampler",
    "PipelineSampler",
    "sample",
    "schedule_of",
    "MIN_RENOISE_ALPHA_BAR",
]

#: freeinit: re-diffuse to the last timestep, keep low frequencies; freqprior: re-noise from an
#: intermediate timestep with variance-preserving mixing; pyoco-mixed / pyoco-progressive / offset:
#: frame-correlated or offset initial noise, one pass.
PRIORS = ("freeinit", "freqprior", "pyoco-mixed", "pyoco-progressive", "offset")
RENOISE = ("reuse", "fresh")
#: Where re-diffusing to the last timestep carries no signal (zero terminal SNR, flow matching), re-noise
#: from the last timestep whose VP-equivalent ᾱ is at least this: SD's terminal ᾱ, the level FreeInit
#: was designed at.
MIN_RENOISE_ALPHA_BAR = 0.0046600985
#: FreqPrior-style partial sampling starts at this fraction of the training timesteps (our default).
FREQPRIOR_FRACTION = 0.8


def schedule_of(scheduler) -> Schedule:
    """The training schedule of a diffusers scheduler (float64)."""
    cfg = dict(scheduler.config)
    if "FlowMatch" in type(scheduler).__name__:
        return flow_schedule(
            num_train_timesteps=cfg.get("num_train_timesteps", 1000),
            shift=cfg.get("shift", 1.0),
            name=type(scheduler).__name__,
        )
    return vp_schedule(cfg, name=type(scheduler).__name__)


@dataclass
class PassResult:
    index: int
    init: torch.Tensor  # (b, c, t, h, w) initial noise, VP-normalised
    latents: torch.Tensor  # (b, c, t, h, w) generated clean latent
    start_timestep: float  # first timestep this pass was sampled from
    alpha_bar: float  # VP-equivalent ᾱ of the start level (what training z at that level looks like)
    num_inference_steps: int


@dataclass
class SamplingResult:
    passes: list[PassResult]
    info: dict = field(default_factory=dict)  # method, filter, re-diffusion timestep, notes

    @property
    def latents(self) -> torch.Tensor:
        return self.passes[-1].latents


class _SchedulerSampler:
    """What :func:`sample` asks of a sampler besides sampling: its scheduler's grid and levels."""

    scheduler = None

    def timesteps(self, num_inference_steps: int) -> list[float]:
        """The inference timesteps of a pass with this many steps."""
        self.scheduler.set_timesteps(num_inference_steps)
        return [float(t) for t in self.scheduler.timesteps]

    def level(self, t) -> tuple[float, float]:
        """``(A, B)`` of the scheduler's sample ``A·x0 + B·ε`` at timestep ``t``."""
        return scheduler_space(self.scheduler, t)

    def start_sample(self, init: torch.Tensor, num_inference_steps: int, start_index: int) -> torch.Tensor:
        """A VP-normalised initial noise in the scheduler's own sample space at the pass's first step:
        times ``init_noise_sigma`` at the start of the grid (as pipelines do), times ``√(A² + B²)`` midway."""
        if not start_index:
            return init * float(getattr(self.scheduler, "init_noise_sigma", 1.0))
        A, B = self.level(self.timesteps(num_inference_steps)[start_index])
        return init * math.sqrt(A**2 + B**2)


class DenoiserSampler(_SchedulerSampler):
    """A model ``model(z, t, scheduler) → output`` stepped by a diffusers scheduler (η = 0)."""

    def __init__(self, model, scheduler):
        self.model, self.scheduler = model, scheduler
        self.schedule = schedule_of(scheduler)

    def __call__(self, init, *, num_inference_steps, start_index=0, pass_index=0, callback=None, generator=None):
        sch = self.scheduler
        z = self.start_sample(init, num_inference_steps, start_index)
        with _starting_at(sch, start_index):
            sch.set_timesteps(num_inference_steps)
            for i, t in enumerate(sch.timesteps):
                # Model evaluation at the scheduler's input scaling, then one scheduler step.
                zin = sch.scale_model_input(z, t) if hasattr(sch, "scale_model_input") else z
                out = self.model(zin, t, sch)
                z = sch.step(out, t, z, return_dict=False)[0]
                if callback is not None:
                    callback({"stage": "step", "pass": pass_index, "i": i, "t": float(t), "x": z})
        return z


def _pipeline_layout(pipe) -> str:
    return "btchw" if type(pipe).__name__.startswith("CogVideoX") else "bcthw"


class PipelineSampler(_SchedulerSampler):
    """A diffusers video pipeline whose ``__call__`` takes ``latents=`` and ``output_type="latent"``.

    ``call_kwargs`` (prompt or prompt_embeds, guidance, size, …) are passed on every pass. Latents are
    exchanged in ``(b, c, t, h, w)``; pipelines that use ``(b, t, c, h, w)`` (CogVideoX) are transposed.
    A pass that starts midway (flow matching, zero terminal SNR, FreqPrior) runs the pipeline on the
    tail of its timesteps, as img2img pipelines do.
    """

    def __init__(self, pipe, **call_kwargs):
        self.pipe, self.kwargs = pipe, call_kwargs
        self.scheduler = pipe.scheduler
        self.schedule = schedule_of(pipe.scheduler)
        self.layout = _pipeline_layout(pipe)
        self._params = set(inspect.signature(pipe.__call__).parameters)

    def __call__(self, init, *, num_inference_steps, start_index=0, pass_index=0, callback=None, generator=None):
        kw = dict(self.kwargs, num_inference_steps=num_inference_steps)
        dtype = getattr(self.pipe, "dtype", init.dtype)
        latents = init  # the pipeline multiplies by init_noise_sigma itself
        if start_index:
            sigma = float(getattr(self.scheduler, "init_noise_sigma", 1.0))
            latents = self.start_sample(init, num_inference_steps, start_index) / sigma
        if self.layout == "btchw":
            latents = latents.permute(0, 2, 1, 3, 4)  # (b, t, c, h, w)
        if callback is not None and "callback_on_step_end" in self._params:

            def on_step(pipe, i, t, tensors):
                x = tensors["latents"]
                callback(
                    {
                        "stage": "step",
                        "pass": pass_index,
                        "i": i,
                        "t": float(t),
                        "x": x.permute(0, 2, 1, 3, 4) if self.layout == "btchw" else x,
                    }
                )
                return {}

            kw["callback_on_step_end"] = on_step
        if generator is not None and "generator" in self._params:
            kw.setdefault("generator", generator)
        with _starting_at(self.scheduler, start_index):
            out = self.pipe(latents=latents.to(dtype), output_type="latent", **kw)
        frames = out.frames if hasattr(out, "frames") else out[0]
        if isinstance(frames, (list, tuple)):
            frames = frames[0]
        z = torch.as_tensor(frames)
        return z.permute(0, 2, 1, 3, 4) if self.layout == "btchw" else z


@contextmanager
def _starting_at(scheduler, start_index: int):
    """Make a pipeline denoise from its ``start_index``-th timestep on, as diffusers' img2img pipelines do:
    cut ``scheduler.timesteps`` after each ``set_timesteps`` and set the begin index where the
    scheduler has one (index-based schedulers such as Euler look sigmas up by it)."""
    if not start_index:
        yield
        return
    original = scheduler.set_timesteps

    def set_timesteps(*args, **kwargs):
        original(*args, **kwargs)
        scheduler.timesteps = scheduler.timesteps[start_index:]
        if hasattr(scheduler, "set_begin_index"):
            scheduler.set_begin_index(start_index)

    scheduler.set_timesteps = set_timesteps
    try:
        yield
    finally:
        del scheduler.set_timesteps  # back to the class method (whose next call also resets the begin index)


def _prior_noise(prior, shape, *, generator, device, pyoco_alpha, offset_strength):
    if prior == "pyoco-mixed":
        return pyoco_mixed_noise(
            shape, alpha=pyoco_alpha if pyoco_alpha is not None else 1.0, generator=generator, device=device
        )
    if prior == "pyoco-progressive":
        return pyoco_progressive_noise(
            shape, alpha=pyoco_alpha if pyoco_alpha is not None else 2.0, generator=generator, device=device
        )
    if prior == "offset":
        return offset_noise(shape, strength=offset_strength, generator=generator, device=device)
    return gaussian_noise(shape, generator=generator, device=device)


def sample(
    sampler,
    shape: tuple[int, int, int, int, int],
    *,
    prior: str = "freeinit",
    num_iters: int = 3,
    num_inference_steps: int = 50,
    method: str = "butterworth",
    d_s: float = 0.25,
    d_t: float = 0.25,
    order: int = 4,
    renoise: str = "reuse",
    diffuse_timestep: int | None = None,
    fast_sampling: bool = False,
    pyoco_alpha: float | None = None,
    offset_strength: float = 0.1,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    callback=None,
) -> SamplingResult:
    """Sample with FreeInit or a peer; every pass is returned with its initial noise.

    Pass 0 samples from ``prior``'s noise. FreeInit passes k ≥ 1 re-diffuse the last result to
    ``diffuse_timestep`` (default: the last training timestep) with the pass-0 noise (``renoise="reuse"``,
    the official behaviour) or a fresh draw (``"fresh"``), keep its low frequencies under the ``method``
    filter, and refill the high ones with fresh Gaussian noise. FreqPrior does the same from an
    intermediate timestep with variance-preserving mixing and samples from there. Where the schedule's
    terminal SNR is zero (flow matching, zero-terminal-SNR), re-diffusing to the last timestep would
    return the initial noise unchanged: the sampler re-noises from the last timestep whose ᾱ is at least
    ``MIN_RENOISE_ALPHA_BAR``, samples from there, and says so (a warning and ``info["notes"]``).

    ``callback(d)`` sees ``{"stage": "init", "pass", "x"}``, every ``{"stage": "step", "pass", "i", "t", "x"}``
    and ``{"stage": "end", "pass", "x"}``.
    """
    if prior not in PRIORS:
        raise ValueError(f"unknown prior {prior!r}; choose one of {', '.join(PRIORS)}")
    if renoise not in RENOISE:
        raise ValueError(f"renoise={renoise!r}: use 'reuse' (official) or 'fresh'")
    if not (isinstance(num_iters, int) and num_iters >= 1):
        raise ValueError(f"num_iters={num_iters}: must be a whole number >= 1 (it counts all sampling passes)")
    if not (isinstance(num_inference_steps, int) and num_inference_steps >= 1):
        raise ValueError(f"num_inference_steps={num_inference_steps}: must be a whole number >= 1")
    if method not in FILTER_METHODS:
        raise ValueError(f"unknown filter method {method!r}; choose one of {', '.join(FILTER_METHODS)}")
    if len(shape) != 5:
        raise ValueError(f"shape must be (b, c, t, h, w), got {tuple(shape)}")
    mask = lowpass_filter(tuple(shape[-3:]), method=method, d_s=d_s, d_t=d_t, order=order, device=device)
    sched = sampler.schedule
    N = sched.num_train_timesteps
    notes: list[str] = []
    iterative = prior in ("freeinit", "freqprior")
    if not iterative and num_iters > 1:
        notes.append(f"prior {prior} is a single-pass initial noise; num_iters={num_iters} ignored")
        num_iters = 1

    # Where re-noising happens: the VP-equivalent ᾱ there, and the pass's first inference step.
    ab_vp = sched.vp_alpha_bar
    if prior == "freqprior":
        t_star = diffuse_timestep if diffuse_timestep is not None else round(FREQPRIOR_FRACTION * (N - 1))
    else:
        t_star = diffuse_timestep if diffuse_timestep is not None else N - 1
    if not 0 <= t_star < N:
        raise ValueError(f"diffuse_timestep={t_star}: must be a training timestep in [0, {N - 1}]")
    if iterative and num_iters > 1 and float(ab_vp[t_star]) < 1e-8:
        ok = torch.nonzero(ab_vp >= MIN_RENOISE_ALPHA_BAR)
        t_star = int(ok.max()) if len(ok) else 0
        notes.append(
            f"{sched.name} has zero SNR at the requested re-diffusion timestep, where re-diffusion returns "
            f"the initial noise unchanged; re-noising from t={t_star} (ᾱ={float(ab_vp[t_star]):.4g}) and "
            "sampling from there instead"
        )

    passes: list[PassResult] = []
    eps0 = None
    for k in range(num_iters):
        steps = max(1, int(num_inference_steps / num_iters * (k + 1))) if fast_sampling else num_inference_steps
        grid = sampler.timesteps(steps)
        if k == 0:
            init = _prior_noise(
                prior,
                shape,
                generator=generator,
                device=device,
                pyoco_alpha=pyoco_alpha,
                offset_strength=offset_strength,
            ).float()
            eps0 = init
            start_index, start_t = 0, grid[0]
            alpha_bar = float(ab_vp[N - 1])
        else:
            z0 = passes[-1].latents.float()
            full = prior == "freeinit" and t_star == N - 1
            if full:
                # FreeInit as published: diffuse to the last training timestep, start the whole grid.
                start_index, start_t, alpha_bar = 0, grid[0], float(ab_vp[N - 1])
            else:
                # Start from the last grid timestep at or below t*, diffused to exactly its level.
                start_index = next((i for i, t in enumerate(grid) if t <= t_star + 1e-6), len(grid) - 1)
                start_t = grid[start_index]
                A, B = sampler.level(start_t)
                alpha_bar = A**2 / (A**2 + B**2)
            eps = eps0 if renoise == "reuse" else gaussian_noise(shape, generator=generator, device=device)
            # Re-diffusion to the start level (VP-normalised), then frequency mixing with fresh noise.
            z_t = math.sqrt(alpha_bar) * z0 + math.sqrt(1 - alpha_bar) * eps
            fresh = gaussian_noise(shape, generator=generator, device=device)
            init = freq_mix(z_t, fresh, mask, variance_preserving=prior == "freqprior")
        if callback is not None:
            callback({"stage": "init", "pass": k, "x": init})
        z0 = sampler(
            init,
            num_inference_steps=steps,
            start_index=start_index,
            pass_index=k,
            callback=callback,
            generator=generator,
        )
        if callback is not None:
            callback({"stage": "end", "pass": k, "x": z0})
        passes.append(PassResult(k, init, z0.float(), float(start_t), alpha_bar, steps))

    for n in notes:
        warnings.warn(n, stacklevel=2)
    info = {
        "prior": prior,
        "num_iters": num_iters,
        "num_inference_steps": num_inference_steps,
        "filter": {"method": method, "d_s": d_s, "d_t": d_t, "order": order},
        "renoise": renoise,
        "diffuse_timestep": t_star,
        "fast_sampling": fast_sampling,
        "schedule": sched.name,
        "notes": notes,
    }
    if prior.startswith("pyoco"):
        info["pyoco_alpha"] = pyoco_alpha if pyoco_alpha is not None else (1.0 if prior == "pyoco-mixed" else 2.0)
    if prior == "offset":
        info["offset_strength"] = offset_strength
    return SamplingResult(passes, info)
