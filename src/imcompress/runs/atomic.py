"""Atomic file writes: the target is always either the old or the new complete file.

Every write goes to a temporary file in the target's own folder (so the rename never crosses a
filesystem), is flushed and ``fsync``-ed, then renamed over the target with ``os.replace``. The
temporary file is removed on every failure path (exception, ``KeyboardInterrupt``), and a full
disk is reported as ``disk full (ENOSPC) writing <file>`` instead of the writer's own text.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

TEMP_MARKER = ".tmp-"


class DiskFullError(OSError):
    """No space left on the device while writing ``filename``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(errno.ENOSPC, f"disk full (ENOSPC) writing {path}")
        self.filename = str(path)

    def __str__(self) -> str:
        return str(self.strerror)


def temporary_path(target: Path) -> Path:
    """The hidden same-folder temporary file used while writing ``target``."""
    return target.with_name(f".{target.name}{TEMP_MARKER}{os.getpid()}")


def is_disk_full(error: BaseException) -> bool:
    """Whether ``error`` (or an exception it was raised from) is ``ENOSPC``."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno == errno.ENOSPC:
            return True
        current = current.__cause__ or current.__context__
    return False


def fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: not every filesystem allows it)."""
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


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike[str], mode: str = "w", **open_kwargs: Any
) -> Iterator[IO[Any]]:
    """Open a temporary file for writing; on a clean exit it replaces ``path`` atomically.

    ``mode`` is ``"w"`` or ``"wb"`` (plus ``open`` keywords such as ``newline``). If the block
    raises, ``path`` is untouched and the temporary file is gone.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open mode must be 'w' or 'wb', not {mode!r}")
    target = Path(path)
    temporary = temporary_path(target)
    try:
        with open(temporary, mode, **open_kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException as error:
        temporary.unlink(missing_ok=True)
        if is_disk_full(error):
            raise DiskFullError(target) from error
        raise
    fsync_folder(target.parent)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)
    return Path(path)


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return Path(path)


def write_json(path: str | os.PathLike[str], data: Any, **dumps_kwargs: Any) -> Path:
    """Write ``data`` as indented JSON (NaN refused unless ``allow_nan=True``) atomically.

    The JSON is built before the file is opened, so a value that cannot be serialized leaves
    neither a temporary nor a changed file.
    """
    dumps_kwargs.setdefault("indent", 2)
    dumps_kwargs.setdefault("allow_nan", False)
    return write_text(path, json.dumps(data, **dumps_kwargs) + "\n")
