"""Power cuts on the host board against an intermittent build: cut power after a chosen number of
FRAM bytes, reboot (SRAM wiped, sn_init), resume as the firmware's start-up does, and compare the
logits with an uninterrupted run.

The host board writes FRAM in whole 16-bit words (a cut keeps the words that fit the budget), so
the distinct cut points of an inference that writes T bytes are 0, 2, ..., T - 2: `all_cut_points`.
`device_cut` does the same in our FR5994 simulator at a cycle: the firmware image's start-up code
resumes the interrupted inference.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from .firmware_model import MARK_DONE, MARK_INFER
from .host import SN_ERR_POWER, SN_OK, HostSim, HostSimError


@dataclass
class CutReport:
    level: int
    bytes_per_inference: int          # FRAM bytes an uninterrupted intermittent inference writes
    cuts: int = 0                     # runs with a power failure
    mismatches: list[int] = field(default_factory=list)   # cut points whose logits differed
    reboots: int = 0

    @property
    def ok(self) -> bool:
        return not self.mismatches


def run_to_completion(sim: HostSim, x: np.ndarray, budgets: list[int] = (), max_boots: int = 1000,
                      in_place: bool = False) -> tuple[np.ndarray, int]:
    """One inference of x as a battery-free device runs it: at every boot, resume the pending
    inference or start this one (in_place: sampled into the input's home, HostSim.infer_start); power
    fails after budgets[k] FRAM bytes in boot k (no failure once the list is used up). Returns
    (logits, reboots)."""
    started = False
    budgets = list(budgets)
    for boot in range(max_boots):
        if boot:
            sim.reboot()
        if budgets:
            sim.power_fail_after(budgets.pop(0))
        if not started or not sim.infer_pending():
            if started and (out := sim.infer_done()) is not None:
                return out, boot
            rc = sim.infer_start(x, in_place)
            if rc == SN_ERR_POWER:
                continue
            if rc != SN_OK:
                raise HostSimError(f"sn_infer_start returned {rc}")
            started = True
        rc = sim.infer_resume()
        if rc == SN_OK:
            out = sim.infer_done()
            if out is None:
                raise HostSimError("sn_infer_resume returned SN_OK but the inference is not done")
            return out, boot
        if rc != SN_ERR_POWER:
            raise HostSimError(f"sn_infer_resume returned {rc}")
    raise HostSimError(f"no completion in {max_boots} boots")


def bytes_per_inference(sim: HostSim, x: np.ndarray, in_place: bool = False) -> tuple[np.ndarray, int]:
    """Logits and FRAM bytes written of one uninterrupted start + resume."""
    sim.reset_counters()
    out, _ = run_to_completion(sim, x, in_place=in_place)
    return out, sim.counters()["fram_bytes_written"]


def all_cut_points(total: int) -> list[int]:
    return list(range(0, total, 2))


def sweep(sim: HostSim, x: np.ndarray, level: int, cut_points=None, reference: np.ndarray | None = None,
          in_place: bool = False) -> CutReport:
    """Power fails once, after each number of bytes in cut_points (default: every possible one) of
    one inference at `level`; after reboot + resume the logits must equal `reference` (default: the
    uninterrupted run). in_place: the input sampled into its home (run_to_completion)."""
    sim.power_fail_after(-1)
    sim.reboot()
    if sim.set_level(level) != SN_OK:
        raise HostSimError(f"could not switch to level {level}")
    ref, total = bytes_per_inference(sim, x, in_place)
    if reference is not None and not np.array_equal(ref, reference):
        raise HostSimError(f"level {level}: the uninterrupted run differs from the reference")
    rep = CutReport(level, total)
    for n in all_cut_points(total) if cut_points is None else cut_points:
        out, boots = run_to_completion(sim, x, [int(n)], in_place=in_place)
        if not boots:
            raise HostSimError(f"cut after {n} of {total} bytes: power never failed")
        rep.cuts += 1
        rep.reboots += boots
        if not np.array_equal(out, ref):
            rep.mismatches.append(int(n))
    return rep


# ------------------------------------------------------------------------------ device simulator

def device_marks(fb) -> list[tuple[int, int, int]]:
    """(mark, cycle, DMA transfers so far) of every sn_app_mark in an uninterrupted run of the firmware
    image in our FR5994 simulator (SN_APP_MARK_SWITCH = 1, _INFER = 2, _DONE = 3 per scheduled step)."""
    from .fr5994sim import Device
    dev = Device()
    dev.load(fb.elf)
    halt = dev.elf.symbols["__halt"].value
    marks = []
    while True:
        st = dev.run(["__halt", "sn_app_mark"])
        if st.reason != "break" or st.pc == halt:
            return marks
        c = dev.counters
        marks.append((int(dev.regs[12]), int(c.cycles), int(c.dma_transfers)))


def at_mark(stop, pc: int) -> bool:
    """The run stopped at `pc`: at its breakpoint, or out of budget exactly there (the next run would
    then start on it, and the simulator does not break on the first instruction of a run)."""
    return stop.reason in ("break", "budget") and stop.pc == pc


def progress_changes(fb, step: int = 0, poll_cycles: int = 64) -> list[dict]:
    """Run a firmware image of an intermittent build to step `step`'s inference and poll the progress
    record every poll_cycles until its DONE mark: one entry per change of the units-committed word
    (from sn_infer_start's zero to the last commit) with "done", "cycle" (the poll after the change,
    so the commit lies in (cycle - poll_cycles, cycle]), "energy_j" since the INFER mark and the DMA
    transfers so far; a last entry (done None) at the DONE mark.
    Units committed between two polls appear once, with the higher count."""
    from .fr5994sim import Device, FrSimError
    dev = Device()
    dev.load(fb.elf)
    mark, progress = dev.elf.symbols["sn_app_mark"].value, dev.elf.symbols["sn_progress"].value
    infers = 0
    while infers <= step:
        stop = dev.run(["sn_app_mark", "__halt"])
        if stop.reason != "break" or stop.pc != mark:
            raise FrSimError(f"{fb.elf}: no inference {step} ({stop.reason})")
        infers += dev.regs[12] == MARK_INFER
    e0, out, seen = dev.energy_j(), [], None
    while True:
        stop = dev.run(["sn_app_mark"], max_cycles=poll_cycles)
        level_word, done = struct.unpack("<HH", dev.read(progress, 4))
        if seen is None:        # the previous inference's record until sn_infer_start clears it
            seen = -1 if level_word == 0 or done == 0 else None
        if seen is not None and level_word and done != seen:
            c = dev.counters
            out.append({"done": done, "cycle": int(c.cycles), "energy_j": dev.energy_j() - e0,
                        "dma_transfers": int(c.dma_transfers)})
            seen = done
        if at_mark(stop, mark):
            break
        if stop.reason != "budget":
            raise FrSimError(f"{fb.elf}: {stop.reason} during inference {step}: {stop.message}")
    if dev.regs[12] != MARK_DONE:
        raise FrSimError(f"{fb.elf}: inference {step} did not end at its DONE mark")
    c = dev.counters
    return out + [{"done": None, "cycle": int(c.cycles), "energy_j": dev.energy_j() - e0,
                   "dma_transfers": int(c.dma_transfers)}]


def dma_blocks(fb, limit: int = 16, symbol: str = "sn_far_read") -> list[tuple[int, int]]:
    """[first, end) cycles of the first `limit` DMA blocks of an uninterrupted run (the CPU held while
    the block moves): from each entry to `symbol` (the board's DMA copy), one instruction at a time
    until the block starts, then one transfer at a time until it ends. Cuts in these windows land
    inside a block (our simulator moves a block one transfer per step)."""
    return _held_windows(fb, [symbol], lambda dev: dev.dma_busy, limit, "DMA block")


#: The DSPLib functions whose simulator shims call the LEA model (sim/dsplib_shim.c)
LEA_FUNCTIONS = ("msp_mac_q15", "msp_fir_q15", "msp_add_q15", "msp_offset_q15")


def lea_calls(fb, limit: int = 16) -> list[tuple[int, int]]:
    """[first, end) cycles of the first `limit` LEA calls of an uninterrupted run: our simulator holds
    the CPU for a call's modelled cycles and a run's cycle budget can end inside them, so cuts in these
    windows fall in the middle of a LEA operation."""
    return _held_windows(fb, LEA_FUNCTIONS, lambda dev: dev.lea_busy, limit, "LEA call",
                         rest=lambda dev: dev.lea_hold_cycles)


def _held_windows(fb, symbols, busy, limit: int, what: str, rest=None) -> list[tuple[int, int]]:
    """From each entry to one of `symbols`, one instruction at a time until busy(dev) (the CPU held),
    then one step at a time until it is released (or at once, when rest(dev) says how many cycles the
    hold has left): the [first, end) cycles, up to `limit` of them."""
    from .fr5994sim import Device, FrSimError
    dev = Device()
    dev.load(fb.elf)
    out: list[tuple[int, int]] = []
    entries = [s for s in symbols if s in dev.elf.symbols]
    if not entries:                     # the image has none of them
        return out
    while len(out) < limit:
        st = dev.run([*entries, "__halt"])
        if st.reason != "break" or st.pc == dev.elf.symbols["__halt"].value:
            return out
        for _ in range(400):            # the register set-up before the request
            st = dev.run(max_cycles=1)
            if busy(dev) or st.reason != "budget":
                break
        if not busy(dev):
            raise FrSimError(f"{fb.elf}: {what}: no hold after the entry at 0x{st.pc:04X}")
        first = int(dev.counters.cycles)
        if rest is not None:
            dev.run(max_cycles=rest(dev))
        while busy(dev):
            dev.run(max_cycles=1)
        out.append((first, int(dev.counters.cycles)))
    return out


def device_cut_sweep(fb, meta: dict, cut_cycles, seed: int = 1) -> list[dict]:
    """device_cut at every cycle of cut_cycles, in one pass: one device runs the image without
    interruption and stops at each cut; a second one takes its memory there (what a power cut keeps:
    the FRAM; power_off then scrambles SRAM and resets registers and peripherals), reboots and runs to
    the end. The same result as device_cut per cut, at the cost of the rest of the run instead of all
    of it. Per cut also "dma_transfers", "in_switch", "in_dma_block" (inside a DMA block) and
    "in_lea_call" (inside a LEA operation): where the uninterrupted run was."""
    from .fr5994sim import Device, FrSimError
    main, probe = Device(), Device()
    main.load(fb.elf)
    probe.load(fb.elf)
    e = main.elf
    mark = e.symbols["sn_app_mark"].value
    out, last_mark = [], 0
    for k, cut in enumerate(sorted(cut_cycles)):
        while main.counters.cycles < cut:
            st = main.run(["sn_app_mark", "__halt"], max_cycles=cut - main.counters.cycles)
            if st.reason == "error":
                raise FrSimError(st.message)
            if at_mark(st, mark):
                last_mark = int(main.regs[12])
            elif st.reason != "budget":
                raise FrSimError(f"the image halted before cycle {cut}")
        probe.restore(main.snapshot())
        r = _reboot_and_finish(probe, meta, seed + k)
        r.update(cycle=int(cut), dma_transfers=int(main.counters.dma_transfers), in_switch=last_mark == 1,
                 in_dma_block=main.dma_busy, in_lea_call=main.lea_busy)
        out.append(r)
    return out


def _reboot_and_finish(dev, meta: dict, seed: int) -> dict:
    """Power the device off (SRAM, registers, peripherals lost), reboot, run to the end: the resumed
    inference's logits (None when none was pending) and the recorded logits of the one-step schedule."""
    from . import firmware
    from .fr5994sim import FrSimError
    e = dev.elf
    dev.power_off(seed)
    st = dev.run(["sn_app_mark", "__halt"])
    state, done = struct.unpack("<HH", dev.read("sn_progress", 4))
    resumed = None
    if state and done == meta["intermittent"]["units"]:
        t = meta["memory"]["tensors"][meta["layers"][meta["steps"][-1]]["output"]]  # the graph output
        addr = e.symbols["sn_arena_fram"].value + t["offset"]
        resumed = np.frombuffer(dev.read(addr, 2 * meta["output_len"]), "<i2").copy()
    st = dev.run(["__halt"])
    if st.reason == "error":
        raise FrSimError(st.message)
    res = e.symbols["sn_app_results"]
    _, records = firmware.parse_results(dev.read(res.value, res.size), meta["output_len"])
    return {"resumed": resumed, "resumed_level": state & 0xFF, "recorded": np.asarray(records[0].out)}


def device_cut(fb, meta: dict, cut_cycle: int, seed: int = 1) -> dict:
    """Run a one-step firmware image of an intermittent build in our FR5994 simulator, cut the supply
    at cut_cycle (SRAM, registers and peripherals lost, FRAM kept), reboot. Returns "resumed": the
    logits of the inference the start-up code finished (read from FRAM at the first app mark after
    the reboot; None when no inference was pending), and "recorded": the step's logits at the end."""
    from .fr5994sim import Device, FrSimError
    dev = Device()
    dev.load(fb.elf)
    st = dev.run(["__halt"], max_cycles=cut_cycle)
    if st.reason != "budget":
        raise FrSimError(f"the image halted before cycle {cut_cycle}")
    return _reboot_and_finish(dev, meta, seed)
