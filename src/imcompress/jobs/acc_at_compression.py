"""The compressed model's test accuracy without training (``acc@compr.``): the training job's
own build steps (:func:`imcompress.jobs.train.build_data`, ``build_model_and_compression``
with its calibration and BatchNorm re-estimation, ``build_module``) and one Lightning ``test``
on the test split. Used in process by the study drivers (:mod:`imcompress.studies.evaluation`).
"""

from __future__ import annotations

import json
import time
from typing import Any

import lightning.pytorch as pl

from imcompress.config import config_essentials
from imcompress.jobs.train import build_data, build_model_and_compression, build_module
from imcompress.training.performance import performance_options, prepare_model


def test_compressed(cfg: Any) -> tuple[dict[str, Any], Any]:
    """(summary, model): the compressed model's test metrics and compression summary."""
    started = time.perf_counter()
    datamodule = build_data(cfg)
    model, compressed = build_model_and_compression(cfg, datamodule)
    module = build_module(cfg, model, datamodule)
    prepare_model(module, performance_options(cfg.trainer))
    trainer = pl.Trainer(
        accelerator=cfg.trainer.get("accelerator", "cpu"), devices=1, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        limit_test_batches=cfg.trainer.get("limit_test_batches"),
        default_root_dir=str(cfg.paths.output_dir),
    )  # fmt: skip
    results = trainer.test(module, datamodule=datamodule, verbose=False)
    metrics = {key: float(value) for key, value in (results[0] if results else {}).items()}
    summary = {
        "status": "completed",
        "metrics": metrics,
        "compression": json.loads(json.dumps(compressed.summary(), default=str)),
        "config": json.loads(json.dumps(config_essentials(cfg), default=str)),
        "wall_time_s": round(time.perf_counter() - started, 3),
    }
    return summary, model
