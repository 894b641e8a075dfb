"""Plans: budget met, optimal against brute force, reproduced exactly when applied, refused
when they do not match the model, and a clear error for an impossible budget."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from imcompress.compression import apply_compression, count_parameters
from imcompress.compression.lowrank import LowRankConv2d
from imcompress.compression.options import parse_options
from imcompress.compression.plan_file import Plan, write_plan
from imcompress.compression.selection import select_layers
from imcompress.crossbar import estimate
from imcompress.planner.config import Budget
from imcompress.planner.knapsack import BudgetError, pareto
from imcompress.planner.proxy import capture_inputs
from imcompress.planner.search import (
    PlanRequest,
    build_problem,
    make_plan,
    solve_problem,
)
from tests.planner.conftest import INPUT_SHAPE

PRUNING = ["prune_unstructured", "prune_channel", "prune_pattern"]
GRID = [0.25, 0.5, 0.75, 0.9]


def plan_for(
    model: nn.Module, hw: Any, method: str | list[str], budget: Budget, batches: Any, **kw: Any
) -> Plan:
    methods = [method] if isinstance(method, str) else method
    targets = select_layers(model)
    inputs = capture_inputs(model, batches, targets) if batches is not None else None
    request = PlanRequest(
        model,
        INPUT_SHAPE,
        targets,
        {m: parse_options({"method": m}) for m in methods},
        hw,
        "sdk",
        inputs=inputs,
        sparsity_grid=tuple(GRID),
        model_name="tiny",
        **kw,
    )
    return make_plan(request, budget)


def applied_costs(model: nn.Module, hw: Any, method: str, path: Path) -> dict[str, float]:
    applied = copy.deepcopy(model)
    result = apply_compression(applied, {"method": "plan", "plan": str(path)})
    result.apply_final_masks()  # what src/estimate.py does
    totals = estimate(applied, INPUT_SHAPE, hw, ["sdk"]).totals()
    return {
        "cycles": totals["sdk/cycles"],
        "latency_us": totals["sdk/latency_us"],
        "energy_uj": totals["sdk/energy_uj"],
        "arrays": totals["sdk/arrays"],
        "params": count_parameters(applied),
    }


@pytest.mark.parametrize(
    ("method", "metric", "ratio"),
    [
        ("glr", "cycles", 0.7),
        ("glr", "energy_uj", 0.6),
        ("glr", "params", 0.4),
        ("prune_unstructured", "params", 0.5),
        ("prune_channel", "energy_uj", 0.7),
        ("prune_pattern", "cycles", 0.9),
    ],
)
def test_plan_meets_budget_and_the_applied_plan_costs_exactly_the_prediction(
    tmp_path: Path, model: nn.Module, hw: Any, batches: Any, method: str, metric: str, ratio: float
) -> None:
    plan = plan_for(model, hw, method, Budget(metric, ratio=ratio), batches)
    predicted = plan.predicted
    assert predicted[metric] <= plan.budget["value"] == pytest.approx(ratio * plan.dense[metric])
    assert predicted[metric] < plan.dense[metric]
    path = write_plan(plan, tmp_path / "plan.yaml")
    reread = yaml.safe_load(path.read_text())
    measured = applied_costs(model, hw, method, path)
    for key, value in measured.items():
        assert reread["predicted"][key] == value, key  # exact, floats included
    uniform = plan.uniform
    if uniform is not None:  # the plan is never worse than the best single setting
        assert uniform[metric] <= plan.budget["value"]
        assert predicted["error"] <= uniform["error"] + 1e-9


def test_solver_agrees_with_brute_force_on_real_candidates(
    model: nn.Module, hw: Any, batches: Any
) -> None:
    targets = select_layers(model)
    inputs = capture_inputs(model, batches, targets)
    opts = parse_options({"method": "glr"})
    problem = build_problem(
        PlanRequest(
            model, INPUT_SHAPE, targets, {"glr": opts}, hw, "sdk", inputs=inputs, groups=[1, 2]
        )
    )
    gaps = []
    for ratio in (0.62, 0.7, 0.8, 0.95):
        budget = Budget("energy_uj", ratio=ratio)
        choice = solve_problem(problem, budget)
        limit = ratio * problem.dense["energy_uj"] - problem.fixed["energy_uj"]
        # exhaustive over the Pareto candidates of every item (the optimum uses only those)
        cost, damage = np.zeros(1), np.zeros(1)
        for item, d in zip(problem.items, problem.damage, strict=True):
            front = pareto(item.costs["energy_uj"], d)
            cost = (cost[:, None] + item.costs["energy_uj"][front][None, :]).ravel()
            damage = (damage[:, None] + d[front][None, :]).ravel()
        best = damage[cost <= limit].min()
        found = sum(float(d[c]) for d, c in zip(problem.damage, choice, strict=True))
        spent = sum(
            float(i.costs["energy_uj"][c]) for i, c in zip(problem.items, choice, strict=True)
        )
        assert spent <= limit + 1e-12
        gaps.append((found - best) / best)
    assert max(gaps) <= 0.01, gaps  # within 1 % of the optimum (measured: docs/planner.md)


def test_impossible_budget_reports_the_smallest_reachable_value(model: nn.Module, hw: Any) -> None:
    with pytest.raises(BudgetError, match="smallest reachable value") as error:
        plan_for(model, hw, "glr", Budget("cycles", value=10), None)
    smallest = error.value.minimum
    plan = plan_for(model, hw, "glr", Budget("cycles", value=smallest), None)
    assert plan.predicted["cycles"] == pytest.approx(smallest)


def write_raw(tmp_path: Path, plan: dict[str, Any]) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False))
    return path


def test_plans_that_do_not_match_the_model_are_refused_before_any_change(
    tmp_path: Path, model: nn.Module, hw: Any
) -> None:
    plan = plan_for(model, hw, "glr", Budget("params", ratio=0.5), None).to_dict()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    first = next(iter(plan["layers"]))
    cases = {
        "renamed": ("layer9.conv1", "layer9.conv1: not a dense nn.Conv2d"),
        "shape": (first, "plan shape"),
        "group": (first, "does not divide"),
        "rank": (first, "exceeds|valid"),
    }
    for case, (layer, message) in cases.items():
        bad = copy.deepcopy(plan)
        bad["model_digest"] = ""  # reach the per-layer checks
        entry = bad["layers"][first]
        if case == "renamed":
            bad["layers"][layer] = bad["layers"].pop(first)
        elif case == "shape":
            entry["shape"] = [1, 2, 3, 3]
        elif case == "group":
            entry.update(method="glr", groups=3, rank=1)
        else:
            entry.update(method="glr", groups=1, rank=10_000)
        with pytest.raises(ValueError, match=message) as error:
            apply_compression(model, {"method": "plan", "plan": str(write_raw(tmp_path, bad))})
        assert layer in str(error.value)
    with pytest.raises(ValueError, match="use compression=plan"):
        apply_compression(
            model, {"method": "prune_channel", "plan": str(write_raw(tmp_path, plan))}
        )
    with pytest.raises(ValueError, match="is not a plan"):
        apply_compression(model, {"method": "plan", "plan": str(write_raw(tmp_path, {"a": 1}))})
    with pytest.raises(FileNotFoundError, match="no such plan file"):
        apply_compression(model, {"method": "plan", "plan": str(tmp_path / "missing.yaml")})
    assert not any(isinstance(m, LowRankConv2d) for m in model.modules())
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
