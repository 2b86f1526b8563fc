"""The ``snr`` command as library calls: per-band SNR of clips, or of a dataset, into one :class:`SNRRun`.

Every default lives here, in a signature; the CLI passes on only what the user set. Errors name the
parameter in backquotes (`frames`), which the CLI shows as its flag (``--frames``).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .aggregate import DatasetSummary
from .analysis import ClipResult, Summary, analyze_video, summarize
from .dataset_job import DatasetJob, dist_env, rank_device, snr_dataset, snr_from_results
from .devices import DEVICE_RULE, resolve_device
from .encode import load_encoder
from .inputs import GLOB_CHARS, LIST_SUFFIXES
from .io import check_outputs
from .schedule import DEFAULT_PRESET, Schedule, get_schedule
from .video import check_read_options as check_read

__all__ = ["SNRRun", "resolve_device", "DEVICE_RULE", "is_dataset_run", "check_read", "check_clip_args"]
__all__ += ["check_dataset_args", "snr_schedules", "clip_schedule", "snr_clips", "snr_dataset_run"]

#: Above this many clips in one process, a dataset run (resumable, parallel decoding) is suggested.
MANY_CLIPS = 50


@dataclass
class SNRRun:
    """What one ``snr`` run produced, ready for the reports."""

    schedules: list[Schedule]
    #: one :class:`~freqscope.analysis.Summary` (clips) or one DatasetSummary per schedule (dataset run)
    summaries: list[Any]
    clips: list[ClipResult] = field(default_factory=list)  # each clip's analysis (clip runs only)
    encoder: Any = None  # the encoder that made the latents (clip runs only; band videos decode with it)
    job: DatasetJob | None = None  # counts, timing and rank of a dataset run (None: clips or --from-results)

    @property
    def rank(self) -> int:
        """This process's torchrun rank (0 outside torchrun): only rank 0 reports."""
        return self.job.rank if self.job is not None else 0


def is_dataset_run(
    videos: Sequence[str],
    *,
    schedules: Sequence[str] = (),
    results: str | None = None,
    from_results: str | None = None,
    workers: int | None = None,
    strict: bool | None = None,
    radial: bool | None = None,
) -> bool:
    """A dataset run: a results file, decoding workers, torchrun, several schedules, or a glob or list of clips."""
    return (
        any(v is not None for v in (results, from_results, workers, strict, radial))
        or dist_env()[1] > 1
        or len(schedules) > 1
        or any(GLOB_CHARS & set(v) or v.lower().endswith(LIST_SUFFIXES) for v in videos)
    )


def check_clip_args(
    videos: Sequence[str], *, read: dict, weighted: bool = False, batch_size: int | None = None
) -> None:
    """Refuse options a run over single clips cannot honour, before any work."""
    if not videos:
        raise ValueError("give `videos` PATH (or `from_results` FILE)")
    if weighted or batch_size is not None:
        raise ValueError("`weighted` and `batch_size` apply to dataset runs (add `results` FILE)")
    check_read(read)


def check_dataset_args(
    videos: Sequence[str],
    *,
    read: dict,
    results: str | None = None,
    from_results: str | None = None,
    seeds: int | None = None,
    band_videos: str | None = None,
) -> None:
    """Refuse options a dataset run cannot honour, before any work."""
    if seeds is not None or band_videos is not None:
        raise ValueError("`seeds` and `band_videos` apply to single clips, not to a dataset run")
    check_read(read)
    if from_results is not None and (videos or results is not None):
        raise ValueError(
            "`from_results` reads a finished run; drop `videos`/`results` (or drop `from_results`)"
        )
    if from_results is None and not videos:
        raise ValueError("give `videos` PATH (a file, folder, glob or .txt/.csv list) or `from_results` FILE")
    for name, p in (("results", results), ("from_results", from_results)):
        if p is not None and not p.endswith(".parquet"):
            raise ValueError(f"`{name}` {p}: give a .parquet file name")


def snr_schedules(
    schedules: Sequence[str] = (),
    *,
    scheduler_config: str | os.PathLike | None = None,
    **kwargs: Any,
) -> list[Schedule]:
    """The schedules to report: ``scheduler_config`` (if given) then the ``schedules`` presets; the default
    preset when neither is given. ``kwargs`` (``zero_terminal_snr``, ``shift``) go to ``get_schedule``."""
    names = list(schedules) or ([] if scheduler_config else [DEFAULT_PRESET])
    sources = ([os.fspath(scheduler_config)] if scheduler_config else []) + names
    return [get_schedule(n, **kwargs) for n in sources]


def clip_schedule(
    schedules: Sequence[str] = (), *, scheduler_config: str | os.PathLike | None = None, **kwargs: Any
) -> Schedule:
    """The one schedule of a run over single clips: ``scheduler_config`` if given (it overrides the preset),
    else the preset of ``schedules`` (at most one; the default preset when none)."""
    if len(schedules) > 1:
        raise ValueError("several `schedules` make a dataset run (add `results` FILE)")
    return snr_schedules([] if scheduler_config else schedules, scheduler_config=scheduler_config, **kwargs)[0]


def snr_clips(
    paths: Sequence[str | os.PathLike],
    schedule: Schedule,
    *,
    encoder: dict | None = None,
    device: str | torch.device | None = None,
    seed: int = 0,
    read: dict | None = None,
    band_videos: bool = False,
    progress: Callable | None = None,
    **analysis: Any,
) -> SNRRun:
    """Per-band SNR of each clip of ``paths`` under ``schedule``, and their summary.

    ``encoder``: options of :func:`~freqscope.encode.load_encoder`; ``read``: options of
    :func:`~freqscope.video.read_video`; ``analysis``: options of
    :func:`~freqscope.analysis.analyze_latent` (``edges``, ``decomposition``, ``time_scale``, ``seeds``).
    With ``band_videos`` the first clip keeps its latent. Noise is drawn on the CPU from ``seed``.
    """
    enc = load_encoder(**(encoder or {}), device=resolve_device(device))
    if len(paths) > MANY_CLIPS:
        warnings.warn(
            f"{len(paths)} clips in one process, every clip's curves kept: add `results` run.parquet "
            "(and `workers` N) for a faster, resumable dataset run",
            stacklevel=2,
        )
    gen = torch.Generator().manual_seed(seed)  # CPU: noise drawn there and moved (randn_tensor)
    several = len(paths) > 1
    clips = [
        analyze_video(
            p,
            enc,
            schedule,
            generator=gen,
            progress=progress,
            keep_latent=band_videos and i == 0,
            radial=i == 0,  # the report shows the first clip's radial profile only
            **(read or {}),
            **analysis,
        )
        for i, p in enumerate(progress(paths, desc="clips", unit="clip") if progress and several else paths)
    ]
    summary: Summary = summarize(clips, schedule)
    return SNRRun([schedule], [summary], clips=clips, encoder=enc)


def snr_dataset_run(
    videos: Sequence[str],
    schedules: list[Schedule],
    *,
    results: str | None = None,
    from_results: str | None = None,
    weighted: bool = False,
    encoder: dict | None = None,
    device: str | torch.device | None = None,
    seed: int = 0,
    read: dict | None = None,
    progress: Callable | None = None,
    **kwargs: Any,
) -> SNRRun:
    """Per-band SNR over a dataset under each of ``schedules``: aggregate a finished ``from_results`` file,
    or run (and resume) on this process or every torchrun rank. ``kwargs`` go to
    :func:`~freqscope.dataset.run_dataset` (edges, decomposition, time_scale, workers, batch_size, strict,
    radial)."""
    if from_results is not None:
        summaries: list[DatasetSummary] = snr_from_results(from_results, schedules, weighted=weighted)
        return SNRRun(schedules, list(summaries))
    check_outputs({"`results`": results}, inputs=[v for v in videos if os.path.isfile(v)])  # links too
    dev = rank_device(resolve_device(device))  # under torchrun: this rank's GPU
    enc = load_encoder(**(encoder or {}), device=dev)
    job = snr_dataset(
        list(videos),
        enc,
        schedules,
        results=results,
        weighted=weighted,
        device=dev,
        progress=progress,
        read=read or {},
        generator=torch.Generator(dev).manual_seed(seed),
        **kwargs,
    )
    return SNRRun(schedules, list(job.summaries), job=job)


def suffixed(path: str | None, name: str, several: bool) -> str | None:
    """``snr.json`` → ``snr-<schedule>.json`` when several schedules are reported (``-``: stdout, unchanged)."""
    if path is None or not several or path == "-":
        return path
    p = Path(path)
    return str(p.with_name(f"{p.stem}-{name}{p.suffix}"))
