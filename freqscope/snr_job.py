"""The ``snr`` command as one library call, :func:`snr`: per-band SNR of clips or of a dataset, one :class:`SNRRun`.

One clip, several and a dataset are the same run (rows → an optional store → one aggregate → one
:class:`~freqscope.aggregate.Summary` per schedule); they differ only in how the rows are made: in this
process clip by clip (:func:`snr_clips`, which can also keep a latent or measure with noise draws), or by the
resumable, parallel dataset runner (:func:`snr_dataset_run`).

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

from .aggregate import COLUMNS as AGGREGATE_COLUMNS
from .aggregate import Pool, Summary, aggregate_batches
from .analysis import ClipResult, analyze_video, summarize
from .dataset import DatasetRun
from .dataset_job import dist_env, rank_device, run_ranks
from .devices import DEVICE_RULE, resolve_device
from .encode import load_encoder
from .inputs import GLOB_CHARS, LIST_SUFFIXES
from .io import check_outputs
from .noise_schedule import DEFAULT_PRESET, Schedule, get_schedule
from .results import iter_results
from .video import check_read_options as check_read
from .video import list_videos

__all__ = ["SNRRun", "resolve_device", "DEVICE_RULE", "is_dataset_run", "check_read", "check_clip_args"]
__all__ += ["check_dataset_args", "snr_schedules", "clip_schedule", "snr_clips", "snr_dataset_run", "snr"]
__all__ += ["run_schedules", "dataset_marks", "check_snr_args", "snr_from_results"]

#: Above this many clips in one process, a dataset run (resumable, parallel decoding) is suggested.
MANY_CLIPS = 50


@dataclass
class SNRRun:
    """What one ``snr`` run produced, ready for the reports."""

    schedules: list[Schedule]
    summaries: list[Summary]  # one per schedule
    clips: list[ClipResult] = field(default_factory=list)  # each clip's analysis (clip runs only)
    encoder: Any = None  # the encoder that made the latents (clip runs only; band videos decode with it)
    dataset: DatasetRun | None = None  # counts (over all ranks), timing and rank of a dataset run

    @property
    def rank(self) -> int:
        """This process's torchrun rank (0 outside torchrun): only rank 0 reports."""
        return self.dataset.rank if self.dataset is not None else 0


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
    band_videos: bool = False,
) -> None:
    """Refuse options a dataset run cannot honour, before any work."""
    if seeds is not None or band_videos:
        raise ValueError("`seeds` and `band_videos` apply to single clips, not to a dataset run")
    check_read(read)
    if from_results is not None and (videos or results is not None):
        raise ValueError("`from_results` reads a finished run; drop `videos`/`results` (or drop `from_results`)")
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
    return SNRRun([schedule], [summarize(clips, schedule)], clips=clips, encoder=enc)


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
        return SNRRun(schedules, snr_from_results(from_results, schedules, weighted=weighted))
    check_outputs({"`results`": results}, inputs=[v for v in videos if os.path.isfile(v)])  # links too
    dev = rank_device(resolve_device(device))  # under torchrun: this rank's GPU
    enc = load_encoder(**(encoder or {}), device=dev)
    run, rows = run_ranks(
        list(videos),
        enc,
        results=results,
        device=dev,
        progress=progress,
        read=read or {},
        generator=torch.Generator().manual_seed(seed),  # CPU: noise drawn there and moved (randn_tensor)
        **kwargs,
    )
    by_path = results is not None  # a store's rows come in the order they were written
    summaries = aggregate_batches(rows, schedules, weighted=weighted, by_path=by_path) if rows is not None else []
    return SNRRun(schedules, summaries, dataset=run)


def snr_from_results(path: str | os.PathLike, schedules: list[Schedule], *, weighted: bool = False) -> list[Summary]:
    """Summarise a finished results file under each schedule, without decoding anything."""
    pool = Pool(weighted=weighted, by_path=True)
    for batch in iter_results(path, columns=AGGREGATE_COLUMNS):  # a batch at a time: 10M rows fit in memory
        pool.add(batch)
    n = len(pool.settings)
    if n > 1:
        raise ValueError(
            f"`from_results` {path} holds clips analysed with {n} different settings (frames, size, encoder, "
            "bands...); keep one results file per setting"
        )
    return [pool.summary(s) for s in schedules]


def suffixed(path: str | None, name: str, several: bool) -> str | None:
    """``snr.json`` → ``snr-<schedule>.json`` when several schedules are reported (``-``: stdout, unchanged)."""
    if path is None or not several or path == "-":
        return path
    p = Path(path)
    return str(p.with_name(f"{p.stem}-{name}{p.suffix}"))


def run_schedules(
    schedules: Sequence[str] = (),
    *,
    dataset_run: bool,
    scheduler_config: str | os.PathLike | None = None,
    **kwargs: Any,
) -> list[Schedule]:
    """The schedules an ``snr`` run reports: :func:`snr_schedules` for a dataset run, :func:`clip_schedule`
    (one) for single clips. ``kwargs`` (``zero_terminal_snr``, ``shift``) go to ``get_schedule``."""
    if dataset_run:
        return snr_schedules(schedules, scheduler_config=scheduler_config, **kwargs)
    return [clip_schedule(schedules, scheduler_config=scheduler_config, **kwargs)]


def snr(
    videos: Sequence[str],
    schedules: list[Schedule],
    *,
    read: dict | None = None,
    analysis: dict | None = None,
    dataset: dict | None = None,
    seeds: int | None = None,
    band_videos: bool = False,
    **kwargs: Any,
) -> SNRRun:
    """The ``snr`` job: per-band SNR of ``videos`` under each of ``schedules`` (:func:`run_schedules`).

    ``read``: options of :func:`~freqscope.video.read_video`; ``analysis``: the band options (``edges``,
    ``decomposition``, ``time_scale``); ``dataset``: the dataset runner's (``results``, ``from_results``,
    ``weighted``, ``workers``, ``batch_size``, ``strict``, ``radial``), whose presence (or a glob, a list,
    several schedules, torchrun) makes a dataset run (:func:`is_dataset_run`); ``seeds`` and ``band_videos``:
    single clips only. ``kwargs`` (``encoder``, ``device``, ``seed``, ``progress``) go to both runners."""
    read, analysis, dataset = dict(read or {}), dict(analysis or {}), dict(dataset or {})
    dataset_run = is_dataset_run(videos, schedules=[s.name for s in schedules], **dataset_marks(dataset))
    check_snr_args(videos, dataset_run=dataset_run, read=read, dataset=dataset, seeds=seeds, band_videos=band_videos)
    if dataset_run:
        return snr_dataset_run(videos, schedules, read=read, **analysis, **dataset, **kwargs)
    (schedule,) = schedules
    analysis |= {} if seeds is None else {"seeds": seeds}
    paths = list_videos(list(videos))
    return snr_clips(paths, schedule, read=read, band_videos=band_videos, **analysis, **kwargs)


def check_snr_args(
    videos: Sequence[str],
    *,
    dataset_run: bool,
    read: dict,
    dataset: dict,
    seeds: int | None = None,
    band_videos: bool = False,
) -> None:
    """Refuse what a run of this kind cannot honour (:func:`check_dataset_args`, :func:`check_clip_args`)."""
    if dataset_run:
        check_dataset_args(
            videos,
            read=read,
            results=dataset.get("results"),
            from_results=dataset.get("from_results"),
            seeds=seeds,
            band_videos=band_videos,
        )
    else:
        weighted, batch_size = dataset.get("weighted", False), dataset.get("batch_size")
        check_clip_args(videos, read=read, weighted=weighted, batch_size=batch_size)


def dataset_marks(dataset: dict) -> dict:
    """The options of ``dataset`` that make a dataset run (:func:`is_dataset_run`'s keywords)."""
    return {k: dataset.get(k) for k in ("results", "from_results", "workers", "strict", "radial")}
