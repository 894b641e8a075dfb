"""Resume after preemption or timeout: the job side of submitit's checkpoint-and-requeue.

Mechanism (see docs/slurm.md): SLURM sends ``SIGUSR2`` ``signal_delay_s`` seconds before the time
limit (``#SBATCH --signal=USR2@<delay>``, written by submitit). submitit's handler in the job calls
:meth:`imcompress.sweep.launcher.SlurmLauncher.checkpoint`, which records the requeue here and
returns the same job for resubmission; submitit then runs ``scontrol requeue`` and exits. SLURM
restarts the job in the same Hydra job folder with ``SLURM_RESTART_COUNT`` >= 1, and
:func:`resume_ckpt_path` makes the training resume from that folder's newest valid checkpoint
(normally ``checkpoints/last.ckpt``; the W&B run id is reused from ``wandb_run_id.txt``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from imcompress.sweep.slurm import restart_count

_requeue_requested = False


def note_requeue() -> None:
    """Record that this process is being requeued (called from the SLURM signal handler)."""
    global _requeue_requested
    _requeue_requested = True


def requeue_requested() -> bool:
    """True once :func:`note_requeue` ran in this process: the job stops to be restarted, not failed."""
    return _requeue_requested


def resume_ckpt_path(ckpt_path: str | None, environ: Mapping[str, str] = os.environ) -> str | None:
    """The ``ckpt_path`` a job should use: ``auto`` for a fresh config in a SLURM-restarted job.

    A requeued job restarts in the folder that already holds its checkpoints, which
    ``ckpt_path=null`` refuses; ``auto`` resumes from the newest valid checkpoint (a job requeued
    before its first checkpoint starts from scratch, saying so; see
    :func:`imcompress.training.checkpoints.resolve_ckpt_path`). Explicit values are kept.
    """
    if ckpt_path in (None, "", "null") and restart_count(environ) > 0:
        return "auto"
    return ckpt_path


def trainer_requeue_overrides(trainer_cfg: Any) -> dict[str, Any]:
    """Trainer kwargs that switch Lightning's own SLURM auto-requeue (on SIGUSR1) off in SLURM jobs.

    submitit's checkpoint-and-requeue is the one requeue mechanism; a second one reacting to a
    different signal would save ``hpc_ckpt_*.ckpt`` files that nothing resumes from. Returns {}
    outside SLURM or when the trainer config sets its own ``plugins``.
    """
    from lightning.fabric.plugins.environments import SLURMEnvironment

    if trainer_cfg.get("plugins") is not None or not SLURMEnvironment.detect():
        return {}
    return {"plugins": [SLURMEnvironment(auto_requeue=False)]}
