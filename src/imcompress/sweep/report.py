"""Build a sweep's table and plots from its folder and say in a few lines how the sweep went."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imcompress.sweep.aggregate import (
    TABLE_FILE,
    accuracy_column,
    add_dense_reference,
    job_row,
    write_table,
)
from imcompress.sweep.jobs import discover_jobs
from imcompress.sweep.plots import write_plots


@dataclass
class SweepReport:
    """The outcome of :func:`build_report`."""

    sweep_dir: Path
    rows: list[dict[str, Any]]
    table: Path
    plots: list[Path] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    accuracy: str | None = None

    @property
    def counts(self) -> Counter[str]:
        return Counter(str(row["status"]) for row in self.rows)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [row for row in self.rows if row["status"] == "failed"]


def build_report(
    sweep_dir: Path, accuracy: str | None = None, plots: bool = True, x_axis: str = "cost"
) -> SweepReport:
    """Write ``sweep_summary.csv`` and the PNG plots into ``sweep_dir``; works on partial sweeps.

    ``x_axis``: ``cost`` (cycles, energy) or ``speedup`` (speedup and energy ratio against the
    dense model on the same mapping and array), see :func:`imcompress.sweep.plots.write_plots`.
    """
    sweep_dir = Path(sweep_dir)
    rows = [job_row(job) for job in discover_jobs(sweep_dir)]
    add_dense_reference(rows)
    report = SweepReport(sweep_dir, rows, write_table(rows, sweep_dir / TABLE_FILE))
    report.accuracy = accuracy_column(
        [row for row in rows if row["status"] == "completed"], accuracy
    )
    if not rows:
        report.messages.append(f"no jobs found in {sweep_dir} (no multirun.yaml, no job folders)")
    elif plots:
        result = write_plots(rows, report.accuracy, sweep_dir, x_axis=x_axis)
        report.plots, report.messages = result.files, result.messages
    return report


def format_report(report: SweepReport) -> str:
    """A short human summary: counts by status, each failure and why, where the files are."""
    counts = report.counts
    order = ("completed", "failed", "requeued", "interrupted", "running", "pending", "missing")
    parts = [f"{counts[state]} {state}" for state in order if counts.get(state)]
    parts += [f"{n} {state}" for state, n in counts.items() if state not in order]
    lines = [f"Sweep {report.sweep_dir}: {len(report.rows)} jobs: {', '.join(parts) or 'none'}"]
    for row in report.failed:
        lines.append(
            f"  FAILED #{row['job']} [{row['overrides']}]: {_first_lines(row.get('error'))}"
        )
    lines.append(f"  table: {report.table}")
    lines += [f"  plot:  {path}" for path in report.plots]
    lines += [f"  note:  {message}" for message in report.messages]
    return "\n".join(lines)


def _first_lines(error: Any, count: int = 2) -> str:
    lines = str(error or "no error recorded").strip().splitlines() or ["no error recorded"]
    more = f" (+{len(lines) - count} more lines in summary.json)" if len(lines) > count else ""
    return " | ".join(line.strip() for line in lines[:count]) + more
