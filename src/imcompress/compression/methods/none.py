"""``method: none``: the model is left as built (the dense baseline)."""

from __future__ import annotations

from collections.abc import Mapping

from torch import nn

from imcompress.compression.registry import (
    CompressionMethod,
    Conversion,
    Targets,
    register_method,
)
from imcompress.compression.schemas import CompressionConfig


@register_method
class NoCompression(CompressionMethod[CompressionConfig, None]):
    """Selects no layer and changes nothing."""

    name = "none"
    schema = CompressionConfig
    layer_type = None  # a planned `method: none` layer has no settings: it stays dense

    def layer_settings(self, opts: CompressionConfig, targets: Targets) -> dict[str, None]:
        return {}

    def apply(
        self,
        model: nn.Module,
        targets: Targets,
        opts: CompressionConfig,
        settings: Mapping[str, None],
    ) -> Conversion:
        return Conversion()
