"""Accuracy-vs-cost PNGs of a sweep: one panel per crossbar mapping, one colour per method.

Files in the sweep folder, for ``x_axis="cost"`` (default): ``acc_vs_cycles.png`` and
``acc_vs_energy.png``; for ``x_axis="speedup"``: ``acc_vs_speedup.png`` (speedup against the dense
model mapped with im2col, higher is better) and ``acc_vs_energy_ratio.png`` (energy over the
dense model's on im2col). Jobs that differ only in their seed are one point: the mean, with the
standard deviation over seeds as error bars. The dense model is a reference: a horizontal line at
its mean accuracy (jobs with ``compression=none``) and a vertical line at its im2col cost (or at
1 on the ratio axes). The Pareto front (cheaper or faster, and more accurate) is a dashed step
line with ringed points. Labels are the overrides that vary, placed where they overlap no other
label. Uses matplotlib's Agg canvas (no display needed).
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imcompress.sweep.aggregate import COST_PREFIX, cost_mappings, number, varying_overrides
from imcompress.sweep.pareto import pareto_front

__all__ = ["PlotResult", "Quantity", "accuracy_figure", "cost_mappings", "point_labels"]

DENSE_METHODS = ("none", "")
BASELINE = "dense_im2col"
_SEED = re.compile(r"^(\+*seed)=")


@dataclass(frozen=True)
class Quantity:
    """One x axis: which total it reads, how it is named, and which direction is better."""

    key: str  # hw/<mapping>/<key>
    filename: str
    label: str
    higher_is_better: bool = False
    ratio: bool = False  # a ratio to the dense im2col model (the reference line sits at 1)


QUANTITIES: dict[str, tuple[Quantity, ...]] = {
    "cost": (
        Quantity("cycles", "acc_vs_cycles.png", "cycles"),
        Quantity("energy_uj", "acc_vs_energy.png", "energy [µJ]"),
    ),
    "speedup": (
        Quantity(
            "speedup_vs_im2col",
            "acc_vs_speedup.png",
            "speedup (dense im2col = 1)",
            higher_is_better=True,
            ratio=True,
        ),
        Quantity(
            "energy_ratio_vs_im2col",
            "acc_vs_energy_ratio.png",
            "energy ratio (dense im2col = 1)",
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
    from matplotlib import colormaps

    palette = colormaps["tab10"]
    methods = sorted({_method(row) for row in rows})
    return {method: palette(index % 10) for index, method in enumerate(methods)}


def _dense_accuracy(rows: Sequence[dict[str, Any]], accuracy: str) -> tuple[float, int] | None:
    values = [
        float(row[accuracy])
        for row in rows
        if str(row.get("compression") or "none") in DENSE_METHODS
        and number(row.get(accuracy)) is not None
    ]
    return (statistics.fmean(values), len(values)) if values else None


def _dense_x(rows: Sequence[dict[str, Any]], quantity: Quantity) -> float | None:
    if quantity.ratio:
        return 1.0
    values = [
        v
        for row in rows
        if (v := number(row.get(f"{COST_PREFIX}{BASELINE}/{quantity.key}"))) is not None
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
            axes.errorbar(
                [p.x for p in chosen],
                [p.y for p in chosen],
                xerr=[p.x_std for p in chosen] if any(p.x_std for p in chosen) else None,
                yerr=[p.y_std for p in chosen],
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
    front_x = [points[i].x for i in front]
    front_y = [points[i].y for i in front]
    axes.step(
        front_x,
        front_y,
        where="post",  # front ordered best-x first: the corners are attained points' (x, y)
        linestyle="--",
        color="black",
        linewidth=1,
        label="Pareto front",
        zorder=2,
    )
    axes.scatter(
        front_x, front_y, s=140, facecolors="none", edgecolors="black", linewidths=1.2, zorder=4
    )
    dense_acc = _dense_accuracy(rows, accuracy)
    if dense_acc is not None:
        axes.axhline(
            dense_acc[0],
            color="grey",
            linestyle=":",
            linewidth=1.2,
            label=f"dense accuracy (mean of {dense_acc[1]})",
            zorder=1,
        )
    dense_x = _dense_x(rows, quantity)
    if dense_x is not None:
        axes.axvline(
            dense_x,
            color="grey",
            linestyle="-.",
            linewidth=1.0,
            label="dense model on im2col",
            zorder=1,
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


# Offsets (points) tried for a label, nearest first: right, above, left, below, then diagonals.
_OFFSETS = [
    (6, 4), (6, -10), (-6, 4), (-6, -10), (0, 10), (0, -14), (10, 14), (10, -18),
    (-10, 14), (-10, -18), (14, 0), (-14, 0), (0, 22), (0, -26), (18, 24), (-18, -28),
]  # fmt: skip


def place_labels(
    figure: Any, axes: Any, points: Sequence[_Point], fontsize: float = 7
) -> list[Any]:
    """Annotate every point with its label where it overlaps no label placed before.

    Tries the offsets of ``_OFFSETS`` in turn and keeps the first one whose text box (measured with
    the figure's renderer) overlaps no placed label, no marker and no error bar; a label with no
    free spot is left off (its point still shows, and its method is in the legend). Returns the
    placed annotations.
    """
    from matplotlib.transforms import Bbox

    renderer = figure.canvas.get_renderer()
    placed: list[Any] = []
    boxes: list[Any] = []
    obstacles = []
    for point in points:  # the marker and the vertical error bar of every point
        low = axes.transData.transform((point.x, point.y - point.y_std))
        high = axes.transData.transform((point.x, point.y + point.y_std))
        obstacles.append(
            Bbox([[low[0] - 5, min(low[1], high[1]) - 5], [low[0] + 5, max(low[1], high[1]) + 5]])
        )
    for point in sorted(points, key=lambda p: (-p.y, p.x)):
        if not point.label:
            continue
        for dx, dy in _OFFSETS:
            text = axes.annotate(
                point.label,
                (point.x, point.y),
                textcoords="offset points",
                xytext=(dx, dy),
                ha="left" if dx >= 0 else "right",
                fontsize=fontsize,
                zorder=5,
            )
            box = text.get_window_extent(renderer).expanded(1.04, 1.1)
            inside = axes.get_window_extent(renderer)
            clear = not any(box.overlaps(other) for other in boxes + obstacles)
            within = (
                inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 <= inside.y1
            )
            if clear and within:
                placed.append(text)
                boxes.append(box)
                break
            text.remove()
    return placed


def accuracy_figure(
    rows: Sequence[dict[str, Any]], accuracy: str, quantity: Quantity
) -> tuple[Any, list[Any]] | None:
    """The figure for one x quantity (one panel per mapping) and its panels; None without data."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    completed = [row for row in rows if row.get("status", "completed") == "completed"]
    mappings = cost_mappings(completed, quantity.key)
    if not mappings:
        return None
    colours = _method_colours(completed)
    figure = Figure(figsize=(4.6 * len(mappings), 4.2), layout="constrained")
    FigureCanvasAgg(figure)
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
    handles, labels = panels[0].get_legend_handles_labels()
    if handles:
        figure.legend(
            handles, labels, loc="outside lower center", ncols=min(len(labels), 5), fontsize=8
        )
    figure.suptitle(
        f"{accuracy} vs {quantity.label} ({max(counts)} jobs; error bars: std over seeds)"
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
        path = out_dir / quantity.filename
        drawn[0].savefig(path, dpi=110)
        files.append(path)
    return PlotResult(files, messages)
