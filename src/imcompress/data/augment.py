"""Batched tensor augmentation: random crop with zero padding, horizontal flip, normalization.

Works on a whole uint8 batch at once (on whatever device the batch is on), which is far faster
than per-image PIL transforms on a CPU.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def random_crop(
    images: torch.Tensor, padding: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Pad every image by ``padding`` zeros on each side and crop back at a random offset per image."""
    if padding <= 0:
        return images
    batch, channels, height, width = images.shape
    padded = F.pad(images, (padding, padding, padding, padding))
    offsets = torch.randint(0, 2 * padding + 1, (2, batch), generator=generator, device="cpu").to(
        images.device
    )
    rows = offsets[0][:, None] + torch.arange(height, device=images.device)[None, :]
    cols = offsets[1][:, None] + torch.arange(width, device=images.device)[None, :]
    batch_index = torch.arange(batch, device=images.device)[:, None, None, None]
    channel_index = torch.arange(channels, device=images.device)[None, :, None, None]
    return padded[batch_index, channel_index, rows[:, None, :, None], cols[:, None, None, :]]


def random_hflip(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror a random half of the batch left-right."""
    flip = torch.rand(images.shape[0], generator=generator, device="cpu").to(images.device) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


def normalize(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float, standardized per channel."""
    scaled = images.float().div_(255.0)
    return (scaled - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
