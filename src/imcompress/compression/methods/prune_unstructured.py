"""``method: prune_unstructured``: magnitude pruning of single weights, per layer or global."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from imcompress.compression.methods.pruning import PruningMethod
from imcompress.compression.pruning.base import Criterion, MaskedPruner
from imcompress.compression.pruning.unstructured import Scope, UnstructuredPruner
from imcompress.compression.registry import Targets, register_method
from imcompress.compression.schemas import PruneScheduleFields


@dataclass
class UnstructuredPruneConfig(PruneScheduleFields):
    """Schema of ``conf/compression/prune_unstructured.yaml``."""

    method: str = "prune_unstructured"
    scope: Scope = Scope["layer"]
    criterion: Criterion = Criterion["magnitude"]  # activation: needs calibration data


@register_method
class UnstructuredPruning(PruningMethod[UnstructuredPruneConfig]):
    """Zero the smallest-magnitude weights (Zhu & Gupta 2017 for the gradual ramp)."""

    name = "prune_unstructured"
    schema = UnstructuredPruneConfig
    plan_option_keys = ("scope", "criterion")  # criterion: the plan was scored with it

    def build_pruner(
        self, model: nn.Module, targets: Targets, opts: UnstructuredPruneConfig
    ) -> MaskedPruner:
        return UnstructuredPruner(targets, scope=opts.scope)
