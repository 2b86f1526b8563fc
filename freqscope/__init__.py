"""freqscope: frequency analysis and SNR diagnostics for video diffusion models.

Tensors are ``(b, c, t, h, w)``; frequencies are normalised so that Nyquist = 1; the FFT is the
orthonormal 3D FFT over ``(t, h, w)``. See docs/architecture.md for the layers and conventions.
"""

from importlib.metadata import PackageNotFoundError, version

from .aggregate import Summary, aggregate
from .analysis import analyze_latent, analyze_video, summarize
from .bands import band_power, bandpass, distance, fft3, freq_grid, make_bands, parse_edges, rapsd
from .encode import PixelEncoder, VAEEncoder, load_encoder
from .filters import freq_mix, lowpass_filter
from .noise_schedule import PRESETS, Schedule, flow_schedule, get_schedule, schedule_from_config, vp_schedule
from .rows import latent_rows
from .snr import band_snr, crossing_timesteps, energy_fraction, snr_closed_form, snr_sampled, to_db
from .video import read_video

try:
    __version__ = version("freqscope")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "PRESETS",
    "PixelEncoder",
    "Schedule",
    "Summary",
    "aggregate",
    "latent_rows",
    "VAEEncoder",
    "analyze_latent",
    "analyze_video",
    "band_power",
    "band_snr",
    "bandpass",
    "crossing_timesteps",
    "distance",
    "energy_fraction",
    "fft3",
    "freq_mix",
    "lowpass_filter",
    "flow_schedule",
    "freq_grid",
    "get_schedule",
    "load_encoder",
    "make_bands",
    "parse_edges",
    "rapsd",
    "read_video",
    "schedule_from_config",
    "snr_closed_form",
    "snr_sampled",
    "summarize",
    "to_db",
    "vp_schedule",
]
