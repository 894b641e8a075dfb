"""``map_layers``: map every layer of a table with im2col, SDK or VW-SDK and count array actions."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

from imcompress.crossbar.array import Crossbar
from imcompress.crossbar.geometry import Geometry, conv_geometry, window_count, window_size
from imcompress.crossbar.pruning import needed_rows
from imcompress.crossbar.search import (
    AlignedL,
    Combine,
    Operand,
    Selection,
    select_im2col,
    select_sdk,
    select_vwsdk,
)
from imcompress.crossbar.table import IntArray, LayerTable
from imcompress.crossbar.tiling import StepCounts, ceil_div, channel_tiles, flat_tiles, step_counts

METHODS = ("im2col", "sdk", "vwsdk")
SEARCHES = ("exact", "reference")
LOWRANK_MAPPINGS = ("aligned", "naive")


@dataclass(frozen=True)
class MappingResult:
    """Per-layer outcome of one mapping; every field is a 1-D array with one entry per layer.

    ``cycles`` is the latency in array cycles (R + L for a low-rank pair, or max with
    ``pipeline``); ``mvm`` counts array activations (R + L). ``window_*``, ``outputs_*``,
    ``row_tiles``, ``col_tiles`` describe the conv (``R`` of a pair); ``arrays`` counts every array
    holding weights (R + L). Activation sums are per image and per input bit cycle.
    """

    method: str
    search: str
    convention: str
    lowrank: str
    array_cells: int
    cycles: IntArray
    mvm: IntArray
    window_h: IntArray
    window_w: IntArray
    outputs_h: IntArray
    outputs_w: IntArray
    parallel_windows: IntArray
    row_tiles: IntArray
    col_tiles: IntArray
    arrays: IntArray
    utilization: npt.NDArray[np.float64]
    fallback: npt.NDArray[np.bool_]
    row_skipping: npt.NDArray[np.bool_]
    skipped_rows: IntArray
    cycles_r: IntArray
    cycles_l: IntArray
    arrays_l: IntArray
    row_activations: IntArray
    col_activations: IntArray
    cell_reads: IntArray
    partial_sum_adds: IntArray
    weight_cells: IntArray

    def __len__(self) -> int:
        return int(self.cycles.size)

    @property
    def total_utilization(self) -> float:
        """Weight cells over the cells of every array used, whole model."""
        capacity = int(self.arrays.sum()) * self.array_cells
        return float(self.weight_cells.sum()) / capacity if capacity else 0.0


@dataclass(frozen=True)
class _Part:
    """Final counts of one mapped operand at its selected windows."""

    windows: IntArray
    window_h: IntArray
    window_w: IntArray
    outputs_h: IntArray
    outputs_w: IntArray
    row_tiles: IntArray
    col_tiles: IntArray
    steps: StepCounts
    skipped_rows: IntArray
    row_skipping: npt.NDArray[np.bool_]

    @property
    def cycles(self) -> IntArray:
        return self.windows * self.steps.arrays


def map_layers(
    table: LayerTable,
    crossbar: Crossbar,
    method: str = "vwsdk",
    search: str = "exact",
    convention: str = "physical",
    *,
    pack_groups: bool = True,
    lowrank: str = "aligned",
    pipeline: bool = False,
) -> MappingResult:
    """Map every layer of ``table`` onto ``crossbar`` arrays.

    ``method``: ``im2col`` | ``sdk`` | ``vwsdk``. ``search``: ``exact`` (true minimum) or
    ``reference`` (the published VW-SDK selection). ``convention``: ``physical`` (padding, stride)
    | ``reference`` (published code: no padding, stride 1) | ``reference_floor`` (the first
    published notebook, which counts only whole parallel windows; it produced the README tables).
    ``pack_groups``: pack group blocks of grouped convs into shared arrays. ``lowrank``: map
    low-rank pairs SDK-aligned (``L`` as ``I_N kron L^T``, joint window search) or ``naive``.
    ``pipeline``: a pair's latency is ``max(R, L)`` instead of ``R + L``.
    """
    for value, valid, label in (
        (method, METHODS, "method"),
        (search, SEARCHES, "search"),
        (lowrank, LOWRANK_MAPPINGS, "lowrank"),
    ):
        if value not in valid:
            raise ValueError(f"{label}={value!r}, valid: {valid}")
    geometry = conv_geometry(table, convention)
    combine: Combine = np.maximum if pipeline else np.add
    pair = table.is_pair
    empty = (table.in_kept == 0) | (table.out_kept == 0)
    groups = table.groups
    in_per_group = np.maximum(table.in_kept // groups, 1)
    out_per_group = np.where(
        pair, table.rank_channels // groups, np.maximum(table.out_kept // groups, 1)
    )
    op = Operand(geometry, in_per_group, out_per_group, groups, pack_groups)
    aligned = None
    if lowrank == "aligned" and pair.any():
        l_groups = table.l_groups
        aligned = AlignedL(
            pair,
            np.maximum(table.rank_channels // l_groups, 1),
            table.out_channels // l_groups,
            l_groups,
        )
    selection = _select(method, op, crossbar, aligned, combine, search)
    r_part = _conv_part(op, selection, crossbar, method, table)

    l_cycles = np.zeros(len(table), dtype=np.int64)
    l_steps_total = _zero_steps(len(table))
    l_arrays = np.zeros(len(table), dtype=np.int64)
    l_outputs = np.zeros(len(table), dtype=np.int64)
    if aligned is not None:
        l_outputs = r_part.outputs_h * r_part.outputs_w
        steps = _aligned_steps(aligned, l_outputs, crossbar)
        l_arrays = steps.arrays
        l_cycles = r_part.windows * steps.arrays
        l_steps_total = _scale(steps, r_part.windows)
    elif pair.any():
        index = np.flatnonzero(pair)
        l_op = _naive_l_operand(table, geometry, index, pack_groups)
        l_selection = _select(method, l_op, crossbar, None, combine, search)
        l_part = _conv_part(l_op, l_selection, crossbar, method, None)
        l_cycles[index] = l_part.cycles
        l_arrays[index] = l_part.steps.arrays
        l_outputs[index] = l_part.outputs_h * l_part.outputs_w
        scaled = _scale(l_part.steps, l_part.windows)
        l_steps_total = StepCounts(
            *(_scatter(len(table), index, getattr(scaled, f.name)) for f in fields(StepCounts))
        )

    r_steps_total = _scale(r_part.steps, r_part.windows)
    r_cycles = r_part.cycles
    arrays = r_part.steps.arrays + l_arrays
    kernel = table.kernel_h * table.kernel_w
    r_weights = np.where(
        pair, table.in_channels // groups * kernel * table.rank_channels, table.nonzero_weights
    )
    l_weights = np.where(pair, table.rank_channels // table.l_groups * table.out_channels, 0)
    weight_cells: IntArray = np.asarray(
        (r_weights * r_part.outputs_h * r_part.outputs_w + l_weights * l_outputs) * crossbar.slices,
        dtype=np.int64,
    )
    capacity = arrays * crossbar.rows * crossbar.cols
    utilization = np.where(capacity > 0, weight_cells / np.maximum(capacity, 1), 0.0)
    keep = ~empty
    any_empty = bool(empty.any())

    def kept(values: IntArray) -> IntArray:
        return np.where(keep, values, 0) if any_empty else values

    return MappingResult(
        method=method,
        search=search,
        convention=convention,
        lowrank=lowrank,
        array_cells=crossbar.rows * crossbar.cols,
        cycles=kept(combine(r_cycles, l_cycles)),
        mvm=kept(r_cycles + l_cycles),
        window_h=r_part.window_h,
        window_w=r_part.window_w,
        outputs_h=r_part.outputs_h,
        outputs_w=r_part.outputs_w,
        parallel_windows=r_part.windows,
        row_tiles=kept(r_part.row_tiles),
        col_tiles=kept(r_part.col_tiles),
        arrays=kept(arrays),
        utilization=np.where(keep, utilization, 0.0),
        fallback=selection.fallback,
        row_skipping=r_part.row_skipping & keep,
        skipped_rows=kept(r_part.skipped_rows),
        cycles_r=kept(r_cycles),
        cycles_l=kept(l_cycles),
        arrays_l=kept(l_arrays),
        row_activations=kept(r_steps_total.row_activations + l_steps_total.row_activations),
        col_activations=kept(r_steps_total.col_activations + l_steps_total.col_activations),
        cell_reads=kept(r_steps_total.cell_reads + l_steps_total.cell_reads),
        partial_sum_adds=kept(r_steps_total.partial_sum_adds + l_steps_total.partial_sum_adds),
        weight_cells=kept(weight_cells),
    )


def _select(
    method: str,
    op: Operand,
    xbar: Crossbar,
    aligned: AlignedL | None,
    combine: Combine,
    search: str,
) -> Selection:
    if method == "im2col":
        return select_im2col(op)
    if method == "sdk":
        return select_sdk(op, xbar, aligned, combine)
    return select_vwsdk(op, xbar, aligned, combine, search)


def _conv_part(
    op: Operand, selection: Selection, xbar: Crossbar, method: str, table: LayerTable | None
) -> _Part:
    """Counts at the selected windows; applies row skipping for layers with kernel patterns."""
    g = op.geometry
    outputs_h, outputs_w = selection.outputs_h, selection.outputs_w
    window_h = window_size(g.kernel_h, g.stride_h, outputs_h)
    window_w = window_size(g.kernel_w, g.stride_w, outputs_w)
    outputs = outputs_h * outputs_w
    block_rows, block_cols, row_tiles, col_tiles = flat_tiles(
        op.in_per_group, op.out_per_group, window_h, window_w, outputs, xbar
    )
    if method == "vwsdk":
        _, _, ch_row_tiles, ch_col_tiles, _ = channel_tiles(
            op.in_per_group, op.out_per_group, window_h, window_w, outputs, xbar
        )
        row_tiles = np.where(selection.fallback, row_tiles, ch_row_tiles)
        col_tiles = np.where(selection.fallback, col_tiles, ch_col_tiles)
    skipped = np.zeros(len(op), dtype=np.int64)
    if table is not None:
        for k, pattern in enumerate(table.patterns):
            if pattern is None or table.is_pair[k]:
                continue
            rows = needed_rows(
                pattern,
                int(outputs_h[k]),
                int(outputs_w[k]),
                int(g.stride_h[k]),
                int(g.stride_w[k]),
            )
            skipped[k] = block_rows[k] - rows
    skipping = skipped > 0
    block_rows = block_rows - skipped
    row_tiles = np.where(skipping, ceil_div(block_rows, xbar.rows), row_tiles)
    steps = step_counts(op.groups, block_rows, block_cols, row_tiles, col_tiles, xbar, op.pack)
    windows = window_count(g.out_h, outputs_h, g.floor_windows) * window_count(
        g.out_w, outputs_w, g.floor_windows
    )
    return _Part(
        windows,
        window_h,
        window_w,
        outputs_h,
        outputs_w,
        row_tiles,
        col_tiles,
        steps,
        skipped,
        skipping,
    )


def _aligned_steps(aligned: AlignedL, outputs: IntArray, xbar: Crossbar) -> StepCounts:
    rows, cols = aligned.rows_per_block, aligned.cols_per_block
    steps = step_counts(
        outputs * aligned.l_groups,
        rows,
        cols,
        ceil_div(rows, xbar.rows),
        ceil_div(cols, xbar.weight_cols),
        xbar,
        True,
    )
    return StepCounts(
        *(np.where(aligned.active, getattr(steps, f.name), 0) for f in fields(StepCounts))
    )


def _naive_l_operand(table: LayerTable, geometry: Geometry, index: IntArray, pack: bool) -> Operand:
    """``L`` as its own 1x1 conv on R's output feature map."""
    ones = np.ones(index.size, dtype=np.int64)
    l_groups = table.l_groups[index]
    l_geometry = Geometry(
        geometry.out_h[index], geometry.out_w[index], ones, ones, ones, ones, geometry.floor_windows
    )
    return Operand(
        l_geometry,
        table.rank_channels[index] // l_groups,
        table.out_channels[index] // l_groups,
        l_groups,
        pack,
    )


def _scale(steps: StepCounts, windows: IntArray) -> StepCounts:
    return StepCounts(*(getattr(steps, f.name) * windows for f in fields(StepCounts)))


def _zero_steps(n: int) -> StepCounts:
    return StepCounts(*(np.zeros(n, dtype=np.int64) for _ in fields(StepCounts)))


def _scatter(n: int, index: IntArray, values: IntArray) -> IntArray:
    out = np.zeros(n, dtype=np.int64)
    out[index] = values
    return out
