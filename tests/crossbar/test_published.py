"""Published numbers, reproduced exactly in the reference convention.

* docs/cost-model.md#worked-numbers (worked numbers, reference convention, 1-bit weights);
* the VW-SDK repository README (Rhe et al., DATE 2022; github.com/djwhsdj/VW-SDK), VGG-13 and
  ResNet-18 at 512x512, 1-bit. Those tables were produced by the repository's first notebook,
  which counts only whole parallel windows (``floor(O/i)``): ``convention="reference_floor"``.
  The later ``function.py`` (and the spec) count ``ceil(O/i)``: ``convention="reference"``.
"""

from __future__ import annotations

import pytest

from imcompress.crossbar import Crossbar, LayerTable, map_layers

# I, K, IC, OC, R(=C), im2col, SDK (window), VW-SDK (window PW_h x PW_w)
SPEC_ROWS = [
    (32, 3, 16, 16, 64, 2700, (2700, 3), (900, 4, 4)),
    (32, 3, 16, 16, 128, 1800, (450, 4), (450, 4, 4)),
    (16, 3, 32, 32, 128, 588, (588, 3), (196, 4, 4)),
    (8, 3, 64, 64, 64, 324, (324, 3), (324, 3, 3)),  # im2col fallback; best candidate 360
    (32, 3, 4, 8, 32, 1800, (450, 4), (450, 4, 4)),
]


def _map(table: LayerTable, size: int, method: str, convention: str = "reference"):
    return map_layers(
        table, Crossbar(size, size), method=method, search="reference", convention=convention
    )


@pytest.mark.parametrize("row", SPEC_ROWS, ids=[f"I{r[0]}-IC{r[2]}-R{r[4]}" for r in SPEC_ROWS])
def test_spec_worked_numbers(row: tuple) -> None:
    image, kernel, ic, oc, size, im2col, (sdk, sdk_window), (vw, vw_h, vw_w) = row
    table = LayerTable.from_shapes(height=image, kernel=kernel, in_channels=ic, out_channels=oc)
    assert _map(table, size, "im2col").cycles.tolist() == [im2col]
    result = _map(table, size, "sdk")
    assert (result.cycles[0], result.window_h[0], result.window_w[0]) == (
        sdk,
        sdk_window,
        sdk_window,
    )
    result = _map(table, size, "vwsdk")
    assert (result.cycles[0], result.window_h[0], result.window_w[0]) == (vw, vw_h, vw_w)


def test_spec_fallback_row_reports_im2col_and_best_candidate_is_360() -> None:
    table = LayerTable.from_shapes(height=8, kernel=3, in_channels=64, out_channels=64)
    result = _map(table, 64, "vwsdk")
    assert result.fallback.tolist() == [True]
    # the best candidate (i = j = 1, whole channels: ICt = 7, 10 row tiles) costs 36 * 10 = 360
    assert 36 * -(-64 // (64 // 9)) == 360 > result.cycles[0]


# VW-SDK README, VGG-13 at 224x224 input, 512x512 arrays:
# image, IC, OC, im2col, SDK, VW-SDK, window "PW_h x PW_w x ICt x OCt"
VGG13 = [
    (224, 3, 64, 49284, 12321, 5328, (34, 3, 3, 16)),
    (224, 64, 64, 98568, 24642, 23976, (10, 3, 17, 64)),
    (112, 64, 128, 24200, 6050, 6050, (4, 4, 32, 128)),
    (112, 128, 128, 36300, 36300, 12100, (4, 4, 32, 128)),
    (56, 128, 256, 8748, 8748, 5832, (4, 3, 42, 256)),
    (56, 256, 256, 14580, 14580, 10206, (4, 3, 42, 256)),
]

# VW-SDK README, ResNet-18 (kernel 7 for the stem, 3 elsewhere), 512x512 arrays:
# image, K, IC, OC, im2col, SDK, VW-SDK
RESNET18 = [
    (112, 7, 3, 64, 11236, 2809, 1272),
    # README lists 1458 here, but its window column (10x3x17x64: i=8, j=1, ICt=17) gives
    # floor(54/8) * 54 * ceil(64/17) * ceil(64/64) = 6 * 54 * 4 = 1296 under the same notebook
    # (1458 is the SDK column copied); 1296 is the notebook's value.
    (56, 3, 64, 64, 5832, 1458, 1296),
    (28, 3, 64, 128, 1352, 338, 338),
    (28, 3, 128, 128, 2028, 2028, 676),
    (14, 3, 128, 256, 432, 432, 288),
    (14, 3, 256, 256, 720, 720, 504),
    (7, 3, 256, 512, 125, 125, 125),
    (7, 3, 512, 512, 225, 225, 225),
]


def _vgg_table() -> LayerTable:
    image, ic, oc = zip(*[(r[0], r[1], r[2]) for r in VGG13], strict=True)
    return LayerTable.from_shapes(
        height=list(image), kernel=3, in_channels=list(ic), out_channels=list(oc)
    )


def test_vgg13_readme_table_reference_floor() -> None:
    table = _vgg_table()
    assert _map(table, 512, "im2col", "reference_floor").cycles.tolist() == [r[3] for r in VGG13]
    assert _map(table, 512, "sdk", "reference_floor").cycles.tolist() == [r[4] for r in VGG13]
    result = _map(table, 512, "vwsdk", "reference_floor")
    assert result.cycles.tolist() == [r[5] for r in VGG13]
    for k, row in enumerate(VGG13):
        pw_h, pw_w, ict, oct_ = row[6]
        ic, oc = row[1], row[2]
        assert (result.window_h[k], result.window_w[k]) == (pw_h, pw_w)
        assert result.row_tiles[k] == -(-ic // ict)
        assert result.col_tiles[k] == -(-oc // oct_)


def test_vgg13_readme_rows_without_partial_windows_match_reference_too() -> None:
    """Rows 3-6 have O divisible by the chosen i, j: ceil and floor agree there."""
    table = _vgg_table()
    result = _map(table, 512, "vwsdk", "reference")
    assert result.cycles.tolist()[2:] == [r[5] for r in VGG13][2:]
    # rows 1-2: the ceil count covers the last partial window, so it costs more
    assert result.cycles[0] > VGG13[0][5] and result.cycles[1] > VGG13[1][5]


def test_resnet18_readme_table_reference_floor() -> None:
    image, kernel, ic, oc = (list(v) for v in zip(*[r[:4] for r in RESNET18], strict=True))
    table = LayerTable.from_shapes(height=image, kernel=kernel, in_channels=ic, out_channels=oc)
    assert _map(table, 512, "im2col", "reference_floor").cycles.tolist() == [r[4] for r in RESNET18]
    assert _map(table, 512, "sdk", "reference_floor").cycles.tolist() == [r[5] for r in RESNET18]
    vw = _map(table, 512, "vwsdk", "reference_floor")
    assert vw.cycles.tolist() == [r[6] for r in RESNET18]
    assert (vw.window_h[0], vw.window_w[0]) == (22, 7)  # README: 22x7x3x32
    assert (vw.window_h[1], vw.window_w[1]) == (10, 3)  # README: 10x3x17x64
    assert vw.fallback.tolist()[-2:] == [True, True]  # 7x7 maps: im2col is not beaten
    # SDK and im2col do not depend on the window-count rounding here
    assert _map(table, 512, "sdk", "reference").cycles.tolist() == [r[5] for r in RESNET18]
