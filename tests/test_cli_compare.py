"""`freqscope compare` as a user runs it (in-process, click's CliRunner), on real clips with artefacts made on
purpose: what each report says, that the table, JSON and CSV agree, results files, round trips, bad input."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from conftest import write_clip
from freqscope.cli import main
from freqscope.video import read_video

FRAMES = 96  # 24 chunks of 4, 12 GOPs of 8: a period needs cycles to stand out of real content


def cli(*args) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, ["compare", *map(str, args)], catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(1, 3, t, H, W) in [-1, 1] → (t, H, W, 3) uint8."""
    return ((x[0].permute(1, 2, 3, 0).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()


@pytest.fixture(scope="module")
def real(bikes) -> np.ndarray:
    """96 frames of the real bikes clip, 96×160, as uint8."""
    x, _ = read_video(bikes, frames=FRAMES, start=1.0, size=(96, 160))
    return to_uint8(x)


@pytest.fixture(scope="module")
def sets(tmp_path_factory, bikes, bunny) -> tuple[Path, Path]:
    """Two folders of the same four real windows, written losslessly: identical sets."""
    root = tmp_path_factory.mktemp("sets")
    for side in ("a", "b"):
        (root / side).mkdir()
    for i, (path, start) in enumerate([(bikes, 0.0), (bikes, 4.0), (bunny, 0.0), (bunny, 2.0)]):
        x, _ = read_video(path, frames=16, start=start, size=(64, 96))
        for side in ("a", "b"):
            write_clip(root / side / f"c{i}.mp4", to_uint8(x))
    return root / "a", root / "b"


def test_identical_sets_give_exactly_zero_and_every_output_agrees(sets, tmp_path):
    a, b = sets
    code, out, err = cli(
        "--real",
        a,
        "--generated",
        b,
        "--frames",
        16,
        "--json",
        tmp_path / "c.json",
        "--csv",
        tmp_path / "c.csv",
        "--bootstrap",
        200,
    )
    assert code == 0, err
    d = json.loads((tmp_path / "c.json").read_text())
    assert d["schema"] == "freqscope.compare/1" and d["mode"] == "sets" and d["counts"] == {"real": 4, "generated": 4}
    assert all(x["delta_db"] == 0.0 and x["ci_db"] == [0.0, 0.0] for x in d["bands"])
    assert set(d["temporal"]["delta_db"]) == {0.0} and d["distance_db"] == 0.0 and d["periodic"] == []
    _agree(d, out, (tmp_path / "c.csv").read_text())


def _agree(d: dict, table: str, text: str) -> None:
    """The CSV's and the table's numbers are the JSON's."""
    rows = list(csv.DictReader(io.StringIO(text)))
    bands = [r for r in rows if r["kind"] == "band"]
    assert [r["name"] for r in bands] == [b["name"] for b in d["bands"]]
    for r, b in zip(bands, d["bands"]):
        assert float(r["delta_db"]) == pytest.approx(b["delta_db"], abs=1e-5)
        if "gain_db" in r:
            assert float(r["coherence"]) == pytest.approx(b["coherence"], abs=1e-5)
        line = next(x for x in table.splitlines() if x.startswith(b["name"] + " "))
        assert f"{b['delta_db']:+.1f}".replace("+0.0", "0.0").replace("-0.0", "0.0").lstrip("+") in line.replace(
            "+", ""
        )
    temporal = [r for r in rows if r["kind"] == "temporal"]
    assert [float(r["delta_db"]) for r in temporal] == pytest.approx(d["temporal"]["delta_db"], abs=1e-5)


def test_results_files_compare_as_their_clips_without_decoding(sets, tmp_path):
    """`snr --results` on each set, then `compare` on the two results files: the numbers of a direct run."""
    a, b = sets
    runner = CliRunner()
    for side, folder in (("a", a), ("b", b)):
        r = runner.invoke(
            main,
            [
                "snr",
                "--video",
                str(folder),
                "--frames",
                "16",
                "--results",
                str(tmp_path / f"{side}.parquet"),
                "--quiet",
            ],
            catch_exceptions=False,
        )
        assert r.exit_code == 0, r.stderr
    # The results files stand for the clips: a second, changed generated set must come from its file alone.
    code, _, err = cli(
        "--real",
        tmp_path / "a.parquet",
        "--generated",
        tmp_path / "b.parquet",
        "--json",
        tmp_path / "r.json",
        "--bootstrap",
        200,
        "--quiet",
    )
    assert code == 0, err
    code, _, err = cli(
        "--real", a, "--generated", b, "--frames", 16, "--json", tmp_path / "d.json", "--bootstrap", 200, "--quiet"
    )
    assert code == 0, err
    r, d = (json.loads((tmp_path / f).read_text()) for f in ("r.json", "d.json"))
    for key in ("bands", "temporal", "distance_db", "distance_ci_db", "heatmap"):
        assert r[key] == d[key], key


def _pair(tmp_path: Path, ref: np.ndarray, test: np.ndarray, name: str = "clip.mp4") -> tuple[Path, Path]:
    (tmp_path / "ref").mkdir(exist_ok=True)
    (tmp_path / "test").mkdir(exist_ok=True)
    return write_clip(tmp_path / "ref" / name, ref), write_clip(tmp_path / "test" / name, test)


def _paired(tmp_path: Path, ref: Path, test: Path, *more) -> dict:
    code, out, err = cli(
        "--reference",
        ref,
        "--test",
        test,
        "--frames",
        FRAMES,
        "--json",
        tmp_path / "p.json",
        "--csv",
        tmp_path / "p.csv",
        *more,
    )
    assert code == 0, err
    d = json.loads((tmp_path / "p.json").read_text())
    _agree(d, out, (tmp_path / "p.csv").read_text())
    return d


def test_a_gain_per_chunk_of_4_frames_is_a_period_of_4(tmp_path, real):
    """As a VAE decoding in chunks of 4 frames: each chunk's brightness a little off."""
    gain = np.repeat(1 + 0.04 * np.random.default_rng(1).standard_normal(FRAMES // 4), 4)
    test = np.clip(real * gain[:, None, None, None], 0, 255).round().astype(np.uint8)
    d = _paired(tmp_path, *_pair(tmp_path, real, test))
    assert [(p["axis"], p["period"]) for p in d["periodic"]] == [("time", 4)]
    assert d["mode"] == "paired" and all(0.99 < b["coherence"] <= 1.0 for b in d["bands"])


def test_a_gain_per_32_px_tile_is_a_spatial_period_of_32(tmp_path, bikes):
    x, _ = read_video(bikes, frames=8, size=(128, 256))
    ref = to_uint8(x)
    rng = np.random.default_rng(2)
    tiles = 1 + 0.05 * rng.standard_normal((128 // 32, 256 // 32))
    gain = np.kron(tiles, np.ones((32, 32)))[None, :, :, None]
    test = np.clip(ref * gain, 0, 255).round().astype(np.uint8)
    a, b = _pair(tmp_path, ref, test)
    code, out, err = cli("--reference", a, "--test", b, "--frames", 8, "--json", tmp_path / "t.json")
    assert code == 0, err
    found = {(p["axis"], p["period"]) for p in json.loads((tmp_path / "t.json").read_text())["periodic"]}
    assert ("width", 32) in found and not any(axis == "time" for axis, _ in found)
    assert "every 32 px (columns)" in out


def test_x264_with_a_fixed_gop_shows_its_period(tmp_path, real):
    """Each keyframe resets the codec's drift: the error by frame repeats every GOP (8 frames, no B-frames)."""
    ref = write_clip(tmp_path / "ref.mp4", real)
    test = tmp_path / "x264.mp4"
    with av.open(str(test), "w") as c:
        s = c.add_stream(
            "libx264", rate=25, options={"g": "8", "keyint_min": "8", "bf": "0", "sc_threshold": "0", "crf": "32"}
        )
        s.width, s.height, s.pix_fmt = real.shape[2], real.shape[1], "yuv420p"
        for a in real:
            for p in s.encode(av.VideoFrame.from_ndarray(a, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    d = _paired(tmp_path, ref, test)
    assert ("time", 8) in {(p["axis"], p["period"]) for p in d["periodic"]}


@pytest.mark.parametrize("name", ["kl", "cogvideox"])
def test_a_vae_round_trip(vaes, bikes, tmp_path, name):
    """An image VAE run per frame and a causal video VAE (random weights), through --vae: per-band numbers,
    the error by frame, the VAE's structure in the JSON."""
    code, out, err = cli(
        "--reference",
        bikes,
        "--vae",
        vaes[name],
        "--frames",
        9,
        "--size",
        32,
        "--json",
        tmp_path / "v.json",
        "--plot",
        tmp_path / "v.png",
    )
    assert code == 0, err
    d = json.loads((tmp_path / "v.json").read_text())
    assert d["vae"]["class_name"] and d["structure"]["time"]
    assert len(d["frames"]["error"]) == 9 and all(np.isfinite([b["gain_db"] for b in d["bands"]]))
    assert d["sources"]["vae"] == [str(vaes[name])] and "round trip" in out and (tmp_path / "v.png").stat().st_size
    if name == "cogvideox":
        assert d["structure"]["time"]["temporal_compression_ratio"] == 4


def test_an_identical_pair_is_no_error(tmp_path, real):
    a, b = _pair(tmp_path, real, real)
    d = _paired(tmp_path, a, b)
    assert all(x["gain_db"] == 0.0 and x["coherence"] == pytest.approx(1.0) for x in d["bands"])
    assert d["psnr_db"] is None and d["periodic"] == []  # infinite PSNR: null in JSON


@pytest.mark.parametrize(
    "args,msg",
    [
        ([], "give --real and --generated"),
        (["--real", "A", "--reference", "B"], "not both or neither"),
        (["--real", "{a}"], "needs both --real and --generated"),
        (["--reference", "{a}"], "needs --test"),
        (["--reference", "{a}", "--test", "{empty}"], "no same-named clip"),
        (["--real", "{a}", "--generated", "{missing}.parquet"], "not found"),
        (["--reference", "{a}", "--test", "{a}", "--bootstrap", "50"], "--bootstrap are for two sets"),
    ],
)
def test_bad_input_is_one_line_and_status_2(sets, tmp_path, args, msg):
    (tmp_path / "empty").mkdir()
    write_clip(tmp_path / "empty" / "other.mp4", np.zeros((4, 16, 16, 3), np.uint8))
    fill = {"a": sets[0], "empty": tmp_path / "empty", "missing": tmp_path / "missing"}
    code, out, err = cli(*[a.format(**fill) for a in args])
    assert code == 2 and msg in err and len(err.strip().splitlines()) == 1, err


def test_a_vae_in_a_subfolder_of_a_model(vaes, bikes, tmp_path):
    """As a pipeline's repository holds it: `--vae MODEL --vae-subfolder vae`."""
    import shutil

    shutil.copytree(vaes["kl"], tmp_path / "model" / "vae")
    code, out, err = cli(
        "--reference", bikes, "--vae", tmp_path / "model", "--vae-subfolder", "vae", "--frames", 4, "--size", 32
    )
    assert code == 0, err
    assert "round trip" in out
