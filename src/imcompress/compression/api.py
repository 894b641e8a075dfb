"""``apply_compression``: validate the whole plan, then convert the selected layers in place."""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

from imcompress.compression.factorization import max_rank, resolve_rank, truncation_error
from imcompress.compression.lowrank import LowRankConv2d
from imcompress.compression.options import parse_options
from imcompress.compression.pruning.base import MaskedPruner
from imcompress.compression.pruning.channel import ChannelPruner
from imcompress.compression.pruning.pattern import PatternPruner
from imcompress.compression.pruning.unstructured import UnstructuredPruner
from imcompress.compression.result import CompressionResult, count_parameters
from imcompress.compression.schemas import (
    ChannelPruneConfig,
    LowRankCompressionConfig,
    PatternPruneConfig,
    PruneScheduleFields,
    UnstructuredPruneConfig,
)
from imcompress.compression.selection import select_layers, set_submodule

Targets = list[tuple[str, nn.Conv2d]]


def _describe(conv: nn.Conv2d) -> str:
    k = "x".join(str(s) for s in conv.kernel_size)
    return f"OC={conv.out_channels}, IC={conv.in_channels}, kernel={k}"


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _raise_if_any(problems: list[str], method: str) -> None:
    if problems:
        listing = "\n  ".join(problems)
        raise ValueError(
            f"compression={method}: invalid for {len(problems)} layer(s), "
            f"nothing was changed:\n  {listing}"
        )


def plan_lowrank(targets: Targets, opts: LowRankCompressionConfig) -> dict[str, int]:
    """Per-layer per-group ranks; ValueError naming every layer that cannot take the config."""
    ranks: dict[str, int] = {}
    problems: list[str] = []
    for name, conv in targets:
        split = conv.in_channels if opts.group_dim == "in" else conv.out_channels
        if split % opts.groups:
            side = "IC" if opts.group_dim == "in" else "OC"
            problems.append(
                f"{name} ({_describe(conv)}): groups={opts.groups} does not divide {side}={split};"
                f" valid groups: {_divisors(split)}"
            )
            continue
        try:
            ranks[name] = resolve_rank(
                opts.rank, conv.weight.shape, opts.groups, opts.group_dim, opts.rank_mode
            )
        except ValueError as err:
            problems.append(f"{name} ({_describe(conv)}, groups={opts.groups}): {err}")
    _raise_if_any(problems, opts.method)
    return ranks


def _lowrank_record(name: str, conv: nn.Conv2d, new: LowRankConv2d, method: str) -> dict[str, Any]:
    weight = conv.weight.detach()
    before = sum(p.numel() for p in conv.parameters())
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
        "group_dim": new.group_dim,
        "params_before": before,
        "params_after": sum(p.numel() for p in new.parameters()),
        "sparsity": None,
        "svd_rel_error": round(error / norm, 6) if norm else 0.0,
    }


def compress_lowrank(
    model: nn.Module, targets: Targets, opts: LowRankCompressionConfig
) -> list[dict[str, Any]]:
    """Replace every target conv by a :class:`LowRankConv2d` (validated first)."""
    ranks = plan_lowrank(targets, opts)
    records = []
    for name, conv in targets:
        new = LowRankConv2d.from_conv(
            conv,
            ranks[name],
            groups=opts.groups,
            group_dim=opts.group_dim,
            factor_split=opts.factor_split,
        )
        new.train(conv.training)
        records.append(_lowrank_record(name, conv, new, opts.method))
        set_submodule(model, name, new)
    return records


def check_pattern_targets(targets: Targets, opts: PatternPruneConfig) -> None:
    """All targets need one square kernel size, 3x3 for PConv; entries < K*K."""
    problems = []
    sizes = {tuple(conv.kernel_size) for _, conv in targets}
    for name, conv in targets:
        kh, kw = conv.kernel_size
        if kh != kw or kh < 2:
            problems.append(f"{name} ({_describe(conv)}): pattern pruning needs a square KxK, K>1")
        elif opts.pattern_set == "pconv" and kh != 3:
            problems.append(f"{name} ({_describe(conv)}): pattern_set=pconv needs 3x3 kernels")
        elif opts.pattern_entries >= kh * kw:
            problems.append(
                f"{name} ({_describe(conv)}): pattern_entries={opts.pattern_entries}; "
                f"valid: 1..{kh * kw - 1}"
            )
    if not problems and len(sizes) > 1:
        problems.append(f"selected layers mix kernel sizes {sorted(sizes)}; select one size")
    _raise_if_any(problems, opts.method)


def build_pruner(model: nn.Module, targets: Targets, opts: PruneScheduleFields) -> MaskedPruner:
    """The pruner of ``opts.method`` (installs all-ones masks on the targets)."""
    if isinstance(opts, UnstructuredPruneConfig):
        return UnstructuredPruner(targets, scope=opts.scope)
    if isinstance(opts, ChannelPruneConfig):
        return ChannelPruner(model, targets, couple_next=opts.couple_next)
    if isinstance(opts, PatternPruneConfig):
        check_pattern_targets(targets, opts)
        return PatternPruner(
            targets,
            pattern_set=opts.pattern_set,
            entries=opts.pattern_entries,
            num_patterns=opts.num_patterns,
            centre=opts.patdnn_center,
            dim=opts.pattern_dim,
        )
    raise ValueError(f"not a pruning method: {opts.method}")


def _pruning_callback(pruner: MaskedPruner, opts: PruneScheduleFields, records: list) -> Any:
    from imcompress.callbacks.pruning import PruningCallback  # lazy: avoids an import cycle

    return PruningCallback(
        pruner,
        sparsity=opts.sparsity,
        gradual=opts.schedule == "gradual",
        initial_sparsity=opts.initial_sparsity,
        start_epoch=opts.start_epoch,
        end_epoch=opts.end_epoch,
        frequency=opts.frequency,
        records=records,
    )


def apply_compression(model: nn.Module, cfg: Any) -> CompressionResult:
    """Convert ``model`` in place according to ``cfg`` (the ``compression`` config node).

    Every check (config values, layer selection, groups dividing channels, ranks, kernel
    sizes) runs before the first module is changed; a failure raises ValueError naming the
    layers and the valid range. ``method: none`` (or ``cfg=None``) leaves the model unchanged.
    Pruning one-shot sets the final masks now; gradual pruning starts with all-ones masks and
    the returned callback raises the sparsity during training.
    """
    opts = parse_options(cfg)
    options = dataclasses.asdict(opts)
    params_before = count_parameters(model)
    if opts.method == "none":
        return CompressionResult(
            method="none", options=options, model_params_before=params_before, model=model
        )
    if getattr(opts, "plan", None):  # per-layer plan from src/plan.py: compression/plan.py
        from imcompress.compression.plan import apply_plan

        return apply_plan(
            model,
            opts,
            CompressionResult(opts.method, options=options, model_params_before=params_before),
        )
    targets = select_layers(model, opts.include, opts.exclude)
    if not targets:
        raise ValueError(
            f"compression={opts.method}: no layer selected (include={opts.include}, "
            f"exclude={opts.exclude}); nothing was changed"
        )
    result = CompressionResult(
        method=opts.method, options=options, model_params_before=params_before, model=model
    )
    if isinstance(opts, LowRankCompressionConfig):
        result.layers = compress_lowrank(model, targets, opts)
        return result
    assert isinstance(opts, PruneScheduleFields)
    pruner = build_pruner(model, targets, opts)
    if opts.schedule == "oneshot":
        pruner.prune_to(opts.sparsity)
    result.pruner = pruner
    result.layers = pruner.records()
    result.callbacks = [_pruning_callback(pruner, opts, result.layers)]
    return result
