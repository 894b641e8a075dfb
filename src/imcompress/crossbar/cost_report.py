"""The cost report: per-layer rows and per-mapping totals, with JSON/CSV/terminal output."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from imcompress.crossbar.config import HardwareConfig, constant_sources
from imcompress.crossbar.costs import ENERGY_TERMS, LayerCosts, layer_costs
from imcompress.crossbar.export import NAIVE_MARK, NAIVE_NOTE, layer_shape
from imcompress.crossbar.layer_table import LayerTable
from imcompress.crossbar.mapping import METHODS, MappingResult, map_layers
from imcompress.crossbar.options import (
    Convention,
    LowRankMapping,
    Method,
    Search,
    parse_methods,
    parse_option,
)
from imcompress.reporting.tables import Column, TextTable, count

BASELINE = "dense_im2col"


@dataclass(frozen=True)
class MappedCosts:
    """One mapping of the table and its costs."""

    mapping: MappingResult
    costs: LayerCosts


class CostReport:
    """Costs of one model under several mappings, against the dense model mapped with im2col
    (``<mapping>/speedup_vs_im2col``) and against the dense model on the same mapping and array
    (``dense_<mapping>/*``, ``<mapping>/speedup_vs_dense``, ``<mapping>/energy_ratio_vs_dense``).

    ``mappings[name]`` holds the main results (low-rank pairs SDK-aligned); ``naive[name]`` the
    same mapping with pairs mapped naively (only when the model has pairs); ``alternate[name]``
    the other ``pack_groups`` choice (only when it has grouped convs).
    """

    def __init__(
        self,
        table: LayerTable,
        hw: HardwareConfig,
        mappings: dict[str, MappedCosts],
        baseline: MappedCosts,
        naive: dict[str, MappedCosts] | None = None,
        alternate: dict[str, MappingResult] | None = None,
        dense: dict[str, MappedCosts] | None = None,
    ) -> None:
        self.table = table
        self.hw = hw
        self.mappings = mappings
        self.baseline = baseline
        self.naive = naive or {}
        self.alternate = alternate or {}
        self.dense = dense or {}

    def totals(self) -> dict[str, float]:
        """Flat per-model totals: ``<mapping>/cycles``, ``<mapping>/energy_uj``, ``arrays``, ..."""
        return dict(self._totals)

    @cached_property
    def _totals(self) -> dict[str, float]:
        out: dict[str, float] = {}
        base = self.baseline
        base_cycles = float(base.mapping.cycles.sum())
        base_energy = float(base.costs.energy_pj.sum())
        for name, mapped in self.mappings.items():
            out.update(_mapping_totals(name, mapped, base_cycles, base_energy))
        for name, mapped in self.naive.items():
            out.update(_mapping_totals(f"{name}_naive", mapped, base_cycles, base_energy))
        out.update(_mapping_totals(BASELINE, base, base_cycles, base_energy))
        for name, dense in self.dense.items():  # the honest reference: dense on the same mapping
            out.update(_mapping_totals(f"dense_{name}", dense, base_cycles, base_energy))
            cycles = out[f"dense_{name}/cycles"]
            energy = out[f"dense_{name}/energy_uj"] * 1e6
            own = out[f"{name}/cycles"]
            out[f"{name}/speedup_vs_dense"] = cycles / own if own else float("inf")
            own_energy = out[f"{name}/energy_uj"] * 1e6
            out[f"{name}/energy_ratio_vs_dense"] = own_energy / energy if energy else float("nan")
        out["arrays"] = float(
            max((m.mapping.arrays.sum() for m in self.mappings.values()), default=0)
        )
        out["layers"] = float(len(self.table))
        return out

    def rows(self) -> list[dict[str, Any]]:
        """Per-layer rows, one per (layer, mapping)."""
        table = self.table
        out: list[dict[str, Any]] = []
        for name, mapped in self.mappings.items():
            m, c = mapped.mapping, mapped.costs
            energy = c.energy_pj
            total_energy = float(energy.sum()) or 1.0
            naive = self.naive.get(name)
            alternate = self.alternate.get(name)
            for k in range(len(table)):
                row: dict[str, Any] = {
                    "layer": table.name[k],
                    "kind": table.kind[k],
                    "mapping": name,
                    "height": int(table.height[k]),
                    "width": int(table.width[k]),
                    "kernel": f"{table.kernel_h[k]}x{table.kernel_w[k]}",
                    "stride": int(table.stride_h[k]),
                    "padding": int(table.padding_h[k]),
                    "in_channels": int(table.in_channels[k]),
                    "out_channels": int(table.out_channels[k]),
                    "groups": int(table.groups[k]),
                    "rank_channels": int(table.rank_channels[k]),
                    "in_kept": int(table.in_kept[k]),
                    "out_kept": int(table.out_kept[k]),
                    "window": f"{m.window_h[k]}x{m.window_w[k]}",
                    "outputs_per_window": f"{m.outputs_h[k]}x{m.outputs_w[k]}",
                    "parallel_windows": int(m.parallel_windows[k]),
                    "row_tiles": int(m.row_tiles[k]),
                    "col_tiles": int(m.col_tiles[k]),
                    "arrays": int(m.arrays[k]),
                    "cycles": int(m.cycles[k]),
                    "cycles_r": int(m.cycles_r[k]),
                    "cycles_l": int(m.cycles_l[k]),
                    "mvm": int(m.mvm[k]),
                    "fallback_im2col": bool(m.fallback[k]),
                    "row_skipping": bool(m.row_skipping[k]),
                    "skipped_rows": int(m.skipped_rows[k]),
                    "utilization": float(m.utilization[k]),
                    "latency_us": float(c.latency_ns[k]) * 1e-3,
                    "energy_uj": float(energy[k]) * 1e-6,
                    "energy_no_periphery_uj": float(c.energy_no_periphery_pj[k]) * 1e-6,
                    **{f"energy_{t}_uj": float(c.term(t)[k]) * 1e-6 for t in ENERGY_TERMS},
                    "energy_share": float(energy[k]) / total_energy,
                    "area_mm2": float(c.area_um2[k]) * 1e-6,
                    "cycles_naive": int(naive.mapping.cycles[k])
                    if naive and table.is_pair[k]
                    else None,
                    "cycles_other_packing": (
                        int(alternate.cycles[k])
                        if alternate is not None and table.groups[k] > 1
                        else None
                    ),
                }
                out.append(row)
        return out

    def to_json(self, path: str | Path) -> Path:
        """Write ``{"hw", "sources", "totals", "layers"}`` as JSON."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "hw": self.hw.to_dict(),
            "sources": constant_sources(),
            "totals": self.totals(),
            "layers": self.rows(),
        }
        path.write_text(json.dumps(payload, indent=2))
        return path

    def to_csv(self, path: str | Path) -> Path:
        """Write the per-layer rows as CSV."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = self.rows()
        with path.open("w", newline="") as handle:
            if rows:
                writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
        return path

    def format_table(self) -> str:
        """Per-layer table (window, tiles, cycles per mapping, energy share) and totals, as text."""
        layers = layer_console_table(self).render("console")
        totals = console_totals_table(self).render("console")
        return f"{layers}\n{FALLBACK_LEGEND}\n\n{totals}\n"


FALLBACK_LEGEND = "* = im2col fallback (no better window)"


def layer_console_table(report: CostReport) -> TextTable:
    """The per-layer table of :meth:`CostReport.format_table`: window (``*``: im2col fallback),
    tiles and cycles per mapping, and each layer's share of the last mapping's energy."""
    table = report.table
    columns = [Column("layer", str, "l"), Column("kind", str, "l"), Column("shape", str, "l")]
    for name in report.mappings:
        columns += [Column(f"{name}\nwindow", str), Column(f"{name}\ntiles", str),
                    Column(f"{name}\ncycles", count)]  # fmt: skip
    last = list(report.mappings)[-1] if report.mappings else None
    share = None
    if last:
        columns.append(Column(f"{last}\nenergy %", _formatted(".1f")))
        energy = report.mappings[last].costs.energy_pj
        share = 100 * energy / (energy.sum() or 1.0)
    hw = report.hw
    layers = TextTable(
        columns, [], title=f"crossbar cost per layer ({hw.name}, {hw.rows}x{hw.cols})"
    )
    for k in range(len(table)):
        cells: list[Any] = [table.name[k], table.kind[k], layer_shape(table, k)]
        for mapped in report.mappings.values():
            m = mapped.mapping
            window = f"{m.window_h[k]}x{m.window_w[k]}" + ("*" if m.fallback[k] else "")
            cells += [window, f"{m.row_tiles[k]}x{m.col_tiles[k]}", int(m.cycles[k])]
        if share is not None:
            cells.append(float(share[k]))
        layers.add(cells)
    return layers


def _formatted(spec: str) -> Callable[[Any], str]:
    """A :class:`Column` ``show`` that formats a value with the format ``spec`` (``,.0f``)."""
    return lambda value: format(value, spec)


def console_totals_table(report: CostReport) -> TextTable:
    """The totals of :meth:`CostReport.format_table`: one row per mapping, then the naive
    low-rank mappings (marked), then the dense model per mapping and on im2col."""
    totals = report.totals()
    out = TextTable(
        [
            Column("mapping", str, "l"),
            Column("cycles", _formatted(",.0f")),
            Column("latency us", _formatted(",.2f")),
            Column("energy uJ", _formatted(",.4g")),
            Column("no periphery uJ", _formatted(",.4g")),
            Column("arrays", _formatted(",.0f")),
            Column("util", _formatted(".3f")),
            Column("speedup vs dense", _formatted(".3f")),
            Column("energy vs dense", _formatted(".3f")),
            Column("speedup vs dense im2col", _formatted(".3f")),
            Column("energy vs dense im2col", _formatted(".3f")),
        ],
        [],
        title="totals per image; speedup and energy ratio vs the dense model on the same "
        f"mapping and array ({report.hw.name}), and vs the dense model on im2col",
        notes={NAIVE_MARK: NAIVE_NOTE},
    )
    for name, kind in total_rows(report):
        out.add(
            [
                name,
                totals[f"{name}/cycles"],
                totals[f"{name}/latency_us"],
                totals[f"{name}/energy_uj"],
                totals.get(f"{name}/energy_uj_no_periphery", float("nan")),
                totals.get(f"{name}/arrays", float("nan")),
                totals.get(f"{name}/utilization", float("nan")),
                *vs_dense(totals, name),
                totals[f"{name}/speedup_vs_im2col"],
                totals[f"{name}/energy_ratio_vs_im2col"],
            ],
            NAIVE_MARK if kind == "naive" else "",
        )
    return out


def vs_dense(totals: dict[str, float], name: str) -> tuple[float, float]:
    """Speedup and energy ratio of mapping ``name`` (``sdk``, ``sdk_naive``, ``dense_sdk``)
    against the dense model on the same mapping and array; nan where that dense cost is missing."""
    base = name.removesuffix("_naive").removeprefix("dense_")
    dense_cycles = totals.get(f"dense_{base}/cycles")
    dense_energy = totals.get(f"dense_{base}/energy_uj")
    cycles, energy = totals.get(f"{name}/cycles"), totals.get(f"{name}/energy_uj")
    speedup = dense_cycles / cycles if dense_cycles and cycles else float("nan")
    ratio = energy / dense_energy if dense_energy and energy is not None else float("nan")
    return speedup, ratio


def total_rows(report: CostReport) -> list[tuple[str, str]]:
    """The rows of a totals table in order, each with its kind: the mappings (``""``), the
    naive low-rank mappings (``"naive"``), the dense model per mapping and on im2col
    (``"dense"``); the console and the md/LaTeX/CSV tables list the same rows."""
    rows = [(name, "") for name in report.mappings]
    rows += [(f"{name}_naive", "naive") for name in report.naive]
    return rows + [(name, "dense") for name in dense_rows(report)]


def dense_rows(report: CostReport) -> list[str]:
    """``dense_<mapping>`` for every mapping of ``report``, then the im2col baseline (once)."""
    names = [f"dense_{name}" for name in report.dense]
    return names + ([BASELINE] if BASELINE not in names else [])


def _mapping_totals(
    name: str, mapped: MappedCosts, base_cycles: float, base_energy: float
) -> dict[str, float]:
    m, c = mapped.mapping, mapped.costs
    cycles = float(m.cycles.sum())
    energy = float(c.energy_pj.sum())
    out = {
        f"{name}/cycles": cycles,
        f"{name}/latency_us": float(c.latency_ns.sum()) * 1e-3,
        f"{name}/energy_uj": energy * 1e-6,
        f"{name}/speedup_vs_im2col": base_cycles / cycles if cycles else float("inf"),
        f"{name}/energy_ratio_vs_im2col": energy / base_energy if base_energy else float("nan"),
    }
    arrays = float(m.arrays.sum())
    out.update(
        {
            f"{name}/energy_uj_no_periphery": float(c.energy_no_periphery_pj.sum()) * 1e-6,
            **{f"{name}/energy_{t}_uj": float(c.term(t).sum()) * 1e-6 for t in ENERGY_TERMS},
            f"{name}/mvm": float(m.mvm.sum()),
            f"{name}/arrays": arrays,
            f"{name}/area_mm2": float(c.area_um2.sum()) * 1e-6,
            f"{name}/utilization": m.total_utilization,
            f"{name}/fallback_layers": float(m.fallback.sum()),
            f"{name}/row_skipping_layers": float(m.row_skipping.sum()),
        }
    )
    return out


def build_report(
    table: LayerTable,
    hw: HardwareConfig | Any = None,
    mappings: Sequence[Method | str] = METHODS,
    *,
    search: Search | str | None = None,
    convention: Convention | str | None = None,
) -> CostReport:
    """Map ``table`` with every method in ``mappings`` and cost it on ``hw`` (default ISAAC-style).

    ``search``/``convention`` (None: ``hw``'s) override the hardware preset's choice.
    """
    hw = HardwareConfig.from_cfg(hw)
    search = parse_option(Search, search or hw.search, "search")
    convention = parse_option(Convention, convention or hw.convention, "convention")
    methods = parse_methods(mappings)
    xbar = hw.crossbar()

    def run(
        target: LayerTable,
        method: Method,
        lowrank: LowRankMapping = LowRankMapping.aligned,
        pack: bool = hw.pack_groups,
    ) -> MappingResult:
        return map_layers(
            target,
            xbar,
            method,
            search,
            convention,
            pack_groups=pack,
            lowrank=lowrank,
            pipeline=hw.pipeline,
        )

    main: dict[str, MappedCosts] = {}
    naive: dict[str, MappedCosts] = {}
    alternate: dict[str, MappingResult] = {}
    has_pairs = bool(table.is_pair.any())
    has_groups = bool(((table.groups > 1) & ~table.is_pair).any())
    for method in methods:
        result = run(table, method)
        main[method.value] = MappedCosts(result, layer_costs(result, hw))
        if has_pairs:
            naive_result = run(table, method, lowrank=LowRankMapping.naive)
            naive[method.value] = MappedCosts(naive_result, layer_costs(naive_result, hw))
        if has_groups:
            alternate[method.value] = run(table, method, pack=not hw.pack_groups)
    dense_table = table.dense()
    dense: dict[str, MappedCosts] = {}
    for method in methods:
        dense_result = run(dense_table, method)
        dense[method.value] = MappedCosts(dense_result, layer_costs(dense_result, hw))
    base = run(dense_table, Method.im2col)
    baseline = MappedCosts(base, layer_costs(base, hw))
    return CostReport(table, hw, main, baseline, naive, alternate, dense)
