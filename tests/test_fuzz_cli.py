"""Property test (hypothesis): hostile command lines and input files never end in a traceback, a status
other than 0 or 2, or a file changed outside the outputs named on the command line.

The CLI runs in-process (click's CliRunner) on a tiny clip, so ~50 examples take well under a minute.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import write_clip
from freqscope.cli import main

VIDEOS = ["clip.mp4", "text.mp4", "empty.mp4", "fifo", "", "clips", "missing.mp4", "link.mp4"]
FILE_OUTPUTS = ["out.json", "out.csv", "fig.png", "-", "clip.mp4", "fifo", "clips", "sub/deep/x.json", "",
                "fig.gif", "link.json", "noext", "x" * 245 + ".json", "x" * 300 + ".json", "text.mp4/x.json"]
CONFIGS = ["sched.json", "unet.json", "listcfg", "bigbeta.json", "missing.json", "fifo", "", "clips", "sd"]
NUMBERS = ["0", "1", "2", "8", "-1", "1e20", "nan", "inf", "0.5", "x", str(2**63 - 1), str(2**70)]

OPTIONS = {
    "--frames": st.sampled_from(["1", "2", "8", "1000", "0", "x", str(10**12)]),
    "--stride": st.sampled_from(["1", "2", "0", "1000"]),
    "--fps": st.sampled_from(NUMBERS),
    "--start": st.sampled_from(NUMBERS),
    "--size": st.sampled_from(["1", "8", "16", "100000", "0"]),
    "--seed": st.sampled_from(NUMBERS),
    "--device": st.sampled_from(["cpu", "meta", "mps", "cuda:7", "xyz", "", "cpu:3"]),
    "--encoder": st.sampled_from(["pixel", "vae", "auto", "clip"]),
    "--vae": st.sampled_from(["someone/a-vae", "missing", "text.mp4", "clips", ""]),
    "--downsample": st.sampled_from(["1", "2", "64"]),
    "--dtype": st.sampled_from(["float32", "float16", "int8"]),
    "--schedule": st.sampled_from(["sd", "flow", "cosine", "karras"]),
    "--scheduler-config": st.sampled_from(CONFIGS),
    "--shift": st.sampled_from(NUMBERS),
    "--bands": st.sampled_from(["0.1,0.5", "x", "", "0.5,0.1", "1e309", "0.2"]),
}
SNR_OPTIONS = {
    **OPTIONS,
    "--decomposition": st.sampled_from(["spatial", "temporal", "spatiotemporal", "xyz"]),
    "--time-scale": st.sampled_from(NUMBERS),
    "--seeds": st.sampled_from(["0", "1", "-1"]),
    "--json": st.sampled_from(["out.json"] * 4 + FILE_OUTPUTS),
    "--csv": st.sampled_from(["out.csv"] * 4 + FILE_OUTPUTS),
    "--plot": st.sampled_from(["fig.png"] * 4 + FILE_OUTPUTS),
    "--band-videos": st.sampled_from(["bv", "clips", "clip.mp4", "", "-", "new/bv", "bv"]),
}
FREEINIT_OPTIONS = {
    **OPTIONS,
    "--num-iters": st.sampled_from(["1", "2", "0"]),
    "--d-s": st.sampled_from(["0.25", "1.5", "nan", "-1"]),
    "--diffuse-timestep": st.sampled_from(["0", "999", "5000"]),
    "--prior": st.sampled_from(["freeinit", "gaussian", "magic"]),
    "--json": st.sampled_from(["out.json"] * 4 + FILE_OUTPUTS),
    "--plot": st.sampled_from(["fig.png"] * 4 + FILE_OUTPUTS),
}


def _sandbox(root: Path) -> None:
    """Input files, good and hostile, in ``root``."""
    rng = np.random.default_rng(0)
    write_clip(root / "clip.mp4", rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8))
    (root / "text.mp4").write_text("not a video")
    (root / "empty.mp4").write_bytes(b"")
    os.mkfifo(root / "fifo")
    (root / "clips").mkdir()
    (root / "clips" / "a.mp4").write_bytes((root / "clip.mp4").read_bytes())
    (root / "link.mp4").symlink_to("clip.mp4")
    (root / "link.json").symlink_to("target.json")
    (root / "sched.json").write_text(json.dumps({"_class_name": "DDIMScheduler", "beta_schedule": "linear"}))
    (root / "unet.json").write_text(json.dumps({"_class_name": "UNet2DConditionModel", "in_channels": 4}))
    (root / "bigbeta.json").write_text(json.dumps({"_class_name": "DDIMScheduler", "beta_end": 1.5}))
    (root / "listcfg").mkdir()
    (root / "listcfg" / "scheduler_config.json").write_text("[1, 2]")


def _state(root: Path) -> dict[str, str]:
    """Every entry under ``root``: kind and content hash (a FIFO is never opened)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "link:" + os.readlink(p)
            elif p.is_dir():
                out[rel] = "dir"
            elif p.is_fifo():
                out[rel] = "fifo"
            else:
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _allowed(args: list[str], root: Path) -> set[str]:
    """What the command line names as outputs (and the folders leading to them), relative to ``root``."""
    named = set()
    for flag in ("--json", "--csv", "--plot", "--band-videos", "--out-dir"):
        for i, a in enumerate(args[:-1]):
            if a == flag and args[i + 1] not in ("", "-"):
                named.add(os.path.realpath(root / args[i + 1]))
    allowed = set()
    for rel in _state(root):
        real = os.path.realpath(root / rel)
        if any(real == n or real.startswith(n + os.sep) or n.startswith(real + os.sep) for n in named):
            allowed.add(rel)
    return allowed


@st.composite
def command_lines(draw):
    """A command line: one clip (mostly the good one, so that runs get as far as writing), a few
    outputs drawn from hostile names, and a few other options drawn from hostile values."""
    cmd = draw(st.sampled_from(["snr", "snr", "snr", "freeinit"]))
    opts = SNR_OPTIONS if cmd == "snr" else FREEINIT_OPTIONS
    outputs = [f for f in ("--json", "--csv", "--plot", "--band-videos", "--out-dir") if f in opts]
    others = sorted(set(opts) - set(outputs))
    args = [cmd, "--video", draw(st.sampled_from(["clip.mp4"] * 4 + VIDEOS))]
    if draw(st.integers(0, 9)) == 0:
        args += ["--video", draw(st.sampled_from(VIDEOS))]
    for flag in draw(st.lists(st.sampled_from(outputs), min_size=1, max_size=3, unique=True)):
        args += [flag, draw(opts[flag])]
    chosen = draw(st.lists(st.sampled_from(others), max_size=2, unique=True))
    for flag in chosen:
        args += [flag, draw(opts[flag])]
    for flag, v in (("--frames", "4"), ("--size", "16")):  # small and short: runs that get far stay fast
        if flag not in chosen:
            args += [flag, v]
    if cmd == "freeinit":
        args += ["--steps", "2"] + ([] if "--num-iters" in chosen else ["--num-iters", "2"])
    if draw(st.booleans()):
        args.append("-q")
    return args


@pytest.mark.filterwarnings("ignore")
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(args=command_lines())
def test_fuzz_cli_exit_0_or_2_no_traceback_no_stray_file(args):
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        _sandbox(root)
        before = _state(root)
        cwd = os.getcwd()
        os.chdir(root)
        try:
            r = CliRunner().invoke(main, args, env={"HF_HUB_OFFLINE": "1"})
        finally:
            os.chdir(cwd)
        err = r.stderr
        assert r.exit_code in (0, 2), (args, r.exit_code, err, repr(r.exception))
        assert "Traceback" not in err and "Traceback" not in r.stdout, (args, err)
        if r.exit_code == 2:
            lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("freqscope: warning:")]
            assert len(lines) == 1 and lines[0].startswith("freqscope: error:"), (args, err)
        after = _state(root)
        allowed = _allowed(args, root) if r.exit_code == 0 else set()
        changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
        assert changed <= allowed, (args, sorted(changed - allowed), err)
        assert not [k for k in after if Path(k).name.startswith(".")], (args, after)  # no temporary left
