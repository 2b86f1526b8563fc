"""One clip as library calls: clip → latent → its row (:mod:`freqscope.rows`) → per-band SNR; and the
summary over clips (:func:`~freqscope.aggregate.aggregate` of their rows, as for a dataset)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from .aggregate import Summary, aggregate
from .bands import DEFAULT_EDGES, BandSet, make_bands
from .encode import Encoder
from .noise_schedule import Schedule
from .rows import band_settings, check_finite_power, latent_rows, read_options, settings_columns, source_settings
from .snr import BandSNR, band_snr, clip_weights
from .video import read_video

__all__ = ["ClipResult", "Summary", "analyze_latent", "analyze_video", "check_finite_power", "summarize"]


@dataclass
class ClipResult:
    """One clip (or one latent): its row (:mod:`freqscope.rows`) and its per-band SNR under one schedule, every
    tensor on the CPU (docs/architecture.md, Devices)."""

    video: dict  # VideoInfo.to_dict(), or {"path": None} for a bare latent
    encoder: dict  # EncoderInfo.to_dict()
    latent_shape: tuple[int, ...]  # (b, c, t, h, w)
    bands: BandSet
    snr: BandSNR
    rapsd: tuple[torch.Tensor, torch.Tensor] | None  # (radius, power); None unless asked for (radial=True)
    row: dict = field(default_factory=dict)  # the clip's row: band powers, bin counts, energy shares, settings
    z0: torch.Tensor | None = None  # the latent itself (CPU), kept only when asked (keep_latent=True)


def analyze_latent(
    z0: torch.Tensor,
    schedule: Schedule,
    *,
    edges: tuple[float, ...] = DEFAULT_EDGES,
    decomposition: str = "spatiotemporal",
    time_scale: float = 1.0,
    seeds: int = 0,
    generator: torch.Generator | None = None,
    video: dict | None = None,
    encoder: dict | None = None,
    progress: Callable | None = None,
    radial: bool = True,
    settings: dict | None = None,
) -> ClipResult:
    """Per-band SNR of a latent ``z0`` of shape ``(b, c, t, h, w)`` at every timestep of ``schedule``
    (and its radially averaged spectrum with ``radial``), from its row (:func:`~freqscope.rows.latent_rows`,
    one FFT). ``settings``: how the latent was made (:func:`~freqscope.rows.source_settings`), to key the row by
    with the band settings."""
    opts: dict[str, Any] = dict(edges=edges, decomposition=decomposition, time_scale=time_scale)
    on_device, (row,) = latent_rows(z0, **opts, radial=radial, per_sample=False)  # bands on z0's device
    settings = {**(settings or {}), **band_settings(edges, decomposition, time_scale)}
    row |= {"path": (video or {}).get("path"), "status": "ok", **settings_columns(settings)}
    f64 = lambda k: torch.tensor(row[k], dtype=torch.float64)  # noqa: E731 - a row's numbers, on the CPU
    power = f64("band_power")
    res = band_snr(z0, on_device, schedule, seeds=seeds, generator=generator, progress=progress, power=power)
    profile = (f64("radius"), f64("radial_power")) if radial else None
    t, h, w = z0.shape[-3:]
    bands = make_bands((t, h, w), **opts)  # the result's: on the CPU (cached)
    return ClipResult(video or {"path": None}, encoder or {}, tuple(z0.shape), bands, res, profile, row)


def analyze_video(
    path: str | os.PathLike,
    encoder: Encoder,
    schedule: Schedule,
    *,
    frames: int = 16,
    stride: int = 1,
    fps: float | None = None,
    start: float = 0.0,
    size: int | None = None,
    generator: torch.Generator | None = None,
    progress: Callable | None = None,
    keep_latent: bool = False,
    **kwargs: Any,
) -> ClipResult:
    """Read a clip, encode it with ``encoder`` (see :mod:`freqscope.encode`) and analyse its latent
    (kept in the result with ``keep_latent``, e.g. to write band videos)."""
    read: dict[str, Any] = dict(frames=frames, stride=stride, fps=fps, start=start, size=size)
    x, info = read_video(path, **read)
    z0 = encoder(x, progress=progress, generator=generator)
    if z0.shape[2] < 2:
        raise ValueError(
            f"{path}: the latent has {z0.shape[2]} frame(s); spatio-temporal bands need 2 or more "
            "(ask for more `frames`)"
        )
    res = analyze_latent(
        z0.float(),
        schedule,
        video=info.to_dict(),
        encoder=encoder.info_for(x.shape[2]).to_dict(),
        generator=generator,
        progress=progress,
        # Where each clip starts is the clip's own (its row's start), so clips read from different points summarise.
        settings=source_settings(encoder, {k: v for k, v in read_options(read).items() if k != "start"}),
        **kwargs,
    )
    res.row["start"] = start
    if keep_latent:
        res.z0 = z0.float().cpu()
    return res


def summarize(clips: list[ClipResult], schedule: Schedule, *, weights: torch.Tensor | None = None) -> Summary:
    """Mean and spread over clips (:func:`~freqscope.aggregate.aggregate` of their rows), optionally weighted
    per clip. Clips may differ in size: bands are in normalised frequency."""
    if not clips:
        raise ValueError("no clip to summarize")
    rows = [c.row for c in clips]
    if weights is not None:
        w = clip_weights(weights, len(clips))  # checks them
        rows = [{**r, "weight": float(x)} for r, x in zip(rows, w.tolist())]
    s = aggregate(rows, schedule, weighted=weights is not None)
    s.paths, s.clips = [c.video.get("path") for c in clips], clips  # None for a bare latent
    return s
