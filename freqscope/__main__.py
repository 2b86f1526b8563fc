"""``python -m freqscope …`` and ``torchrun -m freqscope …`` run the command line."""

from .cli import main

if __name__ == "__main__":
    main()
