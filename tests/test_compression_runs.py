"""Compression through the whole platform: multiruns over groups, pruning seen by the estimator."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

from tests.conftest import read_summary, run_script


def test_glr_group_multirun_writes_three_summaries(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    result = run_script(
        "train.py",
        "experiment=smoke",
        "compression=glr",
        "pretrained=none",  # from scratch: no dense stage
        "hw=imc256",
        "logger=none",
        f"hydra.sweep.dir={sweep}",
        "-m",
        "group=1,2,4",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summaries = [read_summary(sweep / str(job)) for job in range(3)]
    assert [s["config"]["group"] for s in summaries] == [1, 2, 4]
    for summary, groups in zip(summaries, (1, 2, 4), strict=True):
        assert summary["status"] == "completed"
        layers = summary["compression"]["layers"]
        assert len(layers) == 16  # ResNet-20's default selection
        assert {layer["groups"] for layer in layers} == {groups}
        assert summary["cost"]["sdk/cycles"] > 0
    # More groups at the same per-group rank: more parameters (k(n + g m)).
    params = [s["parameters"]["total"] for s in summaries]
    assert params[0] < params[1] < params[2]


def epoch_rows(job: Path) -> list[dict[str, str]]:
    with open(job / "csv" / "metrics.csv") as handle:
        return list(csv.DictReader(handle))


def test_gradual_channel_pruning_lowers_crossbar_cycles_epoch_by_epoch(tmp_path: Path) -> None:
    job = tmp_path / "job"
    result = run_script(
        "train.py",
        "experiment=smoke",
        "compression=prune_channel",
        "pretrained=none",
        "compression.schedule=gradual",
        "sparsity=0.75",
        "trainer.max_epochs=4",
        "compression.end_epoch=3",
        "logger=none",
        f"hydra.run.dir={job}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = epoch_rows(job)
    sparsity = [float(r["compress/sparsity"]) for r in rows if r.get("compress/sparsity")]
    cycles = [float(r["hw/im2col/cycles"]) for r in rows if r.get("hw/im2col/cycles")]
    assert sparsity == sorted(sparsity) and sparsity[-1] > sparsity[0]
    # Costed at fit start (dense) and after every validation epoch; cycles fall as channels go.
    assert cycles[0] > cycles[-1]
    assert all(later <= earlier for earlier, later in itertools.pairwise(cycles))
    summary = read_summary(job)
    assert summary["cost"]["im2col/cycles"] == cycles[-1]
    assert summary["best"]["tested"] == "last"  # accuracy reported at the target sparsity
