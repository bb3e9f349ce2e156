"""Driver of sparsenest's own MSP430FR5994 simulator (the C core in boards/msp430fr5994/sim).

The core models the CPU (16-bit MSP430 instruction set, CPUXv2 cycle table), the FR5994 memory map
with upper FRAM, FRAM wait states and read cache, MPY32, DMA, the LEA port and power loss; see
boards/msp430fr5994/README.md ("Our simulator"). It runs both images: the chip image (``fr5994``:
MPY32 at 0x04C0, DMA far reads from upper FRAM) and mspdebug's simulator image (``sim``: the
multiplier at 0x0130), which is what makes the differential tests against mspdebug possible.

```python
dev = Device("build/fw/firmware.elf")           # builds libfr5994sim.so on first use (system gcc)
dev.write("sn_input", x.tobytes())
stop = dev.run(until="__halt")                  # or a cycle / instruction budget
y = dev.read("sn_output", 20); dev.counters.cycles; dev.energy_j()
r = simulate("fw.elf", inputs=..., outputs=..., marks=["sn_infer"])   # like msp430.simulate
outs = dev.batch([{"sn_input": x0}, {"sn_input": x1}], outputs={"y": ("sn_output", 20)})
```
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from . import msp430
from ..board import Platform, PlatformError, load_platform

SIM_DIR = msp430.BOARD_DIR / "sim"
CORE_SOURCES = ("cpu.c", "mem.c", "mpy32.c", "dma.c", "power.c")
#: linked when present (the LEA model is written on its own branch)
OPTIONAL_SOURCES = ("lea.c",)
CFLAGS = ("-std=gnu11", "-O3", "-ffp-contract=off", "-Wall", "-Wextra", "-fPIC", "-shared")

STOP_BUDGET, STOP_BREAK, STOP_HALT, STOP_ERROR = range(4)
STOP_NAMES = {STOP_BUDGET: "budget", STOP_BREAK: "break", STOP_HALT: "halt", STOP_ERROR: "error"}

CYCLE_NOTE = ("cycles from the CPUXv2 table of the FR5xx/FR6xx user's guide (SLAU367P) plus FRAM wait "
              "states (FRCTL0.NWAITS, read-cache misses), DMA and LEA hold time: simulated, never "
              "measured on a board")


class FrSimError(msp430.SimError):
    """The simulator stopped on something the program did (the message names PC and address), or the
    core could not be built/loaded."""


# ---------------------------------------------------------------------------------------------- build

def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sparsenest" / "fr5994sim"


def _sources() -> list[Path]:
    srcs = [SIM_DIR / n for n in CORE_SOURCES]
    srcs += [SIM_DIR / n for n in OPTIONAL_SOURCES if (SIM_DIR / n).exists()]
    return srcs


def library_path(build: bool = True) -> Path:
    """Path of libfr5994sim.so for the current sources (keyed by their hash and the flags), built with
    the system gcc when missing."""
    srcs = _sources()
    headers = sorted(SIM_DIR.glob("*.h"))
    h = hashlib.sha256(" ".join(CFLAGS).encode())
    for p in srcs + headers:
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    out = _cache_dir() / h.hexdigest()[:16] / "libfr5994sim.so"
    if out.exists() or not build:
        return out
    cc = os.environ.get("SPARSENEST_HOST_CC", "gcc")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=out.parent)
    os.close(fd)
    try:
        proc = subprocess.run([cc, *CFLAGS, "-I", str(SIM_DIR), "-o", tmp, *map(str, srcs)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise FrSimError(f"building the simulator core with {cc} failed:\n{proc.stderr[-3000:]}")
        os.replace(tmp, out)            # atomic: parallel test workers never see a half-written file
    except FileNotFoundError as e:
        raise FrSimError(f"building the simulator core needs a C compiler ({cc}): {e}") from e
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


class Counters(ctypes.Structure):
    """frsim_counters (sim.h), field for field."""
    _fields_ = [(n, ctypes.c_uint64) for n in (
        "instructions", "cycles", "cpu_cycles", "legacy_cycles", "wait_cycles", "dma_cycles", "lea_cycles",
        "fram_reads", "fram_writes", "cache_hits", "cache_misses", "sram_reads", "sram_writes",
        "dma_transfers", "lea_calls", "lea_ops", "mpy_ops", "resets", "lea_energy_fj")]

    def as_dict(self) -> dict[str, int]:
        return {n: int(getattr(self, n)) for n, _ in self._fields_}


_LIB: ctypes.CDLL | None = None


def load_library() -> ctypes.CDLL:
    global _LIB
    if _LIB is not None:
        return _LIB
    lib = ctypes.CDLL(str(library_path()))
    P, U32, U64, I = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint64, ctypes.c_int
    buf = ctypes.POINTER(ctypes.c_uint8)
    sigs = {
        "frsim_new": (P, []), "frsim_free": (None, [P]),
        "frsim_configure": (I, [P, U32, I, I, I, I, I]), "frsim_dma_timing": (I, [P, I, I]),
        "frsim_dma_busy": (I, [P]), "frsim_lea_busy": (I, [P]),
        "frsim_write_mem": (I, [P, U32, ctypes.c_char_p, U32]), "frsim_read_mem": (I, [P, U32, buf, U32]),
        "frsim_reset": (None, [P]), "frsim_power_off": (None, [P, U32]),
        "frsim_run": (I, [P, U64, U64]), "frsim_set_break": (None, [P, U32, I]),
        "frsim_message": (ctypes.c_char_p, [P]), "frsim_regs": (ctypes.POINTER(ctypes.c_uint16), [P]),
        "frsim_get_counters": (ctypes.POINTER(Counters), [P]),
        "frsim_forms": (ctypes.POINTER(U64), [P, ctypes.POINTER(I)]),
        "frsim_cycle_table": (ctypes.POINTER(ctypes.c_uint8), [P, I]),
        "frsim_enable_profile": (I, [P, I]), "frsim_get_profile": (ctypes.POINTER(U32), [P]),
        "frsim_uart": (ctypes.POINTER(ctypes.c_uint8), [P, ctypes.POINTER(U32)]),
        "frsim_clear_counters": (None, [P]),
        "frsim_snapshot": (None, [P, buf]), "frsim_restore": (None, [P, ctypes.c_char_p]),
    }
    for name, (res, args) in sigs.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    _LIB = lib
    return lib


MEM_SIZE = 0x44000


def lea_linked() -> bool:
    """True when the LEA model (lea.c) is part of the core."""
    return hasattr(load_library(), "sim_lea_set_costs")


# --------------------------------------------------------------------------------------------- device

@dataclass
class Stop:
    reason: str          # "halt" | "break" | "budget" | "error"
    pc: int
    message: str = ""


@dataclass(frozen=True)
class CacheGeometry:
    """The FRAM read cache (default: 2 ways x 2 sets x 8-byte lines, LRU; the platform TOML's
    clock.fram_cache_* keys)."""
    ways: int = 2
    sets: int = 2
    line_bytes: int = 8


def _platform_value(platform: Platform, key: str, default: float) -> float:
    try:
        return platform[key]
    except (KeyError, PlatformError):
        return default


class Device:
    """One simulated MSP430FR5994 with one ELF image loaded."""

    def __init__(self, elf: str | os.PathLike | None = None, *, platform: Platform | str | None = None,
                 cache: CacheGeometry | None = None, mpy_latency: int | None = None,
                 fram_write_waits: int = 0):
        self.lib = load_library()
        self.platform = platform if isinstance(platform, Platform) else load_platform(platform)
        p = self.platform
        self.cache = cache or CacheGeometry(int(_platform_value(p, "clock.fram_cache_ways", 2)),
                                            int(_platform_value(p, "clock.fram_cache_sets", 2)),
                                            int(p["clock.fram_cache_line_bytes"]))
        self.mpy_latency = int(_platform_value(p, "cpu.mpy32_latency_cycles", 3)) if mpy_latency is None \
            else mpy_latency
        self.fram_write_waits = fram_write_waits
        self._h = self.lib.frsim_new()
        if not self._h:
            raise FrSimError("out of memory creating the simulator")
        if self.lib.frsim_dma_timing(self._h, int(p["dma.sync_cycles"]), int(p["dma.cycles_per_transfer"])):
            raise FrSimError("invalid DMA timing in the platform file")
        self.elf: msp430.ElfFile | None = None
        self.image = "fr5994"
        self._configure(0x04C0)
        self._pristine: bytes | None = None
        if hasattr(self.lib, "sim_lea_set_costs"):
            self._set_lea_costs()
        if elf is not None:
            self.load(elf)

    def _set_lea_costs(self):
        """Hand the platform's [lea.*] constants to the LEA model (process-wide in lea.c)."""
        from ..compiler.lea_ref import LeaCosts, lea_costs

        class CCosts(ctypes.Structure):
            _fields_ = [(f, ctypes.c_double) for f in LeaCosts.__dataclass_fields__]

        k = lea_costs(self.platform)
        if self.lib.sim_lea_set_costs(ctypes.byref(CCosts(*k.as_tuple()))) != 0:
            raise FrSimError("the platform's LEA cost constants were refused (negative or not finite)")

    def _configure(self, mpy_base: int):
        c = self.cache
        if self.lib.frsim_configure(self._h, mpy_base, self.mpy_latency, c.ways, c.sets, c.line_bytes,
                                    self.fram_write_waits):
            raise FrSimError(f"invalid simulator configuration: multiplier at 0x{mpy_base:04X}, cache {c} "
                             f"(ways 1-8, sets 1-64, line a power of two 2-256 bytes)")

    def __del__(self):
        h, self._h = getattr(self, "_h", None), None
        if h:
            self.lib.frsim_free(h)

    # ---- image ----------------------------------------------------------------------------------
    def load(self, elf: str | os.PathLike | msp430.ElfFile) -> "Device":
        """Write every loadable segment of `elf` (programming the chip), then reset. The multiplier's
        address follows the image (`__sn_mpy_base`: 0x04C0 chip, 0x0130 mspdebug image)."""
        e = elf if isinstance(elf, msp430.ElfFile) else msp430.read_elf(elf)
        if e.machine != msp430.EM_MSP430:
            raise FrSimError(f"{e.path.name} is not an MSP430 ELF (machine {e.machine})")
        self.elf = e
        self.image = msp430._image_of(e)
        base = e.symbols.get("__sn_mpy_base")
        self._configure(base.value if base is not None else (0x0130 if self.image == "sim" else 0x04C0))
        for addr, blob in e.load_image().items():
            if self.lib.frsim_write_mem(self._h, addr, blob, len(blob)):
                raise FrSimError(f"{e.path.name}: segment at 0x{addr:05X} ({len(blob)} bytes) lies outside the "
                                 f"FR5994 memory map")
        self._pristine = self.snapshot()
        self.reset()
        return self

    def snapshot(self) -> bytes:
        buf = (ctypes.c_uint8 * MEM_SIZE)()
        self.lib.frsim_snapshot(self._h, buf)
        return bytes(buf)

    def restore(self, image: bytes | None = None):
        """Put the whole memory back (default: as just after `load`, i.e. freshly programmed)."""
        image = self._pristine if image is None else image
        if image is None or len(image) != MEM_SIZE:
            raise FrSimError("nothing to restore: load an ELF first")
        self.lib.frsim_restore(self._h, image)

    def reset(self):
        """Brown-out reset: registers and peripherals reset, PC from the reset vector; memory kept."""
        self.lib.frsim_reset(self._h)

    def power_off(self, seed: int = 1):
        """Supply below V_off: SRAM contents lost (pseudo-random), registers and peripherals reset, FRAM
        kept. The next `run` starts from the reset vector."""
        self.lib.frsim_power_off(self._h, seed & 0xFFFFFFFF)

    def clear_counters(self):
        self.lib.frsim_clear_counters(self._h)

    @property
    def dma_busy(self) -> bool:
        """The last run stopped inside a DMA block (the next run finishes it first)."""
        return bool(self.lib.frsim_dma_busy(self._h))

    @property
    def lea_busy(self) -> bool:
        """The last run stopped inside a LEA call (the CPU held; the next run spends the rest first)."""
        return self.lea_hold_cycles > 0

    @property
    def lea_hold_cycles(self) -> int:
        """Cycles the LEA call the last run stopped in still holds the CPU (0: none)."""
        return int(self.lib.frsim_lea_busy(self._h))

    # ---- memory -------------------------------------------------------------------------------
    def address(self, target) -> tuple[int, int | None]:
        """symbol name | address | (symbol-or-address, size) -> (address, size or None)."""
        if self.elf is None and not isinstance(target, int):
            raise FrSimError("no ELF loaded: use addresses")
        if self.elf is None:
            return target, None
        addr, size, _ = msp430._resolve(self.elf, target)
        return addr, size

    def write(self, target, data: bytes):
        addr, size = self.address(target)
        data = bytes(data)
        if size and len(data) > size:
            raise FrSimError(f"{len(data)} bytes for {target!r}, which has {size}")
        if self.lib.frsim_write_mem(self._h, addr, data, len(data)):
            raise FrSimError(f"write of {len(data)} bytes at 0x{addr:05X} leaves the FR5994 memory map")

    def read(self, target, size: int | None = None) -> bytes:
        addr, sym_size = self.address(target)
        n = size if size is not None else sym_size
        if not n:
            raise FrSimError(f"size of {target!r} unknown: pass size")
        buf = (ctypes.c_uint8 * n)()
        if self.lib.frsim_read_mem(self._h, addr, buf, n):
            raise FrSimError(f"read of {n} bytes at 0x{addr:05X} leaves the FR5994 memory map")
        return bytes(buf)

    @property
    def regs(self) -> list[int]:
        r = self.lib.frsim_regs(self._h)
        return [r[i] for i in range(16)]

    def set_reg(self, n: int, value: int):
        self.lib.frsim_regs(self._h)[n] = value & 0xFFFF

    @property
    def counters(self) -> Counters:
        """A copy of the counters (since the last `clear_counters`)."""
        c = Counters()
        ctypes.pointer(c)[0] = self.lib.frsim_get_counters(self._h)[0]
        return c

    def forms(self) -> list[int]:
        """Executions per instruction form (the cycle tables' index; see cycle_table)."""
        n = ctypes.c_int()
        p = self.lib.frsim_forms(self._h, ctypes.byref(n))
        return [p[i] for i in range(n.value)]

    def cycle_table(self, legacy: bool = False) -> list[int]:
        n = len(self.forms())
        p = self.lib.frsim_cycle_table(self._h, int(legacy))
        return [p[i] for i in range(n)]

    @property
    def uart(self) -> str:
        n = ctypes.c_uint32()
        p = self.lib.frsim_uart(self._h, ctypes.byref(n))
        return bytes(p[: n.value]).decode("latin-1")

    # ---- running ------------------------------------------------------------------------------
    def set_break(self, target, on: bool = True):
        addr, _ = self.address(target)
        self.lib.frsim_set_break(self._h, addr, int(on))

    def run(self, until=None, *, max_cycles: int | None = None, max_instructions: int | None = None) -> Stop:
        """Run from the current state until `until` (a symbol/address or a list of them; the
        instruction there is not executed), a halt (CPUOFF), the cycle/instruction budget (counted from
        now) or an error. Never raises for what the program did: check Stop.reason."""
        targets = [] if until is None else ([until] if isinstance(until, (str, int)) else list(until))
        addrs = [self.address(t)[0] for t in targets]
        for a in addrs:
            self.lib.frsim_set_break(self._h, a, 1)
        c = self.counters
        lim_c = c.cycles + max_cycles if max_cycles is not None else (1 << 64) - 1
        lim_i = c.instructions + max_instructions if max_instructions is not None else (1 << 64) - 1
        try:
            rc = self.lib.frsim_run(self._h, lim_c, lim_i)
        finally:
            for a in addrs:
                self.lib.frsim_set_break(self._h, a, 0)
        msg = self.lib.frsim_message(self._h).decode("latin-1") if rc == STOP_ERROR else ""
        return Stop(STOP_NAMES[rc], self.regs[0], msg)

    # ---- energy and profile ---------------------------------------------------------------------
    def energy_j(self, counters: Counters | Mapping[str, int] | None = None) -> float:
        """Energy of what ran (counters or a counters dict, default all since clear_counters): every
        cycle (CPU, FRAM wait, DMA- and LEA-held) at the active power of the platform's clock, plus the
        FRAM write energy per write, plus the LEA model's own energy."""
        c = counters if counters is not None else self.counters
        c = c if isinstance(c, Mapping) else c.as_dict()
        p = self.platform
        return (c["cycles"] * p.energy_per_cycle_j + c["fram_writes"] * p.fram_write_energy_j
                + c["lea_energy_fj"] * 1e-15)

    def enable_profile(self, on: bool = True):
        if self.lib.frsim_enable_profile(self._h, int(on)):
            raise FrSimError("out of memory for the profile")

    def profile(self) -> dict[str, int]:
        """Cycles per function (ELF function symbols) since profiling was enabled."""
        p = self.lib.frsim_get_profile(self._h)
        if not p or self.elf is None:
            return {}
        funcs = sorted((s.value, s.size, n) for n, s in self.elf.symbols.items() if s.kind == 2 and s.size)
        out: dict[str, int] = {}
        for addr, size, name in funcs:
            total = sum(p[a >> 1] for a in range(addr & ~1, addr + size, 2))
            if total:
                out[name] = out.get(name, 0) + total
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    # ---- batch ----------------------------------------------------------------------------------
    def batch(self, inputs: Sequence[Mapping[object, bytes]], outputs: Mapping[str, object], *,
              until: str = "__halt", max_cycles: int = 10 ** 10) -> list[dict]:
        """Run the freshly programmed image once per input set: restore, write inputs, reset, run to
        `until`; returns per run {"outputs": {key: bytes}, "counters": {...}}."""
        results = []
        for inp in inputs:
            self.restore()
            self.clear_counters()
            self.reset()
            for target, blob in inp.items():
                self.write(target, blob)
            stop = self.run(until, max_cycles=max_cycles)
            if stop.reason not in ("break", "halt"):
                raise FrSimError(f"run stopped ({stop.reason}) at PC 0x{stop.pc:04X}: {stop.message}")
            outs = {}
            for key, spec in outputs.items():
                addr, size = self.address(spec)
                outs[key] = self.read(addr, size)
            results.append({"outputs": outs, "counters": self.counters.as_dict()})
        return results


# ------------------------------------------------------------------------------ msp430.simulate twin

def board_logs(dev: Device) -> tuple[str, int | None]:
    """What the board start-up leaves for the host after a run: the UART text (the simulator image's
    log buffer, else what the chip image sent to eUSCI_A0) and the stack high-water mark in bytes (the
    simulator image paints the free stack)."""
    e = dev.elf
    uart = dev.uart
    if "__sn_uart_log" in e.symbols and "__sn_uart_log_len" in e.symbols:
        n = int.from_bytes(dev.read("__sn_uart_log_len", 2), "little")
        uart = dev.read("__sn_uart_log")[:n].decode("latin-1")
    stack_used = None
    lim, top = e.symbols.get("__stack_limit"), e.symbols.get("__stack_top")
    if dev.image == "sim" and lim and top and top.value > lim.value:
        blob = dev.read(lim.value, top.value - lim.value)
        untouched = 0
        while untouched + 1 < len(blob) and blob[untouched] == 0xA5 and blob[untouched + 1] == 0xA5:
            untouched += 2
        stack_used = len(blob) - untouched
    return uart, stack_used


@dataclass
class FrSimResult(msp430.SimResult):
    counters: dict = field(default_factory=dict)
    energy_j: float = 0.0
    profile: dict = field(default_factory=dict)
    mark_counters: dict = field(default_factory=dict)


def simulate(elf: str | os.PathLike, *, outputs: Mapping[str, object] | Sequence[str] = (),
             inputs: Mapping[object, bytes] | None = None, marks: Sequence[str] = (),
             max_cycles: int = 2 * 10 ** 10, profile: bool = False, device: Device | None = None,
             platform: Platform | str | None = None) -> FrSimResult:
    """msp430.simulate's twin on our simulator, for both images: from reset to __halt; `marks` are
    function symbols whose first arrival records the counts. Raises FrSimError when the run stops on
    an error, a trap or the budget."""
    dev = device or Device(platform=platform)
    dev.load(elf)
    e = dev.elf
    if "__halt" not in e.symbols:
        raise FrSimError(f"{e.path.name} has no __halt symbol: not built with the board start-up")
    for target in (inputs or {}):
        addr, _ = dev.address(target)
        sec = msp430._section_of(e, addr)
        if sec in (".data", ".bss"):
            raise FrSimError(f"input {target!r} is in {sec}, which start-up overwrites before main(): declare it "
                             f"SN_NOINIT or SN_PERSISTENT (sn_board.h)")
    for target, blob in (inputs or {}).items():
        dev.write(target, blob)
    dev.clear_counters()
    dev.enable_profile(profile)
    stops = ["__halt"] + (["__sn_trap"] if "__sn_trap" in e.symbols else [])
    pending = {dev.address(m)[0]: m for m in marks}
    mark_counts: dict[str, msp430.SimCounts | None] = {m: None for m in marks}
    mark_counters: dict[str, dict] = {}
    while True:
        c0 = dev.counters
        stop = dev.run(stops + list(pending), max_cycles=max_cycles - c0.cycles)
        if stop.reason == "break" and stop.pc in pending:
            c = dev.counters
            m = pending.pop(stop.pc)
            mark_counts[m] = msp430.SimCounts(c.instructions, c.cycles)
            mark_counters[m] = c.as_dict()
            continue
        break
    c = dev.counters
    if stop.reason == "error":
        raise FrSimError(f"{e.path.name}: {stop.message} (after {c.instructions} instructions)")
    if stop.reason == "budget":
        raise FrSimError(f"{e.path.name} did not reach __halt within {max_cycles} cycles")
    trap = e.symbols.get("__sn_trap")
    if trap is not None and stop.pc == trap.value:
        raise FrSimError(f"{e.path.name} trapped in __sn_unexpected_isr (an interrupt without a handler) after "
                         f"{c.instructions} instructions")
    specs = dict(outputs) if isinstance(outputs, Mapping) else {n: n for n in outputs}
    outs = {k: dev.read(*dev.address(spec)) for k, spec in specs.items()}
    exit_code = int.from_bytes(dev.read("__sn_exit_code", 2), "little") if "__sn_exit_code" in e.symbols else 0
    uart, stack_used = board_logs(dev)
    return FrSimResult(exit_code, c.instructions, c.cycles, outs, mark_counts, stack_used, uart, "",
                       cycles_exact=True, cycle_note=CYCLE_NOTE, counters=c.as_dict(), energy_j=dev.energy_j(c),
                       profile=dev.profile() if profile else {}, mark_counters=mark_counters)


__all__ = ["Device", "Stop", "Counters", "CacheGeometry", "FrSimError", "FrSimResult", "simulate",
           "library_path", "load_library", "lea_linked", "CYCLE_NOTE"]
