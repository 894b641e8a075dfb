"""``sweep_summary.csv``: one row per job of a sweep (overrides, status, metrics, cost, parameters)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from imcompress.sweep.jobs import SUMMARY_FILE, SweepJob

TABLE_FILE = "sweep_summary.csv"
COST_PREFIX = (
    "hw/"  # cost totals, named like the W&B metrics: hw/<mapping>/cycles, hw/<mapping>/energy_uj
)
CONFIG_KEYS = (
    "name",
    "model",
    "data",
    "compression",
    "hw",
    "group",
    "rank",
    "sparsity",
    "seed",
    "max_epochs",
)
LEADING_COLUMNS = (
    "job",
    "status",
    "error",
    "overrides",
    "slurm_job_id",
    "restarts",
    *CONFIG_KEYS,
    "epochs",
    "wall_time_s",
)
ACCURACY_PREFERENCE = ("test/acc", "val/acc_best", "val/acc", "best/val/acc")
CORRUPT_SUMMARY = "corrupt summary"  # summary.json exists but is not a JSON object


def job_status(job: SweepJob) -> tuple[str, str | None]:
    """Status and error of ``job`` for the table; a summary.json that exists but cannot be read
    is reported as ``corrupt summary`` naming the file (not as ``running``)."""
    if job.status != "running" or job.directory is None:
        return job.status, job.error
    path = job.directory / SUMMARY_FILE
    if not path.exists():
        return job.status, job.error
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        return CORRUPT_SUMMARY, f"{path} cannot be read: {type(error).__name__}: {error}"
    if not isinstance(data, dict):
        return CORRUPT_SUMMARY, f"{path} holds a {type(data).__name__}, not a JSON object"
    return job.status, job.error


def _flat(prefix: str, values: Any) -> dict[str, Any]:
    if not isinstance(values, dict):
        return {}
    return {
        f"{prefix}{key}": value
        for key, value in values.items()
        if not isinstance(value, (dict, list))
    }


def job_row(job: SweepJob) -> dict[str, Any]:
    """The table row of one job; keys absent from its summary are simply missing."""
    summary = job.summary
    slurm = summary.get("slurm") or {}
    status, error = job_status(job)
    row: dict[str, Any] = {
        "job": job.num,
        "status": status,
        "error": error,
        "overrides": job.overrides_text,
        "slurm_job_id": job.slurm_job_id,
        "restarts": slurm.get("slurm_restart_count"),
        **{
            key: value for key, value in (summary.get("config") or {}).items() if key in CONFIG_KEYS
        },
        "epochs": summary.get("epochs"),
        "wall_time_s": summary.get("wall_time_s"),
    }
    row.update(_flat("", summary.get("metrics")))
    best = summary.get("best") or {}
    if best.get("val/acc") is not None:
        row["best/val/acc"] = best["val/acc"]
    row.update(_flat(COST_PREFIX, summary.get("cost")))
    row.update(_flat("parameters/", summary.get("parameters")))
    compression = summary.get("compression") or {}
    for key in ("compression_ratio", "model_params_after"):
        if compression.get(key) is not None:
            row[f"compression/{key}"] = compression[key]
    row["directory"] = str(job.directory) if job.directory is not None else None
    return row


def table_columns(rows: Iterable[dict[str, Any]]) -> list[str]:
    """Leading identity columns, then every other column in first-seen order, directory last."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    middle = [key for key in seen if key not in LEADING_COLUMNS and key != "directory"]
    return [*LEADING_COLUMNS, *middle, "directory"]


def write_table(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """Write ``rows`` as CSV (atomically); empty cells for missing values."""
    columns = table_columns(rows)
    temporary = path.with_suffix(".csv.tmp")
    with open(temporary, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({key: "" if row.get(key) is None else row.get(key) for key in columns})
    temporary.replace(path)
    return path


def accuracy_column(rows: Iterable[dict[str, Any]], preferred: str | None = None) -> str | None:
    """The accuracy to plot: ``preferred`` if given, else test/acc, val/acc_best, val/acc (first present)."""
    rows = list(rows)
    candidates = (preferred,) if preferred else ACCURACY_PREFERENCE
    for name in candidates:
        if any(isinstance(row.get(name), (int, float)) for row in rows):
            return name
    return None
