"""``freqscope compare``: generated vs real sets, or frame-aligned pairs, in the spectrum. Parse, run, write."""

from __future__ import annotations

import os
from types import SimpleNamespace

import click

from .. import compare_job
from ..compare_report import format_table, plot_compare, write_csv, write_json
from ..dataset import run_dataset
from ..io import STDOUT, check_outputs
from ..plotting import PLOT_FORMATS
from .bands import analysis_options, band_options
from .common import (
    ClipArgs,
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
@click.option(
    "--real", multiple=True, metavar="PATH", help="Sets: the real clips (folder, glob, list or results file)."
)
@click.option("--generated", multiple=True, metavar="PATH", help="Sets: the generated clips, as --real.")
@click.option("--reference", multiple=True, metavar="PATH", help="Pairs: the reference video or folder of videos.")
@click.option("--test", multiple=True, metavar="PATH", help="Pairs: the processed video(s), named as the references.")
@video_options(video=False)
@band_options
@option(
    "--workers",
    type=click.IntRange(min=0),
    default_of=(run_dataset, "workers"),
    help="Sets: decoding processes.",
)
@click.option("--bootstrap", "n_boot", type=click.IntRange(min=1), help="Sets: bootstrap resamples for the CIs.")
@click.option("--json", "json_path", metavar="PATH", help="Write the full comparison as JSON.")
@click.option("--csv", "csv_path", metavar="PATH", help="Write the per-band comparison as CSV.")
@click.option("--plot", "plot_path", metavar="PATH", help="Write the figure (.png/.pdf/.svg).")
def compare(clip: ClipArgs, **options) -> None:
    """Where two sets of clips, or a clip and its processed version, differ in the spectrum.

    Sets (--real, --generated): per band, the power of the generated set over the real one in dB with a
    bootstrap 95 % CI over clips, both temporal spectra, a heat map over (f_t, f_s), a distance, findings in
    words and periodic artefacts. Pixel space by default, a VAE's latent space with --vae.

    Pairs (--reference with --test or --vae): per band the gain, the coherence (1: the phase is kept) and the
    PSNR, the error by frame, and periodic artefacts (chunks of frames, tile seams); with --vae the test clip is
    the VAE's round trip of the reference.

    \b
    Examples:
      freqscope compare --real ucf101/ --generated samples/ --plot cmp.png
      freqscope compare --real real.parquet --generated gen.parquet --json cmp.json
      freqscope compare --reference clip.mp4 --test clip_x264.mp4
      freqscope compare --reference clips/ --vae ./wan-vae --vae-tiling --plot vae.png
    """
    run_job(lambda: _compare(clip, SimpleNamespace(**options)), clip.quiet)


def _compare(clip: ClipArgs, a: SimpleNamespace) -> None:
    read = {**clip.read_kwargs(), **given(size=clip.size)}
    inputs = [p for p in (*a.real, *a.generated, *a.reference, *a.test) if os.path.isfile(p)]
    outs = {"--json": a.json_path, "--csv": a.csv_path, "--plot": a.plot_path}
    check_outputs(
        outs,
        inputs=run_inputs(clip, paths=inputs),
        formats={"--plot": PLOT_FORMATS},
        stdout=["--json", "--csv"],
    )
    enc = encoder_options(clip)
    vae = enc.pop("vae", None)
    run = compare_job.compare(
        real=a.real,
        generated=a.generated,
        reference=a.reference,
        test=a.test,
        vae=vae,
        read=read,
        analysis=analysis_options(a.bands_text, a.decomposition, a.time_scale),
        encoder=enc,
        **given(workers=a.workers, n_boot=a.n_boot, seed=clip.seed),
        device=clip.device,
        progress=progress_bar(clip.quiet),
    )
    if not clip.quiet and STDOUT not in (a.json_path, a.csv_path):
        click.echo(format_table(run))
    if run.skipped and not clip.quiet:
        path, error = run.skipped[0]
        click.echo(
            f"freqscope: warning: skipped {len(run.skipped)} unreadable clip(s); first: "
            + (error if path in error else f"{path}: {error}"),
            err=True,
        )
    for path, write in ((a.json_path, write_json), (a.csv_path, write_csv), (a.plot_path, plot_compare)):
        if path is not None:
            write(run, path)
            wrote(path, clip.quiet)


command = compare
