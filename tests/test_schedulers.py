"""The scheduler adapter against every released scheduler config we can build offline: the levels it
computes are the ones the scheduler's own add_noise / scale_noise / sigmas give."""

import inspect

import diffusers
import pytest
import torch

from freqscope.freeinit import MIN_RENOISE_ALPHA_BAR, DenoiserSampler, sample
from freqscope.reference import GaussianVideoModel
from freqscope.scheduler_adapter import (
    family,
    first_step_level,
    grid_levels,
    input_level,
    start_index_for,
    starting_at,
    training_schedule,
    vp_alpha_bar,
)
from tiny_pipelines import COGVIDEOX_SCHEDULER, LTX_DYNAMIC_SCHEDULER, SVD_SCHEDULER

SD = {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012}
# Released configs (scheduler_config.json of the named models), written out so they build offline (CogVideoX's,
# LTX's and SVD's are shared with the tiny pipelines of tests/tiny_pipelines.py).
RELEASED = {
    "sd15-ddim-leading": (
        lambda: diffusers.DDIMScheduler(
            **SD, steps_offset=1, clip_sample=False, set_alpha_to_one=False, timestep_spacing="leading"
        ),
        {},
    ),
    "animatediff-ddim-linear": (
        lambda: diffusers.DDIMScheduler(
            beta_schedule="linear", beta_start=0.00085, beta_end=0.012, steps_offset=1, clip_sample=False
        ),
        {},
    ),
    "cogvideox-5b": (lambda: diffusers.CogVideoXDDIMScheduler(**COGVIDEOX_SCHEDULER, snr_shift_scale=1.0), {}),
    "cogvideox-2b": (lambda: diffusers.CogVideoXDDIMScheduler(**COGVIDEOX_SCHEDULER, snr_shift_scale=3.0), {}),
    "flowmatch-shift3": (lambda: diffusers.FlowMatchEulerDiscreteScheduler(shift=3.0), {}),
    "flowmatch-shift7-hunyuan": (lambda: diffusers.FlowMatchEulerDiscreteScheduler(shift=7.0), {}),
    "ltx-dynamic-shift": (
        lambda: diffusers.FlowMatchEulerDiscreteScheduler(**LTX_DYNAMIC_SCHEDULER),
        {"mu": 1.7},
    ),
    "wan-unipc-flow": (
        lambda: diffusers.UniPCMultistepScheduler(
            prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0, num_train_timesteps=1000
        ),
        {},
    ),
    "svd-euler-karras": (lambda: diffusers.EulerDiscreteScheduler(**SVD_SCHEDULER), {}),
}
FAMILY = {
    "sd15-ddim-leading": "vp",
    "animatediff-ddim-linear": "vp",
    "cogvideox-5b": "vp",
    "cogvideox-2b": "vp",
    "flowmatch-shift3": "flow",
    "flowmatch-shift7-hunyuan": "flow",
    "ltx-dynamic-shift": "flow",
    "wan-unipc-flow": "flow",
    "svd-euler-karras": "sigma",
}


def _own_level(sch, t) -> tuple[float, float]:
    """(a, s) as the scheduler's own forward process computes them at timestep t."""
    one, zero = torch.ones(1), torch.zeros(1)
    tt = sch.timesteps[[int((sch.timesteps == t).nonzero()[0, 0])]]
    if hasattr(sch, "scale_noise"):
        f = lambda x, e: float(sch.scale_noise(x, tt, e))  # noqa: E731
    else:
        f = lambda x, e: float(sch.add_noise(x, e, tt))  # noqa: E731
    return f(one, zero), f(zero, one)


@pytest.mark.parametrize("name", list(RELEASED))
def test_levels_equal_the_schedulers_own_forward_process(name):
    make, kw = RELEASED[name]
    sch = make()
    assert family(sch) == FAMILY[name]
    sch.set_timesteps(20, **kw)
    levels = grid_levels(sch)
    assert len(levels) == len(sch.timesteps)
    for t, a, s in levels:
        a_ref, s_ref = _own_level(sch, sch.timesteps[[t == float(x) for x in sch.timesteps].index(True)])
        assert a == pytest.approx(a_ref, rel=1e-5, abs=1e-7) and s == pytest.approx(s_ref, rel=1e-5, abs=1e-7), t
    # levels fall monotonically in noise along the grid
    abs_ = [vp_alpha_bar(a, s) for _, a, s in levels]
    assert all(x <= y + 1e-12 for x, y in zip(abs_, abs_[1:]))


@pytest.mark.parametrize("name", ["sd15-ddim-leading", "cogvideox-2b", "cogvideox-5b", "animatediff-ddim-linear"])
def test_training_schedule_is_the_schedulers_alphas_cumprod(name):
    """Including CogVideoX's snr_shift_scale (2b: 3), which a config-only beta schedule misses."""
    sch = RELEASED[name][0]()
    ab = training_schedule(sch).alpha_bar
    assert torch.allclose(ab.float(), sch.alphas_cumprod.float(), rtol=1e-5, atol=1e-7)


def test_reference_values():
    """DDIM, 50 steps, leading spacing runs its first step at t = 981 (not 999); SD's ᾱ₉₉₉ = 0.0046600985;
    CogVideoX 2b divides the SNR by 3: its ᾱ at t = 879 is about 0.0015 (issue 7)."""
    sd = RELEASED["sd15-ddim-leading"][0]()
    t, a, s = first_step_level(sd, 50)
    assert t == 981 and vp_alpha_bar(a, s) == pytest.approx(float(sd.alphas_cumprod[981]), rel=1e-6)
    assert float(training_schedule(sd).vp_alpha_bar[999]) == pytest.approx(0.0046600985, rel=1e-6)
    cog2b = RELEASED["cogvideox-2b"][0]()
    assert float(training_schedule(cog2b).vp_alpha_bar[879]) == pytest.approx(0.00152, rel=0.02)


@pytest.mark.parametrize("name", ["svd-euler-karras", "flowmatch-shift3", "wan-unipc-flow"])
def test_input_level_is_what_the_model_sees(name):
    """The model input after scale_model_input is A·x0 + B·ε with (A, B) from input_level."""
    sch = RELEASED[name][0]()
    sch.set_timesteps(10)
    for i, t in enumerate(sch.timesteps[:3]):
        a, s = grid_levels(sch)[i][1:]
        A, B = input_level(sch, t)
        z = torch.tensor([a])  # the sample for x0 = 1, ε = 0
        zin = sch.scale_model_input(z, t) if hasattr(sch, "scale_model_input") else z
        sch._step_index = None  # scale_model_input may have started stepping
        assert float(zin) == pytest.approx(A, rel=1e-5) and A / B == pytest.approx(a / s, rel=1e-5)


def test_starting_midway_keeps_set_timesteps_signature():
    """retrieve_timesteps (HunyuanVideo, Mochi, LTX) inspects set_timesteps for `sigmas`; the wrapper keeps it."""
    from diffusers.pipelines.hunyuan_video.pipeline_hunyuan_video import retrieve_timesteps

    sch = diffusers.FlowMatchEulerDiscreteScheduler(shift=7.0)
    sigmas = [1 - i / 8 for i in range(8)]
    with starting_at(sch, 3):
        assert {"sigmas", "mu", "timesteps"} <= set(inspect.signature(sch.set_timesteps).parameters)
        timesteps, n = retrieve_timesteps(sch, sigmas=sigmas)
        assert len(timesteps) == 5 and sch.begin_index == 0 and len(sch.sigmas) == 6
    full = diffusers.FlowMatchEulerDiscreteScheduler(shift=7.0)
    full.set_timesteps(sigmas=sigmas)
    assert torch.equal(timesteps, full.timesteps[3:])
    sch.set_timesteps(8)
    assert len(sch.timesteps) == 8 and sch.begin_index is None  # the class method again


@pytest.mark.parametrize("name", list(RELEASED))
def test_pass_two_starts_at_its_intended_level(name):
    """For every released config, pass 2 of FreeInit (reference model) starts at the intended level: the
    first inference step's own level for VP schedules with signal there, else SD's terminal ᾱ mapped onto
    the scheduler's grid: the first grid step at or below that noise, re-diffused to exactly its level."""
    if name == "ltx-dynamic-shift":
        pytest.skip("needs the pipeline's mu: covered by the LTX pipeline test")
    sch = RELEASED[name][0]()
    m = GaussianVideoModel(torch.rand(2, 4, 8, 8, generator=torch.Generator().manual_seed(0)) * 4)
    seen = []
    res = sample(
        DenoiserSampler(m, sch),
        (1, 2, 4, 8, 8),
        num_iters=2,
        num_inference_steps=50,
        generator=torch.Generator().manual_seed(0),
        callback=lambda d: seen.append(d["t"]) if d["stage"] == "step" and d["pass"] == 1 else None,
    )
    sch.set_timesteps(50)
    levels = grid_levels(sch)
    ab = [vp_alpha_bar(a, s) for _, a, s in levels]
    intended = ab[0] if FAMILY[name] == "vp" and ab[0] > 1e-8 else MIN_RENOISE_ALPHA_BAR
    i = start_index_for(levels, intended)
    p = res.passes[1]
    assert seen[0] == p.start_timestep == levels[i][0]  # the pass ran from there …
    assert p.alpha_bar == pytest.approx(ab[i], rel=1e-6)  # … re-diffused to that step's own level
    assert ab[i] >= intended * (1 - 1e-4) and (i == 0 or ab[i - 1] < intended)
    if name == "sd15-ddim-leading":
        assert p.start_timestep == 981 and res.passes[0].alpha_bar == p.alpha_bar
    if FAMILY[name] != "vp" or ab[0] < 1e-8:  # 50 steps resolve the intended level to within 25 %
        assert ab[i] / intended < 1.25


def test_snr_schedule_of_wans_unipc_config_is_flow_matching(tmp_path):
    """`freqscope snr --scheduler-config` on Wan's released UniPC config: flow matching with its flow_shift,
    whose σ_t equals the scheduler's own training sigmas (not a VP beta schedule)."""
    from freqscope.noise_schedule import schedule_from_config

    sch = RELEASED["wan-unipc-flow"][0]()
    sch.save_config(tmp_path)
    s = schedule_from_config(tmp_path)
    assert s.kind == "flow" and s.source["shift"] == 3.0
    assert torch.allclose(s.s, training_schedule(sch).s)
    sch.set_timesteps(1000)  # 1000 steps: the inference grid samples the shifted σ within one spacing (1/1000)
    assert torch.allclose(s.s.flip(0).float(), sch.sigmas[:-1].float(), atol=3.5e-3)
