"""What the pruning methods share: schedule checks, per-layer sparsity, pruner and schedule.

A pruning method subclasses :class:`PruningMethod` with its schema (extending
``PruneScheduleFields``) and :meth:`PruningMethod.build_pruner`; one-shot masks are set here,
gradual ones by the training layer's ``PruningCallback`` from the returned schedule.
"""

from __future__ import annotations

import copy
from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import nn

from imcompress.compression.pruning.base import MaskedPruner, ParamKey
from imcompress.compression.registry import CompressionMethod, Conversion, Targets
from imcompress.compression.schedule import SparsitySchedule
from imcompress.compression.schemas import PruneScheduleFields

PruneOptionsT = TypeVar("PruneOptionsT", bound=PruneScheduleFields)


@dataclass(frozen=True)
class PruneLayer:
    """What one layer gets: its target ``sparsity`` in [0, 1)."""

    sparsity: float


def check_fraction(name: str, value: object) -> None:
    """ValueError unless ``value`` is a number in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value < 1.0:
        raise ValueError(f"compression.{name} must be in [0, 1), got {value!r}")


class PruningMethod(CompressionMethod[PruneOptionsT, PruneLayer]):
    """A mask method: a :class:`MaskedPruner` over the targets plus a sparsity schedule."""

    layer_type = PruneLayer

    def check(self, opts: PruneOptionsT) -> None:
        check_fraction("sparsity", opts.sparsity)
        check_fraction("initial_sparsity", opts.initial_sparsity)
        if opts.initial_sparsity > opts.sparsity:
            raise ValueError(
                f"compression.initial_sparsity={opts.initial_sparsity} exceeds "
                f"sparsity={opts.sparsity}; valid: 0..{opts.sparsity}"
            )
        if opts.start_epoch < 0:
            raise ValueError(f"compression.start_epoch must be >= 0, got {opts.start_epoch}")
        if opts.frequency < 1:
            raise ValueError(f"compression.frequency must be >= 1, got {opts.frequency}")
        if opts.end_epoch is not None and opts.end_epoch < opts.start_epoch:
            raise ValueError(
                f"compression.end_epoch={opts.end_epoch} is before start_epoch={opts.start_epoch}"
            )

    def layer_settings(self, opts: PruneOptionsT, targets: Targets) -> dict[str, PruneLayer]:
        return {name: PruneLayer(sparsity=opts.sparsity) for name, _ in targets}

    def check_layers(
        self, opts: PruneOptionsT, targets: Targets, settings: Mapping[str, PruneLayer]
    ) -> list[str]:
        problems = []
        for name, layer in settings.items():
            try:
                check_fraction("sparsity", layer.sparsity)
            except ValueError as err:
                problems.append(f"{name}: {err}")
        levels = sorted({layer.sparsity for layer in settings.values()})
        if len(levels) > 1 and opts.schedule != "oneshot":  # a schedule ramps one target
            problems.append(
                f"per-layer sparsities {levels} need compression.schedule=oneshot, "
                f"got {opts.schedule}"
            )
        return problems

    @abstractmethod
    def build_pruner(self, model: nn.Module, targets: Targets, opts: PruneOptionsT) -> MaskedPruner:
        """The pruner over ``targets`` (it installs all-ones masks)."""

    def apply(
        self,
        model: nn.Module,
        targets: Targets,
        opts: PruneOptionsT,
        settings: Mapping[str, PruneLayer],
    ) -> Conversion:
        levels = {name: float(layer.sparsity) for name, layer in settings.items()}
        if len(set(levels.values())) > 1:  # per-layer settings (a plan): one-shot masks
            planned = PerLayerPruner(self, self.build_pruner(model, targets, opts), levels)
            planned.prune_to(max(levels.values()))
            final = SparsitySchedule(final=max(levels.values()))
            return Conversion(layers=planned.records(), pruner=planned, schedule=final)
        sparsity = next(iter(settings.values())).sparsity
        schedule = SparsitySchedule(
            final=sparsity,
            kind=opts.schedule,
            initial=opts.initial_sparsity,
            start_epoch=opts.start_epoch,
            end_epoch=opts.end_epoch,
            frequency=opts.frequency,
        )
        pruner = self.build_pruner(model, targets, opts)
        if not schedule.gradual:
            pruner.prune_to(sparsity)
        return Conversion(layers=pruner.records(), pruner=pruner, schedule=schedule)

    def layer_masks(
        self, pruner: MaskedPruner, sparsity: float
    ) -> dict[str, dict[ParamKey, torch.Tensor]]:
        """Per target: the masks it puts on the model at ``sparsity`` (its own weight's by
        default; coupled methods add the parameters they mask along with it). A per-layer
        plan multiplies each target's masks at its own sparsity, and the planner costs
        exactly these masks."""
        masks = pruner.compute_masks(sparsity)
        return {name: {(conv, "weight"): masks[(conv, "weight")]} for name, conv in pruner.targets}

    def plan_check(self, opts: PruneOptionsT) -> None:
        """ValueError for options under which per-layer masks depend on the other layers'
        sparsities (the planner costs each layer's masks on their own)."""
        scope = getattr(opts, "scope", "layer")
        if scope != "layer":
            raise ValueError(
                f"planning {self.name} needs compression.scope=layer (one "
                f"threshold per layer), got {scope}"
            )

    def uniform_settings(
        self, opts: PruneOptionsT, shape: tuple[int, ...], grid: tuple[float, ...] = ()
    ) -> list[tuple[dict[str, Any], PruneLayer]]:
        """One shared sparsity per grid level (what ``compression.sparsity=<s>`` gives)."""
        return [({"sparsity": s}, PruneLayer(s)) for s in grid if s > 0]

    def plan_items(self, opts: PruneOptionsT, space: Any) -> list[Any]:
        """Every sparsity of ``space.sparsity_grid`` per target, masks from this method's
        pruner over all targets (of a copy of the model)."""
        from imcompress.planner.items import mask_items

        self.plan_check(opts)
        work = copy.deepcopy(space.model)
        targets = [(name, work.get_submodule(name)) for name, _ in space.targets]
        pruner = self.build_pruner(work, targets, opts)
        if str(getattr(opts, "criterion", "magnitude")) == "activation":
            pruner.use_input_scale(_planner_input_scale(space))
        by_name = {name: conv for name, conv in space.targets}
        modules = {id(m): space.model.get_submodule(n) for n, m in work.named_modules() if n}

        def masks(level: float) -> dict[str, dict[ParamKey, torch.Tensor]]:
            # keys on the original model's modules, so the planner reads its layers
            out = self.layer_masks(pruner, level)
            return {
                name: {(modules[id(m)], p): mask for (m, p), mask in per.items()}
                for name, per in out.items()
                if name in by_name
            }

        return mask_items(space, self.name, space.sparsity_grid, masks, PruneLayer)


def _planner_input_scale(space: Any) -> dict[str, torch.Tensor]:
    """``criterion=activation`` scores from the planner's calibration inputs (an estimate of
    the ones training takes from ``compression.calibration_batches``: docs/planner.md)."""
    from imcompress.compression.calibration import input_norms

    if space.inputs is None:
        raise ValueError(
            "planning with compression.criterion=activation needs calibration data: "
            "plan.calibration_batches >= 1"
        )
    return {
        name: input_norms(space.inputs[name], tuple(conv.weight.shape[1:]))
        for name, conv in space.targets
    }


class PerLayerPruner(MaskedPruner):
    """A method's pruner with one sparsity per target (a plan's settings): the masks are the
    product of every target's :meth:`PruningMethod.layer_masks` at its own sparsity, the
    masks the planner costed. Records, metrics and state come from the method's pruner."""

    def __init__(
        self, method: PruningMethod[Any], inner: MaskedPruner, levels: Mapping[str, float]
    ) -> None:
        super().__init__(inner.targets)
        self.compression = method
        self.inner = inner
        self.levels = dict(levels)
        self.method = inner.method

    def masked_params(self) -> list[ParamKey]:
        return self.inner.masked_params()

    def compute_masks(self, sparsity: float) -> dict[ParamKey, torch.Tensor]:
        """The per-layer masks (``sparsity`` is ignored: each layer has its own)."""
        masks: dict[ParamKey, torch.Tensor] = {}
        for level in sorted(set(self.levels.values())):
            per_layer = self.compression.layer_masks(self.inner, level)
            for name, own in per_layer.items():
                if self.levels.get(name) != level:
                    continue
                for key, mask in own.items():
                    masks[key] = masks[key] * mask if key in masks else mask
        return masks

    def use_input_scale(self, scale: dict[str, torch.Tensor]) -> None:
        """criterion=activation: the method's pruner scores with the input norms (H4)."""
        self.inner.use_input_scale(scale)
        super().use_input_scale(scale)

    def layer_record(self, name: str, conv: nn.Conv2d) -> dict[str, Any]:
        return self.inner.layer_record(name, conv)

    def extra_metrics(self) -> dict[str, float]:
        return self.inner.extra_metrics()

    def state_dict(self) -> dict[str, Any]:
        return {**self.inner.state_dict(), "current_target": self.current_target}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.inner.load_state_dict(state)
        self.current_target = state.get("current_target")
