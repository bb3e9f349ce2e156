"""Intermittent power for the MSP430FR5994 simulator: cut the supply at given cycles, at random cycles,
or when a storage capacitor charged by a harvest trace (sparsenest.energy_store) falls below V_off; the
device restarts through the reset vector (Device.power_off: SRAM, registers and peripherals lost, FRAM
kept) when the capacitor is back at V_on.

Energy drawn while running is the simulator's own (Device.energy_j: cycles at the platform's active
power, FRAM writes, LEA), plus the platform's reset charge at every power-on (board.toml
power.reset_charge_nas); while off the device draws nothing. The capacitor is checked every
`slice_cycles` cycles, so a brown-out lands at most one slice late (1000 cycles = 62.5 us at 16 MHz).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable

from ..energy_store import Capacitor, Trace
from .fr5994sim import Device, FrSimError, Stop


@dataclass
class IntermittentResult:
    completed: bool                 # reached `until`
    power_failures: int
    stop: Stop
    on_time_s: float = 0.0          # simulated time powered (cycles / MCLK)
    off_time_s: float = 0.0         # time spent recharging to V_on
    events: list = field(default_factory=list)   # (time_s, "off" | "on", device cycles)


def random_cuts(n: int, max_cycle: int, *, seed: int = 1) -> list[int]:
    """n distinct cycle counts in [1, max_cycle), sorted: where to cut the supply."""
    if n >= max_cycle:
        raise ValueError(f"cannot place {n} cuts below cycle {max_cycle}")
    return sorted(random.Random(seed).sample(range(1, max_cycle), n))


def run_intermittent(dev: Device, until: str = "__halt", *, cut_cycles=None, trace: Trace | None = None,
                     capacitor: Capacitor | None = None, slice_cycles: int = 1000, max_failures: int = 100000,
                     max_time_s: float = 3600.0, seed: int = 1,
                     observe: Callable[[Device, Stop], bool] | None = None) -> IntermittentResult:
    """Run `dev` (already loaded and reset) to `until` through power failures: either at the device's
    cumulative cycle counts in `cut_cycles`, or driven by `trace` and `capacitor` for at most
    max_time_s of trace time. A run that stops on a simulator error raises FrSimError.

    observe (trace mode): called after every slice and every stop at `until` with the device and the
    Stop; returning True at a stop at `until` keeps the run going (a closed-loop driver counts events
    at a breakpoint this way). The result is then not `completed` unless the program halts."""
    if cut_cycles is not None:
        return _run_cuts(dev, until, list(cut_cycles), seed)
    if trace is None or capacitor is None:
        raise ValueError("give cut_cycles, or a harvest trace and a capacitor")
    return _run_harvest(dev, until, trace, capacitor, slice_cycles, max_failures, max_time_s, seed, observe)


def _check(stop: Stop) -> None:
    if stop.reason == "error":
        raise FrSimError(stop.message)


def _run_cuts(dev: Device, until: str, cuts: list[int], seed: int) -> IntermittentResult:
    mclk = dev.platform.mclk_hz
    failures, events = 0, []
    for cut in sorted(cuts):
        now = dev.counters.cycles
        if cut <= now:
            continue
        stop = dev.run(until, max_cycles=cut - now)
        _check(stop)
        if stop.reason != "budget":
            return IntermittentResult(True, failures, stop, dev.counters.cycles / mclk, 0.0, events)
        dev.power_off(seed + failures)
        failures += 1
        events.append((dev.counters.cycles / mclk, "off", dev.counters.cycles))
    stop = dev.run(until)
    _check(stop)
    return IntermittentResult(stop.reason in ("break", "halt"), failures, stop, dev.counters.cycles / mclk, 0.0,
                              events)


def _run_harvest(dev: Device, until: str, trace: Trace, cap: Capacitor, slice_cycles: int, max_failures: int,
                 max_time_s: float, seed: int, observe=None) -> IntermittentResult:
    mclk = dev.platform.mclk_hz
    boot_j = dev.platform.boot_energy_j
    t = trace.start
    e = cap.energy(cap.v_init)
    e_max, e_on, e_off = cap.energy(cap.v_max), cap.energy(cap.v_on), cap.energy(cap.v_off)
    on = e >= e_on
    if on:
        e -= boot_j
    failures, on_time, off_time, events = 0, 0.0, 0.0, []
    stop = Stop("budget", dev.regs[0])
    while t - trace.start < max_time_s:
        if not on:
            # charge in steps of half the time the present power needs to reach V_on (0.1 ms .. 1 s);
            # a step that crosses V_on is bisected down to 0.1 ms, so V_on is crossed at most that late
            p_now = float(trace.power(t))
            dt = min(max(0.5 * (e_on - e) / p_now, 1e-4), 1.0) if p_now > 0 else 1.0
            dt = min(dt, trace.start + max_time_s - t)
            gained = trace.energy(t, t + dt)
            while dt > 1e-4 and e + gained >= e_on:   # keep the first half; if it stays below V_on,
                dt *= 0.5                               # take just that and come back for the rest
                gained = trace.energy(t, t + dt)
                if e + gained < e_on:
                    break
            if gained <= 0 and t >= trace.end:
                break                                     # the trace is over and the store is empty
            e = min(e + gained, e_max)
            t += dt
            off_time += dt
            if e >= e_on:
                on = True
                e -= boot_j
                events.append((t, "on", dev.counters.cycles))
            continue
        c0 = dev.counters
        stop = dev.run(until, max_cycles=slice_cycles)
        _check(stop)
        c1 = dev.counters
        dt = (c1.cycles - c0.cycles) / mclk
        # midpoint power x slice: exact inside a linear segment, and a slice is ~0.1 ms
        e += float(trace.power(t + 0.5 * dt)) * dt - (dev.energy_j(c1) - dev.energy_j(c0))
        e = min(e, e_max)
        t += dt
        on_time += dt
        keep = observe(dev, stop) if observe is not None else False
        if stop.reason != "budget" and not (keep and stop.reason == "break"):
            return IntermittentResult(True, failures, stop, on_time, off_time, events)
        if e < e_off:
            dev.power_off(seed + failures)
            failures += 1
            on = False
            events.append((t, "off", c1.cycles))
            if failures >= max_failures:
                break
    return IntermittentResult(False, failures, stop, on_time, off_time, events)
