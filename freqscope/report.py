"""Reports of an SNR :class:`~freqscope.aggregate.Summary`, one clip, several or a dataset alike: a text
table, JSON (schema below), CSV and a figure, written atomically.

JSON schema ``freqscope.snr/2`` (non-finite numbers, e.g. −inf dB at a zero-SNR timestep, are ``null``)::

    schema            "freqscope.snr/2"
    n_clips           clips summarised; n_skipped, skipped [{path, error}]: clips that could not be analysed
    weighted          whether clips were weighted (a CSV list's weight column)
    video             path of the clip; a list of paths for several clips; null for a dataset run
    encoder           {name, source, class_name, scaling, ...} (the clips' encoder)
    latent_shape      [b, c, t, h, w], or [{shape, n_clips}] when the clips' latents differ
    settings          the analysis settings (encoder, read, edges, decomposition, time_scale, radial)
    schedule          {name, kind, num_train_timesteps, source, alphas_cumprod | sigmas}
    timesteps         [0, 1, ..., N-1]
    decomposition     "spatiotemporal" | "spatial" | "temporal";  time_scale: d_s/d_t
    bands             [{name, lo, hi, n_bins, power, power_std, energy_fraction, crossing_timestep}]
    snr_db            one row per band, one value per timestep: SNR of the mean power P̄ over clips
    snr_db_lo/hi      same shape: SNR of P̄ − σ and P̄ + σ, σ the spread of the power over clips (lo −inf
                      where P̄ ≤ σ; both equal snr_db for one clip)
    crossing_timestep one per band: first t with SNR < 0 dB, or null
    snr_db_sampled    one clip with seeds only: {mean, std}, measured with real noise draws
    rapsd             {radius, power} of the first clip's latent, or null
    clips             runs over single clips: per clip {video, encoder, latent_shape, bands, snr_db,
                      crossing_timestep}; null for a dataset run (its rows are in the results file)

``freqscope.snr/1`` (before 0.2) differed in: ``snr_db_std`` (the s.d. over clips of each clip's SNR in dB)
in place of ``snr_db_lo/hi``; dataset runs wrote ``freqscope.snr-dataset/1``.
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

from .aggregate import Summary
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

SCHEMA = "freqscope.snr/2"
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


def _bands(bs: BandSet, power, ef, crossing) -> list[dict]:
    return [
        {**b.to_dict(), "power": float(p), "energy_fraction": float(e), "crossing_timestep": c}
        for b, p, e, c in zip(bs.bands, power.tolist(), ef.tolist(), crossing)
    ]


def _latent_shape(s: Summary):
    if len(s.latent_shapes) == 1:
        return list(next(iter(s.latent_shapes)))
    return [{"shape": list(shape), "n_clips": n} for shape, n in s.latent_shapes.items()]


def _video(s: Summary):
    if s.paths is None:
        return None
    return s.paths[0] if len(s.paths) == 1 else s.paths


def summary_to_dict(s: Summary) -> dict:
    bands = [
        {
            "name": name,
            "lo": lo,
            "hi": hi,
            "n_bins": n_bins,
            "power": s.power[i].item(),
            "power_std": s.power_std[i].item(),
            "energy_fraction": s.energy_fraction[i].item(),
            "crossing_timestep": s.crossing[i],
        }
        for i, (name, (lo, hi), n_bins) in enumerate(zip(s.band_names, s.bounds, s.n_bins))
    ]
    clips = s.clips or []
    first = clips[0] if clips else None
    d = {
        "schema": SCHEMA,
        "n_clips": s.n_clips,
        "n_skipped": len(s.skipped),
        "skipped": [{"path": p, "error": e} for p, e in s.skipped],
        "weighted": s.weighted,
        "video": _video(s),
        "encoder": s.encoder,
        "latent_shape": _latent_shape(s),
        "settings": s.settings,
        "schedule": s.schedule.to_dict(),
        "timesteps": s.schedule.timesteps.tolist(),
        "decomposition": s.settings.get("decomposition"),
        "time_scale": s.settings.get("time_scale"),
        "bands": bands,
        "snr_db": s.snr_db,
        "snr_db_lo": s.snr_db_lo,
        "snr_db_hi": s.snr_db_hi,
        "crossing_timestep": s.crossing,
        "rapsd": {"radius": first.rapsd[0], "power": first.rapsd[1]} if first and first.rapsd else None,
        "clips": [
            {
                "video": c.video,
                "encoder": c.encoder,
                "latent_shape": list(c.latent_shape),
                "bands": _bands(c.bands, c.snr.power, c.snr.energy_fraction, c.snr.crossing),
                "snr_db": c.snr.snr_db,
                "crossing_timestep": c.snr.crossing,
            }
            for c in clips
        ]
        if s.clips is not None
        else None,
    }
    if first is not None and len(clips) == 1 and first.snr.sampled_db_mean is not None:
        d["snr_db_sampled"] = {"mean": first.snr.sampled_db_mean, "std": first.snr.sampled_db_std}
    return _clean(d)


def fmt_db(v: float, sd: float | None = None) -> str:
    """A dB value for a table: one decimal, ``±sd`` if given, ``-inf``/``inf``/``nan`` spelled out, no ``-0.0``."""
    if not math.isfinite(v):
        return "-inf" if v < 0 else ("inf" if v > 0 else "nan")
    text = f"{v:7.1f}".replace("-0.0", " 0.0")  # a value that rounds to zero prints without a sign
    return text + (f"±{sd:.1f}" if sd is not None and math.isfinite(sd) and sd > 0 else "")


def _title(s: Summary) -> str:
    weighted = " (weighted)" if s.weighted else ""
    what = s.paths[0] if s.n_clips == 1 and s.paths else f"the mean power over {s.n_clips} clips{weighted}"
    spread = "" if s.n_clips == 1 else " | spread: SNR of the mean ∓ one s.d. of the power"
    return (
        f"per-band SNR (dB) of {what} | encoder {s.encoder.get('name')} | latent {_latent_shapes(s)} "
        f"| schedule {s.schedule.name} ({s.schedule.kind}){spread}"
    )


def format_table(s: Summary, *, timesteps: tuple[int, ...] = TABLE_TIMESTEPS) -> str:
    """Bands × a few timesteps (SNR of the mean power, dB), energy share, the spread over clips (several
    clips: how far the SNR of ``P̄ ∓ σ`` lies, the same at every t) and the 0 dB crossing."""
    N = s.schedule.num_train_timesteps
    ts = sorted({t for t in timesteps if t < N} | {N - 1})
    several = s.n_clips > 1
    clip = s.clips[0] if s.clips and not several else None
    sampled = clip.snr if clip is not None and clip.snr.sampled_db_mean is not None else None
    head = ["band", "energy"] + [f"t={t}" for t in ts]
    head += [f"t={N - 1} measured"] * (sampled is not None) + ["spread (dB)"] * several + ["0 dB at t"]
    lo, hi = s.spread_db
    rows = []
    for i, name in enumerate(s.band_names):
        row = [name, f"{100 * s.energy_fraction[i].item():.2f}%" if s.n_bins[i] else "empty"]
        row += [fmt_db(s.snr_db[i, t].item()) for t in ts]
        if sampled is not None:
            assert sampled.sampled_db_mean is not None and sampled.sampled_db_std is not None
            row.append(fmt_db(sampled.sampled_db_mean[i, N - 1].item(), sampled.sampled_db_std[i, N - 1].item()))
        if several:
            row.append(f"{fmt_db(lo[i].item()).strip()}/+{fmt_db(hi[i].item()).strip()}" if s.n_bins[i] else "empty")
        row.append("never" if s.crossing[i] is None else str(s.crossing[i]))
        rows.append(row)
    return "\n".join([_title(s), *layout_table(head, rows)])


def layout_table(head: list[str], rows: list[list[str]], *, left: int = 1) -> list[str]:
    """The lines of a text table: header, rule, rows; the first ``left`` columns left-aligned, the rest right."""
    widths = [max(len(r[j]) for r in [head] + rows) for j in range(len(head))]

    def line(r: list[str]) -> str:
        return "  ".join(c.ljust(w) if j < left else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths)))

    return [line(head), "  ".join("-" * w for w in widths)] + [line(r) for r in rows]


def _latent_shapes(s: Summary) -> str:
    """The clips' latent shape, or each distinct one with its count when they differ."""
    if len(s.latent_shapes) == 1:
        return str(next(iter(s.latent_shapes)))
    return ", ".join(f"{shape} ×{n}" for shape, n in s.latent_shapes.items())


def _clip_name(s: Summary) -> str:
    """What the figure's title calls the data: the clip's file name, or the number of clips."""
    if s.n_clips == 1 and s.paths:
        return Path(str(s.paths[0])).name
    return f"{s.n_clips} clips"


def write_json(s: Summary | dict, path: str | os.PathLike) -> None:
    d = summary_to_dict(s) if isinstance(s, Summary) else _clean(s)
    write_text(path, dumps_json(d))


def write_csv(s: Summary, path: str | os.PathLike) -> None:
    """Long format, one row per (band, timestep): band, lo, hi, timestep, snr_db, snr_db_lo, snr_db_hi."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["band", "lo", "hi", "timestep", "snr_db", "snr_db_lo", "snr_db_hi"])
    for i, (name, (lo, hi)) in enumerate(zip(s.band_names, s.bounds)):
        rows = zip(s.snr_db[i].tolist(), s.snr_db_lo[i].tolist(), s.snr_db_hi[i].tolist())
        for t, (m, a, b) in enumerate(rows):
            w.writerow([name, lo, hi, t, f"{m:.6g}", f"{a:.6g}", f"{b:.6g}"])
    write_text(path, buf.getvalue())


def plot_snr(s: Summary, path: str | os.PathLike, *, title: str | None = None) -> None:
    """SNR (dB) of the mean power vs timestep, one curve per band, the 0 dB line and each crossing; for several
    clips, the spread (SNR of ``P̄ ± σ``; where ``P̄ ≤ σ`` the lower edge, −inf dB, is drawn 10 dB below)."""
    from .plotting import band_colors, new_figure, save_figure  # matplotlib loads only when a figure is drawn

    fig, ax = new_figure()
    t = s.schedule.timesteps.numpy()
    colors = band_colors(len(s.band_names))
    for i, name in enumerate(s.band_names):
        if s.n_bins[i] == 0:
            continue
        y = s.snr_db[i].numpy()
        ax.plot(t, y, color=colors[i], label=name)
        if s.n_clips > 1:
            lo = torch.maximum(s.snr_db_lo[i], s.snr_db[i] - 10).numpy()
            ax.fill_between(t, lo, s.snr_db_hi[i].numpy(), color=colors[i], alpha=0.2, linewidth=0)
        c = s.crossing[i]
        if c is not None:
            ax.plot([c], [y[c]], "o", color=colors[i], markersize=4)
    ax.axhline(0.0, color="0.3", linestyle="--", linewidth=0.8)
    ax.set_xlabel("training timestep t")
    ax.set_ylabel("per-band SNR (dB)" if s.n_clips == 1 else "SNR of the mean band power (dB)")
    shade = "; shaded: mean ± s.d. of the power" if s.n_clips > 1 else ""
    ax.set_title(title or f"Per-band SNR of {_clip_name(s)}\n({s.schedule.name} schedule; dots: 0 dB crossings{shade})")
    ax.legend(title="frequency band\n(|f|, Nyquist = 1)", loc="upper left", bbox_to_anchor=(1.02, 1.0))
    save_figure(fig, path)


# ---- band videos: what each band of a latent holds --------------------------------------------------------------


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
