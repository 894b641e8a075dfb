"""src/plan.py and src/estimate.py as a user runs them: the estimate of the plan equals it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import read_summary, run_script


@pytest.mark.slow
def test_plan_cli_then_estimate_reproduces_the_prediction(tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.yaml"
    common = ["data=synthetic", "hw=imc64", "model=resnet20"]
    made = run_script(
        "plan.py",
        *common,
        "plan.budget.metric=cycles",
        "plan.budget.ratio=0.6",
        "plan.groups=[1,2,4]",
        f"plan.out={plan_file}",
        f"hydra.run.dir={tmp_path / 'plan'}",
        cwd=tmp_path,
    )
    assert made.returncode == 0, made.stderr[-3000:]
    plan = yaml.safe_load(plan_file.read_text())
    assert plan["proxy"] == "output" and plan["model"] == "resnet20" and plan["hw"] == "imc64"
    assert plan["predicted"]["cycles"] <= plan["budget"]["value"]
    job = tmp_path / "estimate"
    estimated = run_script(
        "estimate.py",
        *common,
        "compression=glr",
        f"compression.plan={plan_file}",
        f"hydra.run.dir={job}",
        cwd=tmp_path,
    )
    assert estimated.returncode == 0, estimated.stderr[-3000:]
    cost = read_summary(job)["cost"]
    for key in ("cycles", "latency_us", "energy_uj", "arrays"):
        assert cost[f"sdk/{key}"] == plan["predicted"][key], key
    trained = run_script(
        "train.py",
        "experiment=smoke",
        "logger=none",
        "hw=imc64",
        "compression=glr",
        f"compression.plan={plan_file}",
        f"hydra.run.dir={tmp_path / 'train'}",
        cwd=tmp_path,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    summary = read_summary(tmp_path / "train")
    assert summary["status"] == "completed"
    compressed = {layer["name"]: layer for layer in summary["compression"]["layers"]}
    planned = {name: e for name, e in plan["layers"].items() if not e.get("dense")}
    assert set(compressed) == set(planned)
    for name, entry in planned.items():
        assert (compressed[name]["rank"], compressed[name]["groups"]) == (
            entry["rank"],
            entry["group"],
        )
    assert summary["parameters"]["total"] == plan["predicted"]["params"]
