"""Sweep table, plots and report on hand-made sweep folders (no training, seconds)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from imcompress.sweep.aggregate import accuracy_column
from imcompress.sweep.jobs import discover_jobs, planned_overrides
from imcompress.sweep.pareto import pareto_front
from imcompress.sweep.plots import cost_mappings, point_labels
from imcompress.sweep.report import build_report, format_report
from tests.conftest import ROOT

PNG = b"\x89PNG\r\n\x1a\n"


def write_multirun(sweep: Path, task: list[str]) -> None:
    sweep.mkdir(parents=True, exist_ok=True)
    (sweep / "multirun.yaml").write_text(yaml.safe_dump({"hydra": {"overrides": {"task": task}}}))


def write_job(sweep: Path, num: int, overrides: list[str], summary: dict[str, Any] | None) -> Path:
    job = sweep / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (job / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"job": {"num": num}}}))
    if summary is not None:
        (job / "summary.json").write_text(json.dumps(summary))
    return job


def completed(
    method: str, group: int, acc: float, cycles: float, energy: float, **extra: Any
) -> dict[str, Any]:
    return {
        "status": "completed",
        "config": {"name": "t", "model": "resnet20", "compression": method, "hw": "imc256", "group": group},
        "slurm": {"slurm_job_id": "41", "slurm_array_job_id": "40", "slurm_array_task_id": str(group)},
        "metrics": {"val/acc": acc - 0.01, "test/acc": acc},
        "best": {"val/acc": acc},
        "epochs": 2,
        "cost": {"vwsdk/cycles": cycles, "vwsdk/energy_uj": energy, "im2col/cycles": 2 * cycles,
                 "im2col/energy_uj": 2 * energy, "vwsdk_naive/cycles": cycles, "dense_im2col/cycles": 9e9},
        "parameters": {"total": 1000 * group},
        **extra,
    }  # fmt: skip


def read_rows(sweep: Path) -> list[dict[str, str]]:
    with open(sweep / "sweep_summary.csv") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def partial_sweep(tmp_path: Path) -> Path:
    """Five planned jobs: two completed, one failed, one still running, one not started."""
    sweep = tmp_path / "sweep"
    write_multirun(sweep, ["experiment=smoke", "compression=glr", "group=1,2,4,8,16"])
    base = ["experiment=smoke", "compression=glr"]
    write_job(sweep, 0, [*base, "group=1"], completed("glr", 1, 0.80, 1000.0, 5.0))
    write_job(sweep, 1, [*base, "group=2"], completed("glr", 2, 0.70, 500.0, 9.0))
    write_job(
        sweep,
        2,
        [*base, "group=4"],
        {
            "status": "failed",
            "error": "FloatingPointError: train loss is nan\nat step 3",
            "config": {"group": 4},
        },
    )
    write_job(sweep, 3, [*base, "group=8"], None)  # running: folder, no summary yet
    return sweep


def test_partial_sweep_table_lists_every_job_with_its_status(partial_sweep: Path) -> None:
    report = build_report(partial_sweep)
    rows = read_rows(partial_sweep)
    assert [(row["job"], row["status"]) for row in rows] == [
        ("0", "completed"), ("1", "completed"), ("2", "failed"), ("3", "running"), ("4", "missing"),
    ]  # fmt: skip
    assert rows[2]["error"].startswith("FloatingPointError: train loss is nan")
    assert rows[4]["overrides"] == "experiment=smoke compression=glr group=16"
    assert rows[0]["slurm_job_id"] == "40_1" and rows[0]["test/acc"] == "0.8"
    assert rows[0]["hw/vwsdk/cycles"] == "1000.0" and rows[1]["parameters/total"] == "2000"
    assert list(rows[0])[:4] == ["job", "status", "error", "overrides"]
    assert report.counts == {"completed": 2, "failed": 1, "running": 1, "missing": 1}
    text = format_report(report)
    assert "5 jobs: 2 completed, 1 failed, 1 running, 1 missing" in text
    assert "FAILED #2 [experiment=smoke compression=glr group=4]: FloatingPointError" in text


def test_plots_one_panel_per_mapping_and_skip_references(partial_sweep: Path) -> None:
    report = build_report(partial_sweep)
    assert sorted(path.name for path in report.plots) == ["acc_vs_cycles.png", "acc_vs_energy.png"]
    for path in report.plots:
        assert path.read_bytes()[:8] == PNG
    rows = [row for row in report.rows if row["status"] == "completed"]
    assert cost_mappings(rows, "cycles") == ["im2col", "vwsdk"]  # no *_naive, no dense_* reference
    assert cost_mappings(rows, "energy_uj") == ["im2col", "vwsdk"]
    assert point_labels(rows) == ["group=1", "group=2"]


def test_missing_cost_keys_give_a_table_and_a_clear_message(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    write_multirun(sweep, ["group=1,2"])
    for num in range(2):
        summary = completed("lr", num + 1, 0.5, 1.0, 1.0)
        summary["cost"] = {}
        write_job(sweep, num, [f"group={num + 1}"], summary)
    report = build_report(sweep)
    assert report.plots == [] and len(read_rows(sweep)) == 2
    assert any("cost estimator not configured" in message for message in report.messages)
    assert not (sweep / "acc_vs_cycles.png").exists()


def test_slurm_manifest_marks_lost_and_pending_jobs(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    write_multirun(sweep, ["group=1,2,4"])
    write_job(sweep, 0, ["group=1"], {"status": "running", "config": {"group": 1}})
    manifest = {
        "jobs": {
            "0": {"job_id": "7_0", "state": "failed", "error": "SlurmJobError: SLURM job 7_0 ended without a result (state OUT_OF_MEMORY)"},
            "1": {"job_id": "7_1", "state": "submitted", "error": None},
            "2": {"job_id": "7_2", "state": "submitted", "error": None},
        }
    }  # fmt: skip
    (sweep / "slurm_jobs.json").write_text(json.dumps(manifest))
    rows = [(job.status, job.slurm_job_id, job.error) for job in discover_jobs(sweep)]
    assert rows[0][0] == "failed" and "OUT_OF_MEMORY" in str(rows[0][2]) and rows[0][1] == "7_0"
    assert rows[1:] == [("pending", "7_1", None), ("pending", "7_2", None)]


def test_job_status_file_records_failures_outside_the_pipeline(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    write_multirun(sweep, ["group=1"])
    job = write_job(sweep, 0, ["group=1"], None)
    (job / "job_status.json").write_text(
        json.dumps({"status": "failed", "error": "FileExistsError: holds checkpoints"})
    )
    (only,) = discover_jobs(sweep)
    assert (only.status, only.error) == ("failed", "FileExistsError: holds checkpoints")


def test_planned_overrides_expand_the_sweep_like_hydra(tmp_path: Path) -> None:
    write_multirun(tmp_path, ["compression=lr,glr", "group=1,2", "seed=3"])
    assert planned_overrides(tmp_path) == [
        ["compression=lr", "group=1", "seed=3"],
        ["compression=lr", "group=2", "seed=3"],
        ["compression=glr", "group=1", "seed=3"],
        ["compression=glr", "group=2", "seed=3"],
    ]
    assert planned_overrides(tmp_path / "nothing") is None


@pytest.mark.parametrize(
    ("costs", "accuracies", "front"),
    [
        ([1, 2, 3], [0.5, 0.6, 0.7], [0, 1, 2]),  # every point trades cost for accuracy
        ([1, 2, 3], [0.7, 0.6, 0.5], [0]),  # the cheapest is also the best
        ([3, 1, 2, 2], [0.9, 0.5, 0.4, 0.8], [1, 3, 0]),  # dominated points dropped, order by cost
        ([1, 1], [0.5, 0.5], [0, 1]),  # duplicates both kept
        ([], [], []),
    ],
)
def test_pareto_front(costs: list[float], accuracies: list[float], front: list[int]) -> None:
    assert pareto_front(costs, accuracies) == front


def test_accuracy_column_prefers_test_accuracy() -> None:
    assert accuracy_column([{"test/acc": 0.5, "val/acc": 0.4}]) == "test/acc"
    assert accuracy_column([{"val/acc_best": 0.5, "val/acc": 0.4}]) == "val/acc_best"
    assert accuracy_column([{"val/acc": 0.4}], preferred="val/acc") == "val/acc"
    assert accuracy_column([{"error": "x"}]) is None


def test_report_script_rebuilds_and_exits_nonzero_on_failures(
    partial_sweep: Path, tmp_path: Path
) -> None:
    (partial_sweep / "sweep_summary.csv").unlink(missing_ok=True)
    script = [sys.executable, str(ROOT / "src" / "report.py")]
    result = subprocess.run(
        [*script, str(partial_sweep)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 1, result.stderr
    assert "2 completed, 1 failed, 1 running, 1 missing" in result.stdout
    assert (partial_sweep / "sweep_summary.csv").exists()
    missing = subprocess.run(
        [*script, str(tmp_path / "nope")], capture_output=True, text=True, timeout=300
    )
    assert missing.returncode == 2 and "is not a folder" in missing.stderr
