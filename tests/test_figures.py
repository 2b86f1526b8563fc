"""Figure scripts: all compile, each is a `make figures` target with a row in figures/README.md; the cheapest one
builds its PNG and PDF and prints its headline."""

import os
import py_compile
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "figures" / "scripts"


@pytest.mark.parametrize("script", sorted(SCRIPTS.glob("fig*.py")), ids=lambda p: p.stem)
def test_compiles(script, tmp_path):
    py_compile.compile(str(script), cfile=str(tmp_path / "x.pyc"), doraise=True)


def test_every_script_is_made_and_documented():
    """`make figures` builds every script's figure (FIGS and a dependency line) and figures/README.md lists it."""
    makefile, readme = (ROOT / "Makefile").read_text(), (ROOT / "figures" / "README.md").read_text()
    figs = re.search(r"^FIGS := (.*?)\n(?!\s)", makefile, flags=re.M | re.S)
    assert figs is not None
    names = sorted(p.stem for p in SCRIPTS.glob("fig*.py"))
    assert sorted(figs[1].replace("\\", " ").split()) == names
    for name in names:
        assert re.search(rf"^figures/{name}\.png:", makefile, flags=re.M), f"no dependency line for {name}"
        assert f"| `{name}` |" in readme, f"{name} is not in figures/README.md"


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
