"""IMC crossbar cost model: im2col / SDK / VW-SDK mapping, cycles, energy, area.

The core (``Crossbar``, ``LayerTable``, ``map_layers``, ``HardwareConfig``, ``build_report``) is
numpy only. ``estimate`` (torch model in, report out) is imported lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from imcompress.crossbar.array import Crossbar
from imcompress.crossbar.config import HardwareConfig, register_hw_schema
from imcompress.crossbar.cost_report import CostReport, build_report
from imcompress.crossbar.layer_table import LayerSpec, LayerTable
from imcompress.crossbar.mapping import METHODS, MappingResult, map_layers
from imcompress.crossbar.options import Convention, LowRankMapping, Method, Search

if TYPE_CHECKING:
    from imcompress.crossbar.extract import estimate, extract_layers

__all__ = [
    "METHODS",
    "Convention",
    "CostReport",
    "Crossbar",
    "HardwareConfig",
    "LayerSpec",
    "LayerTable",
    "LowRankMapping",
    "MappingResult",
    "Method",
    "Search",
    "build_report",
    "estimate",
    "extract_layers",
    "map_layers",
    "register_hw_schema",
]

_LAZY = {  # torch is imported only when these are used
    "estimate": "imcompress.crossbar.extract",
    "extract_layers": "imcompress.crossbar.extract",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'imcompress.crossbar' has no attribute {name!r}")
