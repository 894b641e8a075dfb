"""Layer inputs seen by the pretrained model on training batches ("calibration"), for the
data-aware options: ``factorization: whitened`` and ``criterion: activation``.

For a conv with weight ``W`` (``m = OC`` rows, ``n = IC*K*K`` columns) the inputs are the
im2col columns ``X`` (``n x N``) of its input, ``N`` positions sampled uniformly from the
calibration batches (:func:`capture_inputs`, also the sampler of the planner's damage proxy).
The options read the Gram matrix ``X X^T`` (whitened factorization) and the column norms
``||X_j||_2`` (activation criterion) from them.

Lightning-free: batches are any iterable of input tensors (:func:`training_batches` makes them
from a torch dataset).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

# im2col positions kept per layer (all calibration batches together) for the Gram matrix and
# the column norms: more than the n <= 2304 columns of the ResNet/WRN convs, so the damped Gram
# is well conditioned; the Gram costs n^2 * positions multiply-adds per layer.
CALIBRATION_POSITIONS = 4096
# Images read of every calibration batch: 8 batches give 256 images (SVD-LLM whitens with 256
# samples) and >= 64 positions per image in every ResNet/WRN stage at 32x32, so >= 16k
# positions to sample from; a forward of the whole batch would cost 4-16x more for no more.
CALIBRATION_IMAGES_PER_BATCH = 32

Targets = list[tuple[str, nn.Conv2d]]


def _padding(conv: nn.Conv2d) -> tuple[int, ...]:
    if not isinstance(conv.padding, str):
        return tuple(conv.padding)
    if conv.padding == "valid":
        return (0, 0)
    k_h, k_w = conv.kernel_size
    return ((k_h - 1) // 2, (k_w - 1) // 2)  # "same", as the extractor reads it


@torch.no_grad()
def capture_inputs(
    model: nn.Module,
    batches: Iterable[torch.Tensor],
    targets: Targets,
    max_positions: int = 1024,
    seed: int = 0,
    batch_count: int = 1,
) -> dict[str, torch.Tensor]:
    """im2col inputs ``(IC*K*K, N)`` of every target conv, ``N <= max_positions`` positions
    sampled uniformly from the calibration batches (the model in eval mode, float32 on CPU)."""
    generator = torch.Generator().manual_seed(seed)
    per_batch = max(1, math.ceil(max_positions / max(batch_count, 1)))
    captured: dict[str, list[torch.Tensor]] = {name: [] for name, _ in targets}

    def hook_for(name: str, conv: nn.Conv2d) -> Any:
        def record(_: nn.Module, inputs: tuple[Any, ...]) -> None:
            x = inputs[0].detach().float().cpu()
            cols = F.unfold(
                x,
                conv.kernel_size,
                dilation=conv.dilation,
                padding=_padding(conv),
                stride=conv.stride,
            )  # (B, n, L), channel-major rows like weight.flatten(1)
            cols = cols.permute(1, 0, 2).reshape(cols.shape[1], -1)
            if cols.shape[1] > per_batch:
                pick = torch.randperm(cols.shape[1], generator=generator)[:per_batch]
                cols = cols[:, pick]
            captured[name].append(cols)

        return conv.register_forward_pre_hook(record)

    handles = [hook_for(name, conv) for name, conv in targets]
    modes = {m: m.training for m in model.modules()}
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    try:
        model.eval()
        for batch in batches:
            model(batch.to(device))
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes.items():
            module.training = training
    out = {}
    for name, parts in captured.items():
        if not parts:
            raise ValueError(f"layer {name!r} saw no input during calibration")
        out[name] = torch.cat(parts, dim=1)[:, :max_positions].contiguous()
    return out


def gram(inputs: torch.Tensor) -> torch.Tensor:
    """``X X^T`` (n x n, float64) of im2col inputs ``X`` (n x N)."""
    x = inputs.double()
    return x @ x.T


def input_norms(inputs: torch.Tensor, kernel_shape: tuple[int, ...]) -> torch.Tensor:
    """``||X_j||_2`` of every input column ``j`` as an (IC, K, K) tensor (float32): the
    per-weight input scale of Wanda's score ``|W_ij| * ||X_j||_2`` (Sun et al. 2023,
    arXiv 2306.11695), broadcast over the output channels."""
    return inputs.double().pow(2).sum(1).sqrt().float().reshape(kernel_shape)


def needs_calibration(opts: Any) -> list[str]:
    """The data-aware options ``opts`` (a schema instance or a mapping) sets, as ``key=value``
    (empty: none)."""
    get = opts.get if isinstance(opts, dict) else lambda key, default: getattr(opts, key, default)
    wanted = []
    if str(get("factorization", "svd")) == "whitened":
        wanted.append("compression.factorization=whitened")
    if str(get("criterion", "magnitude")) == "activation":
        wanted.append("compression.criterion=activation")
    return wanted


def training_batches(
    dataset: Dataset[Any],
    count: int,
    batch_size: int,
    seed: int,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> list[torch.Tensor]:
    """The input tensors of ``count`` training batches of ``batch_size``, drawn in a seeded
    random order (one process, no workers: every DDP rank draws the same batches), each passed
    through ``transform`` (normalization). Fewer when the dataset is smaller."""
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
        num_workers=0,
    )
    batches = []
    for batch in loader:
        images = batch[0] if isinstance(batch, list | tuple) else batch
        batches.append(transform(images) if transform is not None else images)
        if len(batches) == count:
            break
    return batches


@dataclass
class Calibration:
    """What the data-aware options need from the dense model, taken before any conversion:
    the dense weights and the im2col inputs of every layer that may be converted."""

    weights: dict[str, torch.Tensor]
    inputs: dict[str, torch.Tensor]


def missing_data_error(wanted: list[str]) -> ValueError:
    """The one-line refusal of a data-aware option without calibration data."""
    return ValueError(
        f"{' and '.join(wanted)} needs calibration data (training batches seen by the pretrained "
        "model): run src/train.py with pretrained=<dense checkpoint>; there is no fallback to the "
        "data-free option"
    )


def collect_calibration(
    model: nn.Module, targets: Targets, batches: Iterable[torch.Tensor]
) -> Calibration:
    """Dense weights and sampled im2col inputs (:data:`CALIBRATION_POSITIONS` per layer) of
    ``targets`` on the first :data:`CALIBRATION_IMAGES_PER_BATCH` images of every batch;
    ValueError when there is no batch."""
    batch_list = [batch[:CALIBRATION_IMAGES_PER_BATCH] for batch in batches]
    if not batch_list:
        raise ValueError("calibration data is empty: no training batch to take layer inputs from")
    weights = {name: conv.weight.detach().clone() for name, conv in targets}
    inputs = capture_inputs(
        model, batch_list, targets, CALIBRATION_POSITIONS, seed=0, batch_count=len(batch_list)
    )
    return Calibration(weights, inputs)


def use_calibration(model: nn.Module, conversion: Any, opts: Any, data: Calibration) -> None:
    """After a conversion: whitened factors for every low-rank layer (``factorization:
    whitened``), input-norm scores for the pruner (``criterion: activation``). The per-layer
    records get the factors' relative output error on the calibration inputs."""
    from imcompress.compression.lowrank import LowRankConv2d

    modules = dict(model.named_modules())
    if str(getattr(opts, "factorization", "svd")) == "whitened":
        for record in conversion.layers:
            name = record["name"]
            module = modules.get(name)
            if not isinstance(module, LowRankConv2d):
                continue
            x = data.inputs[name]
            module.load_factors(data.weights[name], str(opts.factor_split), gram=gram(x))
            record["factorization"] = "whitened"
            record.update(relative_errors(data.weights[name], module.reconstruct(), x))
    if str(getattr(opts, "criterion", "magnitude")) == "activation" and conversion.pruner:
        scale = {
            name: input_norms(data.inputs[name], tuple(data.weights[name].shape[1:]))
            for name, _ in conversion.pruner.targets
        }
        conversion.pruner.use_input_scale(scale)
        conversion.layers = conversion.pruner.records()


def relative_errors(
    weight: torch.Tensor, approx: torch.Tensor, inputs: torch.Tensor
) -> dict[str, float]:
    """``weight_rel_error`` ``||W - W'|| / ||W||`` and ``output_rel_error``
    ``||(W - W') X|| / ||W X||`` (Frobenius) of a replacement ``W'`` on inputs ``X``."""
    w = weight.detach().double().flatten(1).cpu()
    diff = w - approx.detach().double().flatten(1).cpu()
    x = inputs.double()
    out = float((w @ x).norm()) or 1.0
    return {
        "weight_rel_error": round(float(diff.norm()) / (float(w.norm()) or 1.0), 6),
        "output_rel_error": round(float((diff @ x).norm()) / out, 6),
    }
