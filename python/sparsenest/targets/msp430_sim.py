"""mspdebug's simulator: run an image to __halt (or a breakpoint), read counters and symbols."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from .msp430_elf import ElfFile, _image_of, read_elf
from .msp430_tools import CYCLE_NOTE, SimError, find_mspdebug, mspdebug_image, mspdebug_path

@dataclass(frozen=True)
class SimCounts:
    instructions: int
    cycles: int          # MCLK as counted by mspdebug 0.22: see CYCLE_NOTE


@dataclass
class SimResult:
    exit_code: int                       # main()'s return value (uint16)
    instructions: int                    # from reset to __halt, exact
    cycles: int                          # MCLK cycles as mspdebug 0.22 counts them: over-counts
    outputs: dict[str, bytes]
    marks: dict[str, SimCounts | None]   # counts on first arrival at each mark (None: not reached)
    stack_used: int | None               # high-water mark in bytes (sim image only)
    uart: str                            # what the firmware sent through sn_uart_* (sim image)
    log: str                             # mspdebug's output
    cycles_exact: bool = False
    cycle_note: str = CYCLE_NOTE

    def between(self, start: str, end: str | None = None) -> SimCounts:
        """Counts from mark `start` to mark `end` (default: the halt)."""
        a = self.marks[start]
        b = self.marks[end] if end else SimCounts(self.instructions, self.cycles)
        if a is None or b is None:
            raise SimError(f"mark {start if a is None else end} was not reached")
        return SimCounts(b.instructions - a.instructions, b.cycles - a.cycles)


_PC_RE = re.compile(r"\(\s*PC:\s*([0-9a-fA-F]+)\)")
_INFO_RE = re.compile(r"Instruction count:\s*(\d+)\s*\nMCLK:\s*(\d+)")


def _resolve(elf: ElfFile, target, size: int | None = None) -> tuple[int, int | None, str]:
    """symbol name / address / (name-or-address, size) -> (address, size, description)."""
    if isinstance(target, tuple):
        where, size = target
        addr, sym_size, desc = _resolve(elf, where)
        return addr, size, desc
    if isinstance(target, int):
        return target, size, f"0x{target:04X}"
    sym = elf.symbols.get(target)
    if sym is None:
        raise SimError(f"symbol {target!r} is not in {elf.path.name} (static, optimised away, or "
                       f"misspelt?)")
    return sym.value, (size if size is not None else sym.size), target


def _section_of(elf: ElfFile, addr: int) -> str | None:
    for s in elf.sections:
        if s.alloc and s.size and s.addr <= addr < s.addr + s.size:
            return s.name
    return None


def simulate(elf: str | os.PathLike, *, outputs: Mapping[str, object] | Sequence[str] = (),
             inputs: Mapping[object, bytes] | None = None, marks: Sequence[str] = (),
             timeout_s: float = 30.0, mspdebug: str | None = None) -> SimResult:
    """Run a "sim" image in mspdebug's simulator from reset to __halt.

    outputs: {key: symbol | address | (symbol-or-address, size)} (or a list of symbol names) saved
      with save_raw after the halt.
    inputs: {symbol | address: bytes} written with load_raw after loading and before running; the
      target must not be in .data/.bss (start-up overwrites those): use SN_NOINIT/SN_PERSISTENT.
    marks: function symbols; the counts on the first arrival at each are in SimResult.marks.
    Raises SimError on a timeout, a trap (__sn_unexpected_isr) or an mspdebug failure, and
    ToolchainError when mspdebug is missing."""
    tool = mspdebug or find_mspdebug()
    e = read_elf(elf)
    if _image_of(e) != "sim":
        raise SimError(f"{Path(elf).name} was built for the chip (image='fr5994'): its multiplier is at "
                       f"0x04C0 and it writes PM5CTL0 at 0x0130, the simulator's multiplier. Build it "
                       f"with image='sim' to simulate.")
    halt = e.symbols.get("__halt")
    trap = e.symbols.get("__sn_trap")
    if halt is None:
        raise SimError(f"{Path(elf).name} has no __halt symbol: not built with the board start-up")
    if isinstance(outputs, Mapping):
        out_specs = dict(outputs)
    else:
        out_specs = {name: name for name in outputs}
    with tempfile.TemporaryDirectory(prefix="sn-sim-") as tmp:
        tmp = Path(tmp)
        cmds = ["simio add tracer tr", "simio add hwmult mpy", f"prog {mspdebug_image(elf, tmp)}"]
        for i, (target, blob) in enumerate((inputs or {}).items()):
            addr, size, desc = _resolve(e, target)
            sec = _section_of(e, addr)
            if sec in (".data", ".bss"):
                raise SimError(f"input {desc} is in {sec}, which start-up overwrites before main(): "
                               f"declare it SN_NOINIT or SN_PERSISTENT (sn_board.h)")
            if size and len(blob) > size:
                raise SimError(f"input for {desc} is {len(blob)} bytes but the symbol has {size}")
            f = tmp / f"in{i}.bin"
            f.write_bytes(bytes(blob))
            cmds.append(f"load_raw {mspdebug_path(f)} 0x{addr:x}")
        cmds.append(f"setbreak 0x{halt.value:x} 0")
        if trap is not None:
            cmds.append(f"setbreak 0x{trap.value:x} 1")
        for m in marks:
            addr, _, _ = _resolve(e, m)
            cmds += [f"setbreak 0x{addr:x} 2", "run", "simio info tr", "delbreak 2"]
        cmds += ["run", "simio info tr"]
        saves = {}
        for key, spec in out_specs.items():
            addr, size, desc = _resolve(e, spec)
            if not size:
                raise SimError(f"output {key!r}: size of {desc} unknown; pass (symbol, size)")
            f = tmp / f"out_{len(saves)}.bin"
            saves[key] = f
            cmds.append(f"save_raw 0x{addr:x} {size} {mspdebug_path(f)}")
        extra = {}
        for sym in ("__sn_exit_code", "__sn_uart_log_len", "__sn_uart_log"):
            if sym in e.symbols and e.symbols[sym].size:
                f = tmp / f"{sym}.bin"
                extra[sym] = f
                cmds.append(f"save_raw 0x{e.symbols[sym].value:x} {e.symbols[sym].size} {mspdebug_path(f)}")
        lim, top = e.symbols.get("__stack_limit"), e.symbols.get("__stack_top")
        if lim and top and top.value > lim.value:
            extra["stack"] = tmp / "stack.bin"
            cmds.append(f"save_raw 0x{lim.value:x} {top.value - lim.value} {mspdebug_path(extra['stack'])}")
        try:
            proc = subprocess.run([tool, "-n", "-q", "sim", *cmds], capture_output=True, text=True,
                                  timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise SimError(f"{Path(elf).name} did not reach __halt within {timeout_s:g} s in the simulator "
                           f"(~20 M instructions/s): an endless loop, or raise timeout_s") from exc
        log = proc.stdout + proc.stderr
        if proc.returncode != 0:
            raise SimError(f"mspdebug failed (exit {proc.returncode}) on {Path(elf).name}:\n{log[-3000:]}")
        pcs = [int(p, 16) for p in _PC_RE.findall(log)]
        infos = [SimCounts(int(a), int(b)) for a, b in _INFO_RE.findall(log)]
        if not pcs or len(infos) != len(marks) + 1:
            raise SimError(f"unexpected mspdebug output:\n{log[-3000:]}")
        if trap is not None and pcs[-1] == trap.value:
            raise SimError(f"{Path(elf).name} trapped in __sn_unexpected_isr (an interrupt without a "
                           f"handler) after {infos[-1].instructions} instructions")
        mark_counts: dict[str, SimCounts | None] = {}
        for i, m in enumerate(marks):
            addr, _, _ = _resolve(e, m)
            mark_counts[m] = infos[i] if pcs[i] == addr else None
        outs = {k: f.read_bytes() for k, f in saves.items()}
        exit_code = int.from_bytes(extra["__sn_exit_code"].read_bytes(), "little") if "__sn_exit_code" in extra else 0
        uart = ""
        if "__sn_uart_log" in extra and "__sn_uart_log_len" in extra:
            n = int.from_bytes(extra["__sn_uart_log_len"].read_bytes(), "little")
            uart = extra["__sn_uart_log"].read_bytes()[:n].decode("latin-1")
        stack_used = None
        if "stack" in extra:
            blob = extra["stack"].read_bytes()
            untouched = 0
            while untouched + 1 < len(blob) and blob[untouched] == 0xA5 and blob[untouched + 1] == 0xA5:
                untouched += 2
            stack_used = len(blob) - untouched
    final = infos[-1]
    return SimResult(exit_code, final.instructions, final.cycles, outs, mark_counts, stack_used, uart, log)


