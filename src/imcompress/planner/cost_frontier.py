"""Cost-only frontiers: cycles and energy against parameters, uniform LR/GLR vs pruning.

No training: low-rank costs depend only on shapes; pruning masks come from each method's own
criterion on the models' *initial* (random, Kaiming) weights, so channel and pattern choices
are those of an untrained network (unstructured sparsity barely frees crossbar rows either
way). For every model, array size (the ``imc64..imc512`` presets) and method, every point is a
uniform setting of all selected layers: LR (group 1) and GLR (2 and 4 input groups) at a range
of rank ratios, unstructured / channel / kernel-wise pattern / array-wise pattern pruning at a
range of sparsities. Costs are whole-model SDK costs from the estimator; the x axis is the
weights left in the selected layers as a fraction of dense.

python -m imcompress.planner.cost_frontier                       # all models (minutes)
python -m imcompress.planner.cost_frontier --models wrn16_4 --figures /tmp/f --out /tmp/f
"""

from __future__ import annotations

import argparse
import csv
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf
from torch import nn

from imcompress.compression.api import apply_compression
from imcompress.compression.factorization import max_rank
from imcompress.compression.selection import select_layers
from imcompress.crossbar.batch import (
    concat_tables,
    cost_rows,
    lowrank_columns,
    repeat_rows,
    table_from_columns,
)
from imcompress.crossbar.config import HardwareConfig
from imcompress.crossbar.extract import extract_layers
from imcompress.crossbar.layer_table import LayerTable
from imcompress.models.build import build_model
from imcompress.reporting.tables import Column, TableFormat, TextTable

CONF = Path(__file__).resolve().parents[3] / "conf"
MODELS: dict[str, dict[str, Any]] = {
    "wrn16_4": {"cfg": {"_target_": "imcompress.models.WideResNet", "depth": 16, "widen_factor": 4}, "input": (3, 32, 32),
                "classes": 100, "include": [], "exclude": []},
    "resnet18": {"cfg": {"_target_": "imcompress.models.ImageNetResNet18"}, "input": (3, 224, 224),
                 "classes": 1000, "include": [], "exclude": []},
    "vgg16": {"cfg": {"_target_": "imcompress.models.VGG16"}, "input": (3, 224, 224), "classes": 1000,
              "include": ["features.*"], "exclude": ["features.0"]},
}  # fmt: skip
HW_PRESETS = ("imc64", "imc128", "imc256", "imc512")
RANK_RATIOS = (0.8, 0.6, 0.45, 0.35, 0.25, 0.18, 0.125, 0.09, 0.06, 0.04, 0.03, 0.02)
SPARSITIES = (0.3, 0.5, 0.6, 0.7, 0.8, 0.875, 0.9, 0.94, 0.97)
LOWRANK = {"LR": 1, "GLR-2": 2, "GLR-4": 4}
PRUNING: dict[str, dict[str, Any]] = {
    "unstructured": {"method": "prune_unstructured"},
    "channel": {"method": "prune_channel"},
    "pattern (kernel)": {"method": "prune_pattern", "pattern_dim": "kernel"},
    "pattern (array)": {"method": "prune_pattern", "pattern_dim": "input_channel"},
}
PARAM_LEVELS = (0.5, 0.25, 0.125, 0.0625)


def load_hw(name: str) -> HardwareConfig:
    """A preset of conf/hw as a :class:`HardwareConfig`."""
    node = OmegaConf.to_container(OmegaConf.load(CONF / "hw" / f"{name}.yaml"))
    assert isinstance(node, dict)
    node.pop("defaults", None)
    return HardwareConfig.from_cfg(node)


def _costs(table: LayerTable, hws: dict[str, HardwareConfig]) -> dict[str, tuple[float, float]]:
    out = {}
    for name, hw in hws.items():
        rows = cost_rows(table, hw, "sdk")
        out[name] = (float(rows.cycles.sum()), float(rows.energy_uj.sum()))
    return out


def lowrank_points(
    table: LayerTable, targets: list[tuple[str, nn.Conv2d]], hws: dict[str, HardwareConfig]
) -> list[dict[str, Any]]:
    """Uniform LR/GLR points: the layer table with every target replaced by its pair."""
    rows = [table.name.index(name) for name, _ in targets]
    dense_weights = float(table.nonzero_weights[rows].sum())
    points = []
    for label, groups in LOWRANK.items():
        for ratio in RANK_RATIOS:
            ranks = [
                min(limit, max(1, round(ratio * limit)))
                for limit in (max_rank(tuple(c.weight.shape), groups, "in") for _, c in targets)
            ]
            columns = repeat_rows(table, rows)
            pairs = table_from_columns(
                lowrank_columns(columns, np.full(len(rows), groups), np.asarray(ranks))
            )
            parts = []
            for k in range(len(table)):
                parts.append(pairs.select([rows.index(k)]) if k in rows else table.select([k]))
            model_table = concat_tables(parts)
            weights = float(pairs.nonzero_weights.sum()) / dense_weights
            points += _hw_points(label, ratio, weights, _costs(model_table, hws))
    return points


def pruning_points(
    spec: dict[str, Any], seed: int, hws: dict[str, HardwareConfig]
) -> list[dict[str, Any]]:
    """Uniform pruning points: each method's own masks on a fresh model's initial weights."""
    points = []
    for label, options in PRUNING.items():
        model = _build(spec, seed)
        node = {**options, "sparsity": 0.0, "include": spec["include"], "exclude": spec["exclude"]}
        result = apply_compression(model, node)
        assert result.pruner is not None
        names = [name for name, _ in result.pruner.targets]
        for sparsity in SPARSITIES:
            result.pruner.prune_to(sparsity)
            table = extract_layers(model, spec["input"])
            rows = [table.name.index(name) for name in names]
            dense = table.dense().nonzero_weights[rows].sum()
            weights = float(table.nonzero_weights[rows].sum()) / float(dense)
            points += _hw_points(label, sparsity, weights, _costs(table, hws))
    return points


def _hw_points(
    label: str, setting: float, weights: float, costs: dict[str, tuple[float, float]]
) -> list[dict[str, Any]]:
    """One frontier point per hw preset: ``costs`` maps each preset to (cycles, energy_uj)."""
    return [
        {"method": label, "setting": setting, "hw": hw, "params": weights, "cycles": cycles,
         "energy_uj": energy}
        for hw, (cycles, energy) in costs.items()
    ]  # fmt: skip


def _build(spec: dict[str, Any], seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(OmegaConf.create(spec["cfg"]), spec["input"][0], spec["classes"]).eval()


def model_points(name: str, seed: int = 0) -> list[dict[str, Any]]:
    """Every point of one model on every preset, with the dense reference (``method: dense``)."""
    spec = MODELS[name]
    hws = {h: load_hw(h) for h in HW_PRESETS}
    model = _build(spec, seed)
    targets = select_layers(model, spec["include"], spec["exclude"])
    table = extract_layers(model, spec["input"])
    points = [
        {"method": "dense", "setting": 0, "hw": hw, "params": 1.0, "cycles": c, "energy_uj": e}
        for hw, (c, e) in _costs(table, hws).items()
    ]
    points += lowrank_points(table, targets, hws)
    del model
    points += pruning_points(spec, seed, hws)
    for point in points:
        point["model"] = name
    return points


def at_weights(points: list[dict[str, Any]], key: str, level: float) -> float:
    """``key`` of one method's curve at ``level`` of the weights: log-log interpolation between
    its two nearest settings; nan outside the range its settings reach."""
    mine = sorted(points, key=lambda p: p["params"])
    params = np.array([p["params"] for p in mine])
    if not mine or not params[0] - 1e-9 <= level <= params[-1] + 1e-9:
        return float("nan")
    values = np.log([p[key] for p in mine])
    return float(np.exp(np.interp(np.log(level), np.log(params), values)))


def comparison(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per model, preset, pruning method and weight level: best LR/GLR vs the method."""
    rows = []
    for model in dict.fromkeys(p["model"] for p in points):
        for hw in HW_PRESETS:
            here = [p for p in points if p["model"] == model and p["hw"] == hw]
            for method in PRUNING:
                pruned = [p for p in here if p["method"] == method]
                for level in PARAM_LEVELS:
                    row = {"model": model, "hw": hw, "pruning": method, "weights": level}
                    for key in ("cycles", "energy_uj"):
                        ours = np.nanmin(
                            [
                                at_weights([p for p in here if p["method"] == m], key, level)
                                for m in LOWRANK
                            ]
                            + [np.inf]
                        )
                        theirs = at_weights(pruned, key, level)
                        row[f"{key}_lowrank"], row[f"{key}_pruning"] = float(ours), theirs
                        row[f"{key}_gain"] = theirs / ours if np.isfinite(ours) else float("nan")
                    rows.append(row)
    return rows


# Line style per family (marker and dash); colours come from imcompress.reporting.figures' palette.
_STYLES = {"LR": "-o", "GLR-2": "-o", "GLR-4": "-o", "unstructured": "--s", "channel": "--s",
           "pattern (kernel)": "--^", "pattern (array)": "--v"}  # fmt: skip


def plot_model(points: list[dict[str, Any]], model: str, path: Path) -> Path:
    """2 x 4 panels (cycles, energy vs weights per preset), ratios to the dense model on the
    same mapping (SDK) and array. Drawn with :mod:`imcompress.reporting.figures` (one palette)."""
    from imcompress.reporting import figures

    figure = figures.new_figure(4 * len(HW_PRESETS), 7.4)
    axes = figure.subplots(2, len(HW_PRESETS), sharex=True, squeeze=False)
    colours = figures.method_colours(_STYLES)
    for column, hw in enumerate(HW_PRESETS):
        here = [p for p in points if p["model"] == model and p["hw"] == hw]
        dense = next(p for p in here if p["method"] == "dense")
        for row, key in enumerate(("cycles", "energy_uj")):
            ax = axes[row, column]
            for method, style in _STYLES.items():
                mine = sorted((p for p in here if p["method"] == method), key=lambda p: p["params"])
                ax.plot(
                    [p["params"] for p in mine],
                    [p[key] / dense[key] for p in mine],
                    style,
                    color=colours[method],
                    label=method,
                    markersize=3,
                    linewidth=1,
                )
            ax.axhline(1.0, color=figures.REFERENCE_COLOUR, linewidth=0.8, linestyle=":",
                       label="dense model on SDK (same array)")  # fmt: skip
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.grid(True, which="both", alpha=0.3)
            if row == 0:
                ax.set_title(f"{model}, {hw} (SDK)")
            if row == 1:
                ax.set_xlabel("weights left in compressed layers / dense")
            if column == 0:
                ax.set_ylabel(f"{'cycles' if key == 'cycles' else 'energy'} / dense on SDK")
    figure.suptitle("cost-only frontier (no training, one model per setting: no error bars)")
    figures.legend_below(figure, axes[0, 0], columns=8)
    return figures.save(figure, path)


def gains_table(rows: list[dict[str, Any]], level: float) -> TextTable:
    """Gains of the best LR/GLR over each pruning method at one weight level (pruning / ours)."""
    table = TextTable(
        [
            Column("model", str, "l"),
            Column("array", str, "l"),
            *[Column(method, str) for method in PRUNING],
        ],
        [],
        title=(
            f"Weights = {level:g} of dense: cycles gain / energy gain of the best LR/GLR (SDK) "
            "over each pruning method (pruning cost / low-rank cost at equal weights; > 1: low "
            "rank is cheaper; -: the method does not reach that level)"
        ),
    )
    for model in dict.fromkeys(r["model"] for r in rows):
        for hw in HW_PRESETS:
            cells = []
            for method in PRUNING:
                row = next(
                    r for r in rows
                    if (r["model"], r["hw"], r["pruning"], r["weights"]) == (model, hw, method, level)
                )  # fmt: skip
                cells.append(f"{_fmt(row['cycles_gain'])} / {_fmt(row['energy_uj_gain'])}")
            table.add([model, hw, *cells])
    return table


def markdown_table(rows: list[dict[str, Any]], level: float) -> str:
    """:func:`gains_table` as Markdown (title first)."""
    return gains_table(rows, level).render(TableFormat.md)


def _fmt(value: float) -> str:
    if np.isnan(value):
        return "-"
    return f"{value:.2f}x"


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--figures", default="docs/figures", help="folder of frontier_<model>.png")
    parser.add_argument(
        "--out", default="outputs/frontier", help="folder of the CSV/markdown tables"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(args.out)
    points: list[dict[str, Any]] = []
    for name in args.models:
        started = time.perf_counter()
        mine = model_points(name, args.seed)
        points += mine
        figure = plot_model(mine, name, Path(args.figures) / f"frontier_{name}.png")
        print(f"{name}: {len(mine)} points, {time.perf_counter() - started:.1f} s, {figure}")
    write_csv(points, out / "frontier_points.csv")
    rows = comparison(points)
    write_csv(rows, out / "frontier_comparison.csv")
    text = "\n\n".join(markdown_table(rows, level) for level in PARAM_LEVELS)
    (out / "frontier_tables.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
