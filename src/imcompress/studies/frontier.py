"""Accuracy-vs-crossbar-cost frontier of a fine-tuning study (docs/results.md, "Frontier").

``python -m imcompress.studies.frontier DIR [--format md|latex|csv] [--figures OUT_DIR]`` reads a study
folder laid out by ``launch/study_frontier.sh`` (``DIR/dense`` and ``DIR/finetune/<name>_s<seed>``
train.py job folders), rebuilds every completed job's compressed model from its
``.hydra/config.yaml`` (the one-shot masks and factors depend only on the dense weights, so they
equal the trained ones), costs it with the crossbar estimator on the ``imc64`` and ``imc256``
presets (cached per configuration, so seeds share one estimate), and prints one table per array
size: accuracy (mean and standard deviation over seeds) against SDK cycles and energy, with the
Pareto-optimal points marked. ``--figures`` writes ``frontier_fmnist_<hw>_<cycles|energy>.png``.
Jobs that are not completed are skipped and listed.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imcompress.reporting.tables import Column, TableFormat, TextTable, count, significant
from imcompress.reporting.vocabulary import FAMILY_LABELS, planned_label
from imcompress.runs import atomic
from imcompress.runs.folder import (
    SUMMARY_FILE,
    CorruptRecordError,
    RefusedTargetError,
    RunFolder,
    build_compressed_model,
    skipped_note,
)
from imcompress.sweep.pareto import pareto_front

HW_PRESETS = ("imc64", "imc256")
CONF = Path(__file__).resolve().parents[3] / "conf"
DENSE = "dense"
_UNIFORM = re.compile(r"^(?P<family>[a-z_0-9]+?)_k(?P<keep>[0-9.]+)_s(?P<seed>\d+)$")
_PLANNED = re.compile(
    r"^planned_(?P<family>[a-z]+)_(?P<hw>imc\d+)_c(?P<ratio>[0-9.]+)_s(?P<seed>\d+)$"
)
FAMILY_NAMES = FAMILY_LABELS  # study job families (see imcompress.reporting.vocabulary)


@dataclass
class Job:
    """One completed fine-tuning job: what it is, its accuracies and its costs per hw preset."""

    method: str  # e.g. "GLR-2", "planned GLR (imc64)"
    level: str  # e.g. "keep 0.12", "cycles 0.60x"
    seed: int
    test_acc: float
    acc_at_compression: float | None = None
    params: float | None = None
    kept: float | None = None  # weights kept in the compressed convs (fraction)
    cost: dict[str, dict[str, float]] = field(default_factory=dict)  # hw -> cycles, energy_uj


@dataclass
class Point:
    """Jobs that differ only in their seed: mean and standard deviation over seeds."""

    method: str
    level: str
    seeds: int
    acc: float
    acc_std: float
    acc_at_compression: float | None
    params: float | None
    kept: float | None
    cost: dict[str, dict[str, float]]
    pareto: dict[str, bool] = field(default_factory=dict)  # hw -> on the cycles front


def parse_job_name(name: str) -> tuple[str, str, int]:
    """``glr2_k0.12_s1`` -> ``("GLR-2", "keep 0.12", 1)``; planned names likewise."""
    planned = _PLANNED.match(name)
    if planned:
        return (
            planned_label(planned["family"], planned["hw"]),
            f"cycles {planned['ratio']}x",
            int(planned["seed"]),
        )
    uniform = _UNIFORM.match(name)
    if uniform and uniform["family"] in FAMILY_NAMES:
        return FAMILY_NAMES[uniform["family"]], f"keep {uniform['keep']}", int(uniform["seed"])
    raise ValueError(
        f"job folder {name!r} is not <{'|'.join(FAMILY_NAMES)}>_k<keep>_s<seed> nor "
        "planned_<glr|pattern>_<hw>_c<ratio>_s<seed>"
    )


def aggregate(jobs: Sequence[Job]) -> list[Point]:
    """Group jobs by (method, level): mean and sample standard deviation (0 for one seed)."""
    groups: dict[tuple[str, str], list[Job]] = {}
    for job in jobs:
        groups.setdefault((job.method, job.level), []).append(job)
    points = []
    for (method, level), members in groups.items():
        accs = [j.test_acc for j in members]
        at_compression = [j.acc_at_compression for j in members if j.acc_at_compression is not None]
        points.append(
            Point(
                method=method,
                level=level,
                seeds=len(members),
                acc=statistics.fmean(accs),
                acc_std=statistics.stdev(accs) if len(accs) > 1 else 0.0,
                acc_at_compression=statistics.fmean(at_compression) if at_compression else None,
                params=members[0].params,
                kept=members[0].kept,
                cost=members[0].cost,
            )
        )
    return points


def mark_pareto(points: Sequence[Point], hw: str, metric: str = "cycles") -> list[int]:
    """Mark (and return the indices of) the points on the accuracy-vs-``metric`` front on ``hw``."""
    usable = [i for i, p in enumerate(points) if hw in p.cost]
    front = pareto_front(
        [points[i].cost[hw][metric] for i in usable], [points[i].acc for i in usable]
    )
    chosen = [usable[i] for i in front]
    if metric == "cycles":
        for i in usable:
            points[i].pareto[hw] = i in chosen
    return chosen


def frontier_table(points: Sequence[Point], hw: str, dense: Point) -> TextTable:
    """The table of one array size, sorted by method then cost (most expensive first)."""
    base = dense.cost[hw]
    table = TextTable(
        columns=[
            Column("method", str, "l"),
            Column("level", str, "l"),
            Column("params", count),
            Column("kept", significant),
            Column("test acc", str),
            Column("n", count),
            Column("acc@compr.", significant),
            Column("SDK cycles", count),
            Column("speedup", significant),
            Column("energy [uJ]", significant),
            Column("energy ratio", significant),
            Column("Pareto", str, "l"),
        ],
        rows=[],
        title=f"Fashion-MNIST ResNet-20 on {hw} (SDK mapping)",
        notes={},
    )
    ordered = sorted(
        (p for p in points if hw in p.cost),
        key=lambda p: (p is not dense, p.method, -(p.kept or 0), -p.cost[hw]["cycles"]),
    )
    for p in ordered:
        cost = p.cost[hw]
        acc = f"{p.acc:.4f}" + (f" ± {p.acc_std:.4f}" if p.seeds > 1 else "")
        table.add(
            [
                p.method,
                p.level,
                p.params,
                p.kept,
                acc,
                p.seeds,
                p.acc_at_compression,
                cost["cycles"],
                base["cycles"] / cost["cycles"],
                cost["energy_uj"],
                cost["energy_uj"] / base["energy_uj"],
                "*" if p.pareto.get(hw) else "",
            ],
        )
    return table


# --- rebuilding and costing the models (torch; imported lazily so the tables stay light) -------


def _resolve(path: str, study: Path) -> str:
    """A path of a job config, as it was written (relative to the launch folder) or in ``study``."""
    candidate = Path(path)
    for root in (Path.cwd(), study.resolve().parent.parent):
        if (root / candidate).exists():
            return str(root / candidate)
    if study.name in candidate.parts:  # outputs/frontier/plans/x.yaml -> STUDY/plans/x.yaml
        tail = candidate.parts[candidate.parts.index(study.name) + 1 :]
        return str(study.joinpath(*tail))
    return path


def load_hw(name: str) -> Any:
    """A preset of conf/hw as a :class:`~imcompress.crossbar.config.HardwareConfig`."""
    from omegaconf import OmegaConf

    from imcompress.crossbar.config import HardwareConfig

    node = OmegaConf.to_container(OmegaConf.load(CONF / "hw" / f"{name}.yaml"))
    assert isinstance(node, dict)
    node.pop("defaults", None)
    return HardwareConfig.from_cfg(node)


class CostCache:
    """Rebuilt models' SDK costs per (model, compression, checkpoint) config and hw preset."""

    def __init__(
        self, study: Path, hws: Sequence[str] = HW_PRESETS, file: Path | None = None
    ) -> None:
        self.study = study
        self.hws = {name: load_hw(name) for name in hws}
        self.file = file  # JSON kept between runs (rebuilding a ResNet-20 takes seconds)
        self._cache: dict[str, Any] = {}
        if file is not None and file.is_file():
            try:
                self._cache = json.loads(file.read_text())
            except ValueError as error:  # a cache is only a cache: start it over
                print(
                    f"warning: ignoring the unreadable cost cache {file} ({error})", file=sys.stderr
                )
            if not isinstance(self._cache, dict):
                self._cache = {}

    def costs(self, job_dir: Path) -> tuple[dict[str, dict[str, float]], float, float | None]:
        """(hw -> {cycles, energy_uj}, parameters, weights kept in compressed convs)."""
        from omegaconf import OmegaConf

        cfg = RunFolder(job_dir).config()  # refuses a _target_ outside the allowed packages
        compression = cfg.get("compression")
        comp = OmegaConf.to_container(compression, resolve=True) if compression else None
        if isinstance(comp, dict) and comp.get("plan"):
            comp["plan"] = _resolve(str(comp["plan"]), self.study)
        # jobs written before models took a _target_ (``arch: resnet``) build through
        # models.build.LEGACY_ARCH_TARGETS
        model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
        pretrained = _resolve(str(cfg.pretrained), self.study) if cfg.get("pretrained") else None
        data = cfg.data
        shape = (int(data.channels), int(data.image_size), int(data.image_size))
        key = json.dumps(
            [model_cfg, comp, pretrained, shape, int(data.num_classes), sorted(self.hws)],
            sort_keys=True,
        )
        if key not in self._cache:
            self._cache[key] = self._estimate(
                model_cfg, comp, pretrained, shape, int(data.num_classes)
            )
            if self.file is not None:
                self.file.parent.mkdir(parents=True, exist_ok=True)
                atomic.write_json(self.file, self._cache, indent=None)
        costs, params, kept = self._cache[key]
        return costs, params, kept

    def _estimate(
        self,
        model_cfg: Any,
        comp: Any,
        pretrained: str | None,
        shape: tuple[int, int, int],
        classes: int,
    ) -> tuple[dict[str, dict[str, float]], float, float | None]:
        import torch
        from omegaconf import OmegaConf

        from imcompress.crossbar.cost_report import build_report
        from imcompress.crossbar.extract import extract_layers

        torch.manual_seed(0)
        config = OmegaConf.create({"model": model_cfg, "compression": comp})
        model, compressed = build_compressed_model(config, shape[0], classes, pretrained)
        compressed.apply_final_masks()
        summary = compressed.summary()
        params = float(
            summary.get("model_params_after") or sum(p.numel() for p in model.parameters())
        )
        before = summary.get("params_before")
        kept = float(summary["params_after"]) / float(before) if before else None
        table = extract_layers(model, shape)
        costs = {}
        for name, hw in self.hws.items():
            totals = build_report(table, hw, ["sdk"]).totals()
            costs[name] = {
                "cycles": float(totals["sdk/cycles"]),
                "energy_uj": float(totals["sdk/energy_uj"]),
            }
        return costs, params, kept


def load_study(study: Path, cache: CostCache | None = None) -> tuple[Point, list[Job], list[str]]:
    """The dense reference, the completed jobs (costed) and ``name: reason`` for every skipped one
    (not completed, a corrupt record, a refused config, a folder name that is not a study job)."""
    dense_run = RunFolder(study / DENSE)
    if not dense_run.has_summary:
        raise FileNotFoundError(f"{study / DENSE / SUMMARY_FILE}: not a frontier study folder")
    cache = cache or CostCache(study)
    if dense_run.status() != "completed":
        raise ValueError(f"{study / DENSE}: the dense job is not completed")
    dense_acc = dense_run.metric("test/acc", required=True)
    cost, params, _ = cache.costs(study / DENSE)
    dense = Point("dense", "", 1, float(dense_acc or 0.0), 0.0, None, params, 1.0, cost)
    jobs: list[Job] = []
    skipped: list[str] = []
    for job_dir in sorted(p for p in (study / "finetune").iterdir() if p.is_dir()):
        try:
            job = _load_job(RunFolder(job_dir), cache)
        except (CorruptRecordError, RefusedTargetError, ValueError) as error:
            skipped.append(str(error))
            continue
        if isinstance(job, str):
            skipped.append(f"{job_dir.name}: {job}")
        else:
            jobs.append(job)
    return dense, jobs, skipped


def _load_job(run: RunFolder, cache: CostCache) -> Job | str:
    """The costed job of ``run``, or why it is not shown (its status)."""
    if run.status() != "completed":
        return run.status() or f"no {SUMMARY_FILE}"
    accuracy = run.metric("test/acc", required=True)
    method, level, seed = parse_job_name(run.name)
    cost, params, kept = cache.costs(run.path)
    at_compression = run.metric("val/acc_at_compression")
    return Job(method, level, seed, float(accuracy or 0.0), at_compression, params, kept, cost)


# --- figures ---------------------------------------------------------------------------------


def _family(method: str) -> str:
    return method.split(" (")[0] if method.startswith("planned") else method


def write_figures(points: Sequence[Point], dense: Point, hw: str, out_dir: Path) -> list[Path]:
    """Accuracy vs SDK cycles and vs SDK energy on ``hw``: one colour per method (the shared
    palette of :mod:`imcompress.reporting.figures`), front dashed, dense on SDK on the same array as the
    reference, error bars only where a point has >= 2 seeds."""
    from imcompress.reporting import figures

    shown = [p for p in points if hw in p.cost and p is not dense]
    methods = sorted({p.method for p in shown})
    colours = figures.method_colours(methods)
    caption = figures.error_caption(p.seeds for p in shown)
    files = []
    for metric, label in (("cycles", "SDK cycles"), ("energy_uj", "SDK energy [µJ]")):
        figure = figures.new_figure(8.5, 6.0)
        axes = figure.subplots()
        for method in methods:
            chosen = [p for p in shown if p.method == method]
            axes.errorbar(
                [p.cost[hw][metric] for p in chosen], [p.acc for p in chosen],
                yerr=figures.error_bars([p.acc_std for p in chosen], [p.seeds for p in chosen]),
                fmt="s" if method.startswith("planned") else "o",
                color=colours[method], capsize=3, markersize=6, label=method, zorder=3,
            )  # fmt: skip
        everyone = [*shown, dense]
        front = pareto_front([p.cost[hw][metric] for p in everyone], [p.acc for p in everyone])
        figures.draw_pareto(
            axes, [everyone[i].cost[hw][metric] for i in front], [everyone[i].acc for i in front]
        )
        figures.draw_dense_reference(
            axes, dense.acc, dense.cost[hw][metric], f"dense model on SDK ({hw})"
        )
        axes.set_xlabel(f"{label} on {hw}")
        axes.set_ylabel("test accuracy (mean over seeds)")
        axes.set_title(f"Fashion-MNIST ResNet-20, {hw}: test accuracy vs {label} ({caption})")
        axes.grid(True, alpha=0.3)
        figures.legend_below(figure, axes, columns=4)
        figure.canvas.draw()
        labelled = [
            _Label(
                p.cost[hw][metric],
                p.acc,
                p.acc_std if p.seeds >= 2 else 0.0,
                p.level.replace("keep ", "k").replace("cycles ", "c"),
            )
            for p in shown
        ]
        figures.place_labels(figure, axes, labelled, fontsize=6.5)
        name = f"frontier_fmnist_{hw}_{'cycles' if metric == 'cycles' else 'energy'}.png"
        files.append(figures.save(figure, out_dir / name))
    return files


@dataclass
class _Label:
    """What :func:`imcompress.sweep.plots.place_labels` reads of a point."""

    x: float
    y: float
    y_std: float
    label: str


def main(argv: Sequence[str] | None = None) -> int:
    """Print the frontier tables of a study folder; optionally write its figures."""
    parser = argparse.ArgumentParser(
        prog="python -m imcompress.studies.frontier", description=__doc__.splitlines()[0]
    )
    parser.add_argument("study", type=Path, help="study folder (dense/ and finetune/ inside)")
    parser.add_argument("--format", default="md", choices=[f.value for f in TableFormat])
    parser.add_argument("--figures", type=Path, help="folder for the PNGs")
    parser.add_argument("--cache", type=Path, help="JSON file keeping the costs between runs")
    args = parser.parse_args(argv)
    try:
        dense, jobs, skipped = load_study(args.study, CostCache(args.study, file=args.cache))
    except (OSError, ValueError) as error:  # corrupt or refused dense job, not a study folder
        print(f"frontier: {error}", file=sys.stderr)
        return 2
    points = [*aggregate(jobs), dense]
    tables = []
    for hw in HW_PRESETS:
        mark_pareto(points, hw)
        tables.append(frontier_table(points, hw, dense))
    print("\n\n".join(t.render(args.format) for t in tables))
    seeds = sorted({f"{j.seed}" for j in jobs})
    print(
        f"\n{len(jobs)} completed job(s) (seeds {', '.join(seeds)}) in {len(points) - 1} point(s)",
        file=sys.stderr,
    )
    if skipped:
        print(skipped_note(skipped), file=sys.stderr)
    if args.figures:
        for hw in HW_PRESETS:
            for path in write_figures(points, dense, hw, args.figures):
                print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
