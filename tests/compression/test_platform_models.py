"""The platform's own ResNet-20 and WRN-16-4 under every method (structure-only assumptions)."""

from __future__ import annotations

import pytest
import torch

from imcompress.compression import LowRankConv2d, apply_compression, default_selection
from imcompress.models.build import build_model

ARCHS = {
    "resnet20": ({"_target_": "imcompress.models.CifarResNet", "depth": 20}, 16),  # 18 - 2 stride-2
    "wrn16_4": ({"_target_": "imcompress.models.WideResNet", "depth": 16, "widen_factor": 4}, 10),
}


def _build(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(ARCHS[name][0], in_channels=3, num_classes=10)


@pytest.mark.parametrize("name", list(ARCHS))
def test_default_selection_counts(name: str) -> None:
    model = _build(name)
    selected = default_selection(model)
    assert len(selected) == ARCHS[name][1]
    for layer in selected:
        conv = model.get_submodule(layer)
        assert conv.kernel_size == (3, 3) and conv.stride == (1, 1)
        assert "shortcut" not in layer and not layer.startswith("stem")


@pytest.mark.parametrize("name", list(ARCHS))
@pytest.mark.parametrize(
    "cfg",
    [
        {"method": "glr", "rank": 0.25, "groups": 4},
        {"method": "prune_channel", "sparsity": 0.5},
        {"method": "prune_pattern", "pattern_dim": "input_channel", "sparsity": 0.6},
    ],
    ids=["glr", "channel", "pattern"],
)
def test_methods_run_on_platform_models(name: str, cfg: dict) -> None:
    model = _build(name)
    result = apply_compression(model, cfg)
    assert len(result.layers) == ARCHS[name][1]
    model.eval()
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    if cfg["method"] == "glr":
        assert sum(isinstance(m, LowRankConv2d) for m in model.modules()) == ARCHS[name][1]
    if cfg["method"] == "prune_channel":
        coupled = [r for r in result.layers if "next_conv_inputs" in r["coupled"]]
        conv1s = [r for r in result.layers if r["name"].endswith("conv1")]
        assert coupled == conv1s  # every selected conv1 feeds its block's conv2
