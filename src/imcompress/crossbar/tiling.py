"""How one mapped weight block is cut into array tiles, and how small blocks share arrays.

All functions are elementwise over broadcast numpy arrays (layers x candidate windows).
A *block* is the mapped matrix of one conv group (or one ``L`` copy): ``block_rows`` word lines by
``block_cols`` weight columns (each ``slices`` physical columns wide).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imcompress.crossbar.array import Crossbar
from imcompress.crossbar.layer_table import IntArray


def ceil_div(a: IntArray, b: IntArray | int) -> IntArray:
    """Integer ``ceil(a / b)``."""
    return -(-a // b)


def flat_tiles(
    in_per_group: IntArray,
    out_per_group: IntArray,
    window_h: IntArray,
    window_w: IntArray,
    outputs: IntArray,
    xbar: Crossbar,
) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """im2col/SDK tiling: the flattened rows (and columns) are cut every R (C) entries.

    Returns ``block_rows, block_cols, row_tiles, col_tiles``.
    """
    block_rows = in_per_group * window_h * window_w
    block_cols = outputs * out_per_group
    return (
        block_rows,
        block_cols,
        ceil_div(block_rows, xbar.rows),
        ceil_div(block_cols, xbar.weight_cols),
    )


def channel_tiles(
    in_per_group: IntArray,
    out_per_group: IntArray,
    window_h: IntArray,
    window_w: IntArray,
    outputs: IntArray,
    xbar: Crossbar,
) -> tuple[IntArray, IntArray, IntArray, IntArray, np.ndarray]:
    """VW-SDK tiling: whole input channels per row tile, whole output channels per column tile.

    ``ICt = floor(R / (PW_h*PW_w))``, ``OCt = floor(C / (i*j))``. Returns
    ``block_rows, block_cols, row_tiles, col_tiles, valid`` (``valid``: ICt > 0 and OCt > 0).
    """
    in_tile = xbar.rows // (window_h * window_w)
    out_tile = xbar.weight_cols // outputs
    valid = (in_tile > 0) & (out_tile > 0)
    row_tiles = ceil_div(in_per_group, np.maximum(in_tile, 1))
    col_tiles = ceil_div(out_per_group, np.maximum(out_tile, 1))
    return in_per_group * window_h * window_w, outputs * out_per_group, row_tiles, col_tiles, valid


def blocks_per_array(block_rows: IntArray, block_cols: IntArray, xbar: Crossbar) -> IntArray:
    """Whole blocks that fit on one array's diagonal (0 when a block needs tiling)."""
    rows = np.maximum(block_rows, 1)
    cols = np.maximum(block_cols, 1)
    return np.minimum(xbar.rows // rows, xbar.weight_cols // cols)


def block_arrays(
    blocks: IntArray,
    block_rows: IntArray,
    block_cols: IntArray,
    row_tiles: IntArray,
    col_tiles: IntArray,
    xbar: Crossbar,
    pack: bool | np.ndarray,
) -> IntArray:
    """Arrays holding ``blocks`` block-diagonal blocks, counting only arrays that hold weights.

    Packed (``pack`` and the block fits one array): ``ceil(blocks / blocks_per_array)``;
    otherwise every block is tiled on its own: ``blocks * row_tiles * col_tiles``.
    """
    separate = blocks * row_tiles * col_tiles
    fits = (row_tiles == 1) & (col_tiles == 1) & (blocks > 1) & pack
    per_array = np.maximum(blocks_per_array(block_rows, block_cols, xbar), 1)
    return np.where(fits, ceil_div(blocks, per_array), separate)


@dataclass(frozen=True)
class StepCounts:
    """Array actions for one parallel-window step (every array of the layer fires once)."""

    arrays: IntArray
    row_activations: IntArray  # sum over arrays of driven rows
    col_activations: IntArray  # sum over arrays of sensed physical columns
    cell_reads: IntArray  # sum over arrays of driven rows x sensed columns
    partial_sum_adds: IntArray  # digital adds that merge row tiles


def step_counts(
    blocks: IntArray,
    block_rows: IntArray,
    block_cols: IntArray,
    row_tiles: IntArray,
    col_tiles: IntArray,
    xbar: Crossbar,
    pack: bool | np.ndarray,
) -> StepCounts:
    """Counts per window step for ``blocks`` blocks (docs/cost-model.md#energy)."""
    slices = xbar.slices
    phys_cols = block_cols * slices
    fits = (row_tiles == 1) & (col_tiles == 1) & (blocks > 1) & pack
    per_array = np.maximum(blocks_per_array(block_rows, block_cols, xbar), 1)
    full, rest = blocks // per_array, blocks % per_array
    packed_cells = full * (per_array * block_rows) * (per_array * phys_cols) + (
        rest * block_rows
    ) * (rest * phys_cols)
    return StepCounts(
        arrays=block_arrays(blocks, block_rows, block_cols, row_tiles, col_tiles, xbar, pack),
        row_activations=np.where(fits, blocks * block_rows, blocks * block_rows * col_tiles),
        col_activations=np.where(fits, blocks * phys_cols, blocks * phys_cols * row_tiles),
        cell_reads=np.where(fits, packed_cells, blocks * block_rows * phys_cols),
        partial_sum_adds=np.where(fits, 0, blocks * block_cols * (row_tiles - 1)),
    )
