"""Wait for the tasks of a SLURM job array without relying on accounting (``sacct``).

A task is done when submitit's result file exists; a task that SLURM reports finished (or no
longer knows) and that left no result after a grace period ended without one (killed, out of
memory, node failure, cancelled); a task pending for a reason that never resolves is cancelled.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from imcompress.sweep.slurm import QueueState, cancel, queue_states

log = logging.getLogger(__name__)

REASON_HINTS = {
    "PartitionTimeLimit": "timeout_min exceeds the partition's time limit",
    "PartitionNodeLimit": "more nodes than the partition allows",
    "BadConstraints": "the requested constraint/features match no node",
    "InvalidAccount": "unknown or unauthorised account",
    "InvalidQOS": "unknown or unauthorised QOS",
    "QOSMaxWallDurationPerJobLimit": "timeout_min exceeds the QOS time limit",
    "AssocMaxWallDurationPerJobLimit": "timeout_min exceeds your association's time limit",
}


@dataclass
class TaskOutcome:
    """How one array task ended: ``result`` (submitit wrote a result file) or ``lost``/``unschedulable``."""

    kind: str
    message: str = ""
    state: str = ""


@dataclass
class WatchedTask:
    """One array task: its SLURM id and where submitit writes its result."""

    job_id: str
    result_file: Path
    outcome: TaskOutcome | None = None
    gone_since: float | None = None
    unschedulable_since: float | None = None


@dataclass
class ArrayWatcher:
    """Poll result files (cheap) and ``squeue`` (every ``queue_poll_s``) until every task ended.

    ``states`` and ``clock``/``sleep`` are injectable for tests; ``on_done(task)`` is called once
    per task as soon as it ended.
    """

    tasks: list[WatchedTask]
    states: Callable[[Iterable[str]], Mapping[str, QueueState] | None] = queue_states
    cancel_job: Callable[[str], None] = cancel
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    poll_s: float = 1.0
    queue_poll_s: float = 3.0
    result_grace_s: float = 20.0
    unschedulable_grace_s: float = 30.0
    on_done: Callable[[WatchedTask], None] | None = None
    _last_queue_poll: float = field(default=float("-inf"), init=False)
    _queue_warned: bool = field(default=False, init=False)

    def pending(self) -> list[WatchedTask]:
        return [task for task in self.tasks if task.outcome is None]

    def run(self) -> list[WatchedTask]:
        """Block until every task has an outcome; return the tasks."""
        while self.pending():
            self.step()
            if self.pending():
                self.sleep(self.poll_s)
        return self.tasks

    def step(self) -> None:
        """One polling round."""
        for task in self.pending():
            if task.result_file.exists():
                self._finish(task, TaskOutcome("result"))
        if not self.pending() or self.clock() - self._last_queue_poll < self.queue_poll_s:
            return
        self._last_queue_poll = now = self.clock()
        states = self.states([task.job_id for task in self.pending()])
        if states is None:
            if not self._queue_warned:
                log.warning("squeue failed; waiting for the result files of the jobs only")
                self._queue_warned = True
            return
        for task in self.pending():
            self._check(task, states.get(task.job_id), now)

    def _check(self, task: WatchedTask, state: QueueState | None, now: float) -> None:
        if state is None or state.finished:
            task.gone_since = task.gone_since if task.gone_since is not None else now
            if now - task.gone_since >= self.result_grace_s and not task.result_file.exists():
                what = f"state {state.state}" if state else "no longer in the queue"
                self._finish(
                    task,
                    TaskOutcome(
                        "lost",
                        f"SLURM job {task.job_id} ended without a result ({what})",
                        state.state if state else "",
                    ),
                )
            return
        task.gone_since = None
        if not state.unschedulable:
            task.unschedulable_since = None
            return
        if task.unschedulable_since is None:
            task.unschedulable_since = now
            log.warning(
                "SLURM job %s cannot start: %s (%s); it will be cancelled in %.0f s",
                task.job_id,
                state.reason,
                REASON_HINTS.get(state.reason, "fix the launcher settings"),
                self.unschedulable_grace_s,
            )
        elif now - task.unschedulable_since >= self.unschedulable_grace_s:
            self.cancel_job(task.job_id)
            hint = REASON_HINTS.get(state.reason, "fix the hydra.launcher settings")
            self._finish(
                task,
                TaskOutcome(
                    "unschedulable",
                    f"SLURM cannot start job {task.job_id}: pending with reason {state.reason} ({hint}); cancelled",
                    state.state,
                ),
            )

    def _finish(self, task: WatchedTask, outcome: TaskOutcome) -> None:
        task.outcome = outcome
        if self.on_done is not None:
            self.on_done(task)
