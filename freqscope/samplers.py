"""Samplers: what turns a VP-normalised initial noise into a clean latent, observed through a callback.

:class:`DenoiserSampler` steps a model ``model(z, t, scheduler)`` (e.g. the weight-free
:class:`~freqscope.reference.GaussianVideoModel`) with a diffusers scheduler; :class:`PipelineSampler` runs
any supported diffusers video pipeline with ``latents=``. Both map the VP-normalised noise into their
scheduler's own sample space, can start a pass midway on their grid, and call ``callback`` after every step
with ``x``, ``i``, ``t``, ``sigma`` and ``denoised`` (see :func:`freqscope.freeinit.sample`).
"""

from __future__ import annotations

import copy
import functools
import inspect
import math
from collections.abc import Callable
from typing import Any

import torch

from .pipeline_adapter import adapter_for
from .scheduler_adapter import cut_grid, family, grid_levels, input_level, sample_level, starting_at, step_level

__all__ = ["Callback", "DenoiserSampler", "PipelineSampler"]

#: An observer of a sampler: called with one dict per event (see :func:`sample`).
Callback = Callable[[dict], None]


class _SchedulerSampler:
    """What :func:`sample` asks of a sampler besides sampling: the grid of a pass and its levels."""

    scheduler: Any = None  # a diffusers scheduler

    def grid(self, num_inference_steps: int, shape: tuple | None = None) -> list[tuple[float, float, float]]:
        """``(t, a, s)`` of every step of a pass with this many steps, as the sampler will run it."""
        self.scheduler.set_timesteps(num_inference_steps)
        return grid_levels(self.scheduler)

    def start_sample(self, init: torch.Tensor, num_inference_steps: int, start_index: int) -> torch.Tensor:
        """A VP-normalised initial noise in the scheduler's own sample space at the pass's first step:
        times ``init_noise_sigma`` at the start of the grid (as pipelines do), times ``√(a² + s²)`` midway."""
        if not start_index:
            return init * float(getattr(self.scheduler, "init_noise_sigma", 1.0))
        _, a, s = self.grid(num_inference_steps)[start_index]
        return init * math.sqrt(a**2 + s**2)


class DenoiserSampler(_SchedulerSampler):
    """A model ``model(z, t, scheduler) → output`` stepped by a diffusers scheduler (η = 0)."""

    def __init__(self, model: Callable[[torch.Tensor, Any, Any], torch.Tensor], scheduler: Any) -> None:
        self.model, self.scheduler = model, scheduler

    def __call__(
        self,
        init: torch.Tensor,
        *,
        num_inference_steps: int,
        start_index: int = 0,
        pass_index: int = 0,
        callback: Callback | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        sch = self.scheduler
        z = self.start_sample(init, num_inference_steps, start_index)
        with starting_at(sch, start_index):
            sch.set_timesteps(num_inference_steps)
            for i, t in enumerate(sch.timesteps):
                # Model evaluation at the scheduler's input scaling.
                zin = sch.scale_model_input(z, t) if hasattr(sch, "scale_model_input") else z
                out = self.model(zin, t, sch)
                # What the step starts from, for observers: its noise level and the model's clean estimate.
                seen = _step_view(sch, t, zin, out) if callback is not None else {}
                # One scheduler step.
                z = sch.step(out, t, z, return_dict=False)[0]
                if callback is not None:
                    callback({"stage": "step", "pass": pass_index, "i": i, "t": float(t), "x": z, **seen})
        return z


def _sigma(a: float, s: float) -> float:
    """k-diffusion's σ of a level ``(a, s)``: ``s / a`` (∞ at zero signal)."""
    return s / a if a > 0 else math.inf


def _step_view(scheduler, t, zin: torch.Tensor, out: torch.Tensor) -> dict:
    """``sigma`` of the sample a step starts from and ``denoised``, the clean latent the model's output
    implies for its input ``zin = A·x0 + B·ε`` (:func:`~freqscope.scheduler_adapter.input_level`): ε-prediction
    ``(zin − B·out)/A``, v-prediction ``(A·zin − B·out)/(A² + B²)``, flow velocity ``ε − x0``:
    ``(zin − B·out)/(A + B)``, x0-prediction ``out``."""
    A, B = input_level(scheduler, t)
    zin, out = zin.float(), out.float()
    pred = "flow" if family(scheduler) == "flow" else getattr(scheduler.config, "prediction_type", "epsilon")
    if pred == "flow":
        denoised = (zin - B * out) / (A + B)
    elif pred == "v_prediction":
        denoised = (A * zin - B * out) / (A**2 + B**2)
    elif pred == "sample":
        denoised = out
    else:
        denoised = (zin - B * out) / A if A > 0 else None  # type: ignore[assignment]
    return {"sigma": _sigma(*sample_level(scheduler, t)), "denoised": denoised}


class _GridProbe(Exception):
    """Raised from inside a pipeline call once its scheduler's grid is set: the grid is all we wanted."""


class PipelineSampler(_SchedulerSampler):
    """A diffusers video pipeline of a supported family (:mod:`freqscope.pipeline_adapter`), run with ``latents=``
    and ``output_type="latent"``.

    ``call_kwargs`` (prompt or prompt_embeds, guidance, ``num_frames``, ``height``, ``width``, …) are passed
    on every pass, translated by the family's adapter (frame count name, conditioning image). Latents are
    exchanged in ``(b, c, t, h, w)``; the adapter converts to and from the pipeline's own layout
    ((b, t, c, h, w) or packed tokens). A pass that starts midway runs the pipeline on the tail of the grid
    the pipeline itself sets (with its own ``sigmas``, ``mu``, shift), as img2img pipelines do.
    """

    def __init__(self, pipe: Any, **call_kwargs: Any) -> None:
        self.pipe = pipe
        self.adapter = adapter_for(pipe)
        self.scheduler = pipe.scheduler
        self.kwargs = self.adapter.call_kwargs(pipe, call_kwargs)
        self._params = set(inspect.signature(pipe.__call__).parameters)
        self._states: dict[tuple[tuple[int, ...], int], object] = {}  # (latent shape, steps) → scheduler
        self._shape: tuple[int, ...] | None = None

    def grid(self, num_inference_steps: int, shape: tuple | None = None) -> list[tuple[float, float, float]]:
        """The grid the pipeline sets for itself (its own sigmas, shift, ``mu``) for latents of ``shape``
        (default: the last pass's), read by starting a call that stops as soon as ``set_timesteps`` returns."""
        if shape is not None:
            self._shape = tuple(shape)
        return grid_levels(self._scheduler_state(num_inference_steps))

    def _scheduler_state(self, num_inference_steps: int):
        """A copy of the scheduler as the pipeline sets it up for a pass with this many steps."""
        if self._shape is None:
            raise RuntimeError("PipelineSampler needs the latent shape first: run a pass (sample() does)")
        key = (self._shape, num_inference_steps)  # the grid may depend on the latent size (dynamic shift, mu)
        if key not in self._states:
            original = self.scheduler.set_timesteps

            def probe(*args, **kwargs):
                original(*args, **kwargs)
                state = copy.deepcopy(self.scheduler)
                state.__dict__.pop("set_timesteps", None)  # the copy keeps its class method, not this probe
                self._states[key] = state
                raise _GridProbe

            self.scheduler.set_timesteps = functools.wraps(original)(probe)
            try:
                self._call(torch.zeros(self._shape), num_inference_steps)
            except _GridProbe:
                pass
            finally:
                del self.scheduler.set_timesteps
            if key not in self._states:
                raise RuntimeError(f"{type(self.pipe).__name__} never called scheduler.set_timesteps")
        return self._states[key]

    def _call(self, latents, num_inference_steps, *, pass_index=0, callback=None, generator=None):
        kw = dict(self.kwargs, num_inference_steps=num_inference_steps)
        shape = tuple(latents.shape)
        if callback is not None and "callback_on_step_end" in self._params:

            def on_step(pipe, i, t, tensors):
                x = self.adapter.from_pipeline(pipe, tensors["latents"], shape)
                callback({"stage": "step", "pass": pass_index, "i": i, "t": float(t), "x": x, **self._seen(i)})
                return {}

            kw["callback_on_step_end"] = on_step
        elif callback is not None and "callback" in self._params:  # older pipelines (TextToVideoSD)

            def legacy(i, t, x):
                x = self.adapter.from_pipeline(self.pipe, x, shape)
                callback({"stage": "step", "pass": pass_index, "i": i, "t": float(t), "x": x, **self._seen(i)})

            kw.update(callback=legacy, callback_steps=1)
        if generator is not None and "generator" in self._params:
            kw.setdefault("generator", generator)
        device = getattr(self.pipe, "device", latents.device)
        x = self.adapter.to_pipeline(self.pipe, latents.to(device, self.latents_dtype), shape)
        out = self.pipe(latents=x, output_type="latent", **kw)
        frames = out.frames if hasattr(out, "frames") else out[0]
        if isinstance(frames, (list, tuple)):
            frames = frames[0]
        return self.adapter.from_pipeline(self.pipe, torch.as_tensor(frames), shape)

    def _seen(self, i: int) -> dict:
        """``sigma`` of step ``i`` of the grid the pipeline runs (its live scheduler); ``denoised`` is None:
        a pipeline's step callback exposes its latents only, not the model's clean estimate."""
        return {"sigma": _sigma(*step_level(self.scheduler, i)), "denoised": None}

    def __call__(
        self,
        init: torch.Tensor,
        *,
        num_inference_steps: int,
        start_index: int = 0,
        pass_index: int = 0,
        callback: Callback | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        self._shape = tuple(init.shape)
        latents = init  # the pipeline multiplies by init_noise_sigma itself
        if start_index:
            # The sample at the start level, divided by the init_noise_sigma the pipeline will multiply by
            # (that of the cut grid: pipelines set their timesteps before preparing latents).
            cut = copy.deepcopy(self._scheduler_state(num_inference_steps))
            cut_grid(cut, start_index)
            sigma = float(getattr(cut, "init_noise_sigma", 1.0))
            _, a, s = self.grid(num_inference_steps)[start_index]
            latents = init * math.sqrt(a**2 + s**2) / sigma
        with starting_at(self.scheduler, start_index):
            z = self._call(latents, num_inference_steps, pass_index=pass_index, callback=callback, generator=generator)
        if not torch.isfinite(z).all():
            bad = int((~torch.isfinite(z)).sum())
            raise ValueError(
                f"pass {pass_index} of {type(self.pipe).__name__} in {str(self.denoiser_dtype).replace('torch.', '')} "
                f"gave {bad} NaN/Inf latent values; try `dtype` bfloat16 (float16 overflows in some models) "
                "or float32"
            )
        return z.to(init.device)

    @property
    def denoiser_dtype(self) -> torch.dtype:
        """The dtype of the pipeline's transformer or UNet (the pipeline's, if it has neither)."""
        den = getattr(self.pipe, "transformer", None) or getattr(self.pipe, "unet", None)
        dtype = getattr(den, "dtype", None) or getattr(self.pipe, "dtype", None)
        return dtype if isinstance(dtype, torch.dtype) else torch.float32

    @property
    def latents_dtype(self) -> torch.dtype:
        """The dtype latents go into the pipeline in: float32 where its ``prepare_latents`` casts them itself (flow
        pipelines denoise in float32: rounding them first would lose the re-noised latent's precision), else the
        denoiser's."""
        return torch.float32 if self.adapter.float32_latents else self.denoiser_dtype
