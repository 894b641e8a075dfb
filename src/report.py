"""Rebuild a sweep's table and plots from its folder (finished or still running).

    python src/report.py outputs/smoke/multiruns/2026-01-01_12-00-00
    python src/report.py SWEEP_DIR --accuracy val/acc_best --no-plots
    python src/report.py SWEEP_DIR --x speedup --format latex > sweep_table.tex

Prints the sweep table (one row per job: status, the overrides that vary, method, accuracy,
parameters, and per mapping cycles, speedup vs the dense model on the same mapping and array,
speedup vs the dense model on im2col, and energy) in the chosen format, then a short summary. Writes SWEEP_DIR/sweep_summary.csv (every column: overrides,
status and error, metrics, cost totals, parameters, SLURM job id) and the plots
(acc_vs_cycles.png, acc_vs_energy.png; with --x speedup acc_vs_speedup.png,
acc_vs_energy_ratio.png). Jobs with no summary.json yet are listed as running (folder exists) or
missing/pending (not started); a job whose summary.json or .hydra/overrides.yaml is corrupt is
listed as ``corrupt record`` without results, and named with the file and field on stderr
(``skipped 1 run folder: ...``). With --format md, latex or csv only the table goes to stdout (the
summary goes to stderr). Exit status: 0, or 1 when a job failed, 2 when SWEEP_DIR is not a sweep
folder.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from imcompress.reporting.tables import TableFormat
from imcompress.runs.folder import skipped_note
from imcompress.sweep.aggregate import corrupt_jobs, sweep_table
from imcompress.sweep.plots import X_AXES
from imcompress.sweep.report import build_report, format_report


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, build the report, print its summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "sweep_dir", type=Path, help="a multirun folder, e.g. outputs/<name>/multiruns/<time>"
    )
    parser.add_argument(
        "--accuracy",
        default=None,
        help="metric on the y axis (default: test/acc, else val/acc_best, else val/acc)",
    )
    parser.add_argument("--no-plots", action="store_true", help="write the table only")
    parser.add_argument(
        "--x",
        choices=X_AXES,
        default="cost",
        help="x axis of the plots: cost (cycles, energy) or speedup (speedup and energy ratio "
        "against the dense model on the same mapping and array)",
    )
    parser.add_argument(
        "--format",
        choices=[f.value for f in TableFormat],
        default=TableFormat.console.value,
        help="how the sweep table is printed",
    )
    args = parser.parse_args(argv)
    try:
        report = build_report(args.sweep_dir, args.accuracy, plots=not args.no_plots, x_axis=args.x)
    except FileNotFoundError as error:
        print(f"report: {error}", file=sys.stderr)
        return 2
    fmt = TableFormat(args.format)
    if report.rows:
        print(sweep_table(report.rows, report.accuracy).render(fmt))
    summary = sys.stdout if fmt == TableFormat.console else sys.stderr
    print(format_report(report), file=summary)
    corrupt = corrupt_jobs(report.rows)
    if corrupt:  # their rows show no results; say why, naming the file and the field
        print(skipped_note(corrupt), file=sys.stderr)
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
