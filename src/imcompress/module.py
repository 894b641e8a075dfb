"""LightningModule for image classification: cross-entropy, torchmetrics accuracy, SGD + cosine."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F
from torchmetrics import MaxMetric, MeanMetric, Metric
from torchmetrics.classification import MulticlassAccuracy

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., Any]


class ClassificationModule(pl.LightningModule):
    """Wraps a network (``self.model``) with loss, metrics and optimizer.

    Logged names: ``train/loss``, ``train/acc``, ``val/loss``, ``val/acc``, ``val/acc_best``,
    ``test/loss``, ``test/acc`` (and ``*/acc_top5`` when there are at least 100 classes).

    The steps call ``self(images)``, so ``trainer.compile`` compiles this module's call
    (:func:`imcompress.performance.prepare_model`) while ``self.model`` stays eager for the
    crossbar estimator's forward hooks.
    """

    def __init__(
        self,
        model: nn.Module,
        num_classes: int,
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
        top5_min_classes: int = 100,
    ) -> None:
        super().__init__()
        self.model = model
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.top5 = num_classes >= top5_min_classes
        self.metrics: dict[str, Metric] = nn.ModuleDict()  # type: ignore[assignment]
        self.losses: dict[str, Metric] = nn.ModuleDict()  # type: ignore[assignment]
        for stage in ("train", "val", "test"):
            self.metrics[f"{stage}_acc"] = MulticlassAccuracy(num_classes, average="micro")
            if self.top5:
                self.metrics[f"{stage}_acc_top5"] = MulticlassAccuracy(
                    num_classes, top_k=5, average="micro"
                )
            self.losses[f"{stage}_loss"] = MeanMetric()
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)  # kept in checkpoints, so a resumed run knows its best

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        images, labels = batch
        logits = self(images)  # compiled when trainer.compile=true
        loss = F.cross_entropy(logits, labels)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{stage} loss is {loss.item()} at step {self.global_step}")
        self.losses[f"{stage}_loss"](loss.detach())
        self.log(
            f"{stage}/loss",
            self.losses[f"{stage}_loss"],
            on_step=False,
            on_epoch=True,
            prog_bar=stage != "test",
        )
        for name in ("acc", "acc_top5") if self.top5 else ("acc",):
            metric = self.metrics[f"{stage}_{name}"]
            metric(logits.detach(), labels)
            self.log(
                f"{stage}/{name}", metric, on_step=False, on_epoch=True, prog_bar=name == "acc"
            )
        return loss

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:  # the sanity check must not count toward the best
            return
        self.val_acc_best(self.metrics["val_acc"].compute())
        self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"},
        }
