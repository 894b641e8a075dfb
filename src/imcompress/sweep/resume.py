"""Resumable multiruns: what each job of a sweep rerun into the same folder has to do.

Rerunning the same command with the same ``hydra.sweep.dir`` skips every job whose
``summary.json`` says ``completed`` (its folder is not touched), resumes the jobs that left
checkpoints (``ckpt_path=auto`` is added to their overrides) and starts the others afresh. A job
folder that holds a different job (other overrides) stops the sweep before anything runs. Used by
both launchers (:mod:`hydra_plugins.imcompress_sweep`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hydra.core.utils import JobReturn, JobStatus
from hydra.types import HydraContext
from omegaconf import DictConfig, open_dict

from imcompress.runs.folder import (
    CHECKPOINT_DIR,
    OVERRIDES_FILE,
    SUMMARY_FILE,
    CorruptRecordError,
    RunFolder,
)

log = logging.getLogger(__name__)

RESUME_OVERRIDE = "ckpt_path=auto"  # newest valid checkpoint of the job's folder
Action = Literal["fresh", "resume", "skip"]


class SweepFolderMismatchError(ValueError):
    """A job folder of the sweep folder holds a job with other overrides."""


@dataclass
class PlannedJob:
    """One job of a (re)launched sweep: its number, folder, what to do and the overrides to run."""

    num: int
    overrides: list[str]
    directory: Path
    action: Action
    summary: dict[str, Any] = field(default_factory=dict)


def job_directory(
    config: DictConfig, hydra_context: HydraContext, overrides: Sequence[str], num: int
) -> tuple[Path, DictConfig]:
    """The folder job ``num`` of this sweep writes to (as Hydra's launchers compute it) and its
    composed config."""
    sweep_config = hydra_context.config_loader.load_sweep_config(config, list(overrides))
    with open_dict(sweep_config):
        sweep_config.hydra.job.id = num
        sweep_config.hydra.job.num = num
    directory = Path(str(sweep_config.hydra.sweep.dir)) / str(sweep_config.hydra.sweep.subdir)
    return directory, sweep_config


def _comparable(overrides: Sequence[str]) -> list[str]:
    return [item for item in overrides if not str(item).startswith(("ckpt_path=", "+ckpt_path="))]


def plan_job(num: int, overrides: Sequence[str], directory: Path) -> PlannedJob:
    """What job ``num`` does given what its folder holds (see the module docstring).

    Only ``.hydra/overrides.yaml`` (safe YAML) and ``summary.json`` are read; the saved config is
    never instantiated (the job is composed again from the sweep's own overrides). A folder whose
    overrides file is corrupt cannot be matched to the job and stops the sweep."""
    overrides = list(overrides)
    run = RunFolder(directory)
    try:
        recorded = run.overrides() if (directory / OVERRIDES_FILE).is_file() else None
    except CorruptRecordError as error:
        raise SweepFolderMismatchError(
            f"job #{num}: {error}; cannot tell which job {directory} holds. Rerun into a new "
            "hydra.sweep.dir (leave it at its default). Nothing was run."
        ) from None
    if recorded is not None and _comparable(recorded) != _comparable(overrides):
        raise SweepFolderMismatchError(
            f"job #{num}: {directory} holds a job with overrides {recorded}, but this sweep "
            f"would run {overrides} there. Rerun the same command to resume that sweep, or use "
            "a new hydra.sweep.dir (leave it at its default). Nothing was run."
        )
    try:
        summary = run.summary()
    except CorruptRecordError as error:
        log.warning(f"#{num}: {error}; the job runs again")
        summary = {}
    if summary.get("status") == "completed":
        return PlannedJob(num, overrides, directory, "skip", summary)
    checkpoints = directory / CHECKPOINT_DIR
    if checkpoints.is_dir() and any(checkpoints.glob("*.ckpt")):
        if not any(str(item).startswith(("ckpt_path=", "+ckpt_path=")) for item in overrides):
            overrides = [*overrides, RESUME_OVERRIDE]
        return PlannedJob(num, overrides, directory, "resume")
    return PlannedJob(num, overrides, directory, "fresh")


def plan_sweep(
    config: DictConfig,
    hydra_context: HydraContext,
    job_overrides: Sequence[Sequence[str]],
    initial_job_idx: int,
) -> list[PlannedJob]:
    """Plan every job of a launch batch; raises before anything runs if a folder mismatches."""
    plans = []
    for offset, overrides in enumerate(job_overrides):
        num = initial_job_idx + offset
        directory, _ = job_directory(config, hydra_context, overrides, num)
        plan = plan_job(num, overrides, directory)
        if plan.action == "skip":
            log.info(f"#{num} skipped: completed earlier ({directory / SUMMARY_FILE})")
        elif plan.action == "resume":
            log.info(f"#{num} resumes from its checkpoints in {directory / 'checkpoints'}")
        plans.append(plan)
    return plans


def skipped_return(plan: PlannedJob, config: DictConfig) -> JobReturn:
    """A completed JobReturn for a skipped job; its value is the job's ``optimized_metric``."""
    ret = JobReturn(
        overrides=plan.overrides,
        working_dir=str(plan.directory),
        task_name=str(config.hydra.job.name),
        status=JobStatus.COMPLETED,
    )
    name = config.get("optimized_metric")
    value = (plan.summary.get("metrics") or {}).get(name) if name else None
    ret.return_value = float(value) if isinstance(value, (int, float)) else None
    return ret


def contiguous_batches(plans: Sequence[PlannedJob]) -> list[list[PlannedJob]]:
    """Runs of consecutive job numbers among the jobs that are not skipped (a launcher numbers
    the jobs of one batch consecutively)."""
    batches: list[list[PlannedJob]] = []
    for plan in plans:
        if plan.action == "skip":
            continue
        if batches and batches[-1][-1].num + 1 == plan.num:
            batches[-1].append(plan)
        else:
            batches.append([plan])
    return batches
