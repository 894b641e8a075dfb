"""BatchNorm re-estimation after compression: the statistics become the batch statistics, and a
trained, compressed model with stale statistics gets better."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from imcompress.compression import apply_compression
from imcompress.compression.batchnorm import recalibrate_batchnorm
from imcompress.compression.calibration import training_batches

from .tiny_models import TinyResNet


def test_statistics_equal_the_batch_statistics_and_modes_are_restored() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 5, 3, padding=1)
    bn = nn.BatchNorm2d(5, momentum=0.3)
    model = nn.Sequential(conv, bn, nn.ReLU()).eval()
    batches = [torch.randn(6, 3, 7, 7) * 2 + 1 for _ in range(3)]
    weights = copy.deepcopy(model.state_dict())
    assert recalibrate_batchnorm(model, batches) == 3
    with torch.no_grad():
        outs = [conv(b) for b in batches]  # equal-sized batches: cumulative average = mean
    means = torch.stack([o.mean(dim=(0, 2, 3)) for o in outs])
    variances = torch.stack([o.transpose(0, 1).flatten(1).var(dim=1) for o in outs])  # unbiased
    torch.testing.assert_close(bn.running_mean, means.mean(0))
    torch.testing.assert_close(bn.running_var, variances.mean(0))
    assert not model.training and not bn.training and bn.momentum == 0.3
    for key, value in model.state_dict().items():  # parameters unchanged
        if "running" not in key and "num_batches" not in key:
            torch.testing.assert_close(value, weights[key])
    assert recalibrate_batchnorm(nn.Sequential(conv), batches) == 0  # no BatchNorm: no-op


def _data(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(100)
    templates = torch.randn(4, 3, 8, 8, generator=g)
    g.manual_seed(seed)
    labels = torch.randint(0, 4, (count,), generator=g)
    return templates[labels] + 0.8 * torch.randn(count, 3, 8, 8, generator=g), labels


def _loss_and_acc(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor
) -> tuple[float, float]:
    model.eval()
    with torch.no_grad():
        logits = model(images)
    return float(F.cross_entropy(logits, labels)), float(
        (logits.argmax(1) == labels).float().mean()
    )


def test_recalibration_repairs_a_trained_compressed_model() -> None:
    torch.manual_seed(0)
    model = TinyResNet()
    images, labels = _data(512, seed=1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.train()
    for step in range(40):
        batch = slice((step * 32) % 512, (step * 32) % 512 + 32)
        optimizer.zero_grad()
        F.cross_entropy(model(images[batch]), labels[batch]).backward()
        optimizer.step()
    test_images, test_labels = _data(256, seed=2)
    _, dense_acc = _loss_and_acc(model, test_images, test_labels)
    assert dense_acc > 0.9  # a trained model
    results = {}
    for name, cfg in {
        "unstructured": {"method": "prune_unstructured", "sparsity": 0.85},
        "glr": {"method": "glr", "rank": 1, "groups": 2},
    }.items():
        compressed = copy.deepcopy(model)
        apply_compression(compressed, cfg)
        stale = _loss_and_acc(compressed, test_images, test_labels)
        train_batches = training_batches(
            torch.utils.data.TensorDataset(images, labels), 8, 32, seed=0
        )
        assert recalibrate_batchnorm(compressed, train_batches) == 8
        fresh = _loss_and_acc(compressed, test_images, test_labels)
        results[name] = (stale, fresh)
        assert fresh[0] < stale[0], (name, stale, fresh)  # lower test loss
        assert fresh[1] >= stale[1], (name, stale, fresh)
    assert any(fresh[1] > stale[1] + 0.1 for stale, fresh in results.values()), results
