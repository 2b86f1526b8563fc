"""What every command shares: errors as one line (library parameters shown as flags), option helpers that
leave the library's defaults in place, the clip options, output inputs, and progress bars."""

from __future__ import annotations

import functools
import inspect
import re
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import click
import torch

from ..dataset import WorkerLost
from ..devices import DEVICE_RULE
from ..encode import DTYPE_RULE, ENCODERS, load_encoder
from ..freeinit_job import run_freeinit
from ..io import terminate_cleanly
from ..noise_schedule import PRESETS, scheduler_config_file
from ..video import SIZE_RULE, list_videos, read_video


class UserError(click.ClickException):
    """One line on stderr, exit status 2."""

    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"freqscope: error: {self.format_message()}", err=True)


class StoppedError(UserError):
    """A run stopped by something outside the input (a lost worker): one line, exit status 1."""

    exit_code = 1


def library_default(fn: Callable, name: str) -> str:
    """The library's default of ``fn``'s parameter ``name``, as ``show_default`` shows it: read from the
    signature, where it lives, never restated here."""
    value = inspect.signature(fn).parameters[name].default
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


class LibraryDefault(click.Option):
    """An option left unset unless given (the library's default stands), its help showing that default as
    ``[default: 16]`` (click shows a string ``show_default`` in parentheses)."""

    def get_help_extra(self, ctx: click.Context):
        extra = super().get_help_extra(ctx)
        if isinstance(self.show_default, str):
            extra["default"] = self.show_default
        return extra


def option(
    *decls: str, default_of: tuple[Callable, str] | None = None, default_text: str | None = None, **kw: Any
) -> Callable:
    """``click.option``; with ``default_of=(fn, name)`` the option stays unset unless given (the library's
    default stands) and its help shows that default, read from ``fn``'s signature. A default that is a rule
    (``None`` in the signature) shows as the library's ``default_text`` of it (e.g. ``DEVICE_RULE``)."""
    if default_of is not None:
        default_text = library_default(*default_of)
    if default_text is not None:
        kw |= {"cls": LibraryDefault, "show_default": default_text}
    return click.option(*decls, **kw)


def given(**kw) -> dict:
    """The options the user set (click gives None for the rest)."""
    return {k: v for k, v in kw.items() if v is not None}


def progress_bar(quiet: bool):
    from tqdm.auto import tqdm

    # disable=None: bars on a terminal, none in logs and pipes; --quiet: none at all.
    return functools.partial(tqdm, disable=True if quiet else None, leave=False, file=sys.stderr, dynamic_ncols=True)


#: The flag of each library parameter whose name is not its flag's (``frames`` → ``--frames`` otherwise).
PARAM_FLAGS = {
    "videos": "--video",
    "edges": "--bands",
    "schedules": "--schedule",
    "n_boot": "--bootstrap",
}


def to_flags(message: str) -> str:
    """A library error as the CLI shows it: each parameter named in backquotes (`frames`) becomes its flag."""
    return re.sub(r"`([a-z][a-z0-9_]*)`", lambda m: PARAM_FLAGS.get(m[1], "--" + m[1].replace("_", "-")), message)


def run_job(fn, quiet: bool):
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
        except WorkerLost as e:  # not the input's fault: exit status 1, one line
            raise StoppedError(to_flags(str(e))) from None
        except (MemoryError, RuntimeError) as e:  # torch reports a failed allocation as a RuntimeError
            if isinstance(e, RuntimeError) and not re.search(r"out of memory|can't allocate|allocat", str(e), re.I):
                raise
            raise UserError(out_of_memory(e)) from None


def out_of_memory(e: BaseException) -> str:
    """The one line for a failed allocation: on a GPU (torch.OutOfMemoryError, "CUDA out of memory") what it
    tried and how to need less GPU memory; in host memory, that the estimate made before reading was low."""
    text = str(e)
    if isinstance(e, torch.OutOfMemoryError) or re.search(r"(CUDA|GPU|device) out of memory", text, re.I):
        tried = re.search(r"Tried to allocate [\d.]+ \w+", text)
        return (
            f"GPU out of memory{f' (t{tried[0][1:]})' if tried else ''}; try --offload model (or sequential) "
            "with --pipeline, --vae-tiling, a smaller --size or --frames (--height/--width with --pipeline), "
            "or --batch-size 1 for a dataset run"
        )
    return "out of memory (the estimate made before reading was too low); lower --size or --frames"


#: torch.Generator.manual_seed takes a 64-bit integer; we keep to the signed range.
SEED_MAX = 2**63 - 1

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class IntOrAuto(click.ParamType):
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


class Group(click.Group):
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
    vae_tiling: bool | None
    dtype: str | None
    device: str | None
    seed: int | None
    quiet: bool

    def read_kwargs(self) -> dict:
        """What the user set of ``read_video``'s options (its defaults stand for the rest)."""
        return given(frames=self.frames, stride=self.stride, fps=self.fps, start=self.start)


CLIP_FIELDS = [f.name for f in fields(ClipArgs)]


def video_options(f=None, *, video_required: bool = True, size: dict | None = None, video: bool = True):
    """Add the shared options; the command receives them as one :class:`ClipArgs` first argument.
    ``size``: the command's own ``--size`` help and default (``_option``'s ``help``, ``default_of``); without
    ``video`` the command names its clips with options of its own (``ClipArgs.videos`` is empty)."""
    if f is None:
        return functools.partial(video_options, video_required=video_required, size=size, video=video)
    opts = [
        click.option(
            "--video",
            "videos",
            multiple=True,
            required=video_required,
            metavar="PATH",
            help="Video file or folder of videos; repeat for several clips.",
        )
        if video
        else None,
        option(
            "--frames",
            type=click.IntRange(min=1),
            default_of=(read_video, "frames"),
            help="Frames to read.",
        ),
        option(
            "--stride",
            type=click.IntRange(min=1),
            default_of=(read_video, "stride"),
            help="Take every K-th frame.",
        ),
        click.option("--fps", type=float, help="Resample to F frames/s by timestamp (instead of --stride)."),
        option(
            "--start",
            type=float,
            default_of=(read_video, "start"),
            help="Start time in seconds.",
        ),
        option(
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
        option(
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
        click.option(
            "--vae-tiling", is_flag=True, default=None, help="VAE in tiles (and slices): less GPU memory, large frames."
        ),
        option("--dtype", type=click.Choice(list(DTYPES)), help="Model dtype.", default_text=DTYPE_RULE),
        option("--device", help="cpu, cuda or cuda:N.", default_text=DEVICE_RULE),
        option(
            "--seed",
            type=click.IntRange(0, SEED_MAX),
            help="Seed for every random draw.",
            default_of=(run_freeinit, "seed"),
        ),
        click.option("--quiet", "-q", is_flag=True, help="Print only errors."),
    ]

    @functools.wraps(f)
    def command(**kw):
        kw.setdefault("videos", ())
        return f(ClipArgs(**{k: kw.pop(k) for k in CLIP_FIELDS}), **kw)

    for o in reversed(opts):
        if o is not None:
            command = o(command)
    return command


def run_inputs(
    clip: ClipArgs, *configs: str | None, models: tuple[str | None, ...] = (), paths: list | None = None
) -> list:
    """Every file the run reads that an output could overwrite: the clips (``paths``, if already listed), a
    scheduler config file and the files of local model folders (``--vae``, ``--pipeline``, ``--embedder``)."""
    files = list(paths if paths is not None else list_videos(list(clip.videos)))
    for c in configs:
        if c is not None and c not in PRESETS and Path(c).exists():
            files.append(scheduler_config_file(c))
    for m in (clip.vae, *models):
        files.extend(model_files(m))
    return files


def model_files(folder: str | None) -> list:
    """The files of a local model folder (none for a hub id or nothing)."""
    return [f for f in Path(folder).rglob("*") if f.is_file()] if folder and Path(folder).is_dir() else []


def wrote(path, quiet: bool) -> None:
    if not quiet and str(path) != "-":
        click.echo(f"wrote {path}", err=True)


def encoder_options(clip: ClipArgs) -> dict:
    """What the user set of ``load_encoder``'s options."""
    return given(
        encoder=clip.encoder,
        vae=clip.vae,
        vae_subfolder=clip.vae_subfolder,
        downsample=clip.downsample,
        sample_posterior=clip.sample_posterior,
        vae_tiling=clip.vae_tiling,
        dtype=DTYPES[clip.dtype] if clip.dtype is not None else None,
    )
