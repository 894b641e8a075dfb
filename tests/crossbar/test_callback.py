"""The Lightning callback logs hw/ metrics, writes the report and exposes summary items."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from imcompress.training.callbacks.crossbar import CrossbarCostCallback


class TinyModule(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.model = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, 8, 3, stride=2),
            nn.Flatten(),
            nn.LazyLinear(4),
        )
        self.model(torch.zeros(1, 3, 8, 8))  # materialize the lazy layer

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        x, y = batch
        return nn.functional.cross_entropy(self.model(x), y)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("val/loss", nn.functional.cross_entropy(self.model(x), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _loader() -> DataLoader:
    data = TensorDataset(torch.randn(16, 3, 8, 8), torch.randint(0, 4, (16,)))
    return DataLoader(data, batch_size=8)


def test_callback_logs_writes_and_summarizes(tmp_path: Path, caplog) -> None:
    callback = CrossbarCostCallback(
        hw={"rows": 32, "cols": 32},
        input_shape=(3, 8, 8),
        output_dir=tmp_path / "job",
        mappings=("im2col", "vwsdk"),
    )
    trainer = pl.Trainer(
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=1,
        logger=CSVLogger(tmp_path),
        enable_checkpointing=False,
        enable_progress_bar=False,
        accelerator="cpu",
        callbacks=[callback],
        num_sanity_val_steps=1,
    )
    with caplog.at_level(logging.INFO):
        trainer.fit(TinyModule(), _loader(), _loader())
    assert len(callback.seconds) == 2  # fit start + one validation epoch (sanity check skipped)
    metrics_file = Path(trainer.logger.log_dir) / "metrics.csv"
    with metrics_file.open() as handle:
        rows = list(csv.DictReader(handle))
    columns = set(rows[0])
    for key in (
        "hw/im2col/cycles",
        "hw/vwsdk/cycles",
        "hw/vwsdk/energy_uj",
        "hw/vwsdk/latency_us",
        "hw/vwsdk/utilization",
        "hw/vwsdk/speedup",
        "hw/arrays",
    ):
        assert key in columns, key
    logged = [float(r["hw/vwsdk/cycles"]) for r in rows if r.get("hw/vwsdk/cycles")]
    assert len(logged) == 2 and logged[0] == logged[1] > 0
    report = json.loads((tmp_path / "job" / "cost_report.json").read_text())
    assert report["totals"]["vwsdk/cycles"] == logged[-1]
    assert (tmp_path / "job" / "cost_report.csv").exists()
    summary = callback.summary_items()
    assert summary["im2col/cycles"] >= summary["vwsdk/cycles"] > 0
    assert "CrossbarCostCallback" in caplog.text and "ms per estimate" in caplog.text


def test_wandb_table_is_logged_at_fit_end() -> None:
    from types import SimpleNamespace

    from lightning.pytorch.loggers import WandbLogger

    class RecordingWandb(WandbLogger):
        def __init__(self) -> None:  # no W&B run: only the table call is recorded
            self.tables: list[tuple[str, list[str], list[list]]] = []

        def log_table(self, key: str, columns: list[str] | None = None, data=None, **_) -> None:
            self.tables.append((key, columns, data))

    callback = CrossbarCostCallback(input_shape=(3, 8, 8))
    module = TinyModule()
    callback.evaluate(module)
    logger = RecordingWandb()
    callback.on_fit_end(SimpleNamespace(loggers=[logger]), module)
    key, columns, data = logger.tables[0]
    assert key == "hw/per_layer" and "cycles" in columns and len(data) == 3 * 3
