"""The decisive study of issue 17: driver, committed records and regeneration.

    python -m imcompress.studies.decisive grid   STUDY_DIR --dense CKPT   # acc@compr. grid
    python -m imcompress.studies.decisive run    STUDY_DIR --dense CKPT [--max-priority N]
        [--filter REGEX] [--dry-run] [--criterion auto|magnitude|activation] [--kd-glr auto|svd|whitened]
    python -m imcompress.studies.decisive report results/decisive [--out DIR]

``run`` and ``grid`` solve the matched settings (``<records>/matched.json``), write the job list
(``<records>/jobs.tsv``; ``grid_jobs.tsv``), make the plans (``STUDY_DIR/plans``, ``src/plan.py``
from the dense checkpoint) and run every job not yet completed: training jobs as ``src/train.py``
subprocesses in ``STUDY_DIR/runs/<name>_s<seed>`` (resumed with ``ckpt_path=auto``), the grid
points and the dense reference evaluated in this process (:mod:`imcompress.studies.evaluation`,
``STUDY_DIR/grid``). Every completed job's record goes to ``<records>/records/`` (grid:
``<records>/grid.csv``). ``--records`` defaults to ``results/decisive``; ``--dry-run`` still
solves and writes the job list, then prints what would run. The protocol is
conf/experiment/study/decisive.yaml.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from imcompress.runs import atomic
from imcompress.studies import decisive_plan as plan
from imcompress.studies.evaluation import compose_config, run_points
from imcompress.studies.matching import Match, verified_match
from imcompress.studies.records import copy_plan, costs_of, job_record, write_record
from imcompress.studies.runner import (
    ROOT,
    JobSpec,
    RunOutcome,
    fill,
    jobs_tsv,
    read_summary,
    run_jobs,
    run_logged,
    select_jobs,
    train_command,
)

RECORDS = Path("results/decisive")
GRID_COLUMNS = ("job", "point", "level", "kept", "test_acc", "status")


# --- matched settings (cached in <records>/matched.json) ---------------------------------------


def model_builder(experiment: str, extra: Sequence[str]) -> Callable[[], Any]:
    """A function building the study's (uncompressed, randomly initialised) network."""
    from hydra import compose, initialize_config_dir

    from imcompress.config import register_configs
    from imcompress.models.build import build_model

    register_configs()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", [f"experiment={experiment}", *extra])
    model_cfg, channels, classes = cfg.model, int(cfg.data.channels), int(cfg.data.num_classes)
    return lambda: build_model(model_cfg, channels, classes)


def matched_settings(
    records: Path, needed: Sequence[tuple[str, float]], build: Callable[[], Any]
) -> dict[tuple[str, float], Match]:
    """The matched setting of every (method base, level) in ``needed``; solved once, then read
    from ``<records>/matched.json``."""
    file = records / "matched.json"
    stored = json.loads(file.read_text()) if file.is_file() else {}
    out: dict[tuple[str, float], Match] = {}
    for base, level in dict.fromkeys(needed):
        key = f"{base}@{plan.level_name(level)}"
        if key not in stored:
            method = next(m for m in plan.METHODS.values() if m.base == base)
            found = verified_match(build, method.counting, level)
            stored[key] = {"key": found.key, "value": found.value, "kept": found.kept,
                           "target": level, "within": found.within}  # fmt: skip
            print(f"matched {key}: {found.key}={found.value} keeps {found.kept:.4f}", flush=True)
            records.mkdir(parents=True, exist_ok=True)
            atomic.write_text(file, json.dumps(stored, indent=1, sort_keys=True) + "\n")
        entry = stored[key]
        out[(base, level)] = Match(entry["key"], entry["value"], entry["kept"], level)
    return out


def matched_values(
    records: Path, levels: Sequence[float], build: Callable[[], Any]
) -> dict[tuple[str, float], int | float]:
    bases = sorted({m.base for m in plan.METHODS.values()})
    found = matched_settings(records, [(b, lvl) for lvl in levels for b in bases], build)
    return {key: match.value for key, match in found.items()}


# --- choices read from the grid ------------------------------------------------------------------


def read_grid(records: Path) -> dict[str, dict[str, str]]:
    """``grid.csv`` rows by job name ({} without the file)."""
    file = records / "grid.csv"
    if not file.is_file():
        return {}
    return {row["job"]: row for row in csv.DictReader(io.StringIO(file.read_text()))}


def better(grid: dict[str, dict[str, str]], names: Sequence[str], option: str) -> int:
    """Index of the name with the higher grid test accuracy (ValueError naming what is missing)."""
    accs = []
    for name in names:
        row = grid.get(f"grid_{name}_s1")
        if row is None or not row.get("test_acc"):
            raise ValueError(
                f"{option}=auto needs the grid result of {name} (run the `grid` command first, "
                f"or set {option} explicitly)"
            )
        accs.append(float(row["test_acc"]))
    return max(range(len(names)), key=lambda i: (accs[i], -i))


def choose(records: Path, criterion: str, kd_glr: str) -> plan.Choices:
    """The pruning criterion per kind and level, and the distilled GLR-4's factorization:
    as given, or (``auto``) the better by ``acc@compr.`` in the grid."""
    grid = read_grid(records)
    chosen = {}
    for kind in ("unstructured", "pattern"):
        for level in (0.06, 0.12):
            if criterion != "auto":
                chosen[(kind, level)] = criterion
                continue
            names = [f"{kind}_{c[:3]}_k{plan.level_name(level)}" for c in plan.CRITERIA]
            chosen[(kind, level)] = plan.CRITERIA[better(grid, names, "--criterion")]
    if kd_glr == "auto":
        names = ["glr4_k0.06", "glr4w_k0.06"]
        kd_glr = plan.FACTORIZATIONS[better(grid, names, "--kd-glr")]
    return plan.Choices(chosen, kd_glr)


# --- plans, jobs ---------------------------------------------------------------------------------


def make_plans(specs: Sequence[plan.PlanSpec], study: Path, dense: str, dry_run: bool) -> list[str]:
    """Write every missing plan with ``src/plan.py``; the names of those that failed."""
    failed = []
    for spec in specs:
        out = study / "plans" / f"{spec.name}.yaml"
        if out.is_file():
            continue
        run_dir = study / "plans" / f"{spec.name}.run"
        command = [sys.executable, str(ROOT / "src" / "plan.py"),
                   *spec.planner_overrides(dense, str(out), str(run_dir))]  # fmt: skip
        if dry_run:
            print(" ".join(command))
            continue
        print(f"plan {spec.name}", flush=True)
        if run_logged(command, study / "plans" / f"{spec.name}.log") != 0 or not out.is_file():
            failed.append(spec.name)
            print(
                f"   plan {spec.name} failed: see {study / 'plans' / spec.name}.log",
                file=sys.stderr,
            )
    return failed


def places(study: Path, dense: str) -> dict[str, str]:
    return {"dense": str(Path(dense).absolute()), "plans": str((study / "plans").absolute())}


def job_runner(args: argparse.Namespace) -> Callable[[JobSpec, Path], list[str]]:
    values = places(args.study, args.dense)

    def command(job: JobSpec, job_dir: Path) -> list[str]:
        overrides = [*fill(job.overrides, values), *args.extra]
        return train_command(args.experiment, overrides, job_dir, job.seed)

    return command


def export(args: argparse.Namespace) -> Callable[[JobSpec, Path], None]:
    """Write the record of a completed job (once; ``--reexport`` writes it again)."""

    def after(job: JobSpec, job_dir: Path) -> None:
        target = args.records / "records" / f"{job.key}.json"
        if target.is_file() and not args.reexport:
            return
        record = job_record(job, job_dir, places(args.study, args.dense), args.records)
        print(f"   record {write_record(record, args.records / 'records')}", flush=True)

    return after


def grid_rows(jobs: Sequence[JobSpec], folder: Path) -> str:
    """``grid.csv``: one row per grid job: point, level, achieved kept fraction, test accuracy
    right after compression (and BatchNorm re-estimation), status."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(GRID_COLUMNS)
    for job in jobs:
        summary = read_summary(folder / job.key) or {}
        compression = summary.get("compression") or {}
        before, after = compression.get("params_before"), compression.get("params_after")
        point, _, level = job.name.removeprefix("grid_").rpartition("_k")
        if not point or point.startswith("planned"):
            point, level = job.name.removeprefix("grid_"), ""
        acc = (summary.get("metrics") or {}).get("test/acc")
        writer.writerow([
            job.key, point, level, f"{after / before:.6f}" if before else "",
            f"{acc:.6f}" if isinstance(acc, (int, float)) else "", summary.get("status", "missing"),
        ])  # fmt: skip
    return buffer.getvalue()


# --- commands ------------------------------------------------------------------------------------


def prepare(args: argparse.Namespace, grid: bool) -> tuple[list[JobSpec], list[plan.Point]]:
    """Solve the matched settings, build the job list and write it to the records folder."""
    build = model_builder(args.experiment, args.extra)
    levels = plan.LEVELS if grid else (0.06, 0.12)
    matched = matched_values(args.records, levels, build)
    if grid:
        points = plan.grid_points(matched, levels)
        jobs = plan.order_jobs({1: points})
        name = "grid_jobs.tsv"
    else:
        by_priority = plan.study_points(matched, choose(args.records, args.criterion, args.kd_glr))
        points = plan.all_points(by_priority)
        jobs = plan.order_jobs(by_priority)
        name = "jobs.tsv"
    args.records.mkdir(parents=True, exist_ok=True)
    atomic.write_text(args.records / name, jobs_tsv(jobs))
    return jobs, points


def point_config(args: argparse.Namespace) -> Callable[[JobSpec, Path], Any]:
    """The config of an evaluated (untrained) point: its overrides, seed and ``--extra``."""
    values = places(args.study, args.dense)

    def configure(job: JobSpec, job_dir: Path) -> Any:
        overrides = [*fill(job.overrides, values), f"seed={job.seed}", *args.extra]
        return compose_config(args.experiment, overrides, job_dir.absolute())

    return configure


def export_evaluated(args: argparse.Namespace) -> Callable[[JobSpec, Path, Any], None]:
    """The record of an evaluated point (the dense reference), costed on its built model."""

    def after(job: JobSpec, job_dir: Path, model: Any) -> None:
        cfg = point_config(args)(job, job_dir)
        shape = (int(cfg.data.channels), int(cfg.data.image_size), int(cfg.data.image_size))
        record = job_record(job, job_dir, places(args.study, args.dense), args.records,
                            costs=costs_of(model, shape))  # fmt: skip
        print(f"   record {write_record(record, args.records / 'records')}", flush=True)

    return after


def run_command(args: argparse.Namespace, grid: bool) -> int:
    """``run`` / ``grid``: the jobs in order (see the module docstring); 1 if any failed.
    Grid points and the dense reference (priority 0) are evaluated in this process, every
    other job is a ``train.py`` subprocess."""
    jobs, points = prepare(args, grid)
    chosen = select_jobs(jobs, args.filter, args.max_priority)
    chosen_names = {job.name for job in chosen}
    specs = plan.plans_of([p for p in points if p.name in chosen_names])
    failed_plans = make_plans(specs, args.study, args.dense, args.dry_run)
    runnable = [j for j in chosen if not any(j.name.endswith(f"planned_{n}") for n in failed_plans)]
    folder = args.study / ("grid" if grid else "runs")
    evaluated = [j for j in runnable if grid or j.priority == 0]
    trained = [j for j in runnable if j not in evaluated]
    if args.dry_run:
        for job in evaluated:
            print(f"evaluate {job.key}: {' '.join(job.overrides)}")
        outcome = run_jobs(trained, folder, job_runner(args), None, dry_run=True)
    else:
        from imcompress.jobs.acc_at_compression import test_compressed  # the one in-process job

        outcome = run_points(evaluated, folder, point_config(args), test_compressed,
                             None if grid else export_evaluated(args))  # fmt: skip
        more = run_jobs(trained, folder, job_runner(args), export(args))
        outcome = RunOutcome(outcome.ran + more.ran, outcome.skipped + more.skipped,
                             outcome.failed + more.failed)  # fmt: skip
    if grid and not args.dry_run:
        atomic.write_text(args.records / "grid.csv", grid_rows(jobs, folder))
        for spec in specs:  # the study's records keep every plan they measured
            if (args.study / "plans" / f"{spec.name}.yaml").is_file():
                copy_plan(f"{spec.name}.yaml", args.study / "plans", args.records)
    print(f"{len(outcome.ran)} ran, {len(outcome.skipped)} already completed, "
          f"{len(outcome.failed)} failed {outcome.failed}; plans failed: {failed_plans}")  # fmt: skip
    return 1 if outcome.failed or failed_plans else 0


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="python -m imcompress.studies.decisive",
                                   description=__doc__.splitlines()[0])  # fmt: skip
    commands = main.add_subparsers(dest="command", required=True)
    for name in ("run", "grid"):
        sub = commands.add_parser(name, help=f"{name} the study's jobs (resumable)")
        sub.add_argument("study", type=Path, help="folder of the job runs (runs/, grid/, plans/)")
        sub.add_argument("--dense", required=True, help="dense checkpoint (or its run folder)")
        sub.add_argument("--records", type=Path, default=RECORDS, help="records folder (committed)")
        sub.add_argument("--filter", help="regex on <name>_s<seed>: run only matching jobs")
        sub.add_argument("--max-priority", type=int, help="run priorities 0..N only")
        sub.add_argument("--dry-run", action="store_true", help="print the commands only")
        sub.add_argument("--experiment", default=plan.EXPERIMENT, help="the protocol config")
        sub.add_argument("--extra", nargs="*", default=[], help="overrides added to every job")
        sub.add_argument("--criterion", default="auto", choices=("auto", *plan.CRITERIA))
        sub.add_argument("--kd-glr", default="auto", choices=("auto", *plan.FACTORIZATIONS))
        sub.add_argument("--reexport", action="store_true", help="write existing records again")
    report = commands.add_parser("report", help="tables and figures from the records")
    report.add_argument("records", type=Path, help="the records folder (results/decisive)")
    report.add_argument(
        "--out", type=Path, help="folder for tables.md and the PNGs (default <records>/report)"
    )
    return main


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "report":
        from imcompress.studies.decisive_report import write_report

        for path in write_report(args.records, args.out or args.records / "report"):
            print(f"wrote {path}")
        return 0
    if not Path(args.dense).exists():
        print(f"--dense {args.dense!r}: no such checkpoint file or run folder", file=sys.stderr)
        return 2
    return run_command(args, grid=args.command == "grid")


if __name__ == "__main__":
    raise SystemExit(main())
