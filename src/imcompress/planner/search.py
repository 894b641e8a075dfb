"""The planner: cost every candidate, choose one per item under the budget, describe the plan.

:func:`make_plan` is torch-model in, plan dict out (the YAML of docs/planner.md). Costs come
from the crossbar estimator (one :func:`~imcompress.crossbar.batch.cost_rows` call for all
candidates of all layers), the damage from :mod:`imcompress.planner.proxy`, the choice from
:func:`imcompress.planner.knapsack.solve`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from imcompress.compression.factorization import max_rank
from imcompress.compression.plan import OPTION_KEYS as PLAN_OPTION_KEYS
from imcompress.compression.result import count_parameters
from imcompress.crossbar.batch import METRICS, concat_tables, cost_rows
from imcompress.crossbar.config import HardwareConfig
from imcompress.crossbar.extract import extract_layers
from imcompress.crossbar.report import build_report
from imcompress.crossbar.table import LayerTable
from imcompress.planner.items import Item, glr_items, prune_items, sensitivity_weights
from imcompress.planner.knapsack import BudgetError, solve
from imcompress.planner.proxy import single_thread

FloatArray = npt.NDArray[np.float64]
BUDGET_METRICS = (*METRICS, "params")
PLAN_METHODS = ("glr", "prune_unstructured", "prune_channel", "prune_pattern")
LOWRANK_OPTION_KEYS = PLAN_OPTION_KEYS["glr"]  # the options a plan records and checks on apply
PRUNE_OPTION_KEYS = {method: keys for method, keys in PLAN_OPTION_KEYS.items() if method != "glr"}


@dataclass(frozen=True)
class Budget:
    """``metric`` and either an absolute ``value`` or a ``ratio`` of the dense model."""

    metric: str
    value: float | None = None
    ratio: float | None = None

    def check(self) -> None:
        """ValueError naming the bad field (runs before any work)."""
        if self.metric not in BUDGET_METRICS:
            raise ValueError(f"plan.budget.metric={self.metric!r}; valid: {list(BUDGET_METRICS)}")
        if (self.value is None) == (self.ratio is None):
            raise ValueError(
                "set exactly one of plan.budget.value (absolute, in the metric's unit) and "
                f"plan.budget.ratio (of the dense model); got value={self.value}, ratio={self.ratio}"
            )
        if self.value is not None and not self.value > 0:
            raise ValueError(f"plan.budget.value must be > 0, got {self.value}")
        if self.ratio is not None and not self.ratio > 0:
            raise ValueError(f"plan.budget.ratio must be > 0, got {self.ratio}")


@dataclass
class Problem:
    """Everything costed: items with per-candidate metrics and damage, fixed part, dense model."""

    table: LayerTable
    items: list[Item]
    damage: list[FloatArray]
    fixed: dict[str, float]
    dense: dict[str, float]
    weights: dict[str, float]


def option_subset(method: str, opts: Any) -> dict[str, Any]:
    """The compression options a plan depends on (checked again when it is applied)."""
    keys = LOWRANK_OPTION_KEYS if method == "glr" else PRUNE_OPTION_KEYS[method]
    values = {k: getattr(opts, k) for k in keys}
    return {k: v.value if isinstance(v, Enum) else v for k, v in values.items()}  # YAML-safe


@dataclass(frozen=True)
class PlanRequest:
    """What to plan: the model and its layers to compress, the method with its options, the
    array and mapping to cost on, and the damage proxy's inputs (None: weight error)."""

    model: nn.Module
    input_shape: Sequence[int]
    targets: list[tuple[str, nn.Conv2d]]
    method: str
    opts: Any
    hw: Any
    mapping: str
    inputs: dict[str, torch.Tensor] | None = None
    sensitivity: str = "uniform"
    groups: list[int] | None = None
    sparsity_grid: Sequence[float] = ()


def build_problem(request: PlanRequest) -> Problem:
    """Candidates of every target with their costs on ``hw``/``mapping`` and their damage."""
    model, targets, method, opts = request.model, request.targets, request.method, request.opts
    inputs, mapping = request.inputs, request.mapping
    hw = HardwareConfig.from_cfg(request.hw)  # returned as is when already a HardwareConfig
    table = extract_layers(model, request.input_shape)
    with single_thread():
        if method == "glr":
            items = glr_items(table, targets, inputs, opts.group_dim, request.groups)
        elif method in PRUNE_OPTION_KEYS:
            items = prune_items(model, table, targets, opts, list(request.sparsity_grid), inputs)
        else:
            raise ValueError(f"plan.method={method!r}; valid: {list(PLAN_METHODS)}")
    big = concat_tables([item.table for item in items])
    costs = cost_rows(big, hw, mapping)
    start = 0
    for item in items:
        width = len(item.rows)
        stop = start + len(item) * width
        for metric in METRICS:
            per_row = np.asarray(costs.metric(metric)[start:stop], dtype=np.float64)
            item.row_costs[metric] = per_row.reshape(len(item), width)
            item.costs[metric] = item.row_costs[metric].sum(axis=1)
        item.costs["params"] = item.params.astype(np.float64)
        start = stop
    weights = sensitivity_weights(targets, request.sensitivity)
    damage = [item.errors @ np.array([weights[t] for t in item.targets]) for item in items]
    replaced = {row for item in items for row in item.rows}
    fixed_rows = [r for r in range(len(table)) if r not in replaced]
    fixed: dict[str, float] = {m: 0.0 for m in BUDGET_METRICS}
    if fixed_rows:
        fixed_costs = cost_rows(table.select(fixed_rows), hw, mapping)
        fixed.update({m: float(np.sum(fixed_costs.metric(m))) for m in METRICS})
    fixed["params"] = float(count_parameters(model) - sum(int(item.params[0]) for item in items))
    dense = {m: fixed[m] + sum(float(item.costs[m][0]) for item in items) for m in BUDGET_METRICS}
    return Problem(table, items, damage, fixed, dense, weights)


def budget_value(problem: Problem, budget: Budget) -> float:
    """The absolute budget (``ratio`` times the dense model's value, or ``value``)."""
    if budget.value is not None:
        return float(budget.value)
    assert budget.ratio is not None
    return float(budget.ratio) * problem.dense[budget.metric]


def solve_problem(problem: Problem, budget: Budget, bins: int = 4096) -> np.ndarray:
    """Candidate index per item; :class:`BudgetError` with the smallest reachable total."""
    metric = budget.metric
    limit = budget_value(problem, budget)
    fixed = problem.fixed[metric]
    costs = [item.costs[metric] for item in problem.items]
    try:
        solution = solve(costs, problem.damage, limit - fixed, bins)
    except BudgetError as error:
        smallest = fixed + error.minimum
        raise BudgetError(
            f"plan.budget: {metric}={limit:.6g} cannot be reached; the smallest reachable value "
            f"is {smallest:.6g} (every compressible layer at its cheapest candidate, "
            f"ratio {smallest / problem.dense[metric]:.4f} of the dense model); valid: "
            f"plan.budget.value >= {smallest:.6g}",
            smallest,
        ) from None
    return solution.choice


def chosen_table(problem: Problem, choice: Sequence[int]) -> LayerTable:
    """The model's layer table with every item's rows replaced by its chosen candidate."""
    parts: list[LayerTable] = []
    replacement: dict[int, tuple[Item, int, int]] = {}
    for item, c in zip(problem.items, choice, strict=True):
        for position, row in enumerate(item.rows):
            replacement[row] = (item, int(c), position)
    for row in range(len(problem.table)):
        if row in replacement:
            item, c, position = replacement[row]
            parts.append(item.table.select([c * len(item.rows) + position]))
        else:
            parts.append(problem.table.select([row]))
    return concat_tables(parts)


def predicted_totals(
    problem: Problem, choice: Sequence[int], hw: Any, mapping: str
) -> dict[str, float]:
    """Totals of the chosen plan as the estimator reports them (same table, same sums)."""
    report = build_report(chosen_table(problem, choice), hw, [mapping])
    totals = report.totals()
    params = problem.fixed["params"] + sum(
        float(item.costs["params"][c]) for item, c in zip(problem.items, choice, strict=True)
    )
    return {
        "cycles": totals[f"{mapping}/cycles"],
        "latency_us": totals[f"{mapping}/latency_us"],
        "energy_uj": totals[f"{mapping}/energy_uj"],
        "arrays": totals[f"{mapping}/arrays"],
        "params": params,
        "error": float(sum(float(d[c]) for d, c in zip(problem.damage, choice, strict=True))),
    }


def uniform_settings(
    problem: Problem, method: str, grid: Sequence[float], group_dim: str = "in"
) -> list[dict[str, Any]]:
    """Every single setting shared by all layers: (group, rank ratio) for GLR, sparsity for
    pruning; each with the candidate index per item (settings no layer can take are skipped)."""
    out: list[dict[str, Any]] = []
    items = problem.items
    if method == "glr":
        per_item = []
        for item in items:
            lookup = {}
            for c, setting in enumerate(item.settings):
                entry = setting[item.targets[0]]
                if "rank" in entry:
                    lookup[(entry["group"], entry["rank"])] = c
            per_item.append(lookup)
        common = set.intersection(*({g for g, _ in lookup} for lookup in per_item))
        ratios = np.arange(1, 257) / 256
        for group in sorted(common):
            columns = []
            for item, lookup in zip(items, per_item, strict=True):
                limit = max_rank(_shape_of(item, problem.table), group, group_dim)
                # resolve_rank of a ratio: min(limit, max(1, round(ratio * limit))), vectorized
                ranks = np.minimum(limit, np.maximum(1, np.round(ratios * limit))).astype(int)
                columns.append([lookup[(group, int(k))] for k in ranks])
            choices = np.array(columns).T  # (ratios, items)
            _, first = np.unique(choices, axis=0, return_index=True)
            for r in sorted(first.tolist()):
                out.append(
                    {"group": group, "rank": float(ratios[r]), "choice": choices[r].tolist()}
                )
        out.append({"dense": True, "choice": [0] * len(items)})
        return out
    for s in sorted({0.0, *grid}):
        choice = []
        for item in items:
            match = [
                c
                for c, setting in enumerate(item.settings)
                if all(v["sparsity"] == s for v in setting.values())
            ]
            choice.append(match[0] if match else None)
        if None not in choice:
            out.append({"sparsity": s, "choice": choice})
    return out


def _shape_of(item: Item, table: LayerTable) -> tuple[int, int, int, int]:
    row = item.rows[0]
    return (
        int(table.out_channels[row]),
        int(table.in_channels[row]),
        int(table.kernel_h[row]),
        int(table.kernel_w[row]),
    )


def best_uniform(
    problem: Problem, method: str, budget: Budget, grid: Sequence[float], group_dim: str = "in"
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The least-damage uniform setting within the budget (None if none fits), and the
    uniform setting with the smallest budget metric (to say how close uniform settings get)."""
    metric, limit = budget.metric, budget_value(problem, budget)
    best: dict[str, Any] | None = None
    cheapest: dict[str, Any] = {}
    for setting in uniform_settings(problem, method, grid, group_dim):
        choice = setting["choice"]
        total = {
            m: problem.fixed[m]
            + sum(float(item.costs[m][c]) for item, c in zip(problem.items, choice, strict=True))
            for m in BUDGET_METRICS
        }
        error = float(sum(float(d[c]) for d, c in zip(problem.damage, choice, strict=True)))
        entry = {
            **{k: v for k, v in setting.items() if k != "choice"},
            **{m: _plain(total[m]) for m in BUDGET_METRICS},
            "error": error,
        }
        if not cheapest or total[metric] < cheapest[metric]:
            cheapest = entry
        if total[metric] <= limit and (best is None or error < best["error"]):
            best = entry
    return best, cheapest


def _plain(value: float) -> float | int:
    return int(value) if float(value).is_integer() else float(value)


def make_plan(
    request: PlanRequest, budget: Budget, *, bins: int = 4096, model_name: str | None = None
) -> dict[str, Any]:
    """The plan (the YAML of docs/planner.md) for ``request.model`` under ``budget``."""
    budget.check()
    request = replace(request, hw=HardwareConfig.from_cfg(request.hw))  # validated once
    hw, method, opts, mapping = request.hw, request.method, request.opts, request.mapping
    problem = build_problem(request)
    choice = solve_problem(problem, budget, bins).tolist()
    predicted = predicted_totals(problem, choice, hw, mapping)
    limit = budget_value(problem, budget)
    if predicted[budget.metric] > limit * (1 + 1e-12):
        raise RuntimeError(
            f"internal error: the plan costs {budget.metric}={predicted[budget.metric]} above "
            f"the budget {limit}"
        )
    layers: dict[str, dict[str, Any]] = {}
    for item, c in zip(problem.items, choice, strict=True):
        for t_index, target in enumerate(item.targets):
            position = item.rows.index(problem.table.name.index(target))
            entry: dict[str, Any] = dict(item.settings[c][target])
            entry["shape"] = list(_shape_of_name(problem.table, target))
            for m in METRICS:
                entry[m] = _plain(float(item.row_costs[m][c, position]))
            entry["error"] = float(item.errors[c, t_index])
            layers[target] = entry
    uniform, cheapest = best_uniform(
        problem, method, budget, request.sparsity_grid, getattr(opts, "group_dim", "in")
    )
    return {
        "model": model_name,
        "hw": hw.name,
        "mapping": mapping,
        "method": method,
        "options": option_subset(method, opts),
        "budget": {
            "metric": budget.metric,
            "value": _plain(limit),
            **({"ratio": budget.ratio} if budget.ratio is not None else {}),
        },
        "predicted": {k: _plain(v) if k != "error" else v for k, v in predicted.items()},
        "dense": {m: _plain(v) for m, v in problem.dense.items()},
        "sensitivity": request.sensitivity,
        "input_shape": [int(v) for v in request.input_shape],
        "layers": layers,
        "uniform": uniform,
        **({} if uniform is not None else {"uniform_cheapest": cheapest}),
    }


def _shape_of_name(table: LayerTable, name: str) -> tuple[int, int, int, int]:
    row = table.name.index(name)
    return (
        int(table.out_channels[row]),
        int(table.in_channels[row]),
        int(table.kernel_h[row]),
        int(table.kernel_w[row]),
    )
