"""Bad values that used to cost a computed result or a machine (issue 16 items 9 and 14)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
from torch import nn

from imcompress.analog.tiles import excluded_names
from imcompress.crossbar.config import MAX_ARRAY_SIDE, HardwareConfig
from imcompress.runs.summary import write_summary

from .conftest import ROOT as REPO_ROOT


def test_a_nan_metric_never_loses_the_summary(tmp_path) -> None:
    # json refuses NaN: the record is written with null in its place and the key named
    summary = {
        "status": "completed",
        "metrics": {"test/acc": 0.5, "test/loss": math.nan},
        "attempts": [{"loss": math.inf}],
    }
    path = write_summary(tmp_path, summary)
    record = json.loads(path.read_text())
    assert record["metrics"] == {"test/acc": 0.5, "test/loss": None}
    assert record["non_finite"] == ["attempts[0].loss", "metrics.test/loss"]
    assert not list(tmp_path.glob("*.tmp"))


def test_an_unknown_analog_exclude_is_refused_naming_it() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2, 2))
    assert excluded_names(model, ["0"]) == ["0"]
    assert excluded_names(model, ["*"]) == ["0", "2"]
    with pytest.raises(ValueError, match=r"\['nosuchlayer'\] match no conv/linear layer.*0, 2"):
        excluded_names(model, ["0", "nosuchlayer"])


@pytest.mark.parametrize("field", ["rows", "cols"])
def test_absurd_array_sizes_are_refused_before_allocating(field) -> None:
    with pytest.raises(ValueError, match=rf"hw.{field}=1000000 .*1\.\.{MAX_ARRAY_SIDE}"):
        HardwareConfig(**{field: 1_000_000})
    HardwareConfig(rows=MAX_ARRAY_SIDE, cols=MAX_ARRAY_SIDE)  # the bound itself is accepted


def test_estimate_refuses_a_million_rows_in_one_line(tmp_path) -> None:
    # the bad thing itself: this used to try to allocate 828 GiB
    run = subprocess.run(
        [
            sys.executable,
            "src/estimate.py",
            "hw.rows=1000000",
            "hw.cols=1000000",
            f"hydra.run.dir={tmp_path}",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode != 0
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: hw.rows=1000000 is larger than the estimator supports (1..{MAX_ARRAY_SIDE}; "
        "fabricated arrays are 64-1024 a side)"
    ]
    assert not (tmp_path / "cost_report.json").exists()
