"""Hardware-aware training (``analog.train: true``): analog tiles in the model during fine-tuning.

The model's conv/linear layers become aihwkit-lightning layers with the training config of
:func:`imcompress.analog.rpu.training_config`: in training mode the library quantizes, learns the
input ranges and injects weight and output noise in every forward pass; in eval mode it only
quantizes (so ``test/acc`` of such a run is the noise-free quantized analog accuracy). Pruning
masks stay fixed on the analog layers. After every optimizer step :class:`AnalogWeightClip`
clips the weights, which the library's ``AnalogOptimizer`` does with a step hook.
"""

from __future__ import annotations

from typing import Any

import torch
from aihwkit_lightning.simulator import configs as library_configs
from aihwkit_lightning.simulator import parameters as library_parameters
from aihwkit_lightning.simulator.parameters import enums as library_enums
from lightning.pytorch import Callback, LightningModule, Trainer
from torch import nn

from imcompress.analog.rpu import training_config
from imcompress.analog.schema import TileSettings
from imcompress.analog.tiles import analog_layers, pruning_masks, reinstall_masks, to_analog


def allow_rpu_configs_in_checkpoints() -> None:
    """Let ``torch.load(weights_only=True)`` read analog checkpoints: the library stores each
    layer's RPU config (dataclasses and enums) in the state-dict metadata."""
    classes: list[Any] = []
    for module in (library_configs, library_parameters, library_enums):
        classes += [value for value in vars(module).values() if isinstance(value, type)]
    torch.serialization.add_safe_globals(classes)


def convert_for_training(model: nn.Module, settings: TileSettings) -> nn.Module:
    """Replace ``model``'s conv/linear layers in place by analog layers for hardware-aware
    training; pruning masks are re-attached (fixed) to the analog layers. Returns ``model``."""
    masks = pruning_masks(model)
    converted = to_analog(model, training_config(settings), settings.tile_cols, settings.exclude)
    reinstall_masks(converted, masks)
    allow_rpu_configs_in_checkpoints()
    return converted


class AnalogWeightClip(Callback):
    """Clip the analog weights after every optimizer step (library ``clip_weights``); for pruned
    layers the clipped values are written back to ``weight_orig`` so that clipping sticks."""

    @torch.no_grad()
    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        for _, layer in analog_layers(pl_module):
            layer.clip_weights()
            original = getattr(layer, "weight_orig", None)
            if original is not None:
                keep = layer.weight_mask.bool()
                original.copy_(torch.where(keep, layer.weight.view_as(original), original))
