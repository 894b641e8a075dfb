"""Reliability, in-process: trainer range checks, run-folder lock, atomic checkpoints, the
choice of the checkpoint to resume from, summary attempts, and the exit status after a signal."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from omegaconf import OmegaConf
from torch import nn

from imcompress.config import check_required, check_trainer
from imcompress.jobs.train import run_task
from imcompress.runs.lock import RunFolderBusyError, RunFolderLock, is_worker_process
from imcompress.runs.record import merge_attempt
from imcompress.training.checkpoints import AtomicCheckpointIO, resolve_ckpt_path, verify_checkpoint


@pytest.fixture
def job_config(compose: Any, tmp_path: Path) -> Any:
    """The train config of ``overrides`` without the ``hydra`` node (what the job sees)."""

    def _compose(overrides: list[str]) -> Any:
        paths = [f"paths.{key}={tmp_path}" for key in ("data_dir", "output_dir")]
        cfg = compose([*paths, *overrides])
        return OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])

    return _compose


# -- 1. trainer numbers -------------------------------------------------------------------------


BAD_TRAINER_VALUES = [
    ("max_epochs", -1, "trainer.max_epochs=-1: must be an integer >= 1"),
    ("max_epochs", 0, "trainer.max_epochs=0: must be an integer >= 1"),
    ("limit_train_batches", 0, "limit_train_batches=0: must be a fraction in (0, 1] or a batch"),
    ("limit_val_batches", 1.5, "trainer.limit_val_batches=1.5: must be a fraction in (0, 1]"),
    ("log_every_n_steps", 0, "trainer.log_every_n_steps=0: must be an integer >= 1"),
    ("check_val_every_n_epoch", 5, "check_val_every_n_epoch=5 > trainer.max_epochs=2"),
    ("num_sanity_val_steps", -2, "num_sanity_val_steps=-2: must be -1 (all) or an integer >= 0"),
    ("max_steps", 0, "trainer.max_steps=0: must be -1 (no limit) or an integer >= 1"),
    ("devices", 0, "trainer.devices=0: must be -1 (all), an integer >= 1"),
    ("accumulate_grad_batches", True, "trainer.accumulate_grad_batches=True: must be an integer"),
]


def test_trainer_numbers_out_of_range_are_refused(job_config: Any) -> None:
    smoke = job_config(["experiment=smoke"])
    check_required(smoke)  # the preset itself is valid
    for key, value, named in BAD_TRAINER_VALUES:
        cfg = smoke.copy()
        OmegaConf.update(cfg, f"trainer.{key}", value, force_add=True)
        with pytest.raises(ValueError, match="invalid trainer settings") as error:
            check_required(cfg)
        assert named in str(error.value), (key, value)
    check_trainer({"max_epochs": 3, "limit_train_batches": 0.5, "check_val_every_n_epoch": 3})


# -- 6. run-folder lock -------------------------------------------------------------------------

HOLD_LOCK = """
import sys, time
from pathlib import Path
from imcompress.runs.lock import RunFolderLock
RunFolderLock(Path(sys.argv[1])).acquire()
print("locked", flush=True)
time.sleep(60)
"""


def test_second_holder_is_refused_naming_pid_and_host(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(tmp_path)], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunFolderBusyError) as error:
            RunFolderLock(tmp_path).acquire()
        assert f"pid {holder.pid} on host " in str(error.value)
        assert str(tmp_path / "run.lock") in str(error.value)
    finally:
        holder.kill()
        holder.wait()
    # The kernel dropped the dead holder's lock: it is taken over, saying whose it was.
    lock = RunFolderLock(tmp_path)
    lock.acquire()
    record = json.loads((tmp_path / "run.lock").read_text())
    assert record["pid"] == os.getpid()
    lock.release()
    assert (tmp_path / "run.lock").read_text() == ""  # released: no holder recorded


def test_stale_lock_of_a_dead_process_is_taken_over(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "run.lock").write_text('{"pid": 999999, "host": "node7", "started": "x"}\n')
    lock = RunFolderLock(tmp_path)
    lock.acquire()
    lock.release()
    assert "taking over the stale lock of pid 999999 on host node7" in capsys.readouterr().out


def test_data_parallel_workers_do_not_lock() -> None:
    assert not is_worker_process({})
    assert not is_worker_process({"LOCAL_RANK": "0", "NODE_RANK": "0", "SLURM_PROCID": "0"})
    assert is_worker_process({"LOCAL_RANK": "1"})
    assert is_worker_process({"SLURM_PROCID": "3"})


# -- 4. atomic checkpoints ------------------------------------------------------------------------


def test_checkpoint_write_never_uses_tmpdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$TMPDIR elsewhere (here: missing) does not matter: the temp file is in the target folder."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-scratch"))
    target = tmp_path / "checkpoints" / "last.ckpt"
    with pytest.raises(OSError):  # Lightning's default goes through $TMPDIR
        TorchCheckpointIO().save_checkpoint({"step": 1}, target)
    AtomicCheckpointIO().save_checkpoint({"step": 1}, target)
    assert verify_checkpoint(target) is None
    assert sorted(p.name for p in target.parent.iterdir()) == ["last.ckpt"]


def test_kill_during_checkpoint_write_keeps_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"step": 1}, target)
    before = target.read_bytes()

    def half_then_die(obj: Any, handle: Any) -> None:
        handle.write(before[: len(before) // 2])
        raise KeyboardInterrupt  # the process is stopped mid-write

    monkeypatch.setattr(torch, "save", half_then_die)
    with pytest.raises(KeyboardInterrupt):
        AtomicCheckpointIO().save_checkpoint({"step": 2}, target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


# -- 4/5. which checkpoint a resume uses ----------------------------------------------------------


def _save(path: Path, step: int, mtime: int) -> None:
    AtomicCheckpointIO().save_checkpoint({"global_step": step}, path)
    os.utime(path, ns=(mtime, mtime))


def test_resume_falls_back_from_a_truncated_last_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "checkpoints"
    _save(folder / "best-epoch000.ckpt", 1, 10**18)
    _save(folder / "best-epoch001.ckpt", 2, 10**18 + 10**9)
    _save(folder / "last.ckpt", 3, 10**18 + 2 * 10**9)
    last = folder / "last.ckpt"
    last.write_bytes(last.read_bytes()[:100])  # killed mid-copy
    (folder / ".last.ckpt.tmp-4242").write_bytes(b"partial")  # left by a killed writer
    for option in ("last", "auto"):
        assert resolve_ckpt_path(option, tmp_path) == str(folder / "best-epoch001.ckpt")
        err = capsys.readouterr().err
        assert f"checkpoint {last} is unusable: truncated or not a checkpoint (100 bytes" in err
        assert f"Resuming from {folder / 'best-epoch001.ckpt'} instead" in err
    assert not (folder / ".last.ckpt.tmp-4242").exists()
    with pytest.raises(ValueError, match=r"last\.ckpt.* is not usable: truncated"):
        resolve_ckpt_path(str(last), tmp_path)
    for path in folder.glob("*.ckpt"):
        path.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="no usable checkpoint") as error:
        resolve_ckpt_path("auto", tmp_path)
    assert "best-epoch000.ckpt: truncated" in str(error.value)


def test_auto_resumes_from_best_without_last_and_never_silently_restarts(tmp_path: Path) -> None:
    assert resolve_ckpt_path("auto", tmp_path) is None  # a new folder: fresh start
    (tmp_path / "csv").mkdir()
    (tmp_path / "csv" / "metrics.csv").write_text("epoch,step\r\n0,0\r\n")
    (tmp_path / "summary.json").write_text('{"status": "failed"}')
    with pytest.raises(FileExistsError) as error:  # used folder, nothing to resume from
        resolve_ckpt_path("auto", tmp_path)
    assert "summary.json, csv/metrics.csv" in str(error.value)
    (tmp_path / "summary.json").write_text('{"status": "requeued"}')
    assert resolve_ckpt_path("auto", tmp_path) is None  # SLURM restart before the first epoch
    best = tmp_path / "checkpoints" / "best-epoch000.ckpt"
    _save(best, 1, 10**18)
    assert resolve_ckpt_path("auto", tmp_path) == str(best)
    with pytest.raises(FileExistsError, match=r"best-epoch000\.ckpt"):
        resolve_ckpt_path(None, tmp_path)


# -- 3. attempts ------------------------------------------------------------------------------------


def test_a_failed_attempt_never_replaces_a_completed_record() -> None:
    completed = {"status": "completed", "metrics": {"test/acc": 0.9}, "epochs": 2, "started": "a"}
    failed = {"status": "failed", "error": "boom", "started": "b", "metrics": {}}
    merged, kept = merge_attempt(completed, failed)
    assert kept and merged["status"] == "completed" and merged["metrics"] == {"test/acc": 0.9}
    assert [a["status"] for a in merged["attempts"]] == ["completed", "failed"]
    again, kept = merge_attempt(merged, {"status": "completed", "epochs": 3, "started": "c"})
    assert not kept and again["epochs"] == 3
    assert [a["status"] for a in again["attempts"]] == ["completed", "failed", "completed"]


# -- 2. exit status after a signal ------------------------------------------------------------------


class _SignalsItself(pl.LightningModule):
    """A one-layer model whose first training step sends ``signum`` to its own process."""

    def __init__(self, signum: int) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 2)
        self.signum = signum

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        if batch_idx == 0:
            os.kill(os.getpid(), self.signum)
        return self.layer(batch[0]).sum()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit_until(signum: int) -> Any:
    def steps(cfg: Any, output_dir: Path, ckpt_path: str | None, summary: dict[str, Any]) -> None:
        data = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(torch.randn(8, 4)), batch_size=2
        )
        trainer = pl.Trainer(
            accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False,
            enable_progress_bar=False, enable_model_summary=False, default_root_dir=output_dir,
        )  # fmt: skip
        trainer.fit(_SignalsItself(signum), train_dataloaders=data)

    return steps


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.parametrize("inside_lightning", [True, False])
def test_signal_gives_shell_exit_status_and_interrupted_summary(
    job_config: Any,
    tmp_path: Path,
    signum: int,
    code: int,
    inside_lightning: bool,
    request: pytest.FixtureRequest,
) -> None:
    cfg = job_config(["experiment=smoke", "logger=none"])

    def outside(cfg: Any, output_dir: Path, ckpt_path: str | None, summary: dict[str, Any]) -> None:
        os.kill(os.getpid(), signum)  # e.g. while the data is being read

    steps = _fit_until(signum) if inside_lightning else outside
    # a job starts with Python's default handlers; an earlier in-process test of the full suite
    # can leave another SIGINT handler installed, which run_task then (rightly) leaves alone
    previous = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    request.addfinalizer(lambda: (signal.signal(signal.SIGINT, previous[0]),
                                  signal.signal(signal.SIGTERM, previous[1])))  # fmt: skip
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with pytest.raises(SystemExit) as stopped:
        run_task(cfg, tmp_path, None, steps)
    assert stopped.value.code == code
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert summary["signal"] == signal.Signals(signum).name
    assert {s: signal.getsignal(s) for s in before} == before  # handlers restored


def test_slurm_requeue_is_recorded_as_requeued_not_failed(
    job_config: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """submitit's SIGUSR2 handler marks the requeue and exits: the job's status is `requeued`."""
    from imcompress.sweep import requeue

    monkeypatch.setattr(requeue, "_requeue_requested", False)
    cfg = job_config(["experiment=smoke", "logger=none"])

    def requeued(
        cfg: Any, output_dir: Path, ckpt_path: str | None, summary: dict[str, Any]
    ) -> None:
        requeue.note_requeue()  # what SlurmLauncher.checkpoint does on the signal
        raise SystemExit(-1)  # what submitit does after `scontrol requeue`

    with pytest.raises(SystemExit) as stopped:
        run_task(cfg, tmp_path, None, requeued)
    assert stopped.value.code == -1  # submitit's own exit, unchanged
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "requeued" and "error" not in summary


# -- issue 16: last epoch, attempts, superseded rows, full disk -----------------------------------


def test_every_attempt_is_listed_while_it_runs_and_a_killed_one_stays(
    job_config: Any, tmp_path: Path
) -> None:
    """The attempt is in summary.json from its start (status running); an attempt that never
    wrote its end (kill -9) is marked killed/unfinished by the next one."""
    cfg = job_config(["experiment=smoke", "logger=none"])
    seen: list[dict[str, Any]] = []

    def steps(cfg: Any, output_dir: Path, ckpt_path: str | None, summary: dict[str, Any]) -> None:
        seen.append(json.loads((output_dir / "summary.json").read_text()))

    run_task(cfg, tmp_path, None, steps)
    assert seen[0]["status"] == "running" and len(seen[0]["attempts"]) == 1
    # What a kill -9 during the next attempt leaves: its own start record, nothing else.
    killed = {**seen[0], "started": "killed-attempt"}
    (tmp_path / "summary.json").write_text(json.dumps(killed))
    run_task(cfg, tmp_path, None, steps)
    statuses = [
        a["status"] for a in json.loads((tmp_path / "summary.json").read_text())["attempts"]
    ]
    assert statuses == ["killed/unfinished", "completed"]


def test_a_rerun_that_trains_nothing_keeps_the_completed_results() -> None:
    results = {
        "best": {"val/acc": 0.8, "checkpoint": "b"},
        "metrics": {"val/acc": 0.8, "test/acc": 0.7, "hw/im2col/cycles": 11393.0},
        "cost": {"im2col/cycles": 11393},
        "tested": {"checkpoint": "checkpoints/best-epoch001.ckpt", "epoch": 1},
        "epochs": 2,
    }
    completed = {"status": "completed", "started": "a", "steps_trained": 4, **results}
    # A rerun resumed at max_epochs: no epoch, so no val/acc and no cost of its own.
    rerun = {"status": "completed", "started": "b", "steps_trained": 0, "metrics": {}, "cost": {}}
    merged, kept = merge_attempt(completed, rerun)
    assert kept and {key: merged[key] for key in results} == results
    assert [a["started"] for a in merged["attempts"]] == ["a", "b"]
    # A rerun that trained again (from an earlier checkpoint) replaces them, keeping the old ones.
    retrained = {"status": "completed", "started": "c", "steps_trained": 2, "metrics": {"x": 1}}
    replaced, kept = merge_attempt(merged, retrained)
    assert not kept and replaced["metrics"] == {"x": 1}
    assert replaced["replaced_results"] == [results]


def test_superseded_csv_rows_move_aside_byte_for_byte(tmp_path: Path) -> None:
    from imcompress.training.loggers import SUPERSEDED_FILE, supersede_rows

    metrics = tmp_path / "metrics.csv"
    kept = b"epoch,lr,step,val/acc\r\n,0.1,0,\r\n0,,3,0.25\r\n"
    late = b",0.08,4,\r\n1,,5,\r\n"  # an abandoned attempt's rows after the checkpoint (step 4)
    metrics.write_bytes(kept + late)
    assert supersede_rows(metrics, from_step=4) == 2
    assert metrics.read_bytes() == kept
    assert (tmp_path / SUPERSEDED_FILE).read_bytes() == b"epoch,lr,step,val/acc\r\n" + late
    assert supersede_rows(metrics, from_step=4) == 0  # nothing left to move


def test_auto_resumes_from_last_even_when_a_best_checkpoint_is_newer(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    _save(folder / "last.ckpt", 8, 10**18)
    _save(folder / "best-epoch003.ckpt", 8, 10**18 + 10**9)  # same epoch, written later
    assert resolve_ckpt_path("auto", tmp_path) == str(folder / "last.ckpt")


def test_leftover_temporary_files_are_removed_before_a_job_starts(tmp_path: Path) -> None:
    leftovers = [
        tmp_path / "summary.json.tmp",  # what earlier versions left on a full disk (0 bytes)
        tmp_path / ".summary.json.tmp-4242",
        tmp_path / "checkpoints" / ".last.ckpt.tmp-4242",
    ]
    for path in leftovers:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"")
    assert resolve_ckpt_path(None, tmp_path) is None
    assert not any(path.exists() for path in leftovers)


def test_auto_starts_over_after_an_attempt_killed_before_its_first_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """summary.json still says running (its start record): nothing to resume, nothing to lose."""
    (tmp_path / "summary.json").write_text('{"status": "running", "attempts": []}')
    assert resolve_ckpt_path("auto", tmp_path) is None
    assert "the running attempt" in capsys.readouterr().out


@contextlib.contextmanager
def tiny_tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """A real full disk: a tmpfs of ``size`` mounted on ``folder`` (root only, else skipped)."""
    folder.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)]
    mounted = subprocess.run(mount, capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def _fill_disk_after(limit: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Writes to files opened for writing fail with ENOSPC once ``limit`` bytes were written."""
    import builtins
    import errno

    real_open = builtins.open

    class Full:
        def __init__(self, handle: Any) -> None:
            self.handle, self.written = handle, 0

        def write(self, data: Any) -> int:
            if self.written + len(data) > limit:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.written += len(data)
            return int(self.handle.write(data))

        def __getattr__(self, name: str) -> Any:
            return getattr(self.handle, name)

        def __enter__(self) -> Any:
            return self

        def __exit__(self, *exc: Any) -> None:
            self.handle.__exit__(*exc)

    def full_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = real_open(file, mode, *args, **kwargs)
        return Full(handle) if "w" in mode else handle

    monkeypatch.setattr(builtins, "open", full_open)


def test_disk_full_checkpoint_names_the_file_and_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """torch.save on a full disk says `[enforce fail at inline_container.cc:672]`; the job says
    `disk full (ENOSPC) writing <file>`, and the temporary file is gone."""
    from imcompress.runs.atomic import DiskFullError

    target = tmp_path / "checkpoints" / "last.ckpt"
    _fill_disk_after(1000, monkeypatch)
    with pytest.raises(DiskFullError, match=rf"disk full \(ENOSPC\) writing {target}$"):
        AtomicCheckpointIO().save_checkpoint({"w": torch.zeros(10_000)}, target)
    assert list(target.parent.iterdir()) == []


def test_disk_full_is_the_recorded_reason_and_no_temporary_stays(
    job_config: Any, tmp_path: Path
) -> None:
    """A full disk during training: summary.json says `disk full (ENOSPC) writing <file>`."""
    cfg = job_config(["experiment=smoke", "logger=none"])
    with tiny_tmpfs(tmp_path / "disk", size="256k") as disk:
        target = disk / "checkpoints" / "last.ckpt"

        def steps(cfg: Any, output_dir: Path, ckpt: str | None, summary: dict[str, Any]) -> None:
            AtomicCheckpointIO().save_checkpoint({"w": torch.zeros(200_000)}, target)  # 800 kB

        with pytest.raises(OSError):
            run_task(cfg, disk, None, steps)
        summary = json.loads((disk / "summary.json").read_text())
        leftovers = [p.name for p in disk.rglob("*") if "tmp" in p.name]
    assert summary["status"] == "failed"
    assert summary["error"] == f"DiskFullError: disk full (ENOSPC) writing {target}"
    assert leftovers == []
