"""MSP430FR5994 build path: toolchain discovery errors, region overflow errors, the size report,
the simulator driver, and the pre-flash check (good and bad images). Nothing here touches a board."""
import struct
from pathlib import Path

import pytest

from sparsenest.targets import msp430


def _tools_or_skip():
    try:
        msp430.find_toolchain()
        msp430.find_mspdebug()
    except msp430.ToolchainError as e:
        pytest.skip(f"MSP430 toolchain absent ({e})")


def build_c(tmp_path, code, *, image="fr5994", name="fw", **kw):
    _tools_or_skip()
    src = tmp_path / f"{name}.c"
    src.write_text('#include <stdint.h>\n#include "sn_board.h"\n' + code)
    return msp430.build([src], tmp_path / f"build_{name}_{image}", image=image, name=name, **kw)


GOOD = """
#include "sn_uart.h"
SN_UPPER_CONST const int16_t weights[10000] = {1, 2, 3};      /* 20000 bytes in upper FRAM */
SN_DEFINE_FAR_ADDR(weights_far, weights);
SN_LEA_RAM int16_t lea_buf[500];                              /* 1000 bytes of LEA RAM */
SN_PERSISTENT uint16_t level = 2;
SN_NOINIT int16_t input[4];
int16_t table[50] = {7, 7, 7};                                /* .data: 100 bytes */
int32_t result;
__attribute__((noinline)) void mark_start(void) { __asm__ volatile(""); }
int main(void) {
    int16_t w[4];
    mark_start();
    sn_far_read(w, weights_far, sizeof w);
    lea_buf[0] = w[1];
    result = (int32_t)w[0] * input[0] + (int32_t)w[2] * input[1] + table[0] + lea_buf[0] + level;
    sn_uart_init(SN_UART_115200);
    sn_uart_puts("result=");
    sn_uart_put_i32(result);
    return 42;
}
"""


# ---- toolchain discovery ---------------------------------------------------------------------

def test_missing_compiler_names_tool_and_package():
    with pytest.raises(msp430.ToolchainError) as e:
        msp430.find_toolchain(path="/nonexistent")
    assert "clang-19" in str(e.value) and "apt-get install clang-19" in str(e.value)


def test_missing_linker_names_tool_and_package(tmp_path):
    _tools_or_skip()
    (tmp_path / "clang-19").symlink_to(msp430.find_toolchain().cc)
    with pytest.raises(msp430.ToolchainError) as e:
        msp430.find_toolchain(path=str(tmp_path))
    assert "ld.lld-19" in str(e.value) and "apt-get install lld-19" in str(e.value)


def test_missing_tools_on_path_fail_build_and_simulate_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(msp430.ToolchainError, match="clang-19"):
        msp430.build([tmp_path / "x.c"], tmp_path / "b")
    with pytest.raises(msp430.ToolchainError, match="apt-get install mspdebug"):
        msp430.simulate(tmp_path / "x.elf")


def test_cc_selects_msp430_gcc_and_ignores_a_host_compiler(monkeypatch):
    monkeypatch.setenv("CC", "msp430-elf-gcc")
    with pytest.raises(msp430.ToolchainError) as e:
        msp430.find_toolchain(path="/nonexistent")
    assert "msp430-elf-gcc" in str(e.value) and "MSP430-GCC" in str(e.value)
    monkeypatch.setenv("CC", "gcc")           # a host compiler in CC is not an MSP430 compiler
    _tools_or_skip()
    assert msp430.find_toolchain().flavor == "clang"


# ---- region overflow -------------------------------------------------------------------------

def test_lower_fram_overflow_names_region_and_bytes(tmp_path):
    code = "volatile int i = 3;\nconst uint8_t big[60000] = {1};\nint main(void) { return big[i]; }\n"
    with pytest.raises(msp430.RegionOverflowError) as e:
        build_c(tmp_path, code)
    err = e.value
    assert err.region == "LOWER_FRAM"
    assert "lower FRAM" in str(err) and f"overflowed by {err.bytes_over} bytes" in str(err)
    assert 60000 - 0xBF80 < err.bytes_over < 60000 - 0xBF80 + 4000     # the array + a little code
    assert "SN_UPPER_CONST" in str(err)                                # says what to do


def test_sram_overflow_names_region(tmp_path):
    with pytest.raises(msp430.RegionOverflowError) as e:
        build_c(tmp_path, "uint8_t buf[5000];\nint main(void) { buf[9] = 1; return buf[3]; }\n")
    assert e.value.region == "SRAM" and "SRAM" in str(e.value)


def test_stack_reserve_counts_against_sram(tmp_path):
    code = "uint8_t buf[1000];\nint main(void) { buf[9] = 1; return buf[3]; }\n"
    build_c(tmp_path, code, stack_size=2048)
    with pytest.raises(msp430.RegionOverflowError) as e:
        build_c(tmp_path, code, stack_size=3200)
    assert e.value.region == "SRAM"


# ---- size report -----------------------------------------------------------------------------

def test_size_report_regions(tmp_path):
    fw = build_c(tmp_path, GOOD)
    r = fw.regions
    assert set(r) == {"LOWER_FRAM", "UPPER_FRAM", "SRAM", "LEA_RAM", "VECTORS", "SIGNATURES"}
    assert r["UPPER_FRAM"].sections == {".upper.rodata": 20000}
    assert r["LEA_RAM"].used == 1000
    assert r["SRAM"].sections[".data"] == 100
    assert r["SRAM"].sections["stack reserve"] == 512
    assert r["LOWER_FRAM"].sections[".data (load image)"] == 100       # its initial values live in FRAM
    assert r["LOWER_FRAM"].sections[".persistent"] == 2
    assert r["LOWER_FRAM"].sections[".text"] > 200
    assert r["VECTORS"].used == 112 and r["SIGNATURES"].used == 0
    for u in r.values():
        assert u.used == sum(u.sections.values()) and u.free == u.region.length - u.used
    text = msp430.format_size_report(r)
    for label in ("lower FRAM", "upper FRAM", "SRAM", "LEA RAM"):
        assert label in text
    assert (fw.elf.parent / "fw.size.txt").read_text().strip() == text
    # Intel HEX reaching upper FRAM through an extended segment (0x1000 << 4) or linear address record
    hex_lines = fw.hex.read_text().split()
    assert all(line.startswith(":") for line in hex_lines)
    assert ":020000021000EC" in hex_lines or ":020000040001F9" in hex_lines

    sim = build_c(tmp_path, GOOD, image="sim")
    assert "UPPER_FRAM" not in sim.regions
    assert sim.regions["LOWER_FRAM"].sections[".upper.rodata"] == 20000


def test_memory_regions_follow_the_linker_scripts():
    real = msp430.memory_regions("fr5994")
    assert (real["LOWER_FRAM"].origin, real["LOWER_FRAM"].end) == (0x4000, 0xFF80)
    assert (real["UPPER_FRAM"].origin, real["UPPER_FRAM"].end) == (0x10000, 0x44000)
    assert (real["SRAM"].origin, real["LEA_RAM"].origin, real["LEA_RAM"].end) == (0x1C00, 0x2C00, 0x3C00)
    assert (real["VECTORS"].origin, real["VECTORS"].end) == (0xFF90, 0x10000)
    assert "UPPER_FRAM" not in msp430.memory_regions("sim")


def test_images_differ_in_multiplier_base_and_start_up(tmp_path):
    _tools_or_skip()
    real = msp430.read_elf(build_c(tmp_path, GOOD).elf)
    sim = msp430.read_elf(build_c(tmp_path, GOOD, image="sim").elf)
    assert real.symbols["__sn_mpy_base"].value == 0x04C0 and sim.symbols["__sn_mpy_base"].value == 0x0130

    def words(e, sym):
        s, t = e.symbols[sym], e.section(".text")
        code = e.data[t.offset + s.value - t.addr: t.offset + s.value - t.addr + 64]
        return [struct.unpack_from("<H", code, i)[0] for i in range(0, len(code), 2)]
    # bic #LOCKLPM5, &PM5CTL0 (0xC392 0x0130) only in the chip's start-up
    assert 0x0130 in words(real, "__sn_reset") and 0x0130 not in words(sim, "__sn_reset")


# ---- link-time errors with a hint ------------------------------------------------------------

def test_direct_access_to_upper_fram_fails_with_hint(tmp_path):
    code = ("SN_UPPER_CONST const int16_t big[8] = {1};\nvolatile int16_t sink;\n"
            "int main(void) { for (int i = 0; i < 8; i++) sink = big[i]; return 0; }\n")
    with pytest.raises(msp430.BuildError) as e:
        build_c(tmp_path, code)
    assert "sn_far_read" in str(e.value) and "out of range" in str(e.value)
    build_c(tmp_path, code, image="sim")    # the simulator image has it below 64 KB


def test_unplaced_section_is_an_error(tmp_path):
    code = '__attribute__((section(".mystuff"))) int x = 1;\nint main(void) { return x; }\n'
    with pytest.raises(msp430.BuildError) as e:
        build_c(tmp_path, code)
    assert ".mystuff" in str(e.value) and "sections.ld" in str(e.value)


def test_float_is_reported_as_unsupported(tmp_path):
    code = "volatile float f = 1.5f;\nint main(void) { return (int)(f * f); }\n"
    with pytest.raises(msp430.BuildError, match="floating-point"):
        build_c(tmp_path, code)


# ---- simulator driver ------------------------------------------------------------------------

def test_simulate_runs_to_halt_with_inputs_outputs_marks(tmp_path):
    fw = build_c(tmp_path, GOOD, image="sim")
    r = msp430.simulate(fw.elf, inputs={"input": struct.pack("<4h", 3, -5, 0, 0)},
                        outputs={"result": "result", "table": ("table", 4)}, marks=["main", "mark_start"])
    want = 1 * 3 + 3 * -5 + 7 + 2 + 2
    assert struct.unpack("<i", r.outputs["result"])[0] == want
    assert r.outputs["table"] == struct.pack("<2h", 7, 7)
    assert r.exit_code == 42
    assert r.uart == f"result={want}"
    assert 0 < r.marks["main"].instructions < r.marks["mark_start"].instructions < r.instructions
    span = r.between("mark_start")
    assert 0 < span.instructions < r.instructions and span.cycles > span.instructions
    assert 0 < r.stack_used < 512
    assert not r.cycles_exact and "over-count" in r.cycle_note


def test_simulate_rejects_bad_requests(tmp_path):
    sim = build_c(tmp_path, GOOD, image="sim")
    with pytest.raises(msp430.SimError, match="start-up overwrites"):
        msp430.simulate(sim.elf, inputs={"result": b"\1\0\0\0"})      # .bss is zeroed after loading
    with pytest.raises(msp430.SimError, match="not in"):
        msp430.simulate(sim.elf, outputs=["no_such_symbol"])
    real = build_c(tmp_path, GOOD)
    with pytest.raises(msp430.SimError, match="image='sim'"):
        msp430.simulate(real.elf)


def test_simulate_reports_trap_and_timeout(tmp_path):
    trap = build_c(tmp_path, "int main(void) { ((void (*)(void))0x4000)(); return 0; }\n",
                   image="sim", name="trap")
    with pytest.raises(msp430.SimError, match="unexpected_isr"):
        msp430.simulate(trap.elf)
    hang = build_c(tmp_path, "volatile int go = 1;\nint main(void) { while (go) ; return 0; }\n",
                   image="sim", name="hang")
    with pytest.raises(msp430.SimError, match="did not reach __halt"):
        msp430.simulate(hang.elf, timeout_s=0.5)


def test_interrupt_vectors(tmp_path):
    code = "volatile int n;\nSN_ISR(44, on_timer) { n++; }\nint main(void) { return n; }\n"
    fw = build_c(tmp_path, code)
    e = msp430.read_elf(fw.elf)
    vec = e.section(".vectors")
    table = struct.unpack("<56H", e.data[vec.offset: vec.offset + 112])
    assert table[44 - 8] == e.symbols["on_timer"].value             # slot 44 at 0xFFD8
    assert table[63 - 8] == e.symbols["__sn_reset"].value            # reset at 0xFFFE
    assert all(v == 0x4000 for i, v in enumerate(table) if i not in (44 - 8, 63 - 8))
    assert e.symbols["__sn_unexpected_isr"].value == 0x4000


# ---- flash check and flash -------------------------------------------------------------------

def test_flash_check_passes_a_good_image(tmp_path):
    fw = build_c(tmp_path, GOOD)
    rep = msp430.flash_check(fw.elf)
    assert rep.ok and rep.verified_in_sim
    assert any(".upper.rodata" in names for _, _, names in rep.segments)
    assert any("not verified" in w for w in rep.warnings)      # upper FRAM is beyond the simulator


def _patch_segment(elf_path, out_path, section, new_paddr):
    data = bytearray(Path(elf_path).read_bytes())
    e = msp430.read_elf(elf_path)
    sec = e.section(section)
    phoff, phentsize, phnum = struct.unpack_from("<I", data, 28)[0], *struct.unpack_from("<HH", data, 42)
    for i in range(phnum):
        off = phoff + i * phentsize
        p_type, p_offset, p_vaddr = struct.unpack_from("<III", data, off)
        if p_type == 1 and p_vaddr == sec.addr:
            struct.pack_into("<II", data, off + 8, new_paddr, new_paddr)
            Path(out_path).write_bytes(bytes(data))
            return
    raise AssertionError(f"no segment starts at {section}")


@pytest.mark.parametrize("addr", [0x50000, 0x1C00, 0x0200])
def test_flash_check_rejects_segment_outside_device_memory(tmp_path, addr):
    fw = build_c(tmp_path, GOOD)
    bad = tmp_path / "bad.elf"
    _patch_segment(fw.elf, bad, ".upper.rodata", addr)
    with pytest.raises(msp430.FlashCheckError) as e:
        msp430.flash_check(bad)
    assert f"0x{addr:05X}" in str(e.value) and "outside" in str(e.value) and ".upper.rodata" in str(e.value)


@pytest.mark.parametrize("section,words,what", [(".jtagsignature", (0x5555, 0x5555), "JTAG"),
                                                (".bslsignature", (0x5555, 0xFFFF), "BSL"),
                                                (".ipesignature", (0x0001, 0xFFFF), "IPE")])
def test_flash_check_refuses_locking_signatures(tmp_path, section, words, what):
    code = (f'__attribute__((section("{section}"), used)) const uint16_t sig[2] = {{{words[0]}, {words[1]}}};\n'
            "int main(void) { return 0; }\n")
    fw = build_c(tmp_path, code)
    assert fw.regions["SIGNATURES"].used == 4
    with pytest.raises(msp430.FlashCheckError) as e:
        msp430.flash_check(fw.elf)
    assert what in str(e.value) and f"0x{words[0]:04X}" in str(e.value)
    # flash() checks before anything else: a locking image is never written
    with pytest.raises(msp430.FlashCheckError):
        msp430.flash(fw.elf)


def test_flash_check_rejects_simulator_image_and_missing_reset(tmp_path):
    sim = build_c(tmp_path, GOOD, image="sim")
    with pytest.raises(msp430.FlashCheckError, match="simulator"):
        msp430.flash_check(sim.elf)
    fw = build_c(tmp_path, GOOD)
    no_vec = tmp_path / "novec.elf"
    _patch_segment(fw.elf, no_vec, ".vectors", 0x8000)       # vectors moved: no reset vector
    with pytest.raises(msp430.FlashCheckError, match="no reset vector"):
        msp430.flash_check(no_vec)


def test_flash_without_ti_library_says_what_to_install(tmp_path):
    if msp430.find_libmsp430() is not None:
        pytest.skip("TI's libmsp430.so is installed: not flashing a board from the test suite")
    fw = build_c(tmp_path, GOOD)
    with pytest.raises(msp430.FlashError) as e:
        msp430.flash(fw.elf)
    msg = str(e.value)
    assert "MSP Debug Stack" in msg and "libmsp430.so" in msg and "mspdebug tilib" in msg
    assert "python-msp430-tools" in msg and "msp430.bsl5.uart" in msg
