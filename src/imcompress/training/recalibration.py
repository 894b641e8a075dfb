"""The training job's data-dependent compression steps: calibration batches for the data-aware
options, BatchNorm re-estimation after compression (docs/compression.md), and the checks of
the options that need the dense ``pretrained`` model (including ``finetune.distill``).

Both draw ``count`` training batches of ``data.batch_size`` in a seeded order, without
augmentation, normalized as the model sees them (:func:`calibration_batches`). In a DDP job
every rank builds and compresses the model itself, so every rank draws the same batches and
computes the same factors, masks and BatchNorm statistics; no broadcast is needed (DDP's own
buffer broadcast from rank 0 would align them anyway). A resumed run does neither: the
checkpoint holds the factors, masks and statistics.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from imcompress.compression.api import data_aware_option_sets
from imcompress.compression.batchnorm import recalibrate_batchnorm
from imcompress.compression.calibration import needs_calibration, training_batches
from imcompress.compression.options import parse_options
from imcompress.compression.pretrained import pretrained_choice
from imcompress.compression.result import CompressionResult
from imcompress.data import ImageDataModule
from imcompress.data.augment import normalize
from imcompress.training.module import check_distill


def distill_settings(cfg: DictConfig) -> tuple[float, float]:
    """``finetune.distill`` (alpha, temperature), checked; (0, 4) when the node is absent."""
    alpha = OmegaConf.select(cfg, "finetune.distill.alpha", default=0.0)
    temperature = OmegaConf.select(cfg, "finetune.distill.temperature", default=4.0)
    check_distill(alpha, temperature)
    return float(alpha), float(temperature)


def check_finetune(cfg: DictConfig) -> None:
    """Before any work: the data-aware options and distillation have a ``pretrained`` model
    (``auto`` or a checkpoint); distillation's values are in range. One-line ValueErrors."""
    check_data_aware(cfg)
    alpha, _ = distill_settings(cfg)
    if alpha > 0 and pretrained_choice(cfg.get("pretrained")) is None:
        raise ValueError(
            f"finetune.distill.alpha={alpha} distills from the dense pretrained model, got "
            f"pretrained={cfg.get('pretrained')}: pass pretrained=auto or a dense checkpoint"
        )


def check_data_aware(cfg: DictConfig) -> None:
    """A one-line ValueError when a data-aware option has no ``pretrained=`` model to read."""
    opts = parse_options(cfg.get("compression"))
    wanted = needs_calibration(opts)
    plan_file = getattr(opts, "plan", None)
    if plan_file:  # the plan's methods' recorded options
        from imcompress.compression.plan_file import read_plan

        for options in read_plan(plan_file).options.values():
            wanted += needs_calibration(dict(options))
    wanted = sorted(set(wanted))
    if wanted and pretrained_choice(cfg.get("pretrained")) is None:
        raise ValueError(
            f"{' and '.join(wanted)} reads the layer inputs of a trained model, got "
            f"pretrained={cfg.get('pretrained')}: pass pretrained=auto or a dense checkpoint "
            "(there is no fallback to the data-free option)"
        )


def calibration_batches(cfg: DictConfig, datamodule: ImageDataModule, count: int) -> list[Any]:
    """``count`` normalized training batches (seeded by ``cfg.seed``, no augmentation)."""
    datamodule.setup("fit")
    assert datamodule.train_set is not None
    mean, std = datamodule.mean, datamodule.std
    return training_batches(
        datamodule.train_set,
        count,
        datamodule.batch_size,
        seed=int(cfg.seed),
        transform=lambda images: normalize(images, mean, std),
    )


def compression_data(
    cfg: DictConfig, datamodule: ImageDataModule, fresh: bool, model: nn.Module
) -> dict[str, Any]:
    """The ``apply_compression`` keywords: calibration batches for a fresh run with a
    data-aware option (of the config or of its plan's methods), ``structure_only`` for a
    resumed one (the checkpoint fills the weights)."""
    opts = parse_options(cfg.get("compression"))
    if not fresh:
        return {"structure_only": True}
    option_sets = data_aware_option_sets(model, opts)
    if not any(needs_calibration(options) for options in option_sets):
        return {}
    return {"calibration": calibration_batches(cfg, datamodule, opts.calibration_batches)}


def compute_device(cfg: DictConfig) -> torch.device:
    """This process's accelerator when the trainer uses one, else the CPU."""
    accelerator = str(cfg.trainer.get("accelerator", "auto"))
    if accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def recalibrate(cfg: DictConfig, datamodule: ImageDataModule, model: nn.Module, count: int) -> int:
    """Re-estimate ``model``'s BatchNorm statistics on ``count`` training batches."""
    batches = calibration_batches(cfg, datamodule, count)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    return recalibrate_batchnorm(model, batches, device=device)


def recalibrate_after_compression(
    cfg: DictConfig,
    datamodule: ImageDataModule,
    model: nn.Module,
    compressed: CompressionResult,
    fresh: bool,
) -> None:
    """BatchNorm re-estimation right after a fresh one-shot compression (a gradual schedule
    does it after its final step, :func:`gradual_recalibration`); sets
    ``compressed.bn_recalibration`` (the summary's ``compression.bn_recalibration``)."""
    count = int(compressed.options.get("bn_recalibration_batches", 0))
    record: dict[str, Any] = {"batches": count, "done": False}
    compressed.bn_recalibration = record
    if compressed.method == "none" or count == 0:
        record["when"] = "off" if count == 0 else "not compressed"
        return
    if not fresh:
        record["when"] = "resumed: the checkpoint holds the statistics"
        return
    if compressed.schedule is not None and compressed.schedule.gradual:
        record["when"] = "after the final pruning step"
        return
    used = recalibrate(cfg, datamodule, model, count)
    record.update(done=used > 0, used=used, when="after compression")
    print(f"BatchNorm statistics re-estimated on {used} training batches", flush=True)


def gradual_recalibration(
    cfg: DictConfig, datamodule: ImageDataModule, compressed: CompressionResult
) -> Callable[[nn.Module, int], None] | None:
    """For a gradual schedule with re-estimation on: what the pruning callback runs after the
    final pruning step (it records the epoch in ``compressed.bn_recalibration``)."""
    count = int(compressed.options.get("bn_recalibration_batches", 0))
    if count == 0 or compressed.schedule is None or not compressed.schedule.gradual:
        return None

    def run(model: nn.Module, epoch: int) -> None:
        used = recalibrate(cfg, datamodule, model, count)
        record = compressed.bn_recalibration or {"batches": count}
        record.update(done=used > 0, used=used, epoch=epoch, when="after the final pruning step")
        compressed.bn_recalibration = record

    return run
