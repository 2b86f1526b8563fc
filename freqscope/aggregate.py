"""Per-band SNR of a whole dataset from its per-clip band powers, under any schedule, and its reports.

``SNR_b(t) = a_t² P_b / s_t²`` is linear in the band power, so the mean SNR over clips (taken in linear
power, DESIGN.md) is that of the mean band power ``P̄_b = Σ_i w_i P_ib`` (weights summing to 1), and the
spread band is that of ``P̄_b ± σ_b`` with ``σ_b² = Σ_i w_i (P_ib − P̄_b)²``: no clip is decoded again.

JSON schema ``freqscope.snr-dataset/1``::

    schema, n_clips, n_skipped, skipped [{path, error}], settings, schedule, timesteps, weighted
    bands             [{name, lo, hi, n_bins (first clip), power, power_std, energy_fraction, crossing_timestep}]
    snr_db            one row per band: SNR of the mean power, per timestep
    snr_db_lo/hi      same shape: SNR of P̄ − σ and P̄ + σ (−inf where P̄ ≤ σ)
    crossing_timestep first t with mean SNR < 0 dB, or null
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from .bands import make_bands
from .io import write_text
from .report import fmt_db, layout_table, write_json
from .results import SCHEMA
from .schedule import Schedule
from .snr import clip_weights, crossing_timesteps, snr_closed_form, to_db

__all__ = ["DATASET_SCHEMA", "DatasetSummary", "aggregate", "format_dataset_table", "dataset_to_dict"]

DATASET_SCHEMA = "freqscope.snr-dataset/1"


@dataclass
class DatasetSummary:
    """Mean and spread of the per-band SNR over the clips of a results table, under one schedule."""

    schedule: Schedule
    band_names: list[str]
    bounds: list[tuple[float, float]]  # (lo, hi) of each band on the first clip's grid, as make_bands gives them
    n_bins: list[int]  # of the first clip's grid
    n_clips: int
    power: torch.Tensor  # (n_bands,) weighted mean band power
    power_std: torch.Tensor  # (n_bands,) weighted spread over clips
    energy_fraction: torch.Tensor  # (n_bands,) weighted mean
    snr_db: torch.Tensor  # (n_bands, N)
    snr_db_lo: torch.Tensor  # (n_bands, N)
    snr_db_hi: torch.Tensor  # (n_bands, N)
    crossing: list[int | None]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, error)
    settings: dict = field(default_factory=dict)
    weighted: bool = False


def aggregate(table: pa.Table | list[dict], schedule: Schedule, *, weighted: bool = False) -> DatasetSummary:
    """Summarise the rows of a dataset run (``status == "ok"`` rows count, error rows are listed as skipped).

    ``weighted``: weight each clip by its ``weight`` column (missing: 1); otherwise all clips count equally.
    """
    if not isinstance(table, pa.Table):
        table = pa.Table.from_pylist([{**r, "rank": r.get("rank", 0)} for r in table], schema=SCHEMA)
    is_ok = pc.equal(table.column("status"), "ok")
    bad = table.filter(pc.invert(is_ok))
    skipped = list(zip(bad.column("path").to_pylist(), [e or "" for e in bad.column("error").to_pylist()]))
    ok = table.filter(is_ok)
    n = ok.num_rows
    if not n:
        raise ValueError(f"no clip was analysed ({len(skipped)} skipped as unreadable); nothing to summarise")
    if len(pc.unique(ok.column("settings"))) > 1:
        raise ValueError("the results mix several analysis settings; aggregate one setting at a time")

    def matrix(name: str) -> torch.Tensor:  # a list<double> column → (n_clips, n_bands)
        flat = pc.list_flatten(ok.column(name)).to_numpy(zero_copy_only=False)
        return torch.from_numpy(flat.astype(np.float64)).reshape(n, -1)

    P, ef = matrix("band_power"), matrix("energy_fraction")
    weights = torch.from_numpy(ok.column("weight").fill_null(1.0).to_numpy().astype(np.float64)) if weighted else None
    w = clip_weights(weights, n)[:, None]  # (n_clips, 1)
    mean = (w * P).sum(0)
    std = (w * (P - mean) ** 2).sum(0).sqrt()
    snr_db = to_db(snr_closed_form(mean, schedule))
    first = ok.slice(0, 1).to_pylist()[0]
    settings = json.loads(first["settings_json"]) if first.get("settings_json") else {}
    grid = make_bands(
        tuple(first["latent_shape"][-3:]),
        tuple(settings["edges"]),
        decomposition=settings["decomposition"],
        time_scale=settings["time_scale"],
    )
    return DatasetSummary(
        schedule=schedule,
        band_names=list(first["band_names"]),
        bounds=[(b.lo, b.hi) for b in grid.bands],
        n_bins=list(first["n_bins"]),
        n_clips=n,
        power=mean,
        power_std=std,
        energy_fraction=(w * ef).sum(0),
        snr_db=snr_db,
        snr_db_lo=to_db(snr_closed_form((mean - std).clamp_min(0), schedule)),
        snr_db_hi=to_db(snr_closed_form(mean + std, schedule)),
        crossing=crossing_timesteps(snr_db),
        skipped=skipped,
        settings=settings,
        weighted=weighted,
    )


def format_dataset_table(s: DatasetSummary, *, timesteps: tuple[int, ...] = (0, 250, 500, 750, 999)) -> str:
    """Bands × a few timesteps (SNR of the mean power, dB), the spread, energy share and the 0 dB crossing."""
    N = s.schedule.num_train_timesteps
    ts = sorted({t for t in timesteps if t < N} | {N - 1})
    head = ["band", "energy"] + [f"t={t}" for t in ts] + ["spread (dB)", "0 dB at t"]
    rows = []
    for i, name in enumerate(s.band_names):
        lo, hi = (s.snr_db_lo[i, 0] - s.snr_db[i, 0]).item(), (s.snr_db_hi[i, 0] - s.snr_db[i, 0]).item()
        energy = f"{100 * s.energy_fraction[i].item():.2f}%" if s.n_bins[i] else "empty"
        row = [name, energy] + [fmt_db(s.snr_db[i, t].item()) for t in ts]
        row += [f"{fmt_db(lo).strip()}/+{fmt_db(hi).strip()}"]
        row.append("never" if s.crossing[i] is None else str(s.crossing[i]))
        rows.append(row)
    title = (
        f"per-band SNR (dB) of the mean power over {s.n_clips} clips{' (weighted)' if s.weighted else ''} "
        f"| schedule {s.schedule.name} ({s.schedule.kind}) | spread: mean ± one standard deviation of the power"
    )
    return "\n".join([title, *layout_table(head, rows)])


def dataset_to_dict(s: DatasetSummary) -> dict:
    bands = [
        {
            "name": n,
            "lo": s.bounds[i][0],
            "hi": s.bounds[i][1],
            "n_bins": s.n_bins[i],
            "power": s.power[i].item(),
            "power_std": s.power_std[i].item(),
            "energy_fraction": s.energy_fraction[i].item(),
            "crossing_timestep": s.crossing[i],
        }
        for i, n in enumerate(s.band_names)
    ]
    return {
        "schema": DATASET_SCHEMA,
        "n_clips": s.n_clips,
        "n_skipped": len(s.skipped),
        "skipped": [{"path": p, "error": e} for p, e in s.skipped],
        "settings": s.settings,
        "weighted": s.weighted,
        "schedule": s.schedule.to_dict(),
        "timesteps": s.schedule.timesteps.tolist(),
        "bands": bands,
        "snr_db": s.snr_db,
        "snr_db_lo": s.snr_db_lo,
        "snr_db_hi": s.snr_db_hi,
        "crossing_timestep": s.crossing,
    }


def write_dataset_json(s: DatasetSummary, path: str | os.PathLike) -> None:
    write_json(dataset_to_dict(s), path)


def write_dataset_csv(s: DatasetSummary, path: str | os.PathLike) -> None:
    """Long format: band, timestep, snr_db, snr_db_lo, snr_db_hi."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["band", "timestep", "snr_db", "snr_db_lo", "snr_db_hi"])
    for i, name in enumerate(s.band_names):
        for t, (m, lo, hi) in enumerate(zip(s.snr_db[i].tolist(), s.snr_db_lo[i].tolist(), s.snr_db_hi[i].tolist())):
            w.writerow([name, t, f"{m:.6g}", f"{lo:.6g}", f"{hi:.6g}"])
    write_text(path, buf.getvalue())


def plot_dataset(s: DatasetSummary, path: str | os.PathLike, *, title: str | None = None) -> None:
    """SNR (dB) of the mean power vs timestep, one curve per band with its spread band (P̄ ± σ; where
    P̄ ≤ σ the lower edge, −inf dB, is drawn 10 dB below the mean)."""
    from .plotting import band_colors, new_figure, save_figure  # matplotlib loads only when a figure is drawn

    fig, ax = new_figure()
    t = s.schedule.timesteps.numpy()
    colors = band_colors(len(s.band_names))
    for i, name in enumerate(s.band_names):
        y = s.snr_db[i].numpy()
        ax.plot(t, y, color=colors[i], label=name)
        lo = torch.maximum(s.snr_db_lo[i], s.snr_db[i] - 10).numpy()  # P̄ − σ ≤ 0 is −inf dB: cut at −10 dB
        ax.fill_between(t, lo, s.snr_db_hi[i].numpy(), color=colors[i], alpha=0.2, linewidth=0)
        if s.crossing[i] is not None:
            ax.plot([s.crossing[i]], [y[s.crossing[i]]], "o", color=colors[i], markersize=4)
    ax.axhline(0.0, color="0.3", linestyle="--", linewidth=0.8)
    ax.set_xlabel("training timestep t")
    ax.set_ylabel("SNR of the mean band power (dB)")
    ax.set_title(
        title or f"Per-band SNR over {s.n_clips} clips\n({s.schedule.name} schedule; shaded: mean ± s.d. of the power)"
    )
    ax.legend(title="frequency band\n(|f|, Nyquist = 1)", loc="upper left", bbox_to_anchor=(1.02, 1.0))
    save_figure(fig, path)
