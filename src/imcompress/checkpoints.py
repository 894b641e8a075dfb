"""Checkpoints that survive a kill mid-write, and the choice of the checkpoint a job resumes from.

* :class:`AtomicCheckpointIO` (a Lightning ``CheckpointIO`` plugin): every checkpoint is written
  to a temporary file in its own folder, flushed to disk and renamed over the target with
  ``os.replace``, so ``last.ckpt`` is always either the previous or the new complete file, also
  when ``$TMPDIR`` is on another filesystem (Lightning's default goes through fsspec, which
  writes into ``$TMPDIR`` and then copies).
* :func:`verify_checkpoint`: is a file a complete checkpoint (``torch.save`` archives are zip
  files: every member's CRC is checked; nothing is unpickled).
* :func:`resolve_ckpt_path`: ``ckpt_path`` (null | last | auto | a path) to the file to resume
  from, falling back from a corrupt file to the newest valid one, and refusing anything that
  would overwrite an earlier run or silently start it over.
"""

from __future__ import annotations

import json
import os
import sys
import zipfile
from pathlib import Path
from typing import Any

from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.fabric.utilities.types import _PATH

from imcompress.summary import SUMMARY_FILE

CHECKPOINT_DIR = "checkpoints"
LAST = "last.ckpt"
TEMP_MARKER = ".tmp-"
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
        temporary = target.with_name(f".{target.name}{TEMP_MARKER}{os.getpid()}")
        try:
            with open(temporary, "wb") as handle:
                torch.save(checkpoint, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        _fsync_folder(target.parent)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (best effort: not every filesystem allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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
    """Delete temporary files that a killed :class:`AtomicCheckpointIO` left behind."""
    if not folder.is_dir():
        return []
    leftovers = [p for p in folder.glob(f".*.ckpt{TEMP_MARKER}*") if p.is_file()]
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
    * ``auto``: the newest valid checkpoint of the folder; a fresh start only in a folder no
      earlier attempt used (or one whose attempt was requeued before its first checkpoint);
      otherwise refused with what the folder holds.
    * a path: that file, which must be a complete checkpoint.
    """
    checkpoint_dir = output_dir / CHECKPOINT_DIR
    last = checkpoint_dir / LAST
    removed = remove_partial_writes(checkpoint_dir)
    if removed:
        print(
            f"Removed partial checkpoint writes: {', '.join(p.name for p in removed)}", flush=True
        )
    existing = checkpoints_in(checkpoint_dir)
    if ckpt_path in (None, "", "null"):
        if existing:
            raise FileExistsError(
                f"{checkpoint_dir} already holds checkpoints ({_names(existing)}); "
                "pass ckpt_path=last (or auto) to resume that run, or use a new output folder "
                "(leave hydra.run.dir at its default)."
            )
        return None
    if ckpt_path == "last":
        if not last.exists():
            raise FileNotFoundError(
                f"ckpt_path=last but there is no {last}. To resume a run, point hydra.run.dir at "
                "that run's folder (outputs/<name>/runs/<time>), or pass ckpt_path=<file.ckpt>."
            )
        return str(_newest_valid_or_raise([last] + [p for p in existing if p != last], "last"))
    if ckpt_path == "auto":
        if existing:
            return str(_newest_valid_or_raise(existing, "auto"))
        used = [name for name in EARLIER_RUN_FILES if (output_dir / name).exists()]
        if not used:
            return None
        if _previous_status(output_dir) == "requeued":
            print(
                f"ckpt_path=auto: the requeued attempt in {output_dir} ended before its first "
                "checkpoint; starting from scratch",
                flush=True,
            )
            return None
        raise FileExistsError(
            f"ckpt_path=auto: {output_dir} holds an earlier run ({', '.join(used)}) but no "
            f"checkpoint in {checkpoint_dir} to resume from; start over in a new folder (leave "
            "hydra.run.dir at its default) or remove those files."
        )
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
    try:
        return json.loads((output_dir / SUMMARY_FILE).read_text()).get("status")
    except (OSError, ValueError, AttributeError):
        return None


def _names(paths: list[Path]) -> str:
    return ", ".join(sorted(p.name for p in paths))
