"""ImageNet-size models: parameter counts equal torchvision's (computed here, not downloaded)."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from imcompress.compression.selection import select_layers
from imcompress.models.build import build_model
from tests.conftest import CONF_DIR


@pytest.mark.parametrize(
    ("config", "parameters"), [("resnet18", 11_689_512), ("vgg16", 138_357_544)]
)
def test_parameter_counts_match_torchvision(config: str, parameters: int) -> None:
    cfg = OmegaConf.load(CONF_DIR / "model" / f"{config}.yaml")
    assert cfg._target_.startswith("imcompress.models.imagenet.")
    with torch.device("meta"):  # shapes only: no 0.5 GB allocation for VGG-16
        model = build_model(cfg, 3, 1000)
    assert sum(p.numel() for p in model.parameters()) == parameters


def test_resnet18_forward_shape_and_default_selection() -> None:
    model = build_model(
        OmegaConf.create({"_target_": "imcompress.models.ImageNetResNet18"}), 3, 10
    ).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 10)
    names = [name for name, _ in select_layers(model)]
    assert len(names) == 13 and names[0] == "layer1.0.conv1" and "layer2.0.conv1" not in names
