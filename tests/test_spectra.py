"""The compact spectra of a clip's row (freqscope.spectra): Parseval, a direct full-FFT computation, closed forms."""

import math

import numpy as np
import pytest
import torch

from freqscope.bands import half_power
from freqscope.rows import latent_rows
from freqscope.spectra import MAX_RADIUS, SPATIAL_RINGS, cell_labels, frame_stats, spectrum_grid, spectrum_of_half


@pytest.mark.parametrize("shape", [(8, 16, 24), (9, 15, 17), (2, 8, 8), (4, 64, 64)])
def test_spectrum_is_the_full_fft_grouped_by_cell_and_keeps_parseval(shape):
    """Against the full complex FFT grouped by hand (|k_t| × ring), odd and even sides; Σ cells · counts = Σ z²."""
    z = torch.randn(2, 3, *shape, dtype=torch.float64)
    spec = spectrum_of_half(half_power(z), shape)  # (2, cells)
    T, H, W = shape
    P = torch.fft.fftn(z, dim=(-3, -2, -1), norm="ortho").abs().square().mean(1).numpy()  # (2, T, H, W)
    kt = np.abs(np.fft.fftfreq(T) * T).round().astype(int)
    kh, kw = np.meshgrid(np.fft.fftfreq(H) * H, np.fft.fftfreq(W) * W, indexing="ij")
    q = [
        2 * SPATIAL_RINGS**2 * (round(a) ** 2 * W**2 + round(b) ** 2 * H**2) // (H**2 * W**2)
        for a, b in zip(kh.flat, kw.flat)
    ]
    ring = np.minimum([math.isqrt(v) for v in q], SPATIAL_RINGS - 1).reshape(H, W)  # exact: rings by integers
    for i in range(2):
        for k in range(T // 2 + 1):
            for j in range(SPATIAL_RINGS):
                sel = P[i][kt == k][:, ring == j]
                got = spec[i, k * SPATIAL_RINGS + j].item()
                assert (np.isnan(got) and sel.size == 0) or got == pytest.approx(sel.mean(), rel=1e-10)
    counts = cell_labels(shape)[2]
    total = (torch.nan_to_num(spec) * counts).sum(1)
    assert torch.allclose(total, z.square().sum(dim=(2, 3, 4)).mean(1), rtol=1e-10)
    assert counts.sum() == T * H * W


def test_white_noise_is_flat_and_a_temporal_sine_sits_in_its_row():
    """Unit white noise: every cell's expected power is 1. A sine at k = 3 cycles per clip: all energy in row 3."""
    torch.manual_seed(0)
    T, H, W = 16, 64, 64
    spec = spectrum_of_half(half_power(torch.randn(4, 4, T, H, W)), (T, H, W)).mean(0)
    full = cell_labels((T, H, W))[2] > 50
    assert torch.allclose(spec[full], torch.ones(int(full.sum()), dtype=torch.float64), atol=0.15)
    t = torch.arange(T, dtype=torch.float64)
    z = torch.sin(2 * torch.pi * 3 * t / T)[None, None, :, None, None] * torch.randn(1, 1, 1, H, W, dtype=torch.float64)
    rows = spectrum_of_half(half_power(z), (T, H, W))[0].reshape(T // 2 + 1, SPATIAL_RINGS)
    energy = torch.nan_to_num(rows).sum(1)
    assert energy.argmax() == 3 and energy[3] > 1e6 * (energy.sum() - energy[3])
    f_t, edges = spectrum_grid(T)
    assert f_t[3] == 3 / 16 and edges[-1] == MAX_RADIUS and len(edges) == SPATIAL_RINGS + 1


def test_frame_stats_against_their_definitions():
    z = torch.randn(2, 3, 5, 6, 7)
    s = frame_stats(z)
    a = z.numpy().astype(np.float64)
    assert np.allclose(s["frame_mean"], a.mean(axis=(1, 3, 4)), atol=1e-6)
    assert np.allclose(s["frame_change"], np.mean(np.diff(a, axis=2) ** 2, axis=(1, 3, 4)), atol=1e-6)
    assert np.allclose(s["row_grad"], np.abs(np.diff(a, axis=3)).mean(axis=(1, 2, 4)), atol=1e-6)
    assert np.allclose(s["col_grad"], np.abs(np.diff(a, axis=4)).mean(axis=(1, 2, 3)), atol=1e-6)
    assert [v.shape[1] for v in s.values()] == [5, 4, 5, 6]


def test_rows_carry_the_spectra_from_the_same_fft():
    """A row's spectrum is that of its own latent, whether rows are made per sample or for the batch."""
    z = torch.randn(3, 4, 8, 16, 16)
    _, rows = latent_rows(z)
    for i, row in enumerate(rows):
        alone = spectrum_of_half(half_power(z[i : i + 1]), (8, 16, 16))[0]
        assert torch.allclose(torch.tensor(row["spectrum"], dtype=torch.float64), alone, rtol=1e-6, equal_nan=True)
        assert len(row["frame_change"]) == 7 and len(row["col_grad"]) == 15
    _, (whole,) = latent_rows(z, per_sample=False)
    mean = torch.stack([torch.tensor(r["spectrum"], dtype=torch.float64) for r in rows]).mean(0)
    assert torch.allclose(torch.tensor(whole["spectrum"], dtype=torch.float64), mean, rtol=1e-6, equal_nan=True)


@pytest.mark.parametrize("shape", [(8, 16, 16), (9, 12, 15)])
def test_the_joint_band_and_cell_sums_equal_the_separate_ones(shape):
    """A dataset row's bands and spectrum come from one grouped sum over (band × cell); the same numbers as the
    separate sums (bands from the full per-bin power, the spectrum from its own grouped sum), odd sizes too."""
    from freqscope.bands import band_power, make_bands

    z = torch.randn(2, 3, *shape, generator=torch.Generator().manual_seed(1))
    bands, rows = latent_rows(z, edges=(0.2, 0.5))
    assert bands is make_bands(shape, (0.2, 0.5))
    for i, row in enumerate(rows):
        sep = band_power(z[i : i + 1].double(), bands)
        assert torch.allclose(torch.tensor(row["band_power"], dtype=torch.float64), sep, rtol=1e-6)
        alone = spectrum_of_half(half_power(z[i : i + 1]), shape)[0]
        assert torch.allclose(torch.tensor(row["spectrum"], dtype=torch.float64), alone, rtol=1e-9, equal_nan=True)
    _, radial = latent_rows(z, edges=(0.2, 0.5), radial=True)  # the other path: band means of the per-bin power
    for row, other in zip(rows, radial):
        assert np.allclose(row["band_power"], other["band_power"], rtol=1e-9)
        assert np.allclose(row["spectrum"], other["spectrum"], rtol=1e-12, equal_nan=True)


def test_a_dataset_run_stores_the_spectra_it_computed(bikes, tmp_path):
    """A real clip's row in the results store holds the spectra of its latent, as the in-memory analysis gives them."""
    from freqscope.dataset import run_dataset
    from freqscope.encode import load_encoder
    from freqscope.results import read_results
    from freqscope.video import read_video

    read = {"frames": 8, "size": 32}
    run_dataset([bikes], load_encoder(), read=read, results=tmp_path / "r.parquet")
    (row,) = read_results(tmp_path / "r.parquet").to_pylist()
    x, _ = read_video(bikes, **read)
    _, (mem,) = latent_rows(x)
    for key in ("spectrum", "frame_mean", "frame_change", "row_grad", "col_grad"):
        assert np.allclose(row[key], mem[key], equal_nan=True, rtol=1e-12), key
    assert len(row["spectrum"]) == (8 // 2 + 1) * SPATIAL_RINGS


def test_rings_agree_with_the_real_radius_off_their_edges():
    """The integer rule is ⌊32·r/√0.5⌋ of the real radius wherever r is not within rounding of a ring edge."""
    from freqscope.spectra import ring_index

    for H, W in [(64, 64), (15, 17), (96, 160)]:
        r = np.hypot(*np.meshgrid(np.fft.fftfreq(H), np.fft.fftfreq(W), indexing="ij")) / MAX_RADIUS * SPATIAL_RINGS
        off_edge = np.abs(r - np.round(r)) > 1e-9
        want = np.minimum(np.floor(r), SPATIAL_RINGS - 1)
        assert (ring_index(H, W).numpy()[off_edge] == want[off_edge]).all()
        assert (~off_edge).sum() > 0 or H != W  # square grids have bins on ring edges: the case this rule settles
