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

BatchNorm re-estimation (``compression.bn_recalibration_batches``): with a gradual schedule the
model is compressed only at its final pruning step, so ``recalibrate`` (built by the pipeline:
re-estimate the BatchNorm statistics on training batches) runs right after the masks reach the
final target, before that epoch trains. A run resumed after that step does not repeat it (the
checkpoint holds the statistics, and the restored target equals the final one).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer
from torch import nn

from imcompress.compression import CompressionResult
from imcompress.compression.pruning.base import MaskedPruner
from imcompress.compression.schedule import CubicSchedule, SparsitySchedule


class PruningCallback(Callback):
    """Recompute ``pruner``'s masks on ``schedule`` and log ``compress/sparsity`` every epoch."""

    def __init__(
        self,
        pruner: MaskedPruner,
        schedule: SparsitySchedule,
        recalibrate: Callable[[nn.Module, int], None] | None = None,
    ) -> None:
        super().__init__()
        self.pruner = pruner
        self.schedule = schedule
        self.recalibrate = recalibrate  # (model, epoch): after the final pruning step
        self.ramp: CubicSchedule | None = None

    @classmethod
    def from_result(
        cls,
        result: CompressionResult,
        recalibrate: Callable[[nn.Module, int], None] | None = None,
    ) -> list[PruningCallback]:
        """The callbacks ``result`` needs during training: one for a mask method, else none.
        ``recalibrate`` runs after a gradual schedule's final pruning step."""
        if result.pruner is None or result.schedule is None:
            return []
        return [cls(result.pruner, result.schedule, recalibrate)]

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.ramp = self.schedule.resolve(trainer.max_epochs)

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.ramp is None:
            return
        target = self.ramp.sparsity_at(trainer.current_epoch)
        if target is not None and target != self.pruner.current_target:
            self.pruner.prune_to(target)
            if target == self.ramp.final and self.recalibrate is not None:
                model = getattr(pl_module, "model", pl_module)
                self.recalibrate(model, trainer.current_epoch)

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
