"""The entry scripts accept the flag order users type."""

from __future__ import annotations

from imcompress.cli import hoist_multirun_flag


def test_multirun_flag_between_overrides_is_moved_first() -> None:
    argv = ["train.py", "compression=glr", "hw=imc256", "-m", "group=1,2,4"]
    assert hoist_multirun_flag(argv) == [
        "train.py",
        "-m",
        "compression=glr",
        "hw=imc256",
        "group=1,2,4",
    ]


def test_arguments_without_the_flag_are_untouched() -> None:
    argv = ["train.py", "--cfg", "job", "group=2"]
    assert hoist_multirun_flag(list(argv)) == argv
    assert hoist_multirun_flag(["train.py", "--multirun", "a=1"]) == [
        "train.py",
        "--multirun",
        "a=1",
    ]
