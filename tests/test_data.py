"""Dataset readers on generated files in the real on-disk layouts, and batched augmentation."""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from imcompress.data import ChecksumError, DatasetNotFoundError, ImageDataModule
from imcompress.data.augment import normalize, random_crop, random_hflip
from imcompress.data.sources import load_cifar, load_digits, load_fashion_mnist, md5_of, read_idx


def cifar_batch(
    count: int, seed: int, label_key: bytes, classes: int
) -> tuple[bytes, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=(count, 3072), dtype=np.uint8)
    labels = rng.integers(0, classes, size=count).tolist()
    raw = pickle.dumps({b"batch_label": b"x", label_key: labels, b"data": data, b"filenames": []})
    return raw, data, np.asarray(labels)


def write_cifar10(root: Path, as_archive: bool) -> tuple[np.ndarray, np.ndarray]:
    """Write a small CIFAR-10 in the official python-pickle layout; return the first batch."""
    members = {f"data_batch_{i}": cifar_batch(6, i, b"labels", 10) for i in range(1, 6)}
    members["test_batch"] = cifar_batch(4, 9, b"labels", 10)
    members["batches.meta"] = (pickle.dumps({b"label_names": [b"c"] * 10}), None, None)
    if as_archive:
        with tarfile.open(root / "cifar-10-python.tar.gz", "w:gz") as tar:
            for name, (raw, _, _) in members.items():
                info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
                info.size = len(raw)
                tar.addfile(info, io.BytesIO(raw))
    else:
        folder = root / "cifar-10-batches-py"
        folder.mkdir()
        for name, (raw, _, _) in members.items():
            (folder / name).write_bytes(raw)
    _, data, labels = members["data_batch_1"]
    return data, labels


@pytest.mark.parametrize("as_archive", [False, True])
def test_cifar10_reader_on_generated_files(tmp_path: Path, as_archive: bool) -> None:
    data, labels = write_cifar10(tmp_path, as_archive)
    md5 = md5_of(tmp_path / "cifar-10-python.tar.gz") if as_archive else None
    splits = load_cifar("cifar10", tmp_path, download_enabled=False, md5=md5)
    assert splits.train_images.shape == (30, 3, 32, 32) and splits.train_images.dtype == torch.uint8
    assert splits.test_images.shape == (4, 3, 32, 32)
    # Row-major CHW: the first 1024 bytes of a row are the red plane.
    assert torch.equal(splits.train_images[0], torch.from_numpy(data[0].reshape(3, 32, 32)))
    assert splits.train_labels[:6].tolist() == labels.tolist()


def test_cifar100_reader_uses_fine_labels(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    raw, _, labels = cifar_batch(5, 1, b"fine_labels", 100)
    (folder / "train").write_bytes(raw)
    (folder / "test").write_bytes(cifar_batch(3, 2, b"fine_labels", 100)[0])
    splits = load_cifar("cifar100", tmp_path, download_enabled=False)
    assert splits.train_labels.tolist() == labels.tolist()


def test_corrupted_cifar_archive_fails_its_checksum(tmp_path: Path) -> None:
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"not really a tarball")
    with pytest.raises(ChecksumError, match=r"MD5 .* expected c58f30108f718f92721af3b95e74349a"):
        load_cifar("cifar10", tmp_path, download_enabled=False)


def test_truncated_cifar_batch_is_reported(tmp_path: Path) -> None:
    write_cifar10(tmp_path, as_archive=False)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"\x80\x04garbage")
    with pytest.raises(ChecksumError, match="data_batch_3"):
        load_cifar("cifar10", tmp_path, download_enabled=False)


def test_missing_cifar_says_where_it_looked_and_what_works_offline(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as error:
        load_cifar("cifar10", tmp_path, download_enabled=False)
    message = str(error.value)
    assert str(tmp_path / "cifar-10-python.tar.gz") in message
    assert str(tmp_path / "cifar-10-batches-py") in message
    assert "digits" in message and "fashion_mnist" in message


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_idx_reader_on_generated_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", train)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(7) % 10)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", train[:3])
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.arange(3))
    splits = load_fashion_mnist(tmp_path, root=tmp_path, download_enabled=False)
    assert splits.train_images.shape == (7, 1, 32, 32)
    # Zero-padded by 2 pixels on each side, content unchanged.
    assert torch.equal(splits.train_images[:, 0, 2:30, 2:30], torch.from_numpy(train))
    assert int(splits.train_images[:, :, :2].sum()) == 0
    assert splits.train_labels.tolist() == (np.arange(7) % 10).tolist()


def test_idx_reader_rejects_bad_files(tmp_path: Path) -> None:
    bad_magic = tmp_path / "bad.gz"
    with gzip.open(bad_magic, "wb") as handle:
        handle.write(b"\x00\x00\x0d\x01\x00\x00\x00\x01\x00")
    with pytest.raises(ChecksumError, match="magic"):
        read_idx(bad_magic)
    short = tmp_path / "short.gz"
    with gzip.open(short, "wb") as handle:
        handle.write(bytes([0, 0, 8, 1]) + struct.pack(">I", 10) + b"\x01\x02")
    with pytest.raises(ChecksumError, match="shape"):
        read_idx(short)


def test_digits_split_is_deterministic_and_upsampled() -> None:
    first, second = load_digits(32), load_digits(32)
    assert first.train_images.shape[1:] == (1, 32, 32)
    assert len(first.train_labels) + len(first.test_labels) == 1797
    assert torch.equal(first.test_labels, second.test_labels)
    assert int(first.train_images.max()) > 200  # scaled from 0..16 to 0..255


def test_random_crop_shifts_content_within_padding() -> None:
    image = (
        torch.arange(1, 1 + 3 * 8 * 8, dtype=torch.float32).reshape(1, 3, 8, 8).repeat(64, 1, 1, 1)
    )
    cropped = random_crop(image, padding=2, generator=torch.Generator().manual_seed(0))
    assert cropped.shape == image.shape
    for sample in cropped:
        nonzero = sample[0] != 0
        rows, cols = nonzero.any(1).nonzero(), nonzero.any(0).nonzero()
        # Each crop is the original translated by at most 2 pixels: a block of kept pixels,
        # and the kept values are an exact window of the original.
        dy, dx = 8 - len(rows), 8 - len(cols)
        assert 0 <= dy <= 2 and 0 <= dx <= 2
    offsets = {tuple((s[0] != 0).sum(dim=1).tolist()) for s in cropped}
    assert len(offsets) > 1  # different images get different crops


def test_random_hflip_flips_about_half() -> None:
    images = torch.arange(16.0).reshape(1, 1, 4, 4).repeat(200, 1, 1, 1)
    flipped = random_hflip(images, generator=torch.Generator().manual_seed(1))
    mirrored = (flipped == images.flip(-1)).flatten(1).all(1)
    unchanged = (flipped == images).flatten(1).all(1)
    assert bool((mirrored | unchanged).all())
    assert 60 < int(mirrored.sum()) < 140


def test_normalize_standardizes_channels() -> None:
    images = torch.full((2, 3, 4, 4), 255, dtype=torch.uint8)
    out = normalize(images, torch.tensor([0.5, 0.5, 0.5]), torch.tensor([0.5, 0.25, 1.0]))
    assert torch.allclose(out[0, :, 0, 0], torch.tensor([1.0, 2.0, 0.5]))


def test_datamodule_split_sizes_and_label_check() -> None:
    module = ImageDataModule(
        "synthetic",
        num_classes=4,
        channels=3,
        image_size=16,
        val_fraction=0.25,
        options={"train_size": 40, "test_size": 8},
    )
    module.setup("fit")
    assert (
        module.train_set is not None and module.val_set is not None and module.test_set is not None
    )
    assert (len(module.train_set), len(module.val_set), len(module.test_set)) == (30, 10, 8)
    batch = next(iter(module.train_dataloader()))
    assert batch[0].dtype == torch.uint8  # augmentation and normalization happen after transfer
    wrong = ImageDataModule("synthetic", num_classes=10, channels=3, image_size=8)
    splits = wrong.load()
    wrong.num_classes = 2  # the data has labels up to 9: a config that says 2 classes is caught
    with pytest.raises(ValueError, match="num_classes=2"):
        wrong._check(splits)
    with pytest.raises(ValueError, match=r"\(3, 32, 32\)"):
        ImageDataModule("synthetic", num_classes=10, channels=3, image_size=32)._check(
            ImageDataModule("synthetic", num_classes=10, channels=3, image_size=8).load()
        )
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        ImageDataModule("mnist", num_classes=10, channels=1, image_size=32)
