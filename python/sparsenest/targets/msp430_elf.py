"""MSP430 ELF files and their memory: a small ELF reader (sections, segments, symbols) and the size
report per region of the chip or simulator image."""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from .msp430_tools import BOARD_DIR, IMAGES, REGION_LABELS, RegionOverflowError

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


