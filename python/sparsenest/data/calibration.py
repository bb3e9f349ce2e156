"""The inputs a compile needs from a bundle's data set: calibration images and an evaluation slice.

The compiler only compiles (compiler/build.py loads no data); callers fetch these here and pass them
(or these functions themselves, which take the bundle) to `compile_bundle(calib=..., evaluate=...)`.
"""
from __future__ import annotations

import numpy as np

from . import load

CALIB_IMAGES = 512   # training images the Q15 exponents are calibrated on, by default
CALIB_SEED = 0
EVAL_SEED = 0


def _dataset_name(bundle_or_name) -> str:
    """A data set name, or the one a loaded Bundle records (a bundle's path is not enough: load it)."""
    if isinstance(bundle_or_name, str):
        return bundle_or_name
    if not hasattr(bundle_or_name, "dataset"):
        raise TypeError(f"expected a data set name or a loaded Bundle, not {bundle_or_name!r}; pass "
                        "Bundle.load(path), or these functions themselves to compile_bundle")
    return bundle_or_name.dataset["name"]


def calibration_inputs(bundle_or_name, n: int | None = None) -> np.ndarray:
    """n (default CALIB_IMAGES) training inputs of the bundle's data set, a fixed random slice."""
    n = CALIB_IMAGES if n is None else int(n)
    return load(_dataset_name(bundle_or_name), "train").subset(n, seed=CALIB_SEED).x


def evaluation_set(bundle_or_name, n: int | str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of the bundle's data set's test split: all of it (n None or "test") or n samples."""
    ds = load(_dataset_name(bundle_or_name), "test")
    if n is not None and n != "test":
        ds = ds.subset(int(n), seed=EVAL_SEED)
    return ds.x, ds.y
