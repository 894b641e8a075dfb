"""Lightning callback that drives pruning masks over training and logs the achieved sparsity.

The training-layer half of the torch.ao / Lightning ``ModelPruning`` split: compression returns
the pruner and a pure :class:`~imcompress.compression.schedule.SparsitySchedule`;
:meth:`PruningCallback.from_result` builds this callback from them. One-shot pruning: the masks
were set by ``apply_compression``; the callback only logs. Gradual pruning: at fit start the
schedule is resolved for ``trainer.max_epochs``, and at the start of every epoch from
``start_epoch`` the masks are recomputed whenever its target changed. ``compress/sparsity``
(fraction of zero weights over the pruned layers) is logged at every epoch end. The pruner's
extra state (current target, pattern set) is saved in the checkpoint's callback state; the
masks themselves are ``*_mask`` buffers in the model's state dict.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer

from imcompress.compression import CompressionResult
from imcompress.compression.pruning.base import MaskedPruner
from imcompress.compression.schedule import CubicSchedule, SparsitySchedule


class PruningCallback(Callback):
    """Recompute ``pruner``'s masks on ``schedule`` and log ``compress/sparsity`` every epoch."""

    def __init__(self, pruner: MaskedPruner, schedule: SparsitySchedule) -> None:
        super().__init__()
        self.pruner = pruner
        self.schedule = schedule
        self.ramp: CubicSchedule | None = None

    @classmethod
    def from_result(cls, result: CompressionResult) -> list[PruningCallback]:
        """The callbacks ``result`` needs during training: one for a mask method, else none."""
        if result.pruner is None or result.schedule is None:
            return []
        return [cls(result.pruner, result.schedule)]

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.ramp = self.schedule.resolve(trainer.max_epochs)

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.ramp is None:
            return
        target = self.ramp.sparsity_at(trainer.current_epoch)
        if target is not None and target != self.pruner.current_target:
            self.pruner.prune_to(target)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        metrics = {"compress/sparsity": self.pruner.sparsity(), **self.pruner.extra_metrics()}
        target = self.pruner.current_target
        if target is not None:
            metrics["compress/target_sparsity"] = target
        for name, value in metrics.items():
            pl_module.log(name, float(value), on_step=False, on_epoch=True)

    def state_dict(self) -> dict[str, Any]:
        return {"pruner": self.pruner.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.pruner.load_state_dict(state_dict.get("pruner", {}))
