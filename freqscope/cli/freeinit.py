"""``freqscope freeinit``: FreeInit and its peers, the gap per band pass by pass. Parse, call the job, write.

The prior options (``--mid-step``, ``--ratio``, ...) are made from the registered priors' fields
(:data:`freqscope.priors.PRIORS`) each time the command parses or shows its help, as ``--prior``'s
choices are: a prior registered from outside the package is a choice, with its options, too.
"""

from __future__ import annotations

import functools
import re
import types
import typing
from typing import Any

import click

from ..bands import parse_edges
from ..filters import FILTER_METHODS
from ..freeinit import RENOISE, RENOISE_LEVEL_RULE, FreeInitOptions, sample
from ..freeinit_job import run_freeinit
from ..freeinit_report import format_gap_table, plot_gap, run_title, run_to_dict
from ..io import STDOUT, check_outputs
from ..noise_schedule import PRESETS, SHIFT_RULE
from ..pipeline_adapter import OFFLOAD
from ..plotting import PLOT_FORMATS
from ..priors import PRIORS, Prior, prior_options
from ..report import write_json
from ..scheduler_adapter import reference_scheduler
from ..video import list_videos
from .common import (
    DTYPES,
    ClipArgs,
    IntOrAuto,
    LibraryDefault,
    encoder_options,
    given,
    library_default,
    option,
    progress_bar,
    run_inputs,
    run_job,
    video_options,
    wrote,
)


class PriorChoice(click.Choice):
    """``--prior``: a registered prior, the registry read when parsing (not frozen when this module loads)."""

    def __init__(self) -> None:
        super().__init__((), case_sensitive=True)

    @property  # type: ignore[override]
    def choices(self) -> tuple[str, ...]:
        return tuple(PRIORS)

    @choices.setter
    def choices(self, value) -> None:  # click.Choice sets them; the registry holds them
        pass


def _click_type(cls: type[Prior], f) -> Any:
    """The click type of option ``f`` of the prior ``cls``: its annotation (None left out), bounded by
    ``metadata["min"]`` / ``["max"]``."""
    hint = typing.get_type_hints(cls)[f.name]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    lo, hi = f.metadata.get("min"), f.metadata.get("max")
    if lo is None and hi is None:
        return hint
    return (click.IntRange if hint is int else click.FloatRange)(min=lo, max=hi)


@functools.lru_cache(maxsize=8)
def _prior_params(registry: tuple[tuple[str, type[Prior]], ...], taken: frozenset[str]) -> list[click.Option]:
    """One option per prior option name of the ``registry`` (shared by the priors that have it), unset unless
    given, its help and default read from the priors; names whose flag is ``taken`` are left to their owner."""
    by_name: dict[str, list[tuple[str, type[Prior], Any]]] = {}
    for name, cls in registry:
        for f in prior_options(cls):
            by_name.setdefault(f.name, []).append((name, cls, f))
    params: list[click.Option] = []
    for opt, owners in by_name.items():
        flag = "--" + opt.replace("_", "-")
        if flag in taken:
            continue
        _, cls, f = owners[0]
        defaults = {n: library_default(c, opt) for n, c, _ in owners}
        shown = (
            next(iter(defaults.values()))
            if len(set(defaults.values())) == 1
            else ", ".join(f"{n} {d}" for n, d in defaults.items())
        )
        is_flag = typing.get_type_hints(cls)[opt] is bool
        params.append(
            LibraryDefault(
                [flag, opt],
                **({"is_flag": True, "default": None} if is_flag else {"type": _click_type(cls, f)}),
                help=f"{', '.join(defaults)}: {f.metadata.get('help', opt.replace('_', ' '))}.",
                show_default=shown,
            )
        )
    return params


class FreeInitCommand(click.Command):
    """The ``freeinit`` command: its own options with the registered priors' after FreeInit's (made afresh
    whenever it parses or shows help, so that they follow the registry)."""

    #: The option the priors' options follow.
    PRIOR_OPTIONS_AFTER = "fast_sampling"

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.own_params = list(self.params)
        self._follow_registry()

    def _follow_registry(self) -> None:
        taken = frozenset(o for p in self.own_params for o in (*p.opts, *p.secondary_opts))
        at = 1 + next(i for i, p in enumerate(self.own_params) if p.name == self.PRIOR_OPTIONS_AFTER)
        generated = _prior_params(tuple(PRIORS.items()), taken)
        self.params = [*self.own_params[:at], *generated, *self.own_params[at:]]

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        self._follow_registry()
        return super().get_params(ctx)


@click.command(cls=FreeInitCommand)
@video_options(
    size={
        "help": "Reference model: resize so the short side is S (pipelines: --height, --width).",
        "default_of": (run_freeinit, "size"),
    }
)
@option(
    "--schedule",
    "schedule_name",
    type=click.Choice(list(PRESETS)),
    help="Reference model: preset schedule (DDIM sampler; flow: flow-matching Euler).",
    default_of=(reference_scheduler, "name_or_path"),
)
@click.option("--scheduler-config", metavar="FILE_OR_FOLDER", help="Reference model: any diffusers scheduler config.")
@option("--shift", type=float, help="Flow matching: timestep shift.", default_text=SHIFT_RULE)
@option(
    "--prior",
    "priors",
    multiple=True,
    type=PriorChoice(),
    help="Initial-noise method; repeat to compare.",
    default_of=(run_freeinit, "priors"),
)
@option(
    "--num-iters",
    type=IntOrAuto(),
    metavar="N|auto",
    help="Total sampling passes (1 = plain sampling), or auto: re-initialise only while the low-band gap is "
    "above --gap-tol and shrinking, stopping before it overshoots.",
    default_of=(sample, "num_iters"),
)
@option(
    "--gap-tol",
    type=float,
    help="--num-iters auto: gap tolerance in dB.",
    default_of=(FreeInitOptions, "gap_tol"),
)
@option(
    "--max-iters",
    type=click.IntRange(min=1),
    help="--num-iters auto: at most this many passes.",
    default_of=(FreeInitOptions, "max_iters"),
)
@option(
    "--steps",
    "num_inference_steps",
    type=click.IntRange(min=1),
    help="Inference steps per pass.",
    default_of=(sample, "num_inference_steps"),
)
@option(
    "--method",
    type=click.Choice(FILTER_METHODS),
    help="Low-pass filter.",
    default_of=(FreeInitOptions, "method"),
)
@option(
    "--d-s",
    type=float,
    help="Spatial stop frequency (Nyquist = 1).",
    default_of=(FreeInitOptions, "d_s"),
)
@option("--d-t", type=float, help="Temporal stop frequency.", default_of=(FreeInitOptions, "d_t"))
@option(
    "--order",
    type=click.IntRange(min=1),
    help="Butterworth order.",
    default_of=(FreeInitOptions, "order"),
)
@option(
    "--renoise",
    type=click.Choice(RENOISE),
    help="Re-diffusion noise: reuse (official) or fresh.",
    default_of=(FreeInitOptions, "renoise"),
)
@option(
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
@click.option("--fast-sampling", is_flag=True, default=None, help="Coarse-to-fine: fewer steps in early passes.")
@option(
    "--bands",
    "bands_text",
    metavar="E1,E2,...",
    help="Band edges (Nyquist = 1).",
    default_of=(run_freeinit, "edges"),
)
@click.option(
    "--pipeline", metavar="PATH_OR_ID", help="Run on a diffusers video pipeline instead of the reference model."
)
@click.option(
    "--offload",
    type=click.Choice(OFFLOAD),
    help="Pipeline on a GPU too small for it: diffusers' model or sequential CPU offload.",
)
@click.option("--prompt", help="Pipeline prompt.")
@click.option("--negative-prompt", help="Pipeline negative prompt.")
@click.option("--guidance-scale", type=float, help="Pipeline guidance scale (the pipeline's default if unset).")
@option(
    "--height",
    type=click.IntRange(min=8),
    help="Pipeline video height.",
    default_of=(run_freeinit, "height"),
)
@option(
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
def freeinit(clip: ClipArgs, **options) -> None:
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
    run_job(lambda: _freeinit(clip, options), clip.quiet)


def _freeinit(clip: ClipArgs, o: dict[str, Any]) -> None:
    """Check the outputs, run the job with the options the user set, write."""
    json_path, plot_path, bands_text = o.pop("json_path"), o.pop("plot_path"), o.pop("bands_text")
    scheduler_config, schedule_name, priors = o.pop("scheduler_config"), o.pop("schedule_name"), o.pop("priors")
    call = {k: o.pop(k) for k in ("prompt", "negative_prompt", "guidance_scale")}
    paths = list_videos(list(clip.videos))  # listed once: the files are checked against the outputs, then read
    check_outputs(
        {"--json": json_path, "--plot": plot_path},
        folders={"--out-dir": (o["out_dir"], lambda name: re.fullmatch(r".+_pass\d+\.mp4", name) is not None)},
        inputs=run_inputs(
            clip, scheduler_config, models=(o["pipeline"], o["embedder"], o["background_embedder"]), paths=paths
        ),
        formats={"--plot": PLOT_FORMATS},
        stdout=("--json",),
    )
    run = run_freeinit(
        paths,
        **given(
            **o,
            scheduler=scheduler_config or schedule_name,
            priors=tuple(priors) or None,
            edges=parse_edges(bands_text) if bands_text is not None else None,
            read_options=clip.read_kwargs(),
            size=clip.size,
            encoder_options=encoder_options(clip),
            dtype=DTYPES[clip.dtype] if clip.dtype is not None else None,
            call_kwargs=given(**call),
            seed=clip.seed,
            device=clip.device,
        ),
        progress=progress_bar(clip.quiet),
    )
    if not clip.quiet and json_path != STDOUT:
        click.echo(format_gap_table(run.bands, run.runs, title=run_title(run)))
    for path, write in (
        (json_path, lambda p: write_json(run_to_dict(run), p)),
        (plot_path, lambda p: plot_gap(run.bands, run.runs, p)),
    ):
        if path is not None:
            write(path)
            wrote(path, clip.quiet)
    for v in run.videos:
        wrote(v, clip.quiet)


command = freeinit
