"""``freqscope compare``'s statistics (issue 18): closed forms on real clips (per-frame gain noise, a circular
temporal box filter, gain / white noise / a one-frame shift for pairs), exact zeros for identical inputs,
bootstrap coverage and its standard error, and one-line errors for bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from freqscope.bands import DEFAULT_EDGES, band_sums_of_half, bin_power, half_power, make_bands
from freqscope.compare import REGIONS, compare_pairs, compare_sets
from freqscope.rows import latent_rows
from freqscope.spectra import SPATIAL_RINGS, cell_labels, ring_index, spectrum_of_half
from freqscope.video import read_video

T, SIZE = 32, (64, 64)  # frames per clip; every clip the same (h, w) so that the sets share one grid
#: Windows of the two real clips: (clip, read_video options). bunny has 132 frames, so start ≤ 3 s.
WINDOWS = [("bikes", {"start": s}) for s in (0.0, 2.0, 4.0, 6.0)] + [("bikes", {"start": 1.0, "stride": 2})]
WINDOWS += [("bunny", {"start": s}) for s in (0.0, 1.5, 3.0)]


def spectra64(x: torch.Tensor) -> np.ndarray:
    """The rows' compact spectra (:mod:`freqscope.spectra`'s definition) of ``x (b, c, t, h, w)``: ``(b, n_cells)``,
    computed here independently in float64 from the full ``fftn``: mean ``|F z|²`` per (|f_t| = k/T, ring) cell,
    over channels. The ring is :func:`freqscope.spectra.ring_index` (exact, in integers: bins on the diagonal of a
    square grid fall exactly on a ring edge, where float rounding would put some in either ring)."""
    p = torch.fft.fftn(x.double(), dim=(-3, -2, -1), norm="ortho").abs().square().mean(1)  # (b, t, h, w)
    b, t, h, w = p.shape
    kt = (torch.fft.fftfreq(t, dtype=torch.float64).abs() * t).round().long()
    cell = (kt[:, None, None] * SPATIAL_RINGS + ring_index(h, w)[None]).flatten()  # (t·h·w,)
    n = (t // 2 + 1) * SPATIAL_RINGS
    sums = torch.zeros(b, n, dtype=torch.float64).index_add_(1, cell, p.reshape(b, -1))
    return (sums / torch.bincount(cell, minlength=n)).numpy()  # NaN in an empty cell


def rows64(x: torch.Tensor, edges: tuple[float, ...] = DEFAULT_EDGES) -> list[dict]:
    """One row per clip of ``x (b, c, t, h, w)`` with the fields compare_sets reads, as
    :func:`freqscope.rows.latent_rows` makes them but from one float64 FFT (closed forms to 1e-6; the first test
    checks them against latent_rows and against :func:`spectra64`)."""
    b, c, t, h, w = x.shape
    bands = make_bands((t, h, w), edges)
    p = half_power(x.double())  # (b, c, t, h, w//2 + 1) float64
    with np.errstate(invalid="ignore"):
        power = (band_sums_of_half(p, bands).mean(1) / torch.tensor([bb.n_bins for bb in bands.bands])).tolist()
    spectra = spectrum_of_half(p, (t, h, w)).tolist()
    geometry = {"latent_shape": [1, c, t, h, w], "band_names": bands.names, "n_bins": [bb.n_bins for bb in bands.bands]}
    return [{**geometry, "band_power": pw, "spectrum": sp} for pw, sp in zip(power, spectra)]


@pytest.fixture(scope="module")
def clips(bikes, bunny) -> list[torch.Tensor]:
    paths = {"bikes": bikes, "bunny": bunny}
    return [read_video(paths[name], frames=T, size=SIZE, **opts)[0].double() for name, opts in WINDOWS]


@pytest.fixture(scope="module")
def real_rows(clips) -> list[dict]:
    return rows64(torch.cat(clips))


def circular_box(x: torch.Tensor, k: int, dim: int) -> torch.Tensor:
    """Circular ``k``-tap moving mean along ``dim`` (centred for odd k)."""
    return sum(torch.roll(x, s, dims=dim) for s in range(-(k // 2), k - k // 2)) / k


# ---- the rows' spectra ---------------------------------------------------------------------------------------


def test_rows_here_match_latent_rows_and_parseval(clips, real_rows):
    """The float64 rows used here are latent_rows' rows (float32 there); their spectrum is the one computed
    independently from the full FFT; and ``Σ n_{k,j} S_{k,j} = Σ z² / c`` with the cell bins compare_sets uses."""
    x = clips[0]
    _, (row,) = latent_rows(x.float())
    assert {k: row[k] for k in ("latent_shape", "band_names", "n_bins")} == {
        k: real_rows[0][k] for k in ("latent_shape", "band_names", "n_bins")
    }
    np.testing.assert_allclose(real_rows[0]["band_power"], row["band_power"], rtol=1e-5)
    ours, theirs, full = np.array(real_rows[0]["spectrum"]), np.array(row["spectrum"]), spectra64(x)[0]
    assert np.array_equal(np.isnan(ours), np.isnan(theirs)) and np.array_equal(np.isnan(ours), np.isnan(full))
    np.testing.assert_allclose(ours[~np.isnan(ours)], theirs[~np.isnan(theirs)], rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(ours[~np.isnan(ours)], full[~np.isnan(full)], rtol=1e-10)
    bins = cell_labels((T, *SIZE))[2].numpy()
    energy = float((x**2).sum()) / x.shape[1]
    assert math.isclose(np.nansum(bins * ours), energy, rel_tol=1e-12)  # Parseval
    cmp = compare_sets(real_rows[:2], real_rows[2:4], n_boot=10)
    assert np.array_equal(cmp.cell_bins.ravel(), bins)


# ---- sets: closed forms ---------------------------------------------------------------------------------------


def test_identical_sets_give_exact_zeros(real_rows):
    cmp = compare_sets(real_rows, [dict(r) for r in real_rows], n_boot=200)
    assert all(b["delta_db"] == 0 and b["ci_db"] == [0, 0] for b in cmp.bands)
    assert cmp.temporal["delta_db"] == [0.0] * (T // 2 + 1) and all(c == [0, 0] for c in cmp.temporal["ci_db"])
    finite = np.isfinite(cmp.heatmap_db)
    assert finite.sum() > 100 and (cmp.heatmap_db[finite] == 0).all() and (cmp.heatmap_ci_db[:, finite] == 0).all()
    assert cmp.distance_db == 0 and cmp.distance_ci_db == [0, 0]
    assert cmp.findings == [] and cmp.n_clips == {"real": len(real_rows), "generated": len(real_rows)}


def flicker(clips, real_rows, sigma: float, draws: int) -> tuple[list[dict], np.ndarray]:
    """Set B: every clip with each frame scaled by ``1 ± σ n_t`` for ``draws`` antithetic pairs of ``n ~ N(0, 1)^T``;
    and each pair's mean excess power per row of the spectrum ``(clips·draws, n_t)``."""
    rng = np.random.default_rng(1)
    bins = cell_labels((T, *SIZE))[2].numpy().reshape(T // 2 + 1, SPATIAL_RINGS)
    pooled = lambda s: np.nansum(bins * np.reshape(s, (-1, *bins.shape)), -1) / bins.sum(1)  # noqa: E731
    gen_rows, excess = [], []
    for x, row in zip(clips, real_rows):
        n = torch.from_numpy(rng.standard_normal((draws, 1, T, 1, 1)))
        rows = rows64(torch.cat([x * (1 + sigma * n), x * (1 - sigma * n)]))  # n, then −n
        gen_rows += rows
        p = pooled([r["spectrum"] for r in rows])  # (2·draws, n_t)
        excess += list((p[:draws] + p[draws:]) / 2 - pooled(row["spectrum"]))
    return gen_rows, np.array(excess)


def test_per_frame_gain_noise_adds_white_temporal_power(clips, real_rows):
    """Flicker: each frame of each clip scaled by ``1 + σ n_t``, ``n_t`` iid N(0, 1), σ = 0.05.

    With ``X_t(s)`` the orthonormal 2D FFT of frame t, the 3D FFT is ``X(k, s) = T^{-1/2} Σ_t X_t(s) e^{-2πikt/T}``
    and the added term ``Y(k, s) = σ T^{-1/2} Σ_t n_t X_t(s) e^{-2πikt/T}``. ``E[n_t n_u] = δ_tu`` gives
    ``E|Y(k, s)|² = σ² T^{-1} Σ_t |X_t(s)|²``, the same at every k (white in time), and ``E[n_t] = 0`` removes
    the cross term ``2 Re X conj Y`` on average. Averaged over all the spatial bins of a row of the spectrum
    (Parseval over (h, w)): ``ΔP(f_t) = σ² ⟨z²⟩``, the clip's mean square; over a set, its mean over clips. So
    ``Δ(f_t) = 10·log10(1 + σ² ⟨z²⟩_A / P_A(f_t))``: largest where the real clips hold little power (high f_t).

    Draws come in antithetic pairs ``(n, −n)``: the cross term, linear in n, cancels exactly in the set mean
    (alone it is 10× the effect at σ = 0.05 on these moving clips), the quadratic term is the same for both.
    Tolerance: each pair's excess in a row is ``σ²⟨z²⟩·E`` with ``E`` about ``Exp(1)`` (|DFT of white noise|²,
    for nearly static frames), so its spread is of the order of the value; the standard error is estimated from
    the 8 clips × 16 pairs (6–10 % of the prediction here) and the check allows 4 of them per row, after
    requiring it to be under 15 % of the prediction so that the check can fail (a factor 2 anywhere would).
    At σ = 0.05 the region f_t ≥ 0.25 gains only ~0.2 dB over these clips' own motion: no finding.
    """
    sigma = 0.05
    gen_rows, excess = flicker(clips, real_rows, sigma, draws=16)
    cmp = compare_sets(real_rows, gen_rows, n_boot=500)
    predicted = sigma**2 * np.mean([float((x**2).mean()) for x in clips])  # σ² ⟨z²⟩_A
    P_A = cmp.temporal_power[0]  # (n_t,)
    measured = cmp.temporal_power[1] - P_A
    se = excess.std(axis=0, ddof=1) / math.sqrt(len(excess))
    assert (se < 0.15 * predicted).all()
    assert (np.abs(measured - predicted) < 4 * se).all(), (measured, predicted, se)
    # Δ dB at the high rows: the same check through 10·log10 (the SE scaled by its derivative).
    high = cmp.f_t >= 0.25
    delta = np.array(cmp.temporal["delta_db"])
    expected_db = 10 * np.log10(1 + predicted / P_A)
    tol_db = 10 / math.log(10) * 4 * se / (P_A + predicted)
    assert (np.abs(delta - expected_db)[high] < tol_db[high]).all()
    assert cmp.findings == [], cmp.findings
    print(f"\nflicker σ={sigma}: ΔP at f_t ≥ 0.25 measured {np.round(measured[high], 6)} vs σ²⟨z²⟩ = {predicted:.6f}; "
          f"Δ dB measured {np.round(delta[high], 3)} vs predicted {np.round(expected_db[high], 3)}")


def test_strong_flicker_is_found(clips, real_rows):
    """σ = 0.5: the same closed form predicts ~7 dB more power at f_t ≥ 0.25 (bin-weighted over the region), far
    beyond the spread of these 8 real clips' own motion: one finding, "flicker", and no change of level."""
    sigma = 0.5
    gen_rows, _ = flicker(clips, real_rows, sigma, draws=4)
    cmp = compare_sets(real_rows, gen_rows, n_boot=500)
    high = cmp.f_t >= 0.25
    P_A, n_high = cmp.temporal_power[0][high], cmp.cell_bins.sum(1)[high]
    predicted = sigma**2 * np.mean([float((x**2).mean()) for x in clips])
    region_db = 10 * math.log10(((P_A + predicted) * n_high).sum() / (P_A * n_high).sum())
    (region,) = [r for r in cmp.regions if r["where"] == "f_t ≥ 0.25 cycles/frame"]
    assert abs(region["delta_db"] - region_db) < 0.5, (region, region_db)  # 4 pairs: ~10 % in power
    assert [f.split(": ")[-1] for f in cmp.findings] == ["flicker"], cmp.findings
    print(f"\nflicker σ={sigma}: region Δ {region['delta_db']:.2f} dB, CI {np.round(region['ci_db'], 2)}, "
          f"predicted {region_db:.2f} dB; findings {cmp.findings}")


def test_circular_temporal_box_filter_follows_its_transfer_function(real_rows, clips):
    """A circular k-tap mean along t multiplies ``F z`` at ``f_t`` by ``H(f) = sin(πkf) / (k sin(πf))`` (the DFT
    of a circular convolution is exact), so every cell of row f_t scales by ``|H(f_t)|²`` in every clip: Δ per row
    and per cell is ``10·log10 |H|²``, and the distance ``√(Σ n (10·log10 |H|²)² / Σ n)`` over the cells."""
    k = 3
    gen_rows = rows64(circular_box(torch.cat(clips), k, dim=2))
    cmp = compare_sets(real_rows, gen_rows, n_boot=200)
    f = cmp.f_t
    with np.errstate(invalid="ignore", divide="ignore"):
        H2 = np.where(f == 0, 1.0, (np.sin(np.pi * k * f) / (k * np.sin(np.pi * f))) ** 2)
    expected = 10 * np.log10(H2)
    delta, ci = np.array(cmp.temporal["delta_db"]), np.array(cmp.temporal["ci_db"])
    assert np.abs(delta - expected).max() < 1e-6 and ((ci[:, 0] < delta) & (delta < ci[:, 1])).all()
    cells = np.isfinite(cmp.heatmap_db)
    assert np.abs(cmp.heatmap_db - expected[:, None])[cells].max() < 1e-6
    n = cmp.cell_bins[cells]
    d_expected = math.sqrt((n * np.broadcast_to(expected[:, None], cells.shape)[cells] ** 2).sum() / n.sum())
    assert abs(cmp.distance_db - d_expected) < 1e-6
    assert any(f.endswith(": over-smoothed motion") for f in cmp.findings), cmp.findings
    err = np.abs(delta - expected).max()
    print(f"\nbox k={k}: max |Δ − 10·log10|H|²| = {err:.2e} dB; D = {cmp.distance_db:.4f} dB vs {d_expected:.4f}")


def test_spatial_blur_is_found_as_blur_and_a_gain_as_a_level_change(real_rows, clips):
    blurred = compare_sets(real_rows, rows64(circular_box(circular_box(torch.cat(clips), 3, 3), 3, 4)), n_boot=300)
    assert any(f.endswith(": blur") for f in blurred.findings), blurred.findings
    assert not any("flicker" in f or "motion" in f for f in blurred.findings), blurred.findings
    # A gain of 2 is +6.02 dB everywhere: a change of level, not flicker or noise.
    louder = compare_sets(real_rows, rows64(2 * torch.cat(clips)), n_boot=300)
    assert [f.split(": ")[-1] for f in louder.findings] == ["more energy overall"]
    assert all(abs(b["delta_db"] - 20 * math.log10(2)) < 1e-4 for b in louder.bands)  # rows' float32 band powers


def test_band_bounds_from_edges_or_from_names(real_rows):
    by_name = compare_sets(real_rows[:3], real_rows[3:], n_boot=50)
    by_edges = compare_sets(real_rows[:3], real_rows[3:], n_boot=50, edges=(0.125, 0.25, 0.5))
    bands = make_bands((T, *SIZE), (0.125, 0.25, 0.5))
    assert [(b["lo"], b["hi"]) for b in by_edges.bands] == [(b.lo, b.hi) for b in bands.bands]
    parsed = [v for b in by_name.bands for v in (b["lo"], b["hi"])]
    assert parsed == pytest.approx([v for b in bands.bands for v in (b.lo, b.hi)], rel=1e-3)  # d_max as named
    with pytest.raises(ValueError, match="`edges`"):
        compare_sets(real_rows[:3], real_rows[3:], edges=(0.1, 0.3))


# ---- sets: the bootstrap ----------------------------------------------------------------------------------------


def synthetic_rows(n: int, scale: float, rng: np.random.Generator, shape=(1, 4, 16, 64, 64)) -> list[dict]:
    """Rows of clips whose power is ``a² u`` in every band and cell: ``a² ~ Gamma(2, scale)`` per clip (the
    clip's level), ``u ~ Gamma(4, 1/4)`` per number (mean 1). So ``E P = 2·scale`` everywhere, and the true Δ
    of two such sets is ``10·log10(scale_B / scale_A)`` in every band, row and cell."""
    _, _, t, h, w = shape
    bands = make_bands((t, h, w))
    full = np.array([b.n_bins > 0 for b in bands.bands])
    cells = cell_labels((t, h, w))[2].numpy() > 0
    a2 = rng.gamma(2.0, scale, size=(n, 1))
    P = np.where(full, a2 * rng.gamma(4.0, 0.25, size=(n, len(full))), np.nan)
    S = np.where(cells, a2 * rng.gamma(4.0, 0.25, size=(n, cells.size)), np.nan)
    geometry = {"latent_shape": list(shape), "band_names": bands.names, "n_bins": [b.n_bins for b in bands.bands]}
    return [{**geometry, "band_power": p.tolist(), "spectrum": s.tolist()} for p, s in zip(P, S)]


def test_bootstrap_intervals_cover_the_truth():
    """200 pairs of sets (60 clips each) from known distributions: the 95 % intervals of a band, a row of the
    temporal spectrum and a region should each cover the true Δ in about 95 % of them. The percentile interval
    of a ratio of skewed (gamma) means undercovers by a few points at this n (0.90–0.95 over seeds here), and
    200 trials have a binomial SE of 1.6 %: the check asks for [0.88, 0.99]. Resampling one set only, or the
    wrong count per resample, gives about 0.8 (0.78–0.83 measured) or less."""
    rng = np.random.default_rng(7)
    truth = 10 * math.log10(1.5)
    hits = np.zeros(3)
    trials = 200
    for i in range(trials):
        a = synthetic_rows(60, 1.0, rng, shape=(1, 4, 4, 16, 16))
        b = synthetic_rows(60, 1.5, rng, shape=(1, 4, 4, 16, 16))
        cmp = compare_sets(a, b, n_boot=400, seed=i)
        for j, (lo, hi) in enumerate([cmp.bands[-1]["ci_db"], cmp.temporal["ci_db"][-1], cmp.regions[0]["ci_db"]]):
            hits[j] += lo <= truth <= hi
    coverage = hits / trials
    print(f"coverage (band, temporal row, all frequencies): {coverage}")
    assert ((coverage >= 0.88) & (coverage <= 0.99)).all(), coverage


def test_vectorised_bootstrap_matches_the_standard_error_on_2000_clips():
    """2,000 × 2,000 rows (T = 16 → 9 × 32 cells, 5 bands): the interval's half-width is 1.96 delta-method standard
    errors, ``(10/ln 10)·√(s_A²/(n m_A²) + s_B²/(n m_B²))``, to the precision of 1000 resamples (±~5 %); the same
    seed gives the same numbers and another seed other ones."""
    rng = np.random.default_rng(3)
    a, b = synthetic_rows(2000, 1.0, rng), synthetic_rows(2000, 1.2, rng)
    cmp = compare_sets(a, b)
    again = compare_sets(a, b)
    other = compare_sets(a, b, seed=1)
    assert cmp.bands == again.bands and cmp.distance_ci_db == again.distance_ci_db
    assert cmp.bands[-1]["ci_db"] != other.bands[-1]["ci_db"]
    for i, band in enumerate(cmp.bands[1:], start=1):
        pa, pb = (np.array([r["band_power"][i] for r in s]) for s in (a, b))
        rel_var = pa.var(ddof=1) / pa.mean() ** 2 + pb.var(ddof=1) / pb.mean() ** 2  # both sets of 2000
        se = 10 / math.log(10) * math.sqrt(rel_var / 2000)
        lo, hi = band["ci_db"]
        assert abs((hi - lo) / 2 / (1.96 * se) - 1) < 0.12, (band["name"], (hi - lo) / 2, 1.96 * se)
        assert lo < 10 * math.log10(1.2) < hi or abs(band["delta_db"] - 10 * math.log10(1.2)) < 4 * se


def test_a_set_of_one_clip_leaves_the_intervals_undefined(real_rows):
    cmp = compare_sets(real_rows[:1], real_rows[1:3])
    assert math.isfinite(cmp.bands[-1]["delta_db"]) and all(math.isnan(v) for v in cmp.bands[-1]["ci_db"])
    assert math.isnan(cmp.distance_ci_db[0]) and cmp.findings == [] and "one clip" in cmp.notes[0]


# ---- sets: bad input --------------------------------------------------------------------------------------------


def one_line_error(match: str, fn, *args, **kw) -> str:
    with pytest.raises(ValueError, match=match) as e:
        fn(*args, **kw)
    assert "\n" not in str(e.value)
    return str(e.value)


def test_sets_refuse_bad_input_in_one_line(real_rows, clips):
    (other,) = rows64(clips[0][:, :, :16])  # 16 frames
    one_line_error(r"the real clips have latent shape .* but the generated clips", compare_sets, real_rows, [other] * 2)
    one_line_error(r"the generated set mixes latent shapes", compare_sets, real_rows, [real_rows[0], other])
    one_line_error(r"the real set holds no clip", compare_sets, [], real_rows)
    one_line_error(r"the generated set holds no clip", compare_sets, real_rows, [])
    silent = [{**r, "band_power": [0.0] + r["band_power"][1:]} for r in real_rows]
    msg = one_line_error(r"no power in band DC", compare_sets, silent, real_rows)
    assert "undefined" in msg
    one_line_error(r"no compact spectrum", compare_sets, real_rows, [{**r, "spectrum": None} for r in real_rows])
    bad = [{**r, "band_power": [math.nan] + r["band_power"][1:]} for r in real_rows]
    one_line_error(r"row 0 of the generated set holds NaN", compare_sets, real_rows, bad)
    one_line_error(r"ci=95", compare_sets, real_rows, real_rows, ci=95)


# ---- pairs --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ref(clips) -> torch.Tensor:
    return clips[0].float()  # (1, 3, 32, 64, 64) in [-1, 1]


def test_pairs_gain_is_exact_and_keeps_phase(ref):
    g = 0.7
    cmp = compare_pairs(ref, g * ref)
    for band in cmp.bands:
        assert abs(band["gain_db"] - 20 * math.log10(g)) < 1e-5 and abs(band["coherence"] - 1) < 1e-6
    mse = (1 - g) ** 2 * float((ref.double() ** 2).mean())
    assert math.isclose(cmp.mse, mse, rel_tol=1e-5) and abs(cmp.psnr_db - 10 * math.log10(4 / mse)) < 1e-4
    assert math.isclose(sum(b["mse"] for b in cmp.bands), cmp.mse, rel_tol=1e-5)  # Parseval: bands share the MSE


def test_pairs_white_noise_gives_its_psnr_and_gain(ref):
    """``test = ref + N(0, s²)``: ``MSE → s²`` (SE ``s²√(2/N)``, 0.2 % at N = 393 216: 0.05 dB is > 5 SE), so
    ``PSNR → 10·log10(4/s²)``; with the orthonormal FFT the noise has power s² in every bin, so
    ``gain_b → 10·log10(1 + s²/P_b)`` and ``MSE_b → s² n_b / (t·h·w)``. Per band the noise sum over ``n_b·c`` bins
    (mirror pairs equal: ``n_b·c/2`` independent) and the cross term ``2 Re X N*`` give a linear SD of
    ``√((2 P_b s² + s⁴)/(n_b c/2))``; the check allows 5 of them."""
    s = 0.05
    noise = s * torch.randn(ref.shape, generator=torch.Generator().manual_seed(0))
    cmp = compare_pairs(ref, ref + noise)
    assert abs(cmp.psnr_db - 10 * math.log10(4 / s**2)) < 0.05
    P = bin_power(ref.double())  # (t, h, w)
    bands = make_bands(tuple(ref.shape[-3:]))
    c, N = ref.shape[1], math.prod(ref.shape[-3:])
    for i, band in enumerate(cmp.bands):
        n = bands.bands[i].n_bins
        P_b = float(P[bands.labels == i].mean())
        sd = math.sqrt((2 * P_b * s**2 + s**4) / (n * c / 2))
        assert abs(10 ** (band["gain_db"] / 10) - (1 + s**2 / P_b)) < 5 * sd / P_b, band
        if n > 100:
            assert abs(band["mse"] / (s**2 * n / N) - 1) < 5 / math.sqrt(n * c / 2), band
    print(f"noise s={s}: PSNR {cmp.psnr_db:.3f} dB vs 10·log10(4/s²) = {10 * math.log10(4 / s**2):.3f} dB; gains "
          f"{[round(b['gain_db'], 4) for b in cmp.bands]}")


@pytest.mark.parametrize("decomposition, edges", [("temporal", (0.25, 0.5)), ("spatiotemporal", (0.125, 0.25, 0.5))])
def test_pairs_one_frame_shift_loses_coherence_at_high_temporal_frequency(ref, decomposition, edges):
    """A circular shift by one frame multiplies ``X(f_t)`` by ``e^{-2πi f_t}``: the power is unchanged (gain 0)
    and ``Σ X_r conj X_t = Σ cos(2π f_t) |X_r|²`` (the band is symmetric), so the coherence of band b is
    ``(Σ_b cos(2π f_t) P)² / (Σ_b P)²`` with P the reference's per-bin power: 1 at f_t = 0, < 1 above."""
    test = torch.roll(ref, 1, dims=2)
    cmp = compare_pairs(ref, test, edges=edges, decomposition=decomposition)
    P = bin_power(ref.double())  # (t, h, w)
    cos = torch.cos(2 * math.pi * torch.fft.fftfreq(T, dtype=torch.float64))[:, None, None].expand_as(P)
    bands = make_bands(tuple(ref.shape[-3:]), edges, decomposition=decomposition)
    for i, band in enumerate(cmp.bands):
        m = bands.labels == i
        expected = float((cos[m] * P[m]).sum() ** 2 / P[m].sum() ** 2)
        assert abs(band["gain_db"]) < 1e-5 and abs(band["coherence"] - expected) < 1e-6, (band, expected)
    if decomposition == "temporal":
        assert cmp.bands[0]["coherence"] == pytest.approx(1, abs=1e-6) and cmp.bands[-1]["coherence"] < 0.5
    d = (test.double() - ref.double())  # the accumulator sums a frame in float32 (relative error ~1e-7), then float64
    assert np.allclose(cmp.frame_error, d.square().mean(dim=(0, 1, 3, 4)).numpy(), rtol=1e-6, atol=0)
    assert len(cmp.row_error) == ref.shape[3] and len(cmp.col_error) == ref.shape[4]


def test_identical_pairs_and_silent_references_never_crash(ref):
    same = compare_pairs(ref, ref.clone())
    assert all(b["gain_db"] == 0 and b["coherence"] == 1 and b["psnr_db"] == math.inf for b in same.bands)
    assert same.psnr_db == math.inf and same.frame_psnr_db == [math.inf] * T and same.notes == []
    silent = compare_pairs(torch.zeros_like(ref), ref)
    assert all(math.isnan(b["gain_db"]) and math.isnan(b["coherence"]) for b in silent.bands)
    assert len(silent.notes) == len(silent.bands) and "no energy in `reference`" in silent.notes[0]
    assert math.isfinite(silent.psnr_db)


def test_pairs_refuse_bad_input_in_one_line(ref):
    one_line_error(r"`reference` .* and `test` .* must be the same", compare_pairs, ref, ref[:, :, :16])
    one_line_error(r"`reference` .* and `test` .* must be the same", compare_pairs, ref[0], ref[0])
    one_line_error(r"peak=0", compare_pairs, ref, ref, peak=0)
    bad = ref.clone()
    bad[0, 0, 0, 0, 0] = math.nan
    one_line_error(r"`test` holds NaN/Inf", compare_pairs, ref, bad)


def test_regions_are_defined_once():
    assert REGIONS[0].where == "all frequencies" and len({r.where for r in REGIONS}) == len(REGIONS)


def test_pairs_added_one_at_a_time_give_the_batch_result():
    """The job streams pairs through a PairAccumulator (one in memory): the same numbers as one batch."""
    from freqscope.compare import PairAccumulator

    g = torch.Generator().manual_seed(3)
    ref = torch.rand(3, 3, 8, 16, 24, generator=g) * 2 - 1
    test = 0.8 * ref + 0.05 * torch.randn(ref.shape, generator=g)
    whole = compare_pairs(ref, test)
    acc = PairAccumulator()
    for i in range(3):
        acc.add(ref[i : i + 1], test[i : i + 1])
    one = acc.result()
    assert one.n_pairs == 3 and one.bands[2]["gain_db"] == pytest.approx(whole.bands[2]["gain_db"], abs=1e-9)
    for key in ("frame_error", "row_error", "col_error"):
        assert np.allclose(getattr(one, key), getattr(whole, key), rtol=1e-12), key
    assert [b["coherence"] for b in one.bands] == pytest.approx([b["coherence"] for b in whole.bands], abs=1e-9)
    with pytest.raises(ValueError, match="after pairs of"):
        acc.add(ref[:1, :, :4], test[:1, :, :4])


@pytest.mark.parametrize("T", [8, 9])
def test_pairs_temporal_power_is_the_compact_spectrum_pooled_over_rings(T):
    """The pairs' temporal power comes from the FFTs of the band sums (no second FFT): per ``|f_t|`` it is the
    compact spectrum's row pooled by its bin counts, and the full spectrum's mean over those bins, summed over pairs."""
    from freqscope.compare import PairAccumulator

    g = torch.Generator().manual_seed(4)
    ref = torch.rand(2, 3, T, 16, 20, generator=g) * 2 - 1
    test = ref.roll(1, dims=2)
    acc = PairAccumulator()
    for i in range(2):
        acc.add(ref[i : i + 1], test[i : i + 1])
    counts = cell_labels((T, 16, 20))[2].reshape(T // 2 + 1, -1)
    for j, x in enumerate((ref, test)):
        expect = torch.zeros(T // 2 + 1, dtype=torch.float64)
        for i in range(2):
            cells = spectrum_of_half(half_power(x[i : i + 1]), (T, 16, 20))[0].reshape(counts.shape)
            expect += (torch.nan_to_num(cells) * counts).sum(1) / counts.sum(1)
        full = bin_power(x.double())  # (t, h, w): mean over pairs and channels
        k = torch.fft.fftfreq(T, d=1.0 / T).round().abs().long()
        by_k = torch.stack([full[k == kk].mean() for kk in range(T // 2 + 1)]) * 2
        assert torch.allclose(acc.power_t[j], expect, rtol=1e-9)
        assert torch.allclose(acc.power_t[j], by_k, rtol=1e-5)
