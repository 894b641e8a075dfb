"""Candidate parallel windows: they depend only on the array and the kernel, not on the layer."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from imcompress.crossbar.layer_table import IntArray


@dataclass(frozen=True)
class WindowGrid:
    """Every ``(i, j)`` whose VW-SDK tiles are non-empty, with its layer-independent terms.

    Ordered as the published loop (``j`` outer, ``i`` inner, ascending). Arrays are read-only.
    """

    outputs_h: IntArray  # i
    outputs_w: IntArray  # j
    in_tile: IntArray  # ICt = floor(R / (PW_h * PW_w)), whole input channels per row tile
    out_tile: IntArray  # OCt = floor(C / (i * j)), whole output channels per column tile
    window_cells: IntArray  # PW_h * PW_w

    def take(self, index: npt.NDArray[np.bool_] | IntArray) -> WindowGrid:
        return WindowGrid(
            self.outputs_h[index],
            self.outputs_w[index],
            self.in_tile[index],
            self.out_tile[index],
            self.window_cells[index],
        )


@lru_cache(maxsize=256)
def window_terms(
    kernel_h: int, kernel_w: int, stride_h: int, stride_w: int, rows: int, weight_cols: int
) -> WindowGrid:
    """The array-fit windows (``PW_h*PW_w <= R`` and ``i*j <= C``) for one kernel and array."""
    i_max = min(weight_cols, (rows // kernel_w - kernel_h) // stride_h + 1)
    j_max = min(weight_cols, (rows // kernel_h - kernel_w) // stride_w + 1)
    if i_max < 1 or j_max < 1:
        empty = np.zeros(0, dtype=np.int64)
        return _frozen(WindowGrid(empty, empty, empty, empty, empty))
    grid_j, grid_i = np.meshgrid(np.arange(1, j_max + 1), np.arange(1, i_max + 1), indexing="ij")
    flat_i, flat_j = grid_i.reshape(-1).astype(np.int64), grid_j.reshape(-1).astype(np.int64)
    cells = (kernel_h + (flat_i - 1) * stride_h) * (kernel_w + (flat_j - 1) * stride_w)
    keep = (cells <= rows) & (flat_i * flat_j <= weight_cols)
    i, j, cells = flat_i[keep], flat_j[keep], cells[keep]
    return _frozen(WindowGrid(i, j, rows // cells, weight_cols // (i * j), cells))


def window_grid(
    kernel_h: int, kernel_w: int, stride_h: int, stride_w: int, rows: int, weight_cols: int
) -> tuple[IntArray, IntArray]:
    """The ``(i, j)`` of :func:`window_terms`, in loop order."""
    terms = window_terms(kernel_h, kernel_w, stride_h, stride_w, rows, weight_cols)
    return terms.outputs_h, terms.outputs_w


def smallest_per_count(out_sizes: IntArray, floor: bool) -> IntArray:
    """Sorted ``i`` that are the smallest with their window count ``ceil(O/i)`` for some ``O``.

    A window with more outputs per side but the same count along that side costs at least as
    many tiles and comes later in loop order, so the exact search only needs these.
    """
    chosen: set[int] = set()
    for out in np.unique(out_sizes).tolist():
        chosen.update(_smallest_for(int(out), floor))
    return np.array(sorted(chosen), dtype=np.int64)


@lru_cache(maxsize=1024)
def _smallest_for(out: int, floor: bool) -> tuple[int, ...]:
    i = np.arange(1, out + 1)
    counts = out // i if floor else -(-out // i)
    first = np.ones(out, dtype=bool)
    first[1:] = counts[1:] != counts[:-1]
    return tuple(i[first].tolist())


def _frozen(grid: WindowGrid) -> WindowGrid:
    for value in vars(grid).values():
        value.setflags(write=False)
    return grid
