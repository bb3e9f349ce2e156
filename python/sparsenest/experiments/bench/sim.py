"""`make bench-sim`: simulated instructions per second of our MSP430FR5994 simulator against Debian's
mspdebug `sim`, on the same image in the same run.

The image is a workload of the project's own board code (Q15 dot products on the multiplier,
memcpy, 32-bit division helpers, a byte-sum loop), built for mspdebug's simulator image; our simulator
also runs the chip image of the same program. Wall time of each simulator process/run (mspdebug:
the subprocess, including its start-up and ELF load; ours: the run only, plus once with load), best
of `--repeat`, and the CPU time the same run used (the figure that holds on a shared machine, where
wall time depends on the other jobs).
"""
from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

from ...board import mclk_hz
from ...targets import fr5994sim, msp430

WORKLOAD_C = r"""
#include <stdint.h>
#include "sn_board.h"
#include "sn_mac.h"

void *memcpy(void *, const void *, unsigned int);
SN_NOINIT uint16_t rounds;
static int16_t a[256], b[256];
static uint8_t buf[256], buf2[256];
volatile int32_t sink;

int main(void)
{
    uint32_t x = 12345;
    for (uint16_t i = 0; i < 256; i++) {
        x = x * 1103515245u + 12345u;
        a[i] = (int16_t)(x >> 16);
        b[i] = (int16_t)(x >> 8);
        buf[i] = (uint8_t)x;
    }
    int32_t acc = 0;
    for (uint16_t r = 0; r < rounds; r++) {
        acc = sn_dot_q15(a, b, 256, acc);
        memcpy(buf2, buf, sizeof buf);
        uint16_t s = 0;
        for (uint16_t i = 0; i < 256; i++)
            s += buf2[i];
        acc += (int32_t)((uint32_t)acc / (uint32_t)(s | 1u));
    }
    sink = acc;
    return 0;
}
"""


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children (mspdebug runs as a child)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _best(fn, repeat: int) -> tuple[float, float, object]:
    """(best wall seconds, CPU seconds of that run, result)."""
    best, cpu, out = float("inf"), float("inf"), None
    for _ in range(repeat):
        t, c = time.perf_counter(), _cpu_s()
        out = fn()
        dt, dc = time.perf_counter() - t, _cpu_s() - c
        if dt < best:
            best, cpu = dt, dc
    return best, cpu, out


def add_arguments(p) -> None:
    from ... import cli_args as arg
    p.add_argument("--rounds", type=arg.count, default=4000, help="workload rounds (about 3,500 instructions each)")
    p.add_argument("--repeat", type=arg.count, default=3, help="runs per simulator; the best counts")


def run(args) -> int:
    try:
        msp430.find_toolchain()
        mspdebug = msp430.find_mspdebug()
    except msp430.ToolchainError as e:
        print(f"bench-sim: {e}")
        return 1
    with tempfile.TemporaryDirectory(prefix="sn-bench-sim-") as tmp:
        tmp = Path(tmp)
        src = tmp / "workload.c"
        src.write_text(WORKLOAD_C)
        sim_fw = msp430.build([src], tmp / "sim", image="sim", name="workload")
        chip_fw = msp430.build([src], tmp / "chip", image="fr5994", name="workload")
        inputs = {"rounds": args.rounds.to_bytes(2, "little")}

        t_m, c_m, r_m = _best(lambda: msp430.simulate(sim_fw.elf, inputs=inputs, timeout_s=600, mspdebug=mspdebug),
                         args.repeat)
        t_load, c_load, r_o = _best(lambda: fr5994sim.simulate(sim_fw.elf, inputs=inputs), 1)
        dev = fr5994sim.Device(sim_fw.elf)

        def ours(d=dev):
            d.restore()
            d.reset()
            d.write("rounds", inputs["rounds"])
            d.clear_counters()
            d.run("__halt")
            return d.counters.instructions

        t_o, c_o, n_o = _best(ours, args.repeat)
        chip = fr5994sim.Device(chip_fw.elf)
        t_c, c_c, n_c = _best(lambda: ours(chip), args.repeat)
        c = chip.counters
    if r_m.instructions != n_o + 1:          # mspdebug counts the load_raw of the input as one instruction
        print(f"bench-sim: instruction counts differ: mspdebug {r_m.instructions}, ours {n_o}")
        return 1
    rows = [("mspdebug 0.22 sim (process, mspdebug image)", r_m.instructions, t_m, c_m),
            ("ours, mspdebug image (with ELF load)", r_o.instructions, t_load, c_load),
            ("ours, mspdebug image (run only)", n_o, t_o, c_o),
            ("ours, chip image (run only)", n_c, t_c, c_c)]
    print(f"workload: {args.rounds} rounds, best of {args.repeat}")
    print(f"{'simulator':46s} {'instructions':>13s} {'wall s':>8s} {'M instr/s':>10s} {'CPU s':>7s} "
          f"{'M instr/CPU s':>14s}")
    for name, n, t, cpu in rows:
        print(f"{name:46s} {n:13d} {t:8.3f} {n / t / 1e6:10.1f} {cpu:7.3f} {n / max(cpu, 1e-9) / 1e6:14.1f}")
    print(f"ratio ours (run only) / mspdebug: {(n_o / t_o) / (r_m.instructions / t_m):.2f}x wall, "
          f"{(n_o / c_o) / (r_m.instructions / c_m):.2f}x CPU time")
    print(f"chip image: {c.cycles} cycles ({c.cpu_cycles} CPU + {c.wait_cycles} FRAM wait), cache hit rate "
          f"{c.cache_hits / max(c.fram_reads, 1):.1%}, {c.cycles / mclk_hz() * 1e3:.1f} ms and "
          f"{chip.energy_j(c) * 1e6:.1f} uJ at {mclk_hz() / 1e6:g} MHz (simulated)")
    return 0


def main(argv=None) -> int:
    from ...cli import run_command
    return run_command("bench sim", argv)

if __name__ == "__main__":
    raise SystemExit(main())
