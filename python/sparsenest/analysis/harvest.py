"""Energy-harvesting simulation: a battery-free device that runs nested-sparse inferences from a capacitor.

Model
-----
* **Harvested power** ``P_h(t)``: a CSV trace ``time_s,power_w`` with linear interpolation between rows
  (a repeated time gives a step). It is the power delivered *into the store* (harvester efficiency
  folded in). Shipped traces: `traces/` (see its README; ``sparsenest harvest --make-traces``
  regenerates them bit for bit).
* **Store**: a capacitor C with stored energy E = ½CV², clamped at V_max (harvested power beyond that is
  *spilled*). The device turns on when V reaches V_on (after paying the boot energy) and browns out when
  V falls to V_off.
* **Load**: per-level inference costs (energy drawn from the store and duration; drawn at a constant
  rate while the inference runs, so a converter between store and MCU is assumed and its efficiency is
  folded into the costs), a from->to switch-cost matrix, LPM sleep power and boot energy
  (`Costs`; JSON schema in `COSTS_SCHEMA`).
* **Policy**: at every decision point (power-up, end of an inference, end of a sleep) the policy returns a
  level to run, or sleep (LPM) until the voltage reaches a wake threshold (a comparator interrupt).
  `FixedPolicy(k)` always runs level k (optionally with a guard that sleeps instead of starting an
  inference the store cannot finish); `EnergyAwarePolicy` picks the level from voltage thresholds with
  hysteresis and never starts an inference it cannot finish.
* **Brown-out** mid-inference: that inference's energy so far counts as *lost*, the device turns off.
  A switch interrupted by a brown-out is lost too and the level stays the old one (the runtime's commit
  is atomic); the active level persists in FRAM across power loss.

The simulation is event-driven and exact for piecewise-linear traces: within a trace segment the net
power is linear in time, so E(t) is quadratic and brown-out / turn-on / saturation instants are roots
of a quadratic. A 24 h trace with tens of thousands of inferences runs in about a second.

Energy bookkeeping (all in joules, checked by the tests):
``harvested = inference + switch + sleep + boot + lost + unfinished + spilled + (E_end - E_start)``.
"""
from __future__ import annotations

import json
import math
import numbers
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

__all__ = [
    "Trace", "load_trace", "Capacitor", "LevelCost", "Costs", "make_costs", "load_costs",
    "costs_from_predictions", "COSTS_SCHEMA", "FixedPolicy", "EnergyAwarePolicy", "parse_policy",
    "HarvestResult", "simulate", "compare_policies", "format_comparison", "plot", "make_traces",
    "TRACE_DIR", "shipped_trace", "main",
]

TRACE_DIR = Path(__file__).parent / "traces"
_EPS_T = 1e-12

# ================================================================================================ trace


@dataclass
class Trace:
    """Harvested power, piecewise linear: power_w[i] at time_s[i] (nondecreasing; repeats = steps)."""
    time_s: np.ndarray
    power_w: np.ndarray
    name: str = "trace"

    def __post_init__(self):
        self.time_s = np.asarray(self.time_s, np.float64)
        self.power_w = np.asarray(self.power_w, np.float64)
        if self.time_s.ndim != 1 or self.time_s.shape != self.power_w.shape or len(self.time_s) < 2:
            raise ValueError(f"{self.name}: a trace needs at least 2 rows of time_s, power_w")
        if not (np.all(np.isfinite(self.time_s)) and np.all(np.isfinite(self.power_w))):
            raise ValueError(f"{self.name}: non-finite value in the trace")
        if np.any(np.diff(self.time_s) < 0):
            i = int(np.argmax(np.diff(self.time_s) < 0))
            raise ValueError(f"{self.name}: time_s decreases at row {i + 2} ({self.time_s[i]} -> "
                             f"{self.time_s[i + 1]})")
        if np.any(self.power_w < 0):
            raise ValueError(f"{self.name}: negative power_w at row {int(np.argmax(self.power_w < 0)) + 1}")

    @property
    def start(self) -> float:
        return float(self.time_s[0])

    @property
    def end(self) -> float:
        return float(self.time_s[-1])

    def power(self, t) -> np.ndarray:
        """Power at time(s) t (right-continuous at steps)."""
        t = np.asarray(t, np.float64)
        i = np.clip(np.searchsorted(self.time_s, t, side="right") - 1, 0, len(self.time_s) - 2)
        t0, t1 = self.time_s[i], self.time_s[i + 1]
        p0, p1 = self.power_w[i], self.power_w[i + 1]
        span = np.where(t1 > t0, t1 - t0, 1.0)
        return np.where(t1 > t0, p0 + (p1 - p0) * (t - t0) / span, p1)

    def energy(self, t0: float | None = None, t1: float | None = None) -> float:
        """Exact integral of the power between t0 and t1 (default: the whole trace), in joules."""
        t0 = self.start if t0 is None else max(t0, self.start)
        t1 = self.end if t1 is None else min(t1, self.end)
        if t1 <= t0:
            return 0.0
        T, P = self.time_s, self.power_w
        a, b = np.maximum(T[:-1], t0), np.minimum(T[1:], t1)
        ok = (b > a) & (T[1:] > T[:-1])
        span = np.where(ok, T[1:] - T[:-1], 1.0)
        slope = np.where(ok, (P[1:] - P[:-1]) / span, 0.0)
        pa, pb = P[:-1] + slope * (a - T[:-1]), P[:-1] + slope * (b - T[:-1])
        return float(np.sum(np.where(ok, 0.5 * (pa + pb) * (b - a), 0.0)))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        with open(path, "w", newline="\n") as f:
            f.write("time_s,power_w\n")
            for t, p in zip(self.time_s, self.power_w):
                f.write(f"{_fmt(t)},{_fmt(p)}\n")
        return path


def _fmt(x: float) -> str:
    """Short, exact-enough, platform-independent number formatting for trace files."""
    x = float(x)
    if x == 0:
        return "0"
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    return f"{x:.6e}"


def load_trace(path: str | Path) -> Trace:
    """Read a ``time_s,power_w`` CSV (header required). A bare name picks a shipped trace."""
    p = Path(path)
    if not p.exists() and not p.suffix:
        p = TRACE_DIR / f"{path}.csv"
    from sparsenest.cli_args import check_input_file
    check_input_file(p, "trace")  # a FIFO or device would block or never end
    try:
        lines = p.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read trace {p}: {e}") from None
    if not lines or [h.strip() for h in lines[0].split(",")] != ["time_s", "power_w"]:
        raise ValueError(f"{p}: the first line must be the header 'time_s,power_w'")
    ts, ps = [], []
    for n, line in enumerate(lines[1:], 2):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split(",")
        if len(parts) != 2:
            raise ValueError(f"{p}:{n}: expected 'time_s,power_w', got {line!r}")
        try:
            ts.append(float(parts[0]))
            ps.append(float(parts[1]))
        except ValueError:
            raise ValueError(f"{p}:{n}: not numbers: {line!r}") from None
    return Trace(np.array(ts), np.array(ps), p.stem)


def shipped_trace(name: str) -> Trace:
    return load_trace(TRACE_DIR / f"{name}.csv")


# ============================================================================================== store


@dataclass
class Capacitor:
    """Storage capacitor: capacitance (F), turn-on V_on, brown-out V_off, clamp V_max, initial voltage."""
    capacitance_f: float
    v_on: float = 3.3
    v_off: float = 1.9
    v_max: float = 3.6
    v_init: float = 0.0

    def __post_init__(self):
        if self.capacitance_f <= 0:
            raise ValueError("capacitance must be > 0")
        if not (0 < self.v_off < self.v_on <= self.v_max):
            raise ValueError(f"need 0 < v_off < v_on <= v_max, got v_off={self.v_off}, v_on={self.v_on}, "
                             f"v_max={self.v_max}")
        if not (0 <= self.v_init <= self.v_max):
            raise ValueError(f"v_init must be in [0, v_max], got {self.v_init}")

    def energy(self, v: float) -> float:
        return 0.5 * self.capacitance_f * v * v

    def voltage(self, e: float) -> float:
        return math.sqrt(max(e, 0.0) * 2.0 / self.capacitance_f)

    @property
    def usable_j(self) -> float:
        """Energy between V_on and V_off (what one power cycle can spend)."""
        return self.energy(self.v_on) - self.energy(self.v_off)


# ============================================================================================== costs

COSTS_SCHEMA = """\
costs JSON (format "sparsenest-harvest-costs", version 1):
{
  "format": "sparsenest-harvest-costs", "version": 1,
  "source": "free text: where the numbers come from (e.g. cost model, calibrated or not)",
  "levels": [                                  # sparsest first, levels numbered 1..L
    {"level": 1, "energy_uj": 900.0, "time_us": 159000.0, "accuracy": 0.975,
     "sparsity": 0.9},                         # sparsity optional, informational
    ...
  ],
  "switch": {"energy_uj": [[0, e12, e13], [e21, 0, e23], [e31, e32, 0]],   # row = from, column = to
             "time_us":   [[0, t12, t13], [...], [...]]},                 # optional; default all 0
  "sleep_power_uw": 1.5,                       # optional; LPM3 at the supply voltage (default 1.5)
  "boot_uj": 0.306                             # optional; energy to boot after V_on (default 0.306)
}
energy_uj: energy drawn from the store per inference; time_us: its duration; accuracy in [0, 1]."""


@dataclass
class LevelCost:
    level: int
    energy_uj: float
    time_us: float
    accuracy: float
    sparsity: float | None = None


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
        out.append(LevelCost(i, e, t, a, None if sp is None else float(sp)))
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


# ============================================================================================ policies

SLEEP = 0


class FixedPolicy:
    """Always level k. With guard=True it sleeps instead of starting an inference that the stored energy
    above V_off cannot pay `margin` times over, and wakes `hysteresis_v` above that guard voltage."""

    def __init__(self, level: int, *, guard: bool = False, margin: float = 1.1, hysteresis_v: float = 0.05):
        self.fixed_level = int(level)
        self.guard, self.margin, self.hysteresis_v = guard, margin, hysteresis_v
        self.name = f"fixed:{level}" + ("+guard" if guard else "")

    def prepare(self, costs: Costs, cap: Capacitor) -> None:
        if not 1 <= self.fixed_level <= costs.n_levels:
            raise ValueError(f"{self.name}: level must be in 1..{costs.n_levels}")
        need = self.margin * costs.level(self.fixed_level).energy_uj * 1e-6
        self.guard_v = cap.voltage(cap.energy(cap.v_off) + need)
        self.wake_v = min(self.guard_v + self.hysteresis_v, cap.v_max)

    def decide(self, v: float, level: int) -> int:
        if self.guard and v < self.guard_v:
            return SLEEP
        return self.fixed_level

    def describe(self) -> str:
        return self.name + (f" (sleep below {self.guard_v:.3f} V, wake at {self.wake_v:.3f} V)"
                            if self.guard else "")


class EnergyAwarePolicy:
    """Level from the store voltage: run the densest level k whose threshold th[k] <= V (going *up* to a
    denser level needs V >= th[k] + hysteresis); below th[1] sleep in LPM until V >= th[1] + hysteresis.
    It never starts an inference (plus the switch into it) that the energy above V_off cannot pay
    `margin` times over: it drops to a sparser level, or sleeps.

    thresholds_v=None (auto): th[1] = the guard voltage of level 1 (energy above V_off = margin x its
    inference + switch), and th[2..L] split the stored energy between th[1] and V_max evenly: level k
    from fraction (k-1)/L upward. Rationale: V near V_max means income exceeds spending (energy would be
    spilled anyway), so dense inferences are free; a low V means energy is scarce, so make it last."""

    def __init__(self, thresholds_v: Sequence[float] | None = None, *, hysteresis_v: float = 0.05,
                 margin: float = 1.1):
        self.user_thresholds = None if thresholds_v is None else [float(v) for v in thresholds_v]
        self.hysteresis_v, self.margin = hysteresis_v, margin
        self.name = "energy:" + ("auto" if thresholds_v is None else ",".join(f"{v:g}" for v in thresholds_v))

    def prepare(self, costs: Costs, cap: Capacitor) -> None:
        L = costs.n_levels
        e_off = cap.energy(cap.v_off)
        # energy needed to start level k from any level: the inference plus the dearest switch into it
        self.need_j = [self.margin * (costs.level(k).energy_uj
                                      + max(costs.switch_energy_uj[i][k - 1] for i in range(L))) * 1e-6
                       for k in range(1, L + 1)]
        if self.user_thresholds is not None:
            if len(self.user_thresholds) != L:
                raise ValueError(f"{self.name}: {L} thresholds needed (one per level, sparsest first)")
            if any(b < a for a, b in zip(self.user_thresholds, self.user_thresholds[1:])):
                raise ValueError(f"{self.name}: thresholds must be nondecreasing (sparsest first)")
            th = list(self.user_thresholds)
        else:
            e1 = e_off + self.need_j[0]
            e_top = cap.energy(cap.v_max)
            th = [cap.voltage(e1)] + [cap.voltage(e1 + (e_top - e1) * (k - 1) / L) for k in range(2, L + 1)]
        self.thresholds_v = th
        self.e_off = e_off
        self.cap = cap
        self.wake_v = min(th[0] + self.hysteresis_v, cap.v_max)

    def decide(self, v: float, level: int) -> int:
        th = self.thresholds_v
        k = 0
        for j in range(len(th), 0, -1):
            need_v = th[j - 1] + (self.hysteresis_v if j > level else 0.0)
            if v >= need_v:
                k = j
                break
        avail = self.cap.energy(v) - self.e_off
        while k >= 1 and avail < self.need_j[k - 1]:
            k -= 1
        return k  # 0 = SLEEP

    def describe(self) -> str:
        return (f"{self.name} (thresholds {', '.join(f'{v:.3f}' for v in self.thresholds_v)} V, "
                f"hysteresis {self.hysteresis_v} V, wake at {self.wake_v:.3f} V, margin {self.margin})")


def parse_policy(text: str, *, hysteresis_v: float = 0.05, margin: float = 1.1):
    """"fixed:K", "fixed:K+guard", "energy" / "energy:auto", or "energy:V1,V2,...,VL" (sparsest first)."""
    kind, _, arg = text.partition(":")
    if kind == "fixed":
        guard = arg.endswith("+guard")
        lv = arg[:-len("+guard")] if guard else arg
        if not lv.isdigit():
            raise ValueError(f"policy {text!r}: use fixed:K with K a level number, e.g. fixed:3")
        return FixedPolicy(int(lv), guard=guard, margin=margin, hysteresis_v=hysteresis_v)
    if kind == "energy":
        if arg in ("", "auto"):
            return EnergyAwarePolicy(None, hysteresis_v=hysteresis_v, margin=margin)
        try:
            th = [float(v) for v in arg.split(",")]
        except ValueError:
            raise ValueError(f"policy {text!r}: thresholds must be volts, e.g. energy:2.2,2.6,3.0") from None
        return EnergyAwarePolicy(th, hysteresis_v=hysteresis_v, margin=margin)
    raise ValueError(f"unknown policy {text!r}: use fixed:K, fixed:K+guard, energy, or energy:V1,...,VL")


# ========================================================================================== simulation

OFF, RUN, SWITCH, SLEEPING = 0, 1, 2, 3
_STATE_NAMES = {OFF: "off", RUN: "run", SWITCH: "switch", SLEEPING: "sleep"}


@dataclass
class HarvestResult:
    policy: str
    trace: str
    capacitor: Capacitor
    completed: list[int]                 # per level (index 0 = level 1)
    accuracy: list[float]
    lost_inferences: int
    energy_j: dict[str, float]
    on_time_s: float
    sleep_time_s: float
    off_time_s: float
    duration_s: float
    n_switches: int
    n_brownouts: int
    n_boots: int
    series_t: np.ndarray = field(repr=False)
    series_v: np.ndarray = field(repr=False)
    series_level: np.ndarray = field(repr=False)   # active (persisted) level
    series_state: np.ndarray = field(repr=False)   # OFF / RUN / SWITCH / SLEEPING from that instant on
    policy_detail: str = ""

    @property
    def total(self) -> int:
        return int(sum(self.completed))

    @property
    def expected_accuracy(self) -> float:
        """Sum over levels of accuracy x inferences, divided by all completed inferences."""
        n = self.total
        return float(sum(a * c for a, c in zip(self.accuracy, self.completed)) / n) if n else 0.0

    @property
    def expected_correct(self) -> float:
        return float(sum(a * c for a, c in zip(self.accuracy, self.completed)))

    def balance_error_j(self) -> float:
        """harvested - (everything spent + spilled + stored delta): 0 up to rounding."""
        e = self.energy_j
        return e["harvested"] - (e["inference"] + e["switch"] + e["sleep"] + e["boot"] + e["lost"]
                                 + e["unfinished"] + e["spilled"] + e["stored_end"] - e["stored_start"])

    def to_dict(self) -> dict:
        return {"policy": self.policy, "policy_detail": self.policy_detail, "trace": self.trace,
                "capacitor": vars(self.capacitor), "completed": self.completed, "total": self.total,
                "accuracy": self.accuracy, "expected_accuracy": self.expected_accuracy,
                "expected_correct": self.expected_correct, "lost_inferences": self.lost_inferences,
                "energy_j": self.energy_j, "on_time_s": self.on_time_s, "sleep_time_s": self.sleep_time_s,
                "off_time_s": self.off_time_s, "duration_s": self.duration_s, "n_switches": self.n_switches,
                "n_brownouts": self.n_brownouts, "n_boots": self.n_boots}

    def summary(self) -> str:
        e = self.energy_j
        per = ", ".join(f"L{k + 1} {c}" for k, c in enumerate(self.completed))
        return "\n".join([
            f"policy {self.policy_detail or self.policy} on trace {self.trace} "
            f"({self.duration_s / 3600:.2f} h), C = {self.capacitor.capacitance_f:g} F, V_on "
            f"{self.capacitor.v_on} V, V_off {self.capacitor.v_off} V, V_max {self.capacitor.v_max} V",
            f"  inferences completed {self.total} ({per}); lost to brown-out {self.lost_inferences}",
            f"  expected accuracy {self.expected_accuracy:.4f}, expected correct {self.expected_correct:.1f}",
            f"  energy (mJ): harvested {e['harvested'] * 1e3:.3f}, inference {e['inference'] * 1e3:.3f}, "
            f"switch {e['switch'] * 1e3:.3f}, sleep {e['sleep'] * 1e3:.3f}, boot {e['boot'] * 1e3:.3f}, "
            f"lost {e['lost'] * 1e3:.3f}, spilled {e['spilled'] * 1e3:.3f}, unfinished "
            f"{e['unfinished'] * 1e3:.3f}, stored {e['stored_start'] * 1e3:.3f} -> {e['stored_end'] * 1e3:.3f}",
            f"  on {self.on_time_s:.1f} s (sleeping {self.sleep_time_s:.1f} s), off {self.off_time_s:.1f} s; "
            f"switches {self.n_switches}, brown-outs {self.n_brownouts}, boots {self.n_boots}",
        ])


class _Sim:
    """Exact integration of E' = P_h(t) - P_load over a piecewise-linear trace, with E clamped at E_max."""

    def __init__(self, trace: Trace, cap: Capacitor, t_end: float):
        self.T, self.P = trace.time_s, trace.power_w
        self.cap = cap
        self.e_max = cap.energy(cap.v_max)
        self.t_end = t_end
        self.seg = 0
        self.harvested = 0.0
        self.spilled = 0.0

    def _seg_at(self, t: float) -> int:
        T, i = self.T, self.seg
        n = len(T) - 1
        if i > 0 and T[i] > t:
            i = int(np.searchsorted(T, t, side="right")) - 1
        while i < n - 1 and T[i + 1] <= t:
            i += 1
        self.seg = max(0, min(i, n - 1))
        return self.seg

    def advance(self, t: float, e: float, t_stop: float, p_load: float, e_low: float | None,
                e_high: float | None) -> tuple[float, float, str, float]:
        """Run from (t, e) with constant load until t_stop, E <= e_low ('low'), E >= e_high ('high'), or
        the end of the trace ('end'). Returns (t, e, reason, load energy drawn)."""
        drawn = 0.0
        stop_reason = "time" if t_stop <= self.t_end else "end"   # finishing exactly at the end counts
        t_stop = min(t_stop, self.t_end)
        if e_high is not None and e >= e_high:
            return t, e, "high", 0.0
        if e_low is not None and e <= e_low:
            return t, e, "low", 0.0
        while True:
            if t >= t_stop - _EPS_T:
                return t_stop, e, stop_reason, drawn
            i = self._seg_at(t)
            t0, t1 = self.T[i], self.T[i + 1]
            if t1 <= t0:          # zero-length (step) segment
                self.seg = min(i + 1, len(self.T) - 2)
                if self.seg == i:
                    return self.t_end, e, "end", drawn
                continue
            slope = (self.P[i + 1] - self.P[i]) / (t1 - t0)
            ph = self.P[i] + slope * (t - t0)
            a, b = ph - p_load, slope          # net power a + b*tau
            tau_max = min(t1, t_stop) - t
            if tau_max <= 0:
                self.seg = min(i + 1, len(self.T) - 2)
                if t1 >= self.t_end:
                    return self.t_end, e, "end", drawn
                continue
            # saturated at E_max: stay there while the net power is >= 0
            if e >= self.e_max - 1e-15 and a >= 0:
                tau = tau_max if b >= 0 else min(tau_max, -a / b)
                if e_high is not None and self.e_max >= e_high:
                    return t, self.e_max, "high", drawn
                if tau > 1e-9:      # (shorter: the net power is ~0 here; leave the clamp below)
                    h = ph * tau + 0.5 * slope * tau * tau
                    self.harvested += h
                    self.spilled += h - p_load * tau
                    drawn += p_load * tau
                    e = self.e_max
                    t = t + tau if tau < tau_max else min(t1, t_stop)
                    continue
                # a == 0 and falling: leave the clamp through the ordinary branch below
            targets = []
            if e_low is not None:
                targets.append(("low", e_low))
            hi = self.e_max if e_high is None else min(e_high, self.e_max)
            targets.append(("high" if e_high is not None and e_high <= self.e_max else "max", hi))
            best_tau, best_reason = tau_max, None
            for reason, target in targets:
                r = _first_root(0.5 * b, a, e - target, tau_max)
                if r is not None and r < best_tau:
                    best_tau, best_reason = r, reason
            tau = best_tau
            h = ph * tau + 0.5 * slope * tau * tau
            self.harvested += h
            drawn += p_load * tau
            t += tau
            if best_reason is None:
                t = min(t1, t_stop)
                e = e + a * tau + 0.5 * b * tau * tau
                e = min(max(e, 0.0), self.e_max)
                continue
            e = dict(targets)[best_reason]
            if best_reason == "max":
                continue
            return t, e, best_reason, drawn


def _first_root(qa: float, qb: float, qc: float, tau_max: float) -> float | None:
    """Smallest tau in (0, tau_max] with qa*tau^2 + qb*tau + qc crossing zero (from the side of qc)."""
    if qc == 0:
        return None
    if abs(qa) < 1e-30:
        if qb == 0:
            return None
        r = -qc / qb
        return r if 0 < r <= tau_max else None
    disc = qb * qb - 4 * qa * qc
    if disc < 0:
        return None
    sq = math.sqrt(disc)
    q = -0.5 * (qb + math.copysign(sq, qb))
    roots = []
    if q != 0:
        roots += [q / qa, qc / q]
    else:
        roots += [-qb / (2 * qa)]
    roots = [r for r in roots if 0 < r <= tau_max]
    return min(roots) if roots else None


def simulate(trace: Trace | str | Path, capacitor: Capacitor, costs: Costs, policy, *,
             t_end: float | None = None, initial_level: int | None = None, record: bool = True,
             units: Sequence[int] | None = None) -> HarvestResult:
    """Run the device on the trace. `initial_level` (persisted level at start): the policy's fixed level,
    else the densest. `t_end` cuts the trace short (seconds from its start).

    units: per level, the units of work of an intermittent build (compile --intermittent; `costs` then
    are that build's). A brown-out keeps the units committed so far (their energy counts as inference,
    only the interrupted unit's as lost); after the next boot the inference resumes at its own level
    before the policy decides anything. None: a brown-out loses the whole inference."""
    if not isinstance(trace, Trace):
        trace = load_trace(trace)
    if isinstance(policy, str):
        policy = parse_policy(policy)
    cap, L = capacitor, costs.n_levels
    policy.prepare(costs, cap)
    end = trace.end if t_end is None else min(trace.end, trace.start + float(t_end))
    sim = _Sim(trace, cap, end)
    e_off, e_on = cap.energy(cap.v_off), cap.energy(cap.v_on)
    p_sleep = costs.sleep_power_uw * 1e-6
    boot_j = costs.boot_uj * 1e-6
    level = initial_level or getattr(policy, "fixed_level", L)
    t, e = trace.start, cap.energy(cap.v_init)
    e_start = e
    acc = {k: 0.0 for k in ("inference", "switch", "sleep", "boot", "lost", "unfinished")}
    completed = [0] * L
    lost_inf = n_sw = n_bo = n_boot = 0
    on_time = sleep_time = 0.0
    ts, vs, lvs, sts = [], [], [], []

    def rec(state):
        if record:
            ts.append(t)
            vs.append(cap.voltage(e))
            lvs.append(level)
            sts.append(state)

    pending = 0.0   # intermittent: fraction of the running inference still to do (0: none running)
    chunk = max((end - trace.start) / 2000.0, 1e-3)  # recording step while off or asleep
    on = e >= e_on  # a store that starts charged starts the device
    if on:
        n_boot += 1
        e -= boot_j
        acc["boot"] += boot_j
    rec(RUN if on else OFF)
    while t < end - _EPS_T:
        if not on:
            why = "time"
            while why == "time":        # in chunks, so the plot shows the charging curve
                t, e, why, _ = sim.advance(t, e, t + chunk, 0.0, None, e_on)
                if why == "time":
                    rec(OFF)
            if why != "high":
                break
            on = True
            n_boot += 1
            take = min(boot_j, e)
            e -= take
            acc["boot"] += take
            rec(RUN)
            continue
        k = level if pending else policy.decide(cap.voltage(e), level)
        if k == SLEEP:
            e_wake = cap.energy(policy.wake_v)
            if e_wake <= e:     # policy inconsistency guard: nothing to wait for
                k = 1
            else:
                rec(SLEEPING)
                t0 = t
                why = "time"
                while why == "time":
                    t, e, why, drawn = sim.advance(t, e, t + chunk, p_sleep, e_off, e_wake)
                    acc["sleep"] += drawn
                    if why == "time":
                        rec(SLEEPING)
                sleep_time += t - t0
                on_time += t - t0
                if why == "low":
                    on = False
                    n_bo += 1
                    rec(OFF)
                continue
        if k != level:
            ej = costs.switch_energy_uj[level - 1][k - 1] * 1e-6
            tj = costs.switch_time_us[level - 1][k - 1] * 1e-6
            if ej > 0 or tj > 0:
                rec(SWITCH)
                t0 = t
                if tj > 0:
                    t, e, why, drawn = sim.advance(t, e, t + tj, ej / tj, e_off, None)
                else:       # instantaneous
                    drawn = min(ej, e - e_off)
                    e -= drawn
                    why = "time" if drawn >= ej else "low"
                on_time += t - t0
                if why == "low":
                    acc["lost"] += drawn
                    on = False
                    n_bo += 1
                    rec(OFF)
                    continue
                if why == "end":
                    acc["unfinished"] += drawn
                    break
                acc["switch"] += drawn
            n_sw += 1
            level = k
            rec(RUN)
        c = costs.level(level)
        part = pending or 1.0
        ti = c.time_us * 1e-6 * part
        t0 = t
        t, e, why, drawn = sim.advance(t, e, t + ti, c.energy_uj * 1e-6 / (c.time_us * 1e-6), e_off, None)
        on_time += t - t0
        if why == "time":
            completed[level - 1] += 1
            acc["inference"] += drawn
            pending = 0.0
            rec(RUN)
        elif why == "low" and units:
            n_units = units[level - 1]
            left = round(part * n_units)
            done = min(left, int(drawn / (c.energy_uj * 1e-6 / n_units) * (1 + 1e-12)))
            kept = min(drawn, done * c.energy_uj * 1e-6 / n_units)
            acc["inference"] += kept
            acc["lost"] += drawn - kept
            pending = (left - done) / n_units
            if not pending:     # the last unit committed just as the voltage reached V_off
                completed[level - 1] += 1
            on = False
            n_bo += 1
            rec(OFF)
        elif why == "low":
            acc["lost"] += drawn
            lost_inf += 1
            on = False
            n_bo += 1
            rec(OFF)
        else:   # trace ended mid-inference
            acc["unfinished"] += drawn
            break
    t = end
    rec(RUN if on else OFF)
    duration = end - trace.start
    energy = {"harvested": sim.harvested, **acc, "spilled": sim.spilled, "stored_start": e_start,
              "stored_end": e}
    return HarvestResult(
        policy=policy.name, trace=trace.name, capacitor=cap, completed=completed,
        accuracy=[l.accuracy for l in costs.levels], lost_inferences=lost_inf, energy_j=energy,
        on_time_s=on_time, sleep_time_s=sleep_time, off_time_s=duration - on_time, duration_s=duration,
        n_switches=n_sw, n_brownouts=n_bo, n_boots=n_boot,
        series_t=np.array(ts), series_v=np.array(vs), series_level=np.array(lvs, np.int16),
        series_state=np.array(sts, np.int8), policy_detail=policy.describe())


# ========================================================================================== comparison

def default_policies(n_levels: int, **energy_kw) -> list:
    """What `--policy compare` runs: fixed densest, fixed sparsest, guarded densest, energy-aware."""
    L = n_levels
    return [FixedPolicy(L), FixedPolicy(1), FixedPolicy(L, guard=True), EnergyAwarePolicy(**energy_kw)]


def compare_policies(trace, capacitor: Capacitor, costs: Costs, policies: Sequence | None = None, *,
                     t_end: float | None = None, print_table: bool = True, **energy_kw) -> dict:
    """Run fixed-densest, fixed-sparsest, guarded-densest and energy-aware (or the given policies) on the
    same trace; print a table; return {policy name: HarvestResult}."""
    if not isinstance(trace, Trace):
        trace = load_trace(trace)
    if policies is None:
        policies = default_policies(costs.n_levels, **energy_kw)
    results = {}
    for p in policies:
        if isinstance(p, str):
            p = parse_policy(p)
        results[p.name] = simulate(trace, capacitor, costs, p, t_end=t_end)
    if print_table:
        print(format_comparison(results))
    return results


def format_comparison(results: Mapping[str, HarvestResult]) -> str:
    any_r = next(iter(results.values()))
    L = len(any_r.completed)
    head = (f"trace {any_r.trace} ({any_r.duration_s / 3600:.2f} h), C = {any_r.capacitor.capacitance_f:g} F, "
            f"V_on {any_r.capacitor.v_on} V, V_off {any_r.capacitor.v_off} V")
    cols = f"{'policy':<18} {'total':>7} " + " ".join(f"{'L' + str(k):>6}" for k in range(1, L + 1)) + \
           f" {'lost':>5} {'E[acc]':>7} {'correct':>9} {'switch mJ':>9} {'lost mJ':>8} {'spill mJ':>9} {'on %':>6}"
    lines = [head, cols]
    for name, r in results.items():
        e = r.energy_j
        lines.append(f"{name:<18} {r.total:>7} " + " ".join(f"{c:>6}" for c in r.completed) +
                     f" {r.lost_inferences:>5} {r.expected_accuracy:>7.4f} {r.expected_correct:>9.1f} "
                     f"{e['switch'] * 1e3:>9.2f} {e['lost'] * 1e3:>8.2f} {e['spilled'] * 1e3:>9.1f} "
                     f"{100 * r.on_time_s / r.duration_s:>6.1f}")
    return "\n".join(lines)


# ================================================================================================ plot

def plot(result: HarvestResult, path: str | Path, trace: Trace | None = None) -> Path:
    """Harvested power (if the trace is given), store voltage with V_on / V_off, and the active level
    (blank while off, thin while sleeping) over time. Hours on the x axis for traces over 2 h."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hours = result.duration_s > 7200
    scale, unit = (1 / 3600, "h") if hours else (1.0, "s")
    n = 3 if trace is not None else 2
    fig, axes = plt.subplots(n, 1, figsize=(11, 2.4 * n + 0.6), sharex=True,
                             gridspec_kw={"height_ratios": [1] * (n - 2) + [1.4, 1]})
    ax_i = 0
    if trace is not None:
        ax = axes[0]
        ax.plot(trace.time_s * scale, trace.power_w * 1e3, color="tab:orange", lw=0.8)
        ax.set_ylabel("harvested\npower (mW)")
        ax.grid(alpha=0.3)
        ax_i = 1
    t = result.series_t * scale
    ax = axes[ax_i]
    ax.plot(t, result.series_v, color="tab:blue", lw=0.6, drawstyle="default", rasterized=len(t) > 20000)
    cap = result.capacitor
    for v, lab, c in ((cap.v_on, "V_on", "green"), (cap.v_off, "V_off", "red"), (cap.v_max, "V_max", "gray")):
        ax.axhline(v, color=c, ls="--", lw=0.8)
        ax.text(t[0] if len(t) else 0, v, f" {lab}", color=c, va="bottom", fontsize=8)
    ax.set_ylabel("store voltage (V)")
    ax.grid(alpha=0.3)
    ax = axes[ax_i + 1]
    lvl = result.series_level.astype(float)
    on = result.series_state != OFF
    run = np.where(on, lvl, np.nan)
    ax.step(t, run, where="post", color="tab:purple", lw=1.0, label="active level")
    sl = np.where(result.series_state == SLEEPING, 0.5, np.nan)
    ax.step(t, sl, where="post", color="tab:gray", lw=2.0, label="sleep (LPM)")
    ax.set_yticks(range(1, len(result.completed) + 1))
    ax.set_ylim(0.2, len(result.completed) + 0.4)
    ax.set_ylabel("level\n(blank = off)")
    ax.set_xlabel(f"time ({unit})")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.suptitle(f"{result.policy}: {result.total} inferences "
                 f"({', '.join(f'L{k + 1} {c}' for k, c in enumerate(result.completed))}), "
                 f"E[acc] {result.expected_accuracy:.4f}, lost {result.lost_inferences}", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ============================================================================================== traces

class _SplitMix64:
    """Tiny seeded generator (SplitMix64) in pure Python: its stream never changes with numpy versions,
    so the shipped traces regenerate bit for bit."""

    def __init__(self, seed: int):
        self.s = seed & 0xFFFFFFFFFFFFFFFF

    def next_u64(self) -> int:
        self.s = (self.s + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        return z ^ (z >> 31)

    def uniform(self) -> float:
        return (self.next_u64() >> 11) / float(1 << 53)


#: Parameters of the shipped traces (the README repeats them).
TRACE_PARAMS = {
    "constant": {"power_w": 1.0e-3, "duration_s": 3600},
    "onoff": {"power_w": 8.0e-3, "period_s": 600, "on_s": 300, "duration_s": 3600},
    "solar": {"peak_w": 8.0e-3, "sunrise_h": 6.0, "sunset_h": 18.0, "step_s": 60, "duration_s": 86400,
              "seed": 20240601, "p_clear_to_cloudy": 0.05, "p_cloudy_to_clear": 0.15,
              "cloud_min": 0.2, "cloud_max": 0.6},
}


def _solar(p) -> Trace:
    rng = _SplitMix64(p["seed"])
    n = p["duration_s"] // p["step_s"]
    ts, ps = [], []
    cloudy, factor = False, 1.0
    for i in range(n + 1):
        t = i * p["step_s"]
        # cloud state: a two-state Markov chain advanced once per step (one uniform draw), and a new
        # attenuation drawn on entering a cloud (one more draw)
        u = rng.uniform()
        if cloudy and u < p["p_cloudy_to_clear"]:
            cloudy, factor = False, 1.0
        elif not cloudy and u < p["p_clear_to_cloudy"]:
            cloudy = True
            factor = p["cloud_min"] + (p["cloud_max"] - p["cloud_min"]) * rng.uniform()
        h = t / 3600.0
        day = (h - p["sunrise_h"]) / (p["sunset_h"] - p["sunrise_h"])
        sun = math.sin(math.pi * day) if 0.0 < day < 1.0 else 0.0
        ps.append(round(p["peak_w"] * sun * factor, 9))
        ts.append(t)
    return Trace(np.array(ts, float), np.array(ps), "solar")


def make_traces(out_dir: str | Path = TRACE_DIR) -> list[Path]:
    """Write constant.csv, onoff.csv and solar.csv (deterministic; see TRACE_PARAMS and traces/README.md)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    c = TRACE_PARAMS["constant"]
    const = Trace(np.array([0.0, c["duration_s"]]), np.array([c["power_w"]] * 2), "constant")
    o = TRACE_PARAMS["onoff"]
    ts, ps = [], []
    for start in range(0, o["duration_s"], o["period_s"]):
        ts += [start, start + o["on_s"], start + o["on_s"], start + o["period_s"]]
        ps += [o["power_w"], o["power_w"], 0.0, 0.0]
    onoff = Trace(np.array(ts, float), np.array(ps), "onoff")
    paths = [const.save(out / "constant.csv"), onoff.save(out / "onoff.csv"),
             _solar(TRACE_PARAMS["solar"]).save(out / "solar.csv")]
    return paths


# ================================================================================================= CLI

def _example_costs() -> Costs:
    """Illustrative LeNet-like 3-level costs (not measured): used by --demo only."""
    return make_costs(
        [{"energy_uj": 900.0, "time_us": 159_000.0, "accuracy": 0.975, "sparsity": 0.9},
         {"energy_uj": 1500.0, "time_us": 265_000.0, "accuracy": 0.985, "sparsity": 0.75},
         {"energy_uj": 2400.0, "time_us": 424_000.0, "accuracy": 0.990, "sparsity": 0.5}],
        [[0, 20, 30], [1, 0, 12], [1, 1, 0]], [[0, 3500, 5300], [200, 0, 2100], [200, 200, 0]],
        source="illustrative LeNet-like numbers (sparsenest.analysis.harvest._example_costs), not measured")


def _plot_name(base: Path, policy: str) -> Path:
    return base.with_name(f"{base.stem}_{policy.replace(':', '_').replace(',', '_').replace('+', '_')}{base.suffix}")


def _output_paths(a, policies: list[str]) -> dict[str, Path]:
    """{policy: plot path} for the run, after checking that neither the plots nor --json overwrite an
    input (costs, trace) or an existing file without --force (safe_output.check_output_file)."""
    from ..safe_output import check_output_file
    inputs = [a.costs, a.trace if Path(a.trace).suffix else None]
    if a.json:
        check_output_file(a.json, inputs=inputs, force=a.force)
    base = a.plot if a.plot is not None else (str(Path(a.json).with_suffix(".png")) if a.json else "")
    if not base:
        return {}
    paths = {p: Path(base) if len(policies) == 1 else _plot_name(Path(base), p) for p in policies}
    for p in paths.values():
        check_output_file(p, inputs=inputs + [a.json], force=a.force)
    return paths


def add_arguments(ap) -> None:
    """`sparsenest harvest`'s options (the command runs run())."""
    from sparsenest import cli_args as arg
    ap.epilog = COSTS_SCHEMA
    ap.add_argument("--make-traces", action="store_true", help="regenerate the shipped traces and exit")
    arg.add_output(ap, help="with --make-traces: output folder (default: the package's)")
    ap.add_argument("--trace", default="solar", help="CSV time_s,power_w, or a shipped name: constant, onoff, solar")
    ap.add_argument("--capacitor", type=arg.positive_float, default=0.047, help="storage capacitor in farads")
    ap.add_argument("--v-on", type=arg.positive_float, default=3.3, help="supply turns on at this capacitor voltage")
    ap.add_argument("--v-off", type=arg.positive_float, default=1.9, help="supply turns off below this voltage")
    ap.add_argument("--v-max", type=arg.positive_float, default=3.6, help="capacitor voltage limit")
    ap.add_argument("--v-init", type=arg.nonneg_float, default=0.0, help="capacitor voltage at the start")
    ap.add_argument("--policy", default="energy",
                    help="fixed:K | fixed:K+guard | energy | energy:V1,...,VL | compare")
    ap.add_argument("--hysteresis", type=arg.nonneg_float, default=0.05, help="volts")
    ap.add_argument("--margin", type=arg.positive_float, default=1.1,
                    help="energy-aware guard: stored energy >= margin x cost")
    ap.add_argument("--costs", type=arg.input_file, default=None, help="per-level costs JSON (schema below)")
    ap.add_argument("--demo", action="store_true", help="use illustrative LeNet-like costs instead of --costs")
    ap.add_argument("--duration", type=arg.positive_float, default=None, help="simulate only the first N seconds")
    ap.add_argument("--plot", default=None,
                    help="plot path (default: beside --json, same name with .png; none without --json; '' for "
                         "none); compare: one per policy, named <plot>_<policy>.png")
    ap.add_argument("--json", default=None, help="write the result(s) as JSON")
    ap.add_argument("--force", action="store_true", help="replace existing --json / --plot files")


def run(a) -> int:
    """`sparsenest harvest`: simulate a policy (or compare policies) on a harvested-power trace."""
    if a.make_traces:
        for p in make_traces(a.out or TRACE_DIR):
            print(p)
        return 0
    if a.costs:
        costs = load_costs(a.costs)
    elif a.demo:
        costs = _example_costs()
    else:
        raise ValueError("--costs FILE is required (per-level costs JSON, see --help), or --demo for "
                         "illustrative numbers")
    if a.policy == "compare":
        policies = default_policies(costs.n_levels, hysteresis_v=a.hysteresis, margin=a.margin)
    else:
        policies = [parse_policy(a.policy, hysteresis_v=a.hysteresis, margin=a.margin)]
    outputs = _output_paths(a, [p.name for p in policies])   # checked before the simulation runs
    trace = load_trace(a.trace)
    cap = Capacitor(a.capacitor, a.v_on, a.v_off, a.v_max, a.v_init)
    if a.policy == "compare":
        res = compare_policies(trace, cap, costs, policies, t_end=a.duration)
    else:
        r = simulate(trace, cap, costs, policies[0], t_end=a.duration)
        print(r.summary())
        res = {r.policy: r}
    if costs.source:
        print(f"costs: {costs.source}")
    for name, r in res.items():
        if name in outputs:
            print(f"plot: {plot(r, outputs[name], trace)}")
    if a.json:
        Path(a.json).write_text(json.dumps({k: r.to_dict() for k, r in res.items()}, indent=1) + "\n")
        print(f"json: {a.json}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from sparsenest.cli import run_command
    return run_command("harvest", argv)


if __name__ == "__main__":
    sys.exit(main())
