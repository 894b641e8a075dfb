"""``method: prune_pattern``: KxK kernel patterns plus connectivity pruning.

Sources: PConv (Ma et al., AAAI 2020), PatDNN (Niu et al., ASPLOS 2020); see
:mod:`imcompress.compression.pruning.pattern`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from torch import nn

from imcompress.compression.methods.pruning import PruneLayer, PruningMethod
from imcompress.compression.pruning.base import Criterion, MaskedPruner
from imcompress.compression.pruning.pattern import PatternPruner
from imcompress.compression.pruning.patterns import PatternDim, PatternSet
from imcompress.compression.registry import Targets, describe, register_method
from imcompress.compression.schemas import PruneScheduleFields


@dataclass
class PatternPruneConfig(PruneScheduleFields):
    """Schema of ``conf/compression/prune_pattern.yaml``."""

    method: str = "prune_pattern"
    pattern_set: PatternSet = PatternSet["pconv"]
    pattern_entries: int = 4
    num_patterns: int = 8
    patdnn_center: bool = True
    pattern_dim: PatternDim = PatternDim["kernel"]
    criterion: Criterion = Criterion["magnitude"]  # activation: needs calibration data


@register_method
class PatternPruning(PruningMethod[PatternPruneConfig]):
    """Every kernel keeps one pattern of a small set; connectivity pruning above that."""

    name = "prune_pattern"
    schema = PatternPruneConfig
    plan_option_keys = (
        "pattern_set",
        "pattern_entries",
        "num_patterns",
        "patdnn_center",
        "pattern_dim",
        "criterion",  # the plan was scored with it; applied with it
    )

    def plan_check(self, opts: PatternPruneConfig) -> None:
        """A PatDNN set is learnt from the pruned layers, which the plan chooses: refused."""
        if opts.pattern_set != PatternSet["pconv"]:
            raise ValueError(
                f"planning prune_pattern needs compression.pattern_set=pconv (a "
                f"{opts.pattern_set} set depends on which layers are pruned), got {opts.pattern_set}"
            )

    def check(self, opts: PatternPruneConfig) -> None:
        super().check(opts)
        if opts.pattern_set == PatternSet["pconv"] and opts.pattern_entries != 4:
            raise ValueError(
                f"pattern_set=pconv has 4-entry patterns; got pattern_entries={opts.pattern_entries}"
            )
        if not 1 <= opts.pattern_entries <= 8:
            raise ValueError(
                f"compression.pattern_entries must be in 1..8 (studied: 1, 2, 4, 6, 8), "
                f"got {opts.pattern_entries}"
            )
        if opts.num_patterns < 1:
            raise ValueError(f"compression.num_patterns must be >= 1, got {opts.num_patterns}")

    def check_layers(
        self, opts: PatternPruneConfig, targets: Targets, settings: Mapping[str, PruneLayer]
    ) -> list[str]:
        """All targets need one square kernel size, 3x3 for PConv, and entries < K*K."""
        problems = super().check_layers(opts, targets, settings)
        sizes = {tuple(conv.kernel_size) for _, conv in targets}
        for name, conv in targets:
            kh, kw = conv.kernel_size
            if kh != kw or kh < 2:
                problems.append(
                    f"{name} ({describe(conv)}): pattern pruning needs a square KxK, K>1"
                )
            elif opts.pattern_set == PatternSet["pconv"] and kh != 3:
                problems.append(f"{name} ({describe(conv)}): pattern_set=pconv needs 3x3 kernels")
            elif opts.pattern_entries >= kh * kw:
                problems.append(
                    f"{name} ({describe(conv)}): pattern_entries={opts.pattern_entries}; "
                    f"valid: 1..{kh * kw - 1}"
                )
        if not problems and len(sizes) > 1:
            problems.append(f"selected layers mix kernel sizes {sorted(sizes)}; select one size")
        return problems

    def build_pruner(
        self, model: nn.Module, targets: Targets, opts: PatternPruneConfig
    ) -> MaskedPruner:
        return PatternPruner(
            targets,
            pattern_set=opts.pattern_set,
            entries=opts.pattern_entries,
            num_patterns=opts.num_patterns,
            centre=opts.patdnn_center,
            dim=opts.pattern_dim,
        )
