"""The checkpoint a job tests, and what that checkpoint holds (``summary.json``: ``tested``).

The reported ``test/acc`` must belong to weights in the run's final compression state:

* ``test_ckpt=best`` (default) tests the best epoch by ``val/acc``. With one-shot pruning and
  low-rank methods the compression is fixed before the first epoch, so every epoch has it.
* A gradual pruning schedule makes the epochs before the end of its ramp less sparse, so the
  best-by-``val/acc`` epoch may be one of them: such a run tests its final weights
  (``checkpoints/last.ckpt``, the last epoch) and says so in ``tested.reason``.
* ``test_ckpt=last`` tests the last epoch.

:func:`tested_record` reads the tested checkpoint's ``epoch`` and ``global_step`` and measures
the sparsity and ranks on the weights the test ran with, so the summary shows them next to the
accuracy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from omegaconf import DictConfig
from torch import nn

from imcompress.compression.pruning.base import effective
from imcompress.compression.result import CompressionResult, count_parameters
from imcompress.training.checkpoints import (
    best_checkpoint_callback,
    checkpoint_position,
    last_checkpoint_callback,
)


def tested_choice(cfg: DictConfig, compressed: CompressionResult) -> tuple[str, str]:
    """(``best`` | ``last``, why) for this job."""
    if compressed.options.get("schedule") == "gradual":
        return "last", (
            "gradual pruning: the final weights are tested (epochs before the end of the "
            "sparsity ramp were less sparse, so the best val/acc epoch may not be at the target)"
        )
    if cfg.get("test_ckpt") == "last":
        return "last", "test_ckpt=last"
    return "best", "test_ckpt=best: the epoch with the best val/acc"


def tested_path(callbacks: list[Callback], choice: str) -> Path | None:
    """The checkpoint file of ``choice``; the last one when there is no best-checkpoint callback;
    None (test the weights in memory) when no checkpoint was written."""
    best = best_checkpoint_callback(callbacks)
    last = last_checkpoint_callback(callbacks)
    order = [best, last] if choice == "best" else [last, best]
    for callback in order:
        path = _saved_path(callback)
        if path is not None:
            return path
    return None


def _saved_path(callback: ModelCheckpoint | None) -> Path | None:
    """The file ``callback`` saved last (for ``monitor=None``) or best, in its ``dirpath``
    (also when the run folder moved since the path was recorded)."""
    if callback is None or not callback.best_model_path or callback.dirpath is None:
        return None
    path = Path(callback.dirpath) / Path(callback.best_model_path).name
    return path if path.is_file() else None


def tested_record(
    path: Path | None, output_dir: Path, model: nn.Module, compressed: CompressionResult
) -> dict[str, Any]:
    """``tested``: the checkpoint (relative to the run folder), its epoch and global step, and
    the compression measured on ``model`` (call it right after the test loaded the weights)."""
    position: dict[str, int | None] = {"epoch": None, "global_step": None}
    if path is not None:
        try:
            position = checkpoint_position(path)
        except Exception as error:  # the test itself loaded it; never lose the result for this
            print(f"warning: cannot read the epoch of {path}: {type(error).__name__}: {error}")
    return {
        "checkpoint": _relative(path, output_dir) if path is not None else None,
        **position,
        "compression": measured_compression(model, compressed),
    }


def measured_compression(model: nn.Module, compressed: CompressionResult) -> dict[str, Any]:
    """Measured on the live weights: ``sparsity`` (fraction of zero weights over the pruned
    layers), ``ranks`` of the low-rank layers, and the model's ``parameters`` (unmasked)."""
    measured: dict[str, Any] = {"method": compressed.method}
    if compressed.pruner is not None:
        weights = [effective(conv) for _, conv in compressed.pruner.targets]
        total = sum(weight.numel() for weight in weights)
        zeros = sum(int((weight == 0).sum()) for weight in weights)
        measured["sparsity"] = round(zeros / total, 6) if total else None
    ranks = {
        name: int(module.rank)
        for name, module in model.named_modules()
        if getattr(module, "is_low_rank_pair", False) and hasattr(module, "rank")
    }
    if ranks:
        measured["ranks"] = ranks
    measured["parameters"] = count_parameters(model)
    return measured


def _relative(path: Path, output_dir: Path) -> str:
    """``path`` relative to the run folder when inside it (the folder may move), else absolute."""
    resolved, folder = path.resolve(), output_dir.resolve()
    return str(resolved.relative_to(folder)) if folder in resolved.parents else str(resolved)
