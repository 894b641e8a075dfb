"""The decisive study's points (issue 17, item 5): methods, kept-weight levels, planned budgets,
priorities and the job lists of the study and of the ``acc@compr.`` grid.

Job names: ``<method>_k<level>`` (uniform), ``planned_<family>_<hw>_c<ratio>`` (planned),
``kd_<point>`` (the same point fine-tuned with distillation), ``dense`` (the dense checkpoint
tested as it is), ``dense_ft`` (the dense model fine-tuned with the same recipe); grid points
carry a ``grid_`` prefix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from imcompress.reporting.vocabulary import LOWRANK_METHODS
from imcompress.studies.runner import JobSpec

EXPERIMENT = "study/decisive"
LEVELS = (0.50, 0.25, 0.12, 0.06)
KD_OVERRIDES = ("finetune.distill.alpha=0.5", "finetune.distill.temperature=4.0")
CRITERIA = ("magnitude", "activation")
FACTORIZATIONS = ("svd", "whitened")


@dataclass(frozen=True)
class Method:
    """A uniform method: job-name stem, table label, its overrides and the compression options
    the kept-weights solver counts with (``base``: the solver's cache key; data-aware variants
    keep as many weights as their data-free base)."""

    key: str
    label: str
    overrides: tuple[str, ...]
    base: str
    counting: Mapping[str, Any] = field(default_factory=dict)

    @property
    def setting(self) -> str:
        """``rank`` (low rank) or ``sparsity`` (pruning): the top-level key the level sets."""
        return "rank" if self.counting["method"] in LOWRANK_METHODS else "sparsity"


def _lowrank(groups: int, factorization: str) -> Method:
    stem = "lr" if groups == 1 else f"glr{groups}"
    name = "LR" if groups == 1 else f"GLR-{groups}"
    choice = ("compression=lr",) if groups == 1 else ("compression=glr", f"group={groups}")
    return Method(
        stem + ("w" if factorization == "whitened" else ""),
        f"{name} ({factorization})",
        (*choice, f"compression.factorization={factorization}"),
        stem,
        {"method": "lr" if groups == 1 else "glr", "groups": groups},
    )


def _pruning(kind: str, criterion: str | None) -> Method:
    options = {
        "unstructured": ("compression=prune_unstructured",),
        "channel": ("compression=prune_channel",),
        "pattern": (
            "compression=prune_pattern",
            "compression.pattern_set=pconv",
            "compression.pattern_dim=input_channel",
        ),
    }[kind]
    counting: dict[str, Any] = {"method": options[0].split("=")[1]}
    if kind == "pattern":
        counting.update(pattern_set="pconv", pattern_dim="input_channel")
    label = "pattern (array)" if kind == "pattern" else kind
    if criterion is None:
        return Method(kind, label, options, kind, counting)
    short = criterion[:3]
    return Method(
        f"{kind}_{short}",
        f"{label}, {criterion}",
        (*options, f"compression.criterion={criterion}"),
        kind,
        counting,
    )


METHODS: dict[str, Method] = {
    m.key: m
    for m in (
        *(_lowrank(g, f) for g in (1, 2, 4) for f in FACTORIZATIONS),
        *(_pruning(kind, c) for kind in ("unstructured", "pattern") for c in CRITERIA),
        _pruning("channel", None),
    )
}


MIXED_METHODS = "[glr,prune_pattern]"  # the mixed plan's union of candidates (dense always one)


@dataclass(frozen=True)
class PlanSpec:
    """A planned point: ``family`` (glr | pattern | mixed) planned by ``src/plan.py`` for ``hw``
    at ``ratio`` of the dense model's SDK cycles (GLR: whitened factors; pattern: array-wise
    PConv patterns with ``criterion``; mixed: every layer picks from both, applied with
    ``compression=plan``)."""

    family: str
    hw: str
    ratio: float
    criterion: str = "magnitude"

    @property
    def name(self) -> str:
        scored = self.family != "glr" and self.criterion == "activation"
        return f"{self.family}{'_act' if scored else ''}_{self.hw}_c{self.ratio:.2f}"

    @property
    def label(self) -> str:
        family = {
            "glr": "GLR (whitened)",
            "pattern": f"pattern, {self.criterion}",
            "mixed": f"GLR (whitened) + pattern, {self.criterion}",
        }[self.family]
        return f"planned {family} ({self.hw})"

    def compression(self) -> tuple[str, ...]:
        """Overrides of the compression the plan is made for (src/plan.py)."""
        glr = ("compression=glr", "compression.factorization=whitened")
        if self.family == "glr":
            return glr
        if self.family == "pattern":
            return (*_pruning("pattern", self.criterion).overrides,)
        pattern = f"pattern_set:pconv,pattern_dim:input_channel,criterion:{self.criterion}"
        return (*glr, f"plan.methods={MIXED_METHODS}", f"+plan.options.prune_pattern={{{pattern}}}")

    def planner_overrides(self, dense: str, out: str, run_dir: str) -> list[str]:
        """``src/plan.py`` overrides that write this plan to ``out``."""
        return [
            "data=fashion_mnist",
            f"pretrained={dense}",
            f"hw={self.hw}",
            *self.compression(),
            "plan.budget.metric=cycles",
            f"plan.budget.ratio={self.ratio}",
            f"plan.out={out}",
            f"hydra.run.dir={run_dir}",
        ]

    def job_overrides(self) -> tuple[str, ...]:
        """Overrides of a job that applies the plan (a mixed one through ``compression=plan``,
        which takes each method's options from the plan file)."""
        applied = ("compression=plan",) if self.family == "mixed" else self.compression()
        return (*applied, f"compression.plan=<plans>/{self.name}.yaml")


@dataclass(frozen=True)
class Point:
    """One point of the study (a row of its tables) and the seeds it runs with."""

    name: str
    seeds: tuple[int, ...]
    overrides: tuple[str, ...]
    plan: PlanSpec | None = None


@dataclass(frozen=True)
class Choices:
    """Data-driven choices: the pruning criterion per kind (``unstructured``, ``pattern``) and
    level, and the GLR-4 factorization distillation uses (see :func:`choose`)."""

    criterion: Mapping[tuple[str, float], str]
    kd_factorization: str


def level_name(level: float) -> str:
    return f"{level:.2f}"


def uniform_point(
    method: Method, level: float, value: int | float, seeds: Sequence[int], kd: bool = False
) -> Point:
    """The point of ``method`` at ``level`` kept weights (``value``: the matched setting)."""
    name = f"{'kd_' if kd else ''}{method.key}_k{level_name(level)}"
    overrides = (*method.overrides, f"{method.setting}={value}", *(KD_OVERRIDES if kd else ()))
    return Point(name, tuple(seeds), overrides)


def planned_point(spec: PlanSpec, seeds: Sequence[int], kd: bool = False) -> Point:
    name = f"{'kd_' if kd else ''}planned_{spec.name}"
    return Point(name, tuple(seeds), (*spec.job_overrides(), *(KD_OVERRIDES if kd else ())), spec)


def pruning_key(kind: str, choices: Choices, level: float, other: bool = False) -> str:
    """The method key of pruning ``kind`` at ``level`` with the chosen (or the other) criterion."""
    criterion = choices.criterion[(kind, level)]
    if other:
        criterion = next(c for c in CRITERIA if c != criterion)
    return f"{kind}_{criterion[:3]}"


Matched = Mapping[tuple[str, float], int | float]  # (method base, level) -> rank or sparsity


def _uniform(
    keys: Sequence[str], level: float, matched: Matched, seeds: Sequence[int]
) -> list[Point]:
    return [
        uniform_point(METHODS[k], level, matched[(METHODS[k].base, level)], seeds) for k in keys
    ]


def study_points(matched: Matched, choices: Choices) -> dict[int, list[Point]]:
    """The points by priority (issue 17, item 5): 1 at ~6 % kept, 3 seeds, and the planned
    points at 0.50x cycles (GLR, pattern: 3 seeds; the mixed plan of issue 18: 2); 2 at ~12 %,
    2 seeds, planned mixed and pattern at 0.40x cycles 3 seeds; 3 distillation at ~6 %; 4 LR /
    GLR-2 whitened and the other pruning criterion at ~6 %. Priority 0: the dense checkpoint tested as it is (no
    training; evaluated in process, :mod:`imcompress.studies.evaluation`)."""
    low, mid = 0.06, 0.12
    glr_plan_50 = PlanSpec("glr", "imc64", 0.50)
    points: dict[int, list[Point]] = {0: [Point("dense", (1,), ("compression=none",))]}

    def uniform_keys(level: float) -> list[str]:
        return ["glr4", "glr4w", pruning_key("unstructured", choices, level), "channel",
                pruning_key("pattern", choices, level)]  # fmt: skip

    pattern_plan = PlanSpec("pattern", "imc64", 0.50, choices.criterion[("pattern", low)])
    points[1] = [  # planned mixed: issue 18's plan of GLR and patterns, next to both
        *_uniform(uniform_keys(low), low, matched, (1, 2, 3)),
        planned_point(glr_plan_50, (1, 2, 3)),
        planned_point(pattern_plan, (1, 2, 3)),
        planned_point(PlanSpec("mixed", "imc64", 0.50, pattern_plan.criterion), (1, 2)),
    ]
    points[2] = [
        *_uniform(uniform_keys(mid), mid, matched, (1, 2)),
        # GLR alone cannot reach 0.40x on imc64 (its cheapest plan is 0.48x): the mixed plan
        # and patterns are the points there
        planned_point(PlanSpec("mixed", "imc64", 0.40, pattern_plan.criterion), (1, 2, 3)),
        planned_point(PlanSpec("pattern", "imc64", 0.40, pattern_plan.criterion), (1, 2, 3)),
        Point("dense_ft", (1, 2), ("compression=none",)),
    ]
    glr_kd = METHODS["glr4w" if choices.kd_factorization == "whitened" else "glr4"]
    kd_keys = [glr_kd.key, pruning_key("unstructured", choices, low), "channel"]
    points[3] = [
        *(uniform_point(METHODS[k], low, matched[(METHODS[k].base, low)], (1, 2), kd=True)
          for k in kd_keys),
        planned_point(glr_plan_50, (1, 2), kd=True),
    ]  # fmt: skip
    other = [pruning_key(kind, choices, low, other=True) for kind in ("unstructured", "pattern")]
    points[4] = _uniform(["lrw", "glr2w", *other], low, matched, (1, 2))
    return points


def order_jobs(points: Mapping[int, Sequence[Point]]) -> list[JobSpec]:
    """Jobs by priority; within one, seed 1 of every point first, then seed 2, and so on."""
    jobs = []
    for priority in sorted(points):
        seeds = sorted({seed for point in points[priority] for seed in point.seeds})
        for seed in seeds:
            for point in points[priority]:
                if seed in point.seeds:
                    overrides = (
                        *point.overrides,
                        "pretrained=<dense>",
                        f"name=decisive_{point.name}",
                    )
                    jobs.append(JobSpec(point.name, seed, priority, overrides))
    return jobs


GRID_PLANS = (
    PlanSpec("glr", "imc64", 0.50),
    PlanSpec("glr", "imc64", 0.40),
    PlanSpec("pattern", "imc64", 0.50),
    PlanSpec("glr", "imc256", 0.87),
    PlanSpec("pattern", "imc256", 0.87),
)


def grid_points(matched: Matched, levels: Sequence[float] = LEVELS) -> list[Point]:
    """``acc@compr.``: every method x level, and the plans of both array sizes, no training."""
    points = [
        uniform_point(method, level, matched[(method.base, level)], (1,))
        for method in METHODS.values()
        for level in levels
    ]
    points += [planned_point(spec, (1,)) for spec in GRID_PLANS]
    return [Point(f"grid_{p.name}", p.seeds, p.overrides, p.plan) for p in points]


def plans_of(points: Sequence[Point]) -> list[PlanSpec]:
    """The distinct plans the points need, in order."""
    found: dict[str, PlanSpec] = {}
    for point in points:
        if point.plan is not None:
            found.setdefault(point.plan.name, point.plan)
    return list(found.values())


def all_points(points: Mapping[int, Sequence[Point]]) -> list[Point]:
    return [point for priority in sorted(points) for point in points[priority]]
