"""The job behind ``src/evaluate.py``: analog accuracy of a trained checkpoint.

It reads the run folder of the checkpoint through :class:`~imcompress.runs.folder.RunFolder`
(its ``.hydra/config.yaml`` checked: no ``_target_`` outside the project's classes), rebuilds
model and compression exactly as the run did, loads the weights (tensors only, never code), and
evaluates the ``analog`` preset with :func:`imcompress.analog.evaluation.evaluate_analog`
(an :class:`~imcompress.analog.result.AnalogResult`, whose ``metrics()`` go to summary.json).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
import torch
from omegaconf import DictConfig
from torch import nn

from imcompress.analog.schema import TileSettings, resolve_settings
from imcompress.config import config_essentials
from imcompress.runs.folder import RunFolder
from imcompress.runs.summary import git_commit, write_summary

if TYPE_CHECKING:
    from imcompress.analog.result import AnalogResult


@dataclass
class TrainedRun:
    """A finished train.py run: its folder, checked config, the checkpoint to evaluate, summary."""

    folder: RunFolder
    config: DictConfig
    checkpoint: Path
    summary: dict[str, Any]

    @property
    def run_dir(self) -> Path:
        return self.folder.path


def find_run(ckpt: str | Path) -> TrainedRun:
    """The run of checkpoint ``ckpt``: a ``.ckpt`` file inside a run folder, or the run folder
    itself (then the checkpoint that run tested, found inside the folder even after it moved).

    Its saved config is checked first: a ``_target_`` outside the project's classes is refused
    (:class:`~imcompress.runs.folder.RefusedTargetError`) before anything is built or loaded."""
    folder = RunFolder.containing(ckpt, option="ckpt")
    config = folder.config()
    given = Path(ckpt).expanduser()
    checkpoint = folder.checkpoint("tested") if given.is_dir() else given.absolute()
    return TrainedRun(folder, config, checkpoint, folder.summary())


def rebuild_model(run: TrainedRun, channels: int, num_classes: int) -> nn.Module:
    """The run's model and compression (and analog layers for a hardware-aware run) with the
    checkpoint's weights and masks."""
    return run.folder.rebuild_model(channels, num_classes, run.checkpoint)


def prepare_evaluation(
    run: TrainedRun, settings: TileSettings, paths: DictConfig | None = None
) -> tuple[nn.Module, list[Any], list[torch.Tensor], int]:
    """The rebuilt model of ``run``, its test batches, the calibration images (drawn with
    ``settings.seed``) and the number of classes; ``paths``: the data folder as seen from this
    job, not from the training job."""
    from imcompress.analog.data import normalized_batches

    cfg = run.config.copy()
    if paths is not None:
        cfg.paths = paths
    datamodule = hydra.utils.instantiate(cfg.data)  # a checked class (RunFolder.config)
    datamodule.prepare_data()
    model = rebuild_model(run, datamodule.channels, datamodule.num_classes)
    test = normalized_batches(datamodule, "test", samples=settings.test_samples)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        calibration = [
            images
            for images, _ in normalized_batches(
                datamodule, "train", batches=settings.calibration_batches
            )
        ]
    return model, test, calibration, datamodule.num_classes


def evaluate_run(
    run: TrainedRun, settings: TileSettings, paths: DictConfig | None = None
) -> AnalogResult:
    """Analog and digital test accuracy of ``run`` under ``settings`` (see evaluate_analog)."""
    from imcompress.analog.evaluation import evaluate_analog

    model, test, calibration, num_classes = prepare_evaluation(run, settings, paths)
    return evaluate_analog(model, settings, test, calibration, num_classes)


def run_evaluate(cfg: DictConfig) -> float:
    """Evaluate ``cfg.ckpt`` under ``cfg.analog``; write summary.json; return analog/test/acc."""
    started = time.perf_counter()
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"status": "running", "ckpt": str(cfg.ckpt)}
    try:
        if not cfg.analog.enabled:
            raise ValueError("evaluate.py needs an analog preset: analog=ideal|quant|noisy|...")
        run = find_run(cfg.ckpt)
        hw = cfg.get("hw") if cfg.get("hw") is not None else run.config.get("hw")
        settings = resolve_settings(cfg.analog, hw)
        summary.update(
            {
                "checkpoint": str(run.checkpoint),
                "run_dir": str(run.run_dir),
                "config": config_essentials(run.config),
                "hw": hw.get("name") if hw is not None else None,
                "analog": settings.record(),
                "run_metrics": {
                    key: value
                    for key, value in (run.summary.get("metrics") or {}).items()
                    if key.startswith("test/")
                },
            }
        )
        result = evaluate_run(run, settings, cfg.paths)
        summary["metrics"] = result.metrics()
        summary["status"] = "completed"
        print(format_result(result))
        return result.mean_accuracy
    except BaseException as error:
        summary["status"] = "failed"
        summary["error"] = f"{type(error).__name__}: {error}"
        raise
    finally:
        summary["git_commit"] = git_commit()
        summary["wall_time_s"] = round(time.perf_counter() - started, 3)
        summary["output_dir"] = str(output_dir)
        write_summary(output_dir, summary)


def format_result(result: AnalogResult) -> str:
    """The result in one line, for the console."""
    return (
        f"analog={result.settings.name}: analog/test/acc {result.mean_accuracy:.4f} "
        f"+- {result.accuracy_std:.4f} over {len(result.repeat_accuracies)} "
        f"repeat(s); digital test/acc {result.digital_accuracy:.4f} "
        f"on {result.samples} test images, {result.tiles} tiles"
    )
