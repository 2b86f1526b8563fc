"""Band decomposition: Parseval, exact partition, frequencies land where predicted, band-pass sums back."""

import math

import numpy as np
import pytest
import torch

from freqscope.bands import (
    DECOMPOSITIONS,
    band_power,
    band_sums,
    bandpass,
    bin_power,
    distance,
    fft3,
    make_bands,
    parse_edges,
    rapsd,
)

SHAPES = [(16, 32, 32), (5, 7, 9), (8, 12, 20), (1, 8, 8), (3, 16, 5)]


@pytest.mark.parametrize("shape", SHAPES)
def test_parseval(shape):
    x = torch.randn(2, 3, *shape, dtype=torch.float64)
    X = fft3(x)
    assert torch.allclose((X.abs() ** 2).sum(), (x**2).sum(), rtol=1e-10)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("decomposition", ["spatiotemporal", "spatial", "temporal"])
def test_bands_partition_the_spectrum(shape, decomposition):
    if decomposition == "temporal" and shape[0] == 1:
        with pytest.raises(ValueError, match="largest distance"):  # one frame: no temporal frequency
            make_bands(shape, (0.3,), decomposition=decomposition)
        return
    bs = make_bands(shape, (0.125, 0.25, 0.5) if decomposition != "temporal" else (0.3,), decomposition=decomposition)
    m = bs.masks()
    assert m.shape == (len(bs), *shape)
    assert torch.equal(m.sum(0), torch.ones(shape, dtype=torch.long))  # every bin in exactly one band
    assert sum(b.n_bins for b in bs.bands) == math.prod(shape)
    # DC is its own band and holds exactly the zero-frequency bin(s) of the decomposition.
    assert bs.labels[0, 0, 0] == 0 and bs.bands[0].lo == bs.bands[0].hi == 0


def test_band_bounds_follow_the_edges():
    shape = (16, 32, 32)
    bs = make_bands(shape, (0.125, 0.25, 0.5))
    d = distance(shape)
    for i, b in enumerate(bs.bands[1:], start=1):
        di = d[bs.labels == i]
        assert di.min() >= b.lo and (di.min() > 0)
        assert di.max() < b.hi or (i == len(bs) - 1 and math.isclose(di.max(), b.hi))
    assert math.isclose(bs.bands[-1].hi, math.sqrt(3))  # even sizes: every axis reaches −1 (Nyquist)


def test_parseval_per_band():
    """Σ_b P_b · n_b equals the mean energy per (b, c) slice."""
    x = torch.randn(2, 4, 8, 16, 16, dtype=torch.float64)
    bs = make_bands((8, 16, 16))
    p = band_power(x, bs)
    n = torch.tensor([b.n_bins for b in bs.bands], dtype=torch.float64)
    assert bs.bands[1].n_bins == 0  # (0, 0.125) is empty on this grid: step 2/16 = 0.125
    assert torch.allclose(torch.nan_to_num(p * n).sum(), (x**2).sum() / (2 * 4), rtol=1e-10)


@pytest.mark.parametrize(
    "k,expected_band", [((0, 0, 1), 1), ((2, 0, 0), 3), ((0, 3, 0), 2), ((4, 4, 0), 4), ((0, 6, 6), 4), ((1, 2, 2), 2)]
)
def test_single_frequency_lands_in_predicted_band(k, expected_band):
    """A real cosine at integer frequency k has power only at ±k: d = 2·|k|/N per axis."""
    T, H, W = 16, 32, 32
    t, h, w = torch.meshgrid(*(torch.arange(n, dtype=torch.float64) for n in (T, H, W)), indexing="ij")
    x = torch.cos(2 * math.pi * (k[0] * t / T + k[1] * h / H + k[2] * w / W))[None, None]
    bs = make_bands((T, H, W), (0.125, 0.25, 0.5))
    d = math.sqrt((2 * k[0] / T) ** 2 + (2 * k[1] / H) ** 2 + (2 * k[2] / W) ** 2)
    b = bs.bands[expected_band]
    assert b.lo <= d < b.hi, "test table is wrong"
    p = band_power(x, bs) * torch.tensor([bb.n_bins for bb in bs.bands], dtype=torch.float64)
    assert p[expected_band] == pytest.approx((x**2).sum().item(), rel=1e-9)
    assert (p.sum() - p[expected_band]).abs() < 1e-9


def test_time_scale_weights_temporal_frequency():
    # f_t = 0.25 alone: band [0.25, 0.5) at time_scale 1, [0.5, …] at time_scale 2 (d = 2 · 0.25).
    T, H, W = 16, 16, 16
    t = torch.arange(T, dtype=torch.float64)[:, None, None].expand(T, H, W)
    x = torch.cos(2 * math.pi * 2 * t / T)[None, None]
    for scale, band in [(1.0, 3), (2.0, 4)]:
        bs = make_bands((T, H, W), time_scale=scale)
        p = band_power(x, bs)
        assert int(torch.nan_to_num(p).argmax()) == band


def test_white_noise_has_unit_power_in_every_band():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 4, 16, 32, 32, generator=g)
    bs = make_bands((16, 32, 32))
    p = band_power(x, bs)
    for b, pb in zip(bs.bands[1:], p[1:].tolist()):
        # Hermitian symmetry halves the independent bins; |F ε|² ~ Exp(1) per complex bin.
        se = 1 / math.sqrt(4 * 4 * b.n_bins / 2)
        assert abs(pb - 1) < 5 * se


def test_bandpass_sums_back_and_isolates():
    x = torch.randn(1, 2, 6, 10, 14, dtype=torch.float64)
    bs = make_bands((6, 10, 14))
    parts = bandpass(x, bs)
    assert parts.shape == (len(bs), *x.shape)
    assert torch.allclose(parts.sum(0), x, atol=1e-10)
    # each part has energy only in its own band
    for i in range(len(bs)):
        p = band_power(parts[i], bs)
        assert torch.allclose(
            torch.nan_to_num(p).sum() - torch.nan_to_num(p)[i], torch.zeros((), dtype=p.dtype), atol=1e-12
        )
    assert torch.allclose(bandpass(x, bs, index=2), parts[2])


def test_masks_are_cached():
    assert make_bands((8, 16, 16), (0.25,)) is make_bands((8, 16, 16), (0.25,))
    assert make_bands((8, 16, 16), (0.25,)) is not make_bands((8, 16, 16), (0.3,))


def test_odd_sizes_have_dc_at_zero():
    d = distance((5, 7, 9))
    assert d[0, 0, 0] == 0 and (d == 0).sum() == 1
    # symmetric grid: the largest |f| on an odd axis of N is (N−1)/N, not 1
    assert math.isclose(float(d.max()), math.sqrt((4 / 5) ** 2 + (6 / 7) ** 2 + (8 / 9) ** 2))


def test_even_grid_matches_freeinit_coordinates():
    """For even N, 2·fftfreq(N) after fftshift is FreeInit's 2k/N − 1."""
    for n in (4, 16, 32):
        f = torch.fft.fftshift(2 * torch.fft.fftfreq(n, dtype=torch.float64))
        assert torch.allclose(f, 2 * torch.arange(n, dtype=torch.float64) / n - 1)


def test_rapsd_of_white_noise_is_flat_and_of_a_cosine_peaks():
    g = torch.Generator().manual_seed(1)
    r, p = rapsd(torch.randn(2, 4, 16, 32, 32, generator=g))
    assert r.shape == p.shape and torch.all(torch.diff(r) > 0)
    assert torch.allclose(p[~p.isnan()], torch.ones(()).double(), atol=0.25)
    T, H, W = 8, 32, 32
    w = torch.arange(W, dtype=torch.float64).expand(T, H, W)
    r, p = rapsd(torch.cos(2 * math.pi * 8 * w / W)[None, None], n_bins=16)
    assert abs(float(r[int(torch.nan_to_num(p).argmax())]) - 0.5) < 0.1  # k = 8 of 32 → d = 0.5


@pytest.mark.parametrize(
    "text,msg",
    [
        ("0.5,0.25", "increasing"),
        ("-0.1,0.2", "> 0"),
        ("a,b", "comma"),
        ("", "at least one"),
        ("0.25,0.25", "increasing"),
        ("nan", "> 0"),
    ],
)
def test_bad_edges(text, msg):
    with pytest.raises(ValueError, match=msg):
        parse_edges(text)


def test_edge_out_of_range():
    with pytest.raises(ValueError, match="largest distance"):
        make_bands((8, 8, 8), (0.5, 2.0))


def test_empty_band_gives_nan_power():
    bs = make_bands((16, 8, 8), (0.01, 0.5))  # nothing strictly between 0 and 0.01
    assert bs.bands[1].n_bins == 0
    assert np.isnan(band_power(torch.randn(1, 1, 16, 8, 8), bs)[1].item())


def test_shape_errors():
    with pytest.raises(ValueError, match=r"\(b, c, t, h, w\)"):
        band_power(torch.randn(3, 8, 8), make_bands((3, 8, 8)))
    with pytest.raises(ValueError, match="bands were made for"):
        band_power(torch.randn(1, 1, 4, 8, 8), make_bands((3, 8, 8)))


def test_spatiotemporal_power_grid():
    from freqscope.bands import spatiotemporal_power

    T, H, W = 8, 16, 16
    t, w = torch.meshgrid(torch.arange(T, dtype=torch.float64), torch.arange(W, dtype=torch.float64), indexing="ij")
    x = torch.cos(2 * math.pi * (2 * t / T + 4 * w / W))[:, None, :].expand(T, H, W)[None, None]  # f_t = .5, f_w = .5
    f_t, edges, p = spatiotemporal_power(x, n_spatial=8)
    assert torch.allclose(f_t, torch.tensor([0, 0.25, 0.5, 0.75, 1.0], dtype=torch.float64))
    assert p.shape == (5, 8) and len(edges) == 9
    i, j = divmod(int(torch.nan_to_num(p).argmax()), 8)
    assert f_t[i] == 0.5 and edges[j] <= 0.5 < edges[j + 1]
    # white noise: every cell near 1
    _, _, q = spatiotemporal_power(torch.randn(4, 4, 8, 32, 32, generator=torch.Generator().manual_seed(0)))
    assert torch.nanmean((q - 1).abs()) < 0.15


@pytest.mark.parametrize("shape", [(4, 6, 8), (5, 7, 9), (3, 8, 5), (2, 4, 1), (6, 5, 2)])
@pytest.mark.parametrize("decomposition", DECOMPOSITIONS)
def test_half_spectrum_sums_equal_full_spectrum(shape, decomposition):
    # rfftn + mirror weights (2 off the w = 0 / Nyquist planes) must give the full complex FFT's band sums.
    x = torch.randn(2, 3, *shape, generator=torch.Generator().manual_seed(sum(shape)), dtype=torch.float64)
    bs = make_bands(shape, (0.3, 0.6), decomposition=decomposition)
    X = torch.fft.fftn(x, dim=(-3, -2, -1), norm="ortho")
    p = X.abs() ** 2  # (b, c, t, h, w)
    full = torch.stack([(p * m).sum(dim=(-3, -2, -1)) for m in bs.masks()], dim=-1)  # (b, c, n_bands)
    assert torch.allclose(band_sums(x, bs), full, rtol=1e-12, atol=1e-12)
    assert torch.allclose(bin_power(x), p.mean(dim=(0, 1)), rtol=1e-12, atol=1e-12)


def test_abs2_is_the_sum_of_squares_bit_for_bit():
    """|X|² as Re² + Im² (the fast form band_sums uses) equals summing view_as_real's squares exactly."""
    from freqscope.bands import _abs2

    X = torch.fft.rfftn(torch.randn(2, 3, 8, 24, 40), dim=(-3, -2, -1), norm="ortho")
    assert torch.equal(_abs2(X), torch.view_as_real(X).square().sum(-1))
