"""The vectorized search against plain loops (hypothesis), and the invariants between mappings."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imcompress.crossbar import Crossbar, LayerTable, map_layers
from imcompress.crossbar.candidates import window_grid
from imcompress.crossbar.quirk import fifo_select

from . import loops

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def layers(draw: st.DrawFn, max_layers: int = 4) -> list[loops.Layer]:
    kernel = draw(st.sampled_from([1, 2, 3, 5, 7]))
    n = draw(st.integers(1, max_layers))
    out = []
    for _ in range(n):
        stride = draw(st.sampled_from([1, 1, 2]))
        padding = draw(st.sampled_from([0, 0, 1, 2]))
        height = draw(st.integers(kernel, 36))
        width = draw(st.one_of(st.just(height), st.integers(kernel, 36)))
        out.append(
            loops.Layer(
                height=height,
                width=width,
                kernel=kernel,
                in_channels=draw(st.integers(1, 160)),
                out_channels=draw(st.integers(1, 160)),
                stride=stride,
                padding=padding,
            )
        )
    return out


arrays = st.tuples(
    st.sampled_from([8, 16, 32, 48, 64, 100, 128, 256]),
    st.sampled_from([8, 16, 32, 64, 96, 128, 256]),
)


def _table(batch: list[loops.Layer], kernel_per_layer: bool = False) -> LayerTable:
    return LayerTable.from_shapes(
        height=[layer.height for layer in batch],
        width=[layer.width for layer in batch],
        kernel=[layer.kernel for layer in batch],
        in_channels=[layer.in_channels for layer in batch],
        out_channels=[layer.out_channels for layer in batch],
        stride=[layer.stride for layer in batch],
        padding=[layer.padding for layer in batch],
    )


def _as_tuple(result, k: int) -> tuple[int, int, int, int, int]:
    return (
        int(result.cycles[k]),
        int(result.outputs_h[k]),
        int(result.outputs_w[k]),
        int(result.row_tiles[k]),
        int(result.col_tiles[k]),
    )


@SETTINGS
@given(
    batch=layers(),
    size=arrays,
    convention=st.sampled_from(["physical", "reference", "reference_floor"]),
)
def test_vwsdk_matches_plain_loop(
    batch: list[loops.Layer], size: tuple[int, int], convention: str
) -> None:
    rows, cols = size
    if convention != "physical":  # the published code has no padding or stride
        batch = [
            loops.Layer(b.height, b.width, b.kernel, b.in_channels, b.out_channels) for b in batch
        ]
    table = _table(batch)
    for search in ("exact", "reference"):
        result = map_layers(table, Crossbar(rows, cols), "vwsdk", search, convention)
        for k, layer in enumerate(batch):
            expected = loops.vwsdk(layer, rows, cols, convention, search)
            got = _as_tuple(result, k)
            assert got == (
                expected.cycles,
                expected.outputs_h,
                expected.outputs_w,
                expected.row_tiles,
                expected.col_tiles,
            ), (
                search,
                layer,
            )


@SETTINGS
@given(
    batch=layers(),
    size=arrays,
    convention=st.sampled_from(["physical", "reference", "reference_floor"]),
)
def test_sdk_and_im2col_match_plain_loop(
    batch: list[loops.Layer], size: tuple[int, int], convention: str
) -> None:
    rows, cols = size
    if convention != "physical":
        batch = [
            loops.Layer(b.height, b.width, b.kernel, b.in_channels, b.out_channels) for b in batch
        ]
    table = _table(batch)
    sdk = map_layers(table, Crossbar(rows, cols), "sdk", "exact", convention)
    im2col = map_layers(table, Crossbar(rows, cols), "im2col", "exact", convention)
    for k, layer in enumerate(batch):
        expected = loops.sdk(layer, rows, cols, convention)
        assert _as_tuple(sdk, k) == (
            expected.cycles,
            expected.outputs_h,
            expected.outputs_w,
            expected.row_tiles,
            expected.col_tiles,
        )
        assert im2col.cycles[k] == loops.im2col(layer, rows, cols, convention).cycles


@SETTINGS
@given(batch=layers(max_layers=6), size=arrays)
def test_invariants(batch: list[loops.Layer], size: tuple[int, int]) -> None:
    xbar = Crossbar(*size)
    table = _table(batch)
    im2col = map_layers(table, xbar, "im2col")
    sdk = map_layers(table, xbar, "sdk")
    exact = map_layers(table, xbar, "vwsdk", "exact")
    reference = map_layers(table, xbar, "vwsdk", "reference")
    assert np.all(sdk.cycles <= im2col.cycles)
    assert np.all(sdk.arrays == im2col.arrays)  # SDK never uses more arrays than im2col
    assert np.all(exact.cycles <= reference.cycles)
    assert np.all(reference.cycles <= im2col.cycles)
    assert np.all((exact.utilization > 0) & (exact.utilization <= 1))
    assert np.all((sdk.utilization > 0) & (sdk.utilization <= 1))


@SETTINGS
@given(batch=layers(max_layers=5), size=arrays)
def test_reference_equals_physical_without_padding_and_stride(
    batch: list[loops.Layer], size: tuple[int, int]
) -> None:
    batch = [loops.Layer(b.height, b.width, b.kernel, b.in_channels, b.out_channels) for b in batch]
    table = _table(batch)
    xbar = Crossbar(*size)
    for method in ("im2col", "sdk", "vwsdk"):
        for search in ("exact", "reference"):
            physical = map_layers(table, xbar, method, search, "physical")
            reference = map_layers(table, xbar, method, search, "reference")
            for field in ("cycles", "window_h", "window_w", "row_tiles", "col_tiles", "arrays"):
                assert np.array_equal(getattr(physical, field), getattr(reference, field)), (
                    method,
                    search,
                    field,
                )


def test_reference_search_differs_from_exact_somewhere() -> None:
    """The FIFO quirk is real: some published selections are not the minimum."""
    found = []
    for image in range(8, 40):
        for ic in (3, 16, 32, 48, 64, 96):
            for size in (64, 128):
                table = LayerTable.from_shapes(
                    height=image, kernel=3, in_channels=ic, out_channels=ic
                )
                exact = map_layers(table, Crossbar(size, size), "vwsdk", "exact", "reference")
                ref = map_layers(table, Crossbar(size, size), "vwsdk", "reference", "reference")
                layer = loops.Layer(image, image, 3, ic, ic)
                assert (
                    ref.cycles[0] == loops.vwsdk(layer, size, size, "reference", "reference").cycles
                )
                if ref.cycles[0] > exact.cycles[0]:
                    found.append((image, ic, size))
    assert found


def test_fifo_select_follows_the_published_queue() -> None:
    """Hand-traced queue: rows (j) of three candidates each."""
    # row 1: 9 7 8 -> front becomes 7; row 2 appends 6 (queue [7, 6]); 6 < 7 pops 7 -> [6, 6]
    # then 5 < 6 -> [6, 5]; 4 < 6 -> [5, 4]; row 3 appends 9 -> [5, 4, 9]; nothing beats 5
    cycles = np.array([9, 7, 8, 6, 5, 4, 9, 9, 9])
    valid = np.ones(9, dtype=bool)
    row_start = np.array([1, 0, 0] * 3, dtype=bool)
    assert fifo_select(cycles, valid, row_start) == 4  # the 5, not the minimum 4
    assert fifo_select(cycles, np.zeros(9, dtype=bool), row_start) == -1


def test_window_grid_is_the_array_fit_set_in_loop_order() -> None:
    i, j = window_grid(3, 3, 1, 1, 64, 64)
    assert np.all((2 + i) * (2 + j) <= 64) and np.all(i * j <= 64)
    brute = [
        (a, b)
        for b in range(1, 70)
        for a in range(1, 70)
        if (2 + a) * (2 + b) <= 64 and a * b <= 64
    ]
    assert list(zip(i.tolist(), j.tolist(), strict=True)) == brute


@pytest.mark.parametrize("method", ["im2col", "sdk", "vwsdk"])
def test_weight_slices_reduce_usable_columns(method: str) -> None:
    table = LayerTable.from_shapes(height=16, kernel=3, in_channels=16, out_channels=64)
    one_bit = map_layers(table, Crossbar(128, 128), method)
    eight_bit = map_layers(table, Crossbar(128, 128, weight_bits=8, cell_bits=2), method)
    as_narrow = map_layers(table, Crossbar(128, 32), method)  # 128 / 4 slices = 32 weight columns
    assert eight_bit.cycles[0] == as_narrow.cycles[0] >= one_bit.cycles[0]
    assert eight_bit.col_tiles[0] == as_narrow.col_tiles[0]


def test_vwsdk_keeps_im2col_on_a_tie() -> None:
    """O=3, IC=3, OC=8 on 16x16: im2col 9 * 2 = 18 cycles; window 3x4 (i=1, j=2) also costs
    3 * 2 * ceil(3/1) * ceil(8/8) = 18. The published driver keeps im2col unless beaten."""
    table = LayerTable.from_shapes(height=5, kernel=3, in_channels=3, out_channels=8)
    result = map_layers(table, Crossbar(16, 16), "vwsdk", "exact", "reference")
    assert result.cycles.tolist() == [18]
    assert result.fallback.tolist() == [True]
    assert (result.window_h[0], result.window_w[0]) == (3, 3)


@pytest.mark.parametrize("method", ["sdk", "vwsdk"])
def test_strip_shaped_outputs_grow_the_window_along_the_long_side(method: str) -> None:
    """O_h = 1, O_w = 32: the square SDK window is capped at one row and keeps growing in w."""
    layer = loops.Layer(height=3, width=34, kernel=3, in_channels=1, out_channels=1)
    table = LayerTable.from_shapes(height=3, width=34, kernel=3, in_channels=1, out_channels=1)
    result = map_layers(table, Crossbar(256, 256), method, "exact", "physical")
    expected = (
        loops.sdk(layer, 256, 256, "physical")
        if method == "sdk"
        else loops.vwsdk(layer, 256, 256, "physical", "exact")
    )
    assert result.cycles[0] == expected.cycles == 1
    assert (result.outputs_h[0], result.outputs_w[0]) == (expected.outputs_h, expected.outputs_w)
