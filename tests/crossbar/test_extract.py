"""Layer extraction from torch models (hooks, low-rank pairs, masks) and the cost report."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from imcompress.crossbar import HardwareConfig, estimate, extract_layers
from imcompress.crossbar.cost_report import build_report


class Pair(nn.Module):
    """The contract of the compression package: ``is_low_rank_pair`` with children R and L."""

    is_low_rank_pair = True

    def __init__(
        self, ic: int, oc: int, rank: int, groups: int = 1, l_groups: int = 1, stride: int = 1
    ) -> None:
        super().__init__()
        self.R = nn.Conv2d(ic, groups * rank, 3, stride, 1, groups=groups, bias=False)
        self.L = nn.Conv2d(groups * rank, oc, 1, groups=l_groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.L(self.R(x))


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        self.dw = nn.Conv2d(16, 16, 3, stride=2, padding=1, groups=16)
        self.pair = Pair(16, 32, 4, groups=2)
        self.body = nn.Conv2d(32, 32, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.stem(x)))
        x = self.body(self.pair(self.dw(x)))
        return self.fc(self.pool(x).flatten(1))


@pytest.fixture
def net() -> Net:
    torch.manual_seed(0)
    return Net()


def test_table_has_every_layer_with_its_input_size(net: Net) -> None:
    table = extract_layers(net, (3, 32, 32))
    assert table.name == ("stem", "dw", "pair", "body", "fc")
    assert table.kind == ("conv", "conv", "lowrank", "conv", "linear")
    assert table.height.tolist() == [32, 32, 16, 16, 1]
    assert table.stride_h.tolist() == [1, 2, 1, 1, 1]
    assert table.groups.tolist() == [1, 16, 2, 1, 1]
    assert table.rank_channels.tolist() == [0, 0, 8, 0, 0]
    assert table.in_channels[2] == 16 and table.out_channels[2] == 32
    assert table.in_channels[4] == 32 and table.kernel_h[4] == 1
    assert not table.is_pruned.any()


def test_select_takes_rows_by_position_mask_or_an_empty_list(net: Net) -> None:
    """An empty list selects no row (``np.asarray([])`` is float: a mixed plan's layer for
    which one method has no candidate used to raise IndexError in the planner's merge)."""
    table = extract_layers(net, (3, 32, 32))
    assert table.select([2, 0]).name == ("pair", "stem")
    assert table.select(np.array([True, False, False, False, True])).name == ("stem", "fc")
    empty = table.select([])
    assert len(empty) == 0 and empty.name == () and empty.height.shape == (0,)


def test_extraction_does_not_touch_training_state(net: Net) -> None:
    net.train()
    net.bn.eval()
    stats = net.bn.running_mean.clone()
    extract_layers(net, (3, 32, 32))
    assert net.training and not net.bn.training and net.dw.training
    assert torch.equal(net.bn.running_mean, stats)


def test_prune_mask_buffer_removes_channels_and_sets_patterns(net: Net) -> None:
    mask = torch.ones_like(net.body.weight)
    mask[:4] = 0  # 4 output channels -> columns removed
    mask[:, 5] = 0  # input channel 5 -> rows removed
    mask[:, 6:, 0, 0] = 0  # corner off on channels 6.. for every output: rows skipped
    prune.custom_from_mask(net.body, "weight", mask)
    table = extract_layers(net, (3, 32, 32))
    body = table.name.index("body")
    assert table.out_kept[body] == 28 and table.in_kept[body] == 31
    pattern = table.patterns[body]
    assert pattern is not None and pattern.shape == (1, 32, 3, 3)
    assert not pattern[0, 5].any() and pattern[0, 0].all() and not pattern[0, 6, 0, 0]
    assert table.nonzero_weights[body] == int(mask.sum())
    report = estimate(net, (3, 32, 32), HardwareConfig(rows=64, cols=64))
    sdk = report.mappings["sdk"].mapping
    assert sdk.row_skipping[body] and not sdk.row_skipping[:body].any()
    totals = report.totals()
    assert totals["sdk/energy_uj"] > totals["sdk/energy_uj_no_periphery"]
    assert totals["sdk/energy_periphery_uj"] > 0


def test_exact_zeros_without_mask_count_as_pruned_and_changes_are_seen(net: Net) -> None:
    hw = HardwareConfig(rows=64, cols=16)
    before = estimate(net, (3, 32, 32), hw).mappings["im2col"].mapping
    with torch.no_grad():
        net.body.weight[16:] = 0  # half of the 32 output channels
    table = extract_layers(net, (3, 32, 32))  # cached shapes, fresh zeros
    body = table.name.index("body")
    assert table.out_kept[body] == 16 and table.patterns[body] is None
    after = estimate(net, (3, 32, 32), hw).mappings["im2col"].mapping
    assert (before.col_tiles[body], after.col_tiles[body]) == (2, 1)  # 32 -> 16 columns of 16
    assert 2 * after.cycles[body] == before.cycles[body]
    assert not after.row_skipping.any()


def test_unstructured_sparsity_that_empties_no_row_saves_nothing(net: Net) -> None:
    hw = HardwareConfig(rows=64, cols=64)
    before = estimate(net, (3, 32, 32), hw).totals()
    with torch.no_grad():
        w = net.body.weight
        w[torch.arange(w.shape[0]) % 2 == 0, :, 0, 0] = 0  # every other output loses one position
    after = estimate(net, (3, 32, 32), hw).totals()
    for name in ("im2col", "sdk", "vwsdk"):
        assert after[f"{name}/cycles"] == before[f"{name}/cycles"]
        assert after[f"{name}/energy_periphery_uj"] == 0


def test_report_totals_rows_and_files(net: Net, tmp_path: Path) -> None:
    report = estimate(net, (3, 32, 32), HardwareConfig(rows=64, cols=64))
    totals = report.totals()
    for key in (
        "im2col/cycles",
        "sdk/energy_uj",
        "vwsdk/latency_us",
        "sdk/utilization",
        "arrays",
        "sdk/speedup_vs_im2col",
        "vwsdk/energy_ratio_vs_im2col",
        "dense_im2col/cycles",
        "vwsdk_naive/cycles",  # the model has a low-rank pair: the naive mapping is reported too
    ):
        assert key in totals, key
    assert totals["im2col/cycles"] == pytest.approx(
        sum(int(c) for c in report.mappings["im2col"].mapping.cycles)
    )
    rows = report.rows()
    assert len(rows) == 5 * 3
    pair_row = next(r for r in rows if r["layer"] == "pair" and r["mapping"] == "vwsdk")
    assert pair_row["cycles_naive"] is not None and pair_row["cycles_l"] > 0
    dw_row = next(r for r in rows if r["layer"] == "dw" and r["mapping"] == "im2col")
    assert dw_row["cycles_other_packing"] > dw_row["cycles"]  # 16 depthwise blocks packed
    json_path = report.to_json(tmp_path / "r.json")
    payload = json.loads(json_path.read_text())
    assert payload["totals"]["vwsdk/cycles"] == totals["vwsdk/cycles"]
    assert payload["hw"]["rows"] == 64 and "adc_energy_pj" in payload["sources"]
    with report.to_csv(tmp_path / "r.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 15
    text = report.format_table()
    assert "pair" in text and "dense_im2col" in text and "vwsdk" in text


def test_energy_terms_by_hand() -> None:
    """One 16->16 3x3 conv on an 8x8 image (O=6), im2col on 128x128 arrays: 36 windows, 144 rows
    -> 2 row tiles x 1 column tile; per window 144 driven rows, 32 sensed columns, 144x16 cells,
    16 partial-sum adds."""
    from imcompress.crossbar import LayerTable

    table = LayerTable.from_shapes(height=8, kernel=3, in_channels=16, out_channels=16)
    for bits in (1, 8):
        hw = HardwareConfig(rows=128, cols=128, adc_bits=8, input_bits=bits, convention="reference")
        report = build_report(table, hw, ["im2col"])
        t = report.totals()
        assert t["im2col/cycles"] == 72
        assert t["im2col/latency_us"] == pytest.approx(72 * bits * 100e-3)
        assert t["im2col/energy_adc_uj"] == pytest.approx(36 * 32 * bits * 1.67e-6)
        assert t["im2col/energy_dac_uj"] == pytest.approx(36 * 144 * bits * 0.39e-6)
        assert t["im2col/energy_cell_uj"] == pytest.approx(36 * 144 * 16 * bits * 1.83e-9)
        assert t["im2col/energy_shift_add_uj"] == pytest.approx(36 * 32 * bits * 0.021e-6)
        assert t["im2col/energy_psum_uj"] == pytest.approx(36 * 16 * 0.021e-6)
        assert t["im2col/energy_periphery_uj"] == 0
        per_array = 128 * 128 * 0.00153 + 1200 + 128 * 0.166 + 128 * 0.039 + 30
        assert t["im2col/area_mm2"] == pytest.approx(2 * per_array * 1e-6)
        assert t["im2col/utilization"] == pytest.approx(144 * 16 / (2 * 128 * 128))


def test_scale_factors_scale_their_term_only() -> None:
    from imcompress.crossbar import LayerTable

    table = LayerTable.from_shapes(height=8, kernel=3, in_channels=16, out_channels=16)
    base = build_report(table, HardwareConfig(), ["sdk"]).totals()
    scaled = build_report(
        table, HardwareConfig(adc_energy_scale=2.0, area_scale=3.0), ["sdk"]
    ).totals()
    assert scaled["sdk/energy_adc_uj"] == pytest.approx(2 * base["sdk/energy_adc_uj"])
    assert scaled["sdk/energy_dac_uj"] == pytest.approx(base["sdk/energy_dac_uj"])
    assert scaled["sdk/area_mm2"] == pytest.approx(3 * base["sdk/area_mm2"])


def test_dilation_is_rejected_with_the_layer_name() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3, dilation=2))
    with pytest.raises(ValueError, match=r"layer '0'.*dilation"):
        extract_layers(model, (3, 16, 16))


def test_bad_input_shape() -> None:
    with pytest.raises(ValueError, match="input_shape"):
        extract_layers(nn.Conv2d(3, 4, 3), (16, 16))


def test_speedups_are_against_the_dense_model(net: Net) -> None:
    report = estimate(net, (3, 32, 32), HardwareConfig(rows=64, cols=64))
    dense = report.baseline.mapping
    assert dense.method == "im2col"
    # the dense baseline maps the pair as its original 16 -> 32 3x3 conv
    pair = report.table.name.index("pair")
    assert dense.row_tiles[pair] == -(-16 * 9 // 64)
    totals = report.totals()
    assert totals["im2col/speedup_vs_im2col"] == pytest.approx(
        totals["dense_im2col/cycles"] / totals["im2col/cycles"]
    )
    assert np.isfinite(totals["vwsdk/energy_ratio_vs_im2col"])


def test_replacing_a_layer_is_seen_by_the_cached_trace(net: Net) -> None:
    first = extract_layers(net, (3, 32, 32))
    body = first.name.index("body")
    replacement = nn.Conv2d(32, 32, 3, padding=1)
    with torch.no_grad():
        replacement.weight[8:] = 0
    net.body = replacement  # same name and shape, new weights
    second = extract_layers(net, (3, 32, 32))
    assert first.out_kept[body] == 32 and second.out_kept[body] == 8
    net.pair = Pair(16, 32, 2)  # new structure: rank 2
    assert extract_layers(net, (3, 32, 32)).rank_channels[first.name.index("pair")] == 2


def test_half_precision_model(net: Net) -> None:
    net = net.to(torch.bfloat16)
    with torch.no_grad():
        net.body.weight[:4] = 0
    table = extract_layers(net, (3, 32, 32))
    assert table.out_kept[table.name.index("body")] == 28
