"""The one summary of an ``snr`` run: rows of one clip, several clips or a whole dataset → :class:`Summary`.

``SNR_b(t) = a_t² P_b / s_t²`` is linear in the band power, so the mean SNR over clips (taken in linear
power, docs/architecture.md) is that of the mean band power ``P̄_b = Σ_i w_i P_ib`` (weights summing to 1), and the
spread is that of ``P̄_b ± σ_b`` with ``σ_b² = Σ_i w_i (P_ib − P̄_b)²``: one definition for every run (zero
for one clip), the same under any schedule, and no clip is decoded again. The reports of a summary (table,
JSON, CSV, figure) are :mod:`freqscope.report`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
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

__all__ = ["Pool", "Summary", "aggregate", "aggregate_batches"]


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


#: Clips whose band powers a summary holds at once (88 bytes each with 5 bands); a run with more is summarised
#: a chunk at a time (weighted means and spreads merged as Chan et al. merge variances), so a store of 10M clips
#: summarises in constant memory (``benchmarks/bench_store.py --scale-to 10000000``: 499 MiB at its peak, where a
#: chunk of 2^20 clips peaked about 170 MiB higher). Up to this many clips, the sums are those of one pass.
CHUNK = 1 << 18


def aggregate(rows: pa.Table | list[dict[str, Any]], schedule: Schedule, *, weighted: bool = False) -> Summary:
    """Summarise the rows of a run (``status == "ok"`` rows count, error rows are listed as skipped):
    a results table (:func:`~freqscope.results.read_results`) or row dicts (:mod:`freqscope.rows`).

    ``weighted``: weight each clip by its ``weight`` column (missing: 1); otherwise all clips count equally.
    """
    return aggregate_batches([rows], [schedule], weighted=weighted)[0]


def aggregate_batches(
    batches: Iterable[pa.Table | list[dict[str, Any]]],
    schedules: list[Schedule],
    *,
    weighted: bool = False,
    by_path: bool = False,
) -> list[Summary]:
    """:func:`aggregate` of the rows of all ``batches`` together (e.g. :func:`~freqscope.results.iter_results`,
    read once), under each of ``schedules``; memory does not grow with the number of rows. ``by_path``: as if the
    rows were sorted by path and start (a store's rows, read in the order they were written)."""
    pool = Pool(weighted=weighted, by_path=by_path)
    for b in batches:
        pool.add(_table(b))
    return [pool.summary(s) for s in schedules]


class Pool:
    """The clips of a run, added a batch of rows at a time, as what their summary needs: the weighted mean and
    spread of the band power and the mean energy share, the latent shapes, the skipped clips and the first clip's
    settings and grid. ``by_path``: the first clip and the order of the skipped ones are those of the rows sorted
    by path and start (as :func:`~freqscope.results.read_results` gives them), not the order they were added."""

    def __init__(self, *, weighted: bool = False, by_path: bool = False):
        self.weighted, self.by_path = weighted, by_path
        self._skipped: list[tuple[str, float | None, str]] = []  # (path, start, error)
        self.settings: set[str] = set()  # of every row, ok or not
        self.ok_settings: set[str] = set()
        self.band_sets: set[str] = set()
        self.shapes: Counter[tuple[int, ...]] = Counter()
        self.first: dict | None = None  # the first analysed clip's row
        self.n = 0
        self._held: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []  # (P, ef, weights) not folded yet
        self._n_held = 0
        self._sums: tuple[float, torch.Tensor, torch.Tensor, torch.Tensor] | None = None  # (W, mean, M2, Σ w·ef)
        self._folded = False  # whether any clips were folded into _sums (then every clip is, at the end)

    def add(self, table: pa.Table) -> None:
        self.settings.update(pc.unique(table.column("settings")).drop_null().to_pylist())
        is_ok = pc.equal(table.column("status"), "ok")  # a row without a status is neither analysed nor skipped
        bad = table.filter(pc.invert(is_ok))
        starts = bad.column("start").to_pylist() if "start" in bad.column_names else [None] * bad.num_rows
        errors = [e or "" for e in bad.column("error").to_pylist()]
        self._skipped += zip(bad.column("path").to_pylist(), starts, errors)
        ok = table.filter(is_ok)
        if not ok.num_rows:
            return
        self.ok_settings.update(pc.unique(ok.column("settings")).to_pylist())
        self.band_sets.update(pc.unique(pc.binary_join(ok.column("band_names"), "\x1f")).to_pylist())
        self.n += ok.num_rows
        if len(self.ok_settings) > 1 or len(self.band_sets) > 1:
            self._held, self._n_held = [], 0  # the summary refuses a mix: nothing more to sum
            return
        self.shapes.update(_shapes(ok))
        self._take_first(ok)
        P, ef = _matrix(ok, "band_power"), _matrix(ok, "energy_fraction")  # (n_clips, n_bands)
        if self.weighted:
            w = torch.from_numpy(ok.column("weight").fill_null(1.0).to_numpy().astype(np.float64))
        else:
            w = torch.ones(ok.num_rows, dtype=torch.float64)
        self._held.append((P, ef, w))
        self._n_held += ok.num_rows
        if self._n_held >= CHUNK:
            self._fold()

    def _take_first(self, ok: pa.Table) -> None:
        """Keep the first analysed clip: of all rows added, or (``by_path``) the least by path and start."""
        if self.by_path and "start" in ok.column_names:
            i = pc.sort_indices(ok, sort_keys=[("path", "ascending"), ("start", "ascending")])[0].as_py()
            row = ok.slice(i, 1).to_pylist()[0]
            if self.first is None or _path_order(row["path"], row["start"]) < _path_order(
                self.first["path"], self.first.get("start")
            ):
                self.first = row
        elif self.first is None:
            self.first = ok.slice(0, 1).to_pylist()[0]

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """``(path, error)`` of the clips that could not be analysed."""
        rows = sorted(self._skipped, key=lambda r: _path_order(r[0], r[1])) if self.by_path else self._skipped
        return [(path, error) for path, _, error in rows]

    def _fold(self) -> None:
        """Merge the held clips into the running weighted sums (mean, M2) and let them go."""
        P = torch.cat([h[0] for h in self._held])
        ef = torch.cat([h[1] for h in self._held])
        v = torch.cat([h[2] for h in self._held])
        self._held, self._n_held, self._folded = [], 0, True
        if not torch.isfinite(v).all() or (v < 0).any():
            bad = v[~torch.isfinite(v) | (v < 0)]
            raise ValueError(f"weights: need {self.n} finite numbers >= 0, not all 0; got {bad.tolist()[:8]}")
        Wb = float(v.sum())
        if Wb <= 0:
            return  # clips of weight 0 change no sum
        v = v[:, None]
        mb = (v * P).sum(0) / Wb
        m2b = (v * (P - mb) ** 2).sum(0)
        efb = (v * ef).sum(0)
        if self._sums is None:
            self._sums = (Wb, mb, m2b, efb)
            return
        W, m, m2, efs = self._sums
        delta, total = mb - m, W + Wb
        self._sums = (total, m + delta * (Wb / total), m2 + m2b + delta**2 * (W * Wb / total), efs + efb)

    def _moments(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(P̄, σ, mean energy share)`` over every clip added."""
        if not self._folded:  # every clip held: the sums of one pass, as for a single table
            P = torch.cat([h[0] for h in self._held])
            ef = torch.cat([h[1] for h in self._held])
            weights = torch.cat([h[2] for h in self._held]) if self.weighted else None
            w = clip_weights(weights, self.n)[:, None]  # (n_clips, 1), sums to 1
            mean = (w * P).sum(0)
            return mean, (w * (P - mean) ** 2).sum(0).sqrt(), (w * ef).sum(0)
        if self._held:
            self._fold()
        if self._sums is None:
            raise ValueError(f"weights: need {self.n} finite numbers >= 0, not all 0; every clip's weight is 0")
        W, m, m2, efs = self._sums
        return m, (m2 / W).sqrt(), efs / W

    def summary(self, schedule: Schedule) -> Summary:
        """The summary of the clips added so far, under ``schedule``."""
        n = self.n
        if not n:
            raise ValueError(f"no clip was analysed ({len(self._skipped)} skipped as unreadable); nothing to summarise")
        if len(self.ok_settings) > 1:
            raise ValueError("the results mix several analysis settings; aggregate one setting at a time")
        if len(self.band_sets) > 1:
            raise ValueError("clips gave different band sets (a grid too small for an edge?); use the same `edges`")
        mean, std, ef = self._moments()  # (clip_weights or _fold refuses bad weights)
        snr_db = to_db(snr_closed_form(mean, schedule))
        first = self.first
        assert first is not None
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
            energy_fraction=ef,
            snr_db=snr_db,
            snr_db_lo=to_db(snr_closed_form((mean - std).clamp_min(0), schedule)),
            snr_db_hi=to_db(snr_closed_form(mean + std, schedule)),
            crossing=crossing_timesteps(snr_db),
            latent_shapes=dict(sorted(self.shapes.items())),
            encoder=dict(settings.get("encoder", {})),
            skipped=self.skipped,
            settings=settings,
            weighted=self.weighted,
        )


def _path_order(path: str, start: float | None) -> tuple:
    """The order of ``read_results``: by path, then start, a clip without a start last."""
    return (path, start is None, start or 0.0)
