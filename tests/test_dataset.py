"""Dataset runs: inputs, the runner against the single-clip path, the results store (resume after a crash,
changed files, bad clips), re-aggregation under several schedules, and torchrun with two CPU ranks."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from conftest import run_cli, write_clip
from freqscope.aggregate import aggregate
from freqscope.analysis import analyze_video, summarize
from freqscope.dataset import run_dataset
from freqscope.encode import load_encoder
from freqscope.inputs import ClipSpec, iter_clips, shard
from freqscope.noise_schedule import get_schedule
from freqscope.report import format_table, summary_to_dict
from freqscope.results import ResultsStore, read_results


def _frames(seed: int, t: int = 10, h: int = 32, w: int = 48) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h, w, 3)).astype(np.float64)
    return np.stack([np.roll(base, 2 * i, axis=1) for i in range(t)]).clip(0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """Six clips in two sizes, one in a subfolder, plus a file that is not a video."""
    root = tmp_path_factory.mktemp("dataset")
    (root / "sub").mkdir()
    for i in range(5):
        write_clip(root / f"c{i}.mp4", _frames(i, h=32 if i % 2 else 40), fps=10)
    write_clip(root / "sub" / "c5.mp4", _frames(5), fps=10)
    (root / "zz_broken.mp4").write_bytes(b"not a video")
    return root


READ = {"frames": 8}


def test_inputs_folder_glob_and_lists(dataset, tmp_path):
    found = [c.path for c in iter_clips([dataset])]
    assert len(found) == 7 and found[-1].endswith("sub/c5.mp4")  # recursive, sorted per folder
    assert [Path(c.path).name for c in iter_clips([str(dataset / "c[13].mp4")])] == ["c1.mp4", "c3.mp4"]
    (tmp_path / "list.txt").write_text(f"# two clips\n{dataset}/c0.mp4\n\n{dataset}/sub/c5.mp4\n")
    assert [Path(c.path).name for c in iter_clips([tmp_path / "list.txt"])] == ["c0.mp4", "c5.mp4"]
    (tmp_path / "list.csv").write_text(f"path,start,weight\n{dataset}/c0.mp4,0.2,3\n{dataset}/c1.mp4,,\n")
    specs = list(iter_clips([tmp_path / "list.csv"]))
    assert specs == [ClipSpec(f"{dataset}/c0.mp4", 0.2, 3.0), ClipSpec(f"{dataset}/c1.mp4", None, None)]
    assert list(shard(range(10), 1, 3)) == [1, 4, 7]
    (tmp_path / "bad.csv").write_text("file\nx.mp4\n")
    with pytest.raises(ValueError, match="'path' column"):
        list(iter_clips([tmp_path / "bad.csv"]))
    with pytest.raises(FileNotFoundError, match="matches no video"):
        list(iter_clips([str(dataset / "*.mkv")]))


def test_runner_matches_single_clip_path(dataset):
    # Band powers from the runner (2 workers analysing in place) equal analyze_video's, clip by clip,
    # and the aggregate equals summarize() of the single-clip results (both in linear power).
    enc, sched = load_encoder(), get_schedule("sd")
    run = run_dataset([dataset], enc, read=READ, workers=2)
    assert run.analysed == 6 and [Path(p).name for p, _ in run.errors] == ["zz_broken.mp4"]
    rows = sorted((r for r in run.rows if r["status"] == "ok"), key=lambda r: r["path"])
    single = [analyze_video(r["path"], enc, sched, radial=False, **READ) for r in rows]
    for r, c in zip(rows, single):
        assert torch.allclose(torch.tensor(r["band_power"], dtype=torch.float64), c.snr.power, rtol=1e-6)
        assert r["latent_shape"] == list(c.latent_shape)
    agg, ref = aggregate(run.rows, sched), summarize(single, sched)
    assert agg.n_clips == 6 and [p for p, _ in agg.skipped] == [p for p, _ in run.errors]
    assert torch.allclose(agg.snr_db, ref.snr_db, atol=1e-5)
    # Energy shares: a weighted mean of shares that each sum to 1 (a width once multiplied them: sums of 224).
    assert abs(agg.energy_fraction.sum().item() - 1) < 1e-6
    assert torch.allclose(agg.energy_fraction, ref.energy_fraction, atol=1e-9)
    # The JSON's band bounds are those of the single-clip report: (0, e1) starts at 0, the last band ends at d_max.
    bounds = [(b["lo"], b["hi"]) for b in summary_to_dict(agg)["bands"]]
    assert bounds == [(b.lo, b.hi) for b in single[0].bands.bands]
    assert bounds[1][0] == 0.0 and bounds[-1][1] == max(b.hi for b in single[0].bands.bands) > 1
    with pytest.raises(ValueError, match="`strict` stops"):
        run_dataset([dataset], enc, read=READ, strict=True)


def test_vae_batches_equal_single_clips(dataset, vaes):
    # A VAE encodes clips of equal size together (two sizes here: a batch of 2 of each, then the last
    # clip of each alone); the band powers equal those of one clip at a time.
    enc = load_encoder(vae=str(vaes["kl"]))
    one = run_dataset([dataset], enc, read=READ, batch_size=1).rows
    two = run_dataset([dataset], enc, read=READ, batch_size=2).rows
    key = lambda r: r["path"]  # noqa: E731
    one, two = sorted(one, key=key), sorted(two, key=key)
    assert [r["path"] for r in one] == [r["path"] for r in two] and len(one) == 7
    for a, b in zip(one, two):
        assert a["status"] == b["status"]
        if a["status"] == "ok":
            assert a["latent_shape"] == b["latent_shape"] and a["latent_shape"][:3] == [1, 4, 8]
            assert np.allclose(a["band_power"], b["band_power"], rtol=1e-4)


def test_weighted_mean_and_spread(dataset):
    rows = run_dataset([str(dataset / "c[01].mp4")], load_encoder(), read=READ, radial=True).rows
    sched = get_schedule("sd")
    ref = analyze_video(rows[0]["path"], load_encoder(), sched, **READ).rapsd  # the radial profile, when asked
    assert torch.allclose(torch.tensor(rows[0]["radial_power"], dtype=torch.float64), ref[1], rtol=1e-6)
    P = torch.tensor([r["band_power"] for r in rows], dtype=torch.float64)
    rows[0]["weight"], rows[1]["weight"] = 3.0, 1.0
    s = aggregate(rows, sched, weighted=True)
    mean = 0.75 * P[0] + 0.25 * P[1]
    std = (0.75 * (P[0] - mean) ** 2 + 0.25 * (P[1] - mean) ** 2).sqrt()
    assert torch.allclose(s.power, mean) and torch.allclose(s.power_std, std)
    assert torch.allclose(s.snr_db, 10 * torch.log10(mean[:, None] * sched.snr))
    assert torch.allclose(s.snr_db_hi, 10 * torch.log10((mean + std)[:, None] * sched.snr))


def test_a_summary_in_chunks_equals_one_pass(dataset, monkeypatch):
    """A run of more than ``aggregate.CHUNK`` clips is summarised a chunk at a time (10M clips in constant memory):
    weighted means, spreads and energy shares merged over chunks equal one pass over all clips, to float64
    rounding; shapes and skipped clips are the same. Chunks of 2 clips, batches of 3 rows, an error row, a clip
    of weight 0 and a chunk whose weights are all 0."""
    agg = importlib.import_module("freqscope.aggregate")  # the module: the package names its function so

    rows = run_dataset([str(dataset)], load_encoder(), read=READ).rows  # 6 clips, 2 latent sizes, 1 error
    assert sum(r["status"] == "ok" for r in rows) == 6 and len(rows) == 7
    ok = [r for r in rows if r["status"] == "ok"]
    for r, w in zip(ok, (0.0, 0.0, 2.0, 1.0, 0.5, 4.0)):
        r["weight"] = w
    sched, default = get_schedule("sd"), agg.CHUNK
    for weighted in (False, True):
        one = aggregate(rows, sched, weighted=weighted)
        monkeypatch.setattr(agg, "CHUNK", 2)
        pool = agg.Pool(weighted=weighted)
        for i in range(0, len(rows), 3):
            pool.add(agg._table(rows[i : i + 3]))
        assert pool._folded  # the chunked path was taken
        chunked = pool.summary(sched)
        monkeypatch.setattr(agg, "CHUNK", default)
        for name in ("power", "power_std", "energy_fraction", "snr_db", "snr_db_lo", "snr_db_hi"):
            torch.testing.assert_close(getattr(chunked, name), getattr(one, name), rtol=1e-12, atol=0)
        assert (chunked.n_clips, chunked.latent_shapes) == (one.n_clips, one.latent_shapes)
        assert chunked.band_names == one.band_names
        assert chunked.skipped == one.skipped and chunked.crossing == one.crossing
    # Bad weights are refused in chunks as in one pass.
    monkeypatch.setattr(agg, "CHUNK", 2)
    for bad, match in ((0.0, "not all 0"), (float("inf"), "finite numbers")):
        for r in ok:
            r["weight"] = bad
        with pytest.raises(ValueError, match=match):
            agg.aggregate_batches([rows[:3], rows[3:]], [sched], weighted=True)


def test_a_stores_summary_is_that_of_its_rows_sorted_whatever_order_they_were_written(dataset, tmp_path):
    """A store is summarised as it is read, in the order its rows were written (workers and ranks write in any
    order): the first clip (whose grid gives the bounds) and the skipped clips are still those of the rows sorted by
    path, as ``aggregate(read_results(...))`` gives them; clips of two band sets or settings are refused in one line,
    in one batch or across chunks."""
    from freqscope.snr_job import snr_from_results

    agg = importlib.import_module("freqscope.aggregate")
    rows = run_dataset([str(dataset)], load_encoder(), read=READ).rows  # 2 latent sizes, 1 error
    out = tmp_path / "r.parquet"
    with ResultsStore(out, flush_rows=2) as store:
        for r in sorted(rows, key=lambda r: r["path"], reverse=True):
            store.add(r)
        store.add({**rows[-1], "path": "/a/missing.mp4", "status": "error", "error": "gone"})
    sched = get_schedule("sd")
    ref, got = aggregate(read_results(out), sched), snr_from_results(out, [sched])[0]
    assert (got.bounds, got.n_bins, got.latent_shapes) == (ref.bounds, ref.n_bins, ref.latent_shapes)
    assert got.skipped == ref.skipped and [p for p, _ in got.skipped] == [
        "/a/missing.mp4",
        str(dataset / "zz_broken.mp4"),
    ]
    for name in ("power", "power_std", "energy_fraction", "snr_db"):  # sums in another order: to rounding
        torch.testing.assert_close(getattr(got, name), getattr(ref, name), rtol=1e-12, atol=0)
    # Two band sets: the one-line error, not a reshape's traceback.
    ok = [r for r in rows if r["status"] == "ok"]
    four = [
        {
            **r,
            "band_names": r["band_names"][:4],
            "band_power": r["band_power"][:4],
            "n_bins": r["n_bins"][:4],
            "energy_fraction": r["energy_fraction"][:4],
        }
        for r in ok[:2]
    ]
    with pytest.raises(ValueError, match="different band sets"):
        aggregate(ok + four, sched)
    monkeypatch_chunk = pytest.MonkeyPatch()
    monkeypatch_chunk.setattr(agg, "CHUNK", 2)
    try:
        with pytest.raises(ValueError, match="different band sets"):
            agg.aggregate_batches([ok, four], [sched])
    finally:
        monkeypatch_chunk.undo()


def test_the_summary_reads_only_its_columns(dataset, tmp_path):
    """A dataset's summary reads only ``aggregate.COLUMNS`` from the store (memory: not the spectra of every clip),
    and gives what the whole table gives, to the bit."""
    from freqscope.aggregate import COLUMNS

    out = tmp_path / "r.parquet"
    run_dataset([str(dataset / "c[01].mp4")], load_encoder(), read=READ, results=out)
    full, sched = read_results(out), get_schedule("sd")
    assert {"spectrum", "frame_change", "video"} <= set(full.column_names) - set(COLUMNS)
    a = summary_to_dict(aggregate(full, sched))
    b = summary_to_dict(aggregate(read_results(out, columns=COLUMNS).select(COLUMNS), sched))
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_a_long_run_hands_freed_heap_back_every_few_clips(dataset, monkeypatch):
    """The main process trims its heap every ``TRIM_EVERY`` clips (a worker does so over its own clips): frames
    of many sizes otherwise fragment it and resident memory grows with the clips (benchmarks/README.md)."""
    import freqscope.dataset as ds

    calls = []
    monkeypatch.setattr(ds, "TRIM_EVERY", 2)
    monkeypatch.setattr(ds, "_trim_heap", lambda: calls.append(1))
    run = run_dataset([dataset], load_encoder(), read=READ)
    assert run.analysed + len(run.errors) == 7 and len(calls) == 3  # after clips 2, 4 and 6
    assert ds._malloc_trim() is None or ds._malloc_trim()(0) in (0, 1)  # glibc: 1 if memory was released


def test_resume_after_crash_redoes_only_unflushed_clips(dataset, tmp_path):
    enc = load_encoder()
    out = tmp_path / "run.parquet"
    full = run_dataset([dataset], enc, read=READ)
    # A run killed after flushing 3 rows: part files on disk, nothing merged.
    store = ResultsStore(out)
    for r in full.rows[:3]:
        store.add(r)
    store.flush()
    del store
    again = run_dataset([dataset], enc, read=READ, results=out)
    assert (again.resumed, again.analysed + len(again.errors)) == (3, 4)
    ResultsStore(out).compact()
    assert not (tmp_path / "run.parquet.parts").exists()
    assert read_results(out).num_rows == 7
    # Nothing left to do; a changed file (new mtime) is analysed again.
    assert run_dataset([dataset], enc, read=READ, results=out).resumed == 7
    os.utime(dataset / "c2.mp4", ns=(1, 1))
    redo = run_dataset([dataset], enc, read=READ, results=out)
    assert (redo.analysed, redo.resumed) == (1, 6)
    ResultsStore(out).compact()
    assert read_results(out).num_rows == 7  # the newer row replaces the older one
    # Other settings (more frames) are a different key: everything is analysed again.
    assert run_dataset([dataset], enc, read={"frames": 9}, results=out).resumed == 0


def test_cli_dataset_run_and_from_results(dataset, tmp_path):
    out, js = tmp_path / "run.parquet", tmp_path / "snr.json"
    r = run_cli("snr", "--video", dataset, "--frames", 8, "--results", out, "--workers", 1, "--json", js)
    assert r.returncode == 0, r.stderr
    assert "skipped 1 unreadable clip" in r.stderr and str(out) in r.stderr
    d = json.loads(js.read_text())
    assert d["schema"] == "freqscope.snr/2" and (d["n_clips"], d["n_skipped"]) == (6, 1)
    assert d["skipped"][0]["path"].endswith("zz_broken.mp4")
    t = pq.read_table(out)
    assert t.num_rows == 7 and sorted(set(t.column("status").to_pylist())) == ["error", "ok"]
    # Re-aggregate under two schedules without decoding: the same numbers for the one run above.
    png = tmp_path / "snr.png"
    r = run_cli(
        "snr", "--from-results", out, "--schedule", "sd", "--schedule", "flow", "--json", js, "--plot", png, "-q"
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "snr-flow.png").read_bytes()[:4] == b"\x89PNG"
    sd = json.loads((tmp_path / "snr-sd.json").read_text())
    flow = json.loads((tmp_path / "snr-flow.json").read_text())
    assert sd["snr_db"] == d["snr_db"] and flow["schedule"]["name"] == "flow"
    assert sd["bands"][1]["power"] == pytest.approx(flow["bands"][1]["power"])
    r = run_cli("snr", "--from-results", tmp_path / "none.parquet")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "not found" in r.stderr
    r = run_cli("snr", "--video", dataset, "--results", tmp_path / "run.csv")
    assert r.returncode == 2 and ".parquet" in r.stderr


def test_torchrun_two_cpu_ranks_equal_one_process(dataset, tmp_path):
    # torchrun -m freqscope with two gloo ranks: each analyses half the clips, rank 0 merges; the merged
    # rows equal a single-process run's.
    one, two = tmp_path / "one.parquet", tmp_path / "two.parquet"
    args = ["snr", "--video", str(dataset), "--frames", "8", "--quiet"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    r = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
        + ["-m", "freqscope", *args, "--results", str(two)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert run_cli(*args, "--results", one).returncode == 0
    a, b = read_results(one), read_results(two)
    assert not Path(str(two) + ".parts").exists()
    assert sorted(set(b.column("rank").to_pylist())) == [0, 1]
    for col in ("path", "status", "latent_shape", "band_power", "settings"):
        assert a.column(col).to_pylist() == b.column(col).to_pylist(), col


def test_bad_sources_fail_with_one_line(dataset, tmp_path):
    enc = load_encoder()
    with pytest.raises(FileNotFoundError, match="video not found"):
        run_dataset([dataset, tmp_path / "missing.mp4"], enc, read=READ, workers=1)
    (tmp_path / "l.csv").write_text(f"path,start\n{dataset}/c0.mp4,0\n{dataset}/c1.mp4,soon\n")
    with pytest.raises(ValueError) as e:  # found by a worker, reported as the reader's own one-line message
        run_dataset([tmp_path / "l.csv"], enc, read=READ, workers=1)
    assert str(e.value).endswith("start 'soon' is not a number") and "\n" not in str(e.value)


def _stored_rows(out) -> int:
    """Rows a running dataset job has stored so far (0 before its first part file lands; polling may see
    the parts folder before the first part is written in it)."""
    try:
        return read_results(out).num_rows
    except FileNotFoundError:
        return 0


def test_kill_9_then_resume(dataset, tmp_path):
    # A real SIGKILL while the third clip is in flight (its encoder call stalls): every clip finished by
    # then is stored, and the re-run analyses only the rest.
    import signal
    import time

    order = [dataset / f"c{i}.mp4" for i in range(4)]
    (tmp_path / "l.txt").write_text("".join(f"{p}\n" for p in order))
    out = tmp_path / "run.parquet"
    code = (
        "import sys, time\n"
        "from freqscope.dataset import run_dataset\n"
        "from freqscope.encode import PixelEncoder\n"
        "class Stall(PixelEncoder):\n"
        "    calls = 0\n"
        "    def __call__(self, x, **kw):\n"
        "        Stall.calls += 1\n"
        "        if Stall.calls == 3:\n"
        "            time.sleep(600)  # the third clip never finishes: it is in flight when killed\n"
        "        return super().__call__(x, **kw)\n"
        f"run_dataset([sys.argv[1]], Stall(), read={READ!r}, results=sys.argv[2], workers=0)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "l.txt"), str(out)])
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if _stored_rows(out) == 2:
                break
            time.sleep(0.1)
        time.sleep(0.5)  # give it time to (wrongly) store anything more
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert read_results(out).num_rows == 2  # c0 and c1, stored as they finished
    again = run_dataset([tmp_path / "l.txt"], load_encoder(), read=READ, results=out)
    assert (again.resumed, again.analysed) == (2, 2)


def test_dataset_table_marks_empty_bands(dataset):
    # A band no bin of the grid falls in (here (0, 0.01) on 8 frames of 32×32 pixels) reads "empty" with
    # nan values, as in the single-clip table, not "inf" or a -inf spread.
    rows = run_dataset([str(dataset / "c1.mp4")], load_encoder(), read=READ, edges=(0.01, 0.5)).rows
    s = aggregate(rows, get_schedule("sd"))
    line = format_table(s).splitlines()[4]  # title, header, rule, DC, then (0, 0.01)
    assert s.n_bins[1] == 0 and line.split()[:3] == ["(0,", "0.01)", "empty"]
    assert "inf" not in line and line.split()[-2:] == ["nan", "never"]
    rows = run_dataset([str(dataset / "c[13].mp4")], load_encoder(), read=READ, edges=(0.01, 0.5)).rows
    two = aggregate(rows, s.schedule)
    line = format_table(two).splitlines()[4]  # several clips: a spread column, "empty" for an empty band
    assert "inf" not in line and line.split()[-2:] == ["empty", "never"]


def test_ranks_share_gpus_in_turn_and_the_group_backend_fits(monkeypatch):
    """torchrun with more ranks than GPUs (two processes on one GPU): rank 1 takes cuda:0 again, and the group
    is gloo (NCCL refuses two ranks on one GPU); NCCL where each rank has its own GPU; gloo on the CPU."""
    from freqscope.dataset_job import group_backend, rank_device

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert rank_device("cuda") == torch.device("cuda", 0) and rank_device("cpu") == torch.device("cpu")
    assert group_backend(torch.device("cuda", 0)) == "gloo" and group_backend(torch.device("cpu")) == "gloo"
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert rank_device("cuda") == torch.device("cuda", 1) and group_backend(torch.device("cuda", 1)) == "nccl"
