"""Analog test accuracy of a trained model: convert, calibrate, program, repeat with fresh noise."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from copy import deepcopy

import torch
from aihwkit_lightning.inference.calibration import (
    InputRangeCalibrationType,
    calibrate_input_ranges,
)
from aihwkit_lightning.nn.modules.container import AnalogWrapper
from aihwkit_lightning.simulator.configs import TorchInferenceRPUConfig
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from imcompress.analog.noise import freeze_input_ranges, program_weights, read_noise
from imcompress.analog.result import AnalogResult
from imcompress.analog.rpu import inference_config, mapping_config
from imcompress.analog.schema import Calibration, TileSettings
from imcompress.analog.tiles import (
    analog_layers,
    bake_pruning_masks,
    refresh_pruned_weights,
    tile_count,
    to_analog,
)

Batch = tuple[torch.Tensor, torch.Tensor]

CALIBRATION_TYPES = {
    Calibration.cache_quantile: InputRangeCalibrationType.CACHE_QUANTILE,
    Calibration.max: InputRangeCalibrationType.MAX,
    Calibration.moving_std: InputRangeCalibrationType.MOVING_STD,
    Calibration.moving_quantile: InputRangeCalibrationType.MOVING_QUANTILE,
}


def set_tile_config(model: nn.Module, rpu_config: TorchInferenceRPUConfig) -> None:
    """Give every analog layer of ``model`` its own copy of ``rpu_config``."""
    for _, layer in analog_layers(model):
        layer.rpu_config = deepcopy(rpu_config)


@torch.no_grad()
def calibrate(model: nn.Module, settings: TileSettings, images: Iterable[torch.Tensor]) -> None:
    """Static input range per tile from ``images`` (the library's post-training calibration)."""
    model.eval()
    calibrate_input_ranges(
        AnalogWrapper(model),  # shares the model's modules; gives the library its layer iterators
        CALIBRATION_TYPES[settings.calibration],
        dataloader=(((batch,), {}) for batch in images),
        quantile=settings.quantile,
        max_samples=settings.max_samples,
        verbose=False,
    )


def prepare_analog(
    model: nn.Module, settings: TileSettings, calibration_images: Iterable[torch.Tensor]
) -> nn.Module:
    """A copy of ``model`` on analog tiles, ready to program and evaluate.

    A digital model is converted (pruning masks baked first, so pruned weights are exact zeros)
    and its input ranges calibrated; a hardware-aware trained model (already analog) keeps its
    learned input ranges. Either way every tile then gets the preset's inference config.
    """
    refresh_pruned_weights(model)
    analog = deepcopy(model)
    bake_pruning_masks(analog)
    if not analog_layers(analog):
        analog = to_analog(analog, mapping_config(settings), settings.tile_cols, settings.exclude)
        if settings.uses_input_range:
            calibrate(analog, settings, calibration_images)
    set_tile_config(analog, inference_config(settings))
    freeze_input_ranges(analog)
    return analog


def digital_reference(model: nn.Module, settings: TileSettings) -> nn.Module:
    """The model with exact arithmetic: itself when digital, exact tiles when already analog."""
    if not analog_layers(model):
        return model
    refresh_pruned_weights(model)
    exact = deepcopy(model)
    set_tile_config(exact, mapping_config(settings))
    return exact


@torch.no_grad()
def accuracy(
    model: nn.Module, batches: Sequence[Batch], num_classes: int, with_read_noise: bool = False
) -> float:
    """Top-1 accuracy over ``batches`` in eval mode (analog layers noisy if ``with_read_noise``)."""
    metric = MulticlassAccuracy(num_classes, average="micro")
    model.eval()
    with read_noise(model, with_read_noise):
        for images, labels in batches:
            metric.update(model(images), labels)
    return float(metric.compute())


def evaluate_analog(
    model: nn.Module,
    settings: TileSettings,
    test_batches: Sequence[Batch],
    calibration_images: Iterable[torch.Tensor],
    num_classes: int,
) -> AnalogResult:
    """Digital and analog test accuracy of ``model``; ``settings.repeats`` programmings with
    fresh noise (seeds ``seed``, ``seed + 1``, ...) when the preset has noise, one pass otherwise.
    """
    digital = accuracy(digital_reference(model, settings), test_batches, num_classes)
    base = prepare_analog(model, settings, calibration_images)
    repeats = settings.repeats if settings.noisy else 1
    accuracies = []
    for repeat in range(repeats):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(settings.seed + repeat)
            programmed = program_weights(base, settings)
            accuracies.append(
                accuracy(programmed, test_batches, num_classes, settings.out_noise > 0)
            )
    return AnalogResult(
        settings=settings,
        repeat_accuracies=tuple(accuracies),
        digital_accuracy=digital,
        samples=sum(len(labels) for _, labels in test_batches),
        tiles=tile_count(base),
    )
