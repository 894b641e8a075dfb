"""The knapsack solver against exhaustive search; impossible budgets."""

from __future__ import annotations

import numpy as np
import pytest

from imcompress.planner.knapsack import BudgetError, brute_force, minimum_cost, pareto, solve


def random_problem(rng: np.random.Generator, items: int, options: int):
    costs = [rng.integers(1, 50, size=options).astype(float) for _ in range(items)]
    damages = [rng.random(options) for _ in range(items)]
    return costs, damages


def test_solve_matches_brute_force_on_random_problems() -> None:
    rng = np.random.default_rng(0)
    gaps = []
    for trial in range(30):
        costs, damages = random_problem(rng, items=4, options=6)
        floor = minimum_cost(costs)
        top = sum(c.max() for c in costs)
        budget = float(rng.uniform(floor, top))
        exact = brute_force(costs, damages, budget)
        found = solve(costs, damages, budget, bins=512)
        assert found.cost <= budget + 1e-9, trial
        gaps.append(found.damage - exact.damage)
    gaps_arr = np.array(gaps)
    assert gaps_arr.min() >= -1e-12  # never better than the optimum (it is feasible)
    assert gaps_arr.max() <= 1e-9  # and, with these integer costs, optimal


def test_pareto_keeps_only_undominated_candidates() -> None:
    cost = np.array([3.0, 1.0, 2.0, 2.0, 5.0])
    damage = np.array([0.5, 0.9, 0.6, 0.7, 0.5])
    assert pareto(cost, damage).tolist() == [1, 2, 0]


def test_impossible_budget_names_the_smallest_reachable_value() -> None:
    costs = [np.array([5.0, 3.0]), np.array([4.0, 2.0])]
    damages = [np.array([0.0, 1.0]), np.array([0.0, 1.0])]
    with pytest.raises(BudgetError, match="smallest reachable 5") as error:
        solve(costs, damages, 4.0)
    assert error.value.minimum == 5.0
    assert solve(costs, damages, 5.0).choice.tolist() == [1, 1]
