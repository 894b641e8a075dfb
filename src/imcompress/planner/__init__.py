"""Hardware-aware compression planner: per-layer methods and settings (e.g. GLR rank/group,
a pruning sparsity, or dense) under a crossbar budget (cycles, latency, energy, arrays or
parameters), least output damage.

Entry point: ``src/plan.py`` (:func:`imcompress.jobs.plan.run_plan`); the core is
:func:`imcompress.planner.search.make_plan`, which returns a
:class:`~imcompress.compression.plan_file.Plan`. Each method supplies its candidates through
the compression registry. See docs/planner.md.
"""

from imcompress.planner.config import Budget, BudgetMetric, PlanConfig, PlanMapping, Sensitivity
from imcompress.planner.knapsack import BudgetError
from imcompress.planner.search import PlanRequest, Problem, build_problem, make_plan

__all__ = [
    "Budget",
    "BudgetError",
    "BudgetMetric",
    "PlanConfig",
    "PlanMapping",
    "PlanRequest",
    "Problem",
    "Sensitivity",
    "build_problem",
    "make_plan",
]
