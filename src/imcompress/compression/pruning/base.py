"""Mask bookkeeping shared by the pruning methods, on top of ``torch.nn.utils.prune``.

Every parameter that a method may ever mask gets ``prune.identity`` at construction, so the
state dict has the same keys (``weight_orig``, ``weight_mask``) from the first step on: a
checkpoint written at any point of a run loads into a freshly compressed model. Later mask
updates overwrite the ``*_mask`` buffers in place; prune's forward pre-hook multiplies them in
at every forward, so pruned weights stay zero through fine-tuning.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from enum import StrEnum
from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune

ParamKey = tuple[nn.Module, str]
# `criterion` option: score of a weight, |w| | |w| * ||X_j||_2 with X_j the calibration inputs
# of its input column (Wanda, Sun et al. 2023, arXiv 2306.11695).
Criterion = StrEnum("Criterion", ["magnitude", "activation"])


def effective(module: nn.Module, name: str = "weight") -> torch.Tensor:
    """The masked value of ``module.<name>`` (orig * mask when pruned), detached."""
    if prune.is_pruned(module) and hasattr(module, name + "_mask"):
        return (getattr(module, name + "_orig") * getattr(module, name + "_mask")).detach()
    return getattr(module, name).detach()


def keep_largest(scores: torch.Tensor, n_prune: int) -> torch.Tensor:
    """Float mask of the shape of ``scores`` that zeros its ``n_prune`` smallest entries."""
    mask = torch.ones(scores.numel(), dtype=scores.dtype, device=scores.device)
    if n_prune > 0:
        idx = torch.topk(scores.flatten(), n_prune, largest=False, sorted=False).indices
        mask[idx] = 0.0
    return mask.view_as(scores)


def mask_of(module: nn.Module, name: str = "weight") -> torch.Tensor:
    """The current mask of ``module.<name>`` (all ones when not pruned)."""
    mask = getattr(module, name + "_mask", None)
    if mask is None:
        return torch.ones_like(getattr(module, name))
    assert isinstance(mask, torch.Tensor)
    return mask


class MaskedPruner(ABC):
    """Owns the masks of ``targets`` (the selected convs) and of any coupled parameters."""

    method: str = "prune"

    def __init__(self, targets: list[tuple[str, nn.Conv2d]]) -> None:
        self.targets = targets
        self.current_target: float | None = None
        # criterion=activation: per target, ||X_j||_2 of its input columns as (IC, K, K)
        self.input_scale: dict[str, torch.Tensor] | None = None

    def scored(self, name: str, conv: nn.Module) -> torch.Tensor:
        """The masked weight of target ``name``, times its input norms under the activation
        criterion (Wanda's ``|W_ij| * ||X_j||``, sign kept); the plain masked weight otherwise."""
        weight = effective(conv)
        if self.input_scale is None:
            return weight
        return weight * self.input_scale[name].to(weight)

    @torch.no_grad()
    def use_input_scale(self, scale: dict[str, torch.Tensor]) -> None:
        """Score by input norms from now on (criterion=activation); masks already set are
        recomputed from the unpruned weights at the current target."""
        missing = [name for name, _ in self.targets if name not in scale]
        if missing:
            raise ValueError(f"no calibration inputs for the pruned layer(s) {missing}")
        self.input_scale = {name: scale[name] for name, _ in self.targets}
        if self.current_target is not None:
            for module, name in self.masked_params():
                getattr(module, name + "_mask").fill_(1.0)
            self.prune_to(self.current_target)

    def masked_params(self) -> list[ParamKey]:
        """Every (module, parameter name) this pruner masks; targets' weights by default."""
        return [(conv, "weight") for _, conv in self.targets]

    def install(self) -> None:
        """Attach all-ones masks (``prune.identity``) to every parameter in :meth:`masked_params`."""
        for module, name in self.masked_params():
            if not hasattr(module, name + "_mask"):
                prune.identity(module, name)

    @abstractmethod
    def compute_masks(self, sparsity: float) -> dict[ParamKey, torch.Tensor]:
        """New masks for the target ``sparsity`` (the method's own meaning of it)."""

    @torch.no_grad()
    def prune_to(self, sparsity: float) -> None:
        """Recompute and write all masks for the target ``sparsity``."""
        masks = self.compute_masks(sparsity)
        for (module, name), mask in masks.items():
            buffer = getattr(module, name + "_mask")
            buffer.copy_(mask.to(buffer))
            setattr(module, name, getattr(module, name + "_orig") * buffer)
        self.current_target = sparsity

    def layer_sparsity(self, conv: nn.Module) -> float:
        """Fraction of zero mask entries of ``conv.weight``."""
        mask = mask_of(conv)
        return float((mask == 0).sum()) / mask.numel()

    def sparsity(self) -> float:
        """Fraction of zero weights over all target convs (the logged ``compress/sparsity``)."""
        masks = [mask_of(conv) for _, conv in self.targets]
        zeros = sum(int((mask == 0).sum()) for mask in masks)
        return zeros / max(sum(mask.numel() for mask in masks), 1)

    def extra_metrics(self) -> dict[str, float]:
        """Method-specific scalars logged next to ``compress/sparsity``."""
        return {}

    def layer_record(self, name: str, conv: nn.Conv2d) -> dict[str, Any]:
        """Per-layer record for the summary (updated on every call)."""
        mask = mask_of(conv)
        kept = int(mask.sum())
        bias = conv.bias.numel() if conv.bias is not None else 0
        return {
            "name": name,
            "method": self.method,
            "shape": list(mask.shape),
            "stride": list(conv.stride),
            "rank": None,
            "groups": None,
            "params_before": mask.numel() + bias,
            "params_after": kept + bias,
            "sparsity": round(1.0 - kept / mask.numel(), 6),
        }

    def records(self) -> list[dict[str, Any]]:
        """Records of all target layers."""
        return [self.layer_record(name, conv) for name, conv in self.targets]

    def state_dict(self) -> dict[str, Any]:
        """State that the masks alone do not hold (kept in the callback's checkpoint entry)."""
        return {"current_target": self.current_target}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.current_target = state.get("current_target")
