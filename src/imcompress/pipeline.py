"""The training job behind ``src/train.py``: data, model, compression, callbacks, fit, test, summary."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import hydra
import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from omegaconf import DictConfig

from imcompress import compression
from imcompress.config import check_required, config_essentials, resolve_ckpt_path
from imcompress.data import ImageDataModule
from imcompress.loggers import build_loggers, run_identity
from imcompress.models import build_model
from imcompress.module import ClassificationModule
from imcompress.performance import performance_options, prepare_model, trainer_config
from imcompress.summary import (
    git_commit,
    make_console,
    print_banner,
    print_final,
    slurm_job,
    to_number,
    write_summary,
)
from imcompress.sweep.requeue import requeue_requested, resume_ckpt_path, trainer_requeue_overrides


def output_dir_of(cfg: DictConfig) -> Path:
    """This job's folder (Hydra's runtime output dir)."""
    path = Path(cfg.paths.output_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


def build_callbacks(cfg: DictConfig) -> list[Callback]:
    """Instantiate every non-null entry of ``cfg.callbacks``."""
    callbacks: list[Callback] = []
    for name, node in (cfg.get("callbacks") or {}).items():
        if node is None:
            continue
        if "_target_" not in node:
            raise ValueError(f"callbacks.{name} has no _target_; set it to null to disable it")
        callbacks.append(hydra.utils.instantiate(node))
    return callbacks


def train(cfg: DictConfig) -> float | None:
    """Run one training job and return ``cfg.optimized_metric`` (for sweepers)."""
    started = time.perf_counter()
    console = make_console()
    output_dir = output_dir_of(cfg)
    # Cheap checks first: nothing expensive runs and nothing written is touched if they fail.
    check_required(cfg)
    ckpt_path = resolve_ckpt_path(resume_ckpt_path(cfg.get("ckpt_path")), output_dir)
    essentials = config_essentials(cfg)
    summary: dict[str, Any] = {
        "status": "running",
        "config": essentials,
        "identity": run_identity(cfg),
        "output_dir": str(output_dir),
        "git_commit": git_commit(),
        "slurm": slurm_job(),
    }
    try:
        pl.seed_everything(cfg.seed, workers=True)
        datamodule: ImageDataModule = hydra.utils.instantiate(cfg.data)
        datamodule.prepare_data()  # fails fast (seconds) when the dataset is not available

        model = build_model(cfg.model, datamodule.channels, datamodule.num_classes)
        if cfg.get("pretrained"):
            compression.load_pretrained(model, cfg.pretrained)
            print(f"Loaded pretrained weights from {cfg.pretrained}", flush=True)
        compressed = compression.apply_compression(model, cfg.get("compression"))
        module = ClassificationModule(
            model,
            num_classes=datamodule.num_classes,
            optimizer=hydra.utils.instantiate(cfg.optimizer),
            scheduler=hydra.utils.instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
        )
        prepare_model(module, performance_options(cfg.trainer))  # memory format, torch.compile
        callbacks = build_callbacks(cfg) + list(compressed.callbacks)
        loggers = build_loggers(cfg, output_dir)
        trainer: pl.Trainer = hydra.utils.instantiate(
            trainer_config(cfg.trainer),
            callbacks=callbacks,
            logger=loggers,
            **trainer_requeue_overrides(cfg.trainer),
        )

        parameters = sum(p.numel() for p in model.parameters())
        summary["parameters"] = {"total": parameters}
        summary["compression"] = compressed.summary()
        print_banner(
            console,
            essentials,
            {
                "parameters": f"{parameters:,}",
                "compressed layers": len(compressed.layers),
                "resume from": ckpt_path,
                "output dir": output_dir,
            },
        )
        if compressed.layers:
            console.print(compression.format_compression_table(compressed))

        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
        fit_metrics = {key: to_number(value) for key, value in trainer.callback_metrics.items()}
        checkpoint = next((cb for cb in callbacks if isinstance(cb, ModelCheckpoint)), None)
        tested_path = checkpoint.best_model_path if checkpoint is not None else ""
        # A gradual pruning schedule makes earlier epochs less sparse: test the final model, not
        # the best-by-val/acc one, so the reported accuracy is that of the target sparsity.
        gradual = compressed.options.get("schedule") == "gradual"
        test_ckpt = "last" if gradual or cfg.get("test_ckpt") == "last" else "best"
        if test_ckpt == "last" and checkpoint is not None:
            tested_path = checkpoint.last_model_path or tested_path
        summary["best"] = {
            "val/acc": to_number(checkpoint.best_model_score)
            if checkpoint and checkpoint.best_model_score is not None
            else None,
            "checkpoint": checkpoint.best_model_path if checkpoint else None,
            "tested": test_ckpt,
        }
        test_metrics: dict[str, Any] = {}
        if cfg.get("test_after_fit", True) and not trainer.interrupted:
            results = trainer.test(
                module, datamodule=datamodule, ckpt_path=tested_path or None, verbose=False
            )
            test_metrics = {
                key: to_number(value) for key, value in (results[0] if results else {}).items()
            }
        summary["metrics"] = {**fit_metrics, **test_metrics}
        summary["epochs"] = trainer.current_epoch
        summary["cost"] = _collect_cost(callbacks)
        summary["compression"] = compressed.summary()  # final per-layer sparsity and ranks
        summary["status"] = "interrupted" if trainer.interrupted else "completed"
        return _optimized_value(cfg, summary["metrics"])
    except BaseException as error:
        if requeue_requested():  # SLURM time limit/preemption: the job restarts and resumes
            summary["status"] = "requeued"
        else:
            summary["status"] = "failed"
            summary["error"] = f"{type(error).__name__}: {error}"
        raise
    finally:
        summary["wall_time_s"] = round(time.perf_counter() - started, 3)
        write_summary(output_dir, summary)
        if summary["status"] != "failed":
            print_final(console, summary)
        _finish_wandb()


def _collect_cost(callbacks: list[Callback]) -> dict[str, Any]:
    cost: dict[str, Any] = {}
    for callback in callbacks:
        summary_items = getattr(callback, "summary_items", None)
        if callable(summary_items):
            cost.update(summary_items())
    return cost


def _optimized_value(cfg: DictConfig, metrics: dict[str, Any]) -> float | None:
    name = cfg.get("optimized_metric")
    if not name:
        return None
    if name not in metrics or metrics[name] is None:
        raise KeyError(f"optimized_metric={name!r} was not logged; logged: {sorted(metrics)}")
    return float(metrics[name])


def _finish_wandb() -> None:
    """Close the W&B run so the next in-process multirun job starts its own."""
    import wandb

    if wandb.run is not None:
        try:
            wandb.finish()
        except Exception as error:  # its service killed by SLURM: never mask the job's outcome
            print(f"warning: wandb.finish() failed: {type(error).__name__}: {error}")


def configure_torch_threads() -> None:
    """Use the CPUs SLURM gave this job (if any) for intra-op parallelism."""
    import os

    cpus = os.environ.get("SLURM_CPUS_PER_TASK")
    if cpus and cpus.isdigit():
        torch.set_num_threads(int(cpus))
