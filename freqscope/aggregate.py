"""The one summary of an ``snr`` run: rows of one clip, several clips or a whole dataset → :class:`Summary`.

``SNR_b(t) = a_t² P_b / s_t²`` is linear in the band power, so the mean SNR over clips (taken in linear
power, docs/architecture.md) is that of the mean band power ``P̄_b = Σ_i w_i P_ib`` (weights summing to 1), and the
spread is that of ``P̄_b ± σ_b`` with ``σ_b² = Σ_i w_i (P_ib − P̄_b)²``: one definition for every run (zero
for one clip), the same under any schedule, and no clip is decoded again. The reports of a summary (table,
JSON, CSV, figure) are :mod:`freqscope.report`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from .bands import make_bands
from .noise_schedule import Schedule
from .results import SCHEMA
from .snr import clip_weights, crossing_timesteps, snr_closed_form, to_db

__all__ = ["Summary", "aggregate"]


@dataclass
class Summary:
    """Mean and spread of the per-band SNR over the clips of a run, under one schedule."""

    schedule: Schedule
    band_names: list[str]
    bounds: list[tuple[float, float]]  # (lo, hi) of each band on the first clip's grid, as make_bands gives them
    n_bins: list[int]  # of the first clip's grid
    n_clips: int
    power: torch.Tensor  # (n_bands,) weighted mean band power P̄_b (float64, CPU)
    power_std: torch.Tensor  # (n_bands,) weighted spread σ_b of the band power over clips (0 for one clip)
    energy_fraction: torch.Tensor  # (n_bands,) weighted mean share of the energy (sums to 1)
    snr_db: torch.Tensor  # (n_bands, N) SNR of P̄_b
    snr_db_lo: torch.Tensor  # (n_bands, N) SNR of P̄_b − σ_b (−inf where P̄_b ≤ σ_b)
    snr_db_hi: torch.Tensor  # (n_bands, N) SNR of P̄_b + σ_b
    crossing: list[int | None]  # first t with mean SNR < 0 dB, per band
    latent_shapes: dict[tuple[int, ...], int]  # each distinct latent shape (b, c, t, h, w) and its number of clips
    encoder: dict = field(default_factory=dict)  # the clips' encoder, as the settings name it
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, error) of the clips that failed
    settings: dict = field(default_factory=dict)  # the analysis settings (rows.analysis_settings)
    weighted: bool = False
    paths: list[str | None] | None = None  # each clip's path, when the run lists them (None: a bare latent)
    clips: list[Any] | None = None  # each clip's analysis.ClipResult, for runs over single clips

    @property
    def spread_db(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(lo, hi)`` per band: how far the SNR of ``P̄ ∓ σ`` lies from that of ``P̄`` (dB, the same at every t)."""
        return self.snr_db_lo[:, 0] - self.snr_db[:, 0], self.snr_db_hi[:, 0] - self.snr_db[:, 0]


def _table(rows: pa.Table | list[dict]) -> pa.Table:
    if isinstance(rows, pa.Table):
        return rows
    rows = [{**r, "status": r.get("status", "ok"), "rank": r.get("rank", 0)} for r in rows]
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def _matrix(ok: pa.Table, name: str) -> torch.Tensor:
    """A list<double> column → ``(n_clips, n_bands)`` float64."""
    flat = pc.list_flatten(ok.column(name)).to_numpy(zero_copy_only=False)
    return torch.from_numpy(flat.astype(np.float64)).reshape(ok.num_rows, -1)


def _shapes(ok: pa.Table) -> dict[tuple[int, ...], int]:
    counts = pc.value_counts(pc.binary_join(pc.cast(ok.column("latent_shape"), pa.list_(pa.string())), ","))
    found = {tuple(map(int, c["values"].split(","))): c["counts"] for c in counts.to_pylist()}
    return dict(sorted(found.items()))


#: The results columns :func:`aggregate` reads: a dataset's summary reads only these from the store (not the
#: spectra and clip metadata, whose memory grows with the number of clips).
COLUMNS = ["status", "path", "error", "settings", "settings_json", "weight", "latent_shape", "band_names", "n_bins"]
COLUMNS += ["band_power", "energy_fraction"]


def aggregate(rows: pa.Table | list[dict[str, Any]], schedule: Schedule, *, weighted: bool = False) -> Summary:
    """Summarise the rows of a run (``status == "ok"`` rows count, error rows are listed as skipped):
    a results table (:func:`~freqscope.results.read_results`) or row dicts (:mod:`freqscope.rows`).

    ``weighted``: weight each clip by its ``weight`` column (missing: 1); otherwise all clips count equally.
    """
    table = _table(rows)
    is_ok = pc.equal(table.column("status"), "ok")
    bad = table.filter(pc.invert(is_ok))
    skipped = list(zip(bad.column("path").to_pylist(), [e or "" for e in bad.column("error").to_pylist()]))
    ok = table.filter(is_ok)
    n = ok.num_rows
    if not n:
        raise ValueError(f"no clip was analysed ({len(skipped)} skipped as unreadable); nothing to summarise")
    if len(pc.unique(ok.column("settings"))) > 1:
        raise ValueError("the results mix several analysis settings; aggregate one setting at a time")
    if len(pc.unique(pc.binary_join(ok.column("band_names"), "\x1f"))) > 1:
        raise ValueError("clips gave different band sets (a grid too small for an edge?); use the same `edges`")

    P, ef = _matrix(ok, "band_power"), _matrix(ok, "energy_fraction")  # (n_clips, n_bands)
    weights = torch.from_numpy(ok.column("weight").fill_null(1.0).to_numpy().astype(np.float64)) if weighted else None
    w = clip_weights(weights, n)[:, None]  # (n_clips, 1), sums to 1
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
    return Summary(
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
        latent_shapes=_shapes(ok),
        encoder=dict(settings.get("encoder", {})),
        skipped=skipped,
        settings=settings,
        weighted=weighted,
    )
