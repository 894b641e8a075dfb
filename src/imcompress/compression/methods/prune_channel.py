"""``method: prune_channel``: L1-norm filter (output channel) pruning (Li et al., ICLR 2017)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from imcompress.compression.methods.pruning import PruningMethod
from imcompress.compression.pruning.base import MaskedPruner, ParamKey
from imcompress.compression.pruning.channel import ChannelPruner
from imcompress.compression.registry import Targets, register_method
from imcompress.compression.schemas import PruneScheduleFields


@dataclass
class ChannelPruneConfig(PruneScheduleFields):
    """Schema of ``conf/compression/prune_channel.yaml``."""

    method: str = "prune_channel"
    couple_next: bool = True


@register_method
class ChannelPruning(PruningMethod[ChannelPruneConfig]):
    """Zero whole output channels; with ``couple_next`` also their BN and next-conv inputs."""

    name = "prune_channel"
    schema = ChannelPruneConfig
    plan_option_keys = ("couple_next",)

    def build_pruner(
        self, model: nn.Module, targets: Targets, opts: ChannelPruneConfig
    ) -> MaskedPruner:
        return ChannelPruner(model, targets, couple_next=opts.couple_next)

    def layer_masks(
        self, pruner: MaskedPruner, sparsity: float
    ) -> dict[str, dict[ParamKey, torch.Tensor]]:
        """Per target: its kept filters, and with ``couple_next`` the same channels of its
        BatchNorm and of the next conv's input."""
        assert isinstance(pruner, ChannelPruner)
        out = {}
        convs = dict(pruner.targets)
        for name, keep in pruner.channel_masks(sparsity).items():
            conv = convs[name]
            own: dict[ParamKey, torch.Tensor] = {
                (conv, "weight"): torch.ones_like(conv.weight) * keep[:, None, None, None]
            }
            succ = pruner.successors[name]
            if succ.bn is not None:
                own[(succ.bn, "weight")] = keep.clone()
                own[(succ.bn, "bias")] = keep.clone()
            if succ.next_conv is not None:
                ones = torch.ones_like(succ.next_conv.weight)
                own[(succ.next_conv, "weight")] = ones * keep[None, :, None, None]
            out[name] = own
        return out
