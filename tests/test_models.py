"""Model shapes and exact parameter counts against closed-form formulas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from omegaconf import open_dict
from torch import nn

from imcompress.jobs.estimate import run_estimate
from imcompress.models import CifarResNet, WideResNet
from imcompress.models.build import build_model


def conv(cin: int, cout: int, k: int) -> int:
    return cin * cout * k * k


def bn(c: int) -> int:
    return 2 * c


def resnet_params(depth: int, classes: int, in_channels: int = 3) -> int:
    n = (depth - 2) // 6
    total = conv(in_channels, 16, 3) + bn(16)
    channels = 16
    for width in (16, 32, 64):
        for _ in range(n):
            total += conv(channels, width, 3) + bn(width) + conv(width, width, 3) + bn(width)
            if channels != width:
                total += conv(channels, width, 1) + bn(width)
            channels = width
    return total + 64 * classes + classes


def wrn_params(depth: int, k: int, classes: int, in_channels: int = 3) -> int:
    n = (depth - 4) // 6
    total = conv(in_channels, 16, 3)
    channels = 16
    for width in (16 * k, 32 * k, 64 * k):
        for _ in range(n):
            total += bn(channels) + conv(channels, width, 3) + bn(width) + conv(width, width, 3)
            if channels != width:
                total += conv(channels, width, 1)
            channels = width
    return total + bn(channels) + channels * classes + classes


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("depth", [20, 32, 56])
@pytest.mark.parametrize("classes", [10, 100])
def test_resnet_parameter_count_matches_formula(depth: int, classes: int) -> None:
    assert count(CifarResNet(depth, classes)) == resnet_params(depth, classes)


def test_resnet20_is_about_027m_and_wrn16_4_about_275m() -> None:
    assert count(CifarResNet(20, 10)) == 272_474
    assert abs(count(WideResNet(16, 4, 10)) - 2.75e6) / 2.75e6 < 0.01


@pytest.mark.parametrize("classes", [10, 100])
def test_wrn_parameter_count_matches_formula(classes: int) -> None:
    assert count(WideResNet(16, 4, classes)) == wrn_params(16, 4, classes)


@pytest.mark.parametrize(
    ("model", "channels"),
    [(CifarResNet(20, 7, in_channels=1), 1), (WideResNet(16, 2, 7, in_channels=3, dropout=0.3), 3)],
)
def test_output_shape_and_input_channels(model: torch.nn.Module, channels: int) -> None:
    out = model(torch.randn(3, channels, 32, 32))
    assert out.shape == (3, 7)


def test_build_model_from_config_and_bad_values(compose: Any) -> None:
    for name, expected in [("resnet20", resnet_params(20, 10, 1)), ("wrn16_4", None)]:
        cfg = compose([f"model={name}"]).model
        model = build_model(cfg, in_channels=1, num_classes=10)
        assert type(model).__name__ == cfg._target_.rsplit(".", 1)[1]
        assert expected is None or count(model) == expected
    with pytest.raises(ValueError, match="model config has no _target_"):
        build_model({"depth": 20}, 3, 10)
    with pytest.raises(TypeError, match=r"not a torch\.nn\.Module"):
        build_model({"_target_": "builtins.dict"}, 3, 10)
    with pytest.raises(ValueError, match="6n\\+2"):
        CifarResNet(depth=21)
    with pytest.raises(ValueError, match="6n\\+4"):
        WideResNet(depth=15)


class TinyNet(nn.Module):
    """A user's own network, defined outside the package: one conv, pool, linear."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, width, 3, padding=1)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x).mean(dim=(2, 3)))


CUSTOM_MODEL = [f"model._target_={__name__}.TinyNet", "~model.depth", "~model.widths"]


def test_a_user_model_plugs_in_by_target(compose: Any, tmp_path: Path) -> None:
    cfg = compose([*CUSTOM_MODEL, "+model.width=6", "model.name=tiny"])
    model = build_model(cfg.model, in_channels=1, num_classes=3)
    assert isinstance(model, TinyNet) and model.conv.out_channels == 6
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 3)

    job = compose(  # the same override through estimate's job: build, compress, cost
        [
            *CUSTOM_MODEL,
            "compression=prune_unstructured",
            "compression.include=[conv]",
            f"paths.output_dir={tmp_path}",
            f"paths.data_dir={tmp_path}",
            "data=synthetic",
        ],
        config_name="estimate",
    )
    with open_dict(job):
        del job["hydra"]  # a composed config, not a Hydra run: no runtime to resolve
    assert run_estimate(job) > 0
    layers = json.loads((tmp_path / "summary.json").read_text())["compression"]["layers"]
    assert [layer["name"] for layer in layers] == ["conv"]


def test_run_folders_from_before_model_targets_still_build() -> None:
    """A saved config with the old ``arch`` key (no ``_target_``) builds the same network."""
    from imcompress.models.build import build_model as build

    old = build({"arch": "resnet", "depth": 20, "name": "resnet20"}, 1, 10)
    new = build({"_target_": "imcompress.models.CifarResNet", "depth": 20}, 1, 10)
    assert type(old) is type(new)
    assert [p.shape for p in old.parameters()] == [p.shape for p in new.parameters()]
