"""``freqscope freeinit`` as a user runs it: reference model and a real (tiny) diffusers pipeline."""

import json

import pytest

from conftest import run_cli
from freqscope.video import read_video


def test_reference_run_json_and_plot(bikes, tmp_path):
    j, p = tmp_path / "f.json", tmp_path / "f.png"
    r = run_cli(
        *"freeinit --video".split(),
        bikes,
        *"--size 32 --steps 10 --num-iters 3 --prior freeinit --prior pyoco-mixed --json".split(),
        j,
        "--plot",
        p,
    )
    assert r.returncode == 0, r.stderr
    assert "initialization gap per band" in r.stdout and "pyoco-mixed" in r.stdout
    d = json.loads(j.read_text())
    assert d["schema"] == "freqscope.freeinit/1" and d["scheduler"]["class"] == "DDIMScheduler"
    assert [b["name"] for b in d["bands"]][0] == "DC" and len(d["runs"]) == 2
    fi, py = d["runs"]
    assert len(fi["gap_db"]) == 3 and all(len(row) == 5 for row in fi["gap_db"])  # passes × bands
    assert len(fi["gap_db_predicted"]) == 3 and py["gap_db_predicted"] is None
    assert len(py["gap_db"]) == 1  # a single-pass prior
    assert set(fi["consistency"][0]) >= {"latent_frame_cosine", "pixel_frame_cosine", "temporal_flickering"}
    assert fi["info"]["renoise"] == "reuse" and fi["info"]["num_iters"] == 3
    assert p.read_bytes()[:4] == b"\x89PNG"
    assert "warning" not in r.stderr  # single-pass priors are not warned about by default


def test_flow_matching_reference_says_where_it_renoises(bikes, tmp_path):
    r = run_cli(
        *"freeinit --video".split(),
        bikes,
        *"--size 32 --steps 8 --schedule flow --shift 3 --json".split(),
        tmp_path / "f.json",
    )
    assert r.returncode == 0, r.stderr
    assert "warning: " in r.stderr and "re-noising from t=" in r.stderr
    d = json.loads((tmp_path / "f.json").read_text())
    assert d["runs"][0]["info"]["notes"]


@pytest.fixture(scope="module")
def animatediff(tmp_path_factory):
    from tiny_pipelines import tiny_animatediff

    root = tmp_path_factory.mktemp("pipes") / "animatediff"
    tiny_animatediff(root)
    return root


def test_pipeline_run_writes_videos_and_report(bikes, animatediff, tmp_path):
    out = tmp_path / "videos"
    out.mkdir()
    j = tmp_path / "p.json"
    r = run_cli(
        *"freeinit --video".split(),
        bikes,
        "--pipeline",
        animatediff,
        "--prompt",
        "a boat on the sea",
        *"--height 16 --width 32 --frames 8 --steps 3 --num-iters 2 --out-dir".split(),
        out,
        "--json",
        j,
        "-q",
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and r.stderr == ""
    d = json.loads(j.read_text())
    assert d["encoder"]["class_name"] == "AutoencoderKL" and d["latent_shape"] == [1, 4, 8, 8, 16]
    assert len(d["runs"][0]["gap_db"]) == 2 and len(d["videos"]) == 2
    x, _ = read_video(out / "freeinit_pass1.mp4", frames=8)
    assert x.shape == (1, 3, 8, 16, 32)


@pytest.mark.parametrize(
    "args,msg",
    [
        (["--num-iters", "0"], "'--num-iters'"),
        (["--method", "sinc"], "'--method'"),
        (["--d-s", "1.5"], r"\[0, 1\]"),
        (["--prior", "magic"], "'--prior'"),
        (["--prompt", "a cat"], "apply with --pipeline only"),
        (["--pipeline", "{tmp}"], "no model_index.json"),
        (["--pipeline", "./nope/nope"], "neither a local folder nor a hub id"),
        (["--diffuse-timestep", "5000"], "diffuse_timestep"),
        (["--prior", "freqprior", "--ratio", "3"], "ratio=3.0"),
        (["--renoise-alpha-bar", "0"], "renoise_alpha_bar"),
        (["--scheduler-config", "{tmp}"], "no scheduler config in"),
    ],
)
def test_bad_input(bikes, tmp_path, args, msg):
    import re

    out = tmp_path / "o.json"
    r = run_cli(
        *"freeinit --video".split(),
        bikes,
        *"--size 16 --steps 2 --json".split(),
        out,
        *[a.format(tmp=tmp_path) for a in args],
    )
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip() and not ln.startswith("freqscope: warning:")]
    assert len(lines) == 1 and lines[0].startswith("freqscope: error:") and "Traceback" not in r.stderr
    assert re.search(msg, lines[0]), lines[0]
    assert not out.exists()


def test_embedder_adds_embedding_consistency(bikes, tmp_path):
    import torch
    import transformers

    torch.manual_seed(0)
    cfg = transformers.ViTConfig(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, image_size=32, patch_size=8
    )
    transformers.ViTModel(cfg).save_pretrained(tmp_path / "vit")
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path / "vit")
    j = tmp_path / "e.json"
    r = run_cli(
        *"freeinit --video".split(),
        bikes,
        *"--size 16 --steps 4 --num-iters 2 --embedder".split(),
        tmp_path / "vit",
        "--json",
        j,
        "-q",
    )
    assert r.returncode == 0, r.stderr
    cons = json.loads(j.read_text())["runs"][0]["consistency"]
    assert len(cons) == 2 and all(0 < c["embedding_consistency"] <= 1.0001 for c in cons)
