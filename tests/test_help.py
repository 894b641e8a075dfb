"""``--help`` lists the config groups a script uses, without the structured schemas (base_*)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

SCHEMAS = ("base_hw", "base_lowrank", "base_none", "base_prune_pattern")
TRAINING_ONLY = ("trainer:", "logger:", "callbacks:", "debug:")


def help_groups(script: str) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "src" / script), "--help"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.split("== Configuration groups ==")[1].split("== Config ==")[0]


@pytest.mark.parametrize("script", ["train.py", "estimate.py"])
def test_help_lists_groups_without_schemas(script: str) -> None:
    groups = help_groups(script)
    assert not [name for name in SCHEMAS if name in groups]
    assert "compression: glr, lr, none, prune_channel" in groups
    options = dict(line.split(": ", 1) for line in groups.splitlines() if ": " in line)
    assert "imc128" in options["hw"].split(", ") and "resnet20" in options["model"].split(", ")
    assert "experiment: finetune, quickstart, smoke, paper/" in groups  # sub-folders included
    listed_training = [group for group in TRAINING_ONLY if f"\n{group}" in f"\n{groups}"]
    assert listed_training == ([] if script == "estimate.py" else list(TRAINING_ONLY))
