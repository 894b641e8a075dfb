"""Every compression method on analog tiles: ideal = digital, GLR groups, masks, noise repeats."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from aihwkit_lightning.nn import AnalogConv2d, AnalogLinear
from torch import nn

from imcompress.analog.evaluation import prepare_analog
from imcompress.analog.noise import program_weights, read_noise
from imcompress.analog.rpu import mapping_config
from imcompress.analog.tiles import (
    AnalogArrayConv2d,
    analog_layers,
    conv_to_analog,
    pruning_masks,
)
from imcompress.analog.training import AnalogWeightClip, convert_for_training
from imcompress.compression import LowRankConv2d

from .conftest import METHODS, tiny_model

PRUNING = [name for name in METHODS if name.startswith("prune")]


def images(count: int = 8, seed: int = 1) -> torch.Tensor:
    return torch.randn(count, 1, 16, 16, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("method", list(METHODS))
def test_ideal_tiles_reproduce_the_digital_model(method: str, preset) -> None:
    # tiles of 20 rows and 8 columns: every conv is split along inputs and most along outputs
    settings = preset("ideal", "analog.tile_rows=20", "analog.tile_cols=8")
    model = tiny_model(method)
    analog = prepare_analog(model, settings, [])
    layers = analog_layers(analog)
    assert layers and all(isinstance(lay, (AnalogConv2d, AnalogLinear)) for _, lay in layers)
    assert not any(
        isinstance(m, (nn.Conv2d, nn.Linear))
        for m in analog.modules()
        if type(m) in (nn.Conv2d, nn.Linear)
    )
    assert any(len(layer.in_sizes) > 1 for _, layer in layers)  # row splits happened
    x = images()
    with torch.no_grad():
        torch.testing.assert_close(analog.eval()(x), model(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("group_dim", ["in", "out"])
def test_lowrank_pairs_become_two_analog_layers_and_groups_one_conv_each(group_dim, preset):
    settings = preset("ideal")
    model = tiny_model("glr" if group_dim == "in" else "glr_out")
    analog = prepare_analog(model, settings, [])
    pairs = [m for m in analog.modules() if isinstance(m, LowRankConv2d)]
    assert pairs
    for pair in pairs:
        grouped = pair.R if group_dim == "in" else pair.L
        dense = pair.L if group_dim == "in" else pair.R
        assert isinstance(dense, AnalogConv2d)
        assert isinstance(grouped, AnalogArrayConv2d)
        assert len(grouped.layers()) == pair.groups == 2


def test_a_grouped_conv_on_analog_tiles_computes_exactly_the_grouped_conv(preset) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(12, 8, 3, stride=2, padding=1, groups=4, bias=True)
    settings = preset("ideal", "analog.tile_rows=10", "analog.tile_cols=0")
    analog = conv_to_analog(conv, mapping_config(settings), tile_cols=0)
    assert isinstance(analog, AnalogArrayConv2d)
    layers = analog.layers()
    assert [lay.in_channels for lay in layers] == [3] * 4
    for group, layer in enumerate(layers):  # group g's block of the grouped weight, groups=1
        assert layer.groups == 1
        torch.testing.assert_close(layer.weight, conv.weight[2 * group : 2 * group + 2])
        assert layer.in_sizes == [9, 9, 9][: len(layer.in_sizes)] or sum(layer.in_sizes) == 27
    x = torch.randn(2, 12, 9, 9)
    with torch.no_grad():
        expected = F.conv2d(x, conv.weight, conv.bias, stride=2, padding=1, groups=4)
        torch.testing.assert_close(analog(x), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", PRUNING)
def test_pruning_masks_survive_conversion_and_programming(method: str, preset) -> None:
    model = tiny_model(method)
    masks = pruning_masks(model)
    assert masks and any(bool((mask == 0).any()) for mask in masks.values())
    settings = preset("noisy", "analog.input_range.batches=1")
    analog = prepare_analog(model, settings, [images(16)])
    with torch.random.fork_rng():
        torch.manual_seed(0)
        programmed = program_weights(analog, settings)
    for name, mask in masks.items():
        for stage in (analog, programmed):
            weight = stage.get_submodule(name).weight.detach()
            assert bool((weight[mask == 0] == 0).all()), f"{name}: pruned weights not zero"
        # the kept weights did get programming noise
        before = analog.get_submodule(name).weight.detach()
        after = programmed.get_submodule(name).weight.detach()
        assert not torch.equal(before[mask == 1], after[mask == 1])


def test_hardware_aware_training_keeps_masks_fixed(preset) -> None:
    model = tiny_model("prune_unstructured").train()
    masks = pruning_masks(model)
    settings = preset("noisy", "analog.train=true", "analog.hwa.input_range_init_batches=1")
    convert_for_training(model, settings)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    for step in range(2):
        loss = model(images(8, seed=step)).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model(images(2))  # the prune hook recomputes weight = weight_orig * mask
    for name, mask in masks.items():
        layer = model.get_submodule(name)
        assert isinstance(layer, AnalogConv2d)
        assert torch.equal(layer.weight_mask, mask)
        assert bool((layer.weight.detach()[mask == 0] == 0).all())
        assert not torch.equal(layer.weight_orig.detach(), model_weight_before(name))


def model_weight_before(name: str) -> torch.Tensor:
    return tiny_model("prune_unstructured").get_submodule(name).weight_orig.detach()


def test_weight_clip_after_a_step_sticks_on_pruned_layers(preset) -> None:
    model = tiny_model("prune_unstructured")
    masks = pruning_masks(model)
    convert_for_training(model, preset("noisy", "analog.train=true"))
    name, mask = next(iter(masks.items()))
    layer = model.get_submodule(name)
    kept = mask.flatten().nonzero()[0, 0]
    with torch.no_grad():
        layer.weight_orig.view(-1)[kept] = 100.0
    model(images(2))
    threshold = 2.5 * float(layer.weight.detach().std())  # hwa.clip_sigma = 2.5
    AnalogWeightClip().on_train_batch_end(None, model, None, None, 0)  # type: ignore[arg-type]
    model(images(2))
    assert float(layer.weight_orig.detach().view(-1)[kept]) == pytest.approx(threshold, rel=1e-5)
    assert bool((layer.weight.detach()[mask == 0] == 0).all())


@pytest.mark.parametrize(
    ("overrides", "noisy"),
    [
        ((), True),
        (("analog.out_noise=0",), True),  # programming noise only
        (("analog.programming_noise=0",), True),  # read noise only
        (("analog.out_noise=0", "analog.programming_noise=0"), False),  # = quant
    ],
)
def test_repeats_differ_only_when_noise_is_on(overrides, noisy: bool, preset) -> None:
    settings = preset("noisy", "analog.input_range.batches=1", *overrides)
    model = tiny_model("glr")
    analog = prepare_analog(model, settings, [images(16)])
    x = images(4, seed=5)
    outputs = []
    for seed in (0, 1):
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            programmed = program_weights(analog, settings).eval()
            with torch.no_grad(), read_noise(programmed, settings.out_noise > 0):
                outputs.append(programmed(x))
    assert settings.noisy == noisy
    assert torch.equal(outputs[0], outputs[1]) != noisy
