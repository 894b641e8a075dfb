"""Import rules: compression and models import no training code; the crossbar core no torch.

Each case imports in a fresh interpreter and inspects ``sys.modules``, so a stray import
anywhere in the import graph (not only in the package's own files) fails the test.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

TRAINING = (
    "lightning",
    "pytorch_lightning",
    "wandb",
    "hydra",
    "imcompress.pipeline",
    "imcompress.module",
    "imcompress.loggers",
    "imcompress.callbacks",
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
    assert "imcompress.estimate_job" in modules and "imcompress.compression" in modules
    assert offending(modules, ("lightning", "pytorch_lightning", "wandb")) == []
