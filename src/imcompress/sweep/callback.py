"""Hydra callback: after every multirun, write the sweep table and plots and report failures.

Enabled in ``conf/hydra/default.yaml`` (``hydra.callbacks.sweep_report``). Hydra calls
``on_multirun_end`` only when every job succeeded, so the report is also written at interpreter
exit when a failed job made the sweep raise (or the user pressed Ctrl-C): the table then shows
which jobs failed and why, and the command still exits non-zero.
"""

from __future__ import annotations

import atexit
import logging
import sys
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from imcompress.runs import atomic
from imcompress.runs.folder import CorruptRecordError, RunFolder, skipped_note
from imcompress.runs.lock import RunFolderBusyError, lock_sweep_folder
from imcompress.sweep.jobs import JOB_STATUS_FILE

log = logging.getLogger(__name__)


class SweepReportCallback(Callback):
    """Write ``sweep_summary.csv`` + plots into the sweep folder when a multirun ends."""

    def __init__(self, accuracy: str | None = None, plots: bool = True) -> None:
        self.accuracy = accuracy
        self.plots = plots
        self._sweep_dir: Path | None = None
        self._written = False

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Lock the sweep folder before any job writes into it: an identical multirun started
        at the same time (same folder) is refused here and writes nothing."""
        sweep_dir = Path(str(config.hydra.sweep.dir)).absolute()
        try:
            lock_sweep_folder(sweep_dir)
        except RunFolderBusyError as error:
            # Hydra turns a callback's Exception into a warning and goes on: stop the sweep here.
            raise SystemExit(f"Error: {error}") from None
        self._sweep_dir = sweep_dir
        self._written = False
        atexit.register(self.write_report)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self.write_report()

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        """Record a failure the pipeline could not write into ``summary.json`` itself."""
        if job_return.status != JobStatus.FAILED or config.hydra.mode != RunMode.MULTIRUN:
            return  # single runs: a refused run must not write into the folder it refused
        error = job_return._return_value
        if isinstance(error, RunFolderBusyError):
            return  # refused: the folder belongs to the job holding its lock; write nothing
        output_dir = Path(str(config.hydra.runtime.output_dir))
        try:
            if RunFolder(output_dir).status() == "failed":
                return
        except CorruptRecordError:
            pass  # the failure is recorded next to it; report.py names the corrupt file
        record = {"status": "failed", "error": f"{type(error).__name__}: {error}"}
        try:
            atomic.write_json(output_dir / JOB_STATUS_FILE, record)
        except OSError as problem:
            log.warning(f"could not record the failure of {output_dir}: {problem}")

    def write_report(self) -> None:
        """Build the report once per multirun; never raise (it also runs at interpreter exit)."""
        if self._written or self._sweep_dir is None or not self._sweep_dir.is_dir():
            return
        self._written = True
        from imcompress.sweep.aggregate import corrupt_jobs
        from imcompress.sweep.jobs import discover_jobs
        from imcompress.sweep.report import build_report, format_report

        try:
            if all(job.status == "missing" for job in discover_jobs(self._sweep_dir)):
                return  # nothing was launched (e.g. a config or submission error)
            report = build_report(self._sweep_dir, self.accuracy, self.plots)
        except Exception as error:
            print(
                f"sweep report for {self._sweep_dir} failed: {type(error).__name__}: {error}",
                file=sys.stderr,
            )
            return
        stream = sys.stderr if report.failed else sys.stdout
        print(format_report(report), file=stream, flush=True)
        corrupt = corrupt_jobs(report.rows)
        if corrupt:
            print(skipped_note(corrupt), file=sys.stderr, flush=True)
        if report.failed:
            print(
                f"{len(report.failed)} of {len(report.rows)} jobs failed; the others' results are kept. "
                f"Rebuild the table later: python src/report.py {self._sweep_dir}",
                file=stream,
                flush=True,
            )
