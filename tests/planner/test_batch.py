"""Batched candidate costing equals one estimator call per candidate, and the report's totals."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from torch import nn

from imcompress.compression.options import parse_options
from imcompress.compression.registry import get_method
from imcompress.compression.selection import select_layers
from imcompress.crossbar.batch import METRICS, concat_tables, cost_rows
from imcompress.crossbar.config import HardwareConfig
from imcompress.crossbar.cost_report import build_report
from imcompress.crossbar.extract import extract_layers
from imcompress.planner.items import PlanSpace
from tests.planner.conftest import INPUT_SHAPE


@pytest.mark.parametrize("mapping", ["sdk", "vwsdk", "im2col"])
def test_one_batched_call_equals_a_call_per_candidate(
    model: nn.Module, hw: HardwareConfig, mapping: str
) -> None:
    table = extract_layers(model, INPUT_SHAPE)
    space = PlanSpace(model, table, select_layers(model))
    items = get_method("glr").plan_items(parse_options({"method": "glr"}), space)
    big = concat_tables([item.table for item in items])
    batched = cost_rows(big, hw, mapping)
    rng = np.random.default_rng(0)
    for row in rng.choice(len(big), size=40, replace=False).tolist():
        single = cost_rows(big.select([row]), hw, mapping)
        for metric in METRICS:
            assert single.metric(metric)[0] == batched.metric(metric)[row], (row, metric)


def test_row_costs_sum_to_the_report_totals(model: nn.Module, hw: Any) -> None:
    table = extract_layers(model, INPUT_SHAPE)
    rows = cost_rows(table, hw, "sdk")
    totals = build_report(table, hw, ["sdk"]).totals()
    assert rows.cycles.sum() == totals["sdk/cycles"]
    assert rows.arrays.sum() == totals["sdk/arrays"]
    assert rows.energy_uj.sum() == pytest.approx(totals["sdk/energy_uj"], rel=1e-12)
