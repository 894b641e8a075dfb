"""Loggers: an always-on CSV logger and a W&B logger that is offline unless asked otherwise."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

WANDB_MODES = ("offline", "online", "disabled")
WANDB_ID_FILE = "wandb_run_id.txt"


def run_identity(cfg: DictConfig) -> dict[str, Any]:
    """W&B group, run name and job type for this job (see conf/logger/wandb.yaml)."""
    wandb_cfg = cfg.logger.get("wandb") or {}
    overrides: list[str] = []
    group = cfg.name
    if HydraConfig.initialized():
        hydra_cfg = HydraConfig.get()
        overrides = list(hydra_cfg.overrides.task)
        if hydra_cfg.mode == RunMode.MULTIRUN:
            group = f"{cfg.name}-{Path(hydra_cfg.sweep.dir).name}"
    shown = [item for item in overrides if not item.startswith(("hydra", "logger", "trainer."))]
    method = (cfg.get("compression") or {}).get("method", "none")
    return {
        "group": wandb_cfg.get("group") or group,
        "name": wandb_cfg.get("run_name") or (",".join(shown) if shown else cfg.name),
        "job_type": wandb_cfg.get("job_type") or method,
    }


class ResumableCSVLogger(CSVLogger):
    """Lightning's CSV logger, except that a resumed job keeps the rows of its earlier attempts.

    Lightning's writer deletes an existing ``metrics.csv`` when it starts; this one moves the file
    aside while the writer starts and back afterwards (byte for byte, line endings included; a
    kill in between leaves ``metrics.csv.resume``, which the next attempt puts back), then appends
    (the header grows if new metrics appear). Only rank 0 writes.
    """

    @property
    def experiment(self) -> Any:
        if self._experiment is not None or getattr(rank_zero_only, "rank", 0) != 0:
            return super().experiment
        metrics_file = Path(self.log_dir) / "metrics.csv"
        kept = metrics_file.with_name("metrics.csv.resume")
        if metrics_file.is_file():
            os.replace(metrics_file, kept)
        writer = super().experiment
        if kept.is_file():
            os.replace(kept, metrics_file)
            with open(metrics_file, newline="") as handle:
                header = next(csv.reader(handle), [])
            if header:
                writer.metrics_keys = sorted(header)
        return writer


def build_loggers(cfg: DictConfig, output_dir: Path) -> list[Logger]:
    """CSV logger always; W&B logger when ``logger.wandb`` is set, resuming the job's W&B run."""
    loggers: list[Logger] = [ResumableCSVLogger(save_dir=str(output_dir), name="csv", version="")]
    wandb_cfg = cfg.logger.get("wandb")
    if not wandb_cfg:
        return loggers
    mode = wandb_cfg.get("mode", "offline")
    if mode not in WANDB_MODES:
        raise ValueError(f"logger.wandb.mode={mode!r}; valid: {list(WANDB_MODES)}")
    if mode == "offline" and wandb_cfg.get("log_model"):
        raise ValueError(
            "logger.wandb.log_model=true needs mode=online (Lightning refuses it offline)"
        )
    if mode == "online" and not (os.environ.get("WANDB_API_KEY") or _has_netrc_key()):
        raise ValueError(
            "logger.wandb.mode=online but no W&B API key was found (WANDB_API_KEY or `wandb login`); "
            "use the default mode=offline and `wandb sync` later."
        )
    identity = run_identity(cfg)
    id_file = output_dir / WANDB_ID_FILE
    run_id = id_file.read_text().strip() if id_file.exists() else None
    logger = WandbLogger(
        project=wandb_cfg.project,
        entity=wandb_cfg.get("entity"),
        group=identity["group"],
        name=identity["name"],
        job_type=identity["job_type"],
        tags=list(wandb_cfg.get("tags") or []),
        save_dir=str(output_dir),
        offline=mode == "offline",
        mode=mode,
        id=run_id,
        resume="allow",
        log_model=bool(wandb_cfg.get("log_model", False)),
        config=OmegaConf.to_container(cfg, resolve=True),
    )
    if (
        getattr(rank_zero_only, "rank", 0) == 0
    ):  # the other processes of a data-parallel job have no W&B run
        id_file.write_text(logger.experiment.id)
    return [*loggers, logger]


def _has_netrc_key() -> bool:
    netrc = Path.home() / ".netrc"
    return netrc.exists() and "api.wandb.ai" in netrc.read_text(errors="ignore")
