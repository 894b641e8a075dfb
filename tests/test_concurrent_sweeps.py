"""Two identical multiruns started together: the refused one writes nothing (issue 16 item 12)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from hydra.core.utils import JobReturn, JobStatus
from hydra.types import RunMode

from imcompress.runs.lock import RunFolderBusyError, RunFolderLock
from imcompress.sweep.callback import SweepReportCallback
from imcompress.sweep.jobs import JOB_STATUS_FILE, discover_jobs
from tests.conftest import ROOT


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size)
        for p in folder.rglob("*")
        if p.is_file()
    }


def test_identical_multirun_started_meanwhile_is_refused_and_writes_nothing(
    tmp_path: Path,
) -> None:
    sweep = tmp_path / "sweep"
    command = [
        sys.executable, str(ROOT / "src" / "train.py"), "experiment=smoke", "logger=none",
        f"hydra.sweep.dir={sweep}", "trainer.max_epochs=40", "-m", "seed=1",  # long enough to
        # still run while the second multirun starts, also on a loaded machine
    ]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    first = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 240
        # the first job is running once Hydra has written all of .hydra/ (config.yaml first,
        # overrides.yaml last): before that, the job itself is still changing those files
        while not _hydra_written(sweep / "0"):
            assert first.poll() is None, first.communicate()[0][-3000:]
            assert time.monotonic() < deadline, "the first multirun did not start its job"
            time.sleep(0.2)
        before = _snapshot(sweep / "0")
        second = subprocess.run(
            command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        after = _snapshot(sweep / "0")
        output, _ = first.communicate(timeout=600)
    finally:
        if first.poll() is None:
            first.kill()
    assert second.returncode != 0
    assert (
        "is in use by another multirun" in second.stderr and "Nothing was written" in second.stderr
    )
    assert first.returncode == 0, output[-3000:]
    # Nothing the refused multirun could have written is there: the files of the running job
    # are the running job's (only it may have added or changed files in between).
    assert {name: after[name] for name in before if name.startswith(".hydra")} == {
        name: stamp for name, stamp in before.items() if name.startswith(".hydra")
    }
    assert not (sweep / "0" / JOB_STATUS_FILE).exists()
    (job,) = discover_jobs(sweep)
    assert job.status == "completed"


def test_a_job_refused_by_the_folder_lock_records_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "0"
    holder = RunFolderLock(folder)
    holder.acquire()  # another job holds the folder
    try:
        config = SimpleNamespace(
            hydra=SimpleNamespace(
                mode=RunMode.MULTIRUN, runtime=SimpleNamespace(output_dir=str(folder))
            )
        )
        refused = JobReturn(status=JobStatus.FAILED, _return_value=RunFolderBusyError("in use"))
        SweepReportCallback().on_job_end(config, refused)  # type: ignore[arg-type]
        assert not (folder / JOB_STATUS_FILE).exists()
        failed = JobReturn(status=JobStatus.FAILED, _return_value=ValueError("bad group"))
        SweepReportCallback().on_job_end(config, failed)  # type: ignore[arg-type]
        assert "bad group" in (folder / JOB_STATUS_FILE).read_text()  # other failures still are
    finally:
        holder.release()


def _hydra_written(job: Path) -> bool:
    files = [job / ".hydra" / name for name in ("config.yaml", "hydra.yaml", "overrides.yaml")]
    return all(path.is_file() and path.stat().st_size > 0 for path in files)
