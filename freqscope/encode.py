"""Encoders: frames ``(b, 3, t, H, W)`` in [-1, 1] → latents ``z0`` of shape ``(b, c, t', h, w)``.

``pixel`` is weight-free (pixel-space diffusion). ``vae`` is any diffusers autoencoder loaded
with ``from_pretrained``: image autoencoders (AutoencoderKL, AutoencoderTiny, …) encode the
frames in batches; video autoencoders (AutoencoderKLCogVideoX, AutoencoderKLWan, …) encode the
clip with their temporal compression. Latents are scaled as the model's pipelines do:
``z0 = (μ − shift)·scale`` or, where the config has per-channel statistics,
``z0 = (μ − latents_mean)·scale / latents_std``.
"""

from __future__ import annotations

import inspect
import math
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange

from .hub import check_hub_source

__all__ = [
    "EncoderInfo",
    "Encoder",
    "PixelEncoder",
    "VAEEncoder",
    "load_encoder",
    "model_dtype",
    "DTYPE_RULE",
    "per_frame",
    "ENCODERS",
    "IMAGE_AUTOENCODERS",
]

ENCODERS = ("auto", "pixel", "vae")
#: diffusers classes that encode single images (frames are batched through them).
IMAGE_AUTOENCODERS = {
    "AutoencoderKL",
    "AutoencoderTiny",
    "AsymmetricAutoencoderKL",
    "AutoencoderDC",
    "ConsistencyDecoderVAE",
    "AutoencoderKLFlux2",
    "AutoencoderKLQwenImage",
}


@dataclass
class EncoderInfo:
    """How latents were made (recorded in every report)."""

    name: str  # "pixel" or "vae"
    source: str | None = None  # hub id or folder of the VAE
    class_name: str | None = None
    kind: str = "pixel"  # "pixel", "image" or "video"
    scaling: dict = field(default_factory=dict)  # scaling_factor, shift_factor, latents_mean/std as applied
    spatial_compression: int = 1
    temporal_compression: int = 1
    sample_posterior: bool = False
    dtype: str = "float32"
    device: str = "cpu"
    frames_used: int | None = None  # frames of the clip the latents come from (set by ``info_for``)

    def to_dict(self) -> dict:
        return asdict(self)


#: ``dtype=None`` in words, for help texts (see :func:`model_dtype`, :func:`vae_dtype` and the pipeline families).
DTYPE_RULE = "float32 on the CPU; on CUDA the model family's documented dtype (README), else float16"

#: The dtype of a video autoencoder on CUDA where diffusers' docs or the model card name one, with the source.
VAE_DTYPES: dict[str, tuple[torch.dtype, str]] = {
    "AutoencoderKLWan": (torch.float32, "diffusers AutoencoderKLWan docs: from_pretrained(..., torch_dtype=float32)"),
    "AutoencoderKLCogVideoX": (torch.bfloat16, "diffusers CogVideoX docs and the CogVideoX-5b card: bfloat16"),
    "AutoencoderKLLTXVideo": (torch.bfloat16, "diffusers LTX-Video docs: torch_dtype=torch.bfloat16"),
    "AutoencoderKLMochi": (torch.bfloat16, "diffusers Mochi docs: variant='bf16', torch_dtype=torch.bfloat16"),
    "AutoencoderKLHunyuanVideo": (
        torch.float16,
        "hunyuanvideo-community/HunyuanVideo card: pipeline float16, transformer bfloat16",
    ),
}


def model_dtype(device: str | torch.device) -> torch.dtype:
    """The dtype a model with no documented one runs in by default: float16 on CUDA, float32 elsewhere."""
    return torch.float16 if torch.device(device).type == "cuda" else torch.float32


def force_upcast(model_cls: type, config: dict) -> bool:
    """Whether an autoencoder must not run in float16: its config's ``force_upcast``, or where the config
    lacks it, the class's own default (``AutoencoderKL``: True; diffusers then registers that value)."""
    if "force_upcast" in config:
        return bool(config["force_upcast"])
    param = inspect.signature(model_cls).parameters.get("force_upcast")
    return bool(param.default) if param is not None and param.default is not inspect.Parameter.empty else False


def vae_dtype(
    model_cls: type, config: dict, device: str | torch.device, dtype: torch.dtype | None = None
) -> torch.dtype:
    """The dtype an autoencoder is loaded in: ``dtype`` if given; float32 on the CPU; on CUDA its documented
    dtype (:data:`VAE_DTYPES`), else float16, or float32 where :func:`force_upcast` says it overflows there.

    >>> from diffusers import AutoencoderKL, AutoencoderKLWan
    >>> vae_dtype(AutoencoderKL, {}, "cuda"), vae_dtype(AutoencoderKL, {"force_upcast": False}, "cuda")
    (torch.float32, torch.float16)
    >>> vae_dtype(AutoencoderKLWan, {}, "cuda"), vae_dtype(AutoencoderKLWan, {}, "cpu", torch.bfloat16)
    (torch.float32, torch.bfloat16)
    """
    if dtype is not None:
        return dtype
    if torch.device(device).type != "cuda":
        return torch.float32
    if model_cls.__name__ in VAE_DTYPES:
        return VAE_DTYPES[model_cls.__name__][0]
    return torch.float32 if force_upcast(model_cls, config) else torch.float16


def enable_vae_tiling(vae: Any) -> None:
    """Tiled (and, where the VAE has it, sliced) encoding and decoding, diffusers' own; one line if it has none."""
    if not hasattr(vae, "enable_tiling"):
        raise ValueError(f"{type(vae).__name__} has no tiled encoding or decoding; drop `vae_tiling`")
    vae.enable_tiling()
    if hasattr(vae, "enable_slicing"):
        vae.enable_slicing()


def per_frame(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *,
    batch_size: int,
    progress: Callable | None = None,
    desc: str = "frames",
) -> torch.Tensor:
    """Apply an image model ``fn`` to every frame of ``x (b, c, t, h, w)``, ``batch_size`` frames at a time:
    ``(b, c', t, h', w')``.

    >>> per_frame(lambda f: f[:, :1] * 2, torch.ones(2, 3, 5, 4, 4), batch_size=3).shape
    torch.Size([2, 1, 5, 4, 4])
    """
    b = x.shape[0]
    flat = rearrange(x, "b c t h w -> (b t) c h w")
    chunks = range(0, flat.shape[0], batch_size)
    outs = [fn(flat[i : i + batch_size]) for i in (progress(chunks, desc=desc, unit="batch") if progress else chunks)]
    return rearrange(torch.cat(outs), "(b t) c h w -> b c t h w", b=b)


def _check_frames(frames: torch.Tensor) -> None:
    if frames.ndim != 5 or frames.shape[1] != 3:
        raise ValueError(f"frames must be (b, 3, t, H, W), got shape {tuple(frames.shape)}")


def _check_finite(z: torch.Tensor, what: str) -> torch.Tensor:
    """``z`` if it is finite; else one error naming the model, its dtype (in ``what``) and what to try."""
    if not torch.isfinite(z).all():
        bad = int((~torch.isfinite(z)).sum())
        raise ValueError(
            f"{what} produced {bad} NaN/Inf values; try `dtype` float32 (or bfloat16, whose range is float32's), "
            "or check the model weights"
        )
    return z


class PixelEncoder:
    """Weight-free: the frames themselves, optionally area-downsampled by ``downsample`` in space."""

    def __init__(self, *, downsample: int = 1):
        if downsample < 1:
            raise ValueError(f"downsample={downsample}: must be a whole number >= 1")
        self.downsample = downsample
        self.info = EncoderInfo("pixel", kind="pixel", spatial_compression=downsample, scaling={"scaling_factor": 1.0})

    def frames_used(self, t: int) -> int:
        """Frames of a ``t``-frame clip the latents come from: all of them."""
        return t

    def info_for(self, t: int) -> EncoderInfo:
        """:attr:`info` for a ``t``-frame clip (``frames_used`` filled in)."""
        return replace(self.info, frames_used=self.frames_used(t))

    def __call__(
        self, frames: torch.Tensor, *, progress: Callable | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        _check_frames(frames)
        k = self.downsample
        if k > 1:
            b, c, t, H, W = frames.shape
            if H // k < 1 or W // k < 1:
                raise ValueError(f"`downsample` {k} is larger than the {H}×{W} frames; use a smaller factor")
            frames = F.avg_pool3d(frames, kernel_size=(1, k, k), stride=(1, k, k))  # (b, 3, t, H/k, W/k)
        # No finite check here (decoded 8-bit pixels always are): the analysis checks its band powers,
        # which any NaN/Inf in the input reaches.
        return frames.float()


def _temporal_ratio(config: dict) -> int:
    for key in ("temporal_compression_ratio", "scale_factor_temporal"):
        if config.get(key):
            return int(config[key])
    if "temperal_downsample" in config:  # Wan's spelling
        return 2 ** sum(bool(x) for x in config["temperal_downsample"])
    if "temporal_expansions" in config:  # Mochi
        return math.prod(config["temporal_expansions"])
    return 1


def _spatial_ratio(config: dict, class_name: str) -> int:
    for key in ("spatial_compression_ratio", "scale_factor_spatial"):
        if config.get(key):
            return int(config[key])
    if class_name == "AutoencoderTiny":
        return 2 ** (len(config.get("encoder_block_out_channels", (64,) * 4)) - 1)
    if "block_out_channels" in config:
        return 2 ** (len(config["block_out_channels"]) - 1)
    return 8


class VAEEncoder:
    """A diffusers autoencoder loaded with ``from_pretrained`` (hub id or local folder)."""

    def __init__(
        self, model: Any, *, source: str | None = None, sample_posterior: bool = False, batch_size: int = 8
    ) -> None:
        """Wrap a loaded diffusers autoencoder (see :meth:`load` to load one)."""
        self.model = model.eval()
        p = next(model.parameters())
        self.device, self.dtype = p.device, p.dtype
        cls_name = type(model).__name__
        self.config = dict(model.config)
        self.kind = "image" if cls_name in IMAGE_AUTOENCODERS else "video"
        self.sample_posterior = sample_posterior
        self.batch_size = max(1, int(batch_size))
        # A float16 model whose config asks for force_upcast (e.g. a pipeline's SD VAE) runs in float32 here.
        self.upcast = self.dtype == torch.float16 and force_upcast(type(model), self.config)
        self.scale, self.shift, self.mean, self.std = self._scaling(self.config)
        # The model's own ratios where it sets them: LTX derives them from its patch sizes (its config
        # leaves them None), AutoencoderDC from its encoder blocks.
        own = vars(model)
        spatial = int(own.get("spatial_compression_ratio") or _spatial_ratio(self.config, cls_name))
        temporal = int(own.get("temporal_compression_ratio") or _temporal_ratio(self.config))
        self.info = EncoderInfo(
            "vae",
            source=source,
            class_name=cls_name,
            kind=self.kind,
            scaling={
                "scaling_factor": self.scale,
                "shift_factor": self.shift,
                "latents_mean": self.mean,
                "latents_std": self.std,
            },
            spatial_compression=spatial,
            temporal_compression=temporal if self.kind == "video" else 1,
            sample_posterior=sample_posterior,
            dtype=str(self.dtype).replace("torch.", ""),
            device=str(self.device),
        )

    @classmethod
    def load(
        cls,
        source: str | os.PathLike,
        *,
        subfolder: str | None = None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | None = None,
        sample_posterior: bool = False,
        batch_size: int = 8,
        tiling: bool = False,
    ) -> VAEEncoder:
        """Load with ``from_pretrained`` from a hub id or a local folder (saved with ``save_pretrained``), in
        :func:`vae_dtype`; ``tiling``: encode and decode in tiles (:func:`enable_vae_tiling`)."""
        import diffusers
        from diffusers.utils import logging as dlogging

        dlogging.set_verbosity_error()  # its load-time chatter (accelerate hints, ignored keys) is not ours to show
        device = torch.device(device)
        src = str(source)
        local = Path(src)
        if local.exists() and not (local / (subfolder or "") / "config.json").is_file():
            raise ValueError(
                f"no autoencoder config.json in {local / (subfolder or '')}; "
                "pass a folder saved with save_pretrained, or set `vae_subfolder` (e.g. vae)"
            )
        if not local.exists() and (src.count("/") != 1 or src.startswith((".", "/"))):
            raise FileNotFoundError(f"VAE {src!r} is neither a local folder nor a hub id (owner/name); check the path")
        cache_only = {"local_files_only": True} if check_hub_source(src, "VAE", subfolder=subfolder) else {}
        try:
            config = diffusers.AutoencoderKL.load_config(src, subfolder=subfolder, **cache_only)
        except Exception as e:  # noqa: BLE001 - diffusers raises many kinds (OSError, EnvironmentError, HTTP)
            raise ValueError(
                f"cannot load the VAE config from {src!r}{f' (subfolder {subfolder})' if subfolder else ''}: "
                f"{str(e).splitlines()[0][:200]}"
            ) from None
        cls_name = str(config.get("_class_name", ""))
        model_cls = getattr(diffusers, cls_name, None)
        if model_cls is None or not hasattr(model_cls, "encode"):
            raise ValueError(f"{src!r} holds a {cls_name or 'model without _class_name'}, not a diffusers autoencoder")
        dtype = vae_dtype(model_cls, config, device, dtype)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # version-dependent deprecation notices (torch_dtype vs dtype)
                model = model_cls.from_pretrained(src, subfolder=subfolder, torch_dtype=dtype, **cache_only)
        except Exception as e:  # noqa: BLE001
            raise ValueError(
                f"cannot load the {cls_name} weights from {src!r}: {str(e).splitlines()[0][:200]}"
            ) from None
        if tiling:
            enable_vae_tiling(model)
        return cls(
            model.to(device),
            source=src if not subfolder else f"{src} [{subfolder}]",
            sample_posterior=sample_posterior,
            batch_size=batch_size,
        )

    def frames_used(self, t: int) -> int:
        """Frames of a ``t``-frame clip the latents come from: causal video VAEs take ``1 + k·r`` frames."""
        r = self.info.temporal_compression
        return 1 + (t - 1) // r * r if self.kind == "video" and r > 1 else t

    def info_for(self, t: int) -> EncoderInfo:
        """:attr:`info` for a ``t``-frame clip (``frames_used`` filled in)."""
        return replace(self.info, frames_used=self.frames_used(t))

    @staticmethod
    def _scaling(config: dict):
        scale = config.get("scaling_factor")
        scale = 1.0 if scale is None else float(scale)
        if config.get("invert_scale_latents"):
            scale = 1.0 / scale  # CogVideoX 1.5 divides by its factor
        shift = config.get("shift_factor")
        shift = 0.0 if shift is None else float(shift)
        mean, std = config.get("latents_mean"), config.get("latents_std")
        if mean is None or std is None:
            mean = std = None
        else:
            mean, std = [float(v) for v in mean], [float(v) for v in std]
        return scale, shift, mean, std

    def _latent(self, x: torch.Tensor, generator) -> torch.Tensor:
        out = self.model.encode(x)
        if hasattr(out, "latent_dist"):
            dist = out.latent_dist
            if self.sample_posterior:
                return dist.sample(generator)
            return dist.mean if hasattr(dist, "mean") else dist.mode()
        if hasattr(out, "latents"):
            return out.latents
        return out[0]

    def _normalise(self, mu: torch.Tensor) -> torch.Tensor:
        """Apply the model's latent scaling; ``mu`` is ``(b, c, t, h, w)``."""
        mu = mu.float()
        if self.mean is not None:
            m = torch.tensor(self.mean, device=mu.device).view(1, -1, 1, 1, 1)
            s = torch.tensor(self.std, device=mu.device).view(1, -1, 1, 1, 1)
            return (mu - m) * self.scale / s
        return (mu - self.shift) * self.scale

    def _denormalise(self, z: torch.Tensor) -> torch.Tensor:
        if self.mean is not None:
            m = torch.tensor(self.mean, device=z.device).view(1, -1, 1, 1, 1)
            s = torch.tensor(self.std, device=z.device).view(1, -1, 1, 1, 1)
            return z * s / self.scale + m
        return z / self.scale + self.shift

    @contextmanager
    def computing(self) -> Iterator[torch.dtype]:
        """The dtype the model computes in while inside: its own, or float32 for a float16 model that asks for
        ``force_upcast`` (moved to float32 for the call and back, as diffusers' SDXL pipelines upcast theirs)."""
        if not self.upcast:
            yield self.dtype
            return
        self.model.to(torch.float32)
        try:
            yield torch.float32
        finally:
            self.model.to(self.dtype)

    @torch.no_grad()
    def decode(self, z: torch.Tensor, *, progress: Callable | None = None) -> torch.Tensor:
        """Latents ``(b, c, t, h, w)`` (scaled as :meth:`__call__` returns them) → frames ``(b, 3, T, H, W)``
        in [-1, 1]."""
        with self.computing() as dtype:
            mu = self._denormalise(z.float()).to(self.device, dtype)
            if self.kind == "image":
                decode = lambda f: self.model.decode(f).sample  # noqa: E731
                x = per_frame(decode, mu, batch_size=self.batch_size, progress=progress, desc="decode")
            else:
                # LTX-Video >= 0.9.1 conditions its decoder on a timestep: 0, its pipeline's default decode_timestep.
                t0 = {"temb": mu.new_zeros(mu.shape[0])} if self.config.get("timestep_conditioning") else {}
                x = self.model.decode(mu, **t0).sample  # (b, 3, t, H, W)
        return _check_finite(x.float(), f"decoding with {self._what()}").clamp(-1, 1)

    def _what(self) -> str:
        """The model and the dtype it ran in, for error messages."""
        dtype = "float32 (upcast)" if self.upcast else str(self.dtype).replace("torch.", "")
        return f"the VAE {self.info.class_name} ({self.info.source or 'in memory'}) in {dtype}"

    @torch.no_grad()
    def __call__(
        self, frames: torch.Tensor, *, progress: Callable | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        _check_frames(frames)
        with self.computing() as dtype:
            return self._encode(frames.to(self.device, dtype), progress=progress, generator=generator)

    def _encode(self, x: torch.Tensor, *, progress: Callable | None, generator) -> torch.Tensor:
        t = x.shape[2]
        if self.kind == "image":
            encode = lambda f: self._latent(f, generator)  # noqa: E731
            mu = per_frame(encode, x, batch_size=self.batch_size, progress=progress, desc="encode")  # (b, c, t, h, w)
        else:
            r = self.info.temporal_compression
            keep = self.frames_used(t)
            if keep < t:
                warnings.warn(
                    f"{self.info.class_name} compresses time by {r}: using the first {keep} of {t} frames "
                    f"(1 + k·{r}); ask for {keep} or {keep + r} frames to use them all",
                    stacklevel=2,
                )
            x = x[:, :, :keep]
            mu = self._latent(x, generator)  # (b, c, t', h, w)
        return _check_finite(self._normalise(mu), f"encoding with {self._what()}")


#: What :func:`load_encoder` returns: frames ``(b, 3, t, H, W)`` → latents ``(b, c, t', h, w)``.
Encoder = PixelEncoder | VAEEncoder


def load_encoder(
    encoder: str = "auto",
    *,
    vae: str | None = None,
    vae_subfolder: str | None = None,
    downsample: int = 1,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    sample_posterior: bool = False,
    batch_size: int = 8,
    vae_tiling: bool = False,
) -> PixelEncoder | VAEEncoder:
    """``auto`` → ``vae`` when a VAE is given, else ``pixel``. ``vae_tiling``: the VAE works in tiles."""
    if encoder not in ENCODERS:
        raise ValueError(f"unknown encoder {encoder!r}; choose one of {', '.join(ENCODERS)}")
    if encoder == "auto":
        encoder = "vae" if vae else "pixel"
    if vae_tiling and not vae:
        raise ValueError("`vae_tiling` applies to a VAE; give `vae`")
    if encoder == "pixel":
        if vae:
            raise ValueError("`vae` was given with `encoder` pixel; drop one of them")
        return PixelEncoder(downsample=downsample)
    if not vae:
        raise ValueError("`encoder` vae needs `vae` (a diffusers autoencoder folder or hub id)")
    if downsample != 1:
        raise ValueError("`downsample` applies to the pixel encoder only; a VAE sets its own compression")
    return VAEEncoder.load(
        vae,
        subfolder=vae_subfolder,
        device=device,
        dtype=dtype,
        sample_posterior=sample_posterior,
        batch_size=batch_size,
        tiling=vae_tiling,
    )
