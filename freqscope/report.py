"""Reports of an SNR summary: a text table, JSON (schema below), CSV and a figure, written atomically.

JSON schema ``freqscope.snr/1`` (non-finite numbers, e.g. −inf dB at a zero-SNR timestep, are ``null``)::

    schema            "freqscope.snr/1"
    video             path of the clip (a list of paths for several clips)
    encoder           {name, source, class_name, kind, scaling, spatial_compression, ...}
    latent_shape      [b, c, t, h, w] (a list of shapes for several clips)
    schedule          {name, kind, num_train_timesteps, source, alphas_cumprod | sigmas}
    timesteps         [0, 1, ..., N-1]
    decomposition     "spatiotemporal" | "spatial" | "temporal";  time_scale: d_s/d_t
    bands             [{name, lo, hi, n_bins, power, energy_fraction, crossing_timestep}]
    snr_db            one row per band, one value per timestep (mean over clips)
    snr_db_std        same shape: spread over clips (zeros for one clip)
    crossing_timestep one per band: first t with SNR < 0 dB, or null
    snr_db_sampled    only with seeds: {seeds, mean, std}: measured with real noise draws
    rapsd             {radius, power} of z0 (first clip)
    clips             per clip: {video, encoder, latent_shape, bands, snr_db, crossing_timestep}
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Callable
from pathlib import Path

import torch

from .analysis import Summary
from .bands import BandSet, bandpass
from .io import dumps_json, write_text
from .video import write_video

__all__ = [
    "SCHEMA",
    "TABLE_TIMESTEPS",
    "summary_to_dict",
    "format_table",
    "fmt_db",
    "layout_table",
    "write_json",
    "write_csv",
    "plot_snr",
]

SCHEMA = "freqscope.snr/1"
TABLE_TIMESTEPS = (0, 250, 500, 750, 999)


def _clean(x):
    """Tensors → lists, non-finite floats → None (JSON has no inf/NaN)."""
    if isinstance(x, torch.Tensor):
        x = x.tolist()
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def _bands(bs, power, ef, crossing) -> list[dict]:
    return [
        {**b.to_dict(), "power": float(p), "energy_fraction": float(e), "crossing_timestep": c}
        for b, p, e, c in zip(bs.bands, power.tolist(), ef.tolist(), crossing)
    ]


def summary_to_dict(s: Summary) -> dict:
    one = len(s.clips) == 1
    first = s.clips[0]
    d = {
        "schema": SCHEMA,
        "video": first.video.get("path") if one else [c.video.get("path") for c in s.clips],
        "encoder": first.encoder,
        "latent_shape": list(first.latent_shape) if one else [list(c.latent_shape) for c in s.clips],
        "schedule": s.schedule.to_dict(),
        "timesteps": s.schedule.timesteps.tolist(),
        "decomposition": first.bands.decomposition,
        "time_scale": first.bands.time_scale,
        "bands": _bands(first.bands, s.power, s.energy_fraction, s.crossing),
        "snr_db": s.snr_db,
        "snr_db_std": s.snr_db_std,
        "crossing_timestep": s.crossing,
        "rapsd": {"radius": first.rapsd[0], "power": first.rapsd[1]} if first.rapsd is not None else None,
        "clips": [
            {
                "video": c.video,
                "encoder": c.encoder,
                "latent_shape": list(c.latent_shape),
                "bands": _bands(c.bands, c.snr.power, c.snr.energy_fraction, c.snr.crossing),
                "snr_db": c.snr.snr_db,
                "crossing_timestep": c.snr.crossing,
            }
            for c in s.clips
        ],
    }
    if first.snr.sampled_db_mean is not None:
        d["snr_db_sampled"] = {"mean": first.snr.sampled_db_mean, "std": first.snr.sampled_db_std}
    return _clean(d)


def fmt_db(v: float, sd: float | None = None) -> str:
    """A dB value for a table: one decimal, ``±sd`` if given, ``-inf``/``inf``/``nan`` spelled out, no ``-0.0``."""
    if not math.isfinite(v):
        return "-inf" if v < 0 else ("inf" if v > 0 else "nan")
    text = f"{v:7.1f}".replace("-0.0", " 0.0")  # a value that rounds to zero prints without a sign
    return text + (f"±{sd:.1f}" if sd is not None and math.isfinite(sd) and sd > 0 else "")


def format_table(s: Summary, *, timesteps: tuple[int, ...] = TABLE_TIMESTEPS) -> str:
    """Bands × a few timesteps (SNR in dB), energy share and the 0 dB crossing."""
    N = s.schedule.num_train_timesteps
    ts = [t for t in timesteps if t < N]
    if N - 1 not in ts:
        ts.append(N - 1)
    multi = len(s.clips) > 1
    sampled = s.clips[0].snr.sampled_db_mean if not multi else None
    head = ["band", "energy"] + [f"t={t}" for t in ts] + ["0 dB at t"]
    if sampled is not None:
        head.insert(-1, f"t={N - 1} measured")
    rows = []
    for i, b in enumerate(s.bands.bands):
        ef = s.energy_fraction[i].item()
        row = [b.name, f"{100 * ef:.2f}%" if b.n_bins else "empty"]
        row += [fmt_db(s.snr_db[i, t].item(), s.snr_db_std[i, t].item() if multi else None) for t in ts]
        if sampled is not None:
            sampled_std = s.clips[0].snr.sampled_db_std
            assert sampled_std is not None  # measured with the mean
            row.append(fmt_db(sampled[i, N - 1].item(), sampled_std[i, N - 1].item()))
        c = s.crossing[i]
        row.append("never" if c is None else str(c))
        rows.append(row)
    first = s.clips[0]
    clips = f"{len(s.clips)} clips (mean ± spread)" if multi else first.video.get("path")
    title = (
        f"per-band SNR (dB) of {clips} | encoder {first.encoder.get('name')} "
        f"| latent {_latent_shapes(s)} | schedule {s.schedule.name} ({s.schedule.kind})"
    )
    return "\n".join([title, *layout_table(head, rows)])


def layout_table(head: list[str], rows: list[list[str]], *, left: int = 1) -> list[str]:
    """The lines of a text table: header, rule, rows; the first ``left`` columns left-aligned, the rest right."""
    widths = [max(len(r[j]) for r in [head] + rows) for j in range(len(head))]

    def line(r: list[str]) -> str:
        return "  ".join(c.ljust(w) if j < left else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths)))

    return [line(head), "  ".join("-" * w for w in widths)] + [line(r) for r in rows]


def _latent_shapes(s: Summary) -> str:
    """The clips' latent shape, or each distinct one with its count when they differ."""
    shapes: dict[tuple, int] = {}
    for c in s.clips:
        shapes[tuple(c.latent_shape)] = shapes.get(tuple(c.latent_shape), 0) + 1
    if len(shapes) == 1:
        return str(next(iter(shapes)))
    return ", ".join(f"{shape} ×{n}" for shape, n in shapes.items())


def _clip_name(s: Summary) -> str:
    """What the figure's title calls the data: the clip's file name, or the number of clips."""
    if len(s.clips) > 1:
        return f"{len(s.clips)} clips (mean ± s.d.)"
    return Path(str(s.clips[0].video.get("path", "clip"))).name


def write_json(s: Summary | dict, path: str | os.PathLike) -> None:
    d = summary_to_dict(s) if isinstance(s, Summary) else _clean(s)
    write_text(path, dumps_json(d))


def write_csv(s: Summary, path: str | os.PathLike) -> None:
    """Long format: one row per (band, timestep): band, lo, hi, t, snr_db, snr_db_std."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["band", "lo", "hi", "timestep", "snr_db", "snr_db_std"])
    for i, b in enumerate(s.bands.bands):
        for t, (v, sd) in enumerate(zip(s.snr_db[i].tolist(), s.snr_db_std[i].tolist())):
            w.writerow([b.name, b.lo, b.hi, t, f"{v:.6g}", f"{sd:.6g}"])
    write_text(path, buf.getvalue())


def plot_snr(s: Summary, path: str | os.PathLike, *, title: str | None = None) -> None:
    """SNR (dB) vs timestep, one curve per band with its spread, the 0 dB line and each crossing."""
    from .plotting import band_colors, new_figure, save_figure  # matplotlib loads only when a figure is drawn

    fig, ax = new_figure()
    t = s.schedule.timesteps.numpy()
    colors = band_colors(len(s.bands))
    for i, b in enumerate(s.bands.bands):
        if b.n_bins == 0:
            continue
        y = s.snr_db[i].numpy()
        ax.plot(t, y, color=colors[i], label=b.name)
        sd = s.snr_db_std[i].numpy()
        if len(s.clips) > 1:
            ax.fill_between(t, y - sd, y + sd, color=colors[i], alpha=0.2, linewidth=0)
        c = s.crossing[i]
        if c is not None:
            ax.plot([c], [y[c]], "o", color=colors[i], markersize=4)
    ax.axhline(0.0, color="0.3", linestyle="--", linewidth=0.8)
    ax.set_xlabel("training timestep t")
    ax.set_ylabel("per-band SNR (dB)")
    ax.set_title(title or f"Per-band SNR of {_clip_name(s)}\n({s.schedule.name} schedule; dots: 0 dB crossings)")
    ax.legend(title="frequency band\n(|f|, Nyquist = 1)", loc="upper left", bbox_to_anchor=(1.02, 1.0))
    save_figure(fig, path)


# ---- freeinit: the gap per band per pass --------------------------------------------------------------


def band_video_frames(z0: torch.Tensor, bands: BandSet, index: int) -> torch.Tensor:
    """What band ``index`` of ``z0`` ``(b, c, t, h, w)`` holds, ready to look at: the clip's mean (its DC
    component, so the clip's own colour) plus the band-pass content amplified by ONE gain for all channels
    (hue is kept) up to the clip's own contrast (99.5th percentile of ``|z0 − mean|``); the DC band alone is
    the flat mean colour (band 0 shown as it is). Gain ≥ 1: weak high bands are made visible, never shrunk."""
    part = bandpass(z0, bands, index=index)
    if index == 0:  # the DC band (band 0) holds the mean itself: shown as it is
        return part
    mean = z0.mean(dim=(-3, -2, -1), keepdim=True)  # the clip's DC component, per channel
    q = lambda x: torch.quantile(x.abs().flatten().float()[:: max(1, x.numel() // 1_000_000)], 0.995)  # noqa: E731
    spread, amp = q(z0 - mean), q(part)
    gain = max(1.0, float(spread / amp)) if amp > 0 else 1.0
    return mean + gain * part


def write_band_videos(
    z0: torch.Tensor,
    bands: BandSet,
    folder: str | os.PathLike,
    *,
    decode: Callable[[torch.Tensor], torch.Tensor] | None = None,
    fps: float = 8.0,
) -> list[str]:
    """Write what each band of ``z0`` holds as ``band{i}_{name}.mp4`` in ``folder``
    (:func:`band_video_frames`, decoded to pixels by ``decode`` for a VAE latent)."""
    paths = []
    for i, b in enumerate(bands.bands):
        if b.n_bins == 0:
            continue
        part = band_video_frames(z0, bands, i)
        frames = decode(part) if decode is not None else part
        frames = frames[:, :3] if frames.shape[1] >= 3 else frames.expand(-1, 3, -1, -1, -1)
        path = Path(folder) / f"band{i}_{re.sub(r'[^0-9A-Za-z.]+', '_', b.name).strip('_')}.mp4"
        write_video(path, frames.clamp(-1, 1), fps=fps)
        paths.append(str(path))
    return paths
