"""``map_layers``: map every layer of a table with im2col, SDK or VW-SDK and count array actions.

Three steps: the ``R`` operand (every layer's KxK conv, ``R`` of a low-rank pair) with its window
search, the ``L`` operand of low-rank pairs (SDK-aligned or naive, docs/cost-model.md#low-rank-pair)
and the assembly of both into one :class:`MappingResult`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

from imcompress.crossbar.array import Crossbar
from imcompress.crossbar.geometry import Geometry, conv_geometry, window_count, window_size
from imcompress.crossbar.layer_table import IntArray, LayerTable
from imcompress.crossbar.options import (
    Convention,
    LowRankMapping,
    Method,
    Search,
    parse_option,
)
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
from imcompress.crossbar.tiling import StepCounts, ceil_div, channel_tiles, flat_tiles, step_counts

METHODS: tuple[Method, ...] = tuple(Method)  # every mapping, in report order


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
    method: Method | str = Method.vwsdk,
    search: Search | str = Search.exact,
    convention: Convention | str = Convention.physical,
    *,
    pack_groups: bool = True,
    lowrank: LowRankMapping | str = LowRankMapping.aligned,
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
    See docs/cost-model.md for every formula.
    """
    options = _Options(
        parse_option(Method, method, "method"),
        parse_option(Search, search, "search"),
        parse_option(Convention, convention, "convention"),
        parse_option(LowRankMapping, lowrank, "lowrank"),
        pack_groups,
        np.maximum if pipeline else np.add,
    )
    geometry = conv_geometry(table, options.convention)
    r_operand = _r_operand(table, geometry, pack_groups)
    aligned = _aligned_l(table) if options.lowrank == LowRankMapping.aligned else None
    selection = _select(options, r_operand, crossbar, aligned)
    r_part = _conv_part(r_operand, selection, crossbar, options.method, table)
    if aligned is not None:
        l_part = _l_aligned(aligned, r_part, crossbar)
    elif table.is_pair.any():
        l_part = _l_naive(table, geometry, options, crossbar)
    else:
        l_part = _LPart.zeros(len(table))
    return _assemble(table, crossbar, options, selection, r_part, l_part)


@dataclass(frozen=True)
class _Options:
    """The parsed options of one :func:`map_layers` call."""

    method: Method
    search: Search
    convention: Convention
    lowrank: LowRankMapping
    pack_groups: bool
    combine: Combine  # R and L latency of a pair: np.add, or np.maximum with ``pipeline``


@dataclass(frozen=True)
class _LPart:
    """Per-layer counts of the ``L`` operands of low-rank pairs (zeros for every other layer)."""

    cycles: IntArray
    arrays: IntArray
    outputs: IntArray  # outputs per window of L (i*j copies of L's weights are mapped)
    steps: StepCounts  # array actions summed over all window steps

    @classmethod
    def zeros(cls, n: int) -> _LPart:
        zero = np.zeros(n, dtype=np.int64)
        return cls(zero, zero, zero, _zero_steps(n))


def _r_operand(table: LayerTable, geometry: Geometry, pack: bool) -> Operand:
    """The KxK conv of every layer (``R`` of a pair: ``in -> rank_channels``), per group."""
    groups = table.groups
    in_per_group = np.maximum(table.in_kept // groups, 1)
    out_per_group = np.where(
        table.is_pair, table.rank_channels // groups, np.maximum(table.out_kept // groups, 1)
    )
    return Operand(geometry, in_per_group, out_per_group, groups, pack)


def _aligned_l(table: LayerTable) -> AlignedL | None:
    """``L`` of every pair as ``I_N kron L^T`` blocks (None when the table has no pair)."""
    if not table.is_pair.any():
        return None
    l_groups = table.l_groups
    return AlignedL(
        table.is_pair,
        np.maximum(table.rank_channels // l_groups, 1),
        table.out_channels // l_groups,
        l_groups,
    )


def _l_aligned(aligned: AlignedL, r_part: _Part, crossbar: Crossbar) -> _LPart:
    """SDK-aligned ``L``: one copy per output of R's window, advancing with R's windows."""
    outputs = r_part.outputs_h * r_part.outputs_w
    steps = _aligned_steps(aligned, outputs, crossbar)
    return _LPart(
        r_part.windows * steps.arrays, steps.arrays, outputs, _scale(steps, r_part.windows)
    )


def _l_naive(
    table: LayerTable, geometry: Geometry, options: _Options, crossbar: Crossbar
) -> _LPart:
    """Naive ``L``: its own 1x1 conv, mapped with its own best window, scattered to the pairs."""
    n = len(table)
    index = np.flatnonzero(table.is_pair)
    l_operand = _naive_l_operand(table, geometry, index, options.pack_groups)
    l_selection = _select(options, l_operand, crossbar, None)
    part = _conv_part(l_operand, l_selection, crossbar, options.method, None)
    scaled = _scale(part.steps, part.windows)
    return _LPart(
        _scatter(n, index, part.cycles),
        _scatter(n, index, part.steps.arrays),
        _scatter(n, index, part.outputs_h * part.outputs_w),
        StepCounts(*(_scatter(n, index, getattr(scaled, f.name)) for f in fields(StepCounts))),
    )


def _assemble(
    table: LayerTable,
    crossbar: Crossbar,
    options: _Options,
    selection: Selection,
    r_part: _Part,
    l_part: _LPart,
) -> MappingResult:
    """Join the R and L counts of every layer; layers with no kept weight cost nothing."""
    r_steps = _scale(r_part.steps, r_part.windows)
    r_cycles = r_part.cycles
    arrays = r_part.steps.arrays + l_part.arrays
    weight_cells = _weight_cells(table, crossbar, r_part, l_part)
    capacity = arrays * crossbar.rows * crossbar.cols
    utilization = np.where(capacity > 0, weight_cells / np.maximum(capacity, 1), 0.0)
    keep = ~((table.in_kept == 0) | (table.out_kept == 0))
    any_empty = not bool(keep.all())

    def kept(values: IntArray) -> IntArray:
        return np.where(keep, values, 0) if any_empty else values

    l_steps = l_part.steps
    return MappingResult(
        method=options.method.value,
        search=options.search.value,
        convention=options.convention.value,
        lowrank=options.lowrank.value,
        array_cells=crossbar.rows * crossbar.cols,
        cycles=kept(options.combine(r_cycles, l_part.cycles)),
        mvm=kept(r_cycles + l_part.cycles),
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
        cycles_l=kept(l_part.cycles),
        arrays_l=kept(l_part.arrays),
        row_activations=kept(r_steps.row_activations + l_steps.row_activations),
        col_activations=kept(r_steps.col_activations + l_steps.col_activations),
        cell_reads=kept(r_steps.cell_reads + l_steps.cell_reads),
        partial_sum_adds=kept(r_steps.partial_sum_adds + l_steps.partial_sum_adds),
        weight_cells=kept(weight_cells),
    )


def _weight_cells(table: LayerTable, crossbar: Crossbar, r_part: _Part, l_part: _LPart) -> IntArray:
    """Cells holding weights per layer: R's (one copy per output of its window; a pair's R is
    dense) and L's (one copy per output of L's window), times the cells per weight."""
    pair = table.is_pair
    kernel = table.kernel_h * table.kernel_w
    r_weights = np.where(
        pair,
        table.in_channels // table.groups * kernel * table.rank_channels,
        table.nonzero_weights,
    )
    l_weights = np.where(pair, table.rank_channels // table.l_groups * table.out_channels, 0)
    return np.asarray(
        (r_weights * r_part.outputs_h * r_part.outputs_w + l_weights * l_part.outputs)
        * crossbar.slices,
        dtype=np.int64,
    )


def _select(options: _Options, op: Operand, xbar: Crossbar, aligned: AlignedL | None) -> Selection:
    if options.method == Method.im2col:
        return select_im2col(op)
    if options.method == Method.sdk:
        return select_sdk(op, xbar, aligned, options.combine)
    return select_vwsdk(op, xbar, aligned, options.combine, options.search)


def _conv_part(
    op: Operand, selection: Selection, xbar: Crossbar, method: Method, table: LayerTable | None
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
    if method == Method.vwsdk:
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
