"""Memory format and torch.compile (imcompress.training.performance): checkpoints, estimator, logits."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from imcompress.compression import apply_compression
from imcompress.compression.lowrank import LowRankConv2d
from imcompress.compression.pruning.base import MaskedPruner
from imcompress.crossbar.extract import estimate
from imcompress.data import ImageDataModule
from imcompress.models import CifarResNet
from imcompress.training.callbacks.crossbar import CrossbarCostCallback
from imcompress.training.module import ClassificationModule
from imcompress.training.performance import (
    PERFORMANCE_KEYS,
    PerformanceOptions,
    memory_format_of,
    performance_options,
    prepare_model,
    trainer_config,
)
from tests.conftest import CONF_DIR

INPUT_SHAPE = (1, 32, 32)


def every_method_model() -> tuple[nn.Module, list[MaskedPruner]]:
    """ResNet-8 (widths 8/16/32) with one layer per method: dense stem and shortcuts, LR, GLR
    g=2, pattern, unstructured and channel pruning (mask hooks); returns the pruners too."""
    torch.manual_seed(0)
    # not (4, 8, 16): tiny convs can hang in oneDNN's channels_last backward (docs/benchmarks.md)
    model = CifarResNet(8, num_classes=10, in_channels=1, widths=(8, 16, 32))
    apply_compression(model, {"method": "lr", "rank": 0.5, "include": ["layer1.0.conv1"]})
    apply_compression(
        model, {"method": "glr", "rank": 0.5, "groups": 2, "include": ["layer2.0.conv2"]}
    )
    pruning = [
        {"method": "prune_pattern", "sparsity": 0.5, "include": ["layer1.0.conv2"]},
        {"method": "prune_unstructured", "sparsity": 0.5, "include": ["layer3.0.conv2"]},
        {"method": "prune_channel", "sparsity": 0.5, "include": ["layer3.0.conv1"]},
    ]
    pruning[-1]["couple_next"] = False  # the next conv is pruned by another method here
    pruners = []
    for config in pruning:
        pruner = apply_compression(model, config).pruner
        assert pruner is not None
        pruners.append(pruner)
    return model, pruners


def classifier(model: nn.Module) -> ClassificationModule:
    return ClassificationModule(
        model,
        num_classes=10,
        optimizer=lambda params: torch.optim.SGD(params, lr=0.05, momentum=0.9),
    )


def inputs(channels: int = 1) -> torch.Tensor:
    return torch.randn(6, channels, 32, 32, generator=torch.Generator().manual_seed(1))


def eval_logits(
    module: nn.Module, memory_format: torch.memory_format, channels: int = 1
) -> torch.Tensor:
    module.eval()
    with torch.no_grad():
        return module(inputs(channels).to(memory_format=memory_format))


def test_trainer_configs_declare_the_keys_and_the_trainer_never_sees_them(compose: Any) -> None:
    names = sorted(path.stem for path in (CONF_DIR / "trainer").glob("*.yaml"))
    assert {"cpu", "gpu", "ddp"} <= set(names)
    for name in names:
        cfg = compose([f"trainer={name}"])
        assert set(PERFORMANCE_KEYS) <= set(cfg.trainer), name  # documented in every file
        options = performance_options(cfg.trainer)
        assert options.compile is False, name
        stripped = trainer_config(cfg.trainer)
        assert not set(PERFORMANCE_KEYS) & set(stripped), name
        kept = OmegaConf.to_container(cfg.trainer)
        assert isinstance(kept, dict)
        for key in PERFORMANCE_KEYS:
            del kept[key]
        assert OmegaConf.to_container(stripped) == kept  # the rest unchanged, unresolved
        assert stripped._get_parent() is cfg  # so ${paths.output_dir} resolves in the job
    assert performance_options(compose(["trainer=cpu"]).trainer).memory_format == "channels_last"


def test_bad_values_are_refused_with_the_valid_choices() -> None:
    with pytest.raises(ValueError, match=r"memory_format='nhwc'.*channels_last.*contiguous"):
        performance_options({"memory_format": "nhwc", "compile": False})
    with pytest.raises(ValueError, match=r"trainer.compile must be true or false, got 'yes'"):
        performance_options({"memory_format": "contiguous", "compile": "yes"})


class BatchFormatProbe(pl.Callback):
    """Records the memory format of every training batch as the model receives it."""

    def __init__(self) -> None:
        self.formats: list[torch.memory_format] = []

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: Any, batch: Any, idx: int
    ) -> None:
        images = batch[0]
        self.formats.append(
            torch.channels_last
            if images.is_contiguous(memory_format=torch.channels_last)
            and not images.is_contiguous()
            else torch.contiguous_format
        )


def fit(
    module: ClassificationModule, root: Path, steps: int, ckpt_path: str | None = None
) -> BatchFormatProbe:
    probe = BatchFormatProbe()
    data = ImageDataModule(
        "synthetic", 10, 3, 32, batch_size=8, val_fraction=0.0, options={"train_size": 32}
    )
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=steps,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
        callbacks=[probe],
    )
    trainer.fit(module, datamodule=data, ckpt_path=ckpt_path)
    trainer.save_checkpoint(root / "saved.ckpt")
    return probe


@pytest.mark.parametrize(
    ("saved_in", "loaded_in"), [("channels_last", "contiguous"), ("contiguous", "channels_last")]
)
def test_checkpoint_saved_in_one_format_loads_and_resumes_in_the_other(
    tmp_path: Path, saved_in: str, loaded_in: str
) -> None:
    saved_format = PerformanceOptions(saved_in).torch_memory_format
    loaded_format = PerformanceOptions(loaded_in).torch_memory_format
    # widths (4, 8, 16) hang in the channels_last backward of the grouped R conv (oneDNN, torch
    # 2.13 CPU; docs/benchmarks.md): the smallest widths here that do not
    model = CifarResNet(8, num_classes=10, in_channels=3, widths=(8, 16, 32))
    apply_compression(model, {"method": "glr", "rank": 0.5, "groups": 2})
    fresh = copy.deepcopy(model)
    module = prepare_model(classifier(model), PerformanceOptions(saved_in))
    probe = fit(module, tmp_path, steps=2)
    assert probe.formats == [saved_format, saved_format]  # batches follow the model
    assert memory_format_of(module) == saved_format

    other = prepare_model(classifier(fresh), PerformanceOptions(loaded_in))
    state = torch.load(tmp_path / "saved.ckpt", weights_only=False)["state_dict"]
    other.load_state_dict(state)
    assert memory_format_of(other) == loaded_format  # loading copies into the model's layout
    expected = eval_logits(module, saved_format, channels=3)
    torch.testing.assert_close(
        eval_logits(other, loaded_format, channels=3), expected, atol=1e-5, rtol=1e-4
    )

    # Resume (weights, optimizer momentum in the other layout) for one more step.
    resumed = fit(other, tmp_path / "resumed", steps=3, ckpt_path=str(tmp_path / "saved.ckpt"))
    assert resumed.formats == [loaded_format]
    assert memory_format_of(other) == loaded_format
    assert not torch.allclose(eval_logits(other, loaded_format, channels=3), expected)  # trained


def test_estimator_sees_every_pair_and_the_same_costs_under_channels_last_and_compile() -> None:
    model, pruners = every_method_model()
    reference = estimate(copy.deepcopy(model), INPUT_SHAPE)
    pairs = sum(isinstance(m, LowRankConv2d) for m in model.modules())
    assert pairs == 2 and list(reference.table.kind).count("lowrank") == pairs

    eager = classifier(copy.deepcopy(model))
    # Dynamo graph capture without code generation: cheap, and what decides hooks and guards.
    module = prepare_model(
        classifier(model),
        PerformanceOptions("channels_last", compile=True, compile_backend="eager"),
    )
    module.train()
    module(inputs().to(memory_format=torch.channels_last)).sum().backward()  # a compiled step
    callback = CrossbarCostCallback(input_shape=INPUT_SHAPE)
    report = callback.evaluate(module)
    assert list(report.table.kind).count("lowrank") == pairs
    assert list(report.table.name) == list(reference.table.name)
    assert report.rows() == reference.rows()
    assert report.totals() == reference.totals()
    assert memory_format_of(module.model) == torch.channels_last
    # Checkpoints of compiled and eager runs have the same keys: resume works across the flag.
    assert list(module.state_dict()) == list(eager.state_dict())

    # A mask changed in place (gradual pruning) reaches the compiled forward.
    for pruner in pruners:
        pruner.prune_to(0.75)
    eager.load_state_dict(module.state_dict())
    torch.testing.assert_close(
        eval_logits(module, torch.channels_last),
        eval_logits(eager, torch.contiguous_format),
        atol=1e-5,
        rtol=1e-4,
    )


@pytest.mark.slow
def test_inductor_eval_logits_match_eager_for_every_method_and_after_a_mask_change() -> None:
    from torch._dynamo.utils import counters

    model, pruners = every_method_model()
    eager_model, eager_pruners = every_method_model()
    eager = classifier(eager_model)
    module = prepare_model(classifier(model), PerformanceOptions("channels_last", compile=True))
    eager.load_state_dict(module.state_dict())
    torch.testing.assert_close(
        eval_logits(module, torch.channels_last),
        eval_logits(eager, torch.contiguous_format),
        atol=1e-5,
        rtol=1e-4,
    )
    graphs = counters["stats"]["unique_graphs"]
    for pruner in pruners + eager_pruners:  # gradual pruning: masks rewritten in place
        pruner.prune_to(0.75)
    torch.testing.assert_close(
        eval_logits(module, torch.channels_last),
        eval_logits(eager, torch.contiguous_format),
        atol=1e-5,
        rtol=1e-4,
    )
    assert counters["stats"]["unique_graphs"] == graphs  # no recompilation for a new mask
