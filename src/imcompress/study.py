"""Results table of a compression study: accuracy from training jobs, costs from estimate jobs.

A study folder holds ``finetune/<job>/`` (train.py multirun) and ``costs/<job>/`` (estimate.py
multirun over the same experiments and several ``hw`` presets). Jobs are matched by their
``experiment=`` override. ``python -m imcompress.study STUDY_DIR`` prints the Markdown tables.
"""

from __future__ import annotations

import json
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PRUNING = ("prune_unstructured", "prune_channel", "prune_pattern")
MAPPINGS = ("im2col", "sdk", "vwsdk")


@dataclass
class MethodRow:
    """One method of the study: accuracies over seeds and costs per hardware preset."""

    label: str
    compression: str
    parameters: int | None = None
    accuracies: list[float] = field(default_factory=list)
    costs: dict[str, dict[str, float]] = field(default_factory=dict)  # hw name -> totals

    @property
    def accuracy(self) -> float | None:
        return statistics.fmean(self.accuracies) if self.accuracies else None


def _experiment_of(job: Path) -> str | None:
    overrides = job / ".hydra" / "overrides.yaml"
    if not overrides.exists():
        return None
    for item in yaml.safe_load(overrides.read_text()) or []:
        if str(item).startswith("experiment="):
            return str(item).split("=", 1)[1].rsplit("/", 1)[-1]
    return None


def _summaries(folder: Path) -> list[tuple[Path, dict[str, Any]]]:
    found = []
    for path in sorted(folder.glob("*/summary.json")):
        summary = json.loads(path.read_text())
        if summary.get("status") == "completed":
            found.append((path.parent, summary))
    return found


def _effective_parameters(summary: dict[str, Any]) -> int | None:
    """Weights that remain: after factorization, or nonzero after pruning (masks count as zeros)."""
    after = (summary.get("compression") or {}).get("model_params_after")
    return int(after) if after is not None else summary.get("parameters", {}).get("total")


def collect(study_dir: Path) -> list[MethodRow]:
    """Read every completed job of the study into one row per method (experiment)."""
    rows: dict[str, MethodRow] = {}
    for job, summary in _summaries(study_dir / "finetune"):
        label = _experiment_of(job) or summary["config"]["compression"]
        row = rows.setdefault(label, MethodRow(label, summary["config"]["compression"]))
        row.accuracies.append(float(summary["metrics"]["test/acc"]))
        row.parameters = _effective_parameters(summary)
    for job, summary in _summaries(study_dir / "costs"):
        label = _experiment_of(job) or summary["config"]["compression"]
        row = rows.setdefault(label, MethodRow(label, summary["config"]["compression"]))
        row.costs[str(summary["config"]["hw"])] = summary["cost"]
        row.parameters = row.parameters or _effective_parameters(summary)
    return sorted(rows.values(), key=lambda r: (r.compression in PRUNING, r.label))


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:,.{digits}g}"


def markdown(rows: list[MethodRow]) -> str:
    """Accuracy/cost table per hardware preset, and ratios of each method to each pruning baseline."""
    hw_names = sorted({hw for row in rows for hw in row.costs}, key=lambda n: (len(n), n))
    lines = []
    for hw in hw_names:
        lines += [
            f"### {hw}",
            "",
            "| method | params | test acc (seeds) | cycles im2col | cycles SDK | cycles VW-SDK | "
            "energy SDK (uJ) | of which periphery | arrays SDK | area SDK (mm2) |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in rows:
            cost = row.costs.get(hw, {})
            seeds = ", ".join(f"{a:.4f}" for a in row.accuracies)
            lines.append(
                f"| {row.label} | {_fmt(row.parameters, 9)} | {_fmt(row.accuracy, 4)} ({seeds}) | "
                + " | ".join(_fmt(cost.get(f"{m}/cycles"), 6) for m in MAPPINGS)
                + f" | {_fmt(cost.get('sdk/energy_uj'))} | {_fmt(cost.get('sdk/energy_periphery_uj'))}"
                + f" | {_fmt(cost.get('sdk/arrays'))} | {_fmt(cost.get('sdk/area_mm2'))} |"
            )
        lines.append("")
        baselines = [row for row in rows if row.compression in PRUNING and hw in row.costs]
        if not baselines:
            continue
        lines += [
            f"SDK speedup / energy saving / accuracy difference of each method against each pruning baseline ({hw}):",
            "",
            "| method | " + " | ".join(f"vs {b.label}" for b in baselines) + " |",
            "|---|" + "---|" * len(baselines),
        ]
        for row in rows:
            if hw not in row.costs or row.compression in PRUNING:
                continue
            cells = []
            for base in baselines:
                speedup = base.costs[hw]["sdk/cycles"] / row.costs[hw]["sdk/cycles"]
                saving = 1 - row.costs[hw]["sdk/energy_uj"] / base.costs[hw]["sdk/energy_uj"]
                gap = (
                    f"{100 * (row.accuracy - base.accuracy):+.1f} pt"
                    if row.accuracy is not None and base.accuracy is not None
                    else "n/a"
                )
                cells.append(f"{speedup:.2f}x / {100 * saving:+.0f} % / {gap}")
            lines.append(f"| {row.label} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not Path(args[0]).is_dir():
        print("usage: python -m imcompress.study STUDY_DIR  (a folder with finetune/ and costs/)")
        return 2
    rows = collect(Path(args[0]))
    if not rows:
        print(f"no completed jobs under {args[0]}/finetune or {args[0]}/costs")
        return 1
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
