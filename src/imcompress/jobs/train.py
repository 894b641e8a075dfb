"""The training job behind ``src/train.py``: a task wrapper around small build / fit / test steps.

:func:`train` checks the config, locks the run folder, picks the checkpoint to resume from and
hands :func:`run_steps` to :func:`run_task`, the task wrapper that owns the job's status,
``summary.json``, the final table, the W&B run's end and the exit code. The steps:

1. :func:`build_data`: seed, the datamodule, ``prepare_data`` (fails fast without the dataset)
2. :func:`build_model_and_compression`: network, ``pretrained`` weights, compression
3. :func:`build_module`: the LightningModule (loss, metrics, optimizer, schedule)
4. :func:`build_trainer`: callbacks, loggers, the Trainer (atomic checkpoint writes)
5. :func:`validate_after_compression`: ``val/acc_at_compression`` (compressed, not fine-tuned)
6. :func:`fit`, 7. :func:`test`
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import hydra
import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf
from torch import nn

from imcompress import compression
from imcompress.analog import hooks as analog
from imcompress.compression.result import CompressionResult
from imcompress.config import check_required, config_essentials
from imcompress.data import ImageDataModule
from imcompress.models.build import build_model
from imcompress.runs.lock import is_worker_process, run_folder_locked
from imcompress.runs.record import merge_attempt, read_previous
from imcompress.runs.summary import (
    git_commit,
    make_console,
    print_banner,
    print_final,
    slurm_job,
    to_number,
    write_summary,
)
from imcompress.sweep.requeue import requeue_requested, resume_ckpt_path, trainer_requeue_overrides
from imcompress.training import dense_stage, recalibration
from imcompress.training.callbacks.pruning import PruningCallback
from imcompress.training.checkpoints import (
    AtomicCheckpointIO,
    best_checkpoint_callback,
    resolve_ckpt_path,
    resume_step,
)
from imcompress.training.loggers import build_loggers, publish_run_summary, run_identity
from imcompress.training.module import ClassificationModule
from imcompress.training.performance import performance_options, prepare_model, trainer_config
from imcompress.training.tested import tested_choice, tested_path, tested_record

# Exit status of a job stopped by a signal: 128 + the signal number, as a shell reports it.
EXIT_SIGINT = 128 + signal.SIGINT  # 130
EXIT_SIGTERM = 128 + signal.SIGTERM  # 143
ACC_AT_COMPRESSION = "val/acc_at_compression"


def output_dir_of(cfg: DictConfig) -> Path:
    """This job's folder (Hydra's runtime output dir)."""
    path = Path(cfg.paths.output_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


def train(cfg: DictConfig) -> float | None:
    """Run one training job and return ``cfg.optimized_metric`` (for sweepers).

    Refusals (bad config, run folder in use, nothing to resume from) happen before anything is
    written and leave the folder as it was.
    """
    check_required(cfg)
    output_dir = output_dir_of(cfg)
    with run_folder_locked(output_dir):
        ckpt_path = resolve_ckpt_path(resume_ckpt_path(cfg.get("ckpt_path")), output_dir)
        metrics = run_task(cfg, output_dir, ckpt_path, run_steps)
    return _optimized_value(cfg, metrics)


# task wrapper ---------------------------------------------------------------------------------
Steps = Callable[[DictConfig, Path, "str | None", dict[str, Any]], None]


def run_task(
    cfg: DictConfig, output_dir: Path, ckpt_path: str | None, steps: Steps
) -> dict[str, Any]:
    """Run ``steps(cfg, output_dir, ckpt_path, summary)``; return the final metrics.

    Owns what every job must do however it ends: the status (completed, failed, interrupted,
    requeued) and error in ``summary.json`` (attempts recorded, a completed record never replaced
    by a failed attempt; rank 0 only), the final table, ``wandb.finish()``, and the exit status
    (130 after SIGINT/Ctrl-C, 143 after SIGTERM; other errors propagate, and Hydra exits 1).
    """
    started = time.perf_counter()
    main_process = not is_worker_process()
    console = make_console()
    summary: dict[str, Any] = {
        "status": "running",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "resumed_from": ckpt_path,
        "config": config_essentials(cfg),
        "identity": run_identity(cfg),
        "output_dir": str(output_dir),
        "git_commit": git_commit(),
        "slurm": slurm_job(),
    }
    previous = read_previous(output_dir) if main_process else None
    if main_process:  # listed as running now, so that an attempt killed without a trace stays
        _write_record(output_dir, merge_attempt(previous, summary)[0], raising=False)
    exit_code: int | None = None
    with _signals_recorded() as received:
        try:
            steps(cfg, output_dir, ckpt_path, summary)
            summary["status"] = "completed"
            return dict(summary.get("metrics") or {})
        except BaseException as error:
            summary["status"], exit_code = _outcome(error, received)
            if summary["status"] == "interrupted":
                summary["signal"] = signal.Signals(exit_code - 128).name if exit_code else None
            elif summary["status"] == "failed":
                summary["error"] = f"{type(error).__name__}: {error}"
            if exit_code is not None:
                print(f"{summary['output_dir']}: stopped by {summary['signal']}", file=sys.stderr)
                raise SystemExit(exit_code) from error
            raise
        finally:
            received.raising = False
            summary["wall_time_s"] = round(time.perf_counter() - started, 3)
            if main_process:
                record, kept = merge_attempt(previous, summary)
                _write_record(output_dir, record, raising=summary["status"] == "completed")
                if kept:
                    print(
                        f"{output_dir / 'summary.json'} keeps the completed run's results; this "
                        f"attempt ({summary['status']}) is recorded under 'attempts'",
                        file=sys.stderr,
                    )
                if summary["status"] not in ("failed",):
                    print_final(console, summary)
                    publish_run_summary(summary)
            _finish_wandb(0 if summary["status"] == "completed" else 1)


def _write_record(output_dir: Path, record: dict[str, Any], raising: bool) -> None:
    """``write_summary``; when that fails (a full disk), the record goes to stderr so it is not
    lost, and the error is raised only with ``raising`` (else the attempt's own error wins)."""
    try:
        write_summary(output_dir, record)
    except OSError as error:
        print(
            f"error: could not write {output_dir / 'summary.json'}: {error}; the record:\n"
            + json.dumps(record, indent=2, default=str),
            file=sys.stderr,
            flush=True,
        )
        if raising:
            raise


def _outcome(error: BaseException, received: _SignalRecord) -> tuple[str, int | None]:
    """(status, exit code to raise instead of ``error`` or None) of an attempt that raised."""
    if requeue_requested():  # SLURM time limit/preemption: the job restarts and resumes
        return "requeued", None
    if isinstance(error, SIGTERMException) or signal.SIGTERM in received:
        return "interrupted", EXIT_SIGTERM
    # Lightning turns Ctrl-C during fit/test into sys.exit(1); the recorded SIGINT tells it apart.
    if isinstance(error, KeyboardInterrupt) or signal.SIGINT in received:
        return "interrupted", EXIT_SIGINT
    return "failed", None


class _SignalRecord:
    """SIGINT/SIGTERM received while the job runs (see :func:`_signals_recorded`)."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self.raising = True  # False while the task wrapper writes its results

    def __contains__(self, signum: object) -> bool:
        return signum in self.received


@contextmanager
def _signals_recorded() -> Iterator[_SignalRecord]:
    """Record SIGINT/SIGTERM while the job runs (the previous handlers are restored afterwards).

    SIGINT raises KeyboardInterrupt as usual. SIGTERM raises ``SystemExit`` outside Lightning's
    loops; inside them Lightning's own handler (which calls this one too) stops at the next batch
    boundary with ``SIGTERMException``. A SIGTERM handler installed by someone else (submitit in a
    SLURM job) is left in place. Neither raises once ``raising`` is False.
    """
    record = _SignalRecord()

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        record.received.append(signum)
        if record.raising:
            raise KeyboardInterrupt

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        record.received.append(signum)
        if record.raising and signal.getsignal(signal.SIGTERM) is on_sigterm:  # outside Lightning
            raise SystemExit(EXIT_SIGTERM)

    installed: dict[int, Any] = {}
    if sys.platform != "win32" and _in_main_thread():
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            installed[signal.SIGINT] = signal.signal(signal.SIGINT, on_sigint)
        if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
            installed[signal.SIGTERM] = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield record
    finally:
        for signum, handler in installed.items():
            signal.signal(signum, handler)


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _finish_wandb(exit_code: int) -> None:
    """Close the W&B run so the next in-process multirun job starts its own."""
    import wandb

    if wandb.run is not None:
        try:
            wandb.finish(exit_code=exit_code)
        except Exception as error:  # its service killed by SLURM: never mask the job's outcome
            print(f"warning: wandb.finish() failed: {type(error).__name__}: {error}")


def _optimized_value(cfg: DictConfig, metrics: dict[str, Any]) -> float | None:
    name = cfg.get("optimized_metric")
    if not name:
        return None
    if name not in metrics or metrics[name] is None:
        raise KeyError(f"optimized_metric={name!r} was not logged; logged: {sorted(metrics)}")
    return float(metrics[name])


# steps ----------------------------------------------------------------------------------------
@dataclass
class Job:
    """What the build steps made; the fit / test steps use it."""

    cfg: DictConfig
    output_dir: Path
    ckpt_path: str | None
    datamodule: ImageDataModule
    model: nn.Module
    compressed: CompressionResult
    module: ClassificationModule
    callbacks: list[Callback] = field(default_factory=list)
    loggers: list[Logger] = field(default_factory=list)
    trainer: pl.Trainer | None = None


def run_steps(
    cfg: DictConfig, output_dir: Path, ckpt_path: str | None, summary: dict[str, Any]
) -> None:
    """The job's steps, filling ``summary`` as they go (see the module docstring)."""
    recalibration.check_finetune(cfg)  # data-aware options and distillation need pretrained=
    cfg = dense_stage.resolve_pretrained(cfg, summary)  # auto: the dense stage, trained once
    datamodule = build_data(cfg)
    model, compressed = build_model_and_compression(cfg, datamodule, ckpt_path)
    module = build_module(cfg, model, datamodule)
    job = Job(cfg, output_dir, ckpt_path, datamodule, model, compressed, module)
    build_trainer(job)  # converts the model to analog layers first when analog.train=true
    options = performance_options(cfg.trainer)
    if OmegaConf.select(cfg, "analog.train", default=False):  # analog layers view their weights
        options = dataclasses.replace(options, memory_format="contiguous")  # as NCHW
    prepare_model(module, options)  # memory format, torch.compile
    parameters = sum(p.numel() for p in model.parameters())
    summary["parameters"] = {"total": parameters}
    summary["compression"] = compressed.summary()
    _announce(job, parameters)

    at_compression = validate_after_compression(job)
    start_step = resume_step(job.ckpt_path)  # before fit: the fit may overwrite last.ckpt
    summary["best"], fit_metrics = fit(job)
    assert job.trainer is not None
    summary["world_size"] = job.trainer.world_size
    summary["steps_trained"] = None if start_step is None else job.trainer.global_step - start_step
    test_metrics, summary["tested"] = test(job)
    summary["metrics"] = {**at_compression, **fit_metrics, **test_metrics}
    summary["epochs"] = job.trainer.current_epoch
    summary["cost"] = _collect_cost(job.callbacks)
    summary["compression"] = compressed.summary()  # final per-layer sparsity and ranks


def build_data(cfg: DictConfig) -> ImageDataModule:
    """Seed everything, instantiate ``cfg.data`` and make sure the dataset is there."""
    pl.seed_everything(cfg.seed, workers=True)
    datamodule: ImageDataModule = hydra.utils.instantiate(cfg.data)
    datamodule.prepare_data()  # fails fast (seconds) when the dataset is not available
    return datamodule


def build_model_and_compression(
    cfg: DictConfig, datamodule: ImageDataModule, ckpt_path: str | None = None
) -> tuple[nn.Module, CompressionResult]:
    """The network, with ``pretrained`` weights loaded and ``cfg.compression`` applied in place;
    in a fresh run the data-aware options read calibration batches and the BatchNorm statistics
    are re-estimated after compression (:mod:`imcompress.training.recalibration`)."""
    recalibration.check_data_aware(cfg)
    fresh = ckpt_path is None
    model = build_model(cfg.model, datamodule.channels, datamodule.num_classes)
    if cfg.get("pretrained"):
        compression.load_pretrained(model, cfg.pretrained)
        print(f"Loaded pretrained weights from {cfg.pretrained}", flush=True)
    model.to(recalibration.compute_device(cfg))  # calibration on the accelerator, if any
    data = recalibration.compression_data(cfg, datamodule, fresh, model)
    compressed = compression.apply_compression(model, cfg.get("compression"), **data)
    recalibration.recalibrate_after_compression(cfg, datamodule, model, compressed, fresh)
    model.cpu()
    return model, compressed


def build_module(
    cfg: DictConfig, model: nn.Module, datamodule: ImageDataModule
) -> ClassificationModule:
    """The LightningModule: loss, metrics, optimizer and schedule around ``model``; with
    ``finetune.distill.alpha > 0`` the dense ``pretrained`` model is its teacher (rebuilt from
    the file on every start, resume included: checkpoints never hold it)."""
    alpha, temperature = recalibration.distill_settings(cfg)
    teacher = None
    if alpha > 0:
        if not cfg.get("pretrained"):
            raise ValueError(
                f"finetune.distill.alpha={alpha} needs a dense pretrained model; compression="
                f"{(cfg.get('compression') or {}).get('method', 'none')} runs without one"
            )
        teacher = build_model(cfg.model, datamodule.channels, datamodule.num_classes)
        compression.load_pretrained(teacher, cfg.pretrained)
    return ClassificationModule(
        model,
        num_classes=datamodule.num_classes,
        optimizer=hydra.utils.instantiate(cfg.optimizer),
        scheduler=hydra.utils.instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
        teacher=teacher,
        distill_alpha=alpha,
        distill_temperature=temperature,
    )


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


def build_trainer(job: Job) -> pl.Trainer:
    """Callbacks (``cfg.callbacks`` and the compression method's own), loggers and the Trainer."""
    cfg = job.cfg
    recalibrate = recalibration.gradual_recalibration(cfg, job.datamodule, job.compressed)
    job.callbacks = [
        *build_callbacks(cfg),
        *PruningCallback.from_result(job.compressed, recalibrate),
    ]
    job.callbacks = analog.prepare_job(cfg, job.model, job.compressed, job.callbacks)
    job.loggers = build_loggers(cfg, job.output_dir, resume_ckpt=job.ckpt_path)
    job.trainer = hydra.utils.instantiate(
        trainer_config(cfg.trainer),  # without the memory_format / compile keys
        callbacks=job.callbacks,
        logger=job.loggers,
        **trainer_plugins(cfg.trainer),
    )
    return job.trainer


def trainer_plugins(trainer_cfg: Any) -> dict[str, Any]:
    """``plugins=`` for the Trainer: atomic checkpoint writes, and the SLURM requeue setting.

    A trainer config that sets its own ``plugins`` keeps them as they are.
    """
    if trainer_cfg.get("plugins") is not None:
        return {}
    requeue = trainer_requeue_overrides(trainer_cfg).get("plugins", [])
    return {"plugins": [AtomicCheckpointIO(), *requeue]}


def validate_after_compression(job: Job) -> dict[str, Any]:
    """``val/acc_at_compression``: validation accuracy of the compressed model before any
    fine-tuning (the number compression papers report), logged at step 0 and returned.

    Only for a fresh run with a compression method, in the job's main process. A separate
    one-device Trainer without loggers or callbacks runs ``validate`` so that nothing of it
    counts toward ``val/acc``, ``val/acc_best`` or the checkpoints of the fit.
    """
    if job.compressed.method == "none" or job.ckpt_path is not None or is_worker_process():
        return {}
    trainer_cfg = job.cfg.trainer
    evaluator = pl.Trainer(
        accelerator=trainer_cfg.get("accelerator", "auto"),
        devices=1,
        precision=trainer_cfg.get("precision") or "32-true",
        limit_val_batches=trainer_cfg.get("limit_val_batches"),
        logger=False,
        callbacks=[],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(job.output_dir),
    )
    results = evaluator.validate(job.module, datamodule=job.datamodule, verbose=False)
    job.module.val_acc_best.reset()  # the fit's best starts from its own first epoch
    value = to_number((results[0] if results else {}).get("val/acc"))
    if value is None:
        return {}
    metrics = {ACC_AT_COMPRESSION: value}
    for logger in job.loggers:
        logger.log_metrics(metrics, step=0)
    print(f"{ACC_AT_COMPRESSION}: {value:.4f} (compressed, before fine-tuning)", flush=True)
    return metrics


def fit(job: Job) -> tuple[dict[str, Any], dict[str, Any]]:
    """``trainer.fit`` (resuming from ``job.ckpt_path``); returns the best-checkpoint record and
    the metrics at the end of the fit."""
    trainer = job.trainer
    assert trainer is not None
    trainer.fit(job.module, datamodule=job.datamodule, ckpt_path=job.ckpt_path)
    metrics = {key: to_number(value) for key, value in trainer.callback_metrics.items()}
    restored_best = getattr(job.module.val_acc_best, "max_value", None)  # MaxMetric state
    if "val/acc_best" not in metrics and restored_best is not None and restored_best.isfinite():
        # resumed from a checkpoint at max_epochs: no epoch ran, the best is the restored one
        metrics["val/acc_best"] = to_number(restored_best)
    checkpoint = best_checkpoint_callback(job.callbacks)
    score = checkpoint.best_model_score if checkpoint is not None else None
    best = {
        "val/acc": to_number(score) if score is not None else None,
        "checkpoint": checkpoint.best_model_path if checkpoint else None,
        "tested": _tested_checkpoint(job)[0],
    }
    return best, metrics


def test(job: Job) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """``trainer.test`` on the checkpoint :func:`_tested_checkpoint` chooses; returns the
    metrics and the ``tested`` record (that checkpoint, its epoch, its measured compression)."""
    trainer = job.trainer
    assert trainer is not None
    if not job.cfg.get("test_after_fit", True):
        return {}, None
    choice, reason = _tested_checkpoint(job)
    path = tested_path(job.callbacks, choice)
    results = trainer.test(
        job.module, datamodule=job.datamodule, ckpt_path=str(path) if path else None, verbose=False
    )
    tested = {
        **tested_record(path, job.output_dir, job.module.model, job.compressed),
        "choice": choice if path is not None else "weights at the end of fit",
        "reason": reason,
    }
    metrics = {key: to_number(value) for key, value in (results[0] if results else {}).items()}
    # analog=quant|noisy|...: the tested weights on simulated crossbar tiles (docs/analog.md)
    metrics.update(analog.evaluate_after_test(job.cfg, job.module.model, job.datamodule, trainer))
    return metrics, tested


def _tested_checkpoint(job: Job) -> tuple[str, str]:
    """(``best`` | ``last``, why): see :mod:`imcompress.training.tested` (gradual pruning tests the
    final weights, whose sparsity is the target)."""
    return tested_choice(job.cfg, job.compressed)


def _announce(job: Job, parameters: int) -> None:
    if is_worker_process():
        return
    console = make_console()
    print_banner(
        console,
        config_essentials(job.cfg),
        {
            "parameters": f"{parameters:,}",
            "compressed layers": len(job.compressed.layers),
            "resume from": job.ckpt_path,
            "output dir": job.output_dir,
        },
    )
    if job.compressed.layers:
        console.print(compression.format_compression_table(job.compressed))


def _collect_cost(callbacks: list[Callback]) -> dict[str, Any]:
    cost: dict[str, Any] = {}
    for callback in callbacks:
        summary_items = getattr(callback, "summary_items", None)
        if callable(summary_items):
            cost.update(summary_items())
    return cost


def configure_torch_threads() -> None:
    """Use the CPUs SLURM gave this job (if any) for intra-op parallelism."""
    cpus = os.environ.get("SLURM_CPUS_PER_TASK")
    if cpus and cpus.isdigit():
        torch.set_num_threads(int(cpus))
