"""Training throughput (images/s) of dense, low-rank, group low-rank and pruned ResNet-20 on
this machine's CPU; every ratio is against the dense model measured in the same run.

One step = forward + backward + SGD update on a batch of 32x32 images (the platform's
ClassificationModule math, without Lightning's loop overhead). Pruned models keep dense tensors
with masks (torch.nn.utils.prune), so their speed on a CPU shows the masking overhead, not the
crossbar speedup (that is what the cost model is for).

Run: ``.venv/bin/python bench/bench_training.py`` (``--quick`` for fewer steps).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch
from torch.nn import functional as F

from imcompress.compression import apply_compression
from imcompress.models import CifarResNet

METHODS: dict[str, dict[str, Any] | None] = {
    "dense": None,
    "lr (rank 0.27)": {"method": "lr", "rank": 0.27},
    "glr g=2 (rank 0.245)": {"method": "glr", "rank": 0.245, "groups": 2},
    "glr g=4 (rank 0.208)": {"method": "glr", "rank": 0.208, "groups": 4},
    "unstructured 0.7": {"method": "prune_unstructured", "sparsity": 0.7},
    "channel 0.7": {"method": "prune_channel", "sparsity": 0.7},
    "pattern pconv 0.7": {"method": "prune_pattern", "sparsity": 0.7, "pattern_set": "pconv"},
}


def images_per_second(
    config: dict[str, Any] | None, batch: int, steps: int, channels: int
) -> float:
    torch.manual_seed(0)
    model = CifarResNet(20, num_classes=10, in_channels=channels)
    if config is not None:
        apply_compression(model, config)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images = torch.randn(batch, channels, 32, 32)
    labels = torch.randint(0, 10, (batch,))

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(images), labels).backward()
        optimizer.step()

    for _ in range(2):  # warm-up
        step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument(
        "--channels", type=int, default=3, help="input channels (1 = Fashion-MNIST)"
    )
    args = parser.parse_args()
    steps = 3 if args.quick else 10
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, {steps} steps"
    )
    dense = None
    for name, config in METHODS.items():
        rate = images_per_second(config, args.batch, steps, args.channels)
        dense = dense or rate
        print(f"{name:24s} {rate:8.0f} images/s   {rate / dense:5.2f}x dense")


if __name__ == "__main__":
    main()
