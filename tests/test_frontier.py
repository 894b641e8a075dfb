"""The frontier tables: job names, seed statistics, Pareto marking, skipped jobs (no torch)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from imcompress.studies import frontier
from imcompress.studies.frontier import Job, Point, aggregate, frontier_table, mark_pareto


def cost(cycles: float, energy: float) -> dict[str, dict[str, float]]:
    return {"imc64": {"cycles": cycles, "energy_uj": energy}}


def test_job_names_parse_to_method_level_and_seed() -> None:
    assert frontier.parse_job_name("glr2_k0.12_s2") == ("GLR-2", "keep 0.12", 2)
    assert frontier.parse_job_name("pattern_kernel_k0.06_s1") == (
        "pattern (kernel)",
        "keep 0.06",
        1,
    )
    assert frontier.parse_job_name("planned_glr_imc256_c0.87_s1") == (
        "planned GLR (imc256)",
        "cycles 0.87x",
        1,
    )
    with pytest.raises(ValueError, match=r"bogus_k0\.5_s1"):
        frontier.parse_job_name("bogus_k0.5_s1")


def test_seeds_are_averaged_with_their_sample_std() -> None:
    jobs = [
        Job("LR", "keep 0.12", 1, 0.70, 0.5, 100, 0.12, cost(10, 1.0)),
        Job("LR", "keep 0.12", 2, 0.80, 0.7, 100, 0.12, cost(10, 1.0)),
        Job("LR", "keep 0.50", 1, 0.90, None, 200, 0.5, cost(20, 2.0)),
    ]
    points = {p.level: p for p in aggregate(jobs)}
    assert set(points) == {"keep 0.12", "keep 0.50"}
    two = points["keep 0.12"]
    assert two.seeds == 2
    assert two.acc == pytest.approx(0.75)
    assert two.acc_std == pytest.approx(statistics.stdev([0.70, 0.80]))
    assert two.acc_at_compression == pytest.approx(0.6)
    assert points["keep 0.50"].seeds == 1 and points["keep 0.50"].acc_std == 0.0
    assert points["keep 0.50"].acc_at_compression is None


def test_pareto_marks_only_undominated_points_and_the_table_shows_them() -> None:
    dense = Point("dense", "", 1, 0.90, 0.0, None, 1000, 1.0, cost(100, 10.0))
    cheap = Point("A", "keep 0.12", 2, 0.60, 0.01, None, 100, 0.12, cost(10, 1.0))
    dominated = Point("B", "keep 0.12", 1, 0.55, 0.0, None, 100, 0.12, cost(20, 1.0))
    good = Point("B", "keep 0.50", 1, 0.95, 0.0, None, 500, 0.5, cost(50, 5.0))
    points = [cheap, dominated, good, dense]
    front = mark_pareto(points, "imc64")
    assert [points[i] for i in front] == [cheap, good]  # dense is beaten by `good`
    assert [p.pareto["imc64"] for p in points] == [True, False, True, False]
    table = frontier_table(points, "imc64", dense)
    shown = {(row[0], row[1]): row for row in table.shown()}
    assert shown[("A", "keep 0.12")][-1] == "*" and shown[("B", "keep 0.12")][-1] == ""
    assert shown[("A", "keep 0.12")][4] == "0.6000 ± 0.0100"  # mean ± std with 2 seeds
    assert shown[("B", "keep 0.50")][8] == "2.00"  # speedup vs dense SDK cycles: 100 / 50
    assert shown[("A", "keep 0.12")][10] == "0.100"  # energy ratio: 1 / 10
    assert table.rows[0][0] == "dense"


class FakeCache:
    """Costs without rebuilding models: cycles from the job folder's name."""

    def costs(self, job_dir: Path) -> tuple[dict[str, dict[str, float]], float, float | None]:
        return cost(len(job_dir.name), 1.0), 10.0, 0.5


def test_incomplete_jobs_are_skipped_and_listed(tmp_path: Path) -> None:
    def job(name: str, status: str | None, acc: float = 0.5) -> None:
        folder = tmp_path / name
        folder.mkdir(parents=True)
        if status is not None:
            summary = {"status": status, "metrics": {"test/acc": acc}}
            (folder / "summary.json").write_text(json.dumps(summary))

    job("dense", "completed", 0.9)
    job("finetune/lr_k0.12_s1", "completed", 0.6)
    job("finetune/lr_k0.12_s2", "completed", 0.8)
    job("finetune/lr_k0.06_s1", "running")
    job("finetune/glr2_k0.06_s1", None)
    dense, jobs, skipped = frontier.load_study(tmp_path, FakeCache())  # type: ignore[arg-type]
    assert dense.acc == pytest.approx(0.9)
    assert sorted(j.seed for j in jobs) == [1, 2]
    assert sorted(skipped) == ["glr2_k0.06_s1: no summary.json", "lr_k0.06_s1: running"]
    (point,) = aggregate(jobs)
    assert point.seeds == 2 and point.acc == pytest.approx(0.7)
