"""The ``freeinit`` job as library calls: sample with FreeInit or a peer, measure the gap per band per pass.

The JSON document these results become is :mod:`freqscope.freeinit_report` (schema ``freqscope.freeinit/1``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .bands import BandSet, band_mean, band_power, make_bands
from .consistency import consistency_metrics
from .filters import lowpass_filter, variance_loss_db
from .freeinit import ITERATIVE, DenoiserSampler, PipelineSampler, SamplingResult, sample
from .freeinit_report import FREEINIT_SCHEMA
from .gap import gap_db, predicted_pass_power, relative_power_db
from .pipelines import adapter_for, pipeline_vae
from .reference import GaussianVideoModel
from .schedulers import is_ddim, reference_scheduler
from .video import write_video

__all__ = [
    "PipelineRun",
    "run_pipeline",
    "single_pass",
    "REFERENCE_SIZE",
    "reference_scheduler",
    "GapRun",
    "gap_run",
    "run_reference",
    "FREEINIT_SCHEMA",
]

#: Short side of the reference clip for the weight-free model: 16×64×(64·aspect) keeps every pass ~1 s on a CPU.
REFERENCE_SIZE = 64


@dataclass
class GapRun:
    prior: str
    result: SamplingResult
    gap_db: torch.Tensor  # (passes, bands)
    z0_power_db: torch.Tensor  # (passes, bands)
    gap_db_predicted: torch.Tensor | None
    z0_power_db_predicted: torch.Tensor | None
    consistency: list[dict] = field(default_factory=list)
    variance_loss_db: float = 0.0


def gap_run(
    result: SamplingResult,
    P: torch.Tensor,
    bands: BandSet,
    *,
    model: GaussianVideoModel | None = None,
    scheduler=None,
    frames: list[torch.Tensor] | None = None,
    embed=None,
    embed_background=None,
) -> GapRun:
    """Measure a sampling result against a clip of band power ``P`` (and predict it, where a closed form exists:
    the Gaussian reference model sampled with DDIM). ``frames``: each pass's video in pixels, ``(1, 3, T, H, W)``
    in [-1, 1], for the pixel-space consistency metrics (omitted: latent metrics only)."""
    info = result.info
    gaps = torch.stack([gap_db(p.init, bands, P, p.alpha_bar) for p in result.passes])
    rel = torch.stack([relative_power_db(p.latents, bands, P) for p in result.passes])
    f = info["filter"]
    mask = lowpass_filter(bands.shape, method=f["method"], d_s=f["d_s"], d_t=f["d_t"], order=f["order"])
    vp = info["prior"].startswith("freqprior")
    pred_gap = pred_rel = None
    closed = (
        model is not None
        and scheduler is not None
        and is_ddim(scheduler)
        and info["prior"] == "freeinit"
        and all(p.start_timestep == result.passes[0].start_timestep for p in result.passes)
    )
    if closed:
        gains = []
        for p in result.passes:
            scheduler.set_timesteps(p.num_inference_steps)
            gains.append(model.ddim_gain(scheduler, [int(t) for t in scheduler.timesteps]))
        inits, outs = predicted_pass_power(gains, mask, result.passes[0].alpha_bar, renoise=info["renoise"])
        ab = result.passes[0].alpha_bar
        pred_gap = torch.stack([10 * torch.log10((ab * P + 1 - ab) / band_mean(q.mean(0), bands)) for q in inits])
        pred_rel = torch.stack([10 * torch.log10(band_mean(q.mean(0), bands) / P) for q in outs])
    cons = []
    for k, p in enumerate(result.passes):
        video = frames[k] if frames is not None else None
        cons.append(consistency_metrics(p.latents, video, embed=embed, embed_background=embed_background))
    return GapRun(
        info["prior"],
        result,
        gaps,
        rel,
        pred_gap,
        pred_rel,
        cons,
        variance_loss_db(mask, variance_preserving=vp) if info["num_iters"] > 1 else 0.0,
    )


def single_pass(prior: str, kwargs: dict) -> dict:
    """Sampler options for ``prior``: the single-pass priors (PYoCo, offset, spectrum) run one pass."""
    return kwargs if prior in ITERATIVE else {**kwargs, "num_iters": 1}


def run_reference(
    z0: torch.Tensor,
    *,
    priors: tuple[str, ...] = ("freeinit",),
    scheduler=None,
    edges: tuple[float, ...] | None = None,
    seed: int = 0,
    pixel_frames: bool = True,
    embed=None,
    embed_background=None,
    progress=None,
    **sample_kwargs,
) -> tuple[BandSet, torch.Tensor, list[GapRun]]:
    """Run the weight-free reference model (the clip's own spectrum) with each prior; returns
    ``(bands, P, runs)``. ``pixel_frames``: the latent is pixel space, so pixel metrics use it directly;
    ``embed`` / ``embed_background``: DINO- / CLIP-type image embedders for VBench subject / background
    consistency (pixel space only)."""
    if z0.ndim != 5:
        raise ValueError(f"z0 must be (b, c, t, h, w), got shape {tuple(z0.shape)}")
    z0 = z0.float()
    bands = make_bands(tuple(z0.shape[-3:]), **({"edges": edges} if edges is not None else {}))
    P = band_power(z0, bands)
    model = GaussianVideoModel.from_latent(z0)
    scheduler = scheduler if scheduler is not None else reference_scheduler()
    runs = []
    for prior in progress(priors, desc="priors", unit="prior") if progress and len(priors) > 1 else priors:
        gen = torch.Generator().manual_seed(seed)  # every prior starts from the same seed: like for like
        res = sample(
            DenoiserSampler(model, scheduler),
            tuple(z0.shape),
            prior=prior,
            generator=gen,
            clip_power=(bands, P),
            **single_pass(prior, sample_kwargs),
        )
        runs.append(
            gap_run(
                res,
                P,
                bands,
                model=model,
                scheduler=scheduler,
                frames=[p.latents for p in res.passes] if pixel_frames else None,
                embed=embed if pixel_frames else None,
                embed_background=embed_background if pixel_frames else None,
            )
        )
    return bands, P, runs


@dataclass
class PipelineRun:
    """What :func:`run_pipeline` measured: as :func:`run_reference`, plus where the pipeline's passes went."""

    bands: BandSet
    P: torch.Tensor  # (n_bands,) band power of the clip encoded by the pipeline's VAE
    runs: list[GapRun]
    latent_shape: tuple[int, ...]
    encoder: dict  # the pipeline VAE's EncoderInfo
    videos: list[str] = field(default_factory=list)


def run_pipeline(
    pipe,
    frames: torch.Tensor,
    *,
    priors: tuple[str, ...] = ("freeinit",),
    call_kwargs: dict | None = None,
    edges: tuple[float, ...] | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    embed=None,
    embed_background=None,
    out_dir=None,
    source: str | None = None,
    progress=None,
    callback=None,
    **sample_kwargs,
) -> PipelineRun:
    """Sample a diffusers video pipeline with each prior and measure every pass against ``frames``
    ``(1, 3, t, H, W)``, a real clip at the generation size, encoded by the pipeline's own VAE. With
    ``out_dir``, the decoded video of every pass is written there as ``{prior}_pass{k}.mp4``; ``callback``
    observes the sampler (see :func:`~freqscope.freeinit.sample`)."""
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
            "choose --frames to suit the pipeline's VAE"
        )
    bands = make_bands(clip_shape[-3:], **({"edges": edges} if edges is not None else {}))
    P = band_power(z0, bands)
    call = {**(call_kwargs or {}), "num_frames": t, "height": H, "width": W, "frames": frames}
    out = PipelineRun(bands, P, [], clip_shape, vae.info.to_dict())
    for prior in progress(priors, desc="priors", unit="prior") if progress and len(priors) > 1 else priors:
        # Every prior starts from the same seed; a CPU generator, as diffusers recommends: noise is drawn on
        # the generator's device and moved (randn_tensor), so CPU and CUDA runs start from the same noise.
        gen = torch.Generator().manual_seed(seed)
        res = sample(
            PipelineSampler(pipe, **call),
            shape,
            prior=prior,
            generator=gen,
            device=device,
            callback=callback,
            clip_power=(bands, P),
            **single_pass(prior, sample_kwargs),
        )
        for p in res.passes:  # measured on the frames the pipeline decodes
            p.init, p.latents = p.init[:, :, pad:], p.latents[:, :, pad:]
        videos = [vae.decode(p.latents) for p in res.passes]  # decoded once: metrics and mp4s
        out.runs.append(
            gap_run(res, P.to(device), bands, frames=videos, embed=embed, embed_background=embed_background)
        )
        if out_dir is not None:
            for p, v in zip(res.passes, videos):
                path = f"{out_dir}/{prior}_pass{p.index}.mp4"
                write_video(path, v, fps=8)
                out.videos.append(path)
    return out
