"""Row skipping for pattern-pruned layers (docs/cost-model.md#row-skipping, GAROS model).

A crossbar row is one (window cell, input channel) pair. Under a parallel window of ``i x j``
outputs the kernel of channel ``c`` is copied at the shifts ``S = {0, s, ..., (i-1)s} x
{0, s, ..., (j-1)s}``; the row is needed if any copy has a kept weight there, so the needed rows of
channel ``c`` are ``|P_c (+) S|`` (Minkowski sum of its kept kernel positions with ``S``).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def shift_matrix(kernel: int, stride: int, outputs: int) -> npt.NDArray[np.int64]:
    """``D[p, k] = 1`` if window cell ``p`` is kernel cell ``k`` shifted by ``a*stride``, ``a < outputs``."""
    window = kernel + (outputs - 1) * stride
    offset = np.arange(window)[:, None] - np.arange(kernel)[None, :]
    return ((offset >= 0) & (offset % stride == 0) & (offset // stride < outputs)).astype(np.int64)


def covered_cells(
    patterns: npt.NDArray[np.bool_],
    outputs_h: int,
    outputs_w: int,
    stride_h: int = 1,
    stride_w: int = 1,
) -> npt.NDArray[np.bool_]:
    """``P (+) S`` for every pattern: ``(..., K_h, K_w)`` -> ``(..., PW_h, PW_w)`` boolean."""
    kernel_h, kernel_w = patterns.shape[-2:]
    d_h = shift_matrix(kernel_h, stride_h, outputs_h)
    d_w = shift_matrix(kernel_w, stride_w, outputs_w)
    return (d_h @ patterns.astype(np.int64) @ d_w.T) > 0


def needed_rows(
    patterns: npt.NDArray[np.bool_],
    outputs_h: int,
    outputs_w: int,
    stride_h: int = 1,
    stride_w: int = 1,
) -> int:
    """Rows one group block needs: ``max over groups of sum_c |P_c (+) S|``.

    ``patterns``: ``(groups, channels_per_group, K_h, K_w)``; a removed channel is all False.
    """
    unique, inverse = np.unique(
        patterns.reshape(-1, *patterns.shape[-2:]), axis=0, return_inverse=True
    )
    per_unique = covered_cells(unique, outputs_h, outputs_w, stride_h, stride_w).sum(axis=(-2, -1))
    per_channel = per_unique[inverse.reshape(-1)].reshape(patterns.shape[:2])
    return int(per_channel.sum(axis=1).max())
