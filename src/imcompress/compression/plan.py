"""Apply a per-layer plan (``compression.plan=FILE``, written by ``src/plan.py``).

A GLR plan gives every listed conv its own per-group rank and group count (or keeps it dense);
a pruning plan gives every listed conv its own sparsity, masks from the method's own criterion.
The whole plan is checked against the model and the compression config before any module is
changed; a mismatch raises ValueError naming every bad layer. See docs/planner.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from imcompress.compression.factorization import max_rank
from imcompress.compression.lowrank import LowRankConv2d
from imcompress.compression.pruning.base import ParamKey, effective, keep_largest
from imcompress.compression.pruning.channel import ChannelPruner
from imcompress.compression.pruning.pattern import PatternPruner
from imcompress.compression.pruning.unstructured import UnstructuredPruner
from imcompress.compression.registry import Conversion
from imcompress.compression.schedule import SparsitySchedule
from imcompress.compression.selection import set_submodule

PLAN_KEYS = ("method", "layers")
LOWRANK_METHODS = ("lr", "glr")
OPTION_KEYS = {
    "glr": ("group_dim",),
    "prune_unstructured": (),
    "prune_channel": ("couple_next",),
    "prune_pattern": (
        "pattern_set",
        "pattern_entries",
        "num_patterns",
        "patdnn_center",
        "pattern_dim",
    ),
}


def load_plan(path: str | Path) -> dict[str, Any]:
    """Read and shape-check a plan file (ValueError/FileNotFoundError naming the problem)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"compression.plan={str(path)!r}: no such plan file")
    try:
        plan = yaml.safe_load(file.read_text())
    except yaml.YAMLError as error:
        raise ValueError(f"compression.plan={str(path)!r} is not valid YAML: {error}") from None
    if not isinstance(plan, dict) or any(k not in plan for k in PLAN_KEYS):
        raise ValueError(
            f"compression.plan={str(path)!r} is not a plan: it needs the keys {list(PLAN_KEYS)} "
            "(write one with src/plan.py)"
        )
    if not isinstance(plan["layers"], dict) or not plan["layers"]:
        raise ValueError(f"compression.plan={str(path)!r}: 'layers' must be a non-empty mapping")
    return plan


def _plan_method(plan: dict[str, Any], opts: Any) -> str:
    """The plan's method, checked against ``compression.method`` and its options."""
    method = plan["method"]
    wanted = "glr" if opts.method in LOWRANK_METHODS else opts.method
    if method != wanted:
        raise ValueError(
            f"compression.plan is a {method!r} plan but compression.method={opts.method!r}; "
            f"use compression={method}"
        )
    saved = plan.get("options") or {}
    different = [
        f"{key}: plan {saved[key]!r} vs config {getattr(opts, key)!r}"
        for key in OPTION_KEYS[method]
        if key in saved and saved[key] != getattr(opts, key)
    ]
    if different:
        raise ValueError(
            "compression.plan was made with other compression options; set them as in the plan: "
            + "; ".join(different)
        )
    if method != "glr" and getattr(opts, "schedule", "oneshot") != "oneshot":
        raise ValueError(
            f"compression.plan sets the final per-layer sparsity; compression.schedule must be "
            f"oneshot, got {opts.schedule!r}"
        )
    return str(method)


def check_plan(model: nn.Module, plan: dict[str, Any], opts: Any) -> list[tuple[str, nn.Conv2d]]:
    """The planned convs, after checking every layer entry against ``model`` (names, shapes,
    ranks, groups, sparsities); ValueError listing every problem."""
    method = _plan_method(plan, opts)
    modules = dict(model.named_modules())
    group_dim = getattr(opts, "group_dim", "in")
    problems: list[str] = []
    targets: list[tuple[str, nn.Conv2d]] = []
    for name, entry in plan["layers"].items():
        conv = modules.get(name)
        if not isinstance(conv, nn.Conv2d) or conv.groups != 1:
            problems.append(f"{name}: not a dense nn.Conv2d of this model")
            continue
        shape = list(conv.weight.shape)
        if not isinstance(entry, dict):
            problems.append(f"{name}: entry must be a mapping, got {entry!r}")
            continue
        if "shape" in entry and list(entry["shape"]) != shape:
            problems.append(f"{name}: plan shape {entry['shape']} but the model has {shape}")
            continue
        if method == "glr":
            problems += _check_lowrank_entry(name, conv, entry, group_dim, opts.method)
        else:
            sparsity = entry.get("sparsity")
            if isinstance(sparsity, bool) or not isinstance(sparsity, int | float):
                problems.append(f"{name}: sparsity must be a number in [0, 1), got {sparsity!r}")
            elif not 0.0 <= sparsity < 1.0:
                problems.append(f"{name}: sparsity={sparsity} is outside [0, 1)")
        targets.append((name, conv))
    if problems:
        listing = "\n  ".join(problems)
        raise ValueError(
            f"compression.plan does not match the model ({len(problems)} layer(s)); nothing was "
            f"changed:\n  {listing}"
        )
    return targets


def _check_lowrank_entry(
    name: str, conv: nn.Conv2d, entry: dict[str, Any], group_dim: str, method: str
) -> list[str]:
    if entry.get("dense"):
        return []
    rank, group = entry.get("rank"), entry.get("group")
    if not isinstance(rank, int) or not isinstance(group, int) or rank < 1 or group < 1:
        return [f"{name}: needs integer rank >= 1 and group >= 1 (or dense: true), got {entry}"]
    split = conv.in_channels if group_dim == "in" else conv.out_channels
    if split % group:
        valid = [d for d in range(1, split + 1) if split % d == 0]
        return [f"{name}: group={group} does not divide {split} channels; valid: {valid}"]
    if method == "lr" and group != 1:
        return [f"{name}: group={group} needs compression=glr (lr has group 1)"]
    limit = max_rank(conv.weight.shape, group, group_dim)
    if rank > limit:
        return [f"{name}: rank={rank} exceeds the per-group maximum {limit} for group={group}"]
    return []


def apply_plan(model: nn.Module, opts: Any) -> Conversion:
    """Convert ``model`` in place as the plan file ``opts.plan`` says (every layer checked
    first); returns the per-layer records and, for pruning, the pruner with one-shot masks."""
    from imcompress.compression.methods.lowrank import lowrank_record

    plan = load_plan(opts.plan)
    targets = check_plan(model, plan, opts)
    entries = plan["layers"]
    if plan["method"] == "glr":
        records = []
        for name, conv in targets:
            entry = entries[name]
            if entry.get("dense"):
                continue
            new = LowRankConv2d.from_conv(
                conv,
                int(entry["rank"]),
                groups=int(entry["group"]),
                group_dim=opts.group_dim,
                factor_split=opts.factor_split,
            )
            new.train(conv.training)
            records.append(lowrank_record(name, conv, new, opts.method))
            set_submodule(model, name, new)
        return Conversion(layers=records)
    sparsity = {name: float(entries[name]["sparsity"]) for name, _ in targets}
    pruner = planned_pruner(model, targets, opts, sparsity)
    final = max(sparsity.values())
    pruner.prune_to(final)
    return Conversion(layers=pruner.records(), pruner=pruner, schedule=SparsitySchedule(final))


def planned_pruner(
    model: nn.Module, targets: list[tuple[str, nn.Conv2d]], opts: Any, sparsity: dict[str, float]
) -> Any:
    """The method's pruner with one sparsity per layer (0 = the layer keeps every weight)."""
    if opts.method == "prune_unstructured":
        return _PlannedUnstructured(targets, sparsity)
    if opts.method == "prune_channel":
        return _PlannedChannel(model, targets, sparsity, couple_next=opts.couple_next)
    if opts.method == "prune_pattern":
        from imcompress.compression.methods.pruning import PruneLayer
        from imcompress.compression.registry import get_method, raise_problems

        uniform = {name: PruneLayer(sparsity=max(sparsity.values())) for name, _ in targets}
        method = get_method(opts.method)  # its kernel-size checks, at one common sparsity
        raise_problems(method.check_layers(opts, targets, uniform), opts.method)
        return _PlannedPattern(
            targets,
            sparsity,
            pattern_set=opts.pattern_set,
            entries=opts.pattern_entries,
            num_patterns=opts.num_patterns,
            centre=opts.patdnn_center,
            dim=opts.pattern_dim,
        )
    raise ValueError(f"compression.plan: {opts.method!r} is not a pruning method")


class _PlannedUnstructured(UnstructuredPruner):
    """Per-layer magnitude pruning at each layer's planned sparsity."""

    def __init__(self, targets: list[tuple[str, nn.Conv2d]], sparsity: dict[str, float]) -> None:
        super().__init__(targets, scope="layer")
        self.planned = sparsity

    def compute_masks(self, sparsity: float) -> dict[ParamKey, torch.Tensor]:
        masks: dict[ParamKey, torch.Tensor] = {}
        for name, conv in self.targets:
            w = effective(conv).abs()
            masks[(conv, "weight")] = keep_largest(w, round(self.planned[name] * w.numel()))
        return masks


class _PlannedChannel(ChannelPruner):
    """L1 filter pruning at each layer's planned sparsity (coupled successors as usual)."""

    def __init__(
        self,
        model: nn.Module,
        targets: list[tuple[str, nn.Conv2d]],
        sparsity: dict[str, float],
        couple_next: bool = True,
    ) -> None:
        super().__init__(model, targets, couple_next=couple_next)
        self.planned = sparsity

    def channel_masks(self, sparsity: float) -> dict[str, torch.Tensor]:
        masks = {}
        for name, conv in self.targets:
            own = self.planned[name]
            if own > 0:
                masks[name] = self._one_mask(conv, own)
            else:
                masks[name] = torch.ones(conv.out_channels, dtype=conv.weight.dtype)
        return masks

    @staticmethod
    def _one_mask(conv: nn.Conv2d, sparsity: float) -> torch.Tensor:
        norms = effective(conv).abs().sum(dim=(1, 2, 3))
        n_prune = min(round(sparsity * conv.out_channels), conv.out_channels - 1)
        return keep_largest(norms, n_prune)


class _PlannedPattern(PatternPruner):
    """Pattern (+ connectivity) masks at each layer's planned sparsity; 0 keeps the layer dense."""

    def __init__(
        self, targets: list[tuple[str, nn.Conv2d]], sparsity: dict[str, float], **options: Any
    ) -> None:
        super().__init__(targets, **options)
        self.planned = sparsity

    def compute_masks(self, sparsity: float) -> dict[ParamKey, torch.Tensor]:
        masks: dict[ParamKey, torch.Tensor] = {}
        for name, conv in self.targets:
            weight = effective(conv)
            own = self.planned[name]
            masks[(conv, "weight")] = (
                self.layer_mask(weight, own) if own > 0 else torch.ones_like(weight)
            )
        return masks
