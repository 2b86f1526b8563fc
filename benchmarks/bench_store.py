"""The results store at dataset scale: rows/s of ``ResultsStore.add`` at 10k, 100k and 1M rows (flat is the goal),
the final merge, a resume's look-up of the clips done, and ``--from-results`` over every row: streamed a batch at a
time (as the CLI does) against the whole table in memory, each in a fresh process (seconds, peak RSS).

    python benchmarks/bench_store.py                 # 1M synthetic rows, in a temporary folder
    python benchmarks/bench_store.py --rows 200000   # quicker
    python benchmarks/bench_store.py --scale-to 10000000  # also --from-results over 10M rows (copies)
    python benchmarks/bench_store.py --flush-rows 100  # a part per 100 rows: a 100 clips/s run's parts (1 a second)

The rows are real rows (``latent_rows`` of a 16-frame 96×128 pixel latent: 5 bands, the settings and video
JSON a run stores), each with its own path and band powers. Timings are of the store's calls only.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch

from freqscope.bands import DEFAULT_EDGES
from freqscope.encode import load_encoder
from freqscope.results import ResultsStore
from freqscope.rows import analysis_settings, latent_rows, read_options, settings_columns

MARKS = (10_000, 100_000, 1_000_000)


def template() -> dict:
    """One row as a pixel-encoder run of 16 frames at 96×128 stores it."""
    read = read_options({"frames": 16, "size": 96})
    settings = analysis_settings(
        load_encoder(), read=read, edges=DEFAULT_EDGES, decomposition="spatiotemporal", time_scale=1.0, radial=False
    )
    _, (row,) = latent_rows(torch.randn(1, 3, 16, 96, 128, generator=torch.Generator().manual_seed(0)))
    video = {"source_size": [240, 320], "size": [96, 128], "fps": 25.0, "rotation": 0, "frames_requested": 16}
    video |= {"times": [round(i / 25, 4) for i in range(16)], "decoded": 16}
    return {
        **row,
        **settings_columns(settings),
        "start": None,
        "size": 1_234_567,
        "status": "ok",
        "error": None,
        "warning": None,
        "weight": None,
        "video": json.dumps(video),
    }


def fill(store: ResultsStore, base: dict, lo: int, hi: int, rng: np.random.Generator) -> float:
    """Add rows ``lo`` to ``hi`` (each its own clip); the seconds spent in ``add``."""
    power = np.asarray(base["band_power"])
    spent = 0.0
    for i in range(lo, hi):
        p = (power * rng.uniform(0.5, 2.0, power.shape)).tolist()
        row = {**base, "path": f"/data/webvid/{i // 10_000:04d}/{i:08d}.mp4", "mtime_ns": 1_700_000_000 + i}
        row["band_power"] = p
        t = time.perf_counter()
        store.add(row)
        spent += time.perf_counter() - t
    return spent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=MARKS[-1], help="rows to write (default 1M)")
    ap.add_argument("--flush-rows", type=int, default=None, help="rows per part (default: the store's)")
    ap.add_argument(
        "--scale-to", type=int, default=0, help="also stream --from-results over this many rows (copies of the rows)"
    )
    ap.add_argument("--dir", type=Path, default=None, help="where to write (default: a temporary folder)")
    args = ap.parse_args()
    base = template()
    rng = np.random.default_rng(0)
    print(f"load {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores; {args.rows:,} rows, flush_rows={args.flush_rows}")
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        out = Path(d) / "run.parquet"
        flush = {"flush_rows": args.flush_rows} if args.flush_rows else {}
        store = ResultsStore(out, metadata=json.loads(base["settings_json"]), **flush)
        done, total = 0, 0.0
        for mark in [m for m in MARKS if m < args.rows] + [args.rows]:
            spent = fill(store, base, done, mark, rng)
            total += spent
            parts = len(list(Path(f"{out}.parts").iterdir()))
            print(
                f"rows {done:>9,}–{mark:>9,}: {(mark - done) / spent:>9,.0f} rows/s "
                f"(cumulative {mark / total:,.0f} rows/s), {parts} part files, RSS {_rss_mib():.0f} MiB"
            )
            done = mark
        t = time.perf_counter()
        store.flush()
        t_flush = time.perf_counter() - t
        _from_results(out, "streamed from the unmerged parts (a killed run's store: keys read)", STREAMED)
        t = time.perf_counter()
        store.compact()
        t_done = time.perf_counter()
        print(
            f"last flush {t_flush:.2f} s; final merge of {args.rows:,} rows: {t_done - t:.2f} s "
            f"(peak RSS so far {_peak_mib():.0f} MiB)"
        )
        print(f"results file {out.stat().st_size / 2**20:.0f} MiB")
        n = len(store.done(base["settings"]))
        print(f"a resume's look-up of the {n:,} clips done: {time.perf_counter() - t_done:.2f} s")
        store.close()
        # --from-results each way in a fresh process, so that each peak is its own.
        _from_results(out, "whole table in memory, as before", WHOLE)
        _from_results(out, "streamed, as `snr --from-results` reads the merged file", STREAMED)
        _looked_up(out, "sorted columns (store.done)", DONE)
        _looked_up(out, "a dict of Python objects, as before", DONE_DICT)
        if args.scale_to:
            big = Path(d) / "big.parquet"
            t = time.perf_counter()
            copies(out, big, args.scale_to)
            print(f"{args.scale_to:,} rows (copies of these, other paths) written in {time.perf_counter() - t:.0f} s")
            _from_results(big, "streamed, the merged file", STREAMED)
            _looked_up(big, "sorted columns (store.done)", DONE)


def copies(src: Path, dst: Path, n: int) -> None:
    """A merged results file of ``n`` rows: the rows of ``src`` again and again, each copy under other paths."""
    f = pq.ParquetFile(src)
    with pq.ParquetWriter(dst, f.schema_arrow) as out:  # its metadata: freqscope's, one row per clip
        written, k = 0, 0
        while written < n:
            for b in f.iter_batches(batch_size=4096):
                t = pa.Table.from_batches([b]).slice(0, n - written)
                path = pc.binary_join_element_wise(f"/copy{k}", t.column("path"), "")
                out.write_table(t.set_column(t.schema.get_field_index("path"), "path", path))
                written += t.num_rows
                if written >= n:
                    break
            k += 1


def _looked_up(out: Path, how: str, code: str) -> None:
    r = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True, check=True)
    n_clips, seconds, peak = r.stdout.split()
    print(
        f"a resume's look-up of {int(n_clips):,} clips done, {how}: {float(seconds):.2f} s, "
        f"peak RSS {float(peak):,.0f} MiB"
    )


def _from_results(out: Path, how: str, code: str) -> None:
    r = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True, check=True)
    n_clips, seconds, peak = r.stdout.split()
    print(f"--from-results on {int(n_clips):,} rows, {how}: {float(seconds):.2f} s, peak RSS {float(peak):,.0f} MiB")


#: The summary of a results file (argv[1]) from the whole table in memory (read_results + aggregate); prints the
#: clips, the seconds and the peak RSS (MiB) of this process: VmHWM, which exec resets (ru_maxrss keeps the peak of
#: the parent's copy forked before exec, here ~1.1 GiB after the merge).
WHOLE = """
import sys, time
from freqscope.aggregate import COLUMNS, aggregate
from freqscope.noise_schedule import get_schedule
from freqscope.results import read_results
t = time.perf_counter()
s = aggregate(read_results(sys.argv[1], columns=COLUMNS), get_schedule("sd"))
print(s.n_clips, time.perf_counter() - t, int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024)
"""
#: The same streamed a batch at a time, as ``freqscope snr --from-results`` does (snr_job.snr_from_results).
STREAMED = """
import sys, time
from freqscope.noise_schedule import get_schedule
from freqscope.snr_job import snr_from_results
t = time.perf_counter()
s = snr_from_results(sys.argv[1], [get_schedule("sd")])[0]
print(s.n_clips, time.perf_counter() - t, int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024)
"""

#: A resume's look-up of the clips a results file (argv[1]) holds, in a fresh process.
DONE = """
import sys, time
import pyarrow.parquet as pq
from freqscope.results import ResultsStore
settings = pq.ParquetFile(sys.argv[1]).read_row_group(0, columns=["settings"]).column(0)[0].as_py()
t = time.perf_counter()
done = ResultsStore(sys.argv[1]).done(settings)
print(len(done), time.perf_counter() - t, int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024)
"""
#: The same as a dict of Python objects, as ``store.done`` made it before.
DONE_DICT = """
import sys, time
import pyarrow.parquet as pq
from freqscope.results import read_results
settings = pq.ParquetFile(sys.argv[1]).read_row_group(0, columns=["settings"]).column(0)[0].as_py()
t = time.perf_counter()
table = read_results(sys.argv[1], settings=settings, columns=["size", "mtime_ns"])
cols = [table.column(k).to_pylist() for k in ("path", "start", "size", "mtime_ns")]
done = {(p, s): (n, m) for p, s, n, m in zip(*cols)}
del table, cols
print(len(done), time.perf_counter() - t, int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024)
"""


def _rss_mib() -> float:
    """This process's resident set size now, MiB."""
    return int(Path("/proc/self/status").read_text().split("VmRSS:")[1].split()[0]) / 1024


def _peak_mib() -> float:
    """This process's peak resident set size so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main()
