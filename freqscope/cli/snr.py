"""``freqscope snr``: per-band SNR of clips or a dataset. Parse, call the job, write the reports."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from types import SimpleNamespace

import click

from ..aggregate import format_dataset_table, plot_dataset, write_dataset_csv, write_dataset_json
from ..analysis import analyze_latent
from ..bands import DECOMPOSITIONS
from ..dataset import run_dataset
from ..io import STDOUT, check_outputs
from ..plotting import PLOT_FORMATS
from ..report import format_table, plot_snr, write_band_videos, write_csv, write_json
from ..schedule import DEFAULT_PRESET, PRESETS, SHIFT_RULE, Schedule, scheduler_config_file
from ..snr_job import (
    check_clip_args,
    check_dataset_args,
    clip_schedule,
    is_dataset_run,
    snr_clips,
    snr_dataset_run,
    snr_schedules,
    suffixed,
)
from ..video import list_videos
from .common import (
    ClipArgs,
    LibraryDefault,
    analysis_options,
    encoder_options,
    given,
    model_files,
    option,
    progress_bar,
    run_inputs,
    run_job,
    to_flags,
    video_options,
    wrote,
)


@click.command()
@video_options(video_required=False)
@click.option(
    "--schedule",
    "schedule_names",
    type=click.Choice(list(PRESETS)),
    multiple=True,
    cls=LibraryDefault,
    show_default=DEFAULT_PRESET,
    help="Preset noise schedule; repeat to report several (dataset runs).",
)
@click.option(
    "--scheduler-config", metavar="FILE_OR_FOLDER", help="A diffusers scheduler config (overrides --schedule)."
)
@click.option("--zero-terminal-snr", is_flag=True, default=None, help="Rescale betas to zero terminal SNR.")
@option("--shift", type=float, help="Flow matching: timestep shift.", default_text=SHIFT_RULE)
@option(
    "--bands",
    "bands_text",
    metavar="E1,E2,...",
    default_of=(analyze_latent, "edges"),
    help="Band edges in normalised frequency (Nyquist = 1).",
)
@option(
    "--decomposition",
    type=click.Choice(DECOMPOSITIONS),
    default_of=(analyze_latent, "decomposition"),
    help="Distance over (t,h,w), (h,w) or t.",
)
@option(
    "--time-scale",
    type=float,
    default_of=(analyze_latent, "time_scale"),
    help="Weight of temporal frequency, d_s/d_t.",
)
@option(
    "--seeds",
    type=click.IntRange(min=0),
    default_of=(analyze_latent, "seeds"),
    help="Also measure SNR with K real noise draws.",
)
@click.option("--json", "json_path", metavar="PATH", help="Write the full report as JSON.")
@click.option("--csv", "csv_path", metavar="PATH", help="Write SNR per band and timestep as CSV.")
@click.option("--plot", "plot_path", metavar="PATH", help="Write the SNR-vs-timestep figure (.png/.pdf/.svg).")
@click.option("--band-videos", metavar="DIR", help="Write what each band of the first clip holds, one mp4 per band.")
@click.option("--results", metavar="FILE.parquet", help="Dataset run: keep one row per clip here; re-runs resume.")
@click.option(
    "--from-results", metavar="FILE.parquet", help="Aggregate a results file under --schedule(s), decoding nothing."
)
@option(
    "--workers",
    type=click.IntRange(min=0),
    default_of=(run_dataset, "workers"),
    help="Dataset run: decoding processes.",
)
@option(
    "--batch-size",
    type=click.IntRange(min=1),
    default_of=(run_dataset, "batch_size"),
    help="Dataset run: clips per encoder batch.",
)
@click.option("--strict", is_flag=True, default=None, help="Dataset run: stop at the first bad clip.")
@click.option("--weighted", is_flag=True, help="Weight clips by the 'weight' column of a CSV list.")
@click.option("--radial", is_flag=True, default=None, help="Dataset run: also store each clip's radial spectrum.")
def snr(clip: ClipArgs, **options) -> None:
    """Per-band SNR of real clips over every training timestep.

    A dataset run (--results, --from-results, --workers, --strict, a glob or a .txt/.csv list for
    --video, or torchrun) searches folders recursively, skips bad clips (listed in the results
    and the JSON) and reports the mean and spread over clips in linear power.

    \b
    Examples:
      freqscope snr --video clip.mp4
      freqscope snr --video clips/ --schedule animatediff --json snr.json --plot snr.png
      freqscope snr --video clip.mp4 --vae ./sd-vae --device cuda --seeds 8
      freqscope snr --video clip.mp4 --band-videos out/bands   # see what each band holds
      freqscope snr --video ucf101/ --results run.parquet --workers 8 --plot snr.png
      freqscope snr --from-results run.parquet --schedule sd --schedule animatediff --json snr.json
      torchrun --standalone --nproc_per_node 4 -m freqscope snr --video list.csv --results run.parquet
    """
    a = SimpleNamespace(**options)
    dataset = is_dataset_run(
        clip.videos,
        schedules=a.schedule_names,
        results=a.results,
        from_results=a.from_results,
        workers=a.workers,
        strict=a.strict,
        radial=a.radial,
    )
    if dataset:
        return run_job(lambda: _snr_dataset(clip, a), clip.quiet)
    run_job(lambda: _snr_clips(clip, a), clip.quiet)



def _snr_clips(clip: ClipArgs, a: SimpleNamespace) -> None:
    """``snr`` of single clips: check, call :func:`~freqscope.snr_job.snr_clips`, write."""
    json_path, csv_path, plot_path, band_videos = a.json_path, a.csv_path, a.plot_path, a.band_videos
    read = {**clip.read_kwargs(), **given(size=clip.size)}
    check_clip_args(clip.videos, read=read, weighted=a.weighted, batch_size=a.batch_size)
    paths = list_videos(list(clip.videos))
    check_outputs(
        {"--json": json_path, "--csv": csv_path, "--plot": plot_path},
        folders={"--band-videos": (band_videos, lambda name: bool(re.fullmatch(r"band\d+_.*\.mp4", name)))},
        inputs=run_inputs(clip, a.scheduler_config, paths=paths),
        formats={"--plot": PLOT_FORMATS},
        stdout=("--json", "--csv"),
    )
    analysis = analysis_options(a.bands_text, a.decomposition, a.time_scale, seeds=a.seeds)
    sched = clip_schedule(
        a.schedule_names,
        scheduler_config=a.scheduler_config,
        **given(zero_terminal_snr=a.zero_terminal_snr, shift=a.shift),
    )
    run = snr_clips(
        paths,
        sched,
        encoder=encoder_options(clip),
        device=clip.device,
        **given(seed=clip.seed),
        read=read,
        band_videos=band_videos is not None,
        progress=progress_bar(clip.quiet),
        **analysis,
    )
    summary = run.summaries[0]
    if not clip.quiet and STDOUT not in (json_path, csv_path):  # stdout carries the data instead
        click.echo(format_table(summary))
    for path, write in ((json_path, write_json), (csv_path, write_csv), (plot_path, plot_snr)):
        if path is not None:
            write(summary, path)
            wrote(path, clip.quiet)
    if band_videos is not None:
        first = run.clips[0]
        assert first.z0 is not None  # kept by snr_clips(band_videos=True)
        decode = run.encoder.decode if hasattr(run.encoder, "decode") else None
        for path in write_band_videos(first.z0, first.bands, band_videos, decode=decode):
            wrote(path, clip.quiet)


def _snr_dataset(clip: ClipArgs, a: SimpleNamespace) -> None:
    """``snr`` over a dataset: run or resume (on every torchrun rank), or re-aggregate a results file."""
    read = {**clip.read_kwargs(), **given(size=clip.size)}
    check_dataset_args(
        clip.videos, read=read, results=a.results, from_results=a.from_results, seeds=a.seeds, band_videos=a.band_videos
    )
    scheds = snr_schedules(
        a.schedule_names,
        scheduler_config=a.scheduler_config,
        **given(zero_terminal_snr=a.zero_terminal_snr, shift=a.shift),
    )
    outs = _dataset_outputs(scheds, json_path=a.json_path, csv_path=a.csv_path, plot_path=a.plot_path)
    _check_dataset_outputs(
        clip, outs, results=a.results, from_results=a.from_results, scheduler_config=a.scheduler_config
    )
    run = snr_dataset_run(  # a finished run (from_results) is aggregated; the run's options then go unused
        clip.videos,
        scheds,
        results=a.results,
        from_results=a.from_results,
        weighted=a.weighted,
        encoder=encoder_options(clip),
        device=clip.device,
        **given(seed=clip.seed),
        read=read,
        progress=progress_bar(clip.quiet),
        **analysis_options(
            a.bands_text,
            a.decomposition,
            a.time_scale,
            workers=a.workers,
            batch_size=a.batch_size,
            strict=a.strict,
            radial=a.radial,
        ),
    )
    if run.job is not None and not clip.quiet and run.rank == 0:
        _say_dataset_counts(run.job, a.results)
    if run.rank != 0:
        return
    _report_dataset(
        clip, run, outs, json_path=a.json_path, csv_path=a.csv_path, results=a.results, from_results=a.from_results
    )


def _dataset_outputs(scheds, *, json_path, csv_path, plot_path) -> list[tuple[str, str | None, Callable, Schedule]]:
    """(flag, path, writer, schedule) of every report a dataset run writes (one set per schedule)."""
    several = len(scheds) > 1
    return [
        (f"{flag} ({s.name})" if several else flag, suffixed(p, s.name, several), w, s)
        for s in scheds
        for flag, p, w in (
            ("--json", json_path, write_dataset_json),
            ("--csv", csv_path, write_dataset_csv),
            ("--plot", plot_path, plot_dataset),
        )
    ]


def _check_dataset_outputs(clip: ClipArgs, outs, *, results, from_results, scheduler_config) -> None:
    flags = [flag for flag, _, _, _ in outs]
    check_outputs(
        {"--results": results, **{flag: p for flag, p, _, _ in outs}},
        inputs=[
            *(v for v in clip.videos if os.path.isfile(v)),  # clips and lists named directly
            *([from_results] if from_results is not None else []),
            *model_files(clip.vae),
            *([scheduler_config_file(scheduler_config)] if scheduler_config else []),
        ],
        formats={f: PLOT_FORMATS for f in flags if f.startswith("--plot")},
        stdout=[f for f in flags if not f.startswith("--plot")],
    )


def _say_dataset_counts(res, results) -> None:
    where = f" ({res.world_size} ranks)" if res.world_size > 1 else ""
    click.echo(
        f"analysed {res.analysed} clips in {res.seconds:.1f} s{where}, {res.resumed} already in {results}"
        if results
        else f"analysed {res.analysed} clips in {res.seconds:.1f} s{where}",
        err=True,
    )
    if res.warned:
        click.echo(
            f"freqscope: warning: {res.warned} clip(s) were analysed with a warning (e.g. fewer frames "
            f"than asked){'; see the warning column of ' + results if results else ''}",
            err=True,
        )


def _report_dataset(clip: ClipArgs, run, outs, *, json_path, csv_path, results, from_results) -> None:
    summaries = run.summaries
    for s in summaries:
        if not clip.quiet and "-" not in (json_path, csv_path):  # stdout carries the data instead
            click.echo(format_dataset_table(s))
    s0 = summaries[0]
    if s0.skipped and not clip.quiet:
        listed = [f"--results {results or from_results} (status 'error')"] if (results or from_results) else []
        listed += ["the JSON's 'skipped'"] if json_path else []
        click.echo(
            f"freqscope: warning: skipped {len(s0.skipped)} unreadable clip(s)"
            + (f"; listed in {' and '.join(listed)}" if listed else "")
            + "; first: "
            + to_flags("; ".join(e if p in e else f"{p}: {e}" for p, e in s0.skipped[:3])),
            err=True,
        )
    for _, path, write, s in outs:
        if path is not None:
            write(summaries[run.schedules.index(s)], path)
            wrote(path, clip.quiet)



command = snr
