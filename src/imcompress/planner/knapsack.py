"""Multiple-choice knapsack: one candidate per item, total cost within a budget, least damage.

:func:`solve` runs a dynamic program on a discretised budget (costs rounded *up* to whole
bins, so the answer always meets the exact budget), then a repair step that spends the budget
left over by the rounding on the exact costs (greedy upgrades with the largest damage decrease
that still fit). Before the DP every item keeps only its Pareto candidates (no other candidate
is both cheaper-or-equal and less-or-equally damaging). :func:`brute_force` is the exhaustive
reference used by the tests.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class BudgetError(ValueError):
    """The budget is below the cheapest combination; ``minimum`` is the smallest reachable cost."""

    def __init__(self, message: str, minimum: float) -> None:
        super().__init__(message)
        self.minimum = minimum


@dataclass(frozen=True)
class Solution:
    """Chosen candidate index per item, with its total cost and damage."""

    choice: IntArray
    cost: float
    damage: float


def pareto(cost: FloatArray, damage: FloatArray) -> IntArray:
    """Indices of the Pareto candidates, by increasing cost (ties: the least damage first)."""
    order = np.lexsort((damage, cost))
    best = np.minimum.accumulate(damage[order])
    keep = np.ones(order.size, dtype=bool)
    keep[1:] = damage[order][1:] < best[:-1]
    return np.asarray(order[keep], dtype=np.int64)


def minimum_cost(costs: Sequence[FloatArray]) -> float:
    """The smallest total cost over all combinations."""
    return float(sum(float(np.min(c)) for c in costs))


def solve(
    costs: Sequence[FloatArray], damages: Sequence[FloatArray], budget: float, bins: int = 4096
) -> Solution:
    """Least total damage with total cost ``<= budget`` (see module docstring)."""
    if len(costs) != len(damages):
        raise ValueError("solve: costs and damages need one entry per item")
    floor = minimum_cost(costs)
    if floor > budget:
        raise BudgetError(f"budget {budget:g} is below the smallest reachable {floor:g}", floor)
    fronts = [
        pareto(np.asarray(c, float), np.asarray(d, float))
        for c, d in zip(costs, damages, strict=True)
    ]
    c_front = [np.asarray(c, float)[f] for c, f in zip(costs, fronts, strict=True)]
    d_front = [np.asarray(d, float)[f] for d, f in zip(damages, fronts, strict=True)]
    pick = _dp(c_front, d_front, budget, bins)
    if pick is None:  # rounding made the floor look infeasible: start from the cheapest
        pick = np.array([int(np.argmin(c)) for c in c_front], dtype=np.int64)
    pick = _repair(c_front, d_front, pick, budget)
    choice = np.array([int(f[p]) for f, p in zip(fronts, pick, strict=True)], dtype=np.int64)
    return _solution(costs, damages, choice)


def _dp(
    costs: list[FloatArray], damages: list[FloatArray], budget: float, bins: int
) -> IntArray | None:
    """Exact DP over ``bins`` budget units (costs rounded up); None if nothing fits the bins."""
    floor = sum(float(c.min()) for c in costs)
    # Discretise only the part above the floor: each item's cost above its own minimum.
    spare = budget - floor
    unit = spare / bins if spare > 0 else 1.0
    inf = np.inf
    best = np.zeros(bins + 1)
    back = []
    for c, d in zip(costs, damages, strict=True):
        extra = np.ceil((c - c.min()) / unit - 1e-9).astype(np.int64) if spare > 0 else None
        if extra is None:
            extra = np.where(c - c.min() > 0, bins + 1, 0).astype(np.int64)
        new = np.full(bins + 1, inf)
        arg = np.full(bins + 1, -1, dtype=np.int64)
        for j in np.flatnonzero(extra <= bins).tolist():
            w = int(extra[j])
            shifted = np.full(bins + 1, inf)
            shifted[w:] = best[: bins + 1 - w] + d[j]
            better = shifted < new
            new[better] = shifted[better]
            arg[better] = j
        best = new
        back.append(arg)
    if not np.isfinite(best[bins]):
        return None
    pick = np.zeros(len(costs), dtype=np.int64)
    b = bins
    for t in range(len(costs) - 1, -1, -1):
        j = int(back[t][b])
        pick[t] = j
        c = costs[t]
        b -= int(np.ceil((c[j] - c.min()) / unit - 1e-9)) if spare > 0 else 0
    return pick


def _repair(
    costs: list[FloatArray], damages: list[FloatArray], pick: IntArray, budget: float
) -> IntArray:
    """Greedy upgrades on exact costs: the move with the largest damage decrease that fits."""
    pick = pick.copy()
    while True:
        used = sum(float(c[p]) for c, p in zip(costs, pick, strict=True))
        left = budget - used
        best_gain, best_move = 0.0, None
        for t, (c, d) in enumerate(zip(costs, damages, strict=True)):
            fits = (c - c[pick[t]] <= left) & (d < d[pick[t]])
            if fits.any():
                j = int(np.argmin(np.where(fits, d, np.inf)))
                gain = float(d[pick[t]] - d[j])
                if gain > best_gain:
                    best_gain, best_move = gain, (t, j)
        if best_move is None:
            return pick
        pick[best_move[0]] = best_move[1]


def brute_force(
    costs: Sequence[FloatArray], damages: Sequence[FloatArray], budget: float
) -> Solution:
    """Exhaustive search (small problems only)."""
    best: tuple[float, tuple[int, ...]] | None = None
    for combo in itertools.product(*(range(len(c)) for c in costs)):
        cost = sum(float(c[j]) for c, j in zip(costs, combo, strict=True))
        if cost > budget:
            continue
        damage = sum(float(d[j]) for d, j in zip(damages, combo, strict=True))
        if best is None or damage < best[0]:
            best = (damage, combo)
    if best is None:
        floor = minimum_cost(costs)
        raise BudgetError(f"budget {budget:g} is below the smallest reachable {floor:g}", floor)
    return _solution(costs, damages, np.array(best[1], dtype=np.int64))


def _solution(
    costs: Sequence[FloatArray], damages: Sequence[FloatArray], choice: IntArray
) -> Solution:
    cost = sum(float(np.asarray(c)[j]) for c, j in zip(costs, choice, strict=True))
    damage = sum(float(np.asarray(d)[j]) for d, j in zip(damages, choice, strict=True))
    return Solution(choice, cost, damage)
