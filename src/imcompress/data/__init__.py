"""Datasets as in-memory tensors with batched augmentation, built from the ``data`` config group."""

from imcompress.data.datamodule import DATASETS, ImageDataModule
from imcompress.data.sources import ChecksumError, DatasetNotFoundError, ImageSplits

__all__ = ["DATASETS", "ChecksumError", "DatasetNotFoundError", "ImageDataModule", "ImageSplits"]
