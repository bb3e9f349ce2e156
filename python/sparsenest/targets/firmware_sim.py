"""Running model firmware in mspdebug's simulator: every scheduled step with instruction and cycle
counts (per layer when asked), and the bit-exact comparison with the golden model."""
from __future__ import annotations

import os
import re
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from . import msp430
from .firmware_build import FirmwareBuild, _check_schedule, load_build
from .firmware_model import (APP_MAGIC, HEADER_FMT, MARK_DONE, MARK_INFER, MARK_SWITCH, RECORD_HEAD_FMT,
                             FirmwareError, GoldenMismatchError, Step, level_for_energy, load_qmodel,
                             quantize_inputs)

@dataclass
class StepRecord:
    step: int
    requested: int            # the step's level field (0: energy)
    level: int                # level the inference ran at
    input: int
    rc_switch: int
    rc_infer: int
    pred: int
    energy: int               # ENERGY_NONE for fixed-level steps
    switch_ticks: int
    infer_ticks: int
    out: np.ndarray           # int16 [output_len]
    switch: msp430.SimCounts | None = None   # sn_set_level (with the marker call)
    infer: msp430.SimCounts | None = None    # sn_infer, input copy to output copy
    layers: list[msp430.SimCounts] | None = None  # per executed layer (layer 0 includes the input copy)


@dataclass
class SimRun:
    header: dict
    records: list[StepRecord]
    uart: str
    instructions: int
    cycles: int
    exit_code: int
    stack_used: int | None
    inputs_q: np.ndarray
    schedule: list[Step]
    cycle_note: str = msp430.CYCLE_NOTE

    def per_level(self) -> dict[int, dict]:
        """Mean instructions and cycles per inference at each level (steps with counts)."""
        out: dict[int, dict] = {}
        for r in self.records:
            if r.infer is None:
                continue
            d = out.setdefault(r.level, {"n": 0, "instructions": 0, "cycles": 0})
            d["n"] += 1
            d["instructions"] += r.infer.instructions
            d["cycles"] += r.infer.cycles
        for d in out.values():
            d["instructions"] /= d["n"]
            d["cycles"] /= d["n"]
        return dict(sorted(out.items()))


_STOP_RE = re.compile(r"\(\s*PC:\s*([0-9a-fA-F]+)\).*?\(R12:\s*([0-9a-fA-F]+)\).*?"
                      r"Instruction count:\s*(\d+)\s*\nMCLK:\s*(\d+)", re.S)


def _sym(e: msp430.ElfFile, name: str) -> msp430.ElfSymbol:
    s = e.symbols.get(name)
    if s is None:
        raise FirmwareError(f"{e.path.name} has no symbol {name}: not a sparsenest application image")
    return s


def simulate(fb: FirmwareBuild | str | os.PathLike, *, inputs=None, schedule: Sequence[Step] | None = None,
             layers: bool = False, timeout_s: float = 300.0, mspdebug: str | None = None) -> SimRun:
    """Run a simulator image (image="sim") from reset to __halt in mspdebug.

    inputs: replace the embedded inputs (float or int16, at most as many as embedded) with load_raw;
    schedule: replace the schedule (at most max_steps steps). layers: also count every layer
    (one breakpoint stop per layer: slower). Returns the parsed results buffer with the
    instruction/cycle counts of every switch and inference."""
    if not isinstance(fb, FirmwareBuild):
        fb = load_build(fb)
    tool = mspdebug or msp430.find_mspdebug()
    e = msp430.read_elf(fb.elf)
    if msp430._image_of(e) != "sim":
        raise FirmwareError(f"{fb.elf} is the chip image; build with image='sim' to simulate")
    model = fb.model
    inputs_q = fb.inputs_q.copy()
    loads: dict[int, bytes] = {}
    if inputs is not None:
        q = quantize_inputs(model, inputs)
        if len(q) > len(inputs_q):
            raise FirmwareError(f"{len(q)} inputs but the image embeds room for {len(inputs_q)}")
        inputs_q[: len(q)] = q
        loads[_sym(e, "sn_app_inputs").value] = q.astype("<i2").tobytes()
    sched = list(fb.schedule)
    if schedule is not None:
        sched = list(schedule)
        if len(sched) > fb.max_steps:
            raise FirmwareError(f"{len(sched)} steps but the image has room for {fb.max_steps} (max_steps)")
        _check_schedule(sched, model.n_levels, len(inputs_q))
        loads[_sym(e, "sn_app_schedule").value] = b"".join(s.pack() for s in sched)
        loads[_sym(e, "sn_app_n_steps").value] = struct.pack("<H", len(sched))
    halt, trap = _sym(e, "__halt"), e.symbols.get("__sn_trap")
    mark = _sym(e, "sn_app_mark")
    hook = e.symbols.get("sn_board_layer_done")
    if layers and hook is None:
        raise FirmwareError("per-layer counts need the layer hook (build with SN_LAYER_HOOK)")
    n_layers = len(model.steps)
    stops = len(sched) * (3 + (n_layers if layers else 0)) + 2
    res = _sym(e, "sn_app_results")
    with tempfile.TemporaryDirectory(prefix="sn-fw-") as tmp:
        tmp = Path(tmp)
        cmds = ["simio add tracer tr", "simio add hwmult mpy", f"prog {msp430.mspdebug_image(fb.elf, tmp)}"]
        for i, (addr, blob) in enumerate(loads.items()):
            f = tmp / f"in{i}.bin"
            f.write_bytes(blob)
            cmds.append(f"load_raw {msp430.mspdebug_path(f)} 0x{addr:x}")
        cmds.append(f"setbreak 0x{halt.value:x} 0")
        if trap is not None:
            cmds.append(f"setbreak 0x{trap.value:x} 1")
        cmds.append(f"setbreak 0x{mark.value:x} 2")
        if layers:
            cmds.append(f"setbreak 0x{hook.value:x} 3")
        cmds += ["run", "simio info tr"] * stops
        saves = {"res": (res.value, res.size)}
        for name in ("__sn_exit_code", "__sn_uart_log_len", "__sn_uart_log"):
            s = e.symbols.get(name)
            if s is not None and s.size:
                saves[name] = (s.value, s.size)
        lim, top = e.symbols.get("__stack_limit"), e.symbols.get("__stack_top")
        if lim and top and top.value > lim.value:
            saves["stack"] = (lim.value, top.value - lim.value)
        for k, (addr, size) in saves.items():
            cmds.append(f"save_raw 0x{addr:x} {size} {msp430.mspdebug_path(tmp / (k + '.bin'))}")
        try:
            proc = subprocess.run([tool, "-n", "-q", "sim", *cmds], capture_output=True, text=True,
                                  timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise msp430.SimError(f"{fb.elf.name} did not finish within {timeout_s:g} s in the simulator "
                                  f"(~15-20 M instructions/s); raise timeout_s") from exc
        log = proc.stdout + proc.stderr
        if proc.returncode != 0:
            raise msp430.SimError(f"mspdebug failed (exit {proc.returncode}):\n{log[-3000:]}")
        blobs = {k: (tmp / (k + ".bin")).read_bytes() for k in saves}
    stops_seen = []
    for m in _STOP_RE.finditer(log):
        pc, r12, ins, cyc = int(m.group(1), 16), int(m.group(2), 16), int(m.group(3)), int(m.group(4))
        if trap is not None and pc == trap.value:
            raise msp430.SimError(f"{fb.elf.name} trapped in __sn_unexpected_isr after {ins} instructions")
        stops_seen.append((pc, r12, msp430.SimCounts(ins, cyc)))
        if pc == halt.value:
            break
    if not stops_seen or stops_seen[-1][0] != halt.value:
        raise msp430.SimError(f"{fb.elf.name} did not reach __halt after {len(stops_seen)} stops:\n{log[-2000:]}")
    final = stops_seen[-1][2]
    header, records = parse_results(blobs["res"], model.output_len)
    _attach_counts(records, stops_seen[:-1], mark.value, hook.value if (layers and hook) else None, n_layers)
    exit_code = int.from_bytes(blobs.get("__sn_exit_code", b"\0\0"), "little")
    uart = ""
    if "__sn_uart_log" in blobs:
        n = int.from_bytes(blobs.get("__sn_uart_log_len", b"\0\0"), "little")
        uart = blobs["__sn_uart_log"][:n].decode("latin-1")
    stack_used = None
    if "stack" in blobs:
        blob = blobs["stack"]
        k = 0
        while k + 1 < len(blob) and blob[k] == 0xA5 and blob[k + 1] == 0xA5:
            k += 2
        stack_used = len(blob) - k
    return SimRun(header, records, uart, final.instructions, final.cycles, exit_code, stack_used,
                  inputs_q, sched)


def parse_results(blob: bytes, out_len: int) -> tuple[dict, list[StepRecord]]:
    keys = ("magic", "version", "n_steps", "n_done", "status", "n_levels", "switching", "out_len",
            "record_bytes", "tick_hz")
    hdr = dict(zip(keys, struct.unpack_from(HEADER_FMT, blob, 0)))
    if hdr["magic"] != APP_MAGIC:
        raise FirmwareError(f"results buffer has no header (magic 0x{hdr['magic']:04x}): main() did not run")
    rec_bytes = struct.calcsize(RECORD_HEAD_FMT) + 2 * out_len
    if hdr["record_bytes"] != rec_bytes or hdr["out_len"] != out_len:
        raise FirmwareError(f"record layout mismatch: firmware {hdr['record_bytes']} bytes, expected {rec_bytes}")
    records = []
    off = struct.calcsize(HEADER_FMT)
    for _ in range(hdr["n_done"]):
        f = struct.unpack_from(RECORD_HEAD_FMT, blob, off)
        out = np.frombuffer(blob, "<i2", out_len, off + struct.calcsize(RECORD_HEAD_FMT)).astype(np.int16)
        records.append(StepRecord(f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[9], f[10], out.copy()))
        off += rec_bytes
    return hdr, records


def _attach_counts(records: list[StepRecord], stops, mark_pc: int, hook_pc: int | None, n_layers: int) -> None:
    """Stops come in order: mark(SWITCH), mark(INFER), [hook per layer], mark(DONE) per step."""
    it = iter(stops)
    for r in records:
        try:
            pc, what, c_sw = next(it)
            assert pc == mark_pc and what == MARK_SWITCH
            pc, what, c_in = next(it)
            assert pc == mark_pc and what == MARK_INFER
            layer_marks = []
            while True:
                pc, what, c = next(it)
                if hook_pc is not None and pc == hook_pc:
                    layer_marks.append(c)
                    continue
                assert pc == mark_pc and what == MARK_DONE
                c_done = c
                break
        except (StopIteration, AssertionError):
            raise FirmwareError(f"unexpected sequence of marker stops at step {r.step}") from None
        r.switch = _diff(c_in, c_sw)
        r.infer = _diff(c_done, c_in)
        if hook_pc is not None and len(layer_marks) == n_layers:
            prev, r.layers = c_in, []
            for c in layer_marks:
                r.layers.append(_diff(c, prev))
                prev = c


def _diff(b: msp430.SimCounts, a: msp430.SimCounts) -> msp430.SimCounts:
    return msp430.SimCounts(b.instructions - a.instructions, b.cycles - a.cycles)


# ----------------------------------------------------------------------------------------------
# Golden comparison

@dataclass
class GoldenReport:
    compared: int
    mismatches: list[str]

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def raise_on_mismatch(self) -> None:
        if self.mismatches:
            raise GoldenMismatchError(f"{len(self.mismatches)} of {self.compared} steps differ from the "
                                      f"golden model:\n  " + "\n  ".join(self.mismatches[:20]))


def expected_levels(schedule: Sequence[Step], n_levels: int, thresholds: Sequence[int]) -> list[int]:
    return [s.level if s.level else level_for_energy(s.energy, thresholds) for s in schedule]


def compare_golden(fb: FirmwareBuild, run: SimRun, qmodel=None) -> GoldenReport:
    """Every record's logits against golden.predict at the level it ran at, the level against the
    schedule (and energy policy), the return codes against SN_OK."""
    from ..compiler import golden
    qm = qmodel if qmodel is not None else load_qmodel(fb.model)
    want_levels = expected_levels(run.schedule, fb.model.n_levels, fb.thresholds)
    bad = []
    if run.header["n_done"] != len(run.schedule):
        bad.append(f"{run.header['n_done']} of {len(run.schedule)} steps recorded")
    cache: dict[tuple[int, int], np.ndarray] = {}
    for r in run.records:
        if r.rc_switch or r.rc_infer:
            bad.append(f"step {r.step}: return codes switch {r.rc_switch} infer {r.rc_infer}")
            continue
        if r.level != want_levels[r.step]:
            bad.append(f"step {r.step}: ran at level {r.level}, scheduled {want_levels[r.step]}")
        key = (r.input, r.level)
        if key not in cache:
            x = run.inputs_q[r.input:r.input + 1].reshape(1, *fb.model.meta["input_shape"])
            cache[key] = golden.predict(qm, x, r.level, quantized_input=True)[0]
        g = cache[key]
        if not np.array_equal(r.out, g):
            n = int((r.out != g).sum())
            bad.append(f"step {r.step} (input {r.input}, level {r.level}): {n} of {len(g)} outputs differ: "
                       f"firmware {r.out.tolist()} golden {g.tolist()}")
        elif r.pred != int(np.argmax(g)):
            bad.append(f"step {r.step}: argmax {r.pred} but golden {int(np.argmax(g))}")
    return GoldenReport(len(run.records), bad)
