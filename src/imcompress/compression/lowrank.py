"""Low-rank (LR) and group low-rank (GLR) convolution: a KxK conv ``R`` followed by a 1x1 conv ``L``."""

from __future__ import annotations

from typing import ClassVar, Literal, cast

import torch
from torch import nn

from imcompress.compression.choices import parse_choice
from imcompress.compression.factorization import (
    FactorSplit,
    GroupDim,
    RankMode,
    gram_blocks,
    resolve_rank,
    split_blocks,
    truncated_factors,
    whitened_factors,
)

PaddingMode = Literal["zeros", "reflect", "replicate", "circular"]


def _pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    return int(value[0]), int(value[1])


class LowRankConv2d(nn.Module):
    """``y = L(R(x))`` with ``R``: KxK conv IC -> groups*rank, ``L``: 1x1 conv groups*rank -> OC.

    ``group_dim="in"``: the input channels are split into ``groups``; ``R`` is a grouped conv
    (``groups=groups``) and ``L`` is dense, so ``y = sum_i L_i R_i x_i``.
    ``group_dim="out"``: the output channels are split; ``R`` is dense and ``L`` is a grouped 1x1
    conv. ``groups=1`` is plain low-rank. ``rank`` is the rank of every group. The original
    stride, padding, dilation and padding mode live on ``R``, the original bias on ``L``.

    The crossbar estimator recognizes this module by ``is_low_rank_pair`` and its children
    ``R`` and ``L``.
    """

    is_low_rank_pair: ClassVar[bool] = True

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        rank: int,
        groups: int = 1,
        group_dim: GroupDim | str = "in",
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = 0,
        dilation: int | tuple[int, int] = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        group_dim = parse_choice(GroupDim, group_dim, "group_dim")
        split = in_channels if group_dim == GroupDim["in"] else out_channels
        if groups < 1 or split % groups:
            raise ValueError(
                f"groups={groups} must divide {'in' if group_dim == 'in' else 'out'}_channels={split}"
            )
        if rank < 1:
            raise ValueError(f"rank must be >= 1, got {rank}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.rank = rank
        self.groups = groups
        self.group_dim = group_dim
        self.R = nn.Conv2d(
            in_channels,
            groups * rank,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups if group_dim == GroupDim["in"] else 1,
            bias=False,
            padding_mode=cast(PaddingMode, padding_mode),
            device=device,
            dtype=dtype,
        )
        self.L = nn.Conv2d(
            groups * rank,
            out_channels,
            1,
            groups=groups if group_dim == GroupDim["out"] else 1,
            bias=bias,
            device=device,
            dtype=dtype,
        )

    @classmethod
    def from_conv(
        cls,
        conv: nn.Conv2d,
        rank: int | float,
        groups: int = 1,
        group_dim: GroupDim | str = "in",
        rank_mode: RankMode | str = "per_group",
        factor_split: FactorSplit | str = "balanced",
        gram: torch.Tensor | None = None,
    ) -> LowRankConv2d:
        """Factorize ``conv`` by per-group truncated SVD of its weight, or, given the Gram
        ``X X^T`` of its im2col inputs (``gram``, n x n), by the whitened factorization that
        minimises the output error on those inputs (:func:`whitened_factors`).

        ``rank``: int (per-group rank, or total rank with ``rank_mode="total"``) or float in
        (0, 1] (ratio of the full rank, see :func:`resolve_rank`).
        """
        if not isinstance(conv, nn.Conv2d) or conv.groups != 1:
            raise ValueError("from_conv needs a dense nn.Conv2d (groups=1)")
        rank_mode = parse_choice(RankMode, rank_mode, "rank_mode")
        factor_split = parse_choice(FactorSplit, factor_split, "factor_split")
        group_dim = parse_choice(GroupDim, group_dim, "group_dim")
        split = conv.in_channels if group_dim == GroupDim["in"] else conv.out_channels
        if groups < 1 or split % groups:
            raise ValueError(f"groups={groups} must divide {split} (group_dim={group_dim})")
        weight = conv.weight.detach()
        k = resolve_rank(rank, weight.shape, groups, group_dim, rank_mode)
        module = cls(
            conv.in_channels,
            conv.out_channels,
            _pair(conv.kernel_size),
            k,
            groups=groups,
            group_dim=group_dim,
            stride=_pair(conv.stride),
            padding=conv.padding if isinstance(conv.padding, str) else _pair(conv.padding),
            dilation=_pair(conv.dilation),
            bias=conv.bias is not None,
            padding_mode=conv.padding_mode,
            device=weight.device,
            dtype=weight.dtype,
        )
        module.load_factors(weight, factor_split, gram=gram)
        if conv.bias is not None and module.L.bias is not None:
            with torch.no_grad():
                module.L.bias.copy_(conv.bias.detach())
        return module

    @torch.no_grad()
    def load_factors(
        self, weight: torch.Tensor, factor_split: str = "balanced", gram: torch.Tensor | None = None
    ) -> None:
        """Set ``R`` and ``L`` to the per-group rank-``rank`` factors of ``weight``: truncated
        SVD, or whitened by the input Gram ``gram`` (n x n) when it is given."""
        k, g = self.rank, self.groups
        kernel = self.R.weight.shape[2:]
        blocks = split_blocks(weight, g, self.group_dim)
        grams = gram_blocks(gram, weight.shape, g, self.group_dim) if gram is not None else None
        lefts, rights = [], []
        for i, block in enumerate(blocks):
            if grams is None:
                left, right = truncated_factors(block, k, factor_split)
            else:
                left, right = whitened_factors(block, grams[i], k, factor_split)
            lefts.append(left)
            rights.append(right)
        r_in = self.R.weight.shape[1]
        self.R.weight.copy_(torch.cat(rights).reshape(g * k, r_in, *kernel))
        if self.group_dim == GroupDim["in"]:
            self.L.weight.copy_(torch.cat(lefts, dim=1).reshape(self.out_channels, g * k, 1, 1))
        else:
            self.L.weight.copy_(torch.cat(lefts).reshape(self.out_channels, k, 1, 1))

    def reconstruct(self) -> torch.Tensor:
        """The dense (OC, IC, K, K) weight ``L @ R`` that this pair computes (bias excluded)."""
        k, g = self.rank, self.groups
        kernel = self.R.weight.shape[2:]
        right = self.R.weight.flatten(1)  # (g*k, IC/g*K*K) for in, (g*k, IC*K*K) for out
        if self.group_dim == GroupDim["in"]:
            left = self.L.weight.flatten(1)  # (OC, g*k)
            blocks = [left[:, i * k : (i + 1) * k] @ right[i * k : (i + 1) * k] for i in range(g)]
            dense = torch.cat([b.reshape(self.out_channels, -1, *kernel) for b in blocks], dim=1)
            return dense
        left = self.L.weight.flatten(1)  # (OC, k): rows of group i use columns of group i
        size = self.out_channels // g
        blocks = [left[i * size : (i + 1) * size] @ right[i * k : (i + 1) * k] for i in range(g)]
        return torch.cat(blocks).reshape(self.out_channels, self.in_channels, *kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.L(self.R(x))

    def extra_repr(self) -> str:
        kernel = tuple(self.R.weight.shape[2:])
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={kernel}, rank={self.rank}, "
            f"groups={self.groups}, group_dim={self.group_dim}, stride={self.R.stride}, "
            f"padding={self.R.padding}, bias={self.L.bias is not None}"
        )
