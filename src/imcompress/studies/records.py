"""Committed study records: per job only what the tables and figures read, no machine path.

A record (``<records>/<job>.json``) holds the job's list entry (name, seed, priority, overrides
with placeholders), status, metrics, compression totals (the achieved kept fraction), a compact
per-layer list, the plan file it used (copied to ``<root>/plans/``) and the SDK / VW-SDK costs on
``imc64`` and ``imc256`` of the model it tested, computed here with the crossbar estimator so the
job itself runs one hw preset only.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from imcompress.runs import atomic
from imcompress.studies.runner import JobSpec, read_summary

HW_PRESETS = ("imc64", "imc256")
MAPPINGS = ("sdk", "vwsdk")
SUMMARY_KEYS = ("status", "metrics", "epochs", "wall_time_s", "git_commit", "tested", "parameters")
COMPRESSION_KEYS = (
    "method", "options", "params_before", "params_after", "compression_ratio",
    "model_params_before", "model_params_after", "sparsity", "channel_sparsity",
    "bn_recalibration",
)  # fmt: skip
LAYER_KEYS = ("name", "rank", "groups", "sparsity", "params_before", "params_after")


def relative_paths(value: Any, places: Mapping[str, str]) -> Any:
    """``value`` (JSON data) with every absolute path made relative: a path under one of
    ``places`` (placeholder -> folder) becomes ``<placeholder>/rest`` (the folder itself
    ``<placeholder>``), any other absolute path is dropped (None)."""
    if isinstance(value, dict):
        return {key: relative_paths(item, places) for key, item in value.items()}
    if isinstance(value, list):
        return [relative_paths(item, places) for item in value]
    if not isinstance(value, str) or not value.startswith("/"):
        return value
    path = Path(value)
    for name, folder in places.items():
        if path == Path(folder):
            return f"<{name}>"
        if path.is_relative_to(folder):
            return f"<{name}>/{path.relative_to(folder).as_posix()}"
    return None


def compression_record(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The compression totals, options and a compact per-layer list of a job's summary."""
    compression = dict(summary.get("compression") or {})
    out = {key: compression[key] for key in COMPRESSION_KEYS if key in compression}
    out["layers"] = [
        {key: layer.get(key) for key in LAYER_KEYS} for layer in compression.get("layers") or []
    ]
    before, after = compression.get("params_before"), compression.get("params_after")
    out["kept"] = float(after) / float(before) if before and after is not None else None
    return out


def costs_of(model: Any, shape: tuple[int, int, int]) -> dict[str, dict[str, dict[str, float]]]:
    """``hw -> mapping -> {cycles, energy_uj}`` per image of ``model`` (its masks counted) on
    input ``shape`` (C, H, W)."""
    from imcompress.crossbar.cost_report import build_report
    from imcompress.crossbar.extract import extract_layers
    from imcompress.studies.frontier import load_hw

    table = extract_layers(model, shape)
    costs: dict[str, dict[str, dict[str, float]]] = {}
    for hw in HW_PRESETS:
        totals = build_report(table, load_hw(hw), list(MAPPINGS)).totals()
        costs[hw] = {
            mapping: {
                "cycles": float(totals[f"{mapping}/cycles"]),
                "energy_uj": float(totals[f"{mapping}/energy_uj"]),
            }
            for mapping in MAPPINGS
        }
    return costs


def model_costs(job_dir: Path) -> dict[str, dict[str, dict[str, float]]]:
    """:func:`costs_of` the model a ``train.py`` job tested (its tested checkpoint's weights and
    masks, rebuilt from the job folder)."""
    from imcompress.runs.folder import RunFolder

    folder = RunFolder(job_dir.absolute())
    data = folder.config().data
    channels, size = int(data.channels), int(data.image_size)
    model = folder.rebuild_model(channels, int(data.num_classes))
    return costs_of(model, (channels, size, size))


def copy_plan(plan: str | None, plans_dir: Path, root: Path) -> str | None:
    """Copy the plan file a job used into ``<root>/plans/``; its name there (None: no plan)."""
    if not plan:
        return None
    source = Path(plan)
    if not source.is_absolute():
        source = plans_dir / source
    target = root / "plans" / source.name
    if not target.is_file() or target.read_bytes() != source.read_bytes():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return f"plans/{source.name}"


def job_record(
    job: JobSpec,
    job_dir: Path,
    places: Mapping[str, str],
    root: Path,
    costs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The record of a completed job (see the module docstring); ``costs`` default: those of
    the model the ``train.py`` job tested (:func:`model_costs`)."""
    summary = read_summary(job_dir) or {}
    if summary.get("status") != "completed":
        raise ValueError(f"{job_dir}: not completed (status {summary.get('status')!r})")
    config = summary.get("config") or {}
    plan_file = ((summary.get("compression") or {}).get("options") or {}).get("plan")
    record: dict[str, Any] = {
        "job": job.key,
        "name": job.name,
        "seed": job.seed,
        "priority": job.priority,
        "overrides": list(job.overrides),
        **{key: summary.get(key) for key in SUMMARY_KEYS},
        "config": config,
        "compression": compression_record(summary),
        "plan": copy_plan(plan_file, Path(places.get("plans", root)), root),
    }
    record["costs"] = dict(costs) if costs is not None else model_costs(job_dir)
    return relative_paths(record, {**places, "job": str(job_dir.absolute())})


def write_record(record: Mapping[str, Any], records_dir: Path) -> Path:
    """``<records_dir>/<job>.json`` (sorted keys, atomically)."""
    records_dir.mkdir(parents=True, exist_ok=True)
    path = records_dir / f"{record['job']}.json"
    atomic.write_text(path, json.dumps(record, indent=1, sort_keys=True, allow_nan=False) + "\n")
    return path


def read_records(records_dir: Path) -> list[dict[str, Any]]:
    """Every record of ``records_dir``, sorted by job name (ValueError naming a bad file)."""
    records = []
    for path in sorted(records_dir.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except ValueError as error:
            raise ValueError(f"{path}: not a JSON record ({error})") from None
        if not isinstance(data, dict) or "job" not in data:
            raise ValueError(f"{path}: not a study record (no 'job' key)")
        records.append(data)
    return records
