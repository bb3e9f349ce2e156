"""Harvest costs of a compiled model measured in our MSP430FR5994 simulator (the chip image).

One firmware image per build runs one inference per level (schedule 1..L, so each step also switches
level); every inference is checked bit for bit against the golden model. Per level: the inference's
cycles (time at MCLK) and energy (Device.energy_j: cycles at the platform's active power, FRAM word
writes, LEA), and for an intermittent build its units of work (compile --intermittent) with the energy
fraction spent when each commits (unit_profile), so the harvest model loses what a brown-out loses. Per
boot: the
platform's reset charge (board.toml power.reset_charge_nas) plus the firmware's own start-up measured
from the reset vector to the application's first mark (crt0, sn_init, and for an intermittent build
the progress check that precedes resuming). The level switch costs the mean measured switch cycles for
every pair (a resident switch writes one word, the same for every pair). All of it is simulated: the
cycle tables, wait states and energy constants are from documents, not measured on a board.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .harvest_costs import Costs, make_costs


def startup_cycles(fb) -> dict:
    """Counters from the reset vector to the application's first sn_app_mark (a fresh boot)."""
    from ..targets.fr5994sim import Device, FrSimError
    dev = Device()
    dev.load(fb.elf)
    dev.clear_counters()
    stop = dev.run(["sn_app_mark", "__halt"])
    if stop.reason != "break" or stop.pc != dev.elf.symbols["sn_app_mark"].value:
        raise FrSimError(f"{fb.elf}: the start-up did not reach sn_app_mark ({stop.reason})")
    return {**dev.counters.as_dict(), "energy_j": dev.energy_j()}


def unit_profile(fb, step: int, units: int, poll_cycles: int = 64) -> list[float]:
    """Energy fraction of step `step`'s inference (INFER to DONE mark) spent when each unit commits,
    from the progress record polled every poll_cycles (powercut.progress_changes; units committed
    between two polls share one value: at most poll_cycles late)."""
    from ..targets.fr5994sim import FrSimError
    from ..targets.powercut import progress_changes
    changes = progress_changes(fb, step, poll_cycles)
    total = changes[-1]["energy_j"]
    ends, seen = [], 0
    for c in changes[:-1]:
        if c["done"] > seen:
            ends += [min(c["energy_j"] / total, 1.0)] * (c["done"] - seen)
            seen = c["done"]
    if len(ends) != units:
        raise FrSimError(f"{fb.elf}: inference {step} committed {len(ends)} of {units} units")
    return ends


def measure(model_dir, out_dir, *, inputs: np.ndarray | None = None, accuracy: Sequence[float] | None = None,
            qmodel=None, label: str = "", poll_cycles: int = 64) -> tuple[Costs, dict]:
    """(Costs, details) of a compiled model directory (target msp430fr5994), measured in our simulator.
    inputs: one input to run (default: the first test input of the model's data set); accuracy: per
    level, sparsest first (default 0: unknown); qmodel: the golden model (compile_bundle's "qmodel";
    default: rebuilt from the bundle the build records); poll_cycles: unit_profile's. Builds the
    firmware in out_dir."""
    from ..targets import firmware, fr5994fw
    from ..targets.fr5994sim import Device
    model = firmware.load_model_dir(model_dir)
    L = model.n_levels
    sched = [firmware.Step(0, lv) for lv in range(1, L + 1)]
    fb = firmware.build(model, Path(out_dir), image="fr5994", inputs=None if inputs is None else inputs[:1],
                        n_inputs=1, schedule=sched, uart=False)
    dev = Device()
    run = fr5994fw.simulate(fb, device=dev)
    firmware.compare_golden(fb, run, qmodel).raise_on_mismatch()
    p = dev.platform
    inter = model.meta.get("intermittent")
    levels, per_level = [], {}
    for step, (r, c) in enumerate(zip(run.records, run.infer_counters)):
        e_j = dev.energy_j(c)
        per_level[r.level] = {"cycles": c["cycles"], "energy_uj": e_j * 1e6, "fram_writes": c["fram_writes"],
                              "dma_transfers": c["dma_transfers"]}
        levels.append({"energy_uj": e_j * 1e6, "time_us": c["cycles"] / p.mclk_hz * 1e6,
                       "accuracy": float(accuracy[r.level - 1]) if accuracy else 0.0,
                       **({"units": int(inter["units"]),
                           "unit_ends": unit_profile(fb, step, int(inter["units"]), poll_cycles)} if inter else {})})
    if [r.level for r in run.records] != list(range(1, L + 1)):
        raise firmware.FirmwareError(f"the schedule ran levels {[r.level for r in run.records]}, not 1..{L}")
    switch = [r.switch.cycles for r in run.records if r.switch is not None]
    sw_cycles = float(np.mean(switch)) if switch else 0.0
    sw_e = [[0.0 if i == j else sw_cycles * p.energy_per_cycle_j * 1e6 for j in range(L)] for i in range(L)]
    sw_t = [[0.0 if i == j else sw_cycles / p.mclk_hz * 1e6 for j in range(L)] for i in range(L)]
    boot = startup_cycles(fb)
    boot_uj = p.boot_energy_j * 1e6 + boot["energy_j"] * 1e6
    costs = make_costs(levels, sw_e, sw_t, sleep_power_uw=p.lpm3_power_w * 1e6, boot_uj=boot_uj,
                       source=f"our MSP430FR5994 simulator, chip image{' ' + label if label else ''} "
                              f"({'intermittent, ' + str(inter['units']) + ' units' if inter else 'continuous'}); "
                              f"boot = reset charge + {boot['cycles']:,} start-up cycles (simulated)")
    return costs, {"per_level": per_level, "startup_cycles": boot["cycles"], "startup_uj": boot["energy_j"] * 1e6,
                   "switch_cycles": sw_cycles, "intermittent": inter, "regions": fb.regions}
