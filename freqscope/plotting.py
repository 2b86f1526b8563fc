"""One figure style for every plot freqscope draws: column width, colour-blind-safe colours."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt  # headless machines fall back to Agg; notebooks keep their inline backend

from .io import atomic_write

__all__ = ["STYLE", "OKABE_ITO", "PLOT_FORMATS", "band_colors", "new_figure", "save_figure"]

STYLE = str(Path(__file__).with_name("freqscope.mplstyle"))
#: Okabe & Ito (2008) colour-blind-safe palette.
#: The image formats a figure is written in, by the path's suffix.
PLOT_FORMATS = (".png", ".pdf", ".svg")
OKABE_ITO = ["#000000", "#0072B2", "#009E73", "#E69F00", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442"]


def band_colors(n: int) -> list[str]:
    """``n`` colour-blind-safe colours, lowest band darkest."""
    return [OKABE_ITO[i % len(OKABE_ITO)] for i in range(n)]


def new_figure(
    nrows: int = 1, ncols: int = 1, *, width: float = 3.5, height: float | None = None, **kw: Any
) -> tuple[Any, Any]:
    """A figure at column width (3.5 in) by default, in freqscope's style."""
    plt.style.use(STYLE)
    height = height or width * 0.72 * nrows / ncols
    fig, ax = plt.subplots(nrows, ncols, figsize=(width, height), **kw)
    return fig, ax


def save_figure(fig: Any, *paths: str | os.PathLike) -> None:
    """Save atomically in the format of each suffix (``.png``, ``.pdf``, ``.svg``), then close."""
    try:
        for path in paths:
            p = Path(path)
            fmt = p.suffix.lstrip(".").lower() or "png"
            if f".{fmt}" not in PLOT_FORMATS:
                raise ValueError(f"plot {p}: unknown image format {p.suffix!r}; use .png, .pdf or .svg")
            meta = {"CreationDate": None} if fmt == "pdf" else {}  # reproducible files: rebuilding changes nothing
            atomic_write(p, functools.partial(_savefig, fig, fmt=fmt, metadata=meta))
    finally:
        plt.close(fig)


def _savefig(fig: Any, tmp: str, *, fmt: str, metadata: dict) -> None:
    fig.savefig(tmp, format=fmt, metadata=metadata)
