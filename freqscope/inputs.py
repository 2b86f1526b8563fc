"""Which clips a dataset run reads: folders (recursive), globs and text/CSV lists of paths, streamed.

Every source is expanded lazily, so a list of a million paths is read line by line and never held
in memory; only the sharding (``rank::world_size``) and the resume check look at each entry.
"""

from __future__ import annotations

import csv
import glob
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from .video import VIDEO_SUFFIXES

__all__ = ["ClipSpec", "LIST_SUFFIXES", "GLOB_CHARS", "iter_clips", "shard"]

#: A file with one of these suffixes is a list of clips, not a clip.
LIST_SUFFIXES = (".txt", ".csv", ".lst")
GLOB_CHARS = set("*?[")  # a source holding one of these is a glob


@dataclass(frozen=True)
class ClipSpec:
    """One clip to analyse: its path and, from a CSV list, its own start time (seconds) and weight."""

    path: str
    start: float | None = None
    weight: float | None = None


def iter_clips(sources: Iterable[str | os.PathLike]) -> Iterator[ClipSpec]:
    """Expand video files, folders (recursively, sorted), globs and lists into clips, lazily.

    A list is a ``.txt``/``.lst`` file with one path per line (``#`` starts a comment) or a ``.csv``
    file with a ``path`` column and optional ``start`` (seconds) and ``weight`` columns; relative paths
    are relative to the list's folder.
    """
    for src in sources:
        text = str(src)
        p = Path(text)
        if p.is_dir():
            yield from _walk(p)
        elif p.suffix.lower() in LIST_SUFFIXES and p.is_file():
            yield from _read_list(p)
        elif p.exists():
            yield ClipSpec(text)
        elif GLOB_CHARS & set(text):
            found = False
            for q in sorted(glob.iglob(text, recursive=True)):
                if Path(q).is_file() and Path(q).suffix.lower() in VIDEO_SUFFIXES:
                    found = True
                    yield ClipSpec(q)
            if not found:
                raise FileNotFoundError(f"`videos` {text}: the pattern matches no video file; check the pattern")
        else:
            raise FileNotFoundError(f"video not found: {text}; check the path")


def _walk(folder: Path) -> Iterator[ClipSpec]:
    """Video files under ``folder`` and its subfolders, in sorted order, one folder at a time."""
    found = False
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            if os.path.splitext(name)[1].lower() in VIDEO_SUFFIXES:
                found = True
                yield ClipSpec(os.path.join(root, name))
    if not found:
        raise FileNotFoundError(
            f"folder {folder} holds no video file ({', '.join(VIDEO_SUFFIXES)}); pass a video file or a folder of them"
        )


def _read_list(path: Path) -> Iterator[ClipSpec]:
    base = path.parent
    with open(path, newline="", encoding="utf-8") as f:
        if path.suffix.lower() == ".csv":
            reader = csv.DictReader(f)
            if not reader.fieldnames or "path" not in reader.fieldnames:
                raise ValueError(
                    f"`videos` {path}: a CSV list needs a header with a 'path' column (and optional 'start')"
                )
            for i, row in enumerate(reader, start=2):
                t, w = (_number(path, i, row, k) for k in ("start", "weight"))
                yield ClipSpec(str(base / (row["path"] or "").strip()), t, w)
        else:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#"):
                    yield ClipSpec(str(base / line))


def _number(path: Path, line: int, row: dict, column: str) -> float | None:
    """A CSV list's optional ``start``/``weight`` cell: a number >= 0, or None when empty."""
    text = (row.get(column) or "").strip()
    try:
        v = float(text) if text else None
    except ValueError:
        raise ValueError(f"`videos` {path}, line {line}: {column} {text!r} is not a number") from None
    if v is not None and not v >= 0:
        raise ValueError(f"`videos` {path}, line {line}: {column} {text!r} must be a number >= 0")
    return v


def shard(items: Iterable, rank: int, world_size: int) -> Iterator:
    """Every ``world_size``-th item from ``rank`` on (``items[rank::world_size]``, streamed)."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank={rank}: must be in 0..{world_size - 1} (world_size={world_size})")
    return islice(items, rank, None, world_size)
