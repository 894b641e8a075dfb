"""The jobs of a multirun folder: which were planned, which ran, and how each one ended.

Sources, most authoritative first: each job's ``summary.json`` (written by the pipeline),
``job_status.json`` (written by the sweep callback when a job failed before the pipeline could
record it), ``slurm_jobs.json`` (the SLURM launcher's view: submitted ids, jobs that died without a
result) and ``multirun.yaml`` (the planned sweep, so jobs that never started show up as missing).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from imcompress.runs.folder import OVERRIDES_FILE, CorruptRecordError, RunFolder

JOB_STATUS_FILE = "job_status.json"
MANIFEST_FILE = "slurm_jobs.json"

# Job states in sweep tables. "running": a job folder without a final summary (still running, or
# killed without a trace); "missing": planned but no folder yet (pending, or never started).
FINAL_STATES = ("completed", "failed", "interrupted")
CORRUPT = "corrupt record"  # a summary.json or .hydra/overrides.yaml that cannot be trusted


@dataclass
class SweepJob:
    """One job of a sweep, with whatever it left behind."""

    num: int | None
    overrides: list[str]
    directory: Path | None
    summary: dict[str, Any] = field(default_factory=dict)
    status: str = "missing"
    error: str | None = None
    slurm_job_id: str | None = None
    problem: str | None = None  # why the job's record is corrupt (file and field), if it is

    @property
    def overrides_text(self) -> str:
        return " ".join(self.overrides)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None


def planned_overrides(sweep_dir: Path) -> list[list[str]] | None:
    """Every job's overrides in launch order, expanded from ``multirun.yaml``; None if unknown."""
    multirun = _read_yaml(sweep_dir / "multirun.yaml")
    try:
        arguments = list(multirun["hydra"]["overrides"]["task"])
    except (TypeError, KeyError):
        return None
    try:
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
        from hydra.core.override_parser.overrides_parser import OverridesParser

        parsed = OverridesParser.create().parse_overrides(arguments)
        batches = BasicSweeper.split_arguments(parsed, None)
    except Exception:  # a custom sweeper's syntax: fall back to the job folders
        return None
    return [list(job) for batch in batches for job in batch]


def _job_folders(sweep_dir: Path) -> list[tuple[int | None, list[str], Path, str | None]]:
    """(number, overrides, folder, why its overrides are unreadable) of every job folder."""
    folders = []
    for directory in sorted(
        path for path in sweep_dir.iterdir() if path.is_dir() and not path.name.startswith(".")
    ):
        run = RunFolder(directory)
        problem = None
        try:
            overrides = run.overrides()
        except CorruptRecordError as error:
            overrides, problem = [], str(error)
        if problem is None and not run.has_summary and not (directory / OVERRIDES_FILE).is_file():
            continue  # not a job folder
        folders.append((run.job_number(), overrides, directory, problem))
    return folders


def _status_of(job: SweepJob, manifest_entry: dict[str, Any] | None) -> None:
    """Fill ``status``/``error`` from the job's files and the launcher's manifest."""
    if job.directory is not None:
        try:
            summary = RunFolder(job.directory).summary()
        except CorruptRecordError as error:
            summary, job.problem = {}, job.problem or str(error)
        if job.problem is not None:
            job.status, job.error = CORRUPT, job.problem
        elif summary:
            job.summary = summary
            job.status = str(summary.get("status", "running"))
            job.error = summary.get("error")
        else:
            job.status = "running"
        recorded = _read_json(job.directory / JOB_STATUS_FILE)
        if recorded and job.status not in (*FINAL_STATES, CORRUPT):
            job.status = str(recorded.get("status", "failed"))
            job.error = recorded.get("error")
        slurm = job.summary.get("slurm") or {}
        job.slurm_job_id = slurm.get("slurm_job_id") or None
        array_id, task_id = slurm.get("slurm_array_job_id"), slurm.get("slurm_array_task_id")
        if array_id and task_id is not None:
            job.slurm_job_id = f"{array_id}_{task_id}"
    if manifest_entry:
        job.slurm_job_id = job.slurm_job_id or manifest_entry.get("job_id")
        launcher_state = manifest_entry.get("state")
        if launcher_state == "failed" and job.status not in (*FINAL_STATES, CORRUPT):
            job.status = "failed"
            job.error = manifest_entry.get("error") or job.error
        elif launcher_state == "submitted" and job.directory is None:
            job.status = "pending"


def discover_jobs(sweep_dir: Path) -> list[SweepJob]:
    """All jobs of ``sweep_dir``, planned or found, ordered by job number."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"{sweep_dir} is not a folder (expected a multirun folder)")
    manifest = (_read_json(sweep_dir / MANIFEST_FILE) or {}).get("jobs", {})
    found = _job_folders(sweep_dir)
    planned = planned_overrides(sweep_dir)
    jobs: list[SweepJob] = []
    by_num = {num: (overrides, directory, problem) for num, overrides, directory, problem in found}
    used: set[Path] = set()
    for num, overrides in enumerate(planned or []):
        overrides_found, directory, problem = by_num.get(num, (overrides, None, None))
        if directory is not None:
            used.add(directory)
        jobs.append(SweepJob(num, overrides_found or overrides, directory, problem=problem))
    for found_num, found_overrides, directory, problem in found:
        if directory not in used:
            jobs.append(SweepJob(found_num, found_overrides, directory, problem=problem))
    for job in jobs:
        _status_of(job, manifest.get(str(job.num)) if job.num is not None else None)
    return sorted(
        jobs,
        key=lambda job: (
            job.num is None,
            job.num if job.num is not None else 0,
            str(job.directory),
        ),
    )
