"""Structured config schemas of the ``compression`` config group.

Each YAML in ``conf/compression/`` starts with ``defaults: [base_<kind>, _self_]`` so that
Hydra merges it onto one of these dataclasses: a misspelt field fails at compose time. The
field values are checked by :func:`imcompress.compression.options.parse_options` before any
module is modified.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore


@dataclass
class CompressionConfig:
    """The field every method has; alone it is ``method: none`` (model left unchanged)."""

    method: str = "none"


NoneCompressionConfig = CompressionConfig


@dataclass
class SelectionFields(CompressionConfig):
    """Which layers: empty ``include`` = default selection; globs on dotted module names."""

    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    plan: str | None = None  # per-layer plan file from src/plan.py; replaces include/exclude


@dataclass
class LowRankCompressionConfig(SelectionFields):
    """``method: lr | glr``: (group) low-rank factorization of the selected convs."""

    method: str = "glr"
    rank: Any = 0.25  # int: per-group rank; float in (0, 1]: ratio of each layer's full rank
    groups: int = 1
    group_dim: str = "in"  # in | out
    rank_mode: str = "per_group"  # per_group | total
    factor_split: str = "balanced"  # balanced | left | right


@dataclass
class PruneScheduleFields(SelectionFields):
    """Target sparsity and when the masks are computed (one-shot or Zhu & Gupta cubic ramp)."""

    sparsity: float = 0.5
    schedule: str = "oneshot"  # oneshot | gradual
    initial_sparsity: float = 0.0
    start_epoch: int = 0
    end_epoch: int | None = None  # None: max(start_epoch, max_epochs // 2)
    frequency: int = 1


@dataclass
class UnstructuredPruneConfig(PruneScheduleFields):
    """``method: prune_unstructured``: magnitude pruning of single weights."""

    method: str = "prune_unstructured"
    scope: str = "layer"  # layer | global


@dataclass
class ChannelPruneConfig(PruneScheduleFields):
    """``method: prune_channel``: L1-norm filter (output channel) pruning."""

    method: str = "prune_channel"
    couple_next: bool = True


@dataclass
class PatternPruneConfig(PruneScheduleFields):
    """``method: prune_pattern``: KxK kernel patterns plus connectivity pruning."""

    method: str = "prune_pattern"
    pattern_set: str = "pconv"  # pconv | patdnn | nentry
    pattern_entries: int = 4
    num_patterns: int = 8
    patdnn_center: bool = True
    pattern_dim: str = "kernel"  # kernel | input_channel | layer


SCHEMAS: dict[str, type] = {
    "base_none": NoneCompressionConfig,
    "base_lowrank": LowRankCompressionConfig,
    "base_prune_unstructured": UnstructuredPruneConfig,
    "base_prune_channel": ChannelPruneConfig,
    "base_prune_pattern": PatternPruneConfig,
}

METHOD_SCHEMAS: dict[str, type] = {
    "none": NoneCompressionConfig,
    "lr": LowRankCompressionConfig,
    "glr": LowRankCompressionConfig,
    "prune_unstructured": UnstructuredPruneConfig,
    "prune_channel": ChannelPruneConfig,
    "prune_pattern": PatternPruneConfig,
}


def register_compression_schemas(cs: ConfigStore) -> None:
    """Store the schemas in group ``compression`` as ``base_none``, ``base_lowrank``, ..."""
    for name, node in SCHEMAS.items():
        cs.store(group="compression", name=name, node=node)
