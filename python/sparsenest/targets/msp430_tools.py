"""MSP430FR5994 toolchain: the board's constants, the errors of every MSP430 stage, finding clang/lld
(or TI's GCC) and mspdebug, and handing paths to mspdebug safely. The rest of the MSP430 side
(msp430_elf, msp430_sim, msp430_flash, msp430: build) imports from here."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..paths import board_dir

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

