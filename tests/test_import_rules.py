"""Import rules: compression and models import no training code; the crossbar core no torch.

Each case imports in a fresh interpreter and inspects ``sys.modules``, so a stray import
anywhere in the import graph (not only in the package's own files) fails the test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

TRAINING = (
    "lightning",
    "pytorch_lightning",
    "wandb",
    "hydra",
    "imcompress.jobs.train",
    "imcompress.training.module",
    "imcompress.training.loggers",
    "imcompress.training.callbacks",
    "imcompress.data",
)


def imported_after(code: str) -> list[str]:
    """Top-level and imcompress module names in ``sys.modules`` after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    env_path = f"{ROOT / 'src'}"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.splitlines()[-1])


def offending(modules: list[str], forbidden: tuple[str, ...]) -> list[str]:
    return [m for m in modules if any(m == f or m.startswith(f + ".") for f in forbidden)]


@pytest.mark.parametrize("package", ["imcompress.compression", "imcompress.models"])
def test_library_packages_import_no_training_code(package: str) -> None:
    modules = imported_after(f"import {package}")
    assert package in modules
    assert offending(modules, TRAINING) == []


def test_crossbar_core_imports_no_torch() -> None:
    modules = imported_after("import imcompress.crossbar")
    assert "imcompress.crossbar.mapping" in modules
    assert offending(modules, ("torch",)) == []


def test_estimate_script_imports_no_lightning() -> None:
    """What ``python src/estimate.py`` loads before and while it costs a model (not main)."""
    code = (
        "import runpy; runpy.run_path('src/estimate.py', run_name='probe'); "
        "import imcompress.crossbar.extract"
    )
    modules = imported_after(code)
    assert "imcompress.jobs.estimate" in modules and "imcompress.compression" in modules
    assert offending(modules, ("lightning", "pytorch_lightning", "wandb")) == []


# --- the layout of issue 18: each package imports what its role allows ----------------------

LIGHTNING_TRAINER = (
    "lightning",
    "pytorch_lightning",
    "wandb",
    "imcompress.jobs.train",
    "imcompress.training",
)


def package_modules(package: str) -> list[str]:
    """Every module of ``package`` (found on disk, so a new module is covered without edits)."""
    folder = ROOT / "src" / Path(*package.split("."))
    return sorted(
        ".".join((package, *p.relative_to(folder).with_suffix("").parts)).removesuffix(".__init__")
        for p in folder.rglob("*.py")
    )


@pytest.mark.parametrize("package", ["imcompress.planner", "imcompress.studies"])
def test_planner_and_studies_import_no_lightning_trainer_code(package: str) -> None:
    """The planner and the study drivers run training as subprocesses (src/train.py), never in
    process: importing every one of their modules loads no Lightning, W&B or training code."""
    modules = package_modules(package)
    assert len(modules) > 3
    loaded = imported_after("\n".join(f"import {m}" for m in modules))
    assert offending(loaded, LIGHTNING_TRAINER) == []


def test_reporting_and_run_records_import_no_torch_and_no_lightning() -> None:
    """Tables, labels and the run-folder records are readable without torch or Lightning (the
    figures module imports matplotlib only when a figure is drawn)."""
    modules = [*package_modules("imcompress.reporting"), "imcompress.runs.atomic",
               "imcompress.runs.record", "imcompress.runs.summary"]  # fmt: skip
    loaded = imported_after("\n".join(f"import {m}" for m in modules))
    assert "imcompress.reporting.figures" in loaded
    assert offending(loaded, ("torch", "lightning", "matplotlib", "imcompress.training")) == []


def test_run_folder_reader_imports_no_lightning() -> None:
    loaded = imported_after("import imcompress.runs.folder")
    assert offending(loaded, LIGHTNING_TRAINER) == []


def test_no_module_left_at_the_package_root_but_the_shared_base() -> None:
    """The root holds only what every package shares (config schemas, user errors) and the
    pre-move aliases; everything else lives in a package named by its role."""
    root = ROOT / "src" / "imcompress"
    assert sorted(p.name for p in root.glob("*.py")) == [
        "__init__.py",
        "config.py",
        "errors.py",
        "moved.py",
    ]
