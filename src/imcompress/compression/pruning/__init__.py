"""Pruners on ``torch.nn.utils.prune`` masks (schedules: :mod:`imcompress.compression.schedule`)."""

from imcompress.compression.pruning.base import MaskedPruner, effective, mask_of
from imcompress.compression.pruning.channel import ChannelPruner, find_successors
from imcompress.compression.pruning.pattern import PatternPruner, build_pattern_set
from imcompress.compression.pruning.patterns import (
    PatternDim,
    PatternSet,
    choose_patterns,
    nentry_patterns,
    patdnn_patterns,
    pconv_patterns,
)
from imcompress.compression.pruning.unstructured import Scope, UnstructuredPruner

__all__ = [
    "ChannelPruner",
    "MaskedPruner",
    "PatternDim",
    "PatternPruner",
    "PatternSet",
    "Scope",
    "UnstructuredPruner",
    "build_pattern_set",
    "choose_patterns",
    "effective",
    "find_successors",
    "mask_of",
    "nentry_patterns",
    "patdnn_patterns",
    "pconv_patterns",
]
