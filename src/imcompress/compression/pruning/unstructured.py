"""Unstructured pruning: zero the weights of smallest score (magnitude, or magnitude times
input norm with ``criterion=activation``), per layer or globally."""

from __future__ import annotations

from enum import StrEnum

import torch
from torch import nn

from imcompress.compression.choices import parse_choice
from imcompress.compression.pruning.base import MaskedPruner, ParamKey, keep_largest

# `scope` option: every layer reaches the sparsity | one magnitude threshold over all layers.
Scope = StrEnum("Scope", ["layer", "global"])


class UnstructuredPruner(MaskedPruner):
    """Magnitude pruning. ``scope="layer"``: every layer reaches the sparsity;
    ``scope="global"``: one threshold over all target layers (layers end up uneven)."""

    method = "prune_unstructured"

    def __init__(self, targets: list[tuple[str, nn.Conv2d]], scope: Scope | str = "layer") -> None:
        super().__init__(targets)
        self.scope = parse_choice(Scope, scope, "scope")
        self.install()

    def compute_masks(self, sparsity: float) -> dict[ParamKey, torch.Tensor]:
        weights = [self.scored(name, conv).abs() for name, conv in self.targets]
        if self.scope == Scope["layer"]:
            return {
                (conv, "weight"): keep_largest(w, round(sparsity * w.numel()))
                for (_, conv), w in zip(self.targets, weights, strict=True)
            }
        flat = torch.cat([w.flatten() for w in weights])
        mask = keep_largest(flat, round(sparsity * flat.numel()))
        masks: dict[ParamKey, torch.Tensor] = {}
        offset = 0
        for (_, conv), w in zip(self.targets, weights, strict=True):
            masks[(conv, "weight")] = mask[offset : offset + w.numel()].view_as(w)
            offset += w.numel()
        return masks
