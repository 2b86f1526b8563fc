"""The per-clip results store of a dataset run: one Parquet row per clip, durable as the run goes.

``FILE`` holds the merged rows; ``FILE.parts/r<rank>-<time_ns>-<pid>-<seq>.parquet`` the rows written since,
each part written atomically and marked with freqscope's schema metadata; ``FILE.lock`` says which run writes.

- **Flushes.** A process queues its rows and writes them as one part at most once a second (``flush_seconds``;
  a timer writes a queued row within that second even when no next row comes) or once ``flush_rows`` are
  queued, so a ``kill -9`` loses only the clips in flight and the last second's rows.
- **Merges.** While a run goes on, a process merges only its own parts, in levels: ``_FANOUT`` parts of one
  level become one part of the next, so each row is rewritten about log₁₀(parts) times and a process keeps
  at most ``_FANOUT - 1`` parts per level. :meth:`ResultsStore.compact` merges ``FILE`` and every part into
  ``FILE`` once, at the end.
- **Order.** A row's age is the write time in its part's name (parsed as a number, whatever the rank), then
  its place in the part; ``FILE`` is older than every part. Reading keeps each clip's newest row. A row is
  keyed by the clip (path, start) and the analysis settings (a hash); its size and modification time tell
  whether the file changed since.
- **Reading.** :func:`read_results` gives a table sorted by path; :func:`iter_results` streams the same rows in
  batches (what summaries and a resume's look-up read), so a finished store of 10M rows is read in constant memory.
- **Lock.** A store holds ``FILE.lock`` (``flock``) while it is open: the processes of one run (one process,
  or the ranks of one torchrun job) share it, another run is refused up front naming the holder's pid. The
  kernel drops the lock of a killed run; the first process to take it removes the temporary files that
  killed writers left. A part without freqscope's metadata (a foreign file) is ignored with a warning.
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import hashlib
import json
import math
import os
import re
import socket
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .io import atomic_write

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock, as before
    fcntl = None  # type: ignore[assignment]

__all__ = ["SCHEMA", "ResultsStore", "iter_results", "read_results", "settings_hash"]

SCHEMA = pa.schema(
    [
        ("path", pa.string()),
        ("start", pa.float64()),  # per-clip start from a CSV list (null: the run's --start)
        ("size", pa.int64()),  # bytes, when analysed
        ("mtime_ns", pa.int64()),
        ("settings", pa.string()),  # settings_hash() of the analysis settings
        ("settings_json", pa.string()),  # the settings themselves (dictionary-encoded: stored once per file)
        ("status", pa.string()),  # "ok" or "error"
        ("error", pa.string()),  # one line, for status "error"
        ("warning", pa.string()),  # warnings raised while reading the clip, one per line
        ("weight", pa.float64()),  # from a CSV list's weight column (null: 1)
        ("latent_shape", pa.list_(pa.int64())),  # (b, c, t, h, w)
        ("band_names", pa.list_(pa.string())),
        ("n_bins", pa.list_(pa.int64())),
        ("band_power", pa.list_(pa.float64())),  # mean |F z0|² per bin of each band
        ("energy_fraction", pa.list_(pa.float64())),
        ("radius", pa.list_(pa.float64())),  # radial profile, only when asked
        ("radial_power", pa.list_(pa.float64())),
        ("spectrum", pa.list_(pa.float64())),  # mean |F z0|² per (|f_t|, spatial ring) cell (freqscope.spectra)
        ("frame_mean", pa.list_(pa.float64())),  # per-frame statistics, for periodic artefacts
        ("frame_change", pa.list_(pa.float64())),
        ("row_grad", pa.list_(pa.float64())),
        ("col_grad", pa.list_(pa.float64())),
        ("video", pa.string()),  # VideoInfo as JSON
        ("rank", pa.int32()),
    ]
)
_KEY = ("path", "start", "settings")
#: The schema metadata key that marks a freqscope part (its value: the run's settings as JSON).
_META = b"freqscope"
#: The schema metadata key that marks a file of one row per clip (as compact writes the results file).
_UNIQUE = b"freqscope.one_row_per_clip"
#: How many parts of one level a process merges into one part of the next level.
_FANOUT = 10
#: A part's name: rank, write time (ns), pid, sequence number of its writer.
_PART = re.compile(r"r(\d+)-(\d+)-(\d+)-(\d+)\.parquet")
#: Rows per row group when parts are merged, and so the rows a merge holds at once: a row with its spectra is
#: about 5 KB in Arrow, so ~20 MB a batch (65,536 rows held 1.8 GB merging 200k rows: benchmarks/bench_store.py).
_BATCH = 4096
#: Lock files this process holds: path → [file descriptor, open stores].
_HELD: dict[str, list[int]] = {}
#: Foreign parts already warned about (once per process).
_WARNED: set[str] = set()


def settings_hash(settings: dict) -> str:
    """A short, stable hash of the analysis settings (JSON with sorted keys)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _parts_dir(path: Path) -> Path:
    return path.with_name(path.name + ".parts")


def _lock_file(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def _age(part: Path) -> tuple[int, ...]:
    """When a part was written: (time, rank, pid, seq) from its name."""
    m = _PART.fullmatch(part.name)
    assert m is not None
    r, t, pid, seq = map(int, m.groups())
    return (t, r, pid, seq)


def _is_ours(part: Path) -> bool:
    """A part named and marked by freqscope; else warn once and leave it out."""
    why = None
    if not _PART.fullmatch(part.name):
        why = "its name is not a freqscope part's"
    else:
        try:
            meta = pq.read_schema(part).metadata or {}
        except FileNotFoundError:
            return False  # merged away since it was listed
        except (OSError, pa.ArrowInvalid) as e:
            meta, why = {}, f"unreadable: {e}"
        if why is None and _META not in meta:
            why = "it lacks freqscope's metadata"
    if why is not None and str(part) not in _WARNED:
        _WARNED.add(str(part))
        warnings.warn(f"`results` part {part} is not a freqscope part ({why}); ignored: remove it", stacklevel=3)
    return why is None


def _part_files(path: Path) -> list[Path]:
    """The parts of a results file in the order they were written (hidden temporary files left out)."""
    d = _parts_dir(path)
    if not d.is_dir():
        return []
    found = [q for q in d.iterdir() if q.suffix == ".parquet" and not q.name.startswith(".")]
    return sorted((q for q in found if _is_ours(q)), key=_age)


def _not_results(f: Path, e: Exception) -> ValueError:
    return ValueError(f"results file {f} is not a freqscope results file ({e}); give another `results` file")


def _read_table(files: list[Path], columns: list[str] | None = None) -> pa.Table:
    tables = []
    for f in files:
        try:
            tables.append(pq.read_table(f, schema=SCHEMA, columns=columns))
        except FileNotFoundError:
            raise  # a part merged away while reading: the caller reads again
        except (OSError, pa.ArrowInvalid) as e:
            raise _not_results(f, e) from None
    if not tables:
        empty = SCHEMA.empty_table()
        return empty.select(columns) if columns else empty
    return pa.concat_tables(tables)


def _latest_rows(keys: pa.Table) -> np.ndarray:
    """Indices, in order, of the last row of each key (rows are in the order they were written)."""
    order = pa.array(np.arange(keys.num_rows, dtype=np.int64))
    keys = keys.select(list(_KEY)).append_column("_row", order)
    last = keys.group_by(list(_KEY), use_threads=False).aggregate([("_row", "max")]).column("_row_max")
    return np.sort(last.to_numpy())


def _latest(table: pa.Table) -> pa.Table:
    """Keep the last row of each key (rows are in the order they were written)."""
    last = _latest_rows(table)
    return table if len(last) == table.num_rows else table.take(last)


def _conform(t: pa.Table, names: list[str] | None = None) -> pa.Table:
    """A part's rows with every column of ``SCHEMA`` (or those ``names``), null where a part written by an older
    freqscope lacks one."""
    schema = SCHEMA if names is None else pa.schema([SCHEMA.field(n) for n in names])
    for f in schema:
        if f.name not in t.column_names:
            t = t.append_column(f, pa.nulls(t.num_rows, f.type))
    return t.select(schema.names).cast(schema)


def _sources(p: Path) -> list[Path]:
    return ([p] if p.exists() else []) + _part_files(p)


def _read_all(p: Path, columns: list[str] | None) -> tuple[list[Path], pa.Table]:
    """The files of a results file and their rows; read again where a writer merged parts away meanwhile."""
    for _ in range(20):
        files = _sources(p)
        try:
            return files, _read_table(files, columns)
        except FileNotFoundError:
            time.sleep(0.05)
    files = _sources(p)
    return files, _read_table(files, columns)


def read_results(path: str | os.PathLike, *, settings: str | None = None, columns: list[str] | None = None) -> pa.Table:
    """Every row of a results file and its unmerged parts, latest per clip, sorted by path and start
    (only those of ``settings`` when given; only ``columns`` when given)."""
    p = Path(path)
    if not p.exists() and not _part_files(p):
        raise FileNotFoundError(f"results file {p} not found; make it first with a dataset run (`results` {p})")
    if columns is not None:
        columns = list(dict.fromkeys([*_KEY, *columns]))
    t = _latest(_read_all(p, columns)[1])
    if settings is not None:
        t = t.filter(pc.equal(t.column("settings"), settings))
    return t.sort_by([("path", "ascending"), ("start", "ascending")])


def iter_results(
    path: str | os.PathLike, *, settings: str | None = None, columns: list[str] | None = None
) -> Iterator[pa.Table]:
    """The rows :func:`read_results` gives, in the order they were written (not sorted), a batch of at most
    ``_BATCH`` rows at a time: one batch is held at once, and the rows' keys (about 100 bytes a row) only where
    parts are not merged yet (a merged file holds one row per clip), so a finished store of 10M rows streams in
    constant memory. The files are opened first and read through those handles, so a writer that merges or
    replaces them meanwhile changes nothing read (beyond the number of files this process may hold open, each is
    opened again to be read, and one that changed meanwhile is refused)."""
    p = Path(path)
    if not p.exists() and not _part_files(p):
        raise FileNotFoundError(f"results file {p} not found; make it first with a dataset run (`results` {p})")
    names = SCHEMA.names if columns is None else [n for n in SCHEMA.names if n in set(columns) | set(_KEY)]
    for t in _latest_batches(_Snapshot(p), names):
        if settings is not None:
            t = t.filter(pc.equal(t.column("settings"), settings).fill_null(False))
        if t.num_rows:
            yield t


class _Snapshot:
    """The files of a results file (``files``) and which of their rows are the latest of each clip (``keep``,
    None where every row is: a merged file alone, as compact marks it), read once. Every file is held open
    (``handles``) where the process may hold them all (a crashed run of many ranks can leave thousands of
    parts); else each is opened again to be read, and refused if it changed meanwhile (``counts``: its rows)."""

    def __init__(self, p: Path):
        keys: pa.Table | None
        self.counts: list[int] | None
        for attempt in range(21):
            self.files = _sources(p)
            hold = len(self.files) + 64 <= _allow_open_files(len(self.files))
            try:
                self.handles = [_open_part(f) for f in self.files] if hold else None
                keys, self.counts = (None, None) if self._merged(p) else _read_keys(self.files, self.handles)
                break
            except FileNotFoundError:  # a part merged away while listing: list again
                if attempt == 20:
                    raise
                time.sleep(0.05)
        self.keep = None
        if keys is not None:
            self.keep = np.zeros(keys.num_rows, dtype=bool)
            self.keep[_latest_rows(keys)] = True

    def _merged(self, p: Path) -> bool:
        if self.files != [p]:
            return False
        if self.handles is not None:
            return (self.handles[0].schema_arrow.metadata or {}).get(_UNIQUE) == b"1"
        with _open_part(p) as h:
            return (h.schema_arrow.metadata or {}).get(_UNIQUE) == b"1"

    def open(self, i: int) -> pq.ParquetFile:
        if self.handles is not None:
            return self.handles[i]
        return _reopen(self.files[i], None if self.counts is None else self.counts[i])


def _latest_batches(snap: _Snapshot, names: list[str]) -> Iterator[pa.Table]:
    """The latest rows of ``snap``'s files, in order, in batches of at most ``_BATCH`` rows: the ``names`` columns
    of ``SCHEMA`` (null where an older file lacks one)."""
    at = 0
    for i in range(len(snap.files)):
        h = snap.open(i)
        have = [n for n in names if n in h.schema_arrow.names]
        for b in h.iter_batches(batch_size=_BATCH, columns=have):
            t = _conform(pa.Table.from_batches([b]), names)
            if snap.keep is not None:
                t = t.filter(pa.array(snap.keep[at : at + len(b)]))
                at += len(b)
            yield t


def _open_part(f: Path) -> pq.ParquetFile:
    """An open results file; a file that is not Parquet is refused in one line."""
    try:
        return pq.ParquetFile(f, pre_buffer=False)  # pre-buffered, reading batches kept every one read
    except FileNotFoundError:
        raise
    except (OSError, pa.ArrowInvalid) as e:
        raise _not_results(f, e) from None


def _allow_open_files(n: int) -> int | float:
    """Let this process hold ``n`` more files open: raise its soft limit toward the hard one where the system has
    such limits. Returns the limit now in force (infinite where there is none to read)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return math.inf
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 256
    if soft != resource.RLIM_INFINITY and soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return math.inf if soft == resource.RLIM_INFINITY else soft


def _read_keys(files: list[Path], handles: list[pq.ParquetFile] | None) -> tuple[pa.Table, list[int]]:
    """The key columns of every row of the files (through ``handles`` when held open), in order, and each file's
    number of rows."""
    tables = []
    for i, f in enumerate(files):
        h = handles[i] if handles is not None else _open_part(f)
        try:
            have = [k for k in _KEY if k in h.schema_arrow.names]
            tables.append(_conform(h.read(columns=have), list(_KEY)))
        except (OSError, pa.ArrowInvalid) as e:
            raise _not_results(f, e) from None
        finally:
            if handles is None:
                h.close()
    keys = pa.concat_tables(tables) if tables else SCHEMA.empty_table().select(list(_KEY))
    return keys, [t.num_rows for t in tables]


def _reopen(f: Path, rows: int | None) -> pq.ParquetFile:
    """A results file opened again to read its rows: refused if it went or changed since its keys were read."""
    try:
        h = _open_part(f)
    except FileNotFoundError:
        h = None
    if h is None or (rows is not None and h.metadata.num_rows != rows):
        raise ValueError(f"results file {f} changed while it was read (another run merging it?); read it again")
    return h


class Done(Mapping):
    """``{(path, start): (size, mtime_ns)}`` of the clips a store holds, as Arrow columns sorted by path, looked up
    by bisection: a fraction of a dict of Python objects (``benchmarks/bench_store.py``: 497 MiB peak for 1M clips
    against the dict's 1,080), and shared with forked workers as it is (no reference counts to touch)."""

    def __init__(self, t: pa.Table):
        t = t.set_column(0, "path", t.column("path").cast(pa.large_string()))  # paths of over 2 GiB in all
        t = t.sort_by([("path", "ascending"), ("start", "ascending")]).combine_chunks()
        self._path = t.column("path").chunk(0) if t.num_rows else pa.array([], pa.large_string())
        self._start = t.column("start").to_numpy(zero_copy_only=False)  # NaN: no start
        # A clip that could not be stat'ed has neither: exact int64 with a mask (floats would round mtime_ns).
        self._known = pc.and_(pc.is_valid(t.column("size")), pc.is_valid(t.column("mtime_ns"))).to_numpy(
            zero_copy_only=False
        )
        self._size = t.column("size").fill_null(0).to_numpy(zero_copy_only=False)
        self._mtime = t.column("mtime_ns").fill_null(0).to_numpy(zero_copy_only=False)
        self._paths = _Strings(self._path)

    def __len__(self) -> int:
        return len(self._path)

    def __iter__(self) -> Iterator[tuple[str, float | None]]:
        for i, p in enumerate(self._path.to_pylist()):
            yield p, self._start_of(i)

    def _start_of(self, i: int) -> float | None:
        s = self._start[i]
        return None if s != s else float(s)  # NaN: null

    def __getitem__(self, key: tuple[str, float | None]) -> tuple[int, int] | tuple[None, None]:
        path, start = key
        i = bisect.bisect_left(self._paths, path)
        while i < len(self._path) and self._paths[i] == path:
            if self._start_of(i) == start:
                return (int(self._size[i]), int(self._mtime[i])) if self._known[i] else (None, None)
            i += 1
        raise KeyError(key)


class _Strings(Sequence):
    """A string array as a sequence of Python strings, made one at a time (for bisect)."""

    def __init__(self, a: pa.Array):
        self._a = a

    def __len__(self) -> int:
        return len(self._a)

    def __getitem__(self, i):  # type: ignore[override]
        return self._a[i].as_py()


def _run_id() -> str:
    """Who writes: this process, or every rank of one torchrun job (they share the store's lock)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        job = [os.environ.get(k, "") for k in ("TORCHELASTIC_RUN_ID", "MASTER_ADDR", "MASTER_PORT")]
        return "torchrun:" + ":".join(job)
    return f"{socket.gethostname()}:{os.getpid()}"


def _remove_stale(path: Path) -> None:
    """Temporary files of writers that were killed (called while no other process holds the lock)."""
    d = _parts_dir(path)
    stale = [q for q in d.iterdir() if q.name.startswith(".") and q.suffix == ".parquet"] if d.is_dir() else []
    if len(path.stem) < 24:  # atomic_write's temporary names of FILE (a longer stem is cut: not surely ours)
        own = re.compile(rf"\.{re.escape(path.stem)}\.[a-z0-9_]{{8}}{re.escape(path.suffix[:12])}")
        stale += [q for q in path.parent.iterdir() if own.fullmatch(q.name)]
    for q in stale:
        q.unlink(missing_ok=True)


def _take_lock(fd: int, path: Path) -> None:
    """Share ``fd``'s lock with this run's other processes, or refuse another run's store."""
    me = {"run": _run_id(), "pid": os.getpid(), "host": socket.gethostname()}
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pass  # held: by this run's other ranks, or by another run (its record says which)
    else:  # nobody writes: say who does now, and clear what killed writers left
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        _remove_stale(path)
    for _ in range(500):  # an exclusive hold lasts only while its holder writes its record
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            time.sleep(0.01)
    else:
        raise ValueError(f"`results` {path}: its lock {_lock_file(path)} stays taken; another run is starting")
    try:
        holder = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:
        holder = {}
    if holder.get("run") != me["run"]:
        host = f" on {holder['host']}" if holder.get("host", me["host"]) != me["host"] else ""
        raise ValueError(
            f"`results` {path} is being written by another run (pid {holder.get('pid', '?')}{host}); "
            "wait for it to finish or choose another `results` file"
        )


def _acquire(path: Path) -> str:
    """Hold ``path``'s lock for one more store of this process (taken by the first)."""
    key = os.path.realpath(_lock_file(path))
    if key in _HELD:
        _HELD[key][1] += 1
        return key
    fd = os.open(key, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        if fcntl is not None:
            _take_lock(fd, path)
    except OSError as e:
        if isinstance(e, BlockingIOError) or e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
            os.close(fd)
            raise
        warnings.warn(f"`results` {path}: its folder takes no file lock ({e}); two runs on it at once go unnoticed")
    except BaseException:
        os.close(fd)
        raise
    _HELD[key] = [fd, 1]
    return key


def _release(key: str) -> None:
    held = _HELD.get(key)
    if held is None:
        return
    held[1] -= 1
    if held[1] <= 0:
        del _HELD[key]
        os.close(held[0])  # the lock goes with the last descriptor


def _concat(parts: list[Path], meta: dict[bytes, bytes]) -> Callable[[str], None]:
    """A writer of ``parts``' rows, in order, into one file: row groups of about ``_BATCH`` rows, one at a time
    in memory."""

    def write(tmp: str) -> None:
        with pq.ParquetWriter(tmp, SCHEMA.with_metadata(meta)) as out:
            batches: list[pa.RecordBatch] = []
            for q in parts:
                for b in pq.ParquetFile(q, pre_buffer=False).iter_batches(batch_size=_BATCH):
                    batches.append(b)
                    if sum(len(x) for x in batches) >= _BATCH:
                        out.write_table(pa.Table.from_batches(batches).cast(SCHEMA))
                        batches = []
            if batches:
                out.write_table(pa.Table.from_batches(batches).cast(SCHEMA))

    return write


class ResultsStore:
    """Append-only, crash-safe per-clip rows for one results file (one instance per process/rank).

    Opening it creates the results folder and takes the file's lock (shared by the ranks of one torchrun job,
    refused to another run); :meth:`close` (or leaving a ``with`` block) flushes and lets it go. Under
    torchrun the lock is held until the process ends, so that rank 0 can merge every rank's parts.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        rank: int = 0,
        metadata: dict | None = None,
        flush_rows: int = 10_000,
        flush_seconds: float = 1.0,
    ):
        self.path = Path(path)
        self.rank = rank
        self.metadata = metadata or {}
        self.flush_rows, self.flush_seconds = flush_rows, flush_seconds
        self.path.parent.mkdir(parents=True, exist_ok=True)  # before any work, not after the first clip
        self._key = _acquire(self.path)
        # A forgotten store lets the lock go when collected; torchrun ranks keep it until they exit.
        self._release = weakref.finalize(self, _release, self._key)
        if _run_id().startswith("torchrun:"):
            self._release.detach()
        self._rows: list[dict] = []
        self._own: list[tuple[int, Path]] = []  # this store's parts, oldest first, with their merge level
        self._last = time.monotonic()
        self._time = 0  # write time of the last part (ns), kept increasing
        self._seq = 0
        self._mutex = threading.Lock()  # the queue and the timer
        self._io = threading.Lock()  # one write at a time
        self._timer: threading.Timer | None = None
        self._error: BaseException | None = None

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def done(self, settings: str) -> Done:
        """``{(path, start): (size, mtime_ns)}`` of every clip already analysed with ``settings`` (a :class:`Done`)."""
        cols = ["path", "start", "size", "mtime_ns"]
        batches = [SCHEMA.empty_table().select(cols)]
        if self.path.exists() or _part_files(self.path):
            batches += [b.select(cols) for b in iter_results(self.path, settings=settings, columns=cols[2:])]
        return Done(pa.concat_tables(batches))

    def add(self, row: dict) -> None:
        """Queue one row; written out once ``flush_rows`` rows are queued or within ``flush_seconds``."""
        with self._mutex:
            self._rows.append({**row, "rank": self.rank})
            wait = self._last + self.flush_seconds - time.monotonic()
            now = len(self._rows) >= self.flush_rows or wait <= 0
            if not now and self._timer is None:
                self._timer = threading.Timer(wait, self._flush_later)
                self._timer.daemon = True
                self._timer.start()
        if now:
            self.flush()

    def _flush_later(self) -> None:
        try:
            self.flush()
        except BaseException as e:  # raised in the run's own thread, at its next add or flush
            self._error = e

    def flush(self) -> None:
        """Write the queued rows as one new part file, atomically; merge this store's parts of a full level."""
        if self._error is not None:
            e, self._error = self._error, None
            raise e
        with self._io:
            with self._mutex:
                rows, self._rows = self._rows, []
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None
            self._last = time.monotonic()
            if not rows:
                return
            try:
                part = self._write(pa.Table.from_pylist(rows, schema=SCHEMA))
            except BaseException:
                with self._mutex:
                    self._rows[:0] = rows  # not written: kept for the next flush
                raise
            self._own.append((0, part))
            self._merge_levels()

    def _merge_levels(self) -> None:
        """``_FANOUT`` parts of one level, the newest of this store, become one part of the next level."""
        while len(self._own) >= _FANOUT and len({level for level, _ in self._own[-_FANOUT:]}) == 1:
            level = self._own[-1][0]
            group = [q for _, q in self._own[-_FANOUT:]]
            merged = self._write(_concat(group, self._meta()))
            # Removed once merged: a crash in between leaves duplicate rows, which reading drops.
            del self._own[-_FANOUT:]
            self._own.append((level + 1, merged))
            for q in group:
                q.unlink(missing_ok=True)

    def _meta(self) -> dict[bytes, bytes]:
        return {_META: json.dumps(self.metadata, sort_keys=True, default=str).encode()}

    def _write(self, data: pa.Table | Callable[[str], None], path: Path | None = None) -> Path:
        """Write a table (or let ``data`` write) atomically to ``path``, by default a new part of this store."""
        if path is None:
            self._time = max(time.time_ns(), self._time + 1)
            path = _parts_dir(self.path) / f"r{self.rank:04d}-{self._time}-{os.getpid()}-{self._seq:06d}.parquet"
            self._seq += 1
            path.parent.mkdir(exist_ok=True)
        if isinstance(data, pa.Table):
            table = data.replace_schema_metadata(self._meta())
            atomic_write(path, lambda tmp: pq.write_table(table, tmp))
        else:
            atomic_write(path, data)
        return path

    def compact(self) -> None:
        """Merge the file and every part (of all ranks) into the file, then remove the parts. Streamed: only the
        rows' keys are held at once (about 100 bytes a row), then one batch of rows at a time."""
        self.flush()
        with self._io:
            snap = _Snapshot(self.path)
            parts = [f for f in snap.files if f != self.path]
            if not parts:
                return
            if not self.metadata:  # a merging process that ran no clips (torchrun's rank 0 after the barrier)
                self.metadata = json.loads((pq.read_schema(parts[-1]).metadata or {}).get(_META, b"{}"))
            meta = {**self._meta(), _UNIQUE: b"1"}

            def write(tmp: str) -> None:
                with pq.ParquetWriter(tmp, SCHEMA.with_metadata(meta)) as out:
                    for t in _latest_batches(snap, SCHEMA.names):
                        if t.num_rows:
                            out.write_table(t)

            self._write(write, self.path)
            for q in parts:
                q.unlink(missing_ok=True)
            self._own = []
            try:
                _parts_dir(self.path).rmdir()
            except OSError:
                pass  # a foreign file, or another rank's new part: leave the folder

    def close(self) -> None:
        """Flush, and let the file's lock go (for another run) once no store of this process holds it."""
        try:
            self.flush()
        finally:
            self._release()  # (detached under torchrun)
