"""Compression methods as in-place module conversions driven by config.

Low-rank (``lr``) and group low-rank (``glr``) factorization into :class:`LowRankConv2d`, and
pruning baselines (``prune_unstructured``, ``prune_channel``, ``prune_pattern``) on
``torch.nn.utils.prune`` masks. Entry point: :func:`apply_compression`.
"""

from imcompress.compression.api import apply_compression
from imcompress.compression.lowrank import LowRankConv2d
from imcompress.compression.pretrained import load_pretrained
from imcompress.compression.result import (
    CompressionResult,
    count_parameters,
    format_compression_table,
)
from imcompress.compression.schemas import register_compression_schemas
from imcompress.compression.selection import default_selection, select_layers

compress = apply_compression  # the name used in the issue text

__all__ = [
    "CompressionResult",
    "LowRankConv2d",
    "apply_compression",
    "compress",
    "count_parameters",
    "default_selection",
    "format_compression_table",
    "load_pretrained",
    "register_compression_schemas",
    "select_layers",
]
