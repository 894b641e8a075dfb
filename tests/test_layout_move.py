"""Issue 18, item 6: the package layout moved the root modules; run folders written before the
move stay loadable (tests/fixtures/run_before_layout_move/, written by commit c7cbccc, see its
ORIGIN.md), and a dense stage trained before the move keeps its folder name."""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from hydra.utils import get_object
from omegaconf import OmegaConf

from imcompress.compression.lowrank import LowRankConv2d
from imcompress.moved import MOVED_MODULES, current_name, former_name
from imcompress.runs.folder import RunFolder
from imcompress.training import dense_stage

FIXTURE = Path(__file__).parent / "fixtures" / "run_before_layout_move"


def targets(node: Any) -> list[str]:
    """Every ``_target_`` string in a plain YAML tree."""
    if isinstance(node, dict):
        found = [v for k, v in node.items() if k == "_target_" and isinstance(v, str)]
        return found + [t for v in node.values() for t in targets(v)]
    if isinstance(node, list):
        return [t for v in node for t in targets(v)]
    return []


@pytest.fixture
def premove_run(tmp_path: Path) -> Path:
    """A copy of the pre-move folder (readers may write next to it)."""
    return Path(shutil.copytree(FIXTURE, tmp_path / "premove"))


@pytest.mark.parametrize("old", sorted(MOVED_MODULES))
def test_every_pre_move_module_is_the_moved_module(old: str) -> None:
    before = importlib.import_module(f"imcompress.{old}")
    after = importlib.import_module(f"imcompress.{MOVED_MODULES[old]}")
    assert before is after
    assert current_name(f"imcompress.{old}") == after.__name__
    assert former_name(after.__name__) == f"imcompress.{old}"


def test_the_fixture_names_pre_move_paths_and_each_resolves_to_the_moved_object() -> None:
    names = []
    for file in (".hydra/config.yaml", ".hydra/hydra.yaml"):
        names += targets(yaml.safe_load((FIXTURE / file).read_text()))
    moved = [name for name in names if current_name(name) != name]
    assert {"imcompress.loggers.ResumableCSVLogger", "imcompress.runlock.RunFolderLockCallback",
            "imcompress.module.CosineAnnealingPerStep",
            "imcompress.callbacks.crossbar.CrossbarCostCallback"} <= set(moved)  # fmt: skip
    for name in names:
        assert get_object(name) is get_object(current_name(name)), name


def test_a_pre_move_run_folder_rebuilds_its_compressed_model_with_its_weights(
    premove_run: Path,
) -> None:
    run = RunFolder(premove_run)
    assert run.status() == "completed" and run.experiment() is None
    assert OmegaConf.select(run.config(), "scheduler._target_") == (
        "imcompress.module.CosineAnnealingPerStep"
    )
    checkpoint = run.checkpoint("tested")
    assert checkpoint.parent == premove_run / "checkpoints"  # inside the moved copy
    model = run.rebuild_model(channels=1, num_classes=10)
    layers = [m for m in model.modules() if isinstance(m, LowRankConv2d)]
    assert layers, "the GLR layers of the saved compression state were not rebuilt"
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    for name, value in model.state_dict().items():
        assert torch.equal(value, saved[f"model.{name}"]), name


def test_a_dense_stage_named_before_the_move_keeps_its_folder(tmp_path: Path) -> None:
    """The recipe hash names targets by their pre-move paths: the same recipe written with the
    old and the new path of a moved scheduler gives one folder."""

    def config(scheduler: str) -> Any:
        return OmegaConf.create({
            "seed": 1, "model": {"name": "resnet20", "_target_": "imcompress.models.CifarResNet"},
            "data": {"name": "digits"}, "trainer": {"max_epochs": 1}, "optimizer": {"lr": 0.1},
            "scheduler": {"_target_": scheduler, "_partial_": True},
            "dense": {"dir": str(tmp_path)},
        })  # fmt: skip

    old = config("imcompress.module.CosineAnnealingPerStep")
    new = config("imcompress.training.module.CosineAnnealingPerStep")
    assert dense_stage.stage_folder(old, old) == dense_stage.stage_folder(new, new)
    other = config("torch.optim.lr_scheduler.CosineAnnealingLR")
    assert dense_stage.stage_folder(other, other) != dense_stage.stage_folder(new, new)


def test_python_m_with_a_pre_move_name_runs_the_moved_module() -> None:
    """``python -m imcompress.frontier`` (the old command in notes and scripts) still works."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    result = subprocess.run([sys.executable, "-m", "imcompress.frontier", "--help"],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)  # fmt: skip
    assert result.returncode == 0, result.stderr[-1500:]
    assert "usage: python -m imcompress.studies.frontier" in result.stdout
