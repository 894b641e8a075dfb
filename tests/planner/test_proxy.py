"""The damage proxy equals the relative error of the module that a plan builds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from imcompress.compression.lowrank import LowRankConv2d
from imcompress.compression.pruning.base import keep_largest
from imcompress.planner.proxy import capture_inputs, lowrank_errors, mask_error


@pytest.mark.parametrize("group_dim", ["in", "out"])
@pytest.mark.parametrize("groups", [1, 2, 4])
@pytest.mark.parametrize("with_data", [False, True])
def test_lowrank_errors_match_the_factorized_module(
    group_dim: str, groups: int, with_data: bool
) -> None:
    torch.manual_seed(groups)
    conv = nn.Conv2d(8, 12, 3, padding=1, bias=False).double()
    x = torch.randn(8 * 9, 40, dtype=torch.float64) if with_data else None
    errors = lowrank_errors(conv.weight, groups, group_dim, x)
    w = conv.weight.detach().flatten(1)
    for rank in range(1, errors.size + 1):
        pair = LowRankConv2d.from_conv(conv, rank, groups=groups, group_dim=group_dim)
        diff = w - pair.reconstruct().detach().flatten(1)
        if x is None:
            expected = float(diff.pow(2).sum() / w.pow(2).sum())
        else:
            expected = float((diff @ x).pow(2).sum() / (w @ x).pow(2).sum())
        assert errors[rank - 1] == pytest.approx(expected, rel=1e-5, abs=1e-9)
    assert errors[-1] == pytest.approx(0.0, abs=1e-9)


def test_mask_error_and_captured_inputs_reproduce_the_layer_output() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, stride=2))
    batch = torch.randn(3, 2, 9, 9)
    conv = model[2]
    inputs = capture_inputs(model, [batch], [("2", conv)], max_positions=10_000)["2"]
    mask = keep_largest(conv.weight.detach().abs(), 100)
    with torch.no_grad():
        hidden = model[1](model[0](batch))
        reference = torch.nn.functional.conv2d(hidden, conv.weight, stride=2)  # no bias
        expected_out = torch.nn.functional.conv2d(hidden, conv.weight * mask, stride=2)
    expected = float((reference - expected_out).pow(2).sum() / reference.pow(2).sum())
    assert mask_error(conv.weight, mask, inputs) == pytest.approx(expected, rel=1e-4)
    assert inputs.shape == (4 * 9, 3 * 4 * 4)
    sampled = capture_inputs(model, [batch], [("2", conv)], max_positions=7)["2"]
    assert sampled.shape == (36, 7)
    assert np.isclose(mask_error(conv.weight, torch.ones_like(mask), None), 0.0)
