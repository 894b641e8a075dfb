"""ImageNet-size models with the ImageNet stem (224x224 inputs), for cost-only studies.

ResNet-18 (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016, Table 1):
7x7/2 stem conv + BN + ReLU + 3x3/2 max pool, four stages of two basic blocks (64/128/256/512
channels, stride 2 at the start of stages 2-4, 1x1 conv + BN projection shortcuts), global
average pool, linear classifier: 11,689,512 parameters for 1000 classes (the torchvision count).

VGG-16 (Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", ICLR 2015, configuration D): 13 3x3 convs with bias in five stages of
64/128/256/512/512 channels with 2x2 max pools, a 7x7 adaptive average pool, and three linear
layers 25088 -> 4096 -> 4096 -> classes: 138,357,544 parameters for 1000 classes (torchvision).
The layout (``features.N``, ``classifier.N``) follows torchvision's so module names match.
"""

from __future__ import annotations

import torch
from torch import nn

from imcompress.models.resnet import BasicBlock

VGG16_LAYOUT: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M",
)  # fmt: skip


class ImageNetResNet18(nn.Module):
    """ResNet-18 with the ImageNet stem; basic blocks as in :mod:`imcompress.models.resnet`."""

    def __init__(self, num_classes: int = 1000, in_channels: int = 3) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )
        channels = 64
        stages: list[nn.Module] = []
        for index, width in enumerate((64, 128, 256, 512)):
            stride = 1 if index == 0 else 2
            stages.append(
                nn.Sequential(BasicBlock(channels, width, stride), BasicBlock(width, width))
            )
            channels = width
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return self.fc(torch.flatten(self.pool(out), 1))


class VGG16(nn.Module):
    """VGG-16 (configuration D, no batch norm), torchvision layout."""

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for entry in VGG16_LAYOUT:
            if entry == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                assert isinstance(entry, int)
                layers += [nn.Conv2d(channels, entry, 3, padding=1), nn.ReLU(inplace=True)]
                channels = entry
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(4096, num_classes),
        )
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(out, 1))
