"""criterion=activation (Wanda's |W_ij| * ||X_j||): on inputs where magnitude and activation
disagree, it keeps the weights whose inputs are large; sparsity and mask layout unchanged."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from imcompress.compression import apply_compression
from imcompress.compression.calibration import capture_inputs, input_norms


def _crafted() -> tuple[nn.Module, list[torch.Tensor]]:
    """Input channel 0 has the large weights but tiny inputs; channel 1 the opposite."""
    conv = nn.Conv2d(2, 4, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight[:, 0] = 1.0 + 0.1 * torch.rand(4, 3, 3)
        conv.weight[:, 1] = 0.5 + 0.1 * torch.rand(4, 3, 3)
    model = nn.Sequential(conv)
    g = torch.Generator().manual_seed(0)
    scale = torch.tensor([0.01, 10.0]).view(1, 2, 1, 1)
    return model, [torch.randn(4, 2, 6, 6, generator=g) * scale for _ in range(2)]


def _kept_per_input_channel(model: nn.Module) -> list[int]:
    mask = model[0].weight_mask
    return [int(mask[:, c].sum()) for c in range(2)]


@pytest.mark.parametrize(
    "cfg",
    [
        {"method": "prune_unstructured", "sparsity": 0.5},
        {"method": "prune_unstructured", "sparsity": 0.5, "scope": "global"},
        {"method": "prune_pattern", "sparsity": 0.8, "pattern_dim": "input_channel"},
        {
            "method": "prune_pattern",
            "sparsity": 0.8,
            "pattern_set": "patdnn",
            "pattern_dim": "input_channel",
        },
    ],
)
def test_activation_keeps_the_weights_with_large_inputs(cfg: dict) -> None:
    torch.manual_seed(0)
    kept = {}
    for criterion in ("magnitude", "activation"):
        model, batches = _crafted()
        options = {**cfg, "include": ["0"], "criterion": criterion}
        result = apply_compression(model, options, calibration=batches)
        kept[criterion] = _kept_per_input_channel(model)
        assert result.summary()["sparsity"] == pytest.approx(cfg["sparsity"], abs=0.03)
        assert result.options["criterion"] == criterion
    magnitude, activation = kept["magnitude"], kept["activation"]
    assert magnitude[0] > magnitude[1] and activation[1] > activation[0], kept
    assert sum(magnitude) == sum(activation)  # the same number of weights kept


def test_gradual_schedule_prunes_with_the_activation_scores_later() -> None:
    model, batches = _crafted()
    cfg = {
        "method": "prune_unstructured",
        "sparsity": 0.5,
        "schedule": "gradual",
        "include": ["0"],
        "criterion": "activation",
    }
    result = apply_compression(model, cfg, calibration=batches)
    assert _kept_per_input_channel(model) == [36, 36]  # gradual: dense at first
    assert result.pruner is not None
    result.pruner.prune_to(0.5)  # what the callback does at the final step
    assert _kept_per_input_channel(model) == [0, 36]


def test_input_norms_are_the_column_norms_of_the_im2col_inputs() -> None:
    model, batches = _crafted()
    x = capture_inputs(model, batches, [("0", model[0])], max_positions=10_000, batch_count=2)
    norms = input_norms(x["0"], (2, 3, 3))
    expected = x["0"].double().pow(2).sum(1).sqrt().reshape(2, 3, 3)
    torch.testing.assert_close(norms.double(), expected)
    assert float(norms[1].min()) > 100 * float(norms[0].max())


def test_activation_without_data_is_a_one_line_error() -> None:
    model, _ = _crafted()
    with pytest.raises(ValueError, match="criterion=activation needs calibration data") as err:
        apply_compression(
            model, {"method": "prune_pattern", "include": ["0"], "criterion": "activation"}
        )
    assert "\n" not in str(err.value)
    assert not hasattr(model[0], "weight_mask")  # nothing changed
