"""Analog non-idealities applied outside the forward pass: weight programming and read noise.

aihwkit-lightning injects its noise only in training mode (hardware-aware training) and has no
inference noise model (that lives in the full aihwkit, which is not a dependency). Evaluation
therefore (1) programs the weights once per repeat: quantize them to the tile's conductance
levels (the library's ``quantize_weights``) and add Gaussian programming noise relative to each
column's max |w| per tile (the library's own per-channel weight-noise function), and (2) runs the
test pass with the analog layers, and only them, in training mode so that the library adds its
output (read) noise to every tile output; the input ranges are frozen first.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from copy import deepcopy

import torch
from aihwkit_lightning.nn.modules.torch_utils.torch_linear import TorchLinear
from aihwkit_lightning.simulator.configs import TorchInferenceRPUConfig, WeightNoiseInjectionType
from torch import nn

from imcompress.analog.schema import TileSettings
from imcompress.analog.tiles import analog_layers


def freeze_input_ranges(model: nn.Module) -> None:
    """Stop the library from re-estimating input ranges from data in training mode (it does so
    while ``input_range_update_idx < init_from_data``)."""
    for _, layer in analog_layers(model):
        counter = getattr(layer, "input_range_update_idx", None)
        if counter is not None:
            limit = float(layer.rpu_config.pre_post.input_range.init_from_data)
            counter.data = torch.full_like(counter.data, limit, dtype=torch.float32)


@contextmanager
def read_noise(model: nn.Module, enabled: bool) -> Iterator[None]:
    """While active (and ``enabled``), the analog layers of ``model`` add the library's output
    noise; everything else (BatchNorm, ...) stays in its current mode."""
    layers = [layer for _, layer in analog_layers(model)] if enabled else []
    modes = [layer.training for layer in layers]
    for layer in layers:
        layer.training = True
    try:
        yield
    finally:
        for layer, mode in zip(layers, modes, strict=True):
            layer.training = mode


def _noise_config(std: float) -> TorchInferenceRPUConfig:
    rpu = TorchInferenceRPUConfig()
    rpu.modifier.noise_type = WeightNoiseInjectionType.ADD_NORMAL_PER_CHANNEL
    rpu.modifier.std_dev = std
    return rpu


@torch.no_grad()
def program_weights(model: nn.Module, settings: TileSettings) -> nn.Module:
    """A copy of ``model`` with its analog weights as programmed on the arrays: quantized to
    ``weight_bits`` per column and tile, plus programming noise (global torch RNG; seed it).

    Exactly-zero weights (pruned cells) get no noise unless ``noise_on_zero_weights``.
    """
    programmed = deepcopy(model)
    noise = _noise_config(settings.programming_noise)
    for _, layer in analog_layers(programmed):
        if settings.weight_bits is not None:
            with warnings.catch_warnings():  # "Modified the rpu_config because quantize_weights..."
                warnings.simplefilter("ignore", UserWarning)
                layer.quantize_weights()
        if settings.programming_noise <= 0:
            continue
        weight = layer.weight.data.view(layer.weight.shape[0], -1)
        start = 0
        for size in layer.in_sizes:
            tile = weight[:, start : start + size]
            noisy = TorchLinear.modify_weight(tile, assumed_wmax=None, rpu_config=noise)
            if not settings.noise_on_zero_weights:
                noisy = torch.where(tile == 0, tile, noisy)
            tile.copy_(noisy)
            start += size
    return programmed
