"""The atomic write helper: old-or-new file, no temporary left, a full disk named as such."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from imcompress.runs import atomic
from tests.disk_full import tiny_disk  # noqa: F401  (fixture)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if atomic.TEMP_MARKER in p.name)


def test_write_replaces_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "summary.json"
    target.write_text("old")
    atomic.write_json(target, {"test/acc": 0.5})
    assert json.loads(target.read_text()) == {"test/acc": 0.5}
    assert leftovers(tmp_path) == []


def test_failure_inside_the_block_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "table.csv"
    target.write_text("old,complete\n")
    with pytest.raises(KeyboardInterrupt), atomic.atomic_open(target) as handle:
        handle.write("half a ")
        raise KeyboardInterrupt
    assert target.read_text() == "old,complete\n"
    assert leftovers(tmp_path) == []


def test_unserializable_value_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "summary.json"
    with pytest.raises(ValueError):
        atomic.write_json(target, {"test/acc": math.nan})
    assert not target.exists() and leftovers(tmp_path) == []


def test_full_disk_is_named_and_cleaned(tiny_disk: Path) -> None:  # noqa: F811
    target = tiny_disk / "summary.json"
    target.write_text("old")
    with pytest.raises(atomic.DiskFullError) as raised:
        atomic.write_bytes(target, b"x" * 1_000_000)
    assert str(raised.value) == f"disk full (ENOSPC) writing {target}"
    assert isinstance(raised.value, OSError)
    assert target.read_text() == "old"
    assert leftovers(tiny_disk) == []
