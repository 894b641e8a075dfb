"""SDK (shift-and-duplicate-kernel) matrices of conv weights, as a reference for Theorem 2.

For a parallel window of ``i x j`` output positions (stride 1), the window covers
``PW_h x PW_w = (K_h + i - 1) x (K_w + j - 1)`` input pixels. The SDK matrix has one column per
(input channel, window cell) pair, ``c*PW_h*PW_w + u*PW_w + v`` (the order of ``F.unfold``),
and one row per (output channel o, window position n = p*j + q): the kernel of ``o`` shifted
to ``(p, q)``. Row order ``channel_major`` is ``o*N + n``; ``window_major`` is ``n*OC + o``
(the permutation D of Theorem 2). A crossbar holds the transpose of this matrix.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def dense_weight(conv: nn.Conv2d) -> torch.Tensor:
    """The (OC, IC, K, K) weight of ``conv`` with a grouped conv expanded block-diagonally."""
    weight = conv.weight.detach()
    g = conv.groups
    if g == 1:
        return weight
    out_per, in_per = conv.out_channels // g, conv.in_channels // g
    dense = weight.new_zeros(conv.out_channels, conv.in_channels, *weight.shape[2:])
    for a in range(g):
        rows = slice(a * out_per, (a + 1) * out_per)
        dense[rows, a * in_per : (a + 1) * in_per] = weight[rows]
    return dense


def sdk_matrix(
    weight: torch.Tensor, window: tuple[int, int], order: str = "channel_major"
) -> torch.Tensor:
    """SDK matrix (N*OC, IC*PW_h*PW_w) of a dense (OC, IC, K_h, K_w) weight, N = i*j."""
    out_ch, in_ch, kh, kw = weight.shape
    i, j = window
    pwh, pww = kh + i - 1, kw + j - 1
    sdk = weight.new_zeros(out_ch, i, j, in_ch, pwh, pww)
    for p in range(i):
        for q in range(j):
            sdk[:, p, q, :, p : p + kh, q : q + kw] = weight
    sdk = sdk.reshape(out_ch, i * j, in_ch * pwh * pww)
    if order == "window_major":
        sdk = sdk.transpose(0, 1)
    elif order != "channel_major":
        raise ValueError(f"order must be channel_major or window_major, got {order!r}")
    return sdk.reshape(i * j * out_ch, -1)


def window_major_permutation(out_channels: int, n_windows: int) -> torch.Tensor:
    """Index ``D`` with ``channel_major[D] == window_major`` (rows of an SDK matrix)."""
    n = torch.arange(n_windows).repeat_interleave(out_channels)
    o = torch.arange(out_channels).repeat(n_windows)
    return o * n_windows + n


def sdk_patches(
    x: torch.Tensor, kernel: tuple[int, int], window: tuple[int, int], padding: int = 0
) -> torch.Tensor:
    """Parallel-window input vectors (B, IC*PW_h*PW_w, windows) for a stride-1 conv."""
    x = F.pad(x, (padding,) * 4)
    out_h, out_w = x.shape[2] - kernel[0] + 1, x.shape[3] - kernel[1] + 1
    if out_h % window[0] or out_w % window[1]:
        raise ValueError(f"output {out_h}x{out_w} is not a multiple of the window {window}")
    pw = (kernel[0] + window[0] - 1, kernel[1] + window[1] - 1)
    return F.unfold(x, kernel_size=pw, stride=window)


def fold_sdk_outputs(
    y: torch.Tensor,
    out_channels: int,
    window: tuple[int, int],
    out_hw: tuple[int, int],
    order: str = "channel_major",
) -> torch.Tensor:
    """(B, N*OC, windows) SDK outputs back to a (B, OC, H_out, W_out) feature map."""
    i, j = window
    nh, nw = out_hw[0] // i, out_hw[1] // j
    batch = y.shape[0]
    if order == "window_major":
        y = y.reshape(batch, i * j, out_channels, -1).transpose(1, 2)
    y = y.reshape(batch, out_channels, i, j, nh, nw).permute(0, 1, 4, 2, 5, 3)
    return y.reshape(batch, out_channels, nh * i, nw * j)


def sdk_conv2d(
    x: torch.Tensor, weight: torch.Tensor, window: tuple[int, int], padding: int = 0
) -> torch.Tensor:
    """Stride-1 conv computed as SDK matrix times parallel-window inputs (equals F.conv2d)."""
    kernel = (weight.shape[2], weight.shape[3])
    patches = sdk_patches(x, kernel, window, padding)
    out_hw = (x.shape[2] + 2 * padding - kernel[0] + 1, x.shape[3] + 2 * padding - kernel[1] + 1)
    y = sdk_matrix(weight, window) @ patches
    return fold_sdk_outputs(y, weight.shape[0], window, out_hw)
