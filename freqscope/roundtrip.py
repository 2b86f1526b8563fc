"""VAE round trips: frames ``(b, 3, t, H, W)`` in [-1, 1] → encode (posterior mean) → decode, aligned.

The reference is trimmed to what the VAE can reproduce (causal video VAEs take ``1 + k·r`` frames,
sides a multiple of the spatial factor), so ``reconstruction − reference`` is the VAE's damage frame
by frame and pixel by pixel. :attr:`RoundTrip.structure` names the periods the VAE's own processing
could print on it (latent grid, causal first frame, decode chunks, tile seams). In use:
``reference, reconstruction = load_roundtrip("THUDM/CogVideoX-2b", subfolder="vae")(frames)``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch

from .encode import VAEEncoder, load_encoder

__all__ = ["RoundTrip", "load_roundtrip"]

#: Video VAEs that decode ``1 + k·r`` frames only from an odd number of latent frames: CogVideoX decodes
#: latent frames in pairs after a first group of three, and an even count comes back as ``r·t'`` frames.
_ODD_LATENTS = {"AutoencoderKLCogVideoX"}


class RoundTrip:
    """A diffusers autoencoder's round trip of real frames (see :func:`load_roundtrip`)."""

    def __init__(self, encoder: VAEEncoder) -> None:
        """Wrap a loaded :class:`~freqscope.encode.VAEEncoder` (posterior mean, not samples)."""
        if encoder.sample_posterior:
            raise ValueError("a round trip decodes the posterior mean; load the encoder without `sample_posterior`")
        self.encoder = encoder
        self.model = encoder.model
        self.last_used: tuple[int, int, int] | None = None  # (t, H, W) of the last clip round-tripped

    @property
    def _r(self) -> int:
        return self.encoder.info.temporal_compression

    def frames_used(self, t: int) -> int:
        """Frames of a ``t``-frame clip the round trip reproduces: ``1 + k·r`` for causal video VAEs
        (``1 + 2k·r`` for CogVideoX), all ``t`` for image VAEs."""
        used = self.encoder.frames_used(t)
        if type(self.model).__name__ in _ODD_LATENTS and (used - 1) // self._r % 2:
            used -= self._r
        return used

    @property
    def min_frames(self) -> int:
        """Shortest clip with any temporal compression in it: ``1 + r`` (``1 + 2r`` for CogVideoX), else 1."""
        if self.encoder.kind == "image" or self._r == 1:
            return 1
        return 1 + self._r * (2 if type(self.model).__name__ in _ODD_LATENTS else 1)

    @torch.no_grad()
    def __call__(self, frames: torch.Tensor, *, progress: Callable | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(reference, reconstruction)``: both ``(b, 3, t', H', W')`` float32 on the CPU, frame-aligned;
        the reference is ``frames[:, :, :t', :H', :W']``, the reconstruction is clamped to [-1, 1]."""
        if frames.ndim != 5 or frames.shape[1] != 3:
            raise ValueError(f"`frames` must be (b, 3, t, H, W), got shape {tuple(frames.shape)}")
        b, _, t, H, W = frames.shape
        name, f = type(self.model).__name__, self.encoder.info.spatial_compression
        if t < self.min_frames:
            raise ValueError(
                f"`frames`: {t} frames are too few for {name}, which needs at least {self.min_frames} "
                f"(1 + k·{self.min_frames - 1}); read more frames"
            )
        if H < f or W < f:
            raise ValueError(f"`frames`: {H}×{W} is smaller than {name}'s spatial factor {f}; use larger frames")
        T, Hf, Wf = self.frames_used(t), H // f * f, W // f * f
        kept = frames[:, :, :T, :Hf, :Wf]  # (b, 3, T, Hf, Wf)
        z = self.encoder(kept, progress=progress)  # (b, c, t', h, w), posterior mean
        reconstruction = self.encoder.decode(z, progress=progress).float().cpu()
        reference = kept.float().cpu()
        if reconstruction.shape != reference.shape:
            raise ValueError(
                f"{name} decoded {tuple(reconstruction.shape)} from frames {tuple(reference.shape)}; "
                "its frame-count rule is not known here"
            )
        self.last_used = (T, Hf, Wf)
        return reference, reconstruction

    @property
    def structure(self) -> dict[str, dict[str, int | bool]]:
        """What the VAE could leave as a period, per axis ("time", "height", "width"), in frames or pixels.

        Integers are periods, booleans facts (``freqscope.periodic.match_structure`` reads them so):

        - ``temporal_compression_ratio`` (time): frames per latent frame, ``r``.
        - ``causal_first_frame`` (time): the first frame is encoded alone (frame rule ``1 + k·r``).
        - ``independent_frames`` (time): an image VAE codes each frame alone, so nothing ties frames together.
        - ``decode_chunk`` (time): frames per decoder call after the first, each carrying a cache of the last
          (Wan: one latent frame, ``r``; CogVideoX, Mochi's framewise decoding: ``num_latent_frames_batch_size·r``).
        - ``tile_stride`` (time): frames between temporal tiles, blended over ``tile − stride`` frames, for
          clips longer than one tile (HunyuanVideo by default, LTX with framewise decoding).
        - ``spatial_compression_ratio`` (height, width): pixels per latent pixel, the latent grid.
        - ``tile_stride`` (height, width): with tiling on, pixels between the decoder's tile seams, for frames
          larger than one tile (:attr:`info` has the tile sizes); the encoder's tiles step the same way.
        """
        own = vars(self.model)
        r = self._r
        if self.encoder.kind == "image":
            time: dict[str, int | bool] = {
                "temporal_compression_ratio": 1,
                "causal_first_frame": False,
                "independent_frames": True,
            }
        else:
            time = {"temporal_compression_ratio": r, "causal_first_frame": r > 1, "independent_frames": False}
        name = type(self.model).__name__
        if name == "AutoencoderKLWan":  # one latent frame per decoder call, with a causal cache
            time["decode_chunk"] = r
        elif name == "AutoencoderKLCogVideoX" or (name == "AutoencoderKLMochi" and own.get("use_framewise_decoding")):
            time["decode_chunk"] = int(own["num_latent_frames_batch_size"]) * r
        if own.get("use_framewise_decoding") and "tile_sample_stride_num_frames" in own:
            time["tile_stride"] = int(own["tile_sample_stride_num_frames"])
        out: dict[str, dict[str, int | bool]] = {"time": time}
        for axis in ("height", "width"):
            out[axis] = {"spatial_compression_ratio": self.encoder.info.spatial_compression}
            tile = self._tile(axis)
            if tile:
                out[axis]["tile_stride"] = tile[1]
        return out

    def _tile(self, axis: str) -> tuple[int, int] | None:
        """``(tile, stride)`` in pixels of the decoder's spatial tiles along ``axis``; ``None`` with tiling off."""
        own = vars(self.model)
        if not own.get("use_tiling"):
            return None
        if f"tile_sample_stride_{axis}" in own:  # Wan, HunyuanVideo, LTX, Mochi, DC, Cosmos: a tile every stride
            return int(own[f"tile_sample_min_{axis}"]), int(own[f"tile_sample_stride_{axis}"])
        if f"tile_overlap_factor_{axis}" in own:  # CogVideoX: each tile keeps all but its blended fraction
            size = int(own[f"tile_sample_min_{axis}"])
            return size, size - int(size * own[f"tile_overlap_factor_{axis}"])
        if "tile_overlap_factor" in own:  # AutoencoderKL, AutoencoderTiny and kin: square tiles
            size = own["tile_sample_min_size"]
            size = int(size[0] if isinstance(size, (list, tuple)) else size)
            return size, size - int(size * own["tile_overlap_factor"])
        return None

    @property
    def info(self) -> dict[str, Any]:
        """How the round trip was made, for reports; ``frames_used`` is ``(t, H, W)`` of the last clip."""
        e = self.encoder.info
        return {
            "class_name": e.class_name,
            "source": e.source,
            "kind": e.kind,
            "dtype": "float32 (upcast)" if self.encoder.upcast else e.dtype,
            "device": e.device,
            "latent": "posterior mean",
            "tiling": bool(vars(self.model).get("use_tiling")),
            "tiles": {
                axis: {"tile": tl[0], "stride": tl[1]} for axis in ("height", "width") if (tl := self._tile(axis))
            },
            "spatial_compression": e.spatial_compression,
            "temporal_compression": e.temporal_compression,
            "min_frames": self.min_frames,
            "frames_used": list(self.last_used) if self.last_used else None,
        }


def load_roundtrip(
    vae: str | os.PathLike,
    *,
    subfolder: str | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    tiling: bool = False,
    batch_size: int = 8,
) -> RoundTrip:
    """The round trip of the diffusers autoencoder ``vae`` (hub id or folder), loaded by
    :func:`~freqscope.encode.load_encoder`: whole clips for video VAEs, ``batch_size`` frames at a time
    for image VAEs; ``tiling``: diffusers' own tiled (and sliced) encoding and decoding."""
    enc = load_encoder(
        "vae",
        vae=str(vae),
        vae_subfolder=subfolder,
        device=device,
        dtype=dtype,
        batch_size=batch_size,
        vae_tiling=tiling,
    )
    assert isinstance(enc, VAEEncoder)
    return RoundTrip(enc)
