"""End-to-end runs of src/train.py as a user would type them (subprocesses)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, read_summary, run_script

SMOKE = ("experiment=smoke", "logger=none")


def metrics_rows(job_dir: Path) -> list[dict[str, str]]:
    with open(job_dir / "csv" / "metrics.csv") as handle:
        return list(csv.DictReader(handle))


def test_smoke_run_writes_summary_checkpoints_and_metrics(tmp_path: Path) -> None:
    job = tmp_path / "job"
    result = run_script("train.py", *SMOKE, f"hydra.run.dir={job}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = read_summary(job)
    assert summary["status"] == "completed"
    assert summary["epochs"] == 2
    assert summary["config"]["model"] == "resnet20" and summary["config"]["data"] == "synthetic"
    assert summary["parameters"]["total"] == 272_474
    for name in ("train/loss", "train/acc", "val/loss", "val/acc", "val/acc_best", "test/acc"):
        assert 0.0 <= summary["metrics"][name] < 100.0, name
    assert summary["git_commit"] is None or len(summary["git_commit"]) >= 40
    assert (job / "checkpoints" / "last.ckpt").exists()
    assert Path(summary["best"]["checkpoint"]).exists()
    assert (job / ".hydra" / "config.yaml").exists()
    epochs = {row["epoch"] for row in metrics_rows(job) if row.get("val/acc")}
    assert epochs == {"0", "1"}
    assert "imcompress: starting" in result.stdout and "imcompress: summary" in result.stdout


def test_resume_from_last_checkpoint_continues_epochs(tmp_path: Path) -> None:
    job = tmp_path / "job"
    first = run_script("train.py", *SMOKE, f"hydra.run.dir={job}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    last = job / "checkpoints" / "last.ckpt"
    stamp = last.stat().st_mtime_ns

    # A fresh run into a folder that holds checkpoints is refused and touches nothing.
    refused = run_script("train.py", *SMOKE, f"hydra.run.dir={job}", cwd=tmp_path)
    assert refused.returncode != 0
    assert "ckpt_path=last" in refused.stderr
    assert last.stat().st_mtime_ns == stamp

    resumed = run_script(
        "train.py",
        *SMOKE,
        f"hydra.run.dir={job}",
        "ckpt_path=last",
        "trainer.max_epochs=3",
        cwd=tmp_path,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = read_summary(job)
    assert summary["epochs"] == 3
    val_epochs = [row["epoch"] for row in metrics_rows(job) if row.get("val/acc")]
    # The first attempt's rows are kept; the resumed job trained only the third epoch.
    assert val_epochs == ["0", "1", "2"]


def test_ckpt_path_last_without_checkpoint_fails_clearly(tmp_path: Path) -> None:
    result = run_script(
        "train.py", *SMOKE, f"hydra.run.dir={tmp_path / 'job'}", "ckpt_path=last", cwd=tmp_path
    )
    assert result.returncode != 0
    assert "there is no" in result.stderr and "last.ckpt" in result.stderr


def test_cifar10_offline_fails_fast_with_help(tmp_path: Path) -> None:
    job = tmp_path / "job"
    result = run_script(
        "train.py",
        "data=cifar10",
        "data.download=false",
        f"paths.data_dir={tmp_path / 'nodata'}",
        "logger=none",
        f"hydra.run.dir={job}",
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "cifar10 not found" in result.stderr
    assert str(tmp_path / "nodata" / "cifar-10-python.tar.gz") in result.stderr
    assert "digits" in result.stderr  # names the datasets that work offline
    assert not (job / "checkpoints").exists()
    assert read_summary(job)["status"] == "failed"


def wandb_history(run_file: Path) -> list[dict[str, object]]:
    """History records of an offline W&B run, read back through the wandb CLI."""
    wandb_cli = Path(sys.executable).with_name("wandb")
    output = subprocess.run(
        [str(wandb_cli), "leet", "inspect", "--json", str(run_file)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    rows = []
    for line in output.splitlines():
        record = json.loads(line)
        if record.get("type") == "history":
            rows.append(dict(record["history"]["item"]))
    return rows


def test_wandb_offline_run_matches_csv_metrics(tmp_path: Path) -> None:
    job = tmp_path / "job"
    result = run_script(
        "train.py", "experiment=smoke", "logger=wandb", f"hydra.run.dir={job}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run_files = list((job / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(run_files) == 1
    history = wandb_history(run_files[0])
    logged = [row["val/acc"] for row in history if "val/acc" in row]
    from_csv = [float(row["val/acc"]) for row in metrics_rows(job) if row.get("val/acc")]
    assert len(logged) == 2
    assert logged == pytest.approx(from_csv, abs=1e-6)
    test_logged = [row["test/acc"] for row in history if "test/acc" in row]
    assert test_logged == pytest.approx([read_summary(job)["metrics"]["test/acc"]], abs=1e-6)
    assert (job / "wandb_run_id.txt").read_text().strip() in run_files[0].name


@pytest.mark.slow
def test_quickstart_learns_digits(tmp_path: Path) -> None:
    """The `make run` default: ResNet-20 on digits reaches at least 90 % test accuracy."""
    job = tmp_path / "job"
    result = run_script(
        "train.py", "experiment=quickstart", "logger=none", f"hydra.run.dir={job}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert read_summary(job)["metrics"]["test/acc"] >= 0.9


def test_entry_script_has_hydra_help() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "src" / "train.py"), "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    for group in ("model", "data", "compression", "hw", "trainer", "logger", "experiment"):
        assert f"{group}:" in result.stdout
