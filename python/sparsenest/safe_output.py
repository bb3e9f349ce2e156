"""Where sparsenest may write: nothing is lost that the tool did not write, nothing is replaced unasked.

Every writer goes through one of these:
  check_output_file(path, inputs, force)   a single file: refused when it is (or is inside) an input,
                                           or exists and --force was not given, or is not a regular file
  check_output_dir(path, marker, inputs, force)
                                           a folder the tool fills: refused when it is the current folder
                                           or one of its parents, an input or inside one, or holds an input;
                                           an existing non-empty folder only with --force and only when its
                                           marker file says this tool wrote it
  replace_dir(tmp, dest)                   move a finished temporary sibling folder into place, so a failed
                                           run leaves an earlier result untouched
Each refusal is an OutputPathError (a FileExistsError): one line saying what, where and what to do.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Callable, Iterable


class OutputPathError(FileExistsError):
    """An output path the tool refuses to write (would lose or replace something)."""


def _resolved(p) -> Path:
    return Path(os.path.abspath(os.path.expanduser(str(p))))


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def _check_not_input(out: Path, inputs: Iterable, what: str, allow_inside: bool = False) -> None:
    for inp in inputs:
        if inp is None:
            continue
        src = _resolved(inp)
        if out == src or (_inside(out, src) and not allow_inside):
            raise OutputPathError(f"{what} {out} is the input {src} or inside it; choose an output path "
                                  f"outside the input")
        if _inside(src, out):
            raise OutputPathError(f"{what} {out} contains the input {src}; replacing it would delete the "
                                  f"input. Choose another output path")


def check_output_file(path, *, inputs: Iterable = (), force: bool = False, what: str = "output file") -> Path:
    """Check that `path` may be written; returns it as a Path. Creates nothing."""
    path = Path(path)
    out = _resolved(path)
    _check_not_input(out, inputs, what)
    if os.path.lexists(path):
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode):
            raise OutputPathError(f"{what} {path} exists and is not a regular file; choose another path")
        if not force:
            raise OutputPathError(f"{what} {path} exists; pass --force to replace it")
    return path


def read_marker(path: Path, key: str = "format") -> str | None:
    """The `key` of the JSON file `path`, or None when it is missing, not a file or not JSON."""
    try:
        if not path.is_file() or path.is_symlink():
            return None
        with open(path, "rb") as f:
            v = json.loads(f.read(1 << 20)).get(key)  # a marker is small: never read a huge file whole
        return v if isinstance(v, str) else None
    except (OSError, ValueError, AttributeError):
        return None


def is_tool_dir(path: Path, marker: str, fmt: str) -> bool:
    """True when `path` is a real folder (not a link) whose `marker` JSON file has format `fmt`."""
    return path.is_dir() and not path.is_symlink() and read_marker(path / marker) == fmt


def check_output_dir(path, *, marker: str, fmt: str, inputs: Iterable = (), force: bool = False,
                     what: str = "output folder", kind: str = "sparsenest output",
                     allow_inside: bool = False) -> Path:
    """Check that folder `path` may be (re)written; returns it. A missing or empty folder is fine.
    allow_inside: the output may lie inside an input folder (a report inside its build)."""
    path = Path(path)
    out = _resolved(path)
    if _inside(Path.cwd().resolve(), out.resolve() if out.exists() else out):
        raise OutputPathError(f"{what} {path} is the current folder or one of its parents; name a new "
                              f"folder, e.g. build/<name>")
    _check_not_input(out, inputs, what, allow_inside)
    if not os.path.lexists(path):
        return path
    if path.is_symlink() or not path.is_dir():
        raise OutputPathError(f"{what} {path} exists and is not a folder; choose another path")
    if not any(path.iterdir()):
        return path
    if not is_tool_dir(path, marker, fmt):
        raise OutputPathError(f"{what} {path} is not empty and is not a {kind} ({marker} with format "
                              f"{fmt!r} missing); refusing to touch it. Choose a new or empty folder")
    if not force:
        raise OutputPathError(f"{what} {path} holds an earlier {kind}; pass --force to replace it")
    return path


def temp_sibling(dest: Path) -> Path:
    """A new empty folder beside `dest` (same file system, so replace_dir can rename it)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))


def replace_dir(tmp: Path, dest: Path, *, owned: Callable[[Path], bool]) -> None:
    """Put the finished folder `tmp` at `dest`. An existing `dest` must satisfy `owned` (the caller's
    marker check, made again here right before anything is removed) or be empty."""
    if os.path.lexists(dest):
        if dest.is_dir() and not dest.is_symlink() and not any(dest.iterdir()):
            dest.rmdir()
        elif owned(dest):
            old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
            os.replace(dest, old / dest.name)
            os.replace(tmp, dest)
            shutil.rmtree(old)
            return
        else:
            raise OutputPathError(f"{dest} appeared while the output was being written and is not ours to "
                                  f"replace; choose another output path")
    os.replace(tmp, dest)
