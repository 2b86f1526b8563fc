"""Schedules: reference values (docs/architecture.md) and agreement with real diffusers schedulers."""

import json
import math

import diffusers
import pytest
import torch

from freqscope.noise_schedule import flow_schedule, get_schedule, schedule_from_config, vp_schedule
from freqscope.snr import to_db


# Reference values from docs/architecture.md (computed there from the published beta schedules).
@pytest.mark.parametrize(
    "preset,alpha_bar_999,snr_db_999",
    [
        ("sd", 0.0046600985, -23.2958),  # Stable Diffusion: scaled_linear 0.00085 → 0.012
        ("animatediff", 0.0015789629, -28.0094),  # AnimateDiff: linear 0.00085 → 0.012
        ("linear", 4.0358e-5, -43.94),  # DDPM: linear 1e-4 → 0.02
    ],
)
def test_terminal_reference_values(preset, alpha_bar_999, snr_db_999):
    s = get_schedule(preset)
    assert s.num_train_timesteps == 1000
    assert s.alpha_bar[999].item() == pytest.approx(alpha_bar_999, rel=2e-5)
    assert to_db(s.snr)[999].item() == pytest.approx(snr_db_999, abs=0.005)


@pytest.mark.parametrize(
    "config",
    [
        {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012},
        {"beta_schedule": "linear", "beta_start": 0.00085, "beta_end": 0.012},
        {"beta_schedule": "squaredcos_cap_v2"},
        {"beta_schedule": "sigmoid", "beta_start": 1e-4, "beta_end": 0.02},
        {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012, "rescale_betas_zero_snr": True},
        {"beta_schedule": "linear", "num_train_timesteps": 500},
    ],
)
def test_vp_matches_diffusers_ddpm(config):
    ref = diffusers.DDPMScheduler(**config).alphas_cumprod.double()  # float32 in diffusers
    ours = vp_schedule(config).alpha_bar
    assert ours.shape == ref.shape
    assert torch.allclose(ours, ref, rtol=2e-5, atol=1e-7)


def test_zero_terminal_snr():
    s = get_schedule("sd", zero_terminal_snr=True)
    assert s.alpha_bar[-1].item() == pytest.approx(0.0, abs=1e-15)
    assert s.alpha_bar[0].item() == pytest.approx(get_schedule("sd").alpha_bar[0].item(), rel=1e-12)
    assert to_db(s.snr)[-1].item() == -math.inf
    assert torch.all(torch.diff(s.snr) < 0)


@pytest.mark.parametrize("shift", [1.0, 3.0, 5.0])
def test_flow_matches_diffusers(shift):
    sch = diffusers.FlowMatchEulerDiscreteScheduler(shift=shift)
    ref = sch.sigmas.double().flip(0)  # diffusers stores them from σ_max down
    ours = flow_schedule(shift=shift)
    assert torch.allclose(ours.s, ref, rtol=1e-6)
    assert ours.s[-1].item() == 1.0 and ours.kind == "flow"
    assert torch.allclose(ours.a + ours.s, torch.ones(1000, dtype=torch.float64))


def test_cosine_preset_is_monotone_and_bounded():
    s = get_schedule("cosine")
    assert torch.all(torch.diff(s.alpha_bar) < 0) and 0 < s.alpha_bar[-1] < 1e-4


def test_config_file_and_folder(tmp_path):
    diffusers.DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012).save_config(
        tmp_path / "scheduler"
    )
    for p in [tmp_path, tmp_path / "scheduler", tmp_path / "scheduler" / "scheduler_config.json"]:
        s = schedule_from_config(p)
        assert s.name == "DDIMScheduler" and s.alpha_bar[999].item() == pytest.approx(0.0046600985, rel=2e-5)
    diffusers.FlowMatchEulerDiscreteScheduler(shift=3.0).save_config(tmp_path / "flow")
    s = get_schedule(str(tmp_path / "flow"))
    assert s.kind == "flow" and s.source["shift"] == 3.0
    assert get_schedule(str(tmp_path / "flow"), shift=1.0).source["shift"] == 1.0


def test_config_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no scheduler config"):
        schedule_from_config(tmp_path)
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(ValueError, match="not valid JSON"):
        schedule_from_config(tmp_path / "bad.json")
    (tmp_path / "odd.json").write_text(json.dumps({"beta_schedule": "quadratic"}))
    with pytest.raises(ValueError, match="not supported"):
        schedule_from_config(tmp_path / "odd.json")
    with pytest.raises(ValueError, match="unknown schedule"):
        get_schedule("karras")
    with pytest.raises(ValueError, match="flow matching"):
        get_schedule("sd", shift=3.0)
