"""Command line: ``freqscope snr`` and ``freqscope freeinit``. Thin: parse, call the library, write files.

Options left unset are not passed on, so every default lives once, in the library function.
Errors in the input end with one line on stderr and exit status 2.
"""

from __future__ import annotations

import functools
import inspect
import os
import re
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import click
import torch

from . import __version__
from .aggregate import format_dataset_table, plot_dataset, write_dataset_csv, write_dataset_json
from .analysis import analyze_latent
from .bands import DECOMPOSITIONS, parse_edges
from .dataset import run_dataset
from .devices import DEVICE_RULE
from .encode import DTYPE_RULE, ENCODERS, load_encoder
from .experiment import run_freeinit
from .filters import FILTER_METHODS
from .freeinit import RENOISE, RENOISE_LEVEL_RULE, sample
from .freeinit_report import format_gap_table, plot_gap, run_title, run_to_dict
from .init_noise import PRIORS as PRIOR_CHOICES
from .io import STDOUT, check_outputs, terminate_cleanly
from .plotting import PLOT_FORMATS
from .report import format_table, plot_snr, write_band_videos, write_csv, write_json
from .schedule import DEFAULT_PRESET, PRESETS, SHIFT_RULE, Schedule, scheduler_config_file
from .schedulers import reference_scheduler
from .snr_job import (
    check_clip_args,
    check_dataset_args,
    clip_schedule,
    is_dataset_run,
    snr_clips,
    snr_dataset_run,
    snr_schedules,
    suffixed,
)
from .video import SIZE_RULE, list_videos, read_video

__all__ = ["main"]


class UserError(click.ClickException):
    """One line on stderr, exit status 2."""

    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"freqscope: error: {self.format_message()}", err=True)


def _default(fn: Callable, name: str) -> str:
    """The library's default of ``fn``'s parameter ``name``, as ``show_default`` shows it: read from the
    signature, where it lives, never restated here."""
    value = inspect.signature(fn).parameters[name].default
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


class _LibraryDefault(click.Option):
    """An option left unset unless given (the library's default stands), its help showing that default as
    ``[default: 16]`` (click shows a string ``show_default`` in parentheses)."""

    def get_help_extra(self, ctx: click.Context):
        extra = super().get_help_extra(ctx)
        if isinstance(self.show_default, str):
            extra["default"] = self.show_default
        return extra


def _option(
    *decls: str, default_of: tuple[Callable, str] | None = None, default_text: str | None = None, **kw: Any
) -> Callable:
    """``click.option``; with ``default_of=(fn, name)`` the option stays unset unless given (the library's
    default stands) and its help shows that default, read from ``fn``'s signature. A default that is a rule
    (``None`` in the signature) shows as the library's ``default_text`` of it (e.g. ``DEVICE_RULE``)."""
    if default_of is not None:
        default_text = _default(*default_of)
    if default_text is not None:
        kw |= {"cls": _LibraryDefault, "show_default": default_text}
    return click.option(*decls, **kw)


def _given(**kw) -> dict:
    """The options the user set (click gives None for the rest)."""
    return {k: v for k, v in kw.items() if v is not None}


def _progress(quiet: bool):
    from tqdm.auto import tqdm

    # disable=None: bars on a terminal, none in logs and pipes; --quiet: none at all.
    return functools.partial(tqdm, disable=True if quiet else None, leave=False, file=sys.stderr, dynamic_ncols=True)


#: The flag of each library parameter whose name is not its flag's (``frames`` → ``--frames`` otherwise).
PARAM_FLAGS = {
    "videos": "--video",
    "edges": "--bands",
    "schedules": "--schedule",
}


def to_flags(message: str) -> str:
    """A library error as the CLI shows it: each parameter named in backquotes (`frames`) becomes its flag."""
    return re.sub(r"`([a-z][a-z0-9_]*)`", lambda m: PARAM_FLAGS.get(m[1], "--" + m[1].replace("_", "-")), message)


def _run(fn, quiet: bool):
    """Run ``fn`` turning input errors into one line + exit 2 and warnings into one line each."""

    def show(message, category, filename, lineno, file=None, line=None):
        if not quiet:
            click.echo(f"freqscope: warning: {to_flags(str(message))}", err=True)

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        try:
            return fn()
        except (ValueError, FileNotFoundError, IsADirectoryError, PermissionError) as e:
            raise UserError(to_flags(str(e).splitlines()[0]) if str(e) else type(e).__name__) from None
        except OSError as e:
            raise UserError(f"{e.strerror or e}: {e.filename}" if e.filename else str(e)) from None
        except (MemoryError, RuntimeError) as e:  # torch reports a failed allocation as a RuntimeError
            if isinstance(e, RuntimeError) and not re.search(r"out of memory|can't allocate|allocat", str(e), re.I):
                raise
            raise UserError("out of memory (the estimate made before reading was too low); lower --size or --frames")


#: torch.Generator.manual_seed takes a 64-bit integer; we keep to the signed range.
SEED_MAX = 2**63 - 1

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class _IntOrAuto(click.ParamType):
    """A whole number >= 1, or ``auto``."""

    name = "N|auto"

    def convert(self, value, param, ctx):
        if isinstance(value, int) or value == "auto":
            return value
        try:
            n = int(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is neither a whole number nor auto", param, ctx)
        if n < 1:
            self.fail(f"{n} is below 1", param, ctx)
        return n


class _Group(click.Group):
    """Usage errors as one line too (click prints usage and a hint by default)."""

    def main(self, args=None, prog_name=None, **kw):  # type: ignore[override]  # always standalone, one line
        kw.pop("standalone_mode", None)
        try:
            with terminate_cleanly():  # SIGTERM removes temporary files as Ctrl-C does
                rv = super().main(args=args, prog_name=prog_name or "freqscope", standalone_mode=False, **kw)
        except click.UsageError as e:
            hint = f" (see freqscope {e.ctx.command.name if e.ctx and e.ctx.parent else ''} --help)".replace("  ", " ")
            click.echo(f"freqscope: error: {e.format_message()}{hint}", err=True)
            sys.exit(2)
        except click.ClickException as e:
            e.show()
            sys.exit(e.exit_code)
        except click.exceptions.Abort:
            click.echo("freqscope: aborted", err=True)
            sys.exit(130)
        except SystemExit as e:
            if e.code == 143:
                click.echo("freqscope: terminated (SIGTERM)", err=True)
            raise
        sys.exit(rv if isinstance(rv, int) else 0)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="freqscope")
def main() -> None:
    """Frequency analysis and SNR diagnostics for video diffusion models."""


@dataclass
class ClipArgs:
    """The options every command shares: which clips, how to read and encode them, device, seed, quiet."""

    videos: tuple[str, ...]
    frames: int | None
    stride: int | None
    fps: float | None
    start: float | None
    size: int | None
    encoder: str | None
    vae: str | None
    vae_subfolder: str | None
    downsample: int | None
    sample_posterior: bool | None
    dtype: str | None
    device: str | None
    seed: int | None
    quiet: bool

    def read_kwargs(self) -> dict:
        """What the user set of ``read_video``'s options (its defaults stand for the rest)."""
        return _given(frames=self.frames, stride=self.stride, fps=self.fps, start=self.start)


CLIP_FIELDS = [f.name for f in fields(ClipArgs)]


def video_options(f=None, *, video_required: bool = True, size: dict | None = None):
    """Add the shared options; the command receives them as one :class:`ClipArgs` first argument.
    ``size``: the command's own ``--size`` help and default (``_option``'s ``help``, ``default_of``)."""
    if f is None:
        return functools.partial(video_options, video_required=video_required, size=size)
    opts = [
        click.option(
            "--video",
            "videos",
            multiple=True,
            required=video_required,
            metavar="PATH",
            help="Video file or folder of videos; repeat for several clips.",
        ),
        _option(
            "--frames",
            type=click.IntRange(min=1),
            default_of=(read_video, "frames"),
            help="Frames to read.",
        ),
        _option(
            "--stride",
            type=click.IntRange(min=1),
            default_of=(read_video, "stride"),
            help="Take every K-th frame.",
        ),
        click.option("--fps", type=float, help="Resample to F frames/s by timestamp (instead of --stride)."),
        _option(
            "--start",
            type=float,
            default_of=(read_video, "start"),
            help="Start time in seconds.",
        ),
        _option(
            "--size",
            type=click.IntRange(min=1),
            **(
                size
                or {
                    "help": "Resize so the short side is S (antialiased), then centre-crop to a multiple of 8.",
                    "default_text": SIZE_RULE,
                }
            ),
        ),
        _option(
            "--encoder",
            type=click.Choice(ENCODERS),
            default_of=(load_encoder, "encoder"),
            help="pixel, vae, or auto (vae if --vae is given).",
        ),
        click.option("--vae", metavar="PATH_OR_ID", help="diffusers autoencoder: local folder or hub id."),
        click.option("--vae-subfolder", metavar="NAME", help="Subfolder of --vae holding the VAE (e.g. vae)."),
        click.option("--downsample", type=click.IntRange(min=1), help="pixel encoder: area-downsample by K."),
        click.option(
            "--sample-posterior", is_flag=True, default=None, help="Sample the VAE posterior (default: mean)."
        ),
        _option("--dtype", type=click.Choice(list(DTYPES)), help="Model dtype.", default_text=DTYPE_RULE),
        _option("--device", help="cpu, cuda or cuda:N.", default_text=DEVICE_RULE),
        _option(
            "--seed",
            type=click.IntRange(0, SEED_MAX),
            help="Seed for every random draw.",
            default_of=(run_freeinit, "seed"),
        ),
        click.option("--quiet", "-q", is_flag=True, help="Print only errors."),
    ]

    @functools.wraps(f)
    def command(**kw):
        return f(ClipArgs(**{k: kw.pop(k) for k in CLIP_FIELDS}), **kw)

    for o in reversed(opts):
        command = o(command)
    return command


def _inputs(
    clip: ClipArgs, *configs: str | None, models: tuple[str | None, ...] = (), paths: list | None = None
) -> list:
    """Every file the run reads that an output could overwrite: the clips (``paths``, if already listed), a
    scheduler config file and the files of local model folders (``--vae``, ``--pipeline``, ``--embedder``)."""
    files = list(paths if paths is not None else list_videos(list(clip.videos)))
    for c in configs:
        if c is not None and c not in PRESETS and Path(c).exists():
            files.append(scheduler_config_file(c))
    for m in (clip.vae, *models):
        files.extend(_model_files(m))
    return files


def _model_files(folder: str | None) -> list:
    """The files of a local model folder (none for a hub id or nothing)."""
    return [f for f in Path(folder).rglob("*") if f.is_file()] if folder and Path(folder).is_dir() else []


def _wrote(path, quiet: bool) -> None:
    if not quiet and str(path) != "-":
        click.echo(f"wrote {path}", err=True)


@main.command()
@video_options(video_required=False)
@click.option(
    "--schedule",
    "schedule_names",
    type=click.Choice(list(PRESETS)),
    multiple=True,
    cls=_LibraryDefault,
    show_default=DEFAULT_PRESET,
    help="Preset noise schedule; repeat to report several (dataset runs).",
)
@click.option(
    "--scheduler-config", metavar="FILE_OR_FOLDER", help="A diffusers scheduler config (overrides --schedule)."
)
@click.option("--zero-terminal-snr", is_flag=True, default=None, help="Rescale betas to zero terminal SNR.")
@_option("--shift", type=float, help="Flow matching: timestep shift.", default_text=SHIFT_RULE)
@_option(
    "--bands",
    "bands_text",
    metavar="E1,E2,...",
    default_of=(analyze_latent, "edges"),
    help="Band edges in normalised frequency (Nyquist = 1).",
)
@_option(
    "--decomposition",
    type=click.Choice(DECOMPOSITIONS),
    default_of=(analyze_latent, "decomposition"),
    help="Distance over (t,h,w), (h,w) or t.",
)
@_option(
    "--time-scale",
    type=float,
    default_of=(analyze_latent, "time_scale"),
    help="Weight of temporal frequency, d_s/d_t.",
)
@_option(
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
@_option(
    "--workers",
    type=click.IntRange(min=0),
    default_of=(run_dataset, "workers"),
    help="Dataset run: decoding processes.",
)
@_option(
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
        return _run(lambda: _snr_dataset(clip, a), clip.quiet)
    _run(lambda: _snr_clips(clip, a), clip.quiet)


def _encoder_options(clip: ClipArgs) -> dict:
    """What the user set of ``load_encoder``'s options."""
    return _given(
        encoder=clip.encoder,
        vae=clip.vae,
        vae_subfolder=clip.vae_subfolder,
        downsample=clip.downsample,
        sample_posterior=clip.sample_posterior,
        dtype=DTYPES[clip.dtype] if clip.dtype is not None else None,
    )


def _analysis_options(bands_text, decomposition, time_scale, **kw) -> dict:
    """What the user set of the band analysis' options (``--bands`` parsed into edges)."""
    edges = parse_edges(bands_text) if bands_text is not None else None
    return _given(edges=edges, decomposition=decomposition, time_scale=time_scale, **kw)


def _snr_clips(clip: ClipArgs, a: SimpleNamespace) -> None:
    """``snr`` of single clips: check, call :func:`~freqscope.snr_job.snr_clips`, write."""
    json_path, csv_path, plot_path, band_videos = a.json_path, a.csv_path, a.plot_path, a.band_videos
    read = {**clip.read_kwargs(), **_given(size=clip.size)}
    check_clip_args(clip.videos, read=read, weighted=a.weighted, batch_size=a.batch_size)
    paths = list_videos(list(clip.videos))
    check_outputs(
        {"--json": json_path, "--csv": csv_path, "--plot": plot_path},
        folders={"--band-videos": (band_videos, lambda name: bool(re.fullmatch(r"band\d+_.*\.mp4", name)))},
        inputs=_inputs(clip, a.scheduler_config, paths=paths),
        formats={"--plot": PLOT_FORMATS},
        stdout=("--json", "--csv"),
    )
    analysis = _analysis_options(a.bands_text, a.decomposition, a.time_scale, seeds=a.seeds)
    sched = clip_schedule(
        a.schedule_names,
        scheduler_config=a.scheduler_config,
        **_given(zero_terminal_snr=a.zero_terminal_snr, shift=a.shift),
    )
    run = snr_clips(
        paths,
        sched,
        encoder=_encoder_options(clip),
        device=clip.device,
        **_given(seed=clip.seed),
        read=read,
        band_videos=band_videos is not None,
        progress=_progress(clip.quiet),
        **analysis,
    )
    summary = run.summaries[0]
    if not clip.quiet and STDOUT not in (json_path, csv_path):  # stdout carries the data instead
        click.echo(format_table(summary))
    for path, write in ((json_path, write_json), (csv_path, write_csv), (plot_path, plot_snr)):
        if path is not None:
            write(summary, path)
            _wrote(path, clip.quiet)
    if band_videos is not None:
        first = run.clips[0]
        assert first.z0 is not None  # kept by snr_clips(band_videos=True)
        decode = run.encoder.decode if hasattr(run.encoder, "decode") else None
        for path in write_band_videos(first.z0, first.bands, band_videos, decode=decode):
            _wrote(path, clip.quiet)


def _snr_dataset(clip: ClipArgs, a: SimpleNamespace) -> None:
    """``snr`` over a dataset: run or resume (on every torchrun rank), or re-aggregate a results file."""
    read = {**clip.read_kwargs(), **_given(size=clip.size)}
    check_dataset_args(
        clip.videos, read=read, results=a.results, from_results=a.from_results, seeds=a.seeds, band_videos=a.band_videos
    )
    scheds = snr_schedules(
        a.schedule_names,
        scheduler_config=a.scheduler_config,
        **_given(zero_terminal_snr=a.zero_terminal_snr, shift=a.shift),
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
        encoder=_encoder_options(clip),
        device=clip.device,
        **_given(seed=clip.seed),
        read=read,
        progress=_progress(clip.quiet),
        **_analysis_options(
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
            *_model_files(clip.vae),
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
            _wrote(path, clip.quiet)


@main.command()
@video_options(
    size={
        "help": "Reference model: resize so the short side is S (pipelines: --height, --width).",
        "default_of": (run_freeinit, "size"),
    }
)
@_option(
    "--schedule",
    "schedule_name",
    type=click.Choice(list(PRESETS)),
    help="Reference model: preset schedule (DDIM sampler; flow: flow-matching Euler).",
    default_of=(reference_scheduler, "name_or_path"),
)
@click.option("--scheduler-config", metavar="FILE_OR_FOLDER", help="Reference model: any diffusers scheduler config.")
@_option("--shift", type=float, help="Flow matching: timestep shift.", default_text=SHIFT_RULE)
@_option(
    "--prior",
    "priors",
    multiple=True,
    type=click.Choice(PRIOR_CHOICES),
    help="Initial-noise method; repeat to compare.",
    default_of=(run_freeinit, "priors"),
)
@_option(
    "--num-iters",
    type=_IntOrAuto(),
    metavar="N|auto",
    help="Total sampling passes (1 = plain sampling), or auto: re-initialise only while the low-band gap is "
    "above --gap-tol and shrinking, stopping before it overshoots.",
    default_of=(sample, "num_iters"),
)
@_option(
    "--gap-tol",
    type=float,
    help="--num-iters auto: gap tolerance in dB.",
    default_of=(sample, "gap_tol"),
)
@_option(
    "--max-iters",
    type=click.IntRange(min=1),
    help="--num-iters auto: at most this many passes.",
    default_of=(sample, "max_iters"),
)
@_option(
    "--steps",
    type=click.IntRange(min=1),
    help="Inference steps per pass.",
    default_of=(sample, "num_inference_steps"),
)
@_option(
    "--method",
    type=click.Choice(FILTER_METHODS),
    help="Low-pass filter.",
    default_of=(sample, "method"),
)
@_option(
    "--d-s",
    type=float,
    help="Spatial stop frequency (Nyquist = 1).",
    default_of=(sample, "d_s"),
)
@_option("--d-t", type=float, help="Temporal stop frequency.", default_of=(sample, "d_t"))
@_option(
    "--order",
    type=click.IntRange(min=1),
    help="Butterworth order.",
    default_of=(sample, "order"),
)
@_option(
    "--renoise",
    type=click.Choice(RENOISE),
    help="Re-diffusion noise: reuse (official) or fresh.",
    default_of=(sample, "renoise"),
)
@_option(
    "--diffuse-timestep",
    type=click.IntRange(min=0),
    help="Re-diffuse to exactly this training timestep's level (999: the official code).",
    default_text=RENOISE_LEVEL_RULE,
)
@click.option(
    "--renoise-alpha-bar",
    type=float,
    help="Re-noise level as a VP-equivalent ᾱ, mapped onto the scheduler's own grid.",
)
@_option(
    "--mid-step",
    type=click.IntRange(min=0),
    help="FreqPrior: timestep carried to the next pass.",
    default_of=(sample, "mid_step"),
)
@_option(
    "--ratio",
    type=float,
    help="FreqPrior: weight of the diffused latent against fresh noise.",
    default_of=(sample, "ratio"),
)
@click.option("--fast-sampling", is_flag=True, default=None, help="Coarse-to-fine: fewer steps in early passes.")
@_option(
    "--bands",
    "bands_text",
    metavar="E1,E2,...",
    help="Band edges (Nyquist = 1).",
    default_of=(run_freeinit, "edges"),
)
@click.option(
    "--pipeline", metavar="PATH_OR_ID", help="Run on a diffusers video pipeline instead of the reference model."
)
@click.option("--prompt", help="Pipeline prompt.")
@click.option("--negative-prompt", help="Pipeline negative prompt.")
@click.option("--guidance-scale", type=float, help="Pipeline guidance scale (the pipeline's default if unset).")
@_option(
    "--height",
    type=click.IntRange(min=8),
    help="Pipeline video height.",
    default_of=(run_freeinit, "height"),
)
@_option(
    "--width",
    type=click.IntRange(min=8),
    help="Pipeline video width.",
    default_of=(run_freeinit, "width"),
)
@click.option("--out-dir", metavar="DIR", help="Pipeline: write the video of every pass here (mp4).")
@click.option(
    "--embedder",
    metavar="PATH_OR_ID",
    help="DINO-type image embedder (e.g. facebook/dino-vits16): VBench subject consistency and the FreeInit "
    "paper's first-frame similarity.",
)
@click.option(
    "--background-embedder",
    metavar="PATH_OR_ID",
    help="CLIP-type image embedder (e.g. openai/clip-vit-base-patch32): VBench background consistency.",
)
@click.option("--json", "json_path", metavar="PATH", help="Write the report as JSON.")
@click.option("--plot", "plot_path", metavar="PATH", help="Write the gap-per-pass figure.")
def freeinit(
    clip: ClipArgs,
    schedule_name,
    scheduler_config,
    shift,
    priors,
    num_iters,
    gap_tol,
    max_iters,
    steps,
    method,
    d_s,
    d_t,
    order,
    renoise,
    diffuse_timestep,
    renoise_alpha_bar,
    mid_step,
    ratio,
    fast_sampling,
    bands_text,
    pipeline,
    prompt,
    negative_prompt,
    guidance_scale,
    height,
    width,
    out_dir,
    embedder,
    background_embedder,
    json_path,
    plot_path,
):
    """FreeInit and its peers: the initialization gap per band, pass by pass.

    Without --pipeline, samples the weight-free reference model (the exact denoiser of a Gaussian video
    with the clip's own latent spectrum) and prints measured and closed-form gaps. With --pipeline,
    runs a real diffusers video pipeline and measures its passes against the clip encoded by the
    pipeline's own VAE.

    \b
    Examples:
      freqscope freeinit --video clip.mp4
      freqscope freeinit --video clip.mp4 --prior freeinit --prior freqprior --prior pyoco-mixed --renoise fresh
      freqscope freeinit --video clip.mp4 --pipeline ./animatediff --prompt "a boat" --device cuda --out-dir out/
    """

    def job():
        paths = list_videos(list(clip.videos))  # listed once: the files are checked against the outputs, then read
        check_outputs(
            {"--json": json_path, "--plot": plot_path},
            folders={"--out-dir": (out_dir, lambda name: re.fullmatch(r".+_pass\d+\.mp4", name) is not None)},
            inputs=_inputs(clip, scheduler_config, models=(pipeline, embedder, background_embedder), paths=paths),
            formats={"--plot": PLOT_FORMATS},
            stdout=("--json",),
        )
        run = run_freeinit(
            paths,
            **_given(
                pipeline=pipeline,
                scheduler=scheduler_config or schedule_name,
                shift=shift,
                priors=tuple(priors) or None,
                edges=parse_edges(bands_text) if bands_text is not None else None,
                read_options=clip.read_kwargs(),
                size=clip.size,
                height=height,
                width=width,
                encoder_options=_encoder_options(clip),
                dtype=DTYPES[clip.dtype] if clip.dtype is not None else None,
                call_kwargs=_given(prompt=prompt, negative_prompt=negative_prompt, guidance_scale=guidance_scale),
                embedder=embedder,
                background_embedder=background_embedder,
                out_dir=out_dir,
                num_iters=num_iters,
                gap_tol=gap_tol,
                max_iters=max_iters,
                num_inference_steps=steps,
                method=method,
                d_s=d_s,
                d_t=d_t,
                order=order,
                renoise=renoise,
                diffuse_timestep=diffuse_timestep,
                renoise_alpha_bar=renoise_alpha_bar,
                mid_step=mid_step,
                ratio=ratio,
                fast_sampling=fast_sampling,
            ),
            **_given(seed=clip.seed),
            **_given(device=clip.device),
            progress=_progress(clip.quiet),
        )
        if not clip.quiet and json_path != STDOUT:
            click.echo(format_gap_table(run.bands, run.runs, title=run_title(run)))
        for path, write in (
            (json_path, lambda p: write_json(run_to_dict(run), p)),
            (plot_path, lambda p: plot_gap(run.bands, run.runs, p)),
        ):
            if path is not None:
                write(path)
                _wrote(path, clip.quiet)
        for v in run.videos:
            _wrote(v, clip.quiet)

    _run(job, clip.quiet)


if __name__ == "__main__":  # pragma: no cover
    main()
