"""Loggers from ``cfg.logger``: every entry is a Lightning logger built from its ``_target_``.

``conf/logger/*.yaml`` holds a CSV logger (``csv``, the plain-file source of truth) and, with
``logger=wandb``, a W&B logger built by :func:`wandb_logger` (offline unless asked otherwise). Any
other Lightning logger plugs in the same way, e.g. ``+logger.tb._target_=...TensorBoardLogger``.
A target that takes a ``job_cfg`` and/or ``output_dir`` parameter receives the job's composed
config and folder (that is how the W&B logger finds its run identity and resumes its run).
"""

from __future__ import annotations

import csv
import inspect
import os
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

WANDB_MODES = ("offline", "online", "disabled")
WANDB_MODE_ALIASES = {"dryrun": "offline", "run": "online"}  # wandb's older names for the modes
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
    shown = [
        item
        for item in overrides
        if not item.startswith(("hydra", "logger", "trainer.", "ckpt_path="))
    ]
    method = (cfg.get("compression") or {}).get("method", "none")
    return {
        "group": wandb_cfg.get("group") or group,
        "name": wandb_cfg.get("run_name") or (",".join(shown) if shown else cfg.name),
        "job_type": wandb_cfg.get("job_type") or method,
    }


class ResumableCSVLogger(CSVLogger):
    """Lightning's CSV logger, except that a resumed job keeps the rows of its earlier attempts,
    and ``metrics.csv`` holds each step once.

    Lightning's writer deletes an existing ``metrics.csv`` when it starts; this one moves the file
    aside while the writer starts and back afterwards (byte for byte, line endings included; a
    kill in between leaves ``metrics.csv.resume``, which the next attempt puts back), then appends
    (the header grows if new metrics appear). Rows that an earlier attempt logged at or after the
    ``global_step`` of the checkpoint this attempt resumes from (``resume_ckpt``; 0 for a fresh
    start) belong to work this attempt redoes: they move to ``metrics_superseded.csv`` (nothing
    is lost), so every epoch appears once. Only rank 0 writes.
    """

    def __init__(self, *args: Any, resume_ckpt: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from imcompress.training.checkpoints import resume_step

        # read now: this attempt's first epoch may overwrite the file (None: unreadable with
        # weights_only, then no row is moved)
        main = getattr(rank_zero_only, "rank", 0) == 0
        self.resume_step = resume_step(resume_ckpt) if main else 0

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
            if self.resume_step is not None:
                supersede_rows(metrics_file, self.resume_step)
            with open(metrics_file, newline="") as handle:
                header = next(csv.reader(handle), [])
            if header:
                writer.metrics_keys = sorted(header)
        return writer

    @rank_zero_only
    def save(self) -> None:
        """Write the buffered rows; a full disk is named as such (``DiskFullError``)."""
        from imcompress.runs.atomic import DiskFullError, is_disk_full

        try:
            super().save()
        except OSError as error:
            if is_disk_full(error):
                raise DiskFullError(Path(self.log_dir) / "metrics.csv") from error
            raise


SUPERSEDED_FILE = "metrics_superseded.csv"


def supersede_rows(metrics_file: Path, from_step: int) -> int:
    """Move the rows of ``metrics_file`` whose ``step`` is ``>= from_step`` to
    ``metrics_superseded.csv`` next to it (appended, with the header); the rows kept are left
    byte for byte. Returns the number of rows moved."""
    from imcompress.runs.atomic import write_bytes

    lines = metrics_file.read_bytes().splitlines(keepends=True)
    if len(lines) < 2:
        return 0
    header = next(csv.reader([lines[0].decode()]))
    if "step" not in header:
        return 0
    column = header.index("step")
    kept: list[bytes] = [lines[0]]
    moved: list[bytes] = []
    for line in lines[1:]:
        cells = next(csv.reader([line.decode()]), [])
        step = cells[column] if len(cells) > column else ""
        try:
            late = step.strip() != "" and float(step) >= from_step
        except ValueError:  # not a number: keep the row as it is
            late = False
        (moved if late else kept).append(line)
    if not moved:
        return 0
    superseded = metrics_file.with_name(SUPERSEDED_FILE)
    earlier = superseded.read_bytes() if superseded.is_file() else b""
    block = b"".join(moved) if earlier.startswith(lines[0]) else lines[0] + b"".join(moved)
    write_bytes(superseded, earlier + block)  # first: a kill in between duplicates, never loses
    write_bytes(metrics_file, b"".join(kept))
    return len(moved)


def build_loggers(
    cfg: DictConfig, output_dir: Path, resume_ckpt: str | None = None
) -> list[Logger]:
    """Instantiate every non-null entry of ``cfg.logger`` (each needs a ``_target_``); targets
    that take ``job_cfg``, ``output_dir`` or ``resume_ckpt`` (the checkpoint this attempt
    resumes from) get them."""
    loggers: list[Logger] = []
    for name, node in (cfg.get("logger") or {}).items():
        if node is None:
            continue
        if not isinstance(node, DictConfig) or "_target_" not in node:
            raise ValueError(
                f"logger.{name} has no _target_; set it to null to disable it, or name a Lightning "
                f"logger class, e.g. logger.{name}._target_=lightning.pytorch.loggers.CSVLogger"
            )
        target = hydra.utils.get_object(str(node._target_))
        parameters = inspect.signature(target).parameters
        context = {"job_cfg": cfg, "output_dir": output_dir, "resume_ckpt": resume_ckpt}
        given = {key: value for key, value in context.items() if key in parameters}
        logger = hydra.utils.instantiate(node, _partial_=True)(**given)
        if not isinstance(logger, Logger):
            raise TypeError(
                f"logger.{name}: {node._target_} built a {type(logger).__name__}, not a Lightning "
                "Logger (lightning.pytorch.loggers.Logger)"
            )
        loggers.append(logger)
    return loggers


def resolve_wandb_mode(
    configured: str | None, environ: Mapping[str, str] | None = None
) -> tuple[str, str]:
    """The W&B mode and where it came from: ``logger.wandb.mode`` when set, else the
    ``WANDB_MODE`` environment variable, else ``offline`` (like wandb itself, where an argument to
    ``wandb.init`` wins over the environment). Raises ValueError naming a bad value."""
    environ = os.environ if environ is None else environ
    from_env = (environ.get("WANDB_MODE") or "").strip()
    if configured not in (None, ""):
        mode, source = str(configured), "logger.wandb.mode"
    elif from_env:
        mode, source = from_env, "WANDB_MODE"
    else:
        return "offline", "default"
    mode = WANDB_MODE_ALIASES.get(mode, mode)
    if mode not in WANDB_MODES:
        raise ValueError(f"{source}={mode!r}; valid: {list(WANDB_MODES)}")
    return mode, source


def automatic_tags(cfg: DictConfig) -> list[str]:
    """Tags that let runs be filtered in W&B: ``model=``, ``method=``, ``hw=``, ``data=``."""
    compression = cfg.get("compression") or {}
    values = {
        "model": (cfg.get("model") or {}).get("name"),
        "method": compression.get("method", "none"),
        "hw": (cfg.get("hw") or {}).get("name"),
        "data": (cfg.get("data") or {}).get("name"),
    }
    return [f"{key}={value}" for key, value in values.items() if value is not None]


class QuietWandbLogger(WandbLogger):
    """Lightning's W&B logger without the ``anonymous=None`` init argument, which current wandb
    versions answer with a warning that the (unused) setting has no effect."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self._wandb_init.get("anonymous") is None:
            self._wandb_init.pop("anonymous", None)


def wandb_logger(
    job_cfg: DictConfig,
    output_dir: Path,
    project: str = "imcompress",
    mode: str | None = None,
    entity: str | None = None,
    group: str | None = None,
    run_name: str | None = None,
    job_type: str | None = None,
    tags: list[str] | None = None,
    log_model: bool = False,
    init_timeout_s: float = 20.0,
    offline_fallback: bool = False,
) -> WandbLogger:
    """The W&B logger of a job (``conf/logger/wandb.yaml`` documents each argument).

    The run's identity comes from :func:`run_identity`, its id from ``<output_dir>/``
    ``wandb_run_id.txt`` (a resumed job continues its run), tags from :func:`automatic_tags`
    plus ``tags``. The run is started here, so that a W&B that cannot be reached fails the job
    within ``init_timeout_s`` before training starts, or, with ``offline_fallback``, continues
    offline with a message saying how to upload the run later.
    """
    mode = _checked_wandb_mode(mode, log_model)
    id_file = output_dir / WANDB_ID_FILE
    run_id = id_file.read_text().strip() if id_file.exists() else None
    build = partial(
        _build_wandb_logger,
        job_cfg,
        output_dir,
        project=project,
        entity=entity,
        run_id=run_id,
        tags=tags,
        log_model=log_model,
        init_timeout_s=init_timeout_s,
    )
    logger = build(mode)
    if getattr(rank_zero_only, "rank", 0) != 0:
        return logger  # the other processes of a data-parallel job have no W&B run
    try:
        run = logger.experiment
    except Exception as error:  # wandb.errors.CommError: no network, wrong host, timeout
        if mode != "online":
            raise
        _report_online_failure(error, output_dir, init_timeout_s, offline_fallback)
        logger = build("offline")
        run = logger.experiment
    id_file.write_text(run.id)
    return logger


def _checked_wandb_mode(configured: str | None, log_model: bool) -> str:
    """:func:`resolve_wandb_mode`, saying when the config overrides ``WANDB_MODE``, and refusing
    the combinations that cannot work (``log_model`` offline, online without an API key)."""
    mode, source = resolve_wandb_mode(configured)
    env_mode = os.environ.get("WANDB_MODE")
    if (
        source == "logger.wandb.mode"
        and env_mode
        and WANDB_MODE_ALIASES.get(env_mode, env_mode) != mode
    ):
        print(f"W&B mode {mode} (logger.wandb.mode wins over WANDB_MODE={env_mode})", flush=True)
    if mode == "offline" and log_model:
        raise ValueError(
            "logger.wandb.log_model=true needs mode=online (Lightning refuses it offline)"
        )
    if mode == "online" and not (os.environ.get("WANDB_API_KEY") or _has_netrc_key()):
        raise ValueError(
            f"W&B mode online (from {source}) but no W&B API key was found (WANDB_API_KEY or "
            "`wandb login`); use mode offline and `wandb sync` later."
        )
    return mode


def _build_wandb_logger(
    job_cfg: DictConfig,
    output_dir: Path,
    run_mode: str,
    *,
    project: str,
    entity: str | None,
    run_id: str | None,
    tags: list[str] | None,
    log_model: bool,
    init_timeout_s: float,
) -> WandbLogger:
    """The (not yet started) W&B logger of this job in ``run_mode``."""
    import wandb

    identity = run_identity(job_cfg)
    return QuietWandbLogger(
        project=project,
        entity=entity,
        group=identity["group"],
        name=identity["name"],
        job_type=identity["job_type"],
        tags=list(dict.fromkeys([*automatic_tags(job_cfg), *(tags or [])])),
        save_dir=str(output_dir),
        offline=run_mode == "offline",
        mode=run_mode,
        id=run_id,
        resume="allow",
        log_model=bool(log_model) and run_mode == "online",
        config=OmegaConf.to_container(job_cfg, resolve=True),
        # quiet: no sampled run history and summary after our final table (it shows the
        # same numbers); errors and warnings still print
        settings=wandb.Settings(init_timeout=float(init_timeout_s), quiet=True),
    )


def _report_online_failure(
    error: Exception, output_dir: Path, init_timeout_s: float, offline_fallback: bool
) -> None:
    """An online run did not start: raise (naming the way out), or, with ``offline_fallback``,
    say that the job continues offline and how to upload it later."""
    first = (str(error).strip().splitlines() or [type(error).__name__])[0]
    if not offline_fallback:
        raise RuntimeError(
            f"W&B could not start an online run within {init_timeout_s:g} s "
            f"(logger.wandb.init_timeout_s): {first}. Nothing was trained. Run offline "
            "(logger.wandb.mode=offline) and upload later with `wandb sync "
            f"{output_dir}/wandb/offline-run-*`, or set logger.wandb.offline_fallback=true "
            "to continue offline automatically."
        ) from None
    print(
        f"W&B online run failed to start ({first}); continuing OFFLINE "
        "(logger.wandb.offline_fallback=true). Upload it later with: "
        f"wandb sync {output_dir}/wandb/offline-run-*",
        flush=True,
    )


def publish_run_summary(summary: Mapping[str, Any]) -> None:
    """Copy the end-of-run numbers (parameters, compression ratios, tested accuracy) into the
    W&B run summary, so the run table shows what the final console table shows."""
    import wandb

    if wandb.run is None:
        return
    from imcompress.runs.summary import headline_numbers

    try:
        wandb.run.summary.update(headline_numbers(summary))
    except Exception as error:  # W&B must never change the job's outcome
        print(f"warning: could not update the W&B run summary: {type(error).__name__}: {error}")


def _has_netrc_key() -> bool:
    netrc = Path.home() / ".netrc"
    return netrc.exists() and "api.wandb.ai" in netrc.read_text(errors="ignore")
