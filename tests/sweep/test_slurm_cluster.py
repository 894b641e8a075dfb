"""Sweeps on a real single-node SLURM cluster (launch/local-slurm.sh), typed as a user would."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, read_summary, run_script
from tests.sweep.conftest import LocalCluster

pytestmark = pytest.mark.slurm


def sweep_dirs(cwd: Path, name: str = "smoke") -> list[Path]:
    return sorted((cwd / "outputs" / name / "multiruns").glob("*"))


def table_rows(sweep_dir: Path) -> list[dict[str, str]]:
    with open(sweep_dir / "sweep_summary.csv") as handle:
        return list(csv.DictReader(handle))


def test_group_sweep_runs_as_three_slurm_jobs(
    local_slurm: LocalCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLURM_CONF", str(local_slurm.conf))
    result = run_script(
        "train.py",
        "experiment=smoke",
        "compression=glr",
        "pretrained=none",
        "-m",
        "group=1,2,4",
        "hydra/launcher=slurm",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    (sweep,) = sweep_dirs(tmp_path)
    summaries = [read_summary(sweep / str(num)) for num in range(3)]
    assert [s["status"] for s in summaries] == ["completed"] * 3
    assert [s["config"]["group"] for s in summaries] == [1, 2, 4]
    assert all(s["epochs"] == 2 for s in summaries)
    # Three SLURM jobs ran: one array, three tasks, three distinct job ids.
    slurm = [s["slurm"] for s in summaries]
    assert len({entry["slurm_job_id"] for entry in slurm}) == 3, slurm
    assert len({entry["slurm_array_job_id"] for entry in slurm}) == 1, slurm
    assert sorted(entry["slurm_array_task_id"] for entry in slurm) == ["0", "1", "2"]
    # One W&B group for the sweep, job_type = the method.
    assert len({s["identity"]["group"] for s in summaries}) == 1
    assert {s["identity"]["job_type"] for s in summaries} == {"glr"}
    # The aggregate: one row per job with its SLURM id, and the plots.
    rows = table_rows(sweep)
    assert [row["status"] for row in rows] == ["completed"] * 3
    assert [row["group"] for row in rows] == ["1", "2", "4"]
    array_id = slurm[0]["slurm_array_job_id"]
    assert [row["slurm_job_id"] for row in rows] == [f"{array_id}_{task}" for task in range(3)]
    assert all(float(row["hw/vwsdk/cycles"]) > 0 for row in rows)
    for name in ("acc_vs_cycles.png", "acc_vs_energy.png"):
        assert (sweep / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    manifest = json.loads((sweep / "slurm_jobs.json").read_text())
    assert {entry["state"] for entry in manifest["jobs"].values()} == {"completed"}
    assert "3 jobs: 3 completed" in result.stdout


def wait_for(
    predicate, timeout_s: float, what: str, process: subprocess.Popen[str] | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if process is not None and process.poll() is not None:
            raise AssertionError(
                f"the sweep ended while waiting for {what}: {process.communicate()}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.5)


def test_requeued_job_resumes_from_last_checkpoint(
    local_slurm: LocalCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGUSR2 (SLURM's timeout warning) mid-training: checkpoint, requeue, resume, same W&B run."""
    monkeypatch.setenv("SLURM_CONF", str(local_slurm.conf))
    sweep = tmp_path / "sweep"
    epochs = 6
    command = [
        sys.executable, str(ROOT / "src" / "train.py"), "experiment=smoke", "compression=glr", "pretrained=none", "-m", "group=2",
        f"trainer.max_epochs={epochs}", "trainer.limit_train_batches=4", "hydra/launcher=slurm",
        f"hydra.sweep.dir={sweep}",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=tmp_path, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        last = sweep / "0" / "checkpoints" / "last.ckpt"
        wait_for(lambda: (sweep / "slurm_jobs.json").exists(), 120, "the submission", process)
        job_id = json.loads((sweep / "slurm_jobs.json").read_text())["jobs"]["0"]["job_id"]
        wait_for(last.exists, 240, "the first last.ckpt", process)  # written atomically
        first_ckpt = last.stat().st_mtime_ns
        signalled = subprocess.run(
            ["scancel", "--signal=USR2", job_id], capture_output=True, text=True, timeout=60
        )
        assert signalled.returncode == 0, signalled.stderr
        stdout, stderr = process.communicate(timeout=420)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stdout[-3000:] + stderr[-5000:]
    summary = read_summary(sweep / "0")
    assert summary["status"] == "completed"
    assert summary["epochs"] == epochs  # same epoch count as an uninterrupted run
    assert summary["slurm"]["slurm_restart_count"] == "1"
    assert last.stat().st_mtime_ns > first_ckpt
    # The restarted job resumed from last.ckpt instead of starting over.
    logs = "".join(path.read_text() for path in (sweep / ".submitit").glob("*/*_log.err"))
    assert f"Restoring states from the checkpoint path at {last}" in logs
    # Same W&B run id before and after the requeue (two offline segments of one run).
    run_id = (sweep / "0" / "wandb_run_id.txt").read_text().strip()
    segments = sorted((sweep / "0" / "wandb").glob("offline-run-*"))
    assert len(segments) >= 2, segments
    assert all(segment.name.endswith(f"-{run_id}") for segment in segments)
    (row,) = table_rows(sweep)
    assert row["status"] == "completed" and row["restarts"] == "1" and row["epochs"] == str(epochs)


def test_failed_slurm_job_does_not_stop_the_others(
    local_slurm: LocalCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLURM_CONF", str(local_slurm.conf))
    result = run_script(
        "train.py", "experiment=smoke", "compression=glr", "pretrained=none", "logger=none", "-m", "group=2,3",
        "hydra/launcher=slurm", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode != 0  # the user learns that a job failed
    (sweep,) = sweep_dirs(tmp_path)
    rows = table_rows(sweep)
    assert [(row["group"], row["status"]) for row in rows] == [("2", "completed"), ("3", "failed")]
    assert "groups=3 does not divide" in rows[1]["error"]
    assert rows[1]["slurm_job_id"]
    assert "1 of 2 jobs failed" in result.stderr
    assert read_summary(sweep / "0")["metrics"]["test/acc"] is not None


def test_bad_slurm_settings_fail_before_submitting(
    local_slurm: LocalCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLURM_CONF", str(local_slurm.conf))
    base = (
        "experiment=smoke",
        "compression=glr",
        "pretrained=none",
        "logger=none",
        "-m",
        "hydra/launcher=slurm",
    )

    partition = run_script(
        "train.py", *base, "group=1,2", "hydra.launcher.partition=nosuch", cwd=tmp_path
    )
    assert partition.returncode != 0
    assert "Unknown SLURM partition 'nosuch'; this cluster has: debug" in partition.stderr

    too_big = run_script(
        "train.py", *base, "group=1,2", "hydra.launcher.mem_gb=100000", cwd=tmp_path
    )
    assert too_big.returncode != 0
    assert "sbatch refused the job array" in too_big.stderr
    assert "Nothing was submitted" in too_big.stderr

    typo = run_script("train.py", *base, "group=1,abc", cwd=tmp_path)
    assert typo.returncode != 0
    assert "Invalid swept value(s); nothing was submitted" in typo.stderr
    assert "group=abc" in typo.stderr

    queue = subprocess.run(["squeue", "--noheader"], capture_output=True, text=True, timeout=60)
    assert queue.returncode == 0 and queue.stdout.strip() == ""  # nothing was queued
