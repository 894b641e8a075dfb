"""Normalized batches for analog evaluation and calibration, from the job's datamodule."""

from __future__ import annotations

from typing import Any

import torch


def normalized_batches(
    datamodule: Any, split: str, samples: int | None = None, batches: int | None = None
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The first ``samples`` images (or ``batches`` batches) of ``split`` ("test" | "train"),
    normalized as the model sees them in evaluation (no augmentation).

    The train loader shuffles with torch's global RNG: seed it for a reproducible selection.
    """
    datamodule.setup("fit" if split == "train" else "test")
    loader = datamodule.train_dataloader() if split == "train" else datamodule.test_dataloader()
    out: list[tuple[torch.Tensor, torch.Tensor]] = []
    seen = 0
    for batch in loader:
        if batches is not None and len(out) >= batches:
            break
        if samples is not None and seen >= samples:
            break
        images, labels = datamodule.on_after_batch_transfer(batch, 0)
        if samples is not None:
            images, labels = images[: samples - seen], labels[: samples - seen]
        out.append((images.float(), labels))
        seen += len(labels)
    return out
