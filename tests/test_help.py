"""``--help`` lists the config groups a script uses (not the schemas base_*) and explains every key
of the script's own config: default, meaning, valid values; no config dump."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from enum import StrEnum

import pytest

from imcompress.cli.help_page import attribute_docs, yaml_comments
from tests.conftest import CONF_DIR, ROOT

SCHEMAS = ("base_hw", "base_lowrank", "base_none", "base_prune_pattern")
TRAINING_ONLY = ("trainer:", "logger:", "callbacks:", "debug:")
GROUPS_HEADER = "== Config groups (group=option) =="
KEYS_HEADER = "== Keys (key=value; shown with the default) =="


def help_page(script: str) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "src" / script), "--help"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def section(page: str, header: str) -> str:
    return page.split(header)[1].split("\n== ")[0].split("\n\n")[0]


def key_lines(page: str) -> dict[str, str]:
    """``key -> default and explanation`` (continuation lines joined) of the keys section."""
    keys: dict[str, str] = {}
    last = ""
    for line in section(page, KEYS_HEADER).splitlines():
        if line.startswith("  ") and not line.startswith("   "):
            last, _, rest = line.strip().partition("=")
            keys[last.rstrip(":")] = rest
        elif line.strip():
            keys[last.rstrip(":")] += " " + line.strip()
    return keys


@pytest.mark.parametrize("script", ["train.py", "estimate.py"])
def test_help_lists_groups_without_schemas(script: str) -> None:
    groups = section(help_page(script), GROUPS_HEADER)
    assert not [name for name in SCHEMAS if name in groups]
    assert "compression: glr, lr, none, " in groups
    options = dict(line.split(": ", 1) for line in groups.splitlines() if ": " in line)
    assert "imc128" in options["hw"].split(", ") and "resnet20" in options["model"].split(", ")
    assert "experiment: finetune, quickstart, smoke, paper/" in groups  # sub-folders included
    listed_training = [group for group in TRAINING_ONLY if f"\n{group}" in f"\n{groups}"]
    assert listed_training == ([] if script == "estimate.py" else list(TRAINING_ONLY))


def test_train_help_explains_its_keys_without_a_config_dump() -> None:
    page = help_page("train.py")
    keys = key_lines(page)
    assert keys["seed"].startswith("42") and "seeds python" in keys["seed"]
    assert "input-channel groups" in keys["group"] and "auto" in keys["pretrained"]
    assert keys["scheduler.T_max"].startswith("${trainer.max_epochs}")  # unresolved default
    assert not [key for key in keys if key.startswith(("model.", "trainer.", "compression."))]
    assert len(page.splitlines()) < 120  # the resolved config alone is ~230 lines


def test_plan_help_lists_budget_metrics_and_explains_options() -> None:
    keys = key_lines(help_page("plan.py"))
    for metric in ("cycles", "latency_us", "energy_uj", "arrays", "params"):
        assert metric in keys["plan.budget.metric"]
    for mapping in ("sdk", "vwsdk", "im2col"):
        assert mapping in keys["plan.mapping"]
    assert "uniform" in keys["plan.sensitivity"] and "params" in keys["plan.sensitivity"]
    assert "knapsack" in keys["plan.bins"] and "predicted" in keys["plan.verify"]


def test_evaluate_help_lists_the_analog_keys() -> None:
    keys = key_lines(help_page("evaluate.py"))
    assert "run folder" in keys["ckpt"]
    assert "fresh noise" in keys["analog.repeats"] and "test images" in keys["analog.test_samples"]


Colour = StrEnum("Colour", ["red", "green"])


@dataclass
class Documented:
    colour: Colour = Colour["red"]
    """the colour of the thing"""
    size: int = 3  # in millimetres
    plain: int = 0


def test_schema_docs_come_from_docstrings_or_comments() -> None:
    assert attribute_docs(Documented) == {
        "colour": "the colour of the thing",
        "size": "in millimetres",
    }


def test_yaml_comments_are_read_per_dotted_key() -> None:
    docs = yaml_comments(CONF_DIR / "plan.yaml")
    assert "cycles" in docs["plan.budget.metric"] and "defaults" not in docs
    assert not [key for key in docs if key.startswith(("defaults", "hydra"))]


def test_valid_values_come_from_the_schema_type() -> None:
    from omegaconf import OmegaConf

    from imcompress.cli.help_page import _format_line, _schema_field

    doc, valid = _schema_field(OmegaConf.structured(Documented), "colour")
    assert (doc, valid) == ("the colour of the thing", ["red", "green"])
    line = _format_line("thing.colour", "red", doc, valid)
    assert line.startswith("  thing.colour=red") and line.endswith("(valid: red | green)")
