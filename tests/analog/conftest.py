"""Fixtures of the analog tests: presets composed from conf/analog, tiny compressed models."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
from hydra import compose, initialize_config_dir

from imcompress.analog.schema import TileSettings, resolve_settings
from imcompress.compression import apply_compression
from imcompress.config import register_configs
from imcompress.models.resnet import CifarResNet

from ..conftest import CONF_DIR

# Every compression method of the platform, as apply_compression configs.
METHODS: dict[str, dict[str, Any]] = {
    "dense": {"method": "none"},
    "lr": {"method": "lr", "rank": 0.5},
    "glr": {"method": "glr", "rank": 0.5, "groups": 2},
    "glr_out": {"method": "glr", "rank": 0.5, "groups": 2, "group_dim": "out"},
    "prune_unstructured": {"method": "prune_unstructured", "sparsity": 0.6},
    "prune_channel": {"method": "prune_channel", "sparsity": 0.5},
    "prune_pattern": {"method": "prune_pattern", "sparsity": 0.5},
}


@pytest.fixture
def preset() -> Iterator[Callable[..., TileSettings]]:
    """``preset("noisy", "analog.repeats=2", hw="imc64")``: resolved settings of a preset.

    Function-scoped: Hydra's global state is initialized only while a test uses it (other
    test modules initialize it themselves)."""
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):

        def _preset(name: str, *overrides: str, hw: str = "imc64") -> TileSettings:
            cfg = compose("train", overrides=[f"analog={name}", f"hw={hw}", *overrides])
            return resolve_settings(cfg.analog, cfg.hw)

        yield _preset


def tiny_model(method: str, seed: int = 0) -> torch.nn.Module:
    """A ResNet-8 (1 input channel, widths 8/16/16) compressed with ``METHODS[method]``."""
    torch.manual_seed(seed)
    model = CifarResNet(depth=8, num_classes=10, in_channels=1, widths=(8, 16, 16))
    apply_compression(model, METHODS[method])
    with torch.no_grad():  # non-trivial BN statistics so eval mode is not the identity
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return model.eval()
