"""Fixtures of the compression tests."""

from __future__ import annotations

import pytest
import torch
from hydra.core.config_store import ConfigStore

from imcompress.compression import register_compression_schemas

from .tiny_models import TinyResNet, WideBasicBlock


@pytest.fixture
def resnet() -> TinyResNet:
    torch.manual_seed(0)
    return TinyResNet()


@pytest.fixture
def wide_resnet() -> TinyResNet:
    torch.manual_seed(0)
    return TinyResNet(block=WideBasicBlock)


@pytest.fixture(scope="session")
def config_store() -> ConfigStore:
    cs = ConfigStore.instance()
    register_compression_schemas(cs)
    return cs
