"""``freqscope snr`` run as a user runs it: a subprocess, real clips, exit codes, files."""

import csv
import json
import shutil

import numpy as np
import pytest
import torch

from conftest import numbered_frames, run_cli, write_clip


def _ok(r):
    assert r.returncode == 0, r.stderr
    return r


def test_snr_table_json_csv_plot(bikes, tmp_path):
    j, c, p = tmp_path / "o.json", tmp_path / "o.csv", tmp_path / "o.png"
    r = _ok(
        run_cli(
            *"snr --video".split(),
            bikes,
            *"--frames 8 --size 64 --json".split(),
            j,
            "--csv",
            c,
            "--plot",
            p,
            *"--seeds 2".split(),
        )
    )
    assert "per-band SNR" in r.stdout and "t=999" in r.stdout and "0 dB at t" in r.stdout
    d = json.loads(j.read_text())
    assert d["schema"] == "freqscope.snr/2" and d["video"] == bikes
    assert d["encoder"]["name"] == "pixel" and d["latent_shape"] == [1, 3, 8, 64, 144]
    assert d["timesteps"] == list(range(1000)) and len(d["schedule"]["alphas_cumprod"]) == 1000
    assert d["schedule"]["alphas_cumprod"][999] == pytest.approx(0.0046600985, rel=2e-5)
    assert [b["name"] for b in d["bands"]] == ["DC", "(0, 0.125)", "[0.125, 0.25)", "[0.25, 0.5)", "[0.5, 1.732]"]
    assert d["bands"][0]["lo"] == d["bands"][0]["hi"] == 0
    assert sum(b["energy_fraction"] for b in d["bands"]) == pytest.approx(1.0)
    assert len(d["snr_db"]) == 5 and all(len(row) == 1000 for row in d["snr_db"])
    assert len(d["crossing_timestep"]) == 5 and len(d["snr_db_sampled"]["mean"]) == 5
    rows = list(csv.DictReader(c.read_text().splitlines()))
    assert len(rows) == 5 * 1000 and float(rows[999]["snr_db"]) == pytest.approx(d["snr_db"][0][999], rel=1e-5)
    assert p.read_bytes()[:4] == b"\x89PNG"
    import os
    import stat

    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(j.stat().st_mode) == 0o666 & ~umask  # not mkstemp's private 0600


def test_quiet_prints_nothing(bikes, tmp_path):
    r = _ok(run_cli("snr", "--video", bikes, "--frames", "4", "--size", "32", "-q", "--json", tmp_path / "q.json"))
    assert r.stdout == "" and r.stderr == ""


def test_several_clips_and_a_folder(bikes, bunny, tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    shutil.copy(bikes, folder / "a.mp4")
    shutil.copy(bunny, folder / "b.mp4")
    j = tmp_path / "m.json"
    r = _ok(run_cli("snr", "--video", folder, "--video", bikes, "--frames", "4", "--size", "32", "--json", j))
    d = json.loads(j.read_text())
    assert len(d["clips"]) == 3 and len(d["video"]) == 3 and "3 clips" in r.stdout
    per = np.array([c["snr_db"] for c in d["clips"]], dtype=float)
    # The mean over clips is taken in linear power (issue 8).
    assert np.allclose(np.array(d["snr_db"], dtype=float), 10 * np.log10((10 ** (per / 10)).mean(0)))
    assert all(hi >= m for row_hi, row in zip(d["snr_db_hi"], d["snr_db"]) for hi, m in zip(row_hi, row))
    assert max(b["power_std"] for b in d["bands"]) > 0


def test_vae_schedules_and_flow(bikes, vaes, tmp_path):
    j = tmp_path / "v.json"
    _ok(
        run_cli(
            *"snr --video".split(),
            bikes,
            *"--frames 4 --size 32 --vae".split(),
            vaes["kl"],
            "--json",
            j,
            *"--schedule animatediff".split(),
        )
    )
    d = json.loads(j.read_text())
    assert d["encoder"]["name"] == "vae" and d["encoder"]["class_name"] == "AutoencoderKL"
    assert d["encoder"]["scaling"]["scaling_factor"] == 0.18215 and d["latent_shape"] == [1, 4, 4, 16, 36]
    _ok(run_cli(*"snr --video".split(), bikes, *"--frames 4 --size 32 --schedule flow --shift 3 --json".split(), j))
    d = json.loads(j.read_text())
    assert d["schedule"]["kind"] == "flow" and d["schedule"]["sigmas"][-1] == 1.0
    assert all(row[-1] is None for row in d["snr_db"])  # −inf dB at σ = 1 is written as null
    _ok(
        run_cli(
            *"snr --video".split(),
            bikes,
            *"--frames 4 --size 32 --zero-terminal-snr --json".split(),
            j,
            *"--decomposition spatial --bands 0.2,0.6".split(),
        )
    )
    d = json.loads(j.read_text())
    assert d["decomposition"] == "spatial" and len(d["bands"]) == 4
    assert d["schedule"]["alphas_cumprod"][-1] == pytest.approx(0, abs=1e-12)


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory, vaes):
    d = tmp_path_factory.mktemp("bad")
    good = write_clip(d / "good.mp4", numbered_frames(12))
    (d / "text.mp4").write_text("not a video")
    data = good.read_bytes()
    (d / "trunc.mp4").write_bytes(data[: len(data) // 3])
    write_clip(d / "one.mp4", numbered_frames(1))
    write_clip(d / "tiny.mp4", numbered_frames(3, h=6, w=6))
    (d / "novae").mkdir()
    import av

    with av.open(str(d / "audio.m4a"), "w") as c:
        s = c.add_stream("aac", rate=8000)
        f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        f.sample_rate = 8000
        for p in [*s.encode(f), *s.encode()]:
            c.mux(p)
    import diffusers
    import torch

    m = diffusers.AutoencoderKL.from_pretrained(vaes["kl"])
    with torch.no_grad():
        m.quant_conv.weight.fill_(float("inf"))
    m.save_pretrained(d / "nanvae")
    return d


@pytest.mark.parametrize(
    "args,msg",
    [
        (["--video", "{d}/missing.mp4"], "not found"),
        (["--video", "{d}/text.mp4"], "not a readable video"),
        (["--video", "{d}/trunc.mp4"], "truncated|not a readable|no decodable"),
        (["--video", "{d}/audio.m4a"], "no video stream"),
        (["--video", "{d}/good.mp4", "--start", "100"], "past the end"),
        (["--video", "{d}/one.mp4"], "only 1 frame"),
        (["--video", "{d}/tiny.mp4"], "too small"),
        (["--video", "{d}/good.mp4", "--frames", "1"], "at least 2"),
        (["--video", "{d}/good.mp4", "--bands", "0.5,0.25"], "strictly increasing"),
        (["--video", "{d}/good.mp4", "--bands", "-0.1,0.2"], "> 0"),
        (["--video", "{d}/good.mp4", "--bands", "0.5,3"], "largest distance"),
        (["--video", "{d}/good.mp4", "--bands", "x"], "comma-separated"),
        (["--video", "{d}/good.mp4", "--encoder", "clip"], "'--encoder'"),
        (["--video", "{d}/good.mp4", "--schedule", "karras"], "'--schedule'"),
        (["--video", "{d}/good.mp4", "--vae", "{d}/novae"], "no autoencoder config.json"),
        (["--video", "{d}/good.mp4", "--vae", "{d}/nanvae"], "NaN/Inf"),
        (["--video", "{d}/good.mp4", "--scheduler-config", "{d}/novae"], "no scheduler config"),
        (
            ["--video", "{d}/good.mp4", "--device", "cuda:0"]
            if not __import__("torch").cuda.is_available()
            else ["--video", "{d}/good.mp4", "--device", "tpu"],
            "--device",
        ),
        (["--video", "{d}/good.mp4", "--fps", "5", "--stride", "2"], "not both"),
    ],
)
def test_bad_input_one_line_exit_2_no_file(bad_inputs, args, msg, tmp_path):
    out = tmp_path / "out.json"
    r = run_cli("snr", *[a.format(d=bad_inputs) for a in args], "--json", out, "--plot", tmp_path / "o.png")
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip() and not ln.startswith("freqscope: warning:")]
    assert len(lines) == 1 and lines[0].startswith("freqscope: error:"), r.stderr
    assert "Traceback" not in r.stderr
    import re

    assert re.search(msg, lines[0]), lines[0]
    assert not out.exists() and not (tmp_path / "o.png").exists()
    assert not list(tmp_path.iterdir())  # no temporary file left either


def test_unwritable_output(bad_inputs, tmp_path):
    # issue 9/11: a missing output folder is created (when the output is written), not refused
    r = run_cli("snr", "--video", bad_inputs / "good.mp4", "--json", tmp_path / "no" / "such" / "dir.json")
    assert r.returncode == 0 and (tmp_path / "no" / "such" / "dir.json").is_file()
    (tmp_path / "file").write_text("")
    r = run_cli("snr", "--video", bad_inputs / "good.mp4", "--json", tmp_path / "file" / "dir.json")
    assert r.returncode == 2 and "is not a folder" in r.stderr
    r = run_cli("snr", "--video", bad_inputs / "good.mp4", "--plot", tmp_path / "x.gif")
    assert r.returncode == 2 and "unknown format '.gif'" in r.stderr and not (tmp_path / "x.gif").exists()


def test_fewer_frames_warns_and_runs(bad_inputs):
    r = _ok(run_cli("snr", "--video", bad_inputs / "good.mp4", "--frames", "30"))
    assert "warning: " in r.stderr and "asked for 30 frames, the clip gives 12" in r.stderr


def test_band_videos(bikes, tmp_path):
    from freqscope.video import read_video

    out = tmp_path / "bands"
    out.mkdir()
    r = _ok(run_cli("snr", "--video", bikes, "--frames", "8", "--size", "32", "--band-videos", out, "-q"))
    assert r.stderr == ""
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "band0_DC.mp4",
        "band1_0_0.125.mp4",
        "band2_0.125_0.25.mp4",
        "band3_0.25_0.5.mp4",
        "band4_0.5_1.732.mp4",
    ]
    dc, _ = read_video(out / "band0_DC.mp4", frames=8)
    high, _ = read_video(out / "band4_0.5_1.732.mp4", frames=8)
    assert dc.shape == (1, 3, 8, 32, 72)
    assert dc[0, :, 0].std(dim=(-2, -1)).max() < 0.02  # the DC band is one flat colour
    assert high[0, :, 0].std() > 0.05  # the high band holds edges and texture
    # issue 9/11: a missing --band-videos folder is created
    r = _ok(run_cli("snr", "--video", bikes, "--frames", "4", "--size", "16", "--band-videos", tmp_path / "a" / "b"))
    assert len(list((tmp_path / "a" / "b").glob("band*.mp4"))) == 5


def test_band_videos_keep_the_clips_colour(tmp_path):
    """Each band video is the clip's mean colour plus that band's content (one gain for all channels)."""
    from freqscope.bands import make_bands
    from freqscope.report import band_video_frames, write_band_videos
    from freqscope.video import read_video

    g = torch.Generator().manual_seed(0)
    colour = torch.tensor([0.1, 0.05, 0.02]).view(1, 3, 1, 1, 1)  # ≈ (141, 133, 130) in 8 bits
    z0 = colour + 0.3 * torch.randn(1, 3, 8, 32, 48, generator=g)
    mean = z0.mean(dim=(-3, -2, -1)).flatten()  # the clip's own mean colour
    bands = make_bands((8, 32, 48))
    for i in range(len(bands)):
        f = band_video_frames(z0, bands, i)
        assert torch.allclose(f.mean(dim=(-3, -2, -1)).flatten(), mean, atol=1e-4)
    paths = write_band_videos(z0, bands, tmp_path)
    dc, _ = read_video(paths[0], frames=8)
    rgb = (dc.mean(dim=(-3, -2, -1)).flatten() + 1) * 127.5
    assert torch.allclose(rgb, (mean + 1) * 127.5, atol=2.5)  # not stretched to (254, 72, 0)
