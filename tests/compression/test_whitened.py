"""Whitened (activation-aware) factorization: full rank is exact, it never loses to SVD on its
calibration inputs, the planner's proxy equals the applied module's error, and it refuses to run
without data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from imcompress.compression import apply_compression
from imcompress.compression.calibration import capture_inputs, gram
from imcompress.compression.factorization import max_rank
from imcompress.compression.lowrank import LowRankConv2d
from imcompress.planner.proxy import lowrank_errors

from .tiny_models import TinyResNet


def _correlated_inputs(n: int, count: int, seed: int) -> torch.Tensor:
    """im2col-like inputs with very unequal directions (what makes whitening matter)."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(n, n, generator=g, dtype=torch.float64)
    scales = torch.logspace(0, -3, n, dtype=torch.float64)
    return mix @ (scales[:, None] * torch.randn(n, count, generator=g, dtype=torch.float64))


def _block_errors(conv: nn.Conv2d, pair: LowRankConv2d, x: torch.Tensor) -> float:
    """Sum over groups of the groups' own output errors ||(W_i - W'_i) X_i||^2."""
    diff = (conv.weight - pair.reconstruct()).detach().double()
    g = pair.groups
    if pair.group_dim == "out":
        return float((diff.flatten(1) @ x).pow(2).sum())
    size = conv.in_channels // g
    cols = size * int(np.prod(conv.kernel_size))
    return sum(
        float(
            (diff[:, i * size : (i + 1) * size].flatten(1) @ x[i * cols : (i + 1) * cols])
            .pow(2)
            .sum()
        )
        for i in range(g)
    )


@pytest.mark.parametrize(("groups", "group_dim"), [(1, "in"), (2, "in"), (4, "out")])
@pytest.mark.parametrize("out_ch", [4, 16])  # m < n/g and m > n/g
def test_full_rank_reproduces_the_dense_layer(groups: int, group_dim: str, out_ch: int) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(8, out_ch, 3, padding=1, bias=True).double()
    x = _correlated_inputs(8 * 9, 30, seed=1)  # fewer positions than columns: singular Gram
    full = max_rank(conv.weight.shape, groups, group_dim)
    pair = LowRankConv2d.from_conv(conv, full, groups=groups, group_dim=group_dim, gram=gram(x))
    images = torch.randn(2, 8, 6, 6, dtype=torch.float64)
    torch.testing.assert_close(pair(images), conv(images), rtol=1e-9, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(
    cin=st.sampled_from([2, 4, 8]),
    cout=st.integers(2, 12),
    groups_dim=st.sampled_from([(1, "in"), (2, "in"), (2, "out")]),
    rank_fraction=st.floats(0.05, 1.0),
    positions=st.integers(5, 200),
    seed=st.integers(0, 10_000),
)
def test_output_error_never_exceeds_svd(
    cin: int,
    cout: int,
    groups_dim: tuple[int, str],
    rank_fraction: float,
    positions: int,
    seed: int,
) -> None:
    """Per group (and so for the layer when the groups' outputs are disjoint or g = 1), the
    whitened factors' output error on the calibration inputs is at most the SVD's."""
    groups, group_dim = groups_dim
    if (cout if group_dim == "out" else cin) % groups:
        groups = 1
    torch.manual_seed(seed)
    conv = nn.Conv2d(cin, cout, 3, bias=False).double()
    x = _correlated_inputs(cin * 9, positions, seed)
    top = max_rank(conv.weight.shape, groups, group_dim)
    rank = max(1, min(top, round(rank_fraction * top)))
    svd = LowRankConv2d.from_conv(conv, rank, groups=groups, group_dim=group_dim)
    whitened = LowRankConv2d.from_conv(conv, rank, groups=groups, group_dim=group_dim, gram=gram(x))
    svd_error = _block_errors(conv, svd, x)
    assert _block_errors(conv, whitened, x) <= svd_error * (1 + 1e-9) + 1e-12


@pytest.mark.parametrize(("groups", "group_dim"), [(1, "in"), (2, "in"), (4, "in"), (2, "out")])
def test_planner_proxy_equals_the_applied_modules_output_error(groups: int, group_dim: str) -> None:
    torch.manual_seed(groups)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 12, 3, padding=1))
    conv = model[2]
    batches = [torch.randn(4, 3, 8, 8) for _ in range(2)]
    x = capture_inputs(model, batches, [("2", conv)], max_positions=300, batch_count=2)["2"]
    errors = lowrank_errors(conv.weight, groups, group_dim, x, factorization="whitened")
    svd_errors = lowrank_errors(conv.weight, groups, group_dim, x)
    w = conv.weight.detach().double().flatten(1)
    xd = x.double()
    for rank in range(1, errors.size + 1):
        pair = LowRankConv2d.from_conv(conv, rank, groups=groups, group_dim=group_dim, gram=gram(x))
        diff = w - pair.reconstruct().detach().double().flatten(1)
        expected = float((diff @ xd).pow(2).sum() / (w @ xd).pow(2).sum())
        assert errors[rank - 1] == pytest.approx(expected, rel=1e-4, abs=1e-7)
    if groups == 1 or group_dim == "out":
        assert np.all(errors <= svd_errors * (1 + 1e-5) + 1e-9)
    with pytest.raises(ValueError, match="whitened needs calibration inputs"):
        lowrank_errors(conv.weight, groups, group_dim, None, factorization="whitened")


def _trained_like(model: nn.Module) -> nn.Module:
    """Random weights, BN statistics from data (so activations are realistic)."""
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(16, 3, 8, 8))
    return model.eval()


def test_apply_compression_whitened_lowers_the_output_error_and_needs_data() -> None:
    torch.manual_seed(0)
    batches = [torch.randn(8, 3, 8, 8) for _ in range(2)]
    cfg = {"method": "glr", "rank": 2, "groups": 2, "factorization": "whitened"}
    svd_model = _trained_like(TinyResNet())
    white_model = TinyResNet()
    white_model.load_state_dict(svd_model.state_dict())
    white_model.eval()
    with pytest.raises(ValueError, match="factorization=whitened needs calibration data") as err:
        apply_compression(white_model, cfg)
    assert "\n" not in str(err.value)
    assert not any(isinstance(m, LowRankConv2d) for m in white_model.modules())  # unchanged
    result = apply_compression(white_model, cfg, calibration=batches)
    apply_compression(svd_model, {**cfg, "factorization": "svd"})
    record = result.layers[0]
    assert record["factorization"] == "whitened"
    assert 0.0 <= record["output_rel_error"] < 1.0
    assert result.options["factorization"] == "whitened"
    # same structure (costs): the same parameter count and module shapes as SVD
    assert [p.shape for p in white_model.parameters()] == [p.shape for p in svd_model.parameters()]
    # structure only (a checkpoint will fill the factors, or costs only): no data needed
    rebuilt = TinyResNet()
    apply_compression(rebuilt, cfg, structure_only=True)
    rebuilt.load_state_dict(white_model.state_dict())
