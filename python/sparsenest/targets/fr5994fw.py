"""Model firmware (sparsenest.firmware) on our MSP430FR5994 simulator: firmware.simulate's twin.

Runs either image: the chip image (MPY32 at 0x04C0, weights in upper FRAM read by DMA tiles) or
mspdebug's simulator image. Returns the same firmware.SimRun (records with per-step switch/inference
counts, per-layer counts with layers=True); SimRun.counters carries the simulator's counters (FRAM
traffic, cache, DMA, energy) of the whole run and of every inference.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Sequence

from . import firmware, msp430
from .fr5994sim import CYCLE_NOTE, Device, FrSimError, board_logs


@dataclass
class FrSimRun(firmware.SimRun):
    counters: dict = field(default_factory=dict)          # the whole run
    infer_counters: list = field(default_factory=list)    # per scheduled step: the inference's counters
    energy_j: float = 0.0
    cycle_note: str = CYCLE_NOTE


def simulate(fb, *, inputs=None, schedule: Sequence[firmware.Step] | None = None, layers: bool = False,
             max_cycles: int = 4 * 10 ** 10, device: Device | None = None) -> FrSimRun:
    """firmware.simulate on our simulator (both images). Raises FrSimError when the program stops on
    an error (the message names PC and address), traps or exceeds max_cycles."""
    if not isinstance(fb, firmware.FirmwareBuild):
        fb = firmware.load_build(fb)
    dev = device or Device()
    dev.load(fb.elf)
    e = dev.elf
    model = fb.model
    inputs_q = fb.inputs_q.copy()
    if inputs is not None:
        q = firmware.quantize_inputs(model, inputs)
        if len(q) > len(inputs_q):
            raise firmware.FirmwareError(f"{len(q)} inputs but the image embeds room for {len(inputs_q)}")
        inputs_q[: len(q)] = q
        dev.write("sn_app_inputs", q.astype("<i2").tobytes())
    sched = list(fb.schedule)
    if schedule is not None:
        sched = list(schedule)
        if len(sched) > fb.max_steps:
            raise firmware.FirmwareError(f"{len(sched)} steps but the image has room for {fb.max_steps} (max_steps)")
        firmware._check_schedule(sched, model.n_levels, len(inputs_q))
        dev.write("sn_app_schedule", b"".join(s.pack() for s in sched))
        dev.write("sn_app_n_steps", struct.pack("<H", len(sched)))
    halt, trap = e.symbols["__halt"].value, e.symbols.get("__sn_trap")
    mark = e.symbols["sn_app_mark"].value
    hook = e.symbols.get("sn_board_layer_done")
    if layers and hook is None:
        raise firmware.FirmwareError("per-layer counts need the layer hook (build with SN_LAYER_HOOK)")
    stops_at = [halt, mark] + ([trap.value] if trap else []) + ([hook.value] if layers else [])
    dev.clear_counters()
    stops, snaps = [], []
    while True:
        stop = dev.run(stops_at, max_cycles=max_cycles - dev.counters.cycles)
        if stop.reason == "error":
            raise FrSimError(f"{fb.elf.name}: {stop.message} (after {dev.counters.instructions} instructions)")
        if stop.reason == "budget":
            raise FrSimError(f"{fb.elf.name} did not reach __halt within {max_cycles} cycles")
        if stop.reason == "halt" or stop.pc == halt:
            break
        if trap is not None and stop.pc == trap.value:
            raise FrSimError(f"{fb.elf.name} trapped in __sn_unexpected_isr after {dev.counters.instructions} "
                             f"instructions")
        c = dev.counters
        stops.append((stop.pc, dev.regs[12], msp430.SimCounts(c.instructions, c.cycles)))
        snaps.append(c.as_dict())
    c = dev.counters
    res = e.symbols["sn_app_results"]
    header, records = firmware.parse_results(dev.read(res.value, res.size), model.output_len)
    firmware._attach_counts(records, stops, mark, hook.value if (layers and hook) else None, len(model.steps))
    # the counters of every inference: between its INFER and DONE marks
    marks = [(s, snap) for s, snap in zip(stops, snaps) if s[0] == mark]
    infer = []
    for k in range(len(records)):
        a, b = marks[3 * k + 1][1], marks[3 * k + 2][1]
        infer.append({key: b[key] - a[key] for key in a})
    exit_code = int.from_bytes(dev.read("__sn_exit_code", 2), "little")
    uart, stack_used = board_logs(dev)
    return FrSimRun(header, records, uart, c.instructions, c.cycles, exit_code, stack_used, inputs_q, sched,
                    counters=c.as_dict(), infer_counters=infer, energy_j=dev.energy_j(c))
