"""The job behind ``src/evaluate.py``: analog accuracy of a trained checkpoint.

It reads the run's ``.hydra/config.yaml`` next to the checkpoint, rebuilds model and
compression exactly as the run did, loads the weights (``torch.load(weights_only=True)``), and
evaluates the ``analog`` preset with :func:`imcompress.analog.evaluation.evaluate_analog`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from imcompress import compression
from imcompress.analog.schema import TileSettings, resolve_settings
from imcompress.config import config_essentials
from imcompress.models.build import build_model
from imcompress.summary import git_commit, write_summary


@dataclass
class TrainedRun:
    """A finished train.py run: its folder, resolved config, checkpoint and summary."""

    run_dir: Path
    config: DictConfig
    checkpoint: Path
    summary: dict[str, Any]


def find_run(ckpt: str | Path) -> TrainedRun:
    """The run of checkpoint ``ckpt``: a ``.ckpt`` file inside a run folder, or the run folder
    itself (then the checkpoint that run tested: best or last, from its summary.json)."""
    path = Path(ckpt).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"ckpt={ckpt!r}: no such checkpoint file or run folder")
    run_dir = path if path.is_dir() else path.parent
    while not (run_dir / ".hydra" / "config.yaml").is_file():
        if run_dir.parent == run_dir:
            raise FileNotFoundError(
                f"ckpt={ckpt!r}: no .hydra/config.yaml in its folder or any parent; evaluate.py "
                "needs the train.py run folder to rebuild the model"
            )
        run_dir = run_dir.parent
    summary_path = run_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    if path.is_dir():
        best = (summary.get("best") or {}).get("checkpoint")
        tested = (summary.get("best") or {}).get("tested", "best")
        last = run_dir / "checkpoints" / "last.ckpt"
        chosen = Path(best) if tested == "best" and best else last
        if not chosen.is_absolute() and not chosen.is_file():
            chosen = run_dir / "checkpoints" / chosen.name
        if not chosen.is_file():
            raise FileNotFoundError(f"ckpt={ckpt!r}: the run's checkpoint {chosen} is missing")
        path = chosen
    config = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    assert isinstance(config, DictConfig)
    return TrainedRun(run_dir=run_dir, config=config, checkpoint=path, summary=summary)


def load_weights(model: nn.Module, checkpoint: Path) -> None:
    """Load a Lightning checkpoint's model weights strictly, without unpickling code."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    model.load_state_dict(compression.pretrained.extract_state_dict(state), strict=True)


def rebuild_model(run: TrainedRun, channels: int, num_classes: int) -> nn.Module:
    """The run's model and compression (and analog layers for a hardware-aware run) with the
    checkpoint's weights and masks."""
    cfg = run.config
    model = build_model(cfg.model, channels, num_classes)
    compression.apply_compression(model, cfg.get("compression"))
    run_analog = cfg.get("analog")
    if run_analog is not None and run_analog.get("enabled") and run_analog.get("train"):
        from imcompress.analog.training import convert_for_training

        model = convert_for_training(model, resolve_settings(run_analog, cfg.get("hw")))
    load_weights(model, run.checkpoint)
    return model


def evaluate_run(
    run: TrainedRun, settings: TileSettings, paths: DictConfig | None = None
) -> dict[str, Any]:
    """Analog and digital test accuracy of ``run`` under ``settings`` (see evaluate_analog)."""
    from imcompress.analog.data import normalized_batches
    from imcompress.analog.evaluation import evaluate_analog

    cfg = run.config.copy()
    if paths is not None:
        cfg.paths = paths  # the data folder as seen from this job, not from the training job
    datamodule = hydra.utils.instantiate(cfg.data)
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
    return evaluate_analog(model, settings, test, calibration, datamodule.num_classes)


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
        metrics = evaluate_run(run, settings, cfg.paths)
        summary["metrics"] = metrics
        summary["status"] = "completed"
        print(format_result(settings, metrics))
        return float(metrics["analog/test/acc"])
    except BaseException as error:
        summary["status"] = "failed"
        summary["error"] = f"{type(error).__name__}: {error}"
        raise
    finally:
        summary["git_commit"] = git_commit()
        summary["wall_time_s"] = round(time.perf_counter() - started, 3)
        summary["output_dir"] = str(output_dir)
        write_summary(output_dir, summary)


def format_result(settings: TileSettings, metrics: dict[str, Any]) -> str:
    """One line per number, for the console."""
    return (
        f"analog={settings.name}: analog/test/acc {metrics['analog/test/acc']:.4f} "
        f"+- {metrics['analog/test/acc_std']:.4f} over {len(metrics['analog/test/acc_repeats'])} "
        f"repeat(s); digital test/acc {metrics['test/acc']:.4f} "
        f"on {metrics['analog/test/samples']} test images, {metrics['analog/tiles']} tiles"
    )
