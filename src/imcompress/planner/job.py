"""The job behind ``src/plan.py``: build, calibrate, plan, write the plan file, verify it."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import hydra
import lightning.pytorch as pl
import torch
import yaml
from omegaconf import DictConfig, OmegaConf
from torch import nn

from imcompress import compression
from imcompress.compression.options import parse_options
from imcompress.compression.selection import select_layers
from imcompress.config import check_required
from imcompress.crossbar import estimate
from imcompress.models.build import build_model
from imcompress.planner.config import check_plan_config
from imcompress.planner.proxy import capture_inputs, single_thread
from imcompress.planner.search import Budget, PlanRequest, make_plan


def plan_options(cfg: DictConfig) -> Any:
    """The checked compression options for the plan's method (before any work)."""
    plan = cfg.plan
    check_plan_config(plan)
    opts = parse_options(cfg.compression)
    method = "glr" if opts.method in ("lr", "glr") else opts.method
    if method != ("glr" if plan.method == "lr" else plan.method):
        raise ValueError(
            f"plan.method={plan.method!r} but compression={opts.method!r}; choose the method with "
            f"compression={plan.method} (it also carries the method's options and layer selection)"
        )
    if getattr(opts, "plan", None):
        raise ValueError("compression.plan must be null when making a plan")
    schedule = getattr(opts, "schedule", "oneshot")
    if method != "glr" and schedule != "oneshot":
        raise ValueError(f"a pruning plan is one-shot; got compression.schedule={schedule!r}")
    if "lr" in (opts.method, plan.method):
        plan.groups = [1]  # plain low rank
        plan.method = "glr"
    return opts


def calibration_batches(cfg: DictConfig, count: int) -> list[torch.Tensor]:
    """``count`` normalized training batches (no augmentation) of ``cfg.data``."""
    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    batches = []
    for images, labels in datamodule.train_dataloader():
        batches.append(datamodule.on_after_batch_transfer((images, labels), 0)[0])
        if len(batches) == count:
            break
    return batches


def verify_plan(model: nn.Module, cfg: DictConfig, plan_file: Path, plan: dict[str, Any]) -> None:
    """Apply the written plan to a copy of ``model`` and check the estimator's totals."""
    applied = copy.deepcopy(model)
    node = OmegaConf.to_container(cfg.compression, resolve=True)
    assert isinstance(node, dict)
    result = compression.apply_compression(applied, {**node, "plan": str(plan_file)})
    result.apply_final_masks()
    mapping = plan["mapping"]
    totals = estimate(applied, plan["input_shape"], cfg.hw, [mapping]).totals()
    measured = {
        "cycles": totals[f"{mapping}/cycles"],
        "latency_us": totals[f"{mapping}/latency_us"],
        "energy_uj": totals[f"{mapping}/energy_uj"],
        "arrays": totals[f"{mapping}/arrays"],
        "params": compression.count_parameters(applied),
    }
    wrong = {k: (plan["predicted"][k], v) for k, v in measured.items() if plan["predicted"][k] != v}
    if wrong:
        raise RuntimeError(
            f"internal error: the applied plan costs differ (predicted, measured): {wrong}"
        )


def run_plan(cfg: DictConfig) -> float:
    """Make the plan, write ``plan.out``, print a summary; return the plan's total error."""
    with single_thread():  # many small SVDs and products: threads only add contention
        return _run_plan(cfg)


def _run_plan(cfg: DictConfig) -> float:
    started = time.perf_counter()
    check_required(cfg)
    opts = plan_options(cfg)
    plan_cfg = cfg.plan
    out = Path(str(plan_cfg.out)).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(cfg.seed, verbose=False)
    data = cfg.data
    model = build_model(cfg.model, int(data.channels), int(data.num_classes))
    if cfg.get("pretrained"):
        compression.load_pretrained(model, cfg.pretrained)
    targets = select_layers(model, opts.include, opts.exclude)
    if not targets:
        raise ValueError(
            f"no layer selected (compression.include={opts.include}, exclude={opts.exclude})"
        )
    input_shape = (int(data.channels), int(data.image_size), int(data.image_size))
    inputs = None
    if plan_cfg.calibration_batches > 0:
        batches = calibration_batches(cfg, int(plan_cfg.calibration_batches))
        inputs = capture_inputs(
            model, batches, targets, int(plan_cfg.max_positions), int(cfg.seed), len(batches)
        )
    budget = Budget(plan_cfg.budget.metric, plan_cfg.budget.value, plan_cfg.budget.ratio)
    request = PlanRequest(
        model,
        input_shape,
        targets,
        str(plan_cfg.method),
        opts,
        cfg.hw,
        str(plan_cfg.mapping),
        inputs=inputs,
        sensitivity=str(plan_cfg.sensitivity),
        groups=list(plan_cfg.groups) if plan_cfg.groups is not None else None,
        sparsity_grid=[float(s) for s in plan_cfg.sparsity_grid],
    )
    plan = make_plan(request, budget, bins=int(plan_cfg.bins), model_name=cfg.model.get("name"))
    plan["proxy"] = "output" if inputs is not None else "weight"
    out.write_text(yaml.safe_dump(plan, sort_keys=False))
    if plan_cfg.verify:
        verify_plan(model, cfg, out, plan)
    print(format_plan(plan))
    print(f"plan written to {out} ({time.perf_counter() - started:.1f} s)")
    return float(plan["predicted"]["error"])


def format_plan(plan: dict[str, Any]) -> str:
    """A short text summary: budget, predicted vs dense, per-layer settings, uniform."""
    b, p, d = plan["budget"], plan["predicted"], plan["dense"]
    lines = [
        f"plan: {plan['method']} on {plan['hw']} ({plan['mapping']}), budget {b['metric']} <= "
        f"{b['value']:,.6g}",
        "  " + ", ".join(f"{k} {p[k]:,.6g} (dense {d[k]:,.6g})" for k in d),
        f"  total weighted error {p['error']:.4g}",
    ]
    for name, entry in plan["layers"].items():
        setting = (
            "dense"
            if entry.get("dense")
            else f"sparsity {entry['sparsity']}"
            if "sparsity" in entry
            else f"rank {entry['rank']} x group {entry['group']}"
        )
        lines.append(
            f"  {name:<24} {setting:<22} cycles {entry['cycles']:>10,} error {entry['error']:.4f}"
        )
    uniform = plan["uniform"]
    if uniform is None:
        low = plan["uniform_cheapest"]
        lines.append(
            f"  uniform: no single setting meets the budget (the cheapest reaches "
            f"{b['metric']} {low[b['metric']]:,.6g})"
        )
    else:
        keys = [k for k in ("group", "rank", "sparsity", "dense") if k in uniform]
        lines.append(
            "  uniform best: "
            + ", ".join(f"{k} {uniform[k]}" for k in keys)
            + f", {b['metric']} {uniform[b['metric']]:,.6g}, error {uniform['error']:.4g}"
        )
    return "\n".join(lines)
