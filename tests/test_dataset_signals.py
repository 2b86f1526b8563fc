"""Signals and lost workers end a dataset run in one line (issue 17): the process group's SIGTERM (what
``timeout``, ``docker stop``, Slurm and systemd send) exits 143, Ctrl-C 130, a decoding worker killed with
SIGKILL (the out-of-memory killer) exits 1 saying the stored rows resume; no torch traceback, no temporary
file left, and a re-run finishes the run from what was stored.

Real signals to a real ``freqscope snr --workers 2`` process group; one clip's decoding stalls so that the run
is surely in flight when the signal comes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import write_clip
from freqscope.dataset import run_dataset
from freqscope.encode import load_encoder
from freqscope.results import read_results

N = 8
CHILD = """
import sys, time
import freqscope.dataset as ds
real = ds.read_video
def stall(path, **kw):
    if path.endswith("c3.mp4"):
        time.sleep(600)  # in flight when the signal comes
    return real(path, **kw)
ds.read_video = stall
from freqscope.cli import main
main(["snr", "--video", sys.argv[1], "--results", sys.argv[2], "--workers", "2", "--frames", "8"])
"""


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("signal_clips")
    rng = np.random.default_rng(0)
    for i in range(N):
        write_clip(d / f"c{i}.mp4", rng.integers(0, 256, (8, 32, 48, 3), dtype=np.uint8), fps=10)
    return d


def _workers(pid: int) -> list[int]:
    """The child processes of ``pid`` (the DataLoader's workers)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in children.read_text().split()] if children.exists() else []


@pytest.mark.parametrize("how,status,line", [
    ("group SIGTERM", 143, "freqscope: terminated (SIGTERM)"),
    ("group SIGINT", 130, "freqscope: aborted"),
    ("worker SIGKILL", 1, "freqscope: error: a decoding worker (pid {pid}) "),  # killed, or "exited unexpectedly"
])  # fmt: skip
def test_a_signal_ends_the_run_in_one_line_and_it_resumes(clips, tmp_path, how, status, line):
    out = tmp_path / "run.parquet"
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(clips), str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a shell job or a container has
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # a background job ignores SIGINT
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    try:
        deadline = time.monotonic() + 60
        parts = Path(str(out) + ".parts")
        while time.monotonic() < deadline and proc.poll() is None:
            if len(_workers(proc.pid)) == 2 and parts.is_dir() and any(parts.glob("*.parquet")):
                break
            time.sleep(0.1)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        victim = _workers(proc.pid)[0]
        if how == "worker SIGKILL":
            os.kill(victim, signal.SIGKILL)
        else:
            os.killpg(proc.pid, signal.SIGTERM if "TERM" in how else signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == status, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(line.format(pid=victim)), err  # no traceback
    leftovers = [p.name for p in out.parent.rglob(".*") if p.is_file()]
    assert leftovers == []  # no temporary file of an interrupted write
    stored = read_results(out).num_rows
    assert 0 < stored < N  # what finished is stored; c3 never did
    again = run_dataset([clips], load_encoder(), read={"frames": 8}, results=out)
    assert again.resumed == stored and again.resumed + again.analysed == N
