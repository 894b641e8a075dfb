"""Analog robustness of a compression study: every completed fine-tuning job of a study folder
evaluated under analog presets, then a table and a figure of the accuracy drop.

python -m imcompress.studies.analog outputs/frontier                 # quant and noisy, 5 repeats
python -m imcompress.studies.analog outputs/frontier --presets noisy --test-samples 2000

Jobs are ``STUDY/finetune/*/`` with ``summary.json`` status ``completed``. Each job's results
land in ``STUDY/analog/<job>.json`` as soon as they are computed (a rerun skips them);
``analog_results.csv``/``.md`` and ``analog_drop.png`` are rewritten at the end.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: see docs/analog.md

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from imcompress.analog.schema import TileSettings, resolve_settings
from imcompress.reporting.tables import Column, TableFormat, TextTable
from imcompress.runs import atomic
from imcompress.runs.folder import (
    SUMMARY_FILE,
    CorruptRecordError,
    RefusedTargetError,
    RunFolder,
    skipped_note,
)

CONF_DIR = Path(__file__).resolve().parents[3] / "conf"


def completed_jobs(study_dir: Path, skipped: list[str] | None = None) -> list[Path]:
    """Fine-tuning job folders of the study whose summary says ``completed``; a job with a
    corrupt record is left out and described in ``skipped``."""
    jobs = []
    for path in sorted(p.parent for p in (study_dir / "finetune").glob(f"*/{SUMMARY_FILE}")):
        try:
            if RunFolder(path).status() == "completed":
                jobs.append(path)
        except CorruptRecordError as error:
            if skipped is not None:
                skipped.append(str(error))
    return jobs


def job_labels(name: str, fallback: str) -> tuple[str, str]:
    """(method, level) of a study job folder, in the frontier's words (``glr4_k0.12_s1`` ->
    ``("GLR-4", "keep 0.12")``, ``planned_glr_imc64_c0.50_s1`` -> ``("planned GLR (imc64)",
    "cycles 0.50x")``); other names keep ``fallback`` and no level."""
    from imcompress.studies.frontier import DENSE, parse_job_name

    if name == DENSE:
        return "dense", ""
    try:
        method, level, _ = parse_job_name(name)
    except ValueError:
        return fallback, ""
    return method, level


def method_label(job: Path, summary: dict[str, Any]) -> str:
    """The method of a job: from its folder name (:func:`job_labels`), else the experiment name,
    else the compression method."""
    fallback = RunFolder(job).experiment() or str(
        (summary.get("config") or {}).get("compression", job.name)
    )
    return job_labels(job.name, fallback)[0]


def kept_fraction(summary: dict[str, Any]) -> float:
    """Parameters kept in the compressed layers (after / before); 1 for an uncompressed model."""
    record = summary.get("compression") or {}
    before, after = record.get("params_before"), record.get("params_after")
    return float(after) / float(before) if before and after is not None else 1.0


def compose_presets(names: list[str], overrides: list[str]) -> dict[str, DictConfig]:
    """The ``analog`` nodes of ``names`` with ``overrides`` (e.g. ``analog.repeats=5``)."""
    from imcompress.config import register_configs

    register_configs()
    nodes = {}
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        for name in names:
            cfg = compose("evaluate", overrides=[f"analog={name}", "ckpt=unused", *overrides])
            nodes[name] = cfg.analog
    return nodes


def evaluate_job(job: Path, presets: dict[str, DictConfig]) -> dict[str, Any]:
    """Digital and analog accuracy of one job under every preset (one model load)."""
    from imcompress.analog.evaluation import evaluate_analog
    from imcompress.jobs.evaluate import find_run, prepare_evaluation

    run = find_run(job)
    summary = run.summary
    settings: dict[str, TileSettings] = {
        name: resolve_settings(node, run.config.get("hw")) for name, node in presets.items()
    }
    paths = run.config.paths.copy()
    paths.data_dir = os.environ.get("IMCOMPRESS_DATA_DIR", str(Path("data").resolve()))
    model, test, calibration, num_classes = prepare_evaluation(
        run, next(iter(settings.values())), paths
    )
    row: dict[str, Any] = {
        "job": job.name,
        "method": method_label(job, summary),
        "compression": summary.get("config", {}).get("compression"),
        "kept": kept_fraction(summary),
        "checkpoint": str(run.checkpoint),
        "presets": {},
    }
    for name, tile in settings.items():
        started = time.perf_counter()
        result = evaluate_analog(model, tile, test, calibration, num_classes)
        row["digital_acc"] = result.digital_accuracy
        row["presets"][name] = {
            "acc": result.mean_accuracy,
            "acc_std": result.accuracy_std,
            "acc_repeats": list(result.repeat_accuracies),
            "drop": result.accuracy_drop,
            "samples": result.samples,
            "tiles": result.tiles,
            "config": result.settings.record(),
            "seconds": round(time.perf_counter() - started, 1),
        }
    return row


def table_rows(results: list[dict[str, Any]], presets: list[str]) -> list[dict[str, Any]]:
    """One flat row per job, sorted by method and compression level."""
    rows = []
    for result in results:
        method, level = job_labels(result["job"], result["method"])
        row = {
            "method": method,
            "level": level,
            "job": result["job"],
            "kept": round(result["kept"], 4),
            "digital_acc": round(result["digital_acc"], 4),
        }
        for name in presets:
            entry = result["presets"].get(name)
            if entry is None:
                continue
            row[f"{name}_acc"] = round(entry["acc"], 4)
            row[f"{name}_std"] = round(entry["acc_std"], 4)
            row[f"{name}_drop"] = round(entry["drop"], 4)
        rows.append(row)
    return sorted(rows, key=lambda row: (row["method"], -row["kept"], row["job"]))


def _percent(value: Any) -> str:
    return f"{100 * value:.2f}" if isinstance(value, float) else str(value)


def results_table(rows: list[dict[str, Any]]) -> TextTable:
    """Every row of :func:`table_rows`; accuracies, stds and drops shown in % (raw in CSV)."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    table = TextTable(
        [
            Column(key, _percent if key.endswith(("_acc", "_std", "_drop")) else str, "l")
            for key in columns
        ],
        [],
        title="Accuracies, std over noise repeats and drops (digital - analog) in %",
    )
    for row in rows:
        table.add([row.get(key, "") for key in columns])
    return table


def write_table(rows: list[dict[str, Any]], out_dir: Path) -> None:
    """``analog_results.csv`` (raw values) and ``analog_results.md`` (in %), atomically."""
    if not rows:
        return
    table = results_table(rows)
    for suffix, fmt in (("csv", TableFormat.csv), ("md", TableFormat.md)):
        with atomic.atomic_open(out_dir / f"analog_results.{suffix}", "w", newline="") as handle:
            handle.write(table.render(fmt).rstrip("\n") + "\n")


def plot_drop(rows: list[dict[str, Any]], presets: list[str], path: Path) -> None:
    """Accuracy drop (digital - analog, %-points) against kept parameters, per method; one
    panel per preset; error bars (std over noise repeats, averaged over seeds) only where the
    repeats differ, and the title says so. Drawn with :mod:`imcompress.reporting.figures`."""
    from imcompress.reporting import figures

    shown = [name for name in presets if any(f"{name}_drop" in row for row in rows)]
    figure = figures.new_figure(5.5 * len(shown) + 2, 4.4)
    axes = figure.subplots(1, len(shown), squeeze=False)[0]
    methods = sorted({row["method"] for row in rows})
    colours = figures.method_colours(methods)
    markers = "osD^v<>ph*X"
    any_spread = False
    for ax, name in zip(axes, shown, strict=True):
        for index, method in enumerate(methods):
            points: dict[float, list[tuple[float, float]]] = {}
            for row in rows:
                if row["method"] == method and f"{name}_drop" in row:
                    points.setdefault(row["kept"], []).append(
                        (row[f"{name}_drop"], row[f"{name}_std"])
                    )
            if not points:
                continue
            kept = sorted(points)
            drop = [100 * statistics.fmean(d for d, _ in points[k]) for k in kept]
            std = [100 * statistics.fmean(s for _, s in points[k]) for k in kept]
            any_spread = any_spread or any(std)
            ax.errorbar(
                kept,
                drop,
                yerr=std if any(std) else None,
                marker=markers[index % len(markers)],
                color=colours[method],
                capsize=3,
                label=method,
            )
        ax.axhline(0.0, color=figures.REFERENCE_COLOUR, linewidth=0.8)
        ax.set_title(f"analog={name}")
        ax.set_xlabel("parameters kept in compressed layers (fraction)")
        ax.set_ylabel("accuracy drop, digital - analog [%-points]")
        ax.grid(alpha=0.3)
    figure.suptitle(
        "error bars: std over noise repeats (mean over seeds)"
        if any_spread
        else "one noise repeat (or no noise): no error bars",
        fontsize=10,
    )
    figures.legend_below(figure, axes[0], columns=5)
    figures.save(figure, path)


def _saved_result(saved: Path) -> dict[str, Any] | None:
    """A job's saved analog result; None when absent or unreadable (it is computed again)."""
    try:
        result = json.loads(saved.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        print(
            f"warning: {saved} is unreadable ({error}); evaluating that job again", file=sys.stderr
        )
        return None
    return result if isinstance(result, dict) and isinstance(result.get("presets"), dict) else None


def run_study(study_dir: Path, presets: list[str], overrides: list[str]) -> list[dict[str, Any]]:
    """Evaluate every completed job (skipping those already saved) and write table + figure."""
    out_dir = study_dir / "analog"
    out_dir.mkdir(parents=True, exist_ok=True)
    nodes = compose_presets(presets, overrides)
    results = []
    skipped: list[str] = []
    for job in completed_jobs(study_dir, skipped):
        saved = out_dir / f"{job.name}.json"
        result = _saved_result(saved)
        if result is not None and set(presets) <= set(result["presets"]):
            results.append(result)
            continue
        started = time.perf_counter()
        try:
            result = evaluate_job(job, nodes)
        except (CorruptRecordError, RefusedTargetError, FileNotFoundError) as error:
            skipped.append(str(error))
            continue
        atomic.write_json(saved, result)
        results.append(result)
        drops = ", ".join(
            f"{name} {100 * entry['drop']:+.2f}" for name, entry in result["presets"].items()
        )
        print(
            f"{job.name}: digital {100 * result['digital_acc']:.2f} %, drop {drops} %-points "
            f"({time.perf_counter() - started:.0f} s)",
            flush=True,
        )
    if skipped:
        print(skipped_note(skipped), file=sys.stderr, flush=True)
    rows = table_rows(results, presets)
    write_table(rows, out_dir)
    if rows:
        plot_drop(rows, presets, out_dir / "analog_drop.png")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("study_dir", type=Path, help="study folder with finetune/<job>/")
    parser.add_argument("--presets", default="quant,noisy", help="analog presets, comma-separated")
    parser.add_argument("--repeats", type=int, default=5, help="noise repeats (noisy presets)")
    parser.add_argument("--test-samples", type=int, default=None, help="first N test images")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides, e.g. analog.seed=1")
    args = parser.parse_intermixed_args(argv)
    if not (args.study_dir / "finetune").is_dir():
        parser.error(f"{args.study_dir}/finetune does not exist: not a study folder")
    overrides = [f"analog.repeats={args.repeats}", *args.overrides]
    if args.test_samples is not None:
        overrides.append(f"analog.test_samples={args.test_samples}")
    rows = run_study(args.study_dir, [p for p in args.presets.split(",") if p], overrides)
    print(f"{len(rows)} jobs: {args.study_dir / 'analog' / 'analog_results.md'}, analog_drop.png")


if __name__ == "__main__":
    main()
