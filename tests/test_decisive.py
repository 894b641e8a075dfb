"""The decisive study's driver (imcompress.studies): kept-weights matching, report regeneration
and a resumable run that exports a path-free record."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from imcompress.studies import decisive, decisive_plan
from imcompress.studies.decisive_report import write_report
from imcompress.studies.matching import TOLERANCE, kept_fraction, solve_step, verified_match
from imcompress.studies.records import relative_paths
from imcompress.studies.runner import jobs_tsv, read_jobs_tsv, select_jobs

RESNET20 = {"_target_": "imcompress.models.CifarResNet", "depth": 20, "widths": [16, 32, 64]}


def build_resnet20() -> Any:
    from imcompress.models.build import build_model

    return build_model(RESNET20, 1, 10)


# --- matching ------------------------------------------------------------------------------------


def test_solve_step_takes_the_nearer_side_of_the_crossing_step() -> None:
    def kept(x: float) -> float:  # steps of 0.1, increasing
        return math.floor(x * 10) / 10

    value, achieved = solve_step(kept, 0.44, 0.0, 1.0, increasing=True)
    assert achieved == pytest.approx(0.4) and kept(value) == achieved
    value, achieved = solve_step(kept, 0.47, 0.0, 1.0, increasing=True)
    assert achieved == pytest.approx(0.5)
    value, achieved = solve_step(lambda s: 1 - kept(s), 0.56, 0.0, 0.99, increasing=False)
    assert achieved == pytest.approx(0.6)


@pytest.mark.parametrize(
    ("compression", "target"),
    [
        ({"method": "glr", "groups": 4}, 0.06),  # a ratio keeps 0.048 or 0.065: rank 2 fits
        ({"method": "glr", "groups": 4}, 0.12),
        ({"method": "prune_channel"}, 0.12),  # kept ~ (1 - s)^2 in coupled layers
    ],
)
def test_matched_setting_keeps_the_target_within_tolerance_on_the_built_model(
    compression: dict[str, Any], target: float
) -> None:
    found = verified_match(build_resnet20, compression, target)
    real = kept_fraction(build_resnet20, {**compression, found.key: found.value})
    assert abs(real / target - 1) <= TOLERANCE
    assert real == found.kept


# --- job list ------------------------------------------------------------------------------------


def test_job_list_runs_seed_one_of_every_priority_one_point_first_and_round_trips() -> None:
    matched = {(m.base, lvl): 0.1 for m in decisive_plan.METHODS.values() for lvl in (0.06, 0.12)}
    choices = decisive_plan.Choices(
        {(k, lvl): "activation" for k in ("unstructured", "pattern") for lvl in (0.06, 0.12)},
        "whitened",
    )
    jobs = decisive_plan.order_jobs(decisive_plan.study_points(matched, choices))
    assert jobs[0].name == "dense"
    first = [j for j in jobs if j.priority == 1]
    seeds = [j.seed for j in first]
    assert seeds == sorted(seeds) and set(seeds) == {1, 2, 3} and len(first) == 23
    mixed = [j for j in first if j.name.startswith("planned_mixed")]
    assert [j.seed for j in mixed] == [1, 2]  # issue 18: the mixed plan, 2 seeds
    assert "compression=plan" in mixed[0].overrides  # applied with each method's planned options
    assert "unstructured_act_k0.06" in {j.name for j in first}
    assert [j.priority for j in jobs] == sorted(j.priority for j in jobs)
    assert read_jobs_tsv(jobs_tsv(jobs)) == jobs
    assert all(j.priority <= 2 for j in select_jobs(jobs, max_priority=2))
    assert {j.key for j in select_jobs(jobs, "^kd_channel")} == {
        "kd_channel_k0.06_s1",
        "kd_channel_k0.06_s2",
    }


def test_relative_paths_leaves_no_absolute_path(tmp_path: Path) -> None:
    record = {"a": str(tmp_path / "job" / "checkpoints" / "last.ckpt"), "b": ["/etc/x", "rel"],
              "c": {"d": str(tmp_path / "dense.ckpt")}}  # fmt: skip
    out = relative_paths(
        record, {"dense": str(tmp_path / "dense.ckpt"), "job": str(tmp_path / "job")}
    )
    assert out == {"a": "<job>/checkpoints/last.ckpt", "b": [None, "rel"], "c": {"d": "<dense>"}}


# --- report --------------------------------------------------------------------------------------


def fake_record(name: str, seed: int, acc: float, kept: float, cycles: float) -> dict[str, Any]:
    """A record as :func:`imcompress.studies.records.job_record` writes it (only invented numbers)."""
    costs = {
        hw: {m: {"cycles": cycles * scale * (0.5 if m == "vwsdk" else 1), "energy_uj": cycles / 1e4}
             for m in ("sdk", "vwsdk")}
        for hw, scale in (("imc64", 1.0), ("imc256", 0.125))
    }  # fmt: skip
    return {
        "job": f"{name}_s{seed}", "name": name, "seed": seed, "priority": 1, "overrides": [],
        "status": "completed", "metrics": {"test/acc": acc, "val/acc_at_compression": acc - 0.1},
        "compression": {"kept": kept, "params_before": 244224, "params_after": round(kept * 244224)},
        "costs": costs, "plan": None, "config": {}, "epochs": 1, "wall_time_s": 1.0,
    }  # fmt: skip


def write_fake_study(root: Path) -> None:
    records = [
        fake_record("dense", 1, 0.906, 1.0, 29377),
        fake_record("glr4w_k0.06", 1, 0.70, 0.0613, 16705),
        fake_record("glr4w_k0.06", 2, 0.72, 0.0613, 16705),
        fake_record("channel_k0.06", 1, 0.60, 0.0604, 16661),
        fake_record("planned_glr_imc64_c0.50", 1, 0.88, 0.45, 14657),
        fake_record("kd_channel_k0.06", 1, 0.65, 0.0604, 16661),
    ]
    (root / "records").mkdir(parents=True)
    for record in records:
        (root / "records" / f"{record['job']}.json").write_text(json.dumps(record))
    (root / "grid.csv").write_text(
        "job,point,level,kept,test_acc,status\n"
        "grid_glr4w_k0.06_s1,glr4w,0.06,0.061300,0.412000,completed\n"
        "grid_glr4w_k0.12_s1,glr4w,0.12,0.122600,0.701000,completed\n"
        "grid_planned_glr_imc64_c0.50_s1,planned_glr_imc64_c0.50,,0.450000,0.800000,completed\n"
    )


def test_report_regenerates_byte_identical_tables_and_figures(tmp_path: Path) -> None:
    write_fake_study(tmp_path / "study")
    first = write_report(tmp_path / "study", tmp_path / "a")
    second = write_report(tmp_path / "study", tmp_path / "b")
    assert [p.name for p in first] == [p.name for p in second]
    assert {p.suffix for p in first} == {".md", ".png"} and len(first) == 4
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name
    tables = (tmp_path / "a" / "tables.md").read_text()
    # mean ± sample std and the t-interval of two seeds (t_0.975,1 = 12.706)
    assert (
        "| GLR-4 (whitened) | keep 0.06 | 0.0613 | 0.610 | 0.7100 ± 0.0141 | 2 | [0.5829, 0.8371] |"
        in tables
    )
    assert "| channel + KD | keep 0.06 |" in tables
    # speedup against dense on the same mapping and array: 29377 / 16705
    assert "| GLR-4 (whitened) | keep 0.06 | 0.7100 ± 0.0141 | 16,705 | 1.76 |" in tables
    assert "| GLR-4 (whitened) | 0.4120 (0.061) | 0.7010 (0.123) |" not in tables  # level order
    assert "| GLR-4 (whitened) |  |  | 0.7010 (0.123) | 0.4120 (0.061) |" in tables


def test_report_refuses_a_folder_without_records(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no records/ folder"):
        write_report(tmp_path, tmp_path / "out")


# --- a real (tiny) run ---------------------------------------------------------------------------


def test_run_exports_path_free_records_and_a_rerun_runs_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    from imcompress.models.build import build_model

    dense = tmp_path / "dense.pt"  # random weights stand in for the dense checkpoint
    torch.save(build_model(RESNET20, 3, 10).state_dict(), dense)  # data=synthetic: 3 channels
    records = tmp_path / "results"
    records.mkdir()
    matched = {f"{m.base}@{lvl}": {"key": m.setting, "value": 2 if m.setting == "rank" else 0.9,
                                   "kept": 0.06, "target": 0.06, "within": True}
               for m in decisive_plan.METHODS.values() for lvl in ("0.06", "0.12")}  # fmt: skip
    (records / "matched.json").write_text(json.dumps(matched))  # the solver's cache
    tiny = ["data=synthetic", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
            "trainer.limit_test_batches=1", "compression.bn_recalibration_batches=1",
            "compression.calibration_batches=1"]  # fmt: skip
    argv = ["run", str(tmp_path / "study"), "--dense", str(dense),
            "--records", str(records), "--filter", "^(dense|glr4_k0.06)_s1$", "--criterion", "magnitude",
            "--kd-glr", "whitened", "--extra", *tiny]  # fmt: skip
    assert decisive.main(argv) == 0
    assert "2 ran, 0 already completed" in capsys.readouterr().out
    jobs = read_jobs_tsv((records / "jobs.tsv").read_text())
    assert jobs[1].key == "glr4_k0.06_s1" and jobs[1].priority == 1
    record_file = records / "records" / "glr4_k0.06_s1.json"
    text = record_file.read_text()
    assert str(tmp_path) not in text and '"/' not in text
    record = json.loads(text)
    assert record["status"] == "completed" and record["overrides"][-2] == "pretrained=<dense>"
    assert record["compression"]["layers"][0]["rank"] == 2
    assert set(record["costs"]) == {"imc64", "imc256"}
    assert (
        record["costs"]["imc64"]["sdk"]["cycles"] > record["costs"]["imc64"]["vwsdk"]["cycles"] > 0
    )
    assert decisive.main(argv) == 0
    assert "0 ran, 2 already completed" in capsys.readouterr().out
    assert record_file.read_text() == text
    dense_record = json.loads((records / "records" / "dense_s1.json").read_text())  # in process
    assert dense_record["metrics"]["test/acc"] >= 0 and "<dense>" in dense_record["overrides"][-2]
    assert (
        dense_record["costs"]["imc64"]["sdk"]["cycles"] > record["costs"]["imc64"]["sdk"]["cycles"]
    )


def test_grid_csv_rows_and_the_criterion_the_grid_chooses(tmp_path: Path) -> None:
    jobs = decisive_plan.order_jobs({1: decisive_plan.grid_points(
        {(m.base, lvl): 0.5 for m in decisive_plan.METHODS.values() for lvl in decisive_plan.LEVELS}
    )})  # fmt: skip
    accs = {"unstructured_mag": 0.5, "unstructured_act": 0.6, "pattern_mag": 0.4,
            "pattern_act": 0.3, "glr4": 0.2, "glr4w": 0.25}  # fmt: skip
    for job in jobs:
        point, _, level = job.name.removeprefix("grid_").rpartition("_k")
        if point in accs and level in ("0.06", "0.12"):
            summary = {"status": "completed", "metrics": {"test/acc": accs[point]},
                       "compression": {"params_before": 100, "params_after": 6}}  # fmt: skip
            (tmp_path / "grid" / job.key).mkdir(parents=True)
            (tmp_path / "grid" / job.key / "summary.json").write_text(json.dumps(summary))
    text = decisive.grid_rows(jobs, tmp_path / "grid")
    assert (
        "grid_unstructured_act_k0.06_s1,unstructured_act,0.06,0.060000,0.600000,completed" in text
    )
    assert "grid_planned_glr_imc64_c0.50_s1,planned_glr_imc64_c0.50,,,,missing" in text
    (tmp_path / "grid.csv").write_text(text)
    choices = decisive.choose(tmp_path, "auto", "auto")
    assert choices.criterion[("unstructured", 0.06)] == "activation"
    assert choices.criterion[("pattern", 0.12)] == "magnitude"
    assert choices.kd_factorization == "whitened"
    with pytest.raises(ValueError, match="--criterion=auto needs the grid result"):
        decisive.choose(tmp_path / "elsewhere", "auto", "svd")


def test_cosine_per_step_decays_within_one_epoch_over_the_fits_steps() -> None:
    import lightning.pytorch as pl
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from imcompress.training.module import ClassificationModule, CosineAnnealingPerStep

    seen: list[float] = []

    class Record(pl.Callback):
        def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, index: int) -> None:
            seen.append(trainer.optimizers[0].param_groups[0]["lr"])

    module = ClassificationModule(
        nn.Sequential(nn.Flatten(), nn.Linear(4, 3)), 3,
        optimizer=lambda params: torch.optim.SGD(params, lr=0.1),
        scheduler=lambda optimizer: CosineAnnealingPerStep(optimizer, T_max=None, eta_min=0.0),
    )  # fmt: skip
    data = DataLoader(TensorDataset(torch.randn(16, 4), torch.randint(0, 3, (16,))), batch_size=4)
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[Record()])  # fmt: skip
    trainer.fit(module, data)
    expected = [0.05 * (1 + math.cos(math.pi * step / 4)) for step in range(4)]  # T_max = 4 steps
    assert seen == pytest.approx(expected)
