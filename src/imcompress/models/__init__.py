"""CNN models for 32x32 inputs (and ImageNet-size ResNet-18 / VGG-16 for cost studies). Configs in ``conf/model/`` name them by ``_target_``
(``imcompress.models.CifarResNet``, ...); any ``nn.Module`` class that takes ``in_channels``
and ``num_classes`` keyword arguments plugs in the same way (:mod:`imcompress.models.build`).
"""

from __future__ import annotations

from imcompress.models.imagenet import VGG16, ImageNetResNet18
from imcompress.models.resnet import BasicBlock, CifarResNet
from imcompress.models.wrn import WideBasicBlock, WideResNet

__all__ = [
    "VGG16",
    "BasicBlock",
    "CifarResNet",
    "ImageNetResNet18",
    "WideBasicBlock",
    "WideResNet",
]
