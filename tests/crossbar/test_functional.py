"""The mapping computes the right thing: a conv executed tile by tile through its chosen mapping
equals ``F.conv2d``, and the counted tiles and cycles equal the estimator's.

The SDK matrix of a window of ``i x j`` outputs has one row per (input channel, window cell) and
one column per (output channel, output in the window); it holds the kernel copied at every shift.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn import functional as F

from imcompress.crossbar import Crossbar, LayerSpec, LayerTable, map_layers
from imcompress.crossbar.pruning import needed_rows


def sdk_matrix(weight: torch.Tensor, outputs_h: int, outputs_w: int, stride: int) -> torch.Tensor:
    """Rows (c, u, v) channel-major; columns (o, a, b) output-channel-major."""
    oc, ic, k_h, k_w = weight.shape
    pw_h, pw_w = k_h + (outputs_h - 1) * stride, k_w + (outputs_w - 1) * stride
    matrix = torch.zeros(ic, pw_h, pw_w, oc, outputs_h, outputs_w, dtype=weight.dtype)
    for a in range(outputs_h):
        for b in range(outputs_w):
            matrix[:, a * stride : a * stride + k_h, b * stride : b * stride + k_w, :, a, b] = (
                weight.permute(1, 2, 3, 0)
            )
    return matrix.reshape(ic * pw_h * pw_w, oc * outputs_h * outputs_w)


def tile_cuts(total: int, step: int) -> list[tuple[int, int]]:
    return [(start, min(start + step, total)) for start in range(0, total, step)]


def run_through_mapping(
    x: torch.Tensor,
    weight: torch.Tensor,
    stride: int,
    padding: int,
    outputs_h: int,
    outputs_w: int,
    xbar: Crossbar,
    channel_aligned: bool,
) -> tuple[torch.Tensor, int, int, int]:
    """Execute the conv window by window, tile by tile. Returns (output, row tiles, col tiles, cycles)."""
    oc, _, k_h, k_w = weight.shape
    pw_h, pw_w = k_h + (outputs_h - 1) * stride, k_w + (outputs_w - 1) * stride
    matrix = sdk_matrix(weight, outputs_h, outputs_w, stride)
    if channel_aligned:  # whole input channels per row tile, whole output channels per column tile
        row_step = (xbar.rows // (pw_h * pw_w)) * pw_h * pw_w
        col_step = (xbar.weight_cols // (outputs_h * outputs_w)) * outputs_h * outputs_w
    else:  # the flattened rows/columns cut every R/C entries
        row_step, col_step = xbar.rows, xbar.weight_cols
    row_tiles, col_tiles = (
        tile_cuts(matrix.shape[0], row_step),
        tile_cuts(matrix.shape[1], col_step),
    )
    for r0, r1 in row_tiles:
        for c0, c1 in col_tiles:
            assert r1 - r0 <= xbar.rows and c1 - c0 <= xbar.weight_cols
    out_h = (x.shape[2] + 2 * padding - k_h) // stride + 1
    out_w = (x.shape[3] + 2 * padding - k_w) // stride + 1
    windows_h, windows_w = -(-out_h // outputs_h), -(-out_w // outputs_w)
    padded = F.pad(
        x, (padding, padding + pw_w, padding, padding + pw_h)
    )  # room for partial windows
    out = torch.zeros(oc, windows_h * outputs_h, windows_w * outputs_w, dtype=x.dtype)
    cycles = 0
    for wh in range(windows_h):
        for ww in range(windows_w):
            top, left = wh * outputs_h * stride, ww * outputs_w * stride
            inputs = padded[0, :, top : top + pw_h, left : left + pw_w].reshape(-1)
            acc = torch.zeros(matrix.shape[1], dtype=x.dtype)
            for r0, r1 in row_tiles:  # partial sums of the row tiles are accumulated
                for c0, c1 in col_tiles:
                    acc[c0:c1] += inputs[r0:r1] @ matrix[r0:r1, c0:c1]
                    cycles += 1
            out[:, wh * outputs_h : (wh + 1) * outputs_h, ww * outputs_w : (ww + 1) * outputs_w] = (
                acc.reshape(oc, outputs_h, outputs_w)
            )
    return out[:, :out_h, :out_w], len(row_tiles), len(col_tiles), cycles


def case_table(case: tuple) -> LayerTable:
    """The one-layer table of a CASES entry (its last two fields are the array size)."""
    height, width, kernel, ic, oc, stride, padding, _, _ = case
    return LayerTable.from_shapes(
        height=height,
        width=width,
        kernel=kernel,
        in_channels=ic,
        out_channels=oc,
        stride=stride,
        padding=padding,
    )


CASES = [
    # (H, W, K, IC, OC, stride, padding, R, C)
    (12, 12, 3, 5, 7, 1, 0, 64, 64),
    (12, 10, 3, 5, 7, 1, 1, 64, 64),
    (13, 13, 3, 4, 6, 2, 0, 64, 48),
    (13, 11, 3, 4, 6, 2, 1, 32, 64),
    (9, 9, 5, 3, 4, 1, 2, 128, 32),
    (10, 10, 1, 20, 9, 2, 0, 16, 16),
]


@pytest.mark.parametrize("method", ["im2col", "sdk", "vwsdk"])
@pytest.mark.parametrize("case", CASES, ids=[f"s{c[5]}p{c[6]}K{c[2]}R{c[7]}" for c in CASES])
def test_conv_through_its_mapping_equals_conv2d(case: tuple, method: str) -> None:
    height, width, kernel, ic, oc, stride, padding, rows, cols = case
    torch.manual_seed(0)
    x = torch.randn(1, ic, height, width, dtype=torch.float64)
    weight = torch.randn(oc, ic, kernel, kernel, dtype=torch.float64)
    xbar = Crossbar(rows, cols)
    result = map_layers(case_table(case), xbar, method, "exact", "physical")
    channel_aligned = method == "vwsdk" and not result.fallback[0]
    out, row_tiles, col_tiles, cycles = run_through_mapping(
        x,
        weight,
        stride,
        padding,
        int(result.outputs_h[0]),
        int(result.outputs_w[0]),
        xbar,
        channel_aligned,
    )
    torch.testing.assert_close(out, F.conv2d(x, weight, stride=stride, padding=padding)[0])
    assert (row_tiles, col_tiles, cycles) == (
        result.row_tiles[0],
        result.col_tiles[0],
        result.cycles[0],
    )
    assert result.window_h[0] == kernel + (result.outputs_h[0] - 1) * stride


def test_some_cases_use_windows_larger_than_one_output() -> None:
    """Guard: the functional cases above really exercise duplicated, shifted kernels."""
    sizes = []
    for case in CASES:
        stride, padding, rows, cols = case[-4:]
        for method in ("sdk", "vwsdk"):
            r = map_layers(case_table(case), Crossbar(rows, cols), method)
            sizes.append((int(r.outputs_h[0] * r.outputs_w[0]), stride, padding))
    assert any(n > 1 and s == 2 for n, s, _ in sizes)
    assert any(n > 1 and p == 1 for n, _, p in sizes)


@pytest.mark.parametrize("size", [64, 128])
@pytest.mark.parametrize("method", ["im2col", "sdk", "vwsdk"])
def test_lowrank_pair_through_kron_equals_two_convs(method: str, size: int) -> None:
    """R by its SDK matrix, then L as I_N kron L^T with whole blocks packed into arrays."""
    torch.manual_seed(1)
    height, ic, oc, rank, kernel, padding = 10, 6, 12, 4, 3, 1
    xbar = Crossbar(size, size)
    x = torch.randn(1, ic, height, height, dtype=torch.float64)
    r_weight = torch.randn(rank, ic, kernel, kernel, dtype=torch.float64)
    l_weight = torch.randn(oc, rank, dtype=torch.float64)
    spec = LayerSpec(
        name="pair", kind="lowrank", height=height, width=height, kernel_h=kernel, kernel_w=kernel,
        in_channels=ic, out_channels=oc, padding_h=padding, padding_w=padding, rank_channels=rank,
    )  # fmt: skip
    result = map_layers(
        LayerTable.from_specs([spec]), xbar, method, "exact", "physical", lowrank="aligned"
    )
    i, j = int(result.outputs_h[0]), int(result.outputs_w[0])
    n = i * j
    channel_aligned = method == "vwsdk" and not result.fallback[0]
    r_out, r_row_tiles, r_col_tiles, r_cycles = run_through_mapping(
        x, r_weight, 1, padding, i, j, xbar, channel_aligned
    )
    # L: I_N kron L^T acting on R's window outputs (a, b, r) -> (a, b, o)
    kron = torch.kron(torch.eye(n, dtype=torch.float64), l_weight.T.contiguous())
    per_array = min(xbar.rows // rank, xbar.weight_cols // oc)
    l_arrays = -(-n // per_array)
    out_h = height + 2 * padding - kernel + 1
    windows = -(-out_h // i) * -(-out_h // j)
    r_full = F.pad(r_out, (0, j * -(-out_h // j) - out_h, 0, i * -(-out_h // i) - out_h))
    out = torch.zeros(oc, r_full.shape[1], r_full.shape[2], dtype=torch.float64)
    l_cycles = 0
    for wh in range(-(-out_h // i)):
        for ww in range(-(-out_h // j)):
            h = (
                r_full[:, wh * i : (wh + 1) * i, ww * j : (ww + 1) * j].permute(1, 2, 0).reshape(-1)
            )  # (a, b, r)
            y = torch.zeros(n * oc, dtype=torch.float64)
            for t in range(l_arrays):  # array t holds blocks t*per_array ... on its diagonal
                blocks = range(t * per_array, min((t + 1) * per_array, n))
                rows_ = slice(blocks[0] * rank, (blocks[-1] + 1) * rank)
                cols_ = slice(blocks[0] * oc, (blocks[-1] + 1) * oc)
                assert (
                    rows_.stop - rows_.start <= xbar.rows
                    and cols_.stop - cols_.start <= xbar.weight_cols
                )
                y[cols_] += h[rows_] @ kron[rows_, cols_]
                l_cycles += 1
            out[:, wh * i : (wh + 1) * i, ww * j : (ww + 1) * j] = y.reshape(i, j, oc).permute(
                2, 0, 1
            )
    expected = F.conv2d(F.conv2d(x, r_weight, padding=padding), l_weight[:, :, None, None])[0]
    torch.testing.assert_close(out[:, :out_h, :out_h], expected)
    assert (r_row_tiles, r_col_tiles) == (result.row_tiles[0], result.col_tiles[0])
    assert result.cycles_r[0] == r_cycles
    assert result.cycles_l[0] == l_cycles == windows * l_arrays
    assert result.arrays_l[0] == l_arrays
    assert result.cycles[0] == r_cycles + l_cycles
    if method == "vwsdk" or (method == "sdk" and size == 128):  # R and L really duplicated
        assert n > 1


# --- row skipping ---------------------------------------------------------------------------


def explicit_skipped_rows(pattern: np.ndarray, outputs_h: int, outputs_w: int, stride: int) -> int:
    """Rows of the SDK matrix of a kernel masked by ``pattern`` that are zero in every column."""
    k_h, k_w = pattern.shape
    weight = torch.from_numpy(pattern.astype(np.float64)).reshape(1, 1, k_h, k_w).repeat(3, 1, 1, 1)
    matrix = sdk_matrix(weight, outputs_h, outputs_w, stride)
    return int((matrix == 0).all(dim=1).sum())


def _pattern(cells: list[tuple[int, int]], size: int = 3) -> np.ndarray:
    pattern = np.zeros((size, size), dtype=bool)
    for r, c in cells:
        pattern[r, c] = True
    return pattern


FULL = [(r, c) for r in range(3) for c in range(3)]
SPEC_PATTERNS = {  # docs/cost-model.md#worked-numbers, PW = 4 (i = j = 2): rows skipped per channel
    "full": (FULL, 0),
    "one corner off": ([p for p in FULL if p != (0, 0)], 1),
    "2x2 corner block": ([(0, 0), (0, 1), (1, 0), (1, 1)], 7),
    "PConv cross minus one arm": ([(0, 1), (1, 0), (1, 1), (1, 2)], 6),
}


@pytest.mark.parametrize("name", list(SPEC_PATTERNS))
def test_spec_row_skip_counts(name: str) -> None:
    cells, skipped = SPEC_PATTERNS[name]
    pattern = _pattern(cells)
    assert explicit_skipped_rows(pattern, 2, 2, 1) == skipped
    assert 16 - needed_rows(pattern[None, None], 2, 2) == skipped


@settings(max_examples=60, deadline=None)
@given(
    bits=st.lists(st.booleans(), min_size=9, max_size=9),
    outputs_h=st.integers(1, 4),
    outputs_w=st.integers(1, 4),
    stride=st.integers(1, 2),
)
def test_row_skip_counts_match_explicit_matrix(
    bits: list[bool], outputs_h: int, outputs_w: int, stride: int
) -> None:
    pattern = np.array(bits, dtype=bool).reshape(3, 3)
    window = (3 + (outputs_h - 1) * stride) * (3 + (outputs_w - 1) * stride)
    assert window - needed_rows(
        pattern[None, None], outputs_h, outputs_w, stride, stride
    ) == explicit_skipped_rows(pattern, outputs_h, outputs_w, stride)


@pytest.mark.parametrize("method", ["im2col", "sdk", "vwsdk"])
def test_map_layers_skips_rows_of_shared_patterns(method: str) -> None:
    """All channels share the 'one corner off' pattern except channel 0 (dense) and channel 1
    (removed); the skipped rows of the chosen window equal the explicit count."""
    ic, oc = 8, 16
    patterns = np.repeat(_pattern(SPEC_PATTERNS["one corner off"][0])[None], ic, axis=0)
    patterns[0] = True
    patterns[1] = False
    spec = LayerSpec(
        name="pruned", kind="conv", height=16, width=16, kernel_h=3, kernel_w=3, in_channels=ic,
        out_channels=oc, in_kept=ic - 1, patterns=patterns[None],
    )  # fmt: skip
    xbar = Crossbar(64, 64)
    result = map_layers(LayerTable.from_specs([spec]), xbar, method, "exact", "reference")
    i, j = int(result.outputs_h[0]), int(result.outputs_w[0])
    per_channel = explicit_skipped_rows(patterns[2], i, j, 1)
    window = (2 + i) * (2 + j)
    assert result.skipped_rows[0] == (ic - 2) * per_channel
    assert result.row_skipping[0] == (per_channel > 0)
    kept_rows = (ic - 1) * window - (ic - 2) * per_channel
    assert result.row_tiles[0] == -(-kept_rows // 64)
    assert (
        result.cycles[0] == result.parallel_windows[0] * result.row_tiles[0] * result.col_tiles[0]
    )
