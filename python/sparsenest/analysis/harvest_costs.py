"""Per-level costs of a compiled model for the harvest model: what one inference and one level switch
draw from the store and how long they take, plus LPM sleep power and boot energy (JSON: COSTS_SCHEMA)."""
from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

COSTS_SCHEMA = """\
costs JSON (format "sparsenest-harvest-costs", version 1):
{
  "format": "sparsenest-harvest-costs", "version": 1,
  "source": "free text: where the numbers come from (e.g. cost model, calibrated or not)",
  "levels": [                                  # sparsest first, levels numbered 1..L
    {"level": 1, "energy_uj": 900.0, "time_us": 159000.0, "accuracy": 0.975,
     "sparsity": 0.9, "units": 43,             # sparsity optional, informational; units: see below
     "unit_ends": [0.02, 0.05, ..., 1.0]},     # optional, with units
    ...
  ],
  "switch": {"energy_uj": [[0, e12, e13], [e21, 0, e23], [e31, e32, 0]],   # row = from, column = to
             "time_us":   [[0, t12, t13], [...], [...]]},                 # optional; default all 0
  "sleep_power_uw": 1.5,                       # optional; LPM3 at the supply voltage (default 1.5)
  "boot_uj": 0.306                             # optional; energy to boot after V_on (default 0.306)
}
energy_uj: energy drawn from the store per inference; time_us: its duration; accuracy in [0, 1].
units (optional, all levels or none): the build is intermittent (compile --intermittent) with this many
units of work per inference: a brown-out keeps the committed units and the inference resumes after the
next boot (harvest --no-resume ignores them). unit_ends (optional): the fraction of the inference's
energy spent when each unit commits (nondecreasing, in (0, 1]; measured: analysis.harvest_measure);
without it the units are taken as equal."""


@dataclass
class LevelCost:
    level: int
    energy_uj: float
    time_us: float
    accuracy: float
    sparsity: float | None = None
    units: int | None = None           # units of work of an intermittent build (None: continuous)
    unit_ends: list[float] | None = None   # energy fraction at each unit's commit (None: equal units)


@dataclass
class Costs:
    levels: list[LevelCost]
    switch_energy_uj: list[list[float]]
    switch_time_us: list[list[float]]
    sleep_power_uw: float = 1.5
    boot_uj: float = 0.306
    source: str = ""

    @property
    def n_levels(self) -> int:
        return len(self.levels)

    def level(self, k: int) -> LevelCost:
        return self.levels[k - 1]

    @property
    def units(self) -> list[int] | None:
        """Units of work per level of an intermittent build, or None (continuous)."""
        return [lv.units for lv in self.levels] if self.levels[0].units is not None else None

    def to_dict(self) -> dict:
        return {"format": "sparsenest-harvest-costs", "version": 1, "source": self.source,
                "levels": [{k: v for k, v in vars(l).items() if v is not None} for l in self.levels],
                "switch": {"energy_uj": self.switch_energy_uj, "time_us": self.switch_time_us},
                "sleep_power_uw": self.sleep_power_uw, "boot_uj": self.boot_uj}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        return path


def _matrix(m, L, what, where) -> list[list[float]]:
    if m is None:
        return [[0.0] * L for _ in range(L)]
    m = m.tolist() if isinstance(m, np.ndarray) else m
    if not (isinstance(m, (list, tuple)) and len(m) == L
            and all(isinstance(r, (list, tuple)) and len(r) == L and all(map(_is_real, r)) for r in m)):
        raise ValueError(f"{where}: switch {what} must be a {L}x{L} matrix (row = from level, column = to)")
    out = [[float(v) for v in r] for r in m]
    if any(v < 0 or not math.isfinite(v) for r in out for v in r):
        raise ValueError(f"{where}: switch {what} must be finite and >= 0")
    return out


def make_costs(levels: Sequence[Mapping], switch_energy_uj=None, switch_time_us=None, *,
               sleep_power_uw: float = 1.5, boot_uj: float = 0.306, source: str = "",
               where: str = "costs") -> Costs:
    """Build and validate a Costs from per-level dicts {"energy_uj", "time_us", "accuracy"[, "level",
    "sparsity"]} (sparsest first) and optional LxL switch matrices (µJ, µs; row = from, col = to)."""
    if not levels:
        raise ValueError(f"{where}: at least one level is needed")
    out = []
    for i, l in enumerate(levels, 1):
        if not isinstance(l, Mapping):
            raise ValueError(f"{where}: level {i} must be an object {SCHEMA_HINT}")
        for k in ("energy_uj", "time_us", "accuracy"):
            if k not in l:
                raise ValueError(f"{where}: level {i} has no {k!r} {SCHEMA_HINT}")
            if not _is_real(l[k]):
                raise ValueError(f"{where}: level {i} {k!r} must be a finite number, is {l[k]!r}")
        lv = l.get("level", i)
        if lv != i:
            raise ValueError(f"{where}: levels must be listed 1..L in order (sparsest first); entry {i} "
                             f"says level {lv!r}")
        e, t, a = float(l["energy_uj"]), float(l["time_us"]), float(l["accuracy"])
        if not (e > 0 and t > 0 and math.isfinite(e) and math.isfinite(t)):
            raise ValueError(f"{where}: level {i} needs energy_uj > 0 and time_us > 0")
        if not 0 <= a <= 1:
            raise ValueError(f"{where}: level {i} accuracy must be in [0, 1], got {a}")
        sp = l.get("sparsity")
        if sp is not None and not (_is_real(sp) and 0 <= sp < 1):
            raise ValueError(f"{where}: level {i} sparsity must be in [0, 1), got {sp!r}")
        u = l.get("units")
        if u is not None and not (isinstance(u, int) and not isinstance(u, bool) and 1 <= u <= 0xFFFF):
            raise ValueError(f"{where}: level {i} units must be an integer in 1..65535, got {u!r}")
        ends = l.get("unit_ends")
        if ends is not None:
            if not (u is not None and isinstance(ends, (list, tuple)) and len(ends) == u
                    and all(map(_is_real, ends)) and all(0 < x <= 1 for x in ends)
                    and all(b >= a for a, b in zip(ends, ends[1:]))):
                raise ValueError(f"{where}: level {i} unit_ends must be {u} nondecreasing fractions in (0, 1] "
                                 f"(one per unit; needs 'units')")
            ends = [float(x) for x in ends]
        out.append(LevelCost(i, e, t, a, None if sp is None else float(sp), u, ends))
    if len({lv.units is None for lv in out}) > 1:
        raise ValueError(f"{where}: give 'units' for every level (an intermittent build) or for none")
    for k, v in (("sleep_power_uw", sleep_power_uw), ("boot_uj", boot_uj)):
        if not (_is_real(v) and v >= 0):
            raise ValueError(f"{where}: {k} must be a number >= 0, got {v!r}")
    L = len(out)
    return Costs(out, _matrix(switch_energy_uj, L, "energy_uj", where), _matrix(switch_time_us, L, "time_us", where),
                 float(sleep_power_uw), float(boot_uj), source)


SCHEMA_HINT = "(the schema: sparsenest harvest --help)"


def _is_real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def load_costs(path: str | Path) -> Costs:
    from sparsenest.cli_args import read_json_file
    path = Path(path)
    d = read_json_file(path, "costs file")
    if not isinstance(d, dict) or d.get("format") != "sparsenest-harvest-costs" or d.get("version") != 1:
        raise ValueError(f"{path}: not a sparsenest-harvest-costs version 1 file {SCHEMA_HINT}")
    sw = d.get("switch") or {}
    if not isinstance(sw, dict) or not isinstance(d.get("levels", []), list):
        raise ValueError(f"{path}: 'switch' must be an object and 'levels' a list {SCHEMA_HINT}")
    return make_costs(d.get("levels") or [], sw.get("energy_uj"), sw.get("time_us"),
                      sleep_power_uw=d.get("sleep_power_uw", 1.5), boot_uj=d.get("boot_uj", 0.306),
                      source=str(d.get("source", "")), where=str(path))


def costs_from_predictions(predictions: Sequence[Mapping], accuracies: Sequence[float], *,
                           switch: Mapping | None = None, platform=None, sparsities=None) -> Costs:
    """Costs from sparsenest.analysis.cost.predict_inference results (one per level, sparsest first), the
    per-level accuracies, and optionally switch matrices from cost.switch_matrices. With a platform,
    sleep power and boot energy come from it."""
    if len(predictions) != len(accuracies):
        raise ValueError("one accuracy per level prediction is needed")
    levels = [{"energy_uj": p["total"]["energy_uj"], "time_us": p["total"]["time_us"], "accuracy": a,
               **({"sparsity": sparsities[i]} if sparsities else {})}
              for i, (p, a) in enumerate(zip(predictions, accuracies))]
    unc = any(p.get("uncalibrated") for p in predictions)
    kw = {}
    if platform is not None:
        kw = {"sleep_power_uw": platform.lpm3_power_w * 1e6, "boot_uj": platform.boot_energy_j * 1e6}
    return make_costs(levels, (switch or {}).get("energy_uj"), (switch or {}).get("time_us"),
                      source=("sparsenest.analysis.cost predictions" + (" (UNCALIBRATED cycle model)" if unc else "")),
                      **kw)


def _example_costs() -> Costs:
    """Illustrative LeNet-like 3-level costs (not measured): used by --demo only."""
    return make_costs(
        [{"energy_uj": 900.0, "time_us": 159_000.0, "accuracy": 0.975, "sparsity": 0.9},
         {"energy_uj": 1500.0, "time_us": 265_000.0, "accuracy": 0.985, "sparsity": 0.75},
         {"energy_uj": 2400.0, "time_us": 424_000.0, "accuracy": 0.990, "sparsity": 0.5}],
        [[0, 20, 30], [1, 0, 12], [1, 1, 0]], [[0, 3500, 5300], [200, 0, 2100], [200, 200, 0]],
        source="illustrative LeNet-like numbers (sparsenest.analysis.harvest._example_costs), not measured")
