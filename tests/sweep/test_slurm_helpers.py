"""SLURM helpers without a cluster: queue parsing, waiting for arrays, restarts, clear errors."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from imcompress.sweep.requeue import resume_ckpt_path
from imcompress.sweep.slurm import QueueState, parse_squeue, restart_count, slurm_conf_problem
from imcompress.sweep.watch import ArrayWatcher, WatchedTask
from tests.conftest import ROOT, run_script


def test_parse_squeue_expands_pending_array_ranges() -> None:
    output = "12_[3-5%2]|PENDING|JobArrayTaskLimit\n12_1|RUNNING|None\n12_0|COMPLETED|None\n13|PENDING|PartitionTimeLimit\n"
    states = parse_squeue(output)
    assert states["12_4"] == QueueState("PENDING", "JobArrayTaskLimit")
    assert sorted(states) == ["12_0", "12_1", "12_3", "12_4", "12_5", "13"]
    assert states["12_0"].finished and not states["12_1"].finished
    assert states["13"].unschedulable and not states["12_4"].unschedulable


def test_restart_count_and_resume_policy() -> None:
    assert restart_count({}) == 0 and restart_count({"SLURM_RESTART_COUNT": "2"}) == 2
    restarted = {"SLURM_RESTART_COUNT": "1"}
    assert resume_ckpt_path(None, restarted) == "auto"  # a requeued job resumes its own last.ckpt
    assert resume_ckpt_path(None, {}) is None  # a fresh job still refuses existing checkpoints
    assert resume_ckpt_path("last", restarted) == "last"
    assert resume_ckpt_path("/x.ckpt", restarted) == "/x.ckpt"


def test_slurm_conf_problem_names_the_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "slurm.conf"
    assert (
        slurm_conf_problem({"SLURM_CONF": str(missing)}) == f"SLURM_CONF={missing} does not exist."
    )
    missing.write_text("ClusterName=x\n")
    assert slurm_conf_problem({"SLURM_CONF": str(missing)}) is None


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def watcher(
    tasks: list[WatchedTask],
    states: dict[str, QueueState] | None,
    clock: FakeClock,
    cancelled: list[str],
) -> ArrayWatcher:
    return ArrayWatcher(
        tasks, states=lambda ids: states, cancel_job=cancelled.append, clock=clock, sleep=clock.sleep,
        queue_poll_s=2.0, result_grace_s=10.0, unschedulable_grace_s=30.0,
    )  # fmt: skip


def test_array_watcher_outcomes(tmp_path: Path) -> None:
    done, lost, stuck, running = (WatchedTask(f"5_{i}", tmp_path / f"{i}.pkl") for i in range(4))
    done.result_file.write_bytes(b"x")
    states = {
        "5_0": QueueState("COMPLETED"),
        # 5_1 no longer in the queue and no result: lost after the grace period
        "5_2": QueueState("PENDING", "PartitionTimeLimit"),
        "5_3": QueueState("RUNNING"),
    }
    clock, cancelled = FakeClock(), []
    watch = watcher([done, lost, stuck, running], states, clock, cancelled)
    for _ in range(100):  # 100 s of fake time
        watch.step()
        clock.sleep(1.0)
    assert done.outcome is not None and done.outcome.kind == "result"
    assert (
        lost.outcome is not None
        and lost.outcome.kind == "lost"
        and "no longer in the queue" in lost.outcome.message
    )
    assert stuck.outcome is not None and stuck.outcome.kind == "unschedulable"
    assert "PartitionTimeLimit" in stuck.outcome.message and cancelled == ["5_2"]
    assert running.outcome is None  # still running: keep waiting
    running.result_file.write_bytes(b"x")
    assert [task.outcome.kind for task in watch.run() if task.outcome] == [
        "result",
        "lost",
        "unschedulable",
        "result",
    ]


def test_array_watcher_waits_for_results_when_squeue_fails(tmp_path: Path) -> None:
    task = WatchedTask("9", tmp_path / "9.pkl")
    clock = FakeClock()
    watch = watcher([task], None, clock, [])
    for _ in range(200):
        watch.step()
        clock.sleep(1.0)
    assert task.outcome is None  # no queue information: never declare a job lost


def test_missing_slurm_conf_is_explained_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLURM_CONF", str(tmp_path / "absent.conf"))
    result = run_script(
        "train.py",
        "experiment=smoke",
        "logger=none",
        "-m",
        "group=1,2",
        "hydra/launcher=slurm",
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "launch/local-slurm.sh start" in result.stderr
    assert (
        f"SLURM_CONF={tmp_path / 'absent.conf'} does not exist" in result.stderr
        or "not on PATH" in result.stderr
    )
    assert not list(tmp_path.glob("outputs/smoke/multiruns/*/0"))  # no job ran
    assert not list(tmp_path.glob("outputs/smoke/multiruns/*/sweep_summary.csv"))


def test_launch_scripts_parse_and_local_slurm_prints_usage() -> None:
    for script in sorted((ROOT / "launch").glob("*.sh")):
        checked = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert checked.returncode == 0, f"{script.name}: {checked.stderr}"
    usage = subprocess.run(
        ["bash", str(ROOT / "launch" / "local-slurm.sh")], capture_output=True, text=True
    )
    assert usage.returncode == 2 and "start" in usage.stdout and "stop" in usage.stdout


@pytest.mark.parametrize("wrapper", ["sweep_paper_resnet20.sh", "sweep_paper_wrn16_4.sh"])
def test_paper_sweep_commands_compose(
    wrapper: str, compose, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every command of the paper sweep scripts composes (the paper experiment configs, first job)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    env = {
        "DRY_RUN": "1",
        "DENSE_EXPERIMENT": "smoke",
        "FINETUNE_EXPERIMENT": "finetune",
        "OUT": "/tmp/o",
        "PATH": "/usr/bin:/bin",
    }
    printed = subprocess.run(
        ["bash", str(ROOT / "launch" / wrapper), "all", "hydra.launcher.partition=gpu"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert printed.returncode == 0, printed.stderr
    commands = [
        shlex.split(line[2:]) for line in printed.stdout.splitlines() if line.startswith("+ ")
    ]
    assert len(commands) == 4  # dense, lr, glr, pruning
    methods = []
    for command in commands:
        assert command[1:3] == ["src/train.py", "-m"] and "hydra/launcher=slurm" in command
        overrides = command[3:]
        first_job = BasicSweeper.split_arguments(
            OverridesParser.create().parse_overrides(overrides), None
        )[0][0]
        cfg = compose(list(first_job))
        assert cfg.hydra.launcher.partition == "gpu"
        methods.append(cfg.compression.method)
    assert methods == ["none", "lr", "glr", "prune_unstructured"]
    assert "pretrained=/tmp/o/dense/0/checkpoints/last.ckpt" in commands[1]
