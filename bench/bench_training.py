"""Training throughput of every compression method relative to the dense model in NCHW, eager.

One step = forward + backward + SGD update on a batch of 32x32 images (the math of the platform's
ClassificationModule, without Lightning's loop). Cases: ResNet-20 and WRN-16-4, each with every
method at the study's budget (~30 % of the compressed convs' weights kept), each in three
variants: ``nchw`` (eager, contiguous), ``channels_last`` (eager; the default
``trainer.memory_format``) and, with ``--compile``, ``compiled`` (channels_last + torch.compile
with inductor, like ``trainer.compile=true``).

Every case is built and warmed up first (compilation happens there, and its time is printed);
then ``--rounds`` rounds time ``--steps`` steps of every case in turn, in a rotated order, so a
change of machine load hits all cases alike. Each ratio is taken within a round against that
round's dense NCHW eager case of the same model; the median over rounds is printed.

Peak RSS: every method of every model once more in a fresh process (``--rss``): the default
variant for ``--steps`` steps, the peak RSS (``VmHWM``) of that process, next to a process that only
imported everything.

Pruned models keep dense tensors with masks (torch.nn.utils.prune): their CPU speed shows the
masking overhead, not the crossbar's saving (that is what the cost model is for).

Run: ``.venv/bin/python bench/bench_training.py`` (``--quick``: one round, one step;
``--compile``: add the compiled variant, several minutes of compilation on 2 cores).
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from imcompress.compression import apply_compression
from imcompress.models import CifarResNet, WideResNet

MODELS: dict[str, Callable[[int], nn.Module]] = {
    "ResNet-20": lambda channels: CifarResNet(20, num_classes=10, in_channels=channels),
    "WRN-16-4": lambda channels: WideResNet(16, 4, num_classes=10, in_channels=channels),
}
# The study's budget (conf/experiment/study/): ~30 % of the compressed 3x3 convs' weights kept.
METHODS: dict[str, dict[str, Any] | None] = {
    "dense": None,
    "LR (rank 0.27)": {"method": "lr", "rank": 0.27},
    "GLR-2 (rank 0.245)": {"method": "glr", "rank": 0.245, "groups": 2},
    "GLR-4 (rank 0.208)": {"method": "glr", "rank": 0.208, "groups": 4},
    "unstructured 0.7": {"method": "prune_unstructured", "sparsity": 0.7},
    "channel 0.7": {"method": "prune_channel", "sparsity": 0.7},
    "pattern (PConv) 0.7": {"method": "prune_pattern", "sparsity": 0.7, "pattern_set": "pconv"},
}
VARIANTS = ("nchw", "channels_last", "compiled")
FORMATS = {"nchw": torch.contiguous_format}  # every other variant is channels_last


@dataclass
class Case:
    """One (model, method, variant) with its own model, optimizer and batch."""

    model: str
    method: str
    variant: str
    step: Callable[[], None]
    batch: int
    warmup_s: float = 0.0


def build_step(
    model_name: str, method: str, variant: str, batch: int, channels: int
) -> Callable[[], None]:
    """A closure running one training step of this case on a fixed random batch."""
    torch.manual_seed(0)
    model = MODELS[model_name](channels)
    config = METHODS[method]
    if config is not None:
        apply_compression(model, config)
    memory_format = FORMATS.get(variant, torch.channels_last)
    model.to(memory_format=memory_format).train()
    if variant == "compiled":
        model.compile()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images = torch.randn(batch, channels, 32, 32).to(memory_format=memory_format)
    labels = torch.randint(0, 10, (batch,))

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(images), labels).backward()
        optimizer.step()

    return step


def peak_rss_mb(
    model_name: str | None, method: str, batch: int, channels: int, steps: int
) -> float:
    """``ru_maxrss`` (MB) of this process after ``steps`` default-variant steps (None: no model)."""
    if model_name is not None:
        step = build_step(model_name, method, "channels_last", batch, channels)
        for _ in range(steps):
            step()
    return high_water_rss_mb()


def high_water_rss_mb() -> float:
    """Peak RSS of this process image (MB). Linux's ``VmHWM`` belongs to the address space, which
    ``exec`` replaces; ``ru_maxrss`` would carry over the peak of the process that forked this
    one (a spawned worker of a 5 GB benchmark parent reported 5.5 GB for every method)."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB where /proc is missing


def measure(cases: list[Case], rounds: int, steps: int) -> dict[tuple[str, str, str], list[float]]:
    """Images/s of every case in every round, interleaved (rotated order per round)."""
    rates: dict[tuple[str, str, str], list[float]] = {}
    for index in range(rounds):
        shift = index * len(cases) // max(rounds, 1)
        for case in cases[shift:] + cases[:shift]:
            started = time.perf_counter()
            for _ in range(steps):
                case.step()
            rate = case.batch * steps / (time.perf_counter() - started)
            rates.setdefault((case.model, case.method, case.variant), []).append(rate)
    return rates


def ratios(
    rates: dict[tuple[str, str, str], list[float]], model: str, method: str, variant: str
) -> float | None:
    """Median over rounds of this case's rate / the same round's dense NCHW eager rate."""
    own = rates.get((model, method, variant))
    base = rates[(model, "dense", "nchw")]
    if own is None:
        return None
    return statistics.median(r / b for r, b in zip(own, base, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round of one step")
    parser.add_argument("--compile", action="store_true", help="add the torch.compile variant")
    parser.add_argument("--rss", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2, help="timed steps per case and round")
    parser.add_argument("--channels", type=int, default=1, help="input channels (1: FMNIST)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    args = parser.parse_args()
    rounds, steps = (1, 1) if args.quick else (args.rounds, args.steps)
    variants = VARIANTS if args.compile else VARIANTS[:2]
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, "
        f"{args.channels}x32x32, {rounds} rounds x {steps} steps per case after 1 warm-up step",
        flush=True,
    )
    started = time.perf_counter()
    cases = []
    for model in args.models:
        for method in METHODS:
            for variant in variants:
                step = build_step(model, method, variant, args.batch, args.channels)
                began = time.perf_counter()
                step()  # warm-up; compiles the compiled variant
                cases.append(Case(model, method, variant, step, args.batch))
                cases[-1].warmup_s = time.perf_counter() - began
    compiled = [case.warmup_s for case in cases if case.variant == "compiled"]
    if compiled:
        print(f"compile (first step) per case: {min(compiled):.0f}-{max(compiled):.0f} s")
    rates = measure(cases, rounds, steps)

    rss: dict[tuple[str, str], float] = {}
    if args.rss:
        spawn = multiprocessing.get_context("spawn")
        jobs = [(None, "", 0)] + [(m, method, 0) for m in args.models for method in METHODS]
        for model_name, method, _ in jobs:
            with spawn.Pool(1) as pool:
                value = pool.apply(
                    peak_rss_mb, (model_name, method, args.batch, args.channels, steps)
                )
            rss[(model_name or "", method)] = value

    header = "| model | method | " + " | ".join(variants) + " |" + (" peak RSS |" if rss else "")
    print("\nthroughput relative to dense NCHW eager of the same model (median over rounds)\n")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for model in args.models:
        base = statistics.median(rates[(model, "dense", "nchw")])
        for method in METHODS:
            cells = []
            for variant in variants:
                value = ratios(rates, model, method, variant)
                cells.append("" if value is None else f"{value:.2f}x")
            if method == "dense":
                cells[0] += f" ({base:.0f} img/s)"
            line = f"| {model} | {method} | " + " | ".join(cells) + " |"
            if rss:
                line += f" {rss[(model, method)]:.0f} MB |"
            print(line)
    if rss:
        print(
            f"\npeak RSS of a process that only imported torch and imcompress: {rss[('', '')]:.0f} MB"
        )
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
