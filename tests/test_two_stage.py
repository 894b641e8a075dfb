"""Two-stage runs: dense training, then compression initialised from the dense checkpoint."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import read_summary, run_script

SMOKE_LIMITS = (
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "data=synthetic",
    "logger=none",
    "callbacks.progress_bar=null",
)


def test_finetune_loads_dense_checkpoint_then_compresses(tmp_path: Path) -> None:
    dense = tmp_path / "dense"
    first = run_script(
        "train.py", "experiment=smoke", "logger=none", f"hydra.run.dir={dense}", cwd=tmp_path
    )
    assert first.returncode == 0, first.stderr[-3000:]
    checkpoint = dense / "checkpoints" / "last.ckpt"
    job = tmp_path / "glr"
    second = run_script(
        "train.py",
        "experiment=finetune",
        "compression=glr",
        "group=2",
        "rank=1.0",
        f"pretrained={checkpoint}",
        *SMOKE_LIMITS,
        f"hydra.run.dir={job}",
        cwd=tmp_path,
    )
    assert second.returncode == 0, second.stderr[-3000:]
    summary = read_summary(job)
    assert summary["config"]["pretrained"] == str(checkpoint)
    assert f"Loaded pretrained weights from {checkpoint}" in second.stdout
    layers = summary["compression"]["layers"]
    assert len(layers) == 16 and {layer["groups"] for layer in layers} == {2}
    assert all(layer["svd_rel_error"] < 1e-4 for layer in layers)  # full rank: exact factors
    assert summary["status"] == "completed"


def test_finetune_without_or_with_a_bad_checkpoint_fails_before_training(tmp_path: Path) -> None:
    missing = run_script(
        "train.py", "experiment=finetune", "compression=glr", *SMOKE_LIMITS, cwd=tmp_path
    )
    assert missing.returncode != 0 and "pretrained" in missing.stderr
    job = tmp_path / "job"
    bad = run_script(
        "train.py",
        "experiment=finetune",
        "compression=glr",
        f"pretrained={tmp_path / 'nope.ckpt'}",
        *SMOKE_LIMITS,
        f"hydra.run.dir={job}",
        cwd=tmp_path,
    )
    assert bad.returncode != 0 and "nope.ckpt" in bad.stderr
    assert not (job / "checkpoints").exists()
    dense = tmp_path / "dense"
    first = run_script(
        "train.py", "experiment=smoke", "logger=none", f"hydra.run.dir={dense}", cwd=tmp_path
    )
    assert first.returncode == 0, first.stderr[-3000:]
    wrong_model = run_script(
        "train.py",
        "experiment=finetune",
        "model=resnet32",
        f"pretrained={dense / 'checkpoints' / 'last.ckpt'}",
        *SMOKE_LIMITS,
        cwd=tmp_path,
    )
    assert wrong_model.returncode != 0
    assert "layer1.3" in wrong_model.stderr  # names keys the checkpoint lacks
