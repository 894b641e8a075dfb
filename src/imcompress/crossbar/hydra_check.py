"""Hydra callback that validates ``cfg.hw`` value ranges before any job starts.

The ``base_hw`` schema rejects unknown keys and wrong types while Hydra composes; value ranges
(a non-positive size, an ADC resolution without tabulated energy) need the dataclass's own check.
Add to the Hydra config::

    hydra:
      callbacks:
        check_hw:
          _target_: imcompress.crossbar.hydra_check.CheckHardware
"""

from __future__ import annotations

from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from imcompress.crossbar.config import HardwareConfig


class CheckHardware(Callback):
    """Raise (naming the field) if ``cfg.hw`` does not make a valid :class:`HardwareConfig`."""

    def _check(self, config: DictConfig) -> None:
        hw = config.get("hw")
        if hw is not None:
            HardwareConfig.from_cfg(hw)

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config)
