"""Policies of the harvest model: at every decision point (power-up, end of an inference, end of a
sleep) a policy returns the level to run, or SLEEP (LPM until the voltage reaches its wake threshold)."""
from __future__ import annotations

from typing import Sequence

from ..energy_store import Capacitor
from .harvest_costs import Costs

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


class ResumingEnergyPolicy(EnergyAwarePolicy):
    """EnergyAwarePolicy for intermittent builds (compile --intermittent), whose inference survives a
    brown-out and resumes after the next boot. A denser level k is chosen exactly as EnergyAwarePolicy
    chooses it (voltage threshold, and the energy above V_off pays that inference plus the switch into
    it `margin` times over, so it finishes within the charge it starts in); below that it does not
    sleep but runs the sparsest level, which may span several power cycles: the energy a continuous
    device would leave in the store until it recharged goes into committed units of work instead."""

    def __init__(self, thresholds_v: Sequence[float] | None = None, **kw):
        super().__init__(thresholds_v, **kw)
        self.name = self.name.replace("energy:", "energy+resume:", 1)

    def decide(self, v: float, level: int) -> int:
        return max(super().decide(v, level), 1)


def parse_policy(text: str, *, hysteresis_v: float = 0.05, margin: float = 1.1):
    """"fixed:K", "fixed:K+guard", "energy" / "energy:auto", "energy:V1,V2,...,VL" (sparsest first), or
    the same with "energy+resume" (ResumingEnergyPolicy, for intermittent builds)."""
    kind, _, arg = text.partition(":")
    if kind == "fixed":
        guard = arg.endswith("+guard")
        lv = arg[:-len("+guard")] if guard else arg
        if not lv.isdigit():
            raise ValueError(f"policy {text!r}: use fixed:K with K a level number, e.g. fixed:3")
        return FixedPolicy(int(lv), guard=guard, margin=margin, hysteresis_v=hysteresis_v)
    if kind in ("energy", "energy+resume"):
        cls = EnergyAwarePolicy if kind == "energy" else ResumingEnergyPolicy
        if arg in ("", "auto"):
            return cls(None, hysteresis_v=hysteresis_v, margin=margin)
        try:
            th = [float(v) for v in arg.split(",")]
        except ValueError:
            raise ValueError(f"policy {text!r}: thresholds must be volts, e.g. energy:2.2,2.6,3.0") from None
        return cls(th, hysteresis_v=hysteresis_v, margin=margin)
    raise ValueError(f"unknown policy {text!r}: use fixed:K, fixed:K+guard, energy[+resume], or "
                     f"energy[+resume]:V1,...,VL")


def default_policies(n_levels: int, *, resume: bool = False, **energy_kw) -> list:
    """What `--policy compare` runs: fixed densest, fixed sparsest, guarded densest, energy-aware, and
    for an intermittent build (resume) also the resuming energy-aware policy."""
    L = n_levels
    return [FixedPolicy(L), FixedPolicy(1), FixedPolicy(L, guard=True), EnergyAwarePolicy(**energy_kw)] + (
        [ResumingEnergyPolicy(**energy_kw)] if resume else [])
