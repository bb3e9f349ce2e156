"""Closed-loop check of the harvest model: our MSP430FR5994 simulator, powered by a trace through a
capacitor (targets.fr5994power), runs a firmware image that infers at one fixed level over and over;
the count of completed inferences is compared with the event-driven harvest model
(analysis.harvest_sim.simulate) given the costs measured in the same simulator (analysis.harvest_measure).

A completed inference is counted on the device as: continuous build, the application's DONE mark;
intermittent build, the progress record's unit counter reaching the last unit (polled at every slice
and mark, far shorter than an inference), so an inference the start-up code resumes counts too.
After every power failure the image restarts its schedule, which only has to be longer than what one
charge completes (255 steps at most).
"""
from __future__ import annotations

import struct
from pathlib import Path

from ..energy_store import Capacitor, Trace
from ..targets.firmware_model import MARK_DONE
from .harvest_costs import Costs
from .harvest_policy import FixedPolicy
from .harvest_sim import simulate


def device_firmware(model_dir, out_dir, level: int, steps: int = 255):
    """A chip image that runs `steps` inferences of one input at `level`."""
    from ..targets import firmware
    model = firmware.load_model_dir(model_dir)
    return firmware.build(model, Path(out_dir), image="fr5994", n_inputs=1, uart=False,
                          schedule=[firmware.Step(0, level)] * steps)


def device_count(fb, trace: Trace, cap: Capacitor, duration_s: float, *, slice_cycles: int = 1000) -> dict:
    """Run the image on the trace for duration_s of trace time; count completed inferences."""
    from ..targets.fr5994power import run_intermittent
    from ..targets.powercut import at_mark
    from ..targets.fr5994sim import Device, FrSimError
    units = (fb.model.meta.get("intermittent") or {}).get("units")
    dev = Device()
    dev.load(fb.elf)
    mark = dev.elf.symbols["sn_app_mark"].value
    progress = dev.elf.symbols["sn_progress"].value if units else None
    state = {"count": 0, "done": 0}

    def observe(d, stop) -> bool:
        if units:
            level_word, done = struct.unpack("<HH", d.read(progress, 4))
            if level_word and done == units and state["done"] < units:
                state["count"] += 1
            state["done"] = done if level_word else 0
        elif at_mark(stop, mark) and d.regs[12] == MARK_DONE:
            state["count"] += 1
        return stop.reason == "break" and stop.pc == mark     # __halt ends the run

    r = run_intermittent(dev, ["sn_app_mark", "__halt"], trace=trace, capacitor=cap, slice_cycles=slice_cycles,
                         max_time_s=duration_s, observe=observe)
    if r.stop.reason == "halt" or (r.stop.reason == "break" and r.stop.pc != mark):
        raise FrSimError(f"the schedule of {fb.elf.name} ended within one charge: use fewer inferences per "
                         f"charge (a smaller capacitor or less power)")
    return {"completed": state["count"], "power_failures": r.power_failures, "on_time_s": r.on_time_s,
            "off_time_s": r.off_time_s}


def compare(fb, costs: Costs, level: int, trace: Trace, cap: Capacitor, duration_s: float, **kw) -> dict:
    """Device count and event-model count of completed inferences at a fixed level."""
    dev = device_count(fb, trace, cap, duration_s, **kw)
    model = simulate(trace, cap, costs, FixedPolicy(level), t_end=duration_s, record=False)
    return {"device": dev["completed"], "model": model.total, "device_failures": dev["power_failures"],
            "model_brownouts": model.n_brownouts, "device_on_s": dev["on_time_s"], "model_on_s": model.on_time_s}
