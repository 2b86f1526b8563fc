"""Memory for real models (issue 16, item 3), as far as a CPU shows it: VAE tiling from the CLI, offload handed to
diffusers' own methods (GPU only: refused on the CPU), and a GPU out-of-memory error in one line that says what
to try."""

from __future__ import annotations

import json

import diffusers
import numpy as np
import pytest
import torch
from click.testing import CliRunner

import freqscope.snr_job
from conftest import tiny_vaes, write_clip
from freqscope.cli import main
from freqscope.encode import load_encoder
from freqscope.pipeline_adapter import load_pipeline
from tiny_pipelines import build


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    rng = np.random.default_rng(0)
    return write_clip(tmp_path_factory.mktemp("mem") / "c.mp4", rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8))


def test_vae_tiling_from_the_cli(clip, tmp_path):
    vae = tiny_vaes(tmp_path)["kl"]
    outs = {}
    for name, extra in (("plain", []), ("tiled", ["--vae-tiling"])):
        j = tmp_path / f"{name}.json"
        r = CliRunner().invoke(main, ["snr", "--video", str(clip), "--vae", str(vae), "--json", str(j), "-q", *extra])
        assert r.exit_code == 0, r.output
        outs[name] = json.loads(j.read_text())
    # Frames smaller than a tile: the same numbers (tiling splits only what does not fit; slicing changes the
    # batching, so float rounding may differ).
    tiled, plain = (np.array(outs[k]["snr_db"], float) for k in ("tiled", "plain"))
    np.testing.assert_allclose(tiled, plain, atol=1e-5)  # dB
    assert load_encoder(vae=str(vae), vae_tiling=True).model.use_tiling
    r = CliRunner().invoke(main, ["snr", "--video", str(clip), "--vae-tiling"])
    assert r.exit_code == 2 and "--vae-tiling applies to a VAE; give --vae" in r.output


def test_offload_is_diffusers_own_and_needs_a_gpu(tmp_path, monkeypatch):
    folder = tmp_path / "wan"
    build("wan", folder)
    with pytest.raises(ValueError, match="`offload` moves models between the CPU and a GPU.*give `device` cuda"):
        load_pipeline(str(folder), offload="model")
    with pytest.raises(ValueError, match="`offload` 'all': choose model or sequential"):
        load_pipeline(str(folder), device="cuda", offload="all")
    calls = []
    for method in ("enable_model_cpu_offload", "enable_sequential_cpu_offload"):
        record = lambda self, device=None, m=method: calls.append((m, device))  # noqa: E731
        monkeypatch.setattr(diffusers.DiffusionPipeline, method, record)
    pipe = load_pipeline(str(folder), device="cuda", offload="sequential", vae_tiling=True)  # nothing moved to cuda
    assert calls == [("enable_sequential_cpu_offload", torch.device("cuda"))] and pipe.vae.use_tiling
    assert next(pipe.transformer.parameters()).device.type == "cpu"


def test_gpu_out_of_memory_is_one_line_with_what_to_try(clip, monkeypatch):
    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total capacity ...")

    monkeypatch.setattr(freqscope.snr_job, "snr", oom)
    r = CliRunner().invoke(main, ["snr", "--video", str(clip)])
    assert r.exit_code == 2
    assert r.output.strip().splitlines() == [
        "freqscope: error: GPU out of memory (tried to allocate 20.00 GiB); try --offload model (or sequential) with "
        "--pipeline, --vae-tiling, a smaller --size or --frames (--height/--width with --pipeline), or --batch-size 1 "
        "for a dataset run"
    ]
