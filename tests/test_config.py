"""Every config group composes; bad values fail at compose time with the valid choices."""

from __future__ import annotations

from typing import Any

import pytest
from hydra.errors import ConfigCompositionException, MissingConfigException

from tests.conftest import CONF_DIR

GROUPS = [
    "model",
    "data",
    "compression",
    "hw",
    "trainer",
    "logger",
    "callbacks",
    "experiment",
    "debug",
]


def options(group: str) -> list[str]:
    folder = CONF_DIR / group
    return sorted(str(path.relative_to(folder).with_suffix("")) for path in folder.rglob("*.yaml"))


@pytest.mark.parametrize("group", GROUPS)
def test_every_option_of_every_group_composes(compose: Any, group: str) -> None:
    choices = options(group)
    assert choices, f"conf/{group} is empty"
    for choice in choices:
        cfg = compose([f"{group}={choice}"])
        assert cfg.hydra.runtime.choices[group] == choice
        assert "trainer" in cfg and "model" in cfg


def test_launchers_compose(compose: Any) -> None:
    for launcher in sorted(p.stem for p in (CONF_DIR / "hydra" / "launcher").glob("*.yaml")):
        cfg = compose([f"hydra/launcher={launcher}"])
        assert "_target_" in cfg.hydra.launcher


def test_top_level_sweep_keys_reach_the_compression_config(compose: Any) -> None:
    cfg = compose(["compression=glr", "group=4", "rank=8"])
    from omegaconf import OmegaConf

    resolved = OmegaConf.to_container(cfg.compression, resolve=True)
    assert isinstance(resolved, dict)
    assert 4 in resolved.values() and 8 in resolved.values()


def test_unknown_group_option_lists_the_valid_ones(compose: Any) -> None:
    with pytest.raises(MissingConfigException) as error:
        compose(["data=imagenet"])
    assert "data/imagenet" in str(error.value)
    assert "cifar10" in str(error.value.options or []) or "Available options" in str(error.value)


@pytest.mark.parametrize("overrides", [["hw.rowz=128"], ["compression=glr", "compression.grups=2"]])
def test_typos_in_schema_validated_groups_fail_at_compose(
    compose: Any, overrides: list[str]
) -> None:
    with pytest.raises(ConfigCompositionException):
        compose(overrides)


def test_experiment_configs_set_their_name(compose: Any) -> None:
    for experiment in options("experiment"):
        cfg = compose([f"experiment={experiment}"])
        assert cfg.name != "default", f"experiment {experiment} does not set name"


def test_train_config_documents_every_top_level_key() -> None:
    text = (CONF_DIR / "train.yaml").read_text()
    for line in text.splitlines():
        if line and not line.startswith((" ", "#", "defaults")) and ":" in line:
            assert "#" in line or line.rstrip().endswith(":"), f"undocumented key: {line}"
