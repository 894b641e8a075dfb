"""Pruning masks: requested sparsity, whole channels, pattern sets, schedule (no training loop)."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from imcompress.compression import CubicSchedule, apply_compression
from imcompress.compression.pruning import (
    PatternPruner,
    choose_patterns,
    effective,
    nentry_patterns,
    pconv_patterns,
)

from .tiny_models import TinyResNet


def _masks(result) -> dict[str, torch.Tensor]:  # type: ignore[no-untyped-def]
    return {name: conv.weight_mask for name, conv in result.pruner.targets}


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.9])
def test_unstructured_per_layer_reaches_sparsity(resnet: TinyResNet, sparsity: float) -> None:
    result = apply_compression(resnet, {"method": "prune_unstructured", "sparsity": sparsity})
    for name, mask in _masks(result).items():
        conv = resnet.get_submodule(name)
        assert isinstance(conv.weight_orig, nn.Parameter) and "weight_mask" in dict(
            conv.named_buffers()
        )
        assert float((mask == 0).float().mean()) == pytest.approx(sparsity, abs=0.5 / mask.numel())
        assert torch.equal(conv.weight == 0, mask == 0)  # the forward weight is masked
        kept = conv.weight_orig.detach().abs()[mask.bool()]
        dropped = conv.weight_orig.detach().abs()[~mask.bool()]
        if dropped.numel() and kept.numel():
            assert dropped.max() <= kept.min()  # magnitude criterion
    assert result.summary()["sparsity"] == pytest.approx(sparsity, abs=1e-3)


def test_unstructured_global_uses_one_threshold(resnet: TinyResNet) -> None:
    with torch.no_grad():
        resnet.layer2[1].conv2.weight.mul_(10.0)  # one layer of much larger weights
        resnet.layer1[0].conv1.weight.mul_(0.1)  # one of much smaller weights
    result = apply_compression(
        resnet, {"method": "prune_unstructured", "sparsity": 0.6, "scope": "global"}
    )
    records = {r["name"]: r["sparsity"] for r in result.layers}
    assert result.pruner.sparsity() == pytest.approx(0.6, abs=1e-4)
    assert records["layer2.1.conv2"] < 0.1 and records["layer1.0.conv1"] > 0.95
    kept = torch.cat(
        [c.weight_orig.detach().abs()[c.weight_mask.bool()] for _, c in result.pruner.targets]
    )
    dropped = torch.cat(
        [c.weight_orig.detach().abs()[~c.weight_mask.bool()] for _, c in result.pruner.targets]
    )
    assert dropped.max() <= kept.min()


def test_masks_stay_applied_through_fine_tuning(resnet: TinyResNet) -> None:
    result = apply_compression(resnet, {"method": "prune_unstructured", "sparsity": 0.7})
    before = {k: v.clone() for k, v in _masks(result).items()}
    opt = torch.optim.SGD(resnet.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    for _ in range(5):
        loss = F.cross_entropy(resnet(torch.randn(8, 3, 8, 8)), torch.randint(0, 4, (8,)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    resnet(torch.randn(1, 3, 8, 8))
    for name, mask in _masks(result).items():
        assert torch.equal(mask, before[name])
        conv = resnet.get_submodule(name)
        assert (conv.weight[mask == 0] == 0).all() and (effective(conv)[mask == 0] == 0).all()
    assert result.pruner.sparsity() == pytest.approx(0.7, abs=1e-3)


def test_channel_pruning_zeros_whole_output_channels(resnet: TinyResNet) -> None:
    result = apply_compression(resnet, {"method": "prune_channel", "sparsity": 0.5})
    block = resnet.layer1[0]
    out_mask = block.conv1.weight_mask.flatten(1)
    pruned = out_mask.sum(1) == 0
    assert int(pruned.sum()) == 4  # round(0.5 * 8)
    assert torch.equal(out_mask[~pruned], torch.ones_like(out_mask[~pruned]))  # whole channels only
    # coupled: the following BN and the next conv's input channels
    assert (block.bn1.weight[pruned] == 0).all() and (block.bn1.bias[pruned] == 0).all()
    assert (block.conv2.weight_mask[:, pruned] == 0).all()
    for mode in ("train", "eval"):
        getattr(resnet, mode)()
        x = torch.randn(4, 8, 8, 8)
        act = F.relu(block.bn1(block.conv1(x)))
        assert (act[:, pruned] == 0).all()
    for name, conv in result.pruner.targets:
        filters = conv.weight_mask.flatten(1).sum(1) == 0
        assert int(filters.sum()) == round(0.5 * conv.out_channels), name
    assert result.summary()["channel_sparsity"] == pytest.approx(0.5)
    record = {r["name"]: r for r in result.layers}["layer1.0.conv1"]
    assert record["channels_kept"] == 4 and record["coupled"] == ["bn", "next_conv_inputs"]


def test_channel_pruning_preactivation_coupling(wide_resnet: TinyResNet) -> None:
    apply_compression(wide_resnet, {"method": "prune_channel", "sparsity": 0.25})
    block = wide_resnet.layer1[0]
    pruned = block.conv1.weight_mask.flatten(1).sum(1) == 0
    assert int(pruned.sum()) == 2
    assert (block.bn2.weight[pruned] == 0).all() and (block.conv2.weight_mask[:, pruned] == 0).all()
    assert (block.bn1.weight != 0).all()  # bn1 precedes conv1: untouched


def test_channel_pruning_without_coupling(resnet: TinyResNet) -> None:
    apply_compression(resnet, {"method": "prune_channel", "sparsity": 0.5, "couple_next": False})
    assert not hasattr(resnet.layer1[0].bn1, "weight_mask")


def _kernel_patterns(mask: torch.Tensor) -> set[tuple[int, ...]]:
    flat = mask.flatten(0, 1).flatten(1)
    return {tuple(int(v) for v in row) for row in flat if row.any()}


def _set_of(patterns: torch.Tensor) -> set[tuple[int, ...]]:
    return {tuple(int(v) for v in row) for row in patterns}


@pytest.mark.parametrize("dim", ["kernel", "input_channel", "layer"])
@pytest.mark.parametrize(
    ("pattern_set", "entries"),
    [("pconv", 4), ("patdnn", 4), ("nentry", 1), ("nentry", 2), ("nentry", 6), ("nentry", 8)],
)
def test_pattern_masks_use_only_the_chosen_set(
    resnet: TinyResNet, pattern_set: str, entries: int, dim: str
) -> None:
    cfg = {
        "method": "prune_pattern",
        "pattern_set": pattern_set,
        "pattern_entries": entries,
        "pattern_dim": dim,
        "sparsity": 0.0,
    }
    result = apply_compression(resnet, cfg)
    allowed = _set_of(result.pruner.patterns)
    if pattern_set == "pconv":
        assert allowed == _set_of(pconv_patterns()) and len(allowed) == 4
    if pattern_set == "nentry":
        assert len(allowed) == len(list(itertools.combinations(range(9), entries)))
    if pattern_set == "patdnn":
        assert 1 <= len(allowed) <= 8 and all(p[4] == 1 and sum(p) == 4 for p in allowed)
    for name, mask in _masks(result).items():
        used = _kernel_patterns(mask)
        assert used <= allowed, name
        if dim == "input_channel":
            assert torch.equal(mask, mask[:1].expand_as(mask))  # shared across output channels
        if dim == "layer":
            assert len(used) == 1
        assert float((mask == 0).float().mean()) == pytest.approx(1 - entries / 9)


def test_pattern_choice_keeps_largest_norm() -> None:
    torch.manual_seed(0)
    weight = torch.randn(6, 5, 3, 3)
    patterns = nentry_patterns(2)
    mask = choose_patterns(weight, patterns, "kernel")
    for o, c in itertools.product(range(6), range(5)):
        sq = weight[o, c].flatten() ** 2
        best = max(float((sq * p).sum()) for p in patterns)
        assert float((sq * mask[o, c].flatten()).sum()) == pytest.approx(best)
    shared = choose_patterns(weight, patterns, "input_channel")
    for c in range(5):
        sq = (weight[:, c].flatten(1) ** 2).sum(0)
        best = max(float((sq * p).sum()) for p in patterns)
        assert float((sq * shared[0, c].flatten()).sum()) == pytest.approx(best)


@pytest.mark.parametrize("dim", ["kernel", "input_channel"])
def test_pattern_connectivity_reaches_target(resnet: TinyResNet, dim: str) -> None:
    result = apply_compression(
        resnet, {"method": "prune_pattern", "sparsity": 0.8, "pattern_dim": dim}
    )
    pruner = result.pruner
    assert isinstance(pruner, PatternPruner)
    for name, mask in _masks(result).items():
        units = mask.shape[1] if dim == "input_channel" else mask.shape[0] * mask.shape[1]
        assert float((mask == 0).float().mean()) == pytest.approx(
            0.8, abs=(1 - 5 / 9) / units + 1e-6
        ), name
        if dim == "input_channel":
            empty_inputs = (mask.sum(dim=(0, 2, 3)) == 0).sum()
            assert empty_inputs > 0  # whole input channels (crossbar rows) removed


def test_patdnn_set_is_most_frequent_top4() -> None:
    conv = nn.Conv2d(4, 4, 3, bias=False)
    with torch.no_grad():
        conv.weight.fill_(0.01)
        conv.weight[:3, :, 0, :2] = 1.0  # top-4 with centre: {0, 1, 4, +next} for 12 kernels
        conv.weight[:3, :, 0, 2] = 0.5
        conv.weight[3, :, 2, :] = 1.0  # 4 kernels: centre + row 2 cells
    model = nn.Module()
    model.add_module("c", conv)
    pruner = PatternPruner([("c", conv)], pattern_set="patdnn", entries=4, num_patterns=1)
    assert pruner.pattern_cells() == [[0, 1, 2, 4]]
    pruner = PatternPruner([("c", conv)], pattern_set="patdnn", entries=4, num_patterns=2)
    assert pruner.pattern_cells() == [[0, 1, 2, 4], [4, 6, 7, 8]]


def test_cubic_schedule() -> None:
    sched = CubicSchedule(final=0.8, initial=0.0, start_epoch=2, end_epoch=6, frequency=1)
    assert sched.sparsity_at(0) is None and sched.sparsity_at(1) is None
    values = [sched.sparsity_at(e) for e in range(2, 9)]
    assert values[0] == 0.0 and values[4:] == [0.8, 0.8, 0.8]
    assert values[2] == pytest.approx(0.8 * (1 - 0.5**3))
    assert all(a < b for a, b in itertools.pairwise(values[:5]))
    coarse = CubicSchedule(final=0.8, start_epoch=0, end_epoch=6, frequency=3)
    assert coarse.sparsity_at(1) == coarse.sparsity_at(2) == 0.0
    assert coarse.sparsity_at(3) == pytest.approx(0.7)


def test_gradual_config_starts_dense(resnet: TinyResNet) -> None:
    result = apply_compression(
        resnet, {"method": "prune_unstructured", "sparsity": 0.5, "schedule": "gradual"}
    )
    assert result.pruner.sparsity() == 0.0
    assert result.schedule is not None and result.schedule.gradual
    result.apply_final_masks()  # what a cost estimate without training uses
    assert result.pruner.sparsity() == pytest.approx(0.5, abs=1e-3)
