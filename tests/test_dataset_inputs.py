"""Which clips a dataset run reads (issue 17): each clip once however it is found (links, loops, two
sources, a list naming it twice), unreadable folders reported like unreadable clips, spreadsheet CSVs (BOM),
CSV weights checked before any work naming the file and line, and an empty list said to be empty."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import write_clip
from freqscope import inputs
from freqscope.cli import main
from freqscope.dataset import run_dataset
from freqscope.encode import load_encoder
from freqscope.inputs import ClipSpec, iter_clips

READ = {"frames": 8}


def _clip(path: Path, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    return write_clip(path, rng.integers(0, 256, (10, 32, 48, 3), dtype=np.uint8), fps=10)


def _cli(*args) -> tuple[int, list[str]]:
    """``freqscope ARGS`` in process: its exit code and the lines it wrote to stderr."""
    r = CliRunner().invoke(main, [*map(str, args), "-q"])
    return r.exit_code, r.stderr.splitlines()


@pytest.fixture
def looped(tmp_path) -> Path:
    """v/a.mp4, v/sub/b.mp4 and a link back up, v/sub/up -> .. (a loop for `**` and for a walk that follows links)."""
    v = tmp_path / "v"
    _clip(v / "a.mp4", 0)
    _clip(v / "sub" / "b.mp4", 1)
    (v / "sub" / "up").symlink_to("..")
    return v


def test_a_loop_of_links_counts_each_clip_once(looped, tmp_path):
    # `glob` follows the loop (v/sub/up/sub/up/...): 41 spellings of each clip, 82 clips, before.
    found = [c.path for c in iter_clips([str(looped / "**" / "*.mp4")])]
    assert found == [str(looped / "a.mp4"), str(looped / "sub" / "b.mp4")]
    assert [c.path for c in iter_clips([looped])] == found  # the walk: the link back up walks nothing twice
    run = run_dataset([str(looped / "**" / "*.mp4")], load_encoder(), read=READ, results=tmp_path / "r.parquet")
    assert (run.analysed, run.errors) == (2, [])


def test_each_clip_once_wherever_it_is_found(looped, tmp_path):
    # A folder linked from elsewhere is walked (once); the same file through a link, a hard link, two sources
    # or named twice in a list is one clip, kept under its first spelling.
    other = tmp_path / "other"
    _clip(other / "c.mp4", 2)
    (looped / "ext").symlink_to(other)  # sorts before sub: its clip is found first under v/ext
    (tmp_path / "alias.mp4").symlink_to(looped / "a.mp4")
    os.link(looped / "a.mp4", tmp_path / "hard.mp4")
    (tmp_path / "l.txt").write_text(f"{looped}/sub/b.mp4\n../{tmp_path.name}/v/sub/b.mp4\nalias.mp4\nhard.mp4\n")
    sources = [looped, str(looped / "*.mp4"), other, tmp_path / "l.txt", tmp_path / "alias.mp4"]
    found = [c.path for c in iter_clips(sources)]
    assert found == [str(looped / "a.mp4"), str(looped / "ext" / "c.mp4"), str(looped / "sub" / "b.mp4")]
    assert [c.path for c in iter_clips([tmp_path / "l.txt"])] == [f"{looped}/sub/b.mp4", str(tmp_path / "alias.mp4")]
    code, err = _cli("snr", "--video", tmp_path / "l.txt", "--video", looped, "--results", tmp_path / "r.parquet")
    assert code == 0, err
    from freqscope.results import read_results

    assert read_results(tmp_path / "r.parquet").num_rows == 3


# Run as an unprivileged user (root reads any folder): import first (the interpreter may live where that
# user cannot read), then drop to `nobody`, then list a folder with an unreadable subfolder, run it and run it
# through the CLI with a JSON report.
_AS_NOBODY = r"""
import json, os, sys
from click.testing import CliRunner
from freqscope.cli import main
from freqscope.dataset import run_dataset
from freqscope.encode import load_encoder
from freqscope.inputs import iter_clips
v, out = sys.argv[1], sys.argv[2]
if os.geteuid() == 0:
    os.setgid(65534)
    os.setuid(65534)
try:
    os.listdir(os.path.join(v, "locked"))
    print(json.dumps({"skip": "the unreadable folder can be read"}))
    sys.exit()
except PermissionError:
    pass
run = run_dataset([v], load_encoder(), read={"frames": 8})
r = CliRunner().invoke(main, ["snr", "--video", v, "--results", f"{out}/r.parquet", "--json", f"{out}/s.json"])
top = CliRunner().invoke(main, ["snr", "--video", os.path.join(v, "locked"), "--results", f"{out}/t.parquet", "-q"])
print(json.dumps({
    "listed": [c.path for c in iter_clips([v])],
    "analysed": run.analysed,
    "errors": run.errors,
    "cli": [r.exit_code, r.stderr.splitlines()],
    "json": json.load(open(f"{out}/s.json")) if r.exit_code == 0 else None,
    "top": [top.exit_code, top.stderr.splitlines()],
}))
"""


@pytest.fixture
def shared_tmp():
    """A folder every user can reach (pytest's own is root's alone); removed with its locked subfolders."""
    d = Path(tempfile.mkdtemp(prefix="freqscope-"))
    d.chmod(0o777)
    yield d
    for root, dirs, _ in os.walk(d):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX permissions")
def test_an_unreadable_folder_is_reported_like_an_unreadable_clip(shared_tmp):
    # Its clips vanished without a word (os.walk had no error handler); now it is a row of the run, in the
    # results and in the JSON's `skipped`, named FOLDER/* with the reason, and the CLI's warning names it.
    v, out = shared_tmp / "v", shared_tmp / "out"
    _clip(v / "a.mp4", 0)
    _clip(v / "locked" / "b.mp4", 1)
    out.mkdir()
    for p in [v, v / "a.mp4", out]:
        p.chmod(0o777 if p.is_dir() else 0o644)
    (v / "locked").chmod(0o000)
    r = subprocess.run([sys.executable, "-c", _AS_NOBODY, str(v), str(out)], capture_output=True, text=True)
    if r.returncode != 0 and "Operation not permitted" in r.stderr:
        pytest.skip("cannot drop to an unprivileged user here")
    assert r.returncode == 0, r.stderr[-2000:]
    d = json.loads(r.stdout.splitlines()[-1])
    if "skip" in d:
        pytest.skip(d["skip"])
    locked = f"{v}/locked/*"
    assert d["listed"] == [str(v / "a.mp4"), locked]
    assert d["analysed"] == 1 and d["errors"] == [[locked, f"cannot read {locked}: Permission denied"]]
    code, err = d["cli"]
    assert code == 0 and any("warning: skipped 1 unreadable" in line and locked in line for line in err), err
    assert d["json"]["n_clips"] == 1
    assert d["json"]["skipped"] == [{"path": locked, "error": f"cannot read {locked}: Permission denied"}]
    code, err = d["top"]  # the folder given itself cannot be read: refused, as a missing one is
    assert (code, err) == (2, [f"freqscope: error: --video {v}/locked: cannot read the folder (Permission denied)"])


def test_a_spreadsheet_csv_with_a_byte_order_mark_is_read(tmp_path):
    # Refused before: "needs a header with a 'path' column" (the header read as '\ufeffpath').
    _clip(tmp_path / "a.mp4", 0)
    _clip(tmp_path / "b.mp4", 1)
    (tmp_path / "l.csv").write_text("path,start,weight\r\na.mp4,0.1,2\r\nb.mp4,,\r\n", encoding="utf-8-sig")
    (tmp_path / "l.txt").write_text("a.mp4\nb.mp4\n", encoding="utf-8-sig")
    assert (tmp_path / "l.csv").read_bytes()[:3] == b"\xef\xbb\xbf"
    assert list(iter_clips([tmp_path / "l.csv"])) == [
        ClipSpec(str(tmp_path / "a.mp4"), 0.1, 2.0),
        ClipSpec(str(tmp_path / "b.mp4"), None, None),
    ]
    assert [c.path for c in iter_clips([tmp_path / "l.txt"])] == [str(tmp_path / "a.mp4"), str(tmp_path / "b.mp4")]
    code, err = _cli(
        "snr", "--video", tmp_path / "l.csv", "--results", tmp_path / "r.parquet", "--weighted", "--frames", 8
    )
    assert code == 0, err


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        (["1", "2", "", "inf"], ":5: weight 'inf' must be a finite number >= 0"),  # blank line 4 counts
        (["1", "-2"], ":3: weight '-2' must be a finite number >= 0"),
        (["0", "0", "0"], ": every weight is 0; give a clip a weight > 0 (an empty cell counts as 1)"),
    ],
)
def test_weights_are_checked_before_any_work_naming_the_file_and_line(tmp_path, cells, message):
    # Before: inf, or all 0, ran every clip, wrote the results, then failed in the summary with a message
    # naming neither the list nor the line.
    clips = [_clip(tmp_path / f"c{i}.mp4", i) for i in range(2)]
    lines = ["path,weight"] + [f"{clips[i % 2].name},{w}" if w else "" for i, w in enumerate(cells)]
    (tmp_path / "l.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "r.parquet"
    code, err = _cli("snr", "--video", tmp_path / "l.csv", "--results", out, "--weighted")
    assert (code, err) == (2, [f"freqscope: error: --video {tmp_path / 'l.csv'}{message}"])
    assert not out.exists() and not Path(f"{out}.parts").exists()  # no clip analysed, nothing stored
    with pytest.raises(ValueError, match=f"`videos` .*l.csv{message[:4]}"):  # the library, without a progress bar
        run_dataset([tmp_path / "l.csv"], load_encoder(), read=READ, results=out)
    assert not out.exists() and not Path(f"{out}.parts").exists()


def test_zero_weights_beside_clips_that_weigh_one_are_fine(tmp_path):
    _clip(tmp_path / "a.mp4", 0)
    (tmp_path / "l.csv").write_text("path,weight\na.mp4,0\n")
    inputs.check_sources([tmp_path / "l.csv", tmp_path / "a.mp4"])  # a.mp4 as itself weighs 1
    with pytest.raises(ValueError, match="every weight is 0"):
        inputs.check_sources([tmp_path / "l.csv", tmp_path / "l.csv"])


@pytest.mark.parametrize(
    ("name", "text"), [("l.txt", "# no clips yet\n\n# (to fill)\n"), ("l.txt", ""), ("l.csv", "path,weight\n\n")]
)
def test_an_empty_list_says_so(tmp_path, name, text):
    # Before: "results file r.parquet not found; make it first with a dataset run".
    lst = tmp_path / name
    lst.write_text(text)
    code, err = _cli("snr", "--video", lst, "--results", tmp_path / "r.parquet")
    assert code == 2 and err == [
        f"freqscope: error: --video {lst}: the list names no clip (only blank lines, comments or a header)"
    ]
    assert not (tmp_path / "r.parquet").exists() and not (tmp_path / "r.parquet.parts").exists()
