"""Reliability, end to end: src/train.py runs that are killed, doubled, truncated and resumed."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, read_summary, run_script

SMOKE = ("experiment=smoke", "logger=none")
LOW_RANK = (*SMOKE, "compression=lr", "pretrained=none")  # from scratch: no dense stage


def wait_for(predicate: Any, timeout_s: float, what: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if process.poll() is not None:
            raise AssertionError(f"the run ended while waiting for {what}: {process.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.2)


def lock_holder(job: Path) -> int | None:
    try:
        return int(json.loads((job / "run.lock").read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return None


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_bad_trainer_number_is_refused_before_any_data_is_read(tmp_path: Path) -> None:
    job = tmp_path / "job"
    result = run_script(
        "train.py", *SMOKE, "trainer.max_epochs=-1", "data=cifar10", "data.download=false",
        f"paths.data_dir={tmp_path / 'nodata'}", f"hydra.run.dir={job}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode != 0
    assert "trainer.max_epochs=-1: must be an integer >= 1" in result.stderr
    assert "not found" not in result.stderr  # the dataset was never looked at
    assert not (job / "summary.json").exists() and not (job / "csv").exists()


def test_second_run_on_a_folder_is_refused_and_sigterm_exits_143(tmp_path: Path) -> None:
    job = tmp_path / "job"
    command = [
        sys.executable, str(ROOT / "src" / "train.py"), *SMOKE, "trainer.max_epochs=200",
        f"hydra.run.dir={job}",
    ]  # fmt: skip
    first = subprocess.Popen(
        command, cwd=tmp_path, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for(lambda: lock_holder(job) == first.pid, 180, "the run folder lock", first)
        wait_for((job / "checkpoints" / "last.ckpt").exists, 240, "the first last.ckpt", first)
        config = (job / ".hydra" / "config.yaml").read_text()

        second = run_script("train.py", *SMOKE, "seed=7", f"hydra.run.dir={job}", cwd=tmp_path)
        assert second.returncode != 0
        assert f"is in use by another job (pid {first.pid} on host " in second.stderr
        assert (job / ".hydra" / "config.yaml").read_text() == config  # untouched by the second
        assert first.poll() is None  # the first run goes on

        first.send_signal(signal.SIGTERM)
        _, stderr = first.communicate(timeout=180)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 143, stderr[-3000:]
    summary = read_summary(job)
    assert summary["status"] == "interrupted" and summary["signal"] == "SIGTERM"
    assert (job / "run.lock").read_text() == ""  # released on the way out


@pytest.fixture(scope="module")
def completed_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A completed low-rank smoke run (2 epochs), shared by the resume tests below."""
    cwd = tmp_path_factory.mktemp("completed")
    job = cwd / "job"
    result = run_script("train.py", *LOW_RANK, f"hydra.run.dir={job}", cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return job


def test_accuracy_right_after_compression_is_measured_once(completed_run: Path) -> None:
    """val/acc_at_compression: the compressed model before fine-tuning, in summary and CSV."""
    first = read_summary(completed_run)["attempts"][0]
    assert first["status"] == "completed" and first["resumed_from"] is None
    rows = csv_rows((completed_run / "csv" / "metrics.csv").read_text())
    logged = [float(r["val/acc_at_compression"]) for r in rows if r["val/acc_at_compression"]]
    assert len(logged) == 1 and 0.0 <= logged[0] <= 1.0
    assert read_summary(completed_run)["metrics"]["val/acc_at_compression"] == pytest.approx(
        logged[0]
    )
    # It is a validation of its own: val/acc of epoch 0 and the fit's best are logged apart.
    assert [r["epoch"] for r in rows if r["val/acc"]][:2] == ["0", "1"]


def test_truncated_last_checkpoint_resumes_from_the_best_one(
    completed_run: Path, tmp_path: Path
) -> None:
    job = completed_run
    metrics_before = (job / "csv" / "metrics.csv").read_bytes()
    assert b"\r\n" in metrics_before  # Lightning's csv writer ends lines with CRLF
    last = job / "checkpoints" / "last.ckpt"
    (best,) = (job / "checkpoints").glob("best-*.ckpt")
    last.write_bytes(last.read_bytes()[:4096])  # what a kill during a non-atomic save leaves
    # $TMPDIR on another filesystem where there is one (the usual cluster setup).
    scratch = Path("/dev/shm") if Path("/dev/shm").is_dir() else tmp_path
    scratch = Path(os.environ.get("IMCOMPRESS_TEST_SCRATCH", scratch)) / f"scratch-{os.getpid()}"
    scratch.mkdir()
    try:
        env = {**os.environ, "TMPDIR": str(scratch)}
        result = subprocess.run(
            [sys.executable, str(ROOT / "src" / "train.py"), *LOW_RANK, f"hydra.run.dir={job}",
             "ckpt_path=last", "trainer.max_epochs=3"],
            cwd=job.parent, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        large = [p for p in scratch.rglob("*") if p.is_file() and p.stat().st_size > 100_000]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (
        f"checkpoint {last} is unusable: truncated or not a checkpoint (4096 bytes" in result.stderr
    )
    assert f"Resuming from {best} instead" in result.stderr
    assert large == []  # no checkpoint went through $TMPDIR
    summary = read_summary(job)
    assert summary["status"] == "completed" and summary["epochs"] == 3
    assert summary["resumed_from"] == str(best)
    assert [a["status"] for a in summary["attempts"]][-2:] == ["completed", "completed"]
    # metrics.csv: the first attempt's rows up to the resumed checkpoint are kept byte for byte
    # (CRLF line endings); its rows after it (work redone now) moved to metrics_superseded.csv;
    # the crossbar cost row of step 0 (logged at fit start, no epoch) is not written again.
    metrics_after = (job / "csv" / "metrics.csv").read_bytes()
    moved = (job / "csv" / "metrics_superseded.csv").read_bytes().splitlines(keepends=True)[1:]
    assert moved  # at least the first attempt's test row
    kept = [line for line in metrics_before.splitlines(keepends=True) if line not in moved]
    assert metrics_after.startswith(b"".join(kept))
    rows = csv_rows(metrics_after.decode())
    assert len([r for r in rows if r["hw/arrays"] and not r["epoch"]]) == 1
    assert [r["epoch"] for r in rows if r.get("val/acc")][-1] == "2"
    assert len([r for r in rows if r["val/acc_at_compression"]]) == 1  # not measured on resume


def test_resuming_a_finished_run_completes_with_its_best(completed_run: Path) -> None:
    """A rerun of a job that already reached max_epochs (a sweep rerun after a crash in test)
    trains no epoch and still reports the restored val/acc_best instead of failing."""
    job = completed_run
    before = read_summary(job)
    result = run_script(
        "train.py", *LOW_RANK, f"hydra.run.dir={job}", "ckpt_path=last",
        f"trainer.max_epochs={before['epochs']}", cwd=job.parent,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    after = read_summary(job)
    assert after["status"] == "completed" and after["epochs"] == before["epochs"]
    assert after["metrics"]["val/acc_best"] == pytest.approx(before["metrics"]["val/acc_best"])


def test_failed_resume_keeps_the_completed_record(completed_run: Path) -> None:
    job = completed_run
    before = read_summary(job)
    assert before["status"] == "completed"
    # A resume with a different model (here: dense layers) cannot load the checkpoint.
    result = run_script(
        "train.py", *SMOKE, f"hydra.run.dir={job}", "ckpt_path=last", cwd=job.parent
    )
    assert result.returncode != 0
    assert "keeps the completed run's results" in result.stderr
    after = read_summary(job)
    attempts = after.pop("attempts")
    assert after == {key: value for key, value in before.items() if key != "attempts"}
    assert attempts[:-1] == before["attempts"]
    assert attempts[-1]["status"] == "failed" and "state_dict" in attempts[-1]["error"]


def test_data_parallel_on_cpu_is_one_job(tmp_path: Path) -> None:
    """trainer=ddp_cpu: two processes train; rank 0 alone writes the job's files and W&B run."""
    job = tmp_path / "job"
    result = run_script(
        "train.py", "experiment=smoke", "trainer=ddp_cpu", "logger=wandb", f"hydra.run.dir={job}",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    summary = read_summary(job)
    assert summary["status"] == "completed" and summary["world_size"] == 2
    assert summary["epochs"] == 2 and summary["metrics"]["test/acc"] is not None
    assert len(summary["attempts"]) == 1
    assert result.stdout.count("imcompress: summary") == 1
    assert len(list((job / "wandb").glob("offline-run-*"))) == 1
    assert sorted(p.name for p in (job / "checkpoints").iterdir())[-1] == "last.ckpt"
    assert "in use by another job" not in result.stderr  # rank 1 is part of the job
    rows = csv_rows((job / "csv" / "metrics.csv").read_text())
    assert len([r for r in rows if r["hw/arrays"] and not r["epoch"]]) == 1
    assert [r["epoch"] for r in rows if r.get("val/acc")] == ["0", "1"]
