"""The study table joins training accuracy and estimator costs by experiment."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

from imcompress.studies.results_table import collect, main, markdown


def write_job(folder: Path, experiment: str, summary: dict) -> None:
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(
        f"- experiment=study/{experiment}\n- seed=1\n"
    )
    (folder / "summary.json").write_text(json.dumps({"status": "completed", **summary}))


def _write_study(tmp_path: Path) -> None:
    write_job(
        tmp_path / "finetune" / "0",
        "fmnist_glr2",
        {
            "config": {"compression": "glr"},
            "metrics": {"test/acc": 0.90},
            "parameters": {"total": 100},
        },
    )
    write_job(
        tmp_path / "finetune" / "1",
        "fmnist_glr2",
        {
            "config": {"compression": "glr"},
            "metrics": {"test/acc": 0.92},
            "parameters": {"total": 100},
        },
    )
    write_job(
        tmp_path / "finetune" / "2",
        "fmnist_channel",
        {
            "config": {"compression": "prune_channel"},
            "metrics": {"test/acc": 0.80},
            "parameters": {"total": 90},
            "compression": {"model_params_after": 42},  # masked weights do not count
        },
    )
    (tmp_path / "finetune" / "3").mkdir()  # a job that never finished: ignored
    cost = {
        "im2col/cycles": 100.0,
        "vwsdk/cycles": 10.0,
        "sdk/energy_periphery_uj": 0.0,
        "sdk/arrays": 3,
        "sdk/area_mm2": 0.1,
    }
    write_job(
        tmp_path / "costs" / "0",
        "fmnist_glr2",
        {
            "config": {"compression": "glr", "hw": "imc64"},
            "cost": {**cost, "sdk/cycles": 50.0, "sdk/energy_uj": 2.0},
        },
    )
    write_job(
        tmp_path / "costs" / "1",
        "fmnist_channel",
        {
            "config": {"compression": "prune_channel", "hw": "imc64"},
            "cost": {**cost, "sdk/cycles": 125.0, "sdk/energy_uj": 8.0},
        },
    )


def test_collect_and_ratios_against_pruning(tmp_path: Path, capsys) -> None:
    _write_study(tmp_path)
    rows = collect(tmp_path)
    glr = next(r for r in rows if r.label == "fmnist_glr2")
    assert glr.accuracies == [0.90, 0.92] and abs(glr.accuracy - 0.91) < 1e-12
    assert glr.costs["imc64"]["sdk/cycles"] == 50.0
    assert glr.parameters == 100
    assert next(r for r in rows if r.label == "fmnist_channel").parameters == 42
    table = markdown(rows)
    # 125 / 50 = 2.5x faster, 1 - 2/8 = 75 % less energy, 0.91 - 0.80 = +11 points
    assert "| fmnist_glr2 | 2.50x / +75 % / +11.0 pt |" in table
    assert main([str(tmp_path)]) == 0 and "### imc64" in capsys.readouterr().out
    assert main([str(tmp_path / "nope")]) == 2


def test_latex_and_csv_formats(tmp_path: Path, capsys) -> None:
    _write_study(tmp_path)
    assert main([str(tmp_path), "--format", "latex"]) == 0
    latex = capsys.readouterr().out
    assert latex.count("\\begin{tabular}") == 2 and latex.count("\\end{tabular}") == 2
    assert re.search(r"(?<!\\)_", latex) is None, "unescaped underscore"
    assert "fmnist\\_glr2 & 100 & 0.910 $\\pm$ 0.0141 (2 seeds)" in latex
    assert "2.50x / +75 \\% / +11.0 pt" in latex
    assert main([str(tmp_path), "--format", "csv"]) == 0
    cost_block = capsys.readouterr().out.split("\n\n")[0]
    rows = {row["method"]: row for row in csv.DictReader(io.StringIO(cost_block))}
    assert float(rows["fmnist_glr2"]["cycles SDK"]) == 50.0
    assert rows["fmnist_channel"]["params"] == "42"
