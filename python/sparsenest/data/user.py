"""Your own data: an `.npz` file, an image folder, or arrays / a DataLoader from Python.

Wherever a data set name is accepted (`sparsenest train --dataset`, `data.load`), a path works too:
  * `FILE.npz` with `x`/`y` (split 80/20 into train/test by a fixed seed) or `x_train`/`y_train`/`x_test`/
    `y_test`. `x` is [N, ...] in the model's layout ([N, H, W] gets a channel axis, uint8 is scaled to
    [0, 1]); `y` holds integer class labels 0..C-1. Read with allow_pickle=False.
  * a folder with one subfolder per class of images (PNG/JPEG/BMP/GIF, all the same size), or with
    `train/` and `test/` folders of that shape; grey images give [1, H, W], colour ones [3, H, W] in [0, 1].
A bundle records the absolute path and the sha256 of the files, so compile/simulate/report later find
the same data (and the digest shows whether it changed).

From Python, `from_arrays` / `from_loader` make a Dataset of tensors or a DataLoader, and `register`
makes it loadable by name in this process (compile --evaluate, report); the CLI in a later process needs
the data as a file.
"""
from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import numpy as np

from . import Dataset, sha256_file

TEST_FRACTION, SPLIT_SEED = 0.2, 0
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
MAX_NPZ_BYTES = 4 << 30
_MEMORY: dict[str, dict[str, Dataset]] = {}   # name -> {"train": Dataset, "test": Dataset}


def is_path_name(name: str) -> bool:
    """A data set name that means a file or folder of the user's (not a built-in name)."""
    return name.endswith(".npz") or os.sep in name or Path(name).is_dir()


def registered(name: str) -> bool:
    return name in _MEMORY


def load_registered(name: str, split: str) -> Dataset:
    return _pick(_MEMORY[name], split, name)


def register(name: str, train: Dataset, test: Dataset) -> None:
    """Make `name` loadable by data.load() in this process (data given as arrays or a DataLoader)."""
    _MEMORY[name] = {"train": train, "test": test}


def load_path(name: str, split: str) -> Dataset:
    """data.load() of a path: an .npz file or an image folder (module docstring)."""
    p = Path(name)
    try:
        st = os.stat(p)
    except OSError as e:
        raise FileNotFoundError(f"data set {name!r}: {e.strerror}; give an .npz file, an image folder or one of "
                                "the built-in names (sparsenest train --help)") from None
    if stat.S_ISDIR(st.st_mode):
        return _pick(_image_folder(p), split, name)
    if not stat.S_ISREG(st.st_mode) or p.suffix != ".npz":
        raise ValueError(f"data set {name!r} is neither an .npz file nor a folder of class subfolders")
    if st.st_size > MAX_NPZ_BYTES:
        raise ValueError(f"data set {name!r} is larger than {MAX_NPZ_BYTES >> 30} GiB; use a smaller file")
    return _pick(_npz(p), split, name)


def _pick(splits: dict[str, Dataset], split: str, name: str) -> Dataset:
    if split not in splits:
        raise ValueError(f"data set {name!r} has no split {split!r}; it has {', '.join(splits)}")
    return splits[split]


def _npz(path: Path) -> dict[str, Dataset]:
    where = str(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except ValueError as e:  # object arrays need pickle: refused
        raise ValueError(f"{where}: cannot read it without pickle ({e}); store plain numeric arrays") from None
    except (OSError, EOFError) as e:
        raise ValueError(f"{where} is not a readable .npz file ({type(e).__name__}); write it with numpy.savez")
    name, digest = str(path.resolve()), sha256_file(path)
    if {"x_train", "y_train", "x_test", "y_test"} <= arrays.keys():
        xy = {s: (arrays[f"x_{s}"], arrays[f"y_{s}"]) for s in ("train", "test")}
        note = "user .npz, its own train/test split"
    elif {"x", "y"} <= arrays.keys():
        x, y = arrays["x"], arrays["y"]
        _check_xy(x, y, where, "x", "y")
        test_idx, train_idx = split_indices(len(y))
        xy = {"train": (x[train_idx], y[train_idx]), "test": (x[test_idx], y[test_idx])}
        note = f"user .npz, x/y split {100 * (1 - TEST_FRACTION):.0f}/{100 * TEST_FRACTION:.0f} (seed {SPLIT_SEED})"
    else:
        raise ValueError(f"{where} holds {sorted(arrays) or 'no arrays'}; it needs x and y, or x_train, y_train, "
                         "x_test and y_test")
    for s, (x, y) in xy.items():
        _check_xy(x, y, where, f"x_{s}", f"y_{s}")
    n_classes = int(max(int(y.max()) for _, y in xy.values())) + 1
    return {s: Dataset(name, s, _as_inputs(x), y.astype(np.int64), n_classes, digest, note=note)
            for s, (x, y) in xy.items()}


def _check_xy(x: np.ndarray, y: np.ndarray, where: str, xk: str, yk: str) -> None:
    if x.dtype.kind not in "biuf" or x.ndim < 2:
        raise ValueError(f"{where} key {xk!r}: needs a numeric array [N, ...], is {x.dtype} {list(x.shape)}")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise ValueError(f"{where} key {xk!r}: holds NaN or infinite values")
    if y.ndim != 1 or y.dtype.kind not in "iub" or len(y) != len(x) or len(y) == 0:
        raise ValueError(f"{where} key {yk!r}: needs integer class labels [N] with N = len({xk}) = {len(x)}, is "
                         f"{y.dtype} {list(y.shape)}")
    if y.min() < 0:
        raise ValueError(f"{where} key {yk!r}: labels must be 0..C-1, found {int(y.min())}")


def _as_inputs(x: np.ndarray) -> np.ndarray:
    """float32 [N, C, ...]: [N, H, W] gets a channel axis, uint8 is scaled to [0, 1]."""
    scale = 255.0 if x.dtype == np.uint8 else 1.0
    x = x.astype(np.float32) / np.float32(scale)
    return x[:, None] if x.ndim == 3 else x


def split_indices(n: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(SPLIT_SEED).permutation(n)
    n_test = max(1, int(round(TEST_FRACTION * n)))
    return np.sort(perm[:n_test]), np.sort(perm[n_test:])


def _class_images(root: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    files = [(f, k) for k, c in enumerate(classes) for f in sorted((root / c).iterdir())
             if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()]
    return classes, files


def _image_folder(root: Path) -> dict[str, Dataset]:
    from PIL import Image
    if (root / "train").is_dir() and (root / "test").is_dir():
        parts = {s: _class_images(root / s) for s in ("train", "test")}
        if parts["train"][0] != parts["test"][0]:
            raise ValueError(f"{root}: train/ has classes {parts['train'][0]}, test/ has {parts['test'][0]}; "
                             "give both the same class folders")
        classes = parts["train"][0]
        files = {s: f for s, (_, f) in parts.items()}
        note = "user image folder, its own train/test split"
    else:
        classes, all_files = _class_images(root)
        test_idx, train_idx = split_indices(len(all_files)) if all_files else (np.array([], int), np.array([], int))
        files = {"train": [all_files[i] for i in train_idx], "test": [all_files[i] for i in test_idx]}
        note = f"user image folder, split {100 * (1 - TEST_FRACTION):.0f}/{100 * TEST_FRACTION:.0f} (seed {SPLIT_SEED})"
    if len(classes) < 2 or not files["train"] or not files["test"]:
        raise ValueError(f"{root}: needs at least two class subfolders with images ({', '.join(IMAGE_SUFFIXES)}); "
                         f"found classes {classes}")
    everything = files["train"] + files["test"]
    modes, size = set(), None
    for f, _ in everything:
        with Image.open(f) as im:
            modes.add(im.mode)
            if size is None:
                size, first = im.size, f
            elif im.size != size:
                raise ValueError(f"{f} is {im.size[0]}x{im.size[1]}, {first} is {size[0]}x{size[1]}; give images of "
                                 "one size")
    grey = modes <= {"L", "1", "I;16", "I"}
    h = hashlib.sha256()
    out = {}
    for s, items in files.items():
        xs = []
        for f, _ in items:
            with Image.open(f) as im:
                arr = np.asarray(im.convert("L" if grey else "RGB"), np.float32) / np.float32(255)
            xs.append(arr[None] if grey else arr.transpose(2, 0, 1))
            h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes())
        out[s] = (np.stack(xs), np.array([k for _, k in items], np.int64))
    digest, name = h.hexdigest(), str(root.resolve())
    return {s: Dataset(name, s, x, y, len(classes), digest, classes=list(classes), note=note)
            for s, (x, y) in out.items()}


def from_arrays(x, y, *, name: str = "user-data", split: str = "train", num_classes: int | None = None) -> Dataset:
    """A Dataset of a user's arrays or tensors (x: [N, ...] float, y: [N] integer labels)."""
    x = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
    y = y.detach().cpu().numpy() if hasattr(y, "detach") else np.asarray(y)
    _check_xy(x, y, name, "x", "y")
    y = y.astype(np.int64)
    digest = hashlib.sha256(np.ascontiguousarray(x).tobytes() + y.tobytes()).hexdigest()
    return Dataset(name, split, _as_inputs(x), y, int(num_classes or int(y.max()) + 1), digest,
                   note="user arrays (Python API)")


def from_loader(loader, *, name: str = "user-data", split: str = "train", num_classes: int | None = None) -> Dataset:
    """A Dataset of every (x, y) batch a DataLoader (or any iterable of pairs) yields, in order."""
    xs, ys = [], []
    for batch in loader:
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise ValueError(f"{name}: the loader must yield (inputs, labels) pairs, yielded {type(batch).__name__}")
        xs.append(np.asarray(batch[0].detach().cpu() if hasattr(batch[0], "detach") else batch[0]))
        ys.append(np.asarray(batch[1].detach().cpu() if hasattr(batch[1], "detach") else batch[1]))
    if not xs:
        raise ValueError(f"{name}: the loader yielded no batches")
    return from_arrays(np.concatenate(xs), np.concatenate(ys), name=name, split=split, num_classes=num_classes)
