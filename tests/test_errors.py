"""User errors print one line naming key, value and choices; HYDRA_FULL_ERROR=1 shows the traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from imcompress.errors import LayerProblem, group_problems, is_user_error
from tests.conftest import ROOT


def run_plain(script: str, *args: str, cwd: Path, full_error: bool = False) -> tuple[int, str]:
    """Run ``src/<script>`` as a user would (no HYDRA_FULL_ERROR unless asked); rc, stderr."""
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    if full_error:
        env["HYDRA_FULL_ERROR"] = "1"
    result = subprocess.run(
        [sys.executable, str(ROOT / "src" / script), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return result.returncode, result.stderr


def error_lines(stderr: str) -> list[str]:
    """The lines a user sees for the error (library warnings on import left out)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    return [line for line in lines if not line.lstrip().startswith(("warnings.warn", "/"))]


# (script, overrides, substrings of the one error line): one case per class of user error.
CASES = [
    pytest.param(
        "estimate.py",
        ["format=xls"],
        ["format='xls'", "console", "latex", "csv"],
        id="bad-value",
    ),
    pytest.param(
        "estimate.py", ["grop=2"], ["no key 'grop'", "did you mean group?"], id="unknown-key"
    ),
    pytest.param(
        "plan.py",
        ["plan.options={prune_pattern:{pattern_dim:kernel}}"],
        ["plan.options: the given value names 'prune_pattern'", "+plan.options.prune_pattern="],
        id="new-key-inside-a-mapping",
    ),
    pytest.param(
        "estimate.py",
        ["hw=imc7"],
        ["hw=imc7 is not an option", "imc64", "imc512"],
        id="unknown-group-option",
    ),
    pytest.param(
        "estimate.py",
        ["compression=glr", "group=3"],
        [
            "groups=3 does not divide the input channels for 16 layers: layer1.0.conv1, ",
            "layer3.2.conv2 (valid: 1, 2, 4, 8, 16)",
        ],
        id="layers-that-cannot-be-compressed",
    ),
    pytest.param(
        "estimate.py",
        ["compression=glr", "group=abc"],
        ["compression.groups", "'abc'", "Integer"],
        id="wrong-type",
    ),
    pytest.param(
        "evaluate.py",
        ["ckpt=/nonexistent/last.ckpt"],
        ["ckpt='/nonexistent/last.ckpt'", "no such checkpoint file or run folder"],
        id="missing-file",
    ),
    pytest.param(
        "plan.py",
        ["plan.budget.metric=cycles", "plan.budget.value=10", "plan.budget.ratio=null"],
        ["plan.budget", "cycles=10 cannot be reached", "valid: plan.budget.value >="],
        id="unreachable-budget",
    ),
]


@pytest.mark.parametrize(("script", "overrides", "expected"), CASES)
def test_user_error_is_one_line(
    script: str, overrides: list[str], expected: list[str], tmp_path: Path
) -> None:
    rc, stderr = run_plain(script, *overrides, cwd=tmp_path)
    assert rc == 1, stderr[-3000:]
    lines = error_lines(stderr)
    assert "Traceback" not in stderr
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    # at most Hydra's "Error executing job with overrides: [...]" besides the error itself
    assert len(lines) <= 2, stderr
    for text in expected:
        assert text in errors[0], errors[0]


def test_full_error_shows_the_traceback(tmp_path: Path) -> None:
    rc, stderr = run_plain(
        "estimate.py", "compression=glr", "group=3", cwd=tmp_path, full_error=True
    )
    assert rc == 1
    assert "Traceback (most recent call last)" in stderr
    assert "raise_problems" in stderr and "ConfigError" in stderr


def test_report_missing_folder_is_one_line(tmp_path: Path) -> None:
    rc, stderr = run_plain("report.py", str(tmp_path / "nope"), cwd=tmp_path)
    assert rc == 2
    assert len(error_lines(stderr)) == 1 and "nope" in stderr and "Traceback" not in stderr


def test_identical_layer_problems_are_one_line() -> None:
    problems = [
        LayerProblem("a", "groups=3 does not divide the input channels", "IC=16", [1, 2, 4, 8, 16]),
        LayerProblem("b", "groups=3 does not divide the input channels", "IC=32", [1, 2, 4, 32]),
        "c (OC=4): pattern_set=pconv needs 3x3 kernels",
        LayerProblem("d", "rank 9 exceeds the layer", valid=[1, 2]),
        "e: pattern_set=pconv needs 3x3 kernels",
        "selected layers mix kernel sizes [(1, 1), (3, 3)]; select one size",
    ]
    assert group_problems(problems) == [
        "groups=3 does not divide the input channels for 2 layers: a, b (valid: 1, 2, 4)",
        "pattern_set=pconv needs 3x3 kernels for 2 layers: c, e",
        "rank 9 exceeds the layer for layer d (valid: 1, 2)",
        "selected layers mix kernel sizes [(1, 1), (3, 3)]; select one size",
    ]
    assert (
        str(problems[0])
        == "a (IC=16): groups=3 does not divide the input channels; valid: 1, 2, 4, 8, 16"
    )


def test_a_library_value_error_is_a_bug_not_a_user_error() -> None:
    with pytest.raises(ValueError) as raised:
        int("not a number")  # raised inside Python, not by one of our checks
    assert not is_user_error(raised.value)
    with pytest.raises(ValueError) as ours:
        from imcompress.compression.registry import raise_problems

        raise_problems(["x: bad"], "glr")
    assert is_user_error(ours.value)
