"""SLURM helpers: is this a (restarted) SLURM job, can we reach a cluster, what state are jobs in."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_SLURM_CONF = Path("/etc/slurm/slurm.conf")
LOCAL_CLUSTER_HINT = (
    "To run on this machine, start the local single-node cluster:\n"
    "  sudo launch/local-slurm.sh start\n"
    "  export SLURM_CONF=/tmp/imcompress-slurm/slurm.conf\n"
    "or drop `hydra/launcher=slurm` to run the jobs one after another in this process."
)

# Job states after which a job never runs again (squeue --states=all / sacct names).
FINISHED_STATES = frozenset(
    {
        "BOOT_FAIL",
        "CANCELLED",
        "COMPLETED",
        "DEADLINE",
        "FAILED",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "REVOKED",
        "SPECIAL_EXIT",
        "TIMEOUT",
    }
)

# Pending reasons that never resolve by waiting: the job as submitted can never start.
UNSCHEDULABLE_REASONS = frozenset(
    {
        "AssocMaxWallDurationPerJobLimit",
        "BadConstraints",
        "InvalidAccount",
        "InvalidQOS",
        "PartitionConfig",
        "PartitionNodeLimit",
        "PartitionTimeLimit",
        "QOSMaxCpuPerJobLimit",
        "QOSMaxGRESPerJob",
        "QOSMaxMemoryPerJob",
        "QOSMaxNodePerJobLimit",
        "QOSMaxWallDurationPerJobLimit",
    }
)


class SlurmUnavailableError(RuntimeError):
    """No usable SLURM cluster (tools missing, no configuration, controller down, bad partition)."""


@dataclass(frozen=True)
class QueueState:
    """One job's state as the controller reports it (``squeue``)."""

    state: str
    reason: str = ""

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    @property
    def unschedulable(self) -> bool:
        return self.state == "PENDING" and self.reason in UNSCHEDULABLE_REASONS


def restart_count(environ: Mapping[str, str] = os.environ) -> int:
    """How often SLURM restarted this job (``SLURM_RESTART_COUNT``; 0 outside SLURM)."""
    value = environ.get("SLURM_RESTART_COUNT", "0")
    return int(value) if value.isdigit() else 0


def slurm_conf_problem(environ: Mapping[str, str] = os.environ) -> str | None:
    """Why the SLURM clients cannot find their configuration, or None when they can."""
    conf = environ.get("SLURM_CONF")
    if conf:
        return None if Path(conf).is_file() else f"SLURM_CONF={conf} does not exist."
    if DEFAULT_SLURM_CONF.is_file():
        return None
    return f"SLURM_CONF is not set and {DEFAULT_SLURM_CONF} does not exist."


def check_cluster(partition: str | None = None, timeout_s: float = 30.0) -> list[str]:
    """Raise :class:`SlurmUnavailableError` with a fix when no cluster (or partition) is usable.

    Returns the partition names of the cluster.
    """
    missing = [tool for tool in ("sbatch", "srun", "squeue", "sinfo") if shutil.which(tool) is None]
    if missing:
        raise SlurmUnavailableError(
            f"hydra/launcher=slurm needs the SLURM client tools, but {', '.join(missing)} "
            "is not on PATH (Debian/Ubuntu: apt-get install slurm-wlm).\n" + LOCAL_CLUSTER_HINT
        )
    conf = os.environ.get("SLURM_CONF")
    if conf and not Path(conf).is_file():  # sinfo would retry for a minute before failing
        raise SlurmUnavailableError(
            f"Cannot reach a SLURM cluster: SLURM_CONF={conf} does not exist.\n{LOCAL_CLUSTER_HINT}"
        )
    try:
        result = subprocess.run(
            ["sinfo", "--noheader", "--format=%R"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired as error:
        raise SlurmUnavailableError(
            f"sinfo did not answer in {timeout_s:.0f} s: is slurmctld running? "
            "(local cluster: launch/local-slurm.sh status)"
        ) from error
    if result.returncode != 0:
        # Only now blame a missing slurm.conf: configless clusters work without one.
        problem = slurm_conf_problem()
        output = (result.stderr.strip() or result.stdout.strip()).splitlines()[-6:]
        raise SlurmUnavailableError(
            "Cannot reach a SLURM cluster (sinfo failed):\n"
            + "".join(f"  {line}\n" for line in output)
            + (
                f"{problem}\n{LOCAL_CLUSTER_HINT}"
                if problem
                else "Is slurmctld running and SLURM_CONF pointing at its slurm.conf? "
                "(local cluster: launch/local-slurm.sh status)"
            )
        )
    partitions = sorted({line.strip() for line in result.stdout.splitlines() if line.strip()})
    if partition and partition not in partitions:
        raise SlurmUnavailableError(
            f"Unknown SLURM partition {partition!r}; this cluster has: {', '.join(partitions) or 'none'}. "
            "Set hydra.launcher.partition=<name> (or slurm.partition in conf/local/default.yaml; "
            "null = the cluster's default partition)."
        )
    return partitions


def _expand_job_ids(job_id: str) -> list[str]:
    """``12_[0-2%2]`` -> ``[12_0, 12_1, 12_2]``; ``12_3`` and ``12`` unchanged."""
    if "_[" not in job_id:
        return [job_id]
    base, _, ranges = job_id.partition("_[")
    ranges = ranges.rstrip("]").split("%")[0]
    expanded: list[str] = []
    for part in ranges.split(","):
        low, _, high = part.partition("-")
        if not low.isdigit():
            continue
        stop = int(high) if high.isdigit() else int(low)
        expanded.extend(f"{base}_{index}" for index in range(int(low), stop + 1))
    return expanded


def parse_squeue(output: str) -> dict[str, QueueState]:
    """Parse ``squeue --noheader --format=%i|%T|%r`` lines into job id -> state."""
    states: dict[str, QueueState] = {}
    for line in output.splitlines():
        fields = line.strip().split("|")
        if len(fields) < 2 or not fields[0]:
            continue
        state = QueueState(fields[1].strip().upper(), fields[2].strip() if len(fields) > 2 else "")
        for job_id in _expand_job_ids(fields[0].strip()):
            states[job_id] = state
    return states


def queue_states(job_ids: Iterable[str], timeout_s: float = 30.0) -> dict[str, QueueState] | None:
    """States of the given jobs (array tasks as ``<array>_<task>``); None when squeue fails.

    Jobs the controller no longer knows (finished longer than ``MinJobAge`` ago) are absent.
    """
    bases = sorted({job_id.split("_")[0] for job_id in job_ids})
    if not bases:
        return {}
    try:
        result = subprocess.run(
            [
                "squeue",
                "--noheader",
                "--states=all",
                "--format=%i|%T|%r",
                f"--jobs={','.join(bases)}",
            ],
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        # squeue fails for a job list that contains only unknown ids: they are all gone.
        return {} if "Invalid job id" in result.stderr else None
    return parse_squeue(result.stdout)


def cancel(job_id: str) -> None:
    """``scancel`` one job (best effort)."""
    subprocess.run(["scancel", job_id], capture_output=True, timeout=30, check=False)
