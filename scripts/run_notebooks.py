"""Re-run the notebooks top to bottom and store them in place with their outputs (figures as PNG).

    python scripts/run_notebooks.py                      # every notebook in notebooks/ (what `make notebooks` runs)
    python scripts/run_notebooks.py notebooks/02_freeinit.ipynb

Each notebook runs in a fresh kernel of this interpreter, offline (``HF_HUB_OFFLINE=1``), with matplotlib's
inline backend so that every figure is stored as an ``image/png`` output. What belongs to the machine that
ran it is left out: execution timing, the kernel, and stderr (warnings about optional packages, absolute
paths), so a re-run changes only what the code changed. A notebook is written (atomically) only if it ran
without error; one that fails is named with its cell on one line and the exit status is 1.
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from ipykernel.kernelspec import install
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError
from traitlets.config import Config

from freqscope.io import atomic_write

ROOT = Path(__file__).resolve().parent.parent
KERNEL = "freqscope-notebooks"
#: A code cell that calls pyplot draws a figure, and must then store one as PNG.
DRAWS = re.compile(r"\bplt\.")


def draws_figure(cell) -> bool:
    return cell.cell_type == "code" and bool(DRAWS.search(cell.source))


def has_png(cell) -> bool:
    return any("image/png" in o.get("data", {}) for o in cell.get("outputs", []))


def _first_line(cell) -> str:
    line = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
    return line if len(line) <= 60 else line[:57] + "..."


def _error_text(exc: BaseException, cell, timeout: int) -> str:
    """`ename: evalue` of the cell's error output, else the exception's last line (a dead kernel)."""
    if isinstance(exc, CellTimeoutError):  # the kernel was interrupted: its error output would say KeyboardInterrupt
        return f"timed out after {timeout} s (--timeout)"
    for o in cell.get("outputs", []):
        if o.get("output_type") == "error":
            return f"{o['ename']}: {o['evalue']}"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}"


def run_notebook(path: Path, *, timeout: int, jupyter: str) -> str | None:
    """Run the notebook at ``path`` and write it back with its outputs; the one-line failure, or None."""
    nb = nbformat.read(path, as_version=4)
    metadata = copy.deepcopy(nb.metadata)  # kept as stored: the kernel that ran it is not the user's
    current: list[int] = []
    # IPC sockets in our temporary folder: local only, absolute (the kernel runs in notebooks/, we do not).
    config = Config({"KernelManager": {"transport": "ipc", "ip": os.path.join(jupyter, "kernel")}})
    client = NotebookClient(
        nb, timeout=timeout, kernel_name=KERNEL, record_timing=False, coalesce_streams=True, config=config,
        resources={"metadata": {"path": str(path.parent)}},
        on_cell_start=lambda cell, cell_index: current.append(cell_index),
    )
    try:
        client.execute()
    except Exception as exc:  # a cell's error, a cell timeout or a dead kernel: name the cell, keep the stored file
        i = current[-1] if current else 0
        return f"{path}: cell {i + 1} ({_first_line(nb.cells[i])!r}) failed: {_error_text(exc, nb.cells[i], timeout)}"
    nb.metadata = metadata
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if not (o.output_type == "stream" and o.name == "stderr")]
    missing = [i + 1 for i, c in enumerate(nb.cells) if draws_figure(c) and not has_png(c)]
    if missing:
        return f"{path}: cell {missing[0]} draws a figure but stored no image/png output (is the backend inline?)"
    atomic_write(path, lambda tmp: nbformat.write(nb, tmp))
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebooks/*.ipynb")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell (default 600)")
    args = parser.parse_args()
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))

    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    failed = 0
    with tempfile.TemporaryDirectory(prefix="freqscope-jupyter-") as jupyter:
        # The kernel runs this interpreter (not whatever `python3` kernelspec a user has installed).
        install(prefix=jupyter, kernel_name=KERNEL)
        os.environ["JUPYTER_PATH"] = str(Path(jupyter) / "share" / "jupyter")
        for path in paths:
            t0 = time.perf_counter()
            error = run_notebook(path, timeout=args.timeout, jupyter=jupyter)
            if error:
                print(f"run_notebooks: {error}", file=sys.stderr)
                failed += 1
            else:
                kb = path.stat().st_size / 1024
                print(f"{path.name}: ran in {time.perf_counter() - t0:.1f} s, stored with its outputs ({kb:.0f} KB)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
