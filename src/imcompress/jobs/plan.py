"""The job behind ``src/plan.py``: build, calibrate, plan, write the plan file, verify it."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import hydra
import lightning.pytorch as pl
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from imcompress import compression
from imcompress.compression.options import parse_options
from imcompress.compression.plan_file import Plan, settings_entry, write_plan
from imcompress.compression.registry import get_method, plannable_methods
from imcompress.compression.selection import select_layers
from imcompress.config import check_required
from imcompress.crossbar import estimate
from imcompress.crossbar.config import HardwareConfig
from imcompress.models.build import build_model
from imcompress.planner.config import Budget, check_plan_config
from imcompress.planner.proxy import capture_inputs, single_thread
from imcompress.planner.search import PlanRequest, make_plan

ACTIVATION_NOTE = (
    "{methods} with criterion=activation: the planner scored weights by the input norms of its "
    "own calibration sample (plan.calibration_batches, plan.max_positions); applied, the masks "
    "are chosen from compression.calibration_batches training batches, so the kept weights, and "
    "with them cycles, energy and arrays, can differ from `predicted` (the per-layer sparsities "
    "and params are the plan's); verify was skipped"
)


def plan_methods(cfg: DictConfig) -> tuple[Any, dict[str, Any]]:
    """The ``compression`` node's checked options and every planned method's options (the
    node's for its own method, ``plan.options.<method>`` on the defaults for the others);
    all checked before any work."""
    plan = cfg.plan
    check_plan_config(plan)
    opts = parse_options(cfg.compression)
    if getattr(opts, "plan", None):
        raise ValueError("compression.plan must be null when making a plan")
    names = list(plan.methods) if plan.methods else [opts.method]
    valid = plannable_methods()
    if any(name not in valid for name in names):
        raise ValueError(f"plan.methods={names}: valid methods are {valid}")
    unknown = sorted(set(plan.options) - set(names))
    if unknown:
        raise ValueError(
            f"plan.options names methods {unknown} that are not in plan.methods={names}"
        )
    methods = {}
    for name in names:
        given = plan.options.get(name)
        node = OmegaConf.to_container(given, resolve=True) if OmegaConf.is_config(given) else {}
        assert isinstance(node, dict)
        method_opts = opts if name == opts.method else parse_options({"method": name, **node})
        plan_check = getattr(get_method(name), "plan_check", None)
        if plan_check is not None:
            plan_check(method_opts)
        schedule = getattr(method_opts, "schedule", "oneshot")
        if schedule != "oneshot":
            raise ValueError(f"a plan is one-shot; got compression.schedule={schedule!r}")
        methods[name] = method_opts
    return opts, methods


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


def verify_plan(model: nn.Module, cfg: DictConfig, plan_file: Path, plan: Plan) -> None:
    """Apply the written plan to a copy of ``model`` (``compression=plan``) and check that the
    estimator's totals equal ``predicted`` exactly."""
    applied = copy.deepcopy(model)
    node = {
        "method": "plan",
        "plan": str(plan_file),
        "model": plan.model,
        "input_shape": list(plan.input_shape),
        "hw": plan.hw,
    }
    result = compression.apply_compression(applied, node, structure_only=True)
    result.apply_final_masks()
    mapping = plan.mapping
    totals = estimate(applied, list(plan.input_shape), cfg.hw, [mapping]).totals()
    measured = {
        "cycles": totals[f"{mapping}/cycles"],
        "latency_us": totals[f"{mapping}/latency_us"],
        "energy_uj": totals[f"{mapping}/energy_uj"],
        "arrays": totals[f"{mapping}/arrays"],
        "params": compression.count_parameters(applied),
    }
    wrong = {k: (plan.predicted[k], v) for k, v in measured.items() if plan.predicted[k] != v}
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
    opts, methods = plan_methods(cfg)
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
        methods,
        HardwareConfig.from_cfg(cfg.hw),
        str(plan_cfg.mapping),
        inputs=inputs,
        sensitivity=str(plan_cfg.sensitivity),
        groups=list(plan_cfg.groups) if plan_cfg.groups is not None else None,
        sparsity_grid=tuple(float(s) for s in plan_cfg.sparsity_grid),
        model_name=cfg.model.get("name"),
    )
    plan = make_plan(request, budget, bins=int(plan_cfg.bins))
    scored = [m for m, o in methods.items() if str(getattr(o, "criterion", "")) == "activation"]
    if scored:
        plan.note = ACTIVATION_NOTE.format(methods=", ".join(scored))
    write_plan(plan, out)  # atomic: a failed write leaves no plan file
    if plan_cfg.verify and not scored:
        try:
            verify_plan(model, cfg, out, plan)
        except BaseException:
            out.unlink(missing_ok=True)  # never leave a plan that does not hold
            raise
    print(format_plan(plan))
    print(f"plan written to {out} ({time.perf_counter() - started:.1f} s)")
    return float(plan.predicted["error"])


def format_plan(plan: Plan) -> str:
    """A short text summary: budget, predicted vs dense, per-layer settings, uniform."""
    b, p, d = plan.budget, plan.predicted, plan.dense
    lines = [
        f"plan: {'+'.join(plan.methods)} on {plan.hw} ({plan.mapping}), budget {b['metric']} <= "
        f"{b['value']:,.6g}",
        "  " + ", ".join(f"{k} {p[k]:,.6g} (dense {d[k]:,.6g})" for k in d),
        f"  total weighted error {p['error']:.4g}",
    ]
    for name, layer in plan.layers.items():
        fields = settings_entry(layer.settings)
        setting = " ".join([layer.method, *(f"{k} {v}" for k, v in fields.items())])
        lines.append(
            f"  {name:<24} {setting:<30} cycles {layer.costs['cycles']:>10,} "
            f"error {layer.error:.4f}"
        )
    if plan.uniform is None:
        low = plan.uniform_cheapest or {}
        lines.append(
            f"  uniform: no single setting meets the budget (the cheapest reaches "
            f"{b['metric']} {low.get(b['metric'], float('nan')):,.6g})"
        )
    else:
        u = plan.uniform
        label = ", ".join(f"{k} {v}" for k, v in u.items() if k not in (*d, "error"))
        lines.append(
            f"  uniform best: {label}, {b['metric']} {u[b['metric']]:,.6g}, error {u['error']:.4g}"
        )
    return "\n".join(lines)
