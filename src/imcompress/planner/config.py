"""The ``plan`` config node of ``src/plan.py`` (schema ``base_plan``; documented in conf/plan.yaml).

Options with a fixed vocabulary are ``StrEnum`` fields, so a bad value fails when Hydra
composes the config, naming the valid values; ranges and combinations are checked by
:func:`check_plan_config` before any work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from omegaconf import MISSING

if TYPE_CHECKING:
    from hydra.core.config_store import ConfigStore

__all__ = [
    "DEFAULT_GRID",
    "Budget",
    "BudgetMetric",
    "PlanConfig",
    "PlanMapping",
    "Sensitivity",
    "check_plan_config",
    "register_plan_schema",
]

#: what a budget counts, per image on the plan's hw and mapping (``params``: model weights)
BudgetMetric = StrEnum("BudgetMetric", ["cycles", "latency_us", "energy_uj", "arrays", "params"])
#: the mapping whose costs the budget counts (docs/cost-model.md#mappings)
PlanMapping = StrEnum("PlanMapping", ["sdk", "vwsdk", "im2col"])
#: weight of each layer's relative error in the objective (docs/planner.md#sensitivity-weight)
Sensitivity = StrEnum("Sensitivity", ["uniform", "params"])
DEFAULT_GRID = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95]


@dataclass
class Budget:
    """What the plan may cost: ``metric`` and exactly one of ``value`` and ``ratio``."""

    metric: BudgetMetric = BudgetMetric["cycles"]
    """cycles | latency_us | energy_uj | arrays | params (per image, whole model)"""
    value: float | None = None
    """absolute budget in the metric's unit"""
    ratio: float | None = None
    """fraction of the dense model's value on the same hw and mapping"""

    def check(self) -> None:
        """ValueError naming the bad field (runs before any work)."""
        if self.metric not in {m.value for m in BudgetMetric}:
            valid = [m.value for m in BudgetMetric]
            raise ValueError(f"plan.budget.metric={self.metric!r}; valid: {valid}")
        if (self.value is None) == (self.ratio is None):
            raise ValueError(
                "set exactly one of plan.budget.value (absolute, in the metric's unit) and "
                f"plan.budget.ratio (of the dense model); got value={self.value}, ratio={self.ratio}"
            )
        if self.value is not None and not self.value > 0:
            raise ValueError(f"plan.budget.value must be > 0, got {self.value}")
        if self.ratio is not None and not self.ratio > 0:
            raise ValueError(f"plan.budget.ratio must be > 0, got {self.ratio}")

    def limit(self, dense: float) -> float:
        """The absolute budget given the dense model's value of :attr:`metric`."""
        return float(self.value) if self.value is not None else float(self.ratio or 0) * dense


@dataclass
class PlanConfig:
    """Options of the planner (docs/planner.md)."""

    methods: list[str] | None = None
    """methods each layer may choose from (dense always a candidate); null: [compression.method]"""
    options: dict[str, Any] = field(default_factory=dict)
    """per method not named by `compression`: its options, e.g. {prune_pattern: {pattern_dim: input_channel}}"""
    budget: Budget = field(default_factory=Budget)
    mapping: PlanMapping = PlanMapping["sdk"]
    """the mapping whose costs the budget counts"""
    calibration_batches: int = 1
    """training batches whose layer inputs X give the output-error proxy; 0 = weight error"""
    max_positions: int = 1024
    """im2col positions sampled per layer from the calibration batches"""
    sensitivity: Sensitivity = Sensitivity["uniform"]
    """uniform: every layer's relative error counts 1; params: weighted by its share of weights"""
    groups: list[int] | None = None
    """group counts a grouped low-rank method may use; null = every divisor of the channels"""
    sparsity_grid: list[float] = field(default_factory=lambda: list(DEFAULT_GRID))
    """sparsities a pruning method may give a layer (dense is always a candidate)"""
    bins: int = 4096
    """budget bins of the knapsack DP (a repair step then uses exact costs)"""
    out: str = MISSING
    """the plan file (YAML) to write (atomically)"""
    verify: bool = True
    """apply the plan to a copy of the model and check that the estimate equals `predicted`"""


def check_plan_config(plan: Any) -> None:
    """ValueError naming the first bad ``plan.*`` value (runs before any work)."""
    from imcompress.compression.registry import plannable_methods

    valid = plannable_methods()
    bad_methods = [m for m in plan.methods or [] if m not in valid]
    if bad_methods:
        raise ValueError(
            f"plan.methods={list(plan.methods)}: {bad_methods} cannot be planned; valid: {valid}"
        )
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
