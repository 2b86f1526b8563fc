"""Temporal consistency of generated videos, weight-free, with an optional image embedder.

All take frames ``(b, c, t, h, w)``. Cosine similarities are over flattened frames (or embeddings);
VBench's temporal flickering score is ``(255 − mean |x_{i+1} − x_i|) / 255`` on 8-bit frames.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = [
    "frame_cosine",
    "first_frame_cosine",
    "temporal_flickering",
    "embedding_consistency",
    "consistency_metrics",
    "hf_image_embedder",
]


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


def temporal_flickering(frames: torch.Tensor) -> float:
    """VBench temporal flickering on frames in [-1, 1]: 1 for a static video, lower for flicker."""
    x = ((frames.float().clamp(-1, 1) + 1) * 127.5).round()
    _frames(x)
    mae = (x[:, :, 1:] - x[:, :, :-1]).abs().mean()
    return float((255 - mae) / 255)


def embedding_consistency(frames: torch.Tensor, embed: Callable[[torch.Tensor], torch.Tensor]) -> float:
    """VBench-style subject consistency: mean over frames i ≥ 1 of (cos(e_i, e_0) + cos(e_i, e_{i−1})) / 2,
    with ``embed`` mapping ``(n, 3, H, W)`` in [-1, 1] to ``(n, d)`` (e.g. DINO ViT-S/16 or CLIP)."""
    b, c, t, h, w = frames.shape
    e = embed(frames.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)).reshape(b, t, -1).float()
    first = F.cosine_similarity(e[:, 1:], e[:, :1].expand_as(e[:, 1:]), dim=-1)
    prev = F.cosine_similarity(e[:, 1:], e[:, :-1], dim=-1)
    return float(((first + prev) / 2).mean())


def consistency_metrics(latents: torch.Tensor, frames: torch.Tensor | None = None, *, embed=None) -> dict:
    """Latent- and pixel-space metrics of one result (``frames`` in [-1, 1]; omitted: pixel metrics skipped)."""
    out = {"latent_frame_cosine": frame_cosine(latents), "latent_first_frame_cosine": first_frame_cosine(latents)}
    if frames is not None:
        out |= {
            "pixel_frame_cosine": frame_cosine(frames),
            "pixel_first_frame_cosine": first_frame_cosine(frames),
            "temporal_flickering": temporal_flickering(frames),
        }
        if embed is not None:
            out["embedding_consistency"] = embedding_consistency(frames, embed)
    return out


def hf_image_embedder(path_or_id: str, *, device: str | torch.device = "cpu") -> Callable[[torch.Tensor], torch.Tensor]:
    """An image embedder from a transformers vision model (DINO ViT-S/16 ``facebook/dino-vits16``, a CLIP
    vision model, …) with its image processor: the CLS token (or ``image_embeds``) per frame."""
    try:
        from transformers import AutoImageProcessor, AutoModel
    except ImportError:  # pragma: no cover - transformers is a test extra
        raise ValueError("the image embedder needs transformers: pip install transformers") from None
    from .hub import check_hub_source

    check_hub_source(path_or_id, "image embedder")
    try:
        proc = AutoImageProcessor.from_pretrained(path_or_id)
        model = AutoModel.from_pretrained(path_or_id).to(device).eval()
    except Exception as e:  # noqa: BLE001 - transformers raises OSError, ValueError, HTTP errors
        raise ValueError(f"cannot load the image embedder {path_or_id!r}: {str(e).splitlines()[0][:200]}") from None
    if hasattr(model, "vision_model"):  # a full CLIP model: use its vision tower
        model = model.vision_model

    @torch.no_grad()
    def embed(x: torch.Tensor) -> torch.Tensor:
        imgs = ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        inputs = proc(images=list(imgs), return_tensors="pt").to(device)
        out = model(**inputs)
        if getattr(out, "image_embeds", None) is not None:
            return out.image_embeds
        return out.last_hidden_state[:, 0]

    return embed
