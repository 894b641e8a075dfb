"""The plan file and the plan seam: typed fields, the right target, atomic writes, plans that
mix methods, and a method planned through the registry alone (the toy quantizer)."""

from __future__ import annotations

import copy
import errno
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from torch import nn

from imcompress.compression import apply_compression, count_parameters
from imcompress.compression.options import parse_options
from imcompress.compression.plan_file import read_plan, write_plan
from imcompress.compression.registry import (
    METHODS,
    CompressionMethod,
    Conversion,
    Targets,
    register_method,
)
from imcompress.compression.schemas import SelectionFields
from imcompress.compression.selection import select_layers
from imcompress.crossbar import estimate
from imcompress.models.resnet import CifarResNet
from imcompress.planner.config import Budget
from imcompress.planner.items import weight_items
from imcompress.planner.search import PlanRequest, build_problem, make_plan
from tests.planner.conftest import INPUT_SHAPE

GRID = (0.25, 0.5, 0.75, 0.9)


def plan_of(model: nn.Module, hw: Any, methods: list[str], budget: Budget) -> Any:
    request = PlanRequest(
        model,
        INPUT_SHAPE,
        select_layers(model),
        {m: parse_options({"method": m}) for m in methods},
        hw,
        "sdk",
        sparsity_grid=GRID,
        model_name="tiny",
    )
    return make_plan(request, budget)


def node(path: Path, **kw: Any) -> dict[str, Any]:
    return {
        "method": "plan",
        "plan": str(path),
        "model": "tiny",
        "input_shape": [*INPUT_SHAPE],
        **kw,
    }


def estimated(model: nn.Module, hw: Any, path: Path) -> dict[str, float]:
    applied = copy.deepcopy(model)
    apply_compression(applied, node(path)).apply_final_masks()
    totals = estimate(applied, INPUT_SHAPE, hw, ["sdk"]).totals()
    out = {k: totals[f"sdk/{k}"] for k in ("cycles", "latency_us", "energy_uj", "arrays")}
    return {**out, "params": count_parameters(applied)}


def test_every_field_type_is_checked_naming_layer_field_value_and_type(
    tmp_path: Path, model: nn.Module, hw: Any
) -> None:
    raw = plan_of(model, hw, ["glr"], Budget("params", ratio=0.6)).to_dict()
    first, second = list(raw["layers"])[:2]
    raw["layers"][first].update(method="glr", rank=True, groups=1)
    raw["layers"][second]["shape"] = 5
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError) as error:
        apply_compression(model, node(path))
    text = str(error.value)
    assert f"{first}: rank: True is not int | float" in text
    assert f"{second}: shape: 5 is not a list of int" in text
    # a format-1 plan (one method, `dense: true`) is read; `dense: "no"` is refused
    legacy = {
        "method": "glr",
        "model": "tiny",
        "hw": "imc32",
        "mapping": "sdk",
        "input_shape": [*INPUT_SHAPE],
        "budget": {},
        "predicted": {},
        "dense": {},
        "layers": {first: {"dense": "no", "shape": raw["layers"][first]["shape"]}},
    }
    path.write_text(yaml.safe_dump(legacy))
    with pytest.raises(ValueError, match=rf"{first}: method .*dense: 'no' is not bool"):
        read_plan(path)
    legacy["layers"][first]["dense"] = True
    path.write_text(yaml.safe_dump(legacy))
    assert read_plan(path).layers[first].method == "none"


def test_a_plan_for_another_model_or_input_is_refused_and_other_hw_warned(
    tmp_path: Path, model: nn.Module, hw: Any, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_plan(plan_of(model, hw, ["glr"], Budget("cycles", ratio=0.8)), tmp_path / "p.yaml")
    deeper = CifarResNet(depth=14, num_classes=10, in_channels=1, widths=(8, 16, 32))
    with pytest.raises(
        ValueError, match=r"made for model tiny .* the configured one is model tiny .*convs\)"
    ) as error:
        apply_compression(deeper, node(path))  # same names and shapes for the planned layers
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match=r"input \[1, 32, 32\]"):
        apply_compression(copy.deepcopy(model), node(path, input_shape=[1, 32, 32]))
    with pytest.raises(ValueError, match="model resnet20"):
        apply_compression(copy.deepcopy(model), node(path, model="resnet20"))
    with caplog.at_level(logging.WARNING):
        apply_compression(copy.deepcopy(model), node(path, hw="imc256"))
    assert "predicted` costs do not apply" in caplog.text


def test_a_failed_write_leaves_no_plan_and_keeps_the_old_one(
    tmp_path: Path, model: nn.Module, hw: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = plan_of(model, hw, ["glr"], Budget("cycles", ratio=0.8))
    fresh, old = tmp_path / "new.yaml", tmp_path / "old.yaml"
    old.write_text("previous plan\n")

    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    for target in (fresh, old):
        with pytest.raises(OSError, match="disk full"):
            write_plan(plan, target)
    assert not fresh.exists() and old.read_text() == "previous plan\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.yaml"]  # no temp file left


def test_a_mixed_plan_is_no_worse_than_either_method_and_costs_its_prediction(
    tmp_path: Path, model: nn.Module, hw: Any
) -> None:
    budget = Budget("cycles", ratio=0.75)
    mixed = plan_of(model, hw, ["glr", "prune_pattern"], budget)
    for single in (["glr"], ["prune_pattern"]):
        assert (
            mixed.predicted["error"]
            <= plan_of(model, hw, single, budget).predicted["error"] + 1e-12
        )
    path = write_plan(mixed, tmp_path / "mixed.yaml")
    measured = estimated(model, hw, path)
    assert {k: mixed.predicted[k] for k in measured} == measured  # exact, floats included
    assert read_plan(path).methods == ["glr", "prune_pattern"]


# --- the toy quantizer of docs/adding-a-method.md, plus its planner hook ---------------------


@dataclass
class QuantizeConfig(SelectionFields):
    method: str = "quantize_test"
    levels: int = 16


@dataclass(frozen=True)
class QuantizeLayer:
    levels: int


def quantized(weight: torch.Tensor, levels: int) -> torch.Tensor:
    low, high = weight.min(), weight.max()
    step = (high - low).clamp_min(1e-12) / (levels - 1)
    return low + ((weight - low) / step).round() * step


class Quantize(CompressionMethod[QuantizeConfig, QuantizeLayer]):
    name = "quantize_test"
    schema = QuantizeConfig
    layer_type = QuantizeLayer

    def layer_settings(self, opts: QuantizeConfig, targets: Targets) -> dict[str, QuantizeLayer]:
        return {name: QuantizeLayer(opts.levels) for name, _ in targets}

    def apply(
        self,
        model: nn.Module,
        targets: Targets,
        opts: QuantizeConfig,
        settings: Mapping[str, QuantizeLayer],
    ) -> Conversion:
        with torch.no_grad():
            for name, conv in targets:
                conv.weight.copy_(quantized(conv.weight, settings[name].levels))
        return Conversion(layers=[{"name": n, "method": self.name} for n, _ in targets])

    def plan_items(self, opts: QuantizeConfig, space: Any) -> list[Any]:
        candidates = {
            name: [(QuantizeLayer(k), quantized(conv.weight.detach(), k)) for k in (2, 4, 16)]
            for name, conv in space.targets
        }
        return weight_items(space, self.name, candidates)


@pytest.fixture
def quantize() -> Iterator[None]:
    register_method(Quantize)
    yield
    del METHODS["quantize_test"]


def test_a_method_is_planned_and_applied_through_the_registry_alone(
    tmp_path: Path, model: nn.Module, hw: Any, quantize: None
) -> None:
    request = PlanRequest(
        model, INPUT_SHAPE, select_layers(model), {"quantize_test": QuantizeConfig()}, hw, "sdk"
    )
    problem = build_problem(request)  # the candidates come from the method's own hook
    offered = {c[item.targets[0]] for item in problem.items for c in item.choices}
    assert ("quantize_test", QuantizeLayer(4)) in offered and ("none", None) in offered
    plan = make_plan(request, Budget("params", ratio=1.0))  # dense is free of error: chosen
    name = next(iter(plan.layers))
    plan.layers[name] = replace(
        plan.layers[name], method="quantize_test", settings=QuantizeLayer(4)
    )
    path = write_plan(plan, tmp_path / "q.yaml")
    assert read_plan(path).layers[name].settings == QuantizeLayer(4)
    applied = copy.deepcopy(model)
    result = apply_compression(applied, node(path))
    assert [r["name"] for r in result.layers] == [name]
    assert applied.get_submodule(name).weight.unique().numel() <= 4


# --- the plan config: composed as src/plan.py composes it -----------------------------------


@pytest.fixture
def plan_compose(compose: Any) -> Any:
    from hydra.core.config_store import ConfigStore

    from imcompress.planner.config import register_plan_schema

    register_plan_schema(ConfigStore.instance())
    return lambda overrides: compose(overrides, config_name="plan")


def test_plan_options_are_checked_at_compose_time_and_value_alone_is_a_budget(
    plan_compose: Any,
) -> None:
    from hydra.errors import ConfigCompositionException
    from omegaconf.errors import ValidationError

    from imcompress.planner.config import check_plan_config

    for bad in ("plan.budget.metric=speed", "plan.mapping=diag", "plan.sensitivity=hessian"):
        with pytest.raises((ConfigCompositionException, ValidationError)) as error:
            plan_compose([bad])
        assert bad.split("=")[1] in str(error.value) + str(error.value.__cause__)
    cfg = plan_compose(["experiment=smoke", "plan.budget.value=15000"])
    assert cfg.data.name == "synthetic" and cfg.plan.budget.ratio is None
    check_plan_config(cfg.plan)  # value alone: valid
    with pytest.raises(ValueError, match="exactly one"):
        check_plan_config(plan_compose(["plan.budget.value=1", "plan.budget.ratio=0.5"]).plan)
    with pytest.raises(ValueError, match="cannot be planned"):
        check_plan_config(plan_compose(["plan.methods=[glr,none]"]).plan)


def test_compression_plan_node_carries_the_configured_model_input_and_hw(compose: Any) -> None:
    from omegaconf import OmegaConf

    cfg = compose(["compression=plan", "compression.plan=x.yaml", "data=synthetic", "hw=imc64"])
    node = OmegaConf.to_container(cfg.compression, resolve=True)
    assert node["model"] == cfg.model.name and node["hw"] == "imc64"
    assert node["input_shape"] == [3, 32, 32]
    opts = parse_options(node)
    assert opts.input_shape == [3, 32, 32] and opts.plan == "x.yaml"


def test_activation_criterion_is_planned_from_calibration_inputs_and_applied_per_layer(
    tmp_path: Path, model: nn.Module, hw: Any, batches: Any
) -> None:
    from imcompress.planner.proxy import capture_inputs

    opts = parse_options({"method": "prune_unstructured", "criterion": "activation"})
    targets = select_layers(model)
    request = PlanRequest(
        model, INPUT_SHAPE, targets, {"prune_unstructured": opts}, hw, "sdk", sparsity_grid=GRID
    )
    with pytest.raises(ValueError, match=r"plan\.calibration_batches >= 1"):
        make_plan(request, Budget("params", ratio=0.6))
    inputs = capture_inputs(model, batches, targets)
    plan = make_plan(replace(request, inputs=inputs), Budget("params", ratio=0.6))
    path = write_plan(plan, tmp_path / "act.yaml")
    applied = copy.deepcopy(model)
    cfg = {"method": "prune_unstructured", "criterion": "activation", "plan": str(path)}
    result = apply_compression(applied, cfg, calibration=batches)
    records = {r["name"]: r for r in result.layers}
    for name, layer in plan.layers.items():
        if layer.method != "none":
            assert records[name]["sparsity"] == pytest.approx(layer.settings.sparsity, abs=1e-3)
