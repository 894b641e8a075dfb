"""The cost report as paper-ready tables: per layer and totals, in Markdown, LaTeX or CSV.

``format_cost_report(report, "latex")`` is what ``python src/estimate.py ... format=latex``
prints. Counts are whole numbers, every other quantity has three significant digits
(:func:`imcompress.reporting.tables.significant`); CSV keeps the raw values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imcompress.crossbar.layer_table import LayerTable
from imcompress.reporting.tables import Column, TableFormat, TextTable, count, render_all

if TYPE_CHECKING:
    from imcompress.crossbar.cost_report import CostReport

NAIVE_MARK = "a"
NAIVE_NOTE = (
    "rows ending in _naive: the same mapping with every low-rank pair mapped naively (R and L each "
    "mapped as its own conv with its own best window, so L runs once per output position of R) "
    "instead of SDK-aligned (L stored as I_N kron L^T, advancing with R's parallel windows); "
    "see docs/cost-model.md#low-rank-pair"
)
BASELINE_NOTE = (
    "dense_<mapping>: the dense model (low-rank pairs and pruning undone) on that mapping and "
    "array, the reference of the 'vs dense' columns; dense_im2col is that of 'vs dense im2col'"
)
BASELINE_MARK = "b"


def _text(value: object) -> str:
    return str(value)


def layer_shape(table: LayerTable, k: int) -> str:
    """``16->32 3x3/1 @32x32``; low-rank pairs add ``k=4 g=2 (R out 8)``, grouped convs ``g=4``,
    channel-pruned layers the kept channels."""
    shape = (
        f"{table.in_channels[k]}->{table.out_channels[k]} {table.kernel_h[k]}x{table.kernel_w[k]}"
        f"/{table.stride_h[k]} @{table.height[k]}x{table.width[k]}"
    )
    rank_channels = int(table.rank_channels[k])
    if rank_channels:
        groups = max(int(table.groups[k]), int(table.l_groups[k]))
        shape += f" k={rank_channels // groups} g={groups} (R out {rank_channels})"
    elif table.groups[k] > 1:
        shape += f" g={table.groups[k]}"
    if table.in_kept[k] < table.in_channels[k] or table.out_kept[k] < table.out_channels[k]:
        shape += f" kept {table.in_kept[k]}->{table.out_kept[k]}"
    return shape


def hardware_line(report: CostReport) -> str:
    """The preset and the bit-width assumptions behind the numbers."""
    hw = report.hw
    return (
        f"{hw.name}: {hw.rows}x{hw.cols} arrays, {hw.weight_bits}-bit weights on "
        f"{hw.cell_bits}-bit cells, {hw.input_bits}-bit inputs, {hw.adc_bits}-bit ADC"
    )


def layer_table(report: CostReport) -> TextTable:
    """One row per layer: shape, and per mapping the window (``im2col`` = fallback) and cycles."""
    table = report.table
    columns = [Column("layer", _text, "l"), Column("shape", _text, "l")]
    for name in report.mappings:
        columns += [Column(f"{name} window", _text), Column(f"{name} cycles", count)]
    last = list(report.mappings)[-1] if report.mappings else None
    if last:
        columns.append(Column(f"{last} energy %"))
    out = TextTable(
        columns, [], title=f"Crossbar cost per layer, one image ({hardware_line(report)})"
    )
    share = None
    if last:
        energy = report.mappings[last].costs.energy_pj
        share = energy / (energy.sum() or 1.0)
    for k in range(len(table)):
        row: list[object] = [table.name[k], layer_shape(table, k)]
        for mapped in report.mappings.values():
            m = mapped.mapping
            window = "im2col" if m.fallback[k] else f"{m.window_h[k]}x{m.window_w[k]}"
            row += [window, int(m.cycles[k])]
        if share is not None:
            row.append(100 * float(share[k]))
        out.add(row)
    return out


def totals_table(report: CostReport) -> TextTable:
    """One row per mapping (then the naive low-rank mappings, then the dense model per mapping):
    speedup and energy ratio against the dense model on the same mapping, and on im2col."""
    from imcompress.crossbar.cost_report import total_rows, vs_dense

    totals = report.totals()
    out = TextTable(
        [
            Column("mapping", _text, "l"),
            Column("cycles", count),
            Column("latency (us)"),
            Column("energy (uJ)"),
            Column("arrays", count),
            Column("utilization"),
            Column("speedup vs dense"),
            Column("energy vs dense"),
            Column("speedup vs dense im2col"),
            Column("energy vs dense im2col"),
        ],
        [],
        title=(
            f"Crossbar cost totals, one image ({hardware_line(report)}); speedup and energy "
            "ratio against the dense model on the same mapping and array, and on im2col"
        ),
        notes={NAIVE_MARK: NAIVE_NOTE, BASELINE_MARK: BASELINE_NOTE},
    )

    def whole(value: float) -> int | float:
        return int(value) if float(value).is_integer() else value

    marks = {"": "", "naive": NAIVE_MARK, "dense": BASELINE_MARK}
    for name, kind in total_rows(report):
        mark = marks[kind]
        speedup, ratio = vs_dense(totals, name)
        out.add(
            [
                name,
                whole(totals[f"{name}/cycles"]),
                totals[f"{name}/latency_us"],
                totals[f"{name}/energy_uj"],
                whole(totals[f"{name}/arrays"]),
                totals[f"{name}/utilization"],
                speedup,
                ratio,
                totals[f"{name}/speedup_vs_im2col"],
                totals[f"{name}/energy_ratio_vs_im2col"],
            ],
            mark,
        )
    return out


def format_cost_report(report: CostReport, fmt: TableFormat | str) -> str:
    """The per-layer and totals tables in ``fmt``; ``console`` is :meth:`CostReport.format_table`."""
    if TableFormat(fmt) == TableFormat.console:
        return report.format_table()
    return render_all([layer_table(report), totals_table(report)], fmt)
