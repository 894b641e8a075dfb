"""``method: prune_channel``: L1-norm filter (output channel) pruning (Li et al., ICLR 2017)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from imcompress.compression.methods.pruning import PruningMethod
from imcompress.compression.pruning.base import MaskedPruner
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

    def build_pruner(
        self, model: nn.Module, targets: Targets, opts: ChannelPruneConfig
    ) -> MaskedPruner:
        return ChannelPruner(model, targets, couple_next=opts.couple_next)
