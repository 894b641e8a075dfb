"""CNN models for 32x32 inputs, built from the ``model`` config group."""

from __future__ import annotations

from typing import Any

from torch import nn

from imcompress.models.resnet import BasicBlock, CifarResNet
from imcompress.models.wrn import WideBasicBlock, WideResNet

ARCHITECTURES = {"resnet": CifarResNet, "wrn": WideResNet}

__all__ = [
    "ARCHITECTURES",
    "BasicBlock",
    "CifarResNet",
    "WideBasicBlock",
    "WideResNet",
    "build_model",
]


def build_model(cfg: Any, in_channels: int, num_classes: int) -> nn.Module:
    """Build the network named by ``cfg.arch`` with the remaining fields as constructor arguments."""
    options = dict(cfg)
    arch = options.pop("arch", None)
    options.pop("name", None)
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown model arch {arch!r}; valid: {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[arch](num_classes=num_classes, in_channels=in_channels, **options)
