"""The FreeInit sampler and its peers, on a real diffusers pipeline and on the weight-free reference model."""

import math

import diffusers
import pytest
import torch

from freqscope.bands import band_power, make_bands
from freqscope.filters import lowpass_filter
from freqscope.freeinit import (
    MIN_RENOISE_ALPHA_BAR,
    DenoiserSampler,
    FreeInitOptions,
    PipelineSampler,
    sample,
    sample_options,
)
from freqscope.freeinit_job import gap_run, reference_scheduler, run_reference
from freqscope.gap import gap_db, predicted_pass_power, training_power
from freqscope.noise_schedule import vp_alpha_bar
from freqscope.reference import GaussianVideoModel
from freqscope.scheduler_adapter import grid_levels
from tiny_pipelines import tiny_animatediff


@pytest.fixture(scope="module")
def pipe():
    return tiny_animatediff(text=False)


@pytest.fixture(scope="module")
def embeds():
    g = torch.Generator().manual_seed(1)
    return {
        "prompt_embeds": torch.randn(1, 4, 8, generator=g),
        "negative_prompt_embeds": torch.randn(1, 4, 8, generator=g),
        "num_frames": 8,
        "height": 16,
        "width": 16,
    }


@pytest.mark.parametrize(
    "kw",
    [
        {"num_iters": 3, "method": "butterworth", "fast": False},
        {"num_iters": 2, "method": "gaussian", "fast": True},
    ],
)
def test_parity_with_diffusers_free_init(pipe, embeds, kw):
    """Our sampler around the pipeline reproduces diffusers' enable_free_init (official behaviour: reuse,
    re-diffusion to the last training timestep t = 999 while the grid starts at 901: diffuse_timestep=999)."""
    pipe.enable_free_init(
        num_iters=kw["num_iters"],
        use_fast_sampling=kw["fast"],
        method=kw["method"],
        order=4,
        spatial_stop_frequency=0.25,
        temporal_stop_frequency=0.25,
    )
    ref = pipe(**embeds, num_inference_steps=6, output_type="latent", generator=torch.Generator().manual_seed(0)).frames
    pipe.disable_free_init()
    res = sample(
        PipelineSampler(pipe, **embeds),
        (1, 4, 8, 8, 8),
        num_iters=kw["num_iters"],
        num_inference_steps=6,
        freeinit=FreeInitOptions(method=kw["method"], fast_sampling=kw["fast"], diffuse_timestep=999),
        generator=torch.Generator().manual_seed(0),
    )
    assert len(res.passes) == kw["num_iters"]
    assert torch.allclose(res.latents, ref, atol=1e-4, rtol=1e-5)


def test_deterministic_under_a_seed(pipe, embeds):
    run = lambda s: (
        sample(
            PipelineSampler(pipe, **embeds),
            (1, 4, 8, 8, 8),
            num_iters=2,
            num_inference_steps=3,  # noqa: E731
            generator=torch.Generator().manual_seed(s),
        ).latents
    )
    assert torch.equal(run(5), run(5)) and not torch.allclose(run(5), run(6))


def test_callback_sees_every_pass_and_step(pipe, embeds):
    seen = []
    sample(
        PipelineSampler(pipe, **embeds),
        (1, 4, 8, 8, 8),
        num_iters=2,
        num_inference_steps=3,
        generator=torch.Generator().manual_seed(0),
        callback=lambda d: seen.append((d["stage"], d["pass"])),
    )
    assert seen == [("init", 0)] + [("step", 0)] * 3 + [("end", 0), ("init", 1)] + [("step", 1)] * 3 + [("end", 1)]


def test_pipeline_starts_midway_on_the_tail_of_its_grid(pipe, embeds):
    """FreqPrior re-noises at t = 799; with 10 steps the grid starts at 901, so pass 1 runs the pipeline
    on the grid's tail from 701, the last grid step at or below 799 (as img2img pipelines do)."""
    seen = []
    res = sample(
        PipelineSampler(pipe, **embeds),
        (1, 4, 8, 8, 8),
        prior="freqprior-tail",
        num_iters=2,
        num_inference_steps=10,
        generator=torch.Generator().manual_seed(0),
        callback=lambda d: seen.append((d["pass"], d.get("t"))) if d["stage"] == "step" else None,
    )
    pipe.scheduler.set_timesteps(10)
    grid = [float(t) for t in pipe.scheduler.timesteps]
    assert len(grid) == 10 and grid[0] == 901
    assert [t for k, t in seen if k == 0] == grid
    assert [t for k, t in seen if k == 1] == [t for t in grid if t <= 799]
    assert res.passes[1].start_timestep == 701 and torch.isfinite(res.latents).all()


def test_cogvideox_layout_and_zero_terminal_snr():
    """CogVideoX: (b, t, c, h, w) latents, its own zero-terminal-SNR v-prediction scheduler, which takes no
    custom timesteps: pass 1 re-noises midway and the pipeline runs on the tail of its grid."""
    from freqscope.pipeline_adapter import latent_shape
    from tiny_pipelines import tiny_cogvideox

    cog = tiny_cogvideox()
    g = torch.Generator().manual_seed(2)
    call = {
        "prompt_embeds": torch.randn(1, 16, 8, generator=g),
        "negative_prompt_embeds": torch.randn(1, 16, 8, generator=g),
        "num_frames": 9,
        "height": 64,
        "width": 64,
        "guidance_scale": 2.0,
    }
    shape = latent_shape(cog, num_frames=9, height=64, width=64)
    assert shape == (1, 4, 3, 8, 8)
    seen = []
    with pytest.warns(UserWarning, match="re-noising from t="):
        res = sample(
            PipelineSampler(cog, **call),
            shape,
            num_iters=2,
            num_inference_steps=6,
            generator=torch.Generator().manual_seed(0),
            callback=lambda d: seen.append(d),
        )
    assert res.latents.shape == shape and torch.isfinite(res.latents).all()
    assert all(d["x"].shape == shape for d in seen)  # callbacks see (b, c, t, h, w) too
    steps1 = [d["t"] for d in seen if d["stage"] == "step" and d["pass"] == 1]
    assert res.passes[1].start_timestep < 999 and steps1[0] == res.passes[1].start_timestep
    assert len(steps1) < 6


# ---- the weight-free reference model -------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip_latent(bikes):
    from freqscope.video import read_video

    x, _ = read_video(bikes, frames=16, size=32)
    return x  # pixel space (1, 3, 16, 32, 72)


def test_reference_model_is_the_exact_posterior_mean():
    """Monte Carlo: for x from the model's own prior, the denoiser is the least-squares estimate."""
    torch.manual_seed(0)
    S = torch.rand(2, 4, 8, 8) * 5
    m = GaussianVideoModel(S)
    S = m.S  # symmetrised: S(f) = S(−f)
    assert torch.equal(GaussianVideoModel(S).S, S)
    x = m.sample(256, generator=torch.Generator().manual_seed(0))
    assert (torch.fft.fftn(x, dim=(-3, -2, -1), norm="ortho").abs() ** 2).mean(0).div(S).mean().item() == pytest.approx(
        1, abs=0.02
    )
    A, B = 0.6, 0.8
    z = A * x + B * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    mse = ((m.denoise(z, A, B) - x) ** 2).mean()
    for f in (0.8, 1.25):  # any other gain does worse
        assert ((m.denoise(z, A * f, B) - x) ** 2).mean() > mse


def _tolerance_db(q: torch.Tensor, bands, i: int) -> float:
    """5 standard errors (dB) of a band mean of independent powers with expectations q (per bin):
    |F ε|² ~ Exp(1) per bin, Hermitian pairs doubled: relative error √(2·Σq²)/Σq."""
    w = q.double()[:, bands.labels == i].flatten()
    return 5 * 4.343 * math.sqrt(2 * (w**2).sum().item()) / w.sum().item()


@pytest.mark.parametrize("renoise", ["reuse", "fresh"])
def test_measured_gap_matches_closed_form(clip_latent, renoise):
    sch = reference_scheduler("sd")
    out = run_reference(clip_latent, scheduler=sch, num_iters=4, num_inference_steps=20, renoise=renoise)
    bands, runs = out.bands, out.runs
    r = runs[0]
    assert r.gap_db_predicted is not None
    model = GaussianVideoModel.from_latent(clip_latent)
    sch.set_timesteps(20)
    G = model.ddim_gain(sch, [int(t) for t in sch.timesteps])
    mask = lowpass_filter(bands.shape)
    inits, outs = predicted_pass_power([G] * 4, mask, r.result.passes[0].alpha_bar, renoise=renoise)
    for i, b in enumerate(bands.bands[1:], start=1):  # DC: one complex bin per channel, too few to test
        for k in range(4):
            assert abs(r.gap_db[k, i] - r.gap_db_predicted[k, i]) < _tolerance_db(inits[k], bands, i), (b.name, k)
            assert abs(r.z0_power_db[k, i] - r.z0_power_db_predicted[k, i]) < _tolerance_db(outs[k], bands, i), (
                b.name,
                k,
            )


def test_plain_noise_shows_the_gap_and_freeinit_closes_then_overshoots(clip_latent):
    runs = run_reference(clip_latent, num_iters=6, num_inference_steps=20, renoise="reuse").runs
    g = runs[0].gap_db_predicted  # expected values: no sampling noise in the assertion
    low = 1  # band (0, 0.125)
    assert g[0, low] > 1.5  # plain Gaussian noise: too little low-frequency power
    assert g[0, -1] == pytest.approx(0, abs=0.1)  # the highest band matches training
    assert abs(g[2, low]) < g[0, low]  # FreeInit closes it …
    assert g[5, low] < -0.5  # … and, reusing the noise, overshoots
    fresh = run_reference(clip_latent, num_iters=6, num_inference_steps=20, renoise="fresh").runs
    gf = fresh[0].gap_db_predicted
    assert torch.all(gf[1:, low] > 0) and gf[5, low] < gf[0, low]  # fresh noise approaches from above


def test_gap_definition(clip_latent):
    bands = make_bands(tuple(clip_latent.shape[-3:]))
    P = band_power(clip_latent, bands)
    eps = torch.randn((64, *clip_latent.shape[1:]), generator=torch.Generator().manual_seed(0))
    g = gap_db(eps, bands, P, 0.0046600985)
    expected = 10 * torch.log10(training_power(P, 0.0046600985))  # unit noise: Q_b ≈ 1
    for i, b in enumerate(bands.bands[1:], start=1):
        tol = 5 * 4.343 * math.sqrt(2 / (64 * clip_latent.shape[1] * b.n_bins))
        assert abs(g[i] - expected[i]) < tol, b.name


def test_predicted_power_limits():
    G = [torch.full((1, 2, 2, 2), 3.0, dtype=torch.float64)] * 3
    ones, zeros = torch.ones(2, 2, 2), torch.zeros(2, 2, 2)
    inits, _ = predicted_pass_power(G, zeros, 0.25)  # no low pass: always fresh unit noise
    assert all(torch.allclose(i, torch.ones_like(i)) for i in inits)
    inits, outs = predicted_pass_power(G, ones, 0.25, renoise="reuse")  # all low: c ← a·G·c + s
    a, s = 0.5, math.sqrt(0.75)
    c1 = a * 3 + s
    c2 = a * 3 * c1 + s
    assert inits[1].flatten()[0].item() == pytest.approx(c1**2) and inits[2].flatten()[0].item() == pytest.approx(c2**2)
    assert outs[2].flatten()[0].item() == pytest.approx(9 * c2**2)


def test_euler_scheduler_with_init_noise_sigma(clip_latent):
    """σ-scaled schedulers: samples land where DDIM's do, and re-initialised noise is unit-scale."""
    cfg = {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012, "steps_offset": 1}
    euler = diffusers.EulerDiscreteScheduler(**cfg)
    assert euler.init_noise_sigma > 10
    out = run_reference(clip_latent, scheduler=euler, num_iters=2, num_inference_steps=30)
    bands, (r_e,) = out.bands, out.runs
    (r_d,) = run_reference(clip_latent, scheduler=reference_scheduler("sd"), num_iters=2, num_inference_steps=30).runs
    ok = [i for i, b in enumerate(bands.bands) if b.n_bins >= 50]
    assert (r_e.z0_power_db[0, ok] - r_d.z0_power_db[0, ok]).abs().max() < 1.0
    assert r_e.gap_db[1, -1].abs() < 0.1  # high band of the re-initialised noise: unit power, as in training


@pytest.mark.parametrize(
    "scheduler",
    [
        diffusers.FlowMatchEulerDiscreteScheduler(shift=3.0),
        diffusers.DDIMScheduler(
            beta_schedule="scaled_linear",
            beta_start=0.00085,
            beta_end=0.012,
            clip_sample=False,
            rescale_betas_zero_snr=True,
            timestep_spacing="trailing",
            prediction_type="v_prediction",
        ),
    ],
    ids=["flow-matching", "zero-terminal-snr-v"],
)
def test_zero_terminal_snr_renoises_midway_and_says_so(clip_latent, scheduler):
    with pytest.warns(UserWarning, match="re-noising from t="):
        (r,) = run_reference(clip_latent, scheduler=scheduler, num_iters=3, num_inference_steps=20).runs
    info, passes = r.result.info, r.result.passes
    assert info["notes"] and passes[0].alpha_bar < 1e-8  # the grid starts at zero SNR
    # pass 1 starts at the first grid step at or below the intended noise (SD's terminal ᾱ), re-diffused
    # to exactly that step's level, as the scheduler itself computes it
    scheduler.set_timesteps(20)
    levels = [(t, vp_alpha_bar(a, s)) for t, a, s in grid_levels(scheduler)]
    i = [t for t, _ in levels].index(passes[1].start_timestep)
    assert levels[i - 1][1] < MIN_RENOISE_ALPHA_BAR <= levels[i][1] * (1 + 1e-4)
    assert passes[1].alpha_bar == pytest.approx(levels[i][1], rel=1e-6)
    assert passes[2].start_timestep == passes[1].start_timestep
    assert torch.isfinite(r.gap_db).all() and torch.isfinite(r.z0_power_db).all()
    # re-noising midway carries the generated low frequencies: the low band ends nearer the clip's power
    assert r.z0_power_db[2, 1] > r.z0_power_db[0, 1]


def test_freqprior_variance_preserving_and_single_pass_peers(clip_latent):
    out = run_reference(
        clip_latent,
        priors=("freqprior-tail", "pyoco-mixed", "pyoco-progressive", "offset"),
        num_iters=2,
        num_inference_steps=20,
        renoise="fresh",
    )
    P, runs = out.P, out.runs
    fp = runs[0]
    assert fp.result.info["diffuse_timestep"] == round(0.8 * 999) and fp.variance_loss_db == 0
    # VP mixing: the highest band (L ≈ 0) is refilled with unit noise, Q ≈ 1, while training z at the
    # intermediate level ᾱ has ᾱ·P + 1 − ᾱ there: a measured over-fill of 10·log10(ᾱ·P + 1 − ᾱ) dB.
    ab = fp.result.passes[1].alpha_bar
    assert 0.01 < ab < 0.2
    assert fp.gap_db[1, -1].item() == pytest.approx(10 * math.log10(ab * P[-1].item() + 1 - ab), abs=0.05)
    for r in runs[1:]:
        assert len(r.result.passes) == 1
    assert runs[1].gap_db[0, 1] < -1  # frame-shared noise over-fills the low temporal band
    assert runs[3].gap_db[0, 0] < -10  # offset noise: far too much DC


@pytest.mark.parametrize(
    "kw,msg",
    [
        ({"num_iters": 0}, "num_iters"),
        ({"method": "sinc"}, "unknown filter"),
        ({"d_s": 2.0}, r"\[0, 1\]"),
        ({"renoise": "again"}, "renoise"),
        ({"prior": "magic"}, "unknown prior"),
        ({"diffuse_timestep": 1000}, "diffuse_timestep"),
        ({"num_inference_steps": 0}, "num_inference_steps"),
    ],
)
def test_bad_sampler_arguments(kw, msg):
    m = GaussianVideoModel(torch.ones(1, 4, 8, 8))
    opts = dict(kw)  # one flat mapping, as the jobs and the CLI give it
    with pytest.raises(ValueError, match=msg):
        kwargs = sample_options(opts.pop("prior", "freeinit"), opts)
        sample(DenoiserSampler(m, reference_scheduler("sd")), (1, 1, 4, 8, 8), **kwargs)


def test_gap_run_shape_mismatch():
    m = GaussianVideoModel(torch.ones(1, 4, 8, 8))
    res = sample(DenoiserSampler(m, reference_scheduler("sd")), (1, 1, 4, 8, 8), num_iters=1, num_inference_steps=2)
    with pytest.raises(ValueError, match="bands were made for"):
        gap_run(res, torch.ones(5), make_bands((4, 8, 9)))


@pytest.mark.parametrize(
    "scheduler",
    [
        reference_scheduler("sd"),  # DDIM, ε-prediction
        diffusers.EulerDiscreteScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012),
        diffusers.DDIMScheduler(beta_schedule="scaled_linear", prediction_type="v_prediction", clip_sample=False),
        reference_scheduler("flow"),  # flow-matching velocity
    ],
    ids=["ddim-eps", "euler-sigma", "ddim-v", "flow"],
)
def test_callback_denoised_is_the_models_clean_estimate(scheduler):
    """At every step of every pass the callback's ``denoised`` (recovered from the model's raw output: ε, v
    or velocity) equals the reference model's exact posterior mean of the step's input, and ``sigma`` is
    k-diffusion's σ = s/a of the level the step started from."""
    from freqscope.scheduler_adapter import input_level, sample_level

    torch.manual_seed(0)
    model = GaussianVideoModel(torch.rand(3, 4, 8, 8) * 5)
    calls = []  # per model call: the exact posterior mean of its input and the input's σ

    def spy(z, t, sch):
        A, B = input_level(sch, t)
        a, s = sample_level(sch, t)
        calls.append((model.denoise(z, A, B), s / a if a > 0 else math.inf))
        return model(z, t, sch)

    seen = []
    res = sample(
        DenoiserSampler(spy, scheduler),
        (1, 3, 4, 8, 8),
        num_iters=2,
        num_inference_steps=5,
        generator=torch.Generator().manual_seed(0),
        callback=lambda d: seen.append(d) if d["stage"] == "step" else None,
    )
    assert len(seen) == len(calls) == sum(p.num_inference_steps - p.start_index for p in res.passes) > 5
    assert [d["pass"] for d in seen].count(0) == 5
    for d, (x0, sigma) in zip(seen, calls):
        torch.testing.assert_close(d["denoised"], x0, rtol=1e-4, atol=1e-4)
        assert d["sigma"] == pytest.approx(sigma, rel=1e-9) and d["x"].shape == (1, 3, 4, 8, 8)


def test_pipeline_callback_has_sigma_and_no_denoised(pipe, embeds):
    """PipelineSampler: every step reports the σ of the grid the pipeline runs (decreasing) and denoised=None
    (a pipeline's step callback exposes its latents only)."""
    seen = []
    sample(
        PipelineSampler(pipe, **embeds),
        (1, 4, 8, 8, 8),
        num_iters=1,
        num_inference_steps=3,
        generator=torch.Generator().manual_seed(0),
        callback=lambda d: seen.append(d) if d["stage"] == "step" else None,
    )
    pipe.scheduler.set_timesteps(3)
    expect = [s / a for _, a, s in grid_levels(pipe.scheduler)]
    assert [d["sigma"] for d in seen] == pytest.approx(expect, rel=1e-9)
    assert all(d["denoised"] is None for d in seen) and expect == sorted(expect, reverse=True)


def test_observers_on_the_callback_equal_measuring_the_finished_result():
    """GapObserver and ConsistencyObserver watching sample() live give exactly what measuring the returned
    passes afterwards gives (gap_db per band of each init, relative power and consistency of each result)."""
    from freqscope.consistency import consistency_metrics
    from freqscope.freeinit import observers
    from freqscope.freeinit_job import ConsistencyObserver, GapObserver
    from freqscope.gap import relative_power_db

    torch.manual_seed(0)
    z0 = torch.randn(1, 3, 8, 16, 16).cumsum(-1) / 4
    bands = make_bands((8, 16, 16))
    P = band_power(z0, bands)
    gaps, cons = GapObserver(bands, P), ConsistencyObserver(decode=lambda z: z)
    res = sample(
        DenoiserSampler(GaussianVideoModel.from_latent(z0), reference_scheduler("sd")),
        tuple(z0.shape),
        num_iters=3,
        num_inference_steps=4,
        generator=torch.Generator().manual_seed(0),
        callback=observers(gaps, cons),
    )
    assert len(gaps.gap_db) == len(cons.metrics) == len(res.passes) == 3
    for k, p in enumerate(res.passes):
        same = dict(rtol=0, atol=0, equal_nan=True)  # bit for bit (an empty band is NaN in both)
        torch.testing.assert_close(gaps.gap_db[k], gap_db(p.init, bands, P, p.alpha_bar), **same)
        torch.testing.assert_close(gaps.z0_power_db[k], relative_power_db(p.latents, bands, P), **same)
        assert cons.metrics[k]["latent_frame_cosine"] == consistency_metrics(p.latents)["latent_frame_cosine"]
        assert torch.equal(cons.videos[k], p.latents)
    run = gap_run(res, P, bands)
    torch.testing.assert_close(run.gap_db, torch.stack(gaps.gap_db), rtol=0, atol=0, equal_nan=True)
    assert run.variance_loss_db > 0
