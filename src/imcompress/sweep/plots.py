"""Accuracy-vs-cost PNGs of a sweep: one panel per crossbar mapping, one colour per method.

Files: ``acc_vs_cycles.png`` and ``acc_vs_energy.png`` in the sweep folder. Each panel plots the
completed jobs that have both the accuracy and that mapping's cost, marks the Pareto front (lower
cost, higher accuracy) with a dashed step line and ringed points, and labels every point with the
overrides that differ between jobs. Uses matplotlib's Agg canvas (no display needed).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imcompress.sweep.aggregate import COST_PREFIX
from imcompress.sweep.pareto import pareto_front

QUANTITIES = {
    "cycles": ("acc_vs_cycles.png", "cycles"),
    "energy_uj": ("acc_vs_energy.png", "energy [µJ]"),
}
MAPPING_ORDER = ("im2col", "sdk", "vwsdk")
_COST_KEY = re.compile(
    rf"^{re.escape(COST_PREFIX)}(?P<mapping>[^/]+)/(?P<quantity>cycles|energy_uj)$"
)


@dataclass
class PlotResult:
    """What :func:`write_plots` produced, and why anything was skipped."""

    files: list[Path]
    messages: list[str]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def cost_mappings(rows: Sequence[dict[str, Any]], quantity: str) -> list[str]:
    """Mappings with a ``hw/<mapping>/<quantity>`` value in any row (dense and naive references excluded)."""
    found = {
        match["mapping"]
        for row in rows
        for key, value in row.items()
        if (match := _COST_KEY.match(key))
        and match["quantity"] == quantity
        and _number(value) is not None
    }
    found = {
        name for name in found if not name.endswith("_naive") and not name.startswith("dense_")
    }
    return sorted(
        found,
        key=lambda name: (
            MAPPING_ORDER.index(name) if name in MAPPING_ORDER else len(MAPPING_ORDER),
            name,
        ),
    )


def point_labels(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Short labels: the ``key=value`` overrides that are not the same in every row."""
    split = [row.get("overrides", "").split() for row in rows]
    common = set.intersection(*(set(items) for items in split)) if split else set()
    return [" ".join(item for item in items if item not in common)[:40] for items in split]


def _method_colours(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    from matplotlib import colormaps

    palette = colormaps["tab10"]
    methods = sorted({str(row.get("compression") or "none") for row in rows})
    return {method: palette(index % 10) for index, method in enumerate(methods)}


def _draw_panel(
    axes: Any, rows: Sequence[dict[str, Any]], cost_key: str, accuracy: str, colours: dict[str, Any]
) -> int:
    points: list[tuple[dict[str, Any], float, float]] = []
    for row in rows:
        cost, acc = _number(row.get(cost_key)), _number(row.get(accuracy))
        if cost is not None and acc is not None:
            points.append((row, cost, acc))
    if not points:
        axes.text(0.5, 0.5, "no data", ha="center", va="center", transform=axes.transAxes)
        return 0
    labels = point_labels([row for row, _, _ in points])
    for method in colours:
        chosen = [
            (cost, acc)
            for row, cost, acc in points
            if str(row.get("compression") or "none") == method
        ]
        if chosen:
            axes.scatter(
                [c for c, _ in chosen],
                [a for _, a in chosen],
                color=colours[method],
                label=method,
                s=36,
                zorder=3,
            )
    for (_, cost, acc), label in zip(points, labels, strict=True):
        if label:
            axes.annotate(label, (cost, acc), textcoords="offset points", xytext=(4, 4), fontsize=7)
    front = pareto_front([cost for _, cost, _ in points], [acc for _, _, acc in points])
    front_x = [points[i][1] for i in front]
    front_y = [points[i][2] for i in front]
    axes.step(
        front_x,
        front_y,
        where="post",
        linestyle="--",
        color="black",
        linewidth=1,
        label="Pareto front",
        zorder=2,
    )
    axes.scatter(
        front_x, front_y, s=140, facecolors="none", edgecolors="black", linewidths=1.2, zorder=4
    )
    costs = [cost for _, cost, _ in points]
    if min(costs) > 0 and max(costs) / min(costs) > 100:
        axes.set_xscale("log")
    else:
        from matplotlib.ticker import MaxNLocator

        axes.xaxis.set_major_locator(MaxNLocator(nbins=4))
        axes.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4))
    axes.grid(True, alpha=0.3)
    return len(points)


def write_plots(rows: Sequence[dict[str, Any]], accuracy: str | None, out_dir: Path) -> PlotResult:
    """Write the accuracy-vs-cost PNGs for every cost quantity present; say what was skipped."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    completed = [row for row in rows if row.get("status") == "completed"]
    files: list[Path] = []
    messages: list[str] = []
    if accuracy is None:
        messages.append(
            "no completed job reports an accuracy (test/acc, val/acc_best or val/acc): plots skipped"
        )
        return PlotResult(files, messages)
    colours = _method_colours(completed)
    for quantity, (filename, axis_label) in QUANTITIES.items():
        mappings = cost_mappings(completed, quantity)
        if not mappings:
            messages.append(
                f"no crossbar {quantity} totals in the job summaries (cost estimator not configured: "
                f"run with an hw=<preset> and the crossbar cost callback): {filename} skipped"
            )
            continue
        figure = Figure(figsize=(4.2 * len(mappings), 3.8), layout="constrained")
        FigureCanvasAgg(figure)
        panels = figure.subplots(1, len(mappings), sharey=True, squeeze=False)[0]
        plotted = []
        for axes, mapping in zip(panels, mappings, strict=True):
            plotted.append(
                _draw_panel(
                    axes, completed, f"{COST_PREFIX}{mapping}/{quantity}", accuracy, colours
                )
            )
            axes.set_title(mapping)
            axes.set_xlabel(f"{mapping} {axis_label}")
        panels[0].set_ylabel(accuracy)
        handles, labels = panels[0].get_legend_handles_labels()
        if handles:
            figure.legend(
                handles, labels, loc="outside lower center", ncols=min(len(labels), 6), fontsize=8
            )
        figure.suptitle(f"{accuracy} vs {axis_label} ({max(plotted)} jobs)")
        path = out_dir / filename
        figure.savefig(path, dpi=110)
        files.append(path)
    return PlotResult(files, messages)
