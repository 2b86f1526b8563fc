"""The GPU checks (tests/test_gpu.py) run through on fake CUDA, so that they stay runnable while no GPU is lent:
every check but torchrun (a second process cannot share the fake device), in one subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


@pytest.mark.slow
def test_the_gpu_checks_run_on_fake_cuda():
    path = f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "fake_cuda_plugin", "-q", "-W", "ignore", "-p", "no:cacheprovider",
         str(TESTS / "test_gpu.py"), "-k", "not torchrun"],
        capture_output=True, text=True, timeout=600, cwd=TESTS.parent,
        env={**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "22 passed" in r.stdout and "GPU checks on fake CUDA" in r.stdout  # every check, and its table
