"""What a job tells the user and leaves behind: start banner, final table, ``summary.json``."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

SUMMARY_FILE = "summary.json"
# Cost totals shown in the final table (all of them are in summary.json and cost_report.*).
SHOWN_COST_SUFFIXES = ("/cycles", "/energy_uj", "/speedup_vs_im2col", "/utilization")


def make_console() -> Console:
    """A rich console; wide enough in logs (non-terminals) that paths are not cut."""
    return Console() if sys.stdout.isatty() else Console(width=160)


def git_commit(start: Path | None = None) -> str | None:
    """The commit of the source tree (suffixed ``-dirty`` with uncommitted changes), or None."""
    where = str(start or Path(__file__).resolve().parent)

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=where, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}-dirty" if dirty else commit


def to_number(value: Any) -> Any:
    """Tensors and numpy scalars to plain floats (NaN/inf to None) for JSON."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def slurm_job() -> dict[str, str]:
    """SLURM identifiers of this job, when it runs under SLURM."""
    keys = ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_RESTART_COUNT")
    return {key.lower(): os.environ[key] for key in keys if key in os.environ}


def write_summary(output_dir: Path, summary: Mapping[str, Any]) -> Path:
    """Write ``summary.json`` atomically (a crash never leaves half a file)."""
    path = output_dir / SUMMARY_FILE
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(summary, indent=2, default=str, allow_nan=False) + "\n")
    temporary.replace(path)
    return path


def print_banner(console: Console, essentials: Mapping[str, Any], extra: Mapping[str, Any]) -> None:
    """One table with what is about to run."""
    table = Table(title="imcompress: starting", show_header=False, title_justify="left")
    table.add_column(style="bold cyan")
    table.add_column()
    for key, value in {**essentials, **extra}.items():
        if value is not None:
            table.add_row(str(key), str(value))
    console.print(table)


def print_final(console: Console, summary: Mapping[str, Any]) -> None:
    """The end-of-run table: metrics, best epoch, parameters, cost totals, where files went."""
    table = Table(title="imcompress: summary", show_header=False, title_justify="left")
    table.add_column(style="bold green")
    table.add_column()
    table.add_row("status", str(summary.get("status")))
    for key, value in (summary.get("metrics") or {}).items():
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    best = summary.get("best") or {}
    if best.get("checkpoint"):
        table.add_row("best checkpoint", str(best["checkpoint"]))
    params = summary.get("parameters") or {}
    if params:
        table.add_row("parameters", f"{params.get('total', 0):,}")
    for key, value in (summary.get("cost") or {}).items():
        if isinstance(value, (int, float)) and (
            key.endswith(SHOWN_COST_SUFFIXES) or key == "arrays"
        ):
            table.add_row(f"hw/{key}", f"{value:,.4g}")
    table.add_row("wall time", f"{summary.get('wall_time_s', 0):.1f} s")
    table.add_row("job dir", str(summary.get("output_dir")))
    console.print(table)
