"""``freqscope freeinit``: FreeInit and its peers, the gap per band pass by pass. Parse, call the job, write."""

from __future__ import annotations

import re

import click

from ..bands import parse_edges
from ..experiment import run_freeinit
from ..filters import FILTER_METHODS
from ..freeinit import RENOISE, RENOISE_LEVEL_RULE, sample
from ..freeinit_report import format_gap_table, plot_gap, run_title, run_to_dict
from ..init_noise import PRIORS as PRIOR_CHOICES
from ..io import STDOUT, check_outputs
from ..plotting import PLOT_FORMATS
from ..report import write_json
from ..schedule import PRESETS, SHIFT_RULE
from ..schedulers import reference_scheduler
from ..video import list_videos
from .common import (
    DTYPES,
    ClipArgs,
    IntOrAuto,
    encoder_options,
    given,
    option,
    progress_bar,
    run_inputs,
    run_job,
    video_options,
    wrote,
)


@click.command()
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
    type=click.Choice(PRIOR_CHOICES),
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
    default_of=(sample, "gap_tol"),
)
@option(
    "--max-iters",
    type=click.IntRange(min=1),
    help="--num-iters auto: at most this many passes.",
    default_of=(sample, "max_iters"),
)
@option(
    "--steps",
    type=click.IntRange(min=1),
    help="Inference steps per pass.",
    default_of=(sample, "num_inference_steps"),
)
@option(
    "--method",
    type=click.Choice(FILTER_METHODS),
    help="Low-pass filter.",
    default_of=(sample, "method"),
)
@option(
    "--d-s",
    type=float,
    help="Spatial stop frequency (Nyquist = 1).",
    default_of=(sample, "d_s"),
)
@option("--d-t", type=float, help="Temporal stop frequency.", default_of=(sample, "d_t"))
@option(
    "--order",
    type=click.IntRange(min=1),
    help="Butterworth order.",
    default_of=(sample, "order"),
)
@option(
    "--renoise",
    type=click.Choice(RENOISE),
    help="Re-diffusion noise: reuse (official) or fresh.",
    default_of=(sample, "renoise"),
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
@option(
    "--mid-step",
    type=click.IntRange(min=0),
    help="FreqPrior: timestep carried to the next pass.",
    default_of=(sample, "mid_step"),
)
@option(
    "--ratio",
    type=float,
    help="FreqPrior: weight of the diffused latent against fresh noise.",
    default_of=(sample, "ratio"),
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
            inputs=run_inputs(clip, scheduler_config, models=(pipeline, embedder, background_embedder), paths=paths),
            formats={"--plot": PLOT_FORMATS},
            stdout=("--json",),
        )
        run = run_freeinit(
            paths,
            **given(
                pipeline=pipeline,
                scheduler=scheduler_config or schedule_name,
                shift=shift,
                priors=tuple(priors) or None,
                edges=parse_edges(bands_text) if bands_text is not None else None,
                read_options=clip.read_kwargs(),
                size=clip.size,
                height=height,
                width=width,
                encoder_options=encoder_options(clip),
                dtype=DTYPES[clip.dtype] if clip.dtype is not None else None,
                call_kwargs=given(prompt=prompt, negative_prompt=negative_prompt, guidance_scale=guidance_scale),
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
            **given(seed=clip.seed),
            **given(device=clip.device),
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

    run_job(job, clip.quiet)


command = freeinit
