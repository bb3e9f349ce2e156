import gzip
import shutil

import numpy as np
import pytest

from sparsenest import data
from sparsenest.data import DatasetChecksumError, DatasetNotFoundError


def test_mnist_shapes_and_class_counts(mnist_train, mnist_test):
    assert mnist_train.x.shape == (60000, 1, 28, 28) and mnist_train.x.dtype == np.float32
    assert mnist_test.y.dtype == np.int64
    # Class counts published with the data set (../shared/data/mnist/PROVENANCE.md)
    assert np.bincount(mnist_test.y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert np.bincount(mnist_train.y)[0] == 5923
    assert mnist_train.sha256 != mnist_test.sha256


def test_fashion_mnist_from_debian_package():
    d = data.load("fashion-mnist", "test")
    assert d.x.shape == (10000, 1, 28, 28) and np.bincount(d.y).tolist() == [1000] * 10


def test_missing_dataset_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARSENEST_DATA", str(tmp_path))
    monkeypatch.setattr(data, "search_path", lambda: [tmp_path])
    with pytest.raises(DatasetNotFoundError) as e:
        data.load("mnist", "test")
    msg = str(e.value)
    assert str(tmp_path / "mnist") in msg and "SPARSENEST_DATA" in msg


def test_corrupt_file_fails_checksum(tmp_path, monkeypatch):
    src = data.find_dataset_dir("mnist", ["t10k-labels-idx1-ubyte.gz"], "")
    (tmp_path / "mnist").mkdir()
    shutil.copy(src / "t10k-images-idx3-ubyte.gz", tmp_path / "mnist")
    raw = bytearray(gzip.decompress((src / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    raw[100] ^= 1  # one flipped label bit
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(raw)))
    monkeypatch.setattr(data, "search_path", lambda: [tmp_path])
    with pytest.raises(DatasetChecksumError, match="t10k-labels"):
        data.load("mnist", "test")


def test_subset_is_deterministic(mnist_test):
    a, b = mnist_test.subset(100, seed=3), mnist_test.subset(100, seed=3)
    assert np.array_equal(a.y, b.y) and len(a) == 100
