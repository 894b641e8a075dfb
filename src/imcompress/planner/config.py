"""The ``plan`` config node of ``src/plan.py`` (schema ``base_plan``; documented in conf/plan.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from omegaconf import MISSING

if TYPE_CHECKING:
    from hydra.core.config_store import ConfigStore

MAPPINGS = ("sdk", "vwsdk", "im2col")
SENSITIVITIES = ("uniform", "params")
DEFAULT_GRID = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95]


@dataclass
class BudgetConfig:
    """What the plan may cost: ``metric`` and an absolute ``value`` or a ``ratio`` of dense."""

    metric: str = "cycles"  # cycles | latency_us | energy_uj | arrays | params
    value: float | None = None  # absolute, in the metric's unit (per image)
    ratio: float | None = None  # of the dense model on the same hw and mapping


@dataclass
class PlanConfig:
    """Options of the planner (see docs/planner.md)."""

    method: str = (
        MISSING  # glr | lr (glr with group 1) | prune_unstructured | prune_channel | prune_pattern
    )
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    mapping: str = "sdk"  # sdk | vwsdk | im2col
    calibration_batches: int = (
        1  # batches of training data for the output-error proxy; 0 = weight error
    )
    max_positions: int = 1024  # im2col positions sampled per layer from the calibration batches
    sensitivity: str = "uniform"  # uniform | params: weight of each layer's relative error
    groups: list[int] | None = None  # GLR group counts to consider; null = every divisor
    sparsity_grid: list[float] = field(default_factory=lambda: list(DEFAULT_GRID))
    bins: int = 4096  # budget bins of the knapsack DP
    out: str = MISSING  # plan file (YAML) to write
    verify: bool = True  # apply the plan to a copy of the model and check the estimate


def check_plan_config(plan: Any) -> None:
    """ValueError naming the first bad ``plan.*`` value (runs before any work)."""
    from imcompress.planner.search import PLAN_METHODS, Budget

    if plan.method not in (*PLAN_METHODS, "lr"):
        raise ValueError(f"plan.method={plan.method!r}; valid: {list(PLAN_METHODS)} (or lr)")
    if plan.mapping not in MAPPINGS:
        raise ValueError(f"plan.mapping={plan.mapping!r}; valid: {list(MAPPINGS)}")
    if plan.sensitivity not in SENSITIVITIES:
        raise ValueError(f"plan.sensitivity={plan.sensitivity!r}; valid: {list(SENSITIVITIES)}")
    if plan.calibration_batches < 0:
        raise ValueError(f"plan.calibration_batches must be >= 0, got {plan.calibration_batches}")
    if plan.max_positions < 1:
        raise ValueError(f"plan.max_positions must be >= 1, got {plan.max_positions}")
    if plan.bins < 16:
        raise ValueError(f"plan.bins must be >= 16, got {plan.bins}")
    bad = [s for s in plan.sparsity_grid if not 0.0 <= float(s) < 1.0]
    if bad:
        raise ValueError(f"plan.sparsity_grid values must be in [0, 1), got {bad}")
    if plan.groups is not None and any(int(g) < 1 for g in plan.groups):
        raise ValueError(f"plan.groups must be integers >= 1, got {list(plan.groups)}")
    Budget(plan.budget.metric, plan.budget.value, plan.budget.ratio).check()


def register_plan_schema(cs: ConfigStore) -> None:
    """Store :class:`PlanConfig` as group ``plan``, name ``base_plan``."""
    cs.store(group="plan", name="base_plan", node=PlanConfig)
