"""The method registry: docs/adding-a-method.md's walk-through, done for real in a test."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.errors import ConfigCompositionException
from torch import nn

from imcompress.compression import apply_compression, format_compression_table, registry
from imcompress.compression.registry import (
    CompressionMethod,
    Conversion,
    Targets,
    register_compression_schemas,
    register_method,
)
from imcompress.compression.schemas import SelectionFields
from imcompress.config import register_configs

from .tiny_models import TinyResNet, assert_unchanged, snapshot

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"

# ---- the module of the walk-through (src/imcompress/compression/methods/quantize.py) ----

Rounding = StrEnum("Rounding", ["nearest", "floor"])  # the `rounding` option's vocabulary


@dataclass
class QuantizeConfig(SelectionFields):
    """Schema of conf/compression/quantize.yaml (stored as base_quantize)."""

    method: str = "quantize"
    levels: int = 16
    rounding: Rounding = Rounding["nearest"]


@dataclass(frozen=True)
class QuantizeLayer:
    """What one layer gets: its number of weight values."""

    levels: int


class Quantize(CompressionMethod[QuantizeConfig, QuantizeLayer]):
    """Uniform weight quantization of every selected conv to ``levels`` values."""

    name = "quantize"
    schema = QuantizeConfig

    def check(self, opts: QuantizeConfig) -> None:
        if opts.levels < 2:
            raise ValueError(f"compression.levels must be >= 2, got {opts.levels}")

    def layer_settings(self, opts: QuantizeConfig, targets: Targets) -> dict[str, QuantizeLayer]:
        return {name: QuantizeLayer(levels=opts.levels) for name, _ in targets}

    def apply(
        self,
        model: nn.Module,
        targets: Targets,
        opts: QuantizeConfig,
        settings: Mapping[str, QuantizeLayer],
    ) -> Conversion:
        records = []
        for name, conv in targets:
            levels = settings[name].levels
            with torch.no_grad():
                weight = conv.weight
                low, high = weight.min(), weight.max()
                step = (high - low).clamp_min(1e-12) / (levels - 1)
                scaled = (weight - low) / step
                rounded = scaled.round() if opts.rounding == Rounding["nearest"] else scaled.floor()
                weight.copy_(low + rounded * step)
            records.append(
                {
                    "name": name,
                    "method": self.name,
                    "shape": list(weight.shape),
                    "rank": None,
                    "groups": None,
                    "params_before": weight.numel(),
                    "params_after": weight.numel(),
                    "sparsity": None,
                    "levels": levels,
                }
            )
        return Conversion(layers=records)


QUANTIZE_YAML = """\
# Uniform weight quantization of the selected convs to `levels` values per layer.
defaults:
  - base_quantize
  - _self_

method: quantize  # compression method
levels: 16  # weight values per layer, >= 2
rounding: nearest  # nearest | floor
include: []  # glob patterns on module names; empty = default selection
exclude: []  # glob patterns removed from the selection
"""

# ---- the walk-through ----


@pytest.fixture
def quantize_registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Quantize registered for this test only (a copy of the registry, schema removed after)."""
    monkeypatch.setattr(registry, "METHODS", dict(registry.METHODS))
    register_method(Quantize)  # what @register_method on the class does at import
    register_configs()
    yield
    ConfigStore.instance().repo["compression"].pop("base_quantize.yaml", None)


def _compose(search_dir: Path, *overrides: str) -> dict:
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose(
            config_name="train",
            overrides=[f"hydra.searchpath=[file://{search_dir}]", *overrides],
        )


@pytest.mark.usefixtures("quantize_registered")
def test_adding_a_method_is_one_module_and_one_yaml(tmp_path: Path, resnet: TinyResNet) -> None:
    (tmp_path / "compression").mkdir()
    (tmp_path / "compression" / "quantize.yaml").write_text(QUANTIZE_YAML)
    cfg = _compose(tmp_path, "compression=quantize", "compression.levels=4")
    assert cfg.compression.levels == 4 and cfg.compression.rounding == "nearest"
    with pytest.raises(ConfigCompositionException):  # outside the vocabulary: at compose time
        _compose(tmp_path, "compression=quantize", "compression.rounding=up")

    stem = resnet.conv1.weight.detach().clone()
    result = apply_compression(resnet, cfg.compression)
    assert [r["name"] for r in result.layers][:2] == ["layer1.0.conv1", "layer1.0.conv2"]
    for record in result.layers:
        weight = resnet.get_submodule(record["name"]).weight
        assert 2 <= weight.unique().numel() <= 4, record["name"]
    assert torch.equal(resnet.conv1.weight, stem)  # the stem is not in the default selection
    assert json.dumps(result.summary()) and "layer1.0.conv1" in format_compression_table(result)
    assert result.options["rounding"] == "nearest"

    before = snapshot(resnet)
    with pytest.raises(ValueError, match=r"levels must be >= 2, got 1"):
        apply_compression(resnet, {"method": "quantize", "levels": 1})
    with pytest.raises(ValueError, match=r"rounding='up' is not valid; choose one of"):
        apply_compression(resnet, {"method": "quantize", "rounding": "up"})
    assert_unchanged(resnet, before)


def test_a_taken_name_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "METHODS", dict(registry.METHODS))

    class OtherGlr(Quantize):
        name = "glr"

    with pytest.raises(ValueError, match=r"'glr' is already registered by .*GroupLowRank"):
        register_method(OtherGlr)


def test_every_registered_method_has_a_yaml_on_its_schema() -> None:
    for name, method in registry.METHODS.items():
        text = (CONF_DIR / "compression" / f"{name}.yaml").read_text()
        assert f"  - {method.config_name()}\n" in text, name
        assert f"method: {name} " in text, name


def test_schemas_are_registered() -> None:
    store = ConfigStore()
    register_compression_schemas(store)
    assert {"base_none.yaml", "base_lowrank.yaml", "base_prune_pattern.yaml"} <= set(
        store.list("compression")
    )
