"""Apply a per-layer plan (``compression.plan=FILE``, written by ``src/plan.py``).

Every planned layer names a registered method and that method's own per-layer settings
(:mod:`imcompress.compression.plan_file`); the layers of one method go through that method's
``check_layers`` and ``apply``, the same path a uniform config takes (the registry's step 3
hook), so a plan may mix methods and a new method is plannable without changes here. Before
any module changes, the plan is checked against the model (the configured model name, input
shape and conv layers must be the planned ones) and every layer against its method; one
ValueError lists every problem. A plan made for another hw preset is applied with a warning
that its ``predicted`` costs do not apply. See docs/planner.md.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from torch import nn

from imcompress.compression.options import parse_options
from imcompress.compression.plan_file import Plan, conv_digest, read_plan
from imcompress.compression.registry import (
    CompressionMethod,
    Conversion,
    Targets,
    get_method,
)
from imcompress.compression.schedule import SparsitySchedule

__all__ = ["PlannedMethod", "apply_plan", "check_plan", "check_target"]

log = logging.getLogger(__name__)


@dataclass
class PlannedMethod:
    """The layers of one method in a plan: its options, targets and per-layer settings."""

    method: CompressionMethod[Any, Any]
    opts: Any
    targets: Targets
    settings: dict[str, Any]


def check_target(plan: Plan, model: nn.Module, opts: Any) -> None:
    """ValueError (one line) when ``model`` or the configured model name / input shape are not
    the plan's; a warning when the configured hw preset differs from the plan's."""
    where = f"compression.plan={opts.plan}"
    count, digest = conv_digest(model)
    name = getattr(opts, "model", None)
    shape = getattr(opts, "input_shape", None)
    made = f"model {plan.model} (input {list(plan.input_shape)}, {plan.model_convs} convs)"
    now = (
        f"model {name} (input {list(shape)}, {count} convs)"
        if name is not None and shape is not None
        else f"a model whose convs differ ({count} convs, or other shapes: another model or "
        "input channels)"
    )
    if (
        (name is not None and plan.model is not None and name != plan.model)
        or (shape is not None and list(shape) != list(plan.input_shape))
        or (plan.model_digest and digest != plan.model_digest)
    ):
        raise ValueError(
            f"{where} was made for {made} but the configured one is {now}; "
            "make a plan for this model and data (src/plan.py)"
        )
    hw = getattr(opts, "hw", None)
    if hw is not None and hw != plan.hw:
        log.warning(
            "%s was made for hw=%s; applied with hw=%s its `predicted` costs do not apply "
            "(the estimate reports this hw's costs)",
            where,
            plan.hw,
            hw,
        )


def _method_options(plan: Plan, name: str, opts: Any) -> tuple[Any, list[str]]:
    """Options of method ``name`` for the plan: the configured ones when the config names that
    method (checked against the plan's recorded options), else the plan's on the defaults."""
    method = get_method(name)
    saved = plan.options.get(name, {})
    if opts.method != name:
        return parse_options({"method": name, **saved}), []
    current = method.plan_options(opts)
    different = [
        f"compression.{k}: plan {v!r} vs config {current[k]!r}"
        for k, v in saved.items()
        if k in current and v != current[k]
    ]
    if different:
        return opts, [
            f"made with other {name} options; set them as in the plan: " + "; ".join(different)
        ]
    return opts, []


def check_plan(model: nn.Module, plan: Plan, opts: Any) -> list[PlannedMethod]:
    """Every planned method's layers, after checking the plan against ``model`` and each
    layer against its method; ValueError listing every problem, nothing changed."""
    check_target(plan, model, opts)
    if opts.method not in ("plan", *plan.methods):
        raise ValueError(
            f"compression.plan is a plan of {plan.methods} but compression.method="
            f"{opts.method!r}; use compression=plan (or compression={plan.methods[0]})"
        )
    modules = dict(model.named_modules())
    problems: list[str] = []
    by_method: dict[str, Targets] = {}
    for name, layer in plan.layers.items():
        conv = modules.get(name)
        if not isinstance(conv, nn.Conv2d) or conv.groups != 1:
            problems.append(f"{name}: not a dense nn.Conv2d of this model")
        elif tuple(conv.weight.shape) != layer.shape:
            problems.append(
                f"{name}: plan shape {list(layer.shape)} but the model has {list(conv.weight.shape)}"
            )
        elif layer.method != "none":
            by_method.setdefault(layer.method, []).append((name, conv))
    planned = []
    for name, targets in by_method.items():
        method_opts, bad = _method_options(plan, name, opts)
        problems += bad
        method = get_method(name)
        settings = {t: plan.layers[t].settings for t, _ in targets}
        problems += [str(p) for p in method.check_layers(method_opts, targets, settings)]
        planned.append(PlannedMethod(method, method_opts, targets, settings))
    from imcompress.compression.methods.pruning import PruningMethod

    masked = [p.method.name for p in planned if isinstance(p.method, PruningMethod)]
    if len(masked) > 1:  # the training layer drives one pruner
        problems.append(f"at most one mask method per plan, got {masked}")
    if problems:
        listing = "\n  ".join(problems)
        raise ValueError(
            f"compression.plan does not match the model ({len(problems)} problem(s)); nothing "
            f"was changed:\n  {listing}"
        )
    return planned


def apply_plan(model: nn.Module, opts: Any) -> Conversion:
    """Convert ``model`` in place as the plan file ``opts.plan`` says (everything checked
    first); each method converts its own layers, a mask method returns its pruner."""
    plan = read_plan(opts.plan)
    planned = check_plan(model, plan, opts)
    merged = Conversion()
    for part in planned:
        conversion = part.method.apply(model, part.targets, part.opts, part.settings)
        merged.layers += conversion.layers
        if conversion.pruner is not None:
            merged.pruner, merged.schedule = conversion.pruner, conversion.schedule
    if merged.pruner is not None and merged.schedule is None:
        merged.schedule = SparsitySchedule(final=merged.pruner.sparsity())
    return merged
