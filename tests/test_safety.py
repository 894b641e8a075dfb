"""Files from elsewhere never run code: crafted ``pretrained=`` checkpoints and CIFAR batches."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from imcompress.compression import load_pretrained
from imcompress.compression.pretrained import NotACheckpointError
from imcompress.data.sources import ChecksumError, load_cifar


class _WritesMarker:
    """A pickle payload that, if unpickled without restriction, creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def _tiny_model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten())


def test_marker_payload_really_runs_under_plain_pickle(tmp_path: Path) -> None:
    """The payload used below is live: plain pickle.loads executes it (so its absence means safety)."""
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(_WritesMarker(marker)))
    assert marker.exists()


def test_crafted_checkpoint_is_refused_without_running_its_payload(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    crafted = tmp_path / "crafted.ckpt"
    state = {"0.weight": torch.zeros(4, 3, 3, 3), "0.bias": torch.zeros(4)}
    torch.save({"state_dict": state, "hook": _WritesMarker(marker)}, crafted)
    with pytest.raises(NotACheckpointError, match="refused") as raised:
        load_pretrained(_tiny_model(), crafted)
    assert str(crafted) in str(raised.value) and "system" in str(raised.value)
    assert not marker.exists()
    # A plain pickle (not torch's zip format) with the same payload is refused too.
    plain = tmp_path / "plain.ckpt"
    plain.write_bytes(pickle.dumps(_WritesMarker(marker)))
    with pytest.raises(NotACheckpointError):
        load_pretrained(_tiny_model(), plain)
    assert not marker.exists()


def test_text_file_is_not_a_checkpoint(tmp_path: Path) -> None:
    text = tmp_path / "notes.ckpt"
    text.write_text("these are my notes, not a checkpoint\n")
    with pytest.raises(
        NotACheckpointError, match="is not a PyTorch/Lightning checkpoint"
    ) as raised:
        load_pretrained(_tiny_model(), text)
    assert str(text) in str(raised.value)


def test_truncated_checkpoint_is_not_a_checkpoint(tmp_path: Path) -> None:
    model = _tiny_model()
    whole = tmp_path / "whole.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}}, whole)
    load_pretrained(_tiny_model(), whole)  # the intact file loads
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(NotACheckpointError, match="truncated, corrupt") as raised:
        load_pretrained(_tiny_model(), truncated)
    assert str(truncated) in str(raised.value)


def test_crafted_cifar_batch_is_refused_without_running_its_payload(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8), b"labels": [1, 2]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    assert len(load_cifar("cifar10", tmp_path, download_enabled=False).train_labels) == 10
    marker = tmp_path / "pwned"
    crafted = {b"data": _WritesMarker(marker), b"labels": [1, 2]}
    (folder / "data_batch_2").write_bytes(pickle.dumps(crafted, protocol=2))
    with pytest.raises(ChecksumError, match=r"data_batch_2 is not a valid CIFAR python batch"):
        load_cifar("cifar10", tmp_path, download_enabled=False)
    assert not marker.exists()
