"""Noise schedules over every training timestep, in float64: presets and diffusers scheduler configs.

A :class:`Schedule` holds the forward process ``z_t = a_t·z0 + s_t·ε`` for ``t = 0 … N−1``:
VP (DDPM-style) ``a_t = √ᾱ_t, s_t = √(1−ᾱ_t)``; flow matching ``a_t = 1−σ_t, s_t = σ_t``.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import torch

#: A number or a tensor (:func:`vp_alpha_bar` takes either).
T = TypeVar("T", float, torch.Tensor)

__all__ = [
    "Schedule",
    "vp_alpha_bar",
    "PRESETS",
    "DEFAULT_PRESET",
    "SHIFT_RULE",
    "get_schedule",
    "vp_schedule",
    "flow_schedule",
    "schedule_from_config",
    "load_scheduler_config",
    "scheduler_config_file",
    "BETA_SCHEDULES",
    "rescale_zero_terminal_snr",
    "is_flow_config",
    "shift_key",
]

#: name → diffusers-style config (beta schedules as in Stable Diffusion, AnimateDiff, DDPM, iDDPM).
PRESETS: dict[str, dict] = {
    "sd": {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012},
    "animatediff": {"beta_schedule": "linear", "beta_start": 0.00085, "beta_end": 0.012},
    "linear": {"beta_schedule": "linear", "beta_start": 1e-4, "beta_end": 0.02},
    "cosine": {"beta_schedule": "squaredcos_cap_v2"},
    "flow": {"_class_name": "FlowMatchEulerDiscreteScheduler", "shift": 1.0},
}
DEFAULT_PRESET = "sd"
#: ``shift=None`` in words, for help texts (flow matching: the preset's or the config's own shift).
SHIFT_RULE = "the preset's or config's shift (1 if it has none)"


def vp_alpha_bar(a: T, s: T) -> T:
    """VP-equivalent ᾱ of the level ``(a, s)`` of a sample ``a·x0 + s·ε``: ``a²/(a²+s²)``, the ᾱ of the
    variance-normalised ``z/√(a²+s²)`` (ᾱ itself for VP, ``(1−σ)²/((1−σ)²+σ²)`` for flow matching). Numbers
    or tensors alike.

    >>> vp_alpha_bar(0.6, 0.8), vp_alpha_bar(0.5, 0.5)
    (0.36, 0.5)
    """
    return a * a / (a * a + s * s)


@dataclass(frozen=True)
class Schedule:
    """Forward-process coefficients at every training timestep (float64, ``(N,)`` each)."""

    name: str
    kind: str  # "vp" or "flow"
    a: torch.Tensor  # signal coefficient: √ᾱ_t (vp) or 1−σ_t (flow)
    s: torch.Tensor  # noise coefficient: √(1−ᾱ_t) (vp) or σ_t (flow)
    source: dict = field(default_factory=dict)  # preset or config it came from, with its parameters

    @property
    def num_train_timesteps(self) -> int:
        return self.a.numel()

    @property
    def timesteps(self) -> torch.Tensor:
        return torch.arange(self.num_train_timesteps)

    @property
    def alpha_bar(self) -> torch.Tensor:
        """ᾱ_t for VP; for flow matching the signal power (1−σ_t)² with noise power σ_t²."""
        return self.a**2

    @property
    def vp_alpha_bar(self) -> torch.Tensor:
        """ᾱ of the equivalent VP process ``z/√(a²+s²)`` at every t (:func:`vp_alpha_bar`)."""
        return vp_alpha_bar(self.a, self.s)

    @property
    def snr(self) -> torch.Tensor:
        """Whole-signal SNR factor ``a_t² / s_t²`` (inf where ``s_t = 0``, 0 where ``a_t = 0``)."""
        return self.a**2 / self.s**2

    def to_dict(self) -> dict:
        d = {
            "name": self.name,
            "kind": self.kind,
            "num_train_timesteps": self.num_train_timesteps,
            "source": self.source,
        }
        if self.kind == "vp":
            d["alphas_cumprod"] = self.alpha_bar.tolist()
        else:
            d["sigmas"] = self.s.tolist()
        return d


def rescale_zero_terminal_snr(alpha_bar: torch.Tensor) -> torch.Tensor:
    """Shift and scale √ᾱ so that ᾱ_{N−1} = 0 and ᾱ_0 is kept (Lin et al. 2024, Algorithm 1)."""
    r = alpha_bar.sqrt()
    r0, rT = r[0].clone(), r[-1].clone()
    r = (r - rT) * r0 / (r0 - rT)
    return r**2


def _betas(config: dict, n: int) -> torch.Tensor:
    """β_t in float64 for diffusers' ``beta_schedule`` names (same formulas as diffusers)."""
    if config.get("trained_betas") is not None:
        return torch.tensor(config["trained_betas"], dtype=torch.float64)
    kind = config.get("beta_schedule", "linear")
    b0, b1 = float(config.get("beta_start", 1e-4)), float(config.get("beta_end", 0.02))
    if kind == "linear":
        return torch.linspace(b0, b1, n, dtype=torch.float64)
    if kind == "scaled_linear":
        return torch.linspace(b0**0.5, b1**0.5, n, dtype=torch.float64) ** 2
    if kind == "squaredcos_cap_v2":
        f = lambda t: math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
        return torch.tensor([min(1 - f((i + 1) / n) / f(i / n), 0.999) for i in range(n)], dtype=torch.float64)
    if kind == "sigmoid":
        return torch.sigmoid(torch.linspace(-6, 6, n, dtype=torch.float64)) * (b1 - b0) + b0
    raise ValueError(
        f"beta_schedule {kind!r} is not supported; use linear, scaled_linear, squaredcos_cap_v2 or sigmoid"
    )


def vp_schedule(config: dict, *, name: str = "custom", zero_terminal_snr: bool | None = None) -> Schedule:
    """VP schedule from a diffusers-style config (``beta_schedule``, ``beta_start``, ``beta_end``, …)."""
    n = int(config.get("num_train_timesteps", 1000))
    if n < 2:
        raise ValueError(f"num_train_timesteps={n}: need at least 2")
    betas = _betas(config, n)
    alpha_bar = torch.cumprod(1.0 - betas, dim=0)
    zt = bool(config.get("rescale_betas_zero_snr", False)) if zero_terminal_snr is None else zero_terminal_snr
    if zt:
        alpha_bar = rescale_zero_terminal_snr(alpha_bar)
    src = {k: config[k] for k in ("beta_schedule", "beta_start", "beta_end", "num_train_timesteps") if k in config}
    src["zero_terminal_snr"] = zt
    return Schedule(name, "vp", alpha_bar.sqrt(), (1.0 - alpha_bar).sqrt(), src)


def flow_schedule(*, num_train_timesteps: int = 1000, shift: float = 1.0, name: str = "flow") -> Schedule:
    """Flow matching (rectified flow) training schedule: ``σ_t = shift·u / (1 + (shift−1)·u)``,
    ``u = (t+1)/N``, as diffusers' ``FlowMatchEulerDiscreteScheduler`` (σ_{N−1} = 1)."""
    if not (shift > 0 and math.isfinite(shift)):
        raise ValueError(f"shift={shift}: must be a number > 0")
    n = int(num_train_timesteps)
    u = torch.arange(1, n + 1, dtype=torch.float64) / n
    sigma = shift * u / (1 + (shift - 1) * u)
    return Schedule(
        name,
        "flow",
        1.0 - sigma,
        sigma,
        {"class": "FlowMatchEulerDiscreteScheduler", "shift": shift, "num_train_timesteps": n},
    )


def is_flow_config(config: dict) -> bool:
    """A diffusers scheduler config (dict) describes flow matching: a FlowMatch* class, or UniPC / DPM-Solver
    with ``use_flow_sigmas`` (Wan); a bare ``shift`` without a beta schedule is a flow preset. The one place
    this is decided (:mod:`freqscope.scheduler_adapter` builds on it)."""
    return (
        "FlowMatch" in str(config.get("_class_name", ""))
        or bool(config.get("use_flow_sigmas"))
        or ("shift" in config and "beta_schedule" not in config)
    )


def shift_key(config: dict) -> str:
    """The config field holding a flow schedule's shift: ``flow_shift`` with ``use_flow_sigmas`` (Wan's UniPC)."""
    return "flow_shift" if config.get("use_flow_sigmas") else "shift"


#: ``beta_schedule`` names this module (and diffusers' beta schedulers) compute.
BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2", "sigmoid")
#: Fields that make a JSON object a scheduler config even without ``_class_name``.
_SCHEDULER_FIELDS = ("beta_schedule", "beta_start", "beta_end", "trained_betas", "num_train_timesteps", "shift")


def scheduler_config_file(path: str | os.PathLike) -> Path:
    """The file a scheduler config path names: a file is that file; a folder is its
    ``scheduler_config.json`` (or, for a pipeline folder, ``scheduler/scheduler_config.json``)."""
    if not os.fspath(path).strip():
        raise ValueError("scheduler config: empty path; pass a scheduler_config.json or its folder")
    p = Path(path)
    if p.is_dir():
        file = next(
            (c for c in (p / "scheduler_config.json", p / "scheduler" / "scheduler_config.json") if c.exists()), None
        )
        if file is None:
            raise FileNotFoundError(
                f"no scheduler config in {p} (no scheduler_config.json); pass the file, its folder or a pipeline folder"
            )
    elif p.exists():
        file = p
    else:
        raise FileNotFoundError(f"no scheduler config at {p}: no such file; pass a scheduler_config.json or its folder")
    if not file.is_file():
        raise ValueError(f"scheduler config {file} is not a regular file (FIFO or device); pass a JSON file")
    return file


def _field_error(file: Path, name: str, value, must: str) -> ValueError:
    return ValueError(f"scheduler config {file}: {name}={value!r} {must}")


def load_scheduler_config(path: str | os.PathLike) -> dict:
    """Read and validate a diffusers scheduler config, as named (see :func:`scheduler_config_file`).

    It must be a JSON object of a known diffusers scheduler class (or, without ``_class_name``, hold
    scheduler fields), with betas in (0, 1), a supported ``beta_schedule``, at least 2 training
    timesteps and a shift > 0. Errors name the field that is wrong.
    """
    file = scheduler_config_file(path)
    config = _read_json_object(file)
    _check_class(file, config)
    _check_fields(file, config)
    return config


def _read_json_object(file: Path) -> dict:
    """The JSON object in ``file``, or a one-line error."""
    try:
        config = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(
            f"{file} is not valid JSON ({e.msg if hasattr(e, 'msg') else e}); pass a diffusers scheduler_config.json"
        ) from None
    if not isinstance(config, dict):
        raise ValueError(
            f"{file} holds a JSON {type(config).__name__}, not an object; pass a diffusers scheduler_config.json"
        )
    return config


def _check_class(file: Path, config: dict) -> None:
    """``_class_name`` names a diffusers scheduler, or (without it) the object holds scheduler fields."""
    name = config.get("_class_name")
    if name is not None:
        import diffusers  # heavy: loaded only when a config names a class

        cls = getattr(diffusers, str(name), None) if isinstance(name, str) and name.isidentifier() else None
        if not (isinstance(cls, type) and issubclass(cls, diffusers.SchedulerMixin)):
            raise _field_error(
                file,
                "_class_name",
                name,
                "is not a diffusers scheduler; pass a scheduler's config "
                "(scheduler/scheduler_config.json of a pipeline), not a model's",
            )
    elif not any(k in config for k in _SCHEDULER_FIELDS):
        raise ValueError(
            f"{file} has no scheduler field ({', '.join(_SCHEDULER_FIELDS)}); pass a diffusers scheduler_config.json"
        )


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_fields(file: Path, config: dict) -> None:
    """Betas in (0, 1), at least 2 training timesteps, a supported ``beta_schedule``, a shift > 0."""
    n = config.get("num_train_timesteps", 1000)
    if not (isinstance(n, int) and not isinstance(n, bool) and 2 <= n <= 1_000_000):
        raise _field_error(file, "num_train_timesteps", n, "must be a whole number from 2 to 1000000")
    for k in ("beta_start", "beta_end"):
        if k in config and not (_is_number(config[k]) and 0 < config[k] < 1):
            raise _field_error(file, k, config[k], "must be a number in (0, 1)")
    tb = config.get("trained_betas")
    if tb is not None:
        _check_trained_betas(file, config, tb, n)
    flow = is_flow_config(config)
    if not flow and tb is None and config.get("beta_schedule", "linear") not in BETA_SCHEDULES:
        raise _field_error(
            file, "beta_schedule", config.get("beta_schedule"), f"is not supported; use {', '.join(BETA_SCHEDULES)}"
        )
    if config.get("shift") is not None and not (_is_number(config["shift"]) and config["shift"] > 0):
        raise _field_error(file, "shift", config["shift"], "must be a number > 0")


def _check_trained_betas(file: Path, config: dict, tb, n) -> None:
    if not (isinstance(tb, list) and len(tb) >= 2 and all(_is_number(b) and 0 < b < 1 for b in tb)):
        raise ValueError(f"scheduler config {file}: trained_betas must be a list of numbers in (0, 1)")
    if "num_train_timesteps" in config and len(tb) != n:
        raise _field_error(file, "trained_betas", f"<{len(tb)} values>", f"must hold num_train_timesteps={n} values")


def schedule_from_config(
    path: str | os.PathLike, *, zero_terminal_snr: bool | None = None, shift: float | None = None
) -> Schedule:
    """Schedule from a diffusers scheduler config: a ``scheduler_config.json`` file, a folder holding
    one, or a pipeline folder with a ``scheduler/`` subfolder (validated by :func:`load_scheduler_config`)."""
    file = scheduler_config_file(path)
    config = load_scheduler_config(file)
    name = str(config.get("_class_name", file.stem))
    if is_flow_config(config):
        if config.get("use_dynamic_shifting") and shift is None:
            raise ValueError(f"{file} uses resolution-dependent shifting; give the shift with `shift`")
        sched = flow_schedule(
            num_train_timesteps=config.get("num_train_timesteps", 1000),
            shift=float(shift if shift is not None else config.get(shift_key(config), 1.0)),
            name=name,
        )
    else:
        sched = vp_schedule(config, name=name, zero_terminal_snr=zero_terminal_snr)
    sched.source["config"] = str(file)
    return sched


def get_schedule(
    name_or_path: str = DEFAULT_PRESET, *, zero_terminal_snr: bool = False, shift: float | None = None
) -> Schedule:
    """A preset (``sd``, ``animatediff``, ``linear``, ``cosine``, ``flow``) or a scheduler config path."""
    if name_or_path in PRESETS:
        cfg = PRESETS[name_or_path]
        if is_flow_config(cfg):
            return flow_schedule(shift=shift if shift is not None else cfg["shift"], name=name_or_path)
        if shift is not None:
            raise ValueError(f"`shift` applies to flow matching; preset {name_or_path!r} is a beta schedule")
        return vp_schedule(cfg, name=name_or_path, zero_terminal_snr=zero_terminal_snr)
    if os.sep in name_or_path or name_or_path.endswith(".json") or Path(name_or_path).exists():
        return schedule_from_config(name_or_path, zero_terminal_snr=zero_terminal_snr or None, shift=shift)
    raise ValueError(f"unknown schedule {name_or_path!r}; use one of {', '.join(PRESETS)} or a scheduler config path")
