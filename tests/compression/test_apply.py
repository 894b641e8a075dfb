"""apply_compression: default selection, validation before any change, records, configs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from imcompress.compression import (
    LowRankConv2d,
    apply_compression,
    default_selection,
    format_compression_table,
)

from .tiny_models import TinyResNet, assert_unchanged, snapshot

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
METHODS = ["none", "lr", "glr", "prune_unstructured", "prune_channel", "prune_pattern"]
BLOCK_CONVS = ["layer1.0.conv1", "layer1.0.conv2", "layer1.1.conv1", "layer1.1.conv2"]


def test_default_selection_skips_stem_shortcut_and_stride2(resnet: TinyResNet) -> None:
    assert default_selection(resnet) == [
        *BLOCK_CONVS,
        "layer2.0.conv2",  # layer2.0.conv1 has stride 2; layer2.0.shortcut.0 is 1x1
        "layer2.1.conv1",
        "layer2.1.conv2",
    ]


def test_default_selection_preactivation_blocks(wide_resnet: TinyResNet) -> None:
    selected = default_selection(wide_resnet)
    assert "conv1" not in selected and "layer2.0.shortcut" not in selected
    assert "layer2.0.conv2" not in selected  # stride 2 in this block variant
    assert "layer2.0.conv1" in selected and len(selected) == 7


def test_none_leaves_model_unchanged(resnet: TinyResNet) -> None:
    before = snapshot(resnet)
    for cfg in (None, {"method": "none"}, OmegaConf.create({"method": "none"})):
        result = apply_compression(resnet, cfg)
        assert result.method == "none" and result.layers == [] and result.pruner is None
        assert result.schedule is None
    assert_unchanged(resnet, before)
    assert "none" in format_compression_table(result)


def test_glr_converts_selection_and_reports(resnet: TinyResNet) -> None:
    x = torch.randn(2, 3, 8, 8)
    result = apply_compression(
        resnet, {"method": "glr", "rank": 0.5, "groups": 2, "exclude": ["layer2.1.*"]}
    )
    names = [r["name"] for r in result.layers]
    assert names == [*BLOCK_CONVS, "layer2.0.conv2"]
    for rec in result.layers:
        module = resnet.get_submodule(rec["name"])
        assert isinstance(module, LowRankConv2d) and module.groups == 2
        assert rec["rank"] == module.rank == round(0.5 * rec["max_rank"])
        assert rec["params_after"] == sum(p.numel() for p in module.parameters())
    assert rec["max_rank"] == 16 and rec["rank"] == 8  # layer2.0.conv2: min(16, 16*9/2)
    assert isinstance(resnet.layer2[1].conv1, torch.nn.Conv2d)
    assert resnet(x).shape == (2, 4)
    summary = result.summary()
    json.dumps(summary)
    assert summary["params_after"] < summary["params_before"]
    assert summary["model_params_after"] < summary["model_params_before"]
    table = format_compression_table(result)
    assert "layer1.0.conv1" in table and "2i" in table


def test_include_patterns_select_any_dense_conv(resnet: TinyResNet) -> None:
    result = apply_compression(
        resnet, {"method": "lr", "rank": 2, "include": ["conv1", "*.shortcut.*"]}
    )
    assert [r["name"] for r in result.layers] == ["conv1", "layer2.0.shortcut.0"]


BAD_CONFIGS = [
    (
        {"method": "glr", "rank": 2, "groups": 3},
        r"groups=3 does not divide the input channels for \d+ layers: layer1\.0\.conv1, "
        r".*\(valid: 1, 2, 4, 8\)",
    ),
    (
        {"method": "glr", "rank": 2, "groups": 16},
        r"groups=16 does not divide the input channels for \d+ layers: layer1\.0\.conv1",
    ),
    (
        {"method": "lr", "rank": 9},
        r"rank 9 exceeds .* valid: 1\.\.8 for \d+ layers: layer1\.0\.conv1",
    ),
    (
        {"method": "glr", "rank": 9, "groups": 2},
        r"rank 9 .*valid: 1\.\.8 for \d+ layers: layer1\.0\.conv1",
    ),
    (  # the first selected layers are valid, a later one is not
        {"method": "glr", "rank": 1, "groups": 16, "include": ["layer2.0.conv2", "*.shortcut.0"]},
        r"groups=16 does not divide the input channels for layer layer2\.0\.shortcut\.0 "
        r"\(valid: 1, 2, 4, 8\)",
    ),
    (
        {"method": "prune_pattern", "include": ["layer1.*", "*.shortcut.*"]},
        r"compression=prune_pattern: pattern pruning needs a square KxK, K>1 for layer "
        r"layer2\.0\.shortcut\.0",
    ),
    ({"method": "glr", "rank": 1.5}, r"rank ratio must be in \(0, 1\]"),
    ({"method": "glr", "rank": 0}, r"rank must be >= 1"),
    ({"method": "lr", "rank": 2, "groups": 2}, r"compression=glr"),
    ({"method": "glr", "rank": 2, "group_dim": "both"}, r"group_dim='both'.*\['in', 'out'\]"),
    ({"method": "glr", "rank": 2, "rnak": 3}, r"unknown compression field\(s\) \['rnak'\]"),
    ({"method": "lowrank"}, r"method='lowrank' is not valid"),
    ({"method": "prune_unstructured", "sparsity": 1.0}, r"sparsity must be in \[0, 1\), got 1\.0"),
    ({"method": "prune_unstructured", "sparsity": -0.1}, r"sparsity must be in \[0, 1\)"),
    ({"method": "prune_unstructured", "scope": "world"}, r"scope='world'"),
    ({"method": "prune_pattern", "pattern_set": "star"}, r"pattern_set='star'.*pconv"),
    ({"method": "prune_pattern", "pattern_set": "pconv", "pattern_entries": 2}, r"4-entry"),
    ({"method": "prune_pattern", "pattern_set": "nentry", "pattern_entries": 9}, r"1\.\.8"),
    (
        {"method": "prune_pattern", "include": ["*.shortcut.*"]},
        r"needs a square KxK, K>1 for .*shortcut\.0",
    ),
    ({"method": "prune_channel", "include": ["layer9.*"]}, r"match no dense Conv2d"),
    ({"method": "prune_channel", "exclude": ["*"]}, r"no layer selected"),
    ({"method": "prune_unstructured", "schedule": "slow"}, r"schedule='slow'"),
]


@pytest.mark.parametrize(("cfg", "message"), BAD_CONFIGS)
def test_bad_config_raises_before_any_change(resnet: TinyResNet, cfg: dict, message: str) -> None:
    before = snapshot(resnet)
    with pytest.raises(ValueError, match=message):
        apply_compression(resnet, cfg)
    assert_unchanged(resnet, before)


def test_rank_error_names_every_bad_layer(resnet: TinyResNet) -> None:
    with pytest.raises(ValueError) as err:
        apply_compression(resnet, {"method": "lr", "rank": 12})
    text = str(err.value)
    assert "7 layer(s)" not in text  # layer2 convs allow rank 12 (m = 16)
    assert all(name in text for name in BLOCK_CONVS) and "layer2.1.conv1" not in text


def _compose(*overrides: str) -> dict:
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(overrides=["+group=1", "+rank=0.25", "+sparsity=0.5", *overrides])
    return cfg


@pytest.mark.usefixtures("config_store")
@pytest.mark.parametrize("method", METHODS)
def test_every_config_composes_and_applies(method: str, resnet: TinyResNet) -> None:
    cfg = _compose(f"+compression={method}")
    assert cfg.compression.method == method
    result = apply_compression(resnet, cfg.compression)
    assert result.method == method
    assert (len(result.layers) == 7) == (method != "none")
    json.dumps(result.summary())


@pytest.mark.usefixtures("config_store")
def test_config_reads_top_level_keys() -> None:
    cfg = _compose("+compression=glr", "group=4", "rank=3")
    assert cfg.compression.groups == 4 and cfg.compression.rank == 3
    cfg = _compose("+compression=prune_channel", "sparsity=0.3")
    assert cfg.compression.sparsity == 0.3


@pytest.mark.usefixtures("config_store")
def test_config_typo_fails_at_compose_time() -> None:
    with pytest.raises(ConfigCompositionException):
        _compose("+compression=glr", "compression.rnak=3")
    with pytest.raises(ConfigCompositionException):
        _compose("+compression=prune_unstructured", "compression.pattern_set=pconv")


@pytest.mark.usefixtures("config_store")
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["+compression=glr", "compression.group_dim=both"],
            r"'both', expected one of \[in, out\]",
        ),
        (["+compression=lr", "compression.rank=abc"], r"incompatible with type hint"),
        (["+compression=lr", "compression.rank=true"], r"incompatible with type hint"),
        (["+compression=prune_pattern", "compression.pattern_dim=row"], r"kernel, input_channel"),
        (["+compression=prune_unstructured", "compression.scope=world"], r"layer, global"),
        (["+compression=prune_channel", "compression.schedule=slow"], r"oneshot, gradual"),
    ],
)
def test_values_outside_a_vocabulary_fail_at_compose_time(
    overrides: list[str], message: str
) -> None:
    with pytest.raises(ConfigCompositionException) as error:
        _compose(*overrides)
    assert re.search(message, str(error.value.__cause__)), error.value.__cause__


@pytest.mark.usefixtures("config_store")
def test_rank_keeps_int_and_float_apart() -> None:
    assert _compose("+compression=glr", "rank=4").compression.rank == 4
    assert isinstance(_compose("+compression=glr", "rank=4").compression.rank, int)
    assert isinstance(_compose("+compression=glr", "compression.rank=1.0").compression.rank, float)


def test_every_yaml_field_is_commented() -> None:
    for method in METHODS:
        lines = (CONF_DIR / "compression" / f"{method}.yaml").read_text().splitlines()
        fields = [ln for ln in lines if ln and not ln.startswith(("#", " ", "defaults"))]
        assert fields, method
        for line in fields:
            assert " # " in line, f"{method}.yaml: field without comment: {line}"


def test_schemas_registered(config_store: ConfigStore) -> None:
    listed = config_store.list("compression")
    for name in ("base_none", "base_lowrank", "base_prune_unstructured"):
        assert f"{name}.yaml" in listed
