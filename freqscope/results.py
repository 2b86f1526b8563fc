"""The per-clip results store of a dataset run: one Parquet row per clip, durable as the run goes.

A run appends rows to small part files (``FILE.parts/r<rank>-<time>-<seq>.parquet``, each written
atomically) every ``flush_rows`` rows (default: every row, a few ms) or ``flush_seconds`` seconds, so
a ``kill -9`` loses only the rows not yet flushed (by default none: only clips in flight are redone);
:meth:`ResultsStore.compact` merges the parts into ``FILE`` at the end. A row is keyed by the clip
(path, start) and the analysis settings (a hash); its size and modification time tell whether the
file changed since. Reading keeps the last row written for each key.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .io import atomic_write

__all__ = ["SCHEMA", "ResultsStore", "read_results", "settings_hash"]

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
        ("video", pa.string()),  # VideoInfo as JSON
        ("rank", pa.int32()),
    ]
)
_KEY = ("path", "start", "settings")
#: A rank merges its own part files once it has this many (bounds the file count of long runs).
_MAX_PARTS = 200


def settings_hash(settings: dict) -> str:
    """A short, stable hash of the analysis settings (JSON with sorted keys)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _parts_dir(path: Path) -> Path:
    return path.with_name(path.name + ".parts")


def _part_files(path: Path) -> list[Path]:
    d = _parts_dir(path)
    if not d.is_dir():
        return []
    return sorted(q for q in d.iterdir() if q.suffix == ".parquet" and not q.name.startswith("."))


def _read_table(files: list[Path], columns: list[str] | None = None) -> pa.Table:
    tables = []
    for f in files:
        try:
            tables.append(pq.read_table(f, schema=SCHEMA, columns=columns))
        except (OSError, pa.ArrowInvalid) as e:
            raise ValueError(
                f"results file {f} is not a freqscope results file ({e}); give another `results` file"
            ) from None
    if not tables:
        empty = SCHEMA.empty_table()
        return empty.select(columns) if columns else empty
    return pa.concat_tables(tables)


def _latest(table: pa.Table) -> pa.Table:
    """Keep the last row of each key (rows are in the order they were written)."""
    cols = [table.column(k).to_pylist() for k in _KEY]
    last = {key: i for i, key in enumerate(zip(*cols))}
    if len(last) == table.num_rows:
        return table
    return table.take(sorted(last.values()))


def read_results(
    path: str | os.PathLike, *, settings: str | None = None, columns: list[str] | None = None
) -> pa.Table:
    """Every row of a results file and its unmerged parts, latest per clip, sorted by path and start
    (only those of ``settings`` when given; only ``columns`` when given)."""
    p = Path(path)
    if not p.exists() and not _part_files(p):
        raise FileNotFoundError(f"results file {p} not found; make it first with a dataset run (`results` {p})")
    if columns is not None:
        columns = list(dict.fromkeys([*_KEY, *columns]))
    t = _latest(_read_table(([p] if p.exists() else []) + _part_files(p), columns))
    if settings is not None:
        t = t.filter(pc.equal(t.column("settings"), settings))
    return t.sort_by([("path", "ascending"), ("start", "ascending")])


class ResultsStore:
    """Append-only, crash-safe per-clip rows for one results file (one instance per process/rank)."""

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        rank: int = 0,
        metadata: dict | None = None,
        flush_rows: int = 1,
        flush_seconds: float = 1.0,
    ):
        self.path = Path(path)
        self.rank = rank
        self.metadata = metadata or {}
        self.flush_rows, self.flush_seconds = flush_rows, flush_seconds
        self._rows: list[dict] = []
        self._last = time.monotonic()
        self._seq = 0
        self._stamp = f"r{rank:04d}-{time.time_ns()}-{os.getpid()}"

    def done(self, settings: str) -> dict[tuple, tuple[int, int]]:
        """``{(path, start): (size, mtime_ns)}`` of every clip already analysed with ``settings``."""
        if not self.path.exists() and not _part_files(self.path):
            return {}
        t = read_results(self.path, settings=settings, columns=["size", "mtime_ns"])
        cols = [t.column(k).to_pylist() for k in ("path", "start", "size", "mtime_ns")]
        return {(p, s): (n, m) for p, s, n, m in zip(*cols)}

    def add(self, row: dict) -> None:
        """Queue one row; written out once enough rows or seconds have gathered."""
        self._rows.append({**row, "rank": self.rank})
        if len(self._rows) >= self.flush_rows or time.monotonic() - self._last >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        """Write the queued rows as one new part file, atomically."""
        self._last = time.monotonic()
        if not self._rows:
            return
        table = pa.Table.from_pylist(self._rows, schema=SCHEMA)
        d = _parts_dir(self.path)
        d.mkdir(exist_ok=True)
        self._write(table, d / f"{self._stamp}-{self._seq:06d}.parquet")
        self._seq += 1
        self._rows = []
        own = [q for q in _part_files(self.path) if q.name.startswith(self._stamp)]
        if len(own) > _MAX_PARTS:
            # Merge this process's parts into one; a crash in between leaves duplicates, which reading drops.
            self._write(_read_table(own), d / f"{self._stamp}-{self._seq:06d}.parquet")
            self._seq += 1
            for q in own:
                q.unlink()

    def _write(self, table: pa.Table, path: Path) -> None:
        meta = {b"freqscope": json.dumps(self.metadata, sort_keys=True, default=str).encode()}
        table = table.replace_schema_metadata(meta)
        atomic_write(path, lambda tmp: pq.write_table(table, tmp))

    def compact(self) -> None:
        """Merge the file and every part (of all ranks) into the file, then remove the parts."""
        self.flush()
        parts = _part_files(self.path)
        if not parts:
            return
        self._write(read_results(self.path), self.path)
        for q in parts:
            q.unlink(missing_ok=True)
        try:
            _parts_dir(self.path).rmdir()
        except OSError:
            pass  # another process's temporary file, or a new part: leave the folder
