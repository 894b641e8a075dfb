"""Benchmark of the low-rank initialisation: plain SVD vs the whitened factorization, whose
time includes the calibration (forward passes of the dense model on the calibration batches
with the im2col sampling hooks, and the per-layer Gram matrices).

For ResNet-20 and WRN-16-4 (1x32x32 inputs as Fashion-MNIST, random weights, BatchNorm in eval
mode) compressed with GLR-4 at rank 0.25 (the study's layers), ``compression.calibration_batches``
= 8 batches of 128 (``data.batch_size`` of fashion_mnist; calibration reads 32 images of each)
unless changed:

* svd = ``apply_compression`` with ``factorization=svd`` (targets: none, the baseline);
* whitened = ``apply_compression`` with ``factorization=whitened`` and the batches
  (targets: ResNet-20 <= 2 s, WRN-16-4 <= 10 s on the project's 2 CPU cores), split into
  capture (forward + sampling) and the rest (Grams, whitened factors);
* BN re-estimation on 16 batches (``compression.bn_recalibration_batches``' default), for scale;
* distillation: one training step of a ResNet-20 GLR-4 student with and without the dense
  teacher's forward (``finetune.distill.alpha=0.5``).

Each case is timed ``--repeats`` times on a fresh copy of the model; the median is reported.
Run: ``PYTHONPATH=src .venv/bin/python bench/bench_factorization.py`` (``--quick``: 1 repeat).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from typing import Any

import torch
from omegaconf import OmegaConf

from imcompress.compression import apply_compression
from imcompress.compression.batchnorm import recalibrate_batchnorm
from imcompress.compression.calibration import (
    CALIBRATION_IMAGES_PER_BATCH,
    CALIBRATION_POSITIONS,
    capture_inputs,
)
from imcompress.compression.selection import select_layers
from imcompress.models.build import build_model

MODELS = {
    "ResNet-20": ({"_target_": "imcompress.models.CifarResNet", "depth": 20}, 2.0),
    "WRN-16-4": (
        {"_target_": "imcompress.models.WideResNet", "depth": 16, "widen_factor": 4},
        10.0,
    ),
}
GLR = {"method": "glr", "rank": 0.25, "groups": 4, "bn_recalibration_batches": 0}


def median_time(fn: Any, model: torch.nn.Module, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        work = copy.deepcopy(model)
        start = time.perf_counter()
        fn(work)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_model(name: str, spec: dict[str, Any], batches: list[torch.Tensor], repeats: int) -> dict:
    torch.manual_seed(0)
    model = build_model(OmegaConf.create({"name": name, **spec}), 1, 10).eval()
    svd = median_time(
        lambda m: apply_compression(m, {**GLR, "factorization": "svd"}), model, repeats
    )
    whitened = median_time(
        lambda m: apply_compression(m, {**GLR, "factorization": "whitened"}, calibration=batches),
        model,
        repeats,
    )
    targets = select_layers(model, [], [])
    images = [b[:CALIBRATION_IMAGES_PER_BATCH] for b in batches]  # what calibration reads
    capture = median_time(
        lambda m: capture_inputs(
            m, images, select_layers(m, [], []), CALIBRATION_POSITIONS, 0, len(images)
        ),
        model,
        repeats,
    )
    bn = median_time(lambda m: recalibrate_batchnorm(m, batches + batches), model, repeats)
    return {
        "layers": len(targets),
        "svd": svd,
        "whitened": whitened,
        "capture": capture,
        "bn16": bn,
    }


def step_time(model: torch.nn.Module, teacher: torch.nn.Module | None, steps: int) -> float:
    """Median seconds of one training step (forward, loss, backward, SGD) on a batch of 128."""
    from imcompress.training.module import ClassificationModule

    module = ClassificationModule(
        model,
        num_classes=10,
        optimizer=lambda params: torch.optim.SGD(params, lr=0.01),
        teacher=teacher,
        distill_alpha=0.5 if teacher is not None else 0.0,
    )
    optimizer = module.configure_optimizers()
    assert isinstance(optimizer, torch.optim.Optimizer)
    g = torch.Generator().manual_seed(1)
    batch = (torch.randn(128, 1, 32, 32, generator=g), torch.randint(0, 10, (128,), generator=g))
    module.train()
    times = []
    for _ in range(steps + 1):  # the first one warms up
        start = time.perf_counter()
        optimizer.zero_grad()
        module.training_step(batch, 0).backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def bench_distillation(steps: int) -> None:
    """Extra cost per training step of distillation (ResNet-20 GLR-4 student, dense teacher)."""
    import warnings

    warnings.filterwarnings("ignore", message=".*self.log.*")
    spec = MODELS["ResNet-20"][0]
    torch.manual_seed(0)
    dense = build_model(OmegaConf.create({"name": "ResNet-20", **spec}), 1, 10)
    student = copy.deepcopy(dense)
    apply_compression(student, {**GLR, "factorization": "svd"})
    plain = step_time(copy.deepcopy(student), None, steps)
    distilled = step_time(copy.deepcopy(student), copy.deepcopy(dense), steps)
    print(
        f"\ndistillation, ResNet-20 GLR-4 student, batch 128, median of {steps} steps: "
        f"{plain * 1e3:.0f} ms -> {distilled * 1e3:.0f} ms per step "
        f"(+{(distilled / plain - 1) * 100:.0f} %)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repeat per case")
    parser.add_argument("--batches", type=int, default=8, help="calibration batches")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--no-distill", action="store_true", help="skip the distillation step")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats = 1 if args.quick else 3
    g = torch.Generator().manual_seed(0)
    batches = [torch.randn(args.batch_size, 1, 32, 32, generator=g) for _ in range(args.batches)]
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; GLR-4 rank 0.25; "
        f"{args.batches} calibration batches of {args.batch_size}x1x32x32, "
        f"{CALIBRATION_POSITIONS} positions per layer; median of {repeats}"
    )
    print(
        "| model | layers | svd | whitened (incl. calibration) | of which capture | target | BN re-est. (16 batches) |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in args.models:
        spec, target = MODELS[name]
        r = bench_model(name, spec, batches, repeats)
        verdict = "met" if r["whitened"] <= target else "missed"
        print(
            f"| {name} | {r['layers']} | {r['svd']:.2f} s | {r['whitened']:.2f} s | "
            f"{r['capture']:.2f} s | <= {target:.0f} s ({verdict}) | {r['bn16']:.2f} s |"
        )
    if not args.no_distill:
        bench_distillation(3 if args.quick else 10)


if __name__ == "__main__":
    main()
