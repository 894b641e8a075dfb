"""L1-norm filter pruning (Li et al., ICLR 2017 style): zero whole output channels.

A pruned output channel of a conv frees its crossbar columns. To also free the rows of the next
layer, the pruned channel is made exactly zero downstream: the BatchNorm that follows the conv
inside the same parent module gets its ``weight`` and ``bias`` masked for that channel (so the
activation is BN(0)*0 + 0 = 0, and ReLU(0) = 0), and the next conv of the same parent gets the
matching *input* channels masked in its ``weight_mask`` (what the crossbar estimator reads as
removed rows). "Follows" means registration order among the parent's direct children: the first
BatchNorm2d with ``num_features == out_channels`` after the conv, and the first dense Conv2d with
``in_channels == out_channels`` after it, stopping at a container child (the shortcut). This is
exact for BasicBlock (conv1 -> bn1 -> conv2) and pre-activation WideBasicBlock
(conv1 -> bn2 -> conv2). The last conv of a residual block is added to the shortcut, so its
pruned channels free only its own columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from imcompress.compression.pruning.base import (
    MaskedPruner,
    ParamKey,
    effective,
    keep_largest,
    mask_of,
)


@dataclass
class ChannelSuccessors:
    """Modules whose channels follow a pruned conv's output channels."""

    bn: nn.BatchNorm2d | None = None
    next_conv: nn.Conv2d | None = None


def find_successors(model: nn.Module, name: str) -> ChannelSuccessors:
    """The BN and next conv after conv ``name`` among its parent's children (see module doc)."""
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    conv = parent.get_submodule(child)
    assert isinstance(conv, nn.Conv2d)
    found = ChannelSuccessors()
    seen = False
    for sibling_name, sibling in parent.named_children():
        if sibling_name == child:
            seen = True
            continue
        if not seen:
            continue
        if isinstance(sibling, nn.BatchNorm2d):
            if found.bn is None and sibling.num_features == conv.out_channels:
                found.bn = sibling
        elif isinstance(sibling, nn.Conv2d):
            if sibling.groups == 1 and sibling.in_channels == conv.out_channels:
                found.next_conv = sibling
            break
        elif len(list(sibling.children())) > 0:
            break
    return found


class ChannelPruner(MaskedPruner):
    """Zero the ``round(sparsity * OC)`` output channels with the smallest L1 norm (at least one
    channel is kept), per layer; with ``couple_next`` also mask the successors (module doc)."""

    method = "prune_channel"

    def __init__(
        self, model: nn.Module, targets: list[tuple[str, nn.Conv2d]], couple_next: bool = True
    ) -> None:
        super().__init__(targets)
        self.successors = {
            name: find_successors(model, name) if couple_next else ChannelSuccessors()
            for name, _ in targets
        }
        self.install()

    def masked_params(self) -> list[ParamKey]:
        keys: list[ParamKey] = []
        for name, conv in self.targets:
            keys.append((conv, "weight"))
            succ = self.successors[name]
            if succ.bn is not None:
                keys += [(succ.bn, "weight"), (succ.bn, "bias")]
            if succ.next_conv is not None:
                keys.append((succ.next_conv, "weight"))
        return list(dict.fromkeys(keys))

    def channel_masks(self, sparsity: float) -> dict[str, torch.Tensor]:
        """Per target: a (OC,) mask of the kept output channels."""
        masks = {}
        for name, conv in self.targets:
            norms = effective(conv).abs().sum(dim=(1, 2, 3))
            n_prune = min(round(sparsity * conv.out_channels), conv.out_channels - 1)
            masks[name] = keep_largest(norms, n_prune)
        return masks

    def compute_masks(self, sparsity: float) -> dict[ParamKey, torch.Tensor]:
        masks = {
            (module, param): torch.ones_like(getattr(module, param + "_orig"))
            for module, param in self.masked_params()
        }
        convs = dict(self.targets)
        for name, keep in self.channel_masks(sparsity).items():
            masks[(convs[name], "weight")] *= keep[:, None, None, None]
            succ = self.successors[name]
            if succ.bn is not None:
                masks[(succ.bn, "weight")] *= keep
                masks[(succ.bn, "bias")] *= keep
            if succ.next_conv is not None:
                masks[(succ.next_conv, "weight")] *= keep[None, :, None, None]
        return masks

    def channel_sparsity(self) -> float:
        """Fraction of target output channels whose filter is entirely masked."""
        pruned = total = 0
        for _, conv in self.targets:
            mask = mask_of(conv).flatten(1)
            pruned += int((mask.sum(dim=1) == 0).sum())
            total += mask.shape[0]
        return pruned / max(total, 1)

    def extra_metrics(self) -> dict[str, float]:
        return {"compress/channel_sparsity": self.channel_sparsity()}

    def layer_record(self, name: str, conv: nn.Conv2d) -> dict[str, Any]:
        record = super().layer_record(name, conv)
        kept = int((mask_of(conv).flatten(1).sum(dim=1) > 0).sum())
        record["channels_kept"] = kept
        succ = self.successors[name]
        record["coupled"] = [
            kind
            for kind, module in (("bn", succ.bn), ("next_conv_inputs", succ.next_conv))
            if module is not None
        ]
        return record
