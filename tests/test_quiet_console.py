"""A quiet console: known-harmless import lines dropped at the import (nothing else), no W&B
run history after the final table, a start table without the knobs the method does not read."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CONF_DIR

IMPORT = "import aihwkit_lightning.nn"
TRITON_LINE = "Could not import triton_utils"


def run_python(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_triton_fallback_line_is_dropped_and_other_prints_kept() -> None:
    if TRITON_LINE not in run_python(IMPORT):
        pytest.skip("this aihwkit-lightning prints no triton fallback line here (GPU with triton)")
    quiet = run_python(
        "from imcompress.cli.warnings_filter import install_warning_filters\n"
        "install_warning_filters(); install_warning_filters()\n"
        f"{IMPORT}\nprint('after import')"
    )
    assert TRITON_LINE not in quiet and "after import" in quiet


WANDB_RUN = """
import sys
from pathlib import Path
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict
from imcompress.config import register_configs
from imcompress.training.loggers import wandb_logger
import wandb

register_configs()
with initialize_config_dir(config_dir=sys.argv[1], version_base="1.3"):
    cfg = compose("train", overrides=["experiment=smoke"], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
logger = wandb_logger(cfg, Path(sys.argv[2]), mode="offline")
for step in range(3):
    logger.experiment.log({"val/acc": 0.1 * step})
logger.experiment.summary["test/acc"] = 0.5
wandb.finish()
print("finished")
"""


def test_wandb_prints_no_run_history_after_the_final_table(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "WANDB_SILENT"}  # as a user runs it
    result = subprocess.run(
        [sys.executable, "-c", WANDB_RUN, str(CONF_DIR), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    console = result.stdout + result.stderr
    assert "finished" in console and list(tmp_path.glob("wandb/offline-run-*"))
    for line in ("Run history:", "Run summary:", "val/acc ▁"):
        assert line not in console, console


def test_start_table_shows_only_the_knobs_the_method_reads() -> None:
    from rich.console import Console

    from imcompress.runs.summary import print_banner

    def shown(method: str) -> set[str]:
        out = io.StringIO()
        essentials = {"compression": method, "group": 2, "rank": 0.25, "sparsity": 0.5}
        print_banner(Console(file=out, width=120), essentials, {})
        return {line.split("│")[1].strip() for line in out.getvalue().splitlines() if "│" in line}

    assert shown("none") == {"compression"}
    assert shown("glr") == {"compression", "group", "rank"}
    assert shown("lr") == {"compression", "rank"}
    assert shown("prune_pattern") == {"compression", "sparsity"}
