"""Rebuild a sweep's table and plots from its folder (finished or still running).

    python src/report.py outputs/smoke/multiruns/2026-01-01_12-00-00
    python src/report.py SWEEP_DIR --accuracy val/acc_best --no-plots

Writes SWEEP_DIR/sweep_summary.csv (one row per job: overrides, status and error, metrics, cost
totals, parameters, SLURM job id) and SWEEP_DIR/acc_vs_cycles.png, acc_vs_energy.png. Jobs with
no summary.json yet are listed as running (folder exists) or missing/pending (not started).
Exit status: 0, or 1 when a job failed, 2 when SWEEP_DIR is not a sweep folder.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

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
    args = parser.parse_args(argv)
    try:
        report = build_report(args.sweep_dir, args.accuracy, plots=not args.no_plots)
    except FileNotFoundError as error:
        print(f"report: {error}", file=sys.stderr)
        return 2
    print(format_report(report))
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
