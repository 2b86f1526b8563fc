"""Per-band power of many clips: decode in worker processes, encode in batches on the device, keep one
small row per clip in a resumable results store; shards across ``torchrun`` ranks as ``rank::world_size``.

The flow (docs/architecture.md): DataLoader workers decode and resize each clip; clips of equal size are batched
for the encoder (a VAE runs on the device, fp16/bf16 on CUDA); one float32 real FFT per latent gives its
band powers on the device; only those, the bin counts, energy shares, shapes and clip metadata travel
back. With the weight-free pixel encoder on the CPU the workers do the whole analysis themselves, so
only small rows cross process boundaries. The SNR of any schedule follows from the band powers
(:mod:`freqscope.aggregate`), so nothing here depends on the schedule.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import os
import re
import sys
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from .bands import DEFAULT_EDGES
from .encode import Encoder, PixelEncoder
from .inputs import ClipSpec, check_sources, iter_clips, shard
from .results import ResultsStore
from .rows import analysis_settings, latent_rows, read_options, settings_columns
from .video import read_video

__all__ = ["DatasetRun", "run_dataset"]


@dataclass
class DatasetRun:
    """What a dataset run did: one rank's, or (from :func:`~freqscope.dataset_job.run_ranks`) the counts
    summed over all ranks. The rows themselves are in the results store, or in ``rows`` without one."""

    settings: dict
    settings_hash: str
    analysed: int = 0  # clips analysed in this run
    resumed: int = 0  # clips skipped because the store already held them
    errors: list[tuple[str, str]] = field(default_factory=list)  # (path, one-line error) of this rank's clips
    warned: int = 0  # clips analysed with a warning (e.g. fewer frames than asked), in the 'warning' column
    rows: list[dict] = field(default_factory=list)  # this run's rows when there is no store
    seconds: float = 0.0
    rank: int = 0  # this process's torchrun rank
    world_size: int = 1


#: Every this many clips a process of a dataset run hands its freed heap back to the system (:func:`_trim_heap`).
TRIM_EVERY = 256


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (macOS, musl, Windows)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError, TypeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def _trim_heap() -> None:
    """Return freed heap memory to the system: frames of many sizes leave the heap fragmented, and a long run's
    memory kept growing without this (with it, a 10,000-clip run is flat over its second half:
    ``benchmarks/bench_dataset.py --memory-clips 10000``, benchmarks/README.md "Dataset runs")."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _one_line(e: BaseException) -> str:
    s = str(e).strip().splitlines()
    return (s[0] if s else type(e).__name__)[:300]


class _Clips(IterableDataset):
    """This rank's clips (``rank::world_size``), split again over the DataLoader workers, minus the done ones.

    Yields ``(row, frames)``: ``frames`` (1, 3, t, H, W) to encode in the main process, or None when
    the row is complete (analysed in the worker, or an error)."""

    def __init__(self, sources, *, rank, world_size, done, settings, read, analyse: Callable | None):
        self.sources, self.rank, self.world_size = sources, rank, world_size
        self.done, self.settings, self.read, self.analyse = done, settings, read, analyse

    def __iter__(self):
        info = get_worker_info()
        clips = shard(iter_clips(self.sources), self.rank, self.world_size)
        if info is not None:
            clips = shard(clips, info.id, info.num_workers)
        for i, spec in enumerate(clips, 1):
            yield self._load(spec)
            if info is not None and i % TRIM_EVERY == 0:  # a worker's heap (the main process trims in _Sink)
                _trim_heap()

    def _load(self, spec: ClipSpec):
        path = os.path.abspath(spec.path)
        row = {"path": path, "start": spec.start, "status": "ok", "weight": spec.weight, **self.settings}
        try:
            st = os.stat(path)
            row["size"], row["mtime_ns"] = st.st_size, st.st_mtime_ns
        except OSError as e:
            return {**row, "status": "error", "error": f"cannot read {path}: {e.strerror}"}, None
        if self.done.get((path, spec.start)) == (st.st_size, st.st_mtime_ns):
            return None, None  # analysed before, file unchanged
        read = dict(self.read, **({"start": spec.start} if spec.start is not None else {}))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                x: torch.Tensor | None
                # FFmpeg picks the decoder threads, in a worker too: one thread per worker was 13-14 % slower on
                # 2 cores with 1 and 2 workers (benchmarks/README.md, "Dataset runs").
                x, vinfo = read_video(path, **read)
                row["video"] = json.dumps(vinfo.to_dict())
                if self.analyse is not None:
                    row.update(self.analyse(x)[0])
                    x = None
            except (ValueError, FileNotFoundError, OSError, RuntimeError) as e:
                return {**row, "status": "error", "error": _one_line(e)}, None
        row["warning"] = "\n".join(str(w.message) for w in caught) or None
        return row, x


def _analyse(encoder, *, device, edges, decomposition, time_scale, radial, generator=None):
    """Frames ``(b, 3, t, H, W)`` → one row of band results per clip (:func:`~freqscope.rows.latent_rows`)."""

    @torch.no_grad()
    def analyse(x: torch.Tensor) -> list[dict]:
        z = encoder(x.to(device, non_blocking=True), generator=generator)  # x pinned for a GPU (_frames_batch)
        if z.shape[2] < 2:
            raise ValueError(f"the latent has {z.shape[2]} frame(s); spatio-temporal bands need 2 or more")
        opts = dict(edges=edges, decomposition=decomposition, time_scale=time_scale, radial=radial)
        return latent_rows(z, **opts, what="the latent")[1]

    return analyse


def run_dataset(
    sources: Iterable[str],
    encoder: Encoder,
    *,
    results: str | os.PathLike | None = None,
    read: dict | None = None,
    edges: tuple[float, ...] = DEFAULT_EDGES,
    decomposition: str = "spatiotemporal",
    time_scale: float = 1.0,
    radial: bool = False,
    workers: int = 0,
    batch_size: int = 8,
    strict: bool = False,
    device: torch.device | str = "cpu",
    rank: int = 0,
    world_size: int = 1,
    generator: torch.Generator | None = None,
    progress: Callable | None = None,
) -> DatasetRun:
    """Band powers of every clip of ``sources`` (files, folders, globs, lists), one row per clip.

    ``read``: options of :func:`~freqscope.video.read_video` (frames, stride, fps, start, size); a
    CSV list's ``start`` column overrides ``start`` per clip. With ``results`` (a ``.parquet`` path)
    rows go to a :class:`~freqscope.results.ResultsStore` and clips already there (same file size,
    mtime and settings) are skipped. A clip that cannot be read
    or analysed is recorded as an error row and skipped, or raises with ``strict``. ``workers``
    processes decode in parallel (0: in this process); clips of equal size are encoded ``batch_size``
    at a time by a VAE (at most ``2 · batch_size`` clips wait in memory). Under torchrun each rank
    takes ``rank::world_size`` of the clips and writes its own parts.
    """
    if workers < 0:
        raise ValueError(f"workers={workers}: must be >= 0")
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}: must be >= 1")
    sources = list(sources)
    check_sources(sources)  # a missing file, an empty folder or list, a bad CSV cell: fail before any work
    device = torch.device(device)
    read = read_options(read)
    settings = analysis_settings(
        encoder, read=read, edges=edges, decomposition=decomposition, time_scale=time_scale, radial=radial
    )
    columns = settings_columns(settings)
    key = columns["settings"]
    run = DatasetRun(settings, key, rank=rank, world_size=world_size)
    store = ResultsStore(results, rank=rank, metadata=settings) if results is not None else None
    done = store.done(key) if store is not None else {}
    opts = dict(edges=edges, decomposition=decomposition, time_scale=time_scale, radial=radial)
    # The weight-free pixel encoder on the CPU: the workers analyse, only rows come back.
    in_worker = workers > 0 and isinstance(encoder, PixelEncoder) and device.type == "cpu"
    ds = _Clips(
        sources,
        rank=rank,
        world_size=world_size,
        done=done,
        settings=columns,
        read=read,
        analyse=_analyse(encoder, device="cpu", **opts) if in_worker else None,
    )
    total = sum(1 for _ in shard(iter_clips(sources), rank, world_size)) if progress else None
    loader = DataLoader(
        ds,
        batch_size=None,
        num_workers=workers,
        prefetch_factor=2 if workers else None,
        pin_memory=False,  # clips are pinned once batched (_frames_batch): torch.cat of pinned clips is not pinned
    )
    bar = progress(total=total, desc="clips", unit="clip", smoothing=0.05) if progress else None
    t0 = time.perf_counter()
    sink = _Sink(
        run,
        _analyse(encoder, device=device, generator=generator, **opts),
        batch=1 if isinstance(encoder, PixelEncoder) else batch_size,  # batching helps a model, not an FFT
        device=device,
        store=store,
        strict=strict,
        bar=bar,
    )
    try:
        _drain(loader, sink, workers)
        sink.finish()
    except (ValueError, FileNotFoundError) as e:
        _raise_worker_error(e, workers)
        raise
    finally:
        if store is not None:
            store.flush()
        if bar is not None:
            bar.close()
    if store is not None and world_size == 1:
        store.compact()  # under torchrun rank 0 merges, once every rank is done
        store.close()  # lets the results file's lock go (torchrun ranks hold it until they exit)
    run.seconds = time.perf_counter() - t0
    return run


def _drain(loader: DataLoader, sink: _Sink, workers: int) -> None:
    """Every item of the loader into the sink; its worker processes shut down however the loop ends. A worker
    that dies (the group's SIGTERM or Ctrl-C, the out-of-memory killer) ends the run as its cause would: exit 143
    or 130, or one line saying the stored rows resume; never torch's traceback of a lost worker."""
    it = iter(loader)
    try:
        for row, x in it:
            sink.take(row, x)
    except RuntimeError as e:
        _raise_worker_death(e)
        raise
    finally:
        shutdown = getattr(it, "_shutdown_workers", None)
        if workers and shutdown is not None:
            with contextlib.suppress(RuntimeError):  # a worker already gone: torch reports it again here
                shutdown()


#: How torch names the signal that killed a DataLoader worker → what the run ends with.
_WORKER_SIGNALS = {"Terminated": 143, "Interrupt": 130}


def _raise_worker_death(e: RuntimeError) -> None:
    """Re-raise a lost DataLoader worker as the run's own end; other errors pass through."""
    lost = re.search(r"DataLoader worker \(pid(?:\(s\))? ([\d, ]+)\)", str(e))
    if lost is None:
        return
    signal = re.search(r"killed by signal: (\w+)", str(e))
    status = _WORKER_SIGNALS.get(signal[1] if signal else "")
    if status == 130:
        raise KeyboardInterrupt from None
    if status is not None:
        raise SystemExit(status) from None
    how = f"was killed by signal {signal[1]}" if signal else "exited unexpectedly"
    raise WorkerLost(
        f"a decoding worker (pid {lost[1]}) {how} (the out-of-memory killer?); the rows analysed so far are "
        "stored: run the same command again to resume, with fewer `workers` or a smaller `size`"
    ) from None


class WorkerLost(RuntimeError):
    """A decoding worker died under the run (one line, not torch's traceback)."""


def _out_of_memory(e: BaseException) -> bool:
    return isinstance(e, torch.OutOfMemoryError) or "out of memory" in str(e).lower()


def _frames_batch(xs: list[torch.Tensor], device: torch.device) -> torch.Tensor:
    """Clips ``(1, 3, t, H, W)`` of one size as one batch; for a GPU, made in pinned memory (one copy), so that
    the copy to the device need not wait."""
    if device.type != "cuda":
        return xs[0] if len(xs) == 1 else torch.cat(xs)  # one clip (the pixel encoder's batches): no copy
    try:
        out = torch.empty((sum(x.shape[0] for x in xs), *xs[0].shape[1:]), dtype=xs[0].dtype, pin_memory=True)
    except RuntimeError:  # no pinned memory to be had (a locked-memory limit): an ordinary, waiting copy
        return torch.cat(xs)
    return torch.cat(xs, out=out)


def _raise_worker_error(e: Exception, workers: int) -> None:
    """An error in a worker (a bad line of a list) arrives wrapped with the worker's traceback: keep its last line."""
    lines = str(e).strip().splitlines()
    if workers and lines and lines[0].startswith("Caught "):
        raise type(e)(lines[-1].split(": ", 1)[-1]) from None


class _Sink:
    """Where loaded clips go: clips of one frame shape wait to be encoded ``batch`` at a time; rows go to the
    results store (or the run) and tick the progress bar."""

    def __init__(
        self, run: DatasetRun, analyse, *, batch: int, device: torch.device, store: ResultsStore | None, strict, bar
    ):
        self.run, self.analyse, self.batch, self.store, self.strict, self.bar = run, analyse, batch, store, strict, bar
        self.device = device
        self.pending: dict[tuple, list[tuple[dict, torch.Tensor]]] = {}  # frames shape → clips waiting

    def _tick(self) -> None:
        if self.bar is not None:
            self.bar.update(1)
        run = self.run  # each clip is ticked once, after it is counted as analysed, failed or resumed
        if (run.analysed + len(run.errors) + run.resumed) % TRIM_EVERY == 0:
            _trim_heap()

    def emit(self, row: dict) -> None:
        run = self.run
        if row["status"] == "error":
            if self.strict:
                raise ValueError(f"{row['path']}: {row['error']} (`strict` stops at the first bad clip)")
            run.errors.append((row["path"], row["error"]))
        else:
            run.analysed += 1
            run.warned += bool(row.get("warning"))
        if self.store is not None:
            self.store.add(row)
        else:
            run.rows.append(row)
        self._tick()

    def encode(self, group: list[tuple[dict, torch.Tensor]]) -> None:
        try:
            outs = self.analyse(_frames_batch([x for _, x in group], self.device))
        except (ValueError, RuntimeError) as e:
            oom = _out_of_memory(e)
            if oom and self.device.type == "cuda":
                torch.cuda.empty_cache()  # what the failed batch held, before its clips go one at a time
            if len(group) > 1:  # the batch did not fit, or find the clip at fault: one clip at a time
                for item in group:
                    self.encode([item])
                return
            if oom:
                raise  # one clip does not fit: every next one would fail too; the CLI says what to try
            outs = [{"status": "error", "error": _one_line(e)}]
        for (row, _), out in zip(group, outs):
            self.emit({**row, **out})

    def take(self, row: dict | None, x: torch.Tensor | None) -> None:
        """One item of the loader: a resumed clip (no row), an analysed or failed one (no frames), or frames."""
        if row is None:
            self.run.resumed += 1
            self._tick()
        elif x is None:
            self.emit(row)
        else:
            pending = self.pending
            group = pending.setdefault(tuple(x.shape), [])
            group.append((row, x))
            if len(group) >= self.batch:
                self.encode(pending.pop(tuple(x.shape)))
            elif sum(map(len, pending.values())) > 2 * self.batch:
                # Many sizes: memory holds at most 2 batches of frames; encode the fullest group now.
                self.encode(pending.pop(max(pending, key=lambda k: len(pending[k]))))

    def finish(self) -> None:
        for shape in list(self.pending):
            self.encode(self.pending.pop(shape))
