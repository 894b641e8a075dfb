"""``apply_compression``: check the whole plan, then convert the selected layers in place."""

from __future__ import annotations

from typing import Any

from torch import nn

from imcompress.compression.options import options_record, parse_options
from imcompress.compression.registry import get_method, raise_problems
from imcompress.compression.result import CompressionResult, count_parameters
from imcompress.compression.schemas import SelectionFields
from imcompress.compression.selection import select_layers


def apply_compression(model: nn.Module, cfg: Any) -> CompressionResult:
    """Convert ``model`` in place according to ``cfg`` (the ``compression`` config node).

    Every check (config values, layer selection, groups dividing channels, ranks, kernel
    sizes) runs before the first module is changed; a failure raises ValueError naming the
    layers and the valid range. ``method: none`` (or ``cfg=None``) leaves the model unchanged.
    Pruning one-shot sets the final masks now; gradual pruning starts with all-ones masks and
    ``result.schedule`` says how the training layer raises the sparsity
    (``imcompress.callbacks.pruning.PruningCallback.from_result``).
    """
    opts = parse_options(cfg)
    method = get_method(opts.method)
    params_before = count_parameters(model)
    if isinstance(opts, SelectionFields) and opts.plan:  # per-layer plan of src/plan.py
        from imcompress.compression.plan import apply_plan

        conversion = apply_plan(model, opts)  # checks every planned layer first
    else:
        targets = _selected_layers(model, opts)
        settings = method.layer_settings(opts, targets)
        raise_problems(method.check_layers(opts, targets, settings), opts.method)
        conversion = method.apply(model, targets, opts, settings)
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
