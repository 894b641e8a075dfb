"""Paper-ready cost tables: Markdown, LaTeX and CSV parse, low-rank rows are labelled, digits agree."""

from __future__ import annotations

import csv
import io
import re

import pytest

from imcompress.crossbar import HardwareConfig, LayerSpec, LayerTable, build_report
from imcompress.crossbar.export import format_cost_report, layer_shape
from imcompress.reporting.tables import Column, TextTable, latex_escape, significant

LAYER_COLUMNS = [
    "layer", "shape", "im2col window", "im2col cycles", "sdk window", "sdk cycles",
    "vwsdk window", "vwsdk cycles", "vwsdk energy %",
]  # fmt: skip
TOTAL_COLUMNS = [
    "mapping", "cycles", "latency (us)", "energy (uJ)", "arrays", "utilization",
    "speedup vs dense", "energy vs dense", "speedup vs dense im2col", "energy vs dense im2col",
]  # fmt: skip


@pytest.fixture(scope="module")
def report():
    specs = [
        LayerSpec(name="stem", height=32, width=32, kernel_h=3, kernel_w=3, in_channels=3,
                  out_channels=16, padding_h=1, padding_w=1),
        LayerSpec(name="block_1", kind="lowrank", height=32, width=32, kernel_h=3, kernel_w=3,
                  in_channels=16, out_channels=16, padding_h=1, padding_w=1, groups=2,
                  rank_channels=8),
        LayerSpec(name="grouped", height=16, width=16, kernel_h=3, kernel_w=3, in_channels=32,
                  out_channels=32, groups=4),
    ]  # fmt: skip
    return build_report(LayerTable.from_specs(specs), HardwareConfig(rows=64, cols=64))


def _markdown_tables(text: str) -> list[list[list[str]]]:
    tables, current = [], []
    for line in text.splitlines():
        if line.startswith("|"):
            current.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line[1:-1])])
        elif current:
            tables.append(current)
            current = []
    if current:
        tables.append(current)
    return tables


def test_markdown_has_the_columns_labels_and_the_naive_footnote(report) -> None:
    text = format_cost_report(report, "md")
    layers, totals = _markdown_tables(text)
    assert layers[0] == LAYER_COLUMNS and totals[0] == TOTAL_COLUMNS
    assert all(len(row) == len(LAYER_COLUMNS) for row in layers)
    assert all(len(row) == len(TOTAL_COLUMNS) for row in totals)
    assert set(layers[1][0]) <= {"-", ":"}  # the alignment row
    pair = next(row for row in layers if row[0] == "block_1")
    assert pair[1] == "16->16 3x3/1 @32x32 k=4 g=2 (R out 8)"
    assert next(row for row in layers if row[0] == "grouped")[1].endswith(" g=4")
    names = [row[0] for row in totals[2:]]
    assert names == [
        "im2col", "sdk", "vwsdk", "im2col_naive<sup>a</sup>", "sdk_naive<sup>a</sup>",
        "vwsdk_naive<sup>a</sup>", "dense_im2col<sup>b</sup>", "dense_sdk<sup>b</sup>",
        "dense_vwsdk<sup>b</sup>",
    ]  # fmt: skip
    assert re.search(r"^<sup>a</sup> rows ending in _naive: .*mapped naively", text, re.M)


def test_latex_is_a_tabular_with_escaped_underscores(report) -> None:
    text = format_cost_report(report, "latex")
    specs = re.findall(r"\\begin\{tabular\}\{([lr]+)\}", text)
    assert [len(spec) for spec in specs] == [len(LAYER_COLUMNS), len(TOTAL_COLUMNS)]
    assert text.count("\\end{tabular}") == 2 and "\\toprule" in text
    assert re.search(r"(?<!\\)_", text) is None, "unescaped underscore"
    assert "vwsdk\\_naive$^{a}$" in text and "block\\_1" in text
    assert "vwsdk energy \\%" in text and "16$\\to$16" in text
    rows = [line for line in text.splitlines() if line.endswith("\\\\")]
    assert {line.count(" & ") for line in rows[: len(report.table) + 1]} == {len(LAYER_COLUMNS) - 1}


def test_csv_round_trips_the_totals(report) -> None:
    text = format_cost_report(report, "csv")
    layer_block, total_block = text.strip().split("\n\n")
    layers = list(csv.DictReader(io.StringIO(layer_block)))
    totals = list(csv.DictReader(io.StringIO(total_block)))
    assert [row["layer"] for row in layers] == ["stem", "block_1", "grouped"]
    assert list(totals[0])[: len(TOTAL_COLUMNS)] == TOTAL_COLUMNS
    expected = report.totals()
    for row in totals:
        name = row["mapping"]
        base = name.removesuffix("_naive").removeprefix("dense_")
        assert float(row["cycles"]) == expected[f"{name}/cycles"]
        assert float(row["energy (uJ)"]) == expected[f"{name}/energy_uj"]  # full precision
        assert float(row["speedup vs dense im2col"]) == expected[f"{name}/speedup_vs_im2col"]
        # the honest reference: the dense model on the same mapping and array
        same = expected[f"dense_{base}/cycles"] / expected[f"{name}/cycles"]
        assert float(row["speedup vs dense"]) == pytest.approx(same)
    assert "mapped naively" in totals[3]["note"] and totals[0]["note"] == ""
    assert [row["mapping"] for row in totals[-3:]] == ["dense_im2col", "dense_sdk", "dense_vwsdk"]
    assert float(totals[-2]["speedup vs dense"]) == 1.0 and totals[-2]["note"]


def test_console_default_labels_low_rank_rows(report) -> None:
    text = format_cost_report(report, "console")
    assert "k=4 g=2 (R out 8)" in text and "totals per image" in text
    assert "(a) rows ending in _naive" in text


def test_the_per_layer_table_is_a_text_table_with_stacked_headers(report) -> None:
    """Every table goes through TextTable: the per-layer console table stacks its headers
    (``sdk`` over ``cycles``) so it stays narrow, and Markdown joins them on one line."""
    from imcompress.crossbar.cost_report import layer_console_table

    table = layer_console_table(report)
    console = table.render("console").splitlines()
    names = [c.name for c in table.columns]
    assert "sdk\ncycles" in names and "sdk\nwindow" in names
    header_top, header_bottom = console[1], console[2]
    assert "sdk" in header_top and "cycles" in header_bottom and "window" in header_bottom
    assert set(console[3].replace(" ", "")) == {"-"}  # the rule under the two header lines
    assert len(console) == 4 + len(report.table)  # title, 2 header lines, rule, one per layer
    assert "| sdk cycles |" in table.render("md")
    cycles = [row[names.index("sdk\ncycles")] for row in table.rows]
    assert cycles == report.mappings["sdk"].mapping.cycles.tolist()


@pytest.mark.parametrize(
    ("value", "shown"),
    [(1.0, "1.00"), (0.012345, "0.0123"), (2.7283, "2.73"), (123.4, "123"), (12345.6, "12,346"),
     (7, "7"), (0.0, "0"), (None, "n/a"), (float("nan"), "n/a")],
)  # fmt: skip
def test_three_significant_digits(value: float | None, shown: str) -> None:
    assert significant(value) == shown


def test_layer_shape_of_an_output_grouped_pair() -> None:
    spec = LayerSpec(name="p", kind="lowrank", height=8, width=8, kernel_h=3, kernel_w=3,
                     in_channels=8, out_channels=12, rank_channels=12, l_groups=3)  # fmt: skip
    assert layer_shape(LayerTable.from_specs([spec]), 0).endswith("k=4 g=3 (R out 12)")


def test_escaping_and_rows_of_the_wrong_length() -> None:
    assert latex_escape("a_b & 5% #1 {x}") == r"a\_b \& 5\% \#1 \{x\}"
    table = TextTable([Column("a|b")], [])
    table.add(["x|y"])
    assert "x\\|y" in table.render("md") and "a\\|b" in table.render("md")
    with pytest.raises(ValueError, match="2 values for 1 columns"):
        table.add([1, 2])


def test_console_totals_are_a_text_table_with_every_total(report) -> None:
    from imcompress.crossbar.cost_report import console_totals_table

    table = console_totals_table(report)
    assert isinstance(table, TextTable)
    assert table.render("console") in format_cost_report(report, "console")
    names = [c.name for c in table.columns]
    assert names[:5] == ["mapping", "cycles", "latency us", "energy uJ", "no periphery uJ"]
    shown = {row[0]: row for row in table.shown()}
    totals = report.totals()
    assert set(shown) == {
        "im2col", "sdk", "vwsdk", "im2col_naive", "sdk_naive", "vwsdk_naive",
        "dense_im2col", "dense_sdk", "dense_vwsdk",
    }  # fmt: skip
    sdk = shown["sdk"]
    assert sdk[names.index("cycles")] == f"{totals['sdk/cycles']:,.0f}"
    assert float(sdk[names.index("no periphery uJ")]) == pytest.approx(
        totals["sdk/energy_uj_no_periphery"], rel=1e-3
    )
    speedup = totals["dense_sdk/cycles"] / totals["sdk/cycles"]
    assert float(sdk[names.index("speedup vs dense")]) == pytest.approx(speedup, abs=1e-3)
    assert [table.mark(i) for i in range(len(table.rows))].count("a") == 3  # the naive rows
