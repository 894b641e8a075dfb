"""Results table of a compression study: accuracy from training jobs, costs from estimate jobs.

A study folder holds ``finetune/<job>/`` (train.py multirun) and ``costs/<job>/`` (estimate.py
multirun over the same experiments and several ``hw`` presets). Jobs are matched by their
``experiment=`` override. ``python -m imcompress.studies.results_table STUDY_DIR`` prints the Markdown tables;
``--format latex`` (or ``csv``, ``console``) prints them for a paper.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imcompress.crossbar.options import Method
from imcompress.reporting.tables import (
    Column,
    TableFormat,
    TextTable,
    count,
    render_all,
    significant,
)
from imcompress.reporting.vocabulary import is_pruning
from imcompress.runs.folder import SUMMARY_FILE, CorruptRecordError, RunFolder, skipped_note

COMPARED_COSTS = ("sdk/cycles", "sdk/energy_uj")  # the ratio table divides by these
MAPPING_LABELS = {Method.im2col: "im2col", Method.sdk: "SDK", Method.vwsdk: "VW-SDK"}


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


def _completed(folder: Path, skipped: list[str]) -> list[RunFolder]:
    """The completed job folders under ``folder``; corrupt ones are added to ``skipped``."""
    found = []
    for path in sorted(p.parent for p in folder.glob(f"*/{SUMMARY_FILE}")):
        run = RunFolder(path)
        try:
            if run.status() == "completed":
                run.experiment()  # a corrupt overrides.yaml is found here, not halfway
                found.append(run)
        except CorruptRecordError as error:
            skipped.append(str(error))
    return found


def _effective_parameters(summary: dict[str, Any]) -> int | None:
    """Weights that remain: after factorization, or nonzero after pruning (masks count as zeros)."""
    after = (summary.get("compression") or {}).get("model_params_after")
    return int(after) if after is not None else (summary.get("parameters") or {}).get("total")


def collect(study_dir: Path, skipped: list[str] | None = None) -> list[MethodRow]:
    """Read every completed job of the study into one row per method (experiment); jobs with a
    corrupt record are left out and described in ``skipped``."""
    skipped = [] if skipped is None else skipped
    rows: dict[str, MethodRow] = {}
    for run in _completed(study_dir / "finetune", skipped):
        try:
            accuracy = run.metric("test/acc", required=True)
        except CorruptRecordError as error:
            skipped.append(str(error))
            continue
        row = _row_of(rows, run)
        row.accuracies.append(float(accuracy))  # type: ignore[arg-type]
        row.parameters = _effective_parameters(run.summary())
    for run in _completed(study_dir / "costs", skipped):
        cost = run.section("cost")
        missing = [key for key in COMPARED_COSTS if not cost.get(key)]
        if missing:
            skipped.append(f"{run.path / SUMMARY_FILE}: no positive cost/{missing[0]}")
            continue
        row = _row_of(rows, run)
        row.costs[str(run.section("config").get("hw"))] = cost
        row.parameters = row.parameters or _effective_parameters(run.summary())
    return sorted(rows.values(), key=lambda r: (is_pruning(r.compression), r.label))


def _row_of(rows: dict[str, MethodRow], run: RunFolder) -> MethodRow:
    compression = str(run.section("config").get("compression", "none"))
    label = run.experiment() or compression
    return rows.setdefault(label, MethodRow(label, compression))


def _accuracy(row: MethodRow) -> str:
    """``0.910 ± 0.014 (2 seeds)``, or the single value."""
    if not row.accuracies:
        return "n/a"
    if len(row.accuracies) == 1:
        return f"{significant(row.accuracies[0])} (1 seed)"
    spread = statistics.stdev(row.accuracies)
    return f"{significant(row.accuracy)} ± {significant(spread)} ({len(row.accuracies)} seeds)"


def _text(value: object) -> str:
    return str(value)


def cost_table(rows: list[MethodRow], hw: str) -> TextTable:
    """Accuracy and crossbar costs of every method on one hardware preset."""
    columns = [
        Column("method", _text, "l"),
        Column("params", count),
        Column("test acc", _text),
        *(Column(f"cycles {label}", count) for label in MAPPING_LABELS.values()),
        Column("energy SDK (uJ)"),
        Column("of which periphery (uJ)"),
        Column("arrays SDK", count),
        Column("area SDK (mm2)"),
    ]
    table = TextTable(columns, [], title=hw)
    for row in rows:
        cost = row.costs.get(hw, {})
        table.add(
            [
                row.label,
                row.parameters,
                _accuracy(row),
                *(cost.get(f"{m}/cycles") for m in MAPPING_LABELS),
                cost.get("sdk/energy_uj"),
                cost.get("sdk/energy_periphery_uj"),
                cost.get("sdk/arrays"),
                cost.get("sdk/area_mm2"),
            ]
        )
    return table


def ratio_table(rows: list[MethodRow], hw: str) -> TextTable | None:
    """SDK speedup / energy saving / accuracy difference of each method against each pruning
    baseline on ``hw`` (None without a pruning baseline)."""
    baselines = [row for row in rows if is_pruning(row.compression) and hw in row.costs]
    if not baselines:
        return None
    table = TextTable(
        [Column("method", _text, "l"), *(Column(f"vs {b.label}", _text) for b in baselines)],
        [],
        title=(
            "SDK speedup / energy saving / accuracy difference of each method against each "
            f"pruning baseline ({hw})"
        ),
    )
    for row in rows:
        if hw not in row.costs or is_pruning(row.compression):
            continue
        cells: list[object] = [row.label]
        for base in baselines:
            speedup = base.costs[hw]["sdk/cycles"] / row.costs[hw]["sdk/cycles"]
            saving = 1 - row.costs[hw]["sdk/energy_uj"] / base.costs[hw]["sdk/energy_uj"]
            gap = (
                f"{100 * (row.accuracy - base.accuracy):+.1f} pt"
                if row.accuracy is not None and base.accuracy is not None
                else "n/a"
            )
            cells.append(f"{speedup:.2f}x / {100 * saving:+.0f} % / {gap}")
        table.add(cells)
    return table


def render(rows: list[MethodRow], fmt: TableFormat | str = TableFormat.md) -> str:
    """Every hardware preset's cost table and ratio table in ``fmt`` (md, latex, csv, console)."""
    fmt = TableFormat(fmt)
    hw_names = sorted({hw for row in rows for hw in row.costs}, key=lambda n: (len(n), n))
    blocks = []
    for hw in hw_names:
        tables = [cost_table(rows, hw)]
        ratios = ratio_table(rows, hw)
        if ratios is not None:
            tables.append(ratios)
        if fmt == TableFormat.md:
            tables[0].title = ""
            blocks.append(f"### {hw}\n\n" + render_all(tables, fmt))
        else:
            blocks.append(render_all(tables, fmt))
    return "\n".join(blocks)


def markdown(rows: list[MethodRow]) -> str:
    """Accuracy/cost table per hardware preset, and ratios of each method to each pruning baseline."""
    return render(rows, TableFormat.md)


def main(argv: list[str] | None = None) -> int:
    """``python -m imcompress.studies.results_table STUDY_DIR [--format md|latex|csv|console]``."""
    parser = argparse.ArgumentParser(
        prog="python -m imcompress.studies.results_table",
        description="Results tables of a study folder (finetune/ and costs/ job folders).",
    )
    parser.add_argument("study_dir", type=Path, help="a folder with finetune/ and costs/")
    parser.add_argument(
        "--format",
        choices=[f.value for f in TableFormat],
        default=TableFormat.md.value,
        help="table format (default md)",
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if not args.study_dir.is_dir():
        print(
            f"{args.study_dir} is not a folder (expected a study folder with finetune/ and costs/)"
        )
        return 2
    skipped: list[str] = []
    rows = collect(args.study_dir, skipped)
    if skipped:
        print(skipped_note(skipped), file=sys.stderr)
    if not rows:
        print(f"no completed jobs under {args.study_dir}/finetune or {args.study_dir}/costs")
        return 1
    print(render(rows, args.format), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
