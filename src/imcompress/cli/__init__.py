"""Command-line helpers shared by the entry scripts: argument order, user errors in one line."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from imcompress.cli.help_page import register_help_resolver
from imcompress.errors import describe_error, is_user_error

# Hydra flags that take no value and may appear anywhere among the overrides.
POSITION_FREE_FLAGS = ("-m", "--multirun")
FULL_ERROR_ENV = "HYDRA_FULL_ERROR"
USER_ERROR_EXIT = 1


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


def run_main(main: Callable[[], Any]) -> None:
    """Run an entry script's ``main``; a user error prints ``error: <message>`` and exits 1.

    User errors are those of :func:`imcompress.errors.is_user_error` (bad values, unknown keys,
    missing files, unreachable budgets, layers that cannot be compressed); anything else is a bug
    and keeps its traceback. ``HYDRA_FULL_ERROR=1`` shows the traceback of user errors too.
    Hydra is asked to re-raise (its documented ``HYDRA_FULL_ERROR`` switch, set only while
    ``main`` runs) so that the message is printed once, here.
    """
    hoist_multirun_flag()
    register_help_resolver()
    if os.environ.get(FULL_ERROR_ENV) == "1":
        main()
        return
    os.environ[FULL_ERROR_ENV] = "1"
    try:
        main()
    except Exception as error:
        if not is_user_error(error):
            raise
        print(f"error: {describe_error(error)}", file=sys.stderr)
        sys.exit(USER_ERROR_EXIT)
    finally:
        os.environ.pop(FULL_ERROR_ENV, None)
