"""The Hydra launcher behind ``hydra/launcher=slurm``: submitit's SLURM launcher, made robust.

Differences from ``hydra_plugins.hydra_submitit_launcher``'s ``SlurmLauncher``:

* checks the cluster before submitting (tools, ``SLURM_CONF``, controller, partition) and turns
  a refused ``sbatch`` into one clear message;
* waits for the array with :class:`~imcompress.sweep.watch.ArrayWatcher` (result files + ``squeue``,
  no accounting needed), so one crashed, killed or unschedulable job never stops the others from
  being collected; such jobs come back as failed :class:`~hydra.core.utils.JobReturn` objects;
* writes ``slurm_jobs.json`` in the sweep folder (job number -> SLURM id, overrides, state, logs);
* ``setup: null`` activates the virtual environment that runs the sweep on the compute node;
* its ``checkpoint`` (called by submitit on the timeout signal) records the requeue for the
  pipeline, which marks the job ``requeued`` instead of ``failed`` (see :mod:`.requeue`);
* a sweep rerun into the same folder submits only the jobs that did not complete, resuming those
  with checkpoints (:mod:`.resume`; ``hydra.launcher.resume=false`` turns that off).

:class:`ResumableLocalLauncher` (``hydra/launcher=local``) is Hydra's basic launcher (jobs one
after another in this process) with the same resume rule.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_launcher import BasicLauncher
from hydra.core.config_store import ConfigStore
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, setup_globals
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf, SlurmQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import BaseSubmititLauncher
from omegaconf import OmegaConf
from omegaconf.errors import InterpolationValidationError, ValidationError

from imcompress.sweep.jobs import MANIFEST_FILE
from imcompress.sweep.requeue import note_requeue, requeue_requested
from imcompress.sweep.resume import PlannedJob, contiguous_batches, plan_sweep, skipped_return
from imcompress.sweep.slurm import SlurmUnavailableError, check_cluster
from imcompress.sweep.watch import ArrayWatcher, WatchedTask

log = logging.getLogger(__name__)

REQUEUE_EXIT_CODE = 3  # exit status of a job that stopped because it was requeued


class SlurmJobError(RuntimeError):
    """A SLURM job that ended without running its task to the end (crash, kill, unschedulable)."""


def default_setup() -> list[str]:
    """sbatch setup lines used when ``setup`` is null: activate this interpreter's virtualenv."""
    lines = ["export PYTHONUNBUFFERED=1"]
    activate = Path(sys.prefix) / "bin" / "activate"
    if sys.prefix != sys.base_prefix and activate.is_file():
        lines.insert(0, f"source {shlex.quote(str(activate))}")
    return lines


@dataclass
class ImcompressSlurmConf(SlurmQueueConf):
    """Schema of ``hydra/launcher=slurm``: submitit's SLURM settings plus ``resume``."""

    _target_: str = "hydra_plugins.imcompress_sweep.SlurmLauncher"
    resume: bool = True  # a rerun into the same sweep folder submits only unfinished jobs


# Registered when Hydra imports the plugin shim (before it composes any config).
ConfigStore.instance().store(
    group="hydra/launcher", name="imcompress_slurm", node=ImcompressSlurmConf, provider="imcompress"
)


class ResumableLocalLauncher(BasicLauncher):
    """Hydra's basic launcher that, rerun into the same sweep folder, skips completed jobs and
    resumes the others from their checkpoints (:mod:`imcompress.sweep.resume`)."""

    def __init__(self, resume: bool = True) -> None:
        super().__init__()
        self.resume = resume

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        """Run the jobs that did not complete earlier; return one JobReturn per job, in order."""
        if not self.resume:
            return super().launch(job_overrides, initial_job_idx)
        assert self.config is not None and self.hydra_context is not None
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        plans = plan_sweep(self.config, self.hydra_context, job_overrides, initial_job_idx)
        returns = {
            plan.num: skipped_return(plan, self.config) for plan in plans if plan.action == "skip"
        }
        for batch in contiguous_batches(plans):
            results = super().launch([plan.overrides for plan in batch], batch[0].num)
            returns.update(zip([plan.num for plan in batch], results, strict=True))
        return [returns[plan.num] for plan in plans]


class SlurmLauncher(BaseSubmititLauncher):
    """Submit a Hydra multirun as one SLURM job array and collect every job's result."""

    _EXECUTOR = "slurm"

    def __init__(self, **params: Any) -> None:
        self.resume = bool(params.pop("resume", True))
        super().__init__(**params)
        if self.params.get("setup") is None:
            self.params["setup"] = default_setup()

    def __call__(self, *args: Any, **kwargs: Any) -> JobReturn:
        """Run one job on the compute node (submitit unpickles the launcher and calls this)."""
        ret = super().__call__(*args, **kwargs)
        if requeue_requested():
            # SLURM requeued this job while it unwound: leave no result file, so that the sweep
            # keeps waiting for the restarted job instead of collecting this interrupted one.
            raise SystemExit(REQUEUE_EXIT_CODE)
        return ret

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """Called in the job by submitit on the timeout/preemption signal: requeue the same job."""
        note_requeue()
        log.warning(
            "SLURM signal received: requeueing this job; it resumes from checkpoints/last.ckpt"
        )
        return super().checkpoint(*args, **kwargs)

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        """Submit the jobs as one array, wait for all of them, return one JobReturn per job."""
        assert self.config is not None
        check_cluster(self.params.get("partition"))
        self._check_values(job_overrides, initial_job_idx)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        plans = self._plan(job_overrides, initial_job_idx)
        skipped = {
            plan.num: skipped_return(plan, self.config) for plan in plans if plan.action == "skip"
        }
        plans_to_run = [plan for plan in plans if plan.action != "skip"]
        if not plans_to_run:
            log.info("Every job of this sweep completed earlier; nothing to submit")
            return [skipped[plan.num] for plan in plans]
        executor = self._make_executor()
        job_params: list[tuple[Any, ...]] = []
        for plan in plans_to_run:
            num, overrides = plan.num, plan.overrides
            log.info(f"\t#{num} : {' '.join(filter_overrides(overrides))}")
            job_params.append(
                (
                    list(overrides),
                    "hydra.sweep.dir",
                    num,
                    f"job_id_for_{num}",
                    Singleton.get_state(),
                )
            )
        try:
            jobs = executor.map_array(self, *zip(*job_params, strict=True))
        except Exception as error:  # submitit.core.utils.FailedJobError: sbatch refused the array
            raise SlurmUnavailableError(
                f"sbatch refused the job array: {str(error).strip()}\n"
                "Nothing was submitted. Check the hydra.launcher settings (partition, timeout_min, "
                "cpus_per_task, gpus_per_node, mem_gb, additional_parameters) against `sinfo`."
            ) from None
        nums = [plan.num for plan in plans_to_run]
        submitted_overrides = [plan.overrides for plan in plans_to_run]
        manifest = _Manifest(
            sweep_dir / MANIFEST_FILE, str(Path(str(self.params["submitit_folder"])).absolute())
        )
        for num, job, overrides in zip(nums, jobs, submitted_overrides, strict=True):
            manifest.add(
                num, job.job_id, list(overrides), str(job.paths.stdout), str(job.paths.stderr)
            )
        manifest.write()
        log.info(
            f"SLURM job array {jobs[0].job_id.split('_')[0]}: {len(jobs)} jobs; logs in {jobs[0].paths.folder.parent}"
        )
        collected = self._collect(jobs, nums, submitted_overrides, manifest)
        ran = dict(zip(nums, collected, strict=True))
        return [skipped[plan.num] if plan.num in skipped else ran[plan.num] for plan in plans]

    def _plan(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> list[PlannedJob]:
        """Every job with its action; without ``resume`` every job runs as given."""
        assert self.config is not None and self.hydra_context is not None
        if self.resume:
            return plan_sweep(self.config, self.hydra_context, job_overrides, initial_job_idx)
        return [
            PlannedJob(initial_job_idx + offset, list(overrides), Path(), "fresh")
            for offset, overrides in enumerate(job_overrides)
        ]

    def _check_values(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> None:
        """Refuse the sweep before anything is queued when a swept value fails a config schema.

        (A typo like ``group=abc`` would otherwise surface only when that job starts, possibly
        hours later.) Other resolution problems are left to the job, which records them.
        """
        assert self.hydra_context is not None and self.config is not None
        problems = []
        for offset, overrides in enumerate(job_overrides):
            config = self.hydra_context.config_loader.load_sweep_config(
                self.config, list(overrides)
            )
            for key in [key for key in config if key != "hydra"]:
                try:
                    value = config[key]
                    if OmegaConf.is_config(value):
                        OmegaConf.to_container(value, resolve=True)
                except (ValidationError, InterpolationValidationError) as error:
                    first = str(error).strip().splitlines()[0]
                    problems.append(
                        f"  #{initial_job_idx + offset} [{' '.join(overrides)}]: {first}"
                    )
                except Exception:  # left to the job, which records its own error
                    continue
        if problems:
            raise ValueError(
                "Invalid swept value(s); nothing was submitted:\n" + "\n".join(problems)
            )

    def _make_executor(self) -> Any:
        import submitit

        params = dict(self.params)
        init_keys = {"submitit_folder", "max_num_timeout"}
        executor = submitit.AutoExecutor(
            cluster=self._EXECUTOR,
            folder=params["submitit_folder"],
            slurm_max_num_timeout=params.get("max_num_timeout", 0),
        )
        base_keys = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(
            **{
                key if key in base_keys else f"{self._EXECUTOR}_{key}": value
                for key, value in params.items()
                if key not in init_keys
            }
        )
        return executor

    def _collect(
        self,
        jobs: Sequence[Any],
        nums: list[int],
        job_overrides: Sequence[Sequence[str]],
        manifest: _Manifest,
    ) -> list[JobReturn]:
        tasks = [WatchedTask(job.job_id, Path(job.paths.result_pickle)) for job in jobs]
        by_id = {
            task.job_id: (num, job, list(overrides))
            for task, num, job, overrides in zip(tasks, nums, jobs, job_overrides, strict=True)
        }
        returns: dict[str, JobReturn] = {}

        def on_done(task: WatchedTask) -> None:
            num, job, overrides = by_id[task.job_id]
            returns[task.job_id] = ret = _job_return(job, overrides, task)
            failed = ret.status != JobStatus.COMPLETED
            error = _short_error(ret._return_value) if failed else None
            manifest.finish(num, "failed" if failed else "completed", error)
            manifest.write()
            log.info(
                f"#{num} ({task.job_id}) {'failed: ' + (error or '') if failed else 'completed'}"
            )

        try:
            ArrayWatcher(tasks, on_done=on_done).run()
        except KeyboardInterrupt:
            array_id = jobs[0].job_id.split("_")[0]
            log.warning(
                f"Stopped waiting; the SLURM jobs keep running (cancel them with `scancel {array_id}`). "
                "Rebuild the sweep table later with `python src/report.py <sweep dir>`."
            )
            raise
        return [returns[task.job_id] for task in tasks]


def _job_return(job: Any, overrides: list[str], task: WatchedTask) -> JobReturn:
    """The JobReturn of a finished task: the job's own, or a failed one saying what happened."""
    assert task.outcome is not None
    if task.outcome.kind == "result":
        try:
            result = job.results()[0]
        except Exception as error:  # the job raised outside Hydra's task (e.g. while unpickling)
            return _failed(overrides, SlurmJobError(f"SLURM job {job.job_id} crashed: {error}"))
        if isinstance(result, JobReturn):
            return result
        return _failed(overrides, SlurmJobError(f"SLURM job {job.job_id} returned {result!r}"))
    tail = _tail(Path(job.paths.stderr))
    message = task.outcome.message + (
        f"\nlast lines of {job.paths.stderr}:\n{tail}" if tail else ""
    )
    return _failed(overrides, SlurmJobError(message))


def _failed(overrides: list[str], error: BaseException) -> JobReturn:
    ret = JobReturn(overrides=overrides, status=JobStatus.FAILED)
    ret.return_value = error
    return ret


def _short_error(error: Any) -> str:
    text = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)
    return text.strip().splitlines()[0][:500] if text.strip() else type(error).__name__


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class _Manifest:
    """``slurm_jobs.json``: what was submitted and how each job ended (merged across batches)."""

    def __init__(self, path: Path, submitit_folder: str) -> None:
        self.path = path
        self.data: dict[str, Any] = {"submitit_folder": submitit_folder, "jobs": {}}
        if path.exists():
            with contextlib.suppress(OSError, ValueError):
                self.data["jobs"] = json.loads(path.read_text()).get("jobs", {})

    def add(self, num: int, job_id: str, overrides: list[str], stdout: str, stderr: str) -> None:
        self.data["jobs"][str(num)] = {
            "job_id": job_id,
            "overrides": overrides,
            "state": "submitted",
            "error": None,
            "stdout": stdout,
            "stderr": stderr,
            "submitted_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }

    def finish(self, num: int, state: str, error: str | None) -> None:
        entry = self.data["jobs"].setdefault(str(num), {})
        entry.update(state=state, error=error)

    def write(self) -> None:
        temporary = self.path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(self.data, indent=2) + "\n")
        temporary.replace(self.path)
