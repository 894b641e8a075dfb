"""The launcher configs compose, and site values from conf/local/default.yaml reach the SLURM launcher."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from imcompress.config import register_configs
from imcompress.sweep.launcher import default_setup
from tests.conftest import CONF_DIR, ROOT


def launcher_of(conf_dir: Path, overrides: list[str]) -> dict:
    register_configs()
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        cfg = compose("train", overrides=["experiment=smoke", *overrides], return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        return OmegaConf.to_container(cfg.hydra.launcher, resolve=True)  # type: ignore[return-value]


def test_slurm_launcher_defaults_allow_requeue() -> None:
    launcher = launcher_of(CONF_DIR, ["hydra/launcher=slurm"])
    assert launcher["_target_"] == "hydra_plugins.imcompress_sweep.SlurmLauncher"
    assert launcher["max_num_timeout"] >= 1  # requeue after a time-out is allowed
    assert launcher["signal_delay_s"] > 0
    assert launcher["cpus_per_task"] == 1 and launcher["timeout_min"] == 60
    assert launcher["resume"] is True  # a rerun into the sweep folder submits only unfinished jobs
    assert launcher["partition"] is None and launcher["setup"] is None
    assert launcher["submitit_folder"].endswith("/.submitit/%j")
    assert launcher["submitit_folder"].startswith("outputs/smoke/multiruns/")


def test_site_values_come_from_conf_local(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    shutil.copytree(CONF_DIR, conf, ignore=shutil.ignore_patterns("local"))
    (conf / "local").mkdir()
    shutil.copy(ROOT / "conf" / "local.example.yaml", conf / "local" / "default.yaml")
    launcher = launcher_of(conf, ["hydra/launcher=slurm", "hydra.launcher.timeout_min=30"])
    assert launcher["partition"] == "gpu" and launcher["account"] == "my-project"
    assert (launcher["cpus_per_task"], launcher["gpus_per_node"], launcher["mem_gb"]) == (8, 1, 32)
    assert launcher["timeout_min"] == 30  # the command line still wins
    assert launcher["setup"][0] == "module load python/3.11"
    # The other launchers ignore the site's SLURM block.
    assert launcher_of(conf, [])["_target_"] == "hydra_plugins.imcompress_sweep.LocalLauncher"
    assert launcher_of(conf, ["hydra/launcher=submitit_local"])["_target_"].endswith(
        "LocalLauncher"
    )


@pytest.mark.skipif(sys.prefix == sys.base_prefix, reason="the tests do not run in a virtualenv")
def test_default_setup_activates_the_virtualenv() -> None:
    assert default_setup() == [f"source {sys.prefix}/bin/activate", "export PYTHONUNBUFFERED=1"]
