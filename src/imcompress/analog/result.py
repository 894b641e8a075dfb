"""The result of one analog evaluation (pure Python: no aihwkit-lightning import)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from imcompress.analog.schema import TileSettings


@dataclass(frozen=True)
class AnalogResult:
    """Analog and digital test accuracy of one model under one preset
    (:func:`imcompress.analog.evaluation.evaluate_analog`)."""

    settings: TileSettings
    """the resolved preset the model was evaluated with"""
    repeat_accuracies: tuple[float, ...]
    """analog top-1 test accuracy of each programming (repeat ``i`` seeded ``settings.seed + i``;
    one entry when the preset has no noise)"""
    digital_accuracy: float
    """top-1 accuracy of the same model with exact arithmetic on the same test images"""
    samples: int
    """test images evaluated"""
    tiles: int
    """analog tiles of the converted model"""

    @property
    def mean_accuracy(self) -> float:
        """Mean analog accuracy over the repeats."""
        return statistics.fmean(self.repeat_accuracies)

    @property
    def accuracy_std(self) -> float:
        """Sample standard deviation of the analog accuracy over the repeats (0 for one)."""
        if len(self.repeat_accuracies) < 2:
            return 0.0
        return statistics.stdev(self.repeat_accuracies)

    @property
    def accuracy_drop(self) -> float:
        """Digital minus mean analog accuracy."""
        return self.digital_accuracy - self.mean_accuracy

    def metrics(self) -> dict[str, Any]:
        """The ``metrics`` of ``src/evaluate.py``'s summary.json (docs/analog.md, "Outputs")."""
        return {
            "analog/test/acc": self.mean_accuracy,
            "analog/test/acc_std": self.accuracy_std,
            "analog/test/acc_repeats": list(self.repeat_accuracies),
            "analog/test/acc_drop": self.accuracy_drop,
            "test/acc": self.digital_accuracy,
            "analog/test/samples": self.samples,
            "analog/tiles": self.tiles,
        }

    def logged_metrics(self) -> dict[str, float]:
        """The scalars ``train.py ... analog=<preset>`` logs after ``trainer.test`` (CSV, W&B,
        summary.json): the digital accuracy as ``analog/test/digital_acc``, since ``test/acc``
        there is the trainer's own."""
        return {
            "analog/test/acc": self.mean_accuracy,
            "analog/test/acc_std": self.accuracy_std,
            "analog/test/acc_drop": self.accuracy_drop,
            "analog/test/digital_acc": self.digital_accuracy,
            "analog/test/samples": float(self.samples),
        }
