"""Build the network of the ``model`` config node by Hydra instantiation.

``cfg._target_`` is any callable returning an ``nn.Module`` (``imcompress.models.CifarResNet``
or a user's own class, ``model._target_=mypkg.MyNet``); the other keys are its keyword
arguments, except ``name`` (the label in banners, W&B and summaries). ``in_channels`` and
``num_classes`` come from the data and are passed to every model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hydra.utils import instantiate
from torch import nn

LABEL_KEYS = ("name",)  # model config keys that describe the run, not the constructor
# Run folders written before models took `_target_` name them by `arch`; evaluate.py, the
# studies and resumes rebuild those models from their saved .hydra/config.yaml.
LEGACY_ARCH_TARGETS = {
    "resnet": "imcompress.models.CifarResNet",
    "wrn": "imcompress.models.WideResNet",
}


def build_model(cfg: Mapping[str, Any], in_channels: int, num_classes: int) -> nn.Module:
    """``cfg._target_(**args, in_channels=..., num_classes=...)``; ValueError without a target."""
    if "_target_" not in cfg and cfg.get("arch") in LEGACY_ARCH_TARGETS:
        cfg = {
            "_target_": LEGACY_ARCH_TARGETS[cfg["arch"]],
            **{key: value for key, value in cfg.items() if key != "arch"},
        }
    if "_target_" not in cfg:
        raise ValueError(
            f"the model config has no _target_ (keys: {sorted(cfg)}); set it to an nn.Module "
            "class, e.g. model._target_=imcompress.models.CifarResNet"
        )
    args = {key: value for key, value in cfg.items() if key not in LABEL_KEYS}
    model = instantiate(args, in_channels=in_channels, num_classes=num_classes, _convert_="all")
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"model._target_={cfg['_target_']} built a {type(model).__name__}, "
            "not a torch.nn.Module"
        )
    return model
