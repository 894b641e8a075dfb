"""``summary.json`` across attempts: a later failed attempt never replaces a completed record.

Every attempt of a job (first run, resumes, SLURM restarts) appends one entry to the
``attempts`` list (status, error, start time, wall time, the checkpoint it resumed from, epochs).
The rest of ``summary.json`` is the record of the latest attempt, except that a completed
record (best, metrics, epochs, cost, ...) is kept when a later attempt does not complete.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from imcompress.summary import SUMMARY_FILE

ATTEMPT_KEYS = (
    "status",
    "error",
    "signal",
    "started",
    "wall_time_s",
    "resumed_from",
    "epochs",
    "slurm",
)


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


def merge_attempt(
    previous: Mapping[str, Any] | None, record: Mapping[str, Any]
) -> tuple[dict[str, Any], bool]:
    """The ``summary.json`` after this attempt, and whether an earlier completed record was kept."""
    attempts: list[Any] = []
    if previous:
        attempts = list(previous.get("attempts") or [attempt_of(previous)])
    attempts.append(attempt_of(record))
    if previous and previous.get("status") == "completed" and record.get("status") != "completed":
        return {**previous, "attempts": attempts}, True
    return {**record, "attempts": attempts}, False
