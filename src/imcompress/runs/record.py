"""``summary.json`` across attempts: every attempt is listed, and results are never thinned.

Every attempt of a job (first run, resumes, SLURM restarts, reruns) appends one entry to the
``attempts`` list (status, error, start time, wall time, the checkpoint it resumed from, epochs,
optimizer steps it trained). The entry is written when the attempt *starts* (status
``running``), so an attempt that is killed without a trace (``kill -9``, node failure, out of
memory) stays listed; the next attempt marks it ``killed/unfinished``.

The rest of ``summary.json`` is the record of the latest attempt, except:

* a completed record (best, tested, metrics, epochs, cost, ...) is kept when a later attempt
  does not complete (failed, interrupted, requeued, or still running);
* a completed attempt that trained no step (a rerun of a finished job: it resumed at
  ``max_epochs``) keeps the completed record's results, which came from the same weights;
* a completed attempt that trained again replaces the results, and the replaced ones are kept
  under ``replaced_results`` (nothing written is lost).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from imcompress.runs.summary import SUMMARY_FILE

ATTEMPT_KEYS = (
    "status",
    "error",
    "signal",
    "started",
    "wall_time_s",
    "resumed_from",
    "epochs",
    "steps_trained",
    "slurm",
)
# What a completed attempt measured (the rest of a record says how and where it ran).
RESULT_KEYS = ("best", "tested", "metrics", "epochs", "cost", "compression", "parameters")
UNFINISHED = "killed/unfinished"
UNFINISHED_NOTE = "ended without a record (kill -9, node failure or out of memory)"


def read_previous(output_dir: Path) -> dict[str, Any] | None:
    """The job folder's ``summary.json``, or None; an unreadable one is kept as ``summary.json.corrupt``."""
    path = output_dir / SUMMARY_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        if not isinstance(record, dict):
            raise ValueError("not a JSON object")
        return record
    except (OSError, ValueError) as error:
        kept = path.with_name(SUMMARY_FILE + ".corrupt")
        path.replace(kept)
        print(f"warning: {path} is unreadable ({error}); kept as {kept}", file=sys.stderr)
        return None


def attempt_of(record: Mapping[str, Any]) -> dict[str, Any]:
    """The ``attempts`` entry of one attempt's record."""
    return {key: record[key] for key in ATTEMPT_KEYS if key in record}


def earlier_attempts(previous: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The attempts listed in ``previous``; one still ``running`` there is marked
    ``killed/unfinished`` (the caller holds the run folder's lock, so its process is gone)."""
    if not previous:
        return []
    attempts = previous.get("attempts")
    if not isinstance(attempts, list):
        attempts = [attempt_of(previous)]
    marked = []
    for attempt in attempts:
        if isinstance(attempt, dict) and attempt.get("status") == "running":
            attempt = {**attempt, "status": UNFINISHED, "note": UNFINISHED_NOTE}
        marked.append(attempt)
    return marked


def merge_attempt(
    previous: Mapping[str, Any] | None, record: Mapping[str, Any]
) -> tuple[dict[str, Any], bool]:
    """The ``summary.json`` after (or, with status ``running``, during) this attempt, and
    whether an earlier completed record's results were kept (see the module docstring)."""
    attempts = [*earlier_attempts(previous), attempt_of(record)]
    replaced = list((previous or {}).get("replaced_results") or [])
    history = {"replaced_results": replaced} if replaced else {}
    if not previous or previous.get("status") != "completed":
        return {**record, **history, "attempts": attempts}, False
    if record.get("status") != "completed":
        return {**previous, "attempts": attempts}, True
    kept = {key: previous[key] for key in RESULT_KEYS if key in previous}
    if record.get("steps_trained") == 0:
        return {**record, **kept, **history, "attempts": attempts}, True
    return {**record, "replaced_results": [*replaced, kept], "attempts": attempts}, False
