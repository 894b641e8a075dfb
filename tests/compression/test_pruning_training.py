"""Pruning inside real Lightning runs: gradual schedule, logging, checkpoint save and resume."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from imcompress.compression import (
    CompressionResult,
    Schedule,
    SparsitySchedule,
    apply_compression,
)
from imcompress.training.callbacks.pruning import PruningCallback

from .tiny_models import TinyResNet


class LitClassifier(pl.LightningModule):
    """Minimal stand-in for the platform's LightningModule (network at ``self.model``)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self.model(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)


class StopAfter(Callback):
    """Interrupt a run after ``epochs`` epochs (as a crash or time limit would)."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch + 1 >= self.epochs:
            trainer.should_stop = True


class MaskProbe(Callback):
    """Record the masks at train start (after any checkpoint restore) and at every epoch end."""

    def __init__(self) -> None:
        self.at_start: dict[str, torch.Tensor] = {}
        self.sparsity: list[float] = []

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.at_start = _masks(pl_module.model)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        masks = _masks(pl_module.model)
        zeros = sum(int((m == 0).sum()) for m in masks.values())
        self.sparsity.append(zeros / sum(m.numel() for m in masks.values()))


def _masks(model: nn.Module) -> dict[str, torch.Tensor]:
    return {
        k: v.clone()
        for k, v in model.state_dict().items()
        if k.endswith("conv1.weight_mask") or k.endswith("conv2.weight_mask")
    }


def _loader() -> DataLoader:
    gen = torch.Generator().manual_seed(0)
    data = TensorDataset(
        torch.randn(48, 3, 8, 8, generator=gen), torch.randint(0, 4, (48,), generator=gen)
    )
    return DataLoader(data, batch_size=16)


def _fit(
    tmp_path: Path,
    result: CompressionResult,
    model: nn.Module,
    max_epochs: int,
    extra: list[Callback],
    ckpt_path: str | None = None,
) -> pl.Trainer:
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=max_epochs,
        logger=CSVLogger(tmp_path, name="logs"),
        callbacks=[
            *PruningCallback.from_result(result),
            ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True),
            *extra,
        ],
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
        default_root_dir=tmp_path,
    )
    trainer.fit(LitClassifier(model), train_dataloaders=_loader(), ckpt_path=ckpt_path)
    return trainer


def _logged(trainer: pl.Trainer, key: str) -> list[float]:
    path = Path(trainer.logger.log_dir) / "metrics.csv"  # type: ignore[union-attr]
    with path.open() as f:
        return [float(row[key]) for row in csv.DictReader(f) if row.get(key)]


GRADUAL: dict[str, Any] = {
    "method": "prune_unstructured",
    "sparsity": 0.6,
    "schedule": "gradual",
    "start_epoch": 0,
    "end_epoch": 3,
}


def test_gradual_schedule_logs_rising_sparsity(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = TinyResNet()
    result = apply_compression(model, GRADUAL)
    probe = MaskProbe()
    trainer = _fit(tmp_path, result, model, 5, [probe])
    logged = _logged(trainer, "compress/sparsity")
    assert len(logged) == 5
    assert logged[0] == pytest.approx(0.0, abs=1e-3)
    assert logged[1] < logged[2] < logged[3] == pytest.approx(0.6, abs=1e-3)
    assert logged[4] == pytest.approx(0.6, abs=1e-3)
    assert logged == pytest.approx(probe.sparsity)
    assert result.summary()["sparsity"] == pytest.approx(0.6, abs=1e-3)
    assert all(r["sparsity"] == pytest.approx(0.6, abs=0.01) for r in result.layers)


@pytest.mark.parametrize(
    "cfg",
    [
        {"method": "prune_unstructured", "sparsity": 0.7},
        {
            "method": "prune_pattern",
            "pattern_set": "patdnn",
            "schedule": "gradual",
            "sparsity": 0.75,
            "start_epoch": 0,
            "end_epoch": 2,
        },
    ],
    ids=["oneshot_unstructured", "gradual_patdnn"],
)
def test_masks_survive_checkpoint_resume(tmp_path: Path, cfg: dict[str, Any]) -> None:
    torch.manual_seed(0)
    model = TinyResNet()
    result = apply_compression(model, cfg)
    first = _fit(tmp_path / "a", result, model, 4, [StopAfter(2)])
    assert first.current_epoch == 2
    saved = _masks(model)
    patterns = result.pruner.patterns.clone() if hasattr(result.pruner, "patterns") else None
    ckpt = tmp_path / "a" / "ckpt" / "last.ckpt"
    assert ckpt.is_file()

    torch.manual_seed(123)  # different random init: everything must come from the checkpoint
    fresh = TinyResNet()
    resumed_result = apply_compression(fresh, cfg)
    probe = MaskProbe()
    second = _fit(tmp_path / "b", resumed_result, fresh, 4, [probe], ckpt_path=str(ckpt))
    assert second.current_epoch == 4
    for key, mask in saved.items():
        assert torch.equal(probe.at_start[key], mask), key
    if patterns is not None:
        assert torch.equal(resumed_result.pruner.patterns, patterns)
        allowed = {tuple(p.tolist()) for p in patterns}
        for mask in _masks(fresh).values():
            rows = mask.flatten(0, 1).flatten(1)
            assert {tuple(r.tolist()) for r in rows if r.any()} <= allowed
    assert probe.sparsity[-1] == pytest.approx(cfg["sparsity"], abs=0.02)
    for name, conv in resumed_result.pruner.targets:
        assert (conv.weight[conv.weight_mask == 0] == 0).all(), name


def test_end_epoch_beyond_training_is_an_error(tmp_path: Path) -> None:
    model = TinyResNet()
    result = apply_compression(model, {**GRADUAL, "end_epoch": 5})
    with pytest.raises(ValueError, match=r"end_epoch=5 .*max_epochs=3; valid: 0\.\.2"):
        _fit(tmp_path, result, model, 3, [])
    assert result.pruner.sparsity() == 0.0


def test_default_end_epoch_is_half_of_training() -> None:
    schedule = SparsitySchedule(final=0.5, kind=Schedule["gradual"])
    ramp = schedule.resolve(10)
    assert ramp is not None and ramp.end_epoch == 5
    with pytest.raises(ValueError, match=r"needs trainer\.max_epochs"):
        schedule.resolve(-1)
    assert SparsitySchedule(final=0.5).resolve(10) is None  # one-shot: nothing to drive


def test_only_mask_methods_get_a_pruning_callback() -> None:
    assert PruningCallback.from_result(apply_compression(TinyResNet(), {"method": "lr"})) == []
    result = apply_compression(TinyResNet(), {"method": "prune_channel"})
    (callback,) = PruningCallback.from_result(result)
    assert callback.pruner is result.pruner and callback.schedule is result.schedule
