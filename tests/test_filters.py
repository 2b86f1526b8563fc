"""FreeInit filters and mixing: parity with diffusers' FreeInitMixin, the official box, variance."""

import math

import numpy as np
import pytest
import torch
from diffusers.pipelines.free_init_utils import FreeInitMixin

from freqscope.filters import freq_mix, lowpass_filter, noise_variance, variance_loss_db

SHAPES = [(16, 32, 32), (5, 7, 9), (8, 12, 20), (1, 8, 8), (3, 16, 5), (16, 40, 72)]
MIXIN = FreeInitMixin()


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(
    "ours,theirs", [("gaussian", "gaussian"), ("butterworth", "butterworth"), ("ideal-legacy", "ideal")]
)
@pytest.mark.parametrize("d_s,d_t,order", [(0.25, 0.25, 4), (0.4, 0.15, 2), (0.1, 0.5, 1)])
def test_masks_equal_diffusers(shape, ours, theirs, d_s, d_t, order):
    ref = MIXIN._get_free_init_freq_filter((1, 4, *shape), "cpu", theirs, order, d_s, d_t)[0, 0]
    mine = lowpass_filter(shape, method=ours, d_s=d_s, d_t=d_t, order=order)
    assert mine.shape == shape
    assert (mine - ref).abs().max() < 1e-6


@pytest.mark.parametrize("shape", SHAPES)
def test_freq_mix_equals_diffusers(shape):
    g = torch.Generator().manual_seed(0)
    x, n = torch.randn(2, 4, *shape, generator=g), torch.randn(2, 4, *shape, generator=g)
    mask = lowpass_filter(shape, method="butterworth")
    ref = MIXIN._apply_freq_filter(x, n, mask.expand(1, 4, *shape))
    assert torch.allclose(freq_mix(x, n, mask), ref, atol=1e-5)


def test_ideal_is_the_corrected_threshold():
    shape = (16, 32, 32)
    m = lowpass_filter(shape, method="ideal", d_s=0.25, d_t=0.25)
    legacy = lowpass_filter(shape, method="ideal-legacy", d_s=0.25, d_t=0.25)
    # centred index of (f_t, f_h, f_w) = (0, 0.25, 0): d² = 0.0625 ≤ 0.0625 kept; (0, 0.3125, 0) dropped.
    assert m[8, 16 + 4, 16] == 1 and m[8, 16 + 5, 16] == 0
    # the published threshold d² ≤ 2·d_s = 0.5 keeps far more: radius 0.707 instead of 0.25
    assert legacy[8, 16 + 11, 16] == 1 and legacy.sum() > 20 * m.sum()


def test_box_legacy_is_the_published_box_when_h_differs_from_w():
    """FreeInit's/FreqPrior's box_low_pass_filter: threshold_s = round(H//2 · d_s) on both spatial axes."""
    T, H, W = 16, 32, 24
    m = lowpass_filter((T, H, W), method="box-legacy", d_s=0.25, d_t=0.5)
    ref = torch.zeros(T, H, W)
    ts, ss = round(T // 2 * 0.5), round(int(H // 2) * 0.25)
    ref[T // 2 - ts : T // 2 + ts, H // 2 - ss : H // 2 + ss, W // 2 - ss : W // 2 + ss] = 1
    assert torch.equal(m, ref)
    assert not torch.equal(m, lowpass_filter((T, H, W), method="box", d_s=0.25, d_t=0.5))  # H ≠ W differ
    assert torch.equal(lowpass_filter((T, H, H), method="box-legacy"), lowpass_filter((T, H, H), method="box"))


def _published_box(T: int, H: int, W: int, d_s: float, d_t: float) -> np.ndarray:
    """box_low_pass_filter of TianxingWu/FreeInit (freeinit_utils.py), as written there, in numpy."""
    mask = np.zeros((T, H, W), dtype=np.float32)
    threshold_s = round(int(H // 2) * d_s)
    threshold_t = round(T // 2 * d_t)
    cframe, crow, ccol = T // 2, H // 2, W // 2
    mask[
        cframe - threshold_t : cframe + threshold_t,
        crow - threshold_s : crow + threshold_s,
        ccol - threshold_s : ccol + threshold_s,
    ] = 1.0
    return mask


@pytest.mark.parametrize(
    "T,H,W", [(16, 32, 32), (16, 40, 64), (9, 33, 17), (8, 64, 16), (5, 21, 7), (1, 2, 1), (4, 8, 3)]
)
@pytest.mark.parametrize("d_s,d_t", [(0.25, 0.25), (1.0, 1.0), (0.6, 0.1), (0.9, 0.5), (0.05, 1.0)])
def test_box_legacy_is_the_published_box_slice_for_slice(T, H, W, d_s, d_t):
    """Also where H's half-width exceeds W's and the published slice start goes negative (Python wraps it)."""
    ours = lowpass_filter((T, H, W), method="box-legacy", d_s=d_s, d_t=d_t).numpy()
    np.testing.assert_array_equal(ours, _published_box(T, H, W, d_s, d_t))


def test_box_legacy_wraps_as_published_where_the_start_is_negative():
    """(9, 33, 17), d_s = 1: columns start at 8 − 16 = −8, i.e. 9 in Python: the box keeps columns 9–16 only."""
    m = lowpass_filter((9, 33, 17), method="box-legacy", d_s=1.0, d_t=1.0)
    cols = m.sum(dim=(0, 1)).nonzero().flatten().tolist()
    assert cols == list(range(9, 17))


def test_box_is_the_index_box_per_axis():
    T, H, W = 16, 32, 24
    m = lowpass_filter((T, H, W), method="box", d_s=0.25, d_t=0.5)
    ref = torch.zeros(T, H, W)
    ts, hs, ws = round(T // 2 * 0.5), round(H // 2 * 0.25), round(W // 2 * 0.25)
    ref[T // 2 - ts : T // 2 + ts, H // 2 - hs : H // 2 + hs, W // 2 - ws : W // 2 + ws] = 1
    assert torch.equal(m, ref)


def test_zero_stop_frequency_gives_empty_mask():
    assert lowpass_filter((4, 8, 8), method="gaussian", d_s=0.0).sum() == 0


def test_masks_are_cached_per_shape_and_parameters():
    a = lowpass_filter((16, 64, 64), method="butterworth")
    assert a is lowpass_filter((16, 64, 64), method="butterworth")
    assert a is not lowpass_filter((16, 64, 64), method="butterworth", d_s=0.3)


def test_variance_preserving_mix_keeps_unit_variance():
    g = torch.Generator().manual_seed(1)
    shape = (16, 32, 32)
    x, n = torch.randn(8, 4, *shape, generator=g), torch.randn(8, 4, *shape, generator=g)
    for method in ("gaussian", "butterworth"):
        mask = lowpass_filter(shape, method=method)
        v_fi = freq_mix(x, n, mask).var().item()
        v_vp = freq_mix(x, n, mask, variance_preserving=True).var().item()
        # 524k samples: the variance estimate has a standard error of √(2/524288) ≈ 0.002
        assert v_vp == pytest.approx(1.0, abs=0.006)
        assert v_fi == pytest.approx(noise_variance(mask), abs=0.006) and noise_variance(mask) < 0.995
        assert variance_loss_db(mask) > 0 and variance_loss_db(mask, variance_preserving=True) == pytest.approx(0)
    for method in ("ideal", "box"):  # binary masks lose nothing
        assert variance_loss_db(lowpass_filter(shape, method=method)) == pytest.approx(0, abs=1e-12)


def test_mix_keeps_low_and_refills_high():
    shape = (8, 16, 16)
    x = torch.randn(1, 1, *shape, dtype=torch.float64)
    n = torch.randn(1, 1, *shape, dtype=torch.float64)
    ones = torch.ones(shape)
    assert torch.allclose(freq_mix(x, n, ones), x)
    assert torch.allclose(freq_mix(x, n, torch.zeros(shape)), n)
    assert freq_mix(x, n, ones).dtype == torch.float64


@pytest.mark.parametrize(
    "kw,msg",
    [
        ({"method": "sinc"}, "unknown filter"),
        ({"d_s": 1.5}, r"\[0, 1\]"),
        ({"d_t": -0.1}, r"\[0, 1\]"),
        ({"order": 0}, "order"),
        ({"d_s": math.nan}, r"\[0, 1\]"),
    ],
)
def test_bad_filter_arguments(kw, msg):
    with pytest.raises(ValueError, match=msg):
        lowpass_filter((4, 8, 8), **kw)


def test_mix_shape_errors():
    with pytest.raises(ValueError, match="same shape"):
        freq_mix(torch.randn(1, 1, 4, 8, 8), torch.randn(1, 1, 4, 8, 9), torch.ones(4, 8, 8))
    with pytest.raises(ValueError, match="mask"):
        freq_mix(torch.randn(1, 1, 4, 8, 8), torch.randn(1, 1, 4, 8, 8), torch.ones(4, 8, 9))


@pytest.mark.parametrize("method", ["box", "ideal", "box-legacy", "ideal-legacy"])
def test_a_binary_mask_loses_exactly_zero_db_without_a_sign(method):
    """Reports print "loses 0.000 dB", never "-0.000 dB" (float32 rounding of a binary mask's variance)."""
    import math

    v = variance_loss_db(lowpass_filter((9, 33, 17), method=method))
    assert v == 0.0 and math.copysign(1.0, v) == 1.0
