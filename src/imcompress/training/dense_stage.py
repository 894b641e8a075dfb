"""Two-stage runs by default: ``pretrained=auto`` trains the dense model once and reuses it.

A compressed job (``compression`` other than ``none``) with ``pretrained=auto`` starts from the
dense checkpoint of the same model, data, seed and dense recipe (the ``dense:`` node of
conf/train.yaml). That checkpoint lives in a shared *dense-stage folder*
``<dense.dir>/<model>_<data>_s<seed>_<recipe hash>/``, a normal run folder (``.hydra/``,
``summary.json``, ``checkpoints/``): the first job that needs it trains it there, through the
same :func:`imcompress.jobs.train.train` with ``compression=none``; every later job reuses it.

The dense stage runs in the job's own process (not as a ``train.py`` subprocess): it gets the
job's model and data nodes exactly as composed, whatever overrides or experiment produced them,
without rebuilding a command line that would have to drop the compression-only keys. Jobs share
it through an exclusive ``flock`` on ``<folder>/stage.lock``, held while the stage is checked and
trained: in a multirun (local, submitit or a SLURM array on one filesystem) one job trains it
and the others wait, printing who holds it. A failed stage fails every job that needs it, naming
the error; ``dense.retry=true`` trains it again. A stage stopped by a signal is resumed by the
next job from its newest checkpoint (``ckpt_path=auto``). The compressed job uses the checkpoint
the stage tested, which is its final epoch (``test_ckpt=last``).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from imcompress.compression.pretrained import (
    AUTO,
    load_checkpoint_safely,
    pretrained_choice,
    resolve_checkpoint,
)
from imcompress.config import check_required
from imcompress.moved import former_name
from imcompress.runs.folder import SUMMARY_FILE, summary_if_readable

STAGE_LOCK = "stage.lock"
RECIPE_FILE = "dense_recipe.json"  # the recipe whose hash names the folder
RECIPE_NODES = ("trainer", "optimizer", "scheduler", "data")  # dense.<node> merges onto these
# Keys that do not change the trained weights, left out of the recipe hash.
_NOT_RECIPE = {
    "data": ("data_dir", "num_workers", "eval_batch_size", "download"),
    "trainer": (
        "default_root_dir",
        "log_every_n_steps",
        "enable_progress_bar",
        "enable_model_summary",
        "compile",
        "memory_format",
    ),
}


class DenseStageError(RuntimeError):
    """The dense stage this job needs failed, or cannot be trained from this job."""


def resolve_pretrained(cfg: DictConfig, summary: dict[str, Any]) -> DictConfig:
    """``cfg`` with ``pretrained`` set to a checkpoint file (or None), the dense stage trained
    first when ``pretrained=auto`` needs it; records and prints the checkpoint used."""
    choice = pretrained_choice(cfg.get("pretrained"))
    method = (cfg.get("compression") or {}).get("method", "none")
    folder: Path | None = None
    if choice == AUTO and method != "none":
        folder = ensure_dense_stage(cfg)
        checkpoint = resolve_checkpoint(folder, announce=False)
    elif choice is None or choice == AUTO:  # from scratch; compression=none ignores auto
        return _with_pretrained(cfg, None)
    else:
        checkpoint = resolve_checkpoint(choice)
        folder = _run_folder_of(checkpoint)
    record = checkpoint_record(checkpoint, folder, source="auto" if choice == AUTO else "given")
    summary["pretrained"] = record
    print(
        f"pretrained={choice}: dense checkpoint {checkpoint} (epoch {record['epoch']} from 0, "
        f"test/acc {record['test/acc']})",
        flush=True,
    )
    return _with_pretrained(cfg, checkpoint if choice == AUTO else choice)


def ensure_dense_stage(cfg: DictConfig) -> Path:
    """The completed dense-stage folder for ``cfg``, trained now if no job has done it."""
    dense_cfg = dense_config(cfg)
    folder = stage_folder(cfg, dense_cfg)
    if _status(folder) == "completed":
        print(f"pretrained=auto: reusing the dense stage {folder}", flush=True)
        return folder
    with stage_lock(folder):
        status = _status(folder)
        if status == "completed":
            print(f"pretrained=auto: reusing the dense stage {folder}", flush=True)
            return folder
        if status == "failed" and not OmegaConf.select(cfg, "dense.retry", default=False):
            raise DenseStageError(
                f"the dense stage {folder} failed ({_error(folder)}); this job needs it "
                "(pretrained=auto). Fix the cause and rerun with dense.retry=true, or pass "
                "pretrained=<checkpoint or run folder> or pretrained=none"
            )
        _check_can_train(dense_cfg, folder)
        try:
            check_required(dense_cfg)  # a bad dense.* value: refused in every job, nothing trained
        except ValueError as error:
            raise DenseStageError(f"the dense recipe (dense.*) is invalid: {error}") from None
        train_dense_stage(dense_cfg, folder)
    return folder


def dense_config(cfg: DictConfig) -> DictConfig:
    """The dense stage's config: this job's config with ``compression=none``, no analog tiles,
    no ``pretrained``, the final epoch tested, and ``dense.<trainer|optimizer|scheduler|data>``
    merged onto the job's nodes (resolved against the job's config first)."""
    dense = cfg.get("dense") or {}
    changes = {
        node: OmegaConf.to_container(dense[node], resolve=True)
        for node in RECIPE_NODES
        if dense.get(node)
    }
    dense_cfg = cfg.copy()
    with open_dict(dense_cfg):
        for node, values in changes.items():
            dense_cfg[node] = OmegaConf.merge(dense_cfg[node], values)
        dense_cfg.compression = OmegaConf.create({"method": "none"})
        dense_cfg.analog = OmegaConf.create({"name": "none", "enabled": False})
        dense_cfg.pretrained = None
        dense_cfg.require_pretrained = False
        dense_cfg.test_after_fit = True
        dense_cfg.test_ckpt = "last"  # the final epoch is the checkpoint compressed jobs use
        dense_cfg.name = "dense"
        if OmegaConf.select(dense_cfg, "finetune.distill.alpha") is not None:
            dense_cfg.finetune.distill.alpha = 0.0  # no teacher for the teacher
        if OmegaConf.select(dense_cfg, "logger.wandb") is not None:
            dense_cfg.logger.wandb.group = "dense"
    return dense_cfg


def dense_recipe(dense_cfg: DictConfig) -> dict[str, Any]:
    """What the dense weights depend on: model, data, seed, trainer, optimizer, scheduler."""
    recipe: dict[str, Any] = {"seed": dense_cfg.get("seed")}
    for node in ("model", "data", "trainer", "optimizer", "scheduler"):
        value = dense_cfg.get(node)
        if isinstance(value, DictConfig):  # left-out keys are not resolved (paths need Hydra)
            kept = [key for key in value if key not in _NOT_RECIPE.get(node, ())]
            value = {key: _resolved(value, str(key)) for key in kept}
        recipe[node] = value
    return _former_targets(recipe)


def _former_targets(node: Any) -> Any:
    """``node`` with every ``_target_`` under its pre-move module path (imcompress.moved), so a
    dense stage trained before the package layout changed keeps its folder name."""
    if isinstance(node, dict):
        return {
            key: former_name(value) if key == "_target_" and isinstance(value, str)
            else _former_targets(value)
            for key, value in node.items()
        }  # fmt: skip
    if isinstance(node, list):
        return [_former_targets(item) for item in node]
    return node


def _resolved(node: DictConfig, key: str) -> Any:
    value = node[key]
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def stage_folder(cfg: DictConfig, dense_cfg: DictConfig) -> Path:
    """``<dense.dir>/<model>_<data>_s<seed>_<8 hex digits of the recipe's SHA-256>``."""
    recipe = dense_recipe(dense_cfg)
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True, default=str).encode()).hexdigest()
    root = Path(str(OmegaConf.select(cfg, "dense.dir", default=None) or "outputs/dense"))
    name = f"{cfg.model.get('name')}_{cfg.data.get('name')}_s{cfg.get('seed')}_{digest[:8]}"
    return root.expanduser().resolve() / name


def train_dense_stage(dense_cfg: DictConfig, folder: Path) -> None:
    """Train (or resume) the dense stage in ``folder`` through :func:`imcompress.jobs.train.train`."""
    from imcompress.jobs.train import train
    from imcompress.training.checkpoints import CHECKPOINT_DIR, checkpoints_in

    run_cfg = dense_cfg.copy()
    with open_dict(run_cfg):
        run_cfg.paths.output_dir = str(folder)
        run_cfg.ckpt_path = "auto" if checkpoints_in(folder / CHECKPOINT_DIR) else None
        if OmegaConf.select(run_cfg, "logger.wandb") is not None:
            run_cfg.logger.wandb.run_name = folder.name
    (folder / ".hydra").mkdir(parents=True, exist_ok=True)
    OmegaConf.save(run_cfg, folder / ".hydra" / "config.yaml", resolve=True)
    (folder / RECIPE_FILE).write_text(json.dumps(dense_recipe(dense_cfg), indent=2, default=str))
    print(f"pretrained=auto: training the dense stage in {folder}", flush=True)
    try:
        train(run_cfg)
    except Exception as error:
        raise DenseStageError(
            f"the dense stage {folder} failed: {type(error).__name__}: {error}"
        ) from error


def checkpoint_record(checkpoint: Path, folder: Path | None, source: str) -> dict[str, Any]:
    """Path, epoch and test accuracy of the dense checkpoint a job starts from."""
    run = summary_if_readable(folder) if folder is not None else {}
    tested_file = _tested_file(folder, run) if folder is not None else None
    same = tested_file is not None and tested_file.resolve() == checkpoint.resolve()
    state = load_checkpoint_safely(checkpoint)
    epoch = state.get("epoch") if isinstance(state, dict) else None  # Lightning's, from 0
    return {
        "source": source,
        "checkpoint": str(checkpoint),
        "run_folder": str(folder) if folder is not None else None,
        "epoch": epoch,
        "test/acc": (run.get("metrics") or {}).get("test/acc") if same else None,
    }


@contextmanager
def stage_lock(folder: Path) -> Iterator[None]:
    """Hold the exclusive ``flock`` of ``folder/stage.lock``; waits (saying for whom) if taken."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / STAGE_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "holder unknown"
            print(f"waiting for the dense stage {folder} (held by {holder})", flush=True)
            started = time.perf_counter()
            fcntl.flock(fd, fcntl.LOCK_EX)
            print(f"the dense stage lock is free after {time.perf_counter() - started:.0f} s")
        record = (
            f"pid {os.getpid()} on host {socket.gethostname()}, since {time.strftime('%H:%M:%S')}"
        )
        os.ftruncate(fd, 0)
        os.pwrite(fd, record.encode(), 0)
        yield
    finally:
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _check_can_train(dense_cfg: DictConfig, folder: Path) -> None:
    """A data-parallel job cannot train the stage in-process (its extra processes would re-run
    the script and wait for the lock their own rank 0 holds)."""
    from imcompress.runs.lock import is_worker_process

    devices, nodes = dense_cfg.trainer.get("devices"), dense_cfg.trainer.get("num_nodes") or 1
    if devices in (1, "1") and nodes == 1 and not is_worker_process():
        return
    raise DenseStageError(
        f"pretrained=auto needs the dense stage {folder}, which a data-parallel job "
        f"(trainer.devices={devices}, trainer.num_nodes={nodes}) cannot train in-process; "
        "train a dense run first and pass pretrained=<its run folder>"
    )


def _status(folder: Path) -> str | None:
    return summary_if_readable(folder).get("status")


def _error(folder: Path) -> str:
    return str(summary_if_readable(folder).get("error") or f"see {folder / 'summary.json'}")


def _tested_file(folder: Path, run: dict[str, Any]) -> Path | None:
    try:
        return resolve_checkpoint(folder, announce=False) if run else None
    except (OSError, ValueError):
        return None


def _run_folder_of(checkpoint: Path) -> Path | None:
    """The run folder of a checkpoint file (``<run>/checkpoints/x.ckpt``), if it has a summary."""
    folder = checkpoint.resolve().parent.parent
    return folder if (folder / SUMMARY_FILE).is_file() else None


def _with_pretrained(cfg: DictConfig, value: Path | str | None) -> DictConfig:
    resolved = cfg.copy()
    with open_dict(resolved):
        resolved.pretrained = None if value is None else str(value)
    return resolved
