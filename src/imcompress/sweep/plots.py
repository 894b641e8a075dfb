"""Accuracy-vs-cost PNGs of a sweep: one panel per crossbar mapping, one colour per method.

Files in the sweep folder, for ``x_axis="cost"`` (default): ``acc_vs_cycles.png`` and
``acc_vs_energy.png``; for ``x_axis="speedup"``: ``acc_vs_speedup.png`` (speedup against the dense
model on the same mapping and array, higher is better) and ``acc_vs_energy_ratio.png`` (energy
over that dense model's). Jobs that differ only in their seed are one point: the mean, with the
standard deviation over seeds as error bars where a point has >= 2 seeds (the title says so). The
dense model is the reference: a horizontal line at its mean accuracy (jobs with
``compression=none``) and a vertical line at its cost on the panel's mapping (at 1 on the ratio
axes). The Pareto front (cheaper or faster, and more accurate) is a dashed step line with ringed
points. Labels are the overrides that vary, placed where they overlap no other label. Drawn with
:mod:`imcompress.reporting.figures` (palette, canvas, labels shared with the other figures).
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imcompress.reporting.figures import (
    draw_dense_reference,
    draw_pareto,
    error_bars,
    error_caption,
    legend_below,
    method_colours,
    new_figure,
    place_labels,
    save,
)
from imcompress.sweep.aggregate import COST_PREFIX, cost_mappings, number, varying_overrides
from imcompress.sweep.pareto import pareto_front

__all__ = [
    "PlotResult",
    "Quantity",
    "accuracy_figure",
    "cost_mappings",
    "place_labels",
    "point_labels",
]

DENSE_METHODS = ("none", "")
_SEED = re.compile(r"^(\+*seed)=")


@dataclass(frozen=True)
class Quantity:
    """One x axis: which total it reads, how it is named, and which direction is better."""

    key: str  # hw/<mapping>/<key>
    filename: str
    label: str
    higher_is_better: bool = False
    ratio: bool = False  # a ratio to the dense model on the same mapping (reference line at 1)


QUANTITIES: dict[str, tuple[Quantity, ...]] = {
    "cost": (
        Quantity("cycles", "acc_vs_cycles.png", "cycles"),
        Quantity("energy_uj", "acc_vs_energy.png", "energy [µJ]"),
    ),
    "speedup": (
        Quantity(
            "speedup_vs_dense",
            "acc_vs_speedup.png",
            "speedup (dense on the same mapping = 1)",
            higher_is_better=True,
            ratio=True,
        ),
        Quantity(
            "energy_ratio_vs_dense",
            "acc_vs_energy_ratio.png",
            "energy ratio (dense on the same mapping = 1)",
            ratio=True,
        ),
    ),
}
X_AXES = tuple(QUANTITIES)


@dataclass
class PlotResult:
    """What :func:`write_plots` produced, and why anything was skipped."""

    files: list[Path]
    messages: list[str]


@dataclass
class _Point:
    """One method+settings group: mean and standard deviation over its seeds."""

    method: str
    label: str
    x: float
    y: float
    x_std: float
    y_std: float
    seeds: int


def point_labels(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Short labels: the ``key=value`` overrides that are not the same in every row."""
    return varying_overrides(rows)


def _short(label: str) -> str:
    """``experiment=study/fmnist_glr2 compression=glr group=2`` -> ``fmnist_glr2 group=2``.

    The method is dropped (the colour shows it) and config paths are cut to their last part.
    """
    items = []
    for item in label.split():
        key, _, value = item.partition("=")
        key = key.lstrip("+~")
        if key == "compression":
            continue
        items.append(value.rsplit("/", 1)[-1] if key == "experiment" else item)
    return " ".join(items)


def _method(row: dict[str, Any]) -> str:
    return str(row.get("compression") or "none")


def _group_points(rows: Sequence[dict[str, Any]], x_key: str, accuracy: str) -> list[_Point]:
    """Rows with both values, grouped by method and every varying override except the seed."""
    usable = [
        row
        for row in rows
        if number(row.get(x_key)) is not None and number(row.get(accuracy)) is not None
    ]
    without_seed = [
        {
            **row,
            "overrides": " ".join(
                i for i in str(row.get("overrides") or "").split() if not _SEED.match(i)
            ),
        }
        for row in usable
    ]
    labels = varying_overrides(without_seed, limit=60)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row, label in zip(usable, labels, strict=True):
        groups.setdefault((_method(row), label), []).append(row)
    points = []
    for (method, label), members in groups.items():
        xs = [float(row[x_key]) for row in members]
        ys = [float(row[accuracy]) for row in members]
        points.append(
            _Point(
                method,
                _short(label),
                statistics.fmean(xs),
                statistics.fmean(ys),
                statistics.stdev(xs) if len(xs) > 1 else 0.0,
                statistics.stdev(ys) if len(ys) > 1 else 0.0,
                len(members),
            )
        )
    return points


def _method_colours(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return method_colours(_method(row) for row in rows)


def _dense_accuracy(rows: Sequence[dict[str, Any]], accuracy: str) -> tuple[float, int] | None:
    values = [
        float(row[accuracy])
        for row in rows
        if str(row.get("compression") or "none") in DENSE_METHODS
        and number(row.get(accuracy)) is not None
    ]
    return (statistics.fmean(values), len(values)) if values else None


def _dense_x(rows: Sequence[dict[str, Any]], mapping: str, quantity: Quantity) -> float | None:
    """The dense model's value on ``mapping`` (the same array): 1 on the ratio axes."""
    if quantity.ratio:
        return 1.0
    values = [
        v
        for row in rows
        if (v := number(row.get(f"{COST_PREFIX}dense_{mapping}/{quantity.key}"))) is not None
    ]
    return statistics.median(values) if values else None


def _draw_panel(
    axes: Any,
    rows: Sequence[dict[str, Any]],
    mapping: str,
    quantity: Quantity,
    accuracy: str,
    colours: dict[str, Any],
) -> list[_Point]:
    points = _group_points(rows, f"{COST_PREFIX}{mapping}/{quantity.key}", accuracy)
    if not points:
        axes.text(0.5, 0.5, "no data", ha="center", va="center", transform=axes.transAxes)
        return points
    for method, colour in colours.items():
        chosen = [p for p in points if p.method == method]
        if chosen:
            seeds = [p.seeds for p in chosen]
            axes.errorbar(
                [p.x for p in chosen],
                [p.y for p in chosen],
                xerr=error_bars([p.x_std for p in chosen], seeds)
                if any(p.x_std for p in chosen)
                else None,
                yerr=error_bars([p.y_std for p in chosen], seeds),
                fmt="o",
                color=colour,
                ecolor=colour,
                elinewidth=1,
                capsize=3,
                markersize=6,
                label=method,
                zorder=3,
            )
    sign = -1.0 if quantity.higher_is_better else 1.0
    front = pareto_front([sign * p.x for p in points], [p.y for p in points])
    draw_pareto(axes, [points[i].x for i in front], [points[i].y for i in front])
    dense_acc = _dense_accuracy(rows, accuracy)
    dense_x = _dense_x(rows, mapping, quantity)
    draw_dense_reference(
        axes,
        dense_acc[0] if dense_acc else None,
        dense_x,
        f"dense model on {mapping}",
        f"dense accuracy (mean of {dense_acc[1]})" if dense_acc else "",
    )
    xs = [p.x for p in points] + ([dense_x] if dense_x is not None else [])
    if min(xs) > 0 and max(xs) / min(xs) > 100:
        axes.set_xscale("log")
    else:
        from matplotlib.ticker import MaxNLocator

        axes.xaxis.set_major_locator(MaxNLocator(nbins=4))
        axes.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4))
    axes.grid(True, alpha=0.3)
    return points


def accuracy_figure(
    rows: Sequence[dict[str, Any]], accuracy: str, quantity: Quantity
) -> tuple[Any, list[Any]] | None:
    """The figure for one x quantity (one panel per mapping) and its panels; None without data."""
    completed = [row for row in rows if row.get("status", "completed") == "completed"]
    mappings = cost_mappings(completed, quantity.key)
    if not mappings:
        return None
    colours = _method_colours(completed)
    figure = new_figure(4.6 * len(mappings), 4.2)
    panels = list(figure.subplots(1, len(mappings), sharey=True, squeeze=False)[0])
    counts = []
    drawn = []
    for axes, mapping in zip(panels, mappings, strict=True):
        points = _draw_panel(axes, completed, mapping, quantity, accuracy, colours)
        drawn.append(points)
        counts.append(sum(p.seeds for p in points))
        axes.set_title(mapping)
        axes.set_xlabel(f"{mapping} {quantity.label}")
    panels[0].set_ylabel(accuracy)
    legend_below(figure, panels[0])
    presets = sorted({str(row["hw"]) for row in completed if row.get("hw")})
    on = f" on {', '.join(presets)}" if presets else ""
    caption = error_caption(p.seeds for points in drawn for p in points)
    figure.suptitle(
        f"{accuracy} vs {quantity.label}{on} ({max(counts)} jobs; {caption})", fontsize=10
    )
    figure.canvas.draw()  # final layout, so that label boxes are measured where they end up
    for axes, points in zip(panels, drawn, strict=True):
        place_labels(figure, axes, points)
    return figure, panels


def write_plots(
    rows: Sequence[dict[str, Any]],
    accuracy: str | None,
    out_dir: Path,
    x_axis: str = "cost",
) -> PlotResult:
    """Write the accuracy PNGs for every quantity of ``x_axis`` present; say what was skipped."""
    if x_axis not in QUANTITIES:
        raise ValueError(f"x_axis={x_axis!r}, valid: {list(QUANTITIES)}")
    completed = [row for row in rows if row.get("status") == "completed"]
    files: list[Path] = []
    messages: list[str] = []
    if accuracy is None:
        messages.append(
            "no completed job reports an accuracy (test/acc, val/acc_best or val/acc): plots skipped"
        )
        return PlotResult(files, messages)
    for quantity in QUANTITIES[x_axis]:
        drawn = accuracy_figure(completed, accuracy, quantity)
        if drawn is None:
            messages.append(
                f"no crossbar {quantity.key} totals in the job summaries (cost estimator not "
                f"configured: run with an hw=<preset> and the crossbar cost callback): "
                f"{quantity.filename} skipped"
            )
            continue
        files.append(save(drawn[0], out_dir / quantity.filename))
    return PlotResult(files, messages)
