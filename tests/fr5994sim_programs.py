"""Programs for the simulator tests: one generated assembly program that executes every instruction
form clang-19 can emit (every Format I operation x byte/word x source mode x destination mode, every
Format II operation x mode, every jump taken and not taken, PC as destination), with random operands
and the status register logged after each one, and a small FRAM/SRAM counter for power-cut tests."""
import random

F1_OPS = ["mov", "add", "addc", "subc", "sub", "cmp", "dadd", "bit", "bic", "bis", "xor", "and"]
# source operand syntax -> the form; r12 points at `scratch`, r13 at scratch+32
SRC_MODES = ["r6", "@r12", "@r12+", "#0x{imm:x}", "#0", "#1", "#2", "#4", "#8", "#-1", "6(r13)",
             "&scratch+{off}", "scratch+{off}"]
DST_MODES = ["r7", "8(r13)", "&scratch+{off}", "scratch+{off}"]
F2_OPS = ["rrc", "rra", "swpb", "sxt"]
F2_MODES = ["r8", "@r12", "@r12+", "4(r13)", "&scratch+{off}", "scratch+{off}"]
JUMPS = ["jne", "jeq", "jnc", "jc", "jn", "jge", "jl", "jmp"]

HEADER = """\
    .section .lea.noinit,"aw",@nobits
    .p2align 2
    .globl sim_log
sim_log:
    .zero {log_bytes}
    .section .persistent.scratch,"aw",@progbits
    .p2align 1
    .globl scratch
scratch:
    .zero 64
    .text
    .globl main
    .type main,@function
    .p2align 1
main:
    push r4
    push r5
    push r6
    push r7
    push r8
    push r9
    push r10
    mov #sim_log, r14
    mov #scratch, r12
    mov #scratch+32, r13
"""

FOOTER = """\
    pop r10
    pop r9
    pop r8
    pop r7
    pop r6
    pop r5
    pop r4
    mov r14, r12
    sub #sim_log, r12
    ret
    .size main, .-main
sub_ret:
    add #3, r9
    ret
"""


# (As, register, extension word or None) of the source modes LLVM's assembler rejects in some
# instructions (push with a memory or byte operand, mov @Rn+ to memory): emitted as .word
_SRC_ENC = {"r6": (0, 6, None), "@r12": (2, 12, None), "@r12+": (3, 12, None), "#0": (0, 3, None),
            "#1": (1, 3, None), "#2": (2, 3, None), "#4": (2, 2, None), "#8": (3, 2, None), "#-1": (3, 3, None),
            "6(r13)": (1, 13, "6"), "&scratch+{off}": (1, 2, "scratch+{off}")}


def _words(op: int, byte: bool, src: str, imm: int, off: int, dst: tuple | None = None) -> str:
    """.word encoding: op = 0x1200 (PUSH) or 0x4000 (MOV); dst = (Ad, register, extension word)."""
    if src.startswith("#0x"):
        as_, reg, ext = 3, 0, f"0x{imm:x}"
    else:
        as_, reg, ext = _SRC_ENC[src.replace("scratch+" + str(off), "scratch+{off}")]
        ext = ext.format(off=off) if ext else None
    w = op | (byte << 6) | (as_ << 4)
    exts = [ext] if ext else []
    if op == 0x1200:
        w |= reg
    else:
        ad, dreg, dext = dst
        w |= (reg << 8) | (ad << 7) | dreg
        exts.append(dext)
    return ".word " + ", ".join([f"0x{w:04x}"] + exts)


def _rand16(rng: random.Random) -> int:
    return rng.choice([0, 1, 0x7FFF, 0x8000, 0xFFFF, 0x00FF, 0x0080, 0x9999, 0x0999, rng.randrange(1 << 16),
                       rng.randrange(1 << 16), rng.randrange(1 << 16)])


def forms_program(part: int, seed: int = 1) -> tuple[str, int]:
    """Assembly text and the number of status-register log entries it writes. Two parts (0, 1) so that
    each fits lower FRAM: part 0 the first six Format I operations, part 1 the rest of everything."""
    rng = random.Random(seed)
    out = []
    n_log = 0

    def emit(line: str):
        out.append("    " + line)

    def log():
        nonlocal n_log
        emit("mov r2, 0(r14)")
        emit("incd r14")
        n_log += 1

    def scramble(memory: bool = False):
        """Fresh random operands: registers, the carry, and (memory=True) the scratch words."""
        emit(f"mov #0x{_rand16(rng):x}, r6")
        emit(f"mov #0x{_rand16(rng):x}, r7")
        emit(f"mov #0x{_rand16(rng):x}, r8")
        if memory:
            for off in (0, 2, 38, 40, 36):
                emit(f"mov #0x{_rand16(rng):x}, &scratch+{off}")
        emit("mov #scratch, r12")
        emit("setc" if rng.random() < 0.5 else "clrc")

    for op in F1_OPS[:6] if part == 0 else F1_OPS[6:]:
        for suffix in (".w", ".b"):
            for src in SRC_MODES:
                scramble(memory=True)
                for dst in DST_MODES:
                    scramble()
                    s = src.format(imm=(_rand16(rng) & 0x7FFF) | 0x100, off=2 * rng.randrange(0, 2))
                    d = dst.format(off=36 + 2 * rng.randrange(0, 3))
                    if op == "mov" and src == "@r12+" and not d.startswith("r"):
                        ad, dreg, dext = (1, 13, "8") if d.startswith("8(") else (1, 2, d.lstrip("&"))
                        emit(_words(0x4000, suffix == ".b", src, 0, 0, (ad, dreg, dext)))
                    else:
                        emit(f"{op}{suffix} {s}, {d}")
                    log()
    if part == 0:
        return HEADER.format(log_bytes=2 * n_log) + "\n".join(out) + "\n" + FOOTER, n_log
    for op in F2_OPS:
        for suffix in ((".w", ".b") if op in ("rrc", "rra") else ("",)):
            for mode in F2_MODES:
                scramble(memory=True)
                emit(f"{op}{suffix} {mode.format(off=2 * rng.randrange(0, 2))}")
                log()
    for suffix in (".w", ".b"):
        for mode in SRC_MODES:
            if mode.startswith("scratch"):
                continue                      # symbolic: covered by the other instructions
            scramble()
            imm, off = (_rand16(rng) & 0x7FFF) | 0x100, 2 * rng.randrange(0, 2)
            if suffix == ".b":
                # PUSH.B writes one byte (the chip); mspdebug 0.22 writes the whole word: clear the
                # stack word first so that the POP below reads the same in both
                emit("mov #0, -2(r1)")
            emit(_words(0x1200, suffix == ".b", mode.format(imm=imm, off=off), imm, off))
            emit("pop r9")
            log()
    # calls through every source mode: sub_ret adds 3 to r9 and returns
    emit("mov #sub_ret, &scratch+0")
    emit("mov #sub_ret, &scratch+38")
    emit("mov #sub_ret, r10")
    for mode in ("#sub_ret", "r10", "@r12", "@r12+", "6(r13)", "&scratch+0", "scratch+0"):
        emit("mov #scratch, r12")
        emit(f"call {mode}")
        log()
    # PC as destination (branches): every source mode, plus arithmetic on PC
    for k, mode in enumerate(("#{L}", "r10", "@r12", "@r12+", "6(r13)", "&scratch+0", "scratch+0")):
        label = f".Lpc{k}"
        emit(f"mov #{label}, r10")
        emit(f"mov #{label}, &scratch+0")
        emit(f"mov #{label}, &scratch+38")
        emit("mov #scratch, r12")
        emit(f"mov {mode.format(L=label)}, pc")
        emit("mov #0xdead, r9")          # skipped
        out.append(f"{label}:")
        log()
    emit("add #2, pc")
    emit("mov #1, r9")                   # one word: skipped
    emit("sub #0, pc")
    log()
    for j in JUMPS:
        for _ in range(3):
            scramble()
            emit(f"cmp #0x{_rand16(rng):x}, r6")
            emit(f"{j} 1f")
            emit("inc r9")
            out.append("1:")
            log()
    text = HEADER.format(log_bytes=2 * n_log) + "\n".join(out) + "\n" + FOOTER
    return text, n_log


COUNTER_C = r"""
/* Counts in FRAM (SN_PERSISTENT) and in SRAM (.noinit, not touched by start-up) once per loop pass. */
#include <stdint.h>
#include "sn_board.h"

SN_PERSISTENT volatile uint16_t fram_count = 0;
SN_PERSISTENT volatile uint16_t boots = 0;
SN_NOINIT volatile uint16_t sram_count;
SN_NOINIT volatile uint16_t sram_magic;

int main(void)
{
    boots++;
    if (sram_magic != 0x5A5A) {          /* SRAM lost (power-up): start the SRAM count again */
        sram_magic = 0x5A5A;
        sram_count = 0;
    }
    while (fram_count < 2000) {
        fram_count++;
        sram_count++;
    }
    return 0;
}
"""


# ---- MPY32: operations from a table the host writes, results to a table --------------------------
MPY_MAX_OPS = 48
MPY_C = r"""
#include <stdint.h>
#include "sn_board.h"
#include "msp430_regs.h"

/* one operation: MPY32CTL0, operand-1 register offset (0 MPY 2 MPYS 4 MAC 6 MACS 0x10.. 32-bit),
 * operands, flags (bit 0: 32-bit operand 1, bit 1: 32-bit operand 2, bit 2: byte operand 1,
 * bit 3: byte operand 2, bit 4: preset the accumulator RES0..RES3 from acc[]) */
typedef struct { uint16_t ctl, reg, op1_lo, op1_hi, op2_lo, op2_hi, flags, acc[4]; } mpy_op_t;
SN_PERSISTENT mpy_op_t mpy_ops[%(n)d];
SN_PERSISTENT uint16_t mpy_n_ops;
SN_PERSISTENT uint16_t mpy_res[%(n)d][6];      /* RES0..RES3, SUMEXT, MPY32CTL0 & 0x00C1 */

#define R16(off) (*(volatile uint16_t *)(SN_MPY_BASE + (off)))
#define R8(off) (*(volatile uint8_t *)(SN_MPY_BASE + (off)))

int main(void)
{
    for (uint16_t i = 0; i < mpy_n_ops; i++) {
        const mpy_op_t *o = &mpy_ops[i];
        MPY32CTL0 = o->ctl;
        if (o->flags & 16) {
            RES0 = o->acc[0]; RES1 = o->acc[1]; RES2 = o->acc[2]; RES3 = o->acc[3];
        }
        if (o->flags & 4)
            R8(o->reg) = (uint8_t)o->op1_lo;
        else
            R16(o->reg) = o->op1_lo;
        if (o->flags & 1)
            R16(o->reg + 2) = o->op1_hi;
        if (o->flags & 2) {
            OP2L = o->op2_lo;
            OP2H = o->op2_hi;
        } else if (o->flags & 8) {
            R8(0x08) = (uint8_t)o->op2_lo;
        } else {
            OP2 = o->op2_lo;
        }
        __asm__ volatile("nop\n nop\n nop\n nop\n nop\n nop\n nop" ::: "memory");
        mpy_res[i][0] = RES0; mpy_res[i][1] = RES1; mpy_res[i][2] = RES2; mpy_res[i][3] = RES3;
        mpy_res[i][4] = SUMEXT;
        mpy_res[i][5] = MPY32CTL0 & 0x00C1;
    }
    return 0;
}
""" % {"n": MPY_MAX_OPS}


# ---- DMA: transfers from a table the host writes -------------------------------------------------
DMA_MAX = 24
DMA_C = r"""
#include <stdint.h>
#include "sn_board.h"
#include "msp430_regs.h"

/* one job: channel, DMAxCTL (without DMAEN/DMAREQ), 20-bit source and destination, size, number of
 * software triggers, FRCTL0 NWAITS value during the job */
typedef struct { uint16_t ch, ctl; uint32_t src, dst; uint16_t size, triggers, nwaits, pad; } dma_job_t;
SN_PERSISTENT dma_job_t dma_jobs[%(n)d];
SN_PERSISTENT uint16_t dma_n_jobs;
SN_PERSISTENT uint16_t dma_after[%(n)d][3];    /* DMAxCTL, DMAxSZ after the job, DMAIV */

int main(void)
{
    for (uint16_t i = 0; i < dma_n_jobs; i++) {
        const dma_job_t *j = &dma_jobs[i];
        uint16_t ch = j->ch;
        FRCTL0 = FRCTLPW | (uint16_t)(j->nwaits << 4);
        DMAxCTL(ch) = 0;
        if (ch < 2)
            DMACTL0 &= (ch == 0) ? 0xFFE0u : 0xE0FFu;
        else if (ch < 4)
            DMACTL1 &= (ch == 2) ? 0xFFE0u : 0xE0FFu;
        else
            DMACTL2 &= (ch == 4) ? 0xFFE0u : 0xE0FFu;
        DMAxSAL(ch) = (uint16_t)j->src;
        DMAxSAH(ch) = (uint16_t)(j->src >> 16);
        DMAxDAL(ch) = (uint16_t)j->dst;
        DMAxDAH(ch) = (uint16_t)(j->dst >> 16);
        DMAxSZ(ch) = j->size;
        DMAxCTL(ch) = j->ctl | DMAEN;
        for (uint16_t t = 0; t < j->triggers; t++)
            DMAxCTL(ch) |= DMAREQ;
        dma_after[i][0] = DMAxCTL(ch);
        dma_after[i][1] = DMAxSZ(ch);
        dma_after[i][2] = SN_REG16(DMAIV_ADDR);
        DMAxCTL(ch) = 0;
    }
    FRCTL0 = FRCTLPW | NWAITS_1;
    return 0;
}
""" % {"n": DMA_MAX}


# ---- what the simulator must refuse: one snippet each, run from main --------------------------------
ERROR_SNIPPETS = {
    "unaligned": ("mov #0x1c01, r12\n    mov @r12, r13", "unaligned word read at 0x1C01"),
    "outside": ("mov &0x3c00, r13", "read outside the FR5994 memory map at 0x03C00"),
    "msp430x": (".word 0x1800, 0x4303", "MSP430X extension word 0x1800"),
    "frctl": ("mov #0x0010, &0x0140", "FRCTL0 written without the FRCTLPW password"),
    "mpy_early": ("mov #3, &0x04d0\n    mov #0, &0x04d2\n    mov #5, &0x04e0\n    mov #0, &0x04e2\n"
                  "    mov &0x04e4, r12", "MPY32 result read"),
}


def error_program() -> str:
    """main returns 0; every snippet is a function `err_<name>` that the test jumps to."""
    parts = ["    .text", "    .globl main", "    .type main,@function", "    .p2align 1", "main:",
             "    mov #0, r12", "    ret"]
    for name, (snippet, _) in ERROR_SNIPPETS.items():
        parts += [f"    .globl err_{name}", f"    .type err_{name},@function", f"err_{name}:", "    nop",
                  f"    {snippet}", "    ret"]
    return "\n".join(parts) + "\n"


# ---- LEA through the DSPLib shims: the chip's CPU calls msp_mac_q15 / msp_add_q15 on LEA RAM -------
LEA_N = 64
LEA_C = r"""
#include <stdint.h>
#include "sn_board.h"
#include "DSPLib.h"

SN_LEA_RAM _q15 lea_a[%(n)d];
SN_LEA_RAM _q15 lea_b[%(n)d];
SN_LEA_RAM _q15 lea_sum[%(n)d];
SN_LEA_RAM _iq31 lea_mac;
SN_PERSISTENT int16_t host_a[%(n)d];
SN_PERSISTENT int16_t host_b[%(n)d];
SN_PERSISTENT int16_t out_sum[%(n)d];
SN_PERSISTENT int32_t out_mac;
SN_PERSISTENT int16_t out_status[2];

int main(void)
{
    for (uint16_t i = 0; i < %(n)d; i++) {
        lea_a[i] = host_a[i];
        lea_b[i] = host_b[i];
    }
    msp_mac_q15_params mp = {.length = %(n)d};
    out_status[0] = msp_mac_q15(&mp, lea_a, lea_b, &lea_mac);
    msp_add_q15_params ap = {.length = %(n)d};
    out_status[1] = msp_add_q15(&ap, lea_a, lea_b, lea_sum);
    out_mac = lea_mac;
    for (uint16_t i = 0; i < %(n)d; i++)
        out_sum[i] = lea_sum[i];
    return 0;
}
""" % {"n": LEA_N}
