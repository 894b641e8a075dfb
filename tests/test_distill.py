"""Distillation during fine-tuning: the loss, the teacher outside the state dict and the
optimizer, and a run that logs train/kd_loss, writes teacher-free checkpoints and resumes."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from imcompress.training.module import ClassificationModule, distillation_loss
from tests.conftest import read_summary, run_script


def _modules(alpha: float) -> tuple[ClassificationModule, nn.Module]:
    torch.manual_seed(0)
    student = nn.Sequential(nn.Flatten(), nn.Linear(12, 5))
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(12, 5))
    module = ClassificationModule(
        student,
        num_classes=5,
        optimizer=lambda params: torch.optim.SGD(params, lr=0.1),
        teacher=teacher,
        distill_alpha=alpha,
        distill_temperature=3.0,
    )
    return module, teacher


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")
def test_the_loss_is_the_mix_of_cross_entropy_and_the_scaled_kl() -> None:
    images, labels = torch.randn(8, 3, 2, 2), torch.randint(0, 5, (8,))
    module, teacher = _modules(alpha=1.0)
    student_logits, teacher_logits = module(images), teacher(images)
    p_t = F.softmax(teacher_logits / 3.0, dim=1)
    kl = (p_t * (p_t.log() - F.log_softmax(student_logits / 3.0, dim=1))).sum(1).mean()
    torch.testing.assert_close(distillation_loss(student_logits, teacher_logits, 3.0), 9.0 * kl)
    torch.testing.assert_close(module.training_step((images, labels), 0), 9.0 * kl)  # alpha = 1
    half, _ = _modules(alpha=0.5)
    expected = 0.5 * F.cross_entropy(student_logits, labels) + 0.5 * 9.0 * kl
    torch.testing.assert_close(half.training_step((images, labels), 0), expected)
    assert float(distillation_loss(teacher_logits, teacher_logits, 3.0)) == pytest.approx(
        0, abs=1e-6
    )


def test_the_teacher_is_frozen_and_outside_the_state_dict_and_optimizer() -> None:
    module, teacher = _modules(alpha=0.5)
    assert module.teacher is teacher and not teacher.training
    assert all(not p.requires_grad for p in teacher.parameters())
    assert not any("teacher" in key for key in module.state_dict())
    teacher_ids = {id(p) for p in teacher.parameters()}
    optimizer = module.configure_optimizers()
    assert isinstance(optimizer, torch.optim.Optimizer)
    assert not teacher_ids & {id(p) for g in optimizer.param_groups for p in g["params"]}
    module.train()  # Lightning's train() leaves the teacher in eval mode
    assert not teacher.training
    copy.deepcopy(module)  # picklable like any module
    with pytest.raises(ValueError, match=r"finetune.distill.alpha must be a number in \[0, 1\]"):
        _ = ClassificationModule(module.model, 5, optimizer=torch.optim.SGD, distill_alpha=1.5)


def test_a_distilled_run_logs_kd_loss_writes_teacher_free_checkpoints_and_resumes(
    tmp_path: Path,
) -> None:
    dense = tmp_path / "dense"
    first = run_script(
        "train.py", "experiment=smoke", "logger=none", f"hydra.run.dir={dense}", cwd=tmp_path
    )
    assert first.returncode == 0, first.stderr[-3000:]
    job = tmp_path / "kd"
    args = (
        "compression=glr",
        "group=2",
        f"pretrained={dense / 'checkpoints' / 'last.ckpt'}",
        "finetune.distill.alpha=0.5",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1",
        "data=synthetic",
        "data.batch_size=32",
        "compression.bn_recalibration_batches=1",
        "logger=none",
        "callbacks.progress_bar=null",
        f"hydra.run.dir={job}",
    )
    run = run_script("train.py", *args, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "train/kd_loss" in (next(job.rglob("metrics.csv"))).read_text().splitlines()[0]
    state = torch.load(job / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    keys = list(state["state_dict"])
    assert keys and not any("teacher" in key for key in keys)
    assert all(key.startswith(("model.", "metrics.", "losses.", "val_acc_best")) for key in keys)
    resumed = run_script("train.py", *args, "ckpt_path=last", "trainer.max_epochs=2", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert read_summary(job)["status"] == "completed"


def test_distillation_without_a_pretrained_model_is_refused(tmp_path: Path) -> None:
    run = run_script(
        "train.py",
        "compression=glr",
        "pretrained=none",
        "finetune.distill.alpha=0.3",
        "data=synthetic",
        "logger=none",
        f"hydra.run.dir={tmp_path}",
        cwd=tmp_path,
    )
    assert run.returncode != 0
    assert "finetune.distill.alpha=0.3 distills from the dense pretrained model" in run.stderr
