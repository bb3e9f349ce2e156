"""Where things are: the one place that finds the repository root, the C runtime (runtime_c/), the
board support (boards/<board>/) and the compiler's templates.

In a source checkout (also an editable install) runtime_c/ and boards/ are the repository's folders
beside python/. A non-editable install (`pip install .`) carries them as package data inside the
package (pyproject maps them to sparsenest/runtime_c and sparsenest/boards), with the same relative
layout, so the host Makefile's `../../runtime_c` still resolves.
"""
from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def _checkout_root() -> Path | None:
    root = PACKAGE_DIR.parents[1]          # <root>/python/sparsenest
    return root if (root / "runtime_c").is_dir() and (root / "boards").is_dir() else None


#: The repository checkout this package runs from; None in an installed copy.
REPO_ROOT: Path | None = _checkout_root()
#: Base for relative paths a user gave or a build recorded (bundle paths, default build/ outputs):
#: the checkout, or the working directory of an installed copy.
PROJECT_ROOT: Path = REPO_ROOT if REPO_ROOT is not None else Path.cwd()

_C_ROOT = REPO_ROOT if REPO_ROOT is not None else PACKAGE_DIR
RUNTIME_DIR = _C_ROOT / "runtime_c"
BOARDS_DIR = _C_ROOT / "boards"
TEMPLATES_DIR = PACKAGE_DIR / "compiler" / "templates"


def board_dir(board: str) -> Path:
    """boards/<board>/ (host, msp430fr5994, ...)."""
    return BOARDS_DIR / board
