"""Module paths from before the package layout of issue 18, still importable.

Saved run folders name module paths in ``.hydra/config.yaml`` and ``.hydra/hydra.yaml`` (the
CSV logger ``imcompress.loggers.ResumableCSVLogger``, the run-lock callback
``imcompress.runlock.RunFolderLockCallback``, a scheduler ``imcompress.module.
CosineAnnealingPerStep``...). :class:`MovedModuleFinder` (installed by ``imcompress/__init__``)
makes each old name an alias of the module that now holds the code, so such folders load, and
:func:`former_name` lets the dense stage's recipe hash keep naming folders as before the move.
New code uses the new paths (docs/architecture.md).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from types import CodeType, ModuleType

PACKAGE = "imcompress"
# old module (below imcompress) -> the module that holds its code now
MOVED_MODULES = {
    "atomic": "runs.atomic",
    "run_folder": "runs.folder",
    "run_record": "runs.record",
    "runlock": "runs.lock",
    "summary": "runs.summary",
    "pipeline": "jobs.train",
    "estimate_job": "jobs.estimate",
    "planner.job": "jobs.plan",
    "analog.job": "jobs.evaluate",
    "module": "training.module",
    "performance": "training.performance",
    "recalibration": "training.recalibration",
    "dense_stage": "training.dense_stage",
    "loggers": "training.loggers",
    "checkpoints": "training.checkpoints",
    "tested": "training.tested",
    "callbacks": "training.callbacks",
    "help_page": "cli.help_page",
    "warnings_filter": "cli.warnings_filter",
    "tables": "reporting.tables",
    "figures": "reporting.figures",
    "vocabulary": "reporting.vocabulary",
    "frontier": "studies.frontier",
    "study": "studies.results_table",
    "analog.study": "studies.analog",
    "planner.frontier": "planner.cost_frontier",
    "crossbar.table": "crossbar.layer_table",
    "crossbar.report": "crossbar.cost_report",
}


def _rename(name: str, table: dict[str, str]) -> str | None:
    """``name`` with its longest prefix in ``table`` replaced, or None (no prefix moved)."""
    relative = name.removeprefix(f"{PACKAGE}.")
    if relative == name:
        return None
    parts = relative.split(".")
    for cut in range(len(parts), 0, -1):
        prefix = ".".join(parts[:cut])
        if prefix in table:
            return ".".join([PACKAGE, table[prefix], *parts[cut:]])
    return None


def current_name(name: str) -> str:
    """Where the module (or ``module.attribute``) ``name`` lives now (``name`` if it did not move)."""
    return _rename(name, MOVED_MODULES) or name


def former_name(name: str) -> str:
    """The pre-move name of ``name`` (``name`` if it did not move): the inverse of
    :func:`current_name`, for values that were hashed before the move."""
    return _rename(name, {new: old for old, new in MOVED_MODULES.items()}) or name


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        """The target module is already executed: nothing to do."""

    def get_code(self, fullname: str) -> CodeType | None:
        """The target's code, so ``python -m <old name>`` runs the moved module."""
        spec = importlib.util.find_spec(self.target)
        loader = spec.loader if spec is not None else None
        get_code = getattr(loader, "get_code", None)
        return get_code(self.target) if get_code is not None else None


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Resolve a pre-move module name to the module that now holds its code (the same object,
    so ``imcompress.loggers.ResumableCSVLogger is imcompress.training.loggers.ResumableCSVLogger``)."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        moved = _rename(fullname, MOVED_MODULES)
        if moved is None:
            return None
        found = importlib.util.find_spec(moved)
        spec = importlib.machinery.ModuleSpec(
            fullname, _AliasLoader(moved), origin=found.origin if found else None
        )
        spec.has_location = spec.origin is not None  # python -m <old name> gets a __file__
        return spec


def install() -> None:
    """Put :class:`MovedModuleFinder` first on ``sys.meta_path`` (once)."""
    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, MovedModuleFinder())
