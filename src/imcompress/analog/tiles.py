"""Convert a (compressed) digital model to aihwkit-lightning analog layers on the hw arrays.

Every ``nn.Conv2d`` and ``nn.Linear`` becomes an ``AnalogConv2d``/``AnalogLinear`` whose input
dimension (IC/groups x K x K rows, im2col) is split by the library at ``tile_rows`` rows. The
library supports only ``groups=1`` and splits only along inputs, so :class:`AnalogArrayConv2d`
(and :class:`AnalogArrayLinear`) hold one analog layer per group and per block of at most
``tile_cols`` output channels: a grouped GLR ``R`` factor becomes one analog conv per group, as
its groups sit on separate array blocks, and a layer wider than the array is split at its
columns. LR/GLR pairs (:class:`~imcompress.compression.LowRankConv2d`) thus become two analog
layers, ``R`` then ``L``.
"""

from __future__ import annotations

import fnmatch
from copy import deepcopy
from typing import Any, cast

import torch
from aihwkit_lightning.nn import AnalogConv2d, AnalogLinear
from aihwkit_lightning.nn.conversion import convert_to_analog
from aihwkit_lightning.nn.modules.base import AnalogLayerBase
from aihwkit_lightning.simulator.configs import TorchInferenceRPUConfig
from torch import nn
from torch.nn.utils import prune


class _OutputBlocks(nn.Module):
    """Analog layers that each compute a slice of the outputs; ``weight`` and ``bias`` are the
    digital layer's, concatenated in output order (what ``nn.Conv2d``/``nn.Linear`` expose)."""

    blocks: nn.ModuleList

    @property
    def weight(self) -> torch.Tensor:
        """The digital weight, (OC, IC/groups, K, K) or (out_features, in_features)."""
        return torch.cat([cast(torch.Tensor, layer.weight) for layer in self.blocks])

    @property
    def bias(self) -> torch.Tensor | None:
        """The digital bias (outputs,), or None."""
        biases = [cast(torch.Tensor | None, layer.bias) for layer in self.blocks]
        return None if biases[0] is None else torch.cat([b for b in biases if b is not None])


class AnalogArrayConv2d(_OutputBlocks):
    """A conv on several analog layers, one per group and block of output channels.

    ``blocks`` are in output-channel order (group 0's column blocks first); block ``i`` reads
    the input channels of group ``block_groups[i]``; the outputs are concatenated.
    """

    def __init__(
        self, blocks: list[AnalogConv2d], block_groups: list[int], source: nn.Conv2d
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.block_groups = list(block_groups)
        self.in_channels, self.out_channels = source.in_channels, source.out_channels
        self.kernel_size, self.stride = source.kernel_size, source.stride
        self.padding, self.dilation, self.groups = source.padding, source.dilation, source.groups
        self.in_per_group = source.in_channels // source.groups

    def layers(self) -> list[AnalogConv2d]:
        """The analog convs, in output-channel order."""
        return [cast(AnalogConv2d, layer) for layer in self.blocks]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        chunks = x.split(self.in_per_group, dim=1) if self.groups > 1 else (x,)
        outputs = [
            layer(chunks[group])
            for layer, group in zip(self.layers(), self.block_groups, strict=True)
        ]
        return torch.cat(outputs, dim=1)


class AnalogArrayLinear(_OutputBlocks):
    """A linear layer split at the array columns: one ``AnalogLinear`` per output block."""

    def __init__(self, blocks: list[AnalogLinear], source: nn.Linear) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.in_features, self.out_features = source.in_features, source.out_features

    def layers(self) -> list[AnalogLinear]:
        """The analog linear layers, in output order."""
        return [cast(AnalogLinear, layer) for layer in self.blocks]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([layer(x) for layer in self.layers()], dim=-1)


def _column_blocks(count: int, tile_cols: int) -> list[tuple[int, int]]:
    size = tile_cols if tile_cols > 0 else count
    return [(start, min(start + size, count)) for start in range(0, count, size)]


def _weight(module: nn.Module) -> torch.Tensor:
    weight = module.weight  # the masked value when torch prune hooks are installed
    assert isinstance(weight, torch.Tensor)
    return weight.detach()


def conv_to_analog(
    conv: nn.Conv2d, rpu_config: TorchInferenceRPUConfig, tile_cols: int
) -> nn.Module:
    """``conv`` (any ``groups``) as one ``AnalogConv2d``, or an :class:`AnalogArrayConv2d`."""
    groups, weight = conv.groups, _weight(conv)
    out_per, in_per = conv.out_channels // groups, conv.in_channels // groups
    blocks = _column_blocks(out_per, tile_cols)
    if groups == 1 and len(blocks) == 1:
        return AnalogConv2d.from_digital(conv, rpu_config)
    layers: list[AnalogConv2d] = []
    block_groups: list[int] = []
    for group in range(groups):
        for start, stop in blocks:
            first, last = group * out_per + start, group * out_per + stop
            piece = nn.Conv2d(
                in_per,
                last - first,
                conv.kernel_size,  # type: ignore[arg-type]
                stride=conv.stride,  # type: ignore[arg-type]
                padding=conv.padding,  # type: ignore[arg-type]
                dilation=conv.dilation,  # type: ignore[arg-type]
                bias=conv.bias is not None,
                device=weight.device,
                dtype=weight.dtype,
            )
            with torch.no_grad():
                piece.weight.copy_(weight[first:last])
                if conv.bias is not None and piece.bias is not None:
                    piece.bias.copy_(conv.bias.detach()[first:last])
            layers.append(AnalogConv2d.from_digital(piece, deepcopy(rpu_config)))
            block_groups.append(group)
    return AnalogArrayConv2d(layers, block_groups, conv)


def linear_to_analog(
    linear: nn.Linear, rpu_config: TorchInferenceRPUConfig, tile_cols: int
) -> nn.Module:
    """``linear`` as one ``AnalogLinear``, or an :class:`AnalogArrayLinear` split at columns."""
    blocks = _column_blocks(linear.out_features, tile_cols)
    if len(blocks) == 1:
        return AnalogLinear.from_digital(linear, rpu_config)
    weight = _weight(linear)
    layers = []
    for start, stop in blocks:
        piece = nn.Linear(
            linear.in_features,
            stop - start,
            bias=linear.bias is not None,
            device=weight.device,
            dtype=weight.dtype,
        )
        with torch.no_grad():
            piece.weight.copy_(weight[start:stop])
            if linear.bias is not None:
                piece.bias.copy_(linear.bias.detach()[start:stop])
        layers.append(AnalogLinear.from_digital(piece, deepcopy(rpu_config)))
    return AnalogArrayLinear(layers, linear)


class _ArrayMapper:
    """A ``conversion_map`` entry for the library's ``convert_to_analog``: maps one layer type
    onto the arrays (``from_digital``) with the column split of this job."""

    def __init__(self, tile_cols: int, linear: bool) -> None:
        self.tile_cols = tile_cols
        self.linear = linear

    def from_digital(self, module: Any, rpu_config: TorchInferenceRPUConfig) -> nn.Module:
        if self.linear:
            return linear_to_analog(module, rpu_config, self.tile_cols)
        return conv_to_analog(module, rpu_config, self.tile_cols)

    @staticmethod
    def move_to_meta(module: nn.Module) -> None:
        """Nothing: the digital module may still be referenced (e.g. by a pruner)."""


def excluded_names(model: nn.Module, patterns: tuple[str, ...] | list[str]) -> list[str]:
    """Names of the conv/linear modules that match any glob in ``patterns`` (kept digital).

    A pattern that matches no conv/linear layer is a ValueError naming it and the valid names
    (a misspelt ``analog.exclude`` would otherwise silently put that layer on the crossbar).
    """
    layers = [
        name for name, module in model.named_modules() if isinstance(module, (nn.Conv2d, nn.Linear))
    ]
    unmatched = [p for p in patterns if not any(fnmatch.fnmatchcase(n, p) for n in layers)]
    if unmatched:
        raise ValueError(
            f"analog.exclude={list(patterns)}: {unmatched} match no conv/linear layer; valid "
            f"names (globs allowed): {', '.join(layers[:8])}{', ...' if len(layers) > 8 else ''}"
        )
    return [name for name in layers if any(fnmatch.fnmatchcase(name, p) for p in patterns)]


def pruning_masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """``{module name: weight mask}`` of every conv/linear with a torch prune mask."""
    masks = {}
    for name, module in model.named_modules():
        mask = getattr(module, "weight_mask", None)
        if isinstance(module, (nn.Conv2d, nn.Linear)) and isinstance(mask, torch.Tensor):
            masks[name] = mask.detach().clone()
    return masks


@torch.no_grad()
def refresh_pruned_weights(model: nn.Module) -> None:
    """Recompute every prune-masked ``weight = weight_orig * mask`` without autograd history, as
    the prune hook does at each forward: current values, and the model can be deep-copied."""
    for module in model.modules():
        for name, _ in list(module.named_parameters(recurse=False)):
            base = name[: -len("_orig")]
            mask = getattr(module, base + "_mask", None)
            if name.endswith("_orig") and isinstance(mask, torch.Tensor):
                setattr(module, base, getattr(module, name) * mask)


def bake_pruning_masks(model: nn.Module) -> None:
    """Make every torch prune reparameterization permanent (``weight = weight_orig * mask``)."""
    for module in model.modules():
        names = [n[: -len("_orig")] for n, _ in module.named_parameters(recurse=False)]
        for name in names:
            if hasattr(module, name + "_mask") and prune.is_pruned(module):
                prune.remove(module, name)


def to_analog(
    model: nn.Module,
    rpu_config: TorchInferenceRPUConfig,
    tile_cols: int,
    exclude: tuple[str, ...] | list[str] = (),
) -> nn.Module:
    """Convert ``model``'s conv and linear layers in place (the library's ``convert_to_analog``
    with a conversion map that knows groups and array columns); returns ``model`` (a new module
    only when ``model`` itself is a conv or linear layer)."""
    mapping = {nn.Conv2d: _ArrayMapper(tile_cols, False), nn.Linear: _ArrayMapper(tile_cols, True)}
    return convert_to_analog(
        model,
        rpu_config,
        conversion_map=mapping,
        ensure_analog_root=False,
        exclude_modules=excluded_names(model, exclude),
        inplace=True,
    )


def reinstall_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Attach fixed prune masks to the analog layers that replaced masked digital layers, so
    hardware-aware training keeps pruned weights at zero (slices for split layers)."""
    for name, mask in masks.items():
        module = model.get_submodule(name)
        if isinstance(module, AnalogLayerBase):
            prune.custom_from_mask(module, "weight", mask)
        elif isinstance(module, (AnalogArrayConv2d, AnalogArrayLinear)):
            offset = 0
            for layer in module.layers():
                size = layer.weight.shape[0]
                prune.custom_from_mask(layer, "weight", mask[offset : offset + size])
                offset += size


def analog_layers(model: nn.Module) -> list[tuple[str, Any]]:
    """``(name, layer)`` of every analog tile layer (AnalogConv2d/AnalogLinear) in ``model``."""
    return [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, AnalogLayerBase) and not module.IS_CONTAINER
    ]


def tile_count(model: nn.Module) -> int:
    """Number of analog tiles: input slices summed over the analog layers."""
    return sum(len(layer.in_sizes) for _, layer in analog_layers(model))
