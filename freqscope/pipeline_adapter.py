"""Diffusers video pipelines for FreeInit and the gap diagnostic: loading (hub id or local folder) and one
small adapter per family (latent layout and shape, how latents / frame count / conditioning go in, which
VAE encodes the reference clip). This is the one module that inspects pipeline classes."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from einops import rearrange

from .encode import VAEEncoder, enable_vae_tiling, model_dtype
from .hub import check_hub_source

#: A diffusers pipeline (diffusers ships no type information).
Pipeline = Any

__all__ = ["load_pipeline", "latent_shape", "pipeline_vae", "adapter_for", "Family", "PIPELINE_FAMILIES"]
__all__ += ["pipeline_dtypes", "family_named", "OFFLOAD"]


#: How a pipeline too large for the GPU can run: diffusers' model offload (each model moved to the GPU while it
#: runs) or sequential offload (each layer; slowest, least memory).
OFFLOAD = ("model", "sequential")


def load_pipeline(
    source: str,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    offload: str | None = None,
    vae_tiling: bool = False,
) -> Pipeline:
    """``DiffusionPipeline.from_pretrained`` in its family's dtypes (:func:`pipeline_dtypes`; ``dtype``
    overrides them), progress bars off, on ``device``, or with ``offload`` (:data:`OFFLOAD`: diffusers'
    ``enable_model_cpu_offload`` / ``enable_sequential_cpu_offload``, GPU only); ``vae_tiling``: the VAE
    decodes and encodes in tiles (and slices, where it can), as diffusers' ``enable_tiling`` does."""
    import diffusers

    _quiet_libraries()
    device = torch.device(device)
    if offload is not None and offload not in OFFLOAD:
        raise ValueError(f"`offload` {offload!r}: choose {' or '.join(OFFLOAD)}")
    if offload is not None and device.type == "cpu":
        raise ValueError("`offload` moves models between the CPU and a GPU while they run; give `device` cuda")
    local = Path(source)
    if local.exists() and not (local / "model_index.json").is_file():
        raise ValueError(f"no model_index.json in {local}; pass a pipeline folder saved with save_pretrained")
    if not local.exists() and (source.count("/") != 1 or source.startswith((".", "/"))):
        raise FileNotFoundError(f"pipeline {source!r} is neither a local folder nor a hub id (owner/name)")
    # A cached id while the hub is out of reach loads from the cache at once (the check is the job's, first).
    cached = check_hub_source(source, "`pipeline`", filename="model_index.json")
    cache_only = {"local_files_only": True} if cached else {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # version-dependent deprecation notices (torch_dtype vs dtype)
            config = diffusers.DiffusionPipeline.load_config(source, **cache_only)
            dtype, vae_dtype = pipeline_dtypes(str(config.get("_class_name", "")), device, dtype)
            pipe = diffusers.DiffusionPipeline.from_pretrained(source, torch_dtype=dtype, **cache_only)
    except Exception as e:  # noqa: BLE001 - diffusers raises OSError, ValueError, HTTP errors
        raise ValueError(f"cannot load the pipeline {source!r}: {str(e).splitlines()[0][:200]}") from None
    if not hasattr(pipe, "scheduler") or not hasattr(pipe, "vae"):
        raise ValueError(f"{source!r} is a {type(pipe).__name__}, not a video pipeline with a scheduler and a VAE")
    if vae_dtype is not None:
        pipe.vae.to(vae_dtype)  # the family loads its VAE apart (Wan: float32), as its docs do
    if vae_tiling:
        enable_vae_tiling(pipe.vae)
    pipe.set_progress_bar_config(disable=True)
    if offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    else:
        pipe.to(device)
    return pipe


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


# ---- one adapter per pipeline family -----------------------------------------------------------------


def _first(obj, names, default=None):
    for n in names:
        v = getattr(obj, n, None)
        if v:
            return int(v)
    return default


@dataclass(frozen=True)
class Family:
    """How freqscope talks to one family of diffusers video pipelines.

    ``layout``: the pipeline's latents, ``"bcthw"``, ``"btchw"`` or ``"packed"`` (tokens ``(b, n, c·p_t·p·p)``);
    ``spatial`` / ``temporal``: the pipeline attributes holding its compression ratios (first one set wins);
    ``causal``: the first frame is encoded alone, ``t = (F − 1)//r + 1``; ``frames_arg``: the name of the
    frame count in the call; ``image``: conditioned on the clip's first frame (``image=``).
    """

    name: str
    classes: tuple[str, ...]
    layout: str = "bcthw"
    spatial: tuple[str, ...] = ("vae_scale_factor",)
    temporal: tuple[str, ...] = ()
    frames_arg: str = "num_frames"
    image: bool = False
    dtype: torch.dtype = torch.float16  # the pipeline's dtype on CUDA, as its docs load it (``dtype_source``)
    vae_dtype: torch.dtype | None = None  # the VAE's on CUDA where the docs load it apart (None: the pipeline's)
    dtype_source: str = "diffusers' docs: torch_dtype=torch.float16"
    # Its prepare_latents casts given latents to float32 itself (flow pipelines): pass them unrounded.
    float32_latents: bool = False

    def ratios(self, pipe: Pipeline) -> tuple[int, int]:
        return _first(pipe, self.spatial, 8), _first(pipe, self.temporal, 1)

    def latent_shape(
        self, pipe: Pipeline, *, num_frames: int, height: int, width: int, batch: int = 1
    ) -> tuple[int, int, int, int, int]:
        """``(b, c, t, h, w)`` of the latents the pipeline denoises for a clip of this size."""
        s, r = self.ratios(pipe)
        if height % s or width % s:
            raise ValueError(f"height {height} and width {width} must be multiples of the VAE factor {s}")
        t = (num_frames - 1) // r + 1 if r > 1 else num_frames
        return (batch, _channels(pipe), int(t) + self.pad_frames(pipe, t), height // s, width // s)

    def pad_frames(self, pipe: Pipeline, t: int) -> int:
        """Latent frames the pipeline prepends to ``t`` (CogVideoX 1.5 pads to a multiple of its
        ``patch_size_t`` and drops the first ones when decoding)."""
        p_t = _patch_t(pipe) if self.name == "CogVideoX" else None
        return (p_t - t % p_t) % p_t if p_t else 0

    def call_kwargs(self, pipe: Pipeline, kwargs: dict) -> dict:
        """The caller's ``num_frames``/``height``/``width``/``frames`` mapped to this family's call."""
        kw = dict(kwargs)
        first = kw.pop("frames", None)  # the clip (1, 3, t, H, W) in [-1, 1], for image conditioning
        if "num_frames" in kw and self.frames_arg != "num_frames":
            kw[self.frames_arg] = kw.pop("num_frames")
        if self.image and "image" not in kw:
            if first is None:
                raise ValueError(f"{type(pipe).__name__} is image-to-video: pass the clip (frames=) or image=")
            kw["image"] = _to_pil(first[0, :, 0])
        params = inspect.signature(pipe.__call__).parameters
        unknown = sorted(k for k, v in kw.items() if k not in params and v is not None)
        if unknown:
            raise ValueError(f"{type(pipe).__name__} ({self.name}) takes no {', '.join(unknown)}; drop it")
        kw = {k: v for k, v in kw.items() if k in params}
        if "prompt" in params and kw.get("prompt") is None and kw.get("prompt_embeds") is None:
            kw["prompt"] = ""  # unconditional, rather than the pipeline's "provide prompt or prompt_embeds"
        return kw

    def to_pipeline(self, pipe: Pipeline, z: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        """``(b, c, t, h, w)`` → the pipeline's latents."""
        if self.layout == "btchw":
            return z.permute(0, 2, 1, 3, 4)
        if self.layout == "packed":
            return pipe._pack_latents(z, pipe.transformer_spatial_patch_size, pipe.transformer_temporal_patch_size)
        return z

    def from_pipeline(self, pipe: Pipeline, x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        """The pipeline's latents → ``(b, c, t, h, w)``."""
        if self.layout == "btchw":
            return x.permute(0, 2, 1, 3, 4)
        if self.layout == "packed":
            p, pt = pipe.transformer_spatial_patch_size, pipe.transformer_temporal_patch_size
            _, _, t, h, w = shape
            return pipe._unpack_latents(x, t // pt, h // p, w // p, p, pt)
        return x


_BF16 = torch.bfloat16
PIPELINE_FAMILIES = (
    Family("AnimateDiff", ("AnimateDiffPipeline", "AnimateDiffSDXLPipeline", "AnimateDiffPAGPipeline")),
    Family("TextToVideoSD", ("TextToVideoSDPipeline", "TextToVideoZeroPipeline")),
    Family(
        "CogVideoX",
        ("CogVideoXPipeline",),
        "btchw",
        ("vae_scale_factor_spatial",),
        ("vae_scale_factor_temporal",),
        dtype=_BF16,
        dtype_source="CogVideoX-5b card and diffusers' CogVideoX docs: bfloat16 (2b: float16 also works)",
    ),
    Family(
        "Wan",
        ("WanPipeline",),
        spatial=("vae_scale_factor_spatial",),
        temporal=("vae_scale_factor_temporal",),
        dtype=_BF16,
        vae_dtype=torch.float32,
        dtype_source="diffusers' Wan docs: transformer bfloat16, AutoencoderKLWan float32",
        float32_latents=True,
    ),
    Family(
        "HunyuanVideo",
        ("HunyuanVideoPipeline",),
        spatial=("vae_scale_factor_spatial",),
        temporal=("vae_scale_factor_temporal",),
        dtype=_BF16,
        vae_dtype=torch.float16,
        dtype_source="hunyuanvideo-community card: transformer bfloat16 (float16 gives NaN), the rest float16",
        float32_latents=True,
    ),
    Family(
        "LTX",
        ("LTXPipeline",),
        "packed",
        spatial=("vae_spatial_compression_ratio",),
        temporal=("vae_temporal_compression_ratio",),
        dtype=_BF16,
        dtype_source="diffusers' LTX-Video docs: torch_dtype=torch.bfloat16",
        float32_latents=True,
    ),
    Family(
        "Mochi",
        ("MochiPipeline",),
        spatial=("vae_spatial_scale_factor",),
        temporal=("vae_temporal_scale_factor",),
        dtype=_BF16,
        dtype_source="diffusers' Mochi docs: variant='bf16', torch_dtype=torch.bfloat16",
    ),
    Family("Latte", ("LattePipeline",), frames_arg="video_length"),
    Family(
        "StableVideoDiffusion",
        ("StableVideoDiffusionPipeline",),
        "btchw",
        image=True,
        dtype_source="diffusers' SVD docs: torch_dtype=torch.float16, variant='fp16'",
    ),
)


def family_named(class_name: str) -> Family | None:
    """The family of a pipeline class name, or None."""
    return next((f for f in PIPELINE_FAMILIES if class_name in f.classes), None)


def pipeline_dtypes(
    class_name: str, device: str | torch.device, dtype: torch.dtype | None = None
) -> tuple[torch.dtype, torch.dtype | None]:
    """(pipeline dtype, VAE dtype or None for the same) a pipeline class is loaded in: ``dtype`` for both if
    given (it overrides); float32 on the CPU; on CUDA its family's documented dtypes (float16 for others).

    >>> pipeline_dtypes("WanPipeline", "cuda"), pipeline_dtypes("WanPipeline", "cpu")
    ((torch.bfloat16, torch.float32), (torch.float32, None))
    """
    if dtype is not None:
        return dtype, None
    if torch.device(device).type != "cuda":
        return torch.float32, None
    fam = family_named(class_name)
    return (fam.dtype, fam.vae_dtype) if fam is not None else (model_dtype(device), None)


def adapter_for(pipe: Pipeline) -> Family:
    """The family adapter of a loaded pipeline; one line naming the supported families otherwise."""
    name = type(pipe).__name__
    fam = family_named(name)
    if fam is not None:
        return fam
    families = PIPELINE_FAMILIES
    raise ValueError(
        f"{name} is not a supported video pipeline; supported: {', '.join(f.name for f in families)} "
        f"({', '.join(c for f in families for c in f.classes)})"
    )


def _patch_t(pipe: Pipeline) -> int | None:
    den = getattr(pipe, "transformer", None)
    return getattr(den.config, "patch_size_t", None) if den is not None else None


def _channels(pipe: Pipeline) -> int:
    vae_cfg = pipe.vae.config
    c = vae_cfg.get("latent_channels") or vae_cfg.get("z_dim")
    if c is None:
        den = getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)
        if den is None:
            raise ValueError("pipeline: it has neither a unet nor a transformer; pass a diffusers video pipeline")
        c = den.config.in_channels
    return int(c)


def _to_pil(frame: torch.Tensor):
    """A ``(3, H, W)`` frame in [-1, 1] as a PIL image (what image-to-video pipelines take)."""
    from PIL import Image

    a = ((frame.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(a)


def latent_shape(
    pipe: Pipeline, *, num_frames: int, height: int, width: int, batch: int = 1
) -> tuple[int, int, int, int, int]:
    """``(b, c, t, h, w)`` of the latents the pipeline denoises for a video of this size."""
    return adapter_for(pipe).latent_shape(pipe, num_frames=num_frames, height=height, width=width, batch=batch)


def pipeline_vae(pipe: Pipeline, source: str | None = None) -> VAEEncoder:
    """The pipeline's own autoencoder, to encode the reference clip and decode each pass, normalised as the
    pipeline normalises its latents (LTX: the VAE's ``latents_mean``/``latents_std`` buffers). SVD's
    temporal-decoder VAE encodes frame by frame and decodes all frames at once."""
    fam = adapter_for(pipe)
    enc = VAEEncoder(pipe.vae, source=f"{source} [vae]" if source else None)
    if fam.name == "LTX" and isinstance(getattr(pipe.vae, "latents_mean", None), torch.Tensor):
        enc.mean, enc.std = pipe.vae.latents_mean.tolist(), pipe.vae.latents_std.tolist()
        enc.info.scaling.update(latents_mean=enc.mean, latents_std=enc.std)
    if fam.name == "StableVideoDiffusion":
        enc = _FrameEncodedVAE(pipe.vae, source=enc.info.source)
    # Under offload the VAE's weights wait on the CPU and diffusers' hook moves them to the execution device
    # when it runs: its inputs go there.
    enc.device = torch.device(getattr(pipe, "_execution_device", enc.device))
    return enc


class _FrameEncodedVAE(VAEEncoder):
    """AutoencoderKLTemporalDecoder (SVD): an image encoder and a video decoder that needs ``num_frames``."""

    def __init__(self, model: Any, **kw: Any) -> None:
        super().__init__(model, **kw)
        self.kind = self.info.kind = "image"
        self.info.temporal_compression = 1

    @torch.no_grad()
    def decode(self, z: torch.Tensor, *, progress: Callable | None = None) -> torch.Tensor:
        mu = self._denormalise(z.float()).to(self.device, self.dtype)
        b, t = mu.shape[0], mu.shape[2]
        x = self.model.decode(rearrange(mu, "b c t h w -> (b t) c h w"), num_frames=t).sample
        return rearrange(x, "(b t) c h w -> b c t h w", b=b).float().clamp(-1, 1)
