"""Resumable study runs: a job list (``jobs.tsv``), one ``src/train.py`` subprocess per job in its
own folder, completed jobs skipped, interrupted or failed ones resumed (``ckpt_path=auto``).

Job overrides may hold placeholders that the runner fills at run time, so the committed job list
names no machine path: ``<dense>`` (the dense checkpoint) and ``<plans>`` (the study's plan
folder).
"""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imcompress.runs.folder import summary_if_readable

ROOT = Path(__file__).resolve().parents[3]  # the repository (src/imcompress/studies/ -> ../../..)
JOBS_HEADER = ("order", "priority", "name", "seed", "overrides")


@dataclass(frozen=True)
class JobSpec:
    """One training job of a study: ``name`` (the point), ``seed``, its priority (1 = first to
    run, the study is cut from the end) and its Hydra overrides (placeholders allowed)."""

    name: str
    seed: int
    priority: int
    overrides: tuple[str, ...]

    @property
    def key(self) -> str:
        """``<name>_s<seed>``: the job's folder and record name."""
        return f"{self.name}_s{self.seed}"


def jobs_tsv(jobs: Sequence[JobSpec]) -> str:
    """The job list as TSV text (order, priority, name, seed, space-separated overrides)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
    writer.writerow(JOBS_HEADER)
    for order, job in enumerate(jobs, 1):
        writer.writerow([order, job.priority, job.name, job.seed, " ".join(job.overrides)])
    return buffer.getvalue()


def read_jobs_tsv(text: str) -> list[JobSpec]:
    """Inverse of :func:`jobs_tsv`."""
    rows = list(csv.DictReader(io.StringIO(text), delimiter="\t"))
    return [
        JobSpec(
            row["name"], int(row["seed"]), int(row["priority"]), tuple(row["overrides"].split())
        )
        for row in rows
    ]


def select_jobs(
    jobs: Iterable[JobSpec], pattern: str | None = None, max_priority: int | None = None
) -> list[JobSpec]:
    """The jobs whose key (``name_s<seed>``) matches the regex ``pattern`` (search) and whose
    priority is at most ``max_priority``."""
    regex = re.compile(pattern) if pattern else None
    return [
        job
        for job in jobs
        if (regex is None or regex.search(job.key))
        and (max_priority is None or job.priority <= max_priority)
    ]


def fill(overrides: Iterable[str], values: dict[str, str]) -> list[str]:
    """``overrides`` with every ``<placeholder>`` replaced by ``values[placeholder]``
    (KeyError naming a placeholder without a value)."""
    out = []
    for item in overrides:
        for name in re.findall(r"<([a-z_]+)>", item):
            if name not in values:
                raise KeyError(f"override {item!r} needs <{name}>; known: {sorted(values)}")
            item = item.replace(f"<{name}>", values[name])
        out.append(item)
    return out


def read_summary(job_dir: Path) -> dict[str, Any] | None:
    """The job's ``summary.json`` (None when missing or unreadable)."""
    return summary_if_readable(job_dir) or None


def is_completed(job_dir: Path) -> bool:
    return (read_summary(job_dir) or {}).get("status") == "completed"


def train_command(experiment: str, overrides: Sequence[str], job_dir: Path, seed: int) -> list[str]:
    """The ``src/train.py`` command of one job: resumes from the folder's checkpoints, if any."""
    return [
        sys.executable,
        str(ROOT / "src" / "train.py"),
        f"experiment={experiment}",
        *overrides,
        f"seed={seed}",
        f"hydra.run.dir={job_dir.resolve()}",
        "ckpt_path=auto",
    ]


def run_logged(command: Sequence[str], log: Path) -> int:
    """Run ``command`` in the repository root, stdout and stderr to ``log`` (appended)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "1"}
    with log.open("a") as stream:
        stream.write(f"\n== {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(command)}\n")
        stream.flush()
        return subprocess.run(
            command, cwd=ROOT, stdout=stream, stderr=subprocess.STDOUT, env=env
        ).returncode


@dataclass
class RunOutcome:
    """What :func:`run_jobs` did: job keys run, skipped (completed before) and failed."""

    ran: list[str]
    skipped: list[str]
    failed: list[str]


def run_jobs(
    jobs: Sequence[JobSpec],
    folder: Path,
    command: Callable[[JobSpec, Path], list[str]],
    after: Callable[[JobSpec, Path], None] | None = None,
    dry_run: bool = False,
) -> RunOutcome:
    """Run every job not yet completed in ``folder/<key>`` (log ``folder/<key>.log``), in order;
    ``after(job, job_dir)`` runs for every completed job (also ones skipped). A job stopped by
    a signal (exit 130/143) stops the study; a failed one is listed and the next one runs."""
    outcome = RunOutcome([], [], [])
    for job in jobs:
        job_dir = folder / job.key
        if is_completed(job_dir):
            outcome.skipped.append(job.key)
        elif dry_run:
            print(" ".join(command(job, job_dir)))
            continue
        else:
            print(f"== {time.strftime('%H:%M:%S')} {job.key}", flush=True)
            started = time.perf_counter()
            code = run_logged(command(job, job_dir), folder / f"{job.key}.log")
            print(f"   exit {code} after {time.perf_counter() - started:.0f} s", flush=True)
            if code in (130, 143):
                outcome.failed.append(job.key)
                print(f"   stopped by a signal: see {folder / job.key}.log", file=sys.stderr)
                break
            if not is_completed(job_dir):
                outcome.failed.append(job.key)
                print(f"   failed: see {folder / job.key}.log", file=sys.stderr)
                continue
            outcome.ran.append(job.key)
        if after is not None and not dry_run:
            after(job, job_dir)
    return outcome
