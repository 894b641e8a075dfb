"""Batched costing: many candidate versions of the layers of a model in one vectorized call.

A planner asks "what would layer ``l`` cost with rank ``k`` and ``g`` groups, or at sparsity
``s``?" for thousands of candidates. Every candidate is one row of a :class:`LayerTable` (the
mapping is independent per row, see docs/cost-model.md), so all candidates of all layers are
costed by a single :func:`~imcompress.crossbar.mapping.map_layers` call per mapping, with the
same code path as :func:`~imcompress.crossbar.cost_report.build_report`: SDK-aligned low-rank pairs,
group packing, im2col fallback and row skipping for kernel patterns are all included.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from imcompress.crossbar.config import HardwareConfig
from imcompress.crossbar.costs import layer_costs
from imcompress.crossbar.layer_table import INT_COLUMNS, IntArray, LayerTable
from imcompress.crossbar.mapping import METHODS, map_layers

FloatArray = npt.NDArray[np.float64]

METRICS = ("cycles", "latency_us", "energy_uj", "arrays")


@dataclass(frozen=True)
class RowCosts:
    """Per-row costs of one mapping (one image): the additive terms of the report's totals."""

    cycles: IntArray
    latency_us: FloatArray
    energy_uj: FloatArray
    arrays: IntArray

    def metric(self, name: str) -> npt.NDArray[Any]:
        """One of :data:`METRICS` by name."""
        if name not in METRICS:
            raise ValueError(f"unknown cost metric {name!r}; valid: {METRICS}")
        value: npt.NDArray[Any] = getattr(self, name)
        return value


def cost_rows(table: LayerTable, hw: Any, mapping: str = "sdk") -> RowCosts:
    """Cost every row of ``table`` with ``mapping`` on ``hw`` in one vectorized evaluation.

    Uses the hw preset's search, convention, group packing and pipelining, and SDK-aligned
    low-rank pairs, exactly as :func:`~imcompress.crossbar.cost_report.build_report` does for its
    main results, so ``cost_rows(t, hw, m).cycles.sum()`` equals the report's ``m/cycles``.
    """
    if mapping not in METHODS:
        raise ValueError(f"mapping={mapping!r}, valid: {METHODS}")
    hw = HardwareConfig.from_cfg(hw)
    result = map_layers(
        table,
        hw.crossbar(),
        mapping,
        hw.search.value,
        hw.convention.value,
        pack_groups=hw.pack_groups,
        lowrank="aligned",
        pipeline=hw.pipeline,
    )
    costs = layer_costs(result, hw)
    return RowCosts(
        cycles=result.cycles,
        latency_us=costs.latency_ns * 1e-3,
        energy_uj=costs.energy_pj * 1e-6,
        arrays=result.arrays,
    )


def repeat_rows(table: LayerTable, index: npt.ArrayLike) -> dict[str, Any]:
    """Columns of the rows at ``index`` (repeats allowed), as a dict to edit and pass to
    :func:`table_from_columns`. Much faster than building one :class:`LayerSpec` per row."""
    idx = np.asarray(index, dtype=np.int64)
    columns: dict[str, Any] = {c: getattr(table, c)[idx].copy() for c in INT_COLUMNS}
    columns["name"] = tuple(table.name[i] for i in idx.tolist())
    columns["kind"] = tuple(table.kind[i] for i in idx.tolist())
    columns["patterns"] = tuple(table.patterns[i] for i in idx.tolist())
    return columns


def lowrank_columns(
    columns: dict[str, Any], groups: IntArray, rank: IntArray, group_dim: str = "in"
) -> dict[str, Any]:
    """Turn dense conv rows into (group) low-rank pairs of per-group ``rank`` and ``groups``.

    ``group_dim="in"``: ``R`` grouped (``groups``), ``L`` dense; ``"out"``: ``R`` dense, ``L``
    grouped. Matches what the extractor reads from a
    :class:`~imcompress.compression.lowrank.LowRankConv2d`.
    """
    out = dict(columns)
    groups = np.asarray(groups, dtype=np.int64)
    rank = np.asarray(rank, dtype=np.int64)
    n = groups.size
    rank_channels = groups * rank
    ones = np.ones(n, dtype=np.int64)
    r_groups = groups if group_dim == "in" else ones
    l_groups = ones if group_dim == "in" else groups
    kernel = columns["kernel_h"] * columns["kernel_w"]
    out.update(
        kind=("lowrank",) * n,
        groups=r_groups,
        rank_channels=rank_channels,
        l_groups=l_groups,
        in_kept=columns["in_channels"].copy(),
        out_kept=columns["out_channels"].copy(),
        nonzero_weights=columns["in_channels"] // r_groups * kernel * rank_channels
        + rank_channels // l_groups * columns["out_channels"],
        patterns=(None,) * n,
    )
    return out


def table_from_columns(columns: dict[str, Any]) -> LayerTable:
    """A :class:`LayerTable` from the dict of :func:`repeat_rows` (validated as usual)."""
    return LayerTable(**columns)


def concat_tables(tables: list[LayerTable]) -> LayerTable:
    """Rows of every table, in order."""
    if not tables:
        raise ValueError("concat_tables: no tables")
    first = tables[0]
    values: dict[str, Any] = {
        c: np.concatenate([getattr(t, c) for t in tables]) for c in INT_COLUMNS
    }
    return replace(
        first,
        name=tuple(n for t in tables for n in t.name),
        kind=tuple(k for t in tables for k in t.kind),
        patterns=tuple(p for t in tables for p in t.patterns),
        **values,
    )
