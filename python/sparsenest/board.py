"""A board's facts, stated once in boards/<board>/board.toml: clock, memory map, multiplier base, power,
DMA and LEA constants, each a [section.name] table with value, unit and source.

`board_values` / `memory_map` / `mclk_hz` read the values the build side needs (planner budgets,
linker-region checks, the firmware's clock define, flash checks). `load_platform` reads the same file,
validated and with `extends` (a user file may start with ``extends = "msp430fr5994"`` and give only the
keys it changes), into a `Platform`: every constant with unit and source, and the derived numbers (active
power, energy per cycle, FRAM wait states, FRAM write energy) with their formulas, for the cost model
and the simulator. tests/test_board.py checks the linker scripts against the file.
"""
from __future__ import annotations

import copy
import functools
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .paths import board_dir

DEFAULT_BOARD = "msp430fr5994"


class BoardError(ValueError):
    """A board.toml is missing or lacks a value (the message names the file and key)."""


def board_toml(board: str = DEFAULT_BOARD) -> Path:
    return board_dir(board) / "board.toml"


@functools.cache
def board_values(board: str = DEFAULT_BOARD) -> dict[str, float | int]:
    """Every `[section.name] value = ...` of the board's file, as {"section.name": value}."""
    path = board_toml(board)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise BoardError(f"board file {path} does not exist (boards/<board>/board.toml)") from None
    except tomllib.TOMLDecodeError as e:
        raise BoardError(f"board file {path} is not valid TOML: {e}") from None
    return {f"{section}.{name}": ent["value"] for section, body in raw.items() if isinstance(body, dict)
            for name, ent in body.items() if isinstance(ent, dict) and "value" in ent}


def board_value(key: str, board: str = DEFAULT_BOARD) -> float | int:
    values = board_values(board)
    if key not in values:
        raise BoardError(f"{board_toml(board)}: no [{key}] value")
    return values[key]


def mclk_hz(board: str = DEFAULT_BOARD) -> int:
    """The CPU clock the firmware runs at (the C side gets it as -DSN_MCLK_HZ)."""
    return int(board_value("clock.mclk_hz", board))


@dataclass(frozen=True)
class MemoryMap:
    """Address ranges of one chip; ends are exclusive."""
    sram_base: int
    sram_bytes: int            # all SRAM, the LEA RAM included
    lea_base: int
    lea_bytes: int
    info_fram_base: int
    info_fram_bytes: int
    lower_fram_base: int
    signatures_base: int       # JTAG/BSL/IPE signature words, then the interrupt vectors
    vectors_base: int
    upper_fram_base: int
    fram_bytes: int            # lower FRAM (with signatures and vectors) + upper FRAM
    mpy32_base: int

    @property
    def cpu_sram_bytes(self) -> int:
        """SRAM below the LEA RAM: the board's .data/.bss and stack."""
        return self.lea_base - self.sram_base

    @property
    def lower_fram_bytes(self) -> int:
        """Lower FRAM that 16-bit code and data can use (up to the signatures)."""
        return self.signatures_base - self.lower_fram_base

    @property
    def vectors_end(self) -> int:
        """The interrupt vectors end the 16-bit address space (the reset vector is its last word)."""
        return 0x10000

    @property
    def fram_end(self) -> int:
        return self.lower_fram_base + self.fram_bytes

    @property
    def upper_fram_bytes(self) -> int:
        return self.fram_end - self.upper_fram_base


@functools.cache
def memory_map(board: str = DEFAULT_BOARD) -> MemoryMap:
    v = lambda key: int(board_value(key, board))  # noqa: E731
    return MemoryMap(sram_base=v("sram.base"), sram_bytes=v("sram.bytes"), lea_base=v("lea.ram_base"),
                     lea_bytes=v("lea.ram_bytes"), info_fram_base=v("fram.info_base"),
                     info_fram_bytes=v("fram.info_bytes"), lower_fram_base=v("fram.lower_base"),
                     signatures_base=v("fram.signatures_base"), vectors_base=v("fram.vectors_base"),
                     upper_fram_base=v("fram.upper_base"), fram_bytes=v("fram.bytes"),
                     mpy32_base=v("mpy32.base"))


# ============================================================================ platform (validated)

#: Every key a platform file must define (after `extends` is applied), as "section.name".
REQUIRED_KEYS = (
    "clock.mclk_hz", "clock.fram_max_nowait_hz", "clock.fram_wait_states", "clock.fram_cache_line_bytes",
    "clock.code_wait_fraction",
    "power.supply_v", "power.active_ua_per_mhz", "power.lpm3_ua", "power.lpm35_ua", "power.lpm45_ua",
    "power.wakeup_lpm3_nas", "power.reset_charge_nas",
    "fram.write_ns_per_word", "fram.write_energy_factor", "fram.bytes", "sram.bytes",
    "dma.cycles_per_transfer", "dma.sync_cycles", "dma.setup_cycles",
    "cpu.copy_cycles_per_word", "cpu.mul_c_cycles", "cpu.add_c_cycles", "cpu.mac_mpy32_cycles",
    "cpu.mac_c_multiply_cycles",
    "lea.cycles_per_element", "lea.cycles_per_call", "lea.nj_per_element", "lea.nj_per_call",
    "lea.ram_bytes", "lea.ram_base",
)
_TOP_KEYS = {"format", "version", "name", "description", "extends"}


class PlatformError(ValueError):
    """A platform file is missing, unreadable or has a missing / invalid key (the message names both)."""


@dataclass(frozen=True)
class Constant:
    value: float
    unit: str
    source: str


def _read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise PlatformError(f"platform file {path} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise PlatformError(f"platform file {path} is not valid TOML: {e}") from None


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and "value" not in v:
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _resolve_extends(path: Path, seen: tuple = ()) -> tuple[dict, list[str]]:
    raw = _read_toml(path)
    chain = [str(path)]
    parent = raw.get("extends")
    if parent is None:
        return raw, chain
    if not isinstance(parent, str):
        raise PlatformError(f"{path}: 'extends' must be a platform name or a path, not {parent!r}")
    cand = Path(parent)
    if not cand.suffix:
        cand = board_toml(parent)
    elif not cand.is_absolute():
        cand = path.parent / cand
    if cand.resolve() in seen:
        raise PlatformError(f"{path}: 'extends' loops back to {cand}")
    base, base_chain = _resolve_extends(cand, seen + (path.resolve(),))
    merged = _merge(base, {k: v for k, v in raw.items() if k != "extends"})
    return merged, base_chain + chain


@dataclass
class Platform:
    """Constants of one board. ``p["power.supply_v"]`` gives the value, ``p.source(key)`` its source."""
    name: str
    constants: dict[str, Constant]
    files: list[str] = field(default_factory=list)   # the files read, base first
    description: str = ""

    # -- access -------------------------------------------------------------------------------------
    def __getitem__(self, key: str) -> float:
        try:
            return self.constants[key].value
        except KeyError:
            raise PlatformError(f"platform {self.name!r} ({self.files[-1] if self.files else '?'}) "
                                f"has no constant {key!r}") from None

    def source(self, key: str) -> str:
        self[key]
        return self.constants[key].source

    def with_values(self, **values: float) -> "Platform":
        """A copy with some values replaced, e.g. ``p.with_values(**{"clock.mclk_hz": 8e6})``; the source
        of each replaced value says so."""
        consts = dict(self.constants)
        for k, v in values.items():
            old = consts.get(k)
            if old is None:
                raise PlatformError(f"platform {self.name!r}: no constant {k!r} to override")
            consts[k] = Constant(float(v), old.unit, f"override (was {old.value}: {old.source})")
        return Platform(self.name, consts, list(self.files), self.description)

    # -- derived ------------------------------------------------------------------------------------
    @property
    def mclk_hz(self) -> float:
        return float(self["clock.mclk_hz"])

    @property
    def wait_states(self) -> int:
        """FRAM wait states in force at this MCLK (0 at or below the no-wait limit)."""
        return int(self["clock.fram_wait_states"]) if self.mclk_hz > self["clock.fram_max_nowait_hz"] else 0

    @property
    def active_power_w(self) -> float:
        return self["power.active_ua_per_mhz"] * 1e-6 * (self.mclk_hz / 1e6) * self["power.supply_v"]

    @property
    def energy_per_cycle_j(self) -> float:
        return self.active_power_w / self.mclk_hz

    @property
    def fram_write_energy_j(self) -> float:
        """Extra energy charged per 16-bit FRAM word written (see fram.write_energy_factor)."""
        return self["fram.write_energy_factor"] * self.active_power_w * self["fram.write_ns_per_word"] * 1e-9

    @property
    def lpm3_power_w(self) -> float:
        return self["power.lpm3_ua"] * 1e-6 * self["power.supply_v"]

    @property
    def boot_energy_j(self) -> float:
        return self["power.reset_charge_nas"] * 1e-9 * self["power.supply_v"]

    def wait_cycles(self, core_cycles: float, fram_read_bytes: float, fram_write_bytes: float) -> float:
        """FRAM wait-state cycles: one penalty per cache line fetched by a sequential read stream, one per
        word written, plus code_wait_fraction of the core cycles (instruction fetch misses)."""
        ws = self.wait_states
        if ws == 0:
            return 0.0
        lines = math.ceil(fram_read_bytes / self["clock.fram_cache_line_bytes"]) if fram_read_bytes > 0 else 0
        words = math.ceil(fram_write_bytes / 2) if fram_write_bytes > 0 else 0
        return ws * (lines + words + self["clock.code_wait_fraction"] * core_cycles)

    def derived(self) -> dict[str, dict]:
        """Derived numbers with their formulas (what reports should print next to results)."""
        return {
            "wait_states": {"value": self.wait_states, "unit": "cycles per FRAM access",
                            "formula": "clock.fram_wait_states if clock.mclk_hz > clock.fram_max_nowait_hz else 0"},
            "active_power_w": {"value": self.active_power_w, "unit": "W",
                               "formula": "power.active_ua_per_mhz * MHz * power.supply_v"},
            "energy_per_cycle_nj": {"value": self.energy_per_cycle_j * 1e9, "unit": "nJ",
                                    "formula": "active_power_w / clock.mclk_hz"},
            "fram_write_energy_nj_per_word": {
                "value": self.fram_write_energy_j * 1e9, "unit": "nJ",
                "formula": "fram.write_energy_factor * active_power_w * fram.write_ns_per_word"},
            "fram_read_energy_nj_per_line_miss": {
                "value": self.wait_states * self.energy_per_cycle_j * 1e9, "unit": "nJ",
                "formula": "wait_states * energy_per_cycle (the data sheet gives no FRAM read energy: a read "
                           "costs its cycles at active current, plus the wait cycles above 8 MHz)"},
            "lpm3_power_uw": {"value": self.lpm3_power_w * 1e6, "unit": "uW",
                              "formula": "power.lpm3_ua * power.supply_v"},
            "boot_energy_uj": {"value": self.boot_energy_j * 1e6, "unit": "uJ",
                               "formula": "power.reset_charge_nas * power.supply_v"},
        }

    def table(self) -> str:
        """Every constant with unit and source, one per line."""
        w = max(len(k) for k in self.constants)
        return "\n".join(f"{k:<{w}}  {c.value:>12g} {c.unit:<28} {c.source}" for k, c in self.constants.items())


def load_platform(path: str | Path | None = None) -> Platform:
    """Load a platform TOML (default: the shipped boards/msp430fr5994/board.toml). A bare name
    ("msp430fr5994") picks a shipped board's file. Raises PlatformError naming the file and key for
    anything missing or invalid."""
    if path is None:
        path = DEFAULT_BOARD
    p = Path(path)
    if not p.suffix and not p.exists():
        p = board_toml(str(path))
    raw, chain = _resolve_extends(p)
    where = p if len(chain) == 1 else f"{p} (extending {', '.join(chain[:-1])})"
    if raw.get("format", "sparsenest-platform") != "sparsenest-platform":
        raise PlatformError(f"{where}: 'format' is {raw.get('format')!r}, expected 'sparsenest-platform'")
    consts: dict[str, Constant] = {}
    for section, body in raw.items():
        if section in _TOP_KEYS:
            continue
        if not isinstance(body, dict):
            raise PlatformError(f"{where}: top-level key {section!r} must be a table of constants")
        for name, ent in body.items():
            key = f"{section}.{name}"
            if not isinstance(ent, dict):
                raise PlatformError(f"{where}: {key} must be a table with value, unit and source, "
                                    f"e.g. [{key}] value = ... source = \"...\"")
            for need in ("value", "source"):
                if need not in ent:
                    raise PlatformError(f"{where}: {key} has no '{need}'")
            v = ent["value"]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise PlatformError(f"{where}: {key}.value must be a finite number, not {v!r}")
            if not isinstance(ent["source"], str) or not ent["source"].strip():
                raise PlatformError(f"{where}: {key}.source must be a non-empty string")
            consts[key] = Constant(float(v), str(ent.get("unit", "")), ent["source"])
    missing = [k for k in REQUIRED_KEYS if k not in consts]
    if missing:
        raise PlatformError(f"{where}: missing key{'s' if len(missing) > 1 else ''} "
                            f"{', '.join(missing)} (each needs a [section.name] table with value and source; "
                            f"or add extends = \"msp430fr5994\" to inherit the shipped values)")
    for k in ("clock.mclk_hz", "clock.fram_max_nowait_hz", "clock.fram_cache_line_bytes", "power.supply_v",
              "power.active_ua_per_mhz", "fram.write_ns_per_word", "lea.ram_bytes"):
        if consts[k].value <= 0:
            raise PlatformError(f"{where}: {k} must be > 0, got {consts[k].value}")
    for k, c in consts.items():
        if c.value < 0 and k != "lea.ram_base":
            raise PlatformError(f"{where}: {k} must be >= 0, got {c.value}")
    return Platform(str(raw.get("name", p.stem)), consts, chain, str(raw.get("description", "")))
