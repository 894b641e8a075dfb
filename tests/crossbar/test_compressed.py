"""Grouped convs, low-rank pairs and channel-pruned layers (docs/cost-model.md#compressed-layers)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imcompress.crossbar import Crossbar, LayerSpec, LayerTable, map_layers
from imcompress.crossbar.search import AlignedL

from . import loops


def conv(
    name: str = "c", height: int = 10, kernel: int = 3, ic: int = 16, oc: int = 16, **extra
) -> LayerSpec:
    return LayerSpec(
        name=name,
        height=height,
        width=height,
        kernel_h=kernel,
        kernel_w=kernel,
        in_channels=ic,
        out_channels=oc,
        **extra,
    )


def pair(
    height: int, ic: int, rank: int, oc: int, groups: int = 1, l_groups: int = 1, padding: int = 0
) -> LayerSpec:
    return conv(
        "pair", height, 3, ic, oc, kind="lowrank", rank_channels=rank, groups=groups, l_groups=l_groups,
        padding_h=padding, padding_w=padding,
    )  # fmt: skip


# --- grouped convs --------------------------------------------------------------------------


def test_depthwise_blocks_are_packed_by_hand() -> None:
    """16 groups of one 3x3 kernel (9 rows x 1 column) on 64x64: 7 blocks per array -> 3 arrays;
    O = 8 (reference), 64 windows -> 192 cycles. Unpacked: 16 arrays, 1024 cycles."""
    table = LayerTable.from_specs([conv(ic=16, oc=16, groups=16)])
    xbar = Crossbar(64, 64)
    packed = map_layers(table, xbar, "im2col", convention="reference", pack_groups=True)
    unpacked = map_layers(table, xbar, "im2col", convention="reference", pack_groups=False)
    assert (packed.arrays[0], packed.cycles[0]) == (3, 192)
    assert (unpacked.arrays[0], unpacked.cycles[0]) == (16, 1024)
    assert packed.utilization[0] == pytest.approx(16 * 9 / (3 * 64 * 64))


@settings(max_examples=40, deadline=None)
@given(
    groups=st.sampled_from([2, 4, 8]),
    per_group_in=st.integers(1, 24),
    per_group_out=st.integers(1, 24),
    height=st.integers(3, 20),
    size=st.sampled_from([32, 64, 128]),
    method=st.sampled_from(["im2col", "sdk", "vwsdk"]),
)
def test_unpacked_groups_cost_groups_times_one_group(
    groups: int, per_group_in: int, per_group_out: int, height: int, size: int, method: str
) -> None:
    xbar = Crossbar(size, size)
    grouped = LayerTable.from_specs(
        [conv(height=height, ic=groups * per_group_in, oc=groups * per_group_out, groups=groups)]
    )
    single = LayerTable.from_specs([conv(height=height, ic=per_group_in, oc=per_group_out)])
    unpacked = map_layers(grouped, xbar, method, pack_groups=False)
    one = map_layers(single, xbar, method)
    packed = map_layers(grouped, xbar, method, pack_groups=True)
    assert unpacked.cycles[0] == groups * one.cycles[0]
    assert unpacked.arrays[0] == groups * one.arrays[0]
    if (
        method != "sdk"
    ):  # SDK's budget is im2col's arrays, fewer when packed: fewer arrays, not cycles
        assert packed.cycles[0] <= unpacked.cycles[0]
    if method != "vwsdk":
        assert packed.arrays[0] <= unpacked.arrays[0]


# --- low-rank pairs -------------------------------------------------------------------------


def test_aligned_l_packs_blocks_spec_example() -> None:
    """docs/cost-model.md#low-rank-pair: N=16, g*k=8, OC=16 on 64x64: 4 arrays hold all 16 blocks (not 2*4=8 tiles)."""
    aligned = AlignedL(np.array([True]), np.array([8]), np.array([16]), np.array([1]))
    assert aligned.arrays(np.array([16]), Crossbar(64, 64)).tolist() == [4]
    # a block larger than the array is tiled on its own: 3 copies x 2 x 1 tiles
    big = AlignedL(np.array([True]), np.array([100]), np.array([16]), np.array([1]))
    assert big.arrays(np.array([3]), Crossbar(64, 64)).tolist() == [6]


@settings(max_examples=40, deadline=None)
@given(
    height=st.integers(3, 18),
    ic=st.integers(1, 64),
    rank=st.integers(1, 24),
    oc=st.integers(1, 64),
    size=st.sampled_from([32, 64, 128]),
)
def test_aligned_pair_joint_search_matches_plain_loop(
    height: int, ic: int, rank: int, oc: int, size: int
) -> None:
    table = LayerTable.from_specs([pair(height, ic, rank, oc)])
    result = map_layers(
        table, Crossbar(size, size), "vwsdk", "exact", "reference", lowrank="aligned"
    )
    expected = loops.lowrank_vwsdk_exact(
        loops.Layer(height, height, 3, ic, oc), rank, size, size, "reference"
    )
    assert result.cycles[0] == expected
    assert result.cycles[0] == result.cycles_r[0] + result.cycles_l[0]


def test_joint_search_beats_the_window_chosen_for_r_alone() -> None:
    """L = 2 -> 64 fills a whole 64-column array per copy, so R's own best window (10x3, N=8)
    costs 8 L arrays per step; the joint search picks a window that is cheaper for the pair."""
    spec = pair(12, 4, 2, 64)
    xbar = Crossbar(64, 64)
    joint = map_layers(LayerTable.from_specs([spec]), xbar, "vwsdk", "exact", "reference")
    r_alone = map_layers(
        LayerTable.from_specs([conv(height=12, ic=4, oc=2)]), xbar, "vwsdk", "exact", "reference"
    )
    n = int(r_alone.outputs_h[0] * r_alone.outputs_w[0])
    l_at_r_window = int(r_alone.parallel_windows[0]) * -(-n // min(64 // 2, 64 // 64))
    assert joint.cycles[0] < r_alone.cycles[0] + l_at_r_window


@pytest.mark.parametrize("method", ["im2col", "sdk", "vwsdk"])
@pytest.mark.parametrize(("groups", "l_groups"), [(1, 1), (2, 1), (1, 2)])
def test_naive_pair_is_r_and_l_mapped_on_their_own(method: str, groups: int, l_groups: int) -> None:
    height, ic, oc, rank = 12, 16, 32, 4 * groups * l_groups
    xbar = Crossbar(64, 64)
    naive = map_layers(
        LayerTable.from_specs([pair(height, ic, rank, oc, groups, l_groups, 1)]),
        xbar,
        method,
        lowrank="naive",
    )
    r = map_layers(
        LayerTable.from_specs(
            [conv(height=height, ic=ic, oc=rank, groups=groups, padding_h=1, padding_w=1)]
        ),
        xbar,
        method,
    )
    l_ = map_layers(
        LayerTable.from_specs([conv(height=height, kernel=1, ic=rank, oc=oc, groups=l_groups)]),
        xbar,
        method,
    )
    assert naive.cycles_r[0] == r.cycles[0]
    assert naive.cycles_l[0] == l_.cycles[0]
    assert naive.cycles[0] == r.cycles[0] + l_.cycles[0]
    assert naive.arrays[0] == r.arrays[0] + l_.arrays[0]


def test_naive_im2col_l_costs_as_much_as_the_original_layer() -> None:
    """docs/cost-model.md#low-rank-pair: with im2col, L runs at every output position: O_h*O_w cycles."""
    table = LayerTable.from_specs([pair(10, 16, 4, 16, padding=1)])
    naive = map_layers(table, Crossbar(128, 128), "im2col", lowrank="naive")
    dense = map_layers(table.dense(), Crossbar(128, 128), "im2col")
    assert naive.cycles_l[0] == 100 == dense.cycles[0] // 2  # dense: 144 rows -> 2 row tiles


def test_pipeline_takes_the_max_of_r_and_l() -> None:
    table = LayerTable.from_specs([pair(16, 16, 8, 32)])
    serial = map_layers(table, Crossbar(64, 64), "vwsdk", pipeline=False)
    piped = map_layers(table, Crossbar(64, 64), "vwsdk", pipeline=True)
    assert serial.cycles[0] == serial.cycles_r[0] + serial.cycles_l[0]
    assert piped.cycles[0] == max(piped.cycles_r[0], piped.cycles_l[0])
    assert piped.cycles[0] <= serial.cycles[0]
    assert piped.mvm[0] == piped.cycles_r[0] + piped.cycles_l[0]


# --- pruning --------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["im2col", "sdk", "vwsdk"])
def test_removed_channels_shrink_the_layer(method: str) -> None:
    xbar = Crossbar(64, 64)
    pruned = LayerTable.from_specs([conv(height=12, ic=32, oc=48, in_kept=20, out_kept=30)])
    smaller = LayerTable.from_specs([conv(height=12, ic=20, oc=30)])
    a, b = map_layers(pruned, xbar, method), map_layers(smaller, xbar, method)
    for field in ("cycles", "row_tiles", "col_tiles", "arrays", "window_h", "window_w"):
        assert getattr(a, field)[0] == getattr(b, field)[0], field
    assert not a.row_skipping[0]  # whole-channel removal needs no periphery


def test_fully_pruned_layer_costs_nothing() -> None:
    table = LayerTable.from_specs([conv(out_kept=0), conv("d")])
    result = map_layers(table, Crossbar(64, 64), "vwsdk")
    assert result.cycles[0] == result.arrays[0] == result.row_activations[0] == 0
    assert result.cycles[1] > 0


def test_dense_table_undoes_compression() -> None:
    table = LayerTable.from_specs([pair(10, 16, 4, 32, groups=2), conv(out_kept=8)])
    dense = table.dense()
    assert dense.kind == ("conv", "conv")
    assert dense.groups.tolist() == [1, 1]
    assert dense.out_kept.tolist() == [32, 16]
    assert dense.nonzero_weights.tolist() == [16 * 9 * 32, 16 * 9 * 16]


@settings(max_examples=40, deadline=None)
@given(
    groups=st.sampled_from([2, 3, 4, 8]),
    per_group_in=st.integers(1, 12),
    per_group_out=st.integers(1, 12),
    height=st.integers(3, 16),
    size=st.sampled_from([16, 32, 64]),
)
def test_packed_grouped_vwsdk_matches_brute_force(
    groups: int, per_group_in: int, per_group_out: int, height: int, size: int
) -> None:
    """Every window evaluated: whole group blocks on an array's diagonal when a block fits."""
    table = LayerTable.from_specs(
        [conv(height=height, ic=groups * per_group_in, oc=groups * per_group_out, groups=groups)]
    )
    result = map_layers(
        table, Crossbar(size, size), "vwsdk", "exact", "reference", pack_groups=True
    )
    out = height - 2

    def arrays(rows: int, cols: int, row_tiles: int, col_tiles: int) -> int:
        if row_tiles == 1 and col_tiles == 1:
            return -(-groups // min(size // rows, size // cols))
        return groups * row_tiles * col_tiles

    best = None
    for j in range(1, out + 1):
        for i in range(1, out + 1):
            cells = (2 + i) * (2 + j)
            ict, oct_ = size // cells, size // (i * j)
            if ict == 0 or oct_ == 0:
                continue
            rt, ct = -(-per_group_in // ict), -(-per_group_out // oct_)
            cycles = (
                -(-out // i)
                * -(-out // j)
                * arrays(per_group_in * cells, per_group_out * i * j, rt, ct)
            )
            best = cycles if best is None else min(best, cycles)
    rows, cols = per_group_in * 9, per_group_out
    im2col = out * out * arrays(rows, cols, -(-rows // size), -(-cols // size))
    assert result.cycles[0] == (best if best is not None and best < im2col else im2col)
