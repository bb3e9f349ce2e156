"""Search space of `sparsenest sweep`: what a trial may vary, read from a TOML/JSON file or flags, checked
before anything starts, and turned into Ray Tune's form.

File (TOML; JSON with the same structure)::

    [space]                               # every key optional: a missing one takes the task's recipe
    levels = [[0.9, 0.75, 0.5], [0.95, 0.8, 0.6]]     # a choice of level sets (sparsest first) ...
    # ... or sparsities drawn per trial, spread evenly between the sparsest and the densest level:
    # sparsest = {min = 0.8, max = 0.97}   densest = {min = 0.3, max = 0.7}   n_levels = 3
    method = ["irregular", "row"]         # a list is a choice
    mode = "joint"                        # a scalar is fixed
    epochs_dense = {min = 1, max = 4}     # ints: uniform integer in [min, max]
    epochs_retrain = [1, 2, 3]
    batch_size = [32, 128]
    lr = {min = 0.01, max = 0.1, log = true}
    lr_retrain = {min = 0.005, max = 0.05, log = true}
    format = ["auto", "csr16"]            # compiler format objective: auto = smallest bytes per layer
    # or both as one choice of pairs (then without method/format):
    # method_format = ["irregular/csr16", "row/auto"]
    scope = "global"

    [sweep]                               # optional settings; command-line flags override them
    task = "lenet5"
    trials = 16

Every problem is a `SpaceError` naming the file, the key and what to write instead.
"""
from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

METHODS = ("irregular", "row", "column", "block", "pattern")
INT_KEYS = ("epochs_dense", "epochs_retrain", "batch_size", "n_levels")
FLOAT_KEYS = ("lr", "lr_retrain", "sparsest", "densest")
CHOICE_KEYS = ("method", "mode", "format", "scope", "method_format")
KEYS = ("levels",) + INT_KEYS + FLOAT_KEYS + CHOICE_KEYS
LIMITS = {"epochs_dense": (0, 1000), "epochs_retrain": (0, 1000), "batch_size": (1, 65536), "n_levels": (1, 8),
          "lr": (1e-6, 10.0),
          "lr_retrain": (1e-6, 10.0), "sparsest": (0.0, 0.999), "densest": (0.0, 0.999)}


class SpaceError(ValueError):
    """A search space that cannot be searched (the message says where and what to write instead)."""


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    log: bool = False
    integer: bool = False

    def describe(self) -> str:
        return f"{self.low:g}..{self.high:g}" + (" (log)" if self.log else "")


# A parsed dimension: a constant, a list of choices, or a Range.
Dim = Any


def _levels_key(levels) -> str:
    """A level set as the string Ray/Optuna choose between (Optuna's categories must be scalars)."""
    return ",".join(f"{float(s):g}" for s in levels)


def parse_levels(text: str) -> tuple[float, ...]:
    return tuple(float(s) for s in text.split(","))


def _check_levels(value, where: str) -> str:
    if not isinstance(value, (list, tuple)) or not value or not all(
            isinstance(s, (int, float)) and not isinstance(s, bool) for s in value):
        raise SpaceError(f"{where}: a level set is a list of sparsities like [0.9, 0.75, 0.5], not {value!r}")
    if not all(0 <= s < 1 for s in value):
        raise SpaceError(f"{where}: sparsities must be in [0, 1), got {list(value)}")
    if any(a <= b for a, b in zip(value, value[1:])):
        raise SpaceError(f"{where}: a level set lists strictly decreasing sparsities (sparsest first), "
                         f"got {list(value)}")
    return _levels_key(value)


def choices(key: str) -> tuple[str, ...]:
    """The names a choice key takes (imported here, not at module load: nested pulls in torch)."""
    if key == "mode":
        from ..train.nested import MODES
        return MODES
    if key == "format":
        from ..compiler.formats import FORMATS
        return ("auto",) + FORMATS
    if key == "method_format":
        return tuple(f"{m}/{f}" for m in METHODS for f in choices("format"))
    return {"method": METHODS, "scope": ("global", "layer")}[key]


def _scalar(key: str, v, where: str):
    if key in CHOICE_KEYS:
        if v not in choices(key):
            raise SpaceError(f"{where}: {key} {v!r} is not one of {', '.join(choices(key))}")
        return v
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise SpaceError(f"{where}: {key} takes numbers, not {v!r}")
    if key in INT_KEYS and int(v) != v:
        raise SpaceError(f"{where}: {key} takes whole numbers, not {v!r}")
    lo, hi = LIMITS[key]
    if not lo <= v <= hi:
        raise SpaceError(f"{where}: {key} {v!r} is outside [{lo:g}, {hi:g}]")
    return int(v) if key in INT_KEYS else float(v)


def _dim(key: str, v, where: str) -> Dim:
    w = f"{where}: {key}"
    if key == "levels":
        if isinstance(v, (list, tuple)) and v and all(isinstance(x, (list, tuple)) for x in v):
            return [_check_levels(x, w) for x in v]
        return _check_levels(v, w)
    if isinstance(v, dict):
        if key in CHOICE_KEYS:
            raise SpaceError(f"{w} is a choice: give a name or a list of names, not a range")
        extra = set(v) - {"min", "max", "log"}
        if extra or "min" not in v or "max" not in v:
            raise SpaceError(f"{w}: a range is {{min = A, max = B[, log = true]}}, got {v!r}")
        lo, hi = _scalar(key, v["min"], where), _scalar(key, v["max"], where)
        if lo >= hi:
            raise SpaceError(f"{w}: range min {lo!r} must be below max {hi!r}")
        log = bool(v.get("log", False))
        if log and lo <= 0:
            raise SpaceError(f"{w}: a log range needs min > 0")
        return Range(lo, hi, log, key in INT_KEYS)
    if isinstance(v, (list, tuple)):
        if not v:
            raise SpaceError(f"{w}: an empty list leaves nothing to choose")
        return [_scalar(key, x, where) for x in v]
    return _scalar(key, v, where)


def _span(d: Dim) -> tuple[float, float]:
    if isinstance(d, Range):
        return d.low, d.high
    vals = d if isinstance(d, list) else [d]
    return min(vals), max(vals)


def parse_space(raw: dict, where: str = "search space") -> dict[str, Dim]:
    """Check a raw space (the [space] table) and return {key: constant | [choices] | Range}."""
    if not isinstance(raw, dict):
        raise SpaceError(f"{where}: the search space is a table of keys ({', '.join(KEYS)})")
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise SpaceError(f"{where}: unknown key {unknown[0]!r}; known keys: {', '.join(KEYS)}")
    space = {k: _dim(k, v, where) for k, v in raw.items()}
    if "method_format" in space and ("method" in space or "format" in space):
        raise SpaceError(f"{where}: method_format chooses method and format together; give it or method/format, "
                         "not both")
    drawn = [k for k in ("sparsest", "densest", "n_levels") if k in space]
    if "levels" in space and drawn:
        raise SpaceError(f"{where}: give either levels or sparsest/densest/n_levels, not both")
    if drawn:
        if "sparsest" not in space or "densest" not in space:
            raise SpaceError(f"{where}: sparsest and densest go together (levels spread evenly between them)")
        if _span(space["densest"])[1] >= _span(space["sparsest"])[0]:
            raise SpaceError(f"{where}: every densest value must be below every sparsest value "
                             f"(densest up to {_span(space['densest'])[1]:g}, sparsest from "
                             f"{_span(space['sparsest'])[0]:g})")
    return space


def load_space_file(path: str | Path) -> tuple[dict[str, Dim], dict]:
    """(space, settings) from a TOML or JSON file: its [space] table (or, without one, the whole file
    but [sweep]) and its [sweep] table of settings."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise SpaceError(f"cannot read search space {path}: {e.strerror or e}") from None
    try:
        raw = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as e:
        raise SpaceError(f"{path}: not valid {'JSON' if path.suffix.lower() == '.json' else 'TOML'}: {e}") from None
    if not isinstance(raw, dict):
        raise SpaceError(f"{path}: the file must hold a table with [space] (and optionally [sweep])")
    settings = raw.get("sweep", {})
    if not isinstance(settings, dict):
        raise SpaceError(f"{path}: [sweep] must be a table of settings")
    body = raw["space"] if "space" in raw else {k: v for k, v in raw.items() if k != "sweep"}
    return parse_space(body, str(path)), settings


def with_defaults(space: dict[str, Dim], task) -> dict[str, Dim]:
    """The space with the task's recipe for every key it leaves out (so a trial's config is complete)."""
    cfg = task.config()
    out = {"method": task.method, "mode": task.mode, "format": task.fmt, "scope": cfg.scope,
           "epochs_dense": cfg.epochs_dense, "epochs_retrain": cfg.epochs_retrain, "batch_size": cfg.batch_size,
           "lr": cfg.lr, "lr_retrain": cfg.lr_retrain}
    if "method_format" in space:
        del out["method"], out["format"]
    if not any(k in space for k in ("levels", "sparsest", "densest")):
        out["levels"] = _levels_key(task.levels("sparse"))
    out.update(space)
    if "sparsest" in out:
        out.setdefault("n_levels", len(task.levels("sparse")))
    return out


def trial_choices(config: dict) -> dict:
    """A trial's config with method_format ("irregular/csr16": one categorical, so a model-based search
    learns the pairs, not the method and the format apart) split into method and format."""
    if "method_format" not in config:
        return dict(config)
    method, fmt = config["method_format"].split("/")
    return {k: v for k, v in config.items() if k != "method_format"} | {"method": method, "format": fmt}


def trial_levels(config: dict) -> tuple[float, ...]:
    """A trial's sparsities, sparsest first: its level set, or n_levels spread from sparsest to densest."""
    if "levels" in config:
        return parse_levels(config["levels"])
    n, hi, lo = int(config["n_levels"]), float(config["sparsest"]), float(config["densest"])
    if n == 1:
        return (round(hi, 4),)
    return tuple(round(hi - i * (hi - lo) / (n - 1), 4) for i in range(n))


def to_tune(space: dict[str, Dim], search: str) -> dict:
    """Ray Tune's param_space: random/tpe draw from distributions, grid enumerates every list."""
    from ray import tune
    out = {}
    for k, d in space.items():
        if isinstance(d, Range):
            if search == "grid":
                raise SpaceError(f"grid search enumerates lists: {k} is a range ({d.describe()}); give a list "
                                 "or use --search tpe/random")
            if d.integer:
                out[k] = tune.randint(int(d.low), int(d.high) + 1)   # upper bound exclusive
            else:
                out[k] = (tune.loguniform if d.log else tune.uniform)(d.low, d.high)
        elif isinstance(d, list):
            out[k] = tune.grid_search(d) if search == "grid" else tune.choice(d)
        else:
            out[k] = d
    return out


def grid_size(space: dict[str, Dim]) -> int:
    return math.prod(len(d) for d in space.values() if isinstance(d, list))


def describe(space: dict[str, Dim]) -> dict:
    """JSON-able description of a space (sweep.json)."""
    def plain(k, d):
        if isinstance(d, Range):
            return {"min": d.low, "max": d.high, "log": d.log}
        if k == "levels":   # back from the strings Optuna chooses between
            return [list(parse_levels(x)) for x in d] if isinstance(d, list) else list(parse_levels(d))
        return d
    return {k: plain(k, d) for k, d in space.items()}


def covering_points(space: dict[str, Dim], n: int, seed: int) -> list[dict]:
    """n start-up points for a model-based search: every choice of every list drawn at least once when n is
    at least its length (each choice once, the remaining points' choices at random, shuffled per list so
    lists of one length do not move in step), ranges drawn at random (log-uniform for log ranges),
    constants left out (the searcher does not vary them). Pure random start-up points can miss a choice
    altogether, and TPE then seldom tries it again."""
    import random
    rng = random.Random(seed)
    columns = {}
    for k, d in space.items():
        if isinstance(d, list):
            col = rng.sample(d, min(n, len(d))) + [rng.choice(d) for _ in range(n - len(d))]
            rng.shuffle(col)
            columns[k] = col
    points = []
    for i in range(n):
        p = {}
        for k, d in space.items():
            if isinstance(d, list):
                p[k] = columns[k][i]
            elif isinstance(d, Range):
                if d.integer:
                    p[k] = rng.randint(int(d.low), int(d.high))
                elif d.log:
                    p[k] = min(d.high, max(d.low, math.exp(rng.uniform(math.log(d.low), math.log(d.high)))))
                else:
                    p[k] = rng.uniform(d.low, d.high)
        points.append(p)
    return points
