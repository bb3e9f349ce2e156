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

import numpy as np

from ..board import mclk_hz as board_mclk_hz
from . import firmware, msp430
from .firmware_model import MARK_DONE, MARK_INFER
from .fr5994sim import CYCLE_NOTE, Device, FrSimError, board_logs


@dataclass
class FrSimRun(firmware.SimRun):
    counters: dict = field(default_factory=dict)          # the whole run
    infer_counters: list = field(default_factory=list)    # per scheduled step: the inference's counters
    switch_counters: list = field(default_factory=list)   # per step: sn_set_level's (with the marker call)
    layer_counters: list = field(default_factory=list)    # per step (layers=True): counters of every layer
    infer_energy_j: list = field(default_factory=list)    # per step: the inference's energy
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
    infer, switch = [], []
    for k in range(len(records)):
        a, b = marks[3 * k + 1][1], marks[3 * k + 2][1]
        infer.append(_minus(b, a))
        switch.append(_minus(a, marks[3 * k][1]))
    per_layer = _layer_counters(stops, snaps, mark, hook.value, len(model.steps)) if layers else []
    exit_code = int.from_bytes(dev.read("__sn_exit_code", 2), "little")
    uart, stack_used = board_logs(dev)
    return FrSimRun(header, records, uart, c.instructions, c.cycles, exit_code, stack_used, inputs_q, sched,
                    counters=c.as_dict(), infer_counters=infer, switch_counters=switch, layer_counters=per_layer,
                    infer_energy_j=[dev.energy_j(ic) for ic in infer], energy_j=dev.energy_j(c))


def _minus(b: dict, a: dict) -> dict:
    return {key: b[key] - a[key] for key in a}


def _layer_counters(stops, snaps, mark_pc: int, hook_pc: int, n_layers: int) -> list[list[dict]]:
    """Per inference, the full counters of every layer: from its INFER mark to the first layer hook, then
    hook to hook (the order firmware._attach_counts checks)."""
    out, cur, prev = [], None, None
    for (pc, what, _), snap in zip(stops, snaps):
        if pc == mark_pc and what == MARK_INFER:
            cur, prev = [], snap
        elif pc == hook_pc and cur is not None:
            cur.append(_minus(snap, prev))
            prev = snap
        elif pc == mark_pc and what == MARK_DONE and cur is not None:
            out.append(cur if len(cur) == n_layers else [])
            cur = None
    return out


def run_kernel_harness(fb, cases, *, device: Device | None = None, max_cycles: int = 10 ** 9) -> list:
    """firmware.run_kernel_harness on our simulator (either image): one KernelRun per case and level
    0..L, with the core counts (instructions, cpu_cycles: no FRAM wait states) of the sn_spmv call
    between its two kh_mark() stops; KernelRun.counters_full holds all counters of that call."""
    dev = device or Device()
    dev.load(fb.elf)
    e = dev.elf
    halt, mark, trap = e.symbols["__halt"].value, e.symbols["kh_mark"].value, e.symbols.get("__sn_trap")
    stops_at = [halt, mark] + ([trap.value] if trap else [])
    dev.clear_counters()
    marks = []
    while True:
        stop = dev.run(stops_at, max_cycles=max_cycles - dev.counters.cycles)
        if stop.reason in ("error", "budget") or (trap is not None and stop.pc == trap.value):
            raise FrSimError(f"kernel harness {fb.elf.name} stopped ({stop.reason}) at PC 0x{stop.pc:04X}: "
                             f"{stop.message or 'trap or cycle budget'}")
        if stop.reason == "halt" or stop.pc == halt:
            break
        marks.append(dev.counters.as_dict())
    n_calls = sum(c.enc.n_levels + 1 for c in cases)
    if len(marks) != 2 * n_calls:
        raise FrSimError(f"kernel harness: {len(marks)} marker stops, expected {2 * n_calls}")
    accs = np.frombuffer(dev.read("kh_out"), "<i4")
    runs, k, off = [], 0, 0
    for c in cases:
        for lv in range(c.enc.n_levels + 1):
            d = _minus(marks[2 * k + 1], marks[2 * k])
            r = firmware.KernelRun(c.name, c.enc.format, lv, accs[off:off + c.out_len].astype(np.int32),
                                   msp430.SimCounts(d["instructions"], d["cpu_cycles"]))
            r.counters_full = d
            runs.append(r)
            k += 1
            off += c.out_len
    return runs


def format_levels(run: FrSimRun, energy_per_level: dict[int, float] | None = None,
                  mclk_hz: float | None = None) -> str:
    """Per level (mean over its inferences): cycles, instructions, time and energy at the clock, FRAM
    reads/writes, cache hit rate, DMA transfers; all simulated."""
    mclk_hz = mclk_hz or board_mclk_hz()
    by: dict[int, list[dict]] = {}
    for r, c in zip(run.records, run.infer_counters):
        by.setdefault(r.level, []).append(c)
    head = (f"{'level':>5} {'cycles':>12} {'instructions':>13} {'ms':>8} {'uJ':>8} {'FRAM rd':>11} {'FRAM wr':>8} "
            f"{'cache hit':>9} {'DMA xfers':>9}")
    lines = [head]
    for lv in sorted(by):
        cs = by[lv]

        def mean(key, cs=cs):
            return sum(c[key] for c in cs) / len(cs)
        hit = mean("cache_hits") / max(mean("fram_reads"), 1)
        uj = energy_per_level[lv] * 1e6 if energy_per_level else float("nan")
        lines.append(f"{lv:>5} {mean('cycles'):>12,.0f} {mean('instructions'):>13,.0f} "
                     f"{mean('cycles') / mclk_hz * 1e3:>8.2f} {uj:>8.1f} {mean('fram_reads'):>11,.0f} "
                     f"{mean('fram_writes'):>8,.0f} {hit:>9.1%} {mean('dma_transfers'):>9,.0f}")
    return "\n".join(lines)


def add_arguments(ap) -> None:
    """`sparsenest sim`'s options (the command runs run())."""
    from .. import cli_args as arg
    ap.add_argument("model_dir", help="a build compiled with --target msp430fr5994")
    ap.add_argument("--image", choices=("fr5994", "sim"), default="fr5994",
                    help="fr5994: the chip image; sim: the 64 KB mspdebug image")
    ap.add_argument("--inputs", type=arg.count, default=2, help="test images embedded")
    ap.add_argument("--layers", action="store_true", help="also the cycles of every layer")


def run(args) -> int:
    """sparsenest sim MODEL_DIR: build the chip image (default) of a compiled model, run it in our
    simulator, compare with the golden model, print the per-level figures."""
    import sys
    import tempfile
    from pathlib import Path
    try:
        model = firmware.load_model_dir(args.model_dir)
        with tempfile.TemporaryDirectory(prefix="sn-frsim-") as tmp:
            fb = firmware.build(model.path, Path(tmp), image=args.image, n_inputs=args.inputs)
            dev = Device()
            sim_run = simulate(fb, layers=args.layers, device=dev)
            rep = firmware.compare_golden(fb, sim_run)
    except (firmware.FirmwareError, msp430.BuildError, msp430.ToolchainError, FrSimError) as e:
        from ..cli_args import one_line
        print(f"sparsenest sim: error: {one_line(e)}", file=sys.stderr)
        return 1
    energy: dict[int, list[float]] = {}
    for r, c in zip(sim_run.records, sim_run.infer_counters):
        energy.setdefault(r.level, []).append(dev.energy_j(c))
    print(f"{model.path.name}: {args.image} image in our MSP430FR5994 simulator, {len(sim_run.records)} steps, "
          f"{'bit-identical to the golden model' if rep.ok else 'MISMATCH with the golden model'}")
    print(format_levels(sim_run, {lv: sum(v) / len(v) for lv, v in energy.items()}, dev.platform.mclk_hz))
    if args.layers:
        print(firmware.format_layers(sim_run, fb.model).replace("cycles*", "cycles"))
    print(f"({CYCLE_NOTE})")
    return 0 if rep.ok else 1


def main(argv=None) -> int:
    from ..cli import run_command
    return run_command("sim", argv)


if __name__ == "__main__":
    raise SystemExit(main())
