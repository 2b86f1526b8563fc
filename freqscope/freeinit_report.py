"""The FreeInit report: the ``freqscope.freeinit/1`` document, the gap table and the gap-per-pass figure.

JSON schema ``freqscope.freeinit/1`` (non-finite numbers are ``null``)::

    schema, video, encoder, latent_shape      as in freqscope.snr/1
    scheduler        {class, config}
    bands            [{name, lo, hi, n_bins, power}]           power: the clip's P_b
    runs             one per prior:
      prior, info                              sampler settings and notes (e.g. where it re-noised)
      alpha_bar                                per pass: VP ᾱ of the start level
      start_timestep                           per pass: the first timestep it was sampled from
      gap_db           one row per pass (pass 0 = the prior's own noise), one value per band
      gap_db_predicted same, closed form (reference model with DDIM only; else null)
      z0_power_db      per pass, band power of the generated latent relative to the clip's
      z0_power_db_predicted
      consistency      per pass: latent/pixel frame cosine, first-frame cosine, temporal flickering, …
      variance_loss_db the noise variance the mixing loses (0 for variance-preserving or binary masks)
    videos           the decoded video of every pass, where they were written (pipelines)
"""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from .report import _clean, fmt_db, layout_table

if TYPE_CHECKING:
    from .bands import BandSet
    from .freeinit_job import FreeInitRun, GapRun

__all__ = [
    "FREEINIT_SCHEMA",
    "GAP_TABLE_LEGEND",
    "freeinit_to_dict",
    "format_gap_table",
    "plot_gap",
    "run_title",
    "run_to_dict",
]

FREEINIT_SCHEMA = "freqscope.freeinit/1"


def freeinit_to_dict(
    bands: BandSet,
    P: torch.Tensor,
    runs: Sequence[GapRun],
    *,
    video: str | None = None,
    encoder: dict | None = None,
    latent_shape: Sequence[int] | None = None,
    scheduler: Any = None,
) -> dict:
    """The ``freqscope.freeinit/1`` document (schema above)."""

    return _clean(
        {
            "schema": FREEINIT_SCHEMA,
            "video": video,
            "encoder": encoder,
            "latent_shape": list(latent_shape) if latent_shape is not None else None,
            "scheduler": None
            if scheduler is None
            else {
                "class": type(scheduler).__name__,
                "config": json.loads(json.dumps(dict(scheduler.config), default=str, sort_keys=True)),
            },
            "bands": [{**b.to_dict(), "power": float(p)} for b, p in zip(bands.bands, P.tolist())],
            "runs": [
                {
                    "prior": r.prior,
                    "info": r.result.info,
                    "alpha_bar": [p.alpha_bar for p in r.result.passes],
                    "start_timestep": [p.start_timestep for p in r.result.passes],
                    "gap_db": r.gap_db,
                    "gap_db_predicted": r.gap_db_predicted,
                    "z0_power_db": r.z0_power_db,
                    "z0_power_db_predicted": r.z0_power_db_predicted,
                    "consistency": r.consistency,
                    "variance_loss_db": r.variance_loss_db,
                }
                for r in runs
            ],
        }
    )


#: How to read the consistency and motion columns of :func:`format_gap_table` (printed under it).
GAP_TABLE_LEGEND = (
    "consistency: VBench subject consistency (DINO embedder) where --embedder is given, else the cosine of "
    "consecutive frames; flicker: VBench temporal flickering on the encoded video (* = not static: VBench "
    "scores static videos only); both 1 = perfectly steady, higher is better. motion: mean optical flow, "
    "px/frame; higher = more motion. Consistency bought with less motion is over-smoothing, not a gain."
)


def _consistency_cells(c: dict) -> list[str]:
    """consistency, flicker and motion cells of one pass (``-`` where a metric needs pixels)."""
    cons = c.get("subject_consistency", c.get("pixel_frame_cosine", c["latent_frame_cosine"]))
    flick = "-"
    if "temporal_flickering" in c:
        flick = f"{c['temporal_flickering']:.4f}" + ("" if c.get("static", True) else "*")
    motion = f"{c['flow_px']:.2f}" if "flow_px" in c else "-"
    return [f"{cons:.4f}", flick, motion]


def format_gap_table(bands: BandSet, runs: Sequence[GapRun], *, title: str = "") -> str:
    """Gap per band (dB) for every pass of every prior, closed form in brackets where one exists, with
    consistency and motion side by side (see :data:`GAP_TABLE_LEGEND`)."""
    head = ["prior", "pass"] + bands.names + ["consistency", "flicker", "motion"]
    rows = []
    for r in runs:
        for k in range(r.gap_db.shape[0]):
            row = [r.prior if k == 0 else "", str(k)]
            for i in range(len(bands)):
                cell = fmt_db(r.gap_db[k, i].item()).strip()
                if r.gap_db_predicted is not None:
                    cell += f" ({fmt_db(r.gap_db_predicted[k, i].item()).strip()})"
                row.append(cell)
            rows.append(row + _consistency_cells(r.consistency[k]))
    lines = [title] if title else []
    lines += [
        "initialization gap per band, dB (+: less power than training z_T; closed form in brackets)",
        *layout_table(head, rows, left=2),
    ]
    lines += textwrap.wrap(GAP_TABLE_LEGEND, width=max(100, len(lines[-1])))
    return "\n".join(lines)


#: Priors by name, as figure titles say them.
PRIOR_NAMES = {
    "freeinit": "FreeInit",
    "freqprior": "FreqPrior (published)",
    "freqprior-tail": "FreqPrior, tail variant",
    "pyoco-mixed": "PYoCo mixed noise",
    "pyoco-progressive": "PYoCo progressive noise",
    "offset": "offset noise",
    "spectrum": "spectrum-matched noise",
}


def plot_gap(bands: BandSet, runs: Sequence[GapRun], path: str | os.PathLike, *, title: str | None = None) -> None:
    """Gap (dB) per band vs pass, one panel per prior, closed form dashed; 0 dB = matches training."""
    from matplotlib.lines import Line2D

    from .plotting import band_colors, new_figure, save_figure

    n = len(runs)
    fig, axes = new_figure(1, n, width=3.5 * min(n, 3) if n > 1 else 3.5, height=2.6, squeeze=False, sharey=True)
    colors = band_colors(len(bands))
    for ax, r in zip(axes[0], runs):
        k = list(range(r.gap_db.shape[0]))
        for i, b in enumerate(bands.bands):
            if b.n_bins == 0:
                continue
            ax.plot(k, r.gap_db[:, i].numpy(), "o-", color=colors[i], label=b.name, markersize=3)
            if r.gap_db_predicted is not None:
                ax.plot(k, r.gap_db_predicted[:, i].numpy(), "--", color=colors[i], linewidth=0.8)
        ax.axhline(0, color="0.3", linestyle=":", linewidth=0.8)
        ax.set_xlabel("sampling pass (0 = initial noise)")
        ax.set_xticks(k)
        name = PRIOR_NAMES.get(r.prior, r.prior)
        ax.set_title(f"{name}, {r.result.info['renoise']} noise" if r.result.info["num_iters"] > 1 else name)
    axes[0][0].set_ylabel("gap to training $z_T$ (dB)\n(+: too little power)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if any(r.gap_db_predicted is not None for r in runs):
        handles.append(Line2D([], [], color="0.3", linestyle="--", linewidth=0.8))
        labels.append("closed form")
    axes[0][-1].legend(handles, labels, title="frequency band", loc="upper left", bbox_to_anchor=(1.02, 1.0))
    if title:
        fig.suptitle(title)
    save_figure(fig, path)


def run_title(run: FreeInitRun) -> str:
    """One line naming what a :class:`~freqscope.freeinit_job.FreeInitRun` measured: clip, latent, sampler."""
    model = f"pipeline {run.pipeline}" if run.pipeline else "reference model (exact Gaussian denoiser)"
    return f"clip {run.video} | latent {run.latent_shape} | {type(run.scheduler).__name__} | {model}"


def run_to_dict(run: FreeInitRun) -> dict:
    """The ``freqscope.freeinit/1`` document of a :class:`~freqscope.freeinit_job.FreeInitRun`."""
    doc = freeinit_to_dict(
        run.bands,
        run.P,
        run.runs,
        video=run.video,
        encoder=run.encoder,
        latent_shape=run.latent_shape,
        scheduler=run.scheduler,
    )
    doc["videos"] = list(run.videos)
    return doc
