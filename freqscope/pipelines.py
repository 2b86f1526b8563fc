"""Loading diffusers video pipelines for FreeInit and the gap diagnostic (hub id or local folder)."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from .encode import VAEEncoder

__all__ = ["load_pipeline", "latent_shape", "pipeline_vae"]


def load_pipeline(source: str, *, device: str | torch.device = "cpu", dtype: torch.dtype | None = None):
    """``DiffusionPipeline.from_pretrained`` in fp16 on CUDA (float32 on CPU), progress bars off."""
    import diffusers

    _quiet_libraries()
    device = torch.device(device)
    dtype = dtype or (torch.float16 if device.type == "cuda" else torch.float32)
    local = Path(source)
    if local.exists() and not (local / "model_index.json").is_file():
        raise ValueError(f"no model_index.json in {local}; pass a pipeline folder saved with save_pretrained")
    if not local.exists() and (source.count("/") != 1 or source.startswith((".", "/"))):
        raise FileNotFoundError(f"pipeline {source!r} is neither a local folder nor a hub id (owner/name)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # version-dependent deprecation notices (torch_dtype vs dtype)
            pipe = diffusers.DiffusionPipeline.from_pretrained(source, torch_dtype=dtype)
    except Exception as e:  # noqa: BLE001 - diffusers raises OSError, ValueError, HTTP errors
        raise ValueError(f"cannot load the pipeline {source!r}: {str(e).splitlines()[0][:200]}") from None
    if not hasattr(pipe, "scheduler") or not hasattr(pipe, "vae"):
        raise ValueError(f"{source!r} is a {type(pipe).__name__}, not a video pipeline with a scheduler and a VAE")
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def _quiet_libraries() -> None:
    """Load-time chatter of diffusers and transformers (progress bars, config notes) is not ours to show."""
    from diffusers.utils import logging as dlogging

    dlogging.set_verbosity_error()
    dlogging.disable_progress_bar()
    try:
        from transformers.utils import logging as tlogging

        tlogging.set_verbosity_error()
        tlogging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass


def latent_shape(pipe, *, num_frames: int, height: int, width: int, batch: int = 1) -> tuple[int, int, int, int, int]:
    """``(b, c, t, h, w)`` of the latents the pipeline denoises for a video of this size."""
    vae_cfg = pipe.vae.config
    c = vae_cfg.get("latent_channels") or vae_cfg.get("z_dim")
    if c is None:
        den = getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)
        c = den.config.in_channels
    s = getattr(pipe, "vae_scale_factor_spatial", None) or getattr(pipe, "vae_scale_factor", None) or 8
    r = getattr(pipe, "vae_scale_factor_temporal", None) or 1
    t = (num_frames - 1) // r + 1 if r > 1 else num_frames
    if height % s or width % s:
        raise ValueError(f"height {height} and width {width} must be multiples of the VAE factor {s}")
    return (batch, int(c), int(t), height // s, width // s)


def pipeline_vae(pipe, source: str | None = None) -> VAEEncoder:
    """The pipeline's own autoencoder, to encode the reference clip and decode each pass."""
    return VAEEncoder(pipe.vae, source=f"{source} [vae]" if source else None)
