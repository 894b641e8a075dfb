"""The two calls of the training pipeline into the analog package; both import
aihwkit-lightning only when the job's ``analog`` preset is enabled.

- :func:`prepare_job` at model build: validates ``analog`` before any training and, with
  ``analog.train``, converts the model for hardware-aware training;
- :func:`evaluate_after_test` after ``trainer.test``: analog test accuracy of the tested weights,
  logged to the job's loggers (CSV, W&B) and returned for summary.json.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer
from omegaconf import DictConfig
from torch import nn

from imcompress.analog.schema import is_enabled, resolve_settings


class FixedCostCallback(Callback):
    """The crossbar costs of the digital compressed model, measured once before the model is
    converted for hardware-aware training (the arrays do not change while it trains): logged at
    fit start under ``hw/`` and reported in summary.json like the cost callback's."""

    def __init__(self, cost_callback: Any, model: nn.Module) -> None:
        super().__init__()
        self.cost_callback = cost_callback
        cost_callback.evaluate(_ModelHolder(model))

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        for logger in trainer.loggers:
            logger.log_metrics(self.cost_callback.metrics(), step=trainer.global_step)

    def summary_items(self) -> dict[str, float]:
        return dict(self.cost_callback.summary_items())


class _ModelHolder:
    """What the cost callback reads of a LightningModule: ``.model``."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model


def prepare_job(
    cfg: DictConfig, model: nn.Module, compressed: Any, callbacks: list[Callback]
) -> list[Callback]:
    """Validate ``cfg.analog`` (ValueError before any training) and return the callbacks.

    ``analog.train``: ``model``'s layers become analog layers in place (pruning masks kept;
    gradual pruning is refused), the weight-clip callback is added, and the crossbar cost
    callback, which reads digital layers, is replaced by the costs of the digital model.
    """
    if not is_enabled(cfg):
        return callbacks
    settings = resolve_settings(cfg.analog, cfg.get("hw"))
    if not settings.train:
        return callbacks
    if compressed.options.get("schedule") == "gradual":
        raise ValueError(
            "analog.train=true keeps the pruning masks fixed on the analog layers; "
            "compression.schedule=gradual is not supported: use schedule=oneshot, or fine-tune "
            "hardware-aware from a finished gradual run"
        )
    from imcompress.analog.training import AnalogWeightClip, convert_for_training
    from imcompress.training.callbacks.crossbar import CrossbarCostCallback

    out = [
        FixedCostCallback(callback, model)
        if isinstance(callback, CrossbarCostCallback)
        else callback
        for callback in callbacks
    ]
    convert_for_training(model, settings)
    return [*out, AnalogWeightClip()]


def evaluate_after_test(
    cfg: DictConfig, model: nn.Module, datamodule: Any, trainer: Trainer
) -> dict[str, float]:
    """``analog/test/*`` metrics of the tested ``model`` ({} when analog is off or
    ``analog.evaluate_after_fit`` is false), logged to ``trainer``'s loggers."""
    if not is_enabled(cfg) or not cfg.analog.get("evaluate_after_fit", True):
        return {}
    import torch

    from imcompress.analog.data import normalized_batches
    from imcompress.analog.evaluation import evaluate_analog

    settings = resolve_settings(cfg.analog, cfg.get("hw"))
    device = next(model.parameters()).device
    test = [
        (images.to(device), labels.to(device))
        for images, labels in normalized_batches(datamodule, "test", samples=settings.test_samples)
    ]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        calibration = [
            images.to(device)
            for images, _ in normalized_batches(
                datamodule, "train", batches=settings.calibration_batches
            )
        ]
    result = evaluate_analog(model, settings, test, calibration, datamodule.num_classes)
    metrics = result.logged_metrics()
    for logger in trainer.loggers:
        logger.log_metrics(metrics, step=trainer.global_step)
        logger.save()
    return metrics
