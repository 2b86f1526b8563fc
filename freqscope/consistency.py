"""Temporal consistency of generated videos: weight-free measures, VBench's and the FreeInit paper's.

All take frames ``(b, c, t, h, w)`` (pixels in [-1, 1]). Higher is more consistent everywhere; read them
next to :mod:`freqscope.motion`, since a video that does not move scores perfectly.

- ``frame_cosine`` / ``first_frame_cosine``: cosine of flattened consecutive frames / of each later frame
  to the first (weight-free, also on latents).
- ``temporal_flickering``: VBench's protocol (``vbench/temporal_flickering.py``): the frames are written to
  an H.264 mp4 and read back as 8-bit RGB, then ``(255 − mean_i mean |x_{i+1} − x_i|) / 255``. VBench
  scores it only on static videos (:func:`freqscope.motion.is_static`).
- ``vbench_consistency``: VBench's subject (DINO) and background (CLIP) consistency: per frame i ≥ 1,
  ``(max(0, cos(e_{i−1}, e_i)) + max(0, cos(e_0, e_i))) / 2``, averaged over frames.
- ``first_frame_similarity``: the FreeInit paper's metric (Wu et al. 2024, §5.1; TianxingWu/FreeInit#16):
  the mean cosine between the normalised DINO ViT-S/16 features of the first frame and of every later one
  (the paper prints it ×100).
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .hub import check_hub_source
from .motion import motion_metrics, to_uint8

__all__ = [
    "frame_cosine",
    "first_frame_cosine",
    "temporal_flickering",
    "vbench_consistency",
    "first_frame_similarity",
    "embedding_consistency",
    "vbench_normalized",
    "VBENCH_RANGE",
    "consistency_metrics",
    "hf_image_embedder",
]

#: VBench's per-dimension normalisation ``(score − Min) / (Max − Min)`` (``scripts/constant.py``).
VBENCH_RANGE: dict[str, tuple[float, float]] = {
    "subject_consistency": (0.1462, 1.0),
    "background_consistency": (0.2615, 1.0),
    "temporal_flickering": (0.6293, 1.0),
    "dynamic_degree": (0.0, 1.0),
}


def _frames(x: torch.Tensor) -> torch.Tensor:
    if x.ndim != 5 or x.shape[2] < 2:
        raise ValueError(f"expected (b, c, t, h, w) with t >= 2, got shape {tuple(x.shape)}")
    return x.float().permute(0, 2, 1, 3, 4).flatten(2)  # (b, t, c·h·w)


def frame_cosine(x: torch.Tensor) -> float:
    """Mean cosine similarity of consecutive frames."""
    f = _frames(x)
    return float(F.cosine_similarity(f[:, 1:], f[:, :-1], dim=-1).mean())


def first_frame_cosine(x: torch.Tensor) -> float:
    """Mean cosine similarity of every later frame to the first."""
    f = _frames(x)
    return float(F.cosine_similarity(f[:, 1:], f[:, :1].expand_as(f[:, 1:]), dim=-1).mean())


#: BT.601 limited-range RGB → Y'CbCr (what video codecs and VBench's readers assume for SD-style video).
_RGB_TO_YCC = np.array([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]]) / 255
_YCC_OFFSET = np.array([16.0, 128.0, 128.0])


def _rgb_to_yuv420(rgb: np.ndarray) -> np.ndarray:
    """One ``(H, W, 3)`` uint8 frame (even H, W) as a planar yuv420p array ``(3H/2, W)``: BT.601 limited
    range, chroma averaged over 2×2 blocks. Done here rather than by ffmpeg's converter, whose output for
    the same frame varied from call to call."""
    ycc = rgb.astype(np.float64) @ _RGB_TO_YCC.T + _YCC_OFFSET  # (H, W, 3)
    h, w = rgb.shape[:2]
    chroma = ycc[..., 1:].reshape(h // 2, 2, w // 2, 2, 2).mean(axis=(1, 3))  # (H/2, W/2, 2)
    q = lambda c: np.clip(np.round(c), 0, 255).astype(np.uint8).ravel()  # noqa: E731
    return np.concatenate([q(ycc[..., 0]), q(chroma[..., 0]), q(chroma[..., 1])]).reshape(-1, w)


def _yuv420_to_rgb(yuv: np.ndarray) -> np.ndarray:
    """The inverse of :func:`_rgb_to_yuv420` (chroma repeated over its 2×2 block), ``(H, W, 3)`` uint8."""
    h, w = yuv.shape[0] * 2 // 3, yuv.shape[1]
    flat = yuv.ravel()
    y = flat[: h * w].reshape(h, w).astype(np.float64)
    cb, cr = (flat[h * w + i * h * w // 4 : h * w + (i + 1) * h * w // 4].reshape(h // 2, w // 2) for i in (0, 1))
    chroma = np.stack([cb, cr], axis=-1).repeat(2, axis=0).repeat(2, axis=1).astype(np.float64)
    ycc = np.concatenate([y[..., None], chroma], axis=-1) - _YCC_OFFSET
    return np.clip(np.round(ycc @ np.linalg.inv(_RGB_TO_YCC).T), 0, 255).astype(np.uint8)


def _mp4_roundtrip(rgb: np.ndarray, fps: int = 8) -> np.ndarray:
    """``(t, H, W, 3)`` uint8 written as an H.264 yuv420p mp4 (as VBench's videos are) and decoded back.
    The same frames give the same bytes every time: colour conversion here, one encoder thread, no MB-tree."""
    import av

    h, w = rgb.shape[1:3]
    rgb = np.pad(rgb, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")  # yuv420p needs even sizes
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as c:
        # x264's defaults but MB-tree, whose rate control gave the same frames different bytes from one
        # process to the next; one thread.
        s = c.add_stream("libx264", rate=fps, options={"x264-params": "mbtree=0"})
        s.width, s.height, s.pix_fmt = rgb.shape[2], rgb.shape[1], "yuv420p"
        s.codec_context.thread_count = 1
        for f in rgb:
            for p in s.encode(av.VideoFrame.from_ndarray(_rgb_to_yuv420(f), format="yuv420p")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    buf.seek(0)
    with av.open(buf) as c:
        out = np.stack([_yuv420_to_rgb(f.to_ndarray(format="yuv420p")) for f in c.decode(video=0)])
    return out[:, :h, :w]


def temporal_flickering(frames: torch.Tensor, *, encode: bool = True) -> float:
    """VBench temporal flickering of frames in [-1, 1]: 1 for a static video, lower for flicker.
    ``encode``: through an mp4 first, as VBench reads its videos (``False``: on the 8-bit frames as they are)."""
    _frames(frames)
    scores = []
    for rgb in to_uint8(frames):
        x = _mp4_roundtrip(rgb) if encode else rgb
        x = torch.from_numpy(x).float()
        scores.append((255 - (x[1:] - x[:-1]).abs().mean()) / 255)  # mean over pairs of the per-pair MAE
    return float(torch.stack(scores).mean())


def vbench_consistency(e: torch.Tensor) -> float:
    """VBench subject/background consistency of frame embeddings ``(b, t, d)``: per frame i ≥ 1 the mean of
    the consecutive and first-frame cosines, each clamped at 0, averaged over frames (and videos)."""
    if e.ndim != 3 or e.shape[1] < 2:
        raise ValueError(f"embeddings must be (b, t, d) with t >= 2, got shape {tuple(e.shape)}")
    e = F.normalize(e.float(), dim=-1)
    prev = (e[:, 1:] * e[:, :-1]).sum(-1).clamp(min=0)
    first = (e[:, 1:] * e[:, :1]).sum(-1).clamp(min=0)
    return float(((prev + first) / 2).mean())


def first_frame_similarity(e: torch.Tensor) -> float:
    """The FreeInit paper's temporal consistency of frame embeddings ``(b, t, d)`` (DINO ViT-S/16): the mean
    cosine between the normalised first-frame features and those of every later frame (no clamping)."""
    if e.ndim != 3 or e.shape[1] < 2:
        raise ValueError(f"embeddings must be (b, t, d) with t >= 2, got shape {tuple(e.shape)}")
    e = F.normalize(e.float(), dim=-1)
    return float((e[:, 1:] * e[:, :1]).sum(-1).mean())


def _embed_frames(frames: torch.Tensor, embed: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    b, c, t, h, w = frames.shape
    return embed(frames.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)).reshape(b, t, -1)


def embedding_consistency(frames: torch.Tensor, embed: Callable[[torch.Tensor], torch.Tensor]) -> float:
    """:func:`vbench_consistency` of ``embed``'s features of every frame; ``embed`` maps ``(n, 3, H, W)`` in
    [-1, 1] to ``(n, d)`` (DINO ViT-S/16: subject consistency; CLIP ViT-B/32: background consistency)."""
    return vbench_consistency(_embed_frames(frames, embed))


def vbench_normalized(name: str, score: float) -> float:
    """A raw VBench score on VBench's normalised scale (``(score − Min)/(Max − Min)``, 1 = VBench's Max)."""
    if name not in VBENCH_RANGE:
        raise ValueError(f"no VBench normalisation for {name!r}; one of {', '.join(VBENCH_RANGE)}")
    lo, hi = VBENCH_RANGE[name]
    return (score - lo) / (hi - lo)


def consistency_metrics(
    latents: torch.Tensor,
    frames: torch.Tensor | None = None,
    *,
    embed: Callable[[torch.Tensor], torch.Tensor] | None = None,
    embed_background: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> dict:
    """Consistency and motion of one result, side by side. ``frames``: its video in [-1, 1] (omitted: latent
    metrics only); ``embed``: a DINO-type embedder (subject consistency and the FreeInit paper's first-frame
    similarity); ``embed_background``: a CLIP-type embedder (background consistency)."""
    out = {"latent_frame_cosine": frame_cosine(latents), "latent_first_frame_cosine": first_frame_cosine(latents)}
    if frames is None:
        return out
    out |= {
        "pixel_frame_cosine": frame_cosine(frames),
        "pixel_first_frame_cosine": first_frame_cosine(frames),
        "temporal_flickering": temporal_flickering(frames),
        **motion_metrics(frames),  # flow magnitude, dynamic degree and VBench's static flag
    }
    if embed is not None:
        e = _embed_frames(frames, embed)
        out["subject_consistency"] = vbench_consistency(e)
        out["first_frame_similarity"] = first_frame_similarity(e)
        out["embedding_consistency"] = out["subject_consistency"]  # the name freqscope.freeinit/1 used
    if embed_background is not None:
        out["background_consistency"] = embedding_consistency(frames, embed_background)
    return out


#: VBench's preprocessing (``vbench/utils.py``): DINO resizes the short side to 224 (bilinear, no antialias)
#: with ImageNet statistics; CLIP resizes to 224 (bicubic, no antialias), centre-crops 224×224, CLIP statistics.
VBENCH_TRANSFORMS = {
    "dino": ("bilinear", False, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "clip": ("bicubic", True, (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
}


def vbench_transform(x: torch.Tensor, kind: str, n_px: int = 224) -> torch.Tensor:
    """VBench's frame preprocessing of ``(n, 3, H, W)`` in [-1, 1] (8-bit quantised first, as read from a file)."""
    mode, crop, mean, std = VBENCH_TRANSFORMS[kind]
    x = ((x.float().clamp(-1, 1) + 1) * 127.5).round()
    h, w = x.shape[-2:]
    size = (n_px, int(n_px * w / h)) if h <= w else (int(n_px * h / w), n_px)  # short side to n_px
    x = F.interpolate(x, size=size, mode=mode, align_corners=False, antialias=False).round().clamp(0, 255)
    if crop:
        top, left = (x.shape[-2] - n_px) // 2, (x.shape[-1] - n_px) // 2
        x = x[..., top : top + n_px, left : left + n_px]
    m = torch.tensor(mean, device=x.device).view(1, 3, 1, 1)
    sd = torch.tensor(std, device=x.device).view(1, 3, 1, 1)
    return (x / 255 - m) / sd


def hf_image_embedder(
    path_or_id: str, *, device: str | torch.device = "cpu", preprocess: str = "vbench"
) -> Callable[[torch.Tensor], torch.Tensor]:
    """An image embedder from a transformers vision model (DINO ViT-S/16 ``facebook/dino-vits16``, a CLIP
    model, …): the CLS token (DINO) or the projected ``image_embeds`` (CLIP) per frame. ``preprocess``:
    ``"vbench"`` resizes and normalises as VBench does (DINO or CLIP transform by the model's type),
    ``"processor"`` uses the model's own image processor."""
    if preprocess not in ("vbench", "processor"):
        raise ValueError(f"preprocess={preprocess!r}: use 'vbench' or 'processor'")
    try:
        import transformers
        from transformers import AutoConfig, AutoImageProcessor, AutoModel
    except ImportError:  # pragma: no cover - transformers is a test extra
        raise ValueError("the image embedder needs transformers: pip install transformers") from None
    cache_only = check_hub_source(path_or_id, "image embedder")  # a cached id, the hub out of reach
    try:
        proc = None
        if preprocess == "processor":
            proc = AutoImageProcessor.from_pretrained(path_or_id, local_files_only=cache_only)
        config = AutoConfig.from_pretrained(path_or_id, local_files_only=cache_only)
        arch = (getattr(config, "architectures", None) or [""])[0]
        cls = getattr(transformers, arch, AutoModel)  # the saved class: keeps CLIP's projection head
        model = cls.from_pretrained(path_or_id, local_files_only=cache_only).to(device).eval()
    except Exception as e:  # noqa: BLE001 - transformers raises OSError, ValueError, HTTP errors
        raise ValueError(f"cannot load the image embedder {path_or_id!r}: {str(e).splitlines()[0][:200]}") from None
    is_clip = "clip" in type(model).__name__.lower()
    kw = {"interpolate_pos_encoding": True} if not is_clip else {}

    @torch.no_grad()
    def embed(x: torch.Tensor) -> torch.Tensor:
        if preprocess == "vbench":
            pixels = vbench_transform(x.to(device), "clip" if is_clip else "dino")
        else:
            assert proc is not None  # loaded above for preprocess="processor"
            imgs = ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
            pixels = proc(images=list(imgs), return_tensors="pt")["pixel_values"].to(device)
        pixels = pixels.to(getattr(model, "dtype", torch.float32))
        if hasattr(model, "get_image_features"):  # a full CLIP model: its projected image features
            out = model.get_image_features(pixel_values=pixels)
            return out if isinstance(out, torch.Tensor) else out.pooler_output
        out = model(pixel_values=pixels, **kw)
        if getattr(out, "image_embeds", None) is not None:
            return out.image_embeds
        return out.last_hidden_state[:, 0]

    return embed
