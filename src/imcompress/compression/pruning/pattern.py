"""Pattern pruning of KxK convs, with connectivity pruning to reach a target sparsity.

Every kernel keeps the cells of one pattern of the set (PConv, PatDNN-style, or n-entry),
which alone gives sparsity ``1 - entries/K^2``. A higher target sparsity ``s`` removes whole
units on top (PatDNN's connectivity pruning), the fraction ``(s - s_pattern)/(1 - s_pattern)``
with the smallest kept L2 norm: kernels for ``pattern_dim`` kernel/layer, whole input channels
(all output channels at once, so crossbar rows can be skipped) for ``input_channel``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from imcompress.compression.choices import parse_choice
from imcompress.compression.pruning.base import MaskedPruner, ParamKey, effective, keep_largest
from imcompress.compression.pruning.patterns import (
    PatternDim,
    PatternSet,
    choose_patterns,
    nentry_patterns,
    patdnn_patterns,
    pconv_patterns,
)


def build_pattern_set(
    name: PatternSet | str,
    weights: list[torch.Tensor],
    entries: int,
    num_patterns: int,
    centre: bool,
) -> torch.Tensor:
    """The (P, K*K) pattern set ``name`` (pconv | patdnn | nentry) for these weights."""
    name = parse_choice(PatternSet, name, "pattern_set")
    kernel_cells = int(weights[0][0, 0].numel())
    if name == PatternSet["pconv"]:
        return pconv_patterns()
    if name == PatternSet["patdnn"]:
        return patdnn_patterns(weights, entries, num_patterns, centre)
    return nentry_patterns(entries, kernel_cells)


class PatternPruner(MaskedPruner):
    """Pattern masks (+ connectivity pruning above the pattern sparsity), per layer."""

    method = "prune_pattern"

    def __init__(
        self,
        targets: list[tuple[str, nn.Conv2d]],
        pattern_set: PatternSet | str = "pconv",
        entries: int = 4,
        num_patterns: int = 8,
        centre: bool = True,
        dim: PatternDim | str = "kernel",
    ) -> None:
        super().__init__(targets)
        self.pattern_set_name = parse_choice(PatternSet, pattern_set, "pattern_set")
        self.dim = parse_choice(PatternDim, dim, "pattern_dim")
        self.set_options = (entries, num_patterns, centre)
        weights = [effective(conv) for _, conv in targets]
        self.patterns = build_pattern_set(pattern_set, weights, entries, num_patterns, centre)
        self.install()

    def use_input_scale(self, scale: dict[str, torch.Tensor]) -> None:
        """As :meth:`MaskedPruner.use_input_scale`; a PatDNN set is chosen from the scores of
        the unpruned weights."""
        self.input_scale = {name: scale[name] for name, _ in self.targets if name in scale}
        if self.pattern_set_name == PatternSet["patdnn"]:
            with torch.no_grad():
                for module, name in self.masked_params():
                    getattr(module, name + "_mask").fill_(1.0)
            weights = [self.scored(name, conv) for name, conv in self.targets]
            self.patterns = build_pattern_set(self.pattern_set_name, weights, *self.set_options)
        super().use_input_scale(scale)

    @property
    def pattern_sparsity(self) -> float:
        """Sparsity that the patterns alone give: 1 - entries / K^2."""
        return 1.0 - float(self.patterns[0].sum()) / self.patterns.shape[1]

    def connectivity_fraction(self, sparsity: float) -> float:
        """Fraction of units removed on top of the patterns to reach ``sparsity``."""
        base = self.pattern_sparsity
        return max(0.0, (sparsity - base) / (1.0 - base))

    def layer_mask(self, weight: torch.Tensor, sparsity: float) -> torch.Tensor:
        """Pattern + connectivity mask (OC, IC, K, K) of one weight."""
        mask = choose_patterns(weight, self.patterns, self.dim)
        kept = (weight * mask).flatten(2).pow(2).sum(-1)  # (OC, IC) kept energy per kernel
        fraction = self.connectivity_fraction(sparsity)
        if self.dim == PatternDim["input_channel"]:
            units = kept.sum(0)
            n_prune = min(round(fraction * units.numel()), units.numel() - 1)
            return mask * keep_largest(units, n_prune)[None, :, None, None]
        n_prune = min(round(fraction * kept.numel()), kept.numel() - 1)
        return mask * keep_largest(kept, n_prune)[:, :, None, None]

    def compute_masks(self, sparsity: float) -> dict[ParamKey, torch.Tensor]:
        return {
            (conv, "weight"): self.layer_mask(self.scored(name, conv), sparsity)
            for name, conv in self.targets
        }

    def pattern_cells(self) -> list[list[int]]:
        """The pattern set as lists of kept cell indices (row-major)."""
        return [[int(c) for c in row.nonzero().flatten()] for row in self.patterns]

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "patterns": self.patterns.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if "patterns" in state:
            self.patterns = torch.tensor(state["patterns"], dtype=self.patterns.dtype)
