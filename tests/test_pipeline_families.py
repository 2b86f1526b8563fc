"""FreeInit on every supported pipeline family (tiny pipelines from tests/tiny_pipelines.py), through the
library API as `freqscope freeinit --pipeline` calls it; a few families through the CLI as well.

For each family, every pass must start where it is meant to: pass 0 at the first step of the grid the
pipeline sets for itself, passes ≥ 1 at the intended noise level mapped onto that grid (the first step's
own level for VP schedules with signal there; SD's terminal ᾱ for flow matching, zero terminal SNR and
σ-scaled schedules), re-diffused to exactly that step's level, and the pipeline must run from that step on.
"""

import json
import math
import warnings

import pytest
import torch

from conftest import run_cli
from freqscope.freeinit import MIN_RENOISE_ALPHA_BAR, PipelineSampler
from freqscope.freeinit_job import run_pipeline
from freqscope.noise_schedule import vp_alpha_bar
from freqscope.pipeline_adapter import PIPELINE_FAMILIES, adapter_for
from freqscope.scheduler_adapter import family, start_index_for
from tiny_pipelines import FAMILIES, build, family_call

STEPS = 10
EXPECTED = {  # tiny pipeline → (adapter family, scheduler family)
    "animatediff": ("AnimateDiff", "vp"),
    "animatediff_sdxl": ("AnimateDiff", "vp"),
    "animatediff_pag": ("AnimateDiff", "vp"),
    "text_to_video_sd": ("TextToVideoSD", "vp"),
    "cogvideox_5b": ("CogVideoX", "vp"),
    "cogvideox_2b": ("CogVideoX", "vp"),
    "cogvideox_1.5": ("CogVideoX", "vp"),
    "wan": ("Wan", "flow"),
    "wan_unipc": ("Wan", "flow"),
    "hunyuan_video": ("HunyuanVideo", "flow"),
    "ltx": ("LTX", "flow"),
    "ltx_dynamic": ("LTX", "flow"),
    "mochi": ("Mochi", "flow"),
    "latte": ("Latte", "vp"),
    "svd": ("StableVideoDiffusion", "sigma"),
}


@pytest.fixture(scope="session")
def pipes():
    """Tiny pipelines, each built once per session on first use."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = build(name)
        return cache[name]

    return get


def _clip_and_call(name):
    call = family_call(name)
    t = call.pop("num_frames", None) or call.pop("video_length")
    H, W = call.pop("height"), call.pop("width")
    call.pop("image", None)  # image-to-video: the adapter conditions on the clip's first frame
    g = torch.Generator().manual_seed(0)
    # a smooth random clip: low frequencies dominate, as in real video
    x = torch.nn.functional.interpolate(torch.rand(1, 3, t, 4, 4, generator=g), size=(t, H, W), mode="trilinear")
    return x * 2 - 1, call


def test_every_family_has_a_tiny_pipeline():
    assert set(EXPECTED) == set(FAMILIES)
    assert {f for f, _ in EXPECTED.values()} == {a.name for a in PIPELINE_FAMILIES}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_freeinit_three_passes_start_at_their_intended_levels(pipes, name):
    pipe = pipes(name)
    assert adapter_for(pipe).name == EXPECTED[name][0] and family(pipe.scheduler) == EXPECTED[name][1]
    frames, call = _clip_and_call(name)
    seen = {}

    def cb(d):
        if d["stage"] == "step":
            seen.setdefault(d["pass"], []).append(d["t"])
            assert d["x"].ndim == 5  # callbacks see (b, c, t, h, w) whatever the pipeline's layout

    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        out = run_pipeline(pipe, frames, call_kwargs=call, num_iters=3, num_inference_steps=STEPS, callback=cb)
    (run,) = out.runs
    passes = run.result.passes
    assert len(passes) == 3 and all(torch.isfinite(p.latents).all() for p in passes)
    assert tuple(passes[-1].latents.shape) == tuple(out.latent_shape)
    filled = [i for i, b in enumerate(out.bands.bands) if b.n_bins > 0]  # tiny latents leave some bands empty
    assert filled and torch.isfinite(run.gap_db[:, filled]).all()

    size = {"num_frames": frames.shape[2], "height": frames.shape[3], "width": frames.shape[4]}
    shape = adapter_for(pipe).latent_shape(pipe, **size)
    levels = PipelineSampler(pipe, **call, **size, frames=frames).grid(STEPS, shape)
    ab = [vp_alpha_bar(a, s) for _, a, s in levels]
    # pass 0: the whole grid, measured at its first step's own level
    assert seen[0] == [t for t, _, _ in levels] and passes[0].start_timestep == levels[0][0]
    assert passes[0].alpha_bar == pytest.approx(ab[0], rel=1e-6, abs=1e-12)
    intended = ab[0] if EXPECTED[name][1] == "vp" and ab[0] > 1e-8 else MIN_RENOISE_ALPHA_BAR
    i = start_index_for(levels, intended)
    assert ab[i] >= intended * (1 - 1e-4) and (i == 0 or ab[i - 1] < intended)
    for k in (1, 2):
        assert passes[k].start_timestep == levels[i][0]
        assert passes[k].alpha_bar == pytest.approx(ab[i], rel=1e-6)
        assert seen[k] == [t for t, _, _ in levels[i:]]  # the pipeline ran the tail of its own grid
    said = [str(w.message) for w in warned if "re-noising from t=" in str(w.message)]
    assert len(said) == (1 if i > 0 else 0)  # starting midway is said once


def test_unknown_pipeline_gets_one_line_naming_the_families():
    class NotAVideoPipeline:
        pass

    with pytest.raises(ValueError, match="supported: AnimateDiff, TextToVideoSD, CogVideoX, Wan") as e:
        adapter_for(NotAVideoPipeline())
    assert "\n" not in str(e.value)


def test_cogvideox_15_pads_latent_frames_and_measures_the_decoded_ones(pipes):
    """9 frames → 3 latent frames, padded by the pipeline to patch_size_t = 2: the sampler denoises 4,
    the gap is measured on the 3 the pipeline decodes."""
    pipe = pipes("cogvideox_1.5")
    a = adapter_for(pipe)
    assert a.pad_frames(pipe, 3) == 1 and a.latent_shape(pipe, num_frames=9, height=32, width=32)[2] == 4
    assert a.pad_frames(pipe, 4) == 0


def test_latte_takes_video_length_and_svd_its_first_frame(pipes):
    latte, svd = pipes("latte"), pipes("svd")
    kw = adapter_for(latte).call_kwargs(latte, {"num_frames": 4, "prompt": "a cat"})
    assert kw["video_length"] == 4 and "num_frames" not in kw
    frames = torch.zeros(1, 3, 4, 16, 16)
    frames[:, 0, 0] = 1  # a red first frame
    kw = adapter_for(svd).call_kwargs(svd, {"num_frames": 4, "frames": frames})
    assert kw["image"].size == (16, 16) and kw["image"].getpixel((0, 0)) == (255, 128, 128)
    with pytest.raises(ValueError, match="takes no prompt"):
        adapter_for(svd).call_kwargs(svd, {"num_frames": 4, "frames": frames, "prompt": "a cat"})


@pytest.mark.parametrize("name", ["wan_unipc", "svd", "ltx_dynamic"])
def test_cli_freeinit_runs_a_saved_pipeline(name, bikes, tmp_path):
    root = tmp_path / name
    build(name, root)
    call = family_call(name)
    frames = call.get("num_frames") or call.get("video_length")
    j = tmp_path / "f.json"
    args = ["freeinit", "--video", bikes, "--pipeline", root, "--num-iters", 3, "--steps", 6]
    args += ["--frames", frames, "--height", call["height"], "--width", call["width"], "--json", j, "-q"]
    if "prompt" in call:
        args += ["--prompt", "a cat"]
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    d = json.loads(j.read_text())
    (run,) = d["runs"]
    assert len(run["gap_db"]) == 3
    vals = [v for row in run["gap_db"] for v in row if v is not None]  # null: a band empty at this tiny size
    assert len(vals) >= 6 and all(math.isfinite(v) for v in vals)
    ab = run["alpha_bar"]
    assert ab[1] == ab[2] and ab[1] >= MIN_RENOISE_ALPHA_BAR * (1 - 1e-4)


@pytest.mark.parametrize("name", ["svd", "cogvideox_5b", "wan_unipc", "animatediff"])
def test_midway_pass_hands_the_pipeline_the_sample_at_its_start_level(pipes, name):
    """What the pipeline starts denoising from (prepare_latents' result, after its own init_noise_sigma) is
    the VP-normalised initial noise scaled into the scheduler's sample space at the start step: √(a² + s²)."""
    pipe = pipes(name)
    frames, call = _clip_and_call(name)
    size = {"num_frames": frames.shape[2], "height": frames.shape[3], "width": frames.shape[4]}
    ad = adapter_for(pipe)
    shape = ad.latent_shape(pipe, **size)
    sampler = PipelineSampler(pipe, **call, **size, frames=frames)
    levels = sampler.grid(STEPS, shape)
    i = len(levels) // 2
    _, a, s = levels[i]
    init = torch.randn(shape, generator=torch.Generator().manual_seed(3))
    seen = []
    original = pipe.prepare_latents

    def record(*args, **kwargs):
        out = original(*args, **kwargs)
        seen.append(out[0] if isinstance(out, tuple) else out)
        return out

    pipe.prepare_latents = record
    try:
        sampler(init, num_inference_steps=STEPS, start_index=i)
    finally:
        del pipe.prepare_latents
    (started,) = seen
    expected = ad.to_pipeline(pipe, init * math.sqrt(a**2 + s**2), shape)
    assert torch.allclose(started.float(), expected, rtol=1e-5, atol=1e-5)
