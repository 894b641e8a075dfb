"""Silence the known-harmless messages of the libraries we use, each matched precisely.

Called once by the entry scripts (``src/train.py``, ``src/estimate.py``). Every entry names the
message it drops and why it is harmless here; anything else (new warnings, our own) still shows.
The W&B "anonymous setting has no effect" warning is fixed at its source instead
(:class:`imcompress.loggers.QuietWandbLogger`).
"""

from __future__ import annotations

import logging
import warnings

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


def install_warning_filters() -> None:
    """Install the filters above (idempotent)."""
    for message, category, _why in IGNORED_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    for name in LIGHTNING_RANK_ZERO_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
