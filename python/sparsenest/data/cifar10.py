"""CIFAR-10 from the JPEG quality-75 copy (folder `cifar10`: tar.xz of train/<class>/NNNN.jpg and
test/<class>/NNNN.jpg, MANIFEST.sha256.xz, SHA256SUMS). Stand-in for ImageNet (the SqueezeNext row).

The JPEGs are lossy: accuracy is NOT directly comparable to papers that use the original binaries; every
number must carry the Dataset's note "CIFAR-10 (JPEG q75 copy), stand-in for ImageNet". The original index
order is not preserved (files are renumbered per class); samples are ordered by class, then file name.

x [N, 3, 32, 32] float32, normalised per channel with this copy's training mean/std
(about 0.4913/0.4821/0.4465 and 0.2452/0.2428/0.2606); y [N] int64 in CLASSES order.
The 60,000 images are decoded once (Pillow, about 20 s) into a uint8 npz in `cache_dir()` keyed by the
archive's sha256; later loads take about a second.
"""
from __future__ import annotations

import hashlib
import io
import lzma
import os
import tarfile
from pathlib import Path

import numpy as np

from . import (Dataset, DatasetChecksumError, cache_dir, find_dataset_dir, read_cache, register_dataset,
               sha256_file, verify_sha256sums)

FOLDER = "cifar10"
ARCHIVE = "cifar10_yoongikim_jpg_q75.tar.xz"
MANIFEST = "MANIFEST.sha256.xz"
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
NOTE = "CIFAR-10 (JPEG q75 copy), stand-in for ImageNet"
RECIPE = "cifar10-jpeg-v1: Pillow RGB decode, uint8 NCHW, order class then name"

_HOW = (f"copy {ARCHIVE} with {MANIFEST} and SHA256SUMS into a folder '{FOLDER}' (the project keeps one "
        "in ../shared/data)")


def _read_manifest(folder: Path) -> dict[str, str]:
    out = {}
    for line in lzma.decompress((folder / MANIFEST).read_bytes()).decode().splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) == 2:
            out[parts[1].lstrip("*").strip()] = parts[0].lower()
    return out


def extract_images(folder: Path, *, progress: bool = True) -> dict[str, np.ndarray]:
    """Decode every JPEG (each checked against the manifest): {'x_train' [50000,3,32,32] uint8,
    'y_train', 'x_test' [10000,3,32,32] uint8, 'y_test'}."""
    from PIL import Image
    from tqdm.auto import tqdm

    manifest = _read_manifest(folder)
    images: dict[str, np.ndarray] = {}
    with tarfile.open(folder / ARCHIVE, "r:xz") as tar, \
            tqdm(total=len(manifest), desc="CIFAR-10: decoding JPEGs", unit="img", miniters=500,
                 disable=not progress) as bar:
        for m in tar:
            if not m.isfile() or not m.name.endswith(".jpg"):
                continue
            name = m.name[2:] if m.name.startswith("./") else m.name
            raw = tar.extractfile(m).read()
            want, got = manifest.get(name), hashlib.sha256(raw).hexdigest()
            if want is None or got != want:
                raise DatasetChecksumError(
                    f"{folder / ARCHIVE}: member {name} has sha256 {got}, {MANIFEST} says {want}. The "
                    f"archive or manifest is corrupt; replace them ({_HOW}).")
            with Image.open(io.BytesIO(raw)) as im:
                a = np.asarray(im.convert("RGB"), dtype=np.uint8)
            if a.shape != (32, 32, 3):
                raise DatasetChecksumError(f"{name}: image is {a.shape}, expected 32x32 RGB")
            images[name] = a
            bar.update(1)
    missing = sorted(set(manifest) - set(images))
    if missing:
        raise DatasetChecksumError(f"{folder / ARCHIVE}: {len(missing)} files of {MANIFEST} are missing "
                                   f"(first: {missing[0]}). {_HOW}")
    out = {}
    for split in ("train", "test"):
        names = sorted((n for n in images if n.startswith(split + "/")),
                       key=lambda n: (CLASSES.index(n.split("/")[1]), n))
        out[f"x_{split}"] = np.stack([images[n] for n in names]).transpose(0, 3, 1, 2).copy()
        out[f"y_{split}"] = np.array([CLASSES.index(n.split("/")[1]) for n in names], np.int64)
    return out


def _cached_images(*, progress: bool = True) -> tuple[dict[str, np.ndarray], str]:
    folder = find_dataset_dir(FOLDER, [ARCHIVE, MANIFEST, "SHA256SUMS"], _HOW)
    sums = verify_sha256sums(folder, [ARCHIVE], how_to_fix=_HOW)
    ident = hashlib.sha256((sums[ARCHIVE] + sha256_file(folder / MANIFEST)).encode()).hexdigest()
    key = hashlib.sha256((ident + RECIPE).encode()).hexdigest()[:16]
    path = cache_dir() / f"cifar10_jpeg_q75_{key}.npz"
    cached = read_cache(path)  # None: missing, torn or foreign (planted) -> rebuild
    if cached is not None:
        return cached, ident
    imgs = extract_images(folder, progress=progress)
    imgs["mean"], imgs["std"] = channel_stats(imgs["x_train"])
    tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
    np.savez(tmp, **imgs)
    os.replace(tmp, path)
    return imgs, ident


def channel_stats(x_train_u8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std (in [0, 1] units) of the uint8 training images."""
    x = x_train_u8.reshape(x_train_u8.shape[0], 3, -1)
    n = x.shape[0] * x.shape[2]
    s = x.sum(axis=(0, 2), dtype=np.float64) / 255.0
    mean = s / n
    sq = np.zeros(3)
    for i in range(0, x.shape[0], 5000):  # bounded memory
        xi = x[i:i + 5000].astype(np.float64) / 255.0
        sq += ((xi - mean[None, :, None]) ** 2).sum(axis=(0, 2))
    return mean, np.sqrt(sq / n)


@register_dataset("cifar10")
def load_cifar10(split: str = "train", *, normalize: bool = True, progress: bool = True) -> Dataset:
    """x [N, 3, 32, 32] float32 (per-channel standardised with the training mean/std if `normalize`,
    else in [0, 1]), y [N] int64 (CLASSES order). 50,000 train / 10,000 test."""
    if split not in ("train", "test"):
        raise ValueError(f"cifar10: split must be 'train' or 'test', not {split!r}")
    imgs, ident = _cached_images(progress=progress)
    u8 = imgs[f"x_{split}"]
    x = u8.astype(np.float32)
    x *= np.float32(1 / 255.0)
    if normalize:
        mean, std = (imgs["mean"], imgs["std"]) if "mean" in imgs else channel_stats(imgs["x_train"])
        x -= mean.astype(np.float32)[None, :, None, None]
        x /= std.astype(np.float32)[None, :, None, None]
    split_id = hashlib.sha256(f"{ident} {RECIPE} normalize={normalize} {split}".encode()).hexdigest()
    return Dataset("cifar10", split, x, imgs[f"y_{split}"].astype(np.int64), len(CLASSES), split_id,
                   list(CLASSES), NOTE)
