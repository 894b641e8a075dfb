"""Resumable multiruns: rerunning a sweep into its folder skips completed jobs and resumes the rest."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from imcompress.sweep.resume import (
    RESUME_OVERRIDE,
    SweepFolderMismatchError,
    contiguous_batches,
    plan_job,
)
from tests.conftest import read_summary, run_script


def _job_folder(path: Path, overrides: list[str], status: str | None, ckpt: bool) -> Path:
    (path / ".hydra").mkdir(parents=True)
    (path / ".hydra" / "overrides.yaml").write_text("".join(f"- {item}\n" for item in overrides))
    if status is not None:
        (path / "summary.json").write_text(json.dumps({"status": status}))
    if ckpt:
        (path / "checkpoints").mkdir()
        (path / "checkpoints" / "last.ckpt").write_bytes(b"x")
    return path


def test_plan_job_rules(tmp_path: Path) -> None:
    assert plan_job(0, ["seed=1"], tmp_path / "new").action == "fresh"
    done = _job_folder(tmp_path / "0", ["seed=1"], "completed", ckpt=True)
    assert plan_job(0, ["seed=1"], done).action == "skip"
    failed = _job_folder(tmp_path / "1", ["seed=2"], "failed", ckpt=True)
    plan = plan_job(1, ["seed=2"], failed)
    assert plan.action == "resume" and plan.overrides == ["seed=2", RESUME_OVERRIDE]
    early = _job_folder(tmp_path / "2", ["seed=3"], "failed", ckpt=False)
    assert plan_job(2, ["seed=3"], early).action == "fresh"
    resumed_before = _job_folder(tmp_path / "3", ["seed=4", RESUME_OVERRIDE], "failed", ckpt=True)
    assert plan_job(3, ["seed=4"], resumed_before).overrides == ["seed=4", RESUME_OVERRIDE]
    with pytest.raises(SweepFolderMismatchError, match=r"job #1: .* holds a job with overrides"):
        plan_job(1, ["seed=9"], failed)
    plans = [plan_job(n, [f"seed={n}"], tmp_path / f"x{n}") for n in (4, 5, 7)]
    assert [[p.num for p in batch] for batch in contiguous_batches(plans)] == [[4, 5], [7]]


def _train_rows(job: Path) -> list[tuple[str, str, str]]:
    with open(job / "csv" / "metrics.csv") as handle:
        rows = csv.DictReader(handle)
        return [(r["epoch"], r["step"], r["train/loss"]) for r in rows if r.get("train/loss")]


def _files_and_mtimes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


def test_rerun_skips_completed_and_resumes_the_others(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    command = (
        "experiment=smoke", "logger=none", "callbacks.model_checkpoint.save_top_k=-1",
        f"hydra.sweep.dir={sweep}", "-m", "seed=1,2",
    )  # fmt: skip
    first = run_script("train.py", *command, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert [read_summary(sweep / n)["status"] for n in ("0", "1")] == ["completed"] * 2

    # Job 1 "was killed during its second epoch": summary failed, last.ckpt = the state after
    # epoch 0, no epoch-1 checkpoint.
    checkpoints = sweep / "1" / "checkpoints"
    shutil.copyfile(checkpoints / "best-epoch000.ckpt", checkpoints / "last.ckpt")
    (checkpoints / "best-epoch001.ckpt").unlink()
    summary_file = sweep / "1" / "summary.json"
    broken = {**read_summary(sweep / "1"), "status": "failed", "error": "KeyboardInterrupt"}
    summary_file.write_text(json.dumps(broken))
    untouched = _files_and_mtimes(sweep / "0")
    trained_rows = _train_rows(sweep / "1")

    second = run_script("train.py", *command, cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    log = second.stdout + second.stderr
    assert "#0 skipped: completed earlier" in log
    assert "#1 resumes from its checkpoints" in log
    assert _files_and_mtimes(sweep / "0") == untouched  # not rerun, not rewritten
    assert read_summary(sweep / "1")["status"] == "completed"
    assert read_summary(sweep / "1")["epochs"] == 2
    # Resumed at epoch 1: the epoch-0 rows are kept and only epoch 1 was trained again; the
    # abandoned attempt's epoch-1 rows moved to metrics_superseded.csv (each epoch once).
    rows = _train_rows(sweep / "1")
    kept = [row for row in trained_rows if row[0] == "0"]
    assert rows[: len(kept)] == kept
    assert rows[len(kept) :] and {row[0] for row in rows[len(kept) :]} == {"1"}
    assert len(rows) == len(trained_rows)
    with open(sweep / "sweep_summary.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["job"], row["status"]) for row in rows] == [("0", "completed"), ("1", "completed")]
