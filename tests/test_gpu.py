"""CUDA runs, marked `gpu` and skipped without a CUDA device: ``pytest -m gpu`` (under 10 minutes on one GPU).

What they check (issue 16), each as a user runs it, and a summary table printed at the end (wall time and peak
GPU memory per check):

- ``snr`` with a tiny saved VAE on CUDA, ``--plot --json --csv``, one clip and two;
- a dataset run with a VAE on CUDA (``--results``, decoding workers);
- every pipeline family loaded by ``load_pipeline`` in its own documented dtypes, two FreeInit passes, finite,
  and its peak memory; three of them through ``freeinit --pipeline --device cuda --plot --json``;
- the ``spectrum`` and ``freqprior`` priors and ``--num-iters auto`` on CUDA;
- torchrun with two processes on one GPU (each rank its own process; NCCL where each has its own GPU);
- CPU vs CUDA: the pixel-encoder analysis to 1e-6 relative in every band power and SNR, a float32 VAE to 1e-4,
  the reference model's gaps to 1e-3 dB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from conftest import tiny_vaes, write_clip
from freqscope.cli import main

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

FAMILIES = [
    "animatediff",
    "animatediff_sdxl",
    "animatediff_pag",
    "text_to_video_sd",
    "cogvideox_5b",
    "cogvideox_2b",
    "cogvideox_1.5",
    "wan",
    "wan_unipc",
    "hunyuan_video",
    "ltx",
    "ltx_dynamic",
    "mochi",
    "latte",
    "svd",
]
ROWS: list[tuple[str, float, float, str]] = []  # (check, seconds, peak MiB, what held)


def summary_lines() -> list[str]:
    """The table of every check that ran (printed by tests/conftest.py's pytest_terminal_summary)."""
    if not ROWS:
        return []
    head = [f"GPU checks on {torch.cuda.get_device_name(0)} (torch {torch.__version__})"]
    head.append(f"{'check':<44} {'seconds':>8} {'peak MiB':>9}  held")
    return head + [f"{name:<44} {s:8.1f} {mib:9.0f}  {held}" for name, s, mib, held in ROWS]


class measured:
    """Wall time and peak GPU memory of a block, recorded as one row of the summary."""

    def __init__(self, name: str):
        self.name, self.held = name, ""

    def __enter__(self):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        torch.cuda.synchronize()
        held = self.held if exc[0] is None else f"FAILED: {exc[0].__name__}"
        ROWS.append((self.name, time.perf_counter() - self.t0, torch.cuda.max_memory_allocated() / 2**20, held))


def _cli(*args) -> str:
    r = CliRunner().invoke(main, [str(a) for a in args])
    assert r.exit_code == 0, r.output
    return r.output


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """Two textured clips, 9 frames of 64×64, in one folder."""
    d = tmp_path_factory.mktemp("gpu_clips")
    rng = np.random.default_rng(0)
    for i in range(2):
        base = rng.integers(0, 256, (64, 64, 3)).astype(np.float64)
        frames = np.stack([np.roll(base, (i + 1) * k, axis=1) for k in range(9)]).astype(np.uint8)
        write_clip(d / f"c{i}.mp4", frames, fps=8)
    return d


@pytest.fixture(scope="module")
def vae(tmp_path_factory) -> Path:
    return tiny_vaes(tmp_path_factory.mktemp("gpu_vaes"))["kl"]


def test_snr_with_a_vae_on_cuda_writes_every_output(clips, vae, tmp_path):
    for n, videos in (("one clip", [clips / "c0.mp4"]), ("two clips", sorted(clips.glob("*.mp4")))):
        with measured(f"snr --vae --device cuda, {n}") as m:
            out = tmp_path / n.replace(" ", "_")
            args = [a for v in videos for a in ("--video", v)]
            _cli("snr", *args, "--vae", vae, "--device", "cuda", "--json", f"{out}.json", "--plot", f"{out}.png",
                 "--csv", f"{out}.csv", "-q")
            d = json.loads(Path(f"{out}.json").read_text())
            assert d["encoder"]["dtype"] == "float32"  # the tiny AutoencoderKL asks for force_upcast
            assert abs(sum(b["energy_fraction"] for b in d["bands"]) - 1) < 1e-6
            m.held = "JSON, CSV, plot written; shares sum to 1"


def test_dataset_run_with_a_vae_on_cuda(clips, vae, tmp_path):
    with measured("dataset run, VAE on cuda, 2 workers") as m:
        r = tmp_path / "run.parquet"
        _cli("snr", "--video", clips, "--vae", vae, "--device", "cuda", "--results", r, "--workers", 2,
             "--json", tmp_path / "d.json", "--plot", tmp_path / "d.png", "-q")
        d = json.loads((tmp_path / "d.json").read_text())
        assert d["n_clips"] == 2 and d["n_skipped"] == 0
        m.held = "2 clips, results stored"


@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_in_its_own_dtypes(name, tmp_path):
    from test_pipeline_families import _clip_and_call

    from freqscope.freeinit_job import run_pipeline
    from freqscope.pipeline_adapter import load_pipeline
    from tiny_pipelines import build

    build(name, tmp_path / name)
    with measured(f"{name}: load_pipeline, 2 passes") as m:
        pipe = load_pipeline(str(tmp_path / name), device="cuda")
        frames, call = _clip_and_call(name)
        out = run_pipeline(pipe, frames, call_kwargs=call, num_iters=2, num_inference_steps=4, device="cuda")
        passes = out.runs[0].result.passes
        assert len(passes) == 2 and all(torch.isfinite(p.latents).all() for p in passes)
        assert all(p.latents.device.type == "cpu" for p in passes)  # results leave the GPU
        m.held = f"finite; {str(next(pipe.components['vae'].parameters()).dtype)[6:]} VAE"


@pytest.mark.parametrize("name", ["wan", "animatediff", "ltx_dynamic"])
def test_freeinit_cli_with_a_pipeline_on_cuda(name, clips, tmp_path):
    from tiny_pipelines import build

    build(name, tmp_path / name)
    with measured(f"freeinit --pipeline {name} --plot --json") as m:
        j = tmp_path / "f.json"
        _cli("freeinit", "--video", clips / "c0.mp4", "--pipeline", tmp_path / name, "--device", "cuda",
             "--prompt", "cat", "--frames", 9, "--height", 32, "--width", 32, "--steps", 4, "--num-iters", 2,
             "--plot", tmp_path / "f.png", "--json", j, "-q")
        assert json.loads(j.read_text())["runs"][0]["gap_db"]
        m.held = "gaps, plot and JSON written"


def test_priors_and_adaptive_freeinit_on_cuda(clips, tmp_path):
    with measured("reference model: spectrum, freqprior, auto") as m:
        j = tmp_path / "p.json"
        _cli("freeinit", "--video", clips / "c0.mp4", "--device", "cuda", "--size", 32, "--steps", 10,
             "--prior", "spectrum", "--prior", "freqprior", "--json", j, "--plot", tmp_path / "p.png", "-q")
        _cli("freeinit", "--video", clips / "c0.mp4", "--device", "cuda", "--size", 32, "--steps", 10,
             "--num-iters", "auto", "--json", tmp_path / "a.json", "-q")
        assert len(json.loads(j.read_text())["runs"]) == 2
        m.held = "3 priors run"


def test_torchrun_two_processes_on_one_gpu(clips, tmp_path):
    with measured("torchrun, 2 processes, 1 GPU") as m:
        out = tmp_path / "two.parquet"
        r = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
             "freqscope", "snr", "--video", str(clips), "--device", "cuda", "--results", str(out), "-q"],
            capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
        assert r.returncode == 0, r.stderr[-2000:]
        m.held = "both ranks wrote; rank 0 merged"


def test_cpu_and_cuda_agree(clips, vae, tmp_path):
    with measured("CPU vs CUDA: pixel, float32 VAE, gaps") as m:
        res = {}
        for dev in ("cpu", "cuda"):
            _cli("snr", "--video", clips / "c0.mp4", "--device", dev, "--json", tmp_path / f"p_{dev}.json", "-q")
            _cli("snr", "--video", clips / "c0.mp4", "--vae", vae, "--dtype", "float32", "--device", dev,
                 "--json", tmp_path / f"v_{dev}.json", "-q")
            _cli("freeinit", "--video", clips / "c0.mp4", "--device", dev, "--size", 32, "--steps", 10,
                 "--json", tmp_path / f"f_{dev}.json", "-q")
            res[dev] = {k: json.loads((tmp_path / f"{k}_{dev}.json").read_text()) for k in "pvf"}
        for key, rtol in (("p", 1e-6), ("v", 1e-4)):
            cpu, gpu = ([b["power"] for b in res[d][key]["bands"]] for d in ("cpu", "cuda"))
            np.testing.assert_allclose(gpu, cpu, rtol=rtol)
        gaps = [np.array(res[d]["f"]["runs"][0]["gap_db"], float) for d in ("cpu", "cuda")]
        np.testing.assert_allclose(gaps[1], gaps[0], atol=1e-3)
        m.held = "pixel 1e-6, VAE 1e-4, gaps 1e-3 dB"
