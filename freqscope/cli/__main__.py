"""``python -m freqscope.cli``: the command line."""

from . import main

main()
