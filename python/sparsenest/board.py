"""A board's facts, stated once in boards/<board>/board.toml: clock, memory map, multiplier base, power,
DMA and LEA constants, each a [section.name] table with value, unit and source.

This module reads the values the build side needs (planner budgets, linker-region checks, the firmware's
clock define, flash checks); `sparsenest.analysis.cost.load_platform` reads the same file, validated
and with `extends`, for the cost model. tests/test_board.py checks the linker scripts against it.
"""
from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
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
