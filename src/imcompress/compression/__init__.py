"""Compression methods as in-place module conversions driven by config.

Low-rank (``lr``) and group low-rank (``glr``) factorization into :class:`LowRankConv2d`, and
pruning baselines (``prune_unstructured``, ``prune_channel``, ``prune_pattern``) on
``torch.nn.utils.prune`` masks, each a registered :class:`CompressionMethod`
(:mod:`imcompress.compression.methods`). Entry point: :func:`apply_compression`. Nothing here
imports a training framework: gradual pruning returns a pure schedule that the training layer
drives (``imcompress.training.callbacks.pruning``).
"""

import imcompress.compression.methods  # noqa: F401  (registers the built-in methods)
from imcompress.compression.api import apply_compression
from imcompress.compression.lowrank import LowRankConv2d
from imcompress.compression.options import parse_options
from imcompress.compression.pretrained import load_pretrained
from imcompress.compression.registry import (
    METHODS,
    CompressionMethod,
    Conversion,
    get_method,
    register_compression_schemas,
    register_method,
)
from imcompress.compression.result import (
    CompressionResult,
    count_parameters,
    format_compression_table,
)
from imcompress.compression.schedule import CubicSchedule, Schedule, SparsitySchedule
from imcompress.compression.selection import default_selection, select_layers

__all__ = [
    "METHODS",
    "CompressionMethod",
    "CompressionResult",
    "Conversion",
    "CubicSchedule",
    "LowRankConv2d",
    "Schedule",
    "SparsitySchedule",
    "apply_compression",
    "count_parameters",
    "default_selection",
    "format_compression_table",
    "get_method",
    "load_pretrained",
    "parse_options",
    "register_compression_schemas",
    "register_method",
    "select_layers",
]
