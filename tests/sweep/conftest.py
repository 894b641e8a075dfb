"""Fixtures for the sweep tests: a real single-node SLURM cluster started by launch/local-slurm.sh."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT

LOCAL_SLURM = ROOT / "launch" / "local-slurm.sh"


@dataclass(frozen=True)
class LocalCluster:
    """A running test cluster: its state folder, slurm.conf and the environment to reach it."""

    state_dir: Path
    conf: Path

    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def cannot_start(reason: str) -> None:
    """Skip with the reason, except under CI where the cluster must run."""
    if under_ci():
        pytest.fail(f"CI=true but the local SLURM cluster cannot start: {reason}")
    pytest.skip(f"local SLURM cluster unavailable: {reason}")


def free_port_pair() -> int:
    """A port p such that p and p + 1 are free on this machine (slurmctld, slurmd)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("", 0))
            port = probe.getsockname()[1]
        if port >= 65000:
            continue
        try:
            with socket.socket() as first, socket.socket() as second:
                first.bind(("", port))
                second.bind(("", port + 1))
        except OSError:
            continue
        return port
    raise RuntimeError("no two consecutive free ports found")


@pytest.fixture(scope="module")
def local_slurm() -> Iterator[LocalCluster]:
    """Start a private cluster (own state dir and ports) for this module; always stop it after."""
    if os.geteuid() != 0:
        cannot_start("needs root to start munged/slurmctld/slurmd (run the tests as root or in CI)")
    if shutil.which("bash") is None:
        cannot_start("bash not found")
    state = Path(tempfile.mkdtemp(prefix="imc-slurm-", dir="/tmp"))
    env = {
        **os.environ,
        "IMCOMPRESS_SLURM_STATE": str(state),
        "IMCOMPRESS_SLURM_PORT": str(free_port_pair()),
    }
    try:
        started = subprocess.run(
            ["bash", str(LOCAL_SLURM), "start"],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        if started.returncode != 0:
            logs = "".join(
                f"--- {path.name}\n{path.read_text(errors='replace')[-1500:]}\n"
                for path in sorted((state / "log").glob("*"))
            )
            cannot_start(
                f"launch/local-slurm.sh start failed:\n{started.stdout[-1500:]}\n"
                f"{started.stderr[-3000:]}\n{logs}"
            )
        assert "export SLURM_CONF=" in started.stdout, started.stdout
        yield LocalCluster(state, state / "slurm.conf")
    finally:
        subprocess.run(
            ["bash", str(LOCAL_SLURM), "stop"], env=env, capture_output=True, text=True, timeout=300
        )
        shutil.rmtree(state, ignore_errors=True)
