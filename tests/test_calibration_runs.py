"""Training runs with the data-aware compression steps: BatchNorm re-estimation (one-shot and
after a gradual schedule's final step, not on resume), whitened factorization and the
activation criterion, and their refusal without a pretrained model."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import read_summary, run_script

LIMITS = (
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "data=synthetic",
    "data.batch_size=32",
    "logger=none",
    "callbacks.progress_bar=null",
)


@pytest.fixture(scope="module")
def dense_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dense")
    run = run_script(
        "train.py", "experiment=smoke", "logger=none", f"hydra.run.dir={root}", cwd=root
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return root / "checkpoints" / "last.ckpt"


def test_whitened_glr_recalibrates_and_resumes_without_data(
    tmp_path: Path, dense_checkpoint: Path
) -> None:
    job = tmp_path / "glr"
    args = (
        "compression=glr",
        "group=2",
        "rank=2",
        "compression.factorization=whitened",
        "compression.calibration_batches=2",
        "compression.bn_recalibration_batches=3",
        f"pretrained={dense_checkpoint}",
        *LIMITS,
        f"hydra.run.dir={job}",
    )
    run = run_script("train.py", *args, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    summary = read_summary(job)
    compression = summary["compression"]
    assert {layer["factorization"] for layer in compression["layers"]} == {"whitened"}
    assert all(0 <= layer["output_rel_error"] < 1 for layer in compression["layers"])
    assert compression["bn_recalibration"] == {
        "batches": 3,
        "done": True,
        "used": 3,
        "when": "after compression",
    }
    assert "BatchNorm statistics re-estimated on 3 training batches" in run.stdout
    assert "val/acc_at_compression" in summary["metrics"]
    # resumed: the modules are rebuilt without calibration and the checkpoint's statistics kept
    resumed = run_script("train.py", *args, "ckpt_path=last", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "re-estimated" not in resumed.stdout


def test_gradual_pattern_activation_recalibrates_after_the_final_step(
    tmp_path: Path, dense_checkpoint: Path
) -> None:
    job = tmp_path / "pattern"
    run = run_script(
        "train.py",
        "compression=prune_pattern",
        "sparsity=0.6",
        "compression.criterion=activation",
        "compression.schedule=gradual",
        "compression.end_epoch=1",
        "compression.calibration_batches=2",
        "compression.bn_recalibration_batches=2",
        f"pretrained={dense_checkpoint}",
        *LIMITS,
        "trainer.max_epochs=2",
        f"hydra.run.dir={job}",
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    compression = read_summary(job)["compression"]
    assert compression["options"]["criterion"] == "activation"
    assert compression["bn_recalibration"]["done"] is True
    assert compression["bn_recalibration"]["epoch"] == 1  # the final pruning step
    assert compression["sparsity"] == pytest.approx(0.6, abs=0.02)


@pytest.mark.parametrize(
    "option",
    [
        "compression=glr compression.factorization=whitened",
        "compression=prune_unstructured compression.criterion=activation",
    ],
)
def test_data_aware_options_refuse_to_run_without_a_pretrained_model(
    tmp_path: Path, option: str
) -> None:
    run = run_script(
        "train.py",
        *option.split(),
        "pretrained=none",
        *LIMITS,
        f"hydra.run.dir={tmp_path}",
        cwd=tmp_path,
    )
    assert run.returncode != 0
    assert "got pretrained=None: pass pretrained=auto or a dense checkpoint" in run.stderr
    assert option.split()[1] in run.stderr
    assert not (tmp_path / "checkpoints").exists()
