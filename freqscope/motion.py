"""How much a video moves, weight-free: dense optical flow (OpenCV's Farnebäck) and VBench's motion rules.

FreeInit's known side effect is over-smoothed motion, so consistency scores alone reward near-static
videos; these measures are reported next to them. Frames are ``(b, 3, t, H, W)`` in [-1, 1]; they are
quantised to 8 bits (as a video file holds them) and converted to grey before the flow is computed.

VBench computes flow with RAFT (weights); we use Farnebäck (Farnebäck 2003, OpenCV), so the absolute
magnitudes differ somewhat from VBench's, while the rules built on them (the top-5 % mean per frame pair,
thresholds that scale with the frame size and count) are VBench's own, from ``vbench/dynamic_degree.py``
and ``vbench/cli/static_filter.py``.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "to_uint8",
    "optical_flow",
    "flow_magnitude",
    "top_fraction_mean",
    "dynamic_degree",
    "is_static",
    "motion_metrics",
]

#: Farnebäck parameters (pyr_scale, levels, winsize, iterations, poly_n, poly_sigma, flags): OpenCV's
#: documented example values, with 5 pyramid levels so that motions of tens of pixels are followed.
FARNEBACK = (0.5, 5, 15, 3, 5, 1.2, 0)


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """``(b, 3, t, H, W)`` in [-1, 1] → ``(b, t, H, W, 3)`` uint8, rounded as a video writer does."""
    if frames.ndim != 5 or frames.shape[1] != 3:
        raise ValueError(f"frames must be (b, 3, t, H, W) in [-1, 1], got shape {tuple(frames.shape)}")
    x = ((frames.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 4, 1).cpu().numpy()


def optical_flow(frames: torch.Tensor) -> torch.Tensor:
    """Dense flow between consecutive frames, ``(b, t−1, 2, H, W)`` in pixels (x then y displacement)."""
    import cv2

    rgb = to_uint8(frames)
    b, t = rgb.shape[:2]
    if t < 2:
        raise ValueError(f"frames must have t >= 2 to measure motion, got shape {tuple(frames.shape)}")
    out = np.empty((b, t - 1, 2, *rgb.shape[2:4]), np.float32)
    for i in range(b):
        grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in rgb[i]]
        for k in range(t - 1):
            flow = cv2.calcOpticalFlowFarneback(grey[k], grey[k + 1], None, *FARNEBACK)  # type: ignore[call-overload]  # flow=None: allocate
            out[i, k] = flow.transpose(2, 0, 1)
    return torch.from_numpy(out)


def flow_magnitude(flow: torch.Tensor) -> torch.Tensor:
    """Per-pixel displacement length ``√(u² + v²)``, ``(b, t−1, H, W)``."""
    return flow.float().pow(2).sum(dim=2).sqrt()


def top_fraction_mean(magnitude: torch.Tensor, fraction: float) -> torch.Tensor:
    """Mean of the largest ``int(H·W·fraction)`` magnitudes of each frame pair (VBench: 5 % for dynamic
    degree, 2 % for the static filter), ``(b, t−1)``."""
    b, n, h, w = magnitude.shape
    k = max(1, int(h * w * fraction))
    return magnitude.reshape(b, n, h * w).topk(k, dim=-1).values.mean(dim=-1)


def dynamic_degree(magnitude: torch.Tensor) -> torch.Tensor:
    """VBench's dynamic degree per video, ``(b,)`` bool: moving if at least ``round(4·T/16)`` frame pairs
    have a top-5 % flow above ``6·min(H, W)/256`` pixels (T frames; VBench first subsamples to ~8 fps)."""
    b, n, h, w = magnitude.shape
    thres, count = 6.0 * min(h, w) / 256.0, round(4 * (n + 1) / 16.0)
    score = top_fraction_mean(magnitude, 0.05)
    return (score > thres).sum(dim=1) >= count


def _is_static(pairs: torch.Tensor, ends: torch.Tensor) -> torch.Tensor:
    """VBench's static rule from the flow magnitudes of the consecutive pairs ``(b, t−1, H, W)`` and of the
    first→last and last→first pairs ``(b, 2, H, W)``."""
    b, n, h, w = pairs.shape
    thres, count = 3.0 * min(h, w) / 256.0, round(2 * (n + 1) / 16.0)
    steady = (top_fraction_mean(pairs, 0.02) > thres).sum(dim=1) <= count
    return steady & (top_fraction_mean(ends, 0.02) <= thres * count * 2).all(dim=1)


def _end_pairs(frames: torch.Tensor) -> torch.Tensor:
    """Flow magnitude of the pairs (first, last) and (last, first), ``(b, 2, H, W)``."""
    return flow_magnitude(optical_flow(torch.cat([frames[:, :, :1], frames[:, :, -1:], frames[:, :, :1]], dim=2)))


def is_static(frames: torch.Tensor) -> torch.Tensor:
    """VBench's static filter (the videos on which temporal flickering is scored), ``(b,)`` bool: no more
    than ``round(2·T/16)`` consecutive pairs with a top-2 % flow above ``3·min(H, W)/256`` pixels, and the
    first↔last pairs below ``2·count`` times that threshold."""
    return _is_static(flow_magnitude(optical_flow(frames)), _end_pairs(frames))


def motion_metrics(frames: torch.Tensor) -> dict:
    """Mean flow magnitude (pixels per frame, and as a fraction of the short side), VBench's dynamic degree
    and its static flag of one video ``(1, 3, t, H, W)`` in [-1, 1]; the consecutive pairs' flow is computed
    once for all of them."""
    mag = flow_magnitude(optical_flow(frames))
    short = min(frames.shape[-2:])
    mean = float(mag.mean())
    return {
        "flow_px": mean,
        "flow_rel": mean / short,
        "dynamic_degree": float(dynamic_degree(mag).float().mean()),
        "static": bool(_is_static(mag, _end_pairs(frames)).all()),
    }
