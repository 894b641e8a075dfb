"""src/plan.py, src/estimate.py and src/train.py as a user runs them: the estimate of a plan
equals its prediction, and the plan (here mixing two methods) fine-tunes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import read_summary, run_script


@pytest.mark.slow
def test_plan_cli_then_estimate_reproduces_the_prediction_and_train_fine_tunes_it(
    tmp_path: Path,
) -> None:
    plan_file = tmp_path / "plan.yaml"
    made = run_script(
        "plan.py",
        "experiment=smoke",  # ResNet-20, synthetic data
        "hw=imc64",
        "plan.methods=[glr,prune_pattern]",
        "plan.budget.metric=cycles",
        "plan.budget.value=16000",  # alone: ratio stays unset
        "plan.groups=[1,2,4]",
        f"plan.out={plan_file}",
        f"hydra.run.dir={tmp_path / 'plan'}",
        cwd=tmp_path,
    )
    assert made.returncode == 0, made.stderr[-3000:]
    plan = yaml.safe_load(plan_file.read_text())
    assert plan["proxy"] == "output" and plan["model"] == "resnet20" and plan["hw"] == "imc64"
    assert plan["methods"] == ["glr", "prune_pattern"]
    assert plan["predicted"]["cycles"] <= plan["budget"]["value"] == 16000
    assert "ratio" not in plan["budget"]
    job = tmp_path / "estimate"
    common = ["experiment=smoke", "hw=imc64", "compression=plan", f"compression.plan={plan_file}"]
    estimated = run_script("estimate.py", *common, f"hydra.run.dir={job}", cwd=tmp_path)
    assert estimated.returncode == 0, estimated.stderr[-3000:]
    cost = read_summary(job)["cost"]
    for key in ("cycles", "latency_us", "energy_uj", "arrays"):
        assert cost[f"sdk/{key}"] == plan["predicted"][key], key  # exact, floats included
    trained = run_script(
        "train.py",
        *common,
        "pretrained=none",
        "logger=none",
        f"hydra.run.dir={tmp_path / 'train'}",
        cwd=tmp_path,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    summary = read_summary(tmp_path / "train")
    assert summary["status"] == "completed"
    compressed = {layer["name"]: layer for layer in summary["compression"]["layers"]}
    planned = {name: e for name, e in plan["layers"].items() if e["method"] != "none"}
    assert set(compressed) == set(planned)
    for name, entry in planned.items():
        if entry["method"] == "glr":
            assert (compressed[name]["rank"], compressed[name]["groups"]) == (
                entry["rank"],
                entry["groups"],
            )
        else:
            assert compressed[name]["sparsity"] >= entry["sparsity"] - 0.01
    # pruned weights not counted (summary["parameters"] counts every stored weight)
    assert summary["compression"]["model_params_after"] == plan["predicted"]["params"]
