"""``method: plan``: apply a plan file of ``src/plan.py`` (``compression=plan compression.plan=FILE``).

Each planned layer goes through its own method (:mod:`imcompress.compression.plan`), so a plan
may mix methods. The node also carries the configured model name, input shape and hw preset
(interpolated in ``conf/compression/plan.yaml``) so that a plan made for another model or
input is refused and one made for another hw preset is flagged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from torch import nn

from imcompress.compression.registry import (
    CompressionMethod,
    Conversion,
    Targets,
    register_method,
)
from imcompress.compression.schemas import CompressionConfig


@dataclass
class PlanFileConfig(CompressionConfig):
    """Schema of ``conf/compression/plan.yaml`` (stored as ``base_plan``)."""

    method: str = "plan"
    plan: str | None = None  # the plan file (YAML) written by src/plan.py; required
    model: str | None = None  # configured model name, checked against the plan's
    input_shape: list[int] | None = None  # configured (C, H, W), checked against the plan's
    hw: str | None = None  # configured hw preset; another than the plan's gives a warning


@register_method
class AppliedPlan(CompressionMethod[PlanFileConfig, None]):
    """Per-layer methods and settings from a plan file (applied by ``apply_plan``)."""

    name = "plan"
    schema = PlanFileConfig

    def layer_settings(self, opts: PlanFileConfig, targets: Targets) -> dict[str, None]:
        raise ValueError("compression=plan needs compression.plan=FILE (made by src/plan.py)")

    def apply(
        self,
        model: nn.Module,
        targets: Targets,
        opts: PlanFileConfig,
        settings: Mapping[str, None],
    ) -> Conversion:
        raise ValueError("compression=plan needs compression.plan=FILE (made by src/plan.py)")
