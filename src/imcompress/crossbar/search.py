"""Window search for im2col, SDK and VW-SDK, vectorized over layers and candidate windows.

A search sees an :class:`Operand` (the conv mapped onto arrays, one row per layer) and,
for SDK-aligned low-rank pairs, an :class:`AlignedL` whose cost joins the objective: R and L share
the window, so the pair is searched jointly (docs/cost-model.md#low-rank-pair).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from imcompress.crossbar.array import Crossbar
from imcompress.crossbar.candidates import WindowGrid, smallest_per_count, window_terms
from imcompress.crossbar.geometry import Geometry, window_count, window_size
from imcompress.crossbar.layer_table import IntArray
from imcompress.crossbar.options import Search
from imcompress.crossbar.quirk import fifo_select
from imcompress.crossbar.tiling import block_arrays, ceil_div, channel_tiles, flat_tiles

Combine = Callable[[IntArray, IntArray], IntArray]


@dataclass(frozen=True)
class Operand:
    """A conv as the arrays see it: geometry and channels per group (rows side, columns side)."""

    geometry: Geometry
    in_per_group: IntArray
    out_per_group: IntArray
    groups: IntArray
    pack: bool

    def __len__(self) -> int:
        return int(self.groups.size)

    def take(self, index: IntArray) -> Operand:
        g = self.geometry
        return Operand(
            Geometry(
                g.out_h[index],
                g.out_w[index],
                g.kernel_h[index],
                g.kernel_w[index],
                g.stride_h[index],
                g.stride_w[index],
                g.floor_windows,
            ),
            self.in_per_group[index],
            self.out_per_group[index],
            self.groups[index],
            self.pack,
        )


@dataclass(frozen=True)
class AlignedL:
    """``L`` of an SDK-aligned pair: ``I_N kron L^T``, ``N*l_groups`` blocks of ``rows x cols``."""

    active: npt.NDArray[np.bool_]
    rows_per_block: IntArray
    cols_per_block: IntArray
    l_groups: IntArray

    def take(self, index: IntArray) -> AlignedL:
        return AlignedL(
            self.active[index],
            self.rows_per_block[index],
            self.cols_per_block[index],
            self.l_groups[index],
        )

    def arrays(self, outputs: IntArray, xbar: Crossbar) -> IntArray:
        """Arrays for ``outputs = i*j`` copies, whole blocks packed (never an all-zero tile)."""
        rows = self.rows_per_block[:, None] if outputs.ndim == 2 else self.rows_per_block
        cols = self.cols_per_block[:, None] if outputs.ndim == 2 else self.cols_per_block
        groups = self.l_groups[:, None] if outputs.ndim == 2 else self.l_groups
        active = self.active[:, None] if outputs.ndim == 2 else self.active
        row_tiles = ceil_div(rows, xbar.rows)
        col_tiles = ceil_div(cols, xbar.weight_cols)
        blocks = outputs * groups
        arrays = block_arrays(blocks, rows, cols, row_tiles, col_tiles, xbar, True)
        return np.where(active, arrays, 0)


@dataclass(frozen=True)
class Selection:
    """Chosen outputs per window (``i`` along h, ``j`` along w) and whether im2col was kept."""

    outputs_h: IntArray
    outputs_w: IntArray
    fallback: npt.NDArray[np.bool_]


def _column(values: IntArray, two_d: bool) -> IntArray:
    return values[:, None] if two_d else values


def window_cost(
    op: Operand,
    outputs_h: IntArray,
    outputs_w: IntArray,
    xbar: Crossbar,
    tiling: str,
    aligned: AlignedL | None,
    combine: Combine,
) -> tuple[IntArray, IntArray, IntArray, IntArray, npt.NDArray[np.bool_]]:
    """Cost of the given windows: ``cycles, arrays_r, row_tiles, col_tiles, valid``.

    ``outputs_h``/``outputs_w``: per layer (1-D) or layers x candidates (2-D), already capped at
    the output size. ``tiling``: ``"flat"`` (im2col, SDK) or ``"channel"`` (VW-SDK).
    """
    two_d = outputs_h.ndim == 2
    g = op.geometry
    window_h = window_size(_column(g.kernel_h, two_d), _column(g.stride_h, two_d), outputs_h)
    window_w = window_size(_column(g.kernel_w, two_d), _column(g.stride_w, two_d), outputs_w)
    outputs = outputs_h * outputs_w
    in_pg = _column(op.in_per_group, two_d)
    out_pg = _column(op.out_per_group, two_d)
    if tiling == "flat":
        block_rows, block_cols, row_tiles, col_tiles = flat_tiles(
            in_pg, out_pg, window_h, window_w, outputs, xbar
        )
        valid = np.ones(np.broadcast(row_tiles, col_tiles).shape, dtype=bool)
    else:
        block_rows, block_cols, row_tiles, col_tiles, valid = channel_tiles(
            in_pg, out_pg, window_h, window_w, outputs, xbar
        )
    arrays_r = block_arrays(
        _column(op.groups, two_d), block_rows, block_cols, row_tiles, col_tiles, xbar, op.pack
    )
    windows = window_count(_column(g.out_h, two_d), outputs_h, g.floor_windows) * window_count(
        _column(g.out_w, two_d), outputs_w, g.floor_windows
    )
    cycles = windows * arrays_r
    if aligned is not None:
        cycles = combine(cycles, windows * aligned.arrays(outputs, xbar))
    return cycles, arrays_r, row_tiles, col_tiles, valid


def select_im2col(op: Operand) -> Selection:
    """im2col: one output per window."""
    ones = np.ones(len(op), dtype=np.int64)
    return Selection(ones, ones.copy(), np.zeros(len(op), dtype=bool))


def select_sdk(
    op: Operand, xbar: Crossbar, aligned: AlignedL | None, combine: Combine
) -> Selection:
    """SDK: the square window with the fewest cycles among those that fit im2col's arrays.

    Feasibility is monotone in ``i``, so the published "stop at the first window that does not fit"
    is the set of feasible windows; ties pick the larger window (published ``<=``).
    """
    n = len(op)
    if n == 0:
        return select_im2col(op)
    g = op.geometry
    ones = np.ones(n, dtype=np.int64)
    _, arrays_1, row_tiles_1, col_tiles_1, _ = window_cost(
        op, ones, ones, xbar, "flat", None, combine
    )
    # columns bound: min(i, O_h) * min(i, O_w) * OC_g <= C * col_tiles_1
    duplicates = xbar.weight_cols * col_tiles_1 // np.maximum(op.out_per_group, 1)
    short = np.minimum(g.out_h, g.out_w)
    col_bound = np.maximum(np.floor(np.sqrt(duplicates)).astype(np.int64), duplicates // short)
    side = np.maximum(g.out_h, g.out_w)
    top = int(max(1, np.minimum(side, col_bound + 1).max()))
    cand = np.arange(1, top + 1, dtype=np.int64)[None, :]
    outputs_h = np.minimum(cand, g.out_h[:, None])
    outputs_w = np.minimum(cand, g.out_w[:, None])
    cycles, arrays_r, row_tiles, col_tiles, _ = window_cost(
        op, outputs_h, outputs_w, xbar, "flat", aligned, combine
    )
    feasible = (
        (row_tiles <= row_tiles_1[:, None])
        & (col_tiles <= col_tiles_1[:, None])
        & (arrays_r <= arrays_1[:, None])
        & (cand <= side[:, None])
    )
    masked = np.where(feasible, cycles, np.iinfo(np.int64).max)
    last = top - 1 - np.argmin(masked[:, ::-1], axis=1)
    rows = np.arange(n)
    return Selection(outputs_h[rows, last], outputs_w[rows, last], np.zeros(n, dtype=bool))


def select_vwsdk(
    op: Operand,
    xbar: Crossbar,
    aligned: AlignedL | None,
    combine: Combine,
    search: Search,
) -> Selection:
    """VW-SDK: rectangular windows with channel-aligned tiles; im2col when it is not beaten.

    ``search="exact"``: the minimum over every ``1 <= i <= O_h``, ``1 <= j <= O_w`` (ties: fewer
    arrays, then loop order); only windows that are the smallest with their window count are
    evaluated (the others never win). ``search="reference"``: the published loop
    (``i <= O_h - 1``, ``j <= O_w - 1``) and its FIFO selection.
    """
    n = len(op)
    g = op.geometry
    best_h = np.ones(n, dtype=np.int64)
    best_w = np.ones(n, dtype=np.int64)
    best_cycles = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    margin = 0 if search == Search.exact else 1
    bound_h, bound_w = g.out_h - margin, g.out_w - margin
    for key, members in _group_by_kernel(g).items():
        grid = _search_grid(
            key,
            xbar.rows,
            xbar.weight_cols,
            frozenset(g.out_h[members].tolist()),
            frozenset(g.out_w[members].tolist()),
            search,
            g.floor_windows,
        )
        if grid.outputs_h.size == 0:
            continue
        sub = op.take(members)
        cycles, arrays_r = _grid_cost(
            sub, grid, xbar, aligned.take(members) if aligned is not None else None, combine
        )
        cand_h, cand_w = grid.outputs_h[None, :], grid.outputs_w[None, :]
        valid = (cand_h <= bound_h[members, None]) & (cand_w <= bound_w[members, None])
        if search == Search.exact:
            pick = _exact_pick(cycles, arrays_r, valid)
        else:
            row_start = grid.outputs_h == 1
            pick = np.array(
                [fifo_select(cycles[k], valid[k], row_start) for k in range(members.size)]
            )
        found = pick >= 0
        safe = np.where(found, pick, 0)
        best_h[members] = np.where(found, grid.outputs_h[safe], 1)
        best_w[members] = np.where(found, grid.outputs_w[safe], 1)
        best_cycles[members] = np.where(
            found, cycles[np.arange(members.size), safe], np.iinfo(np.int64).max
        )
    ones = np.ones(n, dtype=np.int64)
    im2col_cycles = window_cost(op, ones, ones, xbar, "flat", aligned, combine)[0]
    use = best_cycles < im2col_cycles
    return Selection(np.where(use, best_h, 1), np.where(use, best_w, 1), ~use)


def _group_by_kernel(g: Geometry) -> dict[tuple[int, int, int, int], IntArray]:
    """Layer indices per (K_h, K_w, s_h, s_w): the layers that share a window grid."""
    groups: dict[tuple[int, int, int, int], list[int]] = {}
    keys = zip(
        g.kernel_h.tolist(),
        g.kernel_w.tolist(),
        g.stride_h.tolist(),
        g.stride_w.tolist(),
        strict=True,
    )
    for index, key in enumerate(keys):
        groups.setdefault(key, []).append(index)
    return {key: np.array(index, dtype=np.int64) for key, index in groups.items()}


@lru_cache(maxsize=1024)
def _search_grid(
    key: tuple[int, int, int, int],
    rows: int,
    weight_cols: int,
    out_h: frozenset[int],
    out_w: frozenset[int],
    search: Search,
    floor: bool,
) -> WindowGrid:
    """The windows one search evaluates for layers with these output sizes (cached)."""
    grid = window_terms(*key, rows, weight_cols)
    margin = 0 if search == Search.exact else 1
    inside = (grid.outputs_h <= max(out_h) - margin) & (grid.outputs_w <= max(out_w) - margin)
    if search == Search.exact:
        inside &= np.isin(grid.outputs_h, smallest_per_count(np.array(sorted(out_h)), floor))
        inside &= np.isin(grid.outputs_w, smallest_per_count(np.array(sorted(out_w)), floor))
    return grid.take(inside)


def _grid_cost(
    op: Operand, grid: WindowGrid, xbar: Crossbar, aligned: AlignedL | None, combine: Combine
) -> tuple[IntArray, IntArray]:
    """``cycles, arrays_r`` (layers x windows) of channel-aligned tiles on a window grid."""
    g = op.geometry
    i, j = grid.outputs_h[None, :], grid.outputs_w[None, :]
    outputs = i * j
    in_pg, out_pg = op.in_per_group[:, None], op.out_per_group[:, None]
    row_tiles = ceil_div(in_pg, grid.in_tile[None, :])
    col_tiles = ceil_div(out_pg, grid.out_tile[None, :])
    if op.pack and bool((op.groups > 1).any()):
        arrays = block_arrays(
            op.groups[:, None],
            in_pg * grid.window_cells[None, :],
            out_pg * outputs,
            row_tiles,
            col_tiles,
            xbar,
            True,
        )
    else:
        arrays = op.groups[:, None] * row_tiles * col_tiles
    windows = window_count(g.out_h[:, None], i, g.floor_windows) * window_count(
        g.out_w[:, None], j, g.floor_windows
    )
    cycles = windows * arrays
    if aligned is not None:
        cycles = combine(cycles, windows * aligned.arrays(outputs, xbar))
    return cycles, arrays


def _exact_pick(cycles: IntArray, arrays: IntArray, valid: npt.NDArray[np.bool_]) -> IntArray:
    """First candidate (loop order) with the fewest cycles, then the fewest arrays; -1 if none."""
    span = int(arrays.max()) + 1 if arrays.size else 1
    key = np.where(valid, cycles * span + arrays, np.iinfo(np.int64).max)
    pick = np.argmin(key, axis=1)
    return np.where(valid.any(axis=1), pick, -1)
