"""Dataset readers: each returns whole splits as in-memory uint8 tensors (N, C, H, W).

Readers never touch the network unless ``download=True`` and the files are missing; downloads are
verified against the published MD5 checksums before use.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import shutil
import struct
import tarfile
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

OFFLINE_DATASETS = "digits (scikit-learn, bundled), fashion_mnist (Debian package dataset-fashion-mnist), synthetic"


class DatasetNotFoundError(FileNotFoundError):
    """The dataset is not on disk and could not be downloaded."""


class ChecksumError(ValueError):
    """A dataset file does not match its published checksum or layout."""


@dataclass
class ImageSplits:
    """Train and test images (uint8, N x C x H x W) and labels (int64)."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor


def md5_of(path: Path) -> str:
    """MD5 hex digest of a file, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_md5(path: Path, expected: str | None) -> None:
    """Raise :class:`ChecksumError` if ``path`` does not hash to ``expected`` (skipped when None)."""
    if expected is None:
        return
    actual = md5_of(path)
    if actual != expected:
        raise ChecksumError(
            f"{path} is corrupted or incomplete: MD5 {actual}, expected {expected}. "
            f"Delete it and download it again."
        )


def download(url: str, target: Path, md5: str | None, timeout_s: float = 15.0) -> Path:
    """Download ``url`` to ``target`` (via a ``.part`` file) and verify its checksum."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    print(f"Downloading {url} -> {target}", flush=True)
    with urllib.request.urlopen(url, timeout=timeout_s) as response, open(partial, "wb") as out:
        shutil.copyfileobj(response, out)
    verify_md5(partial, md5)
    partial.replace(target)
    return target


def _locate_or_download(
    dataset: str,
    candidates: Sequence[Path],
    url: str,
    md5: str | None,
    download_enabled: bool,
    how_to: str,
) -> Path:
    """Return the first existing candidate; else download into ``candidates[0]``; else fail clearly."""
    for path in candidates:
        if path.exists():
            return path
    looked = "\n  ".join(str(path) for path in candidates)
    if not download_enabled:
        reason = "download disabled (data.download=false)"
    else:
        try:
            return download(url, candidates[0], md5)
        except ChecksumError:
            raise
        except OSError as error:  # URLError, timeouts, DNS failures are OSErrors
            reason = f"download from {url} failed: {error}"
    raise DatasetNotFoundError(
        f"{dataset} not found. Looked in:\n  {looked}\n{reason}.\n{how_to}\n"
        f"Datasets that work offline: {OFFLINE_DATASETS}."
    )


# ----------------------------------------------------------------------------- CIFAR
CIFAR_ARCHIVES = {
    # Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", 2009. MD5s as published
    # on the dataset's home page.
    "cifar10": (
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "c58f30108f718f92721af3b95e74349a",
        "cifar-10-batches-py",
        [f"data_batch_{index}" for index in range(1, 6)],
        ["test_batch"],
        b"labels",
    ),
    "cifar100": (
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        "eb9058c3a382ffc7106e4002c42a8d85",
        "cifar-100-python",
        ["train"],
        ["test"],
        b"fine_labels",
    ),
}


# The only globals a CIFAR python batch refers to: numpy's array reconstruction (the batches were
# pickled from numpy arrays; labels and file names are plain lists), and the byte-string codec. Anything else (e.g. os.system
# in a crafted file) is refused before it can run: the "Restricting Globals" recipe of the pickle
# docs (https://docs.python.org/3/library/pickle.html#restricting-globals).
_CIFAR_PICKLE_GLOBALS = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # protocol-2 pickles written by Python 3 encode bytes this way
    }
)


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, strings, numbers and numpy arrays; refuses every other global."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _CIFAR_PICKLE_GLOBALS:
            raise pickle.UnpicklingError(
                f"refused global {module}.{name} (only numpy arrays and plain data are loaded)"
            )
        return super().find_class(module, name)


def _unpickle_batch(raw: bytes, label_key: bytes, source: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = _ArrayOnlyUnpickler(io.BytesIO(raw), encoding="bytes").load()
        images = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch[label_key], dtype=np.int64)
    except Exception as error:
        raise ChecksumError(f"{source} is not a valid CIFAR python batch: {error}") from error
    if len(images) != len(labels):
        raise ChecksumError(f"{source}: {len(images)} images but {len(labels)} labels")
    return images, labels


def load_cifar(
    name: str,
    data_dir: Path,
    download_enabled: bool = True,
    md5: str | None = "published",
) -> ImageSplits:
    """Read CIFAR-10/100 from ``data_dir`` (extracted folder or the official archive).

    ``md5="published"`` verifies the archive against the published checksum; pass another digest
    (tests) or None to skip.
    """
    if name not in CIFAR_ARCHIVES:
        raise ValueError(f"unknown CIFAR variant {name!r}; valid: {sorted(CIFAR_ARCHIVES)}")
    url, published_md5, folder, train_files, test_files, label_key = CIFAR_ARCHIVES[name]
    expected_md5 = published_md5 if md5 == "published" else md5
    archive_name = url.rsplit("/", 1)[-1]
    data_dir = Path(data_dir)
    extracted = data_dir / folder
    archive = data_dir / archive_name
    how_to = (
        f"To provide it, put the official archive {archive_name} (MD5 {published_md5}) or its "
        f"extracted folder {folder}/ into {data_dir}, or point data.data_dir at a folder that has one."
    )
    found = _locate_or_download(
        name, [archive, extracted], url, expected_md5, download_enabled, how_to
    )
    if found.is_dir():
        return _stack_cifar(_DirectoryReader(found, label_key), train_files, test_files)
    verify_md5(found, expected_md5)
    try:
        with tarfile.open(found, "r:gz") as tar:
            return _stack_cifar(
                _ArchiveReader(tar, found, folder, label_key), train_files, test_files
            )
    except (tarfile.TarError, EOFError, OSError) as error:
        raise ChecksumError(f"{found} is not a readable CIFAR archive: {error}") from error


@dataclass
class _DirectoryReader:
    folder: Path
    label_key: bytes

    def __call__(self, member: str) -> tuple[np.ndarray, np.ndarray]:
        path = self.folder / member
        if not path.exists():
            raise ChecksumError(f"{self.folder} is incomplete: {member} is missing")
        return _unpickle_batch(path.read_bytes(), self.label_key, str(path))


@dataclass
class _ArchiveReader:
    tar: tarfile.TarFile
    archive: Path
    folder: str
    label_key: bytes

    def __call__(self, member: str) -> tuple[np.ndarray, np.ndarray]:
        try:
            handle = self.tar.extractfile(f"{self.folder}/{member}")
        except KeyError:
            handle = None
        if handle is None:
            raise ChecksumError(f"{self.archive} has no file {self.folder}/{member}")
        return _unpickle_batch(handle.read(), self.label_key, f"{self.archive}:{member}")


def _stack_cifar(
    read_member: Callable[[str], tuple[np.ndarray, np.ndarray]],
    train_files: Sequence[str],
    test_files: Sequence[str],
) -> ImageSplits:
    train = [read_member(member) for member in train_files]
    test = [read_member(member) for member in test_files]
    return ImageSplits(
        torch.from_numpy(np.concatenate([images for images, _ in train])),
        torch.from_numpy(np.concatenate([labels for _, labels in train])),
        torch.from_numpy(np.concatenate([images for images, _ in test])),
        torch.from_numpy(np.concatenate([labels for _, labels in test])),
    )


# ----------------------------------------------------------------------------- Fashion-MNIST
FASHION_MNIST_FILES = {
    # Xiao, Rasul, Vollgraf, "Fashion-MNIST", arXiv 1708.07747. MD5s of the published .gz files.
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def read_idx(path: Path) -> np.ndarray:
    """Read a (gzipped) IDX file of unsigned bytes (LeCun's MNIST format) into an array."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as error:
        raise ChecksumError(f"{path} is not a readable IDX file: {error}") from error
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ChecksumError(f"{path} is not an unsigned-byte IDX file (bad magic number)")
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise ChecksumError(f"{path}: header says shape {shape} but holds {body.size} values")
    return body.reshape(shape)


def load_fashion_mnist(
    data_dir: Path, root: str | Path | None = None, download_enabled: bool = True, pad_to: int = 32
) -> ImageSplits:
    """Read Fashion-MNIST from ``root``, ``data_dir/fashion-mnist`` or the Debian package path."""
    folders = [Path(root)] if root else [Path(data_dir) / "fashion-mnist", DEBIAN_FASHION_MNIST]
    found: dict[str, Path] = {}
    for file_name, md5 in FASHION_MNIST_FILES.items():
        candidates = [folder / file_name for folder in folders]
        how_to = (
            "Install it offline with `apt-get install dataset-fashion-mnist` (files land in "
            f"{DEBIAN_FASHION_MNIST}), or put the four IDX .gz files into {candidates[0].parent}, "
            "or set data.root."
        )
        found[file_name] = _locate_or_download(
            "fashion_mnist",
            candidates,
            FASHION_MNIST_URL + file_name,
            md5,
            download_enabled,
            how_to,
        )
    arrays = {name: read_idx(path) for name, path in found.items()}
    splits = []
    for prefix in ("train", "t10k"):
        images, labels = (
            arrays[f"{prefix}-images-idx3-ubyte.gz"],
            arrays[f"{prefix}-labels-idx1-ubyte.gz"],
        )
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ChecksumError(
                f"Fashion-MNIST {prefix} split: images {images.shape} and labels {labels.shape} do not match"
            )
        tensor = torch.from_numpy(images.copy()).unsqueeze(1)
        splits.append((_pad_to(tensor, pad_to), torch.from_numpy(labels.astype(np.int64))))
    return ImageSplits(splits[0][0], splits[0][1], splits[1][0], splits[1][1])


def _pad_to(images: torch.Tensor, size: int) -> torch.Tensor:
    height, width = images.shape[-2:]
    if height > size or width > size:
        raise ValueError(f"cannot pad {height}x{width} images to {size}x{size}")
    top, left = (size - height) // 2, (size - width) // 2
    return F.pad(images, (left, size - width - left, top, size - height - top))


# ----------------------------------------------------------------------------- digits, synthetic
def load_digits(image_size: int = 32, test_fraction: float = 0.2, seed: int = 0) -> ImageSplits:
    """scikit-learn's bundled 8x8 digits (1,797 images, 16 grey levels), upsampled bilinearly."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32) * (255.0 / 16.0)).unsqueeze(1)
    images = F.interpolate(
        images, size=(image_size, image_size), mode="bilinear", align_corners=False
    )
    images = images.round().clamp_(0, 255).to(torch.uint8)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    test_count = round(len(labels) * test_fraction)
    test, train = order[:test_count], order[test_count:]
    return ImageSplits(images[train], labels[train], images[test], labels[test])


def make_synthetic(
    num_classes: int = 10,
    channels: int = 3,
    image_size: int = 32,
    train_size: int = 512,
    test_size: int = 128,
    seed: int = 0,
) -> ImageSplits:
    """Random images with a class-dependent mean pattern (learnable, for smoke tests)."""
    generator = torch.Generator().manual_seed(seed)
    prototypes = (
        torch.rand(num_classes, channels, image_size, image_size, generator=generator) * 255
    )

    def split(count: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.randint(0, num_classes, (count,), generator=generator)
        noise = torch.randn(count, channels, image_size, image_size, generator=generator) * 40
        images = (prototypes[labels] + noise).clamp_(0, 255).to(torch.uint8)
        return images, labels

    train_images, train_labels = split(train_size)
    test_images, test_labels = split(test_size)
    return ImageSplits(train_images, train_labels, test_images, test_labels)
