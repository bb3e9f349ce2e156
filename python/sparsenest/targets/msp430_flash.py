"""The pre-flash check of a chip image (what is written where, signatures, loading it in the simulator)
and programming a LaunchPad."""

from __future__ import annotations

import ctypes.util
import glob
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..board import memory_map
from .msp430_elf import EM_MSP430, _image_of, read_elf
from .msp430_tools import (FlashCheckError, FlashError, _which, find_mspdebug, mspdebug_image,
                           mspdebug_path)

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


