"""CNN models (CIFAR-size, and ImageNet-size for cost studies), built from the ``model`` group."""

from __future__ import annotations

from typing import Any

from torch import nn

from imcompress.models.imagenet import VGG16, ImageNetResNet18
from imcompress.models.resnet import BasicBlock, CifarResNet
from imcompress.models.wrn import WideBasicBlock, WideResNet

ARCHITECTURES = {
    "resnet": CifarResNet,
    "wrn": WideResNet,
    "resnet18_imagenet": ImageNetResNet18,
    "vgg16": VGG16,
}

__all__ = [
    "ARCHITECTURES",
    "VGG16",
    "BasicBlock",
    "CifarResNet",
    "ImageNetResNet18",
    "WideBasicBlock",
    "WideResNet",
    "build_model",
]


def build_model(cfg: Any, in_channels: int, num_classes: int) -> nn.Module:
    """Build the network named by ``cfg.arch`` with the remaining fields as constructor arguments."""
    options = dict(cfg)
    arch = options.pop("arch", None)
    options.pop("name", None)
    options.pop("_target_", None)  # Hydra-instantiable configs carry it; build by `arch` here
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown model arch {arch!r}; valid: {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[arch](num_classes=num_classes, in_channels=in_channels, **options)
