"""Accuracy right after compression, no training: the ``acc@compr.`` grid and the dense
reference of a study, each point evaluated in this process by the job the caller hands in
(:func:`imcompress.jobs.acc_at_compression.test_compressed`: the training job's own build
steps and one Lightning ``test``); this module itself imports no training code.

Each point's result is ``<folder>/<key>/summary.json`` (status, metrics, compression summary),
written atomically; a completed point is not evaluated again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from imcompress.runs import atomic
from imcompress.runs.folder import SUMMARY_FILE
from imcompress.studies.runner import ROOT, JobSpec, RunOutcome, is_completed


def compose_config(experiment: str, overrides: Sequence[str], output_dir: Path) -> Any:
    """The ``train.py`` config of ``experiment`` with ``overrides`` (paths set explicitly, so no
    Hydra runtime is needed)."""
    from hydra import compose, initialize_config_dir

    from imcompress.config import register_configs

    register_configs()
    paths = [f"paths.output_dir={output_dir}", f"paths.data_dir={ROOT / 'data'}"]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("train", [f"experiment={experiment}", *overrides, *paths])


def run_points(
    jobs: Sequence[JobSpec],
    folder: Path,
    configure: Callable[[JobSpec, Path], Any],
    evaluate: Callable[[Any], tuple[dict[str, Any], Any]],
    after: Callable[[JobSpec, Path, Any], None] | None = None,
) -> RunOutcome:
    """Evaluate every job not yet completed (``configure(job, job_dir)`` gives its config,
    ``evaluate(config)`` its (summary, model)); a failure is recorded (status failed, the
    error) and the next job runs."""
    outcome = RunOutcome([], [], [])
    for job in jobs:
        job_dir = folder / job.key
        if is_completed(job_dir):
            outcome.skipped.append(job.key)
            continue
        job_dir.mkdir(parents=True, exist_ok=True)
        print(f"== {time.strftime('%H:%M:%S')} {job.key}", flush=True)
        try:
            summary, model = evaluate(configure(job, job_dir))
        except Exception as error:  # one bad point must not stop the grid
            atomic.write_json(
                job_dir / SUMMARY_FILE,
                {"status": "failed", "error": f"{type(error).__name__}: {error}"},
            )
            outcome.failed.append(job.key)
            print(f"   failed: {type(error).__name__}: {error}", flush=True)
            continue
        atomic.write_json(job_dir / SUMMARY_FILE, summary, indent=1)
        print(
            f"   test/acc {summary['metrics'].get('test/acc')} ({summary['wall_time_s']:.0f} s)",
            flush=True,
        )
        outcome.ran.append(job.key)
        if after is not None:
            after(job, job_dir, model)
    return outcome
