"""Two-stage by default: pretrained=auto trains the dense stage once and every compressed job
reuses it; pretrained=none trains from scratch; run folders stand for their tested checkpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, read_summary, run_script

FAST = (
    "experiment=smoke",
    "trainer.max_epochs=1",
    "logger=none",
    "callbacks.crossbar_cost=null",
)


def dense_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def test_multirun_trains_the_dense_stage_once_and_a_second_multirun_reuses_it(
    tmp_path: Path,
) -> None:
    dense_root = tmp_path / "dense"
    first = run_script(
        "train.py",
        *FAST,
        "compression=glr",
        f"dense.dir={dense_root}",
        f"hydra.sweep.dir={tmp_path / 'sweep1'}",
        "-m",
        "group=1,2",
        cwd=tmp_path,
    )
    assert first.returncode == 0, first.stderr[-3000:]
    [folder] = dense_folders(dense_root)  # one dense stage for both jobs
    dense = read_summary(folder)
    assert dense["status"] == "completed" and len(dense.get("attempts", [dense])) == 1
    assert dense["config"]["compression"] == "none"
    assert (folder / ".hydra" / "config.yaml").is_file()
    assert first.stdout.count("training the dense stage") == 1
    records = [read_summary(tmp_path / "sweep1" / str(job))["pretrained"] for job in (0, 1)]
    assert records[0] == records[1]
    assert records[0]["checkpoint"] == str(folder / "checkpoints" / "last.ckpt")
    assert records[0]["test/acc"] == dense["metrics"]["test/acc"]
    assert records[0]["epoch"] == 0  # max_epochs=1: the final epoch (Lightning counts from 0)

    second = run_script(
        "train.py",
        *FAST,
        "compression=lr",
        f"dense.dir={dense_root}",
        f"hydra.sweep.dir={tmp_path / 'sweep2'}",
        "-m",
        "seed=42",
        cwd=tmp_path,
    )
    assert second.returncode == 0, second.stderr[-3000:]
    assert "training the dense stage" not in second.stdout
    assert "reusing the dense stage" in second.stdout
    assert read_summary(folder) == dense  # untouched
    assert read_summary(tmp_path / "sweep2" / "0")["pretrained"] == records[0]


def test_an_interrupted_dense_stage_is_resumed_by_the_next_job(tmp_path: Path) -> None:
    dense_root = tmp_path / "dense"
    args = (*FAST, "compression=glr", "test_after_fit=false", f"dense.dir={dense_root}")
    first = run_script("train.py", *args, f"hydra.run.dir={tmp_path / 'a'}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    [folder] = dense_folders(dense_root)
    record = read_summary(folder)
    record["status"] = "interrupted"  # as a SIGTERM during the stage leaves it
    (folder / "summary.json").write_text(json.dumps(record))
    second = run_script("train.py", *args, f"hydra.run.dir={tmp_path / 'b'}", cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "training the dense stage" in second.stdout
    resumed = read_summary(folder)
    assert resumed["status"] == "completed"
    assert Path(resumed["resumed_from"]).parent == folder / "checkpoints"  # not from scratch
    assert len(resumed["attempts"]) == 2
    assert dense_folders(dense_root) == [folder]


def _start(tmp_path: Path, name: str, dense_root: Path) -> tuple[subprocess.Popen[str], Path]:
    log = tmp_path / f"{name}.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "1"}
    command = [
        sys.executable,
        str(ROOT / "src" / "train.py"),
        *FAST,
        "compression=glr",
        f"dense.dir={dense_root}",
        f"hydra.run.dir={tmp_path / name}",
    ]
    handle = open(log, "w")  # noqa: SIM115 (closed by the process's end)
    process = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=handle, stderr=subprocess.STDOUT, text=True
    )
    return process, log


def _dense_folder_for(overrides: list[str]) -> Path:
    """The dense-stage folder that a train.py run with ``overrides`` uses."""
    from hydra import compose, initialize_config_dir

    from imcompress.config import register_configs
    from imcompress.training.dense_stage import dense_config, stage_folder

    register_configs()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    return stage_folder(cfg, dense_config(cfg))


def test_two_concurrent_jobs_train_the_dense_stage_once(tmp_path: Path) -> None:
    from imcompress.training.dense_stage import stage_lock

    dense_root = tmp_path / "dense"
    folder = _dense_folder_for([*FAST, "compression=glr", f"dense.dir={dense_root}"])
    with stage_lock(folder):  # both jobs start while the stage is "being trained"
        jobs = [_start(tmp_path, name, dense_root) for name in ("a", "b")]
        deadline = time.monotonic() + 300
        while not all("waiting for the dense stage" in log.read_text() for _, log in jobs):
            assert time.monotonic() < deadline, [log.read_text()[-2000:] for _, log in jobs]
            assert all(p.poll() is None for p, _ in jobs), [log.read_text() for _, log in jobs]
            time.sleep(0.5)
        assert f"held by pid {os.getpid()}" in jobs[0][1].read_text()
    for process, log in jobs:
        assert process.wait(timeout=600) == 0, log.read_text()[-3000:]
    logs = [log.read_text() for _, log in jobs]
    assert sum(text.count("training the dense stage") for text in logs) == 1
    assert sum("reusing the dense stage" in text for text in logs) == 1
    assert dense_folders(dense_root) == [folder]
    assert len(read_summary(folder).get("attempts", [0])) == 1
    used = {read_summary(tmp_path / name)["pretrained"]["checkpoint"] for name in ("a", "b")}
    assert used == {str(folder / "checkpoints" / "last.ckpt")}


def test_failed_dense_stage_fails_every_job_without_retraining(tmp_path: Path) -> None:
    dense_root = tmp_path / "dense"
    result = run_script(
        "train.py",
        *FAST,
        "compression=glr",
        f"dense.dir={dense_root}",
        "dense.data.batch_size=0",  # valid for the job, fails inside the dense stage's run
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        "-m",
        "group=1,2",
        cwd=tmp_path,
    )
    assert result.returncode != 0
    [folder] = dense_folders(dense_root)
    dense = read_summary(folder)
    assert dense["status"] == "failed" and "batch_size" in dense["error"]
    assert len(dense.get("attempts", [dense])) == 1  # trained (and failed) once
    assert result.stdout.count("training the dense stage") == 1
    errors = [read_summary(tmp_path / "sweep" / str(job))["error"] for job in (0, 1)]
    assert all(f"the dense stage {folder} failed" in error for error in errors), errors
    assert "dense.retry=true" in errors[1]


def test_pretrained_none_trains_from_scratch_and_run_folders_are_accepted(
    tmp_path: Path,
) -> None:
    dense_root = tmp_path / "dense"
    scratch = tmp_path / "scratch"
    result = run_script(
        "train.py",
        *FAST,
        "compression=glr",
        "pretrained=none",
        f"dense.dir={dense_root}",
        f"hydra.run.dir={scratch}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert not dense_root.exists() and "pretrained" not in read_summary(scratch)
    assert "Loaded pretrained weights" not in result.stdout

    dense_run = tmp_path / "dense_run"
    assert (
        run_script(
            "train.py", *FAST, "test_ckpt=last", f"hydra.run.dir={dense_run}", cwd=tmp_path
        ).returncode
        == 0
    )
    job = tmp_path / "from_folder"
    given = run_script(
        "train.py",
        *FAST,
        "compression=glr",
        f"pretrained={dense_run}",
        f"hydra.run.dir={job}",
        cwd=tmp_path,
    )
    assert given.returncode == 0, given.stderr[-3000:]
    last = dense_run / "checkpoints" / "last.ckpt"
    assert f"pretrained={dense_run}: using {last}" in given.stdout
    record = read_summary(job)["pretrained"]
    assert record["checkpoint"] == str(last) and record["source"] == "given"
    assert record["test/acc"] == read_summary(dense_run)["metrics"]["test/acc"]
    assert not dense_root.exists() and not (tmp_path / "outputs" / "dense").exists()


# run folder resolution, in-process ---------------------------------------------------------
def _fake_run(folder: Path, summary: dict[str, Any], files: tuple[str, ...]) -> Path:
    (folder / "checkpoints").mkdir(parents=True)
    (folder / ".hydra").mkdir()
    (folder / ".hydra" / "config.yaml").write_text("model: {}\n")
    for name in files:
        (folder / "checkpoints" / name).write_bytes(b"x")
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


@pytest.mark.parametrize(
    ("summary", "expected"),
    [
        ({"status": "completed", "tested": {"checkpoint": "checkpoints/last.ckpt"}}, "last.ckpt"),
        (
            {
                "status": "completed",
                "best": {"tested": "best", "checkpoint": "/gone/run/checkpoints/best-e1.ckpt"},
            },
            "best-e1.ckpt",  # an absolute path of a moved folder: the file of that name
        ),
        ({"status": "completed", "best": {"tested": "last"}}, "last.ckpt"),
    ],
)
def test_run_folder_resolves_to_its_tested_checkpoint(
    tmp_path: Path, summary: dict[str, Any], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from imcompress.compression.pretrained import resolve_checkpoint
    from imcompress.jobs.evaluate import find_run

    run = _fake_run(tmp_path / "run", summary, ("best-e1.ckpt", "last.ckpt"))
    chosen = run / "checkpoints" / expected
    assert resolve_checkpoint(run) == chosen
    assert f"pretrained={run}: using {chosen}" in capsys.readouterr().out
    assert resolve_checkpoint(run / "checkpoints", announce=False) == chosen
    assert find_run(run).checkpoint == chosen  # evaluate.py ckpt=<run folder>


def test_run_folder_refusals_name_the_key_and_value(tmp_path: Path) -> None:
    from imcompress.compression.pretrained import resolve_checkpoint

    with pytest.raises(FileNotFoundError, match=r"pretrained='.*nope': no such checkpoint file"):
        resolve_checkpoint(tmp_path / "nope")
    running = _fake_run(tmp_path / "running", {"status": "running"}, ("last.ckpt",))
    with pytest.raises(ValueError, match=r"has not completed.*'running'"):
        resolve_checkpoint(running, key="ckpt")
    sweep = tmp_path / "sweep"
    _fake_run(sweep / "0", {"status": "completed"}, ("last.ckpt",))
    with pytest.raises(ValueError, match=r"multirun folder.*pretrained=.*sweep/0"):
        resolve_checkpoint(sweep)
    with pytest.raises(ValueError, match=r"pretrained=auto .*train.py only"):
        resolve_checkpoint("auto")


def test_load_pretrained_takes_a_run_folder_or_none(tmp_path: Path) -> None:
    """estimate.py, plan.py and the frontier load through load_pretrained: folders work there."""
    import torch

    from imcompress.compression import load_pretrained
    from tests.compression.tiny_models import TinyResNet

    trained = TinyResNet()
    run = _fake_run(tmp_path / "run", {"status": "completed", "best": {"tested": "last"}}, ())
    state = {f"model.{key}": value for key, value in trained.state_dict().items()}
    torch.save({"state_dict": state}, run / "checkpoints" / "last.ckpt")
    loaded = load_pretrained(TinyResNet(), run)
    for key, value in trained.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)
    fresh = TinyResNet()
    before = {key: value.clone() for key, value in fresh.state_dict().items()}
    load_pretrained(fresh, "none")  # from scratch: unchanged
    assert all(torch.equal(fresh.state_dict()[key], value) for key, value in before.items())
