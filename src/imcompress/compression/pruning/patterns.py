"""Kernel pattern sets and per-kernel / per-input-channel / per-layer pattern selection.

A pattern set is a 0/1 float tensor of shape (P, K*K): row p marks the kept cells of a KxK
kernel in row-major order (for 3x3: 0 1 2 / 3 4 5 / 6 7 8, centre 4).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from itertools import combinations

import torch

from imcompress.compression.choices import parse_choice

# `pattern_set` option: PConv's 4 fixed shapes | PatDNN-style most frequent | all n-entry patterns.
PatternSet = StrEnum("PatternSet", ["pconv", "patdnn", "nentry"])
# `pattern_dim` option: what shares one pattern: a kernel | an input channel | the whole layer.
PatternDim = StrEnum("PatternDim", ["kernel", "input_channel", "layer"])

CENTRE_3X3 = 4
ARMS_3X3 = (1, 3, 5, 7)  # up, left, right, down


def patterns_from_cells(cells: Sequence[Sequence[int]], kernel_cells: int) -> torch.Tensor:
    """Pattern tensor from lists of kept cell indices."""
    out = torch.zeros(len(cells), kernel_cells)
    for row, kept in enumerate(cells):
        out[row, list(kept)] = 1.0
    return out


def pconv_patterns() -> torch.Tensor:
    """PConv's 4 patterns of a 3x3 kernel: the centre cross with one arm removed."""
    cross = (CENTRE_3X3, *ARMS_3X3)
    return patterns_from_cells([[c for c in cross if c != arm] for arm in ARMS_3X3], 9)


def nentry_patterns(entries: int, kernel_cells: int = 9) -> torch.Tensor:
    """All ``C(kernel_cells, entries)`` patterns that keep exactly ``entries`` cells."""
    return patterns_from_cells(list(combinations(range(kernel_cells), entries)), kernel_cells)


def patdnn_patterns(
    weights: Sequence[torch.Tensor], entries: int = 4, num_patterns: int = 8, centre: bool = True
) -> torch.Tensor:
    """PatDNN-style set: the ``num_patterns`` most frequent top-``entries`` magnitude patterns
    over all kernels of ``weights`` (each (OC, IC, K, K)); with ``centre`` the centre cell is
    always kept (PatDNN's choice) and the other ``entries - 1`` cells are the largest.
    Ties in frequency go to the pattern with the smaller cell bitmask (deterministic)."""
    kernel_cells = int(weights[0][0, 0].numel())
    codes = []
    for weight in weights:
        mags = weight.detach().abs().flatten(0, 1).flatten(1).double()
        if centre:
            mags[:, kernel_cells // 2] = float("inf")
        top = torch.topk(mags, entries, dim=1).indices
        codes.append((2 ** top.to(torch.int64)).sum(dim=1))
    values, counts = torch.unique(torch.cat(codes), return_counts=True)
    order = sorted(range(len(values)), key=lambda i: (-int(counts[i]), int(values[i])))
    chosen = [int(values[i]) for i in order[:num_patterns]]
    cells = [[c for c in range(kernel_cells) if code >> c & 1] for code in chosen]
    return patterns_from_cells(cells, kernel_cells)


def choose_patterns(
    weight: torch.Tensor, patterns: torch.Tensor, dim: PatternDim | str
) -> torch.Tensor:
    """0/1 mask (OC, IC, K, K): every kernel (``dim="kernel"``), every input channel shared by
    all output channels (``"input_channel"``) or the whole layer (``"layer"``) takes the pattern
    that keeps the largest L2 norm of ``weight``."""
    dim = parse_choice(PatternDim, dim, "pattern_dim")
    out_ch, in_ch = weight.shape[:2]
    sq = weight.detach().flatten(2).pow(2).to(patterns.dtype)  # (OC, IC, KK)
    pats = patterns.to(sq.device)
    if dim == PatternDim["kernel"]:
        chosen = pats[(sq @ pats.T).argmax(dim=-1)]
    elif dim == PatternDim["input_channel"]:
        chosen = pats[(sq.sum(0) @ pats.T).argmax(dim=-1)].expand(out_ch, -1, -1)
    else:
        chosen = pats[(sq.sum((0, 1)) @ pats.T).argmax()].expand(out_ch, in_ch, -1)
    return chosen.reshape(weight.shape).to(weight.dtype).clone()
