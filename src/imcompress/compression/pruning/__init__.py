"""Pruning methods on ``torch.nn.utils.prune`` masks, and their sparsity schedules."""

from imcompress.compression.pruning.base import MaskedPruner, effective, mask_of
from imcompress.compression.pruning.channel import ChannelPruner, find_successors
from imcompress.compression.pruning.pattern import PatternPruner, build_pattern_set
from imcompress.compression.pruning.patterns import (
    choose_patterns,
    nentry_patterns,
    patdnn_patterns,
    pconv_patterns,
)
from imcompress.compression.pruning.schedule import CubicSchedule, default_end_epoch
from imcompress.compression.pruning.unstructured import UnstructuredPruner

__all__ = [
    "ChannelPruner",
    "CubicSchedule",
    "MaskedPruner",
    "PatternPruner",
    "UnstructuredPruner",
    "build_pattern_set",
    "choose_patterns",
    "default_end_epoch",
    "effective",
    "find_successors",
    "mask_of",
    "nentry_patterns",
    "patdnn_patterns",
    "pconv_patterns",
]
