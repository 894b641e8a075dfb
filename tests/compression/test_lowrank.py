"""LowRankConv2d: exactness at full rank, per-group structure, parameter counts, options."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from imcompress.compression import LowRankConv2d
from imcompress.compression.factorization import max_rank, resolve_rank, truncated_factors


def _conv(ic: int = 8, oc: int = 12, k: int = 3, **kw: object) -> nn.Conv2d:
    torch.manual_seed(1)
    return nn.Conv2d(ic, oc, k, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("group_dim", ["in", "out"])
@pytest.mark.parametrize("groups", [1, 2, 4])
def test_full_rank_reproduces_conv(group_dim: str, groups: int) -> None:
    conv = _conv(8, 12, 3, stride=2, padding=1, dilation=1, bias=True)
    if group_dim == "out" and 12 % groups:
        pytest.skip("groups must divide OC")
    full = max_rank(conv.weight.shape, groups, group_dim)
    lr = LowRankConv2d.from_conv(conv, full, groups=groups, group_dim=group_dim)
    torch.testing.assert_close(lr.reconstruct(), conv.weight, atol=1e-5, rtol=0)
    x = torch.randn(3, 8, 11, 11)
    torch.testing.assert_close(lr(x), conv(x), atol=1e-4, rtol=0)


def test_carries_stride_padding_dilation_bias() -> None:
    conv = _conv(4, 6, 3, stride=2, padding=2, dilation=2, bias=True)
    lr = LowRankConv2d.from_conv(conv, 1.0, groups=2)
    assert lr.R.stride == (2, 2) and lr.R.padding == (2, 2) and lr.R.dilation == (2, 2)
    assert lr.R.bias is None and lr.L.bias is not None
    torch.testing.assert_close(lr.L.bias, conv.bias)
    x = torch.randn(2, 4, 13, 13)
    torch.testing.assert_close(lr(x), conv(x), atol=1e-4, rtol=0)
    no_bias = LowRankConv2d.from_conv(_conv(4, 6, 3, bias=False), 2)
    assert no_bias.L.bias is None


def test_structure_for_estimator() -> None:
    lr_in = LowRankConv2d.from_conv(_conv(8, 12), 3, groups=4, group_dim="in")
    assert LowRankConv2d.is_low_rank_pair is True
    assert isinstance(lr_in.R, nn.Conv2d) and isinstance(lr_in.L, nn.Conv2d)
    assert (lr_in.R.in_channels, lr_in.R.out_channels, lr_in.R.groups) == (8, 12, 4)
    assert (lr_in.L.in_channels, lr_in.L.out_channels, lr_in.L.groups) == (12, 12, 1)
    assert lr_in.L.kernel_size == (1, 1) and lr_in.R.kernel_size == (3, 3)
    lr_out = LowRankConv2d.from_conv(_conv(8, 12), 3, groups=4, group_dim="out")
    assert (lr_out.R.groups, lr_out.L.groups) == (1, 4)
    assert "rank=3, groups=4, group_dim=out" in repr(lr_out)


def test_glr_forward_is_sum_of_per_group_factorizations() -> None:
    conv = _conv(8, 10, 3, padding=1, bias=True)
    g, k = 4, 3
    lr = LowRankConv2d.from_conv(conv, k, groups=g)
    x = torch.randn(2, 8, 7, 7)
    expected = conv.bias.detach()[None, :, None, None].expand(2, 10, 7, 7).clone()
    size = 8 // g
    for i in range(g):
        block = conv.weight.detach()[:, i * size : (i + 1) * size]
        left, right = truncated_factors(block.flatten(1), k)
        r_i = right.reshape(k, size, 3, 3)
        expected += F.conv2d(
            F.conv2d(x[:, i * size : (i + 1) * size], r_i, padding=1), left[:, :, None, None]
        )
    torch.testing.assert_close(lr(x), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("groups", [1, 2, 4])
def test_parameter_count(groups: int, bias: bool) -> None:
    ic, oc, kk, k = 8, 12, 3, 2
    m, n = oc, ic * kk * kk
    lr_in = LowRankConv2d.from_conv(_conv(ic, oc, kk, bias=bias), k, groups=groups)
    assert sum(p.numel() for p in lr_in.parameters()) == k * (n + groups * m) + bias * oc
    lr_out = LowRankConv2d.from_conv(
        _conv(ic, oc, kk, bias=bias), k, groups=groups, group_dim="out"
    )
    assert sum(p.numel() for p in lr_out.parameters()) == k * (groups * n + m) + bias * oc


@pytest.mark.parametrize("split", ["balanced", "left", "right"])
def test_factor_split_changes_factors_not_product(split: str) -> None:
    conv = _conv(6, 6)
    ref = LowRankConv2d.from_conv(conv, 3, factor_split="balanced").reconstruct()
    lr = LowRankConv2d.from_conv(conv, 3, factor_split=split)
    torch.testing.assert_close(lr.reconstruct(), ref, atol=1e-5, rtol=0)
    s = torch.linalg.svdvals(conv.weight.detach().flatten(1).double())[:3]
    l_norms = lr.L.weight.detach().flatten(1).double().norm(dim=0)
    expected = {"balanced": s.sqrt(), "left": s, "right": torch.ones(3, dtype=s.dtype)}[split]
    torch.testing.assert_close(l_norms, expected.double(), atol=1e-5, rtol=1e-5)


def test_resolve_rank_ratio_and_total() -> None:
    shape = (16, 16, 3, 3)  # m = 16, n = 144
    assert resolve_rank(0.25, shape, 1, "in", "per_group") == 4
    assert resolve_rank(1.0, shape, 4, "in", "per_group") == 16  # min(16, 36)
    assert resolve_rank(0.5, shape, 4, "out", "per_group") == 2  # min(4, 144) * 0.5
    assert resolve_rank(8, shape, 4, "in", "total") == 2
    assert resolve_rank(0.01, shape, 1, "in", "per_group") == 1  # at least 1
    with pytest.raises(ValueError, match=r"valid: 1\.\.16"):
        resolve_rank(17, shape, 1, "in", "per_group")
    with pytest.raises(ValueError, match="divisible by groups=4"):
        resolve_rank(6, shape, 4, "in", "total")
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        resolve_rank(1.5, shape, 1, "in", "per_group")


def test_from_conv_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="must divide"):
        LowRankConv2d.from_conv(_conv(6, 8), 1, groups=4)
    with pytest.raises(ValueError, match="group_dim"):
        LowRankConv2d.from_conv(_conv(8, 8), 1, group_dim="both")
    with pytest.raises(ValueError, match="groups=1"):
        LowRankConv2d.from_conv(nn.Conv2d(8, 8, 3, groups=2), 1)
