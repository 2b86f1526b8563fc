"""The band options every analysing command shares (``--bands``, ``--decomposition``, ``--time-scale``), their
defaults the band analysis' own, and what the user set of them."""

from __future__ import annotations

import click

from ..analysis import analyze_latent
from ..bands import DECOMPOSITIONS, parse_edges
from .common import given, option


def band_options(f):
    """``--bands``, ``--decomposition`` and ``--time-scale``, their defaults the band analysis' own."""
    opts = [
        option(
            "--bands",
            "bands_text",
            metavar="E1,E2,...",
            default_of=(analyze_latent, "edges"),
            help="Band edges in normalised frequency (Nyquist = 1).",
        ),
        option(
            "--decomposition",
            type=click.Choice(DECOMPOSITIONS),
            default_of=(analyze_latent, "decomposition"),
            help="Distance over (t,h,w), (h,w) or t.",
        ),
        option(
            "--time-scale",
            type=float,
            default_of=(analyze_latent, "time_scale"),
            help="Weight of temporal frequency, d_s/d_t.",
        ),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def analysis_options(bands_text, decomposition, time_scale, **kw) -> dict:
    """What the user set of the band analysis' options (``--bands`` parsed into edges)."""
    edges = parse_edges(bands_text) if bands_text is not None else None
    return given(edges=edges, decomposition=decomposition, time_scale=time_scale, **kw)
