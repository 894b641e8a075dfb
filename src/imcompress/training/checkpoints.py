"""Checkpoints that survive a kill mid-write, and the choice of the checkpoint a job resumes from.

* :class:`AtomicCheckpointIO` (a Lightning ``CheckpointIO`` plugin): every checkpoint is written
  to a temporary file in its own folder, flushed to disk and renamed over the target with
  ``os.replace`` (:func:`imcompress.runs.atomic.atomic_open`), so ``last.ckpt`` is always either the
  previous or the new complete file, also when ``$TMPDIR`` is on another filesystem (Lightning's
  default goes through fsspec, which writes into ``$TMPDIR`` and then copies). A full disk is
  reported as ``disk full (ENOSPC) writing <file>``, not as torch's ``inline_container`` text.
* ``checkpoints/last.ckpt`` is the last completed epoch: conf/callbacks/default.yaml has a
  second ``ModelCheckpoint`` (``last_checkpoint``: ``monitor: null``, ``filename: last``) next to
  the best-by-``val/acc`` one, because with the pinned Lightning ``save_last: true`` on a
  monitored checkpoint writes ``last.ckpt`` only in epochs that save a new best.
  :func:`best_checkpoint_callback` and :func:`last_checkpoint_callback` find the two.
* :func:`verify_checkpoint`: is a file a complete checkpoint (``torch.save`` archives are zip
  files: every member's CRC is checked; nothing is unpickled).
* :func:`resolve_ckpt_path`: ``ckpt_path`` (null | last | auto | a path) to the file to resume
  from, falling back from a corrupt file to the newest valid one, and refusing anything that
  would overwrite an earlier run or silently start it over.
"""

from __future__ import annotations

import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from imcompress.runs.atomic import TEMP_MARKER, atomic_open
from imcompress.runs.summary import SUMMARY_FILE

CHECKPOINT_DIR = "checkpoints"
LAST = "last.ckpt"
# Files an earlier attempt leaves in a run folder (besides .hydra/, which Hydra writes per attempt).
EARLIER_RUN_FILES = (SUMMARY_FILE, "csv/metrics.csv", "wandb_run_id.txt", "cost_report.json")


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` that writes through a same-folder temporary file and ``os.replace``."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        import torch

        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(target, "wb") as handle:  # ENOSPC: DiskFullError naming the file
            torch.save(checkpoint, handle)


def best_checkpoint_callback(callbacks: Iterable[Callback]) -> ModelCheckpoint | None:
    """The ``ModelCheckpoint`` that keeps the best epoch by a metric (``monitor`` set)."""
    return next(
        (cb for cb in callbacks if isinstance(cb, ModelCheckpoint) and cb.monitor is not None),
        None,
    )


def last_checkpoint_callback(callbacks: Iterable[Callback]) -> ModelCheckpoint | None:
    """The ``ModelCheckpoint`` that writes ``last.ckpt`` every epoch (no ``monitor``)."""
    return next(
        (cb for cb in callbacks if isinstance(cb, ModelCheckpoint) and cb.monitor is None), None
    )


def checkpoint_position(path: str | Path) -> dict[str, int | None]:
    """``epoch`` (from 0; the last completed epoch of an end-of-epoch checkpoint) and
    ``global_step`` (optimizer steps so far) stored in a Lightning checkpoint.

    Loaded with ``weights_only=True`` (nothing is executed) and memory-mapped (cheap)."""
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    return {key: _int_or_none(state.get(key)) for key in ("epoch", "global_step")}


def resume_step(ckpt_path: str | None) -> int | None:
    """The optimizer step a fit from ``ckpt_path`` starts at: 0 for a fresh fit, None when the
    checkpoint cannot be read with ``weights_only`` (read it before the fit overwrites it)."""
    if ckpt_path is None:
        return 0
    try:
        return checkpoint_position(ckpt_path)["global_step"] or 0
    except Exception:  # a checkpoint Lightning can load but that we cannot read safely
        return None


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, int) else None


def verify_checkpoint(path: Path) -> str | None:
    """None when ``path`` is a complete ``torch.save`` archive, else why it is not."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if not any(name.endswith("/data.pkl") or name == "data.pkl" for name in names):
                return "not a torch checkpoint (no data.pkl in the archive)"
            broken = archive.testzip()
    except FileNotFoundError:
        return "no such file"
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        size = path.stat().st_size if path.exists() else 0
        return f"truncated or not a checkpoint ({size} bytes; {error})"
    if broken is not None:
        return f"corrupt member {broken!r} (CRC mismatch)"
    return None


def checkpoints_in(folder: Path) -> list[Path]:
    """The ``*.ckpt`` files of ``folder``, newest first (modification time)."""
    if not folder.is_dir():
        return []
    return sorted(folder.glob("*.ckpt"), key=lambda p: (p.stat().st_mtime_ns, p.name), reverse=True)


def remove_partial_writes(folder: Path) -> list[Path]:
    """Delete the temporary files that a killed atomic write left in ``folder``: checkpoints
    (``.<name>.ckpt.tmp-<pid>``), ``summary.json`` (``.summary.json.tmp-<pid>``, and the
    ``summary.json.tmp`` of earlier versions)."""
    if not folder.is_dir():
        return []
    patterns = (f".*.ckpt{TEMP_MARKER}*", f".{SUMMARY_FILE}{TEMP_MARKER}*", f"{SUMMARY_FILE}.tmp")
    leftovers = [p for pattern in patterns for p in folder.glob(pattern) if p.is_file()]
    for path in leftovers:
        path.unlink(missing_ok=True)
    return leftovers


def newest_valid(candidates: list[Path]) -> tuple[Path | None, dict[Path, str]]:
    """The first valid checkpoint of ``candidates`` and the reasons the ones before it failed."""
    problems: dict[Path, str] = {}
    for path in candidates:
        problem = verify_checkpoint(path)
        if problem is None:
            return path, problems
        problems[path] = problem
    return None, problems


def resolve_ckpt_path(ckpt_path: str | None, output_dir: Path) -> str | None:
    """Turn ``ckpt_path`` (null | last | auto | a path) into the checkpoint to resume from, or None.

    * ``null``: a fresh run; refused when the folder already holds checkpoints (nothing written
      by an earlier run is overwritten).
    * ``last``: ``checkpoints/last.ckpt``; when it is corrupt, the newest valid checkpoint of the
      folder, saying which file was corrupt and which one is used.
    * ``auto``: ``last.ckpt`` (the last completed epoch), else the newest valid checkpoint of
      the folder; a fresh start only in a folder no earlier attempt used (or one whose attempt
      was requeued or killed before its first checkpoint); otherwise refused with what the
      folder holds.
    * a path: that file, which must be a complete checkpoint.
    """
    checkpoint_dir = output_dir / CHECKPOINT_DIR
    removed = remove_partial_writes(checkpoint_dir) + remove_partial_writes(output_dir)
    if removed:
        print(
            f"Removed partial checkpoint writes: {', '.join(p.name for p in removed)}", flush=True
        )
    existing = checkpoints_in(checkpoint_dir)
    if ckpt_path in (None, "", "null"):
        _refuse_overwrite(checkpoint_dir, existing)
        return None
    if ckpt_path == "last":
        return _resolve_last(checkpoint_dir, existing)
    if ckpt_path == "auto":
        return _resolve_auto(output_dir, existing)
    return _resolve_file(ckpt_path)


def _refuse_overwrite(checkpoint_dir: Path, existing: list[Path]) -> None:
    """``ckpt_path=null`` starts fresh: refused when ``existing`` checkpoints would be overwritten."""
    if existing:
        raise FileExistsError(
            f"{checkpoint_dir} already holds checkpoints ({_names(existing)}); "
            "pass ckpt_path=last (or auto) to resume that run, or use a new output folder "
            "(leave hydra.run.dir at its default)."
        )


def _resolve_last(checkpoint_dir: Path, existing: list[Path]) -> str:
    """``ckpt_path=last``: ``last.ckpt``, or the newest valid checkpoint when it is corrupt."""
    last = checkpoint_dir / LAST
    if not last.exists():
        raise FileNotFoundError(
            f"ckpt_path=last but there is no {last}. To resume a run, point hydra.run.dir at "
            "that run's folder (outputs/<name>/runs/<time>), or pass ckpt_path=<file.ckpt>."
        )
    return str(_newest_valid_or_raise([last] + [p for p in existing if p != last], "last"))


def _resolve_auto(output_dir: Path, existing: list[Path]) -> str | None:
    """``ckpt_path=auto``: resume from the folder's checkpoints, or start fresh where no earlier
    attempt left a result (or one ended before its first checkpoint)."""
    checkpoint_dir = output_dir / CHECKPOINT_DIR
    last = checkpoint_dir / LAST
    if existing:
        preferred = [last] if last in existing else []
        return str(_newest_valid_or_raise(preferred + [p for p in existing if p != last], "auto"))
    used = [name for name in EARLIER_RUN_FILES if (output_dir / name).exists()]
    if not used:
        return None
    previous = _previous_status(output_dir)
    if previous in ("requeued", "running"):  # running: killed without a record of its end
        print(
            f"ckpt_path=auto: the {previous} attempt in {output_dir} ended before its first "
            "checkpoint; starting from scratch",
            flush=True,
        )
        return None
    raise FileExistsError(
        f"ckpt_path=auto: {output_dir} holds an earlier run ({', '.join(used)}) but no "
        f"checkpoint in {checkpoint_dir} to resume from; start over in a new folder (leave "
        "hydra.run.dir at its default) or remove those files."
    )


def _resolve_file(ckpt_path: str) -> str:
    """An explicit ``ckpt_path``: that file, which must be a complete checkpoint."""
    path = Path(ckpt_path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"ckpt_path={ckpt_path!r}: no such checkpoint file")
    problem = verify_checkpoint(path)
    if problem is not None:
        raise ValueError(f"ckpt_path={ckpt_path!r} is not usable: {problem}")
    return str(path.resolve())


def _newest_valid_or_raise(candidates: list[Path], option: str) -> Path:
    chosen, problems = newest_valid(candidates)
    for path, problem in problems.items():
        print(f"warning: checkpoint {path} is unusable: {problem}", file=sys.stderr, flush=True)
    if chosen is None:
        raise ValueError(
            f"ckpt_path={option}: no usable checkpoint in {candidates[0].parent}: "
            + "; ".join(f"{path.name}: {problem}" for path, problem in problems.items())
            + ". Start over in a new folder (leave hydra.run.dir at its default)."
        )
    if problems:
        print(
            f"Resuming from {chosen} instead (the newest complete checkpoint)",
            file=sys.stderr,
            flush=True,
        )
    return chosen


def _previous_status(output_dir: Path) -> str | None:
    from imcompress.runs.folder import summary_if_readable

    return summary_if_readable(output_dir).get("status")


def _names(paths: list[Path]) -> str:
    return ", ".join(sorted(p.name for p in paths))
