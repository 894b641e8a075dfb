"""Benchmark of the planner's search; every ratio is measured in this run, interleaved.

For ResNet-20 and WRN-16-4 (32x32, random weights, weight-error proxy) on one hw preset:

* search = cost every candidate of every layer with the estimator (one batched evaluation:
  ``imcompress.crossbar.batch.cost_rows``) + the knapsack + the best uniform setting
  (targets: ResNet-20 well under 2 s, WRN-16-4 under 10 s);
* loop = the same costs from one estimator call per candidate (timed on a random sample of
  candidates and scaled to all of them), the baseline of the ratio;
* proxy = the damage proxy for all candidates (weights only; independent of the hw preset).

Run: ``PYTHONPATH=src .venv/bin/python bench/bench_planner.py`` (``--quick``: fewer repeats).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf

from imcompress.compression.options import parse_options
from imcompress.compression.registry import get_method
from imcompress.compression.selection import select_layers
from imcompress.crossbar.batch import concat_tables, cost_rows
from imcompress.crossbar.config import HardwareConfig
from imcompress.crossbar.extract import extract_layers
from imcompress.models.build import build_model
from imcompress.planner.config import Budget
from imcompress.planner.items import PlanSpace
from imcompress.planner.search import (
    PlanRequest,
    best_uniform,
    build_problem,
    solve_problem,
)

MODELS = {
    "resnet20": {"_target_": "imcompress.models.CifarResNet", "depth": 20},
    "wrn16_4": {"_target_": "imcompress.models.WideResNet", "depth": 16, "widen_factor": 4},
}


def timed(fn: Callable[..., Any], *args: Any) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def search(problem: Any, request: Any, hw: HardwareConfig, budget: Budget) -> None:
    """Cost all candidates in one batched call, solve, find the best uniform setting."""
    cost_rows(concat_tables([item.table for item in problem.items]), hw, "sdk")
    solve_problem(problem, budget)
    best_uniform(problem, request, budget)


def loop(picks: list[tuple[Any, int]], hw: HardwareConfig) -> None:
    """One estimator call per candidate."""
    for item, c in picks:
        cost_rows(item.table.select([c]), hw, "sdk")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--hw", default="imc64", help="preset name (rows = cols = its number)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    size = int(args.hw.removeprefix("imc"))
    hw = HardwareConfig(name=args.hw, rows=size, cols=size)
    repeat = 1 if args.quick else 3
    sample = 100 if args.quick else 300
    rng = np.random.default_rng(0)
    print(f"hw {args.hw}, mapping sdk, budget cycles <= 0.6 x dense; median of {repeat}")
    print("model      candidates  proxy s  search s  loop s (est.)  loop/search")
    for name, spec in MODELS.items():
        torch.manual_seed(0)
        model = build_model(OmegaConf.create(spec), 3, 10)
        targets = select_layers(model)
        opts = parse_options({"method": "glr"})
        table = extract_layers(model, (3, 32, 32))
        space = PlanSpace(model, table, targets)
        proxy_s = timed(get_method("glr").plan_items, opts, space)
        request = PlanRequest(model, (3, 32, 32), targets, {"glr": opts}, hw, "sdk")
        problem = build_problem(request)
        items = problem.items
        budget = Budget("cycles", ratio=0.6)
        total = sum(len(item) for item in items)
        search_times, loop_times = [], []
        for _ in range(repeat):  # interleaved: search, then the loop sample
            search_times.append(timed(search, problem, request, hw, budget))
            picks = [
                (item, int(c))
                for item in items
                for c in rng.choice(len(item), size=max(1, sample * len(item) // total))
            ]
            loop_times.append(timed(loop, picks, hw) * total / len(picks))
        search_s, loop_s = statistics.median(search_times), statistics.median(loop_times)
        print(
            f"{name:<10} {total:>10}  {proxy_s:>7.2f}  {search_s:>8.3f}  {loop_s:>13.2f}"
            f"  {loop_s / search_s:>10.0f}x"
        )


if __name__ == "__main__":
    main()
