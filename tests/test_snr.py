"""Per-band SNR: closed form vs real noise draws, vs the naive per-timestep FFT, crossings."""

import math

import pytest
import torch

from freqscope.analysis import analyze_latent, summarize
from freqscope.bands import band_power, make_bands
from freqscope.noise_schedule import get_schedule
from freqscope.snr import band_snr, crossing_timesteps, energy_fraction, snr_closed_form, snr_naive, snr_sampled, to_db


def _smooth_latent(shape=(1, 4, 16, 32, 32), seed=0):
    """A latent with a falling spectrum, like real video: white noise low-passed by a Gaussian."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    X = torch.fft.fftn(x, dim=(-3, -2, -1))
    d2 = sum(
        f**2
        for f in torch.meshgrid(*(2 * torch.fft.fftfreq(n, dtype=torch.float64) for n in shape[-3:]), indexing="ij")
    )
    return torch.fft.ifftn(X * torch.exp(-d2 / (2 * 0.15**2)) * 10, dim=(-3, -2, -1)).real.float()


def test_closed_form_definition():
    z0 = _smooth_latent()
    bs = make_bands(tuple(z0.shape[-3:]))
    sched = get_schedule("sd")
    P = band_power(z0, bs)
    snr = snr_closed_form(P, sched)
    ab = sched.alpha_bar
    for t in (0, 500, 999):
        assert torch.allclose(snr[:, t], ab[t] * P / (1 - ab[t]))


def test_sampled_agrees_with_closed_form_within_statistical_error():
    z0 = _smooth_latent()
    bs = make_bands(tuple(z0.shape[-3:]))
    sched = get_schedule("sd")
    K = 16
    closed = to_db(snr_closed_form(band_power(z0, bs), sched))
    sampled = to_db(snr_sampled(z0, bs, sched, seeds=K, generator=torch.Generator().manual_seed(0)))
    c = z0.shape[1]
    for i, b in enumerate(bs.bands):
        if b.n_bins == 0:
            continue
        # measured noise power is a mean of ~c·n/2 independent Exp(1) (χ²₁ for the DC bin): relative
        # std ≈ √(2/(c·n)); in dB ≈ 4.34·that. Mean over K draws shrinks it by √K.
        rel = math.sqrt(2 / (c * b.n_bins))
        tol_db = 5 * 4.343 * rel / math.sqrt(K) + 1e-9
        assert (sampled[:, i].mean(0) - closed[i]).abs().max() < tol_db, b.name
        spread = sampled[:, i, 500].std().item()
        assert 0.2 * 4.343 * rel < spread < 5 * 4.343 * rel  # the spread is real, and of the predicted size


def test_sampled_equals_naive_per_timestep_fft():
    """Linearity of the FFT: one FFT of z0 and of ε gives what 2N FFTs give."""
    z0 = _smooth_latent((1, 2, 4, 8, 8))
    bs = make_bands((4, 8, 8), (0.3, 0.6))
    sched = get_schedule("animatediff")
    g = torch.Generator().manual_seed(3)
    fast = snr_sampled(z0, bs, sched, seeds=1, generator=g)[0]
    eps = torch.randn(z0.shape, generator=torch.Generator().manual_seed(3))
    naive = snr_naive(z0, bs, sched, eps)
    assert torch.allclose(to_db(fast), to_db(naive), atol=1e-4)


def test_flow_matching_snr():
    z0 = _smooth_latent()
    bs = make_bands(tuple(z0.shape[-3:]))
    sched = get_schedule("flow", shift=3.0)
    P = band_power(z0, bs)
    snr = snr_closed_form(P, sched)
    sig = sched.s
    assert torch.allclose(snr[:, 100], (1 - sig[100]) ** 2 * P / sig[100] ** 2)
    assert torch.all(to_db(snr)[:, -1] == -math.inf)  # σ = 1: pure noise


def test_crossings():
    db = torch.tensor([[5.0, 1.0, -1.0, -2.0], [3.0, 2.0, 1.0, 0.5], [-1.0, -2.0, -3.0, -4.0]])
    assert crossing_timesteps(db) == [2, None, 0]


def test_energy_fraction_sums_to_one():
    z0 = _smooth_latent()
    bs = make_bands(tuple(z0.shape[-3:]), (0.1, 0.3))
    ef = energy_fraction(band_power(z0, bs), bs)
    assert ef.sum().item() == pytest.approx(1.0)
    assert ef[:3].sum() > 0.9  # a smooth latent keeps its energy below d = 0.3


def test_band_snr_and_summary():
    sched = get_schedule("sd")
    clips = [
        analyze_latent(_smooth_latent(seed=s), sched, seeds=2, generator=torch.Generator().manual_seed(s))
        for s in range(3)
    ]
    r = clips[0].snr
    assert r.snr_db.shape == (5, 1000) and r.sampled_db_mean.shape == (5, 1000)
    s = summarize(clips, sched)
    # Clips are averaged in linear power (issue 8): the mean SNR is the SNR of the mean band power.
    mean_lin = (10 ** (torch.stack([c.snr.snr_db for c in clips]) / 10)).mean(0)
    assert torch.allclose(s.snr_db, 10 * torch.log10(mean_lin))
    # The spread (one definition for every run): the SNR of P̄ ± σ, σ the s.d. of the band power over clips.
    P = torch.stack([c.snr.power for c in clips])
    std = P.std(dim=0, unbiased=False)
    assert torch.allclose(s.power_std, std) and torch.all(s.snr_db_hi[:, 0] > s.snr_db[:, 0])
    assert torch.allclose(s.snr_db_hi, 10 * torch.log10((P.mean(0) + std)[:, None] * sched.snr))
    single = summarize(clips[:1], sched)
    assert torch.all(single.power_std == 0) and torch.equal(single.snr_db_lo, single.snr_db)
    from freqscope.report import summary_to_dict

    assert summary_to_dict(single)["video"] is None  # a bare latent has no path (not the string "None")
    assert band_snr(_smooth_latent(), clips[0].bands, sched).crossing == r.crossing


def test_non_finite_latent_is_caught_on_the_band_powers():
    # The pixel encoder no longer scans every pixel; a NaN or Inf anywhere reaches every band's power.
    z0 = _smooth_latent()
    for bad in (float("nan"), float("inf")):
        z = z0.clone()
        z[0, 0, 1, 2, 3] = bad
        with pytest.raises(ValueError, match="NaN/Inf"):
            analyze_latent(z, get_schedule("sd"))


def test_seeds_average_the_noise_power_not_the_db():
    """DC holds one bin per channel, so with 3 channels its measured noise power is χ²₃/3: a mean of dB
    over draws is biased by E[−10·log10(χ²₃/3)] ≈ +1.5 dB, the mean of the linear power is not."""
    z0 = torch.randn(1, 3, 8, 16, 16, generator=torch.Generator().manual_seed(0)) + 0.3
    bands = make_bands((8, 16, 16))
    sched = get_schedule("sd")
    res = band_snr(z0, bands, sched, seeds=400, generator=torch.Generator().manual_seed(1))
    t = 500
    assert res.sampled_db_mean[0, t] == pytest.approx(res.snr_db[0, t].item(), abs=0.5)  # 0.18 dB standard error
    lin = snr_sampled(z0, bands, sched, seeds=400, generator=torch.Generator().manual_seed(1))
    assert to_db(lin)[:, 0, t].mean() - res.snr_db[0, t] > 1.0  # the old average of dB


def test_multi_clip_header_lists_each_latent_shape():
    from freqscope.report import format_table

    sched = get_schedule("sd")
    g = torch.Generator().manual_seed(0)
    shapes = [(1, 3, 8, 32, 32), (1, 3, 8, 32, 48), (1, 3, 8, 32, 32)]
    clips = [analyze_latent(torch.randn(s, generator=g), sched) for s in shapes]
    header = format_table(summarize(clips, sched)).splitlines()[0]
    assert "latent (1, 3, 8, 32, 32) ×2, (1, 3, 8, 32, 48) ×1" in header


def test_clip_weights_normalise_and_refuse_bad_weights():
    from freqscope.snr import clip_weights

    assert torch.equal(clip_weights(None, 4), torch.full((4,), 0.25, dtype=torch.float64))
    w = clip_weights(torch.tensor([2.0, 0.0, 6.0]), 3)
    assert torch.allclose(w, torch.tensor([0.25, 0.0, 0.75], dtype=torch.float64)) and w.sum() == 1
    for bad, n in (([1.0, -1.0], 2), ([0.0, 0.0], 2), ([1.0, float("nan")], 2), ([1.0], 2)):
        with pytest.raises(ValueError, match="weights: need 2 finite numbers >= 0, not all 0"):
            clip_weights(torch.tensor(bad), n)
