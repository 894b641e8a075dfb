"""One LightningDataModule for every dataset: in-memory uint8 tensors, batched augmentation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from imcompress.data import sources
from imcompress.data.augment import normalize, random_crop, random_hflip
from imcompress.training.performance import memory_format_of

DATASETS = ("cifar10", "cifar100", "fashion_mnist", "digits", "synthetic")


class ImageDataModule(pl.LightningDataModule):
    """Train/val/test loaders over whole-dataset uint8 tensors.

    Augmentation (random crop with zero padding, horizontal flip) and normalization run on whole
    batches in :meth:`on_after_batch_transfer`, on the training device; the images then take the
    memory format of the model's weights (``trainer.memory_format``). The validation split is
    carved from the training set with a fixed seed (``split_seed``), independent of the run seed.
    """

    def __init__(
        self,
        name: str,
        num_classes: int,
        channels: int,
        image_size: int,
        data_dir: str | Path = "data",
        batch_size: int = 128,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        crop_padding: int = 4,
        hflip: bool = True,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        download: bool = True,
        options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if name not in DATASETS:
            raise ValueError(f"unknown dataset {name!r}; valid: {list(DATASETS)}")
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"data.val_fraction must be in [0, 1), got {val_fraction}")
        if batch_size < 1:
            raise ValueError(f"data.batch_size must be >= 1, got {batch_size}")
        self.name = name
        self.num_classes = num_classes
        self.channels = channels
        self.image_size = image_size
        self.data_dir = Path(data_dir)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.crop_padding = crop_padding
        self.hflip = hflip
        self.download = download
        self.options = dict(options or {})
        self._mean = mean
        self._std = std
        self.mean = torch.tensor(mean) if mean is not None else torch.zeros(channels)
        self.std = torch.tensor(std) if std is not None else torch.ones(channels)
        self.splits: sources.ImageSplits | None = None
        self.train_set: TensorDataset | None = None
        self.val_set: TensorDataset | None = None
        self.test_set: TensorDataset | None = None

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one input image."""
        return (self.channels, self.image_size, self.image_size)

    def load(self) -> sources.ImageSplits:
        """Read (or download) the whole dataset once; fails fast with a clear message."""
        if self.splits is not None:
            return self.splits
        if self.name in ("cifar10", "cifar100"):
            splits = sources.load_cifar(self.name, self.data_dir, self.download, **self.options)
        elif self.name == "fashion_mnist":
            splits = sources.load_fashion_mnist(
                self.data_dir,
                download_enabled=self.download,
                pad_to=self.image_size,
                **self.options,
            )
        elif self.name == "digits":
            splits = sources.load_digits(self.image_size, **self.options)
        else:
            splits = sources.make_synthetic(
                self.num_classes, self.channels, self.image_size, **self.options
            )
        self._check(splits)
        self.splits = splits
        return splits

    def _check(self, splits: sources.ImageSplits) -> None:
        expected = self.input_shape
        for images in (splits.train_images, splits.test_images):
            if tuple(images.shape[1:]) != expected:
                raise ValueError(
                    f"dataset {self.name} has images of shape {tuple(images.shape[1:])}, the data "
                    f"config says (channels, image_size, image_size) = {expected}"
                )
        top_label = int(max(splits.train_labels.max(), splits.test_labels.max()))
        if top_label >= self.num_classes:
            raise ValueError(
                f"dataset {self.name} has label {top_label} but data.num_classes={self.num_classes}"
            )

    def prepare_data(self) -> None:
        self.load()

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        splits = self.load()
        count = len(splits.train_labels)
        order = torch.randperm(count, generator=torch.Generator().manual_seed(self.split_seed))
        val_count = round(count * self.val_fraction)
        val_index, train_index = order[:val_count], order[val_count:]
        train_images = splits.train_images[train_index]
        self.train_set = TensorDataset(train_images, splits.train_labels[train_index])
        self.val_set = TensorDataset(splits.train_images[val_index], splits.train_labels[val_index])
        self.test_set = TensorDataset(splits.test_images, splits.test_labels)
        pixels = train_images.float().div_(255.0)
        mean = self._mean if self._mean is not None else pixels.mean(dim=(0, 2, 3)).tolist()
        std = self._std if self._std is not None else pixels.std(dim=(0, 2, 3)).tolist()
        self.mean, self.std = torch.tensor(mean), torch.tensor(std)

    def _loader(self, dataset: TensorDataset | None, batch_size: int, shuffle: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError("ImageDataModule.setup() must run before the loaders are requested")
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            drop_last=False,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        if self.val_set is not None and len(self.val_set) == 0:
            return self._loader(self.test_set, self.eval_batch_size, shuffle=False)
        return self._loader(self.val_set, self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, self.eval_batch_size, shuffle=False)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        images, labels = batch
        trainer = self.trainer
        if trainer is not None and trainer.training:
            images = random_crop(images, self.crop_padding)
            if self.hflip:
                images = random_hflip(images)
        device = images.device
        images = normalize(images, self.mean.to(device), self.std.to(device))
        module = trainer.lightning_module if trainer is not None else None
        if module is not None:  # the layout of the weights: channels_last or NCHW
            images = images.to(memory_format=memory_format_of(module))
        return images, labels
