"""Reading a run folder never runs code from it (issue 16 item 4), at every entry point.

Each crafted folder's ``.hydra/config.yaml`` (or ``overrides.yaml``) carries a payload that
creates a marker file when it is instantiated or loaded; the first test shows the payloads are
live. Every entry point that rebuilds a job from a saved config must refuse the folder naming
the key, and the marker must not exist afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import hydra
import pytest
import torch
import yaml

from imcompress.analog import study as analog_study
from imcompress.jobs.evaluate import find_run
from imcompress.runs.folder import RefusedTargetError, RunFolder
from imcompress.studies import frontier
from imcompress.studies import results_table as study
from imcompress.sweep.resume import SweepFolderMismatchError, plan_job
from tests.conftest import ROOT

MODEL = {"_target_": "imcompress.models.CifarResNet", "depth": 8, "name": "resnet8"}
COMPLETED = {"status": "completed", "metrics": {"test/acc": 0.5}, "config": {"compression": "none"}}


class _WritesMarker:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


class Harmless(torch.nn.Module):
    """A model class of a package the user trusts explicitly."""


def payloads(tmp_path: Path, marker: Path) -> dict[str, dict[str, Any]]:
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps(_WritesMarker(marker)))
    return {
        "os.system": {"_target_": "os.system", "command": f"touch {marker}"},
        "torch.load": {"_target_": "torch.load", "f": str(evil), "weights_only": False},
        # an allowed package's name used as a path to a module it imports
        "imcompress.runs.atomic.os.system": {
            "_target_": "imcompress.runs.atomic.os.system",
            "command": f"touch {marker}",
        },
        # a function of the project itself: it would write any file named in the config
        "imcompress.runs.atomic.write_text": {
            "_target_": "imcompress.runs.atomic.write_text",
            "path": str(marker),
            "text": "written by a config",
        },
    }


def crafted_run(folder: Path, data: dict[str, Any], summary: dict[str, Any] = COMPLETED) -> Path:
    (folder / ".hydra").mkdir(parents=True)
    config = {"model": MODEL, "data": data, "compression": {"method": "none"}}
    (folder / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    (folder / ".hydra" / "overrides.yaml").write_text("- seed=1\n")
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


NAMES = [
    "os.system",
    "torch.load",
    "imcompress.runs.atomic.os.system",
    "imcompress.runs.atomic.write_text",
]


@pytest.mark.parametrize("name", ["torch.load", "imcompress.runs.atomic.write_text"])
def test_the_payloads_are_live(tmp_path: Path, name: str) -> None:
    """Hydra's instantiate blocks os.system (also by an alias path), not these two."""
    marker = tmp_path / "ran"
    # torch.load fails after the payload ran (the pickle's value is os.system's exit status)
    with contextlib.suppress(Exception):
        hydra.utils.instantiate(payloads(tmp_path, marker)[name])
    assert marker.exists()


@pytest.mark.parametrize("name", NAMES)
def test_evaluate_refuses_a_crafted_folder(tmp_path: Path, name: str) -> None:
    marker = tmp_path / "ran"
    run = crafted_run(tmp_path / "run", payloads(tmp_path, marker)[name])
    with pytest.raises(RefusedTargetError) as raised:
        find_run(run)
    message = str(raised.value)
    assert message.startswith(f"refused: data._target_={name} in {run / '.hydra' / 'config.yaml'}")
    assert "allowed: imcompress.*" in message
    assert not marker.exists()


def test_nested_targets_and_trusted_packages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "ran"
    folder = crafted_run(tmp_path / "run", {"_target_": "imcompress.data.ImageDataModule"})
    config = yaml.safe_load((folder / ".hydra" / "config.yaml").read_text())
    config["model"]["widths"] = [{"_target_": "os.system", "command": f"touch {marker}"}]
    (folder / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(
        RefusedTargetError, match=r"refused: model\.widths\[0\]\._target_=os\.system"
    ):
        RunFolder(folder).config()
    config["model"] = {"_target_": f"{__name__}.Harmless"}
    (folder / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(RefusedTargetError, match="is not an allowed class"):
        RunFolder(folder).config()
    monkeypatch.setenv("IMCOMPRESS_TRUSTED_TARGETS", "tests")
    assert RunFolder(folder).config().model._target_ == f"{__name__}.Harmless"
    assert not marker.exists()


def test_evaluate_script_prints_the_refusal_in_one_line(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    run = crafted_run(tmp_path / "run", payloads(tmp_path, marker)["torch.load"])
    result = subprocess.run(
        [sys.executable, str(ROOT / "src" / "evaluate.py"), f"ckpt={run}", "analog=ideal",
         f"hydra.run.dir={tmp_path / 'eval'}"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert f"error: refused: data._target_=torch.load in {run}/.hydra/config.yaml" in result.stderr
    assert not marker.exists()


def test_frontier_refuses_crafted_jobs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "ran"
    crafted = payloads(tmp_path, marker)["os.system"]
    job = crafted_run(tmp_path / "finetune" / "lr_k0.12_s1", crafted)
    with pytest.raises(RefusedTargetError, match=r"refused: data\._target_=os\.system"):
        frontier.CostCache(tmp_path).costs(job)
    crafted_run(tmp_path / "dense", crafted)
    assert frontier.main([str(tmp_path)]) == 2
    assert "refused: data._target_=os.system" in capsys.readouterr().err
    assert not marker.exists()


def test_analog_study_skips_crafted_jobs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "ran"
    crafted_run(tmp_path / "finetune" / "lr_k0.12_s1", payloads(tmp_path, marker)["torch.load"])
    assert analog_study.run_study(tmp_path, ["ideal"], []) == []
    err = capsys.readouterr().err
    assert err.startswith("skipped 1 run folder: refused: data._target_=torch.load")
    assert not marker.exists()


def test_study_table_reads_no_config(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    crafted_run(tmp_path / "finetune" / "0", payloads(tmp_path, marker)["os.system"])
    assert [row.accuracies for row in study.collect(tmp_path)] == [[0.5]]
    assert not marker.exists()


def test_sweep_resume_reads_no_code(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    job = crafted_run(tmp_path / "0", payloads(tmp_path, marker)["os.system"], {"status": "failed"})
    assert plan_job(0, ["seed=1"], job).action == "fresh"  # the saved config is not instantiated
    python_tag = f'- !!python/object/apply:os.system ["touch {marker}"]\n'
    yaml.unsafe_load(python_tag.replace(str(marker), str(tmp_path / "live")))  # the tag is live
    assert (tmp_path / "live").exists()
    (job / ".hydra" / "overrides.yaml").write_text(python_tag)
    with pytest.raises(SweepFolderMismatchError, match=r"overrides\.yaml: is not valid YAML"):
        plan_job(0, ["seed=1"], job)
    (job / ".hydra" / "config.yaml").write_text(python_tag)
    with pytest.raises(ValueError, match=r"config\.yaml: is not a valid config"):
        RunFolder(job).config()
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["pickle", "torch.save", "text"])
def test_ckpt_that_is_no_checkpoint_is_named_so_without_unsafe_advice(
    tmp_path: Path, kind: str
) -> None:
    marker = tmp_path / "ran"
    run = crafted_run(tmp_path / "run", {"_target_": "imcompress.data.ImageDataModule"})
    (run / "checkpoints").mkdir()
    ckpt = run / "checkpoints" / "last.ckpt"
    if kind == "pickle":
        ckpt.write_bytes(pickle.dumps({"state_dict": _WritesMarker(marker)}))
    elif kind == "torch.save":
        torch.save({"state_dict": {}, "hook": _WritesMarker(marker)}, ckpt)
    else:
        ckpt.write_text("model: resnet20\nepochs: 30\n")
    with pytest.raises(ValueError) as raised:
        find_run(ckpt).folder.rebuild_model(1, 10, ckpt)
    message = str(raised.value)
    expected = "is not a checkpoint" if kind == "text" else "refused: it would run code"
    assert message.startswith(f"ckpt={ckpt} {expected}")
    assert "weights_only" not in message and "add_safe_globals" not in message
    assert not marker.exists()
