"""Every output of ``snr`` tells the same numbers (issue 15): the table, the JSON, the CSV and the figure's data,
for one clip, several clips, a dataset run (with and without a results file) and ``--from-results``.

Properties: energy shares sum to 1; the mean power of a set is the mean of its clips' powers (each measured
on its own); the numbers are the same with and without ``--results``; table, CSV and figure show the JSON's
numbers. In-process (click's CliRunner) on small synthetic clips.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import freqscope.report as report
from conftest import write_clip
from freqscope.cli import main

READ = ["--frames", "8"]


def _frames(seed: int, h: int, w: int, t: int = 8) -> np.ndarray:
    """A textured frame drifting sideways, each clip its own texture and speed."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h, w, 3)).astype(np.float64)
    base = (base + np.roll(base, 1, 0) + np.roll(base, 1, 1)) / 3  # some low-frequency energy
    return np.stack([np.roll(base, (seed + 1) * i, axis=1) for i in range(t)]).clip(0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    """Three clips, two sizes (the set's latents differ)."""
    d = tmp_path_factory.mktemp("agree")
    return [write_clip(d / f"c{i}.mp4", _frames(i, 32, 48 if i < 2 else 64), fps=10) for i in range(3)]


@pytest.fixture(scope="module")
def figure_data(request):
    """What ``plot_snr`` draws: each band's curve (its label and y values), captured at save time."""
    drawn: list[dict[str, np.ndarray]] = []
    import freqscope.plotting as plotting

    real = plotting.save_figure

    def capture(fig, *paths):
        ax = fig.axes[0]
        drawn.append({ln.get_label(): np.asarray(ln.get_ydata(), float) for ln in ax.lines if ln.get_label()[0] != "_"})
        real(fig, *paths)

    mp = pytest.MonkeyPatch()
    mp.setattr(plotting, "save_figure", capture)
    yield drawn
    mp.undo()


def _run(tmp: Path, name: str, *args) -> dict:
    """Run ``snr`` with every output; return the JSON, the CSV rows, the table's lines and the figure data."""
    out = tmp / name
    out.mkdir()
    r = CliRunner().invoke(
        main, ["snr", *map(str, args), "--json", out / "s.json", "--csv", out / "s.csv", "--plot", out / "s.png"]
    )
    assert r.exit_code == 0, r.output
    return {
        "json": json.loads((out / "s.json").read_text()),
        "csv": list(csv.DictReader((out / "s.csv").read_text().splitlines())),
        "table": [line for line in r.stdout.splitlines() if line and not line.startswith("wrote ")],
    }


def _check_one_output_set(o: dict, drawn: dict[str, np.ndarray]) -> None:
    """Within one run: shares sum to 1; table, CSV and figure carry the JSON's numbers."""
    d = o["json"]
    shares = [b["energy_fraction"] for b in d["bands"]]
    assert abs(sum(shares) - 1) < 1e-6
    snr = np.array(d["snr_db"], dtype=float)  # (n_bands, N)
    lo, hi = np.array(d["snr_db_lo"], dtype=float), np.array(d["snr_db_hi"], dtype=float)
    # CSV: every (band, t), the JSON's values to the 6 significant digits it prints.
    names = [b["name"] for b in d["bands"]]
    N = len(d["timesteps"])
    assert len(o["csv"]) == len(names) * N
    for row in o["csv"][:: N // 4]:
        i, t = names.index(row["band"]), int(row["timestep"])
        for col, ref in (("snr_db", snr), ("snr_db_lo", lo), ("snr_db_hi", hi)):
            assert float(row[col]) == pytest.approx(ref[i, t], rel=1e-5, abs=1e-9)
    # Table: the energy column and the t = 0 and t = N-1 columns are the JSON's, rounded as printed.
    head = o["table"][1].split()
    assert head[0] == "band" and "energy" in head
    body = o["table"][3:]
    assert len(body) == len(names)
    printed = [float(re.search(r"([\d.]+)%", line)[1]) for line in body]
    assert printed == pytest.approx([100 * s for s in shares], abs=0.006)
    assert abs(sum(printed) - 100) < 0.05 * len(printed)
    for line, i in zip(body, range(len(names))):
        cells = line[len(names[i]) :].split()
        assert float(cells[1]) == pytest.approx(snr[i, 0], abs=0.051)  # t=0
    # Figure: one curve per band, the JSON's SNR.
    assert list(drawn) == names
    for i, name in enumerate(names):
        np.testing.assert_allclose(drawn[name], snr[i], rtol=1e-9)


def test_every_output_agrees_for_every_kind_of_run(clips, tmp_path, figure_data):
    runs = {}
    for i, c in enumerate(clips):  # each clip on its own
        runs[f"clip{i}"] = _run(tmp_path, f"clip{i}", "--video", c, *READ)
    runs["several"] = _run(tmp_path, "several", *[a for c in clips for a in ("--video", c)], *READ)
    runs["dataset"] = _run(tmp_path, "dataset", "--video", clips[0].parent, *READ, "--workers", "0", "--strict")
    results = tmp_path / "run.parquet"
    runs["results"] = _run(tmp_path, "results", "--video", clips[0].parent, *READ, "--results", results)
    runs["from_results"] = _run(tmp_path, "from_results", "--from-results", results)
    assert len(figure_data) == len(runs)
    for o, drawn in zip(runs.values(), figure_data):
        _check_one_output_set(o, drawn)

    # The mean power of the set is the mean of the clips' own powers, band by band (in linear power).
    single = np.array([[b["power"] for b in runs[f"clip{i}"]["json"]["bands"]] for i in range(3)])
    shares = np.array([[b["energy_fraction"] for b in runs[f"clip{i}"]["json"]["bands"]] for i in range(3)])
    for kind in ("several", "dataset", "results", "from_results"):
        d = runs[kind]["json"]
        assert d["n_clips"] == 3 and d["schema"] == report.SCHEMA
        np.testing.assert_allclose([b["power"] for b in d["bands"]], single.mean(0), rtol=1e-9)
        np.testing.assert_allclose([b["power_std"] for b in d["bands"]], single.std(0), rtol=1e-9)
        np.testing.assert_allclose([b["energy_fraction"] for b in d["bands"]], shares.mean(0), rtol=1e-9)
    # The same numbers with and without a results file, and from it later.
    ref = runs["several"]["json"]
    for kind in ("dataset", "results", "from_results"):
        d = runs[kind]["json"]
        for key in ("snr_db", "snr_db_lo", "snr_db_hi"):
            np.testing.assert_allclose(np.array(d[key], float), np.array(ref[key], float), rtol=1e-9)
        assert d["crossing_timestep"] == ref["crossing_timestep"]
        assert [(b["lo"], b["hi"], b["n_bins"]) for b in d["bands"]] == [
            (b["lo"], b["hi"], b["n_bins"]) for b in ref["bands"]
        ]
        assert d["latent_shape"] == ref["latent_shape"]
    # One clip: no spread (lo = hi = the SNR); a set of different clips: a spread.
    one = runs["clip0"]["json"]
    assert one["snr_db_lo"] == one["snr_db"] == one["snr_db_hi"]
    assert all(b["power_std"] > 0 for b in ref["bands"])
