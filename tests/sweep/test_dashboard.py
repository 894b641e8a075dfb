"""The W&B workspace spec, built and inspected offline (no network, no API key)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from imcompress.sweep.dashboard import (
    MissingApiKeyError,
    build_workspace,
    has_api_key,
    panels_by_section,
    save_workspace,
    workspace_spec,
)
from tests.conftest import ROOT


@pytest.fixture
def no_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))


def test_workspace_spec_has_the_comparison_panels() -> None:
    spec = workspace_spec(build_workspace("me", "imcompress", group="smoke-2026-01-01_00-00-00"))
    assert (spec["entity"], spec["project"]) == ("me", "imcompress")
    sections = panels_by_section(spec)
    curves = sections["Training curves by compression method"]
    assert [p["config"]["metrics"] for p in curves] == [["val/acc"], ["val/loss"], ["train/loss"]]
    assert {p["viewType"] for p in curves} == {"Run History Line Plot"}
    assert {p["config"]["groupBy"] for p in curves} == {"compression.value.method"}
    scatters = sections["Accuracy vs crossbar cost"]
    assert {p["viewType"] for p in scatters} == {"Scatter Plot"}
    assert {p["config"]["yAxis"] for p in scatters} == {"summary:test/acc"}
    assert [p["config"]["xAxis"] for p in scatters] == [
        f"summary:hw/{mapping}/{quantity}"
        for quantity in ("speedup_vs_dense", "speedup", "energy_uj")
        for mapping in ("im2col", "sdk", "vwsdk")
    ]
    (by_group,) = sections["Accuracy vs group"]
    assert (by_group["config"]["xAxis"], by_group["config"]["yAxis"]) == (
        "config:group.value",
        "summary:test/acc",
    )
    (parallel,) = sections["Sweep axes"]
    assert parallel["viewType"] == "Parallel Coordinates Plot"
    assert [c["accessor"] for c in parallel["config"]["columns"]] == [
        "config:compression.value.method", "config:group.value", "config:rank.value",
        "config:sparsity.value", "config:hw.value.name", "summary:test/acc",
    ]  # fmt: skip
    (runset,) = spec["spec"]["section"]["runSets"]
    assert runset["filters"]["filters"] == [
        {
            "key": {"section": "run", "name": "group"},
            "op": "=",
            "value": "smoke-2026-01-01_00-00-00",
            "disabled": False,
        }
    ]


def test_runs_are_grouped_and_coloured_by_method_and_a_whole_study_is_shown() -> None:
    spec = workspace_spec(build_workspace("me", "p", max_runs=250))["spec"]["section"]
    (runset,) = spec["runSets"]
    assert runset["grouping"] == [{"section": "config", "name": "compression.value.method"}]
    colours = {
        re.search(r"%22value%22%3A%22([a-z_]+)%22", key)[1]: colour
        for key, colour in spec["customRunColors"].items()
    }
    assert set(colours) >= {"none", "lr", "glr", "prune_channel", "prune_pattern"}
    assert len(set(colours.values())) == len(colours)  # one colour per method
    assert spec["settings"]["maxRuns"] == 250
    assert (
        workspace_spec(build_workspace("me", "p"))["spec"]["section"]["settings"]["maxRuns"] >= 100
    )


def test_mappings_and_accuracy_are_parameters() -> None:
    spec = workspace_spec(build_workspace("me", "p", accuracy="val/acc_best", mappings=["vwsdk"]))
    scatters = panels_by_section(spec)["Accuracy vs crossbar cost"]
    assert [(p["config"]["xAxis"], p["config"]["yAxis"]) for p in scatters] == [
        ("summary:hw/vwsdk/speedup_vs_dense", "summary:val/acc_best"),
        ("summary:hw/vwsdk/speedup", "summary:val/acc_best"),
        ("summary:hw/vwsdk/energy_uj", "summary:val/acc_best"),
    ]
    assert spec["spec"]["section"]["runSets"][0]["filters"]["filters"] == []


def test_saving_without_an_api_key_says_so(no_key: None) -> None:
    assert not has_api_key()
    with pytest.raises(MissingApiKeyError, match="WANDB_API_KEY or run `wandb login`"):
        save_workspace(build_workspace("me", "p"))


def test_has_api_key_reads_env_and_netrc(tmp_path: Path) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine api.wandb.ai\n  login user\n  password abc\n")
    assert has_api_key({"WANDB_API_KEY": "k"})
    assert has_api_key({"NETRC": str(netrc)})
    assert not has_api_key({"NETRC": str(tmp_path / "none")})


def test_dashboard_script(no_key: None, tmp_path: Path) -> None:
    script = [
        sys.executable,
        str(ROOT / "src" / "dashboard.py"),
        "--entity",
        "me",
        "--project",
        "p",
    ]
    spec_file = tmp_path / "workspace.json"
    dry = subprocess.run(
        [*script, "--dry-run", "--spec-out", str(spec_file)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert dry.returncode == 0, dry.stderr
    assert "Accuracy vs crossbar cost: 9 panels" in dry.stdout
    assert json.loads(spec_file.read_text())["project"] == "p"
    refused = subprocess.run(script, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 1
    assert "needs an API key" in refused.stderr and "Nothing was sent" in refused.stderr
