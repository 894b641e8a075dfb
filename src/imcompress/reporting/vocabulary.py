"""One vocabulary of compression methods and their labels, shared by studies, figures and planner.

* method names are those of ``compression.method`` (conf/compression/<name>.yaml);
* ``lr`` is GLR with one group (:func:`lowrank_method`);
* study job folders are named ``<family>_k<keep>_s<seed>`` (launch/study_frontier.sh): each
  :class:`Family` says which method and options a family stands for and how tables label it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

NONE = "none"
LOWRANK_METHODS = ("lr", "glr")
PRUNING_METHODS = ("prune_unstructured", "prune_channel", "prune_pattern")
METHODS = (NONE, *LOWRANK_METHODS, *PRUNING_METHODS)


def is_pruning(method: object) -> bool:
    """Whether ``method`` (a ``compression.method`` name) prunes weights."""
    return str(method) in PRUNING_METHODS


def lowrank_method(method: str) -> str:
    """``lr`` -> ``glr`` (LR is GLR with ``groups=1``); other names unchanged."""
    return "glr" if method == "lr" else method


@dataclass(frozen=True)
class Family:
    """A study's method family: its label in tables and figures, method and options."""

    label: str
    method: str
    options: dict[str, Any] = field(default_factory=dict)


FAMILIES: dict[str, Family] = {
    "lr": Family("LR", "glr", {"groups": 1}),
    "glr2": Family("GLR-2", "glr", {"groups": 2}),
    "glr4": Family("GLR-4", "glr", {"groups": 4}),
    "unstructured": Family("unstructured", "prune_unstructured"),
    "channel": Family("channel", "prune_channel"),
    "pattern": Family("pattern (array)", "prune_pattern", {"pattern_dim": "input_channel"}),
    "pattern_kernel": Family("pattern (kernel)", "prune_pattern", {"pattern_dim": "kernel"}),
}
FAMILY_LABELS = {key: family.label for key, family in FAMILIES.items()}
PLANNED_FAMILY_LABELS = {"glr": "GLR", "pattern": "pattern"}


def planned_label(family: str, hw: str) -> str:
    """``("glr", "imc64")`` -> ``planned GLR (imc64)``."""
    return f"planned {PLANNED_FAMILY_LABELS.get(family, family)} ({hw})"
