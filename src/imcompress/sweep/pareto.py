"""Pareto front of (cost, accuracy) points: lower cost and higher accuracy are better."""

from __future__ import annotations

from collections.abc import Sequence


def pareto_front(costs: Sequence[float], accuracies: Sequence[float]) -> list[int]:
    """Indices of the points no other point beats (cost <= and accuracy >=, one strictly).

    Returned in order of increasing cost. Duplicated points are all kept.
    """
    if len(costs) != len(accuracies):
        raise ValueError(f"{len(costs)} costs but {len(accuracies)} accuracies")
    order = sorted(range(len(costs)), key=lambda i: (costs[i], -accuracies[i]))
    front: list[int] = []
    best_accuracy = float("-inf")
    best_point: tuple[float, float] | None = None
    for index in order:
        point = (costs[index], accuracies[index])
        if accuracies[index] > best_accuracy:
            front.append(index)
            best_accuracy = accuracies[index]
            best_point = point
        elif point == best_point:
            front.append(index)
    return front
