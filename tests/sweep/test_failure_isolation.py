"""One failing job never stops the others (Hydra's basic in-process launcher)."""

from __future__ import annotations

import csv
from pathlib import Path

from tests.conftest import run_script


def test_failing_jobs_are_recorded_and_the_others_finish(tmp_path: Path) -> None:
    # Four jobs: one fine, one NaN loss (absurd learning rate), two invalid group counts.
    result = run_script(
        "train.py", "experiment=smoke", "compression=glr", "pretrained=none", "logger=none", "-m", "group=1,3",
        "optimizer.lr=0.05,1e38", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode != 0  # the multirun reports failure ...
    assert "3 of 4 jobs failed; the others' results are kept" in result.stderr
    (sweep,) = sorted((tmp_path / "outputs" / "smoke" / "multiruns").glob("*"))
    with open(sweep / "sweep_summary.csv") as handle:
        # Hydra normalises the swept float: optimizer.lr=1e38 is recorded as optimizer.lr=1e+38.
        rows = {
            (row["group"], "huge" if "lr=1e" in row["overrides"] else "ok"): row
            for row in csv.DictReader(handle)
        }
    assert len(rows) == 4
    good = rows[("1", "ok")]
    assert good["status"] == "completed" and float(good["test/acc"]) >= 0.0  # ... but ran every job
    assert float(good["hw/vwsdk/cycles"]) > 0 and int(good["parameters/total"]) > 0
    nan = rows[("1", "huge")]
    assert (
        nan["status"] == "failed" and "FloatingPointError" in nan["error"] and "nan" in nan["error"]
    )
    for lr in ("ok", "huge"):
        bad = rows[("3", lr)]
        assert bad["status"] == "failed" and "groups=3 does not divide" in bad["error"]
    assert (sweep / "acc_vs_cycles.png").exists() and (sweep / "acc_vs_energy.png").exists()


def test_submitit_local_launcher_runs_jobs_in_parallel_processes(tmp_path: Path) -> None:
    result = run_script(
        "train.py", "experiment=smoke", "compression=glr", "pretrained=none", "logger=none", "-m", "group=2,3",
        "hydra/launcher=submitit_local", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode != 0
    assert "1 of 2 jobs failed" in result.stderr
    (sweep,) = sorted((tmp_path / "outputs" / "smoke" / "multiruns").glob("*"))
    with open(sweep / "sweep_summary.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["group"], row["status"]) for row in rows] == [("2", "completed"), ("3", "failed")]
    assert (sweep / ".submitit").is_dir()  # ran through submitit, not in-process
