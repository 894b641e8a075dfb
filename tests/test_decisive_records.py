"""The decisive study's tables and figures in docs/ regenerate byte-identical from the records
committed in results/decisive/ (issue 17 item 4): a number nobody can regenerate is not in docs/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imcompress.studies.decisive_report import write_report

from .conftest import ROOT

RECORDS = ROOT / "results" / "decisive"
DOCS = ROOT / "docs" / "decisive"


def test_committed_tables_and_figures_regenerate_byte_identical(tmp_path: Path) -> None:
    if not (RECORDS / "records").is_dir():
        pytest.fail(f"{RECORDS}/records is missing: the study records must be committed")
    written = write_report(RECORDS, tmp_path)
    assert {path.name for path in written} == {path.name for path in DOCS.iterdir()}
    for path in written:
        assert path.read_bytes() == (DOCS / path.name).read_bytes(), (
            f"docs/decisive/{path.name} differs from what results/decisive regenerates: run "
            "python -m imcompress.studies.decisive report results/decisive --out docs/decisive"
        )


def test_committed_records_hold_no_machine_paths_and_say_what_was_tested() -> None:
    records = sorted((RECORDS / "records").glob("*.json"))
    assert records
    for path in records:
        text = path.read_text()
        assert "/work/" not in text and "/home/" not in text and "/tmp/" not in text, path.name
        record = json.loads(text)
        assert record["status"] == "completed", path.name
        assert record["metrics"]["test/acc"] is not None, path.name
        if record["job"].startswith("dense"):
            continue
        # the accuracy comes from a named checkpoint whose compression state was measured
        tested = record["tested"]
        assert tested["checkpoint"].startswith("checkpoints/"), path.name
        assert tested["compression"]["method"] == record["compression"]["method"], path.name
