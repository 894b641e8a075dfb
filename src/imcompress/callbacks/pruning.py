"""Lightning callback that drives pruning masks over training and logs the achieved sparsity.

One-shot pruning: the masks were set by ``apply_compression``; the callback only logs.
Gradual pruning: at the start of every epoch from ``start_epoch`` the masks are recomputed for
the cubic schedule of Zhu & Gupta (2017) whenever its target changed. ``compress/sparsity``
(fraction of zero weights over the pruned layers) is logged at every epoch end. The pruner's
extra state (current target, pattern set) is saved in the checkpoint's callback state; the
masks themselves are ``*_mask`` buffers in the model's state dict.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer

from imcompress.compression.pruning.base import MaskedPruner
from imcompress.compression.pruning.schedule import CubicSchedule, default_end_epoch


class PruningCallback(Callback):
    """Recompute ``pruner``'s masks on schedule and log ``compress/sparsity`` every epoch.

    ``gradual=False``: one-shot (masks already applied). ``gradual=True``: ramp from
    ``initial_sparsity`` to ``sparsity`` between ``start_epoch`` and ``end_epoch`` (None: half of
    ``trainer.max_epochs``), updating every ``frequency`` epochs. ``records``, when given, is
    refilled with the per-layer records at the end of training.
    """

    def __init__(
        self,
        pruner: MaskedPruner,
        sparsity: float,
        gradual: bool = False,
        initial_sparsity: float = 0.0,
        start_epoch: int = 0,
        end_epoch: int | None = None,
        frequency: int = 1,
        records: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__()
        self.pruner = pruner
        self.sparsity = sparsity
        self.gradual = gradual
        self.initial_sparsity = initial_sparsity
        self.start_epoch = start_epoch
        self.end_epoch = end_epoch
        self.frequency = frequency
        self.records = records
        self.schedule: CubicSchedule | None = None

    def build_schedule(self, max_epochs: int | None) -> CubicSchedule:
        """The cubic schedule, with ``end_epoch`` resolved and checked against ``max_epochs``."""
        bounded = max_epochs is not None and max_epochs > 0
        end = self.end_epoch
        if end is None:
            if not bounded:
                raise ValueError(
                    "gradual pruning with compression.end_epoch=null needs trainer.max_epochs"
                )
            assert max_epochs is not None
            end = default_end_epoch(self.start_epoch, max_epochs)
        if bounded and max_epochs is not None and end >= max_epochs:
            raise ValueError(
                f"compression.end_epoch={end} is not reached with trainer.max_epochs={max_epochs};"
                f" valid: {self.start_epoch}..{max_epochs - 1}"
            )
        return CubicSchedule(
            final=self.sparsity,
            initial=self.initial_sparsity,
            start_epoch=self.start_epoch,
            end_epoch=end,
            frequency=self.frequency,
        )

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.gradual:
            self.schedule = self.build_schedule(trainer.max_epochs)

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.schedule is None:
            return
        target = self.schedule.sparsity_at(trainer.current_epoch)
        if target is not None and target != self.pruner.current_target:
            self.pruner.prune_to(target)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        metrics = {"compress/sparsity": self.pruner.sparsity(), **self.pruner.extra_metrics()}
        target = self.pruner.current_target
        if target is not None:
            metrics["compress/target_sparsity"] = target
        for name, value in metrics.items():
            pl_module.log(name, float(value), on_step=False, on_epoch=True)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.records is not None:
            self.records[:] = self.pruner.records()

    def state_dict(self) -> dict[str, Any]:
        return {"pruner": self.pruner.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.pruner.load_state_dict(state_dict.get("pruner", {}))
