"""Lightning callback: crossbar cost of the current model at fit start and after every validation.

Logs ``hw/<mapping>/{cycles,energy_uj,latency_us,utilization,speedup}`` and ``hw/arrays``,
writes ``cost_report.json`` / ``cost_report.csv`` (per layer) into ``output_dir``, keeps the totals
for ``summary_items()``, logs a per-layer W&B table at fit end when a ``WandbLogger`` is attached,
and prints its own overhead once.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import nn

from imcompress.crossbar.config import HardwareConfig
from imcompress.crossbar.cost_report import CostReport
from imcompress.crossbar.extract import estimate
from imcompress.crossbar.mapping import METHODS

LOGGED_TOTALS = ("cycles", "energy_uj", "latency_us", "utilization")


class CrossbarCostCallback(pl.Callback):
    """Run the crossbar estimator on ``pl_module.model`` and log its totals under ``hw/``.

    ``hw``: :class:`HardwareConfig`, an OmegaConf node or a dict of its fields. ``input_shape``:
    one input ``(C, H, W)``. ``output_dir``: where the per-layer report goes (None: the trainer's
    ``default_root_dir``). ``mappings``: any of ``im2col``, ``sdk``, ``vwsdk``. ``search`` and
    ``convention`` override the values in ``hw``. ``report_name``: file stem of the report.
    """

    def __init__(
        self,
        hw: Any = None,
        input_shape: Sequence[int] = (3, 32, 32),
        output_dir: str | Path | None = None,
        mappings: Sequence[str] = METHODS,
        search: str | None = None,
        convention: str | None = None,
        report_name: str = "cost_report",
        wandb_table: bool = True,
    ) -> None:
        super().__init__()
        self.hw = HardwareConfig.from_cfg(hw)
        self.input_shape = tuple(int(v) for v in input_shape)
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.mappings = tuple(mappings)
        unknown = [m for m in self.mappings if m not in METHODS]
        if unknown:
            raise ValueError(f"CrossbarCostCallback: unknown mappings {unknown}; valid: {METHODS}")
        self.search = search
        self.convention = convention
        self.report_name = report_name
        self.wandb_table = wandb_table
        self.report: CostReport | None = None
        self.seconds: list[float] = []
        self._epoch_start: float | None = None
        self._overhead_printed = False

    # estimator -----------------------------------------------------------------------------
    def evaluate(self, pl_module: pl.LightningModule) -> CostReport:
        """Estimate the current model (timed) and keep the report."""
        model = getattr(pl_module, "model", None)
        network = model if isinstance(model, nn.Module) else pl_module
        start = time.perf_counter()
        self.report = estimate(
            network,
            self.input_shape,
            self.hw,
            self.mappings,
            search=self.search,
            convention=self.convention,
        )
        self.report.totals()
        self.seconds.append(time.perf_counter() - start)
        return self.report

    def metrics(self) -> dict[str, float]:
        """The logged values, ``hw/``-namespaced."""
        if self.report is None:
            return {}
        totals = self.report.totals()
        out = {
            f"hw/{m}/{key}": totals[f"{m}/{key}"] for m in self.mappings for key in LOGGED_TOTALS
        }
        out.update({f"hw/{m}/speedup": totals[f"{m}/speedup_vs_im2col"] for m in self.mappings})
        out["hw/arrays"] = totals["arrays"]
        return out

    def summary_items(self) -> dict[str, float]:
        """Totals of the latest report (keys like ``vwsdk/cycles``), for ``summary.json``."""
        return self.report.totals() if self.report is not None else {}

    # hooks ---------------------------------------------------------------------------------
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.evaluate(pl_module)
        if trainer.ckpt_path is None:  # a resumed fit logged its step-0 row in the first attempt
            metrics = self.metrics()
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=trainer.global_step)
        self._write(trainer)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._epoch_start = time.perf_counter()

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self.evaluate(pl_module)
        pl_module.log_dict(self.metrics(), logger=True, prog_bar=False, sync_dist=False)
        self._write(trainer)
        self._print_overhead()

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._print_overhead()
        if not self.wandb_table or self.report is None:
            return
        try:
            from lightning.pytorch.loggers import WandbLogger
        except ImportError:  # pragma: no cover - wandb extra missing
            return
        rows = self.report.rows()
        if not rows:
            return
        columns, data = table_data(rows)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                try:
                    logger.log_table(key="hw/per_layer", columns=columns, data=data)
                except Exception as error:  # W&B must never break a run
                    rank_zero_warn(f"CrossbarCostCallback: could not log the W&B table: {error}")

    # helpers -------------------------------------------------------------------------------
    def _write(self, trainer: pl.Trainer) -> None:
        if self.report is None or not trainer.is_global_zero:
            return
        folder = self.output_dir or Path(trainer.default_root_dir)
        self.report.to_json(folder / f"{self.report_name}.json")
        self.report.to_csv(folder / f"{self.report_name}.csv")

    def _print_overhead(self) -> None:
        if self._overhead_printed or not self.seconds:
            return
        self._overhead_printed = True
        per_call = sum(self.seconds) / len(self.seconds)
        message = f"CrossbarCostCallback: {1e3 * per_call:.1f} ms per estimate ({len(self.seconds)} so far)"
        if self._epoch_start is not None:
            epoch = time.perf_counter() - self._epoch_start
            message += f", {100 * per_call / epoch:.3f} % of the first epoch ({epoch:.1f} s)"
        rank_zero_info(message)


def table_data(rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """Columns and cells of a W&B table built from report rows.

    W&B fixes each column's type from its values (None is allowed in any column), so empty cells
    stay None, and a column that mixes numbers with text (e.g. a count or a note) becomes text.
    """
    columns = list(dict.fromkeys(key for row in rows for key in row))
    data = [[row.get(column) for column in columns] for row in rows]
    for index in range(len(columns)):
        kinds = {_kind(line[index]) for line in data if line[index] is not None}
        if len(kinds) > 1:
            for line in data:
                if line[index] is not None:
                    line[index] = str(line[index])
    return columns, data


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    return "number" if isinstance(value, (int, float)) else type(value).__name__
