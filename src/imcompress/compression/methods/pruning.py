"""What the pruning methods share: schedule checks, per-layer sparsity, pruner and schedule.

A pruning method subclasses :class:`PruningMethod` with its schema (extending
``PruneScheduleFields``) and :meth:`PruningMethod.build_pruner`; one-shot masks are set here,
gradual ones by the training layer's ``PruningCallback`` from the returned schedule.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from torch import nn

from imcompress.compression.pruning.base import MaskedPruner
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
        if len(levels) > 1:  # the pruners take one target for all their layers
            problems.append(
                f"{self.name} prunes all its layers to one sparsity; got per-layer {levels}"
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
