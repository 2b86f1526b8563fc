"""Figure scripts: all compile; the cheapest one builds its PNG and PDF and prints its headline."""

import os
import py_compile
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "figures" / "scripts"


@pytest.mark.parametrize("script", sorted(SCRIPTS.glob("fig*.py")), ids=lambda p: p.stem)
def test_compiles(script, tmp_path):
    py_compile.compile(str(script), cfile=str(tmp_path / "x.pyc"), doraise=True)


def test_terminal_snr_figure_builds(tmp_path):
    r = subprocess.run(
        [sys.executable, "fig7_terminal_snr.py"],
        cwd=SCRIPTS,
        capture_output=True,
        text=True,
        env={**os.environ, "FREQSCOPE_FIGURES_OUT": str(tmp_path), "MPLBACKEND": "Agg"},
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "SD (scaled linear) -23.3 dB" in r.stdout and "AnimateDiff (linear) -28.0 dB" in r.stdout
    assert (tmp_path / "fig7_terminal_snr.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "fig7_terminal_snr.pdf").read_bytes()[:4] == b"%PDF"
