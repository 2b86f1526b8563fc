"""One clip's analysis as one row: the band powers of its latent, the bins behind them, energy shares, shapes.

Every ``snr`` run, one clip, several or a whole dataset, turns each latent into a row with
:func:`latent_rows` (the one FFT per latent that every number comes from), keeps the rows in memory or in
the results store (:mod:`freqscope.results`, whose columns they are), and summarises them with
:func:`freqscope.aggregate.aggregate`. The SNR under any schedule follows from the band powers, so a row
depends on no schedule. :func:`analysis_settings` is everything that changes a row's numbers.
"""

from __future__ import annotations

import inspect
import json
import warnings
from functools import lru_cache
from typing import Any

import torch

from .bands import (
    DEFAULT_EDGES,
    BandSet,
    band_mean,
    bin_power,
    half_power,
    make_bands,
    radial_profile,
)
from .encode import PixelEncoder
from .results import settings_hash
from .snr import energy_fraction
from .spectra import cell_labels, frame_stats, spectrum_of_half
from .video import SPEED_ONLY, read_video

__all__ = ["latent_rows", "check_finite_power", "analysis_settings", "source_settings", "band_settings"]
__all__ += ["read_options", "settings_columns"]

#: Version of the analysis settings a row is keyed by (rows of another version are analysed again).
SETTINGS_VERSION = 1


def check_finite_power(power: torch.Tensor, bands: BandSet, what: str = "z0") -> None:
    """Raise if a non-empty band's power ``(…, n_bands)`` is NaN/Inf: the latent held NaN/Inf values
    (checked on a few numbers instead of every pixel; the FFT spreads a NaN or Inf over the bands)."""
    full = torch.tensor([b.n_bins > 0 for b in bands.bands], device=power.device)
    if not torch.isfinite(power[..., full]).all():
        raise ValueError(f"{what} holds NaN/Inf values; check the input frames or the encoder (try `dtype` float32)")


def _warn_empty(bands: BandSet) -> None:
    empty = [b.name for b in bands.bands if b.n_bins == 0]
    if empty:
        warnings.warn(
            f"band(s) {', '.join(empty)} hold no frequency bin of the {'×'.join(map(str, bands.shape))} "
            "latent grid and are reported as empty; use coarser `edges` or more frames/pixels",
            stacklevel=3,
        )


def latent_rows(
    z: torch.Tensor,
    *,
    edges: tuple[float, ...] = DEFAULT_EDGES,
    decomposition: str = "spatiotemporal",
    time_scale: float = 1.0,
    radial: bool = False,
    per_sample: bool = True,
    what: str = "z0",
) -> tuple[BandSet, list[dict[str, Any]]]:
    """The bands of the latent grid of ``z`` ``(b, c, t, h, w)`` and one row per sample (``per_sample``), or
    one row for the whole batch (powers averaged over it): ``latent_shape``, ``band_names``, ``n_bins``,
    ``band_power`` (mean ``|F z|²`` per bin of each band, float64), ``energy_fraction`` (sums to 1), the compact
    spectra of :mod:`freqscope.spectra` (``spectrum``, ``frame_mean``, ``frame_change``, ``row_grad``,
    ``col_grad``) and, with ``radial``, the radially averaged spectrum (``radius``, ``radial_power``). Raises if a
    band's power is NaN/Inf (the latent held NaN/Inf values).

    >>> bands, rows = latent_rows(torch.randn(2, 4, 8, 32, 32))
    >>> len(rows), rows[0]["latent_shape"], rows[0]["band_names"][0], round(sum(rows[0]["energy_fraction"]), 6)
    (2, [1, 4, 8, 32, 32], 'DC', 1.0)
    """
    if z.ndim != 5:
        raise ValueError(f"{what} must be (b, c, t, h, w), got shape {tuple(z.shape)}")
    z = z.float()
    T, H, W = z.shape[-3:]
    bands = make_bands((T, H, W), edges, decomposition=decomposition, time_scale=time_scale, device=z.device)
    _warn_empty(bands)
    geometry = {"band_names": bands.names, "n_bins": [b.n_bins for b in bands.bands]}
    parts = [z[i : i + 1] for i in range(z.shape[0])] if per_sample else [z]
    p = half_power(z)  # the one FFT: bands and spectra come from it
    stats = frame_stats(z)  # {name: (b, n)}
    if per_sample and not radial:  # a dataset run's path: band and spectrum sums in one pass over the bins
        band_sums, cell_sums = _joint_sums(p, (T, H, W), edges, decomposition, time_scale)
        powers = list(band_sums / torch.tensor(geometry["n_bins"], dtype=torch.float64, device=p.device))
        spectra = cell_sums / cell_labels((T, H, W))[2].to(p.device)  # 0/0 = NaN where a cell is empty
        profiles: list = [None] * len(parts)
    else:
        spectra = spectrum_of_half(p, (T, H, W))  # (b, cells)
        if not per_sample:
            spectra, stats = spectra.mean(0, keepdim=True), {k: v.mean(0, keepdim=True) for k, v in stats.items()}
        # The per-bin power of each part: its band means and, with radial, its radial profile.
        bins = [bin_power(x) for x in parts]  # (t, h, w) each
        powers = [band_mean(q, bands) for q in bins]
        radial_of = lambda q: radial_profile(q, decomposition=decomposition, time_scale=time_scale)  # noqa: E731
        profiles = [radial_of(q) if radial else None for q in bins]
    rows = []
    for i, (x, power, profile) in enumerate(zip(parts, powers, profiles)):
        check_finite_power(power, bands, what)
        row = {
            "latent_shape": list(x.shape),
            **geometry,
            "band_power": power.cpu().tolist(),
            "energy_fraction": energy_fraction(power, bands).cpu().tolist(),
            "spectrum": spectra[i].cpu().tolist(),
            **{k: v[i].cpu().tolist() for k, v in stats.items()},
        }
        if profile is not None:
            row["radius"], row["radial_power"] = profile[0].cpu().tolist(), profile[1].cpu().tolist()
        rows.append(row)
    return bands, rows


@lru_cache(maxsize=64)
def _joint_labels(shape: tuple[int, int, int], edges: tuple[float, ...], decomposition: str, time_scale: float):
    """Each half-spectrum bin's (band, spectrum cell) pair as one index ``band · n_cells + cell``, flattened."""
    bands = make_bands(shape, edges, decomposition=decomposition, time_scale=time_scale)
    cells, weights, counts = cell_labels(shape)
    # Both weigh a half-spectrum bin by the full-spectrum bins it stands for: one weight serves both sums.
    assert torch.equal(weights, bands.half_weights.double().expand_as(weights))
    return (bands.half_labels * counts.numel() + cells).flatten(), len(bands), counts.numel()


def _joint_sums(p: torch.Tensor, shape, edges, decomposition, time_scale) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sample, the sums of ``|F z|²`` (mean over channels, float64) over each band's bins ``(b, n_bands)`` and
    over each spectrum cell's ``(b, n_cells)``, from one grouped sum over (band × cell)."""
    joint, n_bands, n_cells = _joint_labels(tuple(shape), tuple(edges), decomposition, float(time_scale))
    b = p.shape[0]
    w = (p.double().mean(1) * cell_labels(tuple(shape))[1].to(p.device)).reshape(b, -1)
    sums = torch.zeros(b, n_bands * n_cells, dtype=torch.float64, device=p.device)
    sums = sums.index_add_(1, joint.to(p.device), w).reshape(b, n_bands, n_cells)
    return sums.sum(2), sums.sum(1)


def read_options(read: dict | None) -> dict:
    """read_video's own defaults, overridden by what was given, so that the settings are the same either way
    (its options that change only the speed are left out)."""
    params = inspect.signature(read_video).parameters.items()
    defaults = {k: v.default for k, v in params if v.kind == v.KEYWORD_ONLY and k not in SPEED_ONLY}
    unknown = set(read or {}) - set(defaults)
    if unknown:
        raise ValueError(f"read: unknown option(s) {', '.join(sorted(unknown))}; choose from {', '.join(defaults)}")
    return {**defaults, **(read or {})}


def analysis_settings(
    encoder: Any, *, read: dict, edges: tuple[float, ...], decomposition: str, time_scale: float, radial: bool
) -> dict:
    """Everything that changes a clip's numbers: the key of its row in the results store. ``encoder``: an
    encoder of :func:`~freqscope.encode.load_encoder`; ``read``: every option of ``read_video``."""
    # radial: whether the rows hold the radial spectrum (a run that asks for it redoes rows without it)
    return {**source_settings(encoder, read), **band_settings(edges, decomposition, time_scale), "radial": radial}


def source_settings(encoder: Any, read: dict) -> dict:
    """The part of the settings that says how the latent was made: the encoder and how the clip was read."""
    info = encoder.info.to_dict()
    enc = {k: info.get(k) for k in ("name", "source", "class_name", "scaling", "sample_posterior", "dtype")}
    if isinstance(encoder, PixelEncoder):
        enc["downsample"] = encoder.downsample
    return {"version": SETTINGS_VERSION, "encoder": enc, "read": dict(sorted(read.items()))}


def band_settings(edges: tuple[float, ...], decomposition: str, time_scale: float) -> dict:
    """The part of the settings that says how the latent was analysed."""
    return {"edges": list(edges), "decomposition": decomposition, "time_scale": time_scale}


def settings_columns(settings: dict) -> dict:
    """The row columns that key it by its settings (``settings``: a hash, ``settings_json``: the settings)."""
    return {"settings": settings_hash(settings), "settings_json": json.dumps(settings, sort_keys=True)}
