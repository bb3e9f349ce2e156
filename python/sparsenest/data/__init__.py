"""Data sets: one search path, checksum-verified loaders, a small registry.

Every loader returns a `Dataset` of numpy arrays (inputs float32 in the model's layout, labels int64)
plus an identity (name, split, sha256 over the source files) that bundles record.

Where data is looked for, in order:
  1. $SPARSENEST_DATA (one or more directories, separated by ':')
  2. the user cache, cache_root(): $SPARSENEST_CACHE, $XDG_CACHE_HOME/sparsenest or ~/.cache/sparsenest
  3. ../shared/data next to the project checkout (and next to the current directory)
  4. /usr/share/datasets (Debian's dataset-* packages)
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..paths import PROJECT_ROOT


class DatasetNotFoundError(FileNotFoundError):
    """A data set is not in any directory of the search path."""


class DatasetChecksumError(ValueError):
    """A data set file exists but its contents are not the expected ones."""


@dataclass
class Dataset:
    name: str
    split: str
    x: np.ndarray  # float32, [N, *input_shape]
    y: np.ndarray  # int64, [N]
    num_classes: int
    sha256: str  # identity of the source files (not of the decoded arrays)
    classes: list[str] = field(default_factory=list)
    note: str = ""  # anything a reported number must say about this data (e.g. "speaker-disjoint split")
    groups: np.ndarray | None = None  # subject/speaker per sample, where splits must not mix them

    def __len__(self) -> int:
        return len(self.y)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    def subset(self, n: int | None = None, *, seed: int = 0) -> "Dataset":
        """A class-stratified-by-chance random slice of n samples (all if n is None), order fixed by seed."""
        if n is None or n >= len(self):
            return self
        idx = np.random.default_rng(seed).permutation(len(self))[:n]
        idx.sort()
        return Dataset(self.name, f"{self.split}[{n}@{seed}]", self.x[idx], self.y[idx],
                       self.num_classes, self.sha256, self.classes, self.note,
                       None if self.groups is None else self.groups[idx])

    def identity(self) -> dict:
        return {"name": self.name, "split": self.split, "sha256": self.sha256,
                "num_classes": self.num_classes, "input_shape": list(self.input_shape),
                "num_samples": len(self), "note": self.note}


def search_path() -> list[Path]:
    dirs: list[Path] = []
    env = os.environ.get("SPARSENEST_DATA")
    if env:
        dirs += [Path(p) for p in env.split(os.pathsep) if p]
    dirs.append(cache_root())
    for base in (PROJECT_ROOT, Path.cwd()):
        dirs.append((base / ".." / "shared" / "data").resolve())
    dirs.append(Path("/usr/share/datasets"))
    seen, unique = set(), []
    for d in dirs:
        if d not in seen:
            seen.add(d)
            unique.append(d)
    return unique


def cache_root() -> Path:
    """The user cache of sparsenest: $SPARSENEST_CACHE, else $XDG_CACHE_HOME/sparsenest, else
    ~/.cache/sparsenest (an empty variable counts as unset, as the XDG spec says). Read at every call, so
    a test or CI run can point it at an empty folder."""
    own = os.environ.get("SPARSENEST_CACHE")
    if own:
        return Path(own)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sparsenest"


def cache_dir() -> Path:
    """Where derived data (extracted archives, features) is written once and reused (cache_root())."""
    d = cache_root()
    d.mkdir(parents=True, exist_ok=True)
    return d


def read_cache(path: Path) -> dict[str, np.ndarray] | None:
    """The arrays of a derived-data cache file, or None when it is missing or unusable (then the caller
    rebuilds it). Anything could have been planted there: only a regular file is opened (a FIFO would
    block), and never with pickle."""
    try:
        if not path.is_file() or path.is_symlink():
            return None
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except Exception:  # a torn write, a foreign file: rebuild it
        return None


def find_dataset_dir(folder: str, required: list[str], how_to_get: str) -> Path:
    """The first directory `<search dir>/<folder>` holding every file in `required`."""
    tried = []
    for d in search_path():
        cand = d / folder
        tried.append(str(cand))
        if all((cand / f).exists() for f in required):
            return cand
    raise DatasetNotFoundError(
        f"data set '{folder}' not found (need {', '.join(required)}).\nLooked in:\n  "
        + "\n  ".join(tried)
        + f"\nTo provide it: {how_to_get}\n"
        "Or point SPARSENEST_DATA at a directory that contains it.")


def verify_sha256sums(folder: Path, files: list[str], *, how_to_fix: str = "") -> dict[str, str]:
    """Check `files` against `folder/SHA256SUMS` (sha256sum format); returns {file: sha256}.

    Raises DatasetChecksumError naming the file when a digest differs or is not listed."""
    sums_path = folder / "SHA256SUMS"
    if not sums_path.exists():
        raise DatasetChecksumError(f"{sums_path} is missing: cannot verify {', '.join(files)}. {how_to_fix}")
    expected = {}
    for line in sums_path.read_text().splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) == 2:
            expected[parts[1].lstrip("*").strip()] = parts[0].lower()
    out = {}
    for f in files:
        if f not in expected:
            raise DatasetChecksumError(f"{sums_path} lists no checksum for {f}. {how_to_fix}")
        got = sha256_file(folder / f)
        if got != expected[f]:
            raise DatasetChecksumError(
                f"{folder / f}: sha256 is {got}, expected {expected[f]} (from {sums_path}). The file is "
                f"corrupt or not the expected release; replace it. {how_to_fix}")
        out[f] = got
    return out


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_files(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


_LOADERS: dict[str, Callable[..., Dataset]] = {}


def register_dataset(name: str):
    def deco(fn: Callable[..., Dataset]):
        _LOADERS[name] = fn
        return fn
    return deco


def available() -> list[str]:
    _import_loaders()
    return sorted(_LOADERS)


def load(name: str, split: str = "train", **kwargs) -> Dataset:
    """load('mnist', 'test') -> Dataset; a path loads the user's .npz file or image folder (data/user.py).
    Raises DatasetNotFoundError saying where it looked."""
    from . import user
    _import_loaders()
    if name in _LOADERS:
        return _LOADERS[name](split=split, **kwargs)
    if user.registered(name):
        return user.load_registered(name, split)
    if user.is_path_name(name):
        return user.load_path(name, split)
    from ..suggest import unknown_name
    raise unknown_name("data set", name, _LOADERS)


def check_name(name: str) -> None:
    """Raise the one-line error of load() for a name that is neither built in nor a path, without loading."""
    from . import user
    _import_loaders()
    if name not in _LOADERS and not user.registered(name) and not user.is_path_name(name):
        from ..suggest import unknown_name
        raise unknown_name("data set", name, _LOADERS)
    if user.is_path_name(name) and not os.path.exists(name):
        raise FileNotFoundError(f"data set {name!r}: no such file or folder; give an .npz file or an image folder")


def _import_loaders() -> None:
    # Loaders register themselves on import; optional ones may be absent in a trimmed install.
    import importlib
    for mod in ("mnist", "har", "speech_commands", "kws_mlperf", "cifar10"):
        try:
            importlib.import_module(f"{__name__}.{mod}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{mod}":
                raise
