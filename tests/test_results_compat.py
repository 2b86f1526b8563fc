"""Results files written by freqscope 0.1 before the one-path change (commit 7b1b1d1) still read, give the
numbers that version reported, and key the same settings (so a re-run resumes their rows).

``tests/data/results_v0.1.parquet``: ``freqscope snr --video /tmp/oldclips --frames 6 --results v0.parquet``
run with that version on two 6-frame 24×32 synthetic clips. Its JSON (``freqscope.snr-dataset/1``) gave
the band powers and SNRs below; its energy shares summed to 64 (the width-times-shares bug).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from freqscope.bands import DEFAULT_EDGES
from freqscope.cli import main
from freqscope.encode import load_encoder
from freqscope.results import read_results, settings_hash
from freqscope.rows import analysis_settings, read_options

OLD = Path(__file__).parent / "data" / "results_v0.1.parquet"
#: What 0.1 reported for this file: the mean band power, and band (0, 0.125)'s SNR at t = 999 (sd), with
#: the SNR of the mean power ∓ one s.d. (its dataset spread, the definition every run now uses).
OLD_POWER = [1.8942722082138062, 1.655740883356581, 1.1581443266336326, 0.5328771470566507, 0.31620755051856597]
OLD_SNR_999 = (-21.105839444405532, -23.801614446700732, -19.45504253208751)


def test_an_old_results_file_reads_with_its_numbers(tmp_path):
    out = tmp_path / "s.json"
    r = CliRunner().invoke(main, ["snr", "--from-results", str(OLD), "--json", str(out), "-q"])
    assert r.exit_code == 0, r.output
    d = json.loads(out.read_text())
    assert d["schema"] == "freqscope.snr/2" and d["n_clips"] == 2 and d["settings"]["read"]["frames"] == 6
    assert [b["power"] for b in d["bands"]] == pytest.approx(OLD_POWER, rel=1e-12)
    assert (d["snr_db"][1][999], d["snr_db_lo"][1][999], d["snr_db_hi"][1][999]) == pytest.approx(OLD_SNR_999)
    assert sum(b["energy_fraction"] for b in d["bands"]) == pytest.approx(1, abs=1e-9)  # 0.1 printed 64


def test_the_same_run_keys_the_same_settings():
    """The settings a dataset run keys its rows by are unchanged: a re-run of the same command resumes."""
    (stored,) = set(read_results(OLD).column("settings").to_pylist())
    settings = analysis_settings(
        load_encoder(),
        read=read_options({"frames": 6}),
        edges=DEFAULT_EDGES,
        decomposition="spatiotemporal",
        time_scale=1.0,
        radial=False,
    )
    assert settings_hash(settings) == stored
