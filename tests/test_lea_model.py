"""The simulator's LEA model (boards/msp430fr5994/sim/lea.c) against the numpy reference
(sparsenest.compiler.lea_ref), bit for bit, on random operands, saturation corners and every error path;
its costs against the platform TOML; the DSPLib shims compiled for the chip; and, in mspdebug's simulator,
the parameter blocks the compiled shims really write replayed through the model.

lea.c is built with gcc into a small shared library and driven through ctypes over a flat 64 KB byte
array (the bus), which also records every byte the model writes.
"""
import ctypes
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import numpy as np
import pytest

from sparsenest.targets import msp430
from sparsenest.compiler import lea_ref
from sparsenest.analysis.cost import load_platform
from sparsenest.paths import RUNTIME_DIR, board_dir

SIM = board_dir("msp430fr5994") / "sim"
DSPLIB = RUNTIME_DIR / "kernels_lea" / "dsplib"
LEA_SOURCES = [SIM / "lea.c", DSPLIB / "dsplib_cpu.c"]
START, END = lea_ref.LEA_RAM_START, lea_ref.LEA_RAM_END
BLOCK = 0x1C00          # parameter blocks live in plain SRAM, as the shims' static block does

RD8 = ctypes.CFUNCTYPE(ctypes.c_uint8, ctypes.c_void_p, ctypes.c_uint32)
WR8 = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint8)


class Bus(ctypes.Structure):
    _fields_ = [("ctx", ctypes.c_void_p), ("rd8", RD8), ("wr8", WR8)]


class Cost(ctypes.Structure):
    _fields_ = [("cycles", ctypes.c_uint64), ("lea_ops", ctypes.c_uint64), ("energy_nj", ctypes.c_double)]


class Costs(ctypes.Structure):
    _fields_ = [(name, ctypes.c_double) for name in lea_ref.LeaCosts.__dataclass_fields__]


class ScaleParams(ctypes.Structure):
    _fields_ = [("length", ctypes.c_uint16), ("scale", ctypes.c_int16), ("shift", ctypes.c_uint8)]


def _build(out: Path) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    so = out / "liblea.so"
    cmd = ["gcc", "-std=c11", "-O2", "-Wall", "-Wextra", "-Wconversion", "-Werror", "-ffp-contract=off",
           "-fPIC", "-shared", f"-I{SIM}", f"-I{DSPLIB}", *map(str, LEA_SOURCES), "-o", str(so), "-lm"]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return so


class Lea:
    """lea.c behind a flat 64 KB memory; records the addresses each call writes."""

    def __init__(self, so: Path, costs: lea_ref.LeaCosts | None):
        self.lib = ctypes.CDLL(str(so))
        self.lib.sim_lea_call.argtypes = [ctypes.POINTER(Bus), ctypes.c_uint16, ctypes.c_uint32,
                                          ctypes.POINTER(Cost), ctypes.c_char_p, ctypes.c_int]
        self.lib.sim_lea_set_costs.argtypes = [ctypes.POINTER(Costs)]
        self.mem = np.zeros(0x10000, np.uint8)
        self.written: list[int] = []
        self._rd = RD8(lambda ctx, a: int(self.mem[a]))
        self._wr = WR8(self._write)
        self.bus = Bus(None, self._rd, self._wr)
        if costs is not None:
            assert self.set_costs(costs) == lea_ref.OK

    def _write(self, ctx, a, v):
        self.written.append(a)
        self.mem[a] = v

    def set_costs(self, costs: lea_ref.LeaCosts) -> int:
        return self.lib.sim_lea_set_costs(ctypes.byref(Costs(*costs.as_tuple())))

    def put(self, addr: int, values, dtype=np.int16):
        raw = np.asarray(values, dtype).tobytes()
        self.mem[addr:addr + len(raw)] = np.frombuffer(raw, np.uint8)

    def get(self, addr: int, n: int, dtype=np.int16) -> np.ndarray:
        size = np.dtype(dtype).itemsize
        return self.mem[addr:addr + n * size].copy().view(dtype)

    def call(self, fn: str | int, words, block: int = BLOCK):
        self.put(block, [w & 0xFFFF for w in words], np.uint16)
        self.written = []
        cost, msg = Cost(), ctypes.create_string_buffer(256)
        code = lea_ref.FN[fn] if isinstance(fn, str) else fn
        rc = self.lib.sim_lea_call(ctypes.byref(self.bus), code, block, ctypes.byref(cost), msg, len(msg))
        return rc, cost, msg.value.decode()


@pytest.fixture(scope="module")
def lib_path(tmp_path_factory):
    return _build(tmp_path_factory.mktemp("lea"))


@pytest.fixture(scope="module")
def costs():
    return lea_ref.lea_costs()


@pytest.fixture
def lea(lib_path, costs):
    return Lea(lib_path, costs)


def _q15(rng, n, extreme=0.3):
    """Random Q15 values, a share of them at the extremes where saturation happens."""
    v = rng.integers(-32768, 32768, n)
    pick = rng.random(n) < extreme
    v[pick] = rng.choice([-32768, -32767, 32767, 0, 1, -1], pick.sum())
    return v.astype(np.int16)


def _addrs(rng, sizes):
    """Non-overlapping, 4-aligned LEA RAM addresses for operands of the given byte sizes."""
    total = sum((s + 3) // 4 * 4 for s in sizes)
    assert total <= END - START
    at = START + 4 * int(rng.integers(0, (END - START - total) // 4 + 1))
    out = []
    for s in sizes:
        out.append(at)
        at += (s + 3) // 4 * 4
    return out


def _only_wrote(lea, start, nbytes):
    assert lea.written and set(lea.written) <= set(range(start, start + nbytes))


def _check_cost(cost, costs, fn, **dims):
    want = lea_ref.cost_of(costs, fn, **dims)
    assert (cost.cycles, cost.lea_ops) == (want.cycles, want.lea_ops)
    assert cost.energy_nj == pytest.approx(want.energy_nj, rel=1e-12)


# ------------------------------------------------------------------------------------ contracts

def _defines(path: Path, prefix: str) -> dict[str, int]:
    text = path.read_text()
    return {m[1]: int(m[2].rstrip("u"), 0) for m in
            re.finditer(rf"#define\s+({prefix}\w+)\s+\(?(-?(?:0x[0-9A-Fa-f]+|\d+)u?)\)?", text)}


def test_constants_agree_across_header_reference_and_platform():
    fns = _defines(SIM / "lea.h", "SIM_LEA_FN_")
    assert {k.removeprefix("SIM_LEA_FN_").lower(): v for k, v in fns.items()} == lea_ref.FN
    codes = _defines(SIM / "lea.h", "SIM_LEA_E")
    assert (codes["SIM_LEA_ESIZE"], codes["SIM_LEA_EADDR"], codes["SIM_LEA_ERANGE"]) == \
        (lea_ref.SIZE_ERROR, lea_ref.INVALID_ADDRESS, lea_ref.OUT_OF_RANGE)
    assert (codes["SIM_LEA_EFN"], codes["SIM_LEA_ENOCOSTS"], codes["SIM_LEA_ECOSTS"]) == \
        (lea_ref.UNKNOWN_FUNCTION, lea_ref.NO_COSTS, lea_ref.BAD_COSTS)
    status = dict(re.findall(r"(MSP_\w+) = (\d+)", (DSPLIB / "DSPLib.h").read_text()))
    assert int(status["MSP_SIZE_ERROR"]) == lea_ref.SIZE_ERROR
    assert int(status["MSP_LEA_INVALID_ADDRESS"]) == lea_ref.INVALID_ADDRESS
    assert int(status["MSP_LEA_OUT_OF_RANGE"]) == lea_ref.OUT_OF_RANGE
    ram = _defines(SIM / "lea.h", "SIM_LEA_RAM_")
    p = load_platform()
    assert (ram["SIM_LEA_RAM_START"], ram["SIM_LEA_RAM_END"]) == (START, END)
    assert (p["lea.ram_base"], p["lea.ram_base"] + p["lea.ram_bytes"]) == (START, END)


def test_costs_come_from_the_platform_toml(lea):
    c = lea_ref.lea_costs()
    p = load_platform()
    assert c.cycles_per_call == p["lea.cycles_per_call"] == 616
    assert c.cycles_per_mac == p["lea.cycles_per_element"] == 1.5
    raw = tomllib.loads(Path(p.files[-1]).read_text())
    for key in lea_ref.COST_KEYS.values():            # each cited, each flagged as a model
        section, name = key.split(".")
        assert p.constants[key].source.strip()
        assert raw[section][name]["status"] == "model until a board measures it"
    # a 100-element MAC: 616 + 100 x 1.5 cycles, 204 + 100 x 0.527 nJ (the [AD] figures)
    lea.put(START, np.ones(100, np.int16))
    rc, cost, _ = lea.call("mac_q15", [100, START, START, START + 200])
    assert rc == 0 and cost.cycles == 766 and cost.lea_ops == 100
    assert cost.energy_nj == pytest.approx(204 + 52.7)
    # a 3-row matrix multiply: two further commands beyond the call
    rc, cost, _ = lea.call("matrix_mpy_q15", [3, 2, 2, 4, START, START + 16, START + 32])
    assert rc == 0 and cost.cycles == 616 + 2 * 616 + 3 * 2 * 4 * 1.5


def test_changed_costs_change_the_charge(lib_path, costs):
    lea = Lea(lib_path, lea_ref.LeaCosts(100, 50, 2, 0.5, 10, 1))
    rc, cost, _ = lea.call("fill_q15", [6, 7, START])
    assert rc == 0 and cost.cycles == 103 and cost.energy_nj == pytest.approx(16)
    rc, cost, _ = lea.call("fill_q15", [2, 7, START])       # 101 cycles exactly
    assert cost.cycles == 101
    lea.set_costs(lea_ref.LeaCosts(100, 50, 2, 0.25, 10, 1))
    rc, cost, _ = lea.call("fill_q15", [2, 7, START])       # 100.5 rounds up
    assert cost.cycles == 101


# ------------------------------------------------------------------------------ bit-exact, random

N_CASES = 25


def test_mac_random(lea, costs, rng):
    for _ in range(N_CASES):
        n = 2 * int(rng.integers(1, 400))
        a, b = _q15(rng, n), _q15(rng, n)
        pa, pb, pr = _addrs(rng, [2 * n, 2 * n, 4])
        lea.put(pa, a), lea.put(pb, b)
        rc, cost, msg = lea.call("mac_q15", [n, pa, pb, pr])
        assert rc == 0, msg
        assert int(lea.get(pr, 1, np.int32)[0]) == lea_ref.mac_q15(a, b)
        _only_wrote(lea, pr, 4)
        _check_cost(cost, costs, "mac_q15", length=n)


def test_matrix_mpy_random(lea, costs, rng):
    for _ in range(N_CASES):
        rows, inner, cols = int(rng.integers(1, 7)), 2 * int(rng.integers(1, 9)), 2 * int(rng.integers(1, 9))
        a, b = _q15(rng, rows * inner), _q15(rng, inner * cols)
        pa, pb, pd = _addrs(rng, [2 * a.size, 2 * b.size, 2 * rows * cols])
        lea.put(pa, a), lea.put(pb, b)
        rc, cost, msg = lea.call("matrix_mpy_q15", [rows, inner, inner, cols, pa, pb, pd])
        assert rc == 0, msg
        want = lea_ref.matrix_mpy_q15(a.reshape(rows, inner), b.reshape(inner, cols))
        np.testing.assert_array_equal(lea.get(pd, rows * cols).reshape(rows, cols), want)
        _only_wrote(lea, pd, 2 * rows * cols)
        _check_cost(cost, costs, "matrix_mpy_q15", rows=rows, inner=inner, cols=cols)


def test_fir_random(lea, costs, rng):
    for _ in range(N_CASES):
        n, taps = 2 * int(rng.integers(1, 64)), 2 * int(rng.integers(1, 13))
        x, h = _q15(rng, n + taps - 1), _q15(rng, taps)
        ps, ph, pd = _addrs(rng, [2 * (n + taps), 2 * taps, 2 * n])
        lea.put(ps, x), lea.put(ph, h)
        rc, cost, msg = lea.call("fir_q15", [n, taps, ph, 0, ps, pd])
        assert rc == 0, msg
        np.testing.assert_array_equal(lea.get(pd, n), lea_ref.fir_q15(x, h, n))
        _only_wrote(lea, pd, 2 * n)
        _check_cost(cost, costs, "fir_q15", length=n, taps=taps)


def test_fir_circular_buffer_wraps(lea, costs, rng):
    for n in (8, 16, 64):
        taps = 2 * int(rng.integers(1, n + 1))
        ring = _q15(rng, 2 * n)
        base = 0x3000                                   # aligned to 4n bytes for every n here
        first = 2 * int(rng.integers(0, n))             # the source pointer: 4-aligned inside the ring
        h = _q15(rng, taps)
        lea.put(base, ring), lea.put(START, h)
        rc, cost, msg = lea.call("fir_q15", [n, taps, START, 1, base + 2 * first, 0x3800])
        assert rc == 0, msg
        want = lea_ref.fir_q15(ring, h, n, circular=True, first=first)
        np.testing.assert_array_equal(lea.get(0x3800, n), want)
        # the same as a straight FIR over the unrolled ring
        unrolled = np.concatenate([ring, ring])[first:first + n + taps - 1]
        np.testing.assert_array_equal(want, lea_ref.fir_q15(unrolled, h, n))


@pytest.mark.parametrize("fn", ["add_q15", "mpy_q15"])
def test_binary_random(lea, costs, rng, fn):
    ref = getattr(lea_ref, fn)
    for _ in range(N_CASES):
        n = 2 * int(rng.integers(1, 340))
        a, b = _q15(rng, n), _q15(rng, n)
        pa, pb, pd = _addrs(rng, [2 * n] * 3)
        lea.put(pa, a), lea.put(pb, b)
        rc, cost, msg = lea.call(fn, [n, pa, pb, pd])
        assert rc == 0, msg
        np.testing.assert_array_equal(lea.get(pd, n), ref(a, b))
        _only_wrote(lea, pd, 2 * n)
        _check_cost(cost, costs, fn, length=n)


def test_offset_fill_copy_max_random(lea, costs, rng):
    for _ in range(N_CASES):
        n = 2 * int(rng.integers(1, 500))
        x, k = _q15(rng, n), int(_q15(rng, 1)[0])
        ps, pd = _addrs(rng, [2 * n, 2 * n])
        lea.put(ps, x)
        rc, cost, _ = lea.call("offset_q15", [n, k, ps, pd])
        assert rc == 0
        np.testing.assert_array_equal(lea.get(pd, n), lea_ref.offset_q15(x, k))
        _check_cost(cost, costs, "offset_q15", length=n)
        rc, cost, _ = lea.call("fill_q15", [n, k, pd])
        assert rc == 0 and (lea.get(pd, n) == k).all()
        _only_wrote(lea, pd, 2 * n)
        rc, cost, _ = lea.call("copy_q15", [n, ps, pd])
        assert rc == 0
        np.testing.assert_array_equal(lea.get(pd, n), x)
        x[rng.integers(0, n, 3)] = x.max()              # ties: the last occurrence wins
        lea.put(ps, x)
        rc, cost, _ = lea.call("max_q15", [n, ps, 0x2000, 0x2002])
        assert rc == 0
        assert (int(lea.get(0x2000, 1)[0]), int(lea.get(0x2002, 1, np.uint16)[0])) == lea_ref.max_q15(x)
        _only_wrote(lea, 0x2000, 4)
        _check_cost(cost, costs, "max_q15", length=n)


# ---------------------------------------------------------------------------- saturation corners

def test_mac_saturation_and_overflow_edges(lea):
    def mac(a, b):
        n = len(a)
        lea.put(START, a), lea.put(START + 0x800, b)
        assert lea.call("mac_q15", [n, START, START + 0x800, 0x3BF0])[0] == 0
        return int(lea.get(0x3BF0, 1, np.int32)[0])
    neg1 = np.full(2, -32768, np.int16)
    assert mac(neg1, neg1) == 2 ** 31 - 1                       # 2 * 2^31 saturates up
    assert mac(np.array([-32768, 0], np.int16), np.array([32767, 0], np.int16)) == -(2 ** 31) + 2 ** 16
    big = np.full(1000, -32768, np.int16)                     # both operands fit below 0x3BF0
    assert mac(big, np.full(big.size, 32767, np.int16)) == -(2 ** 31)   # saturates down
    a = np.array([-32768, 32767], np.int16)
    assert mac(a, np.array([-32768, 0], np.int16)) == 2 ** 31 - 1   # one -1*-1 product: 2^31 is one too many
    assert mac(a, np.array([-32768, -1], np.int16)) == 2 ** 31 - 2 * 32767   # back below: exact
    half = np.array([16384, 0], np.int16)
    assert mac(half, half) == 2 ** 29                           # 0.5 * 0.5 = 0.25 in Q31
    for a, b in [(neg1, neg1), (big, -big - 1), (a, half)]:
        assert mac(a, b) == lea_ref.mac_q15(a, b)


def test_q15_outputs_saturate_or_wrap_as_documented(lea):
    m = np.array([-32768, -32768, 32767, 32767], np.int16)
    lea.put(START, m), lea.put(START + 8, m)
    # add saturates both ways
    assert lea.call("add_q15", [4, START, START + 8, 0x3000])[0] == 0
    assert list(lea.get(0x3000, 4)) == [-32768, -32768, 32767, 32767]
    # mpy: -1 * -1 wraps to -1, 1 * 1 is 32766 (floor)
    assert lea.call("mpy_q15", [4, START, START + 8, 0x3000])[0] == 0
    assert list(lea.get(0x3000, 4)) == [-32768, -32768, 32766, 32766]
    # offset saturates
    assert lea.call("offset_q15", [4, -1, START, 0x3000])[0] == 0
    assert list(lea.get(0x3000, 4)) == [-32768, -32768, 32766, 32766]
    # matrix: (-1)(-1) + (-1)(-1) = 2 saturates to 32767; floor of a negative sum rounds down (-2^-15 -> -1)
    lea.put(0x3100, [-32768, -32768, 1, 0])
    lea.put(0x3200, [-32768, -1, -32768, -1])
    assert lea.call("matrix_mpy_q15", [2, 2, 2, 2, 0x3100, 0x3200, 0x3300])[0] == 0
    assert list(lea.get(0x3300, 4)) == [32767, 2, -1, -1]
    # fir saturates the same way and reads coefficients last to first
    lea.put(0x3400, [-32768, -32768, 0, 0, 0]), lea.put(0x3500, [-32768, -32768])
    assert lea.call("fir_q15", [2, 2, 0x3500, 0, 0x3400, 0x3600])[0] == 0
    assert list(lea.get(0x3600, 2)) == [32767, 32767]
    lea.put(0x3500, [16384, 0])                                 # y[i] = 0.5 * x[i+1]
    lea.put(0x3400, [0, -3, 5, 0])
    assert lea.call("fir_q15", [2, 2, 0x3500, 0, 0x3400, 0x3600])[0] == 0
    assert list(lea.get(0x3600, 2)) == [-2, 2]


def test_in_place_reads_before_writing(lea, rng):
    x, y = _q15(rng, 64), _q15(rng, 64)
    lea.put(START, x), lea.put(START + 128, y)
    assert lea.call("add_q15", [64, START, START + 128, START])[0] == 0
    np.testing.assert_array_equal(lea.get(START, 64), lea_ref.add_q15(x, y))
    lea.put(START, x)
    h = _q15(rng, 4)
    lea.put(0x3800, h)
    assert lea.call("fir_q15", [60, 4, 0x3800, 0, START, START])[0] == 0
    np.testing.assert_array_equal(lea.get(START, 60), lea_ref.fir_q15(x, h, 60))


# ---------------------------------------------------------------------------------- error paths

S, A, B, D = 0x2C00, 0x2E00, 0x3000, 0x3200
ERRORS = [
    # (function, block words, expected code, words of the message)
    ("mac_q15", [7, S, A, D], 1, "length 7 must be even"),
    ("mac_q15", [0, S, A, D], 1, "length 0"),
    ("mac_q15", [8, 0x2BFC, A, D], 5, "srcA at 0x2BFC is outside LEA RAM"),
    ("mac_q15", [8, S, 0x3C00, D], 5, "srcB at 0x3C00 is outside LEA RAM"),
    ("mac_q15", [8, S + 2, A, D], 5, "not 32-bit aligned"),
    ("mac_q15", [8, S, A, 0x3BFE], 5, "result at 0x3BFE is not 32-bit aligned"),
    ("mac_q15", [8, S, A, 0x3BFC + 4], 5, "result at 0x3C00"),
    ("mac_q15", [8, 0x3BF8, A, D], 6, "runs past the end of LEA RAM"),
    ("matrix_mpy_q15", [2, 4, 6, 2, S, A, D], 1, "srcACols 4 != srcBRows 6"),
    ("matrix_mpy_q15", [0, 4, 4, 2, S, A, D], 1, "srcARows is 0"),
    ("matrix_mpy_q15", [2, 3, 3, 2, S, A, D], 1, "srcACols 3"),
    ("matrix_mpy_q15", [2, 4, 4, 5, S, A, D], 1, "srcBCols 5"),
    ("matrix_mpy_q15", [2, 4, 4, 2, S, A, 0x3BFC], 6, "dst at 0x3BFC with 8 bytes"),
    ("matrix_mpy_q15", [40000, 4, 4, 2, S, A, D], 6, "srcA"),
    ("fir_q15", [6, 4, A, 1, S, D], 1, "power of two"),
    ("fir_q15", [4, 10, A, 1, S, D], 1, "exceeds the circular buffer"),
    ("fir_q15", [4, 2, A, 2, S, D], 1, "enableCircularBuffer is 2"),
    ("fir_q15", [4, 3, A, 0, S, D], 1, "tapLength 3"),
    ("fir_q15", [1024, 2, A, 1, S, D], 5, "circular buffer (aligned to 4*length bytes) at 0x2000"),
    ("fir_q15", [4, 4, A, 0, 0x3BF8, D], 6, "src at 0x3BF8 with 16 bytes"),
    ("fir_q15", [4, 4, A + 1, 0, S, D], 5, "coeffs at 0x2E01"),
    ("add_q15", [4, S, A, 0x4000], 5, "dst at 0x4000"),
    ("mpy_q15", [5, S, A, D], 1, "length 5"),
    ("offset_q15", [4, 3, 0x1C00, D], 5, "src at 0x1C00"),
    ("max_q15", [4, S, 0x2001, 0x2002], 5, "must be even"),
    ("max_q15", [4, 0x2C01, 0x2000, 0x2002], 5, "src at 0x2C01"),
    ("fill_q15", [2, 0, 0x3BFE], 5, "dst at 0x3BFE"),
    ("copy_q15", [2048, S, A], 6, "dst at 0x2E00 with 4096 bytes"),
    ("copy_q15", [2050, S, A], 6, "src at 0x2C00 with 4100 bytes"),
    (0, [2, S, A], -1, "unknown LEA function code 0"),
    (10, [2, S, A], -1, "unknown LEA function code 10"),
]


@pytest.mark.parametrize("fn,words,code,text", ERRORS, ids=[f"{e[0]}-{i}" for i, e in enumerate(ERRORS)])
def test_error_paths(lea, fn, words, code, text):
    lea.put(START, np.arange(2048, dtype=np.int16))
    rc, cost, msg = lea.call(fn, words)
    assert rc == code, msg
    assert text in msg
    name = fn if isinstance(fn, str) else "sim_lea_call"
    assert msg.startswith(f"msp_{name}:" if isinstance(fn, str) else name)
    assert lea.written == []                       # the bus saw no write at all
    assert (cost.cycles, cost.lea_ops, cost.energy_nj) == (0, 0, 0.0)


def test_costs_must_be_set_and_valid(lib_path, tmp_path):
    fresh = tmp_path / "liblea_fresh.so"            # a second copy: its own, never-set globals
    shutil.copy(lib_path, fresh)
    lea = Lea(fresh, None)
    rc, cost, msg = lea.call("fill_q15", [2, 1, START])
    assert rc == lea_ref.NO_COSTS and "sim_lea_set_costs" in msg and lea.written == []
    good = lea_ref.lea_costs()
    for bad in (-1.0, float("nan"), float("inf")):
        assert lea.set_costs(lea_ref.LeaCosts(*good.as_tuple()[:2], bad, *good.as_tuple()[3:])) == \
            lea_ref.BAD_COSTS
    assert lea.call("fill_q15", [2, 1, START])[0] == lea_ref.NO_COSTS   # a rejected set changes nothing
    assert lea.set_costs(good) == 0
    assert lea.call("fill_q15", [2, 1, START])[0] == 0


def test_messages_fit_small_buffers_and_outputs_are_optional(lib_path, costs):
    lea = Lea(lib_path, costs)
    lea.put(BLOCK, [7, S, A, D], np.uint16)
    cost, msg = Cost(), ctypes.create_string_buffer(12)
    rc = lea.lib.sim_lea_call(ctypes.byref(lea.bus), 1, BLOCK, ctypes.byref(cost), msg, len(msg))
    assert rc == 1 and msg.value == b"msp_mac_q15"[:11]
    assert lea.lib.sim_lea_call(ctypes.byref(lea.bus), 1, BLOCK, ctypes.byref(cost), None, 0) == 1
    lea.put(BLOCK, [8, S, A, D], np.uint16)                 # no cost wanted: NULL is accepted
    assert lea.lib.sim_lea_call(ctypes.byref(lea.bus), 1, BLOCK, None, None, 0) == 0


# ------------------------------------------------------------------------------- CPU-side DSPLib

def test_scale_q15_cpu_function(lib_path, rng):
    lib = ctypes.CDLL(str(lib_path))
    lib.msp_scale_q15.argtypes = [ctypes.POINTER(ScaleParams), ctypes.c_void_p, ctypes.c_void_p]
    for shift in (0, 1, 7, 15):
        for scale in (-32768, -1, 0, 1, 12345, 32767):
            x = _q15(rng, 64)
            out = np.zeros(64, np.int16)
            p = ScaleParams(64, scale, shift)
            assert lib.msp_scale_q15(ctypes.byref(p), x.ctypes.data, out.ctypes.data) == 0
            np.testing.assert_array_equal(out, lea_ref.scale_q15(x, scale, shift))
    x = np.zeros(4, np.int16)
    assert lib.msp_scale_q15(ctypes.byref(ScaleParams(3, 1, 0)), x.ctypes.data, x.ctypes.data) == 1
    assert lib.msp_scale_q15(ctypes.byref(ScaleParams(4, 1, 16)), x.ctypes.data, x.ctypes.data) == 2
    with pytest.raises(ValueError, match="shift 16"):
        lea_ref.scale_q15(x, 1, 16)


# ------------------------------------------------------------------------------ the chip's shims

def test_shims_compile_for_the_chip_with_werror(tmp_path):
    clang = shutil.which("clang-19")
    if clang is None:
        pytest.skip("clang-19 (MSP430 target) not installed")
    for src in (SIM / "dsplib_shim.c", DSPLIB / "dsplib_cpu.c"):
        cmd = [clang, "--target=msp430", "-mmcu=msp430fr5994", "-std=c99", "-Os", "-ffreestanding", "-Wall",
               "-Wextra", "-Wconversion", "-Werror", f"-I{DSPLIB}", f"-I{SIM}", "-c", str(src),
               "-o", str(tmp_path / (src.stem + ".o"))]
        subprocess.run(cmd, check=True, capture_output=True, text=True)


PROBE = r"""
/* Calls every shimmed DSPLib function once; after each call it logs the parameter block and the port. */
#include <stdint.h>
#include "DSPLib.h"
#include "lea.h"
#include "sn_board.h"

extern volatile uint16_t sim_lea_block[8];
SN_FRAM_NOINIT uint16_t probe_log[9][11];
SN_LEA_RAM _q15 a[8], b[8], d[8];
SN_LEA_RAM _iq31 r;
_q15 mx;
uint16_t ix;

static void log_call(uint16_t k)
{
    for (uint16_t i = 0; i < 8; i++)
        probe_log[k][i] = sim_lea_block[i];
    for (uint16_t i = 0; i < 3; i++)
        probe_log[k][8 + i] = *(volatile uint16_t *)(uintptr_t)(SIM_LEA_PORT_ADDR_LO + 2u * i);
}

int main(void)
{
    msp_mac_q15_params mac = {8};
    msp_matrix_mpy_q15_params mm = {2, 4, 4, 2};
    msp_fir_q15_params fir = {4, 4, b, true};
    msp_add_q15_params add = {8};
    msp_mpy_q15_params mpy = {8};
    msp_offset_q15_params off = {8, -1234};
    msp_max_q15_params max = {8};
    msp_fill_q15_params fill = {8, 777};
    msp_copy_q15_params copy = {8};
    (void)msp_mac_q15(&mac, a, b, &r);        log_call(0);
    (void)msp_matrix_mpy_q15(&mm, a, b, d);   log_call(1);
    (void)msp_fir_q15(&fir, a, d);            log_call(2);
    (void)msp_add_q15(&add, a, b, d);         log_call(3);
    (void)msp_mpy_q15(&mpy, a, b, d);         log_call(4);
    (void)msp_offset_q15(&off, a, d);         log_call(5);
    (void)msp_max_q15(&max, a, &mx, &ix);     log_call(6);
    (void)msp_fill_q15(&fill, d);             log_call(7);
    (void)msp_copy_q15(&copy, a, d);          log_call(8);
    return 0x5A;
}
"""


def test_compiled_shims_hand_the_model_what_it_expects(tmp_path, lib_path, costs, rng):
    """The shims, compiled for the chip and run in mspdebug (whose 0x0FF0 port is plain RAM), write
    blocks that lea.c, replayed over the same memory, turns into the reference results."""
    try:
        msp430.find_toolchain()
        msp430.find_mspdebug()
    except msp430.ToolchainError as e:
        pytest.skip(f"MSP430 toolchain absent ({e})")
    (tmp_path / "probe.c").write_text(PROBE)
    fw = msp430.build([tmp_path / "probe.c", SIM / "dsplib_shim.c"], tmp_path / "fw", image="sim",
                      include_dirs=[DSPLIB, SIM], name="probe")
    syms = msp430.symbols(fw.elf)
    res = msp430.simulate(fw.elf, outputs={"log": ("probe_log", 9 * 22)}, timeout_s=60)
    assert res.exit_code == 0x5A
    log = np.frombuffer(res.outputs["log"], np.uint16).reshape(9, 11)
    a, b, d, r = (syms[n][0] for n in ("a", "b", "d", "r"))
    mx, ix = syms["mx"][0], syms["ix"][0]
    assert all(START <= p < END and p % 4 == 0 for p in (a, b, d, r))
    expect = [  # (fn, words the block must hold)
        ("mac_q15", [8, a, b, r]), ("matrix_mpy_q15", [2, 4, 4, 2, a, b, d]), ("fir_q15", [4, 4, b, 1, a, d]),
        ("add_q15", [8, a, b, d]), ("mpy_q15", [8, a, b, d]), ("offset_q15", [8, -1234 & 0xFFFF, a, d]),
        ("max_q15", [8, a, mx, ix]), ("fill_q15", [8, 777, d]), ("copy_q15", [8, a, d])]
    lea = Lea(lib_path, costs)
    x, y = _q15(rng, 8), _q15(rng, 8)
    for row, (fn, words) in zip(log, expect):
        block = int(row[8]) | int(row[9]) << 16
        assert block == syms["sim_lea_block"][0] and row[10] == lea_ref.FN[fn]
        assert list(row[:len(words)]) == words, fn
        lea.put(a, x), lea.put(b, y)
        lea.put(block, row[:8], np.uint16)
        lea.written = []
        cost, msg = Cost(), ctypes.create_string_buffer(256)
        rc = lea.lib.sim_lea_call(ctypes.byref(lea.bus), int(row[10]), block, ctypes.byref(cost), msg, 256)
        assert rc == 0, msg.value
    # the last replayed call was copy: d == a; spot-check two others by replaying them alone
    np.testing.assert_array_equal(lea.get(d, 8), x)
    lea.put(block, log[0][:8], np.uint16)
    lea.lib.sim_lea_call(ctypes.byref(lea.bus), 1, block, ctypes.byref(Cost()), None, 0)
    assert int(lea.get(r, 1, np.int32)[0]) == lea_ref.mac_q15(x, y)
    lea.put(block, log[2][:8], np.uint16)
    ring_first = (a - (a & ~15)) // 2                   # the 8-sample ring is aligned to 16 bytes
    ring = lea.get(a & ~15, 8)                          # read before the call: d may share the ring
    lea.lib.sim_lea_call(ctypes.byref(lea.bus), 3, block, ctypes.byref(Cost()), None, 0)
    want = lea_ref.fir_q15(ring, y[:4], 4, circular=True, first=ring_first)
    np.testing.assert_array_equal(lea.get(d, 4), want)
