"""Which clips a dataset run reads: folders (recursive), globs and text/CSV lists of paths, streamed.

Every source is expanded lazily, so a list of a million paths is read line by line and never held
in memory; only the sharding (``rank::world_size``) and the resume check look at each entry. Each clip
is listed once, however often it is found (two sources, a path named twice, a link, a loop of links).
"""

from __future__ import annotations

import csv
import glob
import math
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from .video import VIDEO_SUFFIXES

__all__ = ["ClipSpec", "LIST_SUFFIXES", "GLOB_CHARS", "check_sources", "iter_clips", "shard"]

#: A file with one of these suffixes is a list of clips, not a clip.
LIST_SUFFIXES = (".txt", ".csv", ".lst")
GLOB_CHARS = set("*?[")  # a source holding one of these is a glob


@dataclass(frozen=True)
class ClipSpec:
    """One clip to analyse: its path and, from a CSV list, its own start time (seconds) and weight."""

    path: str
    start: float | None = None
    weight: float | None = None


#: What makes two paths one clip: ``st_dev`` and ``st_ino`` packed in one int, or the absolute path where
#: the file cannot be stat'ed (a missing clip named twice is then reported once, like any other).
_Key = int | str


def iter_clips(sources: Iterable[str | os.PathLike]) -> Iterator[ClipSpec]:
    """Expand video files, folders (recursively, sorted), globs and lists into clips, lazily, each clip once.

    A list is a ``.txt``/``.lst`` file with one path per line (``#`` starts a comment) or a ``.csv``
    file with a ``path`` column and optional ``start`` (seconds) and ``weight`` columns; relative paths
    are relative to the list's folder. A clip found again (the same device and inode: through a link, a
    second source, twice in a list) is skipped, its first spelling kept. Folder walks follow links to
    folders, each folder once. A subfolder that cannot be read is listed as ``FOLDER/*``, a clip that
    the run reports as unreadable (``cannot read FOLDER/*: Permission denied``).
    """
    # The clips yielded so far, one int each: about 70-100 bytes per clip (the int and its slot in the set),
    # in every process that lists the clips (each rank and DataLoader worker lists them all to take its
    # share): 10 M clips take about 1 GB in each. The sources themselves are still streamed.
    seen: set[_Key] = set()
    for src in sources:
        for spec, key in _expand(str(src)):
            if key not in seen:
                seen.add(key)
                yield spec


def check_sources(sources: Iterable[str | os.PathLike]) -> None:
    """Refuse, before any work, what would fail a run late or leave it nothing to do: a missing file, a folder
    or list with no clip, a glob matching nothing (each source's first clip), a bad cell of a CSV list, or
    every weight 0.

    Every line of a CSV list is read (its text only: no clip is opened or stat'ed), once more than the run
    reads it: about 6 s per million lines, against a run that would stop at the bad line, or for weights
    only when summarised, after every clip was analysed.
    """
    all_zero: list[str] = []  # the CSV lists so far whose every weight is 0
    others = False  # a source whose clips weigh 1: then the weights are not all 0
    for src in sources:
        next(iter_clips([src]), None)
        p = Path(src)
        if p.suffix.lower() == ".csv" and p.is_file():
            zero = True
            for spec, _ in _read_list(p, identify=False):  # every cell checked, as it is read
                zero = zero and spec.weight == 0
            if zero:
                all_zero.append(str(p))
                continue
        others = True
    if all_zero and not others:
        raise ValueError(
            f"`videos` {', '.join(all_zero)}: every weight is 0; give a clip a weight > 0 (an empty cell counts as 1)"
        )


def _expand(text: str) -> Iterator[tuple[ClipSpec, _Key]]:
    """The clips of one source, each with what identifies its file."""
    p = Path(text)
    if p.is_dir():
        yield from _walk(p)
    elif p.suffix.lower() in LIST_SUFFIXES and p.is_file():
        yield from _read_list(p)
    elif p.exists():
        yield ClipSpec(text), _key(text)
    elif GLOB_CHARS & set(text):
        yield from _glob(text)
    else:
        raise FileNotFoundError(f"video not found: {text}; check the path")


def _key(path: str, st: os.stat_result | None = None) -> _Key:
    """``path``'s file identity (device and inode, links followed), or its absolute path if it cannot be stat'ed."""
    try:
        st = st or os.stat(path)
    except OSError:
        return os.path.abspath(path)
    return st.st_dev << 64 | st.st_ino


def _glob(pattern: str) -> Iterator[tuple[ClipSpec, _Key]]:
    """The video files a glob matches; ``**`` follows links, so a loop of links matches a file many times."""
    found = False
    for q in sorted(glob.iglob(pattern, recursive=True)):
        if os.path.splitext(q)[1].lower() not in VIDEO_SUFFIXES:
            continue
        try:
            st = os.stat(q)
        except OSError:  # a broken link: the run reports it
            st = None
        if st is None or stat.S_ISREG(st.st_mode):
            found = True
            yield ClipSpec(q), _key(q, st)
    if not found:
        raise FileNotFoundError(f"`videos` {pattern}: the pattern matches no video file; check the pattern")


def _walk(folder: Path) -> Iterator[tuple[ClipSpec, _Key]]:
    """Video files under ``folder`` and its subfolders, in sorted order, one folder at a time (depth first).

    Links to folders are followed, but into no folder twice (a link back up makes no loop). A subfolder
    that cannot be listed is yielded as ``SUBFOLDER/*``; ``folder`` itself raises.
    """
    walked = {_key(str(folder))}  # folders, by device and inode
    stack = [str(folder)]
    found = False
    while stack:
        d = stack.pop()
        try:
            with os.scandir(d) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as err:
            if d == str(folder):
                raise PermissionError(f"`videos` {folder}: cannot read the folder ({err.strerror})") from None
            found = True  # the run reports the folder: cannot read FOLDER/*
            yield ClipSpec(os.path.join(d, "*")), _key(d)
            continue
        subfolders = []
        for e in entries:
            if e.is_dir():  # links followed
                key = _key(e.path)  # gone since listed: its path, and listing it reports it
                if key not in walked:
                    walked.add(key)
                    subfolders.append(e.path)
            elif os.path.splitext(e.name)[1].lower() in VIDEO_SUFFIXES:
                found = True  # a file, or a broken link the run reports
                yield ClipSpec(e.path), _key(e.path)  # stat'ed: readdir's inode may differ (overlayfs)
        stack.extend(reversed(subfolders))
    if not found:
        raise FileNotFoundError(
            f"folder {folder} holds no video file ({', '.join(VIDEO_SUFFIXES)}); pass a video file or a folder of them"
        )


def _read_list(path: Path, *, identify: bool = True) -> Iterator[tuple[ClipSpec, _Key]]:
    """The clips of a list, each with its file's identity (``identify``; else None, and no file is stat'ed).

    Read as UTF-8 with or without a byte-order mark (a spreadsheet's CSV has one)."""
    base = path.parent
    n = 0
    with open(path, newline="", encoding="utf-8-sig") as f:
        if path.suffix.lower() == ".csv":
            reader = csv.DictReader(f)
            if not reader.fieldnames or "path" not in reader.fieldnames:
                raise ValueError(
                    f"`videos` {path}: a CSV list needs a header with a 'path' column (and optional 'start')"
                )
            for row in reader:
                t, w = (_number(path, reader.line_num, row, k) for k in ("start", "weight"))
                clip = str(base / (row["path"] or "").strip())
                n += 1
                yield ClipSpec(clip, t, w), (_key(clip) if identify else "")
        else:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#"):
                    clip = str(base / line)
                    n += 1
                    yield ClipSpec(clip), (_key(clip) if identify else "")
    if not n:
        raise ValueError(f"`videos` {path}: the list names no clip (only blank lines, comments or a header)")


def _number(path: Path, line: int, row: dict, column: str) -> float | None:
    """A CSV list's optional ``start``/``weight`` cell: a finite number >= 0, or None when empty."""
    text = (row.get(column) or "").strip()
    try:
        v = float(text) if text else None
    except ValueError:
        raise ValueError(f"`videos` {path}:{line}: {column} {text!r} is not a number") from None
    if v is not None and not (math.isfinite(v) and v >= 0):
        raise ValueError(f"`videos` {path}:{line}: {column} {text!r} must be a finite number >= 0")
    return v


def shard(items: Iterable, rank: int, world_size: int) -> Iterator:
    """Every ``world_size``-th item from ``rank`` on (``items[rank::world_size]``, streamed)."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank={rank}: must be in 0..{world_size - 1} (world_size={world_size})")
    return islice(items, rank, None, world_size)
