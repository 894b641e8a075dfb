"""The run-folder reader: one policy for corrupt records, paths that stay inside the folder.

Each case writes the bad file for real (hand-edited values, truncation, a list, invalid YAML)
and runs the reader or the script a user would run (report.py, the study table, the frontier).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from imcompress.analog import study as analog_study
from imcompress.runs.folder import CorruptRecordError, RunFolder
from imcompress.studies import frontier
from imcompress.studies import results_table as study
from tests.conftest import ROOT

GOOD = {
    "status": "completed",
    "config": {"compression": "glr", "hw": "imc64"},
    "metrics": {"test/acc": 0.9, "analog/test/acc_repeats": [0.8, 0.85]},
    "cost": {"sdk/cycles": 50.0, "sdk/energy_uj": 2.0},
    "parameters": {"total": 100},
}
# (how the record is damaged, the summary.json text, what the error must name)
CORRUPT = [
    ("accuracy as text", json.dumps({**GOOD, "metrics": {"test/acc": "high"}}),
     "summary.json field metrics/test/acc is 'high', not a number"),
    ("NaN", json.dumps(GOOD).replace("0.9", "NaN"), "NaN is not valid JSON"),
    ("cost as text", json.dumps({**GOOD, "cost": {"sdk/cycles": "50", "sdk/energy_uj": 2.0}}),
     "summary.json field cost/sdk/cycles is '50', not a number"),
    ("truncated", json.dumps(GOOD)[:40], "is not valid JSON (40 bytes; truncated"),
    ("a list", json.dumps([GOOD]), "summary.json holds a JSON list, not an object"),
    ("metrics as a list", json.dumps({**GOOD, "metrics": [0.9]}),
     "summary.json field metrics is [0.9], not an object"),
    ("status as a number", json.dumps({**GOOD, "status": 1}),
     "summary.json field status is 1, not a string"),
]  # fmt: skip


def write_job(
    folder: Path, summary: str | dict[str, Any], overrides: str = "- experiment=study/x\n"
) -> Path:
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(overrides)
    text = summary if isinstance(summary, str) else json.dumps(summary)
    (folder / "summary.json").write_text(text)
    return folder


@pytest.mark.parametrize(("case", "text", "named"), CORRUPT, ids=[c[0] for c in CORRUPT])
def test_corrupt_summary_names_the_file_and_the_field(
    tmp_path: Path, case: str, text: str, named: str
) -> None:
    run = RunFolder(write_job(tmp_path / "job", text))
    with pytest.raises(CorruptRecordError) as raised:
        run.status()
    assert str(raised.value).startswith(f"{tmp_path / 'job' / 'summary.json'}: ")
    assert named in str(raised.value)


def test_valid_record_and_invalid_overrides(tmp_path: Path) -> None:
    run = RunFolder(write_job(tmp_path / "job", GOOD))
    assert run.status() == "completed" and run.metric("test/acc") == 0.9
    assert run.experiment() == "x" and run.metric("val/acc") is None
    for text, named in (
        ("- [unclosed\n", "is not valid YAML"),
        ("experiment: x\n", "not a list of key=value strings"),
    ):
        (run.path / ".hydra" / "overrides.yaml").write_text(text)
        with pytest.raises(CorruptRecordError, match=named) as raised:
            run.experiment()
        assert str(run.path / ".hydra" / "overrides.yaml") in str(raised.value)


def _sweep_with_two_corrupt_jobs(sweep: Path) -> None:
    sweep.mkdir()
    (sweep / "multirun.yaml").write_text(
        yaml.safe_dump({"hydra": {"overrides": {"task": ["seed=1,2,3"]}}})
    )
    for num, summary in ((0, GOOD), (1, CORRUPT[0][1]), (2, GOOD)):
        job = write_job(sweep / str(num), summary, f"- seed={num + 1}\n")
        (job / ".hydra" / "hydra.yaml").write_text(f"hydra:\n  job:\n    num: {num}\n")
    (sweep / "2" / ".hydra" / "overrides.yaml").write_text("- [unclosed\n")


def test_report_skips_and_counts_corrupt_jobs(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    _sweep_with_two_corrupt_jobs(sweep)
    result = subprocess.run(
        [sys.executable, str(ROOT / "src" / "report.py"), str(sweep), "--no-plots"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback" not in result.stderr, result.stderr
    note = next(line for line in result.stderr.splitlines() if line.startswith("skipped"))
    assert note.startswith("skipped 2 run folders: ")
    assert f"{sweep / '1' / 'summary.json'}: summary.json field metrics/test/acc is 'high'" in note
    assert f"{sweep / '2' / '.hydra' / 'overrides.yaml'}: is not valid YAML" in note
    assert "1 completed, 2 corrupt record" in result.stdout
    assert "high" not in result.stdout  # never printed as if it were a result
    csv_rows = (sweep / "sweep_summary.csv").read_text().splitlines()
    assert sum("corrupt record" in row for row in csv_rows) == 2


def test_study_table_skips_and_counts_corrupt_jobs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_job(tmp_path / "finetune" / "0", GOOD)
    write_job(tmp_path / "finetune" / "1", CORRUPT[0][1])
    write_job(tmp_path / "finetune" / "2", GOOD, "- [unclosed\n")
    write_job(tmp_path / "costs" / "0", {**GOOD, "cost": {"sdk/cycles": "50"}})
    assert study.main([str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "### imc64" not in out  # the only costed job is corrupt: no cost table
    assert err.startswith("skipped 3 run folders: ")
    assert "metrics/test/acc is 'high', not a number" in err
    assert "cost/sdk/cycles is '50', not a number" in err and "is not valid YAML" in err
    write_job(tmp_path / "costs" / "1", GOOD)
    assert study.main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "0.900 (1 seed)" in out  # only the valid job's accuracy


class FakeCache:
    def costs(self, job_dir: Path) -> tuple[dict[str, dict[str, float]], float, float | None]:
        return {"imc64": {"cycles": 10.0, "energy_uj": 1.0}}, 10.0, 0.5


def test_frontier_and_analog_study_skip_corrupt_jobs(tmp_path: Path) -> None:
    write_job(tmp_path / "dense", GOOD)
    write_job(tmp_path / "finetune" / "lr_k0.12_s1", GOOD)
    write_job(tmp_path / "finetune" / "lr_k0.12_s2", CORRUPT[1][1])
    write_job(tmp_path / "finetune" / "lr_k0.12_s3", {**GOOD, "metrics": {}})
    _, jobs, skipped = frontier.load_study(tmp_path, FakeCache())  # type: ignore[arg-type]
    assert [job.seed for job in jobs] == [1]
    assert len(skipped) == 2
    assert "lr_k0.12_s2/summary.json: is not valid JSON" in skipped[0]
    assert "lr_k0.12_s3/summary.json: summary.json field metrics/test/acc is missing" in skipped[1]
    found: list[str] = []
    assert [p.name for p in analog_study.completed_jobs(tmp_path, found)] == [
        "lr_k0.12_s1",
        "lr_k0.12_s3",
    ]
    assert len(found) == 1 and "NaN is not valid JSON" in found[0]


def test_frontier_script_names_a_corrupt_dense_job(tmp_path: Path) -> None:
    write_job(tmp_path / "dense", CORRUPT[0][1])
    (tmp_path / "finetune").mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "imcompress.studies.frontier", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "dense/summary.json: summary.json field metrics/test/acc is 'high'" in result.stderr


# --- paths inside a run folder ---------------------------------------------------------------


def _trained_folder(folder: Path, summary: dict[str, Any]) -> Path:
    write_job(folder, {**GOOD, **summary})
    (folder / "checkpoints").mkdir()
    for name in ("best-epoch001.ckpt", "last.ckpt"):
        (folder / "checkpoints" / name).write_bytes(b"weights")
    return folder


def test_a_moved_folder_finds_its_checkpoints(tmp_path: Path) -> None:
    old = tmp_path / "old" / "run"
    recorded = {
        "output_dir": str(old),
        "best": {"checkpoint": f"{old}/checkpoints/best-epoch001.ckpt"},
    }
    _trained_folder(old, recorded)
    moved = tmp_path / "elsewhere" / "run"
    old.rename(tmp_path / "old" / "gone")
    _trained_folder(moved, recorded)
    assert RunFolder(moved).checkpoint() == moved / "checkpoints" / "best-epoch001.ckpt"
    assert RunFolder(moved).checkpoint("last") == moved / "checkpoints" / "last.ckpt"
    # The new record (issue 16): the tested checkpoint relative to the folder.
    relative = {"tested": {"checkpoint": "checkpoints/last.ckpt", "epoch": 1}}
    _trained_folder(tmp_path / "new", relative)
    assert (
        RunFolder(tmp_path / "new").checkpoint() == tmp_path / "new" / "checkpoints" / "last.ckpt"
    )


def test_a_copy_without_checkpoints_never_reads_the_originals(tmp_path: Path) -> None:
    original = tmp_path / "original"
    recorded = {
        "output_dir": str(original),
        "best": {"checkpoint": f"{original}/checkpoints/best-epoch001.ckpt"},
    }
    _trained_folder(original, recorded)
    copy = tmp_path / "copy"
    write_job(copy, {**GOOD, **recorded})  # summary and config, no checkpoints/
    with pytest.raises(
        FileNotFoundError, match=r"checkpoints/best-epoch001\.ckpt is missing"
    ) as raised:
        RunFolder(copy).checkpoint()
    assert "never read from another folder" in str(raised.value)
