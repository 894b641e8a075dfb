"""The one figure module: canvas, palette, Pareto overlay, dense reference, error bars, labels.

Every PNG of the project (sweep plots, trained frontier, cost-only frontier, analog study) is drawn
through these helpers, so that they agree:

* **Backend chosen once, nowhere globally**: :func:`new_figure` gives a ``Figure`` on its own Agg
  canvas (matplotlib's object API); nothing calls ``matplotlib.use`` or ``pyplot``, so importing
  a figure module never changes another program's backend.
* **One palette** (:data:`METHOD_COLOURS`), the one the W&B workspace uses too
  (:mod:`imcompress.sweep.dashboard`, docs/wandb.md): matplotlib's tab10 colours by method
  (dense green, LR orange, GLR blue, ...). Study labels (``LR``, ``GLR-4``, ``planned GLR
  (imc64)``) have fixed colours in :data:`LABEL_COLOURS`; other labels take
  :data:`EXTRA_COLOURS` in sorted order.
* **Error bars only where a point has >= 2 seeds**, and a title that says what they are
  (:func:`error_caption`).
* **Labels never overlap**: :func:`place_labels` tries offsets around each point and leaves a
  label off rather than overlap another label, a marker or an error bar.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

# One colour per compression method (matplotlib's tab10), shared with the W&B workspace.
METHOD_COLOURS: dict[str, str] = {
    "none": "#2ca02c",  # green: the dense model (a label "dense" takes it too)
    "lr": "#ff7f0e",  # orange
    "glr": "#1f77b4",  # blue
    "prune_unstructured": "#8c564b",  # brown
    "prune_channel": "#d62728",  # red
    "prune_pattern": "#9467bd",  # purple
}
# Study labels (imcompress.reporting.vocabulary.FAMILIES, planned_label): a family takes its method's
# colour; a second family of the same method, and planned points, take the rest of tab10.
LABEL_COLOURS: dict[str, str] = {
    "dense": METHOD_COLOURS["none"],
    "LR": METHOD_COLOURS["lr"],
    "GLR-2": METHOD_COLOURS["glr"],
    "GLR-4": "#17becf",  # cyan
    "unstructured": METHOD_COLOURS["prune_unstructured"],
    "channel": METHOD_COLOURS["prune_channel"],
    "pattern (array)": METHOD_COLOURS["prune_pattern"],
    "pattern (kernel)": "#e377c2",  # pink
    "planned GLR": "#bcbd22",  # olive
    "planned pattern": "#7f7f7f",  # grey
}
# Colours for any other label, in this order.
EXTRA_COLOURS = ("#000080", "#000000", "#ff1493", "#8b008b", "#006400", "#b8860b")
REFERENCE_COLOUR = "grey"
DPI = 110


class LabelledPoint(Protocol):
    """What :func:`place_labels` reads of a point."""

    x: float
    y: float
    y_std: float
    label: str


def new_figure(width: float, height: float) -> Any:
    """A ``Figure`` with its own Agg canvas and constrained layout (no global backend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save(figure: Any, path: Path) -> Path:
    """Write ``figure`` as a PNG (the folder is created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI)
    return path


def method_colours(labels: Iterable[str]) -> dict[str, str]:
    """A colour per label: a method name's (:data:`METHOD_COLOURS`) or a study label's
    (:data:`LABEL_COLOURS`, ``planned GLR (imc64)`` by its prefix), shared by spellings of one
    method (``lr`` and ``LR``); a variant of a family (``GLR-4 (whitened)``, ``unstructured,
    activation``) takes its family's colour while no other label has it, so two variants in
    one figure never share a colour; any other label the next of :data:`EXTRA_COLOURS`."""
    colours: dict[str, str] = {}
    extra = 0
    for label in sorted(set(labels)):
        known = METHOD_COLOURS.get(label) or LABEL_COLOURS.get(label.split(" (imc")[0])
        if known is None:
            family = _family_colour(label)
            known = family if family not in colours.values() else None
        if known is None:
            known = EXTRA_COLOURS[extra % len(EXTRA_COLOURS)]
            extra += 1
        colours[label] = known
    return colours


def _family_colour(label: str) -> str | None:
    """The colour of the family a decorated label belongs to (its text before ``" (imc"``,
    ``", "`` or ``" ("``, tried in that order), or None."""
    for cut in (" (imc", ", ", " ("):
        family = LABEL_COLOURS.get(label.split(cut)[0])
        if family is not None:
            return family
    return None


def error_caption(seeds: Iterable[int]) -> str:
    """What the error bars are: ``error bars: std over 2-3 seeds``, or that there are none."""
    counts = [n for n in seeds if n >= 1]
    multi = sorted({n for n in counts if n >= 2})
    if not multi:
        return "one seed per point: no error bars"
    span = f"{multi[0]}" if len(multi) == 1 else f"{multi[0]}-{multi[-1]}"
    single = " (single-seed points have none)" if any(n == 1 for n in counts) else ""
    return f"error bars: std over {span} seeds{single}"


def error_bars(stds: Sequence[float], seeds: Sequence[int]) -> list[float] | None:
    """The ``yerr`` of a series: the std where a point has >= 2 seeds, else 0; None if none has."""
    if not any(n >= 2 for n in seeds):
        return None
    return [std if n >= 2 else 0.0 for std, n in zip(stds, seeds, strict=True)]


def draw_pareto(axes: Any, front_x: Sequence[float], front_y: Sequence[float]) -> None:
    """The Pareto front: a dashed step line (ordered best x first) through ringed points."""
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


def draw_dense_reference(
    axes: Any, accuracy: float | None, cost: float | None, cost_label: str, accuracy_label: str = ""
) -> None:
    """The dense model: a dotted line at its accuracy, a dash-dotted one at its cost on the
    same mapping and array as the points (``cost_label`` says which, e.g. "dense on sdk")."""
    if accuracy is not None:
        axes.axhline(
            accuracy,
            color=REFERENCE_COLOUR,
            linestyle=":",
            linewidth=1.2,
            label=accuracy_label or f"dense accuracy {accuracy:.4f}",
            zorder=1,
        )
    if cost is not None:
        axes.axvline(
            cost, color=REFERENCE_COLOUR, linestyle="-.", linewidth=1.0, label=cost_label, zorder=1
        )


def legend_below(figure: Any, axes: Any, columns: int = 5) -> None:
    """One legend under the panels, from ``axes``' labelled artists (duplicates dropped)."""
    handles, labels = axes.get_legend_handles_labels()
    unique: Mapping[str, Any] = dict(zip(labels, handles, strict=True))
    if unique:
        figure.legend(
            list(unique.values()),
            list(unique),
            loc="outside lower center",
            ncols=min(len(unique), columns),
            fontsize=8,
        )


# Offsets (points) tried for a label, nearest first: right, above, left, below, then diagonals.
_OFFSETS = [
    (6, 4), (6, -10), (-6, 4), (-6, -10), (0, 10), (0, -14), (10, 14), (10, -18),
    (-10, 14), (-10, -18), (14, 0), (-14, 0), (0, 22), (0, -26), (18, 24), (-18, -28),
]  # fmt: skip


def place_labels(
    figure: Any, axes: Any, points: Sequence[LabelledPoint], fontsize: float = 7
) -> list[Any]:
    """Annotate every point with its label where it overlaps no label placed before.

    Tries the offsets of ``_OFFSETS`` in turn and keeps the first one whose text box (measured with
    the figure's renderer, after ``figure.canvas.draw()``) overlaps no placed label, no marker and
    no error bar and stays inside the axes; a label with no free spot is left off (its point still
    shows, and its method is in the legend). Returns the placed annotations.
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
    inside = axes.get_window_extent(renderer)
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
            clear = not any(box.overlaps(other) for other in boxes + obstacles)
            within = inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0
            if clear and within and box.y1 <= inside.y1:
                placed.append(text)
                boxes.append(box)
                break
            text.remove()
    return placed
