"""Initial-noise priors: variances and frame correlations as their papers define them."""

import math

import pytest
import torch

from freqscope.noise import gaussian_noise, offset_noise, pyoco_mixed_noise, pyoco_progressive_noise

SHAPE = (4, 4, 16, 32, 32)


def _corr(x, lag):
    a, b = x[:, :, lag:], x[:, :, :-lag]
    return float((a * b).mean() / (a.std() * b.std()))


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_pyoco_mixed(alpha):
    x = pyoco_mixed_noise(SHAPE, alpha=alpha, generator=torch.Generator().manual_seed(0))
    assert x.var().item() == pytest.approx(1.0, abs=0.02)
    rho = alpha**2 / (1 + alpha**2)
    assert _corr(x, 1) == pytest.approx(rho, abs=0.02) and _corr(x, 5) == pytest.approx(rho, abs=0.02)


@pytest.mark.parametrize("alpha", [1.0, 2.0])
def test_pyoco_progressive(alpha):
    x = pyoco_progressive_noise(SHAPE, alpha=alpha, generator=torch.Generator().manual_seed(0))
    assert x.var().item() == pytest.approx(1.0, abs=0.03)
    r = alpha / math.sqrt(1 + alpha**2)
    assert _corr(x, 1) == pytest.approx(r, abs=0.02) and _corr(x, 3) == pytest.approx(r**3, abs=0.03)


def test_offset_noise_raises_dc():
    s = 0.5
    x = offset_noise((64, 4, 4, 8, 8), strength=s, generator=torch.Generator().manual_seed(0))
    assert x.var().item() == pytest.approx(1 + s**2, rel=0.1)
    means = x.mean(dim=(2, 3, 4))  # per (b, c): ≈ the offset
    assert means.var().item() == pytest.approx(s**2 + 1 / 256, rel=0.2)


def test_seeded_and_shape_checked():
    for f in (gaussian_noise, offset_noise, pyoco_mixed_noise, pyoco_progressive_noise):
        a = f(SHAPE, generator=torch.Generator().manual_seed(3))
        b = f(SHAPE, generator=torch.Generator().manual_seed(3))
        assert torch.equal(a, b) and a.shape == SHAPE
        with pytest.raises(ValueError, match=r"\(b, c, t, h, w\)"):
            f((4, 16, 32))


def test_spectrum_matched_noise_closes_the_gap_in_every_band():
    from freqscope.bands import band_power, make_bands
    from freqscope.gap import gap_db, training_power
    from freqscope.noise import spectrum_matched_noise

    shape = (8, 2, 8, 16, 20)
    bands = make_bands(shape[-3:])
    P = torch.tensor([4000.0, 300.0, 12.0, 2.0, 0.5])  # a video-like spectrum: most power at low frequency
    ab = 0.0046600985  # SD's ᾱ_999
    target = training_power(P, ab)  # ᾱ·P_b + 1 − ᾱ per band
    noise = spectrum_matched_noise(shape, target[bands.labels], generator=torch.Generator().manual_seed(0))
    assert noise.dtype == torch.float32 and noise.shape == shape
    got = band_power(noise, bands)
    # each band's power is a mean of |F ξ|² (χ² per bin) over 8·2·n_bins draws: within 5 standard errors
    n = torch.tensor([max(b.n_bins, 1) for b in bands.bands], dtype=torch.float64) * shape[0] * shape[1]
    assert ((got / target - 1).abs() < 5 * (2 / n).sqrt()).all()
    assert gap_db(noise, bands, P, ab).abs().max() < 5 * 10 / 2.3026 * (2 / n).sqrt().max()
    assert (gap_db(noise, bands, P, ab).abs() < 5 * 10 / math.log(10) * (2 / n).sqrt()).all()  # band by band
    # unit power everywhere is the white noise itself
    g = torch.Generator().manual_seed(1)
    white = spectrum_matched_noise(shape, torch.ones(shape[-3:]), generator=g)
    assert torch.allclose(white, torch.randn(shape, generator=torch.Generator().manual_seed(1)), atol=1e-5)


def test_spectrum_matched_noise_refuses_asymmetric_power():
    from freqscope.noise import spectrum_matched_noise

    p = torch.ones(4, 8, 8)
    p[0, 1, 0] = 5.0  # its mirror bin (0, −1, 0) keeps 1
    with pytest.raises(ValueError, match="symmetric"):
        spectrum_matched_noise((1, 1, 4, 8, 8), p)


def test_low_band_gap_pools_the_bands_below_the_cutoff():
    from freqscope.bands import band_power, make_bands
    from freqscope.gap import low_band_gap_db, training_power

    bands = make_bands((16, 32, 32))  # DC, (0, .125), [.125, .25), [.25, .5), [.5, 1.732]
    P = torch.tensor([900.0, 40.0, 6.0, 1.5, 0.2])
    ab = 0.01
    x = torch.randn(2, 4, 16, 32, 32, generator=torch.Generator().manual_seed(0))
    Q = band_power(x, bands).double()
    n1, n2 = bands.bands[1].n_bins, bands.bands[2].n_bins
    T = training_power(P.double(), ab)
    by_hand = 10 * math.log10((n1 * T[1] + n2 * T[2]) / (n1 * Q[1] + n2 * Q[2]))
    assert low_band_gap_db(x, bands, P, ab, cutoff=0.25) == pytest.approx(by_hand, rel=1e-6)
    # default: the band (0, e₁) alone
    assert low_band_gap_db(x, bands, P, ab) == pytest.approx(10 * math.log10(T[1] / Q[1]), rel=1e-6)
    with pytest.raises(ValueError, match="no band below it"):
        low_band_gap_db(x, bands, P, ab, cutoff=0.01)


@pytest.mark.parametrize(
    "gaps, candidate, go",
    [
        ([2.7], 0.8, True),  # above tolerance and shrinking
        ([2.7, 0.8], 0.0, False),  # 0.8 dB is within the 1 dB tolerance: closed
        ([2.7], -1.5, False),  # the candidate would overshoot past −1 dB
        ([2.7], 2.9, False),  # not shrinking
        ([-2.0], -1.0, False),  # already overshot: more passes only push further
    ],
)
def test_adaptive_freeinit_rule(gaps, candidate, go):
    from freqscope.gap import keep_reinitialising

    assert keep_reinitialising(gaps, candidate, tol=1.0) is go


def test_noise_is_drawn_on_the_generators_device_then_moved():
    """As diffusers' randn_tensor: a CPU generator seeds any target device with the same numbers (here the
    'meta' device stands in for CUDA, which this machine lacks; the values are checked on the CPU draw)."""
    from freqscope.noise import randn

    ref = torch.randn((2, 3, 4, 5, 6), generator=torch.Generator().manual_seed(7))
    assert torch.equal(gaussian_noise((2, 3, 4, 5, 6), generator=torch.Generator().manual_seed(7)), ref)
    moved = randn((2, 3, 4, 5, 6), generator=torch.Generator().manual_seed(7), device="meta")
    assert moved.device.type == "meta" and moved.shape == ref.shape
    for f in (offset_noise, pyoco_mixed_noise, pyoco_progressive_noise):
        assert f(SHAPE, generator=torch.Generator().manual_seed(1), device="meta").device.type == "meta"
