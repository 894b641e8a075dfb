"""``apply_compression``: check the whole plan, then convert the selected layers in place."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from imcompress.compression.calibration import (
    collect_calibration,
    missing_data_error,
    needs_calibration,
    use_calibration,
)
from imcompress.compression.options import options_record, parse_options
from imcompress.compression.registry import get_method, raise_problems
from imcompress.compression.result import CompressionResult, count_parameters
from imcompress.compression.schemas import SelectionFields
from imcompress.compression.selection import select_layers


def apply_compression(
    model: nn.Module,
    cfg: Any,
    calibration: Iterable[torch.Tensor] | None = None,
    *,
    structure_only: bool = False,
) -> CompressionResult:
    """Convert ``model`` in place according to ``cfg`` (the ``compression`` config node).

    Every check (config values, layer selection, groups dividing channels, ranks, kernel
    sizes) runs before the first module is changed; a failure raises ValueError naming the
    layers and the valid range. ``method: none`` (or ``cfg=None``) leaves the model unchanged.
    Pruning one-shot sets the final masks now; gradual pruning starts with all-ones masks and
    ``result.schedule`` says how the training layer raises the sparsity
    (``imcompress.training.callbacks.pruning.PruningCallback.from_result``).

    The data-aware options (``factorization: whitened``, ``criterion: activation``) read the
    layer inputs of the dense model on ``calibration`` (input batches, e.g. training images);
    without it they are a ValueError, unless ``structure_only=True``: the modules and masks are
    built data-free because their values come from a checkpoint, or only costs are wanted
    (:mod:`imcompress.compression.calibration`).
    """
    opts = parse_options(cfg)
    option_sets = data_aware_option_sets(model, opts)
    wanted = sorted({key for options in option_sets for key in needs_calibration(options)})
    if wanted and calibration is None and not structure_only:
        raise missing_data_error(wanted)
    data = None
    if wanted and not structure_only and calibration is not None:
        data = collect_calibration(model, _calibration_targets(model, opts), calibration)
    method = get_method(opts.method)
    params_before = count_parameters(model)
    if getattr(opts, "plan", None):  # per-layer plan of src/plan.py (any method's node)
        from imcompress.compression.plan import apply_plan

        conversion = apply_plan(model, opts)  # checks every planned layer first
    else:
        targets = _selected_layers(model, opts)
        settings = method.layer_settings(opts, targets)
        raise_problems(method.check_layers(opts, targets, settings), opts.method)
        conversion = method.apply(model, targets, opts, settings)
    if data is not None:
        for options in option_sets:
            use_calibration(model, conversion, options, data)
    return CompressionResult(
        method=opts.method,
        layers=conversion.layers,
        options=options_record(opts),
        model_params_before=params_before,
        model=model,
        pruner=conversion.pruner,
        schedule=conversion.schedule,
    )


def _selected_layers(model: nn.Module, opts: Any) -> list[tuple[str, nn.Conv2d]]:
    """The convs ``include``/``exclude`` select (none for methods without selection fields)."""
    if not isinstance(opts, SelectionFields):
        return []
    targets = select_layers(model, opts.include, opts.exclude)
    if not targets:
        raise ValueError(
            f"compression={opts.method}: no layer selected (include={opts.include}, "
            f"exclude={opts.exclude}); nothing was changed"
        )
    return targets


def _calibration_targets(model: nn.Module, opts: Any) -> list[tuple[str, nn.Conv2d]]:
    """The convs whose inputs calibration records: the selection, or for a plan every dense
    conv (the plan file names the converted ones)."""
    if getattr(opts, "plan", None):
        return [
            (name, m)
            for name, m in model.named_modules()
            if isinstance(m, nn.Conv2d) and m.groups == 1
        ]
    return _selected_layers(model, opts)


def data_aware_option_sets(model: nn.Module, opts: Any) -> list[Any]:
    """The option sets whose data-aware choices apply: ``opts``, or for a plan every planned
    method's options (a ``compression=plan`` node takes them from the plan file)."""
    if not getattr(opts, "plan", None):
        return [opts]
    from imcompress.compression.plan import check_plan
    from imcompress.compression.plan_file import read_plan

    return [opts, *(part.opts for part in check_plan(model, read_plan(opts.plan), opts))]
