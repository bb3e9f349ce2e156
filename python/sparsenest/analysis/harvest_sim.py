"""Event-driven simulation of a battery-free device running nested-sparse inferences from a capacitor
(the model is described in sparsenest.analysis.harvest)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..energy_store import Capacitor, Trace, load_trace
from .harvest_costs import Costs
from .harvest_policy import SLEEP, default_policies, parse_policy

_EPS_T = 1e-12

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


def unit_bounds(costs: Costs, units: Sequence[int]) -> list[list[float]]:
    """Per level: the fraction of the inference's energy committed after 0, 1, ..., n units (0 .. 1):
    the measured profile (LevelCost.unit_ends) when the costs carry one for n units, else equal units."""
    out = []
    for lv, n in zip(costs.levels, units):
        ends = lv.unit_ends if lv.unit_ends is not None and len(lv.unit_ends) == n else \
            [(i + 1) / n for i in range(n)]
        out.append([0.0] + list(ends[:-1]) + [1.0])
    return out


def simulate(trace: Trace | str | Path, capacitor: Capacitor, costs: Costs, policy, *,
             t_end: float | None = None, initial_level: int | None = None, record: bool = True,
             units: Sequence[int] | None = None, resume: bool = True) -> HarvestResult:
    """Run the device on the trace. `initial_level` (persisted level at start): the policy's fixed level,
    else the densest. `t_end` cuts the trace short (seconds from its start).

    units: per level, the units of work of an intermittent build (compile --intermittent; `costs` then
    are that build's). A brown-out keeps the units committed so far (their energy counts as inference,
    only the interrupted unit's as lost; unit sizes from the costs' measured unit_ends, else equal);
    after the next boot the inference resumes at its own level
    before the policy decides anything. None: the costs' own units (Costs.units), if any. With
    resume=False, or without units, a brown-out loses the whole inference."""
    units = (units or costs.units) if resume else None
    bounds = unit_bounds(costs, units) if units else None
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

    resume_at = None    # intermittent: units committed of the running inference (None: none running)
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
        k = level if resume_at is not None else policy.decide(cap.voltage(e), level)
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
        start = bounds[level - 1][resume_at] if resume_at is not None else 0.0   # fraction already committed
        ti = c.time_us * 1e-6 * (1.0 - start)
        t0 = t
        t, e, why, drawn = sim.advance(t, e, t + ti, c.energy_uj * 1e-6 / (c.time_us * 1e-6), e_off, None)
        on_time += t - t0
        if why == "time":
            completed[level - 1] += 1
            acc["inference"] += drawn
            resume_at = None
            rec(RUN)
        elif why == "low" and units:
            b = bounds[level - 1]
            reached = start + drawn / (c.energy_uj * 1e-6)
            j = resume_at or 0
            while j < len(b) - 1 and b[j + 1] <= reached * (1 + 1e-12):
                j += 1          # units whose commit the energy drawn reached
            kept = min(drawn, (b[j] - start) * c.energy_uj * 1e-6)
            acc["inference"] += kept
            acc["lost"] += drawn - kept
            resume_at = j
            if j == len(b) - 1:     # the last unit committed just as the voltage reached V_off
                completed[level - 1] += 1
                resume_at = None
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


def compare_policies(trace, capacitor: Capacitor, costs: Costs, policies: Sequence | None = None, *,
                     t_end: float | None = None, print_table: bool = True, resume: bool = True,
                     **energy_kw) -> dict:
    """Run fixed-densest, fixed-sparsest, guarded-densest and energy-aware (or the given policies) on the
    same trace; print a table; return {policy name: HarvestResult}."""
    if not isinstance(trace, Trace):
        trace = load_trace(trace)
    if policies is None:
        policies = default_policies(costs.n_levels, resume=resume and costs.units is not None, **energy_kw)
    results = {}
    for p in policies:
        if isinstance(p, str):
            p = parse_policy(p)
        results[p.name] = simulate(trace, capacitor, costs, p, t_end=t_end, resume=resume)
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
