"""``sweep_summary.csv``: one row per job of a sweep (overrides, status, metrics, cost, parameters)."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from imcompress.crossbar.options import Method
from imcompress.reporting.tables import Column, TextTable, count, significant
from imcompress.runs.atomic import atomic_open
from imcompress.sweep.jobs import CORRUPT, SweepJob

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
MAPPING_ORDER = tuple(m.value for m in Method)
_COST_KEY = re.compile(rf"^{re.escape(COST_PREFIX)}(?P<mapping>[^/]+)/(?P<quantity>[^/]+)$")
CORRUPT_SUMMARY = CORRUPT  # the status of a job whose summary.json or overrides.yaml is corrupt


def job_status(job: SweepJob) -> tuple[str, str | None]:
    """Status and error of ``job`` for the table (a corrupt record: its file and field)."""
    return job.status, job.error


def corrupt_jobs(rows: Iterable[dict[str, Any]]) -> list[str]:
    """``<file>: <problem>`` of every row whose record is corrupt (they show no results)."""
    return [str(row.get("error")) for row in rows if row.get("status") == CORRUPT]


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
    with atomic_open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({key: "" if row.get(key) is None else row.get(key) for key in columns})
    return path


def accuracy_column(rows: Iterable[dict[str, Any]], preferred: str | None = None) -> str | None:
    """The accuracy to plot: ``preferred`` if given, else test/acc, val/acc_best, val/acc (first present)."""
    rows = list(rows)
    candidates = (preferred,) if preferred else ACCURACY_PREFERENCE
    for name in candidates:
        if any(isinstance(row.get(name), (int, float)) for row in rows):
            return name
    return None


def number(value: Any) -> float | None:
    """``value`` as a float when it is a real number (not a bool), else None."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def cost_mappings(rows: Sequence[dict[str, Any]], quantity: str) -> list[str]:
    """Mappings with a ``hw/<mapping>/<quantity>`` value in any row (dense and naive references excluded)."""
    found = {
        match["mapping"]
        for row in rows
        for key, value in row.items()
        if (match := _COST_KEY.match(key))
        and match["quantity"] == quantity
        and number(value) is not None
    }
    found = {
        name for name in found if not name.endswith("_naive") and not name.startswith("dense_")
    }
    return sorted(
        found,
        key=lambda name: (
            MAPPING_ORDER.index(name) if name in MAPPING_ORDER else len(MAPPING_ORDER),
            name,
        ),
    )


def add_dense_reference(rows: Sequence[dict[str, Any]]) -> None:
    """Fill ``hw/<mapping>/speedup_vs_dense`` and ``energy_ratio_vs_dense`` (against the dense
    model on the same mapping and array) where a job's summary lacks them, in place.

    Summaries written since the cost report costs the dense model per mapping have them (and
    ``hw/dense_<mapping>/*``); for older ones the reference is a ``compression=none`` job of the
    sweep with the same model, data and hw preset, if there is one.
    """
    dense_jobs = {
        _identity(row): row
        for row in rows
        if row.get("status") == "completed" and str(row.get("compression") or "none") == "none"
    }
    for row in rows:
        for mapping in cost_mappings([row], "cycles"):
            prefix = f"{COST_PREFIX}{mapping}/"
            if number(row.get(f"{prefix}speedup_vs_dense")) is not None:
                continue
            dense = dense_jobs.get(_identity(row), {})
            dense_cycles = number(row.get(f"{COST_PREFIX}dense_{mapping}/cycles")) or number(
                dense.get(f"{prefix}cycles")
            )
            dense_energy = number(row.get(f"{COST_PREFIX}dense_{mapping}/energy_uj")) or number(
                dense.get(f"{prefix}energy_uj")
            )
            cycles, energy = (
                number(row.get(f"{prefix}cycles")),
                number(row.get(f"{prefix}energy_uj")),
            )
            if dense_cycles and cycles:
                row[f"{COST_PREFIX}dense_{mapping}/cycles"] = dense_cycles
                row[f"{prefix}speedup_vs_dense"] = dense_cycles / cycles
            if dense_energy and energy is not None:
                row[f"{COST_PREFIX}dense_{mapping}/energy_uj"] = dense_energy
                row[f"{prefix}energy_ratio_vs_dense"] = energy / dense_energy


def _identity(row: dict[str, Any]) -> tuple[Any, ...]:
    return row.get("model"), row.get("data"), row.get("hw")


def reference_note(rows: Sequence[dict[str, Any]]) -> str:
    """``speedup vs dense on the same mapping and array (imc256)``: what the speedups compare to."""
    presets = sorted({str(row["hw"]) for row in rows if row.get("hw")})
    where = f" ({', '.join(presets)})" if presets else ""
    return f"speedup and energy ratio vs the dense model on the same mapping and array{where}"


def varying_overrides(rows: Sequence[dict[str, Any]], limit: int = 40) -> list[str]:
    """Per row, the ``key=value`` overrides that are not the same in every row (at most ``limit`` characters)."""
    split = [str(row.get("overrides") or "").split() for row in rows]
    common = set.intersection(*(set(items) for items in split)) if split else set()
    return [" ".join(item for item in items if item not in common)[:limit] for items in split]


def sweep_table(rows: Sequence[dict[str, Any]], accuracy: str | None) -> TextTable:
    """The compact sweep table printed by ``src/report.py``: one row per job.

    Columns: job, status, the overrides that vary, method, accuracy, parameters, and per mapping
    the cycles, the speedup against the dense model on the same mapping and array and against it
    on im2col, the energy and its ratio to the dense model's on that mapping (when known; see
    :func:`add_dense_reference`).
    """

    def text(value: Any) -> str:
        return "" if value is None else str(value)

    columns = [
        Column("job", text),
        Column("status", text, "l"),
        Column("overrides", text, "l"),
        Column("method", text, "l"),
    ]
    keys: list[str | None] = [None, None, None, "compression"]
    if accuracy:
        columns.append(Column(accuracy))
        keys.append(accuracy)
    if any(number(row.get("parameters/total")) is not None for row in rows):
        columns.append(Column("params", count))
        keys.append("parameters/total")
    for mapping in cost_mappings(rows, "cycles"):
        quantities = [
            ("cycles", f"{mapping} cycles", count),
            ("speedup_vs_dense", f"{mapping} speedup vs dense {mapping}", significant),
            ("speedup_vs_im2col", f"{mapping} speedup vs dense im2col", significant),
            ("energy_uj", f"{mapping} energy (uJ)", significant),
            ("energy_ratio_vs_dense", f"{mapping} energy vs dense {mapping}", significant),
        ]
        if mapping == "im2col":  # the same reference twice
            quantities = [q for q in quantities if q[0] != "speedup_vs_im2col"]
        for quantity, header, show in quantities:
            key = f"{COST_PREFIX}{mapping}/{quantity}"
            if any(number(row.get(key)) is not None for row in rows):
                columns.append(Column(header, show))
                keys.append(key)
    table = TextTable(columns, [], title=f"{len(rows)} jobs; {reference_note(rows)}")
    labels = varying_overrides(rows)
    for row, label in zip(rows, labels, strict=True):
        values: list[Any] = [row.get("job"), row.get("status"), label]
        values += [row.get(key) if key else None for key in keys[3:]]
        table.add([v if v is not None else ("" if i < 4 else None) for i, v in enumerate(values)])
    return table
