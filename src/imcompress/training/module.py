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


def check_distill(alpha: Any, temperature: Any) -> None:
    """ValueError naming ``finetune.distill.*`` unless alpha is in [0, 1] and temperature > 0."""
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 <= alpha <= 1:
        raise ValueError(f"finetune.distill.alpha must be a number in [0, 1], got {alpha!r}")
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or temperature <= 0
    ):
        raise ValueError(f"finetune.distill.temperature must be a number > 0, got {temperature!r}")


def distillation_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    """``T^2 KL(softmax(t/T) || softmax(s/T))``, averaged over the batch."""
    student = F.log_softmax(student_logits / temperature, dim=-1)
    teacher = F.log_softmax(teacher_logits.detach() / temperature, dim=-1)
    kl = F.kl_div(student, teacher, log_target=True, reduction="batchmean")
    return kl * temperature**2


def _frozen(model: nn.Module | None) -> nn.Module | None:
    if model is not None:
        model.eval()
        model.requires_grad_(False)
    return model


class ClassificationModule(pl.LightningModule):
    """Wraps a network (``self.model``) with loss, metrics and optimizer.

    Logged names: ``train/loss``, ``train/acc``, ``val/loss``, ``val/acc``, ``val/acc_best``,
    ``test/loss``, ``test/acc`` (and ``*/acc_top5`` when there are at least 100 classes).

    The steps call ``self(images)``, so ``trainer.compile`` compiles this module's call
    (:func:`imcompress.training.performance.prepare_model`) while ``self.model`` stays eager for the
    crossbar estimator's forward hooks.

    Distillation (``distill_alpha > 0``, a ``teacher`` given): the training loss is
    ``(1 - alpha) CE + alpha T^2 KL(softmax(t/T) || softmax(s/T))`` (Hinton et al. 2015,
    arXiv 1503.02531), the KL term logged as ``train/kd_loss`` and the total as ``train/loss``.
    The teacher is frozen, in eval mode, on the student's device and memory format, and is not
    a submodule: it is in neither the optimizer, the state dict nor the checkpoints (a resumed
    run rebuilds it from its file).
    """

    teacher: nn.Module | None  # set in __init__ outside the module tree (not a submodule)

    def __init__(
        self,
        model: nn.Module,
        num_classes: int,
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
        top5_min_classes: int = 100,
        teacher: nn.Module | None = None,
        distill_alpha: float = 0.0,
        distill_temperature: float = 4.0,
    ) -> None:
        super().__init__()
        check_distill(distill_alpha, distill_temperature)
        if distill_alpha > 0 and teacher is None:
            raise ValueError(f"finetune.distill.alpha={distill_alpha} needs a teacher model")
        self.model = model
        self.distill_alpha = float(distill_alpha)
        self.distill_temperature = float(distill_temperature)
        object.__setattr__(self, "teacher", _frozen(teacher) if distill_alpha > 0 else None)
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
        if stage == "train" and self.teacher is not None:
            kd_loss = self._kd_loss(images, logits)
            self.log("train/kd_loss", kd_loss.detach(), on_step=False, on_epoch=True)
            loss = (1.0 - self.distill_alpha) * loss + self.distill_alpha * kd_loss
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

    def _kd_loss(self, images: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        teacher = self.teacher
        assert teacher is not None
        with torch.no_grad():
            teacher_logits = teacher(images)
        return distillation_loss(logits, teacher_logits, self.distill_temperature)

    def on_fit_start(self) -> None:
        if self.teacher is not None:  # not a submodule: Lightning does not move it
            from imcompress.training.performance import memory_format_of

            self.teacher.to(self.device)
            self.teacher.to(memory_format=memory_format_of(self.model))  # type: ignore[call-overload]
            self.teacher.eval()

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
        interval = getattr(scheduler, "interval", "epoch")
        if isinstance(scheduler, CosineAnnealingPerStep) and scheduler.steps_from_trainer:
            scheduler.T_max = max(int(self.trainer.estimated_stepping_batches), 1)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": interval},
        }


class CosineAnnealingPerStep(torch.optim.lr_scheduler.CosineAnnealingLR):
    """Cosine annealing stepped after every optimizer step (Lightning ``interval: step``), not
    every epoch: a one-epoch fine-tuning still decays from ``lr`` to ``eta_min``.

    ``T_max=None`` (the config default) means the fit's total optimizer steps, which
    :meth:`ClassificationModule.configure_optimizers` reads from
    ``trainer.estimated_stepping_batches`` (``limit_train_batches`` and ``max_epochs`` counted).
    Use as ``scheduler._target_=imcompress.training.module.CosineAnnealingPerStep scheduler.T_max=null``.
    """

    interval = "step"

    def __init__(
        self, optimizer: torch.optim.Optimizer, T_max: int | None = None, eta_min: float = 0.0
    ) -> None:
        self.steps_from_trainer = T_max is None
        super().__init__(optimizer, T_max=T_max or 1, eta_min=eta_min)
