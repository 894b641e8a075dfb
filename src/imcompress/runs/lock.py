"""One job per run folder: an exclusive ``flock`` on ``<run folder>/run.lock``.

A multirun folder is locked the same way (``<sweep folder>/sweep.lock``, by the sweep report
callback when the multirun starts), so an identical multirun started at the same moment is
refused before any of its jobs writes into the folder.

The lock is taken before anything is written into the folder (by the Hydra callback
:class:`RunFolderLockCallback` for single runs, otherwise at the start of the training job) and
held until the process exits. A second job on the same folder refuses at once, naming the
holder's pid and host. The kernel drops the lock when its holder dies (even on ``kill -9``), so
a lock file left by a dead process is taken over, with a message naming that process.

Only the job's main process locks: the extra processes of a data-parallel job (rank > 0) belong
to the same job (see :func:`is_worker_process`).
"""

from __future__ import annotations

import atexit
import errno
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

LOCK_FILE = "run.lock"
SWEEP_LOCK_FILE = "sweep.lock"  # a multirun folder: held by the process that launches its jobs
# Environment variables that give a process its rank in a data-parallel job (Lightning's
# subprocess launcher, torchrun, SLURM tasks).
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID")


class RunFolderBusyError(RuntimeError):
    """Another live process holds the run folder's lock."""


def is_worker_process(environ: Mapping[str, str] = os.environ) -> bool:
    """True in the rank > 0 processes of a data-parallel job (they share the main process's lock)."""
    return any(environ.get(key, "0").strip() not in ("", "0") for key in RANK_VARIABLES)


class RunFolderLock:
    """An exclusive, non-blocking ``flock`` on ``folder/run.lock`` (``sweep.lock`` for a
    multirun folder) holding ``{pid, host, started}``."""

    def __init__(self, folder: Path, lock_file: str = LOCK_FILE, holder: str = "job") -> None:
        self.folder = Path(folder).resolve()
        self.path = self.folder / lock_file
        self.holder = holder  # what holds such a lock, for the refusal message
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise :class:`RunFolderBusyError` naming the holder."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = _describe(_read_record(fd))
            os.close(fd)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                setting = "hydra.sweep.dir" if self.holder == "multirun" else "hydra.run.dir"
                raise RunFolderBusyError(
                    f"{self.folder} is in use by another {self.holder} ({holder}; lock file "
                    f"{self.path}). Wait for it to end, or run in another folder (leave "
                    f"{setting} at its default). Nothing was written there."
                ) from None
            if error.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                print(
                    f"warning: {self.path}: this filesystem does not support flock ({error}); "
                    "the run folder is not protected against a second job",
                    flush=True,
                )
                return
            raise
        previous = _read_record(fd)
        if previous:  # its holder died without releasing (kill -9, node failure): take it over
            print(
                f"Run folder lock: taking over the stale lock of {_describe(previous)} "
                "(that process no longer holds it)",
                flush=True,
            )
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started": _now()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        os.fsync(fd)
        self._fd = fd
        atexit.register(self.release)

    def release(self) -> None:
        """Clear the holder record and drop the lock (the file stays: unlinking it would race)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


_held: dict[Path, RunFolderLock] = {}


def lock_run_folder(folder: Path) -> RunFolderLock | None:
    """Lock ``folder`` for this process (idempotent); None in a data-parallel worker process."""
    if is_worker_process():
        return None
    key = Path(folder).resolve()
    lock = _held.get(key)
    if lock is None or not lock.held:
        lock = RunFolderLock(key)
        lock.acquire()
        _held[key] = lock
    return lock


def lock_sweep_folder(folder: Path) -> RunFolderLock:
    """Lock a multirun folder (``sweep.lock``) for this process, which launches its jobs."""
    key = Path(folder).resolve() / SWEEP_LOCK_FILE
    lock = _held.get(key)
    if lock is None or not lock.held:
        lock = RunFolderLock(Path(folder), SWEEP_LOCK_FILE, holder="multirun")
        lock.acquire()
        _held[key] = lock
    return lock


def release_run_folder(folder: Path) -> None:
    """Release this process's lock on ``folder`` (no-op when it holds none)."""
    lock = _held.pop(Path(folder).resolve(), None)
    if lock is not None:
        lock.release()


@contextmanager
def run_folder_locked(folder: Path) -> Iterator[None]:
    """Hold the folder's lock for the block; a lock taken earlier (Hydra callback) is kept."""
    key = Path(folder).resolve()
    taken_here = key not in _held
    lock_run_folder(key)
    try:
        yield
    finally:
        if taken_here:
            release_run_folder(key)


class RunFolderLockCallback(Callback):
    """Hydra callback (``hydra.callbacks.run_lock`` in conf/train.yaml): lock ``hydra.run.dir``
    before Hydra writes ``.hydra/`` into it, so a second run on the folder changes nothing there."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            lock_run_folder(Path(str(config.hydra.run.dir)))
        except RunFolderBusyError as error:
            # Hydra turns a callback's Exception into a warning and goes on: stop the run here.
            raise SystemExit(f"Error: {error}") from None

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        release_run_folder(Path(str(config.hydra.run.dir)))


def _read_record(fd: int) -> dict[str, Any]:
    try:
        text = os.pread(fd, 4096, 0).decode(errors="replace").strip()
        record = json.loads(text) if text else {}
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _describe(record: Mapping[str, Any]) -> str:
    if not record:
        return "holder unknown"
    return f"pid {record.get('pid')} on host {record.get('host')}, since {record.get('started')}"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")
