"""evaluate.py on a run folder that was moved, and on a copy without its checkpoints (item 13)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.conftest import read_summary, run_script

TINY = ("analog=ideal", "analog.test_samples=32", "analog.input_range.batches=1")


def test_moved_folder_evaluates_and_a_copy_without_checkpoints_is_refused(tmp_path: Path) -> None:
    trained = tmp_path / "lab" / "run"
    done = run_script(
        "train.py", "experiment=smoke", "logger=none", f"hydra.run.dir={trained}", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    moved = tmp_path / "archive" / "run"
    moved.parent.mkdir()
    trained.rename(moved)  # the recorded absolute paths now point nowhere

    result = run_script(
        "evaluate.py", f"ckpt={moved}", *TINY, f"hydra.run.dir={tmp_path / 'e1'}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    evaluated = json.loads((tmp_path / "e1" / "summary.json").read_text())
    assert Path(evaluated["checkpoint"]).parent == moved / "checkpoints"
    assert evaluated["status"] == "completed" and read_summary(moved)["status"] == "completed"

    copy = tmp_path / "copy"
    shutil.copytree(moved, copy, ignore=shutil.ignore_patterns("checkpoints"))
    trained.parent.mkdir(exist_ok=True)
    shutil.copytree(moved, trained)  # the original place holds the checkpoints again
    result = run_script(
        "evaluate.py", f"ckpt={copy}", *TINY, f"hydra.run.dir={tmp_path / 'e2'}", cwd=tmp_path
    )
    assert result.returncode == 1
    assert f"{copy}: the tested checkpoint checkpoints/" in result.stderr
    assert "never read from another folder" in result.stderr
