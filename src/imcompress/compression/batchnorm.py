"""BatchNorm re-estimation after compression.

Compressing a layer changes the distribution of its outputs, so the running mean and variance
that the BatchNorm after it learned on the dense model are stale: a compressed model evaluated
with them is often at chance even when its weights are good. Re-estimating them on a few
training batches (train mode, no gradient, cumulative average) is the standard repair (e.g.
Li et al., "Revisiting Batch Normalization for Practical Domain Adaptation", 2016; the
``update_bn`` step of SWA, Izmailov et al. 2018), done here with
:func:`torch.optim.swa_utils.update_bn`.

Lightning-free: a model and an iterable of input batches.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.optim.swa_utils import update_bn


def batchnorm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """Every BatchNorm of ``model`` that tracks running statistics."""
    return [
        m
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]


@torch.no_grad()
def recalibrate_batchnorm(
    model: nn.Module, batches: Iterable[torch.Tensor], device: torch.device | str | None = None
) -> int:
    """Re-estimate the running statistics of every BatchNorm of ``model`` on ``batches``.

    The statistics are reset and replaced by the cumulative average (``momentum=None``) of the
    per-batch means and unbiased variances, every module's train/eval mode and momentum are
    restored afterwards, and no parameter changes. Returns the number of batches used (0 when
    the model has no BatchNorm or ``batches`` is empty: nothing is changed then).
    """
    if not batchnorm_layers(model):
        return 0
    batch_list = list(batches)
    if not batch_list:
        return 0
    if device is None:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
    modes = {m: m.training for m in model.modules()}
    try:
        update_bn(batch_list, model, device=torch.device(device))
    finally:
        for module, training in modes.items():
            module.training = training
    return len(batch_list)
