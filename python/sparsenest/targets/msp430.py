"""MSP430FR5994 firmware: toolchain discovery, build, size report, simulation, flashing.

The board files live in ``boards/msp430fr5994`` (linker scripts, start-up, run-time helpers,
register header, MAC kernels, UART); see its README for the C side. This module drives them:

    fw = build(["model.c", "main.c"], "build/fw", include_dirs=["runtime_c/include"])
    print(format_size_report(fw.regions))
    sim = build([...], "build/sim", image="sim")
    r = simulate(sim.elf, outputs={"logits": "sn_logits"}, inputs={"sn_input": x.tobytes()})
    r.outputs["logits"], r.instructions, r.cycles            # cycles over-count: see CYCLE_NOTE
    flash_check(fw.elf); flash(fw.elf)

Images: ``"fr5994"`` is the chip (MPY32 at 0x04C0, upper FRAM, DMA); ``"sim"`` is mspdebug's
simulator (64 KB flat, 16-bit multiplier at 0x0130, compiled with ``-DSN_SIM=1``).
Tools: clang-19, ld.lld-19 and llvm-objcopy-19 (apt packages clang-19, lld-19, llvm-19), and
mspdebug for simulation and flashing. ``CC=msp430-elf-gcc`` (TI's MSP430-GCC) selects GCC
instead; that path is not tested here.
"""
from __future__ import annotations

import ctypes.util
import glob
import hashlib
import os
import re
import shutil
import struct
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from ..board import mclk_hz, memory_map
from ..paths import board_dir

__all__ = [
    "BOARD_DIR", "IMAGES", "CYCLE_NOTE", "CLANG_CFLAGS",
    "ToolchainError", "BuildError", "RegionOverflowError", "SimError", "FlashError", "FlashCheckError",
    "Toolchain", "find_toolchain", "find_mspdebug",
    "Firmware", "build", "compile_sources",
    "Region", "RegionUsage", "memory_regions", "size_report", "format_size_report", "check_regions",
    "ElfFile", "read_elf", "symbols",
    "SimCounts", "SimResult", "simulate",
    "FlashCheckReport", "flash_check", "flash", "find_libmsp430",
]

BOARD_DIR = Path(os.environ.get("SPARSENEST_MSP430_BOARD_DIR", board_dir("msp430fr5994")))
IMAGES = {"fr5994": "msp430fr5994.ld", "sim": "msp430fr5994_sim.ld"}
BOARD_SOURCES = ("startup.S", "board.c", "mem.c", "sn_mac.c", "uart.c")
CLANG_HELPER_SOURCES = ("mspabi.c", "mspabi_shim.S")   # GCC brings libgcc instead
CLANG_CFLAGS = ("--target=msp430", "-mmcu=msp430fr5994", "-Os", "-ffreestanding", "-nostdlib",
                "-ffunction-sections", "-fdata-sections", "-Wall")
# GCC inlines multiplier accesses itself: -mhwmult=f5series (0x04C0) for the chip, 16bit (0x0130) for
# the simulator image; compile_sources adds it.
GCC_CFLAGS = ("-mmcu=msp430fr5994", "-Os", "-ffreestanding", "-ffunction-sections", "-fdata-sections", "-Wall")
LINEARIZE = ("-mllvm", "-pre-RA-sched=linearize")
CYCLE_NOTE = ("mspdebug 0.22's simulator over-counts cycles of instructions with constant-generator "
              "operands (#0, #1, #2, #4, #8, #-1; fixed upstream in 2014): about 18% high on a typical "
              "loop. Instruction counts are exact. It also has no FRAM wait states (the chip at 16 MHz "
              "has one).")

REGION_LABELS = {"LOWER_FRAM": "lower FRAM", "UPPER_FRAM": "upper FRAM", "SRAM": "SRAM",
                 "LEA_RAM": "LEA RAM", "SIGNATURES": "JTAG/BSL/IPE signatures",
                 "VECTORS": "interrupt vectors"}

# (tool, apt package) per role; what to tell a user when one is missing.
_CLANG_TOOLS = {"cc": ("clang-19", "clang-19"), "ld": ("ld.lld-19", "lld-19"),
                "objcopy": ("llvm-objcopy-19", "llvm-19")}
_GCC_HINT = ("TI's MSP430-GCC toolchain (msp430-elf-gcc), from https://www.ti.com/tool/MSP430-GCC-OPENSOURCE; "
             "or unset CC to use clang-19 (sudo apt-get install clang-19 lld-19 llvm-19)")


class ToolchainError(RuntimeError):
    """A tool is missing or unusable; the message names it and what to install."""


class BuildError(RuntimeError):
    """Compiling or linking failed; the message carries the tool's output and a hint."""

    def __init__(self, message: str, output: str = ""):
        super().__init__(message)
        self.output = output


class RegionOverflowError(BuildError):
    """A memory region is too small for what was placed in it."""

    def __init__(self, message: str, region: str, bytes_over: int, output: str = ""):
        super().__init__(message, output)
        self.region = region
        self.bytes_over = bytes_over


class SimError(RuntimeError):
    """The simulator failed, timed out, or the firmware trapped."""


class FlashError(RuntimeError):
    """Flashing is impossible here or failed; the message says what to install or do."""


class FlashCheckError(FlashError):
    """The image is unsafe or unfit to program into an MSP430FR5994."""

    def __init__(self, message: str, report: "FlashCheckReport"):
        super().__init__(message)
        self.report = report


# ----------------------------------------------------------------------------------------------
# Toolchain discovery

@dataclass(frozen=True)
class Toolchain:
    flavor: str            # "clang" or "gcc"
    cc: str                # absolute paths
    ld: str | None         # ld.lld-19 (clang); None for gcc (its driver links)
    objcopy: str

    @property
    def cflags(self) -> tuple[str, ...]:
        return CLANG_CFLAGS if self.flavor == "clang" else GCC_CFLAGS


def _which(name: str, path: str | None) -> str | None:
    if os.sep in name:
        return name if os.access(name, os.X_OK) else None
    return shutil.which(name, path=path)


def _missing(tool: str, package: str, role: str) -> ToolchainError:
    return ToolchainError(f"{tool} not found on PATH (needed as the MSP430 {role}). "
                          f"Install it: sudo apt-get install {package}   (or run `make setup`)")


def find_toolchain(cc: str | None = None, *, path: str | None = None) -> Toolchain:
    """Locate the compiler, linker and objcopy.

    cc: compiler name or path; default $SPARSENEST_MSP430_CC, else $CC when it names an MSP430
    compiler (e.g. msp430-elf-gcc; a host `gcc` in $CC is ignored), else clang-19.
    path: search path instead of $PATH (tests use a bogus one).
    Raises ToolchainError naming the missing tool and its apt package."""
    if cc is None:
        cc = os.environ.get("SPARSENEST_MSP430_CC")
    if cc is None and "msp430" in os.path.basename(os.environ.get("CC", "")):
        cc = os.environ["CC"]
    cc = cc or "clang-19"
    if "gcc" in os.path.basename(cc):
        cc_path = _which(cc, path)
        if not cc_path:
            raise ToolchainError(f"{cc} not found on PATH (selected through CC). Install {_GCC_HINT}")
        prefix = cc_path[: -len("gcc")]
        objcopy = _which(prefix + "objcopy", path) or _which("llvm-objcopy-19", path)
        if not objcopy:
            raise _missing("llvm-objcopy-19", "llvm-19", "objcopy")
        return Toolchain("gcc", cc_path, None, objcopy)
    found = {}
    for role, (tool, package) in _CLANG_TOOLS.items():
        name = cc if role == "cc" else tool
        p = _which(name, path)
        if not p:
            raise _missing(name, package if name == tool else "clang-19", "compiler" if role == "cc" else role)
        found[role] = p
    return Toolchain("clang", found["cc"], found["ld"], found["objcopy"])


def find_mspdebug(path: str | None = None) -> str:
    p = _which(os.environ.get("SPARSENEST_MSPDEBUG", "mspdebug"), path)
    if not p:
        raise _missing("mspdebug", "mspdebug", "simulator/flasher")
    return p


# ----------------------------------------------------------------------------------------------
# ELF reading (just what the size report, the simulator driver and flash_check need)

@dataclass
class ElfSection:
    name: str
    type: int
    flags: int
    addr: int
    offset: int
    size: int

    @property
    def alloc(self) -> bool:
        return bool(self.flags & 0x2)

    @property
    def nobits(self) -> bool:
        return self.type == 8


@dataclass
class ElfSegment:
    type: int
    offset: int
    vaddr: int
    paddr: int
    filesz: int
    memsz: int
    flags: int

    @property
    def executable(self) -> bool:
        return bool(self.flags & 0x1)


@dataclass
class ElfSymbol:
    name: str
    value: int
    size: int
    kind: int        # STT_*
    shndx: int


@dataclass
class ElfFile:
    path: Path
    data: bytes
    machine: int
    type: int
    entry: int
    sections: list[ElfSection]
    segments: list[ElfSegment]
    symbols: dict[str, ElfSymbol]
    undefined: set[str]

    def section(self, name: str) -> ElfSection | None:
        return next((s for s in self.sections if s.name == name), None)

    def sections_in(self, seg: ElfSegment) -> list[str]:
        """Sections a segment carries: by file offset (robust to edited addresses), NOBITS by address."""
        return [s.name for s in self.sections if s.alloc and s.size and (
            (not s.nobits and seg.filesz and seg.offset <= s.offset < seg.offset + seg.filesz)
            or (s.nobits and seg.vaddr <= s.addr < seg.vaddr + seg.memsz))]

    def load_image(self) -> dict[int, bytes]:
        """{physical address: bytes} of everything a programmer writes (PT_LOAD file bytes)."""
        return {seg.paddr: self.data[seg.offset: seg.offset + seg.filesz]
                for seg in self.segments if seg.type == 1 and seg.filesz}

    def lma(self, sec: ElfSection) -> int:
        for seg in self.segments:
            if seg.type == 1 and seg.vaddr <= sec.addr < seg.vaddr + max(seg.memsz, 1):
                return seg.paddr + (sec.addr - seg.vaddr)
        return sec.addr


EM_MSP430 = 105


def read_elf(path: str | os.PathLike) -> ElfFile:
    """Parse a 32-bit little-endian ELF (MSP430 executable or object)."""
    path = Path(path)
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 1 or data[5] != 1:
        raise ValueError(f"{path}: not a 32-bit little-endian ELF file")
    (e_type, e_machine, _v, e_entry, e_phoff, e_shoff, _fl, _eh, e_phentsize, e_phnum,
     e_shentsize, e_shnum, e_shstrndx) = struct.unpack_from("<HHIIIIIHHHHHH", data, 16)
    raw = [struct.unpack_from("<IIIIIIIIII", data, e_shoff + i * e_shentsize) for i in range(e_shnum)]
    shstr = raw[e_shstrndx] if e_shnum else None

    def cstr(table_off: int, off: int) -> str:
        end = data.index(b"\0", table_off + off)
        return data[table_off + off: end].decode("latin-1")

    sections = [ElfSection(cstr(shstr[4], r[0]) if shstr else "", r[1], r[2], r[3], r[4], r[5]) for r in raw]
    segments = []
    for i in range(e_phnum):
        p = struct.unpack_from("<IIIIIIII", data, e_phoff + i * e_phentsize)
        segments.append(ElfSegment(p[0], p[1], p[2], p[3], p[4], p[5], p[6]))
    symbols: dict[str, ElfSymbol] = {}
    undefined: set[str] = set()
    for r in raw:
        if r[1] != 2:     # SHT_SYMTAB
            continue
        strtab = raw[r[6]][4]
        for k in range(1, r[5] // 16):
            name_off, value, size, info, _other, shndx = struct.unpack_from("<IIIBBH", data, r[4] + 16 * k)
            name = cstr(strtab, name_off)
            if not name:
                continue
            if shndx == 0:
                undefined.add(name)
                continue
            bind = info >> 4
            sym = ElfSymbol(name, value, size, info & 0xF, shndx)
            # globals win over locals of the same name
            if name not in symbols or bind != 0:
                symbols[name] = sym
    return ElfFile(path, data, e_machine, e_type, e_entry, sections, segments, symbols, undefined)


def symbols(elf: str | os.PathLike) -> dict[str, tuple[int, int]]:
    """{name: (address, size)} of an ELF's defined symbols."""
    return {n: (s.value, s.size) for n, s in read_elf(elf).symbols.items()}


# ----------------------------------------------------------------------------------------------
# Memory regions and the size report

@dataclass(frozen=True)
class Region:
    name: str
    origin: int
    length: int

    @property
    def end(self) -> int:
        return self.origin + self.length

    @property
    def label(self) -> str:
        return REGION_LABELS.get(self.name, self.name)

    def describe(self) -> str:
        return f"{self.label} ({self.name}, 0x{self.origin:04X}-0x{self.end - 1:04X}, {self.length} bytes)"


def memory_regions(image: str = "fr5994") -> dict[str, Region]:
    """The MEMORY block of the image's linker script (single source of truth)."""
    script = BOARD_DIR / IMAGES[_check_image(image)]
    text = re.sub(r"/\*.*?\*/", "", script.read_text(), flags=re.S)
    block = re.search(r"MEMORY\s*\{(.*?)\}", text, re.S)
    regions = {}
    for m in re.finditer(r"(\w+)\s*(?:\([^)]*\))?\s*:\s*ORIGIN\s*=\s*(\w+)\s*,\s*LENGTH\s*=\s*(\w+)", block.group(1)):
        regions[m.group(1)] = Region(m.group(1), int(m.group(2), 0), int(m.group(3), 0))
    return regions


@dataclass
class RegionUsage:
    region: Region
    used: int = 0
    sections: dict[str, int] = field(default_factory=dict)

    @property
    def free(self) -> int:
        return self.region.length - self.used

    @property
    def over(self) -> int:
        return max(0, -self.free)


def _check_image(image: str) -> str:
    if image not in IMAGES:
        raise ValueError(f"unknown image {image!r}: choose one of {sorted(IMAGES)}")
    return image


def _image_of(elf: ElfFile) -> str:
    sym = elf.symbols.get("__sn_image_sim")
    return "sim" if sym is not None and sym.value == 1 else "fr5994"


def size_report(elf: str | os.PathLike | ElfFile, image: str | None = None) -> dict[str, RegionUsage]:
    """Bytes used per memory region, by output section. A section whose load address differs from
    its run address (.data) counts in both regions; .stack is the reserved minimum stack."""
    e = elf if isinstance(elf, ElfFile) else read_elf(elf)
    regions = memory_regions(image or _image_of(e))
    usage = {name: RegionUsage(r) for name, r in regions.items()}

    def add(addr: int, size: int, label: str):
        for u in usage.values():
            if u.region.origin <= addr < u.region.end:
                u.used += size
                u.sections[label] = u.sections.get(label, 0) + size
                return

    for s in e.sections:
        if not (s.alloc and s.size):
            continue
        add(s.addr, s.size, "stack reserve" if s.name == ".stack" else s.name)
        if not s.nobits:
            lma = e.lma(s)
            if lma != s.addr:
                add(lma, s.size, f"{s.name} (load image)")
    return usage


def check_regions(report: Mapping[str, RegionUsage]) -> None:
    over = [u for u in report.values() if u.over]
    if over:
        u = max(over, key=lambda u: u.over)
        raise RegionOverflowError(f"{u.region.describe()} overflowed by {u.over} bytes",
                                  u.region.name, u.over)


def format_size_report(report: Mapping[str, RegionUsage]) -> str:
    lines = [f"{'region':<26}{'used':>9}{'size':>9}{'free':>9}   sections"]
    order = ["LOWER_FRAM", "UPPER_FRAM", "SRAM", "LEA_RAM", "VECTORS", "SIGNATURES"]
    for name in sorted(report, key=lambda n: order.index(n) if n in order else 99):
        u = report[name]
        parts = ", ".join(f"{k} {v}" for k, v in sorted(u.sections.items(), key=lambda kv: -kv[1]))
        pct = 100.0 * u.used / u.region.length if u.region.length else 0.0
        lines.append(f"{u.region.label:<26}{u.used:>9}{u.region.length:>9}{u.free:>9}   "
                     f"{pct:5.1f}%  {parts}".rstrip())
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Build

@dataclass
class Firmware:
    elf: Path
    hex: Path
    map: Path
    image: str
    regions: dict[str, RegionUsage]
    toolchain: Toolchain
    notes: list[str] = field(default_factory=list)

    def symbol(self, name: str) -> tuple[int, int]:
        """(address, size) of a symbol; KeyError if absent."""
        s = read_elf(self.elf).symbols[name]
        return s.value, s.size

    @property
    def size_text(self) -> str:
        return format_size_report(self.regions)



# mspdebug reads its commands as text: it splits them at spaces and interprets quotes and backslashes.
# Paths in those commands are therefore only ever our own temporary files with plain names; a user's
# ELF is copied there first (mspdebug_image), so an output path with spaces or `$(...)` is just a path.
_MSPDEBUG_SAFE = re.compile(r"[A-Za-z0-9_./+-]+\Z")


def mspdebug_path(p) -> str:
    """`p` as an argument inside an mspdebug command, or SimError when mspdebug would misread it."""
    s = str(p)
    if not _MSPDEBUG_SAFE.match(s):
        raise SimError(f"{s}: mspdebug cannot take this path (letters, digits and . _ / + - only); point "
                       f"TMPDIR at a folder with a plain name")
    return s


def mspdebug_image(elf, tmp: Path) -> str:
    """A copy of `elf` in our temporary folder `tmp`, as an mspdebug command argument."""
    dst = Path(tmp) / "image.elf"
    shutil.copyfile(elf, dst)
    return mspdebug_path(dst)

def _cache_dir() -> Path | None:
    d = os.environ.get("SPARSENEST_MSP430_CACHE")
    if d is not None and d.strip() in ("", "0"):
        return None
    if d:
        return Path(d)
    # The user's cache, not a fixed name in the shared /tmp (where anyone could plant objects first).
    from ..data import cache_root
    return cache_root() / "msp430-objects"


def _cache_path(tc: Toolchain, src: Path, cmd: Sequence[str]) -> Path | None:
    """Objects of the board's own sources are cached (they are compiled into every firmware).
    The key covers the compiler binary, the command line, the source and every board header;
    board sources include nothing else but the compiler's own headers."""
    d = _cache_dir()
    try:
        if d is None or src.resolve().parent != BOARD_DIR.resolve():
            return None
        h = hashlib.sha256()
        st = os.stat(tc.cc)
        h.update(f"{os.path.realpath(tc.cc)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
        out_at = list(cmd).index("-o")
        h.update("\0".join(a for i, a in enumerate(cmd) if i not in (out_at + 1,) and a != str(src)).encode())
        h.update(src.name.encode() + b"\0" + src.read_bytes())
        for hdr in sorted(BOARD_DIR.glob("*.h")):
            h.update(hdr.name.encode() + b"\0" + hdr.read_bytes())
        return d / f"{src.stem}-{h.hexdigest()[:24]}.o"
    except (OSError, ValueError):
        return None


def _crashed(proc: subprocess.CompletedProcess) -> bool:
    return proc.returncode < 0 or "PLEASE submit a bug report" in proc.stderr or "Stack dump" in proc.stderr


def compile_sources(sources: Iterable, obj_dir: str | os.PathLike, *, image: str = "fr5994",
                    include_dirs: Sequence = (), defines: Mapping[str, object] | Sequence[str] | None = None,
                    cflags: Sequence[str] = (), toolchain: Toolchain | None = None,
                    notes: list[str] | None = None) -> list[Path]:
    """Compile C/assembly sources to objects in obj_dir; returns the object paths in order.
    A source is a path or (path, extra_flags). If clang crashes (a known clang 19 MSP430 back-end
    bug), the file is compiled again with -mllvm -pre-RA-sched=linearize and a note is added."""
    tc = toolchain or find_toolchain()
    obj_dir = Path(obj_dir)
    obj_dir.mkdir(parents=True, exist_ok=True)
    defs = []
    if isinstance(defines, Mapping):
        defs = [f"-D{k}" if v is None else f"-D{k}={v}" for k, v in defines.items()]
    elif defines:
        defs = [d if d.startswith("-D") else f"-D{d}" for d in defines]
    if not any(d.split("=")[0] == "-DSN_MCLK_HZ" for d in defs):   # the board's clock, unless overridden
        defs.insert(0, f"-DSN_MCLK_HZ={mclk_hz()}")
    sim = _check_image(image) == "sim"
    hwmult = [("-mhwmult=16bit" if sim else "-mhwmult=f5series")] if tc.flavor == "gcc" else []
    base = [*tc.cflags, *hwmult, f"-DSN_SIM={1 if sim else 0}", *defs,
            *(f"-I{Path(d)}" for d in [BOARD_DIR, *include_dirs]), *cflags]
    jobs = []
    for i, spec in enumerate(sources):
        src, extra = (spec if isinstance(spec, tuple) else (spec, ()))
        src = Path(src)
        obj = obj_dir / f"{i:03d}_{src.stem}{src.suffix.replace('.', '_')}.o"
        jobs.append((src, [tc.cc, *base, *extra, "-c", str(src), "-o", str(obj)], obj))

    def run(job):
        src, cmd, obj = job
        if not src.exists():
            raise BuildError(f"source file not found: {src}")
        cached = _cache_path(tc, src, cmd)
        if cached is not None and cached.exists():
            shutil.copyfile(cached, obj)
            return obj, None
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 and tc.flavor == "clang" and _crashed(proc):
            proc2 = subprocess.run([*cmd[:1], *LINEARIZE, *cmd[1:]], capture_output=True, text=True)
            if proc2.returncode == 0:
                return obj, f"{src}: clang crashed; compiled with -mllvm -pre-RA-sched=linearize instead"
            proc = proc2
        if proc.returncode != 0:
            raise BuildError(f"compiling {src} failed (exit {proc.returncode}):\n{proc.stderr.strip()}\n"
                             f"command: {' '.join(cmd)}", proc.stderr)
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_name(f"{cached.name}.{os.getpid()}.tmp")
            shutil.copyfile(obj, tmp)
            os.replace(tmp, cached)
        return obj, None

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(run, jobs))
    for _, note in results:
        if note and notes is not None:
            notes.append(note)
    return [obj for obj, _ in results]


_OVERFLOW_RE = re.compile(r"section '([^']+)' will not fit in region '(\w+)': overflowed by (\d+) bytes")


def _link_error(output: str, image: str) -> BuildError:
    regions = memory_regions(image)
    over: dict[str, int] = {}
    for sec, region, n in _OVERFLOW_RE.findall(output):
        over[region] = max(over.get(region, 0), int(n))
    if over:
        region, n = max(over.items(), key=lambda kv: kv[1])
        r = regions.get(region)
        what = r.describe() if r else region
        others = "; ".join(f"{regions[k].label if k in regions else k} by {v}"
                           for k, v in over.items() if k != region)
        hint = {
            "LOWER_FRAM": "move large constant arrays to upper FRAM (SN_UPPER_CONST + sn_far_read) or "
                          "shrink the model",
            "SRAM": "SRAM holds .data, .bss, .noinit and the stack reserve (__sn_stack_size); move big "
                    "buffers to FRAM (SN_FRAM_NOINIT) or LEA RAM (SN_LEA_RAM), or lower stack_size",
            "UPPER_FRAM": "the model does not fit the device's FRAM",
            "LEA_RAM": "LEA RAM is 4 KB",
        }.get(region, "")
        msg = f"{what} overflowed by {n} bytes" + (f" (also: {others})" if others else "") + \
              (f". Hint: {hint}" if hint else "") + f"\nlinker said:\n{output.strip()}"
        return RegionOverflowError(msg, region, n, output)
    hints = []
    if "is being placed in" in output:
        hints.append("a section is not placed by boards/msp430fr5994/sections.ld; use the SN_* placement "
                     "macros of sn_board.h or add the section to the linker script")
    if "relocation R_MSP430" in output and "out of range" in output:
        hints.append("16-bit code cannot address upper FRAM (>= 0x10000): read SN_UPPER_CONST data with "
                     "sn_far_read() through an SN_DEFINE_FAR_ADDR address")
    undef = re.findall(r"undefined symbol: (\S+)", output)
    if any(re.match(r"__mspabi_\w*(f|d)\b|__mspabi_(add|sub|mpy|div|cmp|cvt|fix|flt)[fd]", u) for u in undef):
        hints.append("floating-point helpers are not provided: sparsenest firmware is integer (Q15) only")
    elif undef:
        hints.append("undefined symbols: " + ", ".join(sorted(set(undef))))
    return BuildError("linking failed" + (": " + "; ".join(hints) if hints else "") +
                      f"\nlinker said:\n{output.strip()}", output)


def build(sources: Iterable, build_dir: str | os.PathLike, *, image: str = "fr5994",
          include_dirs: Sequence = (), defines: Mapping[str, object] | Sequence[str] | None = None,
          cflags: Sequence[str] = (), ldflags: Sequence[str] = (), board_sources: bool = True,
          stack_size: int | None = None, name: str = "firmware",
          toolchain: Toolchain | None = None) -> Firmware:
    """Compile sources (+ the board's start-up, helpers, memcpy, MAC and UART code) and link them
    into build_dir/<name>.elf and .hex for `image` ("fr5994" or "sim"); writes <name>.map and
    <name>.size.txt. Raises RegionOverflowError naming the region and the bytes over, BuildError
    for other failures, ToolchainError when a tool is missing."""
    tc = toolchain or find_toolchain()
    _check_image(image)
    out = Path(build_dir)
    out.mkdir(parents=True, exist_ok=True)
    srcs = list(sources)
    if board_sources:
        srcs += [BOARD_DIR / s for s in BOARD_SOURCES]
        if tc.flavor == "clang":
            srcs += [BOARD_DIR / s for s in CLANG_HELPER_SOURCES]
    notes: list[str] = []
    objs = compile_sources(srcs, out / "obj", image=image, include_dirs=include_dirs, defines=defines,
                           cflags=cflags, toolchain=tc, notes=notes)
    elf, hexf, mapf = out / f"{name}.elf", out / f"{name}.hex", out / f"{name}.map"
    script = BOARD_DIR / IMAGES[image]
    common = ["--gc-sections", f"-L{BOARD_DIR}", "-T", str(script), "-Map", str(mapf)]
    if stack_size is not None:
        common.append(f"--defsym=__sn_stack_size={int(stack_size)}")
    if tc.flavor == "clang":
        cmd = [tc.ld, "-n", "--orphan-handling=error", *common, *ldflags, *map(str, objs), "-o", str(elf)]
    else:
        cmd = [tc.cc, *tc.cflags, "-nostartfiles", "-nodefaultlibs",
               *(f"-Wl,{a}" for a in common if a != "-T" and a != str(script)), "-T", str(script),
               *ldflags, *map(str, objs), "-lgcc", "-o", str(elf)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise _link_error(proc.stdout + proc.stderr, image)
    proc = subprocess.run([tc.objcopy, "-O", "ihex", str(elf), str(hexf)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"objcopy to Intel HEX failed:\n{proc.stderr}", proc.stderr)
    report = size_report(elf, image)
    (out / f"{name}.size.txt").write_text(format_size_report(report) + "\n")
    check_regions(report)
    return Firmware(elf, hexf, mapf, image, report, tc, notes)


# ----------------------------------------------------------------------------------------------
# Simulation (mspdebug sim)

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


# ----------------------------------------------------------------------------------------------
# Flashing and the pre-flash check

# What a programmer may write on an MSP430FR5994 (data sheet SLASE54 memory organisation, stated in
# boards/msp430fr5994/board.toml).
_MAP = memory_map("msp430fr5994")
PROGRAMMABLE = ((_MAP.info_fram_base, _MAP.info_fram_base + _MAP.info_fram_bytes, "info FRAM"),
                (_MAP.lower_fram_base, _MAP.signatures_base, "lower FRAM"),
                (_MAP.signatures_base, _MAP.vectors_base, "signatures"),
                (_MAP.vectors_base, _MAP.vectors_end, "interrupt vectors"),
                (_MAP.upper_fram_base, _MAP.fram_end, "upper FRAM"))
SIGNATURE_WORDS = {_MAP.signatures_base + 2 * i: name for i, name in enumerate(
    ("JTAG signature 1", "JTAG signature 2", "BSL signature 1", "BSL signature 2",
     "IPE signature 1", "IPE signature 2", "IPE signature 3", "IPE signature 4"))}
# Info FRAM, and lower FRAM through upper FRAM as one contiguous span (a segment may cross region borders).
PROGRAMMABLE_SPANS = (PROGRAMMABLE[0][:2], (PROGRAMMABLE[1][0], PROGRAMMABLE[-1][1]))


@dataclass
class FlashCheckReport:
    elf: Path
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    segments: list[tuple[int, int, list[str]]] = field(default_factory=list)  # (load address, bytes, sections)
    verified_in_sim: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    def __str__(self) -> str:
        lines = [f"flash check of {self.elf.name}: {'OK' if self.ok else 'FAILED'}"]
        lines += [f"  error: {m}" for m in self.errors] + [f"  warning: {m}" for m in self.warnings]
        return "\n".join(lines)


def _region_name(addr: int) -> str | None:
    return next((n for lo, hi, n in PROGRAMMABLE if lo <= addr < hi), None)


def flash_check(elf: str | os.PathLike, *, simulate_load: bool = True, mspdebug: str | None = None,
                raise_on_error: bool = True) -> FlashCheckReport:
    """Check an image before programming an MSP430FR5994 with it:
    - MSP430 executable built for the chip (not the simulator image);
    - every loadable segment inside the device's programmable memory, none in SRAM/peripherals;
    - reset vector (0xFFFE) present, pointing at code in lower FRAM (and at the ELF entry);
      every other vector either unprogrammed or pointing at code;
    - JTAG/BSL/IPE signature words (0xFF80-0xFF8F) erased (0xFFFF): anything else can lock JTAG,
      disable or password-protect the bootloader, or wall memory off with IP encapsulation;
    - (simulate_load) the part below 64 KB loads and verifies in mspdebug's simulator.
    Raises FlashCheckError listing every problem (unless raise_on_error=False)."""
    path = Path(elf)
    rep = FlashCheckReport(path)
    e = read_elf(path)
    if e.machine != EM_MSP430 or e.type != 2:
        rep.errors.append(f"not an MSP430 executable (e_machine={e.machine}, e_type={e.type})")
    if _image_of(e) == "sim":
        rep.errors.append("built for the simulator (image='sim'): its multiplier code writes 0x0130, which "
                          "is PM5CTL0 on the chip; rebuild with image='fr5994'")
    code_ranges = [(s.paddr, s.paddr + s.filesz) for s in e.segments if s.type == 1 and s.executable and s.filesz]
    mem: dict[int, int] = {}
    for seg in e.segments:
        if seg.type != 1 or seg.filesz == 0:
            continue
        names = e.sections_in(seg)
        rep.segments.append((seg.paddr, seg.filesz, names))
        lo, hi = seg.paddr, seg.paddr + seg.filesz
        inside = any(a <= lo and hi <= b for a, b in PROGRAMMABLE_SPANS)
        if not inside:
            rep.errors.append(f"segment at 0x{lo:05X}-0x{hi - 1:05X} ({', '.join(names) or 'no sections'}, "
                              f"{seg.filesz} bytes) is outside the MSP430FR5994's programmable memory "
                              f"({', '.join(f'{what} 0x{a:04X}-0x{b - 1:04X}' for a, b, what in PROGRAMMABLE)})")
        for k, b in enumerate(e.data[seg.offset: seg.offset + seg.filesz]):
            mem[lo + k] = b

    def word(addr: int) -> int | None:
        if addr not in mem and addr + 1 not in mem:
            return None
        return mem.get(addr, 0xFF) | (mem.get(addr + 1, 0xFF) << 8)

    def is_code(target: int) -> bool:
        return (target % 2 == 0 and _MAP.lower_fram_base <= target < _MAP.signatures_base
                and any(a <= target < b for a, b in code_ranges))

    reset = word(0xFFFE)
    if reset is None:
        rep.errors.append("no reset vector at 0xFFFE: the device would not start this program")
    elif not is_code(reset):
        rep.errors.append(f"reset vector 0x{reset:04X} does not point at code in lower FRAM")
    elif e.entry and reset != e.entry:
        rep.warnings.append(f"reset vector 0x{reset:04X} differs from the ELF entry 0x{e.entry:04X}")
    missing = []
    for slot in range(8, 63):
        addr = 0xFF80 + 2 * slot
        v = word(addr)
        if v is None:
            missing.append(slot)
        elif v != 0xFFFF and not is_code(v):
            rep.errors.append(f"interrupt vector slot {slot} (0x{addr:04X}) = 0x{v:04X} does not point at code")
    if missing:
        rep.warnings.append(f"{len(missing)} interrupt vector slots not programmed (e.g. slot {missing[0]}): "
                            f"they keep whatever the device held before")
    for addr, what in SIGNATURE_WORDS.items():
        v = word(addr)
        if v is not None and v != 0xFFFF:
            effect = ("locks JTAG/Spy-Bi-Wire access (0x5555 locks it for good, 0xAAAA sets a password)"
                      if addr < 0xFF84 else
                      "changes the bootloader (0x5555 disables it, 0xAAAA protects it)" if addr < 0xFF88
                      else "enables IP encapsulation (memory becomes unreadable to JTAG and other code)")
            rep.errors.append(f"{what} at 0x{addr:04X} = 0x{v:04X}: a value other than 0xFFFF here {effect}; "
                              f"refusing to flash")
    if simulate_load and rep.ok:
        low = [s.name for s in e.sections if s.alloc and not s.nobits and s.size and e.lma(s) >= 0x10000]
        tool = mspdebug or find_mspdebug()
        with tempfile.TemporaryDirectory(prefix="sn-flashcheck-") as tmp:
            img = Path(tmp) / "below64k.elf"
            objcopy = _which("llvm-objcopy-19", None) or "llvm-objcopy-19"
            cmd = [objcopy, *(a for n in low for a in ("-R", n)), str(path), str(img)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                rep.errors.append(f"could not strip upper-FRAM sections for the simulator: {proc.stderr.strip()}")
            else:
                proc = subprocess.run([tool, "-n", "-q", "sim", f"prog {mspdebug_path(img)}", f"verify {mspdebug_path(img)}",
                                       "md 0xfffe 2"],
                                      capture_output=True, text=True, timeout=60)
                out = proc.stdout + proc.stderr
                m = re.search(r"0fffe:\s+([0-9a-f]{2}) ([0-9a-f]{2})", out)
                if proc.returncode != 0:
                    rep.errors.append(f"the image does not load/verify in the simulator:\n{out.strip()}")
                elif not m or int(m.group(2) + m.group(1), 16) != reset:
                    rep.errors.append(f"reset vector read back from the simulator differs:\n{out.strip()}")
                else:
                    rep.verified_in_sim = True
                    if low:
                        rep.warnings.append(f"{', '.join(low)} (upper FRAM) not verified: the simulator has 64 KB")
    if raise_on_error and not rep.ok:
        raise FlashCheckError(str(rep), rep)
    return rep


_LIBMSP430_DIRS = ("/usr/lib", "/usr/local/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
                   "/opt/ti/*", "/opt/ti/*/lib", "~/ti/*", "~/ti/*/lib")


def find_libmsp430() -> str | None:
    """Path of TI's MSP Debug Stack library (libmsp430.so) that `mspdebug tilib` loads, or None."""
    dirs = [d for d in os.environ.get("LD_LIBRARY_PATH", "").split(":") if d]
    dirs += [g for pat in _LIBMSP430_DIRS for g in glob.glob(os.path.expanduser(pat))]
    for d in dirs:
        p = Path(d) / "libmsp430.so"
        if p.exists():
            return str(p)
    return ctypes.util.find_library("msp430")


FLASH_HELP = """\
Flashing needs TI's MSP Debug Stack library (libmsp430.so), which no package registry ships:
  1. Download "MSP Debug Stack" (MSPDS, slac460) from https://www.ti.com/tool/MSPDS
     (or take libmsp430.so from TI's MSP430-GCC / Uniflash / Code Composer Studio install);
  2. put libmsp430.so in /usr/local/lib (then sudo ldconfig) or point LD_LIBRARY_PATH at it;
  3. plug in the LaunchPad (eZ-FET); the eZ-FET may need a firmware update: mspdebug tilib --allow-fw-update
Then: mspdebug tilib "prog {elf}"
Without it, the ROM UART bootloader works with python-msp430-tools and a USB-UART adapter on the
BSL pins (P2.0 TX / P2.1 RX; BSL entry sequence on RST/TEST):
  pip install python-msp430-tools
  python -m msp430.bsl5.uart -p /dev/ttyUSB0 -e -P -V {hex}
(options as in python-msp430-tools' --help; this path is not tested here. Debian's mspdebug 0.22
has no 'ezfet' driver.)"""


def flash(elf: str | os.PathLike, *, mspdebug: str | None = None, check: bool = True,
          timeout_s: float = 180.0) -> str:
    """Program a LaunchPad with `mspdebug tilib "prog <elf>"` (then verify). Runs flash_check first
    (static checks only: a bad image is never written). Raises FlashError with installation
    instructions when TI's libmsp430.so is missing. Returns mspdebug's output."""
    path = Path(elf).resolve()
    if check:
        flash_check(path, simulate_load=False)
    hexf = path.with_suffix(".hex")
    if find_libmsp430() is None:
        raise FlashError("cannot flash: TI's libmsp430.so (MSP Debug Stack) was not found.\n" +
                         FLASH_HELP.format(elf=path, hex=hexf))
    tool = mspdebug or find_mspdebug()
    with tempfile.TemporaryDirectory(prefix="sn-flash-") as tmp:
        img = mspdebug_image(path, Path(tmp))
        proc = subprocess.run([tool, "-q", "tilib", f"prog {img}", f"verify {img}"], capture_output=True,
                              text=True, timeout=timeout_s)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise FlashError(f"mspdebug tilib failed (exit {proc.returncode}):\n{out.strip()}\n"
                         f"Is the LaunchPad connected, and is the eZ-FET firmware current "
                         f"(mspdebug tilib --allow-fw-update)?")
    return out


# ----------------------------------------------------------------------------------------------
# Command line: sparsenest msp430 {size,sim,check,flash} ELF

def add_arguments(ap) -> None:
    """`sparsenest msp430 {size,sim,check,flash} ELF`'s options (the command runs run())."""
    from .. import cli_args as arg
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="ACTION")
    for name, text in (("size", "memory used per region"), ("sim", "run a sim image to __halt"),
                       ("check", "pre-flash checks"), ("flash", "program a LaunchPad (mspdebug tilib)")):
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("elf", help="an ELF built by sparsenest firmware build")
        if name == "sim":
            p.add_argument("--symbol", "--out", dest="symbols", action="append", default=[], metavar="SYMBOL",
                           help="print this symbol's bytes after the run (repeatable)")
            p.add_argument("--timeout", type=arg.positive_float, default=30.0, help="seconds")


def run(a) -> int:
    """Size, run, check or flash one MSP430 ELF."""
    try:
        if a.cmd == "size":
            print(format_size_report(size_report(a.elf)))
        elif a.cmd == "sim":
            r = simulate(a.elf, outputs=a.symbols, timeout_s=a.timeout)
            print(f"exit code {r.exit_code}; {r.instructions} instructions, {r.cycles} cycles "
                  f"(over-counted: {CYCLE_NOTE}); stack used {r.stack_used} bytes")
            if r.uart:
                print(f"uart: {r.uart}")
            for k, v in r.outputs.items():
                print(f"{k}: {v.hex()}")
        elif a.cmd == "check":
            print(flash_check(a.elf, raise_on_error=False))
        else:
            print(flash(a.elf))
    except (ToolchainError, BuildError, SimError, FlashError, OSError, ValueError) as e:
        import sys
        print(f"sparsenest msp430 {a.cmd}: error: {e}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from ..cli import run_command
    return run_command("msp430", argv)


if __name__ == "__main__":
    raise SystemExit(main())
