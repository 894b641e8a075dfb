"""Benchmark of the crossbar estimator; every ratio is measured in this run.

1. Whole-network VW-SDK window search on VGG-13 at 224x224 (padding 1): the vectorized search
   against a plain loop over every (i, j) candidate, as the published code does (target >= 30x).
2. A full ResNet-20 report: layer extraction from the torch model, im2col + SDK + VW-SDK, energy
   (target < 20 ms).
3. The Lightning callback's cost against a ResNet-20 CIFAR training epoch (target < 1 %).

Run: ``.venv/bin/python bench/bench_crossbar.py`` (``--quick`` for fewer repetitions).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from imcompress.crossbar import Crossbar, HardwareConfig, LayerTable, estimate, map_layers
from imcompress.crossbar.candidates import window_terms
from imcompress.crossbar.search import _search_grid

VGG13 = [  # (input side, in channels, out channels), 3x3 convs, padding 1
    (224, 3, 64), (224, 64, 64), (112, 64, 128), (112, 128, 128), (56, 128, 256),
    (56, 256, 256), (28, 256, 512), (28, 512, 512), (14, 512, 512), (14, 512, 512),
]  # fmt: skip


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


def loop_vwsdk_exact(
    side: int, ic: int, oc: int, kernel: int, padding: int, rows: int, cols: int
) -> int:
    """Plain loop over every candidate (i, j), minimum, then the im2col fallback."""
    out = side + 2 * padding - kernel + 1
    im2col = out * out * cdiv(kernel * kernel * ic, rows) * cdiv(oc, cols)
    best = None
    for j in range(1, out + 1):
        for i in range(1, out + 1):
            ict = rows // ((kernel + i - 1) * (kernel + j - 1))
            oct_ = cols // (i * j)
            if ict == 0 or oct_ == 0:
                continue
            cycles = cdiv(out, i) * cdiv(out, j) * cdiv(ic, ict) * cdiv(oc, oct_)
            if best is None or cycles < best:
                best = cycles
    return im2col if best is None or best >= im2col else best


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median seconds over ``repeat`` calls, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def clear_caches() -> None:
    """Forget the cached window grids, so that the next call pays for them."""
    window_terms.cache_clear()
    _search_grid.cache_clear()


def bench_vgg13(repeat: int, loop_repeat: int) -> None:
    print("== VW-SDK exact window search, VGG-13 at 224x224 (10 convs, padding 1)")
    table = LayerTable.from_shapes(
        height=[v[0] for v in VGG13],
        kernel=3,
        in_channels=[v[1] for v in VGG13],
        out_channels=[v[2] for v in VGG13],
        padding=1,
    )
    print(
        f"{'array':>9} {'plain loop':>12} {'vectorized':>12} {'(cold)':>10} {'speedup':>9}  cycles equal"
    )
    for size in (64, 128, 256, 512):
        xbar = Crossbar(size, size)
        loop_s, loop_cycles = timed(
            lambda size=size: [
                loop_vwsdk_exact(s, ic, oc, 3, 1, size, size) for s, ic, oc in VGG13
            ],
            loop_repeat,
        )
        clear_caches()
        start = time.perf_counter()
        map_layers(table, xbar, "vwsdk", "exact", "physical")
        cold_s = time.perf_counter() - start
        vec_s, result = timed(
            lambda xbar=xbar: map_layers(table, xbar, "vwsdk", "exact", "physical"), repeat
        )
        same = result.cycles.tolist() == loop_cycles
        print(
            f"{size:>4}x{size:<4} {1e3 * loop_s:>10.1f}ms {1e3 * vec_s:>10.2f}ms {1e3 * cold_s:>8.2f}ms "
            f"{loop_s / vec_s:>8.0f}x  {same}"
        )
    xbar = Crossbar(512, 512)
    ref_s, _ = timed(lambda: map_layers(table, xbar, "vwsdk", "reference", "physical"), repeat)
    print(f"reference search (published FIFO selection), 512x512: {1e3 * ref_s:.2f} ms")


def resnet20() -> nn.Module:
    try:
        from imcompress.models.resnet import CifarResNet

        return CifarResNet(depth=20, num_classes=10)
    except ImportError:  # pragma: no cover - the models package is optional here
        raise SystemExit("imcompress.models is needed for the ResNet-20 figures") from None


def bench_resnet20(repeat: int) -> float:
    print("== full ResNet-20 report (extraction + im2col/SDK/VW-SDK + energy), 32x32 input")
    model = resnet20()
    for name, hw in (
        ("imc128", HardwareConfig(rows=128, cols=128)),
        ("imc512", HardwareConfig(rows=512, cols=512)),
    ):
        start = time.perf_counter()
        estimate(model, (3, 32, 32), hw).totals()
        first = time.perf_counter() - start
        seconds, report = timed(lambda hw=hw: estimate(model, (3, 32, 32), hw).totals(), repeat)
        print(
            f"{name}: {1e3 * seconds:.2f} ms per report (first call, tracing the model: {1e3 * first:.1f} ms); "
            f"vwsdk speedup vs im2col {report['vwsdk/speedup_vs_im2col']:.2f}x"
        )
    return seconds


def bench_callback(report_seconds: float, steps: int) -> None:
    print("== callback overhead vs a CIFAR-10 ResNet-20 training epoch (batch 128, 391 steps)")
    torch.manual_seed(0)
    model = resnet20()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = torch.randn(128, 3, 32, 32), torch.randint(0, 10, (128,))

    def step() -> None:
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()

    step()  # warm-up
    step_s, _ = timed(step, steps)
    epoch_s = 391 * step_s
    print(
        f"training step {1e3 * step_s:.0f} ms -> epoch ~{epoch_s:.0f} s; one estimate per epoch "
        f"{1e3 * report_seconds:.2f} ms = {100 * report_seconds / epoch_s:.4f} % of the epoch"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    repeat = 5 if args.quick else 30
    torch.set_num_threads(max(1, torch.get_num_threads()))
    bench_vgg13(repeat, 1 if args.quick else 5)
    seconds = bench_resnet20(repeat)
    bench_callback(seconds, 2 if args.quick else 5)


if __name__ == "__main__":
    main()
