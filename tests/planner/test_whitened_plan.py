"""A plan made with factorization=whitened: its candidates' errors are the whitened ones, the
plan records the factorization, and applying it gives whitened factors whose output error on the
calibration inputs is the plan's error."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from imcompress.compression import apply_compression
from imcompress.compression.calibration import collect_calibration, relative_errors
from imcompress.compression.lowrank import LowRankConv2d
from imcompress.compression.options import parse_options
from imcompress.compression.plan_file import write_plan
from imcompress.compression.selection import select_layers
from imcompress.crossbar.config import HardwareConfig
from imcompress.planner.config import Budget
from imcompress.planner.proxy import capture_inputs
from imcompress.planner.search import PlanRequest, make_plan
from tests.planner.conftest import INPUT_SHAPE


def calibration(model: nn.Module, seed: int) -> tuple[list[torch.Tensor], Any, Any]:
    """Two random batches, the default layer selection and the planner's sampled inputs."""
    torch.manual_seed(seed)
    batches = [torch.randn(8, *INPUT_SHAPE) for _ in range(2)]
    targets = select_layers(model)
    return batches, targets, capture_inputs(model, batches, targets, 4096, batch_count=2)


def test_whitened_plan_is_applied_whitened(
    model: nn.Module, hw: HardwareConfig, tmp_path: Path
) -> None:
    batches, targets, inputs = calibration(model, seed=1)
    opts = parse_options({"method": "glr", "factorization": "whitened"})
    request = PlanRequest(
        model,
        INPUT_SHAPE,
        targets,
        {"glr": opts},
        hw,
        "sdk",
        inputs=inputs,
        groups=[1, 2],
        model_name="tiny",
    )
    plan = make_plan(request, Budget("cycles", ratio=0.8))
    assert plan.options["glr"]["factorization"] == "whitened"
    path = write_plan(plan, tmp_path / "plan.yaml")
    node = {"method": "plan", "plan": str(path)}
    with pytest.raises(ValueError, match="factorization=whitened needs calibration data"):
        apply_compression(copy.deepcopy(model), node)
    applied = copy.deepcopy(model)
    dense = collect_calibration(model, targets, batches)  # the inputs apply_compression sees
    result = apply_compression(applied, node, calibration=batches)
    converted = [r for r in result.layers if r.get("rank") is not None]
    assert converted and {r["factorization"] for r in converted} == {"whitened"}
    for record in converted:
        module = applied.get_submodule(record["name"])
        assert isinstance(module, LowRankConv2d)
        errors = relative_errors(
            dense.weights[record["name"]], module.reconstruct(), dense.inputs[record["name"]]
        )
        assert errors["output_rel_error"] == pytest.approx(record["output_rel_error"], abs=1e-6)
        # the plan's proxy (squared relative output error) is the applied module's: the same
        # sampled inputs (4096 positions, seed 0) reach the planner and apply_compression
        planned = plan.layers[record["name"]].error
        assert planned == pytest.approx(errors["output_rel_error"] ** 2, rel=1e-3, abs=1e-6)


def test_plans_record_the_pruning_criterion_and_compression_plan_applies_it(
    model: nn.Module, hw: HardwareConfig, tmp_path: Path
) -> None:
    """``criterion=activation`` is recorded in a plan (a mixed one next to the GLR
    factorization), and ``compression=plan``, which takes each method's options from the plan,
    scores the pattern masks with the input norms: without data it is refused naming it."""
    batches, targets, inputs = calibration(model, seed=2)
    glr = parse_options({"method": "glr", "factorization": "whitened"})
    pattern = parse_options(
        {"method": "prune_pattern", "pattern_set": "pconv", "criterion": "activation"}
    )

    def plan_of(methods: dict[str, object], metric: str, ratio: float) -> Path:
        request = PlanRequest(model, INPUT_SHAPE, targets, methods, hw, "sdk", inputs=inputs,
                              groups=[1, 2], sparsity_grid=(0.5, 0.75), model_name="tiny")  # fmt: skip
        plan = make_plan(request, Budget(metric, ratio=ratio))
        assert plan.options["prune_pattern"]["criterion"] == "activation"
        return write_plan(plan, tmp_path / f"{'+'.join(methods)}.yaml")

    mixed = plan_of({"glr": glr, "prune_pattern": pattern}, "cycles", 0.7)
    assert "factorization: whitened" in mixed.read_text()
    node = {"method": "plan", "plan": str(plan_of({"prune_pattern": pattern}, "params", 0.6))}
    with pytest.raises(ValueError, match="criterion=activation needs calibration data"):
        apply_compression(copy.deepcopy(model), node)  # the criterion came from the plan
    result = apply_compression(copy.deepcopy(model), node, calibration=batches)
    assert any(record.get("sparsity") for record in result.layers)
