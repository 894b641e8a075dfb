"""Output sizes, parallel-window sizes and window counts per convention.

See docs/cost-model.md#notation and #conventions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imcompress.crossbar.layer_table import IntArray, LayerTable
from imcompress.crossbar.options import Convention, parse_option


@dataclass(frozen=True)
class Geometry:
    """Per-layer output size and the kernel/stride that shape the parallel windows."""

    out_h: IntArray
    out_w: IntArray
    kernel_h: IntArray
    kernel_w: IntArray
    stride_h: IntArray
    stride_w: IntArray
    floor_windows: bool  # count only whole parallel windows (the first published notebook)


def conv_geometry(table: LayerTable, convention: Convention | str) -> Geometry:
    """``physical``: padding and stride applied. ``reference``/``reference_floor``: the image
    side as given, stride 1, ``O = I - K + 1`` (the published code)."""
    convention = parse_option(Convention, convention, "convention")
    if convention == Convention.physical:
        out_h = (table.height + 2 * table.padding_h - table.kernel_h) // table.stride_h + 1
        out_w = (table.width + 2 * table.padding_w - table.kernel_w) // table.stride_w + 1
        return Geometry(
            out_h, out_w, table.kernel_h, table.kernel_w, table.stride_h, table.stride_w, False
        )
    for side, kernel in (("height", table.kernel_h), ("width", table.kernel_w)):
        small = getattr(table, side) < kernel
        if small.any():
            i = int(np.flatnonzero(small)[0])
            raise ValueError(
                f"layer {table.name[i]!r}: {side}={int(getattr(table, side)[i])} is smaller than the "
                f"kernel {int(kernel[i])} (convention={convention.value!r} adds no padding)"
            )
    ones = np.ones(len(table), dtype=np.int64)
    return Geometry(
        table.height - table.kernel_h + 1,
        table.width - table.kernel_w + 1,
        table.kernel_h,
        table.kernel_w,
        ones,
        ones,
        convention == Convention.reference_floor,
    )


def window_count(out: IntArray, per_window: IntArray, floor: bool) -> IntArray:
    """Parallel windows along one side: ``ceil(out / i)`` (``floor`` in the first notebook)."""
    return out // per_window if floor else -(-out // per_window)


def window_size(kernel: IntArray, stride: IntArray, per_window: IntArray) -> IntArray:
    """Input pixels spanned by ``per_window`` outputs: ``K + (i - 1) * s``."""
    return kernel + (per_window - 1) * stride
