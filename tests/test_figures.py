"""The one figure module: palette shared with W&B, error bars only with >= 2 seeds, labels that
do not overlap, no global matplotlib backend."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from imcompress.reporting import figures
from imcompress.sweep.dashboard import METHOD_COLOURS as WANDB_COLOURS


def test_one_palette_for_matplotlib_and_wandb() -> None:
    assert WANDB_COLOURS == figures.METHOD_COLOURS
    colours = figures.method_colours(["lr", "LR", "planned GLR (imc64)", "GLR-2", "glr", "other"])
    assert colours["lr"] == colours["LR"] == figures.METHOD_COLOURS["lr"]  # LR is orange
    assert colours["GLR-2"] == colours["glr"]
    assert colours["planned GLR (imc64)"] == figures.LABEL_COLOURS["planned GLR"]
    assert colours["other"] not in figures.METHOD_COLOURS.values()
    variants = figures.method_colours(
        ["GLR-4 (svd)", "GLR-4 (whitened)", "unstructured, activation", "dense",
         "dense, fine-tuned", "planned GLR (whitened) (imc64)",
         "planned GLR (whitened) + pattern, activation (imc64)"]
    )  # fmt: skip
    assert variants["GLR-4 (svd)"] == figures.LABEL_COLOURS["GLR-4"]  # a family's own colour
    assert variants["unstructured, activation"] == figures.METHOD_COLOURS["prune_unstructured"]
    assert variants["planned GLR (whitened) (imc64)"] == figures.LABEL_COLOURS["planned GLR"]
    assert len(set(variants.values())) == len(variants)  # no two variants share a colour


def test_error_bars_and_caption_only_with_two_or_more_seeds() -> None:
    assert figures.error_bars([0.1, 0.2], [1, 1]) is None
    assert figures.error_bars([0.1, 0.2], [3, 1]) == [0.1, 0.0]
    assert figures.error_caption([1, 1]) == "one seed per point: no error bars"
    assert figures.error_caption([3, 3]) == "error bars: std over 3 seeds"
    assert figures.error_caption([2, 3, 1]) == (
        "error bars: std over 2-3 seeds (single-seed points have none)"
    )


@dataclass
class Point:
    x: float
    y: float
    y_std: float
    label: str


def test_crowded_labels_never_overlap() -> None:
    figure = figures.new_figure(4, 3)
    axes = figure.subplots()
    points = [Point(1 + 0.01 * i, 0.9 + 0.001 * i, 0.0, f"k0.{i:02d} g=2") for i in range(12)]
    axes.plot([p.x for p in points] + [3.0], [p.y for p in points] + [0.5], "o")  # crowd them
    figure.canvas.draw()
    placed = figures.place_labels(figure, axes, points)
    renderer = figure.canvas.get_renderer()
    boxes = [text.get_window_extent(renderer) for text in placed]
    assert 0 < len(placed) < len(points)  # crowded: some labels are left off
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])


DRAW_ALL = """
import sys
from pathlib import Path
import matplotlib
matplotlib.use("svg")
from imcompress.studies.analog import plot_drop
from imcompress.planner.cost_frontier import HW_PRESETS, plot_model

out = Path(sys.argv[1])
points = [
    {"model": "m", "hw": hw, "method": method, "params": params, "cycles": 10 * params,
     "energy_uj": params}
    for hw in HW_PRESETS
    for method, params in (("dense", 1.0), ("LR", 0.5), ("LR", 0.25), ("channel", 0.5))
]
plot_model(points, "m", out / "frontier.png")
rows = [{"method": "GLR-2", "kept": 0.5, "noisy_drop": 0.01, "noisy_std": 0.002}]
plot_drop(rows, ["noisy"], out / "drop.png")
print(matplotlib.get_backend())
"""


def test_figure_functions_leave_the_global_backend_alone(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", DRAW_ALL, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "svg"  # nobody switched it to Agg
    assert (tmp_path / "frontier.png").stat().st_size > 0
    assert (tmp_path / "drop.png").stat().st_size > 0


def test_cost_frontier_gains_are_a_text_table() -> None:
    from imcompress.planner.cost_frontier import HW_PRESETS, PRUNING, gains_table

    rows = [
        {"model": "m", "hw": hw, "pruning": method, "weights": 0.5, "cycles_gain": 1.5,
         "energy_uj_gain": float("nan")}
        for hw in HW_PRESETS
        for method in PRUNING
    ]  # fmt: skip
    table = gains_table(rows, 0.5)
    assert [c.name for c in table.columns] == ["model", "array", *PRUNING]
    markdown = table.render("md")
    assert "| m | imc64 | 1.50x / - |" in markdown and markdown.startswith("**Weights = 0.5")
    assert table.render("csv").splitlines()[1].startswith("m,imc64,1.50x / -")
