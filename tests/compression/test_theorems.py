"""Theorem 1 (GLR error <= LR error at equal per-group rank) and Theorem 2 (SDK identity)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from imcompress.compression import LowRankConv2d
from imcompress.compression.factorization import max_rank
from imcompress.compression.sdk import (
    dense_weight,
    fold_sdk_outputs,
    sdk_conv2d,
    sdk_matrix,
    sdk_patches,
    window_major_permutation,
)


def _errors(conv: nn.Conv2d, rank: int, groups: int, group_dim: str) -> tuple[float, float]:
    """(eps_g, eps): Frobenius errors of GLR and LR at the same per-group rank, via reconstruct."""
    w = conv.weight.detach().double()
    glr = LowRankConv2d.from_conv(conv, rank, groups=groups, group_dim=group_dim)
    lr = LowRankConv2d.from_conv(conv, rank, groups=1)
    eps_g = float((w - glr.reconstruct().detach().double()).norm())
    eps = float((w - lr.reconstruct().detach().double()).norm())
    return eps_g, eps


@settings(max_examples=40, deadline=None)
@given(
    per_group=st.integers(1, 4),
    other=st.integers(1, 8),
    groups=st.sampled_from([1, 2, 3, 4]),
    kernel=st.sampled_from([1, 3]),
    group_dim=st.sampled_from(["in", "out"]),
    rank_frac=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**16),
)
def test_theorem1_random_weights(
    per_group: int,
    other: int,
    groups: int,
    kernel: int,
    group_dim: str,
    rank_frac: float,
    seed: int,
) -> None:
    split = per_group * groups
    ic, oc = (split, other) if group_dim == "in" else (other, split)
    torch.manual_seed(seed)
    conv = nn.Conv2d(ic, oc, kernel, bias=False).double()
    limit = max_rank(conv.weight.shape, groups, group_dim)
    rank = 1 + round(rank_frac * (limit - 1))
    eps_g, eps = _errors(conv, rank, groups, group_dim)
    assert eps_g <= eps + 1e-9 * (1 + eps)


@pytest.fixture(scope="module")
def trained_conv() -> nn.Conv2d:
    """A conv fitted for a few Adam steps to a fixed random teacher (structured weights)."""
    torch.manual_seed(0)
    conv, teacher = nn.Conv2d(8, 16, 3, padding=1), nn.Conv2d(8, 16, 3, padding=1)
    opt = torch.optim.Adam(conv.parameters(), lr=1e-2)
    for _ in range(40):
        x = torch.randn(16, 8, 8, 8)
        loss = F.mse_loss(conv(x), teacher(x).detach().relu())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return conv


@pytest.mark.parametrize("group_dim", ["in", "out"])
def test_theorem1_trained_weights(group_dim: str, trained_conv: nn.Conv2d) -> None:
    conv = trained_conv
    for groups in (2, 4, 8):
        limit = max_rank(conv.weight.shape, groups, group_dim)
        for rank in sorted({min(r, limit) for r in (1, 2, 4, limit)}):
            eps_g, eps = _errors(conv, rank, groups, group_dim)
            assert eps_g <= eps + 1e-6 * (1 + eps), (groups, rank)


@pytest.mark.parametrize("window", [(1, 1), (2, 2), (2, 3), (3, 2)])
def test_sdk_conv_equals_conv2d(window: tuple[int, int]) -> None:
    torch.manual_seed(0)
    weight = torch.randn(5, 3, 3, 3, dtype=torch.float64)
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)  # output 6x6 with padding 1
    torch.testing.assert_close(
        sdk_conv2d(x, weight, window, padding=1), F.conv2d(x, weight, padding=1)
    )


@pytest.mark.parametrize(
    ("groups", "group_dim", "window"),
    [
        (1, "in", (2, 2)),
        (2, "in", (2, 3)),
        (4, "in", (3, 3)),
        (2, "out", (2, 2)),
        (3, "out", (1, 2)),
    ],
)
def test_theorem2_sdk_identity(groups: int, group_dim: str, window: tuple[int, int]) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 6 if group_dim == "out" else 5, 3, bias=False).double()
    if group_dim == "out" and 6 % groups:
        pytest.skip("groups must divide OC")
    pair = LowRankConv2d.from_conv(conv, 2, groups=groups, group_dim=group_dim)
    w = pair.reconstruct().detach()
    r_dense = dense_weight(pair.R)  # (g*k, IC, 3, 3), grouped R expanded
    l_dense = dense_weight(pair.L).flatten(1)  # (OC, g*k)
    n = window[0] * window[1]
    d = window_major_permutation(w.shape[0], n)
    lhs = sdk_matrix(w, window)[d]
    rhs = torch.kron(torch.eye(n, dtype=l_dense.dtype), l_dense) @ sdk_matrix(
        r_dense, window, order="window_major"
    )
    torch.testing.assert_close(lhs, rhs)
    assert torch.equal(sdk_matrix(w, window, order="window_major"), sdk_matrix(w, window)[d])
    # without D the identity does not hold (the permutation matters)
    if n > 1:
        assert not torch.allclose(sdk_matrix(w, window), rhs)


def test_theorem2_lowrank_pair_through_sdk_equals_module() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, padding=1, bias=False).double()
    pair = LowRankConv2d.from_conv(conv, 2, groups=2)
    window = (2, 2)
    x = torch.randn(2, 4, 8, 8, dtype=torch.float64)
    patches = sdk_patches(x, (3, 3), window, padding=1)
    r_out = sdk_matrix(dense_weight(pair.R), window, order="window_major") @ patches
    l_rep = torch.kron(torch.eye(4, dtype=x.dtype), dense_weight(pair.L).flatten(1))
    y = fold_sdk_outputs(l_rep @ r_out, 6, window, (8, 8), order="window_major")
    torch.testing.assert_close(y, pair(x).detach())
