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
cumulative sum of ``||z_ir||^2``. With ``factorization="whitened"`` the same holds with
``U_i`` the left singular vectors of ``W_i S_i`` (``S_i S_i^T`` = damped ``X_i X_i^T``), the
basis of the whitened factors ``U_k U_k^T W_i`` (:mod:`imcompress.compression.factorization`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import numpy.typing as npt
import torch

from imcompress.compression.calibration import capture_inputs
from imcompress.compression.factorization import (
    Factorization,
    gram_blocks,
    split_blocks,
    whitened_basis,
)

FloatArray = npt.NDArray[np.float64]
__all__ = ["capture_inputs", "lowrank_errors", "mask_error", "single_thread"]


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


def lowrank_errors(
    weight: torch.Tensor,
    groups: int,
    group_dim: str,
    inputs: torch.Tensor | None,
    factorization: Factorization | str = "svd",
) -> FloatArray:
    """Relative error of per-group ranks ``k = 1..R`` (index ``k-1``) of ``groups`` groups,
    for the factors that ``factorization`` gives (``whitened`` needs ``inputs``: its Gram
    ``X X^T`` whitens the factors exactly as :meth:`LowRankConv2d.from_conv` does)."""
    if factorization == Factorization["whitened"]:
        if inputs is None:
            raise ValueError("factorization=whitened needs calibration inputs (got none)")
        return _whitened_errors(weight, groups, group_dim, inputs)
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
    return _component_errors(a, b, float((w @ x).pow(2).sum()) or 1.0, group_dim)


def _whitened_errors(
    weight: torch.Tensor, groups: int, group_dim: str, inputs: torch.Tensor
) -> FloatArray:
    """:func:`lowrank_errors` of the whitened factors ``U_k U_k^T W_i`` (U: left singular
    vectors of ``W_i S``); component r of group i's output is ``u_ir u_ir^T W_i X_i``."""
    w = weight.detach().double()
    x = inputs.double()
    blocks = split_blocks(w, groups, group_dim)
    grams = gram_blocks(x @ x.T, w.shape, groups, group_dim)
    cols = blocks[0].shape[1]
    bases, outputs = [], []
    for i, block in enumerate(blocks):
        xi = x[i * cols : (i + 1) * cols] if group_dim == "in" else x
        u = whitened_basis(block, grams[i])
        bases.append(u)
        outputs.append(u.T @ (block @ xi))
    a, b = torch.stack(bases), torch.stack(outputs)  # (g, rows, R), (g, R, N)
    total = float((w.flatten(1) @ x).pow(2).sum()) or 1.0
    return _component_errors(a, b, total, group_dim)


def _component_errors(a: torch.Tensor, b: torch.Tensor, total: float, group_dim: str) -> FloatArray:
    """Relative error ``||sum_i sum_{r >= k} a_ir b_ir^T||^2 / total`` for ranks k = 1..R,
    given the per-group output components ``a`` (g, rows, R) and ``b`` (g, R, N), the a_ir of
    one group orthogonal and in decreasing order of energy."""
    rank = a.shape[2]
    if group_dim == "out":  # disjoint output rows: no cross terms between groups
        energy = a.pow(2).sum(1) * b.pow(2).sum(2)  # (g, R)
        return np.asarray(_tail_sums(energy.sum(0))[1 : rank + 1] / total, dtype=np.float64)
    m = a.shape[1]
    a32, b32 = a.float(), b.float()
    residual = torch.zeros(m, b.shape[2])
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
