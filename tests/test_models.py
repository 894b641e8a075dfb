"""Model shapes and exact parameter counts against closed-form formulas."""

from __future__ import annotations

import pytest
import torch

from imcompress.models import CifarResNet, WideResNet, build_model


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


def test_build_model_from_config_and_bad_values() -> None:
    model = build_model(
        {"name": "resnet20", "arch": "resnet", "depth": 20}, in_channels=1, num_classes=10
    )
    assert count(model) == resnet_params(20, 10, in_channels=1)
    with pytest.raises(ValueError, match="unknown model arch 'vgg'"):
        build_model({"arch": "vgg"}, 3, 10)
    with pytest.raises(ValueError, match="6n\\+2"):
        CifarResNet(depth=21)
    with pytest.raises(ValueError, match="6n\\+4"):
        WideResNet(depth=15)
