"""src/estimate.py as a user runs it: a cost report with no data and no training."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from imcompress.jobs.estimate import run_estimate
from tests.conftest import read_summary, run_script


def test_estimate_glr_report_files_and_totals(tmp_path: Path) -> None:
    job = tmp_path / "job"
    result = run_script(
        "estimate.py",
        "model=wrn16_4",
        "compression=glr",
        "rank=4",
        "group=2",
        "hw=imc512",
        f"hydra.run.dir={job}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "crossbar cost per layer" in result.stdout and "totals per image" in result.stdout
    summary = read_summary(job)
    assert summary["config"]["compression"] == "glr" and summary["config"]["hw"] == "imc512"
    assert {layer["groups"] for layer in summary["compression"]["layers"]} == {2}
    report = json.loads((job / "cost_report.json").read_text())
    assert report  # per-layer rows and totals
    assert (job / "cost_report.csv").read_text().count("\n") > 10
    for mapping in ("im2col", "sdk", "vwsdk"):
        assert summary["cost"][f"{mapping}/cycles"] > 0
    assert summary["cost"]["sdk/cycles"] <= summary["cost"]["im2col/cycles"]


def test_estimate_multirun_over_array_sizes(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    result = run_script(
        "estimate.py",
        f"hydra.sweep.dir={sweep}",
        "-m",
        "hw=imc64,imc128,imc256,imc512",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summaries = [read_summary(sweep / str(job)) for job in range(4)]
    assert [s["config"]["hw"] for s in summaries] == ["imc64", "imc128", "imc256", "imc512"]
    cycles = [s["cost"]["im2col/cycles"] for s in summaries]
    assert cycles == sorted(cycles, reverse=True) and cycles[0] > cycles[-1]


def test_estimate_sees_pruning_masks(tmp_path: Path) -> None:
    """Input-channel pattern pruning skips rows (fewer SDK cycles); channel pruning drops columns."""
    dense = run_script("estimate.py", f"hydra.run.dir={tmp_path / 'dense'}", cwd=tmp_path)
    pattern = run_script(
        "estimate.py",
        "compression=prune_pattern",
        "compression.pattern_dim=input_channel",
        "compression.pattern_set=nentry",
        "compression.pattern_entries=1",
        "sparsity=0.8",
        f"hydra.run.dir={tmp_path / 'pattern'}",
        cwd=tmp_path,
    )
    channel = run_script(
        "estimate.py",
        "compression=prune_channel",
        "sparsity=0.5",
        f"hydra.run.dir={tmp_path / 'channel'}",
        cwd=tmp_path,
    )
    for result in (dense, pattern, channel):
        assert result.returncode == 0, result.stderr[-3000:]
    dense_cost = read_summary(tmp_path / "dense")["cost"]
    pattern_cost = read_summary(tmp_path / "pattern")["cost"]
    channel_cost = read_summary(tmp_path / "channel")["cost"]
    assert pattern_cost["sdk/cycles"] < dense_cost["sdk/cycles"]
    assert pattern_cost["sdk/row_skipping_layers"] > 0
    assert (
        pattern_cost["sdk/energy_periphery_uj"] > 0 and dense_cost["sdk/energy_periphery_uj"] == 0
    )
    assert channel_cost["im2col/cycles"] < dense_cost["im2col/cycles"]


def test_estimate_prints_paper_tables_and_rejects_a_bad_format(tmp_path: Path) -> None:
    """format=csv: stdout is only the two CSV tables, equal to the saved totals."""
    job = tmp_path / "job"
    result = run_script(
        "estimate.py", "compression=glr", "rank=4", "group=2", "hw=imc64", "format=csv",
        f"hydra.run.dir={job}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    layer_block, total_block = result.stdout.strip().split("\n\n")
    layers = list(csv.DictReader(io.StringIO(layer_block)))
    totals = {row["mapping"]: row for row in csv.DictReader(io.StringIO(total_block))}
    cost = read_summary(job)["cost"]
    assert len(layers) == cost["layers"]
    assert "k=4 g=2 (R out 8)" in {row["shape"].split(" ", 3)[-1] for row in layers}
    assert float(totals["sdk"]["cycles"]) == cost["sdk/cycles"]
    assert "mapped naively" in totals["sdk_naive"]["note"]
    assert "cost report:" in result.stderr  # notes go to stderr, not into the table


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("format=xls", "format='xls', valid: ['console', 'md', 'latex', 'csv']"),
        ("mappings=[sdk,vw]", "unknown mappings ['vw']; valid: ['im2col', 'sdk', 'vwsdk']"),
    ],
)
def test_bad_output_options_fail_before_any_work(
    compose: Any, tmp_path: Path, override: str, message: str
) -> None:
    cfg = compose([override, f"paths.output_dir={tmp_path / 'job'}"], config_name="estimate")
    with pytest.raises(ValueError, match=re.escape(message)):
        run_estimate(cfg)
    assert not (tmp_path / "job").exists()
