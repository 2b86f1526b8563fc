"""Where outputs go: the output policy, checked in one place before any work, and atomic writes.

The policy (README.md, "Bad input"):

- an output never resolves to an input of the run, nor to another output of the same run;
- symlinks are followed: the file they point to is replaced, the link stays;
- a special file (FIFO, device, socket) is never written; ``-`` sends JSON or CSV to stdout;
- the folder, the format and the right to write are checked before any work; missing folders are
  created when the output is written (so a failed run leaves no empty folder behind);
- every file is written to a short-named temporary file next to it, then renamed into place;
  on an error, Ctrl-C or SIGTERM the temporary file (and any folder made for it) is removed.

Bottom layer: imports nothing from freqscope.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import stat
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "STDOUT",
    "check_outputs",
    "check_output_file",
    "check_output_folder",
    "atomic_write",
    "write_text",
    "dumps_json",
    "terminate_cleanly",
]

#: The output path that means "standard output".
STDOUT = "-"
#: Longest file name most file systems take (bytes), where ``pathconf`` cannot say.
_NAME_MAX = 255
#: The characters of a temporary file's random part (those of ``tempfile.mkstemp``).
_TEMP_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_"


def _nearest_existing(p: Path) -> Path:
    """``p`` itself or its closest ancestor that exists."""
    while not os.path.lexists(p) and p != p.parent:
        p = p.parent
    return p


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return _NAME_MAX


def _check_folder_can_hold(folder: Path, what: str) -> None:
    """``folder`` exists as a writable folder, or can be created inside a writable one."""
    base = _nearest_existing(folder)
    if not base.is_dir():
        raise ValueError(f"{what}: {base} is not a folder; choose another path")
    if not os.access(base, os.W_OK | os.X_OK):
        raise ValueError(f"{what}: folder {base} is not writable; choose another folder")


def _identity(p: str | os.PathLike) -> tuple:
    """What makes two paths the same file: (device, inode) where it exists, else the resolved path."""
    real = os.path.realpath(p)
    try:
        st = os.stat(real)
        return ("inode", st.st_dev, st.st_ino)
    except OSError:
        return ("path", real)


def check_output_file(
    path: str | os.PathLike, what: str, *, formats: tuple[str, ...] | None = None, stdout: bool = False
) -> None:
    """Check one output file before any work: a regular file (or new name) in a folder we can write.

    ``what`` names the output in errors (the CLI passes its flag); ``formats`` lists the suffixes
    allowed (lower case, with the dot); ``stdout`` allows ``-``.
    """
    s = os.fspath(path)
    if s == STDOUT:
        if not stdout:
            raise ValueError(f"{what} -: this output cannot go to stdout; give a file name")
        return
    if not s.strip():
        raise ValueError(f"{what}: empty path; give a file name")
    p = Path(s)
    real = Path(os.path.realpath(p))  # symlinks are followed: the file they point to is written
    if formats is not None and real.suffix.lower() not in formats:
        raise ValueError(f"{what} {s}: unknown format {p.suffix or '(no suffix)'!r}; use {', '.join(formats)}")
    limit = _name_max(_nearest_existing(real.parent))
    if len(os.fsencode(real.name)) > limit:
        raise ValueError(f"{what}: file name of {len(os.fsencode(real.name))} bytes, longer than the {limit} allowed")
    if real.exists():
        mode = os.stat(real).st_mode
        if stat.S_ISDIR(mode):
            raise ValueError(f"{what} {s} is a folder; give a file name")
        if not stat.S_ISREG(mode):
            raise ValueError(
                f"{what} {s} is a special file (FIFO, device or socket), not written; give a regular file name"
                + (" or - for stdout" if stdout else "")
            )
    _check_folder_can_hold(real.parent, f"{what} {s}")


def check_output_folder(path: str | os.PathLike, what: str) -> None:
    """Check an output folder before any work: an existing folder, or one that can be created."""
    s = os.fspath(path)
    if not s.strip():
        raise ValueError(f"{what}: empty path; give a folder name")
    if s == STDOUT:
        raise ValueError(f"{what} -: this output cannot go to stdout; give a folder name")
    real = Path(os.path.realpath(s))
    if real.exists() and not real.is_dir():
        raise ValueError(f"{what} {s} is not a folder; give a folder name")
    _check_folder_can_hold(real, f"{what} {s}")


def check_outputs(
    files: Mapping[str, str | os.PathLike | None],
    *,
    folders: Mapping[str, tuple[str | os.PathLike | None, Callable[[str], bool]]] | None = None,
    inputs: Iterable[str | os.PathLike] = (),
    formats: Mapping[str, tuple[str, ...]] | None = None,
    stdout: Iterable[str] = (),
) -> None:
    """The whole output policy for one run, before any work.

    ``files`` maps each output's name (e.g. ``"--json"``) to its path (None: not asked for);
    ``folders`` maps a folder output to ``(path, writes)``, ``writes(name)`` telling whether the run
    may write a file of that name there; ``inputs`` are every file the run reads; ``formats`` the
    suffixes allowed per output; ``stdout`` the outputs that may be ``-`` (at most one is).
    """
    formats, folders, stdout = formats or {}, folders or {}, set(stdout)
    ins: list[str] = [os.fspath(i) for i in inputs]
    given = {k: os.fspath(v) for k, v in files.items() if v is not None}
    to_stdout = [k for k, v in given.items() if v == STDOUT]
    if len(to_stdout) > 1:
        raise ValueError(f"{' and '.join(to_stdout)} both go to stdout (-); send one of them to a file")
    for what, p in given.items():
        check_output_file(p, what, formats=formats.get(what), stdout=what in stdout)
    for what, (p, _) in folders.items():
        if p is not None:
            check_output_folder(p, what)
    _check_distinct(given, ins)
    for what, (p, writes) in folders.items():
        if p is not None:
            _check_folder_writes(what, p, writes, ins, given)


def _check_distinct(given: Mapping[str, str], inputs: list[str]) -> None:
    """No output is an input of the run, and no two outputs name the same file."""
    seen: dict[tuple, str] = {}
    ins = {_identity(i): i for i in inputs}
    for what, p in given.items():
        if p == STDOUT:
            continue
        key = _identity(p)
        if key in ins:
            raise ValueError(f"{what} {p} is an input of this run ({ins[key]}); give the output another name")
        if key in seen:
            raise ValueError(f"{seen[key]} and {what} both name {p}; give each output its own file")
        seen[key] = what


def _check_folder_writes(
    what: str, p: str | os.PathLike, writes: Callable[[str], bool], inputs: list[str], given: Mapping[str, str]
) -> None:
    """A folder output replaces no folder or special file, and overwrites no input or other output."""
    real = os.path.realpath(p)
    if os.path.isdir(real):
        for entry in os.scandir(real):
            if writes(entry.name) and not entry.is_file():  # follows symlinks, as writes do
                raise ValueError(
                    f"{what} {p}: {entry.name} is a folder or special file and would be replaced; remove it"
                )
    for q in [*inputs, *(v for v in given.values() if v != STDOUT)]:
        rq = os.path.realpath(q)
        if os.path.dirname(rq) == real and writes(os.path.basename(rq)):
            kind = "an input" if q in inputs else "another output"
            raise ValueError(f"{what} {p} would overwrite {q}, {kind} of this run; choose another folder")


def _temporary_name(path: Path) -> Path:
    """A new hidden name next to ``path`` for :func:`atomic_write`'s temporary file: ``.<stem>.<8 random>.<suffix>``
    (stem and suffix shortened to 24 and 12 characters), as ``tempfile.mkstemp`` names them."""
    token = "".join(secrets.choice(_TEMP_CHARS) for _ in range(8))
    return path.with_name(f".{path.stem[:24]}.{token}{path.suffix[:12]}")


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` on a temporary file next to ``path``, then rename it into place.

    Symlinks are followed (the file they point to is replaced); missing folders are created and
    removed again if the write fails; a special file is never replaced.
    """
    real = Path(os.path.realpath(path))
    if real.exists() and not real.is_file():
        raise ValueError(f"{path} is not a regular file (folder, FIFO or device); not written")
    made: list[Path] = []
    folder = real.parent
    while not folder.exists():
        made.append(folder)
        folder = folder.parent
    for d in reversed(made):
        d.mkdir()
    # A short temporary name (a long output name must not make the temporary one too long), named before it
    # is made: a Ctrl-C arriving while it is created still finds it to remove.
    tmp = str(_temporary_name(real))
    while os.path.lexists(tmp):  # another writer's (a 1 in 36**8 chance): O_EXCL below must not fail
        tmp = str(_temporary_name(real))
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # made 0600 as mkstemp does; outputs get the usual mode
        os.replace(tmp, real)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        for d in made:
            with contextlib.suppress(OSError):
                d.rmdir()
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` atomically, or to stdout for ``-``."""
    if os.fspath(path) == STDOUT:
        sys.stdout.write(text)
        sys.stdout.flush()
        return

    def write(tmp: str) -> None:
        Path(tmp).write_text(text)

    atomic_write(path, write)


def _canonical(x):
    """Sets that JSON holds as lists (diffusers' ``_use_default_values``) in sorted order."""
    if isinstance(x, dict):
        return {
            k: sorted(v, key=str) if k == "_use_default_values" and isinstance(v, list) else _canonical(v)
            for k, v in x.items()
        }
    if isinstance(x, list):
        return [_canonical(v) for v in x]
    return x


def dumps_json(doc: Any) -> str:
    """JSON text that is the same bytes for the same document: unordered lists sorted, no NaN."""
    return json.dumps(_canonical(doc), indent=1, allow_nan=False) + "\n"


@contextlib.contextmanager
def terminate_cleanly(exit_status: int = 143) -> Iterator[None]:
    """Turn SIGTERM into ``SystemExit`` inside the block, so temporary files are removed as on Ctrl-C."""

    def on_term(signum, frame):
        raise SystemExit(exit_status)

    try:
        old = signal.signal(signal.SIGTERM, on_term)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)
