"""Tables (Markdown) and figures (PNG) of the decisive study, from its committed records only.

``write_report(records_root, out)`` reads ``<root>/records/*.json`` (one per job) and
``<root>/grid.csv`` and writes ``<out>/tables.md`` and ``<out>/decisive_*.png``; the same
records give the same bytes (sorted rows, fixed figure metadata, no dates).
"""

from __future__ import annotations

import csv
import io
import math
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imcompress.reporting.tables import Column, TextTable, count, significant
from imcompress.runs import atomic
from imcompress.studies.decisive_plan import LEVELS, METHODS, PlanSpec, level_name
from imcompress.studies.records import HW_PRESETS, MAPPINGS, read_records

MAPPING_LABELS = {"sdk": "SDK", "vwsdk": "VW-SDK"}
_PLANNED = re.compile(
    r"^planned_(?P<family>glr|pattern|mixed)(?P<act>_act)?_(?P<hw>imc\d+)_c(?P<ratio>[0-9.]+)$"
)
PNG_METADATA = {
    "Software": "imcompress"
}  # no matplotlib version: the bytes depend on the data only


def describe_point(name: str) -> tuple[int, str, str]:
    """(kind order, label, level) of a point name: dense 0, uniform 1, planned 2, distilled 3."""
    kd = name.startswith("kd_")
    base = name.removeprefix("kd_")
    if base in ("dense", "dense_ft"):
        return (0, "dense" if base == "dense" else "dense, fine-tuned (same recipe)", "")
    planned = _PLANNED.match(base)
    if planned:
        criterion = "activation" if planned["act"] else "magnitude"
        spec = PlanSpec(planned["family"], planned["hw"], float(planned["ratio"]), criterion)
        label, level = spec.label, f"cycles {planned['ratio']}x"
        kind = 2
    else:
        key, _, kept = base.rpartition("_k")
        if key not in METHODS:
            raise ValueError(f"record of an unknown point {name!r}")
        label, level, kind = METHODS[key].label, f"keep {kept}", 1
    return (3, f"{label} + KD", level) if kd else (kind, label, level)


def t_quantile(n: int) -> float:
    """The 97.5 % quantile of Student's t with n - 1 degrees of freedom (two-sided 95 %)."""
    from scipy import stats

    return float(stats.t.ppf(0.975, n - 1))


@dataclass
class Row:
    """The jobs of one point (one per seed)."""

    name: str
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def describe(self) -> tuple[int, str, str]:
        return describe_point(self.name)

    def values(self, key: str) -> list[float]:
        found = [(r.get("metrics") or {}).get(key) for r in self.records]
        return [float(v) for v in found if isinstance(v, (int, float))]

    def mean(self, key: str) -> float | None:
        values = self.values(key)
        return statistics.fmean(values) if values else None

    def accuracy(self) -> tuple[str, str]:
        """(``mean ± std``, ``[low, high]`` 95 % t-interval; n/a for one seed)."""
        accs = self.values("test/acc")
        if not accs:
            return "n/a", "n/a"
        mean = statistics.fmean(accs)
        if len(accs) == 1:
            return f"{mean:.4f}", "n/a"
        std = statistics.stdev(accs)
        half = t_quantile(len(accs)) * std / math.sqrt(len(accs))
        return f"{mean:.4f} ± {std:.4f}", f"[{mean - half:.4f}, {mean + half:.4f}]"

    @property
    def kept(self) -> float | None:
        if self.describe[0] == 0:
            return 1.0
        kept = [(r.get("compression") or {}).get("kept") for r in self.records]
        found = [float(k) for k in kept if isinstance(k, (int, float))]
        return statistics.fmean(found) if found else None

    def cost(self, hw: str, mapping: str) -> dict[str, float] | None:
        costs = [((r.get("costs") or {}).get(hw) or {}).get(mapping) for r in self.records]
        return next((c for c in costs if c), None)


def gather(records: Sequence[Mapping[str, Any]]) -> list[Row]:
    """Completed records grouped by point, in table order."""
    rows: dict[str, Row] = {}
    for record in records:
        if record.get("status") == "completed":
            rows.setdefault(str(record["name"]), Row(str(record["name"]))).records.append(
                dict(record)
            )
    order = sorted(
        rows.values(), key=lambda r: (r.describe[0], r.describe[2], r.describe[1], r.name)
    )
    for row in order:
        row.records.sort(key=lambda r: int(r["seed"]))
    return order


def accuracy_table(rows: Sequence[Row]) -> TextTable:
    table = TextTable(
        [Column("method", str, "l"), Column("level", str, "l"), Column("kept", significant),
         Column("acc@compr.", significant), Column("test acc (mean ± std)", str), Column("n", count),
         Column("95 % CI (t)", str)],
        [], title="Fashion-MNIST ResNet-20, one full fine-tuning epoch: accuracy over seeds",
    )  # fmt: skip
    for row in rows:
        _, label, level = row.describe
        acc, interval = row.accuracy()
        table.add([label, level, row.kept, row.mean("val/acc_at_compression"), acc,
                   len(row.values("test/acc")), interval])  # fmt: skip
    return table


def cost_table(rows: Sequence[Row], hw: str) -> TextTable | None:
    """Cycles and energy per mapping on ``hw``; speedup and energy ratio against the dense
    model on the same mapping and array."""
    dense = next((r for r in rows if r.name == "dense"), None)
    if dense is None or dense.cost(hw, "sdk") is None:
        return None
    columns = [Column("method", str, "l"), Column("level", str, "l"), Column("test acc", str)]
    for mapping in MAPPINGS:
        label = MAPPING_LABELS[mapping]
        columns += [Column(f"{label} cycles", count), Column(f"{label} speedup", significant),
                    Column(f"{label} energy [uJ]", significant), Column(f"{label} energy ratio", significant)]  # fmt: skip
    table = TextTable(columns, [], title=f"Costs per image on {hw} (dense on the same mapping = 1)")
    for row in rows:
        _, label, level = row.describe
        cells: list[Any] = [label, level, row.accuracy()[0]]
        for mapping in MAPPINGS:
            mine, base = row.cost(hw, mapping), dense.cost(hw, mapping)
            if mine is None or base is None:
                cells += [None] * 4
                continue
            cells += [mine["cycles"], base["cycles"] / mine["cycles"], mine["energy_uj"],
                      mine["energy_uj"] / base["energy_uj"]]  # fmt: skip
        table.add(cells)
    return table


def read_grid(root: Path) -> list[dict[str, str]]:
    file = root / "grid.csv"
    return list(csv.DictReader(io.StringIO(file.read_text()))) if file.is_file() else []


def _grid_cell(row: Mapping[str, str]) -> str:
    acc = f"{float(row['test_acc']):.4f}" if row.get("test_acc") else row.get("status", "n/a")
    return acc + (f" ({float(row['kept']):.3f})" if row.get("kept") else "")


def grid_table(grid: Sequence[Mapping[str, str]]) -> TextTable | None:
    """``acc@compr.`` (test accuracy right after compression and BN re-estimation) per uniform
    method and level, the achieved kept fraction in brackets."""
    cells: dict[str, dict[str, str]] = {}
    for row in grid:
        if row["level"]:
            cells.setdefault(row["point"], {})[row["level"]] = _grid_cell(row)
    if not cells:
        return None
    levels = [level_name(level) for level in LEVELS]
    table = TextTable(
        [Column("method", str, "l"), *(Column(f"keep {lvl}", str) for lvl in levels)], [],
        title="acc@compr.: test accuracy after compression and BatchNorm re-estimation, no training (kept)",
    )  # fmt: skip
    for key, method in METHODS.items():
        if key in cells:
            table.add([method.label, *(cells[key].get(lvl, "") for lvl in levels)])
    return table


def grid_plans_table(grid: Sequence[Mapping[str, str]]) -> TextTable | None:
    """``acc@compr.`` of the planned points (both array sizes' plans), with their budget."""
    planned = sorted(
        (describe_point(row["point"]), _grid_cell(row)) for row in grid if not row["level"]
    )
    if not planned:
        return None
    table = TextTable(
        [Column("plan", str, "l"), Column("budget", str, "l"), Column("acc@compr. (kept)", str)], [],
        title="acc@compr. of the plans (SDK cycle budgets, no training)",
    )  # fmt: skip
    for (_, label, level), text in planned:
        table.add([label, level, text])
    return table


def tables_markdown(rows: Sequence[Row], grid: Sequence[Mapping[str, str]]) -> str:
    tables = [accuracy_table(rows), *(cost_table(rows, hw) for hw in HW_PRESETS),
              grid_table(grid), grid_plans_table(grid)]  # fmt: skip
    return "\n\n".join(t.render("md") for t in tables if t is not None) + "\n"


# --- figures -------------------------------------------------------------------------------------


def _save(figure: Any, path: Path) -> Path:
    from imcompress.reporting.figures import DPI

    figure.savefig(path, dpi=DPI, metadata=PNG_METADATA)
    return path


def accuracy_cost_figure(rows: Sequence[Row], hw: str, path: Path) -> Path | None:
    """Test accuracy (mean, 95 % interval as error bar) against SDK cycles on ``hw``."""
    shown = [r for r in rows if r.cost(hw, "sdk") and r.values("test/acc")]
    if not shown:
        return None
    from imcompress.reporting.figures import method_colours, new_figure

    colours = method_colours(row.describe[1] for row in shown)
    markers = {"keep 0.06": "o", "keep 0.12": "^", "cycles 0.40x": "D"}  # others: squares
    figure = new_figure(9.5, 5.5)
    axes = figure.subplots()
    for row in shown:
        _, label, level = row.describe
        accs = row.values("test/acc")
        half = (t_quantile(len(accs)) * statistics.stdev(accs) / math.sqrt(len(accs))
                if len(accs) > 1 else 0.0)  # fmt: skip
        cost = row.cost(hw, "sdk")
        assert cost is not None
        axes.errorbar([cost["cycles"]], [statistics.fmean(accs)], yerr=[half], capsize=3,
                      fmt=markers.get(level, "s"), color=colours[label], markersize=7,
                      mfc="none" if " + " in label else colours[label],  # a mixed plan: hollow
                      label=f"{label} {level}".strip())  # fmt: skip
    axes.set_xlabel(f"SDK cycles per image on {hw}")
    axes.set_ylabel("test accuracy (mean, 95 % interval)")
    axes.set_title(f"Decisive study: accuracy vs SDK cycles ({hw})")
    axes.grid(True, alpha=0.3)
    figure.legend(loc="outside right center", fontsize=6.5)
    return _save(figure, path)


def grid_figure(grid: Sequence[Mapping[str, str]], path: Path) -> Path | None:
    """``acc@compr.`` against the achieved kept fraction, one line per method."""
    by_method: dict[str, list[tuple[float, float]]] = {}
    for row in grid:
        if row["level"] and row.get("test_acc") and row.get("kept"):
            by_method.setdefault(row["point"], []).append(
                (float(row["kept"]), float(row["test_acc"]))
            )
    if not by_method:
        return None
    from imcompress.reporting.figures import new_figure

    figure = new_figure(9.5, 5.5)
    axes = figure.subplots()
    for index, key in enumerate(k for k in METHODS if k in by_method):
        points = sorted(by_method[key])
        axes.plot([p[0] for p in points], [p[1] for p in points], marker="o",
                  linestyle="--" if key.endswith(("w", "_act")) else "-",
                  color=f"C{index % 10}", label=METHODS[key].label)  # fmt: skip
    axes.set_xscale("log")
    axes.set_xlabel("kept fraction of the compressed convs' weights")
    axes.set_ylabel("test accuracy after compression + BN re-estimation")
    axes.set_title("acc@compr. (no training)")
    axes.grid(True, alpha=0.3)
    figure.legend(loc="outside right center", fontsize=7)
    return _save(figure, path)


def write_report(root: Path, out: Path) -> list[Path]:
    """``tables.md`` and the figures from ``root``'s records (see the module docstring)."""
    records_dir = root / "records"
    if not records_dir.is_dir() and not (root / "grid.csv").is_file():
        raise FileNotFoundError(
            f"{root}: no records/ folder nor grid.csv (not a study records folder)"
        )
    rows = gather(read_records(records_dir)) if records_dir.is_dir() else []
    grid = read_grid(root)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path | None] = [atomic.write_text(out / "tables.md", tables_markdown(rows, grid))]
    for hw in HW_PRESETS:
        written.append(accuracy_cost_figure(rows, hw, out / f"decisive_acc_vs_cycles_{hw}.png"))
    written.append(grid_figure(grid, out / "decisive_acc_at_compression.png"))
    return [path for path in written if path is not None]
