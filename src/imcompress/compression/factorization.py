"""Truncated-SVD factorization of conv weights, per group, and rank bookkeeping.

A conv weight (OC, IC, K, K) is the matrix ``W = weight.flatten(1)`` with ``m = OC`` rows and
``n = IC*K*K`` columns. Group low-rank splits ``W`` into ``g`` blocks, either along the input
channels (``group_dim="in"``: column blocks of ``IC/g`` channels) or along the output channels
(``group_dim="out"``: row blocks of ``OC/g`` filters), and factorizes every block with the same
rank ``k``: ``W_i ~ L_i R_i``.

Two factorizations (``factorization`` option): ``svd`` minimises the weight error
``||W_i - L_i R_i||_F`` (truncated SVD, Eckart-Young); ``whitened`` minimises the output error
on calibration inputs ``X_i`` (im2col columns of the layer's input), ``||(W_i - L_i R_i) S||_F``
with ``S S^T = X_i X_i^T + lambda I`` the damped input Gram (SVD-LLM, Wang et al. 2024,
arXiv 2403.07378; ASVD, Yuan et al. 2023, arXiv 2312.05821). Its solution is the projection
``U_k U_k^T W_i`` onto the top-k left singular vectors of ``W_i S``, i.e. the top-k
eigenvectors of ``W_i (X_i X_i^T + lambda I) W_i^T``: no inverse of ``S`` is needed.
"""

from __future__ import annotations

import math
from enum import StrEnum

import torch

# The vocabularies of the low-rank options (see imcompress.compression.choices).
# Which channels group low-rank splits: the input channels (the paper's GLR) or the output ones.
GroupDim = StrEnum("GroupDim", ["in", "out"])
# What `rank` counts: the rank of every group, or the layer's total rank over all groups.
RankMode = StrEnum("RankMode", ["per_group", "total"])
# Where the singular values go: L = U S^1/2, R = S^1/2 V^T | L = U S, R = V^T | L = U, R = S V^T.
FactorSplit = StrEnum("FactorSplit", ["balanced", "left", "right"])
# What the factors minimise: the weight error (svd) | the output error on calibration inputs.
Factorization = StrEnum("Factorization", ["svd", "whitened"])

# lambda of the damped Gram X X^T + lambda I, relative to the mean diagonal of X X^T (the
# "percdamp" of GPTQ/SVD-LLM-style whitening): keeps the whitened factors full rank on inputs
# that span fewer directions than the layer has columns, and pulls them toward plain SVD.
WHITENING_DAMPING = 0.01


def split_blocks(
    weight: torch.Tensor, groups: int, group_dim: GroupDim | str
) -> list[torch.Tensor]:
    """Split a (OC, IC, K, K) weight into ``groups`` block matrices (rows = output channels)."""
    out_ch, in_ch = weight.shape[:2]
    if group_dim == GroupDim["in"]:
        size = in_ch // groups
        return [weight[:, i * size : (i + 1) * size].flatten(1) for i in range(groups)]
    size = out_ch // groups
    return [weight[i * size : (i + 1) * size].flatten(1) for i in range(groups)]


def block_shape(
    weight_shape: torch.Size | tuple[int, ...], groups: int, group_dim: GroupDim | str
) -> tuple[int, int]:
    """(rows, cols) of one block matrix of a (OC, IC, K, K) weight split into ``groups``."""
    out_ch, in_ch = int(weight_shape[0]), int(weight_shape[1])
    kernel_cells = int(math.prod(weight_shape[2:]))
    if group_dim == GroupDim["in"]:
        return out_ch, (in_ch // groups) * kernel_cells
    return out_ch // groups, in_ch * kernel_cells


def max_rank(
    weight_shape: torch.Size | tuple[int, ...], groups: int, group_dim: GroupDim | str
) -> int:
    """Largest useful per-group rank: ``min(m, n/g)`` (in) or ``min(m/g, n)`` (out)."""
    return min(block_shape(weight_shape, groups, group_dim))


def resolve_rank(
    rank: int | float,
    weight_shape: torch.Size | tuple[int, ...],
    groups: int,
    group_dim: GroupDim | str,
    rank_mode: RankMode | str,
) -> int:
    """Per-group rank ``k`` for one layer, or ValueError with the valid range.

    ``rank`` is an int (absolute rank) or a float in (0, 1] (ratio of the full rank).
    ``rank_mode="per_group"``: every group gets rank ``rank`` (int) or ``round(rank * max_rank)``.
    ``rank_mode="total"``: ``rank`` is the layer's total rank, split as ``rank / groups`` per group
    (an int rank must then be a multiple of ``groups``); a ratio is taken of the full rank of the
    whole weight, ``min(OC, IC*K*K)``, then divided by ``groups``.
    """
    limit = max_rank(weight_shape, groups, group_dim)
    if isinstance(rank, bool) or not isinstance(rank, int | float):
        raise ValueError(f"rank must be an int >= 1 or a float in (0, 1], got {rank!r}")
    if isinstance(rank, float):
        if not 0.0 < rank <= 1.0:
            raise ValueError(f"rank ratio must be in (0, 1], got {rank}")
        if rank_mode == RankMode["total"]:
            full = min(int(weight_shape[0]), int(math.prod(weight_shape[1:])))
            return min(limit, max(1, round(rank * full / groups)))
        return min(limit, max(1, round(rank * limit)))
    if rank < 1:
        raise ValueError(f"rank must be >= 1, got {rank}")
    if rank_mode == RankMode["total"]:
        if rank % groups:
            raise ValueError(
                f"rank_mode=total needs rank divisible by groups={groups}, got rank={rank}"
            )
        per_group = rank // groups
        if per_group > limit:
            raise ValueError(
                f"total rank {rank} gives {per_group} per group; valid total rank: "
                f"{groups}..{groups * limit} in steps of {groups}"
            )
        return per_group
    if rank > limit:
        raise ValueError(f"rank {rank} exceeds the maximum per-group rank; valid: 1..{limit}")
    return rank


def truncated_factors(
    matrix: torch.Tensor, rank: int, factor_split: FactorSplit | str = "balanced"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rank-``rank`` factors ``(L, R)`` of ``matrix`` (m x n) from its SVD: ``L @ R ~ matrix``.

    ``balanced``: L = U S^1/2, R = S^1/2 V^T; ``left``: L = U S, R = V^T; ``right``: L = U,
    R = S V^T. Computed in float64 and returned in the input dtype.
    """
    u, s, vh = torch.linalg.svd(matrix.detach().double(), full_matrices=False)
    u, s, vh = u[:, :rank], s[:rank], vh[:rank]
    if factor_split == FactorSplit["balanced"]:
        root = s.sqrt()
        left, right = u * root, root[:, None] * vh
    elif factor_split == FactorSplit["left"]:
        left, right = u * s, vh
    elif factor_split == FactorSplit["right"]:
        left, right = u, s[:, None] * vh
    else:
        raise ValueError(
            f"factor_split must be one of {[m.value for m in FactorSplit]}, got {factor_split!r}"
        )
    return left.to(matrix.dtype), right.to(matrix.dtype)


def truncation_error(
    weight: torch.Tensor, rank: int, groups: int, group_dim: GroupDim | str
) -> float:
    """Frobenius error ``sqrt(sum_i ||W_i - [W_i]_k||_F^2)`` of the per-group rank-k truncation."""
    total = 0.0
    for block in split_blocks(weight.detach().double(), groups, group_dim):
        s = torch.linalg.svdvals(block)
        total += float((s[rank:] ** 2).sum())
    return math.sqrt(total)


def damped_gram(gram: torch.Tensor, damping: float = WHITENING_DAMPING) -> torch.Tensor:
    """``G + lambda I`` (float64) with ``lambda = damping * mean(diag G)`` (identity if G = 0)."""
    g = gram.detach().double()
    scale = float(g.diagonal().mean()) if g.numel() else 0.0
    eye = torch.eye(g.shape[0], dtype=g.dtype, device=g.device)
    if scale <= 0.0:
        return eye
    return g + damping * scale * eye


def gram_blocks(
    gram: torch.Tensor,
    weight_shape: torch.Size | tuple[int, ...],
    groups: int,
    group_dim: GroupDim | str,
) -> list[torch.Tensor]:
    """The input Gram of every block of :func:`split_blocks`: the diagonal block of the group's
    input columns (``in``) or the whole Gram (``out``: every group sees all inputs)."""
    if group_dim == GroupDim["in"]:
        cols = block_shape(weight_shape, groups, group_dim)[1]
        return [gram[i * cols : (i + 1) * cols, i * cols : (i + 1) * cols] for i in range(groups)]
    return [gram] * groups


def whitened_basis(block: torch.Tensor, gram: torch.Tensor) -> torch.Tensor:
    """Left singular vectors of ``W S`` (``S S^T`` = damped ``gram``), columns in decreasing
    singular value order, at most ``min(m, n)`` of them (float64)."""
    w = block.detach().double()
    c = w @ damped_gram(gram).to(w.device) @ w.T
    _, basis = torch.linalg.eigh((c + c.T) / 2)
    return basis.flip(-1)[:, : min(w.shape)]


def whitened_factors(
    matrix: torch.Tensor,
    gram: torch.Tensor,
    rank: int,
    factor_split: FactorSplit | str = "balanced",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rank-``rank`` factors ``(L, R)`` minimising ``||(matrix - L R) S||_F`` for the damped
    input Gram ``gram = X X^T`` (n x n): ``L R = U_k U_k^T W``. ``factor_split`` spreads the
    singular values of that product as in :func:`truncated_factors`; float64 inside."""
    w = matrix.detach().double()
    u = whitened_basis(w, gram)[:, :rank]
    left, right = truncated_factors(u @ (u.T @ w), rank, factor_split)
    return left.to(matrix.dtype), right.to(matrix.dtype)
