"""The ``snr`` job as library calls: clip → latents → bands → per-band SNR, and the summary over clips."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from .bands import DEFAULT_EDGES, BandSet, band_mean, band_power, bin_power, make_bands, radial_profile
from .encode import Encoder
from .schedule import Schedule
from .snr import BandSNR, band_snr, clip_weights, crossing_timesteps, snr_closed_form, to_db
from .video import read_video

__all__ = ["ClipResult", "Summary", "analyze_latent", "analyze_video", "check_finite_power", "summarize"]


@dataclass
class ClipResult:
    """Per-band SNR of one clip (or one latent) under one schedule."""

    video: dict  # VideoInfo.to_dict(), or {"path": None} for a bare latent
    encoder: dict  # EncoderInfo.to_dict()
    latent_shape: tuple[int, ...]  # (b, c, t, h, w)
    bands: BandSet
    snr: BandSNR
    rapsd: tuple[torch.Tensor, torch.Tensor] | None  # (radius, power); None unless asked for (radial=True)
    z0: torch.Tensor | None = None  # the latent itself, kept only when asked (keep_latent=True)


@dataclass
class Summary:
    """Mean (in linear power) and spread over clips, per band."""

    clips: list[ClipResult]
    schedule: Schedule
    power: torch.Tensor  # (n_bands,) mean over clips
    energy_fraction: torch.Tensor  # (n_bands,)
    snr_db: torch.Tensor  # (n_bands, N) SNR of the mean power over clips
    snr_db_std: torch.Tensor  # (n_bands, N) spread over clips (0 for one clip)
    crossing: list[int | None] = field(default_factory=list)

    @property
    def bands(self) -> BandSet:
        return self.clips[0].bands


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
) -> ClipResult:
    """Per-band SNR of a latent ``z0`` of shape ``(b, c, t, h, w)`` at every timestep of ``schedule``
    (and its radially averaged spectrum with ``radial``: a second, full-spectrum pass)."""
    if z0.ndim != 5:
        raise ValueError(f"z0 must be (b, c, t, h, w), got shape {tuple(z0.shape)}")
    T, H, W = z0.shape[-3:]
    bands = make_bands(
        (T, H, W), edges, decomposition=decomposition, time_scale=time_scale, device=z0.device
    )
    empty = [b.name for b in bands.bands if b.n_bins == 0]
    if empty:
        warnings.warn(
            f"band(s) {', '.join(empty)} hold no frequency bin of the {'×'.join(map(str, bands.shape))} "
            "latent grid and are reported as empty; use coarser `edges` or more frames/pixels",
            stacklevel=2,
        )
    # The one FFT of z0 that every number below comes from (the full per-bin power only for the profile).
    p = bin_power(z0) if radial else None  # (t, h, w)
    power = band_mean(p, bands) if p is not None else band_power(z0, bands)  # (n_bands,)
    check_finite_power(power, bands)
    res = band_snr(z0, bands, schedule, seeds=seeds, generator=generator, progress=progress, power=power)
    profile = radial_profile(p, decomposition=decomposition, time_scale=time_scale) if p is not None else None
    return ClipResult(video or {"path": None}, encoder or {}, tuple(z0.shape), bands, res, profile)


def check_finite_power(power: torch.Tensor, bands: BandSet, what: str = "z0") -> None:
    """Raise if a non-empty band's power ``(…, n_bands)`` is NaN/Inf: the latent held NaN/Inf values
    (checked on a few numbers instead of every pixel; the FFT spreads a NaN or Inf over the bands)."""
    full = torch.tensor([b.n_bins > 0 for b in bands.bands], device=power.device)
    if not torch.isfinite(power[..., full]).all():
        raise ValueError(f"{what} holds NaN/Inf values; check the input frames or the encoder (try `dtype` float32)")


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
    x, info = read_video(path, frames=frames, stride=stride, fps=fps, start=start, size=size)
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
        **kwargs,
    )
    if keep_latent:
        res.z0 = z0.float()
    return res


def summarize(clips: list[ClipResult], schedule: Schedule, *, weights: torch.Tensor | None = None) -> Summary:
    """Mean and spread over clips. Clips may differ in size: bands are in normalised frequency.

    The mean is taken in linear power (DESIGN.md), optionally weighted per clip: since
    ``SNR_b(t) = a_t² P_b / s_t²``, the mean SNR is that of the mean band power. The spread is the
    standard deviation over clips of each clip's SNR in dB."""
    if not clips:
        raise ValueError("no clip to summarize")
    names = [c.bands.names for c in clips]
    if any(n != names[0] for n in names):
        raise ValueError("clips gave different band sets (a grid too small for an edge?); use the same `edges`")
    power = torch.stack([c.snr.power for c in clips])  # (n_clips, n_bands)
    ef = torch.stack([c.snr.energy_fraction for c in clips])
    w = clip_weights(weights, len(clips))
    mean_power = (w[:, None] * power).sum(dim=0)
    db = torch.stack([c.snr.snr_db for c in clips])  # (n_clips, n_bands, N)
    mean_db = to_db(snr_closed_form(mean_power, schedule))
    std_db = db.std(dim=0) if len(clips) > 1 else torch.zeros_like(db[0])
    mean_ef = (w[:, None] * ef).sum(dim=0)
    return Summary(clips, schedule, mean_power, mean_ef, mean_db, std_db, crossing_timesteps(mean_db))
