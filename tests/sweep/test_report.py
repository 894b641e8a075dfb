"""Sweep table, plots and report on hand-made sweep folders (no training, seconds)."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from matplotlib.container import ErrorbarContainer

from imcompress.sweep.aggregate import accuracy_column, add_dense_reference, sweep_table
from imcompress.sweep.jobs import discover_jobs, planned_overrides
from imcompress.sweep.pareto import pareto_front
from imcompress.sweep.plots import QUANTITIES, accuracy_figure, cost_mappings, point_labels
from imcompress.sweep.report import build_report, format_report
from tests.conftest import ROOT

PNG = b"\x89PNG\r\n\x1a\n"


def write_multirun(sweep: Path, task: list[str]) -> None:
    sweep.mkdir(parents=True, exist_ok=True)
    (sweep / "multirun.yaml").write_text(yaml.safe_dump({"hydra": {"overrides": {"task": task}}}))


def write_job(sweep: Path, num: int, overrides: list[str], summary: dict[str, Any] | None) -> Path:
    job = sweep / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (job / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"job": {"num": num}}}))
    if summary is not None:
        (job / "summary.json").write_text(json.dumps(summary))
    return job


def completed(
    method: str, group: int, acc: float, cycles: float, energy: float, **extra: Any
) -> dict[str, Any]:
    return {
        "status": "completed",
        "config": {"name": "t", "model": "resnet20", "compression": method, "hw": "imc256", "group": group},
        "slurm": {"slurm_job_id": "41", "slurm_array_job_id": "40", "slurm_array_task_id": str(group)},
        "metrics": {"val/acc": acc - 0.01, "test/acc": acc},
        "best": {"val/acc": acc},
        "epochs": 2,
        "cost": {"vwsdk/cycles": cycles, "vwsdk/energy_uj": energy, "im2col/cycles": 2 * cycles,
                 "im2col/energy_uj": 2 * energy, "vwsdk_naive/cycles": cycles, "dense_im2col/cycles": 9e9},
        "parameters": {"total": 1000 * group},
        **extra,
    }  # fmt: skip


def read_rows(sweep: Path) -> list[dict[str, str]]:
    with open(sweep / "sweep_summary.csv") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def partial_sweep(tmp_path: Path) -> Path:
    """Five planned jobs: two completed, one failed, one still running, one not started."""
    sweep = tmp_path / "sweep"
    write_multirun(sweep, ["experiment=smoke", "compression=glr", "group=1,2,4,8,16"])
    base = ["experiment=smoke", "compression=glr"]
    write_job(sweep, 0, [*base, "group=1"], completed("glr", 1, 0.80, 1000.0, 5.0))
    write_job(sweep, 1, [*base, "group=2"], completed("glr", 2, 0.70, 500.0, 9.0))
    write_job(
        sweep,
        2,
        [*base, "group=4"],
        {
            "status": "failed",
            "error": "FloatingPointError: train loss is nan\nat step 3",
            "config": {"group": 4},
        },
    )
    write_job(sweep, 3, [*base, "group=8"], None)  # running: folder, no summary yet
    return sweep


def test_partial_sweep_table_lists_every_job_with_its_status(partial_sweep: Path) -> None:
    report = build_report(partial_sweep)
    rows = read_rows(partial_sweep)
    assert [(row["job"], row["status"]) for row in rows] == [
        ("0", "completed"), ("1", "completed"), ("2", "failed"), ("3", "running"), ("4", "missing"),
    ]  # fmt: skip
    assert rows[2]["error"].startswith("FloatingPointError: train loss is nan")
    assert rows[4]["overrides"] == "experiment=smoke compression=glr group=16"
    assert rows[0]["slurm_job_id"] == "40_1" and rows[0]["test/acc"] == "0.8"
    assert rows[0]["hw/vwsdk/cycles"] == "1000.0" and rows[1]["parameters/total"] == "2000"
    assert list(rows[0])[:4] == ["job", "status", "error", "overrides"]
    assert report.counts == {"completed": 2, "failed": 1, "running": 1, "missing": 1}
    text = format_report(report)
    assert "5 jobs: 2 completed, 1 failed, 1 running, 1 missing" in text
    assert "FAILED #2 [experiment=smoke compression=glr group=4]: FloatingPointError" in text


def test_plots_one_panel_per_mapping_and_skip_references(partial_sweep: Path) -> None:
    report = build_report(partial_sweep)
    assert sorted(path.name for path in report.plots) == ["acc_vs_cycles.png", "acc_vs_energy.png"]
    for path in report.plots:
        assert path.read_bytes()[:8] == PNG
    rows = [row for row in report.rows if row["status"] == "completed"]
    assert cost_mappings(rows, "cycles") == ["im2col", "vwsdk"]  # no *_naive, no dense_* reference
    assert cost_mappings(rows, "energy_uj") == ["im2col", "vwsdk"]
    assert point_labels(rows) == ["group=1", "group=2"]


def test_missing_cost_keys_give_a_table_and_a_clear_message(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    write_multirun(sweep, ["group=1,2"])
    for num in range(2):
        summary = completed("lr", num + 1, 0.5, 1.0, 1.0)
        summary["cost"] = {}
        write_job(sweep, num, [f"group={num + 1}"], summary)
    report = build_report(sweep)
    assert report.plots == [] and len(read_rows(sweep)) == 2
    assert any("cost estimator not configured" in message for message in report.messages)
    assert not (sweep / "acc_vs_cycles.png").exists()


def test_slurm_manifest_marks_lost_and_pending_jobs(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    write_multirun(sweep, ["group=1,2,4"])
    write_job(sweep, 0, ["group=1"], {"status": "running", "config": {"group": 1}})
    manifest = {
        "jobs": {
            "0": {"job_id": "7_0", "state": "failed", "error": "SlurmJobError: SLURM job 7_0 ended without a result (state OUT_OF_MEMORY)"},
            "1": {"job_id": "7_1", "state": "submitted", "error": None},
            "2": {"job_id": "7_2", "state": "submitted", "error": None},
        }
    }  # fmt: skip
    (sweep / "slurm_jobs.json").write_text(json.dumps(manifest))
    rows = [(job.status, job.slurm_job_id, job.error) for job in discover_jobs(sweep)]
    assert rows[0][0] == "failed" and "OUT_OF_MEMORY" in str(rows[0][2]) and rows[0][1] == "7_0"
    assert rows[1:] == [("pending", "7_1", None), ("pending", "7_2", None)]


def test_job_status_file_records_failures_outside_the_pipeline(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    write_multirun(sweep, ["group=1"])
    job = write_job(sweep, 0, ["group=1"], None)
    (job / "job_status.json").write_text(
        json.dumps({"status": "failed", "error": "FileExistsError: holds checkpoints"})
    )
    (only,) = discover_jobs(sweep)
    assert (only.status, only.error) == ("failed", "FileExistsError: holds checkpoints")


def test_planned_overrides_expand_the_sweep_like_hydra(tmp_path: Path) -> None:
    write_multirun(tmp_path, ["compression=lr,glr", "group=1,2", "seed=3"])
    assert planned_overrides(tmp_path) == [
        ["compression=lr", "group=1", "seed=3"],
        ["compression=lr", "group=2", "seed=3"],
        ["compression=glr", "group=1", "seed=3"],
        ["compression=glr", "group=2", "seed=3"],
    ]
    assert planned_overrides(tmp_path / "nothing") is None


@pytest.mark.parametrize(
    ("costs", "accuracies", "front"),
    [
        ([1, 2, 3], [0.5, 0.6, 0.7], [0, 1, 2]),  # every point trades cost for accuracy
        ([1, 2, 3], [0.7, 0.6, 0.5], [0]),  # the cheapest is also the best
        ([3, 1, 2, 2], [0.9, 0.5, 0.4, 0.8], [1, 3, 0]),  # dominated points dropped, order by cost
        ([1, 1], [0.5, 0.5], [0, 1]),  # duplicates both kept
        ([], [], []),
    ],
)
def test_pareto_front(costs: list[float], accuracies: list[float], front: list[int]) -> None:
    assert pareto_front(costs, accuracies) == front


def test_accuracy_column_prefers_test_accuracy() -> None:
    assert accuracy_column([{"test/acc": 0.5, "val/acc": 0.4}]) == "test/acc"
    assert accuracy_column([{"val/acc_best": 0.5, "val/acc": 0.4}]) == "val/acc_best"
    assert accuracy_column([{"val/acc": 0.4}], preferred="val/acc") == "val/acc"
    assert accuracy_column([{"error": "x"}]) is None


def test_report_script_rebuilds_and_exits_nonzero_on_failures(
    partial_sweep: Path, tmp_path: Path
) -> None:
    (partial_sweep / "sweep_summary.csv").unlink(missing_ok=True)
    script = [sys.executable, str(ROOT / "src" / "report.py")]
    result = subprocess.run(
        [*script, str(partial_sweep)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 1, result.stderr
    assert "2 completed, 1 failed, 1 running, 1 missing" in result.stdout
    assert (partial_sweep / "sweep_summary.csv").exists()
    header = next(line for line in result.stdout.splitlines() if line.startswith("job"))
    assert header.split()[:5] == ["job", "status", "overrides", "method", "test/acc"]
    assert any(
        line.split()[:3] == ["1", "completed", "group=2"] for line in result.stdout.splitlines()
    )
    missing = subprocess.run(
        [*script, str(tmp_path / "nope")], capture_output=True, text=True, timeout=300
    )
    assert missing.returncode == 2 and "is not a folder" in missing.stderr


def _report_script() -> Any:
    spec = importlib.util.spec_from_file_location("report_script", ROOT / "src" / "report.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_report_prints_the_sweep_table_as_csv_or_latex(
    partial_sweep: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = _report_script()
    assert script.main([str(partial_sweep), "--no-plots", "--format", "csv"]) == 1
    out = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(out.out)))
    assert [(r["job"], r["status"], r["overrides"]) for r in rows][:3] == [
        ("0", "completed", "group=1"), ("1", "completed", "group=2"), ("2", "failed", "group=4"),
    ]  # fmt: skip
    assert float(rows[1]["vwsdk cycles"]) == 500.0 and float(rows[0]["test/acc"]) == 0.8
    assert "1 failed" in out.err  # the summary goes to stderr, stdout is only the table
    assert script.main([str(partial_sweep), "--no-plots", "--format", "latex"]) == 1
    latex = capsys.readouterr().out
    assert "\\begin{tabular}" in latex and "test/acc" in latex and "vwsdk cycles" in latex


def _study_rows(seeds: int = 3) -> list[dict[str, Any]]:
    """Three seeds per setting; two GLR settings land almost on the same spot. The dense model
    takes 1000 cycles on sdk (3x faster than on im2col, as dense ResNet-20 on imc256)."""
    settings = [
        ("none", "", [0.910, 0.914, 0.918], 1.0),
        ("glr", "group=2", [0.900, 0.904, 0.902], 2.00),
        ("glr", "group=4", [0.899, 0.903, 0.901], 2.02),
        ("prune_channel", "sparsity=0.5", [0.870, 0.880, 0.875], 1.9),
    ]
    rows = []
    for method, extra, accuracies, speedup in settings:
        for seed, acc in enumerate(accuracies[:seeds]):
            rows.append({
                "status": "completed", "compression": method, "test/acc": acc, "hw": "imc256",
                "overrides": f"compression={method} {extra} seed={seed}",
                "hw/sdk/speedup_vs_im2col": 3 * speedup, "hw/sdk/cycles": 1000 / speedup,
                "hw/dense_im2col/cycles": 3000.0,
            })  # fmt: skip
    add_dense_reference(rows)  # from the compression=none jobs: summaries older than dense_sdk
    return rows


def test_plot_has_seed_error_bars_dense_reference_lines_and_separate_labels() -> None:
    rows = _study_rows()
    drawn = accuracy_figure(rows, "test/acc", QUANTITIES["speedup"][0])
    assert drawn is not None
    figure, (axes,) = drawn
    bars = {c.get_label(): c for c in axes.containers if isinstance(c, ErrorbarContainer)}
    assert set(bars) == {"none", "glr", "prune_channel"}  # one colour (container) per method
    colours = {tuple(c.lines[0].get_color()) for c in bars.values()}
    assert len(colours) == 3
    glr_x = sorted(bars["glr"].lines[0].get_xdata())
    assert glr_x == pytest.approx([2.00, 2.02])  # seeds grouped: one point per setting
    (bar_lines,) = bars["glr"].lines[2]
    half_lengths = sorted((seg[1][1] - seg[0][1]) / 2 for seg in bar_lines.get_segments())
    assert half_lengths == pytest.approx([statistics.stdev([0.899, 0.903, 0.901])] * 2)
    lines = {line.get_label(): line for line in axes.get_lines()}
    dense = lines["dense accuracy (mean of 3)"]
    assert dense.get_ydata()[0] == pytest.approx(statistics.fmean([0.910, 0.914, 0.918]))
    assert lines["dense model on sdk"].get_xdata()[0] == 1.0  # speedup axis: dense sdk is 1
    assert "error bars: std over 3 seeds" in figure.texts[0].get_text()  # the suptitle
    renderer = figure.canvas.get_renderer()
    labels = [text for text in axes.texts if text.get_text()]
    assert {t.get_text() for t in labels} == {"group=2", "group=4", "sparsity=0.5"}
    boxes = [t.get_window_extent(renderer) for t in labels]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])


def test_cost_axis_reference_is_the_dense_models_cycles_on_the_same_mapping() -> None:
    drawn = accuracy_figure(_study_rows(), "test/acc", QUANTITIES["cost"][0])
    assert drawn is not None
    lines = {line.get_label(): line for line in drawn[1][0].get_lines()}
    assert lines["dense model on sdk"].get_xdata()[0] == 1000.0  # not dense im2col's 3000


def test_single_seed_plot_has_no_error_bars_and_says_so() -> None:
    drawn = accuracy_figure(_study_rows(seeds=1), "test/acc", QUANTITIES["speedup"][0])
    assert drawn is not None
    figure, (axes,) = drawn
    bars = [c for c in axes.containers if isinstance(c, ErrorbarContainer)]
    assert bars and not any(c.has_yerr for c in bars)
    title = figure.texts[0].get_text()
    assert "one seed per point: no error bars" in title and "std over" not in title


def test_sweep_table_speedup_is_against_dense_on_the_same_mapping() -> None:
    rows = _study_rows(seeds=1)
    table = sweep_table(rows, "test/acc")
    names = [c.name for c in table.columns]
    assert "same mapping and array (imc256)" in str(table.title)
    speedup = [row[names.index("sdk speedup vs dense sdk")] for row in table.rows]
    im2col = [row[names.index("sdk speedup vs dense im2col")] for row in table.rows]
    assert speedup == pytest.approx([1.0, 2.00, 2.02, 1.9])
    assert im2col == pytest.approx([3.0, 6.00, 6.06, 5.7])


def test_glr_sdk_speedup_is_against_dense_resnet20_on_sdk(compose: Any) -> None:
    """Dense ResNet-20 takes 3,713 cycles on SDK on imc256 (3.07x over im2col): the sdk speedup
    of a GLR model is against those cycles, not against dense im2col."""
    import torch

    from imcompress.compression import apply_compression
    from imcompress.crossbar import estimate
    from imcompress.models.resnet import CifarResNet

    torch.manual_seed(0)
    model = CifarResNet(depth=20, num_classes=10, in_channels=3)
    apply_compression(model, {"method": "glr", "rank": 0.25, "groups": 2})
    hw = compose(["hw=imc256"], config_name="estimate").hw
    totals = estimate(model, (3, 32, 32), hw, ["im2col", "sdk"]).totals()
    assert totals["dense_sdk/cycles"] == 3713
    assert totals["dense_im2col/cycles"] / totals["dense_sdk/cycles"] == pytest.approx(
        3.07, abs=0.01
    )
    summary = {"status": "completed", "config": {"compression": "glr", "hw": "imc256"},
               "cost": totals, "metrics": {"test/acc": 0.5}}  # fmt: skip
    from imcompress.runs.summary import headline_numbers

    numbers = headline_numbers(summary)
    assert numbers["hw/sdk/speedup_vs_dense"] == round(3713 / totals["sdk/cycles"], 2)
    row = {"compression": "glr", "hw": "imc256", "test/acc": 0.5,
           **{f"hw/{k}": v for k, v in totals.items()}}  # fmt: skip
    table = sweep_table([row], "test/acc")
    column = [c.name for c in table.columns].index("sdk speedup vs dense sdk")
    assert table.rows[0][column] == pytest.approx(3713 / totals["sdk/cycles"])


def test_sweep_table_columns(partial_sweep: Path) -> None:
    report = build_report(partial_sweep, plots=False)
    table = sweep_table(report.rows, report.accuracy)
    names = [c.name for c in table.columns]
    assert names[:6] == ["job", "status", "overrides", "method", "test/acc", "params"]
    assert "vwsdk cycles" in names and "im2col energy (uJ)" in names
    assert len(table.rows) == 5
