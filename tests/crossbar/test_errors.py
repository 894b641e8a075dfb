"""Bad input: clear errors naming the layer and the value, or the documented im2col fallback."""

from __future__ import annotations

import pytest

from imcompress.crossbar import Crossbar, LayerSpec, LayerTable, map_layers


def test_non_positive_sizes_name_layer_and_value() -> None:
    with pytest.raises(ValueError, match=r"layer 'b': height=0 must be >= 1"):
        LayerTable.from_shapes(
            height=[32, 0], kernel=3, in_channels=4, out_channels=4, names=["a", "b"]
        )
    with pytest.raises(ValueError, match=r"layer 'layer0': in_channels=-2"):
        LayerTable.from_shapes(height=8, kernel=3, in_channels=-2, out_channels=4)
    with pytest.raises(ValueError, match=r"padding_h=-1"):
        LayerTable.from_shapes(height=8, kernel=3, in_channels=2, out_channels=4, padding=-1)


def test_groups_must_divide_channels() -> None:
    with pytest.raises(ValueError, match=r"layer 'layer0': groups=3 does not divide in_channels"):
        LayerTable.from_shapes(height=8, kernel=3, in_channels=10, out_channels=12, groups=3)
    with pytest.raises(ValueError, match=r"groups=4 does not divide the output channels"):
        LayerTable.from_shapes(height=8, kernel=3, in_channels=8, out_channels=6, groups=4)


def test_image_smaller_than_kernel() -> None:
    with pytest.raises(
        ValueError, match=r"layer 'tiny': height=2 \(\+2\*padding\) is smaller than the kernel"
    ):
        LayerTable.from_shapes(
            height=2, width=5, kernel=3, in_channels=1, out_channels=1, names=["tiny"]
        )
    padded = LayerTable.from_shapes(height=2, kernel=3, in_channels=1, out_channels=1, padding=1)
    # padded 4x4 image, O = 2: im2col 4 windows; VW-SDK maps the whole 4x4 window (16 rows) at once
    assert map_layers(padded, Crossbar(16, 16), "im2col").cycles.tolist() == [4]
    assert map_layers(padded, Crossbar(16, 16), "vwsdk").cycles.tolist() == [1]
    with pytest.raises(ValueError, match=r"height=2 is smaller than the kernel 3"):
        map_layers(padded, Crossbar(16, 16), "vwsdk", convention="reference")


def test_lengths_must_broadcast_and_be_integers() -> None:
    with pytest.raises(ValueError, match="broadcast"):
        LayerTable.from_shapes(height=[8, 8, 8], kernel=[3, 3], in_channels=4, out_channels=4)
    with pytest.raises(ValueError, match="integers"):
        LayerTable.from_shapes(height=8.5, kernel=3, in_channels=4, out_channels=4)


def test_bad_crossbar_and_options() -> None:
    with pytest.raises(ValueError, match=r"Crossbar\.rows"):
        Crossbar(0, 64)
    with pytest.raises(ValueError, match="smaller than the 4 columns"):
        Crossbar(64, 2, weight_bits=8, cell_bits=2)
    table = LayerTable.from_shapes(height=8, kernel=3, in_channels=4, out_channels=4)
    with pytest.raises(ValueError, match=r"method='vw'"):
        map_layers(table, Crossbar(64, 64), "vw")
    with pytest.raises(ValueError, match=r"convention='paper'"):
        map_layers(table, Crossbar(64, 64), "sdk", convention="paper")


def test_pair_shapes_are_checked() -> None:
    spec = LayerSpec(
        name="p", kind="lowrank", height=8, width=8, kernel_h=3, kernel_w=3, in_channels=8,
        out_channels=10, rank_channels=6, l_groups=4,
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"layer 'p': l_groups=4 does not divide rank_channels"):
        LayerTable.from_specs([spec])


@pytest.mark.parametrize("search", ["exact", "reference"])
def test_array_smaller_than_a_kernel_falls_back_to_im2col(search: str) -> None:
    """R < K*K: no VW-SDK window has a whole channel (the published code crashes); im2col."""
    table = LayerTable.from_shapes(height=12, kernel=5, in_channels=4, out_channels=4)
    xbar = Crossbar(16, 16)
    vw = map_layers(table, xbar, "vwsdk", search, "reference")
    im2col = map_layers(table, xbar, "im2col", search, "reference")
    assert vw.fallback.tolist() == [True]
    assert vw.cycles.tolist() == im2col.cycles.tolist() == [64 * 7]  # 100 rows -> 7 tiles of 16
    assert map_layers(table, xbar, "sdk").cycles[0] <= im2col.cycles[0]


def test_single_output_falls_back_to_im2col_in_reference_search() -> None:
    """O == 1: the published loop has no candidate."""
    table = LayerTable.from_shapes(height=3, kernel=3, in_channels=4, out_channels=4)
    result = map_layers(table, Crossbar(64, 64), "vwsdk", "reference", "reference")
    assert result.fallback.tolist() == [True] and result.cycles.tolist() == [1]
