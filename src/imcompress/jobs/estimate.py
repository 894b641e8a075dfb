"""The job behind ``src/estimate.py``: a model's crossbar cost report, without data or training."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from imcompress import compression
from imcompress.config import check_required, config_essentials
from imcompress.crossbar import estimate
from imcompress.crossbar.export import format_cost_report
from imcompress.crossbar.options import parse_methods, parse_option
from imcompress.models.build import build_model
from imcompress.reporting.tables import TableFormat
from imcompress.runs.summary import git_commit, write_summary


def run_estimate(cfg: DictConfig) -> float:
    """Print and save the cost report; return the SDK cycles (or the first mapping's).

    ``cfg.format`` (``console`` | ``md`` | ``latex`` | ``csv``) selects how the per-layer and
    totals tables are printed; with any format but ``console`` stdout holds only the tables
    (everything else goes to stderr), so it can be redirected into a paper.
    """
    started = time.perf_counter()
    fmt = parse_option(TableFormat, cfg.get("format") or "console", "format")
    mappings = parse_methods(cfg.mappings)
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    check_required(cfg)
    torch.manual_seed(int(cfg.seed))  # the model's random init (estimate needs no other RNG)
    notes = sys.stdout if fmt == TableFormat.console else sys.stderr
    data = cfg.data
    model = build_model(cfg.model, int(data.channels), int(data.num_classes))
    if cfg.get("pretrained"):
        compression.load_pretrained(model, cfg.pretrained)
    # costs only: data-aware options (whitened, activation) change values, not structure
    compressed = compression.apply_compression(model, cfg.get("compression"), structure_only=True)
    compressed.apply_final_masks()  # gradual pruning starts dense: cost the final masks
    if compressed.layers:
        print(compression.format_compression_table(compressed), file=notes)
    input_shape = (int(data.channels), int(data.image_size), int(data.image_size))
    report = estimate(model, input_shape, cfg.hw, mappings)
    print(format_cost_report(report, fmt), end="")
    report.to_json(output_dir / "cost_report.json")
    report.to_csv(output_dir / "cost_report.csv")
    totals = report.totals()
    summary: dict[str, Any] = {
        "status": "completed",
        "config": config_essentials_without_trainer(cfg),
        "input_shape": list(input_shape),
        "parameters": {"total": sum(p.numel() for p in model.parameters())},
        "compression": compressed.summary(),
        "cost": totals,
        "git_commit": git_commit(),
        "wall_time_s": round(time.perf_counter() - started, 3),
        "output_dir": str(output_dir),
    }
    write_summary(output_dir, summary)
    print(f"cost report: {output_dir / 'cost_report.json'} and .csv", file=notes)
    key = "sdk/cycles" if "sdk/cycles" in totals else f"{mappings[0]}/cycles"
    return float(totals[key])


def config_essentials_without_trainer(cfg: DictConfig) -> dict[str, Any]:
    """:func:`config_essentials` for a config that has no trainer group."""
    essentials = config_essentials(cfg)
    essentials.pop("max_epochs", None)
    return essentials
