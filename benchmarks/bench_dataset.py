"""Dataset runs: clips/s of the runner at 1 and 2 workers against a minimal decode + resize + FFT loop
(the practical limit, in 1 process and in 2) and against the runner's own per-clip work in 2 processes, peak
memory at 10 clips and at all clips, and what a re-run redoes after ``kill -9``.

    python benchmarks/bench_dataset.py               # 500 synthetic clips, cached under $TMPDIR
    python benchmarks/bench_dataset.py --clips 100   # quicker
    python benchmarks/bench_dataset.py --clips 200 --memory-clips 10000   # also peak memory at 10,000 clips

The clips (mixed sizes 160×120 to 320×240, 20 frames, H.264) are written once and cached. Every
figure is measured in this one run; `uptime` is printed beside them since the machine may be shared.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F

from freqscope.bands import DEFAULT_EDGES, make_bands
from freqscope.dataset import _analyse, _Clips, run_dataset
from freqscope.encode import load_encoder
from freqscope.inputs import ClipSpec
from freqscope.results import read_results
from freqscope.rows import read_options

SIZES = [(120, 160), (180, 240), (240, 320), (240, 180)]  # (H, W), one portrait
FRAMES, SIZE = 16, 96  # read 16 frames, short side resized to 96 (every clip is resized)


def make_clips(folder: Path, n: int) -> list[Path]:
    """``n`` short synthetic clips (moving patterns plus noise, so the codec has work to do), cached."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        p = folder / f"clip{i:05d}.mp4"
        paths.append(p)
        if p.exists():
            continue
        h, w = SIZES[i % len(SIZES)]
        yy, xx = np.mgrid[0:h, 0:w]
        tmp = p.with_suffix(".tmp.mp4")
        with av.open(str(tmp), "w") as c:
            s = c.add_stream("libx264", rate=8)
            s.width, s.height, s.pix_fmt = w, h, "yuv420p"
            for t in range(FRAMES + 4):
                img = 127 + 60 * np.sin((xx + 3 * t * (i % 5 + 1)) / (7 + i % 11)) + 40 * np.cos(yy / (5 + i % 7))
                img = img + rng.normal(0, 10, (h, w))
                a = np.clip(np.stack([img, img[::-1], img[:, ::-1]], -1), 0, 255).astype(np.uint8)
                for pk in s.encode(av.VideoFrame.from_ndarray(a, format="rgb24")):
                    c.mux(pk)
            for pk in s.encode():
                c.mux(pk)
        tmp.rename(p)
    return paths


def minimal(paths: list[Path]) -> float:
    """The practical limit in one process: PyAV decode (FFmpeg's default threads, as ``read_video`` in one
    process), one batched antialiased resize, float32 rfftn, band means."""
    t0 = time.perf_counter()
    for p in paths:
        with av.open(str(p)) as c:
            frames = []
            for f in c.decode(video=0):
                frames.append(f.to_ndarray(format="rgb24"))
                if len(frames) == FRAMES:
                    break
        x = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float()  # (t, 3, H, W)
        H, W = x.shape[-2:]
        s = SIZE / min(H, W)
        x = F.interpolate(x, size=(round(H * s), round(W * s)), mode="bilinear", antialias=True)
        h, w = x.shape[-2] // 8 * 8, x.shape[-1] // 8 * 8
        x = (x[..., :h, :w] / 127.5 - 1).permute(1, 0, 2, 3)[None]  # (1, 3, t, h, w)
        bands = make_bands((FRAMES, h, w))
        X = torch.fft.rfftn(x, dim=(-3, -2, -1), norm="ortho")
        p2 = (X.real**2 + X.imag**2) * bands.half_weights.float()
        sums = torch.zeros(len(bands), dtype=torch.float64).index_add_(
            0, bands.half_labels.flatten(), p2.mean(1).flatten().double()
        )
        sums / torch.tensor([b.n_bins for b in bands.bands])
    return time.perf_counter() - t0


def clip_work(paths: list[Path]) -> float:
    """The runner's own per-clip work (``_Clips._load``: decode, resize, analysis, the row), one clip after another
    in this process: no DataLoader, no store."""
    opts = dict(edges=DEFAULT_EDGES, decomposition="spatiotemporal", time_scale=1.0, radial=False)
    analyse = _analyse(load_encoder(), device="cpu", **opts)
    read = read_options({"frames": FRAMES, "size": SIZE})
    clips = _Clips([], rank=0, world_size=1, done={}, settings={}, read=read, analyse=analyse)
    t0 = time.perf_counter()
    for p in paths:
        row, _ = clips._load(ClipSpec(str(p)))
        assert row is not None and row["status"] == "ok", row
    return time.perf_counter() - t0


def two(work, paths: list[Path]) -> float:
    """``work`` in 2 forked processes, half of the clips each, nothing shared: what 2 cores give to it."""
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        pool.map(len, [[], []])  # both processes started before the clock
        t0 = time.perf_counter()
        pool.map(work, [paths[0::2], paths[1::2]])
        return time.perf_counter() - t0


def runner(paths: list[Path], workers: int) -> float:
    t0 = time.perf_counter()
    run = run_dataset([str(p) for p in paths], load_encoder(), read={"frames": FRAMES, "size": SIZE}, workers=workers)
    assert run.analysed == len(paths), run.errors[:3]
    return time.perf_counter() - t0


def _tree_rss(pid: int) -> int:
    """Resident set size (KiB) of a process and all its descendants, from /proc."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += int(status.split("VmRSS:")[1].split()[0])
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, IndexError, ProcessLookupError):
            pass
    return total


def cli(
    paths: list[Path], results: Path, workers: int, *, kill_after: float | None = None
) -> tuple[int, float, list[int]]:
    """``freqscope snr`` on a list of clips; returns the peak RSS of its process tree (KiB), its wall time and
    the tree's RSS sampled every 50 ms. With ``kill_after``, SIGKILL the whole tree after that many seconds."""
    lst = results.with_suffix(".txt")
    lst.write_text("".join(f"{p}\n" for p in paths))
    cmd = [sys.executable, "-m", "freqscope", "snr", "--video", str(lst), "--results", str(results), "--quiet"]
    cmd += ["--workers", str(workers), "--frames", str(FRAMES), "--size", str(SIZE)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, start_new_session=True)
    samples = []
    while proc.poll() is None:
        samples.append(_tree_rss(proc.pid))
        if kill_after is not None and time.perf_counter() - t0 > kill_after:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            break
        time.sleep(0.05)
    if kill_after is None and proc.returncode != 0:
        raise SystemExit(f"freqscope snr failed with status {proc.returncode}")
    return max(samples, default=0), time.perf_counter() - t0, samples


def memory(paths: list[Path], n: int, cache: Path) -> None:
    """Peak RSS of ``freqscope snr --workers 2 --results`` at 10 clips and at ``n`` (copies of ``paths``, each
    its own file: a dataset run counts a file once however it is reached)."""
    copies = cache / "copies"
    copies.mkdir(exist_ok=True)
    many = []
    for i in range(n):
        q = copies / f"copy{i:06d}.mp4"
        if not q.exists():
            shutil.copyfile(paths[i % len(paths)], q)
        many.append(q)
    # 10 clips show the fixed cost; n/10 and n whether memory grows with the clips once the run is warm. The
    # peak of a longer run also catches more coincident short spikes (a flush, a large clip in both workers), so
    # the median over the run's second half is printed beside it.
    peaks, steady = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for k in sorted({10, max(10, n // 10), n}):
            peaks[k], wall, samples = cli(many[:k], Path(tmp) / f"run{k}.parquet", 2)
            steady[k] = float(np.median(samples[len(samples) // 2 :]))
        rows = read_results(Path(tmp) / f"run{n}.parquet").num_rows
    deciles = [float(np.median(c)) / 1024 for c in np.array_split(np.array(samples), 10)]
    print(f"the {n}-clip run's RSS, median of each tenth of its time (MiB): {', '.join(f'{d:.0f}' for d in deciles)}")
    tenth = max(10, n // 10)
    shown = ", ".join(f"{peaks[k] / 1024:.0f} MiB (median {steady[k] / 1024:.0f}) at {k} clips" for k in peaks)
    print(
        f"peak RSS of `freqscope snr --workers 2 --results` (all processes; the median over the second half of the "
        f"run): {shown} ({rows} rows, {wall:.0f} s, {n / wall:.1f} clips/s); {n} clips / {tenth}: peak "
        f"{peaks[n] / peaks[tenth]:.2f}×, median {steady[n] / steady[tenth]:.2f}×"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=500, help="synthetic clips (default 500)")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds; the best of each is kept (default 2)")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "freqscope-bench-clips")
    ap.add_argument(
        "--memory-clips",
        type=int,
        default=0,
        help="also measure peak memory of `freqscope snr --workers 2` over this many clips (copies of the clips)",
    )
    ap.add_argument("--memory-only", action="store_true", help="only the --memory-clips measurement")
    args = ap.parse_args()
    torch.set_num_threads(1)  # per-core figures: one thread in this process, one per worker
    t0 = time.perf_counter()
    paths = make_clips(args.cache, args.clips)
    print(f"{len(paths)} clips in {args.cache} (made or found in {time.perf_counter() - t0:.0f} s)")
    print(f"load before: {os.getloadavg()[0]:.2f} (1-min average), {os.cpu_count()} cores")

    if args.memory_clips:
        memory(paths, args.memory_clips, args.cache)
        if args.memory_only:
            return

    # Rounds alternate the four ways, and each keeps its best round: a shared machine's load moves all four.
    # Each pair to compare runs back to back, so that a ratio within a round sees one machine speed.
    ways = {
        "min": lambda: minimal(paths),
        0: lambda: runner(paths, 0),
        "min2": lambda: two(minimal, paths),  # the limit for 2 workers
        2: lambda: runner(paths, 2),
        "work2": lambda: two(clip_work, paths),
        1: lambda: runner(paths, 1),
    }
    rounds = [{k: len(paths) / way() for k, way in ways.items()} for _ in range(args.rounds)]
    rates = {k: max(r[k] for r in rounds) for k in ways}
    r_min = rates["min"]
    print(f"best of {args.rounds} rounds")
    print(f"minimal loop (decode + batched resize + rfftn + band means), 1 process: {r_min:6.1f} clips/s")
    for w in (0, 1, 2):
        where = "in this process" if w == 0 else f"{w} worker(s)"
        print(f"freqscope runner, {where:>16}: {rates[w]:6.1f} clips/s = {rates[w] / r_min:.2f}× the minimal loop")
    r0, r1 = rates[2] / rates[0], rates[2] / rates[1]
    print(f"scaling: 2 workers {r0:.2f}× the in-process rate, {r1:.2f}× the 1-worker rate")
    r_min2 = rates["min2"]
    print(
        f"minimal loop in 2 processes (half the clips each): {r_min2:6.1f} clips/s = {r_min2 / r_min:.2f}× 1 process "
        f"(what 2 cores give here); 2 workers = {rates[2] / r_min2:.2f}× it"
    )
    print(
        f"the runner's per-clip work in 2 processes (no DataLoader, no store): {rates['work2']:6.1f} clips/s = "
        f"{rates['work2'] / r_min2:.2f}× the minimal loop in 2 processes"
    )

    def paired(a, b) -> str:
        r = sorted(x[a] / x[b] for x in rounds)
        return f"{r[len(r) // 2]:.2f}× ({r[0]:.2f}–{r[-1]:.2f})"

    print(
        f"ratios within a round (median, range over {args.rounds}): in-process / minimal loop {paired(0, 'min')}; "
        f"2 workers / in-process {paired(2, 0)}; 2 workers / minimal loop in 2 processes {paired(2, 'min2')}; "
        f"minimal loop, 2 processes / 1 {paired('min2', 'min')}"
    )

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        few, _, _ = cli(paths[:10], tmp / "few.parquet", 2)
        many, wall, _ = cli(paths, tmp / "many.parquet", 2)
        print(
            f"peak RSS of `freqscope snr --workers 2` (all processes): {few / 1024:.0f} MiB at 10 clips, "
            f"{many / 1024:.0f} MiB at {len(paths)} clips ({wall:.1f} s)"
        )

        out = tmp / "killed.parquet"
        kill_at = max(3.0, 0.5 * wall)
        cli(paths, out, 2, kill_after=kill_at)
        kept = read_results(out).num_rows
        again = run_dataset(
            [str(p) for p in paths], load_encoder(), read={"frames": FRAMES, "size": SIZE}, workers=2, results=out
        )
        assert again.resumed == kept and again.analysed == len(paths) - kept
        # Every row is stored as the main process receives it, so what a re-run redoes is exactly what was in
        # flight at the kill (decoding in the workers or queued: up to 2 workers × prefetch 2).
        print(
            f"kill -9 after {kill_at:.1f} s: {kept} rows stored, the re-run skipped all {again.resumed} and "
            f"analysed the other {again.analysed} (none stored was redone)"
        )
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
