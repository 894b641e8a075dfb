"""Damage proxy: how much a candidate changes a layer's output on real inputs.

For a layer with weight ``W`` (``m = OC`` rows, ``n = IC*K*K`` columns) and its im2col inputs
``X`` (``n x N``, positions sampled from a calibration batch), the error of a replacement
``W_hat`` is ``||W X - W_hat X||_F^2 / ||W X||_F^2``. Without inputs it is the plain weight error
``||W - W_hat||_F^2 / ||W||_F^2``.

Low rank: every rank of a group setting comes from one SVD. With ``group_dim="in"`` the
blocks ``W_i = U_i S_i V_i^T`` act on disjoint input rows, ``Y_i = W_i X_i = U_i Z_i`` with
``Z_i = S_i V_i^T X_i``, and the residual of per-group rank ``k`` is
``sum_i sum_{r >= k} u_ir z_ir^T``; it is accumulated from ``r = R-1`` down to 1, one
``(m x g)(g x N)`` product per rank, so all ranks cost about as much as one dense product per
group count. With ``group_dim="out"`` the output blocks are disjoint and the error is a
cumulative sum of ``||z_ir||^2``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn

FloatArray = npt.NDArray[np.float64]


@contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread: many small SVDs and products on a busy machine are many times
    faster without thread contention (measured: a 64x576 SVD 1.1 s on 2 busy threads, 3 ms on 1)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@torch.no_grad()
def capture_inputs(
    model: nn.Module,
    batches: Iterable[torch.Tensor],
    targets: list[tuple[str, nn.Conv2d]],
    max_positions: int = 1024,
    seed: int = 0,
    batch_count: int = 1,
) -> dict[str, torch.Tensor]:
    """im2col inputs ``(IC*K*K, N)`` of every target conv, ``N <= max_positions`` positions
    sampled uniformly from the calibration batches (the dense model, eval mode)."""
    generator = torch.Generator().manual_seed(seed)
    per_batch = max(1, math.ceil(max_positions / max(batch_count, 1)))
    captured: dict[str, list[torch.Tensor]] = {name: [] for name, _ in targets}

    def hook_for(name: str, conv: nn.Conv2d) -> Any:
        def record(_: nn.Module, inputs: tuple[Any, ...]) -> None:
            x = inputs[0].detach().float().cpu()
            k_h, k_w = conv.kernel_size
            padding: tuple[int, ...] = (
                tuple(conv.padding)
                if not isinstance(conv.padding, str)
                else (0, 0)
                if conv.padding == "valid"
                else ((k_h - 1) // 2, (k_w - 1) // 2)  # "same", as the extractor reads it
            )
            cols = F.unfold(
                x, conv.kernel_size, dilation=conv.dilation, padding=padding, stride=conv.stride
            )  # (B, n, L), channel-major rows like weight.flatten(1)
            cols = cols.permute(1, 0, 2).reshape(cols.shape[1], -1)
            if cols.shape[1] > per_batch:
                pick = torch.randperm(cols.shape[1], generator=generator)[:per_batch]
                cols = cols[:, pick]
            captured[name].append(cols)

        return conv.register_forward_pre_hook(record)

    handles = [hook_for(name, conv) for name, conv in targets]
    modes = {m: m.training for m in model.modules()}
    try:
        model.eval()
        for batch in batches:
            model(batch)
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


def lowrank_errors(
    weight: torch.Tensor, groups: int, group_dim: str, inputs: torch.Tensor | None
) -> FloatArray:
    """Relative error of per-group ranks ``k = 1..R`` (index ``k-1``) of ``groups`` groups."""
    w = weight.detach().double().flatten(1)
    m, n = w.shape
    if group_dim == "in":
        blocks = w.reshape(m, groups, n // groups).permute(1, 0, 2)  # (g, m, n/g)
    else:
        blocks = w.reshape(groups, m // groups, n)  # (g, m/g, n)
    rows, cols = blocks.shape[1:]
    rank = min(rows, cols)
    # Singular vectors from the smaller Gram matrix (eigh is much cheaper than a batched SVD).
    if rows <= cols:
        s2, basis = torch.linalg.eigh(blocks @ blocks.transpose(1, 2))  # basis = U
    else:
        s2, basis = torch.linalg.eigh(blocks.transpose(1, 2) @ blocks)  # basis = V
    s2, basis = s2.flip(-1).clamp_min(0.0), basis.flip(-1)
    if inputs is None:
        total = float(w.pow(2).sum()) or 1.0
        return np.asarray(_tail_sums(s2.sum(0))[1 : rank + 1] / total, dtype=np.float64)
    x = inputs.double()
    if group_dim == "in":
        xb = x.reshape(groups, n // groups, -1)
    else:
        xb = x.unsqueeze(0).expand(groups, n, x.shape[1])
    # Component r of group i's output is a_ir b_ir^T: a = U, b = U^T W_i X_i, or a = W_i V,
    # b = V^T X_i (both equal u_ir s_ir v_ir^T X_i); the a_ir of one group are orthogonal.
    if rows <= cols:
        a, b = basis, basis.transpose(1, 2) @ (blocks @ xb)
    else:
        a, b = blocks @ basis, basis.transpose(1, 2) @ xb
    total = float((w @ x).pow(2).sum()) or 1.0
    if group_dim == "out":  # disjoint output rows: no cross terms between groups
        energy = a.pow(2).sum(1) * b.pow(2).sum(2)  # (g, R)
        return np.asarray(_tail_sums(energy.sum(0))[1 : rank + 1] / total, dtype=np.float64)
    a32, b32 = a.float(), b.float()
    residual = torch.zeros(m, x.shape[1])
    errors = np.zeros(rank + 1)
    for k in range(rank - 1, 0, -1):  # add component k: residual of per-group rank k
        residual.addmm_(a32[:, :, k].T, b32[:, k, :])
        errors[k] = float(residual.pow(2).sum())
    return np.asarray(errors[1 : rank + 1] / total, dtype=np.float64)


def _tail_sums(values: torch.Tensor) -> FloatArray:
    """``out[k] = sum(values[k:])`` for k = 0..len (``out[len] = 0``)."""
    v = values.detach().double().cpu().numpy()
    out = np.zeros(v.size + 1)
    out[:-1] = np.cumsum(v[::-1])[::-1]
    return out


def mask_error(weight: torch.Tensor, mask: torch.Tensor, inputs: torch.Tensor | None) -> float:
    """Relative error of keeping ``weight * mask`` (output error with inputs, else weight error)."""
    w = weight.detach().double().flatten(1)
    removed = w * (1.0 - mask.detach().double().flatten(1))
    if inputs is None:
        total = float(w.pow(2).sum()) or 1.0
        return float(removed.pow(2).sum()) / total
    x = inputs.double()
    total = float((w @ x).pow(2).sum()) or 1.0
    return float((removed @ x).pow(2).sum()) / total
