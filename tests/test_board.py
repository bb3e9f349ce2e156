"""boards/msp430fr5994/board.toml states the chip's clock and memory map once: the linker scripts, the
planner's budgets, the flash check, the firmware's clock and the cost model all agree with it."""
import re

import pytest

from sparsenest import board
from sparsenest.analysis.cost import load_platform
from sparsenest.compiler.planner import CODE_RESERVE_BYTES, get_target
from sparsenest.paths import board_dir
from sparsenest.targets import firmware, msp430

MAP = board.memory_map("msp430fr5994")
REGION = re.compile(r"^\s*(\w+)\s*\(\w+\)\s*:\s*ORIGIN\s*=\s*(0x[0-9A-Fa-f]+),\s*LENGTH\s*=\s*(0x[0-9A-Fa-f]+)", re.M)


def _regions(script: str) -> dict[str, tuple[int, int]]:
    text = (board_dir("msp430fr5994") / script).read_text()
    return {name: (int(origin, 16), int(length, 16)) for name, origin, length in REGION.findall(text)}


def _expected(with_upper: bool) -> dict[str, tuple[int, int]]:
    regions = {"SRAM": (MAP.sram_base, MAP.cpu_sram_bytes), "LEA_RAM": (MAP.lea_base, MAP.lea_bytes),
               "LOWER_FRAM": (MAP.lower_fram_base, MAP.lower_fram_bytes),
               "SIGNATURES": (MAP.signatures_base, MAP.vectors_base - MAP.signatures_base),
               "VECTORS": (MAP.vectors_base, MAP.vectors_end - MAP.vectors_base)}
    if with_upper:
        regions["UPPER_FRAM"] = (MAP.upper_fram_base, MAP.upper_fram_bytes)
    return regions


@pytest.mark.parametrize("script,with_upper", [("msp430fr5994.ld", True), ("msp430fr5994_sim.ld", False)])
def test_linker_script_memory_regions_match_board_toml(script, with_upper):
    assert _regions(script) == _expected(with_upper)


def test_chip_linker_script_multiplier_base_matches_board_toml():
    text = (board_dir("msp430fr5994") / "msp430fr5994.ld").read_text()
    assert int(re.search(r"__sn_mpy_base\s*=\s*(0x[0-9A-Fa-f]+);", text).group(1), 16) == MAP.mpy32_base


def test_memory_map_is_consistent():
    assert MAP.sram_base + MAP.sram_bytes == MAP.lea_base + MAP.lea_bytes     # LEA RAM is the top of SRAM
    assert MAP.lower_fram_base < MAP.signatures_base < MAP.vectors_base < MAP.vectors_end <= MAP.upper_fram_base
    assert (MAP.lower_fram_bytes, MAP.upper_fram_bytes) == (49024, 0x34000)   # data sheet SLASE54


def test_build_side_reads_the_board():
    t = get_target("msp430fr5994")
    assert (t.sram_bytes, t.stack_reserve, t.lea_bytes) == (MAP.sram_bytes, MAP.cpu_sram_bytes, MAP.lea_bytes)
    assert t.fram_bytes == MAP.lower_fram_bytes - CODE_RESERVE_BYTES
    assert t.upper_fram_bytes == MAP.upper_fram_bytes
    assert firmware.MCLK_HZ == board.mclk_hz() == load_platform()["clock.mclk_hz"] == 16_000_000
    assert msp430.PROGRAMMABLE[-1][1] == MAP.fram_end and min(msp430.SIGNATURE_WORDS) == MAP.signatures_base


def test_missing_board_is_a_clear_error():
    with pytest.raises(board.BoardError, match="boards/<board>/board.toml"):
        board.board_values("no-such-board")
