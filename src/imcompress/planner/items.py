"""Candidates per layer: every (group, rank) and "dense" for GLR, a sparsity grid for pruning.

An :class:`Item` is what the knapsack chooses one candidate for: one target conv, or for
channel pruning with ``couple_next`` a group of convs whose costs depend on each other (a
pruned output channel also removes the next conv's input rows). Each candidate is a block of
rows of a :class:`~imcompress.crossbar.table.LayerTable` (one row per layer of the item) that
the extractor would produce for the compressed model, so costing the rows with the estimator
gives exactly the costs of the applied plan.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from imcompress.compression.factorization import max_rank
from imcompress.compression.plan import planned_pruner
from imcompress.compression.pruning.base import effective
from imcompress.crossbar.batch import (
    concat_tables,
    lowrank_columns,
    repeat_rows,
    table_from_columns,
)
from imcompress.crossbar.extract import _with_zero_structure
from imcompress.crossbar.table import LayerSpec, LayerTable
from imcompress.planner.proxy import lowrank_errors, mask_error

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Targets = list[tuple[str, nn.Conv2d]]
MAX_COMPONENT_CANDIDATES = 20000


@dataclass
class Item:
    """Candidates of one knapsack item.

    ``rows``: positions in the model's layer table that the item replaces; ``table``: the
    candidate rows, candidate-major (``len(rows)`` rows per candidate). ``settings[c]`` maps
    every target name of the item to its plan entry (``{"rank", "group"}``, ``{"dense": True}``
    or ``{"sparsity"}``). ``errors[c, t]``: relative error of target ``t``; ``params[c]``: the
    parameters the candidate leaves in the item's layers (plus coupled BatchNorms).
    """

    targets: tuple[str, ...]
    rows: tuple[int, ...]
    table: LayerTable
    settings: list[dict[str, dict[str, Any]]]
    errors: FloatArray
    params: IntArray
    costs: dict[str, FloatArray] = field(default_factory=dict)
    row_costs: dict[str, FloatArray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.settings)


def _row_of(table: LayerTable, name: str) -> int:
    try:
        return table.name.index(name)
    except ValueError:
        raise ValueError(f"layer {name!r} is not in the model's layer table") from None


def _bias(conv: nn.Conv2d) -> int:
    return conv.bias.numel() if conv.bias is not None else 0


def glr_items(
    table: LayerTable,
    targets: Targets,
    inputs: dict[str, torch.Tensor] | None,
    group_dim: str = "in",
    groups: list[int] | None = None,
) -> list[Item]:
    """One item per target: dense, and every per-group rank 1..max for every group count that
    divides the channels (``groups``: restrict to these counts; 1 = plain low rank)."""
    items = []
    for name, conv in targets:
        row = _row_of(table, name)
        shape = tuple(conv.weight.shape)
        split = conv.in_channels if group_dim == "in" else conv.out_channels
        counts = [g for g in range(1, split + 1) if split % g == 0]
        if groups:
            counts = [g for g in counts if g in groups]
        cand_groups, cand_ranks, errors = [0], [0], [np.zeros(1)]
        for g in counts:
            top = max_rank(shape, g, group_dim)
            cand_groups += [g] * top
            cand_ranks += list(range(1, top + 1))
            errors.append(
                lowrank_errors(conv.weight, g, group_dim, None if inputs is None else inputs[name])
            )
        g_arr = np.asarray(cand_groups[1:], dtype=np.int64)
        k_arr = np.asarray(cand_ranks[1:], dtype=np.int64)
        pairs = lowrank_columns(repeat_rows(table, [row] * g_arr.size), g_arr, k_arr, group_dim)
        rows = concat_tables([table.select([row]), table_from_columns(pairs)])
        bias = _bias(conv)
        params = np.concatenate(
            [[conv.weight.numel() + bias], rows.nonzero_weights[1:] + bias]
        ).astype(np.int64)
        settings: list[dict[str, dict[str, Any]]] = [{name: {"dense": True}}]
        settings += [
            {name: {"rank": int(k), "group": int(g)}} for g, k in zip(g_arr, k_arr, strict=True)
        ]
        items.append(
            Item(
                targets=(name,),
                rows=(row,),
                table=rows,
                settings=settings,
                errors=np.concatenate(errors)[:, None],
                params=params,
            )
        )
    return items


def prune_items(
    model: nn.Module,
    table: LayerTable,
    targets: Targets,
    opts: Any,
    grid: list[float],
    inputs: dict[str, torch.Tensor] | None,
) -> list[Item]:
    """Items of a pruning method: masks from the method's own criterion at every grid sparsity
    (0 = dense); channel pruning with ``couple_next`` groups coupled convs into one item."""
    work = copy.deepcopy(model)
    names = [name for name, _ in targets]
    work_targets = [(n, cast(nn.Conv2d, work.get_submodule(n))) for n in names]
    pruner = planned_pruner(work, work_targets, opts, {n: 0.0 for n in names})
    modules = {id(m): n for n, m in work.named_modules()}
    grid = sorted({0.0, *(float(s) for s in grid)})
    method = opts.method
    # per target and sparsity: the target's own weight mask (and for channels the kept outputs)
    own: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    keep: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    for s in grid:  # the same per-layer criterion that applies a plan (compression/plan.py)
        pruner.planned = {n: s for n in names}
        if method == "prune_channel":
            kept = pruner.channel_masks(s)
            for n, conv in work_targets:
                keep[n].append(kept[n])
                own[n].append(torch.ones_like(conv.weight) * kept[n][:, None, None, None])
        else:
            masks = pruner.compute_masks(s)
            for n, conv in work_targets:
                own[n].append(masks[(conv, "weight")])
    weights = {n: effective(conv) for n, conv in work_targets}
    errors = {
        n: np.array(
            [mask_error(weights[n], m, None if inputs is None else inputs[n]) for m in own[n]]
        )
        for n in names
    }
    successors: dict[str, str] = {}
    bn_of: dict[str, bool] = {}
    if method == "prune_channel":
        for n in names:
            succ = pruner.successors[n]
            bn_of[n] = succ.bn is not None
            if succ.next_conv is not None:
                successors[n] = modules[id(succ.next_conv)]
    components = _components(names, successors)
    convs = dict(work.named_modules())
    items = []
    for members in components:
        comp_targets = [n for n in names if n in members]
        layers = sorted(members, key=lambda n: _row_of(table, n))
        rows = tuple(_row_of(table, n) for n in layers)
        combos = list(itertools.product(range(len(grid)), repeat=len(comp_targets)))
        if len(combos) > MAX_COMPONENT_CANDIDATES:
            raise ValueError(
                f"channel pruning couples layers {layers}: {len(combos)} candidate combinations "
                f"exceed {MAX_COMPONENT_CANDIDATES}; use a coarser plan.sparsity_grid or "
                "compression.couple_next=false"
            )
        specs: list[LayerSpec] = []
        params, settings, errs = [], [], []
        for combo in combos:
            level = dict(zip(comp_targets, combo, strict=True))
            total = 0
            for layer in layers:
                conv = convs[layer]
                assert isinstance(conv, nn.Conv2d)
                mask = own[layer][level[layer]] if layer in level else torch.ones_like(conv.weight)
                for pred, succ_name in successors.items():
                    if succ_name == layer and pred in level:
                        mask = mask * keep[pred][level[pred]][None, :, None, None]
                specs.append(_masked_spec(table, _row_of(table, layer), mask))
                total += int(mask.count_nonzero())
            for t in comp_targets:
                if bn_of.get(t):
                    total += 2 * int(keep[t][level[t]].count_nonzero())
            params.append(total)
            settings.append({t: {"sparsity": grid[level[t]]} for t in comp_targets})
            errs.append([errors[t][level[t]] for t in comp_targets])
        items.append(
            Item(
                targets=tuple(comp_targets),
                rows=rows,
                table=LayerTable.from_specs(specs),
                settings=settings,
                errors=np.asarray(errs, dtype=np.float64),
                params=np.asarray(params, dtype=np.int64),
            )
        )
    return items


def _components(names: list[str], successors: dict[str, str]) -> list[set[str]]:
    """Connected groups of targets and their successor convs (order of first target)."""
    parent: dict[str, str] = {}

    def find(a: str) -> str:
        parent.setdefault(a, a)
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for n in names:
        find(n)
    for a, b in successors.items():
        parent[find(a)] = find(b)
    groups: dict[str, set[str]] = {}
    for n in list(parent):
        groups.setdefault(find(n), set()).add(n)
    ordered = []
    for n in names:
        root = find(n)
        if root in groups:
            ordered.append(groups.pop(root))
    return ordered


def _masked_spec(table: LayerTable, row: int, mask: torch.Tensor) -> LayerSpec:
    """The spec the extractor builds for layer ``row`` carrying ``mask`` as its ``weight_mask``."""
    spec = LayerSpec(
        name=table.name[row],
        kind=table.kind[row],
        height=int(table.height[row]),
        width=int(table.width[row]),
        kernel_h=int(table.kernel_h[row]),
        kernel_w=int(table.kernel_w[row]),
        in_channels=int(table.in_channels[row]),
        out_channels=int(table.out_channels[row]),
        stride_h=int(table.stride_h[row]),
        stride_w=int(table.stride_w[row]),
        padding_h=int(table.padding_h[row]),
        padding_w=int(table.padding_w[row]),
        groups=int(table.groups[row]),
    )
    return _with_zero_structure(spec, mask.detach().cpu().numpy())


def sensitivity_weights(targets: Targets, mode: str) -> dict[str, float]:
    """Weight of each target's relative error in the objective (docs/planner.md).

    ``uniform``: 1 for every layer. ``params``: the layer's share of the targets' dense
    weights, times the number of targets (mean 1).
    """
    if mode == "uniform":
        return {name: 1.0 for name, _ in targets}
    if mode == "params":
        sizes = {name: conv.weight.numel() for name, conv in targets}
        total = sum(sizes.values())
        return {name: len(sizes) * size / total for name, size in sizes.items()}
    raise ValueError(f"plan.sensitivity={mode!r}; valid: ['uniform', 'params']")
