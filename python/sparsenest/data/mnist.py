"""MNIST and Fashion-MNIST from IDX files (gzip or plain), checksum-verified."""
from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np

from . import Dataset, DatasetChecksumError, find_dataset_dir, register_dataset

_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

# MD5 of the *uncompressed* IDX files, so any gzip of the right bytes is accepted.
_MD5 = {
    # The canonical MNIST release (also listed in ../shared/data/mnist/PROVENANCE.md).
    "mnist": {
        "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
    },
    # Measured on Debian 12's dataset-fashion-mnist package (the files Zalando published, re-gzipped).
    "fashion-mnist": {
        "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
    },
}

_HOW = {
    "mnist": "copy the four MNIST IDX files (train/t10k images/labels, .gz or raw) into a folder 'mnist'",
    "fashion-mnist": "apt-get install dataset-fashion-mnist (installs /usr/share/datasets/fashion-mnist)",
}

_CLASSES = {
    "mnist": [str(i) for i in range(10)],
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                      "Sneaker", "Bag", "Ankle boot"],
}

# Mean/std of the MNIST training images; used for both sets so inputs stay within about [-0.5, 3].
_MEAN, _STD = 0.1307, 0.3081


def _read_idx(path: Path, expected_md5: str, *, folder: str) -> np.ndarray:
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    md5 = hashlib.md5(raw).hexdigest()
    if md5 != expected_md5:
        raise DatasetChecksumError(
            f"{path}: MD5 of the uncompressed data is {md5}, expected {expected_md5}. The file is corrupt "
            f"or not the official release; replace it ({_HOW[folder]}).")
    magic = int.from_bytes(raw[:4], "big")
    ndim = magic & 0xFF
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _locate(folder: str, stem: str, dirpath: Path) -> Path:
    for cand in (dirpath / f"{stem}.gz", dirpath / stem):
        if cand.exists():
            return cand
    raise FileNotFoundError(dirpath / stem)


def _load_idx_set(folder: str, split: str) -> Dataset:
    if split not in _FILES:
        raise ValueError(f"{folder}: split must be 'train' or 'test', not {split!r}")
    img_stem, lbl_stem = _FILES[split]
    # Accept either the .gz or the raw file: check for whichever the directory has.
    required_any = [f"{img_stem}.gz", f"{lbl_stem}.gz"]
    try:
        d = find_dataset_dir(folder, required_any, _HOW[folder])
    except FileNotFoundError:
        d = find_dataset_dir(folder, [img_stem, lbl_stem], _HOW[folder])
    img_path, lbl_path = _locate(folder, img_stem, d), _locate(folder, lbl_stem, d)
    images = _read_idx(img_path, _MD5[folder][img_stem], folder=folder)
    labels = _read_idx(lbl_path, _MD5[folder][lbl_stem], folder=folder)
    x = ((images.astype(np.float32) / 255.0 - _MEAN) / _STD)[:, None, :, :]
    # Identity = the uncompressed contents' MD5s, so the same data gives the same id whatever the gzip.
    ident = hashlib.sha256((_MD5[folder][img_stem] + _MD5[folder][lbl_stem]).encode()).hexdigest()
    return Dataset(folder, split, np.ascontiguousarray(x), labels.astype(np.int64), 10, ident,
                   _CLASSES[folder])


@register_dataset("mnist")
def load_mnist(split: str = "train") -> Dataset:
    return _load_idx_set("mnist", split)


@register_dataset("fashion-mnist")
def load_fashion_mnist(split: str = "train") -> Dataset:
    return _load_idx_set("fashion-mnist", split)
