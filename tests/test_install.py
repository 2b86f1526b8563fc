"""scripts/torch_cuda.sh: the CUDA build of torch that the machine's NVIDIA driver can run, chosen from what
``nvidia-smi`` reports (a stand-in ``nvidia-smi`` prints real headers here; nothing is installed)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "torch_cuda.sh"
HEADER = "| NVIDIA-SMI 550.54.15   Driver Version: 550.54.15   CUDA Version: {cuda}     |"


def _choose(tmp_path: Path, cuda: str | None, **env: str) -> subprocess.CompletedProcess:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    smi = bin_dir / "nvidia-smi"
    line = HEADER.format(cuda=cuda) if cuda else "| NVIDIA-SMI has failed |"
    smi.write_text(f"#!/bin/sh\necho '+------+'\necho '{line}'\n")
    smi.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", **env}
    return subprocess.run(["bash", str(SCRIPT), "2.13.0"], capture_output=True, text=True, env=env, timeout=30)


@pytest.mark.parametrize(
    "cuda,build", [("12.4", "cu124"), ("12.5", "cu124"), ("12.9", "cu129"), ("13.1", "cu130"), ("11.8", "cu118")]
)
def test_the_newest_build_the_driver_supports(tmp_path, cuda, build):
    r = _choose(tmp_path, cuda)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["torch==2.13.0", "--index-url", f"https://download.pytorch.org/whl/{build}"]
    assert f"supports CUDA {cuda}" in r.stderr and f"({build})" in r.stderr  # it says which and why


def test_an_old_driver_or_no_version_is_refused_in_one_line(tmp_path):
    r = _choose(tmp_path, "11.4")
    assert r.returncode == 2 and r.stdout == "" and "update the driver or set TORCH_CUDA_SPEC" in r.stderr
    r = _choose(tmp_path, None)
    assert r.returncode == 2 and "names no CUDA version" in r.stderr


def test_overrides(tmp_path):
    r = _choose(tmp_path, "12.8", TORCH_CUDA_BUILDS="126 118")
    assert r.stdout.split()[-1].endswith("/cu126")
    r = _choose(tmp_path, "12.8", TORCH_CUDA_SPEC="torch==2.13.0 --index-url https://example.invalid/whl")
    assert r.stdout.strip() == "torch==2.13.0 --index-url https://example.invalid/whl"
