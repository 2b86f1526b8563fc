"""The results store under the cases of issue 17: two runs on one file, foreign and stale files in its parts,
the newest row winning whatever the rank, a missing folder, Ctrl-C during a write; and a store that scales
(a part a second, not a part a row; parts merged in levels, not rewritten every 200 rows)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import freqscope.results as results
from freqscope.io import atomic_write
from freqscope.results import SCHEMA, ResultsStore, iter_results, read_results

ROW = {"path": "/v/a.mp4", "start": None, "size": 10, "mtime_ns": 1, "settings": "s1", "status": "ok"}

#: A process that opens a store (`results` argv[1], rank argv[2]) and keeps it open.
HOLD = (
    "import sys, time\n"
    "from freqscope.results import ResultsStore\n"
    "held = ResultsStore(sys.argv[1], rank=int(sys.argv[2]))\n"
    "time.sleep(120)\n"
)


def _row(i: int = 0, **kw) -> dict:
    return {**ROW, "path": f"/v/c{i:05d}.mp4", **kw}


def _parts(out: Path) -> list[Path]:
    d = Path(f"{out}.parts")
    return sorted(d.iterdir()) if d.is_dir() else []


def _wait(cond, seconds: float = 30.0) -> None:
    end = time.monotonic() + seconds
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


@pytest.fixture(autouse=True)
def _one_process(monkeypatch):
    """Outside torchrun, whatever runs these tests."""
    for k in ("WORLD_SIZE", "RANK", "MASTER_PORT", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(k, raising=False)


def test_a_second_run_is_refused_up_front_and_a_killed_runs_lock_is_not(tmp_path, monkeypatch):
    # Issue 17: two runs on one `--results` at once; one failed late when the other's merge deleted its part.
    out = tmp_path / "run.parquet"
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "MASTER_PORT", "TORCHELASTIC_RUN_ID")}
    other = subprocess.Popen([sys.executable, "-c", HOLD, str(out), "0"], env=env)
    try:
        lock = tmp_path / "run.parquet.lock"
        _wait(lambda: lock.exists() and f'"pid": {other.pid}' in lock.read_text())
        busy = rf"`results` .*run.parquet is being written by another run \(pid {other.pid}\)"
        with pytest.raises(ValueError, match=busy):
            ResultsStore(out)
        assert not out.exists() and not _parts(out)  # refused before writing anything
    finally:
        other.kill()
        other.wait(timeout=30)
    # kill -9 lets the lock go with the process: the next run goes ahead.
    with ResultsStore(out) as store:
        store.add(_row())
    assert read_results(out).num_rows == 1


def test_the_ranks_of_one_torchrun_job_share_the_lock(tmp_path, monkeypatch):
    out = tmp_path / "run.parquet"
    job = {"WORLD_SIZE": "2", "TORCHELASTIC_RUN_ID": "job1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29411"}
    rank1 = subprocess.Popen([sys.executable, "-c", HOLD, str(out), "1"], env={**os.environ, **job, "RANK": "1"})
    try:
        _wait(lambda: Path(f"{out}.lock").exists() and f'"pid": {rank1.pid}' in Path(f"{out}.lock").read_text())
        for k, v in {**job, "MASTER_PORT": "29412"}.items():  # another job's rank 0
            monkeypatch.setenv(k, v)
        with pytest.raises(ValueError, match=f"pid {rank1.pid}"):
            ResultsStore(out)
        monkeypatch.setenv("MASTER_PORT", job["MASTER_PORT"])  # this job's rank 0
        store = ResultsStore(out)
        store.add(_row())
        store.compact()
    finally:
        rank1.kill()
        rank1.wait(timeout=30)
    assert read_results(out).num_rows == 1


def test_a_foreign_parquet_in_the_parts_is_ignored_with_a_warning(tmp_path):
    # Issue 17: a foreign Parquet file in run.parquet.parts/ was merged in silently ("2 different settings").
    out = tmp_path / "run.parquet"
    store = ResultsStore(out, metadata={"frames": 8})
    store.add(_row(0))
    store.add(_row(1))
    store.flush()
    parts = Path(f"{out}.parts")
    foreign = pa.Table.from_pylist([_row(2, settings="other")], schema=SCHEMA)  # our columns, not our file
    named = f"r0000-{time.time_ns()}-1-000000.parquet"
    pq.write_table(foreign, parts / named)
    pq.write_table(pa.table({"x": [1]}), parts / "notes.parquet")
    with pytest.warns(UserWarning, match="is not a freqscope part") as caught:
        t = read_results(out)
    assert len(caught) == 2
    assert t.num_rows == 2 and set(t.column("settings").to_pylist()) == {"s1"}
    store.compact()
    assert read_results(out).num_rows == 2
    assert sorted(q.name for q in _parts(out)) == ["notes.parquet", named]  # not ours to delete


def test_the_newest_row_of_a_clip_wins_whatever_the_rank(tmp_path):
    # Issue 17: a crashed 2-rank run, a changed clip, a 1-process re-run: r0001-<old time> sorted after
    # r0000-<new time>, so the old numbers stayed (and a third run redid the clip).
    out = tmp_path / "run.parquet"
    parts = Path(f"{out}.parts")
    parts.mkdir()
    old = pa.Table.from_pylist([_row(0, mtime_ns=1, rank=1), _row(1, mtime_ns=1, rank=1)], schema=SCHEMA)
    meta = {b"freqscope": b"{}"}
    pq.write_table(old.replace_schema_metadata(meta), parts / "r0001-900000000000000000-7-000000.parquet")
    store = ResultsStore(out)  # the re-run: clip 0 changed (mtime 2)
    store.add(_row(0, mtime_ns=2))
    store.flush()
    assert store.done("s1") == {("/v/c00000.mp4", None): (10, 2), ("/v/c00001.mp4", None): (10, 1)}
    store.compact()
    assert read_results(out).column("mtime_ns").to_pylist() == [2, 1]
    # Names of the previous version order by their time too: r0000-200 is newer than r0001-100.
    out2 = tmp_path / "old.parquet"
    Path(f"{out2}.parts").mkdir()
    for name, mtime in (("r0001-100-7-000000", 1), ("r0000-200-8-000000", 2)):
        t = pa.Table.from_pylist([_row(0, mtime_ns=mtime)], schema=SCHEMA).replace_schema_metadata(meta)
        pq.write_table(t, Path(f"{out2}.parts") / f"{name}.parquet")
    assert read_results(out2).column("mtime_ns").to_pylist() == [2]


def test_a_missing_results_folder_is_made_before_any_work(tmp_path):
    # Issue 17: `--results a/b/run.parquet` failed after the first clip ("No such file ... run.parquet.parts").
    out = tmp_path / "a" / "b" / "run.parquet"
    store = ResultsStore(out)
    assert out.parent.is_dir()
    store.add(_row())
    store.flush()
    assert read_results(out).num_rows == 1


def test_an_interrupted_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    # Issue 17: Ctrl-C left a 0-byte .r0000-….parquet, made before atomic_write's cleanup `try`.
    real_close = os.close

    def close_then_interrupt(fd: int) -> None:
        real_close(fd)
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(os, "close", close_then_interrupt)  # the Ctrl-C lands just after the temporary file is made
        with pytest.raises(KeyboardInterrupt):
            atomic_write(tmp_path / "r0000-1-2-000000.parquet", lambda tmp: None)
    assert os.listdir(tmp_path) == []


def test_stale_temporary_files_of_killed_writers_go(tmp_path):
    out = tmp_path / "run.parquet"
    parts = Path(f"{out}.parts")
    parts.mkdir()
    (parts / ".r0000-1796528806892612246-4.ab12cd_9.parquet").write_bytes(b"")  # a killed writer's part
    (tmp_path / ".run.x1y2z3w4.parquet").write_bytes(b"")  # a killed merge into run.parquet
    (tmp_path / ".other.x1y2z3w4.parquet").write_bytes(b"")  # another file's: not ours
    store = ResultsStore(out)
    store.add(_row())
    store.compact()
    assert sorted(os.listdir(tmp_path)) == [".other.x1y2z3w4.parquet", "run.parquet", "run.parquet.lock"]


def test_rows_are_written_a_part_a_second_and_durable_within_it(tmp_path):
    # Issue 17: every row was its own part file (~3 ms a row).
    out = tmp_path / "run.parquet"
    store = ResultsStore(out)
    for i in range(500):
        store.add(_row(i))
    assert len(_parts(out)) <= 1
    # No flush called: the queued rows reach the disk within about a second all the same (kill -9 loses no more).
    # (A part being written is a hidden temporary file until renamed: wait for the part itself.)
    _wait(lambda: any(not p.name.startswith(".") for p in _parts(out)), seconds=10)
    assert read_results(out).num_rows == 500
    store.close()


def test_parts_merge_in_levels_each_row_rewritten_log_times(tmp_path, monkeypatch):
    # Issue 17: every 200 rows a process rewrote all its rows (n²/400 in all); now ten parts of a level make one
    # of the next, so a row is rewritten about log10(parts) times and few parts stay.
    out = tmp_path / "run.parquet"
    written: list[int] = []
    write = results.atomic_write

    def counting(path, fn):
        write(path, fn)
        written.append(pq.read_metadata(path).num_rows)

    monkeypatch.setattr(results, "atomic_write", counting)
    n = 250
    store = ResultsStore(out, flush_rows=1)  # a part per row: the worst case
    for i in range(n):
        store.add(_row(i))
    assert len(_parts(out)) == 2 + 5  # 250 = 2 parts of 100 rows, 5 of 10
    assert sum(written) <= n * 3  # each row written once, rewritten at most twice
    store.add(_row(0, mtime_ns=9))  # the newest row of a clip still wins over merged parts
    store.close()
    t = read_results(out)
    assert t.num_rows == n and t.column("mtime_ns").to_pylist()[0] == 9
    assert json.loads(pq.read_schema(_parts(out)[0]).metadata[b"freqscope"]) == {}


def test_the_final_merge_streams_batches_and_keeps_the_latest_rows(tmp_path, monkeypatch):
    """The merge holds only keys and one batch: with batches of 3 rows over parts of the file, rows rewritten
    by later parts and a part of an older freqscope (without the spectra columns), it keeps exactly the rows
    reading gives before the merge."""
    monkeypatch.setattr(results, "_BATCH", 3)
    out = tmp_path / "run.parquet"
    parts = Path(f"{out}.parts")
    parts.mkdir()
    old_schema = pa.schema([f for f in SCHEMA if f.name not in ("spectrum", "frame_mean", "frame_change")])
    old = pa.Table.from_pylist([_row(i, mtime_ns=1) for i in range(7)], schema=old_schema)
    pq.write_table(old.replace_schema_metadata({b"freqscope": b"{}"}), parts / "r0000-100-7-000000.parquet")
    store = ResultsStore(out, flush_rows=4)
    for i in range(3, 12):  # clips 3..6 again (changed), 7..11 new
        store.add(_row(i, mtime_ns=2, spectrum=[float(i)]))
    store.flush()
    before = read_results(out).to_pylist()
    store.compact()
    store.close()
    assert not parts.exists() and read_results(out).to_pylist() == before
    assert [r["mtime_ns"] for r in before] == [1, 1, 1] + [2] * 9
    assert [r["spectrum"] for r in before[:3]] == [None] * 3 and before[5]["spectrum"] == [5.0]


def test_streamed_rows_are_the_rows_reading_gives_even_while_a_merge_replaces_the_file(tmp_path, monkeypatch):
    """``iter_results`` (what a summary reads: 10M rows in constant memory) gives the rows ``read_results`` gives:
    the newest of each clip, over the file, parts rewritten later and a part of an older freqscope; only the
    columns and settings asked for. A merge that replaces the file and removes the parts mid-read changes
    nothing read: the files were opened first."""
    monkeypatch.setattr(results, "_BATCH", 3)
    out = tmp_path / "run.parquet"
    store = ResultsStore(out, flush_rows=4)
    for i in range(5):
        store.add(_row(i, mtime_ns=1, settings="s1" if i % 2 else "s2"))
    store.compact()  # the file itself
    parts = Path(f"{out}.parts")
    parts.mkdir()
    old_schema = pa.schema([f for f in SCHEMA if f.name not in ("spectrum", "frame_mean", "frame_change")])
    old = pa.Table.from_pylist([_row(i, mtime_ns=2) for i in range(3, 8)], schema=old_schema)
    pq.write_table(old.replace_schema_metadata({b"freqscope": b"{}"}), parts / "r0000-100-7-000000.parquet")
    for i in range(6, 12):  # clips 6, 7 again
        store.add(_row(i, mtime_ns=3, spectrum=[float(i)]))
    store.flush()

    def streamed(**kw) -> list[dict]:
        got = [r for b in iter_results(out, **kw) for r in b.to_pylist()]
        return sorted(got, key=lambda r: (r["path"], r["settings"]))

    whole = sorted(read_results(out).to_pylist(), key=lambda r: (r["path"], r["settings"]))
    assert streamed() == whole and len(whole) == 13  # clip 4 under two settings
    assert [r["mtime_ns"] for r in whole] == [1, 1, 1, 2, 2, 1, 2, 3, 3, 3, 3, 3, 3]
    assert streamed(settings="s2") == read_results(out, settings="s2").to_pylist() and len(streamed(settings="s2")) == 3
    cols = streamed(columns=["mtime_ns", "spectrum"])
    assert set(cols[0]) == {"path", "start", "settings", "mtime_ns", "spectrum"}
    assert [r["spectrum"] for r in cols] == [r["spectrum"] for r in whole]
    it = iter_results(out)
    first = next(it)
    store.compact()  # replaces the file, removes every part
    store.close()
    assert not parts.exists()
    got = sorted(first.to_pylist() + [r for b in it for r in b.to_pylist()], key=lambda r: (r["path"], r["settings"]))
    assert got == whole
    # The merged file is marked as one row per clip and streams without reading keys; a file without the mark
    # (an older freqscope's, or any) has its keys read: of two rows of one clip the later is kept.
    assert pq.read_schema(out).metadata[results._UNIQUE] == b"1"
    assert streamed() == whole and streamed(settings="s2") == read_results(out, settings="s2").to_pylist()
    twice = pa.Table.from_pylist([_row(0, mtime_ns=5), _row(1), _row(0, mtime_ns=6)], schema=SCHEMA)
    pq.write_table(twice.replace_schema_metadata({b"freqscope": b"{}"}), out)
    assert [(r["path"], r["mtime_ns"]) for r in streamed()] == [("/v/c00000.mp4", 6), ("/v/c00001.mp4", 1)]


def test_a_results_file_that_is_no_parquet_is_refused_in_one_line_when_streamed(tmp_path):
    bad = tmp_path / "r.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(ValueError, match=r"is not a freqscope results file .*; give another `results` file"):
        next(iter_results(bad))
    with pytest.raises(FileNotFoundError, match="not found; make it first"):
        next(iter_results(tmp_path / "none.parquet"))


def test_streaming_a_file_holds_one_batch_not_every_batch_read(tmp_path, monkeypatch):
    """Arrow's pre-buffered reader kept every batch read (10M rows streamed held all their band powers, 540 MiB):
    the files are read without it, so a batch read is a batch let go."""
    monkeypatch.setattr(results, "_BATCH", 512)
    out = tmp_path / "run.parquet"
    powers = np.random.default_rng(0).random((40_000, 64))  # incompressible, as real powers are
    rows = [_row(i, band_power=p) for i, p in enumerate(powers.tolist())]
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    pq.write_table(table.replace_schema_metadata({b"freqscope": b"{}", results._UNIQUE: b"1"}), out, row_group_size=512)
    base, most, n = pa.total_allocated_bytes(), 0, 0
    for b in iter_results(out, columns=["band_power"]):
        n += b.num_rows
        most = max(most, pa.total_allocated_bytes() - base)
    assert n == 40_000 and most < table.column("band_power").nbytes / 10


def test_the_clips_done_are_looked_up_in_sorted_columns_as_a_dict_would(tmp_path):
    """A resume's look-up (``store.done``) is a mapping over sorted Arrow columns (10M clips in 0.9 GB, not 7 GB of
    Python objects): it answers as the dict of the latest rows would, for clips with several starts, no start,
    paths that prefix others, other settings and clips it does not hold."""
    out = tmp_path / "run.parquet"
    store = ResultsStore(out)
    rows = [
        _row(7, start=2.5, size=1),
        _row(7, start=None, size=2),
        _row(7, start=0.0, size=3),
        {**ROW, "path": "/v/c", "size": 4},
        {**ROW, "path": "/v/c0", "size": 5},
        _row(3, size=6, settings="s2"),
        _row(1, size=7),
        _row(7, start=2.5, size=8),  # the same clip again: the newest wins
        # Arrow orders strings by UTF-8 bytes, Python by code points: the same order, beyond the BMP too.
        *({**ROW, "path": f"/v/{name}.mp4", "size": 10 + i} for i, name in enumerate(["é", "Z", "z", "😀", "\uffff"])),
    ]
    for r in rows:
        store.add(r)
    store.flush()
    expected: dict = {}
    for r in rows:
        if r["settings"] == "s1":
            expected[(r["path"], r["start"])] = (r["size"], r["mtime_ns"])
    done = store.done("s1")
    assert len(done) == len(expected) == 11 and dict(done.items()) == expected and done == expected
    for key, value in expected.items():
        assert done.get(key) == value and key in done
    for missing in (("/v/c00007.mp4", 1.0), ("/v/c00003.mp4", None), ("/v/c00", None), ("/v/d", None), ("", None)):
        assert done.get(missing) is None and missing not in done
    store.close()
    assert len(ResultsStore(tmp_path / "new.parquet").done("s1")) == 0
    # A clip that could not be stat'ed has no size or time: (None, None), and every other time stays exact.
    out2, mtime = tmp_path / "nulls.parquet", 1_718_000_000_123_456_789
    with ResultsStore(out2) as st:
        st.add(_row(1, mtime_ns=mtime))
        st.add({**ROW, "path": "/v/gone.mp4", "size": None, "mtime_ns": None, "status": "error", "error": "gone"})
        st.compact()
        assert st.done("s1") == {("/v/c00001.mp4", None): (10, mtime), ("/v/gone.mp4", None): (None, None)}


def test_streaming_opens_each_file_again_beyond_the_open_file_limit_and_refuses_one_that_changed(
    tmp_path, monkeypatch
):
    """Past the files a process may hold open (a crashed run of many ranks), each file is opened again to be read:
    the rows are the same; a file that a merge changed in between is refused in one line."""
    monkeypatch.setattr(results, "_BATCH", 2)
    out = tmp_path / "run.parquet"
    store = ResultsStore(out, flush_rows=3)
    for i in range(9):
        store.add(_row(i % 7, mtime_ns=i))
    store.flush()
    store.close()
    whole = read_results(out).to_pylist()
    monkeypatch.setattr(results, "_allow_open_files", lambda n: 0)
    assert sorted((r for b in iter_results(out) for r in b.to_pylist()), key=lambda r: r["path"]) == whole
    it = iter_results(out)
    next(it)
    last = _parts(out)[-1]
    t = pq.read_table(last)
    pq.write_table(pa.concat_tables([t, t]).replace_schema_metadata(t.schema.metadata), last)
    with pytest.raises(ValueError, match=r"changed while it was read .*; read it again"):
        list(it)
