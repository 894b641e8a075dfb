"""The planner: cost every candidate, choose one per item under the budget, describe the plan.

:func:`make_plan` is torch-model in, plan dict out (the YAML of docs/planner.md). Costs come
from the crossbar estimator (one :func:`~imcompress.crossbar.batch.cost_rows` call for all
candidates of all layers), the damage from :mod:`imcompress.planner.proxy`, the choice from
:func:`imcompress.planner.knapsack.solve`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from imcompress.compression.plan_file import COST_KEYS, Plan, PlanLayer, conv_digest
from imcompress.compression.registry import get_method
from imcompress.compression.result import count_parameters
from imcompress.compression.schemas import CompressionConfig
from imcompress.crossbar.batch import METRICS, concat_tables, cost_rows
from imcompress.crossbar.config import HardwareConfig
from imcompress.crossbar.cost_report import build_report
from imcompress.crossbar.extract import extract_layers
from imcompress.crossbar.layer_table import LayerTable
from imcompress.planner.config import Budget, BudgetMetric
from imcompress.planner.items import Item, PlanSpace, merge_items, sensitivity_weights
from imcompress.planner.knapsack import BudgetError, solve
from imcompress.planner.proxy import single_thread

__all__ = [
    "BUDGET_METRICS",
    "PlanRequest",
    "Problem",
    "build_problem",
    "make_plan",
    "predicted_totals",
    "solve_problem",
]

FloatArray = npt.NDArray[np.float64]
BUDGET_METRICS = tuple(m.value for m in BudgetMetric)


@dataclass
class Problem:
    """Everything costed: items with per-candidate metrics and damage, fixed part, dense model."""

    table: LayerTable
    items: list[Item]
    damage: list[FloatArray]
    fixed: dict[str, float]
    dense: dict[str, float]
    weights: dict[str, float]


@dataclass(frozen=True)
class PlanRequest:
    """What to plan: the model and its layers to compress, each method's parsed options
    (every layer chooses from their union, dense included), the array and mapping to cost
    on, and the damage proxy's inputs (None: weight error)."""

    model: nn.Module
    input_shape: tuple[int, ...]
    targets: list[tuple[str, nn.Conv2d]]
    methods: Mapping[str, CompressionConfig]
    hw: HardwareConfig
    mapping: str
    inputs: dict[str, torch.Tensor] | None = None
    sensitivity: str = "uniform"
    groups: list[int] | None = None
    sparsity_grid: tuple[float, ...] = ()
    model_name: str | None = None


def build_problem(request: PlanRequest) -> Problem:
    """Candidates of every target (from each method's registry hook) with their costs on
    ``hw``/``mapping`` and their damage."""
    model, targets = request.model, request.targets
    hw = HardwareConfig.from_cfg(request.hw)  # returned as is when already a HardwareConfig
    table = extract_layers(model, request.input_shape)
    space = PlanSpace(
        model, table, targets, request.inputs, request.groups, tuple(request.sparsity_grid)
    )
    with single_thread():
        per_method = [get_method(m).plan_items(o, space) for m, o in request.methods.items()]
    items = merge_items(per_method)
    big = concat_tables([item.table for item in items])
    costs = cost_rows(big, hw, request.mapping)
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
        fixed_costs = cost_rows(table.select(fixed_rows), hw, request.mapping)
        fixed.update({m: float(np.sum(fixed_costs.metric(m))) for m in METRICS})
    fixed["params"] = float(count_parameters(model) - sum(int(item.params[0]) for item in items))
    dense = {m: fixed[m] + sum(float(item.costs[m][0]) for item in items) for m in BUDGET_METRICS}
    return Problem(table, items, damage, fixed, dense, weights)


def budget_value(problem: Problem, budget: Budget) -> float:
    """The absolute budget (``ratio`` times the dense model's value, or ``value``)."""
    return budget.limit(problem.dense[str(budget.metric)])


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


def uniform_settings(problem: Problem, request: PlanRequest) -> list[dict[str, Any]]:
    """Every single setting of one method that all items can take (the methods'
    ``uniform_settings`` hooks: what a uniform config gives each layer), plus all-dense; each
    with the candidate index per item."""
    out: list[dict[str, Any]] = [{"method": "none", "choice": [0] * len(problem.items)}]
    seen: set[tuple[int, ...]] = set()
    lookups = [
        {tuple(choice[t] for t in item.targets): c for c, choice in enumerate(item.choices)}
        for item in problem.items
    ]
    for name, opts in request.methods.items():
        by_shape: dict[Any, dict[tuple[Any, ...], tuple[Any, ...]]] = {}  # layers share shapes
        per_item = []
        for item in problem.items:
            shapes = tuple(_shape_of_name(problem.table, t) for t in item.targets)
            if shapes not in by_shape:
                by_shape[shapes] = _uniform_options(request, name, opts, shapes)
            per_item.append(by_shape[shapes])
        for label in sorted(per_item[0]) if per_item else []:
            choice = [
                lookup.get(options[label]) if label in options else None
                for lookup, options in zip(lookups, per_item, strict=True)
            ]
            key = tuple(-1 if c is None else c for c in choice)
            if None not in choice and key not in seen:
                seen.add(key)
                out.append({"method": name, **dict(label), "choice": choice})
    return out


def _uniform_options(
    request: PlanRequest, name: str, opts: Any, shapes: tuple[tuple[int, ...], ...]
) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """Label -> an item's choice key, for the uniform settings all its targets (of these
    weight ``shapes``) have."""
    method = get_method(name)
    grid = tuple(request.sparsity_grid)
    per_target = [
        {
            tuple(sorted(label.items())): (name, settings)
            for label, settings in method.uniform_settings(opts, shape, grid)
        }
        for shape in shapes
    ]
    common = set.intersection(*(set(options) for options in per_target))
    return {label: tuple(options[label] for options in per_target) for label in common}


def best_uniform(
    problem: Problem, request: PlanRequest, budget: Budget
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The least-damage uniform setting within the budget (None if none fits), and the
    uniform setting with the smallest budget metric (to say how close uniform settings get)."""
    metric, limit = str(budget.metric), budget_value(problem, budget)
    settings = uniform_settings(problem, request)
    choices = np.array([setting["choice"] for setting in settings], dtype=np.int64)  # (S, items)
    columns = range(len(problem.items))
    totals = {m: np.full(len(settings), problem.fixed[m]) for m in BUDGET_METRICS}
    errors = np.zeros(len(settings))
    for i in columns:
        for m in BUDGET_METRICS:
            totals[m] += problem.items[i].costs[m][choices[:, i]]
        errors += problem.damage[i][choices[:, i]]

    def entry(s: int) -> dict[str, Any]:
        return {
            **{k: v for k, v in settings[s].items() if k != "choice"},
            **{m: _plain(float(totals[m][s])) for m in BUDGET_METRICS},
            "error": float(errors[s]),
        }

    cheapest = entry(int(np.argmin(totals[metric])))
    fits = np.flatnonzero(totals[metric] <= limit)
    best = entry(int(fits[np.argmin(errors[fits])])) if fits.size else None
    return best, cheapest


def _plain(value: float) -> float | int:
    return int(value) if float(value).is_integer() else float(value)


def make_plan(request: PlanRequest, budget: Budget, *, bins: int = 4096) -> Plan:
    """The :class:`~imcompress.compression.plan_file.Plan` for ``request.model`` under
    ``budget`` (:class:`BudgetError` when it cannot be reached)."""
    budget.check()
    request = replace(request, hw=HardwareConfig.from_cfg(request.hw))  # validated once
    problem = build_problem(request)
    choice = solve_problem(problem, budget, bins).tolist()
    predicted = predicted_totals(problem, choice, request.hw, request.mapping)
    limit = budget_value(problem, budget)
    metric = str(budget.metric)
    if predicted[metric] > limit * (1 + 1e-12):
        raise RuntimeError(
            f"internal error: the plan costs {metric}={predicted[metric]} above the budget {limit}"
        )
    layers: dict[str, PlanLayer] = {}
    for item, c in zip(problem.items, choice, strict=True):
        for t_index, target in enumerate(item.targets):
            position = item.rows.index(problem.table.name.index(target))
            method, settings = item.choices[c][target]
            costs = {m: _plain(float(item.row_costs[m][c, position])) for m in COST_KEYS}
            shape = _shape_of_name(problem.table, target)
            layers[target] = PlanLayer(
                method, settings, shape, costs, float(item.errors[c, t_index])
            )
    uniform, cheapest = best_uniform(problem, request, budget)
    count, digest = conv_digest(request.model)
    return Plan(
        model=request.model_name,
        input_shape=tuple(int(v) for v in request.input_shape),
        model_convs=count,
        model_digest=digest,
        hw=request.hw.name,
        mapping=request.mapping,
        methods=list(request.methods),
        options={m: get_method(m).plan_options(o) for m, o in request.methods.items()},
        budget={
            "metric": metric,
            "value": _plain(limit),
            **({"ratio": budget.ratio} if budget.ratio is not None else {}),
        },
        predicted={k: _plain(v) if k != "error" else v for k, v in predicted.items()},
        dense={m: _plain(v) for m, v in problem.dense.items()},
        layers=layers,
        sensitivity=str(request.sensitivity),
        proxy="weight" if request.inputs is None else "output",
        uniform=uniform,
        uniform_cheapest=None if uniform is not None else cheapest,
    )


def _shape_of_name(table: LayerTable, name: str) -> tuple[int, int, int, int]:
    row = table.name.index(name)
    return (
        int(table.out_channels[row]),
        int(table.in_channels[row]),
        int(table.kernel_h[row]),
        int(table.kernel_w[row]),
    )
