"""CUDA runs (marked `gpu`, skipped without a CUDA device): every pipeline family in fp16 and bf16, and the
`freqscope snr` demo whose CUDA generator used to meet CPU latents."""

import pytest
import torch

from conftest import run_cli

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
@pytest.mark.parametrize(
    "name",
    [
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
    ],
)
def test_family_runs_on_cuda(name, dtype):
    from test_pipeline_families import _clip_and_call

    from freqscope.freeinit_job import run_pipeline
    from tiny_pipelines import build

    pipe = build(name).to("cuda", dtype)
    frames, call = _clip_and_call(name)
    out = run_pipeline(pipe, frames, call_kwargs=call, num_iters=2, num_inference_steps=4, device="cuda")
    passes = out.runs[0].result.passes
    assert len(passes) == 2 and all(torch.isfinite(p.latents).all() for p in passes)
    assert passes[-1].latents.device.type == "cuda"


def test_snr_demo_on_cuda(bikes, tmp_path):
    r = run_cli("snr", "--video", bikes, "--seeds", 4, "--device", "cuda", "--json", tmp_path / "s.json")
    assert r.returncode == 0, r.stderr


def test_freeinit_cli_on_cuda(bikes, tmp_path):
    from tiny_pipelines import build

    build("wan", tmp_path / "wan")
    r = run_cli(
        *"freeinit --video".split(), bikes, "--pipeline", tmp_path / "wan", "--device", "cuda",
        *"--prompt cat --frames 9 --height 16 --width 16 --steps 4 --num-iters 3 -q".split(),
    )
    assert r.returncode == 0, r.stderr
