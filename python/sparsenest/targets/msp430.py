"""MSP430FR5994 firmware: toolchain discovery, build, size report, simulation, flashing.

The board files live in ``boards/msp430fr5994`` (linker scripts, start-up, run-time helpers,
register header, MAC kernels, UART); see its README for the C side. This module drives them:

    fw = build(["model.c", "main.c"], "build/fw", include_dirs=["runtime_c/include"])
    print(format_size_report(fw.regions))
    sim = build([...], "build/sim", image="sim")
    r = simulate(sim.elf, outputs={"logits": "sn_logits"}, inputs={"sn_input": x.tobytes()})
    r.outputs["logits"], r.instructions, r.cycles            # cycles over-count: see CYCLE_NOTE
    flash_check(fw.elf); flash(fw.elf)

By job: ``msp430_tools`` (constants, errors, toolchain and mspdebug discovery), ``msp430_elf`` (ELF
reader, size report by region), ``msp430_sim`` (mspdebug's simulator), ``msp430_flash`` (pre-flash
check, flashing); this module builds images and re-exports their public names.

Images: ``"fr5994"`` is the chip (MPY32 at 0x04C0, upper FRAM, DMA); ``"sim"`` is mspdebug's
simulator (64 KB flat, 16-bit multiplier at 0x0130, compiled with ``-DSN_SIM=1``).
Tools: clang-19, ld.lld-19 and llvm-objcopy-19 (apt packages clang-19, lld-19, llvm-19), and
mspdebug for simulation and flashing. ``CC=msp430-elf-gcc`` (TI's MSP430-GCC) selects GCC
instead; that path is not tested here.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from ..board import mclk_hz
# The MSP430 side by job; every public name stays importable from here (sparsenest.targets.msp430).
from .msp430_elf import (EM_MSP430, ElfFile, ElfSection, ElfSegment, ElfSymbol, Region,  # noqa: F401
                         RegionUsage, _check_image, _image_of, check_regions, format_size_report,
                         memory_regions, read_elf, size_report, symbols)
from .msp430_flash import (FLASH_HELP, PROGRAMMABLE, PROGRAMMABLE_SPANS, SIGNATURE_WORDS,  # noqa: F401
                           FlashCheckReport, find_libmsp430, flash, flash_check)
from .msp430_sim import SimCounts, SimResult, _resolve, _section_of, simulate  # noqa: F401
from .msp430_tools import (BOARD_DIR, BOARD_SOURCES, CLANG_CFLAGS, CLANG_HELPER_SOURCES,  # noqa: F401
                           CYCLE_NOTE, GCC_CFLAGS, IMAGES, LINEARIZE, REGION_LABELS, BuildError,
                           FlashCheckError, FlashError, RegionOverflowError, SimError, Toolchain,
                           ToolchainError, find_mspdebug, find_toolchain, mspdebug_image, mspdebug_path)

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

