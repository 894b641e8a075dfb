"""load_pretrained: dense Lightning checkpoint -> fresh model, then compression from its weights."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from imcompress.compression import LowRankConv2d, apply_compression, load_pretrained

from .test_pruning_training import LitClassifier, _loader
from .tiny_models import TinyResNet


@pytest.fixture(scope="module")
def dense_ckpt(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    """A checkpoint written by a real (one-batch) dense Lightning run."""
    root = tmp_path_factory.mktemp("dense")
    torch.manual_seed(0)
    model = TinyResNet()
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=1,
        limit_train_batches=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
    )
    trainer.fit(LitClassifier(model), train_dataloaders=_loader())
    path = root / "dense.ckpt"
    trainer.save_checkpoint(path)
    return path, {k: v.clone() for k, v in model.state_dict().items()}


def test_loads_dense_checkpoint(dense_ckpt: tuple[Path, dict[str, torch.Tensor]]) -> None:
    path, state = dense_ckpt
    torch.manual_seed(99)
    model = load_pretrained(TinyResNet(), path)
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    conv = model.layer1[0].conv1
    result = apply_compression(model, {"method": "lr", "rank": 1.0})
    assert result.layers[0]["svd_rel_error"] < 1e-5
    pair = model.layer1[0].conv1
    assert isinstance(pair, LowRankConv2d)
    torch.testing.assert_close(pair.reconstruct(), conv.weight, atol=1e-5, rtol=0)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"pretrained='.*nope\.ckpt': no such checkpoint file or run folder"):
        load_pretrained(TinyResNet(), tmp_path / "nope.ckpt")


def test_mismatch_names_keys(dense_ckpt: tuple[Path, dict[str, torch.Tensor]]) -> None:
    path, _ = dense_ckpt
    model = TinyResNet(num_classes=5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(
        ValueError,
        match=r"shape mismatch: fc\.bias \(checkpoint \(4,\) vs model \(5,\)\), fc\.weight",
    ):
        load_pretrained(model, path)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    pruned = TinyResNet()
    apply_compression(pruned, {"method": "prune_unstructured", "sparsity": 0.5})
    with pytest.raises(ValueError, match=r"missing in checkpoint: layer1\.0\.conv1\.weight_mask"):
        load_pretrained(pruned, path)


def test_plain_state_dict_and_garbage(tmp_path: Path) -> None:
    model = TinyResNet()
    torch.save(model.state_dict(), tmp_path / "plain.pt")
    load_pretrained(TinyResNet(), tmp_path / "plain.pt")
    torch.save([1, 2, 3], tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="no state dict"):
        load_pretrained(TinyResNet(), tmp_path / "bad.pt")


def test_none_path_is_a_no_op() -> None:
    model = TinyResNet()
    assert load_pretrained(model, None) is model
