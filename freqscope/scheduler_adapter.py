"""What freqscope knows about a diffusers scheduler: its family, noise levels, first step, starting midway.

This is the one module that inspects diffusers scheduler classes and configs. A *level* is the pair
``(a, s)`` of a sample ``a·x0 + s·ε``; its VP-equivalent ``ᾱ = a²/(a²+s²)`` makes levels of different
families comparable (``vp_alpha_bar``). Families:

- ``"vp"``: ``z_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε`` with ε- or v-prediction (DDIM, DDPM, PNDM, CogVideoX's DDIM,
  DPM-Solver and UniPC without flow sigmas); levels from ``alphas_cumprod`` at integer timesteps.
- ``"sigma"``: σ-scaled ``z = x0 + σ·ε`` (Euler, Euler ancestral, Heun, LMS, EDM, Karras sigmas);
  levels from the scheduler's own ``sigmas``.
- ``"flow"``: flow matching ``z = (1−σ)·x0 + σ·ε`` (FlowMatch* schedulers, and UniPC / DPM-Solver with
  ``use_flow_sigmas``), for any ``shift`` and under dynamic shifting (the pipeline's ``mu``); with
  ``invert_sigmas`` (Mochi) the scheduler's σ is the signal weight, ``z = σ·x0 + (1−σ)·ε``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from .noise_schedule import (
    DEFAULT_PRESET,
    PRESETS,
    Schedule,
    flow_schedule,
    is_flow_config,
    load_scheduler_config,
    rescale_zero_terminal_snr,
    shift_key,
    vp_alpha_bar,
    vp_schedule,
)

#: A diffusers scheduler (diffusers ships no type information).
Scheduler = Any

__all__ = [
    "SCHEDULER_FAMILIES",
    "family",
    "is_flow_config",
    "training_schedule",
    "step_level",
    "grid_levels",
    "first_step_level",
    "sample_level",
    "input_level",
    "start_index_for",
    "is_ddim",
    "cut_grid",
    "starting_at",
    "reference_scheduler",
]

SCHEDULER_FAMILIES = ("vp", "sigma", "flow")
_SIGMA_CLASSES = ("Euler", "Heun", "LMSDiscrete", "KDPM2", "EDM")


def family(scheduler: Scheduler) -> str:
    """``"vp"``, ``"sigma"`` or ``"flow"`` (see the module docstring)."""
    cfg = dict(scheduler.config)
    cfg.pop("shift", None)  # a flow *class* or flow sigmas decide here, not a config key alone
    if is_flow_config({**cfg, "_class_name": type(scheduler).__name__}):
        return "flow"
    name = type(scheduler).__name__
    if any(k in name for k in _SIGMA_CLASSES):
        return "sigma"
    return "vp"


def is_ddim(scheduler: Scheduler) -> bool:
    """Diffusers' plain DDIMScheduler (the closed-form pass gain of the reference model assumes its step)."""
    return type(scheduler).__name__ == "DDIMScheduler"


def training_schedule(scheduler: Scheduler) -> Schedule:
    """The training schedule of a diffusers scheduler (float64), as its own ``alphas_cumprod`` /
    flow sigmas give it: includes ``rescale_betas_zero_snr`` and CogVideoX's ``snr_shift_scale``."""
    cfg = dict(scheduler.config)
    name = type(scheduler).__name__
    n = int(cfg.get("num_train_timesteps", 1000))
    if family(scheduler) == "flow":
        shift = cfg.get(shift_key(cfg), 1.0)
        sched = flow_schedule(num_train_timesteps=n, shift=float(shift), name=name)
        if cfg.get("use_dynamic_shifting"):
            sched.source["note"] = "dynamic shifting: the pipeline's mu sets the inference shift"
        return sched
    if not hasattr(scheduler, "alphas_cumprod"):
        raise ValueError(f"{name} has no training schedule (alphas_cumprod); pass a level, not a timestep")
    sched = vp_schedule({**cfg, "rescale_betas_zero_snr": False}, name=name)
    ab = sched.alpha_bar
    k = cfg.get("snr_shift_scale")
    if k is not None:  # CogVideoX: SNR divided by k (SD3's shift), before the zero-terminal rescaling
        ab = ab / (k + (1 - k) * ab)
    if cfg.get("rescale_betas_zero_snr"):
        ab = rescale_zero_terminal_snr(ab)
    src = {**sched.source, "zero_terminal_snr": bool(cfg.get("rescale_betas_zero_snr", False))}
    if k is not None:
        src["snr_shift_scale"] = k
    return Schedule(name, "vp", ab.sqrt(), (1 - ab).sqrt(), src)


def _sigma_index(scheduler: Scheduler, t) -> int | None:
    """Index into ``scheduler.sigmas`` of the step at timestep ``t``: the scheduler's own step index
    when it is stepping, its begin index before the first step of a midway pass, else a lookup of ``t``."""
    for attr in ("step_index", "begin_index"):
        i = getattr(scheduler, attr, None)
        if i is not None:
            return int(i)
    ts = getattr(scheduler, "timesteps", None)
    if ts is None:
        return None
    hit = ((ts.double().cpu() - float(t)).abs() < 1e-4).nonzero()
    return int(hit[0, 0]) if len(hit) else None


def _vp_level(scheduler: Scheduler, t) -> tuple[float, float]:
    ab = float(scheduler.alphas_cumprod[int(round(float(t)))])
    return math.sqrt(ab), math.sqrt(1 - ab)


def step_level(scheduler: Scheduler, index: int) -> tuple[float, float]:
    """Level ``(a, s)`` of the sample the scheduler steps at grid ``index`` (after ``set_timesteps``):
    what its own ``add_noise`` / ``scale_noise`` give at ``timesteps[index]``."""
    fam = family(scheduler)
    if fam == "vp":
        return _vp_level(scheduler, scheduler.timesteps[index])
    sigma = float(scheduler.sigmas[index])
    if fam == "flow" and scheduler.config.get("invert_sigmas"):  # Mochi: σ runs 0 → 1, the signal weight
        return sigma, 1.0 - sigma
    return (1.0 - sigma, sigma) if fam == "flow" else (1.0, sigma)


def grid_levels(scheduler: Scheduler) -> list[tuple[float, float, float]]:
    """``(t, a, s)`` for every timestep of the scheduler's current grid."""
    return [(float(t), *step_level(scheduler, i)) for i, t in enumerate(scheduler.timesteps)]


def first_step_level(
    scheduler: Scheduler, num_inference_steps: int, **set_timesteps_kwargs: Any
) -> tuple[float, float, float]:
    """``(t, a, s)`` of the first inference step of a pass with this many steps (e.g. DDIM, 50 steps,
    leading spacing: t = 981, not 999). ``set_timesteps_kwargs``: ``mu`` under dynamic shifting, …"""
    scheduler.set_timesteps(num_inference_steps, **set_timesteps_kwargs)
    return grid_levels(scheduler)[0]


def sample_level(scheduler: Scheduler, t: float | torch.Tensor) -> tuple[float, float]:
    """Level ``(a, s)`` of the sample at timestep ``t`` (of the current grid for σ-based families)."""
    if family(scheduler) == "vp":
        return _vp_level(scheduler, t)
    i = _sigma_index(scheduler, t)
    if i is None:
        raise ValueError(f"timestep {float(t)} is not on {type(scheduler).__name__}'s grid; call set_timesteps")
    return step_level(scheduler, i)


def input_level(scheduler: Scheduler, t: float | torch.Tensor) -> tuple[float, float]:
    """Level ``(A, B)`` of the *model input* at timestep ``t`` (after ``scale_model_input``):
    VP ``(√ᾱ, √(1−ᾱ))``, flow ``(1−σ, σ)``, σ-scaled ``(1, σ)/√(1+σ²)`` (``/√(σ²+σ_data²)`` for EDM)."""
    a, s = sample_level(scheduler, t)
    if family(scheduler) != "sigma":
        return a, s
    sd = getattr(scheduler.config, "sigma_data", None) if "EDM" in type(scheduler).__name__ else None
    c = 1 / math.sqrt(s * s + (sd * sd if sd is not None else 1.0))
    return a * c, s * c


def start_index_for(levels: list[tuple[float, float, float]], alpha_bar: float, *, rtol: float = 1e-4) -> int:
    """Index of the first grid step whose level is at or below the noise of ``alpha_bar`` (VP-equivalent):
    the first step with ``ᾱ_i ≥ alpha_bar`` (relative tolerance ``rtol``); the last step if none is."""
    for i, (_, a, s) in enumerate(levels):
        if vp_alpha_bar(a, s) >= alpha_bar * (1 - rtol):
            return i
    return len(levels) - 1


def cut_grid(scheduler: Scheduler, start_index: int) -> None:
    """Keep the scheduler's current grid from ``start_index`` on: ``timesteps`` and ``sigmas`` both cut, the
    begin index 0, so index-based schedulers (Euler, flow matching, UniPC / DPM-Solver multistep, whose
    solver order looks at ``len(timesteps)``) step a consistent shorter grid."""
    n = len(scheduler.timesteps)
    scheduler.timesteps = scheduler.timesteps[start_index:]
    sig = getattr(scheduler, "sigmas", None)
    if isinstance(sig, torch.Tensor) and sig.ndim == 1 and len(sig) in (n, n + 1):
        scheduler.sigmas = sig[start_index:]
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(0)


@contextmanager
def starting_at(scheduler: Scheduler, start_index: int) -> Iterator[Scheduler]:
    """While active, every ``set_timesteps`` call (with whatever arguments the pipeline passes: ``sigmas``,
    ``mu``, ``timesteps``) is followed by :func:`cut_grid`, as img2img pipelines start midway. The wrapper
    keeps ``set_timesteps``' signature (``functools.wraps``), so ``retrieve_timesteps`` still sees which
    arguments it accepts; on exit the class method is back."""
    if not start_index:
        yield
        return
    original = scheduler.set_timesteps

    @functools.wraps(original)
    def set_timesteps(*args, **kwargs):
        out = original(*args, **kwargs)
        cut_grid(scheduler, start_index)
        return out

    scheduler.set_timesteps = set_timesteps
    try:
        yield
    finally:
        del scheduler.set_timesteps  # back to the class method (its next call also resets the begin index)


def reference_scheduler(name_or_path: str = DEFAULT_PRESET, *, shift: float | None = None) -> Scheduler:
    """A real diffusers scheduler for the reference model: DDIM (η = 0, no clipping, leading spacing) for
    beta presets, FlowMatchEulerDiscreteScheduler for ``flow``, or the class named in a scheduler config."""
    import diffusers

    if name_or_path in PRESETS:
        cfg = dict(PRESETS[name_or_path])
        if is_flow_config(cfg):
            return diffusers.FlowMatchEulerDiscreteScheduler(shift=shift if shift is not None else cfg["shift"])
        return diffusers.DDIMScheduler(
            **cfg, clip_sample=False, set_alpha_to_one=True, steps_offset=1, timestep_spacing="leading"
        )
    config = load_scheduler_config(name_or_path)  # validated: a scheduler's config, read as named
    cls = getattr(diffusers, str(config.get("_class_name", "DDIMScheduler")), None)
    if cls is None or not hasattr(cls, "step"):
        raise ValueError(f"{name_or_path} names {config.get('_class_name')!r}, not a diffusers scheduler")
    over: dict[str, bool | float] = {"clip_sample": False} if "clip_sample" in config else {}
    if shift is not None:
        over[shift_key(config)] = shift
    try:
        return cls.from_config(config, **over)
    except (NotImplementedError, ValueError, TypeError) as e:  # e.g. a beta_schedule this class lacks
        raise ValueError(
            f"scheduler config {name_or_path}: {cls.__name__} cannot be built from it ({str(e)[:160]}); "
            "check beta_schedule and the other fields"
        ) from None
