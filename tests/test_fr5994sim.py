"""Our MSP430FR5994 simulator (boards/msp430fr5994/sim, sparsenest.targets) against things we did not
write: Debian's mspdebug `sim` (every instruction form, the project's images: identical registers,
memory and instruction counts; the cycle difference is exactly what the two timing tables predict),
host integer arithmetic (MPY32) and a Python memcpy (DMA over the whole map). Plus power loss and the
errors it must stop on. The model firmware (LeNet-5-small against mspdebug, full LeNet-5's chip image
with MPY32 and upper-FRAM DMA tiles against the golden model) is checked in test_firmware_sim.py,
which builds those images anyway."""
import random
import re
import struct
import subprocess

import numpy as np
import pytest

import fr5994sim_programs as progs
from sparsenest.targets import fr5994power, fr5994sim, msp430


@pytest.fixture(scope="module", autouse=True)
def _tools():
    try:
        msp430.find_toolchain()
        msp430.find_mspdebug()
    except msp430.ToolchainError as e:
        pytest.skip(f"MSP430 toolchain absent ({e})")
    fr5994sim.load_library()          # builds the core once per session


def _build(tmp, name, text, image="sim", suffix=".S"):
    src = tmp / f"{name}{suffix}"
    src.write_text(text)
    return msp430.build([src], tmp / f"b_{name}", image=image, name=name)


# ---- mspdebug's view of a run -------------------------------------------------------------------

_REG_RE = re.compile(r"\(\s*(PC|SP|SR|R\d+):\s*([0-9a-fA-F]+)\)")
_INFO_RE = re.compile(r"Instruction count:\s*(\d+)\s*\nMCLK:\s*(\d+)")
COMPARED = ((0x1C00, 0x2000), (0x4000, 0xC000))        # SRAM, lower FRAM + vectors


def mspdebug_state(elf, tmp, inputs=()):
    """Registers, SRAM + FRAM, instruction count and MCLK at __halt in Debian's mspdebug."""
    e = msp430.read_elf(elf)
    cmds = ["simio add tracer tr", "simio add hwmult mpy", f"prog {elf}"]
    for i, (addr, blob) in enumerate(inputs):
        f = tmp / f"in{i}.bin"
        f.write_bytes(blob)
        cmds.append(f"load_raw {f} 0x{addr:x}")
    cmds += [f"setbreak 0x{e.symbols['__halt'].value:x}", "run", "simio info tr", "regs"]
    for k, (a, n) in enumerate(COMPARED):
        cmds.append(f"save_raw 0x{a:x} {n} {tmp / f'mem{k}.bin'}")
    out = subprocess.run([msp430.find_mspdebug(), "-n", "-q", "sim", *cmds], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    regs = dict(_REG_RE.findall(out.stdout)[-16:])
    names = ["PC", "SP", "SR"] + [f"R{i}" for i in range(3, 16)]
    ins, mclk = map(int, _INFO_RE.findall(out.stdout)[-1])
    mem = [(tmp / f"mem{k}.bin").read_bytes() for k in range(len(COMPARED))]
    return [int(regs[n], 16) for n in names], mem, ins, mclk


def our_state(elf, inputs=()):
    dev = fr5994sim.Device()
    dev.restore(b"\xff" * fr5994sim.MEM_SIZE)  # mspdebug's `prog` erases all 64 KB to 0xFF first
    dev.load(elf)
    for addr, blob in inputs:
        dev.write(addr, blob)
    dev.clear_counters()
    stop = dev.run("__halt")
    assert stop.reason == "break", stop
    mem = [dev.read(a, n) for a, n in COMPARED]
    return dev, dev.regs, mem


# ---- the two timing tables, written out from the documents (independently of the C core) ----------

SRC = ["Rn", "@Rn", "@Rn+", "#N", "x(Rn)", "&abs", "#1", "#2/#4", "#-1/#8"]   # the core's source classes
DST = ["Rm", "PC", "x(Rm)", "&abs"]
F2 = ["RRC", "SWPB", "RRA", "SXT", "PUSH", "CALL", "RETI"]

# CPUXv2 (SLAU445I section 4.5.1.5, the same CPU as SLAU367P's), Table 4-10, Format I cycles of MSP430
# instructions: rows = source, columns Rm, PC, memory; MOV/BIT/CMP take one cycle fewer to memory.
# Constants from the constant generators count as Rn.
CPUX_F1 = {"Rn": (1, 3, 4), "@Rn": (2, 4, 5), "@Rn+": (2, 4, 5), "#N": (2, 3, 5), "x(Rn)": (3, 5, 6),
           "&abs": (3, 5, 6)}
# Table 4-9, Format II cycles: RRA/RRC/SWPB/SXT, PUSH, CALL
CPUX_F2 = {"Rn": (1, 3, 4), "@Rn": (3, 3, 4), "@Rn+": (3, 3, 4), "#N": (3, 3, 4), "x(Rn)": (4, 4, 5),
           "&abs": (4, 4, 6)}
# mspdebug 0.22 (drivers/sim.c at v0.22): by the raw As bits. Format I: to PC 2 (As 0, 2) or 3;
# otherwise As 0: 1, As 1: 3, As 2/3: 2, plus 3 for a memory destination. Format II: see below.
AS = {"Rn": 0, "@Rn": 2, "@Rn+": 3, "#N": 3, "x(Rn)": 1, "&abs": 1, "#1": 1, "#2/#4": 2, "#-1/#8": 3}


def cpux_cycles(key):
    if key == len(SRC) * len(DST) * 3 + len(SRC) * len(F2):
        return 2                                                  # jumps
    if key < len(SRC) * len(DST) * 3:
        op, rest = divmod(key, len(SRC) * len(DST))
        src, dst = SRC[rest // len(DST)], DST[rest % len(DST)]
        src = "Rn" if src.startswith("#") and src != "#N" else src
        col = {"Rm": 0, "PC": 1}.get(dst, 2)
        return CPUX_F1[src][col] - (1 if col == 2 and op < 2 else 0)
    op, s = divmod(key - len(SRC) * len(DST) * 3, len(SRC))
    src = SRC[s]
    src = "Rn" if src.startswith("#") and src != "#N" else src
    if F2[op] == "RETI":
        return 5
    return CPUX_F2[src][{"PUSH": 1, "CALL": 2}.get(F2[op], 0)]


def mspdebug_cycles(key):
    if key == len(SRC) * len(DST) * 3 + len(SRC) * len(F2):
        return 2
    if key < len(SRC) * len(DST) * 3:
        rest = key % (len(SRC) * len(DST))
        a, dst = AS[SRC[rest // len(DST)]], DST[rest % len(DST)]
        if dst == "PC":
            return 2 if a in (0, 2) else 3
        return {0: 1, 1: 3, 2: 2, 3: 2}[a] + (3 if dst in ("x(Rm)", "&abs") else 0)
    op, s = divmod(key - len(SRC) * len(DST) * 3, len(SRC))
    a, name = AS[SRC[s]], F2[op]
    if name == "PUSH":
        return 3 if a == 0 else 4 if (a == 2 or SRC[s] == "#N") else 5
    if name == "CALL":
        return 4 if a in (0, 2) else 5
    if name == "RETI":
        return 5
    return {0: 1, 1: 4}.get(a, 3)


def test_cycle_tables_are_the_documented_ones(tmp_path):
    dev = fr5994sim.Device()
    n = len(dev.forms())
    assert dev.cycle_table() == [cpux_cycles(k) for k in range(n)]
    assert dev.cycle_table(legacy=True) == [mspdebug_cycles(k) for k in range(n)]


# ---- every instruction form -----------------------------------------------------------------------

@pytest.mark.parametrize("part", [0, 1])
def test_every_instruction_form_matches_mspdebug(tmp_path, part):
    text, n_log = progs.forms_program(part, seed=11 + part)
    fw = _build(tmp_path, f"forms{part}", text)
    regs_m, mem_m, ins_m, mclk_m = mspdebug_state(fw.elf, tmp_path)
    dev, regs, mem = our_state(fw.elf)
    c = dev.counters
    assert regs == regs_m
    for (a, _), ours, theirs in zip(COMPARED, mem, mem_m):
        diff = [a + i for i in range(len(ours)) if ours[i] != theirs[i]]
        assert not diff, f"memory differs at {[hex(x) for x in diff[:8]]}"
    assert c.instructions == ins_m and c.legacy_cycles == mclk_m
    # the cycle difference is exactly what the two tables predict, form by form
    forms = dev.forms()
    predicted = sum(n * (cpux_cycles(k) - mspdebug_cycles(k)) for k, n in enumerate(forms))
    assert c.cpu_cycles - mclk_m == predicted != 0
    # every form the program means to cover ran: part 0 all Format I forms to registers and memory;
    # part 1 the branches (MOV to PC from every non-constant source), Format II and the jumps
    n_f1 = len(SRC) * len(DST) * 3
    if part == 0:
        assert all(forms[k] for k in range(n_f1) if DST[k % len(DST)] != "PC")
    else:
        assert all(forms[SRC.index(s) * len(DST) + 1] for s in SRC[:6]) and forms[-1] > 0
        covered = {F2[(k - n_f1) // len(SRC)] for k in range(n_f1, len(forms) - 1) if forms[k]}
        assert covered == set(F2) - {"RETI"}


def test_selftest_and_kernel_images_match_mspdebug(tmp_path):
    """The project's helper self-test firmware (multiply/divide helpers, memcpy, MAC) on the mspdebug
    image: same registers, memory, instruction counts and mspdebug cycles."""
    sel = msp430.BOARD_DIR / "selftest"
    srcs = [sel / "selftest_main.c", sel / "ops_div.c"]
    for v in ("none", "16bit", "32bit", "f5series"):
        srcs.append((sel / "ops_mul.c", [f"-mhwmult={v}", f"-DST_VARIANT={v}", "-Wno-invalid-command-line-argument"]))
    fw = msp430.build(srcs, tmp_path / "st", image="sim", include_dirs=[sel], name="selftest")
    e = msp430.read_elf(fw.elf)
    rng = np.random.default_rng(5)
    mac = np.zeros(2048, np.int16)                         # st_mac: 3 cases (dense, strided, gather)
    mac[:1] = 3
    mac[4:16] = [0, 50, 1, 0, 7, 0, 1, 40, 3, 0, 0xFFF, 0x7FF] + [0] * 0
    mac[16:22] = [2, 60, 1, 0, 0x1234, 0]
    mac[256:768] = rng.integers(-2 ** 15, 2 ** 15, 512)
    mac[768:1792] = rng.integers(-2 ** 15, 2 ** 15, 1024)
    mac[1792:2048] = rng.integers(0, 1024, 256)
    blobs = {8: mac.tobytes()}
    for cmd, count, arg in ((1, 40, 2), (3, 40, 0), (2, 40, 1), (8, 0, 0)):   # mul32, div32, div16, mac
        blob = blobs.get(cmd, rng.integers(-2 ** 15, 2 ** 15, 512, dtype=np.int16).tobytes())
        inputs = [(e.symbols["st_cmd"].value, struct.pack("<4H", cmd, count, arg, count)),
                  (e.symbols["st_in"].value, blob)]
        regs_m, mem_m, ins_m, mclk_m = mspdebug_state(fw.elf, tmp_path, inputs)
        dev, regs, mem = our_state(fw.elf, inputs)
        assert regs == regs_m and mem == mem_m, f"command {cmd}"
        assert regs[12] == cmd                                 # main() returned the command: it ran
        # mspdebug counts every load_raw as one instruction of 4 cycles (a reset of its CPU)
        n = len(inputs)
        assert (dev.counters.instructions, dev.counters.legacy_cycles) == (ins_m - n, mclk_m - 4 * n)


# ---- MPY32 against host arithmetic ----------------------------------------------------------------

def _mpy_expected(reg, op1, op2, flags, ctl, acc):
    signed = reg in (2, 6, 0x14, 0x1C)
    mac = reg in (4, 6, 0x18, 0x1C)
    wide = bool(flags & 3)
    w1 = 8 if flags & 4 else 32 if flags & 1 else 16
    w2 = 8 if flags & 8 else 32 if flags & 2 else 16

    def val(x, w):
        x &= (1 << w) - 1
        return x - (1 << w) if signed and x >> (w - 1) else x

    p = val(op1, w1) * val(op2, w2) * (2 if ctl & 0x10 else 1)
    bits = 64 if wide else 32
    mask = (1 << bits) - 1
    old = acc & mask
    carry = 0
    if mac:
        if signed:
            r = (old - (1 << bits) if old >> (bits - 1) else old) + p
        else:
            u = old + (p & mask)
            carry, r = u >> bits, u
    else:
        r = p
    if signed and ctl & 0x20:
        r = max(min(r, (1 << (bits - 1)) - 1), -(1 << (bits - 1)))
    r &= mask
    neg = r >> (bits - 1)
    sumext = (0xFFFF if neg else 0) if signed else (carry if mac else 0)
    if wide:
        words = [(r >> (16 * i)) & 0xFFFF for i in range(4)]
    else:
        hi = (0xFFFF if neg else 0) if signed else 0
        words = [r & 0xFFFF, r >> 16, hi, hi]
    ctl_after = (sumext & 1) | (0x40 if flags & 1 else 0) | (0x80 if flags & 2 else 0)
    return words + [sumext, ctl_after]


def test_mpy32_modes_against_host_arithmetic(tmp_path):
    fw = _build(tmp_path, "mpy", progs.MPY_C, image="fr5994", suffix=".c")
    rng = random.Random(7)
    edge = [0, 1, 0x7FFF, 0x8000, 0xFFFF, 0x1234, 0x8001]
    ops = []
    for k in range(progs.MPY_MAX_OPS):
        reg = [0, 2, 4, 6, 0x10, 0x14, 0x18, 0x1C][k % 8]
        flags = (1 if reg >= 0x10 else 0) | (2 if k % 5 == 0 else 0) | (16 if k % 3 else 0)
        if k % 11 == 4 and reg < 0x10:
            flags |= 4 | 8                                   # byte operands
        ctl = [0, 0x10, 0x20, 0x30][(k // 8) % 4]
        pick = lambda: rng.choice(edge) if rng.random() < 0.4 else rng.randrange(1 << 16)
        op = (ctl, reg, pick(), pick(), pick(), pick(), flags, [rng.randrange(1 << 16) for _ in range(4)])
        ops.append(op)
    blob = b"".join(struct.pack("<11H", c, r, a, b, x, y, f, *acc) for c, r, a, b, x, y, f, acc in ops)
    r = fr5994sim.simulate(fw.elf, inputs={"mpy_ops": blob, "mpy_n_ops": struct.pack("<H", len(ops))},
                           outputs={"res": ("mpy_res", 12 * len(ops))})
    got = struct.unpack(f"<{6 * len(ops)}H", r.outputs["res"])
    for k, (ctl, reg, a, b, x, y, flags, acc) in enumerate(ops):
        op1 = a | (b << 16 if flags & 1 else 0)
        op2 = x | (y << 16 if flags & 2 else 0)
        accv = sum(w << (16 * i) for i, w in enumerate(acc)) if flags & 16 else \
            sum(w << (16 * i) for i, w in enumerate(got[6 * (k - 1): 6 * (k - 1) + 4])) if k else 0
        exp = _mpy_expected(reg, op1, op2, flags, ctl, accv)
        assert list(got[6 * k: 6 * k + 6]) == exp, f"op {k}: reg 0x{reg:x} ctl 0x{ctl:x} flags {flags}"
    assert r.counters["mpy_ops"] == len(ops)


# ---- DMA against memcpy over the whole map -------------------------------------------------------

# (away from the program: its .bss and stack in SRAM, its code and tables at the start of lower FRAM)
REGIONS = {"sram": (0x2000, 0x2A00), "lea": (0x2C00, 0x3C00), "fram": (0xC000, 0xF000),
           "upper": (0x10000, 0x44000)}


def _dma_reference(mem: bytearray, ctl, src, dst, size, triggers):
    sbyte, dbyte = ctl >> 6 & 1, ctl >> 7 & 1
    sinc, dinc = ctl >> 8 & 3, ctl >> 10 & 3
    block = (ctl >> 12) & 3 != 0
    n = size if block else min(triggers, size)

    def step(a, inc, byte):
        d = 1 if byte else 2
        return (a + d if inc == 3 else a - d if inc == 2 else a) & 0xFFFFF

    for _ in range(n):
        v = mem[src] if sbyte else mem[src] | mem[src + 1] << 8
        if dbyte:
            mem[dst] = v & 0xFF
        else:
            mem[dst], mem[dst + 1] = v & 0xFF, (v >> 8) & (0 if sbyte else 0xFF)
        src, dst = step(src, sinc, sbyte), step(dst, dinc, dbyte)
    return n


def test_dma_against_memcpy_over_the_map(tmp_path):
    fw = _build(tmp_path, "dma", progs.DMA_C, image="fr5994", suffix=".c")
    rng = random.Random(3)
    dev = fr5994sim.Device(fw.elf)
    jobs, n_transfers = [], 0
    names = list(REGIONS)
    for k in range(progs.DMA_MAX):
        sbyte, dbyte = rng.random() < 0.3, rng.random() < 0.3
        dt = [0, 1, 1, 4, 5][k % 5]
        sinc, dinc = rng.choice([0, 2, 3, 3]), rng.choice([2, 3, 3])
        size = rng.randrange(1, 200)
        span = 2 * size + 4
        ra, rb = REGIONS[names[k % 4]], REGIONS[names[(k * 3 + 1) % 4]]
        src = rng.randrange(ra[0] + span, ra[1] - span) & ~1
        dst = rng.randrange(rb[0] + span, rb[1] - span) & ~1
        if abs(src - dst) < span:
            dst = rb[0] + span if src > rb[0] + 3 * span else rb[1] - 2 * span
        triggers = size if dt in (0, 4) and k % 2 else min(size, 3) if dt in (0, 4) else 1
        ctl = dt << 12 | dinc << 10 | sinc << 8 | dbyte << 7 | sbyte << 6
        jobs.append((k % 6, ctl, src, dst, size, triggers, k % 2))
    blob = b"".join(struct.pack("<HHIIHHHH", ch, ctl, s, d, n, t, w, 0) for ch, ctl, s, d, n, t, w in jobs)
    dev.write("dma_jobs", blob)
    dev.write("dma_n_jobs", struct.pack("<H", len(jobs)))
    rnd = random.Random(9)
    for a, b in REGIONS.values():
        dev.write(a, rnd.randbytes(b - a))
    before = bytearray(dev.snapshot())
    dev.clear_counters()
    assert dev.run("__halt").reason == "break"
    after = dev.snapshot()
    expected = bytearray(before)
    for ch, ctl, s, d, n, t, w in jobs:
        n_transfers += _dma_reference(expected, ctl, s, d, n, t)
    for name, (a, b) in REGIONS.items():
        assert after[a:b] == expected[a:b], f"{name}: first difference at " \
            f"{hex(a + next(i for i in range(b - a) if after[a + i] != expected[a + i]))}"
    c = dev.counters
    assert c.dma_transfers == n_transfers
    # the CPU is held for 2 cycles per trigger and per transfer, plus the wait states of DMA FRAM reads
    triggers = sum(n if (ctl >> 12) & 3 == 0 else 1 for _, ctl, _, _, n, t, _ in jobs for n in [min(t, n)])
    base = 2 * triggers + 2 * n_transfers
    assert base <= c.dma_cycles <= base + n_transfers
    after_regs = struct.unpack(f"<{3 * len(jobs)}H", dev.read("dma_after", 6 * len(jobs)))
    for k, (ch, ctl, s, d, n, t, w) in enumerate(jobs):
        done = (ctl >> 12) & 3 or t >= n
        en = bool(after_regs[3 * k] & 0x10)
        assert en == (not done or (ctl >> 12) >= 4), f"job {k}: DMAEN after"
        assert after_regs[3 * k + 1] == (n if done else n - t), f"job {k}: DMAxSZ after"


# ---- power ---------------------------------------------------------------------------------------

def test_power_cuts_keep_fram_and_lose_sram(tmp_path):
    fw = _build(tmp_path, "counter", progs.COUNTER_C, image="fr5994", suffix=".c")
    dev = fr5994sim.Device(fw.elf)
    dev.clear_counters()
    cuts = 0
    while True:
        stop = dev.run("__halt", max_cycles=4000)
        if stop.reason != "budget":
            break
        dev.power_off(seed=cuts + 1)
        cuts += 1
    assert stop.reason == "break" and cuts >= 3
    fram_count, boots = struct.unpack("<HH", dev.read("fram_count", 2) + dev.read("boots", 2))
    sram_count = struct.unpack("<H", dev.read("sram_count", 2))[0]
    assert fram_count == 2000 and boots == cuts + 1                  # FRAM survived every cut
    assert 0 < sram_count < 2000                                     # SRAM restarted after the last cut
    assert dev.counters.resets == cuts


def test_power_cut_at_random_and_harvested_cycles(tmp_path):
    fw = _build(tmp_path, "counter", progs.COUNTER_C, image="fr5994", suffix=".c")
    dev = fr5994sim.Device(fw.elf)
    r = fr5994power.run_intermittent(dev, cut_cycles=fr5994power.random_cuts(3, 15000, seed=4))
    assert r.completed and r.power_failures == 3
    assert struct.unpack("<H", dev.read("fram_count", 2))[0] == 2000
    from sparsenest.analysis import harvest
    dev = fr5994sim.Device(fw.elf)
    trace = harvest.Trace(np.array([0.0, 10.0]), np.array([2e-4, 2e-4]))    # 0.2 mW, steady
    cap = harvest.Capacitor(10e-6, v_on=3.0, v_off=2.9, v_max=3.3, v_init=3.0)   # ~3 uJ per charge
    r = fr5994power.run_intermittent(dev, trace=trace, capacitor=cap, slice_cycles=1000)
    assert r.completed and r.power_failures >= 1 and r.off_time_s > 0
    assert struct.unpack("<H", dev.read("fram_count", 2))[0] == 2000
    assert struct.unpack("<H", dev.read("boots", 2))[0] == r.power_failures + 1


# ---- errors --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def errors_image(tmp_path_factory):
    return _build(tmp_path_factory.mktemp("frsim_err"), "errors", progs.error_program(), image="fr5994")


@pytest.mark.parametrize("name", sorted(progs.ERROR_SNIPPETS))
def test_stops_with_pc_and_address(errors_image, name):
    _, message = progs.ERROR_SNIPPETS[name]
    dev = fr5994sim.Device(errors_image.elf)
    assert dev.run("main").reason == "break"                 # start-up done (clock, FRAM wait state)
    dev.set_reg(0, dev.address(f"err_{name}")[0])
    stop = dev.run("__halt", max_cycles=1000)
    assert stop.reason == "error" and message in stop.message and "PC 0x" in stop.message, stop


def test_batch_profile_and_energy(tmp_path):
    fw = _build(tmp_path, "mpy", progs.MPY_C, image="fr5994", suffix=".c")
    dev = fr5994sim.Device(fw.elf)
    op = struct.pack("<11H", 0, 2, 3, 0, 0xFFFB, 0, 0, 0, 0, 0, 0)           # MPYS 3 x -5
    runs = dev.batch([{"mpy_ops": op, "mpy_n_ops": struct.pack("<H", n)} for n in (1, 0, 1)],
                     {"res": ("mpy_res", 4)})
    assert [r["outputs"]["res"] for r in runs] == [struct.pack("<hh", -15, -1), bytes(4),
                                                   struct.pack("<hh", -15, -1)]
    assert runs[0]["counters"] == runs[2]["counters"] != runs[1]["counters"]
    r = fr5994sim.simulate(fw.elf, profile=True, inputs={"mpy_ops": op, "mpy_n_ops": struct.pack("<H", 1)})
    assert "main" in r.profile and sum(r.profile.values()) <= r.cycles
    assert sum(r.profile.values()) >= 0.95 * r.cycles
    p = dev.platform
    assert r.energy_j == pytest.approx(r.cycles * p.energy_per_cycle_j
                                       + r.counters["fram_writes"] * p.fram_write_energy_j)


def test_lea_calls_through_the_port_equal_the_reference(tmp_path):
    """The DSPLib shims of the simulator image hand msp_mac_q15/msp_add_q15 to the LEA model through
    the 0x0FF0 port: results equal lea_ref's, the CPU is held for the modelled cycles, energy charged."""
    if not fr5994sim.lea_linked():
        pytest.skip("LEA model (boards/msp430fr5994/sim/lea.c) not on this branch")
    from sparsenest.compiler import lea_ref
    root = msp430.BOARD_DIR.parents[1]
    src = tmp_path / "lea.c"
    src.write_text(progs.LEA_C)
    fw = msp430.build([src, msp430.BOARD_DIR / "sim" / "dsplib_shim.c"], tmp_path / "b", image="fr5994",
                      include_dirs=[root / "runtime_c" / "kernels_lea" / "dsplib", msp430.BOARD_DIR / "sim"],
                      name="lea")
    rng = np.random.default_rng(2)
    a = rng.integers(-2 ** 15, 2 ** 15, progs.LEA_N, dtype=np.int16)
    b = rng.integers(-2 ** 15, 2 ** 15, progs.LEA_N, dtype=np.int16)
    r = fr5994sim.simulate(fw.elf, inputs={"host_a": a.tobytes(), "host_b": b.tobytes()},
                           outputs={"sum": ("out_sum", 2 * progs.LEA_N), "mac": ("out_mac", 4),
                                    "status": ("out_status", 4)})
    assert struct.unpack("<hh", r.outputs["status"]) == (0, 0)
    assert struct.unpack("<i", r.outputs["mac"])[0] == lea_ref.mac_q15(a, b)
    assert np.array_equal(np.frombuffer(r.outputs["sum"], "<i2"), lea_ref.add_q15(a, b))
    k = lea_ref.lea_costs()
    cost = [lea_ref.cost_of(k, "mac_q15", length=progs.LEA_N), lea_ref.cost_of(k, "add_q15", length=progs.LEA_N)]
    c = r.counters
    assert c["lea_calls"] == 2 and c["lea_cycles"] == sum(x.cycles for x in cost)
    assert c["lea_energy_fj"] == pytest.approx(sum(x.energy_nj for x in cost) * 1e6, abs=2)
