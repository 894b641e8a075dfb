"""train.py with analog=noisy analog.train=true, then evaluate.py on its checkpoint."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from imcompress.analog import study as analog_study
from imcompress.jobs.evaluate import find_run

from ..conftest import read_summary, run_script

TINY = ("analog.repeats=2", "analog.test_samples=32", "analog.input_range.batches=1")


def test_hardware_aware_training_then_evaluate(tmp_path: Path) -> None:
    run = tmp_path / "run"
    done = run_script(
        "train.py",
        "experiment=smoke",
        "compression=prune_channel",
        "pretrained=none",
        "logger=none",
        "analog=noisy",
        "analog.train=true",
        "analog.hwa.input_range_init_batches=1",
        *TINY,
        f"hydra.run.dir={run}",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = read_summary(run)
    metrics = summary["metrics"]
    assert summary["status"] == "completed"
    assert 0 <= metrics["analog/test/acc"] <= 1 and metrics["analog/test/samples"] == 32
    assert summary["cost"]["arrays"] > 0  # costs of the digital layout, measured before conversion
    with (run / "csv" / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert any(row.get("analog/test/acc") for row in rows)

    out = tmp_path / "eval"
    done = run_script(
        "evaluate.py", f"ckpt={run}", "analog=noisy", *TINY, f"hydra.run.dir={out}", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"summary: {out / 'summary.json'}" in done.stdout  # says where it wrote
    assert "Could not import triton_utils" not in done.stdout + done.stderr
    result = json.loads((out / "summary.json").read_text())
    assert result["status"] == "completed"
    assert Path(result["checkpoint"]).parent == run / "checkpoints"
    assert result["analog"]["name"] == "noisy" and result["analog"]["repeats"] == 2
    assert len(result["metrics"]["analog/test/acc_repeats"]) == 2
    for key in ("analog/test/acc", "analog/test/acc_std", "test/acc"):
        assert 0 <= result["metrics"][key] <= 1


def test_study_evaluates_each_job_once_with_the_frontier_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    done = run_script(
        "train.py",
        "experiment=smoke",
        "compression=glr",
        "pretrained=none",
        "logger=none",
        f"hydra.run.dir={run}",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    study = tmp_path / "study"
    (study / "finetune").mkdir(parents=True)
    (study / "finetune" / "glr2_k0.50_s1").symlink_to(run)  # a frontier job name
    args = [
        str(study),
        "--presets",
        "ideal",
        "--test-samples",
        "32",
        "analog.input_range.batches=1",
    ]

    analog_study.main(args)
    first = capsys.readouterr().out
    assert "glr2_k0.50_s1: digital" in first
    saved = study / "analog" / "glr2_k0.50_s1.json"
    stamp = saved.stat().st_mtime_ns
    with (study / "analog" / "analog_results.csv").open() as handle:
        (row,) = list(csv.DictReader(handle))
    assert (row["method"], row["level"]) == ("GLR-2", "keep 0.50")
    assert float(row["ideal_drop"]) == 0.0  # exact tiles give the digital accuracy
    assert (study / "analog" / "analog_drop.png").stat().st_size > 0

    analog_study.main(args)  # a rerun evaluates nothing again and rewrites the table
    assert "digital" not in capsys.readouterr().out
    assert saved.stat().st_mtime_ns == stamp


def test_a_checkpoint_outside_a_run_folder_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        find_run(tmp_path / "missing.ckpt")
    stray = tmp_path / "stray.ckpt"
    stray.write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"no \.hydra/config\.yaml"):
        find_run(stray)
