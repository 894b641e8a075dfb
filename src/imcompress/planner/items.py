"""Candidates per layer, as the knapsack sees them: rows of the layer table, damage, params.

A method supplies its candidates through the registry
(:meth:`imcompress.compression.registry.CompressionMethod.plan_items`), built with the helpers
here, which name no method: :func:`lowrank_items` (factor pairs of every group count and
rank), :func:`mask_items` (masks at a grid of levels, coupled layers as one item) and
:func:`weight_items` (any per-layer replacement weight of the same shape). Every candidate is
a ``(method, settings)`` choice per target, ``settings`` an instance of the method's
``layer_type``; ``("none", None)`` keeps the conv dense and is candidate 0 of every item.

An :class:`Item` is what the knapsack chooses one candidate for: one target conv, or convs
whose costs depend on each other (a pruned output channel also removes the next conv's input
rows). Each candidate is a block of rows of a :class:`~imcompress.crossbar.layer_table.LayerTable`
(one row per layer of the item) that the extractor would produce for the compressed model, so
costing the rows with the estimator gives exactly the costs of the applied plan.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from imcompress.compression.factorization import max_rank
from imcompress.compression.pruning.base import ParamKey, effective
from imcompress.crossbar.batch import (
    concat_tables,
    lowrank_columns,
    repeat_rows,
    table_from_columns,
)
from imcompress.crossbar.extract import with_zero_structure
from imcompress.crossbar.layer_table import LayerSpec, LayerTable
from imcompress.planner.proxy import lowrank_errors, mask_error

__all__ = [
    "DENSE",
    "Choice",
    "Item",
    "PlanSpace",
    "lowrank_items",
    "mask_items",
    "merge_items",
    "replacement_error",
    "row_of",
    "sensitivity_weights",
    "weight_items",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Targets = list[tuple[str, nn.Conv2d]]
Choice = tuple[str, Any]  # (method name, that method's per-layer settings)
DENSE: Choice = ("none", None)
#: level -> target -> {(module, parameter): mask} the target puts on the model at that level
MaskFn = Callable[[float], dict[str, dict[ParamKey, torch.Tensor]]]
MAX_COMPONENT_CANDIDATES = 20000


@dataclass(frozen=True)
class PlanSpace:
    """What a method builds its candidates from: the (dense) model, its layer table, the
    targets, the proxy's calibration inputs per target (None: weight error) and the
    planner's search options."""

    model: nn.Module
    table: LayerTable
    targets: Targets
    inputs: dict[str, torch.Tensor] | None = None
    groups: list[int] | None = None  # group counts a grouped method may use (None: all)
    sparsity_grid: tuple[float, ...] = ()  # levels a mask method may use (0 is added)


@dataclass
class Item:
    """Candidates of one knapsack item.

    ``rows``: positions in the model's layer table that the item replaces; ``table``: the
    candidate rows, candidate-major (``len(rows)`` rows per candidate). ``choices[c]`` maps
    every target of the item to its ``(method, settings)``; candidate 0 is dense.
    ``errors[c, t]``: relative error of target ``t``; ``params[c]``: the parameters the
    candidate leaves in the item's layers (plus coupled parameters such as BatchNorms).
    """

    targets: tuple[str, ...]
    rows: tuple[int, ...]
    table: LayerTable
    choices: list[dict[str, Choice]]
    errors: FloatArray
    params: IntArray
    costs: dict[str, FloatArray] = field(default_factory=dict)
    row_costs: dict[str, FloatArray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.choices)


def row_of(table: LayerTable, name: str) -> int:
    """Position of layer ``name`` in ``table`` (ValueError if absent)."""
    try:
        return table.name.index(name)
    except ValueError:
        raise ValueError(f"layer {name!r} is not in the model's layer table") from None


def _bias(conv: nn.Conv2d) -> int:
    return conv.bias.numel() if conv.bias is not None else 0


def lowrank_items(
    space: PlanSpace,
    method: str,
    group_dim: str,
    settings: Callable[[int, int], Any],
    factorization: str = "svd",
) -> list[Item]:
    """One item per target: dense, and every per-group rank 1..max for every group count that
    divides the split channels (``space.groups``: only these counts). ``settings(rank,
    groups)`` is the method's per-layer settings of one candidate; the errors are those of
    ``factorization`` (svd | whitened, which needs the space's calibration inputs)."""
    items = []
    for name, conv in space.targets:
        row = row_of(space.table, name)
        shape = tuple(conv.weight.shape)
        split = conv.in_channels if group_dim == "in" else conv.out_channels
        counts = [g for g in range(1, split + 1) if split % g == 0]
        if space.groups:
            counts = [g for g in counts if g in space.groups]
        cand_groups, cand_ranks, errors = [0], [0], [np.zeros(1)]
        for g in counts:
            top = max_rank(shape, g, group_dim)
            cand_groups += [g] * top
            cand_ranks += list(range(1, top + 1))
            errors.append(
                lowrank_errors(conv.weight, g, group_dim, _inputs(space, name), factorization)
            )
        g_arr = np.asarray(cand_groups[1:], dtype=np.int64)
        k_arr = np.asarray(cand_ranks[1:], dtype=np.int64)
        pairs = lowrank_columns(
            repeat_rows(space.table, [row] * g_arr.size), g_arr, k_arr, group_dim
        )
        rows = concat_tables([space.table.select([row]), table_from_columns(pairs)])
        bias = _bias(conv)
        params = np.concatenate(
            [[conv.weight.numel() + bias], rows.nonzero_weights[1:] + bias]
        ).astype(np.int64)
        choices: list[dict[str, Choice]] = [{name: DENSE}]
        choices += [
            {name: (method, settings(int(k), int(g)))} for g, k in zip(g_arr, k_arr, strict=True)
        ]
        items.append(
            Item(
                targets=(name,),
                rows=(row,),
                table=rows,
                choices=choices,
                errors=np.concatenate(errors)[:, None],
                params=params,
            )
        )
    return items


def replacement_error(
    weight: torch.Tensor, new: torch.Tensor, inputs: torch.Tensor | None
) -> float:
    """Relative error of replacing ``weight`` by ``new`` (output error with inputs, else
    weight error): ``mask_error`` for a weight that is not a masked copy."""
    w = weight.detach().double().flatten(1)
    diff = w - new.detach().double().flatten(1)
    if inputs is None:
        return float(diff.pow(2).sum()) / (float(w.pow(2).sum()) or 1.0)
    x = inputs.double()
    return float((diff @ x).pow(2).sum()) / (float((w @ x).pow(2).sum()) or 1.0)


def weight_items(
    space: PlanSpace, method: str, candidates: dict[str, list[tuple[Any, torch.Tensor]]]
) -> list[Item]:
    """One item per target of a method that changes a conv's weight in place: dense plus
    every ``(settings, new weight)`` of ``candidates[name]``. The row is what the extractor
    sees for the new weight (its zeros remove rows/columns as a mask would)."""
    items = []
    for name, conv in space.targets:
        row = row_of(space.table, name)
        bias = _bias(conv)
        specs = [_masked_spec(space.table, row, torch.ones_like(conv.weight))]
        choices: list[dict[str, Choice]] = [{name: DENSE}]
        errors, params = [0.0], [conv.weight.numel() + bias]
        for settings, new in candidates[name]:
            specs.append(_masked_spec(space.table, row, new))
            choices.append({name: (method, settings)})
            errors.append(replacement_error(conv.weight, new, _inputs(space, name)))
            params.append(conv.weight.numel() + bias)
        items.append(
            Item(
                targets=(name,),
                rows=(row,),
                table=LayerTable.from_specs(specs),
                choices=choices,
                errors=np.asarray(errors, dtype=np.float64)[:, None],
                params=np.asarray(params, dtype=np.int64),
            )
        )
    return items


def merge_items(per_method: list[list[Item]]) -> list[Item]:
    """The union of several methods' candidates, one item per target (dense once). Only
    single-target items can be merged: coupled items of one method stay alone."""
    if len(per_method) == 1:
        return per_method[0]
    by_target: dict[str, list[Item]] = {}
    for items in per_method:
        for item in items:
            if len(item.targets) != 1:
                raise ValueError(
                    f"layers {list(item.targets)} are coupled by one method and cannot take "
                    "another method's candidates; plan that method alone or uncouple them "
                    "(compression.couple_next=false)"
                )
            by_target.setdefault(item.targets[0], []).append(item)
    merged = []
    for name, items in by_target.items():
        if len({int(item.params[0]) for item in items}) > 1:
            raise ValueError(f"layer {name!r}: the methods count its dense parameters differently")
        first = items[0]
        tables = [first.table] + [
            item.table.select(list(range(1, len(item)))) for item in items[1:]
        ]
        merged.append(
            Item(
                targets=first.targets,
                rows=first.rows,
                table=concat_tables(tables),
                choices=[c for i, item in enumerate(items) for c in item.choices[1 if i else 0 :]],
                errors=np.concatenate(
                    [item.errors[1 if i else 0 :] for i, item in enumerate(items)]
                ),
                params=np.concatenate(
                    [item.params[1 if i else 0 :] for i, item in enumerate(items)]
                ),
            )
        )
    return merged


def mask_items(
    space: PlanSpace,
    method: str,
    levels: Sequence[float],
    masks: MaskFn,
    settings: Callable[[float], Any],
) -> list[Item]:
    """Items of a mask method: every level of ``levels`` per target (level 0: method ``none``,
    all masks ones; ``settings(level)``: the method's per-layer settings). ``masks(level)``
    gives, per target, the masks it puts on every parameter at that level (its own weight,
    and for coupled methods its successors': a BatchNorm, the next conv's input rows).
    Targets whose masks reach each other's convs form one item whose candidates are all
    combinations of their levels."""
    convs = dict(space.targets)
    names = list(convs)
    grid = _mask_grid(names, levels, masks)
    reaches = _reached_convs(space.model, names, grid.keys)
    errors = {
        n: np.array(
            [
                0.0
                if m is None
                else mask_error(effective(convs[n]), m[n][(convs[n], "weight")], _inputs(space, n))
                for m in grid.by_level
            ]
        )
        for n in names
    }
    items = []
    for members in _components(names, reaches):
        comp = [n for n in names if n in members]
        layers = sorted(
            set().union(*(reaches[n] for n in comp)), key=lambda n: row_of(space.table, n)
        )
        items.append(_component_item(space, method, comp, layers, grid, errors, settings))
    return items


@dataclass(frozen=True)
class _MaskGrid:
    """Every target's masks at every level of a mask method."""

    levels: list[float]  # sorted, 0 first
    by_level: list[dict[str, dict[ParamKey, torch.Tensor]] | None]  # None: level 0, all ones
    keys: dict[str, dict[ParamKey, torch.Tensor]]  # the parameters each target masks


def _mask_grid(names: list[str], levels: Sequence[float], masks: MaskFn) -> _MaskGrid:
    """``masks`` at level 0 and every level of ``levels``; each target's keys are those of its
    first non-dense level."""
    grid = sorted({0.0, *(float(s) for s in levels)})
    by_level = [masks(s) if s > 0 else None for s in grid]
    keys = {n: next(iter(m[n] for m in by_level if m is not None), {}) for n in names}
    return _MaskGrid(grid, by_level, keys)


def _reached_convs(
    model: nn.Module, names: list[str], keys: dict[str, dict[ParamKey, torch.Tensor]]
) -> dict[str, set[str]]:
    """Per target, the convs its masks reach (itself included)."""
    module_name = {id(m): n for n, m in model.named_modules()}
    return {
        n: {module_name[id(module)] for module, _ in keys[n] if isinstance(module, nn.Conv2d)} | {n}
        for n in names
    }


def _component_item(
    space: PlanSpace,
    method: str,
    comp: list[str],
    layers: list[str],
    grid: _MaskGrid,
    errors: dict[str, FloatArray],
    settings: Callable[[float], Any],
) -> Item:
    """The item of the coupled targets ``comp`` (whose masks reach ``layers``): one candidate
    per combination of their levels."""
    combos = list(itertools.product(range(len(grid.levels)), repeat=len(comp)))
    if len(combos) > MAX_COMPONENT_CANDIDATES:
        raise ValueError(
            f"{method} couples layers {layers}: {len(combos)} candidate combinations "
            f"exceed {MAX_COMPONENT_CANDIDATES}; use a coarser plan.sparsity_grid or "
            "uncouple the layers (compression.couple_next=false)"
        )
    specs: list[LayerSpec] = []
    params, choices, errs = [], [], []
    for combo in combos:
        level = dict(zip(comp, combo, strict=True))
        product = _combined(comp, level, grid.by_level, grid.keys)
        for layer in layers:
            conv = _conv(space.model, layer)
            mask = product.get((conv, "weight"), torch.ones_like(conv.weight))
            specs.append(_masked_spec(space.table, row_of(space.table, layer), mask))
        params.append(_kept_params(layers, product, space.model))
        choices.append(
            {t: DENSE if level[t] == 0 else (method, settings(grid.levels[level[t]])) for t in comp}
        )
        errs.append([errors[t][level[t]] for t in comp])
    return Item(
        targets=tuple(comp),
        rows=tuple(row_of(space.table, n) for n in layers),
        table=LayerTable.from_specs(specs),
        choices=choices,
        errors=np.asarray(errs, dtype=np.float64),
        params=np.asarray(params, dtype=np.int64),
    )


def _inputs(space: PlanSpace, name: str) -> torch.Tensor | None:
    return None if space.inputs is None else space.inputs[name]


def _combined(
    comp: list[str],
    level: dict[str, int],
    by_level: list[dict[str, dict[ParamKey, torch.Tensor]] | None],
    keys: dict[str, dict[ParamKey, torch.Tensor]],
) -> dict[ParamKey, torch.Tensor]:
    """Product of every member's masks at its level (level 0 contributes ones)."""
    product: dict[ParamKey, torch.Tensor] = {}
    for t in comp:
        chosen = by_level[level[t]]
        for key, ref in keys[t].items():
            mask = chosen[t][key] if chosen is not None else torch.ones_like(ref)
            product[key] = product[key] * mask if key in product else mask
    return product


def _conv(model: nn.Module, name: str) -> nn.Conv2d:
    conv = model.get_submodule(name)
    assert isinstance(conv, nn.Conv2d)
    return conv


def _kept_params(layers: list[str], product: dict[ParamKey, torch.Tensor], model: nn.Module) -> int:
    """Parameters the layers keep (masked ones count their kept entries, as
    ``count_parameters`` does), plus every other masked parameter (coupled BatchNorms)."""
    total = 0
    convs = [_conv(model, n) for n in layers]
    for conv in convs:
        mask = product.get((conv, "weight"))
        total += int(mask.count_nonzero()) if mask is not None else conv.weight.numel()
        total += conv.bias.numel() if conv.bias is not None else 0
    total += sum(
        int(mask.count_nonzero()) for (module, _), mask in product.items() if module not in convs
    )
    return total


def _components(names: list[str], reaches: dict[str, set[str]]) -> list[set[str]]:
    """Connected groups of targets and the convs their masks reach (order of first target)."""
    parent: dict[str, str] = {}

    def find(a: str) -> str:
        parent.setdefault(a, a)
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for n in names:
        for other in reaches[n]:
            parent[find(n)] = find(other)
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
    return with_zero_structure(spec, mask.detach().cpu().numpy())


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
