"""freqscope.periodic: artefacts put into a real clip are found at their period, clean profiles give nothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from freqscope.periodic import DEFAULT_THRESHOLD, Peak, _t_to_z, find_periods, match_structure
from freqscope.video import read_video

STRUCTURE = {"time": {"temporal_compression_ratio": 4, "causal_first_frame": True}, "height": {"tile": 32},
             "width": {"tile": 32}}


def per_frame(e: torch.Tensor) -> torch.Tensor:
    return e.abs().mean(dim=(0, 1, 3, 4))  # (t,)


def per_column(e: torch.Tensor) -> torch.Tensor:
    return e.abs().mean(dim=(0, 1, 2, 3))  # (w,)


@pytest.fixture(scope="module")
def clip(bikes) -> torch.Tensor:
    x, _ = read_video(bikes, frames=64, size=128)  # real, with a scene cut at frame 30
    return x.double()  # (1, 3, 64, 128, 296)


@pytest.fixture(scope="module")
def wide(bikes) -> torch.Tensor:
    x, _ = read_video(bikes, frames=16, size=192, start=2.0)
    return x.double()  # (1, 3, 16, 192, 448): 14 tiles of 32 px


def chunk_gain(x: torch.Tensor, n: int, axis: int, seed: int = 0) -> torch.Tensor:
    """A random gain in [0.97, 1.03] per chunk of ``n`` samples along ``axis`` (of the [0, 1] intensity)."""
    L = x.shape[axis]
    g = 1 + 0.03 * (2 * torch.rand(L // n + 1, generator=torch.Generator().manual_seed(seed), dtype=x.dtype) - 1)
    shape = [1] * x.ndim
    shape[axis] = L
    return (x + 1) * g.repeat_interleave(n)[:L].reshape(shape) - 1


def test_chunk_gain_in_time_gives_period_4(clip):
    y = chunk_gain(clip, 4, axis=2)  # causal VAE decoding 4 frames at a time
    peaks = find_periods(per_frame(y - clip), axis="time")  # the per-frame error against the original
    assert [(p.axis, p.period, p.phase, p.shape) for p in peaks] == [("time", 4, 0, "step")]
    assert peaks[0].score >= DEFAULT_THRESHOLD and peaks[0].strength_db > 10
    assert find_periods(per_frame((clip + 1) * 1.02 - 1 - clip), axis="time") == []  # one gain for all frames


def test_tile_gain_in_width_gives_period_32(clip, wide):
    y = chunk_gain(clip, 32, axis=4)  # tiled decode, 32-px tiles
    assert [(p.period, p.phase) for p in find_periods(per_column(y - clip), axis="width")] == [(32, 0)]
    y = chunk_gain(wide, 32, axis=4)
    gradient = per_column(y.diff(dim=4))  # (W − 1,) the processed clip alone, no reference needed
    assert [(p.period, p.shape) for p in find_periods(gradient, axis="width")] == [(32, "spike")]
    assert find_periods(per_column(wide.diff(dim=4)), axis="width") == []  # the clean clip's gradient


def test_spike_train_reports_its_period_not_divisors_or_multiples():
    rng = np.random.default_rng(0)
    s = 1 + 0.05 * rng.standard_normal(96)
    s[3::8] += 0.5  # a keyframe every 8 frames
    peaks = find_periods(s, axis="time")
    assert [(p.period, p.phase, p.shape) for p in peaks] == [(8, 3, "spike")]
    steps = np.repeat(rng.standard_normal(12), 8) + 0.05 * rng.standard_normal(96)  # a level per GOP of 8
    assert [(p.period, p.shape) for p in find_periods(steps, axis="time")] == [(8, "step")]
    assert [(p.period, p.shape) for p in find_periods(torch.from_numpy(s), axis="time")] == [(8, "spike")]


def test_two_independent_periods_are_both_found():
    rng = np.random.default_rng(1)
    s = 0.05 * rng.standard_normal(240)
    s[::8] += 1.0
    s[3::5] += 1.0
    assert sorted(p.period for p in find_periods(s, axis="time")) == [5, 8]


@pytest.mark.parametrize(
    "signal",
    [
        np.random.default_rng(0).standard_normal(64),  # white noise
        np.random.default_rng(1).standard_normal(600),
        np.linspace(0, 5, 64),  # a linear trend
        np.linspace(0, 5, 64) + 0.01 * np.random.default_rng(2).standard_normal(64),
        np.cumsum(np.random.default_rng(3).standard_normal(256)),  # a random walk (a slow drift)
        np.ones(32),
        np.r_[np.zeros(30), 5 * np.ones(34)] + 0.01 * np.random.default_rng(4).standard_normal(64),  # a scene cut
    ],
)
def test_clean_signals_give_nothing(signal):
    assert find_periods(signal, axis="time") == []


def test_isolated_outliers_make_no_period():
    """Two scene cuts 19 frames apart fall in one phase of period 19 (3 cycles in 64 frames): robust logs and
    clipping keep them from making a period (plain changes score 7.4, unclipped logs 6.8, the module 4.7)."""
    rng = np.random.default_rng(5)
    s = np.cumsum(0.1 * rng.standard_normal(64))  # a drifting per-frame error
    s[12:] += 30.0
    s[31:] += 30.0
    assert find_periods(s, axis="time") == []
    assert find_periods(s, axis="time", threshold=4.0)[0].period == 19  # it is the best candidate


def test_match_structure_names_the_structure(clip, wide):
    time_peaks = find_periods(per_frame(chunk_gain(clip, 4, axis=2) - clip), axis="time")
    width_peaks = find_periods(per_column(chunk_gain(wide, 32, axis=4).diff(dim=4)), axis="width")
    matched = match_structure(time_peaks + width_peaks, STRUCTURE)
    assert [(m["axis"], m["period"], m["matches"]) for m in matched] == [
        ("time", 4, "temporal_compression_ratio (4)"),
        ("width", 32, "tile (32)"),
    ]
    assert {"axis", "period", "strength_db", "phase"} <= matched[0].keys()
    other = [Peak("width", 64, 5.0, 8.0, 0), Peak("height", 16, 5.0, 8.0, 0), Peak("time", 7, 5.0, 8.0, 0),
             Peak("time", 8, 5.0, 8.0, 0)]
    assert [m["matches"] for m in match_structure(other, STRUCTURE)] == [
        "2 × tile (32)", "tile (32) / 2", None, "2 × temporal_compression_ratio (4)"]
    assert match_structure(other[:1], {}) == [{**other[0].to_dict(), "matches": None}]


def test_no_false_alarm_on_real_windows(bikes, bunny):
    """A small version of benchmarks/calibrate_periodic.py: every kind of profile of real windows, no peak."""
    blur = lambda x: torch.nn.functional.avg_pool3d(x, (1, 3, 3), stride=1, padding=(0, 1, 1), count_include_pad=False)
    gen = torch.Generator().manual_seed(0)
    found = {}
    for path, start, stride, frames, size in [(bikes, 0.0, 1, 48, 128), (bikes, 4.0, 2, 32, 96),
                                               (bikes, 7.0, 3, 24, None), (bunny, 0.5, 1, 40, 96),
                                               (bunny, 1.0, 2, 32, 160)]:
        x, _ = read_video(path, frames=frames, stride=stride, start=start, size=size)
        xb, xn = blur(x), x + 0.02 * torch.randn(x.shape, generator=gen)
        profiles = {
            "time": [per_frame(x.diff(dim=2)), x.mean(dim=(0, 1, 3, 4)), per_frame(xb - x), per_frame(xn - x)],
            "width": [per_column(x.diff(dim=4)), per_column(xb - x)],
            "height": [x.diff(dim=3).abs().mean(dim=(0, 1, 2, 4)), (xb - x).abs().mean(dim=(0, 1, 2, 4))],
        }
        for axis, signals in profiles.items():
            for i, s in enumerate(signals):
                if peaks := find_periods(s, axis=axis):
                    found[(str(path)[-10:], start, axis, i)] = peaks
    assert found == {}


def test_t_to_z_matches_student_t():
    stats = pytest.importorskip("scipy.stats")
    nu, t = np.array([3.0, 10.0, 30.0, 200.0]), np.array([2.0, 5.0, 8.0, 12.0])
    exact = stats.norm.isf(stats.t.sf(t[None, :], nu[:, None]))
    assert np.abs(_t_to_z(t[None, :], nu[:, None]) - exact).max() < 0.07


def test_bad_inputs_name_the_parameter():
    with pytest.raises(ValueError, match="axis .frames.: choose one of"):
        find_periods(np.zeros(32), axis="frames")
    with pytest.raises(ValueError, match="the signal must be"):
        find_periods(np.zeros((4, 8)), axis="time")
    with pytest.raises(ValueError, match="the signal must be"):
        find_periods([0.0, float("nan"), 1.0], axis="time")
    assert find_periods([1.0, 2.0, 3.0], axis="time") == []  # too short for 3 cycles of 2
