"""Silence the known-harmless messages of the libraries we use, each matched precisely.

Called once by the entry scripts (``src/train.py``, ``estimate.py``, ``plan.py``, ``evaluate.py``).
Every entry names the message it drops and why it is harmless here; anything else (new warnings,
our own, other lines a library prints) still shows.
The W&B "anonymous setting has no effect" warning is fixed at its source instead
(:class:`imcompress.training.loggers.QuietWandbLogger`).
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import io
import logging
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType

# (message regex, category, why it is harmless). Regexes match the start of the message.
IGNORED_WARNINGS: tuple[tuple[str, type[Warning], str], ...] = (
    (
        r"The `srun` command is available on your system but is not used",
        UserWarning,  # lightning's PossibleUserWarning subclasses UserWarning
        "Lightning's hint for multi-node SLURM jobs; our SLURM launcher (submitit) starts the "
        "job itself, and single-node runs do not need srun",
    ),
    (
        r"`isinstance\(treespec, LeafSpec\)` is deprecated",
        FutureWarning,
        "raised inside lightning/pytorch/utilities/_pytree.py by newer torch; not our code",
    ),
)

# Lines printed (print(), not warnings) by a library module when it is imported:
# module -> (line prefix, why it is harmless).
IGNORED_IMPORT_PRINTS: dict[str, tuple[str, str]] = {
    module: (
        "Could not import triton_utils.triton_linear. Using PyTorch variant.",
        "aihwkit-lightning's Triton kernels need a Volta+ GPU; on CPU (and without triton) the "
        "PyTorch variant it falls back to is the one we test; printed once per module",
    )
    for module in ("aihwkit_lightning.nn.modules.conv", "aihwkit_lightning.nn.modules.linear")
}

# Info messages of Lightning's rank-zero logger that advertise products (no information on the run).
IGNORED_LOG_PREFIXES = ("💡 Tip: For seamless cloud",)
LIGHTNING_RANK_ZERO_LOGGERS = (
    "lightning.fabric.utilities.rank_zero",
    "lightning.pytorch.utilities.rank_zero",
)


class _DropPrefixes(logging.Filter):
    """Drop log records whose message starts with one of ``prefixes``."""

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(self.prefixes)


_FILTER = _DropPrefixes(IGNORED_LOG_PREFIXES)


class _QuietLoader(importlib.abc.Loader):
    """Runs a module's loader with stdout captured, and prints back all but one known line."""

    def __init__(self, loader: importlib.abc.Loader, prefix: str) -> None:
        self.loader = loader
        self.prefix = prefix

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        captured = io.StringIO()
        try:
            with contextlib.redirect_stdout(captured):
                self.loader.exec_module(module)
        finally:
            for line in captured.getvalue().splitlines(keepends=True):
                if not line.startswith(self.prefix):
                    sys.stdout.write(line)


class _QuietImports(importlib.abc.MetaPathFinder):
    """Finds the modules of :data:`IGNORED_IMPORT_PRINTS` as usual, with a :class:`_QuietLoader`."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in IGNORED_IMPORT_PRINTS:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader, IGNORED_IMPORT_PRINTS[fullname][0])
        return spec


def install_warning_filters() -> None:
    """Install the filters above (idempotent)."""
    if not any(isinstance(finder, _QuietImports) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietImports())
    for message, category, _why in IGNORED_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    for name in LIGHTNING_RANK_ZERO_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
