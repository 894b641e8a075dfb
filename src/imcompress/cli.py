"""Command-line helpers shared by the entry scripts."""

from __future__ import annotations

import sys

# Hydra flags that take no value and may appear anywhere among the overrides.
POSITION_FREE_FLAGS = ("-m", "--multirun")


def hoist_multirun_flag(argv: list[str] | None = None) -> list[str]:
    """Move ``-m``/``--multirun`` before the overrides, in place.

    Hydra parses overrides as one positional list, so argparse rejects
    ``train.py compression=glr -m group=1,2,4`` (overrides on both sides of the flag). Users
    type it that way; this makes it mean the same as ``train.py -m compression=glr group=1,2,4``.
    """
    args = sys.argv if argv is None else argv
    flags = [arg for arg in args[1:] if arg in POSITION_FREE_FLAGS]
    if flags:
        rest = [arg for arg in args[1:] if arg not in POSITION_FREE_FLAGS]
        args[1:] = flags[:1] + rest
    return args
