"""The MSP430 run-time helpers, memcpy/memset/memmove and the MAC dot products, run in mspdebug's
simulator on edge-case operands and compared with Python's integer arithmetic.

The self-test firmware (boards/msp430fr5994/selftest) reads a command and operands that the host
writes into FRAM before each run, so nothing is constant-folded; one build serves every test.
Division by zero follows the board's documented convention (mspabi.c): quotient all ones,
remainder = dividend; INT_MIN / -1 gives INT_MIN remainder 0.
"""
import itertools
import struct

import numpy as np
import pytest

from sparsenest.targets import msp430

SELFTEST = msp430.BOARD_DIR / "selftest"
VARIANTS = ["none", "16bit", "32bit", "f5series"]     # index = the firmware's variant number
ST_MUL, ST_DIV16, ST_DIV32, ST_DIV64, ST_SHIFT, ST_MULO, ST_MEM, ST_MAC = range(1, 9)


def _tools_or_skip():
    try:
        msp430.find_toolchain()
        msp430.find_mspdebug()
    except msp430.ToolchainError as e:
        pytest.skip(f"MSP430 toolchain absent ({e})")


@pytest.fixture(scope="module")
def selftest(tmp_path_factory):
    _tools_or_skip()
    srcs = [SELFTEST / "selftest_main.c", SELFTEST / "ops_div.c"]
    for v in VARIANTS:
        srcs.append((SELFTEST / "ops_mul.c", [f"-mhwmult={v}", f"-DST_VARIANT={v}",
                                              "-Wno-invalid-command-line-argument"]))
    fw = msp430.build(srcs, tmp_path_factory.mktemp("selftest"), image="sim", include_dirs=[SELFTEST],
                      name="selftest")
    return fw


def run(fw, cmd, blob, out_size, count=0, arg=0, count2=0):
    r = msp430.simulate(fw.elf, inputs={"st_cmd": struct.pack("<4H", cmd, count, arg, count2),
                                        "st_in": bytes(blob)},
                        outputs={"out": ("st_out", max(out_size, 2))}, timeout_s=60)
    assert r.exit_code == cmd, f"firmware rejected command {cmd} (exit {r.exit_code:#x})"
    return r, r.outputs["out"][:out_size]


# ---- host reference arithmetic --------------------------------------------------------------

def wrap(v, bits):
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def sdiv(a, b, bits):
    if b == 0:
        return -1, a
    q = abs(a) // abs(b)
    q = q if (a < 0) == (b < 0) else -q
    return wrap(q, bits), wrap(a - q * b, bits)


def udiv(a, b, bits):
    a &= (1 << bits) - 1
    b &= (1 << bits) - 1
    if b == 0:
        return (1 << bits) - 1, a
    return a // b, a % b


V16 = [0, 1, -1, 2, -2, 3, -3, 7, -7, 100, -100, 255, 256, 0x1234, -0x1234, 12345, -12345,
       32767, -32767, -32768]
V32 = [0, 1, -1, 2, -2, 3, 7, -7, 0x7FFF, 0x8000, -0x8000, 0xFFFF, 0x10000, 0x10001, -0x10000,
       0x12345678, -0x12345678, 1000000007, 46341, 2**31 - 1, -2**31, -2**31 + 1]
V64 = [0, 1, -1, 2, -3, 7, 2**31, 2**32 - 1, 2**32, 2**32 + 1, -2**32, 0x1FFFFFFFF,
       0x123456789ABCDEF0, -0x123456789ABCDEF, 10**18 + 9, 2**63 - 1, -2**63, -2**63 + 1]


def random_values(rng, bits, n):
    """Signed values of every magnitude: random bit lengths, random signs."""
    lengths = rng.integers(1, bits, size=n)
    vals = [int(rng.integers(0, 2**62)) * (2**bits) // (2**62) >> (bits - int(k)) for k in lengths]
    return [wrap(v if s else -v, bits) for v, s in zip(vals, rng.integers(0, 2, size=n))]


def pairs(values, rng, bits, extra):
    ps = list(itertools.product(values, repeat=2))
    r = random_values(rng, bits, 2 * extra)
    return ps + list(zip(r[::2], r[1::2]))


FMT = {16: "h", 32: "i", 64: "q"}


# ---- the helpers are really the ones LLVM calls -----------------------------------------------

EXPECTED_HELPERS = {
    "__mspabi_mpyi", "__mspabi_mpyi_hw", "__mspabi_mpyi_f5hw",
    "__mspabi_mpyl", "__mspabi_mpyl_hw", "__mspabi_mpyl_hw32", "__mspabi_mpyl_f5hw",
    "__mspabi_mpyll", "__mspabi_mpyll_hw", "__mspabi_mpyll_hw32", "__mspabi_mpyll_f5hw",
    "__mspabi_divi", "__mspabi_divu", "__mspabi_remi", "__mspabi_remu",
    "__mspabi_divli", "__mspabi_divul", "__mspabi_remli", "__mspabi_remul",
    "__mspabi_divlli", "__mspabi_divull", "__mspabi_remlli", "__mspabi_remull",
    "__mspabi_slll", "__mspabi_srll", "__mspabi_sral", "__mulosi4", "memcpy", "memset", "memmove",
}


def test_selftest_calls_every_helper(selftest):
    objs = sorted((selftest.elf.parent / "obj").glob("*.o"))
    test_objs = [o for o in objs if o.name.split("_", 1)[1].startswith(("selftest_main", "ops_"))]
    called = set().union(*(msp430.read_elf(o).undefined for o in test_objs))
    assert EXPECTED_HELPERS <= called, f"not exercised: {sorted(EXPECTED_HELPERS - called)}"
    defined = msp430.read_elf(selftest.elf).symbols
    assert EXPECTED_HELPERS <= set(defined)


def test_helpers_do_not_call_themselves(selftest):
    """A helper written with the operation it implements would compile to a call to itself."""
    for obj in (selftest.elf.parent / "obj").glob("*.o"):
        if obj.name.split("_", 1)[1] in ("mspabi_c.o", "mem_c.o"):
            assert msp430.read_elf(obj).undefined == set(), obj.name
    shim = next((selftest.elf.parent / "obj").glob("*mspabi_shim_S.o"))
    assert msp430.read_elf(shim).undefined == {"__sn_divlli", "__sn_divull", "__sn_remlli",
                                               "__sn_remull", "__sn_mpyll"}


# ---- multiply, every -mhwmult variant -------------------------------------------------------

@pytest.mark.parametrize("variant", VARIANTS)
def test_multiply_helpers(selftest, variant, rng):
    p16 = pairs(V16, rng, 16, 0)
    p32 = pairs(V32, rng, 32, 0)
    p64 = pairs(V64[:12], rng, 64, 0)
    blob = b"".join(struct.pack("<2h", *p) for p in p16) + \
        b"".join(struct.pack("<2i", *p) for p in p32) + b"".join(struct.pack("<2q", *p) for p in p64)
    out_size = 6 * len(p16) + 4 * len(p32) + 8 * len(p64)
    _, out = run(selftest, ST_MUL, blob, out_size, count=len(p16),
                 arg=VARIANTS.index(variant) | (len(p64) << 8), count2=len(p32))
    off = 0
    for a, b in p16:
        lo, wide = struct.unpack_from("<Hi", out, off)
        off += 6
        assert lo == (a * b) & 0xFFFF, f"{variant}: (uint16){a}*{b}"
        assert wide == a * b, f"{variant}: (int32){a}*{b}"
    for a, b in p32:
        (r,) = struct.unpack_from("<I", out, off)
        off += 4
        assert r == (a * b) & 0xFFFFFFFF, f"{variant}: 32-bit {a}*{b}"
    for a, b in p64:
        (r,) = struct.unpack_from("<Q", out, off)
        off += 8
        assert r == (a * b) & (2**64 - 1), f"{variant}: 64-bit {a}*{b}"


# ---- divide and remainder ---------------------------------------------------------------------

@pytest.mark.parametrize("bits,cmd,values,extra", [(16, ST_DIV16, V16, 40), (32, ST_DIV32, V32, 100),
                                                   (64, ST_DIV64, V64, 60)])
def test_divide_and_remainder(selftest, bits, cmd, values, extra, rng):
    ps = pairs(values, rng, bits, extra)
    f = FMT[bits]
    blob = b"".join(struct.pack(f"<2{f}", *p) for p in ps)
    _, out = run(selftest, cmd, blob, 4 * (bits // 8) * len(ps), count=len(ps))
    got = struct.unpack(f"<{4 * len(ps)}{f}", out)
    bad = []
    for i, (a, b) in enumerate(ps):
        q, r = sdiv(a, b, bits)
        uq, ur = udiv(a, b, bits)
        want = (q, wrap(uq, bits), r, wrap(ur, bits))
        if tuple(got[4 * i: 4 * i + 4]) != want:
            bad.append(f"a={a} b={b}: got {got[4 * i: 4 * i + 4]} want {want}")
    assert not bad, f"{len(bad)} of {len(ps)} {bits}-bit cases wrong, e.g.\n" + "\n".join(bad[:8])


def test_division_by_zero_convention(selftest):
    """Documented in mspabi.c: x / 0 = all ones, x % 0 = x, for every width and signedness."""
    for bits, cmd in ((16, ST_DIV16), (32, ST_DIV32), (64, ST_DIV64)):
        lo = -2 ** (bits - 1)
        ps = [(5, 0), (-5, 0), (0, 0), (lo, 0), (lo, -1)]
        f = FMT[bits]
        _, out = run(selftest, cmd, b"".join(struct.pack(f"<2{f}", *p) for p in ps),
                     4 * (bits // 8) * len(ps), count=len(ps))
        got = struct.unpack(f"<{4 * len(ps)}{f}", out)
        assert got[0:4] == (-1, -1, 5, 5)
        assert got[4:8] == (-1, -1, -5, -5)
        assert got[8:12] == (-1, -1, 0, 0)
        assert got[12:16] == (-1, -1, lo, lo)
        assert got[16:20] == (lo, 0, 0, lo)      # INT_MIN / -1: quotient INT_MIN, remainder 0


# ---- 32-bit shifts and __mulosi4 --------------------------------------------------------------

def test_shift_helpers(selftest):
    xs = [0, 1, -1, 0x12345678, -0x12345678, -2**31, 2**31 - 1, 0x8000, -65536]
    ns = [0, 1, 2, 7, 8, 9, 15, 16, 17, 23, 24, 31]
    recs = list(itertools.product(xs, ns))
    blob = b"".join(struct.pack("<ih", x, n) for x, n in recs)
    _, out = run(selftest, ST_SHIFT, blob, 12 * len(recs), count=len(recs))
    got = struct.unpack(f"<{3 * len(recs)}i", out)
    for i, (x, n) in enumerate(recs):
        want = (wrap(x << n, 32), wrap((x & 0xFFFFFFFF) >> n, 32), x >> n)
        assert got[3 * i: 3 * i + 3] == want, f"x={x:#x} n={n}"


def test_mul_overflow_helper(selftest, rng):
    ps = pairs(V32, rng, 32, 50)
    _, out = run(selftest, ST_MULO, b"".join(struct.pack("<2i", *p) for p in ps), 6 * len(ps), count=len(ps))
    for i, (a, b) in enumerate(ps):
        r, ovf = struct.unpack_from("<iB", out, 6 * i)
        p = a * b
        assert (r, bool(ovf)) == (wrap(p, 32), not -2**31 <= p < 2**31), f"{a}*{b}"


# ---- memcpy / memset / memmove ----------------------------------------------------------------

def _initial():
    return bytearray((k * 7 + 3) & 0xFF for k in range(64))


def _mem_cases(op):
    if op == 0:    # memcpy: dst in [0, 32), src = 32 + s: never overlapping
        return [(0, d, s, n) for d in range(4) for s in range(4) for n in (0, 1, 2, 3, 4, 5, 7, 8, 15, 16, 27)]
    if op == 1:
        return [(1, d, v, n) for d in range(4) for v in (0, 0xA5, 0xFF) for n in (0, 1, 2, 3, 4, 5, 16, 31, 60)]
    return [(2, s + k, s, n) for s in (8, 9) for k in (-8, -3, -2, -1, 0, 1, 2, 3, 8)
            for n in (0, 1, 2, 3, 7, 8, 17, 30)]


@pytest.mark.parametrize("op,name", [(0, "memcpy"), (1, "memset"), (2, "memmove")])
def test_memory_functions(selftest, op, name):
    cases = _mem_cases(op)
    _, out = run(selftest, ST_MEM, b"".join(bytes(c) for c in cases), 66 * len(cases), count=len(cases))
    for i, (_, d, s, n) in enumerate(cases):
        buf = _initial()
        if op == 0:
            buf[d: d + n] = buf[32 + s: 32 + s + n]
        elif op == 1:
            buf[d: d + n] = bytes([s]) * n
        else:
            buf[d: d + n] = bytes(buf[s: s + n])
        rec = out[66 * i: 66 * i + 66]
        assert rec[:64] == buf, f"{name}(buf+{d}, {s}, {n})"
        assert rec[64] == 1, f"{name} did not return dst"


# ---- MAC dot products -------------------------------------------------------------------------

def _mac_blob(rng, cases):
    A = rng.integers(-32768, 32768, size=512, dtype=np.int64)
    B = rng.integers(-32768, 32768, size=1024, dtype=np.int64)
    A[:8] = -32768          # 4 products of 2^30 overflow int32: the sum must wrap like uint32
    B[:8] = -32768
    IDX = rng.integers(0, 1024, size=512, dtype=np.int64)
    blob = bytearray(4608)
    struct.pack_into("<H", blob, 0, len(cases))
    for i, (kind, n, stride, acc) in enumerate(cases):
        struct.pack_into("<HHHHi", blob, 8 + 12 * i, kind, n, stride, 0, acc)
    blob[512:1536] = A.astype("<i2").tobytes()
    blob[1536:3584] = B.astype("<i2").tobytes()
    blob[3584:4608] = IDX.astype("<u2").tobytes()
    return bytes(blob), A, B, IDX


def _mac_ref(kind, n, stride, acc, A, B, IDX):
    if kind == 0:
        s = int(np.dot(A[:n], B[:n]))
    elif kind == 1:
        s = int(np.dot(A[:n], B[: n * stride: stride])) if n else 0
    else:
        s = int(np.dot(A[:n], B[IDX[:n]]))
    return wrap(acc + s, 32)


def test_mac_dot_products_match_host(selftest, rng):
    accs = (0, 12345, -2**31, 2**31 - 1)
    cases = [(0, n, 0, accs[i % 4]) for i, n in enumerate((0, 1, 2, 3, 4, 5, 7, 8, 64, 255, 256, 512))]
    cases += [(0, 8, 0, acc) for acc in accs]
    cases += [(1, n, st, 7) for n in (0, 1, 5, 33) for st in (1, 2, 3, 16)]
    cases += [(2, n, 0, -3) for n in (0, 1, 2, 3, 17, 512)]
    assert 8 + 12 * len(cases) <= 512
    blob, A, B, IDX = _mac_blob(rng, cases)
    _, out = run(selftest, ST_MAC, blob, 4 * len(cases))
    got = struct.unpack(f"<{len(cases)}i", out)
    for g, c in zip(got, cases):
        assert g == _mac_ref(*c, A, B, IDX), f"kind={c[0]} n={c[1]} stride={c[2]} acc={c[3]}"
    assert _mac_ref(0, 4, 0, 0, A, B, IDX) == 0    # 4 * 2^30 wrapped: the test data does wrap


def test_mac_uses_the_multiplier_registers(selftest, rng):
    """Regression guard for the fast path: a dense MAC costs 2.5 instructions per element
    (two register writes, plus the loop's dec/jnz per four elements), not a helper call."""
    per = {}
    for kind, n in ((0, 0), (0, 512), (2, 0), (2, 512)):
        blob, *_ = _mac_blob(rng, [(kind, n, 0, 0)])
        r, _ = run(selftest, ST_MAC, blob, 4)
        per[kind, n] = r
    dense = (per[0, 512].instructions - per[0, 0].instructions) / 512
    gather = (per[2, 512].instructions - per[2, 0].instructions) / 512
    dense_cyc = (per[0, 512].cycles - per[0, 0].cycles) / 512
    print(f"\nMAC cost in the simulator: dense {dense:.2f} instr / {dense_cyc:.1f} cycles per element, "
          f"gather {gather:.2f} instr per element ({msp430.CYCLE_NOTE[:60]}...)")
    assert dense <= 2.55
    assert gather <= 7.01
