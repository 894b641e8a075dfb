"""The analog result type: summary keys and values stay those of the saved summaries."""

from __future__ import annotations

import dataclasses
import statistics

import pytest

from imcompress.analog.result import AnalogResult

EVALUATE_KEYS = {  # metrics of src/evaluate.py's summary.json (docs/analog.md, "Outputs")
    "analog/test/acc",
    "analog/test/acc_std",
    "analog/test/acc_repeats",
    "analog/test/acc_drop",
    "test/acc",
    "analog/test/samples",
    "analog/tiles",
}
TRAIN_KEYS = {  # what train.py ... analog=<preset> logs after trainer.test
    "analog/test/acc",
    "analog/test/acc_std",
    "analog/test/acc_drop",
    "analog/test/digital_acc",
    "analog/test/samples",
}


def test_metrics_keep_the_summary_keys_and_values(preset) -> None:
    repeats = (0.75, 0.8125, 0.78125)
    result = AnalogResult(preset("noisy"), repeats, digital_accuracy=0.875, samples=64, tiles=9)
    metrics = result.metrics()
    assert set(metrics) == EVALUATE_KEYS
    assert metrics["analog/test/acc"] == statistics.fmean(repeats)
    assert metrics["analog/test/acc_std"] == statistics.stdev(repeats)
    assert metrics["analog/test/acc_repeats"] == list(repeats)
    assert metrics["analog/test/acc_drop"] == 0.875 - statistics.fmean(repeats)
    assert (metrics["test/acc"], metrics["analog/test/samples"], metrics["analog/tiles"]) == (
        0.875,
        64,
        9,
    )
    logged = result.logged_metrics()
    assert set(logged) == TRAIN_KEYS
    assert logged["analog/test/digital_acc"] == 0.875 and logged["analog/test/samples"] == 64.0
    assert all(isinstance(value, float) for value in logged.values())
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.samples = 1  # type: ignore[misc]


def test_one_repeat_has_no_spread(preset) -> None:
    result = AnalogResult(preset("quant"), (0.5,), digital_accuracy=0.5, samples=2, tiles=1)
    assert (result.mean_accuracy, result.accuracy_std, result.accuracy_drop) == (0.5, 0.0, 0.0)
