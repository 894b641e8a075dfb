"""Candidate parallel windows: they depend only on the array and the kernel, not on the layer."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from imcompress.crossbar.table import IntArray


@lru_cache(maxsize=256)
def window_grid(
    kernel_h: int, kernel_w: int, stride_h: int, stride_w: int, rows: int, weight_cols: int
) -> tuple[IntArray, IntArray]:
    """Every ``(i, j)`` whose VW-SDK tiles are non-empty (``PW_h*PW_w <= R`` and ``i*j <= C``).

    Returned in the published loop order: ``j`` outer, ``i`` inner, both ascending. Read-only.
    """
    i_max = min(weight_cols, (rows // kernel_w - kernel_h) // stride_h + 1)
    j_max = min(weight_cols, (rows // kernel_h - kernel_w) // stride_w + 1)
    if i_max < 1 or j_max < 1:
        empty = np.zeros(0, dtype=np.int64)
        empty.setflags(write=False)
        return empty, empty
    grid_j, grid_i = np.meshgrid(np.arange(1, j_max + 1), np.arange(1, i_max + 1), indexing="ij")
    flat_i, flat_j = grid_i.reshape(-1).astype(np.int64), grid_j.reshape(-1).astype(np.int64)
    window_cells = (kernel_h + (flat_i - 1) * stride_h) * (kernel_w + (flat_j - 1) * stride_w)
    keep = (window_cells <= rows) & (flat_i * flat_j <= weight_cols)
    i, j = flat_i[keep], flat_j[keep]
    i.setflags(write=False)
    j.setflags(write=False)
    return i, j
