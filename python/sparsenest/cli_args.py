"""Command-line argument checking shared by every `sparsenest` sub-command, and the one place that turns
an exception into the one-line error a user sees.

Bad input gives `PROG: error: what (where); what to do` on stderr and exit status 2, before any work
starts when the argument alone shows it is wrong (argparse types below), else as soon as the input is
read. A failure that is not a known kind of bad input still prints one line (exit 1) and says how to
get the traceback: SPARSENEST_DEBUG=1 re-raises every error with its full traceback.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import stat
import sys
from pathlib import Path
from typing import Callable

from .suggest import did_you_mean, unknown_name  # noqa: F401 -- the CLI's names for them

DEBUG_ENV = "SPARSENEST_DEBUG"
MAX_MESSAGE = 2000
MAX_LEVELS = 32          # a level is a uint8 in the C runtime; more than a few dozen is never useful
MAX_EPOCHS = 100_000
MAX_BATCH = 1 << 20
MAX_JSON_FILE = 16 << 20
# Optional dependencies (pyproject.toml extras): a missing one is named with the extra that installs it.
EXTRAS = {"matplotlib": "report", "jsonschema": "report", "markdown": "report", "transformers": "glue",
          "ray": "sweep", "optuna": "sweep", "pytest": "dev", "hypothesis": "dev"}
# Exceptions that mean "the input is wrong" (ours derive from ValueError/RuntimeError/OSError).
USER_ERRORS = (ValueError, KeyError, OSError, RuntimeError, MemoryError, json.JSONDecodeError)


# Older option spellings that still work but are not shown in --help (one name per option everywhere).
HIDDEN_ALIASES = {"--out", "--limit"}


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written, and every option's default in its help (unless it is None/False or the help
    already says it)."""

    def _format_action_invocation(self, action):
        if len(action.option_strings) > 1 and HIDDEN_ALIASES & set(action.option_strings):
            action = argparse.Action([o for o in action.option_strings if o not in HIDDEN_ALIASES], action.dest,
                                     nargs=action.nargs, metavar=action.metavar)
        return super()._format_action_invocation(action)

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if ("%(default)" in text or "default" in text.lower() or default in (None, False, argparse.SUPPRESS)
                or isinstance(action, (argparse._HelpAction, argparse._VersionAction))
                or not action.option_strings):
            return text
        shown = ",".join(map(str, default)) if isinstance(default, (list, tuple)) else "%(default)s"
        return f"{text} (default: {shown})"


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage block): `PROG: error: MESSAGE (see PROG --help)`, defaults in
    --help, and a "did you mean" for a mistyped choice."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        m = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if m:
            choices = re.findall(r"'([^']*)'", m.group(2)) or [c.strip() for c in m.group(2).split(",")]
            message += did_you_mean(m.group(1), choices)
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_output(p, *, default=None, required: bool = False, help: str = "output path", **kw) -> None:
    """`-o/--output` (dest `out`) for every command, with the older spelling `--out` kept as a hidden alias."""
    kw.setdefault("metavar", "PATH")
    p.add_argument("-o", "--output", "--out", dest="out", default=default, required=required, help=help, **kw)


def one_line(err: BaseException) -> str:
    text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    text = " ".join(text.split()) or type(err).__name__
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


def run_guarded(prog: str, fn: Callable[[], int]) -> int:
    """fn() with every exception turned into one line on stderr (2: bad input, 1: anything else);
    SPARSENEST_DEBUG=1 lets the traceback through. SystemExit (argparse, --help) passes unchanged."""
    try:
        return fn()
    except SystemExit:
        raise
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 -- the point: no traceback reaches the user
        if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
            raise
        top = (getattr(err, "name", None) or "").split(".")[0]
        if isinstance(err, ModuleNotFoundError) and top in EXTRAS:
            print(f"{prog}: error: this needs {top}, which is not installed: pip install "
                  f"'sparsenest[{EXTRAS[top]}]'", file=sys.stderr)
            return 2
        if isinstance(err, USER_ERRORS):
            print(f"{prog}: error: {one_line(err)}", file=sys.stderr)
            return 2
        print(f"{prog}: error: unexpected {type(err).__name__}: {one_line(err)} (this is a bug; run with "
              f"{DEBUG_ENV}=1 for the traceback and report it)", file=sys.stderr)
        return 1


# ------------------------------------------------------------------------------- argparse types

def _number(text: str, kind: type, name: str):
    try:
        v = kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{name} must be {'an integer' if kind is int else 'a number'}, "
                                         f"not {text!r}") from None
    if kind is float and not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"{name} must be finite, not {text!r}")
    return v


def int_range(lo: int, hi: int | None = None, name: str = "value") -> Callable[[str], int]:
    def parse(text: str) -> int:
        v = _number(text, int, name)
        if v < lo or (hi is not None and v > hi):
            raise argparse.ArgumentTypeError(f"{name} must be {'>= %d' % lo if hi is None else f'in {lo}..{hi}'}"
                                             f", not {v}")
        return v
    parse.__name__ = name  # argparse names the type in its messages
    return parse


def float_range(lo: float, hi: float | None = None, *, lo_open: bool = False, hi_open: bool = False,
                name: str = "value") -> Callable[[str], float]:
    def parse(text: str) -> float:
        v = _number(text, float, name)
        low_ok = v > lo if lo_open else v >= lo
        high_ok = hi is None or (v < hi if hi_open else v <= hi)
        if not (low_ok and high_ok):
            rng = (f"{'(' if lo_open else '['}{lo:g}, " + (f"{hi:g}{')' if hi_open else ']'}" if hi is not None
                                                            else "inf)"))
            raise argparse.ArgumentTypeError(f"{name} must be in {rng}, not {v:g}")
        return v
    parse.__name__ = name
    return parse


sparsity = float_range(0.0, 1.0, hi_open=True, name="sparsity")
positive_float = float_range(0.0, lo_open=True, name="positive number")
nonneg_float = float_range(0.0, name="non-negative number")
count = int_range(1, name="count")
epochs = int_range(0, MAX_EPOCHS, name="epochs")
batch_size = int_range(1, MAX_BATCH, name="batch size")
seed = int_range(0, 2 ** 32 - 1, name="seed")


def sparsity_list(text: str) -> list[float]:
    """`0.9,0.75,0.5` (any order) -> distinct sparsities in [0, 1), sparsest first."""
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(not p for p in parts):
        raise argparse.ArgumentTypeError(f"levels are comma-separated sparsities like 0.9,0.75,0.5, not {text!r}")
    vals = [sparsity(p) for p in parts]
    if len(set(vals)) != len(vals):
        raise argparse.ArgumentTypeError(f"each level needs its own sparsity, {text!r} repeats one")
    if len(vals) > MAX_LEVELS:
        raise argparse.ArgumentTypeError(f"at most {MAX_LEVELS} levels, got {len(vals)}")
    return sorted(vals, reverse=True)


def json_object(text: str) -> dict:
    try:
        v = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise argparse.ArgumentTypeError(f"not valid JSON ({getattr(e, 'msg', 'nested too deeply')}): "
                                         f"{text[:80]!r}") from None
    if not isinstance(v, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object like '{{\"n\": 8}}', not {text[:80]!r}")
    return v


# ---------------------------------------------------------------------------------------- paths

def check_input_file(path: Path, what: str) -> None:
    """An existing regular file, checked with stat before anything opens it (a FIFO would block, a
    device never ends). Raises ValueError (one line)."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise ValueError(f"{what} {str(path)!r}: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file (FIFO, device or socket)"
        raise ValueError(f"{what} {str(path)!r} is {kind}; give a regular file")


def check_output(path: str | os.PathLike, *, kind: str, what: str = "output") -> Path:
    """An output path we can create: if it exists it has the right kind (file or directory), and the
    nearest existing parent is a directory we may write into. Raises ValueError (one line)."""
    p = Path(path)
    if p.exists() or p.is_symlink():
        is_dir = p.is_dir()
        if kind == "dir" and not is_dir:
            raise ValueError(f"{what} {str(p)!r} exists and is not a directory; choose a directory path")
        if kind == "file" and (is_dir or not (p.is_file())):
            raise ValueError(f"{what} {str(p)!r} exists and is not a regular file; choose a file path")
        if not os.access(p, os.W_OK | (os.X_OK if is_dir else 0)):
            raise ValueError(f"{what} {str(p)!r} is not writable; choose another path or fix its permissions")
        return p
    parent = p.absolute().parent
    while not parent.exists():
        if parent.is_symlink():  # a dangling link: mkdir would fail or write elsewhere
            raise ValueError(f"{what} {str(p)!r}: {str(parent)!r} is a broken symbolic link")
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"{what} {str(p)!r}: {str(parent)!r} is a file, not a directory; choose another path")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{what} {str(p)!r}: cannot create it, {str(parent)!r} is not writable; choose "
                         "another path")
    return p


def read_json_file(path: str | os.PathLike, what: str):
    """A small JSON file, read defensively (regular file, size cap); ValueError on anything wrong."""
    p = Path(path)
    check_input_file(p, what)
    if p.stat().st_size > MAX_JSON_FILE:
        raise ValueError(f"{what} {str(p)!r} is larger than {MAX_JSON_FILE} bytes; not a file sparsenest wrote")
    try:
        return json.loads(p.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ValueError(f"{what} {str(p)!r} is not valid JSON ({type(e).__name__}); regenerate it") from None


def _argparse_type(check: Callable[[str], object], name: str) -> Callable[[str], str]:
    """A path check (raising ValueError) as an argparse type, so it runs before any work starts."""
    def parse(text: str) -> str:
        try:
            check(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
        return text
    parse.__name__ = name
    return parse


input_file = _argparse_type(lambda t: check_input_file(Path(t), "input file"), "input file")
output_dir = _argparse_type(lambda t: check_output(t, kind="dir"), "output directory")
output_file = _argparse_type(lambda t: check_output(t, kind="file"), "output file")
