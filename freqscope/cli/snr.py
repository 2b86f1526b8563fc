"""``freqscope snr``: per-band SNR of clips or a dataset. Parse, call the job, write the reports."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from types import SimpleNamespace

import click

from .. import snr_job
from ..analysis import analyze_latent
from ..dataset import run_dataset
from ..io import STDOUT, check_outputs
from ..noise_schedule import DEFAULT_PRESET, PRESETS, SHIFT_RULE
from ..plotting import PLOT_FORMATS
from ..report import format_table, plot_snr, write_band_videos, write_csv, write_json
from ..snr_job import is_dataset_run, suffixed
from ..video import list_videos
from .bands import analysis_options, band_options
from .common import (
    ClipArgs,
    LibraryDefault,
    encoder_options,
    given,
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
@band_options
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
    run_job(lambda: _snr(clip, SimpleNamespace(**options)), clip.quiet)


def _snr(clip: ClipArgs, a: SimpleNamespace) -> None:
    """Check the outputs, make the rows and their summaries (:func:`~freqscope.snr_job.snr`), write."""
    dataset = given(
        results=a.results,
        from_results=a.from_results,
        workers=a.workers,
        batch_size=a.batch_size,
        strict=a.strict,
        radial=a.radial,
    ) | ({"weighted": True} if a.weighted else {})
    read = {**clip.read_kwargs(), **given(size=clip.size)}
    dataset_run = is_dataset_run(clip.videos, schedules=a.schedule_names, **snr_job.dataset_marks(dataset))
    snr_job.check_snr_args(
        clip.videos,
        dataset_run=dataset_run,
        read=read,
        dataset=dataset,
        seeds=a.seeds,
        band_videos=a.band_videos is not None,
    )
    # The clips listed once (single clips: every file of a folder), to be checked against the outputs.
    paths = [v for v in clip.videos if os.path.isfile(v)] if dataset_run else list_videos(list(clip.videos))
    scheds = snr_job.run_schedules(
        a.schedule_names,
        dataset_run=dataset_run,
        scheduler_config=a.scheduler_config,
        **given(zero_terminal_snr=a.zero_terminal_snr, shift=a.shift),
    )
    outs = _outputs([s.name for s in scheds], json_path=a.json_path, csv_path=a.csv_path, plot_path=a.plot_path)
    check_outputs(
        {"--results": a.results, **{flag: p for flag, p, _ in outs}},
        folders={"--band-videos": (a.band_videos, lambda name: bool(re.fullmatch(r"band\d+_.*\.mp4", name)))},
        inputs=run_inputs(clip, a.scheduler_config, paths=paths + ([a.from_results] if a.from_results else [])),
        formats={flag: PLOT_FORMATS for flag, _, _ in outs if flag.startswith("--plot")},
        stdout=[flag for flag, _, _ in outs if not flag.startswith("--plot")],
    )
    run = snr_job.snr(  # one library call; a finished run (from_results) is aggregated, the run's options unused
        clip.videos,
        scheds,
        read=read,
        analysis=analysis_options(a.bands_text, a.decomposition, a.time_scale),
        dataset=dataset,
        seeds=a.seeds,
        band_videos=a.band_videos is not None,
        encoder=encoder_options(clip),
        device=clip.device,
        **given(seed=clip.seed),
        progress=progress_bar(clip.quiet),
    )
    if run.dataset is not None and not clip.quiet and run.rank == 0:
        _say_dataset_counts(run.dataset, a.results)
    if run.rank != 0:
        return
    _report(clip, run, outs, a)
    if a.band_videos is not None:
        first = run.clips[0]
        assert first.z0 is not None  # kept by snr_clips(band_videos=True)
        decode = run.encoder.decode if hasattr(run.encoder, "decode") else None
        for path in write_band_videos(first.z0, first.bands, a.band_videos, decode=decode):
            wrote(path, clip.quiet)


def _outputs(names: list[str], *, json_path, csv_path, plot_path) -> list[tuple[str, str | None, Callable]]:
    """(flag, path, writer) of every report, one set per schedule (``-<schedule>`` in their names when several)."""
    several = len(names) > 1
    return [
        (f"{flag} ({n})" if several else flag, suffixed(p, n, several), w)
        for n in names
        for flag, p, w in (
            ("--json", json_path, write_json),
            ("--csv", csv_path, write_csv),
            ("--plot", plot_path, plot_snr),
        )
    ]


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


def _report(clip: ClipArgs, run, outs, a: SimpleNamespace) -> None:
    """The table of each schedule (unless stdout carries the data), the skipped clips, then the files."""
    if not clip.quiet and STDOUT not in (a.json_path, a.csv_path):
        for s in run.summaries:
            click.echo(format_table(s))
    s0, source = run.summaries[0], a.results or a.from_results
    if s0.skipped and not clip.quiet:
        listed = [f"--results {source} (status 'error')"] if source else []
        listed += ["the JSON's 'skipped'"] if a.json_path else []
        click.echo(
            f"freqscope: warning: skipped {len(s0.skipped)} unreadable clip(s)"
            + (f"; listed in {' and '.join(listed)}" if listed else "")
            + "; first: "
            + to_flags("; ".join(e if p in e else f"{p}: {e}" for p, e in s0.skipped[:3])),
            err=True,
        )
    per_schedule = len(outs) // len(run.summaries)
    for i, (_, path, write) in enumerate(outs):
        if path is not None:
            write(run.summaries[i // per_schedule], path)
            wrote(path, clip.quiet)


command = snr
