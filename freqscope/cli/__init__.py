"""Command line: ``freqscope <command>``. Thin: each command is one module of this package (parse, one library
call, write), found here by its ``command``; what they share is :mod:`freqscope.cli.common`.

Options left unset are not passed on, so every default lives once, in the library function.
Errors in the input end with one line on stderr and exit status 2.
"""

from __future__ import annotations

import importlib
import pkgutil

import click

from .. import __version__
from .common import PARAM_FLAGS, Group, library_default, to_flags

__all__ = ["main", "PARAM_FLAGS", "to_flags", "library_default"]

#: Modules of this package that are not commands.
_NOT_COMMANDS = {"common", "bands", "__main__"}


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="freqscope")
def main() -> None:
    """Frequency analysis and SNR diagnostics for video diffusion models."""


# Adding a command is adding a module here that defines ``command`` (a click command).
for _m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _m.name not in _NOT_COMMANDS:
        main.add_command(importlib.import_module(f"{__name__}.{_m.name}").command)
