"""``method: lr | glr``: (group) low-rank factorization of the selected convs.

Each selected conv becomes a :class:`~imcompress.compression.lowrank.LowRankConv2d` (a KxK
conv ``R`` then a 1x1 conv ``L``) initialized by per-group truncated SVD. Source: Jeon, Rhe,
Ko, "Low-Rank Compression for IMC Arrays", DATE 2025 (arXiv 2502.07820).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from imcompress.compression.factorization import (
    Factorization,
    FactorSplit,
    GroupDim,
    RankMode,
    max_rank,
    resolve_rank,
    truncation_error,
)
from imcompress.compression.lowrank import LowRankConv2d
from imcompress.compression.registry import (
    CompressionMethod,
    Conversion,
    Targets,
    describe,
    register_method,
)
from imcompress.compression.schemas import SelectionFields
from imcompress.compression.selection import set_submodule
from imcompress.errors import LayerProblem


@dataclass
class LowRankCompressionConfig(SelectionFields):
    """Schema of ``conf/compression/{lr,glr}.yaml`` (stored as ``base_lowrank``)."""

    method: str = "glr"
    rank: int | float = (
        0.25  # int: per-group rank; float in (0, 1]: ratio of each layer's full rank
    )
    groups: int = 1
    group_dim: GroupDim = GroupDim["in"]
    rank_mode: RankMode = RankMode["per_group"]
    factor_split: FactorSplit = FactorSplit["balanced"]
    factorization: Factorization = Factorization["svd"]  # whitened: needs calibration data


@dataclass(frozen=True)
class LowRankLayer:
    """What one layer gets: ``rank`` (int, or a ratio in (0, 1]) and ``groups``."""

    rank: int | float
    groups: int


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def check_rank(rank: object) -> None:
    """ValueError unless ``rank`` is an int >= 1 or a float ratio in (0, 1] (bool is neither)."""
    if isinstance(rank, bool) or not isinstance(rank, int | float):
        raise ValueError(f"compression.rank must be an int >= 1 or a float in (0, 1], got {rank!r}")
    if isinstance(rank, float) and not 0.0 < rank <= 1.0:
        raise ValueError(f"compression.rank ratio must be in (0, 1], got {rank}")
    if isinstance(rank, int) and rank < 1:
        raise ValueError(f"compression.rank must be >= 1, got {rank}")


@register_method
class GroupLowRank(CompressionMethod[LowRankCompressionConfig, LowRankLayer]):
    """Group low-rank: ``groups`` blocks along ``group_dim``, each of rank ``rank``."""

    name = "glr"
    schema = LowRankCompressionConfig
    schema_name = "base_lowrank"
    layer_type = LowRankLayer
    # a plan's ranks are per group; its errors are those of its factorization
    plan_option_keys = ("group_dim", "rank_mode", "factorization")

    def plan_items(self, opts: LowRankCompressionConfig, space: Any) -> list[Any]:
        """Dense and every (groups, per-group rank) of every target (group counts: the
        divisors of the split channels, restricted to ``space.groups``; ``lr``: 1 only)."""
        from dataclasses import replace

        from imcompress.planner.items import lowrank_items

        if self.name == "lr":
            space = replace(space, groups=[1])
        return lowrank_items(
            space, self.name, str(opts.group_dim), self.plan_setting, str(opts.factorization)
        )

    @staticmethod
    def plan_setting(rank: int, groups: int) -> LowRankLayer:
        """The settings of one planned layer: per-group ``rank`` of ``groups`` groups."""
        return LowRankLayer(rank=rank, groups=groups)

    def uniform_settings(
        self, opts: LowRankCompressionConfig, shape: tuple[int, ...], grid: tuple[float, ...] = ()
    ) -> list[tuple[dict[str, Any], LowRankLayer]]:
        """What ``compression.rank=<ratio> compression.groups=<g>`` gives a layer of ``shape``,
        for every ratio k/256 and group count dividing its split channels."""
        split = shape[1] if opts.group_dim == GroupDim["in"] else shape[0]
        out = []
        for groups in _divisors(split) if self.name == "glr" else [1]:
            limit = max_rank(shape, groups, opts.group_dim)
            for step in range(1, 257):
                rank = min(limit, max(1, round(step / 256 * limit)))
                out.append(({"groups": groups, "rank": step / 256}, LowRankLayer(rank, groups)))
        return out

    def check(self, opts: LowRankCompressionConfig) -> None:
        groups = opts.groups
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
            raise ValueError(f"compression.groups must be an int >= 1, got {groups!r}")
        check_rank(opts.rank)

    def layer_settings(
        self, opts: LowRankCompressionConfig, targets: Targets
    ) -> dict[str, LowRankLayer]:
        return {name: LowRankLayer(rank=opts.rank, groups=opts.groups) for name, _ in targets}

    def layer_ranks(
        self,
        opts: LowRankCompressionConfig,
        targets: Targets,
        settings: Mapping[str, LowRankLayer],
    ) -> tuple[dict[str, int], list[str]]:
        """Per-group rank of every layer that can take its settings, and the problems."""
        ranks: dict[str, int] = {}
        problems: list[str] = []
        for name, conv in targets:
            layer = settings[name]
            split = conv.in_channels if opts.group_dim == GroupDim["in"] else conv.out_channels
            if split % layer.groups:
                side = "input" if opts.group_dim == GroupDim["in"] else "output"
                problems.append(
                    LayerProblem(
                        name,
                        f"groups={layer.groups} does not divide the {side} channels",
                        detail=describe(conv),
                        valid=_divisors(split),
                    )
                )
                continue
            try:
                ranks[name] = resolve_rank(
                    layer.rank, conv.weight.shape, layer.groups, opts.group_dim, opts.rank_mode
                )
            except ValueError as err:
                problems.append(f"{name} ({describe(conv)}, groups={layer.groups}): {err}")
        return ranks, problems

    def check_layers(
        self,
        opts: LowRankCompressionConfig,
        targets: Targets,
        settings: Mapping[str, LowRankLayer],
    ) -> list[str]:
        return self.layer_ranks(opts, targets, settings)[1]

    def apply(
        self,
        model: nn.Module,
        targets: Targets,
        opts: LowRankCompressionConfig,
        settings: Mapping[str, LowRankLayer],
    ) -> Conversion:
        ranks, _ = self.layer_ranks(opts, targets, settings)
        records = []
        for name, conv in targets:
            new = LowRankConv2d.from_conv(
                conv,
                ranks[name],
                groups=settings[name].groups,
                group_dim=opts.group_dim,
                factor_split=opts.factor_split,
            )
            new.train(conv.training)
            records.append(lowrank_record(name, conv, new, opts.method))
            set_submodule(model, name, new)
        return Conversion(layers=records)


@register_method
class LowRank(GroupLowRank):
    """Plain low-rank: group low-rank with one group."""

    name = "lr"

    def check(self, opts: LowRankCompressionConfig) -> None:
        super().check(opts)
        if opts.groups != 1:
            raise ValueError(
                f"compression=lr is group low-rank with groups=1 (got groups={opts.groups}); "
                "use compression=glr for groups > 1"
            )


def lowrank_record(name: str, conv: nn.Conv2d, new: LowRankConv2d, method: str) -> dict[str, Any]:
    weight = conv.weight.detach()
    error = truncation_error(weight, new.rank, new.groups, new.group_dim)
    norm = float(weight.double().norm())
    return {
        "name": name,
        "method": method,
        "shape": list(weight.shape),
        "stride": list(conv.stride),
        "rank": new.rank,
        "total_rank": new.rank * new.groups,
        "max_rank": max_rank(weight.shape, new.groups, new.group_dim),
        "groups": new.groups,
        "group_dim": str(new.group_dim),
        "params_before": sum(p.numel() for p in conv.parameters()),
        "params_after": sum(p.numel() for p in new.parameters()),
        "sparsity": None,
        "svd_rel_error": round(error / norm, 6) if norm else 0.0,
    }
