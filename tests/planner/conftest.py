"""Small models and hardware for the planner tests (seconds each)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import nn

from imcompress.crossbar.config import HardwareConfig
from imcompress.models.resnet import CifarResNet

INPUT_SHAPE = (1, 16, 16)


def tiny_resnet(seed: int = 0) -> nn.Module:
    """ResNet-8 (one block per stage) with 8/16/32 channels, random BN statistics."""
    torch.manual_seed(seed)
    model = CifarResNet(depth=8, num_classes=10, in_channels=1, widths=(8, 16, 32))
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    return model.eval()


@pytest.fixture
def model() -> nn.Module:
    return tiny_resnet()


@pytest.fixture
def hw() -> HardwareConfig:
    return HardwareConfig(name="imc32", rows=32, cols=32, adc_bits=6)


@pytest.fixture
def batches() -> list[torch.Tensor]:
    torch.manual_seed(1)
    return [torch.randn(8, *INPUT_SHAPE)]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Small SVDs and products run many times faster on one thread of a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
