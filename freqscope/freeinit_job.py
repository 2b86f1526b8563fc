"""The ``freeinit`` job as library calls: sample with FreeInit or a peer, measure the gap per band per pass.

:func:`run_freeinit` is the ``freeinit`` command: one clip, the reference model or a diffusers pipeline,
one :class:`FreeInitRun`. Its measurements are observers on the sampler's callback: :class:`GapObserver`
(the gap of every pass's initial noise and the power of its result) and :class:`ConsistencyObserver`
(consistency and motion of every result). The JSON document these results become is
:mod:`freqscope.freeinit_report` (schema ``freqscope.freeinit/1``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .bands import DEFAULT_EDGES, BandSet, band_mean, band_power, make_bands
from .consistency import consistency_metrics, hf_image_embedder
from .devices import resolve_device
from .encode import load_encoder
from .filters import variance_loss_db
from .freeinit import SamplingResult, observers, sample, sample_options
from .gap import gap_db, predicted_pass_power, relative_power_db, training_power
from .hub import check_hub_source
from .pipeline_adapter import adapter_for, load_pipeline, pipeline_vae
from .priors import FreeInit, Prior
from .reference import GaussianVideoModel
from .samplers import Callback, DenoiserSampler, PipelineSampler
from .scheduler_adapter import is_ddim, reference_scheduler
from .video import check_read_options, list_videos, read_video, write_video

__all__ = [
    "FreeInitRun",
    "run_freeinit",
    "run_pipeline",
    "run_reference",
    "REFERENCE_SIZE",
    "PIPELINE_SIZE",
    "check_freeinit_options",
    "reference_scheduler",
    "GapRun",
    "GapObserver",
    "ConsistencyObserver",
    "gap_run",
]

#: Short side of the reference clip for the weight-free model: 16×64×(64·aspect) keeps every pass ~1 s on a CPU.
REFERENCE_SIZE = 64
#: Height and width of a pipeline's video (and of the clip it is measured against).
PIPELINE_SIZE = 256
#: Frames per second of the decoded pass videos a pipeline run writes.
PASS_VIDEO_FPS = 8


@dataclass
class GapRun:
    """One prior's passes and what was measured on them; every tensor on the CPU (docs/architecture.md, Devices)."""

    prior: str
    result: SamplingResult  # its passes' latents and mask on the CPU
    gap_db: torch.Tensor  # (passes, bands)
    z0_power_db: torch.Tensor  # (passes, bands)
    gap_db_predicted: torch.Tensor | None
    z0_power_db_predicted: torch.Tensor | None
    consistency: list[dict] = field(default_factory=list)
    variance_loss_db: float = 0.0


class GapObserver:
    """Observes :func:`~freqscope.freeinit.sample` through its callback: at the end of every pass, the gap
    of the pass's initial noise against training at its start level (:func:`~freqscope.gap.gap_db`) and the
    band power of its result relative to the clip's, both ``(n_bands,)`` per pass, measured on the latents'
    device and kept on the CPU. ``frames``: the frames measured (a pipeline may denoise padding frames first)."""

    def __init__(self, bands: BandSet, P: torch.Tensor, *, frames: slice = slice(None)):
        self.bands, self.P, self.frames = bands, P, frames
        self.gap_db: list[torch.Tensor] = []
        self.z0_power_db: list[torch.Tensor] = []

    def __call__(self, d: dict) -> None:
        if d["stage"] == "end":
            init, z0 = d["init"][:, :, self.frames], d["x"].float()[:, :, self.frames]
            P = self.P.to(z0.device)  # the clip's band power, where the latents are
            self.gap_db.append(gap_db(init, self.bands, P, d["alpha_bar"]).cpu())
            self.z0_power_db.append(relative_power_db(z0, self.bands, P).cpu())


class ConsistencyObserver:
    """Observes :func:`~freqscope.freeinit.sample`: consistency and motion of every pass's result
    (:func:`~freqscope.consistency.consistency_metrics`). ``decode`` maps a latent to its video in pixels
    (``(1, 3, T, H, W)`` in [-1, 1]; the identity for pixel latents; None: latent metrics only); the decoded
    videos are kept in ``videos`` on the CPU, as 8-bit pixels with ``uint8`` (as a video file holds them: a
    quarter of float32's memory; ``v.float() / 127.5 - 1`` gives them back in [-1, 1]).
    ``embed`` / ``embed_background``: DINO- / CLIP-type image embedders."""

    def __init__(
        self,
        *,
        decode: Callable[[torch.Tensor], torch.Tensor] | None = None,
        embed: Callable[[torch.Tensor], torch.Tensor] | None = None,
        embed_background: Callable[[torch.Tensor], torch.Tensor] | None = None,
        frames: slice = slice(None),
        uint8: bool = False,
    ):
        self.decode, self.embed, self.embed_background, self.frames = decode, embed, embed_background, frames
        self.uint8 = uint8
        self.metrics: list[dict] = []
        self.videos: list[torch.Tensor] = []

    def __call__(self, d: dict) -> None:
        if d["stage"] != "end":
            return
        z0 = d["x"].float()[:, :, self.frames]
        video = self.decode(z0) if self.decode is not None else None
        if video is not None:
            self.videos.append(_uint8(video).cpu() if self.uint8 else video.cpu())
        self.metrics.append(consistency_metrics(z0, video, embed=self.embed, embed_background=self.embed_background))


def _uint8(frames: torch.Tensor) -> torch.Tensor:
    """Frames in [-1, 1] as 8-bit pixels, rounded as a video writer does (on their device; same layout)."""
    return ((frames.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def _from_uint8(frames: torch.Tensor) -> torch.Tensor:
    """8-bit pixels back in [-1, 1] (float32): :func:`_uint8` of it gives the same pixels."""
    return frames.float() / 127.5 - 1


def _predicted(
    result: SamplingResult,
    P: torch.Tensor,
    bands: BandSet,
    model: GaussianVideoModel | None = None,
    scheduler: Any = None,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Closed-form gap and result power per pass (the Gaussian reference model sampled with DDIM, FreeInit,
    every pass from the same start), else ``(None, None)``."""
    passes = result.passes
    if not (
        model is not None
        and scheduler is not None
        and is_ddim(scheduler)
        and type(result.prior) is FreeInit  # the closed form is FreeInit's mixing
        and all(p.start_timestep == passes[0].start_timestep for p in passes)
    ):
        return None, None
    by_steps: dict[int, torch.Tensor] = {}  # passes of the same step count share one closed-form gain
    for p in passes:
        if p.num_inference_steps not in by_steps:
            scheduler.set_timesteps(p.num_inference_steps)
            by_steps[p.num_inference_steps] = model.ddim_gain(scheduler, [int(t) for t in scheduler.timesteps])
    gains = [by_steps[p.num_inference_steps] for p in passes]
    ab = passes[0].alpha_bar
    inits, outs = predicted_pass_power(gains, result.mask, ab, renoise=result.info["renoise"])
    pred_gap = torch.stack([10 * torch.log10(training_power(P, ab) / band_mean(q.mean(0), bands)) for q in inits])
    pred_rel = torch.stack([10 * torch.log10(band_mean(q.mean(0), bands) / P) for q in outs])
    return pred_gap, pred_rel


def _gap_run(
    result: SamplingResult, P: torch.Tensor, bands: BandSet, gaps: GapObserver, cons: ConsistencyObserver, **closed: Any
) -> GapRun:
    """What the observers measured on ``result``, with its closed form and the variance its mixing loses."""
    pred_gap, pred_rel = _predicted(result, P, bands, **closed)
    return GapRun(
        result.info["prior"],
        result,
        torch.stack(gaps.gap_db),
        torch.stack(gaps.z0_power_db),
        pred_gap,
        pred_rel,
        cons.metrics,
        variance_loss_db(result.mask, variance_preserving=result.prior.variance_preserving)
        if result.info["num_iters"] > 1
        else 0.0,
    )


def gap_run(
    result: SamplingResult,
    P: torch.Tensor,
    bands: BandSet,
    *,
    model: GaussianVideoModel | None = None,
    scheduler: Any = None,
    frames: list[torch.Tensor] | None = None,
    embed: Callable[[torch.Tensor], torch.Tensor] | None = None,
    embed_background: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> GapRun:
    """Measure a finished sampling result against a clip of band power ``P`` (and predict it, where a closed
    form exists: the Gaussian reference model sampled with DDIM), replaying its passes through the observers.
    ``frames``: each pass's video in pixels, ``(1, 3, T, H, W)`` in [-1, 1], for the pixel-space consistency
    metrics (omitted: latent metrics only)."""
    videos = iter(frames) if frames is not None else None
    gaps = GapObserver(bands, P)
    cons = ConsistencyObserver(
        decode=(lambda z: next(videos)) if videos is not None else None, embed=embed, embed_background=embed_background
    )
    for p in result.passes:
        end = {"stage": "end", "pass": p.index, "x": p.latents, "init": p.init, "alpha_bar": p.alpha_bar}
        gaps(end)
        cons(end)
    return _gap_run(result, P, bands, gaps, cons, model=model, scheduler=scheduler)


@dataclass
class FreeInitRun:
    """What the ``freeinit`` job measured: the clip's bands and band power, one :class:`GapRun` per prior."""

    bands: BandSet
    P: torch.Tensor  # (n_bands,) band power of the clip's latent (CPU, as every tensor of the run)
    runs: list[GapRun]
    latent_shape: tuple[int, ...]  # the clip's latent (b, c, t, h, w)
    encoder: dict | None = None  # EncoderInfo of the clip's encoder (the pipeline's VAE for pipelines)
    videos: list[str] = field(default_factory=list)  # the decoded pass videos written (pipelines)
    video: str | None = None  # path of the clip
    scheduler: Any = None  # the scheduler that sampled
    pipeline: str | None = None  # the pipeline's source, or None for the reference model


def _each(priors: tuple[str | Prior, ...], progress: Callable[..., Any] | None) -> Iterable[str | Prior]:
    return progress(priors, desc="priors", unit="prior") if progress and len(priors) > 1 else priors


def run_reference(
    z0: torch.Tensor,
    *,
    priors: tuple[str | Prior, ...] = ("freeinit",),
    scheduler: Any = None,
    edges: tuple[float, ...] = DEFAULT_EDGES,
    seed: int = 0,
    pixel_frames: bool = True,
    embed: Callable[[torch.Tensor], torch.Tensor] | None = None,
    embed_background: Callable[[torch.Tensor], torch.Tensor] | None = None,
    progress: Callable[..., Any] | None = None,
    **options: Any,
) -> FreeInitRun:
    """Run the weight-free reference model (the clip's own spectrum) with each prior (a name or a prior
    object). ``options``: :func:`~freqscope.freeinit.sample`'s, :class:`~freqscope.freeinit.FreeInitOptions`'
    and the priors' own, in one mapping (:func:`~freqscope.freeinit.sample_options`). ``pixel_frames``: the
    latent is pixel space, so pixel metrics use it directly; ``embed`` / ``embed_background``: DINO- /
    CLIP-type image embedders for VBench subject / background consistency (pixel space only)."""
    if z0.ndim != 5:
        raise ValueError(f"z0 must be (b, c, t, h, w), got shape {tuple(z0.shape)}")
    z0 = z0.float()
    t, h, w = z0.shape[-3:]
    bands = make_bands((t, h, w), edges)
    P = band_power(z0, bands)
    model = GaussianVideoModel.from_latent(z0)
    scheduler = scheduler if scheduler is not None else reference_scheduler()
    out = FreeInitRun(bands, P, [], tuple(z0.shape), scheduler=scheduler)
    for prior in _each(priors, progress):
        gen = torch.Generator().manual_seed(seed)  # every prior starts from the same seed: like for like
        gaps = GapObserver(bands, P)
        cons = ConsistencyObserver(
            decode=(lambda z: z) if pixel_frames else None,
            embed=embed if pixel_frames else None,
            embed_background=embed_background if pixel_frames else None,
        )
        res = sample(
            DenoiserSampler(model, scheduler),
            tuple(z0.shape),
            generator=gen,
            clip_power=(bands, P),
            callback=observers(gaps, cons),
            **sample_options(prior, options),
        )
        out.runs.append(_gap_run(res, P, bands, gaps, cons, model=model, scheduler=scheduler))
    return out


def run_pipeline(
    pipe: Any,
    frames: torch.Tensor,
    *,
    priors: tuple[str | Prior, ...] = ("freeinit",),
    call_kwargs: dict | None = None,
    edges: tuple[float, ...] = DEFAULT_EDGES,
    seed: int = 0,
    device: torch.device | str = "cpu",
    embed: Callable[[torch.Tensor], torch.Tensor] | None = None,
    embed_background: Callable[[torch.Tensor], torch.Tensor] | None = None,
    out_dir: str | os.PathLike | None = None,
    source: str | None = None,
    progress: Callable[..., Any] | None = None,
    callback: Callback | None = None,
    **options: Any,
) -> FreeInitRun:
    """Sample a diffusers video pipeline with each prior and measure every pass against ``frames``
    ``(1, 3, t, H, W)``, a real clip at the generation size, encoded by the pipeline's own VAE. With
    ``out_dir``, the decoded video of every pass is written there as ``{prior}_pass{k}.mp4``; ``callback``
    observes the sampler (see :func:`~freqscope.freeinit.sample`); ``options`` as :func:`run_reference`'s."""
    _, _, t, H, W = frames.shape
    vae = pipeline_vae(pipe, source)
    z0 = vae(frames, progress=progress).float()
    adapter = adapter_for(pipe)
    shape = adapter.latent_shape(pipe, num_frames=t, height=H, width=W)  # what the pipeline denoises
    pad = adapter.pad_frames(pipe, z0.shape[2])  # CogVideoX 1.5: padding frames first, dropped when decoded
    clip_shape = (shape[0], shape[1], shape[2] - pad, *shape[3:])
    if tuple(z0.shape[1:]) != clip_shape[1:]:
        raise ValueError(
            f"the clip encodes to {tuple(z0.shape)} but the pipeline denoises {clip_shape}; "
            "choose a frame count (frames) that suits the pipeline's VAE"
        )
    grid = (clip_shape[2], clip_shape[3], clip_shape[4])
    bands = make_bands(grid, edges)
    P = band_power(z0, bands).cpu()  # a result: on the CPU (the observers and priors move it where they need it)
    call = {**(call_kwargs or {}), "num_frames": t, "height": H, "width": W, "frames": frames}
    encoder = vae.info_for(t).to_dict()
    out = FreeInitRun(bands, P, [], clip_shape, encoder, scheduler=pipe.scheduler, pipeline=source)
    sampler = PipelineSampler(pipe, **call)  # one for every prior: the pipeline's grids are probed once
    for prior in _each(priors, progress):
        # Every prior starts from the same seed; a CPU generator, as diffusers recommends: noise is drawn on
        # the generator's device and moved (randn_tensor), so CPU and CUDA runs start from the same noise.
        gen = torch.Generator().manual_seed(seed)
        # Measured on the frames the pipeline decodes; each pass decoded once, for metrics and mp4s.
        gaps = GapObserver(bands, P, frames=slice(pad, None))
        cons = ConsistencyObserver(
            decode=vae.decode, embed=embed, embed_background=embed_background, frames=slice(pad, None), uint8=True
        )
        res = sample(
            sampler,
            shape,
            generator=gen,
            device=device,
            callback=observers(callback, gaps, cons),
            clip_power=(bands, P),
            **sample_options(prior, options),
        )
        # The passes kept in the result: on the CPU, without the padding frames.
        for p in res.passes:
            p.init, p.latents = p.init[:, :, pad:].cpu(), p.latents[:, :, pad:].cpu()
        res.mask = res.mask.cpu()
        out.runs.append(_gap_run(res, P, bands, gaps, cons))
        if out_dir is not None:
            for p, v in zip(res.passes, cons.videos):
                path = f"{out_dir}/{res.info['prior']}_pass{p.index}.mp4"
                write_video(path, _from_uint8(v), fps=PASS_VIDEO_FPS)
                out.videos.append(path)
    return out


def check_freeinit_options(
    *,
    pipeline: str | None = None,
    read_options: dict | None = None,
    call_kwargs: dict | None = None,
    size: tuple[int, int] = (PIPELINE_SIZE, PIPELINE_SIZE),
    out_dir: str | os.PathLike | None = None,
    sample_kwargs: dict | None = None,
    offload: str | None = None,
) -> None:
    """Refuse :func:`run_freeinit` options that contradict each other, before any work: ``fps`` with
    ``stride``, a pipeline's options (``call_kwargs``, a ``size`` other than ``PIPELINE_SIZE``, ``out_dir``)
    without ``pipeline``, and adaptive FreeInit's options without ``num_iters="auto"``."""
    check_read_options(read_options or {})
    pipeline_only = call_kwargs or out_dir is not None or size != (PIPELINE_SIZE, PIPELINE_SIZE) or offload
    if pipeline is None and pipeline_only:
        raise ValueError(
            "`prompt`, `negative_prompt`, `guidance_scale`, `height`, `width`, `out_dir` and `offload` "
            "apply with `pipeline` only"
        )
    kw = sample_kwargs or {}
    if kw.get("num_iters") != "auto" and ("gap_tol" in kw or "max_iters" in kw):
        raise ValueError("`gap_tol` and `max_iters` apply with `num_iters` auto")


def run_freeinit(
    video: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    pipeline: str | None = None,
    scheduler: str | None = None,
    shift: float | None = None,
    priors: tuple[str | Prior, ...] = ("freeinit",),
    edges: tuple[float, ...] = DEFAULT_EDGES,
    seed: int = 0,
    device: torch.device | str | None = None,
    read_options: dict | None = None,
    size: int = REFERENCE_SIZE,
    height: int = PIPELINE_SIZE,
    width: int = PIPELINE_SIZE,
    encoder_options: dict | None = None,
    dtype: torch.dtype | None = None,
    call_kwargs: dict | None = None,
    embedder: str | None = None,
    background_embedder: str | None = None,
    out_dir: str | os.PathLike | None = None,
    offload: str | None = None,
    progress: Callable[..., Any] | None = None,
    **options: Any,
) -> FreeInitRun:
    """The ``freeinit`` job: the initialization gap per band, pass by pass, of one clip.

    Without ``pipeline``: the clip (``read_options`` for :func:`~freqscope.video.read_video`, short side
    ``size``) is encoded (``encoder_options`` for :func:`~freqscope.encode.load_encoder`, ``dtype``) and the
    weight-free reference model with its spectrum is sampled with ``scheduler`` (a preset name or a
    scheduler config, :func:`~freqscope.scheduler_adapter.reference_scheduler`, with ``shift``). With
    ``pipeline`` (a folder or hub id): the clip is read at ``height``×``width``, encoded by the pipeline's
    own VAE, and the pipeline (``call_kwargs``: prompt, guidance, …) is sampled, each pass's video written
    to ``out_dir`` if given. ``embedder`` / ``background_embedder``: DINO- / CLIP-type image embedders for
    VBench subject / background consistency. ``device``: see :func:`~freqscope.devices.resolve_device`;
    ``offload``, and ``vae_tiling`` of ``encoder_options``: the pipeline's, see
    :func:`~freqscope.pipeline_adapter.load_pipeline`.
    ``options``: :func:`~freqscope.freeinit.sample`'s, :class:`~freqscope.freeinit.FreeInitOptions`' and the
    priors' own (each prior takes its own), in one mapping."""
    check_freeinit_options(
        pipeline=pipeline,
        read_options=read_options,
        call_kwargs=call_kwargs,
        size=(height, width),
        out_dir=out_dir,
        sample_kwargs=options,
        offload=offload,
    )
    if pipeline is not None:
        check_hub_source(pipeline, "`pipeline`", filename="model_index.json")  # fail fast, before any work
    device = resolve_device(device)
    paths = list_videos([video] if isinstance(video, (str, os.PathLike)) else list(video))
    if len(paths) != 1:
        raise ValueError(f"video: freeinit takes one reference clip, got {len(paths)}; pass a single file")
    read_kw = dict(read_options or {})
    embed = hf_image_embedder(embedder, device=device) if embedder is not None else None
    embed_bg = hf_image_embedder(background_embedder, device=device) if background_embedder is not None else None
    if pipeline is None:
        sch = reference_scheduler(**({"name_or_path": scheduler} if scheduler is not None else {}), shift=shift)
        enc_kw: dict[str, Any] = {**(encoder_options or {}), **({"dtype": dtype} if dtype is not None else {})}
        enc = load_encoder(**enc_kw, device=device)
        x, info = read_video(paths[0], size=size, **read_kw)
        z0 = enc(x, progress=progress).float().cpu()
        out = run_reference(
            z0,
            priors=priors,
            scheduler=sch,
            edges=edges,
            seed=seed,
            pixel_frames=enc.info.name == "pixel",
            embed=embed,
            embed_background=embed_bg,
            progress=progress,
            **options,
        )
        out.encoder = enc.info_for(x.shape[2]).to_dict()
    else:
        if encoder_options and (
            encoder_options.get("vae") is not None or encoder_options.get("encoder") not in (None, "auto", "vae")
        ):
            raise ValueError("pipeline: the clip is encoded by the pipeline's own VAE; drop vae and encoder")
        tiling = bool((encoder_options or {}).get("vae_tiling"))
        pipe = load_pipeline(pipeline, device=device, dtype=dtype, offload=offload, vae_tiling=tiling)
        x, info = read_video(paths[0], size=(height, width), **read_kw)
        out = run_pipeline(
            pipe,
            x,
            priors=priors,
            call_kwargs=call_kwargs,
            edges=edges,
            seed=seed,
            device=device,
            embed=embed,
            embed_background=embed_bg,
            out_dir=out_dir,
            source=pipeline,
            progress=progress,
            **options,
        )
    out.video = info.path
    return out
